/*
 * export_fixture.h - builds databases of judged traces with plain SQL, the
 * way the ingest, work and filter stages leave them, for the export and
 * refresh tests and the export benchmark.  Header-only (static functions).
 */
#ifndef DISTILL_EXPORT_FIXTURE_H
#define DISTILL_EXPORT_FIXTURE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "hash.h"

static void fx_die(const char *what, const struct derr *e)
{
	fprintf(stderr, "fixture: %s: %s\n", what, e ? e->msg : "");
	exit(1);
}

static struct db *fx_open(const char *path)
{
	struct db *db = NULL;
	struct derr e = {0};
	if (db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e) || db_migrate(db, NULL, NULL, &e))
		fx_die("open", &e);
	return db;
}

static void fx_exec(struct db *db, const char *sql)
{
	struct derr e = {0};
	if (db_exec(db, sql, &e))
		fx_die(sql, &e);
}

/* Run one INSERT with text/int parameters given as a format of 't' and 'i'. */
static int64_t fx_insert(struct db *db, const char *sql, const char *types, ...)
{
	struct db_stmt *st = NULL;
	struct derr e = {0};
	va_list ap;
	int i = 1;

	if (db_prepare(db, sql, &st, &e))
		fx_die(sql, &e);
	va_start(ap, types);
	for (const char *t = types; *t; t++, i++) {
		if (*t == 't')
			db_bind_text(st, i, va_arg(ap, const char *), -1);
		else
			db_bind_int64(st, i, va_arg(ap, int64_t));
	}
	va_end(ap);
	if (db_step(st, &e) < 0)
		fx_die(sql, &e);
	db_finalize(st);
	return db_last_rowid(db);
}

static int64_t fx_profile(struct db *db, const char *name, const char *definition)
{
	char hex[33];
	hash128_hex(definition, strlen(definition), hex);
	return fx_insert(db,
			 "INSERT INTO profiles (name, hash, definition, created_at, bound_at) VALUES (?1, "
			 "?2, ?3, 1, 1)",
			 "ttt", name, hex, definition);
}

static int64_t fx_ruleset(struct db *db, const char *hash, int current)
{
	if (current)
		fx_exec(db, "UPDATE rulesets SET is_current = 0");
	return fx_insert(
		db,
		"INSERT INTO rulesets (hash, text, engine_version, checker_version, is_current, created_at)"
		" VALUES (?1, '', '1', '1', ?2, 1)",
		"ti", hash, (int64_t)current);
}

static int64_t fx_prompt(struct db *db, const char *text, const char *reference, const char *domain,
			 const char *source)
{
	char hex[33];
	int64_t id;
	hash128_hex(text, strlen(text), hex);
	id = fx_insert(db,
		       "INSERT INTO prompts (hash, norm_version, text, reference, domain, created_at)"
		       " VALUES (?1, 1, ?2, ?3, ?4, 1)",
		       "tttt", hex, text, reference, domain);
	fx_insert(db, "INSERT INTO prompt_sources (prompt_id, source, created_at) VALUES (?1, ?2, 1)", "it",
		  id, source);
	return id;
}

/* A done job and its trace, judged under ruleset (accepted, flagged). */
static int64_t fx_trace(struct db *db, int64_t prompt_id, int64_t profile_id, int64_t sample,
			const char *reasoning, const char *answer, const char *model, int64_t ruleset_id,
			int accepted, int flagged)
{
	int64_t job = fx_insert(
		db,
		"INSERT INTO jobs (prompt_id, profile_id, sample_index, state, created_at, updated_at,"
		" done_at) VALUES (?1, ?2, ?3, 'done', 1, 1, 1)",
		"iii", prompt_id, profile_id, sample);
	int64_t tr =
		fx_insert(db,
			  "INSERT INTO traces (job_id, reasoning, answer, placement, finish_reason,"
			  " completion_tokens, model, created_at) VALUES (?1, ?2, ?3, 'think_tags', 'stop',"
			  " length(?2) / 4, ?4, 1)",
			  "ittt", job, reasoning, answer, model);
	if (ruleset_id)
		fx_insert(db,
			  "INSERT INTO trace_outcomes (trace_id, ruleset_id, accepted, flagged, judged_at)"
			  " VALUES (?1, ?2, ?3, ?4, 1)",
			  "iiii", tr, ruleset_id, (int64_t)accepted, (int64_t)flagged);
	return tr;
}

/* Deterministic text of about n bytes (words from a small vocabulary, with
 * newlines, quotes and a non-ASCII word so escaping is exercised). */
static void fx_text(struct buf *b, uint64_t seed, size_t n)
{
	static const char *words[] = {"so",	      "the",	    "answer", "is",    "we",  "compute",
				      "\\frac{1}{2}", "step",	    "check",  "x",     "=",   "3,",
				      "then",	      "\"quoted\"", "Wait,",  "naïve", "sum", "\x01ctl",
				      "of",	      "\n\n",	    "terms",  "\t"};
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
	buf_reset(b);
	while (b->len < n) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		buf_puts(b, words[s % (sizeof(words) / sizeof(words[0]))]);
		buf_putc(b, ' ');
	}
}

#endif
