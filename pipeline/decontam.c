/* decontam.c - word n-gram decontamination against benchmarks (see decontam.h). */
#include "decontam.h"
#include "db.h"
#include "fields.h"
#include "hash.h"
#include "json.h"
#include "jsonl.h"
#include "minhash.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NGRAM_SEED 0x4e4752414d533031ull
#define WHOLE_SEED 0x57484f4c45533031ull
#define MAX_RECORD (16u << 20) /* one benchmark problem, generously */

static const char SQL_STATE_GET[] =
	"SELECT sha256, ngram, last_prompt_id FROM decontam_state WHERE benchmark = ?1";
static const char SQL_STATE_PUT[] =
	"INSERT INTO decontam_state (benchmark, sha256, ngram, items, last_prompt_id, updated_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (benchmark) DO UPDATE SET sha256 = excluded.sha256,"
	" ngram = excluded.ngram, items = excluded.items, last_prompt_id = excluded.last_prompt_id,"
	" updated_at = excluded.updated_at";
static const char SQL_MARKS_CLEAR[] = "DELETE FROM contamination WHERE benchmark = ?1";
static const char SQL_MAX_PROMPT[] = "SELECT coalesce(max(id), 0) FROM prompts";
static const char SQL_PROMPTS[] = "SELECT id, text FROM prompts WHERE id > ?1 AND id <= ?2 ORDER BY id";
static const char SQL_MARK_PUT[] =
	"INSERT INTO contamination (prompt_id, benchmark, benchmark_item, ngram, marked_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (prompt_id, benchmark) DO NOTHING";
static const char SQL_MARK_COUNT[] = "SELECT count(*) FROM contamination WHERE benchmark = ?1";

/* Record fields that name a benchmark problem, in order of preference. */
static const char *const item_fields[] = {"id", "unique_id", "task_id"};

struct bench {
	char *name;
	char sha256[65];
	char **items;
	size_t nitems, cap;
};

struct entry {
	uint64_t key; /* 0 = empty */
	uint32_t item;
};

struct decontam {
	int n;
	int nb;
	struct bench b[DECONTAM_MAX_BENCHMARKS];
	struct entry *tab;
	size_t tab_n, tab_cap;
	struct minhash_tokens tok;
	char *text; /* the text the tokens index */
	char *ngram;
	size_t ngram_cap;
};

struct decontam *decontam_new(int n)
{
	struct decontam *d;
	if (n < 1 || n > 64)
		return NULL;
	d = xcalloc(1, sizeof(*d));
	d->n = n;
	minhash_tokens_init(&d->tok);
	return d;
}

void decontam_free(struct decontam *d)
{
	if (!d)
		return;
	for (int i = 0; i < d->nb; i++) {
		for (size_t j = 0; j < d->b[i].nitems; j++)
			free(d->b[i].items[j]);
		free(d->b[i].items);
		free(d->b[i].name);
	}
	free(d->tab);
	free(d->ngram);
	minhash_tokens_release(&d->tok);
	free(d);
}

int decontam_count(const struct decontam *d)
{
	return d->nb;
}

int decontam_add_benchmark(struct decontam *d, const char *name, const char *sha256, struct derr *e)
{
	for (int i = 0; i < d->nb; i++)
		if (!strcmp(d->b[i].name, name))
			return derr_set(e, DERR_EXISTS, "benchmark '%s' given twice", name);
	if (d->nb == DECONTAM_MAX_BENCHMARKS)
		return derr_set(e, DERR_LIMIT, "more than %d benchmarks", DECONTAM_MAX_BENCHMARKS);
	d->b[d->nb].name = xstrdup(name);
	snprintf(d->b[d->nb].sha256, sizeof(d->b[d->nb].sha256), "%s", sha256);
	return d->nb++;
}

static uint64_t entry_key(uint64_t h, int b)
{
	uint64_t k = hash_mix64(h, (uint64_t)b);
	return k ? k : 1;
}

static struct entry *tab_lookup(struct decontam *d, uint64_t key)
{
	if (!d->tab_cap)
		return NULL;
	for (size_t s = key & (d->tab_cap - 1);; s = (s + 1) & (d->tab_cap - 1)) {
		if (d->tab[s].key == key)
			return &d->tab[s];
		if (!d->tab[s].key)
			return NULL;
	}
}

/* Insert key -> item unless present (the first problem with an n-gram wins). */
static void tab_insert(struct decontam *d, uint64_t key, uint32_t item)
{
	if (2 * (d->tab_n + 1) > d->tab_cap) {
		size_t ncap = d->tab_cap ? 2 * d->tab_cap : 4096;
		struct entry *nt = xcalloc(ncap, sizeof(*nt));
		for (size_t i = 0; i < d->tab_cap; i++) {
			if (!d->tab[i].key)
				continue;
			size_t s = d->tab[i].key & (ncap - 1);
			while (nt[s].key)
				s = (s + 1) & (ncap - 1);
			nt[s] = d->tab[i];
		}
		free(d->tab);
		d->tab = nt;
		d->tab_cap = ncap;
	}
	size_t s = key & (d->tab_cap - 1);
	while (d->tab[s].key) {
		if (d->tab[s].key == key)
			return;
		s = (s + 1) & (d->tab_cap - 1);
	}
	d->tab[s].key = key;
	d->tab[s].item = item;
	d->tab_n++;
}

void decontam_add_item(struct decontam *d, int b, const char *item, const char *text, size_t n)
{
	struct bench *bn = &d->b[b];
	struct minhash_tokens *t = &d->tok;
	uint32_t idx;

	if (bn->nitems == bn->cap) {
		bn->cap = bn->cap ? 2 * bn->cap : 256;
		bn->items = xrealloc(bn->items, bn->cap * sizeof(*bn->items));
	}
	idx = (uint32_t)bn->nitems;
	bn->items[bn->nitems++] = xstrdup(item);
	minhash_tokenize(t, text, n, 0);
	if (t->n == 0)
		return;
	if (t->n < (size_t)d->n) {
		tab_insert(d, entry_key(hash64(t->hash, t->n * sizeof(uint64_t), WHOLE_SEED), b), idx);
		return;
	}
	for (size_t i = 0; i + (size_t)d->n <= t->n; i++)
		tab_insert(d, entry_key(hash64(t->hash + i, (size_t)d->n * sizeof(uint64_t), NGRAM_SEED), b),
			   idx);
}

/* The words [from, from + count) of the tokenised text, lower-cased and
 * joined by single spaces, into d->ngram. */
static const char *ngram_text(struct decontam *d, const char *text, size_t from, size_t count)
{
	const struct minhash_tokens *t = &d->tok;
	size_t need = 1, o = 0;
	for (size_t i = from; i < from + count; i++)
		need += t->len[i] + 1;
	if (need > d->ngram_cap) {
		d->ngram_cap = need;
		d->ngram = xrealloc(d->ngram, need);
	}
	for (size_t i = from; i < from + count; i++) {
		if (o)
			d->ngram[o++] = ' ';
		for (uint32_t k = 0; k < t->len[i]; k++) {
			char c = text[t->off[i] + k];
			d->ngram[o++] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
		}
	}
	d->ngram[o] = '\0';
	return d->ngram;
}

/* Match the already tokenised text (d->tok) against benchmark b. */
static int match_tokens(struct decontam *d, int b, const char *text, const char **item, const char **ngram)
{
	const struct minhash_tokens *t = &d->tok;
	const struct entry *en;

	if (t->n == 0)
		return 0;
	if (t->n < (size_t)d->n) {
		en = tab_lookup(d, entry_key(hash64(t->hash, t->n * sizeof(uint64_t), WHOLE_SEED), b));
		if (!en)
			return 0;
		*item = d->b[b].items[en->item];
		*ngram = ngram_text(d, text, 0, t->n);
		return 1;
	}
	for (size_t i = 0; i + (size_t)d->n <= t->n; i++) {
		en = tab_lookup(
			d, entry_key(hash64(t->hash + i, (size_t)d->n * sizeof(uint64_t), NGRAM_SEED), b));
		if (en) {
			*item = d->b[b].items[en->item];
			*ngram = ngram_text(d, text, i, (size_t)d->n);
			return 1;
		}
	}
	return 0;
}

int decontam_match(struct decontam *d, int b, const char *text, size_t n, const char **item,
		   const char **ngram)
{
	minhash_tokenize(&d->tok, text, n, 0);
	return match_tokens(d, b, text, item, ngram);
}

/* SHA-256 of a file's bytes (the benchmark's identity in decontam_state). */
static int file_sha256(const char *path, char out[65], struct derr *e)
{
	struct sha256 s;
	char chunk[65536];
	size_t got;
	FILE *f = fopen(path, "rb");

	if (!f)
		return derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "%s: %s", path,
				strerror(errno));
	sha256_init(&s);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		sha256_update(&s, chunk, got);
	if (ferror(f)) {
		fclose(f);
		return derr_set(e, DERR_IO, "%s: read error", path);
	}
	fclose(f);
	sha256_final_hex(&s, out);
	return 0;
}

/* "dir/gsm8k_test.jsonl.zst" -> "gsm8k_test". */
static void bench_name(const char *path, char *out, size_t len)
{
	static const char *const exts[] = {".zst", ".jsonl", ".json"};
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	snprintf(out, len, "%s", base);
	n = strlen(out);
	for (size_t i = 0; i < ARRAY_SIZE(exts); i++) {
		size_t el = strlen(exts[i]);
		if (n > el && !strcmp(out + n - el, exts[i])) {
			n -= el;
			out[n] = '\0';
		}
	}
}

int decontam_load_file(struct decontam *d, const char *path, struct decontam_file_report *rep, struct derr *e)
{
	struct jsonl_reader *rd = NULL;
	struct jsonl_record rec;
	char sha[65], name[128], label[64];
	int rc, b;

	memset(rep, 0, sizeof(*rep));
	if ((rc = file_sha256(path, sha, e)))
		return rc;
	bench_name(path, name, sizeof(name));
	if ((b = decontam_add_benchmark(d, name, sha, e)) < 0)
		return b;
	if ((rc = jsonl_open(&rd, path, MAX_RECORD, e)))
		return rc;
	while ((rc = jsonl_next(rd, &rec, e)) == 1) {
		cJSON *obj = NULL;
		const char *text, *item = NULL;

		rep->records++;
		if (!rec.too_long)
			obj = json_parse(rec.data, rec.len);
		text = obj ? fields_prompt(obj, NULL) : NULL;
		if (!text) {
			rep->rejected++;
			if (!rep->first_bad_line)
				rep->first_bad_line = rec.line;
			cJSON_Delete(obj);
			continue;
		}
		for (size_t i = 0; i < ARRAY_SIZE(item_fields) && !item; i++)
			item = json_get_str(obj, item_fields[i]);
		if (!item) {
			snprintf(label, sizeof(label), "line %ld", rec.line);
			item = label;
		}
		decontam_add_item(d, b, item, text, strlen(text));
		rep->problems++;
		cJSON_Delete(obj);
	}
	jsonl_close(rd);
	if (rc < 0)
		return rc;
	if (rep->problems == 0)
		return derr_set(e, DERR_BENCH_EMPTY,
				"%s: no problem found (fields prompt, problem, question)", path);
	return 0;
}

static int bind_name_step(struct db *db, const char *sql, const char *name, int64_t *out, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, sql, &st, e);
	if (rc)
		return rc;
	db_bind_text(st, 1, name, -1);
	rc = db_step(st, e);
	if (rc == 1 && out)
		*out = db_col_int64(st, 0);
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

/* Where checking starts for benchmark b: after its last prompt when the
 * file and n are those of the stored state, else from the start. */
static int bench_start(struct db *db, struct decontam *d, int b, int64_t *start, int *recheck, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_STATE_GET, &st, e);

	*start = 0;
	*recheck = 0;
	if (rc)
		return rc;
	db_bind_text(st, 1, d->b[b].name, -1);
	rc = db_step(st, e);
	if (rc == 1) {
		const char *sha = db_col_text(st, 0);
		if (sha && !strcmp(sha, d->b[b].sha256) && db_col_int64(st, 1) == d->n)
			*start = db_col_int64(st, 2);
		else
			*recheck = 1;
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int decontam_run(struct db *db, struct decontam *d, struct decontam_bench_report *reports, struct derr *e)
{
	struct db_stmt *rd = NULL, *mark = NULL, *put = NULL;
	int64_t start[DECONTAM_MAX_BENCHMARKS] = {0}, from = INT64_MAX, max_id = 0, now = now_ms();
	int rc;

	if (d->nb == 0)
		return 0;
	if ((rc = db_begin_immediate(db, e)))
		return rc;
	if ((rc = db_query_int64(db, SQL_MAX_PROMPT, &max_id, e)))
		goto out;
	for (int b = 0; b < d->nb; b++) {
		struct decontam_bench_report *r = &reports[b];
		memset(r, 0, sizeof(*r));
		snprintf(r->name, sizeof(r->name), "%s", d->b[b].name);
		r->items = (long)d->b[b].nitems;
		if ((rc = bench_start(db, d, b, &start[b], &r->rechecked, e)))
			goto out;
		if (start[b] == 0 && (rc = bind_name_step(db, SQL_MARKS_CLEAR, d->b[b].name, NULL, e)))
			goto out;
		if (start[b] < from)
			from = start[b];
	}
	if ((rc = db_prepare(db, SQL_PROMPTS, &rd, e)) || (rc = db_prepare(db, SQL_MARK_PUT, &mark, e)))
		goto out;
	db_bind_int64(rd, 1, from);
	db_bind_int64(rd, 2, max_id);
	while ((rc = db_step(rd, e)) == 1) {
		int64_t id = db_col_int64(rd, 0);
		const char *text = db_col_text(rd, 1);
		if (!text)
			continue;
		minhash_tokenize(&d->tok, text, strlen(text), 0);
		for (int b = 0; b < d->nb; b++) {
			const char *item, *ngram;
			if (id <= start[b])
				continue;
			reports[b].checked++;
			if (!match_tokens(d, b, text, &item, &ngram))
				continue;
			db_reset(mark);
			db_bind_int64(mark, 1, id);
			db_bind_text(mark, 2, d->b[b].name, -1);
			db_bind_text(mark, 3, item, -1);
			db_bind_text(mark, 4, ngram, -1);
			db_bind_int64(mark, 5, now);
			if ((rc = db_step(mark, e)) < 0)
				goto out;
			reports[b].marked += db_changes(db) > 0;
		}
	}
	if (rc < 0)
		goto out;
	if ((rc = db_prepare(db, SQL_STATE_PUT, &put, e)))
		goto out;
	for (int b = 0; b < d->nb; b++) {
		db_reset(put);
		db_bind_text(put, 1, d->b[b].name, -1);
		db_bind_text(put, 2, d->b[b].sha256, -1);
		db_bind_int64(put, 3, d->n);
		db_bind_int64(put, 4, (int64_t)d->b[b].nitems);
		db_bind_int64(put, 5, max_id > start[b] ? max_id : start[b]);
		db_bind_int64(put, 6, now);
		if ((rc = db_step(put, e)) < 0)
			goto out;
		if ((rc = bind_name_step(db, SQL_MARK_COUNT, d->b[b].name, &reports[b].contaminated, e)))
			goto out;
	}
	db_finalize(rd);
	db_finalize(mark);
	db_finalize(put);
	if ((rc = db_commit(db, e)))
		db_rollback(db);
	return rc;
out:
	db_finalize(rd);
	db_finalize(mark);
	db_finalize(put);
	db_rollback(db);
	return rc;
}
