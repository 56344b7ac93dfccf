/*
 * filter_fixture.h - traces for the filter tests: a database with one
 * profile, and helpers that add a trace (prompt, job done, trace) with SQL
 * through db.h, or load the real trace files of ../shared/data (the
 * response split at the last "</think>" into reasoning and answer).
 */
#ifndef DISTILL_FILTER_FIXTURE_H
#define DISTILL_FILTER_FIXTURE_H

#include "buf.h"
#include "db.h"
#include "filter.h"
#include "hash.h"
#include "json.h"
#include "jsonl.h"
#include "t.h"

#include <string.h>

static const char FX_PROFILE_SQL[] = "INSERT INTO profiles(id, name, created_at) VALUES (1, 'default', 0)";
static const char FX_PROMPT_SQL[] =
	"INSERT INTO prompts(hash, norm_version, text, reference, domain, created_at)"
	" VALUES (?1, 1, ?2, ?3, ?4, 0)";
static const char FX_SOURCE_SQL[] = "INSERT INTO prompt_sources(prompt_id, source, source_id, created_at)"
				    " VALUES (?1, ?2, ?3, 0)";
static const char FX_JOB_SQL[] = "INSERT INTO jobs(prompt_id, profile_id, sample_index, state, created_at,"
				 " updated_at) VALUES (?1, 1, ?2, 'done', 0, 0)";
static const char FX_TRACE_SQL[] =
	"INSERT INTO traces(job_id, reasoning, answer, placement, finish_reason, model,"
	" created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'fixture', 0)";

/* Create dir/name with the schema and the 'default' profile. */
static inline struct db *fx_open(const char *dir, const char *name, char *path, size_t len)
{
	struct db *db = NULL;
	struct derr e = {0};
	snprintf(path, len, "%s/%s", dir, name);
	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	T_OK(db_exec(db, FX_PROFILE_SQL, &e), &e);
	return db;
}

static inline int64_t fx_exec_id(struct db *db, const char *sql, const char *const *text, int ntext,
				 const int64_t *ints, int nints)
{
	struct db_stmt *st = NULL;
	struct derr e = {0};
	T_OK(db_prepare(db, sql, &st, &e), &e);
	for (int i = 0; i < nints; i++)
		db_bind_int64(st, i + 1, ints[i]);
	for (int i = 0; i < ntext; i++)
		db_bind_text(st, nints + i + 1, text[i], -1);
	T_EQ_INT(db_step(st, &e), 0);
	db_finalize(st);
	return db_last_rowid(db);
}

/* Add a prompt (identity: its text plus a counter, so repeats are new
 * prompts) with a source, one done job and its trace.  Returns the trace id.
 * reasoning NULL: no reasoning part (placement "none"). */
static inline int64_t fx_add(struct db *db, const char *prompt, const char *reference, const char *domain,
			     const char *source, const char *reasoning, const char *answer,
			     const char *finish)
{
	static int64_t counter;
	char hash[33], key[64];
	struct db_stmt *st = NULL;
	struct derr e = {0};
	int64_t pid, jid;

	snprintf(key, sizeof(key), "#%lld", (long long)++counter);
	{
		struct buf b = BUF_INIT(1 << 26);
		buf_puts(&b, prompt);
		buf_puts(&b, key);
		hash128_hex(b.data, b.len, hash);
		buf_release(&b);
	}
	T_OK(db_prepare(db, FX_PROMPT_SQL, &st, &e), &e);
	db_bind_text(st, 1, hash, -1);
	db_bind_text(st, 2, prompt, -1);
	db_bind_text(st, 3, reference, -1);
	db_bind_text(st, 4, domain, -1);
	T_EQ_INT(db_step(st, &e), 0);
	db_finalize(st);
	pid = db_last_rowid(db);
	if (source) {
		T_OK(db_prepare(db, FX_SOURCE_SQL, &st, &e), &e);
		db_bind_int64(st, 1, pid);
		db_bind_text(st, 2, source, -1);
		db_bind_text(st, 3, key, -1);
		T_EQ_INT(db_step(st, &e), 0);
		db_finalize(st);
	}
	T_OK(db_prepare(db, FX_JOB_SQL, &st, &e), &e);
	db_bind_int64(st, 1, pid);
	db_bind_int64(st, 2, 0);
	T_EQ_INT(db_step(st, &e), 0);
	db_finalize(st);
	jid = db_last_rowid(db);
	T_OK(db_prepare(db, FX_TRACE_SQL, &st, &e), &e);
	db_bind_int64(st, 1, jid);
	db_bind_text(st, 2, reasoning, -1);
	db_bind_text(st, 3, answer, -1);
	db_bind_text(st, 4, reasoning ? "close_tag_only" : "none", -1);
	db_bind_text(st, 5, finish, -1);
	T_EQ_INT(db_step(st, &e), 0);
	db_finalize(st);
	return db_last_rowid(db);
}

/* One record of a real trace file, split like a worker would. */
struct fx_real {
	char id[64];
	const char *prompt, *reference;
	const char *reasoning; /* NULL when there is no "</think>" */
	size_t reasoning_len;
	const char *answer;
	size_t answer_len;
};

/* Split response at the last "</think>"; an opening "<think>" is dropped. */
static inline void fx_split(const char *resp, struct fx_real *r)
{
	const char *close = NULL, *p = resp;
	while ((p = strstr(p, "</think>"))) {
		close = p;
		p += 8;
	}
	if (!close) {
		r->reasoning = NULL;
		r->reasoning_len = 0;
		r->answer = resp;
		r->answer_len = strlen(resp);
		return;
	}
	r->reasoning = resp;
	if (!strncmp(resp, "<think>", 7))
		r->reasoning += 7;
	r->reasoning_len = (size_t)(close - r->reasoning);
	r->answer = close + 8;
	r->answer_len = strlen(r->answer);
}

/* Call fn for each record of a real trace file; returns the record count,
 * or -1 when the file cannot be read. */
typedef void fx_real_fn(void *ctx, const struct fx_real *r);
static inline long fx_each_real(const char *path, fx_real_fn *fn, void *ctx)
{
	struct jsonl_reader *rd = NULL;
	struct jsonl_record rec;
	struct derr e = {0};
	long n = 0;
	if (jsonl_open(&rd, path, 1 << 24, &e))
		return -1;
	while (jsonl_next(rd, &rec, &e) == 1) {
		cJSON *o = rec.data ? json_parse(rec.data, rec.len) : NULL;
		const char *resp;
		struct fx_real r;
		if (!o)
			continue;
		memset(&r, 0, sizeof(r));
		snprintf(r.id, sizeof(r.id), "%s", json_get_str(o, "id") ? json_get_str(o, "id") : "?");
		r.prompt = json_get_str(o, "prompt");
		r.reference = json_get_str(o, "reference_answer");
		resp = json_get_str(o, "response");
		if (r.prompt && resp) {
			fx_split(resp, &r);
			fn(ctx, &r);
			n++;
		}
		cJSON_Delete(o);
	}
	jsonl_close(rd);
	return n;
}

/* A filter_doc for a real record (math, source "gsm8k", profile default). */
static inline void fx_doc(const struct fx_real *r, struct filter_doc *d)
{
	memset(d, 0, sizeof(*d));
	d->prompt = r->prompt;
	d->prompt_len = strlen(r->prompt);
	d->reasoning = r->reasoning;
	d->reasoning_len = r->reasoning_len;
	d->answer = r->answer;
	d->answer_len = r->answer_len;
	d->finish_reason = "stop";
	d->placement = r->reasoning ? "close_tag_only" : "none";
	d->reference = r->reference;
	d->domain = "math";
	d->source = "gsm8k";
	d->profile = "default";
}

#endif
