/* gc.c - derived-row garbage collection (see gc.h). */
#include "gc.h"
#include "db.h"

#include <stddef.h>
#include <string.h>

/* "Old" means: a current rule set exists and this row belongs to another. */
static const char SQL_COUNT_VERDICTS[] =
	"SELECT COUNT(*) FROM verdicts WHERE EXISTS (SELECT 1 FROM rulesets WHERE is_current = 1)"
	" AND ruleset_id <> (SELECT id FROM rulesets WHERE is_current = 1)";
static const char SQL_DELETE_VERDICTS[] =
	"DELETE FROM verdicts WHERE EXISTS (SELECT 1 FROM rulesets WHERE is_current = 1)"
	" AND ruleset_id <> (SELECT id FROM rulesets WHERE is_current = 1)";
static const char SQL_COUNT_OUTCOMES[] =
	"SELECT COUNT(*) FROM trace_outcomes WHERE EXISTS (SELECT 1 FROM rulesets WHERE is_current = 1)"
	" AND ruleset_id <> (SELECT id FROM rulesets WHERE is_current = 1)";
static const char SQL_DELETE_OUTCOMES[] =
	"DELETE FROM trace_outcomes WHERE EXISTS (SELECT 1 FROM rulesets WHERE is_current = 1)"
	" AND ruleset_id <> (SELECT id FROM rulesets WHERE is_current = 1)";
static const char SQL_COUNT_ITEMS[] =
	"SELECT COUNT(*) FROM export_items WHERE export_id IN (SELECT id FROM exports WHERE pruned = 1)";
static const char SQL_DELETE_ITEMS[] =
	"DELETE FROM export_items WHERE export_id IN (SELECT id FROM exports WHERE pruned = 1)";

static const struct {
	const char *count_sql, *delete_sql;
	size_t field; /* offset in struct gc_counts */
} gc_steps[] = {
	{SQL_COUNT_VERDICTS, SQL_DELETE_VERDICTS, offsetof(struct gc_counts, verdicts)},
	{SQL_COUNT_OUTCOMES, SQL_DELETE_OUTCOMES, offsetof(struct gc_counts, outcomes)},
	{SQL_COUNT_ITEMS, SQL_DELETE_ITEMS, offsetof(struct gc_counts, export_items)},
};

int gc_run(struct db *db, int dry_run, struct gc_counts *out, struct derr *e)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = db_begin_immediate(db, e)))
		return rc;
	for (size_t i = 0; i < sizeof(gc_steps) / sizeof(gc_steps[0]); i++) {
		int64_t *n = (int64_t *)((char *)out + gc_steps[i].field);
		if ((rc = db_query_int64(db, gc_steps[i].count_sql, n, e)))
			goto fail;
		if (!dry_run && *n && (rc = db_exec(db, gc_steps[i].delete_sql, e)))
			goto fail;
	}
	if (dry_run) {
		db_rollback(db);
		return 0;
	}
	return db_commit(db, e);
fail:
	db_rollback(db);
	return rc;
}
