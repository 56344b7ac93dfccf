/*
 * verdict.h - the verdict store (DESIGN §3, §13): rule sets, per-rule
 * verdicts and per-trace outcomes in the database.  It reads traces with
 * their prompt, reference, domain, source and profile, hands them to the
 * filter engine (filter.h) and writes what it says, a batch per
 * transaction.  Several processes may judge disjoint id ranges at once,
 * each with its own connection.
 */
#ifndef DISTILL_VERDICT_H
#define DISTILL_VERDICT_H

#include <stdint.h>

#include "err.h"
#include "filter.h"

struct db;

/* Record the rule set (its hash, canonical text and versions) if new, and
 * make it the current one.  *id receives its row id; *created (may be NULL)
 * 1 when the hash was not stored before.  One transaction. */
int verdict_ruleset_use(struct db *db, const char *hash, const char *text, const char *checker_version,
			int64_t *id, int *created, struct derr *e);

/* Split the traces to judge under ruleset_id (those without an outcome, or
 * every trace when all) into at most parts id ranges of about equal size:
 * range i is (bounds[i], bounds[i+1]].  *nparts receives the number of
 * ranges (0 when nothing is to judge), *count the number of traces.  bounds
 * holds parts + 1 values. */
int verdict_plan(struct db *db, int64_t ruleset_id, int all, int parts, int64_t *bounds, int *nparts,
		 int64_t *count, struct derr *e);

struct verdict_stats {
	int64_t judged, accepted, flagged;
	int64_t bytes; /* reasoning + answer bytes judged */
};

/* Judge the traces with lo < id <= hi that need it (see verdict_plan), batch
 * traces per transaction: one verdict row per rule plus the outcome
 * (replacing earlier rows of the same rule set when all).  Stats are added
 * to *st.  On error the batches already committed stay. */
int verdict_judge_range(struct db *db, struct filter *f, int64_t ruleset_id, int all, int64_t lo, int64_t hi,
			int batch, struct verdict_stats *st, struct derr *e);

/* Prompts that need more samples under profile (by name): with
 * only_unaccepted, those with no accepted trace of that profile under the
 * current rule set; otherwise every prompt.  *ids (caller frees) and *n
 * receive them in id order, *profile_id the profile.  *unjudged receives
 * the number of the profile's traces without an outcome under the current
 * rule set (the caller decides whether that is acceptable).  DERR_NOTFOUND
 * when the profile does not exist, or when only_unaccepted and no rule set
 * is current. */
int verdict_prompts_to_sample(struct db *db, const char *profile, int only_unaccepted, int64_t **ids,
			      int64_t *n, int64_t *profile_id, int64_t *unjudged, struct derr *e);

/* One trace with everything the rules read, owning its strings. */
struct verdict_trace {
	int64_t id;
	struct filter_doc doc;
	char *owned[10];
};

/* Load trace id.  DERR_NOTFOUND when there is no such trace. */
int verdict_trace_load(struct db *db, int64_t id, struct verdict_trace *t, struct derr *e);
void verdict_trace_release(struct verdict_trace *t);

#endif
