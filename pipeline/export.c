/* export.c - accepted traces -> zstd shards + manifest (see export.h). */
#include "export.h"
#include "buf.h"
#include "db.h"
#include "hash.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "zst.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LINE_MAX_BYTES ((size_t)256 << 20) /* one JSON line */
#define CHUNK_BYTES ((size_t)1 << 20)	   /* builder -> compressor hand-off unit */
#define QUEUE_CHUNKS 4			   /* chunks waiting per shard */
#define MANIFEST_MAX ((size_t)64 << 20)
#define VERIFY_MAX_TOTAL (1ULL << 46) /* decompressed bytes per shard */
#define EXPORT_MAX_THREADS 64

/* CPU milliseconds of the whole process so far, for the debug log. */
static long long cpu_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return -1;
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------ */
/* SQL */

static const char SQL_RULESET_CURRENT[] = "SELECT id, hash FROM rulesets WHERE is_current = 1";
static const char SQL_RULESET_BY_HASH[] = "SELECT id, hash FROM rulesets WHERE hash = ?1";
static const char SQL_ACCEPT_RATE[] =
	"SELECT COUNT(*), COALESCE(SUM(accepted), 0) FROM trace_outcomes WHERE ruleset_id = ?1";

/* Candidates in (prompt, profile, sample) order, so --max-per-prompt can
 * count per prompt while streaming.  Clusters keep their earliest accepted
 * member (DESIGN §13 "Dedup"). */
static const char SQL_CANDIDATES[] =
	"SELECT t.id, j.prompt_id, p.hash, COALESCE(pr.hash, pr.name), j.sample_index, p.domain,"
	" (SELECT ps.source FROM prompt_sources ps WHERE ps.prompt_id = p.id ORDER BY ps.id LIMIT 1),"
	" j.profile_id"
	" FROM jobs j"
	" CROSS JOIN traces t ON t.job_id = j.id"
	" JOIN trace_outcomes o ON o.trace_id = t.id AND o.ruleset_id = :rs"
	" JOIN prompts p ON p.id = j.prompt_id"
	" JOIN profiles pr ON pr.id = j.profile_id"
	" WHERE o.accepted = 1"
	" AND (:flagged OR o.flagged = 0)"
	" AND (:contam OR NOT EXISTS (SELECT 1 FROM contamination c WHERE c.prompt_id = p.id))"
	" AND (:dups OR NOT EXISTS (SELECT 1 FROM dup_members d"
	"   JOIN dup_members d2 ON d2.kind = 'trace' AND d2.cluster_id = d.cluster_id AND d2.rank < d.rank"
	"   JOIN trace_outcomes o2 ON o2.trace_id = d2.member_id AND o2.ruleset_id = :rs AND o2.accepted = 1"
	"   WHERE d.kind = 'trace' AND d.member_id = t.id))"
	/* CROSS JOIN pins the order: from this prompt's cluster outwards. */
	" AND (:dups OR NOT EXISTS (SELECT 1 FROM dup_members d CROSS JOIN dup_members d2"
	"   CROSS JOIN jobs j2 CROSS JOIN traces t2 CROSS JOIN trace_outcomes o2"
	"   WHERE d.kind = 'prompt' AND d.member_id = p.id AND d2.kind = 'prompt'"
	"   AND d2.cluster_id = d.cluster_id AND d2.rank < d.rank AND j2.prompt_id = d2.member_id"
	"   AND t2.job_id = j2.id AND o2.trace_id = t2.id AND o2.ruleset_id = :rs AND o2.accepted = 1))"
	" AND (:domain IS NULL OR p.domain = :domain)"
	" AND (:source IS NULL OR EXISTS (SELECT 1 FROM prompt_sources ps2"
	"   WHERE ps2.prompt_id = p.id AND ps2.source = :source))"
	" AND (:profile IS NULL OR pr.name = :profile)"
	/* CASE, not OR: completion_tokens sits after the long text columns, and
	 * reading it walks their overflow pages; only pay that when asked. */
	" AND CASE WHEN :maxtok IS NULL THEN 1 ELSE t.completion_tokens <= :maxtok END"
	" ORDER BY j.prompt_id, j.profile_id, j.sample_index";

/* One line's texts: two rowid lookups.  The plan already holds the rest
 * (prompt, profile, source), so the job and the prompt's sources are not
 * visited again per line. */
static const char SQL_FETCH[] = "SELECT p.hash, p.text, p.reference, t.reasoning, t.answer, t.model, p.domain"
				" FROM traces t CROSS JOIN prompts p WHERE t.id = ?1 AND p.id = ?2";

static const char SQL_PROFILE[] = "SELECT name, COALESCE(hash, name), definition FROM profiles WHERE id = ?1";

static const char SQL_INSERT_EXPORT[] =
	"INSERT INTO exports (version, outdir, ruleset_hash, options, samples, manifest_sha256, created_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_INSERT_ITEM[] =
	"INSERT INTO export_items (export_id, trace_id, shard, line, split) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_UPDATE_OUTDIR[] = "UPDATE exports SET outdir = ?2 WHERE id = ?1";
static const char SQL_FK_OFF[] = "PRAGMA foreign_keys = OFF";
static const char SQL_FK_ON[] = "PRAGMA foreign_keys = ON";

/* ------------------------------------------------------------------------ */
/* Options */

void export_opts_init(struct export_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->shard_bytes = (int64_t)256 << 20;
	o->level = 3;
}

static const struct {
	const char *name;
	unsigned flag;
} include_names[] = {
	{"duplicates", EXPORT_INCLUDE_DUPLICATES},
	{"contaminated", EXPORT_INCLUDE_CONTAMINATED},
	{"flagged", EXPORT_INCLUDE_FLAGGED},
};

int export_include_parse(const char *s, unsigned *flags, struct derr *e)
{
	*flags = 0;
	while (s && *s) {
		size_t n = strcspn(s, ",");
		size_t i;
		for (i = 0; i < ARRAY_SIZE(include_names); i++)
			if (strlen(include_names[i].name) == n && !strncmp(s, include_names[i].name, n))
				break;
		if (i == ARRAY_SIZE(include_names))
			return derr_set(e, DERR_INVALID,
					"--include: unknown '%.*s' (duplicates, contaminated, flagged)",
					(int)n, s);
		*flags |= include_names[i].flag;
		s += n;
		if (*s == ',')
			s++;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* String interning: domains and sources for --mix quotas, and each item's
 * source name, looked up once in the plan instead of once per line. */

struct intern {
	char **names;
	int64_t *quota; /* -1: unlimited */
	int64_t *used;
	int32_t *slot; /* open addressing over names: index, or -1 empty */
	size_t nslot;  /* a power of two, at least twice n */
	int n, cap;
};

static size_t intern_home(const struct intern *t, const char *s)
{
	return (size_t)hash64(s, strlen(s), 0) & (t->nslot - 1);
}

static int intern_find(struct intern *t, const char *s)
{
	if (!t->nslot)
		return -1;
	for (size_t h = intern_home(t, s);; h = (h + 1) & (t->nslot - 1)) {
		int32_t i = t->slot[h];
		if (i < 0 || !strcmp(t->names[i], s))
			return i;
	}
}

static void intern_rehash(struct intern *t)
{
	t->nslot = t->nslot ? 2 * t->nslot : 64;
	t->slot = xrealloc(t->slot, t->nslot * sizeof(*t->slot));
	memset(t->slot, 0xff, t->nslot * sizeof(*t->slot));
	for (int i = 0; i < t->n; i++) {
		size_t h = intern_home(t, t->names[i]);
		while (t->slot[h] >= 0)
			h = (h + 1) & (t->nslot - 1);
		t->slot[h] = i;
	}
}

static int intern_add(struct intern *t, const char *s, int64_t quota)
{
	int i = intern_find(t, s);
	size_t h;
	if (i >= 0)
		return i;
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 16;
		t->names = xrealloc(t->names, (size_t)t->cap * sizeof(*t->names));
		t->quota = xrealloc(t->quota, (size_t)t->cap * sizeof(*t->quota));
		t->used = xrealloc(t->used, (size_t)t->cap * sizeof(*t->used));
	}
	t->names[t->n] = xstrdup(s);
	t->quota[t->n] = quota;
	t->used[t->n] = 0;
	i = t->n++;
	if (2 * (size_t)t->n > t->nslot) {
		intern_rehash(t); /* places the new name too */
		return i;
	}
	for (h = intern_home(t, s); t->slot[h] >= 0; h = (h + 1) & (t->nslot - 1))
		;
	t->slot[h] = i;
	return i;
}

static void intern_release(struct intern *t)
{
	for (int i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	free(t->quota);
	free(t->used);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------------ */
/* The plan */

struct plan_item {
	int64_t trace_id;
	uint64_t line_id; /* H(prompt hash, profile hash, sample index) */
	uint64_t key;	  /* seeded shuffle key */
	uint32_t shard;	  /* index within its split, set while writing */
	uint32_t line;	  /* 0-based line within the shard */
	int64_t profile_id;
	int64_t prompt_id;
	int32_t domain; /* intern indexes (quotas), -1 unknown */
	int32_t source;
	int32_t source_name; /* index in the plan's source names, -1: none */
	uint8_t split;	     /* 0 train, 1 val */
};

struct export_plan {
	struct export_opts o;
	char *mix_json;
	char ruleset_hash[80];
	int64_t ruleset_id;
	struct plan_item *items;
	size_t n, cap;
	int64_t train, val;
	double accept_rate;
	char fingerprint[65];
	struct buf options; /* canonical options JSON (manifest, exports.options) */
	/* --mix quotas: "*" is the default for names not listed. */
	struct intern domains, sources;
	int64_t domain_default, source_default;
	struct intern source_names; /* the first source of each item's prompt */
};

int64_t export_plan_samples(const struct export_plan *p)
{
	return (int64_t)p->n;
}
int64_t export_plan_train(const struct export_plan *p)
{
	return p->train;
}
int64_t export_plan_val(const struct export_plan *p)
{
	return p->val;
}
const char *export_plan_ruleset(const struct export_plan *p)
{
	return p->ruleset_hash;
}
const char *export_plan_fingerprint(const struct export_plan *p)
{
	return p->fingerprint;
}
double export_plan_accept_rate(const struct export_plan *p)
{
	return p->accept_rate;
}

void export_plan_free(struct export_plan *p)
{
	if (!p)
		return;
	free(p->items);
	free(p->mix_json);
	buf_release(&p->options);
	intern_release(&p->domains);
	intern_release(&p->sources);
	intern_release(&p->source_names);
	free(p);
}

static uint64_t line_id_of(const char *prompt_hash, const char *profile_hash, int64_t sample)
{
	uint64_t h = hash64(prompt_hash, strlen(prompt_hash), 0);
	h = hash_mix64(h, hash64(profile_hash, strlen(profile_hash), 0));
	return hash_mix64(h, (uint64_t)sample);
}

static int split_of(const char *prompt_hash, double fraction)
{
	uint64_t h;
	if (fraction <= 0)
		return 0;
	if (fraction >= 1)
		return 1;
	h = hash_mix64(hash64(prompt_hash, strlen(prompt_hash), 0),
		       hash64(EXPORT_SPLIT_SALT, sizeof(EXPORT_SPLIT_SALT) - 1, 0));
	return (double)h < fraction * 18446744073709551616.0;
}

static int item_cmp(const void *a, const void *b)
{
	const struct plan_item *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->trace_id < y->trace_id ? -1 : x->trace_id > y->trace_id;
}

/* Load {"domain": {...}, "source": {...}} quotas; "*" sets the default. */
static int mix_load(struct export_plan *p, struct derr *e)
{
	static const char *kinds[] = {"domain", "source"};
	cJSON *root = json_parse(p->mix_json, strlen(p->mix_json));
	int rc = 0;

	p->domain_default = p->source_default = -1;
	if (!cJSON_IsObject(root)) {
		rc = derr_set(e, DERR_PARSE, "--mix: not a JSON object");
		goto out;
	}
	for (const cJSON *k = root->child; k; k = k->next)
		if (strcmp(k->string, "domain") && strcmp(k->string, "source")) {
			rc = derr_set(e, DERR_PARSE, "--mix: unknown key '%s' (domain, source)", k->string);
			goto out;
		}
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, kinds[i]);
		struct intern *t = i ? &p->sources : &p->domains;
		if (!obj)
			continue;
		if (!cJSON_IsObject(obj)) {
			rc = derr_set(e, DERR_PARSE, "--mix: '%s' must be an object of quotas", kinds[i]);
			goto out;
		}
		for (const cJSON *q = obj->child; q; q = q->next) {
			if (!cJSON_IsNumber(q) || q->valuedouble < 0 || q->valuedouble > 1e15 ||
			    q->valuedouble != (double)(int64_t)q->valuedouble) {
				rc = derr_set(e, DERR_PARSE,
					      "--mix: %s '%s': quota must be a whole number >= 0", kinds[i],
					      q->string);
				goto out;
			}
			if (!strcmp(q->string, "*")) {
				if (i)
					p->source_default = (int64_t)q->valuedouble;
				else
					p->domain_default = (int64_t)q->valuedouble;
			} else {
				intern_add(t, q->string, (int64_t)q->valuedouble);
			}
		}
	}
out:
	cJSON_Delete(root);
	return rc;
}

static void opts_json(struct export_plan *p)
{
	const struct export_opts *o = &p->o;
	struct buf *b = &p->options;
	char num[64];
	int first = 1;

	buf_printf(b, "{\"ruleset\": ");
	json_append_str(b, p->ruleset_hash, strlen(p->ruleset_hash));
	json_num_str(o->val_fraction, num, sizeof(num));
	buf_printf(b,
		   ", \"max_per_prompt\": %lld, \"val_fraction\": %s, \"shard_bytes\": %lld, \"level\": %d",
		   (long long)o->max_per_prompt, num, (long long)o->shard_bytes, o->level);
	buf_printf(b, ", \"seed\": %llu, \"include\": [", (unsigned long long)o->seed);
	for (size_t i = 0; i < ARRAY_SIZE(include_names); i++)
		if (o->include & include_names[i].flag) {
			buf_printf(b, "%s\"%s\"", first ? "" : ", ", include_names[i].name);
			first = 0;
		}
	buf_puts(b, "]");
	{
		const char *sel[][2] = {
			{"domain", o->domain}, {"source", o->source}, {"profile", o->profile}};
		for (size_t i = 0; i < ARRAY_SIZE(sel); i++) {
			buf_printf(b, ", \"%s\": ", sel[i][0]);
			if (sel[i][1])
				json_append_str(b, sel[i][1], strlen(sel[i][1]));
			else
				buf_puts(b, "null");
		}
	}
	buf_printf(b, ", \"max_tokens\": %lld, \"mix\": ", (long long)o->max_tokens);
	if (p->mix_json) {
		cJSON *m = json_parse(p->mix_json, strlen(p->mix_json));
		char *s = m ? cJSON_PrintUnformatted(m) : NULL;
		buf_puts(b, s ? s : "null");
		free(s);
		cJSON_Delete(m);
	} else {
		buf_puts(b, "null");
	}
	buf_printf(b, ", \"split_salt\": \"%s\"}", EXPORT_SPLIT_SALT);
}

static int find_ruleset(struct db *db, struct export_plan *p, const char *want, struct derr *e)
{
	int cur = !want || !strcmp(want, "current");
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, cur ? SQL_RULESET_CURRENT : SQL_RULESET_BY_HASH, &st, e);

	if (rc)
		return rc;
	if (!cur)
		db_bind_text(st, 1, want, -1);
	rc = db_step(st, e);
	if (rc == 0)
		rc = cur ? derr_set(e, DERR_NOTFOUND, "no current rule set: run `distill filter` first")
			 : derr_set(e, DERR_NOTFOUND, "no rule set with hash '%s'", want);
	else if (rc == 1) {
		p->ruleset_id = db_col_int64(st, 0);
		snprintf(p->ruleset_hash, sizeof(p->ruleset_hash), "%s", db_col_text(st, 1));
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

static int load_accept_rate(struct db *db, struct export_plan *p, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_ACCEPT_RATE, &st, e);
	if (rc)
		return rc;
	db_bind_int64(st, 1, p->ruleset_id);
	rc = db_step(st, e);
	if (rc == 1) {
		int64_t judged = db_col_int64(st, 0), acc = db_col_int64(st, 1);
		p->accept_rate = judged ? (double)acc / (double)judged : -1;
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

static void bind_named_text(struct db_stmt *st, const char *name, const char *v)
{
	int i = db_param_index(st, name);
	if (i)
		db_bind_text(st, i, v, -1);
}

static void bind_named_int(struct db_stmt *st, const char *name, int64_t v)
{
	int i = db_param_index(st, name);
	if (i)
		db_bind_int64(st, i, v);
}

static int quota_take(struct intern *t, int64_t dflt, const char *name, int32_t *idx)
{
	int i = intern_find(t, name);
	if (i < 0)
		i = intern_add(t, name, dflt);
	*idx = i;
	return 0;
}

int export_plan_new(struct db *db, const struct export_opts *o, struct export_plan **out, struct derr *e)
{
	struct export_plan *p = xcalloc(1, sizeof(*p));
	struct db_stmt *st = NULL;
	int64_t cur_prompt = -1, kept_for_prompt = 0;
	struct sha256 fp;
	int64_t t0 = mono_ns();
	int rc;

	*out = NULL;
	p->o = *o;
	buf_init(&p->options, 1 << 20);
	if (o->val_fraction < 0 || o->val_fraction > 1 || o->val_fraction != o->val_fraction) {
		rc = derr_set(e, DERR_INVALID, "--val-fraction must be in [0, 1]");
		goto fail;
	}
	if (o->shard_bytes < 1 || o->level < 1 || o->level > 22 || o->max_per_prompt < 0 ||
	    o->max_tokens < 0) {
		rc = derr_set(e, DERR_INVALID, "bad export option (shard bytes >= 1, level 1..22)");
		goto fail;
	}
	p->domain_default = p->source_default = -1;
	if (o->mix_json) {
		p->mix_json = xstrdup(o->mix_json);
		if ((rc = mix_load(p, e)))
			goto fail;
	}
	p->o.mix_json = p->mix_json;
	p->o.ruleset = NULL;
	p->o.domain = p->o.source = p->o.profile = NULL; /* not kept: the caller owns them */
	if ((rc = find_ruleset(db, p, o->ruleset, e)) || (rc = load_accept_rate(db, p, e)))
		goto fail;
	p->o.domain = o->domain, p->o.source = o->source, p->o.profile = o->profile;
	opts_json(p);
	p->o.domain = p->o.source = p->o.profile = NULL;

	if ((rc = db_prepare(db, SQL_CANDIDATES, &st, e)))
		goto fail;
	bind_named_int(st, ":rs", p->ruleset_id);
	bind_named_int(st, ":flagged", !!(o->include & EXPORT_INCLUDE_FLAGGED));
	bind_named_int(st, ":contam", !!(o->include & EXPORT_INCLUDE_CONTAMINATED));
	bind_named_int(st, ":dups", !!(o->include & EXPORT_INCLUDE_DUPLICATES));
	bind_named_text(st, ":domain", o->domain);
	bind_named_text(st, ":source", o->source);
	bind_named_text(st, ":profile", o->profile);
	if (o->max_tokens)
		bind_named_int(st, ":maxtok", o->max_tokens);

	while ((rc = db_step(st, e)) == 1) {
		struct plan_item it = {0};
		int64_t prompt_id = db_col_int64(st, 1);
		const char *phash = db_col_text(st, 2), *prof = db_col_text(st, 3);
		const char *dom = db_col_text(st, 5), *src = db_col_text(st, 6);

		if (prompt_id != cur_prompt) {
			cur_prompt = prompt_id;
			kept_for_prompt = 0;
		}
		if (o->max_per_prompt && kept_for_prompt >= o->max_per_prompt)
			continue;
		kept_for_prompt++;
		it.trace_id = db_col_int64(st, 0);
		it.prompt_id = prompt_id;
		it.profile_id = db_col_int64(st, 7);
		it.source_name = src ? intern_add(&p->source_names, src, -1) : -1;
		it.line_id = line_id_of(phash ? phash : "", prof ? prof : "", db_col_int64(st, 4));
		it.key = hash_mix64(it.line_id, o->seed);
		it.split = (uint8_t)split_of(phash ? phash : "", o->val_fraction);
		it.domain = it.source = -1;
		if (p->mix_json) {
			quota_take(&p->domains, p->domain_default, dom ? dom : "", &it.domain);
			quota_take(&p->sources, p->source_default, src ? src : "", &it.source);
		}
		if (p->n == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 1024;
			p->items = xrealloc(p->items, p->cap * sizeof(*p->items));
		}
		p->items[p->n++] = it;
	}
	db_finalize(st);
	st = NULL;
	if (rc < 0)
		goto fail;

	if (p->n)
		qsort(p->items, p->n, sizeof(*p->items), item_cmp);
	if (p->mix_json) { /* quotas take the first items in shuffled order */
		size_t k = 0;
		for (size_t i = 0; i < p->n; i++) {
			struct plan_item *it = &p->items[i];
			int64_t dq = p->domains.quota[it->domain], sq = p->sources.quota[it->source];
			if ((dq >= 0 && p->domains.used[it->domain] >= dq) ||
			    (sq >= 0 && p->sources.used[it->source] >= sq))
				continue;
			p->domains.used[it->domain]++;
			p->sources.used[it->source]++;
			p->items[k++] = *it;
		}
		p->n = k;
	}
	sha256_init(&fp);
	{
		char v[32];
		int n = snprintf(v, sizeof(v), "format %d\n", EXPORT_FORMAT_VERSION);
		sha256_update(&fp, v, (size_t)n);
	}
	sha256_update(&fp, p->options.data, p->options.len);
	for (size_t i = 0; i < p->n; i++) {
		const struct plan_item *it = &p->items[i];
		uint8_t rec[17];
		for (int b = 0; b < 8; b++) {
			rec[b] = (uint8_t)(it->line_id >> (8 * b));
			rec[8 + b] = (uint8_t)((uint64_t)it->trace_id >> (8 * b));
		}
		rec[16] = it->split;
		sha256_update(&fp, rec, sizeof(rec));
		if (it->split)
			p->val++;
		else
			p->train++;
	}
	sha256_final_hex(&fp, p->fingerprint);
	log_debug("export: planned %zu samples in %lldms (process CPU %lldms)", p->n,
		  (long long)((mono_ns() - t0) / 1000000), cpu_ms());
	*out = p;
	return 0;
fail:
	db_finalize(st);
	export_plan_free(p);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Lines */

struct profile_info {
	int64_t id;
	char *name, *hash, *model, *system, *template;
	int used;
};

struct profiles {
	struct profile_info *v;
	int n;
};

static char *json_dup_str(const cJSON *obj, const char *const *keys, size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i++) {
		const char *s = json_get_str(obj, keys[i]);
		if (s)
			return xstrdup(s);
	}
	return NULL;
}

static int profile_get(struct db *db, struct profiles *ps, int64_t id, struct profile_info **out,
		       struct derr *e)
{
	static const char *const system_keys[] = {"system", "system_prompt"};
	static const char *const template_keys[] = {"template", "user_template", "prompt_template"};
	static const char *const model_keys[] = {"model"};
	struct profile_info *pi;
	struct db_stmt *st = NULL;
	int rc;

	for (int i = 0; i < ps->n; i++)
		if (ps->v[i].id == id) {
			*out = &ps->v[i];
			return 0;
		}
	if ((rc = db_prepare(db, SQL_PROFILE, &st, e)))
		return rc;
	db_bind_int64(st, 1, id);
	rc = db_step(st, e);
	if (rc == 0)
		rc = derr_set(e, DERR_NOTFOUND, "profile %lld not found", (long long)id);
	if (rc < 0) {
		db_finalize(st);
		return rc;
	}
	ps->v = xrealloc(ps->v, (size_t)(ps->n + 1) * sizeof(*ps->v));
	pi = &ps->v[ps->n++];
	memset(pi, 0, sizeof(*pi));
	pi->id = id;
	pi->name = xstrdup(db_col_text(st, 0));
	pi->hash = xstrdup(db_col_text(st, 1));
	if (db_col_text(st, 2)) {
		const char *d = db_col_text(st, 2);
		cJSON *def = json_parse(d, strlen(d));
		pi->system = json_dup_str(def, system_keys, ARRAY_SIZE(system_keys));
		pi->template = json_dup_str(def, template_keys, ARRAY_SIZE(template_keys));
		pi->model = json_dup_str(def, model_keys, ARRAY_SIZE(model_keys));
		cJSON_Delete(def);
	}
	if (!pi->template)
		pi->template = xstrdup("{prompt}");
	db_finalize(st);
	*out = pi;
	return 0;
}

static void profiles_release(struct profiles *ps)
{
	for (int i = 0; i < ps->n; i++) {
		free(ps->v[i].name);
		free(ps->v[i].hash);
		free(ps->v[i].model);
		free(ps->v[i].system);
		free(ps->v[i].template);
	}
	free(ps->v);
}

/* JSON escapes: 0 = copy as is, else the letter after the backslash ('u':
 * \u00XX).  Filled once by esc_init() before the first line is built. */
static unsigned char esc_kind[256];

static void esc_init(void)
{
	for (int c = 0; c < 0x20; c++)
		esc_kind[c] = 'u';
	esc_kind['\n'] = 'n';
	esc_kind['\r'] = 'r';
	esc_kind['\t'] = 't';
	esc_kind['\b'] = 'b';
	esc_kind['\f'] = 'f';
	esc_kind['"'] = '"';
	esc_kind['\\'] = '\\';
}

#if defined(__SSE2__)
/* Bit i set when byte i of the 16 at p needs escaping (< 0x20, '"', '\\'). */
static inline unsigned esc_mask16(__m128i x)
{
	__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x);
	__m128i q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
	__m128i bs = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(q, bs)));
}
#endif

/* Write the escape of the byte c (esc_kind[c] != 0) at o; returns the end. */
static inline char *esc_one(char *o, unsigned char c)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char k = esc_kind[c];
	*o++ = '\\';
	if (k != 'u') {
		*o++ = (char)k;
		return o;
	}
	o[0] = 'u';
	o[1] = o[2] = '0';
	o[3] = hx[c >> 4];
	o[4] = hx[c & 15];
	return o + 5;
}

/* Append s (n bytes) JSON-escaped, without quotes.  The hot loop of an
 * export: reserve the worst case once (6 bytes out per byte in), then copy
 * 16 bytes at a time and step back to the first one that needs escaping.
 * The 16-byte stores stay inside the reservation: while 16 bytes of input
 * remain, at least 96 bytes of it are free. */
static int esc(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	char *o;

	if (n > (b->max / 6) || buf_grow(b, 6 * n))
		return DERR_LIMIT;
	o = b->data + b->len;
#if defined(__SSE2__)
	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = esc_mask16(x);
		_mm_storeu_si128((__m128i *)(void *)o, x);
		if (!m) {
			p += 16;
			o += 16;
			continue;
		}
		m = (unsigned)__builtin_ctz(m);
		p += m;
		o = esc_one(o + m, *p++);
	}
#endif
	for (; p < end; p++) {
		if (esc_kind[*p])
			o = esc_one(o, *p);
		else
			*o++ = (char)*p;
	}
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
	return 0;
}

static int str_field(struct buf *b, const char *key, const char *v)
{
	int rc = buf_puts(b, ",\"");
	if (!rc)
		rc = buf_puts(b, key);
	if (!rc)
		rc = buf_puts(b, "\":");
	if (rc)
		return rc;
	if (!v)
		return buf_puts(b, "null");
	if ((rc = buf_putc(b, '"')) || (rc = esc(b, v, strlen(v))))
		return rc;
	return buf_putc(b, '"');
}

/* The user message: the profile's template with every {prompt} replaced. */
static int templated(struct buf *b, const char *tmpl, const char *prompt)
{
	const char *p = tmpl, *hit;
	int rc = 0;
	while (!rc && (hit = strstr(p, "{prompt}"))) {
		rc = esc(b, p, (size_t)(hit - p));
		if (!rc)
			rc = esc(b, prompt, strlen(prompt));
		p = hit + 8;
	}
	return rc ? rc : esc(b, p, strlen(p));
}

/* Append again the len bytes at off of b itself (an already escaped text). */
static int copy_self(struct buf *b, size_t off, size_t len)
{
	if (buf_grow(b, len))
		return DERR_LIMIT;
	memcpy(b->data + b->len, b->data + off, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

static int build_line(struct buf *b, const struct export_plan *p, const struct plan_item *it,
		      struct db_stmt *st, const struct profile_info *pi)
{
	const char *phash = db_col_text(st, 0), *prompt = db_col_text(st, 1);
	const char *ref = db_col_text(st, 2), *reasoning = db_col_text(st, 3);
	const char *answer = db_col_text(st, 4), *model = db_col_text(st, 5);
	const char *domain = db_col_text(st, 6);
	const char *source = it->source_name >= 0 ? p->source_names.names[it->source_name] : NULL;
	size_t rlen = reasoning ? db_col_bytes(st, 3) : 0, alen = answer ? db_col_bytes(st, 4) : 0;
	size_t roff, rend, aoff, aend;
	int rc;

	if (!prompt)
		prompt = "";
	if (!reasoning)
		reasoning = "";
	if (!answer)
		answer = "";
	if (!model)
		model = pi->model;
	{ /* {"id":"%016llx" without printf */
		static const char hx[] = "0123456789abcdef";
		char id[16];
		for (int i = 0; i < 16; i++)
			id[i] = hx[(it->line_id >> (60 - 4 * i)) & 15];
		rc = buf_puts(b, "{\"id\":\"");
		if (!rc)
			rc = buf_append(b, id, sizeof(id));
		if (!rc)
			rc = buf_putc(b, '"');
	}
	if (!rc)
		rc = str_field(b, "prompt_id", phash);
	if (!rc)
		rc = buf_puts(b, ",\"messages\":[");
	if (!rc && pi->system) {
		rc = buf_puts(b, "{\"role\":\"system\",\"content\":\"");
		if (!rc)
			rc = esc(b, pi->system, strlen(pi->system));
		if (!rc)
			rc = buf_puts(b, "\"},");
	}
	if (!rc)
		rc = buf_puts(b, "{\"role\":\"user\",\"content\":\"");
	if (!rc)
		rc = templated(b, pi->template, prompt);
	if (!rc)
		rc = buf_puts(b, "\"},{\"role\":\"assistant\",\"content\":\"<think>\\n");
	/* Reasoning and answer are escaped once and copied for their own fields. */
	roff = b->len;
	if (!rc)
		rc = esc(b, reasoning, rlen);
	rend = b->len;
	if (!rc)
		rc = buf_puts(b, "\\n</think>\\n\\n");
	aoff = b->len;
	if (!rc)
		rc = esc(b, answer, alen);
	aend = b->len;
	if (!rc)
		rc = buf_puts(b, "\"}],\"reasoning\":\"");
	if (!rc)
		rc = copy_self(b, roff, rend - roff);
	if (!rc)
		rc = buf_puts(b, "\",\"answer\":\"");
	if (!rc)
		rc = copy_self(b, aoff, aend - aoff);
	if (!rc)
		rc = buf_putc(b, '"');
	if (!rc)
		rc = str_field(b, "reference", ref);
	if (!rc)
		rc = str_field(b, "source", source);
	if (!rc)
		rc = str_field(b, "teacher", model);
	if (!rc)
		rc = str_field(b, "profile", pi->name);
	if (!rc)
		rc = str_field(b, "domain", domain);
	if (!rc)
		rc = buf_puts(b, "}\n");
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Shards.  Every shard holds a fixed run of consecutive lines of its
 * split's order (the split's lines shared equally between as many shards
 * of at most m lines as needed), so each one is built and compressed by one thread from
 * start to end, on its own connection, and shards run in parallel: the
 * bytes never depend on the machine or the thread count. */

/* The compressed stream passes through here: hashed and counted as written. */
struct sink {
	int fd;
	struct sha256 sha;
	int64_t bytes;
};

static ssize_t sink_write(void *c, const char *p, size_t n)
{
	struct sink *s = c;
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(s->fd, p + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)w;
	}
	sha256_update(&s->sha, p, n);
	s->bytes += (int64_t)n;
	return (ssize_t)n;
}

static const char *split_name(int split)
{
	return split ? "val" : "train";
}

struct shard {
	int split;
	uint32_t index;	     /* within its split */
	size_t first, count; /* its lines: order[split][first .. first + count) */
	char file[64];
	int64_t bytes; /* compressed */
	char sha256[65];
};

struct shard_set {
	struct shard *v; /* train shards, then val shards */
	int n;
	uint32_t count[2]; /* shards per split */
	size_t *order[2];  /* item indexes of each split, in plan order */
	size_t norder[2];
	/* Read-only while the threads run. */
	struct export_plan *p;
	const struct profiles *ps;
	const char *dbpath;
	int dirfd, level;
	/* Work distribution; the first error wins and stops the rest. */
	pthread_mutex_t mu;
	int next, rc;
	struct derr err;
};

static const struct profile_info *profile_find(const struct profiles *ps, int64_t id)
{
	for (int i = 0; i < ps->n; i++)
		if (ps->v[i].id == id)
			return &ps->v[i];
	return NULL;
}

/* Fetch one planned trace into st (a row is ready on success). */
static int fetch(struct db_stmt *st, const struct plan_item *it, struct derr *e)
{
	int rc;
	db_reset(st);
	db_bind_int64(st, 1, it->trace_id);
	db_bind_int64(st, 2, it->prompt_id);
	rc = db_step(st, e);
	if (rc == 0)
		return derr_set(e, DERR_NOTFOUND, "trace %lld vanished during export",
				(long long)it->trace_id);
	return rc < 0 ? rc : 0;
}

static int shard_write(struct shard_set *ss, struct shard *s, struct db_stmt *st, struct buf *chunk,
		       struct derr *e)
{
	struct sink sk = {.fd = -1, .bytes = 0};
	cookie_io_functions_t io = {.write = sink_write};
	struct zst_writer *zw = NULL;
	FILE *f;
	int rc = 0;

	sha256_init(&sk.sha);
	sk.fd = openat(ss->dirfd, s->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (sk.fd < 0)
		return derr_set(e, DERR_IO, "%s: %s", s->file, strerror(errno));
	f = fopencookie(&sk, "w", io);
	if (!f) {
		close(sk.fd);
		return derr_set(e, DERR_IO, "%s: cannot open a stream", s->file);
	}
	setvbuf(f, NULL, _IOFBF, 1 << 17);
	rc = zst_writer_new(&zw, f, ss->level, e);
	buf_reset(chunk);
	for (size_t i = 0; i < s->count && !rc; i++) {
		struct plan_item *it = &ss->p->items[ss->order[s->split][s->first + i]];
		const struct profile_info *pi = profile_find(ss->ps, it->profile_id);
		if ((rc = fetch(st, it, e)))
			break;
		if (!pi || build_line(chunk, ss->p, it, st, pi)) {
			rc = derr_set(e, DERR_LIMIT, "trace %lld: line over %zu bytes",
				      (long long)it->trace_id, LINE_MAX_BYTES);
			break;
		}
		it->shard = s->index;
		it->line = (uint32_t)i;
		if (chunk->len >= CHUNK_BYTES) {
			rc = zst_writer_write(zw, chunk->data, chunk->len, e);
			buf_reset(chunk);
		}
	}
	if (!rc && chunk->len)
		rc = zst_writer_write(zw, chunk->data, chunk->len, e);
	if (!rc) {
		rc = zst_writer_finish(zw, e); /* frees the writer either way */
		zw = NULL;
	}
	zst_writer_free(zw);
	if (fclose(f) != 0 && !rc)
		rc = derr_set(e, errno == ENOSPC ? DERR_FULL : DERR_IO, "%s: write: %s", s->file,
			      strerror(errno));
	if (!rc && fsync(sk.fd) != 0)
		rc = derr_set(e, DERR_IO, "%s: fsync: %s", s->file, strerror(errno));
	close(sk.fd);
	s->bytes = sk.bytes;
	sha256_final_hex(&sk.sha, s->sha256);
	return rc;
}

static void *shard_thread(void *arg)
{
	struct shard_set *ss = arg;
	struct buf chunk = BUF_INIT(LINE_MAX_BYTES + CHUNK_BYTES);
	struct derr e = {0};
	struct db *db = NULL;
	struct db_stmt *st = NULL;
	/* Connections belong to one thread: each opens its own, in one read
	 * transaction (one snapshot, SQLite's file locks taken once). */
	int rc = db_open(&db, ss->dbpath, 0, &e);

	if (!rc)
		rc = db_begin(db, &e);
	if (!rc)
		rc = db_prepare(db, SQL_FETCH, &st, &e);
	for (;;) {
		int k = -1;
		pthread_mutex_lock(&ss->mu);
		if (rc && !ss->rc) {
			ss->rc = rc;
			ss->err = e;
		}
		if (!ss->rc && ss->next < ss->n)
			k = ss->next++;
		pthread_mutex_unlock(&ss->mu);
		if (k < 0)
			break;
		rc = shard_write(ss, &ss->v[k], st, &chunk, &e);
	}
	db_finalize(st);
	if (db)
		db_rollback(db);
	db_close(db);
	buf_release(&chunk);
	return NULL;
}

/* Lines per shard: shard_bytes over the mean line of the first lines of the
 * plan (a deterministic estimate: it depends only on the data). */
static int lines_per_shard(struct db *db, struct export_plan *p, const struct profiles *ps, size_t *out,
			   struct derr *e)
{
	size_t k = p->n < 1024 ? p->n : 1024;
	struct buf b = BUF_INIT(LINE_MAX_BYTES);
	struct db_stmt *st = NULL;
	int64_t sum = 0, mean, m;
	int rc = db_begin(db, e);

	if (!rc)
		rc = db_prepare(db, SQL_FETCH, &st, e);
	for (size_t i = 0; i < k && !rc; i++) {
		const struct profile_info *pi = profile_find(ps, p->items[i].profile_id);
		if ((rc = fetch(st, &p->items[i], e)))
			break;
		buf_reset(&b);
		if (!pi || build_line(&b, p, &p->items[i], st, pi))
			rc = derr_set(e, DERR_LIMIT, "trace %lld: line over %zu bytes",
				      (long long)p->items[i].trace_id, LINE_MAX_BYTES);
		sum += (int64_t)b.len;
	}
	db_finalize(st);
	db_rollback(db);
	buf_release(&b);
	mean = k ? sum / (int64_t)k : 1;
	m = p->o.shard_bytes / (mean > 0 ? mean : 1);
	*out = m > 0 ? (size_t)m : 1;
	return rc;
}

static void shard_set_release(struct shard_set *ss)
{
	free(ss->v);
	free(ss->order[0]);
	free(ss->order[1]);
	pthread_mutex_destroy(&ss->mu);
}

/* Split the plan into shards of at most m lines per split, named for good. */
static void shard_set_init(struct shard_set *ss, struct export_plan *p, size_t m)
{
	memset(ss, 0, sizeof(*ss));
	pthread_mutex_init(&ss->mu, NULL);
	ss->p = p;
	for (int sp = 0; sp < 2; sp++)
		ss->order[sp] = xmalloc((p->n + 1) * sizeof(size_t));
	for (size_t i = 0; i < p->n; i++) {
		int sp = p->items[i].split;
		ss->order[sp][ss->norder[sp]++] = i;
	}
	for (int sp = 0; sp < 2; sp++)
		ss->count[sp] = (uint32_t)((ss->norder[sp] + m - 1) / m);
	ss->v = xcalloc((size_t)(ss->count[0] + ss->count[1]) + 1, sizeof(*ss->v));
	for (int sp = 0; sp < 2; sp++)
		for (uint32_t j = 0; j < ss->count[sp]; j++) {
			struct shard *s = &ss->v[ss->n++];
			s->split = sp;
			s->index = j;
			/* Equal shares (to a line) of at most m lines, not m lines
			 * and a short last one: shards in parallel end together. */
			s->first = (size_t)((uint64_t)j * ss->norder[sp] / ss->count[sp]);
			s->count = (size_t)((uint64_t)(j + 1) * ss->norder[sp] / ss->count[sp]) - s->first;
			snprintf(s->file, sizeof(s->file), "%s-%05u-of-%05u.jsonl.zst", split_name(sp), j,
				 ss->count[sp]);
		}
}

/* ------------------------------------------------------------------------ */
/* Files */

static int fsync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	int rc;
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Remove a directory tree we created (no symlinks followed). */
static int rmtree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : (unlink(path) == 0 ? 0 : -1);
	while ((de = readdir(d))) {
		char sub[PATH_MAX];
		struct stat stt;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub)) {
			rc = -1;
			continue;
		}
		if (lstat(sub, &stt) == 0 && S_ISDIR(stt.st_mode))
			rc |= rmtree(sub);
		else if (unlink(sub) != 0)
			rc = -1;
	}
	closedir(d);
	if (rmdir(path) != 0)
		rc = -1;
	return rc;
}

int export_rmtree(const char *path)
{
	return rmtree(path);
}

static void parent_dir(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

static int write_manifest(int dirfd, struct export_plan *p, struct shard_set *w, struct profiles *ps,
			  struct buf *m, struct derr *e)
{
	char num[64];
	int fd, first = 1;
	size_t done = 0;

	json_num_str(p->o.val_fraction, num, sizeof(num));
	buf_printf(m, "{\n  \"format\": \"distill-export\",\n  \"format_version\": %d,\n",
		   EXPORT_FORMAT_VERSION);
	buf_puts(m, "  \"ruleset_hash\": ");
	json_append_str(m, p->ruleset_hash, strlen(p->ruleset_hash));
	buf_printf(m, ",\n  \"split\": {\"salt\": \"%s\", \"val_fraction\": %s},\n", EXPORT_SPLIT_SALT, num);
	buf_printf(m, "  \"options\": %s,\n", buf_str(&p->options));
	buf_printf(m, "  \"counts\": {\"samples\": %lld, \"train\": %lld, \"val\": %lld},\n", (long long)p->n,
		   (long long)p->train, (long long)p->val);
	buf_puts(m, "  \"profiles\": [");
	/* Profiles used, by name (a few: selection sort keeps it simple). */
	for (;;) {
		struct profile_info *next = NULL;
		for (int i = 0; i < ps->n; i++)
			if (ps->v[i].used == 1 && (!next || strcmp(ps->v[i].name, next->name) < 0))
				next = &ps->v[i];
		if (!next)
			break;
		next->used = 2;
		buf_printf(m, "%s\n    {\"name\": ", first ? "" : ",");
		json_append_str(m, next->name, strlen(next->name));
		buf_puts(m, ", \"hash\": ");
		json_append_str(m, next->hash, strlen(next->hash));
		buf_puts(m, ", \"model\": ");
		if (next->model)
			json_append_str(m, next->model, strlen(next->model));
		else
			buf_puts(m, "null");
		buf_puts(m, ", \"system\": ");
		if (next->system)
			json_append_str(m, next->system, strlen(next->system));
		else
			buf_puts(m, "null");
		buf_puts(m, ", \"template\": ");
		json_append_str(m, next->template, strlen(next->template));
		buf_puts(m, "}");
		first = 0;
	}
	buf_puts(m, first ? "],\n" : "\n  ],\n");
	buf_puts(m, "  \"shards\": [");
	first = 1;
	for (int i = 0; i < w->n; i++) {
		const struct shard *s = &w->v[i];
		buf_printf(
			m,
			"%s\n    {\"file\": \"%s\", \"split\": \"%s\", \"samples\": %lld, \"bytes\": %lld, "
			"\"sha256\": \"%s\"}",
			first ? "" : ",", s->file, split_name(s->split), (long long)s->count,
			(long long)s->bytes, s->sha256);
		first = 0;
	}
	if (buf_puts(m, first ? "]\n}\n" : "\n  ]\n}\n"))
		return derr_set(e, DERR_LIMIT, "manifest over its size cap");
	fd = openat(dirfd, "manifest.json", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return derr_set(e, DERR_IO, "manifest.json: %s", strerror(errno));
	while (done < m->len) {
		ssize_t n = write(fd, m->data + done, m->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			close(fd);
			return derr_set(e, err == ENOSPC ? DERR_FULL : DERR_IO, "manifest.json: %s",
					strerror(err));
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0) {
		close(fd);
		return derr_set(e, DERR_IO, "manifest.json: fsync: %s", strerror(errno));
	}
	close(fd);
	return 0;
}

struct by_trace {
	int64_t trace_id;
	size_t item;
};

static int by_trace_cmp(const void *a, const void *b)
{
	const struct by_trace *x = a, *y = b;
	return x->trace_id < y->trace_id ? -1 : x->trace_id > y->trace_id;
}

static int insert_rows(struct db *db, struct export_plan *p, struct shard_set *w, const char *outdir,
		       const char *version, const char *manifest_sha, struct export_result *res,
		       struct derr *e)
{
	struct db_stmt *st = NULL;
	struct buf opts = BUF_INIT(1 << 21);
	struct by_trace *byid = NULL;
	char num[64];
	int rc;

	/* exports.options: the manifest options plus what refresh compares. */
	buf_append(&opts, p->options.data, p->options.len - 1);
	json_num_str(p->accept_rate, num, sizeof(num));
	buf_printf(&opts, ", \"fingerprint\": \"%s\", \"accept_rate\": %s}", p->fingerprint, num);
	if ((rc = db_prepare(db, SQL_INSERT_EXPORT, &st, e)))
		goto out;
	if (version)
		db_bind_text(st, 1, version, -1);
	db_bind_text(st, 2, outdir, -1);
	db_bind_text(st, 3, p->ruleset_hash, -1);
	db_bind_text(st, 4, buf_str(&opts), -1);
	db_bind_int64(st, 5, (int64_t)p->n);
	db_bind_text(st, 6, manifest_sha, -1);
	db_bind_int64(st, 7, now_ms());
	if ((rc = db_step(st, e)) < 0)
		goto out;
	res->export_id = db_last_rowid(db);
	db_finalize(st);
	st = NULL;
	if ((rc = db_prepare(db, SQL_INSERT_ITEM, &st, e)))
		goto out;
	/* In trace order: the key (export, trace) and the trace index then grow
	 * at their right edge and the trace lookups of the foreign key walk the
	 * table forwards, instead of one random page per row. */
	byid = xmalloc((p->n + 1) * sizeof(*byid));
	for (size_t i = 0; i < p->n; i++) {
		byid[i].trace_id = p->items[i].trace_id;
		byid[i].item = i;
	}
	qsort(byid, p->n, sizeof(*byid), by_trace_cmp);
	for (size_t i = 0; i < p->n; i++) {
		const struct plan_item *it = &p->items[byid[i].item];
		/* Train shards come first in w->v, then val shards. */
		const struct shard *sh = &w->v[(it->split ? w->count[0] : 0) + it->shard];
		db_reset(st);
		db_bind_int64(st, 1, res->export_id);
		db_bind_int64(st, 2, it->trace_id);
		db_bind_text_ref(st, 3, sh->file, -1);
		db_bind_int64(st, 4, it->line);
		db_bind_text_ref(st, 5, split_name(it->split), -1);
		if ((rc = db_step(st, e)) < 0)
			goto out;
	}
	rc = 0;
out:
	db_finalize(st);
	buf_release(&opts);
	free(byid);
	return rc;
}

int export_plan_write(struct db *db, struct export_plan *p, const char *outdir, int force,
		      const char *version, struct export_result *res, struct derr *e)
{
	char tmp[PATH_MAX], old[PATH_MAX], parent[PATH_MAX], real[PATH_MAX];
	struct shard_set w;
	struct profiles ps = {0};
	struct buf manifest = BUF_INIT(MANIFEST_MAX);
	struct stat sb;
	pthread_t tids[EXPORT_MAX_THREADS];
	int rc = 0, in_tx = 0, have_old = 0, nthreads = 0, threads = p->o.threads, fk_off = 0;
	size_t m = 1;
	int64_t t0 = mono_ns();

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	pthread_mutex_init(&w.mu, NULL);
	w.dirfd = -1;
	if (threads <= 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		threads = ncpu > 0 ? (int)ncpu : 1;
	}
	if (threads > EXPORT_MAX_THREADS)
		threads = EXPORT_MAX_THREADS;

	if (!outdir || !*outdir) {
		rc = derr_set(e, DERR_INVALID, "no output directory");
		goto done;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", outdir, (long)getpid()) >= (int)sizeof(tmp) ||
	    snprintf(old, sizeof(old), "%s.tmp-old-%ld", outdir, (long)getpid()) >= (int)sizeof(old)) {
		rc = derr_set(e, DERR_INVALID, "%s: path too long", outdir);
		goto done;
	}
	parent_dir(outdir, parent, sizeof(parent));
	if (lstat(outdir, &sb) == 0 && !force) {
		rc = derr_set(e, DERR_EXISTS, "%s: already exists (use --force to replace it)", outdir);
		goto done;
	}
	esc_init();
	/* The profiles of the plan, loaded once; the threads only read them. */
	for (size_t i = 0; i < p->n; i++) {
		struct profile_info *pi = NULL;
		if (i && p->items[i].profile_id == p->items[i - 1].profile_id)
			continue;
		if ((rc = profile_get(db, &ps, p->items[i].profile_id, &pi, e)))
			goto done;
		pi->used = 1;
	}
	if ((rc = lines_per_shard(db, p, &ps, &m, e)))
		goto done;
	pthread_mutex_destroy(&w.mu);
	shard_set_init(&w, p, m);
	w.ps = &ps;
	w.dbpath = db_path(db);
	w.level = p->o.level;
	w.dirfd = -1;

	rmtree(tmp);
	if (mkdir(tmp, 0755) != 0) {
		rc = derr_set(e, errno == EROFS || errno == EACCES ? DERR_READONLY : DERR_IO, "%s: %s", tmp,
			      strerror(errno));
		goto done;
	}
	w.dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w.dirfd < 0) {
		rc = derr_set(e, DERR_IO, "%s: %s", tmp, strerror(errno));
		goto fail_tmp;
	}

	/* Build and compress: each thread takes the next shard until none is left. */
	for (int i = 0; i < threads && i < w.n; i++) {
		if (pthread_create(&tids[nthreads], NULL, shard_thread, &w) != 0)
			break;
		nthreads++;
	}
	if (w.n && !nthreads) {
		rc = derr_set(e, DERR_IO, "cannot start an export thread");
		goto fail_tmp;
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	if (w.rc) {
		rc = w.rc;
		if (e)
			*e = w.err;
		goto fail_tmp;
	}
	for (int i = 0; i < w.n; i++)
		res->bytes += w.v[i].bytes;
	log_debug("export: %zu lines in %d shards of %zu lines built and compressed by %d threads in %lldms "
		  "(process CPU %lldms)",
		  p->n, w.n, m, nthreads, (long long)((mono_ns() - t0) / 1000000), cpu_ms());
	if ((rc = write_manifest(w.dirfd, p, &w, &ps, &manifest, e)))
		goto fail_tmp;
	if (fsync(w.dirfd) != 0) {
		rc = derr_set(e, DERR_IO, "%s: fsync: %s", tmp, strerror(errno));
		goto fail_tmp;
	}
	sha256_hex(manifest.data, manifest.len, res->manifest_sha256);

	/* Rows first (uncommitted), then the rename, then the commit: a failure
	 * before the rename leaves neither.  The rows name the export just
	 * inserted and traces just read (traces are never deleted), so the
	 * foreign-key probes, a page of the trace table per row, are off
	 * meanwhile, as in ingest; `distill check` verifies the links. */
	if ((rc = db_exec(db, SQL_FK_OFF, e)))
		goto fail_tmp;
	fk_off = 1;
	if ((rc = db_begin_immediate(db, e)))
		goto fail_tmp;
	in_tx = 1;
	if ((rc = insert_rows(db, p, &w, outdir, version, res->manifest_sha256, res, e)))
		goto fail_tmp;
	if (lstat(outdir, &sb) == 0) {
		if (!force) {
			rc = derr_set(e, DERR_EXISTS, "%s: appeared meanwhile", outdir);
			goto fail_tmp;
		}
		rmtree(old);
		if (rename(outdir, old) != 0) {
			rc = derr_set(e, DERR_IO, "rename %s: %s", outdir, strerror(errno));
			goto fail_tmp;
		}
		have_old = 1;
	}
	if (rename(tmp, outdir) != 0) {
		rc = derr_set(e, DERR_IO, "rename %s -> %s: %s", tmp, outdir, strerror(errno));
		if (have_old)
			rename(old, outdir);
		goto fail_tmp;
	}
	fsync_path(parent, 1);
	if (realpath(outdir, real)) {
		struct db_stmt *u = NULL;
		if (!db_prepare(db, SQL_UPDATE_OUTDIR, &u, NULL)) {
			db_bind_int64(u, 1, res->export_id);
			db_bind_text(u, 2, real, -1);
			db_step(u, NULL);
		}
		db_finalize(u);
	}
	if ((rc = db_commit(db, e))) {
		/* Put things back as they were. */
		rename(outdir, tmp);
		if (have_old)
			rename(old, outdir);
		in_tx = 0;
		db_rollback(db);
		goto fail_tmp;
	}
	log_debug("export: lineage recorded and directory in place at %lldms (process CPU %lldms)",
		  (long long)((mono_ns() - t0) / 1000000), cpu_ms());
	if (have_old)
		rmtree(old);
	res->samples = (int64_t)p->n;
	res->train = p->train;
	res->val = p->val;
	res->shards = w.n;
	goto done;

fail_tmp:
	if (in_tx)
		db_rollback(db);
	rmtree(tmp);
done:
	if (fk_off)
		db_exec(db, SQL_FK_ON, NULL);
	if (w.dirfd >= 0)
		close(w.dirfd);
	shard_set_release(&w);
	profiles_release(&ps);
	buf_release(&manifest);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* Manifest parsing and verification */

static int shard_name_ok(const char *f, const char *split)
{
	size_t sl = strlen(split);
	const char *p;
	if (strncmp(f, split, sl) || f[sl] != '-')
		return 0;
	p = f + sl + 1;
	for (int i = 0; i < 5; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	p += 5;
	if (strncmp(p, "-of-", 4))
		return 0;
	p += 4;
	for (int i = 0; i < 5; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return !strcmp(p + 5, ".jsonl.zst");
}

static int get_int(const cJSON *o, const char *k, int64_t *out)
{
	double v;
	if (json_get_num(o, k, &v) || v < 0 || v > 9e15 || v != (double)(int64_t)v)
		return -1;
	*out = (int64_t)v;
	return 0;
}

void export_manifest_release(struct export_manifest *m)
{
	free(m->shards);
	memset(m, 0, sizeof(*m));
}

int export_manifest_parse(const char *p, size_t n, struct export_manifest *m, struct derr *e)
{
	cJSON *root = json_parse(p, n);
	const cJSON *shards, *counts, *sh;
	const char *rs;
	int64_t v;
	int rc = 0, i = 0;

	memset(m, 0, sizeof(*m));
	if (!cJSON_IsObject(root)) {
		rc = derr_set(e, DERR_PARSE, "manifest: not a JSON object");
		goto out;
	}
	if (get_int(root, "format_version", &v) || v < 1) {
		rc = derr_set(e, DERR_PARSE, "manifest: no format_version");
		goto out;
	}
	if (v > EXPORT_FORMAT_VERSION) {
		rc = derr_set(e, DERR_PARSE, "manifest: format version %lld is newer than this program",
			      (long long)v);
		goto out;
	}
	m->format_version = (int)v;
	rs = json_get_str(root, "ruleset_hash");
	if (!rs || strlen(rs) >= sizeof(m->ruleset_hash)) {
		rc = derr_set(e, DERR_PARSE, "manifest: no ruleset_hash");
		goto out;
	}
	snprintf(m->ruleset_hash, sizeof(m->ruleset_hash), "%s", rs);
	counts = cJSON_GetObjectItemCaseSensitive(root, "counts");
	if (!cJSON_IsObject(counts) || get_int(counts, "samples", &m->samples)) {
		rc = derr_set(e, DERR_PARSE, "manifest: no counts.samples");
		goto out;
	}
	shards = cJSON_GetObjectItemCaseSensitive(root, "shards");
	if (!cJSON_IsArray(shards) || cJSON_GetArraySize(shards) > 200000) {
		rc = derr_set(e, DERR_PARSE, "manifest: no shards array");
		goto out;
	}
	m->nshards = cJSON_GetArraySize(shards);
	m->shards = xcalloc((size_t)m->nshards + 1, sizeof(*m->shards));
	cJSON_ArrayForEach(sh, shards)
	{
		struct export_shard *s = &m->shards[i];
		const char *file = json_get_str(sh, "file"), *split = json_get_str(sh, "split");
		const char *sha = json_get_str(sh, "sha256");
		if (!file || !split || (strcmp(split, "train") && strcmp(split, "val")) ||
		    strlen(file) >= sizeof(s->file) || !shard_name_ok(file, split)) {
			rc = derr_set(e, DERR_PARSE, "manifest: shard %d: bad file name or split", i);
			goto out;
		}
		if (!sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64) {
			rc = derr_set(e, DERR_PARSE, "manifest: shard %d: bad sha256", i);
			goto out;
		}
		if (get_int(sh, "samples", &s->samples) || get_int(sh, "bytes", &s->bytes)) {
			rc = derr_set(e, DERR_PARSE, "manifest: shard %d: bad samples or bytes", i);
			goto out;
		}
		for (int j = 0; j < i; j++)
			if (!strcmp(m->shards[j].file, file)) {
				rc = derr_set(e, DERR_PARSE, "manifest: shard %s listed twice", file);
				goto out;
			}
		snprintf(s->file, sizeof(s->file), "%s", file);
		snprintf(s->split, sizeof(s->split), "%s", split);
		memcpy(s->sha256, sha, 65);
		i++;
	}
out:
	cJSON_Delete(root);
	if (rc)
		export_manifest_release(m);
	return rc;
}

static int read_all(const char *path, size_t max, struct buf *out, struct derr *e)
{
	FILE *f;
	char tmp[65536];
	size_t n;
	int rc = 0;

	buf_init(out, max); /* released by the caller on every path */
	f = fopen(path, "rb");
	if (!f)
		return derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "%s: %s", path,
				strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_append(out, tmp, n)) {
			rc = derr_set(e, DERR_LIMIT, "%s: over %zu bytes", path, max);
			break;
		}
	if (!rc && ferror(f))
		rc = derr_set(e, DERR_IO, "%s: read error", path);
	fclose(f);
	return rc;
}

static int verify_shard(const char *dir, const struct export_shard *s, struct derr *e)
{
	char path[PATH_MAX], hex[65];
	struct sha256 sha;
	struct zst_reader *zr = NULL;
	char *tmp = xmalloc(1 << 17);
	int64_t bytes = 0, lines = 0;
	FILE *f;
	size_t n;
	long got;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, s->file);
	f = fopen(path, "rb");
	if (!f) {
		rc = derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "%s: %s", s->file,
			      errno == ENOENT ? "missing" : strerror(errno));
		goto out;
	}
	sha256_init(&sha);
	while ((n = fread(tmp, 1, 1 << 17, f)) > 0) {
		sha256_update(&sha, tmp, n);
		bytes += (int64_t)n;
	}
	fclose(f);
	sha256_final_hex(&sha, hex);
	if (bytes != s->bytes) {
		rc = derr_set(e, DERR_MISMATCH, "%s: %lld bytes, manifest says %lld", s->file,
			      (long long)bytes, (long long)s->bytes);
		goto out;
	}
	if (strcmp(hex, s->sha256)) {
		rc = derr_set(e, DERR_MISMATCH, "%s: sha256 %s, manifest says %s", s->file, hex, s->sha256);
		goto out;
	}
	if ((rc = zst_reader_open(&zr, path, VERIFY_MAX_TOTAL, e)))
		goto out;
	while ((got = zst_reader_read(zr, tmp, 1 << 17, e)) > 0)
		for (const char *q = tmp; (q = memchr(q, '\n', (size_t)(tmp + got - q))); q++)
			lines++;
	if (got < 0) {
		rc = derr_wrap(e, "%s", s->file);
		goto out;
	}
	if (lines != s->samples)
		rc = derr_set(e, DERR_MISMATCH, "%s: %lld lines, manifest says %lld", s->file,
			      (long long)lines, (long long)s->samples);
out:
	zst_reader_close(zr);
	free(tmp);
	return rc;
}

int export_verify(const char *dir, int64_t *samples, struct derr *e)
{
	char path[PATH_MAX];
	struct buf raw;
	struct export_manifest m;
	int64_t total = 0;
	int rc;
	DIR *d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if ((rc = read_all(path, MANIFEST_MAX, &raw, e))) {
		buf_release(&raw);
		return rc;
	}
	rc = export_manifest_parse(buf_str(&raw), raw.len, &m, e);
	buf_release(&raw);
	if (rc)
		return rc;
	for (int i = 0; i < m.nshards && !rc; i++) {
		rc = verify_shard(dir, &m.shards[i], e);
		total += m.shards[i].samples;
	}
	if (!rc && total != m.samples)
		rc = derr_set(e, DERR_MISMATCH, "shards hold %lld samples, manifest counts %lld",
			      (long long)total, (long long)m.samples);
	/* A shard file the manifest does not list is a mismatch too. */
	if (!rc && (d = opendir(dir))) {
		while (!rc && (de = readdir(d))) {
			size_t l = strlen(de->d_name);
			int listed = 0;
			if (l < 10 || strcmp(de->d_name + l - 10, ".jsonl.zst"))
				continue;
			for (int i = 0; i < m.nshards; i++)
				listed |= !strcmp(m.shards[i].file, de->d_name);
			if (!listed)
				rc = derr_set(e, DERR_MISMATCH, "%s: not in the manifest", de->d_name);
		}
		closedir(d);
	}
	if (!rc && samples)
		*samples = total;
	export_manifest_release(&m);
	return rc;
}
