/*
 * check.c - integrity and invariant checks (see check.h).  Each invariant
 * is a row of one table: a name and a query returning the ids that break
 * it.
 */
#include "check.h"
#include "buf.h"
#include "db.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const struct invariant {
	const char *name;
	const char *sql; /* ids of the offending rows */
} invariants[] = {
	{"done job without a trace",
	 "SELECT j.id FROM jobs j WHERE j.state = 'done' "
	 "AND NOT EXISTS (SELECT 1 FROM traces t WHERE t.job_id = j.id) ORDER BY j.id"},
	{"trace of a job that is not done", "SELECT t.id FROM traces t LEFT JOIN jobs j ON j.id = t.job_id "
					    "WHERE j.id IS NULL OR j.state != 'done' ORDER BY t.id"},
	{"lease on a job that is not leased",
	 "SELECT id FROM jobs WHERE state != 'leased' "
	 "AND (lease_owner IS NOT NULL OR lease_expires IS NOT NULL) ORDER BY id"},
	{"leased job without owner or expiry",
	 "SELECT id FROM jobs WHERE state = 'leased' AND (lease_owner IS NULL OR lease_expires IS NULL) "
	 "ORDER BY id"},
	{"job of a missing prompt or profile",
	 "SELECT j.id FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM prompts p WHERE p.id = j.prompt_id) "
	 "OR NOT EXISTS (SELECT 1 FROM profiles f WHERE f.id = j.profile_id) ORDER BY j.id"},
	{"occurrence of a missing prompt", "SELECT s.id FROM prompt_sources s WHERE NOT EXISTS (SELECT 1 "
					   "FROM prompts p WHERE p.id = s.prompt_id) "
					   "ORDER BY s.id"},
	{"export item of a missing trace or export",
	 "SELECT i.trace_id FROM export_items i WHERE NOT EXISTS (SELECT 1 FROM traces t WHERE t.id = "
	 "i.trace_id) OR NOT EXISTS (SELECT 1 FROM exports x WHERE x.id = i.export_id) ORDER BY i.trace_id"},
	{"more than one current rule set",
	 "SELECT id FROM rulesets WHERE is_current = 1 ORDER BY id LIMIT -1 OFFSET 1"},
};

static int run_invariant(struct db *db, const struct invariant *inv, check_report_fn *fn, void *ctx, int *bad,
			 struct derr *e)
{
	struct db_stmt *st;
	struct buf ex = BUF_INIT(4096);
	int64_t n = 0;
	int rc = db_prepare(db, inv->sql, &st, e);

	if (rc)
		return rc;
	while ((rc = db_step(st, e)) == 1) {
		if (n < CHECK_EXAMPLES)
			buf_printf(&ex, "%s%lld", n ? "," : "", (long long)db_col_int64(st, 0));
		n++;
	}
	db_finalize(st);
	if (rc == 0 && n) {
		(*bad)++;
		if (fn)
			fn(ctx, inv->name, n, buf_str(&ex));
	}
	buf_release(&ex);
	return rc;
}

int check_run(struct db *db, check_report_fn *fn, void *ctx, int *violations, struct derr *e)
{
	struct buf ic = BUF_INIT(1 << 20);
	int rc, bad = 0;

	*violations = 0;
	rc = db_integrity_check(db, &ic, e);
	if (rc)
		goto out;
	if (strcmp(buf_str(&ic), "ok") != 0) {
		bad++;
		if (fn)
			fn(ctx, "integrity_check", 1, buf_str(&ic));
	}
	/* One read transaction so the invariants see one state of the queue. */
	if ((rc = db_begin(db, e)))
		goto out;
	for (size_t i = 0; !rc && i < ARRAY_SIZE(invariants); i++)
		rc = run_invariant(db, &invariants[i], fn, ctx, &bad, e);
	db_rollback(db);
	*violations = bad;
out:
	buf_release(&ic);
	return rc;
}
