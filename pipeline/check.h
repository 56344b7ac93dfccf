/*
 * check.h - `distill check`: SQLite's integrity check plus the invariants
 * the pipeline promises (DESIGN §3, §13): one trace per done job and none
 * for a job that is not done, no lease left on a finished job, every lease
 * with an owner and an expiry, foreign keys intact.  Read-only.
 */
#ifndef DISTILL_CHECK_H
#define DISTILL_CHECK_H

#include <stdint.h>

#include "err.h"

struct db;

/* One violated invariant: its name, how many rows break it, and up to
 * CHECK_EXAMPLES of their ids (comma-separated; "" for the integrity check,
 * whose messages are in examples instead). */
typedef void check_report_fn(void *ctx, const char *invariant, int64_t count, const char *examples);

#define CHECK_EXAMPLES 10

/* Run every check; report each violation through fn (may be NULL).
 * *violations receives the number of invariants broken (0: all good).
 * Returns 0, or a negative code when the checks could not run. */
int check_run(struct db *db, check_report_fn *fn, void *ctx, int *violations, struct derr *e);

#endif
