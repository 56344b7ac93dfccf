/* refresh.c - config, versions, guard, deltas and pruning for refresh (see refresh.h). */
#include "refresh.h"
#include "buf.h"
#include "db.h"
#include "hash.h"
#include "ingest.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char SQL_MAX_VERSION[] =
	"SELECT COALESCE(MAX(CAST(substr(version, 2) AS INTEGER)), 0) FROM exports WHERE version LIKE 'v%'";
static const char SQL_LAST_EXPORT[] =
	"SELECT id, version, json_extract(options, '$.fingerprint') FROM exports"
	" WHERE version IS NOT NULL AND pruned = 0 ORDER BY id DESC LIMIT 1";
static const char SQL_EXPORT_BY_VERSION[] =
	"SELECT id FROM exports WHERE version = ?1 AND pruned = 0 ORDER BY id DESC LIMIT 1";
static const char SQL_EXPORT_STATS[] =
	"SELECT samples, json_extract(options, '$.accept_rate') FROM exports WHERE id = ?1";
/* Per-source counts of two exports side by side (source = first prompt source). */
static const char SQL_SOURCE_COUNTS[] =
	"WITH s AS (SELECT ei.export_id AS e,"
	"  COALESCE((SELECT ps.source FROM prompt_sources ps WHERE ps.prompt_id = j.prompt_id"
	"   ORDER BY ps.id LIMIT 1), '') AS src"
	"  FROM export_items ei JOIN traces t ON t.id = ei.trace_id JOIN jobs j ON j.id = t.job_id"
	"  WHERE ei.export_id IN (?1, ?2))"
	" SELECT src, SUM(e = ?1), SUM(e = ?2) FROM s GROUP BY src ORDER BY src";
static const char SQL_DELTAS[] =
	"WITH a AS (SELECT trace_id FROM export_items WHERE export_id = ?1),"
	" b AS (SELECT trace_id FROM export_items WHERE export_id = ?2),"
	" d AS (SELECT trace_id, 1 AS n, 0 AS added, 0 AS removed FROM a"
	"   UNION ALL SELECT trace_id, 0, 1, 0 FROM a WHERE trace_id NOT IN (SELECT trace_id FROM b)"
	"   UNION ALL SELECT trace_id, 0, 0, 1 FROM b WHERE trace_id NOT IN (SELECT trace_id FROM a)),"
	" x AS (SELECT d.*, COALESCE((SELECT ps.source FROM prompt_sources ps JOIN jobs j"
	"   ON ps.prompt_id = j.prompt_id JOIN traces t ON t.job_id = j.id WHERE t.id = d.trace_id"
	"   ORDER BY ps.id LIMIT 1), '') AS src,"
	"  (SELECT o.accepted FROM trace_outcomes o WHERE o.trace_id = d.trace_id"
	"   AND o.ruleset_id = (SELECT id FROM rulesets WHERE is_current = 1)) AS acc FROM d)"
	" SELECT src, SUM(n), SUM(added), SUM(removed), SUM(removed AND acc = 0) FROM x"
	" GROUP BY src ORDER BY src";
static const char SQL_PRUNE_CANDIDATES[] =
	"SELECT id, version FROM exports WHERE version IS NOT NULL AND pruned = 0 ORDER BY id DESC";
static const char SQL_PRUNE_MARK[] = "UPDATE exports SET pruned = 1 WHERE id = ?1";
static const char SQL_PRUNE_ITEMS[] = "DELETE FROM export_items WHERE export_id = ?1";

/* ------------------------------------------------------------------------ */
/* Config */

enum key_type { K_PATH, K_STR, K_DURATION, K_INT, K_OBJECT, K_LIST };

struct key {
	const char *name;
	enum key_type type;
	size_t off;
};

static const struct key top_keys[] = {
	{"db", K_PATH, offsetof(struct refresh_config, db)},
	{"inbox", K_PATH, offsetof(struct refresh_config, inbox)},
	{"inbox_min_age", K_DURATION, offsetof(struct refresh_config, inbox_min_age_ms)},
	{"source", K_STR, offsetof(struct refresh_config, source)},
	{"profile", K_STR, offsetof(struct refresh_config, profile)},
	{"samples", K_INT, offsetof(struct refresh_config, samples)},
	{"teacher", K_PATH, offsetof(struct refresh_config, teacher)},
	{"rules", K_PATH, offsetof(struct refresh_config, rules)},
	{"benchmarks", K_LIST, offsetof(struct refresh_config, benchmarks)},
	{"export_root", K_PATH, offsetof(struct refresh_config, export_root)},
	{"export", K_OBJECT, 0},
	{"max_time", K_DURATION, offsetof(struct refresh_config, max_time_ms)},
	{"budget", K_OBJECT, 0},
	{"publish_guard", K_OBJECT, 0},
	{"keep_last", K_INT, offsetof(struct refresh_config, keep_last)},
	{"backup", K_PATH, offsetof(struct refresh_config, backup)},
};

/* Never truncated: a path too long for the system fails at its open with
 * ENAMETOOLONG, which names it, instead of silently becoming another path. */
static char *resolve(const char *base_dir, const char *p)
{
	size_t n = strlen(base_dir) + strlen(p) + 2;
	char *r;

	if (p[0] == '/' || !base_dir[0])
		return xstrdup(p);
	r = xmalloc(n);
	snprintf(r, n, "%s/%s", base_dir, p);
	return r;
}

/* A key given twice in one object: JSON allows it, but in a cron config it
 * is a mistake (which one wins?), so it is refused like an unknown key. */
static const char *repeated_key(const cJSON *obj)
{
	for (const cJSON *v = obj->child; v; v = v->next)
		for (const cJSON *u = obj->child; u != v; u = u->next)
			if (!strcmp(u->string, v->string))
				return v->string;
	return NULL;
}

static int num_of(const cJSON *v, double lo, double hi, double *out)
{
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
		return -1;
	*out = v->valuedouble;
	return 0;
}

static int parse_export(const cJSON *obj, const char *dir, struct refresh_config *c, struct derr *e)
{
	struct export_opts *o = &c->export;
	double d;

	for (const cJSON *v = obj->child; v; v = v->next) {
		const char *k = v->string;
		if (!strcmp(k, "val_fraction") && !num_of(v, 0, 1, &d))
			o->val_fraction = d;
		else if (!strcmp(k, "max_per_prompt") && !num_of(v, 0, 1e12, &d))
			o->max_per_prompt = (int64_t)d;
		else if (!strcmp(k, "shard_bytes") && !num_of(v, 1, 1e15, &d))
			o->shard_bytes = (int64_t)d;
		else if (!strcmp(k, "level") && !num_of(v, 1, 22, &d))
			o->level = (int)d;
		else if (!strcmp(k, "seed") && !num_of(v, 0, 9e15, &d))
			o->seed = (uint64_t)d;
		else if (!strcmp(k, "max_tokens") && !num_of(v, 0, 1e12, &d))
			o->max_tokens = (int64_t)d;
		else if (!strcmp(k, "threads") && !num_of(v, 1, 256, &d))
			o->threads = (int)d;
		else if (!strcmp(k, "include") && cJSON_IsString(v)) {
			struct derr why = {0};
			if (export_include_parse(v->valuestring, &o->include, &why))
				return derr_set(
					e, DERR_PARSE,
					"export.include: \"%.100s\": want a comma list of duplicates, "
					"contaminated, flagged",
					v->valuestring);
		} else if (!strcmp(k, "ruleset") && cJSON_IsString(v))
			c->x_ruleset = xstrdup(v->valuestring);
		else if (!strcmp(k, "domain") && cJSON_IsString(v))
			c->x_domain = xstrdup(v->valuestring);
		else if (!strcmp(k, "source") && cJSON_IsString(v))
			c->x_source = xstrdup(v->valuestring);
		else if (!strcmp(k, "profile") && cJSON_IsString(v))
			c->x_profile = xstrdup(v->valuestring);
		else if (!strcmp(k, "mix") && cJSON_IsString(v))
			c->x_mix_path = resolve(dir, v->valuestring);
		else
			return derr_set(e, DERR_PARSE, "export.%s: unknown key or bad value", k);
	}
	o->ruleset = c->x_ruleset;
	o->domain = c->x_domain;
	o->source = c->x_source;
	o->profile = c->x_profile;
	return 0;
}

static int parse_guard(const cJSON *obj, struct refresh_guard *g, struct derr *e)
{
	static const struct {
		const char *name;
		size_t off;
	} keys[] = {
		{"max_drop_pct", offsetof(struct refresh_guard, max_drop_pct)},
		{"max_source_drop_pct", offsetof(struct refresh_guard, max_source_drop_pct)},
		{"max_accept_rate_change", offsetof(struct refresh_guard, max_accept_rate_change)},
	};
	for (const cJSON *v = obj->child; v; v = v->next) {
		size_t i;
		for (i = 0; i < ARRAY_SIZE(keys); i++)
			if (!strcmp(v->string, keys[i].name))
				break;
		if (i == ARRAY_SIZE(keys) || num_of(v, 0, 100, (double *)((char *)g + keys[i].off)))
			return derr_set(e, DERR_PARSE, "publish_guard.%s: unknown key or not in 0..100",
					v->string);
	}
	return 0;
}

static int parse_budget(const cJSON *obj, struct refresh_config *c, struct derr *e)
{
	double d;
	for (const cJSON *v = obj->child; v; v = v->next) {
		if (!strcmp(v->string, "max_cost_usd") && !num_of(v, 0, 1e9, &d))
			c->budget_micro_usd = (int64_t)llround(d * 1e6);
		else if (!strcmp(v->string, "max_completion_tokens") && !num_of(v, 0, 1e15, &d))
			c->budget_completion_tokens = (int64_t)d;
		else
			return derr_set(e, DERR_PARSE, "budget.%s: unknown key or bad value", v->string);
	}
	return 0;
}

int refresh_config_parse(const char *json, size_t n, const char *config_path, struct refresh_config *c,
			 struct derr *e)
{
	cJSON *root = json_parse(json, n);
	char dir[PATH_MAX];
	const char *slash = strrchr(config_path, '/'), *dup;
	int rc = 0;

	memset(c, 0, sizeof(*c));
	export_opts_init(&c->export);
	c->profile = xstrdup("default");
	c->samples = 1;
	c->keep_last = 7;
	c->guard.max_drop_pct = 20;
	c->guard.max_source_drop_pct = 50;
	c->guard.max_accept_rate_change = 10;
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - config_path) : 0, config_path);
	if (!cJSON_IsObject(root)) {
		rc = derr_set(e, DERR_PARSE, "%s: not a JSON object", config_path);
		goto out;
	}
	if ((dup = repeated_key(root))) {
		rc = derr_set(e, DERR_PARSE, "%s: '%s' is given twice", config_path, dup);
		goto out;
	}
	for (const cJSON *v = root->child; v && !rc; v = v->next) {
		const struct key *k = NULL;
		void *field;
		for (size_t i = 0; i < ARRAY_SIZE(top_keys); i++)
			if (!strcmp(v->string, top_keys[i].name))
				k = &top_keys[i];
		if (!k) {
			rc = derr_set(e, DERR_PARSE, "%s: unknown key '%s'", config_path, v->string);
			break;
		}
		field = (char *)c + k->off;
		switch (k->type) {
		case K_PATH:
		case K_STR:
			if (!cJSON_IsString(v) || !v->valuestring[0]) {
				rc = derr_set(e, DERR_PARSE, "%s: %s: want a string", config_path, k->name);
				break;
			}
			free(*(char **)field);
			*(char **)field =
				k->type == K_PATH ? resolve(dir, v->valuestring) : xstrdup(v->valuestring);
			break;
		case K_DURATION:
			if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1e12)
				*(int64_t *)field = (int64_t)(v->valuedouble * 1000);
			else if (!cJSON_IsString(v) || duration_parse(v->valuestring, (int64_t *)field))
				rc = derr_set(e, DERR_PARSE, "%s: %s: want a duration like \"90s\", \"15m\"",
					      config_path, k->name);
			break;
		case K_INT:
			if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e12 ||
			    v->valuedouble != floor(v->valuedouble))
				rc = derr_set(e, DERR_PARSE, "%s: %s: want a whole number >= 0", config_path,
					      k->name);
			else
				*(int64_t *)field = (int64_t)v->valuedouble;
			break;
		case K_LIST:
			if (cJSON_IsString(v)) {
				c->benchmarks = xcalloc(1, sizeof(char *));
				c->benchmarks[c->nbenchmarks++] = resolve(dir, v->valuestring);
			} else if (cJSON_IsArray(v)) {
				const cJSON *it;
				c->benchmarks = xcalloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(char *));
				cJSON_ArrayForEach(it, v)
				{
					if (!cJSON_IsString(it)) {
						rc = derr_set(e, DERR_PARSE,
							      "%s: benchmarks: want file names", config_path);
						break;
					}
					c->benchmarks[c->nbenchmarks++] = resolve(dir, it->valuestring);
				}
			} else {
				rc = derr_set(e, DERR_PARSE, "%s: benchmarks: want a list of files",
					      config_path);
			}
			break;
		case K_OBJECT:
			if (!cJSON_IsObject(v)) {
				rc = derr_set(e, DERR_PARSE, "%s: %s: want an object", config_path, k->name);
				break;
			}
			if ((dup = repeated_key(v)))
				rc = derr_set(e, DERR_PARSE, "%s.%s: given twice", k->name, dup);
			else if (!strcmp(k->name, "export"))
				rc = parse_export(v, dir, c, e);
			else if (!strcmp(k->name, "budget"))
				rc = parse_budget(v, c, e);
			else
				rc = parse_guard(v, &c->guard, e);
			if (rc)
				derr_wrap(e, "%s", config_path);
			break;
		}
	}
	if (!rc && !c->export_root)
		rc = derr_set(e, DERR_PARSE, "%s: export_root is required", config_path);
out:
	cJSON_Delete(root);
	if (rc)
		refresh_config_release(c);
	return rc;
}

void refresh_config_release(struct refresh_config *c)
{
	char **strs[] = {&c->db,	&c->inbox,	 &c->source,	&c->profile,  &c->teacher,
			 &c->rules,	&c->export_root, &c->x_ruleset, &c->x_domain, &c->x_source,
			 &c->x_profile, &c->x_mix_path,	 &c->backup};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	refresh_files_free(c->benchmarks, c->nbenchmarks);
	c->benchmarks = NULL;
	c->nbenchmarks = 0;
}

/* ------------------------------------------------------------------------ */
/* Directories */

int refresh_clean_stale(const char *dir, int *removed, struct derr *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	*removed = 0;
	if (!d)
		return errno == ENOENT ? 0 : derr_set(e, DERR_IO, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		if (!strstr(de->d_name, ".tmp-"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (export_rmtree(path) != 0) {
			rc = derr_set(e, DERR_IO, "%s: cannot remove stale temp entry", path);
			break;
		}
		log_info("refresh: removed stale %s (left by a killed run)", path);
		(*removed)++;
	}
	closedir(d);
	return rc;
}

void refresh_files_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

int refresh_inbox_scan(struct db *db, const char *inbox, int64_t min_age_ms, int64_t now, char ***paths,
		       char ***shas, int *n, struct derr *e)
{
	DIR *d = opendir(inbox);
	struct dirent *de;
	char **names = NULL;
	int nn = 0, cap = 0, rc = 0;

	*paths = *shas = NULL;
	*n = 0;
	if (!d)
		return derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "inbox %s: %s", inbox,
				strerror(errno));
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat sb;
		if (de->d_name[0] == '.' ||
		    (!ends_with(de->d_name, ".jsonl") && !ends_with(de->d_name, ".jsonl.zst")))
			continue;
		snprintf(path, sizeof(path), "%s/%s", inbox, de->d_name);
		/* Only regular files that stopped changing: the README says write, then mv. */
		if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if ((int64_t)sb.st_mtime * 1000 + sb.st_mtim.tv_nsec / 1000000 > now - min_age_ms)
			continue;
		if (nn == cap) {
			cap = cap ? 2 * cap : 16;
			names = xrealloc(names, (size_t)cap * sizeof(*names));
		}
		names[nn++] = xstrdup(path);
	}
	closedir(d);
	if (nn)
		qsort(names, (size_t)nn, sizeof(*names), name_cmp);
	*paths = xcalloc((size_t)nn + 1, sizeof(char *));
	*shas = xcalloc((size_t)nn + 1, sizeof(char *));
	for (int i = 0; i < nn; i++) {
		char hex[65];
		struct derr fe = {0};
		int known = 0;
		if (ingest_file_sha256(names[i], hex, &fe)) {
			log_warn("refresh: %s: %s; skipped", names[i], fe.msg);
			continue;
		}
		if ((rc = ingest_file_known(db, hex, &known, e)))
			goto out;
		if (known)
			continue; /* already ingested, by content */
		(*paths)[*n] = xstrdup(names[i]);
		(*shas)[*n] = xstrdup(hex);
		(*n)++;
	}
out:
	refresh_files_free(names, nn);
	if (rc) {
		refresh_files_free(*paths, *n);
		refresh_files_free(*shas, *n);
		*paths = *shas = NULL;
		*n = 0;
	}
	return rc;
}

int refresh_next_version(struct db *db, const char *root, char out[16], struct derr *e)
{
	int64_t max = 0;
	DIR *d;
	struct dirent *de;
	int rc = db_query_int64(db, SQL_MAX_VERSION, &max, e);

	if (rc)
		return rc;
	if ((d = opendir(root))) {
		while ((de = readdir(d))) {
			int64_t v;
			if (de->d_name[0] == 'v' && strlen(de->d_name) <= 10 &&
			    !parse_int64(de->d_name + 1, 0, 999999999, &v) && v > max)
				max = v;
		}
		closedir(d);
	}
	snprintf(out, 16, "v%04d", (int)((max + 1) % 1000000000));
	return 0;
}

void refresh_latest(const char *root, char out[64])
{
	char path[PATH_MAX];
	ssize_t n;
	snprintf(path, sizeof(path), "%s/latest", root);
	n = readlink(path, out, 63);
	out[n > 0 ? n : 0] = '\0';
	if (strchr(out, '/')) /* we only ever write a bare version name */
		out[0] = '\0';
}

int refresh_publish(const char *root, const char *version, struct derr *e)
{
	char tmp[PATH_MAX], latest[PATH_MAX];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/latest.tmp-%ld", root, (long)getpid());
	snprintf(latest, sizeof(latest), "%s/latest", root);
	unlink(tmp);
	if (symlink(version, tmp) != 0)
		return derr_set(e, DERR_IO, "%s: %s", tmp, strerror(errno));
	if (rename(tmp, latest) != 0) {
		int err = errno;
		unlink(tmp);
		return derr_set(e, DERR_IO, "%s: %s", latest, strerror(err));
	}
	if ((fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		if (fsync(fd) != 0)
			log_warn("refresh: fsync %s: %s", root, strerror(errno));
		close(fd);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Versions in the database */

int refresh_last_export(struct db *db, int64_t *id, char version[16], char fingerprint[65], struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_LAST_EXPORT, &st, e);

	*id = 0;
	version[0] = fingerprint[0] = '\0';
	if (rc)
		return rc;
	rc = db_step(st, e);
	if (rc == 1) {
		*id = db_col_int64(st, 0);
		snprintf(version, 16, "%s", db_col_text(st, 1) ? db_col_text(st, 1) : "");
		snprintf(fingerprint, 65, "%s", db_col_text(st, 2) ? db_col_text(st, 2) : "");
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

int refresh_export_by_version(struct db *db, const char *version, int64_t *id, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_EXPORT_BY_VERSION, &st, e);

	*id = 0;
	if (rc)
		return rc;
	db_bind_text(st, 1, version, -1);
	rc = db_step(st, e);
	if (rc == 1) {
		*id = db_col_int64(st, 0);
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

static int export_stats(struct db *db, int64_t id, int64_t *samples, double *rate, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_EXPORT_STATS, &st, e);

	*samples = 0;
	*rate = -1;
	if (rc)
		return rc;
	db_bind_int64(st, 1, id);
	rc = db_step(st, e);
	if (rc == 1) {
		*samples = db_col_int64(st, 0);
		if (!db_col_isnull(st, 1))
			*rate = db_col_double(st, 1);
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

int refresh_guard_check(struct db *db, int64_t new_id, int64_t old_id, const struct refresh_guard *g,
			struct derr *e)
{
	struct db_stmt *st = NULL;
	int64_t n_new, n_old;
	double r_new, r_old;
	int rc;

	if (!old_id)
		return 0; /* nothing published yet: nothing to compare with */
	if ((rc = export_stats(db, new_id, &n_new, &r_new, e)) ||
	    (rc = export_stats(db, old_id, &n_old, &r_old, e)))
		return rc;
	if (n_old > 0 && 100.0 * (double)(n_old - n_new) / (double)n_old > g->max_drop_pct)
		return derr_set(e, DERR_WITHHELD, "exported samples fell from %lld to %lld (more than %g%%)",
				(long long)n_old, (long long)n_new, g->max_drop_pct);
	if (r_new >= 0 && r_old >= 0 && fabs(r_new - r_old) * 100.0 > g->max_accept_rate_change)
		return derr_set(e, DERR_WITHHELD,
				"accept rate moved from %.1f%% to %.1f%% (more than %g points)", 100 * r_old,
				100 * r_new, g->max_accept_rate_change);
	if ((rc = db_prepare(db, SQL_SOURCE_COUNTS, &st, e)))
		return rc;
	db_bind_int64(st, 1, new_id);
	db_bind_int64(st, 2, old_id);
	while ((rc = db_step(st, e)) == 1) {
		int64_t a = db_col_int64(st, 1), b = db_col_int64(st, 2);
		if (b > 0 && 100.0 * (double)(b - a) / (double)b > g->max_source_drop_pct) {
			rc = derr_set(e, DERR_WITHHELD,
				      "source '%s' fell from %lld to %lld samples (more than %g%%)",
				      db_col_text(st, 0), (long long)b, (long long)a, g->max_source_drop_pct);
			break;
		}
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int refresh_deltas(struct db *db, int64_t new_id, int64_t old_id, struct buf *out, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_DELTAS, &st, e), first = 1;

	if (rc)
		return rc;
	db_bind_int64(st, 1, new_id);
	db_bind_int64(st, 2, old_id);
	buf_putc(out, '[');
	while ((rc = db_step(st, e)) == 1) {
		const char *src = db_col_text(st, 0);
		buf_puts(out, first ? "{\"source\": " : ", {\"source\": ");
		json_append_str(out, src ? src : "", src ? strlen(src) : 0);
		buf_printf(
			out,
			", \"samples\": %lld, \"added\": %lld, \"removed\": %lld, \"verdict_changed\": %lld}",
			(long long)db_col_int64(st, 1), (long long)db_col_int64(st, 2),
			(long long)db_col_int64(st, 3), (long long)db_col_int64(st, 4));
		first = 0;
	}
	buf_putc(out, ']');
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int refresh_prune(struct db *db, const char *root, int64_t keep_last, const char *keep_version,
		  struct buf *out, int *npruned, struct derr *e)
{
	struct db_stmt *st = NULL, *mark = NULL, *items = NULL;
	int64_t seen = 0;
	int rc, first = 1;

	*npruned = 0;
	buf_putc(out, '[');
	if ((rc = db_prepare(db, SQL_PRUNE_CANDIDATES, &st, e)) ||
	    (rc = db_prepare(db, SQL_PRUNE_MARK, &mark, e)) ||
	    (rc = db_prepare(db, SQL_PRUNE_ITEMS, &items, e)))
		goto out;
	if ((rc = db_begin_immediate(db, e)))
		goto out;
	while ((rc = db_step(st, e)) == 1) {
		const char *v = db_col_text(st, 1);
		char path[PATH_MAX];
		int64_t num;
		if (seen++ < keep_last || !v || (keep_version && !strcmp(v, keep_version)))
			continue;
		/* Only ever delete root/vNNNN: never a path taken from the row. */
		if (v[0] != 'v' || parse_int64(v + 1, 0, 999999999, &num))
			continue;
		snprintf(path, sizeof(path), "%s/%s", root, v);
		if (export_rmtree(path) != 0) {
			log_warn("refresh: prune: cannot remove %s", path);
			continue;
		}
		db_reset(mark);
		db_bind_int64(mark, 1, db_col_int64(st, 0));
		db_reset(items);
		db_bind_int64(items, 1, db_col_int64(st, 0));
		if ((rc = db_step(mark, e)) < 0 || (rc = db_step(items, e)) < 0)
			break;
		buf_printf(out, "%s\"%s\"", first ? "" : ", ", v);
		first = 0;
		(*npruned)++;
	}
	if (rc < 0)
		db_rollback(db);
	else
		rc = db_commit(db, e);
out:
	buf_putc(out, ']');
	db_finalize(st);
	db_finalize(mark);
	db_finalize(items);
	return rc;
}
