/* tconfig.c - the teacher config parser and profile binding (see tconfig.h). */
#include "tconfig.h"
#include "buf.h"
#include "db.h"
#include "hash.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keys each object may hold: anything else is an error naming it. */
static const char *const top_keys[] = {"endpoints",    "profiles",	     "timeouts",
				       "max_attempts", "max_response_bytes", "budget"};
static const char *const endpoint_keys[] = {"name",
					    "base_url",
					    "model",
					    "api_key_env",
					    "max_concurrency",
					    "requests_per_minute",
					    "tokens_per_minute",
					    "weight",
					    "stream",
					    "price_per_mtok_in",
					    "price_per_mtok_out"};
static const char *const profile_keys[] = {"model", "system",	  "template", "temperature",
					   "top_p", "max_tokens", "seed"};
static const char *const timeout_keys[] = {"connect", "total", "stall", "lease", "grace"};
static const char *const budget_keys[] = {"max_completion_tokens", "max_cost_usd"};
static const char *const limit_keys[] = {"per_run", "total"};

static const char default_config[] = "{\"endpoints\":[{\"name\":\"default\",\"model\":\"" TCONFIG_SIM_MODEL
				     "\"}],\"profiles\":{\"default\":{}}}";

static int check_keys(const cJSON *obj, const char *const *allowed, size_t n, const char *where,
		      struct derr *e)
{
	const cJSON *it;
	if (!cJSON_IsObject(obj))
		return derr_set(e, DERR_CONFIG, "%s must be an object", where);
	cJSON_ArrayForEach(it, obj)
	{
		size_t i;
		for (i = 0; i < n; i++)
			if (!strcmp(it->string, allowed[i]))
				break;
		if (i == n)
			return derr_set(e, DERR_CONFIG, "unknown key \"%s\" in %s", it->string, where);
		for (const cJSON *o = obj->child; o != it; o = o->next)
			if (!strcmp(o->string, it->string))
				return derr_set(e, DERR_CONFIG, "key \"%s\" appears twice in %s", it->string,
						where);
	}
	return 0;
}

static int get_str(const cJSON *obj, const char *key, const char *where, int required, char **out,
		   struct derr *e)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v || cJSON_IsNull(v)) {
		if (required)
			return derr_set(e, DERR_CONFIG, "%s: \"%s\" is required", where, key);
		return 0;
	}
	if (!cJSON_IsString(v))
		return derr_set(e, DERR_CONFIG, "%s: \"%s\" must be a string", where, key);
	free(*out);
	*out = xstrdup(v->valuestring);
	return 0;
}

static int get_num(const cJSON *obj, const char *key, const char *where, double min, double max, double *out,
		   struct derr *e)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min || v->valuedouble > max)
		return derr_set(e, DERR_CONFIG, "%s: \"%s\" must be a number in [%g, %g]", where, key, min,
				max);
	*out = v->valuedouble;
	return 0;
}

static int get_int(const cJSON *obj, const char *key, const char *where, int64_t min, int64_t max,
		   int64_t *out, struct derr *e)
{
	double d = (double)*out;
	int rc = get_num(obj, key, where, (double)min, (double)max, &d, e);
	if (rc)
		return rc;
	if (d != floor(d))
		return derr_set(e, DERR_CONFIG, "%s: \"%s\" must be a whole number", where, key);
	*out = (int64_t)d;
	return 0;
}

/* A duration: "90s"-style string, or a number of seconds. */
static int get_duration(const cJSON *obj, const char *key, const char *where, int64_t *out, struct derr *e)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9) {
		*out = (int64_t)(v->valuedouble * 1000);
		return 0;
	}
	if (cJSON_IsString(v) && !duration_parse(v->valuestring, out))
		return 0;
	return derr_set(e, DERR_CONFIG, "%s: \"%s\" must be a duration such as \"90s\" or \"15m\"", where,
			key);
}

static int parse_endpoint(const cJSON *o, int i, struct tconfig_endpoint *ep, const char *default_url,
			  struct derr *e)
{
	char where[64];
	double conc = 64, rpm = 0, tpm = 0, weight = 1, pin = 0, pout = 0;
	const cJSON *stream;
	int rc;

	snprintf(where, sizeof(where), "endpoints[%d]", i);
	ep->stream = 1;
	rc = check_keys(o, endpoint_keys, ARRAY_SIZE(endpoint_keys), where, e);
	if (!rc)
		rc = get_str(o, "name", where, 0, &ep->name, e);
	if (!rc)
		rc = get_str(o, "base_url", where, default_url == NULL, &ep->base_url, e);
	if (!rc)
		rc = get_str(o, "model", where, 1, &ep->model, e);
	if (!rc)
		rc = get_str(o, "api_key_env", where, 0, &ep->api_key_env, e);
	if (!rc)
		rc = get_num(o, "max_concurrency", where, 1, 100000, &conc, e);
	if (!rc)
		rc = get_num(o, "requests_per_minute", where, 0, 1e9, &rpm, e);
	if (!rc)
		rc = get_num(o, "tokens_per_minute", where, 0, 1e12, &tpm, e);
	if (!rc)
		rc = get_num(o, "weight", where, 1e-9, 1e9, &weight, e);
	if (!rc)
		rc = get_num(o, "price_per_mtok_in", where, 0, 1e6, &pin, e);
	if (!rc)
		rc = get_num(o, "price_per_mtok_out", where, 0, 1e6, &pout, e);
	if (rc)
		return rc;
	stream = cJSON_GetObjectItemCaseSensitive(o, "stream");
	if (stream && !cJSON_IsNull(stream)) {
		if (!cJSON_IsBool(stream))
			return derr_set(e, DERR_CONFIG, "%s: \"stream\" must be true or false", where);
		ep->stream = cJSON_IsTrue(stream);
	}
	if (!ep->base_url)
		ep->base_url = xstrdup(default_url);
	if (!ep->name)
		ep->name = xstrdup(ep->model);
	if (strncmp(ep->base_url, "http://", 7) && strncmp(ep->base_url, "https://", 8))
		return derr_set(e, DERR_CONFIG, "%s: base_url must start with http:// or https://", where);
	ep->max_concurrency = (int)conc;
	ep->requests_per_minute = rpm;
	ep->tokens_per_minute = tpm;
	ep->weight = weight;
	ep->price_per_mtok_in = pin;
	ep->price_per_mtok_out = pout;
	return 0;
}

static int parse_profile(const cJSON *o, struct teacher_profile *p, const char *default_model, struct derr *e)
{
	char where[160];
	int64_t max_tokens = 32768, seed = 0;
	int rc;

	snprintf(where, sizeof(where), "profiles.%.100s", o->string);
	p->name = xstrdup(o->string);
	p->temperature = 0.6;
	p->top_p = 0.95;
	rc = check_keys(o, profile_keys, ARRAY_SIZE(profile_keys), where, e);
	if (!rc)
		rc = get_str(o, "model", where, 0, &p->model, e);
	if (!rc)
		rc = get_str(o, "system", where, 0, &p->system, e);
	if (!rc)
		rc = get_str(o, "template", where, 0, &p->template, e);
	if (!rc)
		rc = get_num(o, "temperature", where, 0, 10, &p->temperature, e);
	if (!rc)
		rc = get_num(o, "top_p", where, 0, 1, &p->top_p, e);
	if (!rc)
		rc = get_int(o, "max_tokens", where, 0, 100000000, &max_tokens, e);
	if (!rc)
		rc = get_int(o, "seed", where, 0, (int64_t)1 << 53, &seed, e);
	if (rc)
		return rc;
	if (!p->model)
		p->model = xstrdup(default_model);
	if (!p->template)
		p->template = xstrdup(TEACHER_DEFAULT_TEMPLATE);
	if (!strstr(p->template, "{prompt}"))
		return derr_set(e, DERR_CONFIG, "%s: \"template\" must contain {prompt}", where);
	p->max_tokens = max_tokens;
	p->seed = (uint64_t)seed;
	return 0;
}

static int parse_limit(const cJSON *budget, const char *key, double scale, int64_t *run, int64_t *total,
		       struct derr *e)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(budget, key);
	char where[64];
	double v;
	int rc;

	if (!o)
		return 0;
	snprintf(where, sizeof(where), "budget.%s", key);
	rc = check_keys(o, limit_keys, ARRAY_SIZE(limit_keys), where, e);
	v = -1;
	if (!rc)
		rc = get_num(o, "per_run", where, 0, 1e15, &v, e);
	if (!rc && v >= 0)
		*run = (int64_t)(v * scale);
	v = -1;
	if (!rc)
		rc = get_num(o, "total", where, 0, 1e15, &v, e);
	if (!rc && v >= 0)
		*total = (int64_t)(v * scale);
	return rc;
}

static int parse_root(const cJSON *root, const char *default_url, struct tconfig *cfg, struct derr *e)
{
	const cJSON *eps, *profs, *it, *timeouts, *budget;
	int64_t max_attempts = 5, max_bytes = 8 << 20;
	int rc, i;

	rc = check_keys(root, top_keys, ARRAY_SIZE(top_keys), "the config", e);
	if (rc)
		return rc;
	eps = cJSON_GetObjectItemCaseSensitive(root, "endpoints");
	if (!cJSON_IsArray(eps) || cJSON_GetArraySize(eps) == 0)
		return derr_set(e, DERR_CONFIG, "\"endpoints\" must be a non-empty array");
	cfg->nendpoints = cJSON_GetArraySize(eps);
	cfg->endpoints = xcalloc((size_t)cfg->nendpoints, sizeof(*cfg->endpoints));
	i = 0;
	cJSON_ArrayForEach(it, eps)
	{
		rc = parse_endpoint(it, i, &cfg->endpoints[i], default_url, e);
		if (rc)
			return rc;
		for (int k = 0; k < i; k++)
			if (!strcmp(cfg->endpoints[k].name, cfg->endpoints[i].name))
				return derr_set(e, DERR_CONFIG, "endpoints[%d]: name \"%s\" is used twice", i,
						cfg->endpoints[i].name);
		i++;
	}
	profs = cJSON_GetObjectItemCaseSensitive(root, "profiles");
	if (profs && !cJSON_IsObject(profs))
		return derr_set(e, DERR_CONFIG, "\"profiles\" must be an object of named profiles");
	cfg->nprofiles = profs ? cJSON_GetArraySize(profs) : 0;
	if (cfg->nprofiles == 0) {
		/* No profiles: one named "default" with every default. */
		cfg->nprofiles = 1;
		cfg->profiles = xcalloc(1, sizeof(*cfg->profiles));
		cJSON *empty = cJSON_CreateObject();
		empty->string = (char *)"default";
		rc = parse_profile(empty, &cfg->profiles[0], cfg->endpoints[0].model, e);
		empty->string = NULL;
		cJSON_Delete(empty);
		if (rc)
			return rc;
	} else {
		cfg->profiles = xcalloc((size_t)cfg->nprofiles, sizeof(*cfg->profiles));
		i = 0;
		cJSON_ArrayForEach(it, profs)
		{
			rc = parse_profile(it, &cfg->profiles[i++], cfg->endpoints[0].model, e);
			if (rc)
				return rc;
		}
	}
	cfg->connect_ms = 10000;
	cfg->total_ms = 20 * 60000;
	cfg->stall_ms = 120000;
	cfg->lease_ms = -1;
	cfg->grace_ms = 30000;
	timeouts = cJSON_GetObjectItemCaseSensitive(root, "timeouts");
	if (timeouts) {
		rc = check_keys(timeouts, timeout_keys, ARRAY_SIZE(timeout_keys), "timeouts", e);
		if (!rc)
			rc = get_duration(timeouts, "connect", "timeouts", &cfg->connect_ms, e);
		if (!rc)
			rc = get_duration(timeouts, "total", "timeouts", &cfg->total_ms, e);
		if (!rc)
			rc = get_duration(timeouts, "stall", "timeouts", &cfg->stall_ms, e);
		if (!rc)
			rc = get_duration(timeouts, "lease", "timeouts", &cfg->lease_ms, e);
		if (!rc)
			rc = get_duration(timeouts, "grace", "timeouts", &cfg->grace_ms, e);
		if (rc)
			return rc;
	}
	if (cfg->lease_ms < 0)
		cfg->lease_ms = cfg->total_ms + 60000;
	if (cfg->lease_ms < 300)
		return derr_set(e, DERR_CONFIG, "timeouts: \"lease\" must be at least 300ms");
	rc = get_int(root, "max_attempts", "the config", 1, 1000, &max_attempts, e);
	if (!rc)
		rc = get_int(root, "max_response_bytes", "the config", 1024, (int64_t)1 << 30, &max_bytes, e);
	if (rc)
		return rc;
	cfg->max_attempts = (int)max_attempts;
	cfg->max_response_bytes = max_bytes;
	cfg->max_tokens_run = cfg->max_tokens_total = -1;
	cfg->max_cost_run = cfg->max_cost_total = -1;
	budget = cJSON_GetObjectItemCaseSensitive(root, "budget");
	if (budget) {
		rc = check_keys(budget, budget_keys, ARRAY_SIZE(budget_keys), "budget", e);
		if (!rc)
			rc = parse_limit(budget, "max_completion_tokens", 1, &cfg->max_tokens_run,
					 &cfg->max_tokens_total, e);
		if (!rc)
			rc = parse_limit(budget, "max_cost_usd", 1e6, &cfg->max_cost_run,
					 &cfg->max_cost_total, e);
	}
	return rc;
}

int tconfig_parse(const char *text, size_t n, const char *default_url, struct tconfig *cfg, struct derr *e)
{
	cJSON *root = json_parse(text, n);
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (!root)
		return derr_set(e, DERR_CONFIG, "the teacher config is not valid JSON");
	rc = parse_root(root, default_url, cfg, e);
	cJSON_Delete(root);
	if (rc)
		tconfig_release(cfg);
	return rc;
}

int tconfig_load(const char *path, struct tconfig *cfg, struct derr *e)
{
	struct buf b = BUF_INIT(1 << 20);
	char chunk[8192];
	size_t n;
	int rc = 0;
	FILE *f = fopen(path, "rb");

	memset(cfg, 0, sizeof(*cfg));
	if (!f)
		return derr_set(e, DERR_IO, "%s: %s", path, strerror(errno));
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_append(&b, chunk, n);
	if (!rc && ferror(f))
		rc = derr_set(e, DERR_IO, "%s: read error", path);
	else if (rc)
		rc = derr_set(e, DERR_CONFIG, "%s: larger than 1 MB", path);
	fclose(f);
	if (!rc) {
		rc = tconfig_parse(buf_str(&b), b.len, NULL, cfg, e);
		if (rc)
			derr_wrap(e, "%s", path);
	}
	buf_release(&b);
	return rc;
}

int tconfig_default(const char *base_url, struct tconfig *cfg, struct derr *e)
{
	return tconfig_parse(default_config, strlen(default_config), base_url ? base_url : TCONFIG_SIM_URL,
			     cfg, e);
}

void tconfig_release(struct tconfig *cfg)
{
	for (int i = 0; cfg->endpoints && i < cfg->nendpoints; i++) {
		struct tconfig_endpoint *ep = &cfg->endpoints[i];
		free(ep->name);
		free(ep->base_url);
		free(ep->model);
		free(ep->api_key_env);
	}
	for (int i = 0; cfg->profiles && i < cfg->nprofiles; i++) {
		struct teacher_profile *p = &cfg->profiles[i];
		free(p->name);
		free(p->model);
		free(p->system);
		free(p->template);
	}
	free(cfg->endpoints);
	free(cfg->profiles);
	memset(cfg, 0, sizeof(*cfg));
}

const struct teacher_profile *tconfig_profile(const struct tconfig *cfg, const char *name)
{
	for (int i = 0; i < cfg->nprofiles; i++)
		if (!strcmp(cfg->profiles[i].name, name))
			return &cfg->profiles[i];
	return NULL;
}

/* --- binding profiles (DESIGN §13) ------------------------------------ */

static const char SQL_PROFILE_GET[] = "SELECT id, hash FROM profiles WHERE name = ?1";
static const char SQL_PROFILE_INSERT[] =
	"INSERT INTO profiles(name, hash, definition, created_at, bound_at) VALUES (?1, ?2, ?3, ?4, ?4)";
static const char SQL_PROFILE_BIND[] =
	"UPDATE profiles SET hash = ?2, definition = ?3, bound_at = ?4 WHERE id = ?1 AND hash IS NULL";

static int bind_one(struct db *db, struct db_stmt *get, struct db_stmt *ins, struct db_stmt *upd,
		    const struct teacher_profile *p, int64_t *id, struct derr *e)
{
	struct buf canon = BUF_INIT(1 << 20);
	char hash[33];
	int rc;

	teacher_profile_canonical(p, &canon);
	hash128_hex(canon.data, canon.len, hash);
	db_reset(get);
	db_bind_text(get, 1, p->name, -1);
	rc = db_step(get, e);
	if (rc == 1) {
		const char *have = db_col_text(get, 1);
		*id = db_col_int64(get, 0);
		if (have && strcmp(have, hash) != 0) {
			rc = derr_set(e, DERR_PROFILE,
				      "profile \"%s\" is already bound to another definition; profiles are "
				      "immutable: give the changed definition a new name",
				      p->name);
		} else if (!have) {
			db_reset(upd);
			db_bind_int64(upd, 1, *id);
			db_bind_text(upd, 2, hash, -1);
			db_bind_text(upd, 3, canon.data, (int)canon.len);
			db_bind_int64(upd, 4, now_ms());
			rc = db_step(upd, e);
		} else {
			rc = 0;
		}
	} else if (rc == 0) {
		db_reset(ins);
		db_bind_text(ins, 1, p->name, -1);
		db_bind_text(ins, 2, hash, -1);
		db_bind_text(ins, 3, canon.data, (int)canon.len);
		db_bind_int64(ins, 4, now_ms());
		rc = db_step(ins, e);
		*id = db_last_rowid(db);
	}
	buf_release(&canon);
	return rc < 0 ? rc : 0;
}

int tconfig_bind_profiles(struct db *db, const struct tconfig *cfg, int64_t *ids, struct derr *e)
{
	struct db_stmt *get = NULL, *ins = NULL, *upd = NULL;
	int rc = db_begin_immediate(db, e);

	if (!rc)
		rc = db_prepare(db, SQL_PROFILE_GET, &get, e);
	if (!rc)
		rc = db_prepare(db, SQL_PROFILE_INSERT, &ins, e);
	if (!rc)
		rc = db_prepare(db, SQL_PROFILE_BIND, &upd, e);
	for (int i = 0; !rc && i < cfg->nprofiles; i++)
		rc = bind_one(db, get, ins, upd, &cfg->profiles[i], &ids[i], e);
	db_finalize(get);
	db_finalize(ins);
	db_finalize(upd);
	if (!rc)
		rc = db_commit(db, e);
	if (rc)
		db_rollback(db);
	return rc;
}
