/*
 * verdict.c - rule sets, verdicts and outcomes in the database (see
 * verdict.h).  SQL lives here as named constants, always with bound
 * parameters.
 */
#include "verdict.h"
#include "buf.h"
#include "db.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static const char SQL_RULESET_INSERT[] =
	"INSERT OR IGNORE INTO rulesets(hash, text, engine_version, checker_version, is_current, created_at)"
	" VALUES (?1, ?2, ?3, ?4, 0, ?5)";
static const char SQL_RULESET_CLEAR[] =
	"UPDATE rulesets SET is_current = 0 WHERE is_current = 1 AND hash <> ?1";
static const char SQL_RULESET_SET[] = "UPDATE rulesets SET is_current = 1 WHERE hash = ?1";
static const char SQL_RULESET_ID[] = "SELECT id FROM rulesets WHERE hash = ?1";

/* Traces still to judge: ?1 rule set, ?2 all. */
#define PENDING_WHERE \
	"(?2 OR NOT EXISTS (SELECT 1 FROM trace_outcomes o WHERE o.trace_id = t.id AND o.ruleset_id = ?1))"
static const char SQL_PENDING_COUNT[] = "SELECT COUNT(*), MAX(t.id) FROM traces t WHERE " PENDING_WHERE;
static const char SQL_PENDING_NTH[] =
	"SELECT t.id FROM traces t WHERE " PENDING_WHERE " ORDER BY t.id LIMIT 1 OFFSET ?3";

/* The trace and what the rules read of its prompt; columns a rule set does
 * not use are read as NULL (the source lookup is a subquery per trace). */
static const char SQL_TRACE_SELECT[] = "SELECT t.id, ";
static const char SQL_COL_PROMPT[] = "p.text";
static const char SQL_TRACE_MIDDLE[] =
	", t.reasoning, t.answer, t.finish_reason, t.placement, p.reference, p.domain, ";
static const char SQL_COL_SOURCE[] =
	"(SELECT ps.source FROM prompt_sources ps WHERE ps.prompt_id = p.id ORDER BY ps.id LIMIT 1)";
static const char SQL_COL_PROFILE[] = "(SELECT pr.name FROM profiles pr WHERE pr.id = j.profile_id)";
static const char SQL_TRACE_FROM[] =
	" FROM traces t JOIN jobs j ON j.id = t.job_id JOIN prompts p ON p.id = j.prompt_id";
static const char SQL_TRACE_BATCH_WHERE[] =
	" WHERE t.id > ?3 AND t.id <= ?4 AND " PENDING_WHERE " ORDER BY t.id LIMIT ?5";
static const char SQL_TRACE_ONE_WHERE[] = " WHERE t.id = ?1";

static const char SQL_PROFILE_ID[] = "SELECT id FROM profiles WHERE name = ?1";
static const char SQL_CURRENT_RULESET[] = "SELECT id FROM rulesets WHERE is_current = 1";
static const char SQL_UNJUDGED[] =
	"SELECT COUNT(*) FROM traces t JOIN jobs j ON j.id = t.job_id WHERE j.profile_id = ?1"
	" AND NOT EXISTS (SELECT 1 FROM trace_outcomes o WHERE o.trace_id = t.id AND o.ruleset_id = ?2)";
static const char SQL_UNACCEPTED_PROMPTS[] =
	"SELECT p.id FROM prompts p WHERE ?3 = 0 OR NOT EXISTS (SELECT 1 FROM jobs j"
	" JOIN traces t ON t.job_id = j.id"
	" JOIN trace_outcomes o ON o.trace_id = t.id AND o.ruleset_id = ?2 AND o.accepted = 1"
	" WHERE j.prompt_id = p.id AND j.profile_id = ?1) ORDER BY p.id";

/* A judging connection reads every trace once: map the file instead of
 * copying pages through read(), and keep a larger page cache for the
 * indexes it writes.  Foreign keys are not checked while judging: every
 * verdict and outcome names the trace it was just read from and the rule set
 * that verdict_ruleset_use made, and traces are never deleted, so the check
 * (two parent lookups per row, about as much as the row itself) could not
 * fail.  The connection gets its checks back when judging ends. */
static const char SQL_JUDGE_TUNING[] =
	"PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -65536; PRAGMA foreign_keys = OFF";
static const char SQL_JUDGE_DONE[] = "PRAGMA foreign_keys = ON";

static const char SQL_VERDICT_PUT[] =
	"INSERT OR REPLACE INTO verdicts(trace_id, ruleset_id, rule, state, action, detail)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_OUTCOME_PUT[] =
	"INSERT OR REPLACE INTO trace_outcomes(trace_id, ruleset_id, accepted, flagged, judged_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5)";

int verdict_ruleset_use(struct db *db, const char *hash, const char *text, const char *checker_version,
			int64_t *id, int *created, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc;

	if ((rc = db_begin_immediate(db, e)))
		return rc;
	if ((rc = db_prepare(db, SQL_RULESET_INSERT, &st, e)))
		goto out;
	db_bind_text(st, 1, hash, -1);
	db_bind_text(st, 2, text, -1);
	db_bind_text(st, 3, FILTER_ENGINE_VERSION, -1);
	db_bind_text(st, 4, checker_version, -1);
	db_bind_int64(st, 5, now_ms());
	if ((rc = db_step(st, e)) < 0)
		goto out;
	if (created)
		*created = db_changes(db) > 0;
	db_finalize(st);
	st = NULL;
	if ((rc = db_prepare(db, SQL_RULESET_CLEAR, &st, e)))
		goto out;
	db_bind_text(st, 1, hash, -1);
	if ((rc = db_step(st, e)) < 0)
		goto out;
	db_finalize(st);
	st = NULL;
	if ((rc = db_prepare(db, SQL_RULESET_SET, &st, e)))
		goto out;
	db_bind_text(st, 1, hash, -1);
	if ((rc = db_step(st, e)) < 0)
		goto out;
	db_finalize(st);
	st = NULL;
	if ((rc = db_prepare(db, SQL_RULESET_ID, &st, e)))
		goto out;
	db_bind_text(st, 1, hash, -1);
	if ((rc = db_step(st, e)) < 0)
		goto out;
	if (rc == 0) {
		rc = derr_set(e, DERR_DB, "rule set %s vanished", hash);
		goto out;
	}
	*id = db_col_int64(st, 0);
	db_finalize(st);
	st = NULL;
	rc = db_commit(db, e);
out:
	db_finalize(st);
	if (rc < 0)
		db_rollback(db);
	return rc < 0 ? rc : 0;
}

int verdict_plan(struct db *db, int64_t ruleset_id, int all, int parts, int64_t *bounds, int *nparts,
		 int64_t *count, struct derr *e)
{
	struct db_stmt *st = NULL;
	int64_t n = 0, maxid = 0;
	int rc, k = 0;

	*nparts = 0;
	*count = 0;
	if (parts < 1)
		parts = 1;
	if ((rc = db_prepare(db, SQL_PENDING_COUNT, &st, e)))
		return rc;
	db_bind_int64(st, 1, ruleset_id);
	db_bind_int64(st, 2, all ? 1 : 0);
	if ((rc = db_step(st, e)) < 0)
		goto out;
	n = db_col_int64(st, 0);
	maxid = db_col_int64(st, 1);
	db_finalize(st);
	st = NULL;
	*count = n;
	if (n == 0)
		return 0;
	if (parts > n)
		parts = (int)n;
	if ((rc = db_prepare(db, SQL_PENDING_NTH, &st, e)))
		return rc;
	bounds[k++] = 0;
	/* Range i ends at the id of pending trace number (i+1)*n/parts. */
	for (int i = 1; i < parts; i++) {
		db_reset(st);
		db_bind_int64(st, 1, ruleset_id);
		db_bind_int64(st, 2, all ? 1 : 0);
		db_bind_int64(st, 3, (int64_t)i * n / parts - 1);
		if ((rc = db_step(st, e)) < 0)
			goto out;
		if (rc == 1 && db_col_int64(st, 0) > bounds[k - 1])
			bounds[k++] = db_col_int64(st, 0);
	}
	bounds[k++] = maxid;
	*nparts = k - 1;
	rc = 0;
out:
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

/* The trace query for what the rules use (FILTER_USES_*), then where. */
static void trace_sql(struct buf *sql, unsigned uses, const char *where)
{
	buf_puts(sql, SQL_TRACE_SELECT);
	buf_puts(sql, uses & FILTER_USES_PROMPT ? SQL_COL_PROMPT : "NULL");
	buf_puts(sql, SQL_TRACE_MIDDLE);
	buf_puts(sql, uses & FILTER_USES_SOURCE ? SQL_COL_SOURCE : "NULL");
	buf_puts(sql, ", ");
	buf_puts(sql, uses & FILTER_USES_PROFILE ? SQL_COL_PROFILE : "NULL");
	buf_puts(sql, SQL_TRACE_FROM);
	buf_puts(sql, where);
}

/* Fill a filter_doc from the current row of a SQL_TRACE_COLUMNS query.
 * Pointers are valid until the statement steps again. */
static void doc_from_row(struct db_stmt *st, struct filter_doc *d)
{
	memset(d, 0, sizeof(*d));
	d->prompt = db_col_text(st, 1);
	d->prompt_len = d->prompt ? db_col_bytes(st, 1) : 0;
	d->reasoning = db_col_text(st, 2);
	d->reasoning_len = d->reasoning ? db_col_bytes(st, 2) : 0;
	d->answer = db_col_text(st, 3);
	d->answer_len = d->answer ? db_col_bytes(st, 3) : 0;
	d->finish_reason = db_col_text(st, 4);
	d->placement = db_col_text(st, 5);
	d->reference = db_col_text(st, 6);
	d->domain = db_col_text(st, 7);
	d->source = db_col_text(st, 8);
	d->profile = db_col_text(st, 9);
}

/* Verdicts of one batch, kept until they are written. */
struct pending {
	int64_t trace_id;
	int accepted, flagged;
};

/* The two insert statements of a judging run, prepared once. */
struct writer {
	struct db_stmt *verdict, *outcome;
};

static int write_batch(struct db *db, struct filter *f, struct writer *w, int64_t ruleset_id,
		       const struct pending *p, const struct filter_verdict *v, int n, struct derr *e)
{
	struct db_stmt *sv = w->verdict, *so = w->outcome;
	int nr = filter_rule_count(f), rc;
	int64_t now = now_ms();

	if ((rc = db_begin_immediate(db, e)))
		return rc;
	for (int i = 0; i < n; i++) {
		for (int r = 0; r < nr; r++) {
			const struct filter_verdict *x = &v[(size_t)i * (size_t)nr + (size_t)r];
			db_reset(sv);
			db_bind_int64(sv, 1, p[i].trace_id);
			db_bind_int64(sv, 2, ruleset_id);
			/* Every string outlives the step: bound without a copy. */
			db_bind_text_ref(sv, 3, filter_rule_name(f, r), -1);
			db_bind_text_ref(sv, 4, filter_state_name(x->state), -1);
			db_bind_text_ref(sv, 5, filter_rule_rejects(f, r) ? "reject" : "flag", -1);
			db_bind_text_ref(sv, 6, x->state != FILTER_PASS && x->detail[0] ? x->detail : NULL,
					 -1);
			if ((rc = db_step(sv, e)) < 0)
				goto out;
		}
		db_reset(so);
		db_bind_int64(so, 1, p[i].trace_id);
		db_bind_int64(so, 2, ruleset_id);
		db_bind_int64(so, 3, p[i].accepted);
		db_bind_int64(so, 4, p[i].flagged);
		db_bind_int64(so, 5, now);
		if ((rc = db_step(so, e)) < 0)
			goto out;
	}
	rc = db_commit(db, e);
out:
	db_reset(sv);
	db_reset(so);
	if (rc < 0)
		db_rollback(db);
	return rc < 0 ? rc : 0;
}

int verdict_judge_range(struct db *db, struct filter *f, int64_t ruleset_id, int all, int64_t lo, int64_t hi,
			int batch, struct verdict_stats *stats, struct derr *e)
{
	struct db_stmt *st = NULL;
	struct buf sql = BUF_INIT(4096);
	int nr = filter_rule_count(f), rc = 0;
	struct pending *p;
	struct filter_verdict *v;
	struct writer w = {NULL, NULL};
	int64_t last = lo;

	if (batch < 1)
		batch = 1;
	p = xcalloc((size_t)batch, sizeof(*p));
	v = xcalloc((size_t)batch * (size_t)(nr ? nr : 1), sizeof(*v));
	trace_sql(&sql, filter_uses(f), SQL_TRACE_BATCH_WHERE);
	if ((rc = db_exec(db, SQL_JUDGE_TUNING, e)) || (rc = db_prepare(db, buf_str(&sql), &st, e)) ||
	    (rc = db_prepare(db, SQL_VERDICT_PUT, &w.verdict, e)) ||
	    (rc = db_prepare(db, SQL_OUTCOME_PUT, &w.outcome, e)))
		goto out;
	for (;;) {
		int n = 0;
		db_reset(st);
		db_bind_int64(st, 1, ruleset_id);
		db_bind_int64(st, 2, all ? 1 : 0);
		db_bind_int64(st, 3, last);
		db_bind_int64(st, 4, hi);
		db_bind_int64(st, 5, batch);
		/* Judge while reading: the row's text is used in place. */
		while ((rc = db_step(st, e)) == 1) {
			struct filter_doc d;
			struct filter_verdict *row = &v[(size_t)n * (size_t)nr];
			doc_from_row(st, &d);
			p[n].trace_id = db_col_int64(st, 0);
			filter_judge(f, &d, row);
			filter_outcome(f, row, &p[n].accepted, &p[n].flagged);
			stats->bytes += (int64_t)(d.reasoning_len + d.answer_len);
			n++;
		}
		if (rc < 0)
			goto out;
		db_reset(st);
		if (n == 0)
			break;
		if ((rc = write_batch(db, f, &w, ruleset_id, p, v, n, e)))
			goto out;
		for (int i = 0; i < n; i++) {
			stats->judged++;
			stats->accepted += p[i].accepted;
			stats->flagged += p[i].flagged;
		}
		last = p[n - 1].trace_id;
		if (n < batch)
			break;
	}
	rc = 0;
out:
	db_finalize(st);
	db_finalize(w.verdict);
	db_finalize(w.outcome);
	buf_release(&sql);
	free(p);
	free(v);
	{
		/* A first error stays the one reported. */
		struct derr done = {0};
		int rc2 = db_exec(db, SQL_JUDGE_DONE, &done);
		if (rc2 && !rc)
			rc = derr_set(e, rc2, "%s", done.msg);
	}
	return rc;
}

static char *dup_or_null(const char *s, size_t n)
{
	return s ? xstrndup(s, n) : NULL;
}

int verdict_trace_load(struct db *db, int64_t id, struct verdict_trace *t, struct derr *e)
{
	struct db_stmt *st = NULL;
	struct buf sql = BUF_INIT(4096);
	struct filter_doc d;
	int rc;

	memset(t, 0, sizeof(*t));
	trace_sql(&sql, ~0u, SQL_TRACE_ONE_WHERE);
	rc = db_prepare(db, buf_str(&sql), &st, e);
	buf_release(&sql);
	if (rc)
		return rc;
	db_bind_int64(st, 1, id);
	rc = db_step(st, e);
	if (rc == 0)
		rc = derr_set(e, DERR_NOTFOUND, "no trace %lld", (long long)id);
	if (rc < 0) {
		db_finalize(st);
		return rc;
	}
	doc_from_row(st, &d);
	t->id = id;
	t->doc = d;
	/* Copy every string: the statement is finalized below. */
	t->owned[0] = dup_or_null(d.prompt, d.prompt_len);
	t->owned[1] = dup_or_null(d.reasoning, d.reasoning_len);
	t->owned[2] = dup_or_null(d.answer, d.answer_len);
	t->owned[3] = dup_or_null(d.finish_reason, d.finish_reason ? strlen(d.finish_reason) : 0);
	t->owned[4] = dup_or_null(d.placement, d.placement ? strlen(d.placement) : 0);
	t->owned[5] = dup_or_null(d.reference, d.reference ? strlen(d.reference) : 0);
	t->owned[6] = dup_or_null(d.domain, d.domain ? strlen(d.domain) : 0);
	t->owned[7] = dup_or_null(d.source, d.source ? strlen(d.source) : 0);
	t->owned[8] = dup_or_null(d.profile, d.profile ? strlen(d.profile) : 0);
	t->doc.prompt = t->owned[0];
	t->doc.reasoning = t->owned[1];
	t->doc.answer = t->owned[2];
	t->doc.finish_reason = t->owned[3];
	t->doc.placement = t->owned[4];
	t->doc.reference = t->owned[5];
	t->doc.domain = t->owned[6];
	t->doc.source = t->owned[7];
	t->doc.profile = t->owned[8];
	db_finalize(st);
	return 0;
}

void verdict_trace_release(struct verdict_trace *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(t->owned); i++)
		free(t->owned[i]);
	memset(t, 0, sizeof(*t));
}

/* The first column of a one-row query with up to two int64 parameters. */
static int query_id(struct db *db, const char *sql, const char *text, int64_t a, int64_t b, int64_t *out,
		    struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, sql, &st, e);
	if (rc)
		return rc;
	if (text)
		db_bind_text(st, 1, text, -1);
	else if (db_param_index(st, "?1"))
		db_bind_int64(st, 1, a);
	if (db_param_index(st, "?2"))
		db_bind_int64(st, 2, b);
	rc = db_step(st, e);
	if (rc == 1)
		*out = db_col_int64(st, 0);
	db_finalize(st);
	return rc;
}

int verdict_prompts_to_sample(struct db *db, const char *profile, int only_unaccepted, int64_t **ids,
			      int64_t *n, int64_t *profile_id, int64_t *unjudged, struct derr *e)
{
	struct db_stmt *st = NULL;
	int64_t ruleset = 0, cap = 0;
	int rc;

	*ids = NULL;
	*n = 0;
	*unjudged = 0;
	rc = query_id(db, SQL_PROFILE_ID, profile, 0, 0, profile_id, e);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return derr_set(e, DERR_NOTFOUND, "no profile named '%s'", profile);
	rc = query_id(db, SQL_CURRENT_RULESET, NULL, 0, 0, &ruleset, e);
	if (rc < 0)
		return rc;
	if (rc == 0 && only_unaccepted)
		return derr_set(e, DERR_NOTFOUND, "no current rule set: run distill filter first");
	if (rc == 1 && (rc = query_id(db, SQL_UNJUDGED, NULL, *profile_id, ruleset, unjudged, e)) < 0)
		return rc;
	if ((rc = db_prepare(db, SQL_UNACCEPTED_PROMPTS, &st, e)))
		return rc;
	db_bind_int64(st, 1, *profile_id);
	db_bind_int64(st, 2, ruleset);
	db_bind_int64(st, 3, only_unaccepted ? 1 : 0);
	while ((rc = db_step(st, e)) == 1) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 1024;
			*ids = xrealloc(*ids, (size_t)cap * sizeof(**ids));
		}
		(*ids)[(*n)++] = db_col_int64(st, 0);
	}
	db_finalize(st);
	if (rc < 0) {
		free(*ids);
		*ids = NULL;
		*n = 0;
		return rc;
	}
	return 0;
}
