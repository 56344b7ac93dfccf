/*
 * status.c - the pipeline snapshot (see status.h).  Read-only SQL over the
 * tables and audit views of schema/001; every stage's numbers in one place.
 */
#include "status.h"
#include "db.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_PROMPTS[] = "SELECT COUNT(*), COALESCE(SUM(reference_conflict), 0) FROM prompts";
static const char SQL_BY_SOURCE[] = "SELECT source, COUNT(DISTINCT prompt_id) FROM prompt_sources "
				    "GROUP BY source ORDER BY source";
static const char SQL_BY_DOMAIN[] = "SELECT domain, COUNT(*) FROM prompts GROUP BY domain ORDER BY domain";
static const char SQL_TRACES[] = "SELECT COUNT(*) FROM traces";
static const char SQL_RULESET[] = "SELECT hash FROM current_ruleset";
static const char SQL_OUTCOMES[] = "SELECT COUNT(*), COALESCE(SUM(accepted), 0), COALESCE(SUM(flagged), 0) "
				   "FROM trace_outcomes WHERE ruleset_id = (SELECT id FROM current_ruleset)";
static const char SQL_RULES[] = "SELECT rule, evaluated, n_pass, n_fail, n_limit, n_skip, rejected "
				"FROM rule_stats ORDER BY rule";
static const char SQL_DUP_PROMPTS[] = "SELECT COUNT(*) FROM dup_members WHERE kind = 'prompt' AND rank > 0";
static const char SQL_DUP_TRACES[] = "SELECT COUNT(*) FROM dup_members WHERE kind = 'trace' AND rank > 0";
static const char SQL_CONTAMINATED[] = "SELECT COUNT(DISTINCT prompt_id) FROM contamination";
static const char SQL_EXPORTS[] = "SELECT COUNT(*) FROM exports WHERE pruned = 0";
static const char SQL_LATEST_EXPORT[] = "SELECT outdir, samples FROM exports WHERE pruned = 0 "
					"ORDER BY id DESC LIMIT 1";
static const char SQL_COST[] = "SELECT COUNT(*), COALESCE(SUM(cost_micro_usd), 0) FROM attempts";

void status_release(struct status *s)
{
	for (int i = 0; i < s->nsource; i++)
		free(s->by_source[i].name);
	for (int i = 0; i < s->ndomain; i++)
		free(s->by_domain[i].name);
	for (int i = 0; i < s->nrules; i++)
		free(s->rules[i].rule);
	free(s->by_source);
	free(s->by_domain);
	free(s->rules);
	free(s->latest_export);
	memset(s, 0, sizeof(*s));
}

/* Run sql and store up to n integer columns of its first row. */
static int query_ints(struct db *db, const char *sql, int64_t *out, int n, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, sql, &st, e);
	if (rc)
		return rc;
	rc = db_step(st, e);
	if (rc == 1)
		for (int i = 0; i < n; i++)
			out[i] = db_col_int64(st, i);
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

/* (name, count) rows into a growing array. */
static int query_counts(struct db *db, const char *sql, struct status_count **out, int *n, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, sql, &st, e), cap = 0;
	if (rc)
		return rc;
	while ((rc = db_step(st, e)) == 1) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*out = xrealloc(*out, (size_t)cap * sizeof(**out));
		}
		const char *name = db_col_text(st, 0);
		(*out)[*n].name = xstrdup(name ? name : "");
		(*out)[*n].n = db_col_int64(st, 1);
		(*n)++;
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

static int query_rules(struct db *db, struct status *s, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, SQL_RULES, &st, e), cap = 0;
	if (rc)
		return rc;
	while ((rc = db_step(st, e)) == 1) {
		if (s->nrules == cap) {
			cap = cap ? cap * 2 : 16;
			s->rules = xrealloc(s->rules, (size_t)cap * sizeof(*s->rules));
		}
		struct status_rule *r = &s->rules[s->nrules++];
		const char *name = db_col_text(st, 0);
		r->rule = xstrdup(name ? name : "");
		r->evaluated = db_col_int64(st, 1);
		r->pass = db_col_int64(st, 2);
		r->fail = db_col_int64(st, 3);
		r->limit = db_col_int64(st, 4);
		r->skip = db_col_int64(st, 5);
		r->rejected = db_col_int64(st, 6);
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

static int query_strings(struct db *db, struct status *s, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, SQL_RULESET, &st, e);
	if (rc)
		return rc;
	rc = db_step(st, e);
	if (rc == 1 && db_col_text(st, 0))
		snprintf(s->ruleset, sizeof(s->ruleset), "%s", db_col_text(st, 0));
	db_finalize(st);
	if (rc < 0 || (rc = db_prepare(db, SQL_LATEST_EXPORT, &st, e)))
		return rc;
	rc = db_step(st, e);
	if (rc == 1) {
		s->latest_export = xstrdup(db_col_text(st, 0) ? db_col_text(st, 0) : "");
		s->latest_export_samples = db_col_int64(st, 1);
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int status_collect(struct db *db, struct status *s, struct derr *e)
{
	int64_t v[3] = {0};
	int rc;

	memset(s, 0, sizeof(*s));
	/* One read transaction: a consistent snapshot while workers write. */
	if ((rc = db_begin(db, e)))
		return rc;
	if ((rc = db_user_version(db, &s->schema_version, e)))
		goto out;
	if ((rc = query_ints(db, SQL_PROMPTS, v, 2, e)))
		goto out;
	s->prompts = v[0];
	s->reference_conflicts = v[1];
	if ((rc = query_counts(db, SQL_BY_SOURCE, &s->by_source, &s->nsource, e)) ||
	    (rc = query_counts(db, SQL_BY_DOMAIN, &s->by_domain, &s->ndomain, e)) ||
	    (rc = queue_counts(db, s->jobs, e)) || (rc = query_ints(db, SQL_TRACES, &s->traces, 1, e)) ||
	    (rc = query_strings(db, s, e)))
		goto out;
	for (int i = 0; i < QS_COUNT; i++)
		s->jobs_total += s->jobs[i];
	if ((rc = query_ints(db, SQL_OUTCOMES, v, 3, e)))
		goto out;
	s->judged = v[0];
	s->accepted = v[1];
	s->flagged = v[2];
	s->rejected = s->judged - s->accepted;
	if ((rc = query_rules(db, s, e)) ||
	    (rc = query_ints(db, SQL_DUP_PROMPTS, &s->near_duplicate_prompts, 1, e)) ||
	    (rc = query_ints(db, SQL_DUP_TRACES, &s->near_duplicate_traces, 1, e)) ||
	    (rc = query_ints(db, SQL_CONTAMINATED, &s->contaminated_prompts, 1, e)) ||
	    (rc = query_ints(db, SQL_EXPORTS, &s->exports, 1, e)))
		goto out;
	if ((rc = query_ints(db, SQL_COST, v, 2, e)))
		goto out;
	s->attempts = v[0];
	s->cost_micro_usd = v[1];
out:
	db_rollback(db);
	if (rc)
		status_release(s);
	return rc;
}
