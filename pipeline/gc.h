/*
 * gc.h - delete derived rows only (DESIGN §13): verdicts and outcomes of
 * rule sets that are no longer current, and the items of pruned exports.
 * Nothing a user ingested or a teacher returned is touched, and the rule
 * sets and exports rows themselves stay as the record of what happened.
 */
#ifndef DISTILL_GC_H
#define DISTILL_GC_H

#include <stdint.h>

#include "err.h"

struct db;

struct gc_counts {
	int64_t verdicts;     /* verdict rows of non-current rule sets */
	int64_t outcomes;     /* trace_outcomes rows of non-current rule sets */
	int64_t export_items; /* items of pruned exports */
};

/* Count (dry_run) or delete, in one transaction.  With no current rule set
 * no verdict is old, so none is deleted. */
int gc_run(struct db *db, int dry_run, struct gc_counts *out, struct derr *e);

#endif
