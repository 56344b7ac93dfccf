/* report_fixture.h - a small database with every stage's rows, for the report tests. */
#ifndef DISTILL_REPORT_FIXTURE_H
#define DISTILL_REPORT_FIXTURE_H

#include "db.h"
#include "t.h"

static const char REPORT_FIXTURE_SQL[] =
	"INSERT INTO profiles(id, name, created_at) VALUES (1, 'default', 0);"
	"INSERT INTO prompts(id, hash, norm_version, text, reference, domain, created_at) VALUES"
	" (1, 'h1', 1, 'What is 1+1?', '2', 'math', 0), (2, 'h2', 1, 'What is 2+2?', '4', 'math', 0),"
	" (3, 'h3', 1, 'What is 3+3?', '6', 'math', 0), (4, 'h4', 1, 'What is 3+3 ?!', '6', 'math', 0);"
	"INSERT INTO prompt_sources(prompt_id, source, created_at) VALUES"
	" (1, 'gsm8k', 0), (2, 'gsm8k', 0), (3, 'gsm8k', 0), (4, 'sim', 0), (1, 'sim', 0);"
	"INSERT INTO jobs(id, prompt_id, profile_id, sample_index, state, created_at, updated_at) VALUES"
	" (1, 1, 1, 0, 'done', 0, 0), (2, 2, 1, 0, 'done', 0, 0), (3, 3, 1, 0, 'done', 0, 0),"
	" (4, 4, 1, 0, 'done', 0, 0), (5, 1, 1, 1, 'done', 0, 0), (6, 2, 1, 1, 'dead', 0, 0);"
	"INSERT INTO attempts(job_id, attempt_no, endpoint, started_at, ms, http_status, error_code,"
	" completion_tokens, cost_micro_usd) VALUES"
	" (1, 1, 'a', 0, 100, 200, NULL, 50, 1000), (2, 1, 'a', 0, 200, 200, NULL, 60, 1000),"
	" (3, 1, 'b', 0, 300, 200, NULL, 70, 1000), (4, 1, 'b', 0, 400, 200, NULL, 80, 1000),"
	" (5, 1, 'b', 0, 500, 200, NULL, 90, 1000), (6, 1, 'b', 0, 5, 429, 'http_429', 0, 0),"
	" (6, 2, 'b', 0, 7, 500, 'http_500', 0, 0);"
	"INSERT INTO traces(id, job_id, reasoning, answer, endpoint, model, completion_tokens, created_at) "
	"VALUES"
	" (1, 1, 'one plus one is two', '\\boxed{2}', 'a', 'm', 50, 0),"
	" (2, 2, 'two plus two is four, wait, yes', '\\boxed{5}', 'a', 'm', 60, 0),"
	" (3, 3, 'three and three make six', '\\boxed{6}', 'b', 'm', 70, 0),"
	" (4, 4, '三加三等于六 three and three', '\\boxed{6}', 'b', 'm', 80, 0),"
	" (5, 5, 'again one plus one', '\\boxed{3}', 'b', 'm', 90, 0);"
	"INSERT INTO rulesets(id, hash, text, engine_version, checker_version, is_current, created_at)"
	" VALUES (1, 'abc123', 'rules', '1', '1', 1, 0);"
	"INSERT INTO verdicts(trace_id, ruleset_id, rule, state, action) VALUES"
	" (1, 1, 'answer_correct', 'pass', 'reject'), (2, 1, 'answer_correct', 'fail', 'reject'),"
	" (3, 1, 'answer_correct', 'pass', 'reject'), (4, 1, 'answer_correct', 'pass', 'reject'),"
	" (5, 1, 'answer_correct', 'fail', 'reject'),"
	" (1, 1, 'language', 'pass', 'reject'), (2, 1, 'language', 'pass', 'reject'),"
	" (3, 1, 'language', 'pass', 'reject'), (4, 1, 'language', 'fail', 'reject'),"
	" (5, 1, 'language', 'pass', 'reject');"
	"INSERT INTO trace_outcomes(trace_id, ruleset_id, accepted, judged_at) VALUES"
	" (1, 1, 1, 0), (2, 1, 0, 0), (3, 1, 1, 0), (4, 1, 0, 0), (5, 1, 0, 0);"
	"INSERT INTO dup_members(kind, member_id, cluster_id, rank, duplicate_of) VALUES"
	" ('prompt', 3, 3, 0, NULL), ('prompt', 4, 3, 1, 3);"
	"INSERT INTO contamination(prompt_id, benchmark, ngram, marked_at) VALUES (2, 'gsm8k_test', 'what is "
	"2', 0);"
	"INSERT INTO exports(id, version, outdir, options, samples, created_at) VALUES"
	" (1, 'v0001', 'exports/v0001', '{}', 2, 0);"
	"INSERT INTO export_items(export_id, trace_id, shard, line, split) VALUES"
	" (1, 1, 'train-00000-of-00001.jsonl.zst', 0, 'train'), (1, 3, 'train-00000-of-00001.jsonl.zst', 1, "
	"'train');";

/* Create dir/r.db with the fixture rows; returns an open handle. */
static inline struct db *report_fixture(const char *dir, char *path, size_t len)
{
	struct db *db = NULL;
	struct derr e = {0};
	snprintf(path, len, "%s/r.db", dir);
	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	T_OK(db_exec(db, REPORT_FIXTURE_SQL, &e), &e);
	return db;
}

#endif
