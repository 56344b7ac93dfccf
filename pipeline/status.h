/*
 * status.h - one read-only snapshot of the whole pipeline for `distill
 * status`: prompts by source and domain, jobs by state, traces, acceptance
 * under the current rule set (trace_outcomes, rule_stats), dedup and
 * contamination marks, exports, cost.  Stages that have not run read as 0.
 */
#ifndef DISTILL_STATUS_H
#define DISTILL_STATUS_H

#include <stdint.h>

#include "err.h"
#include "queue.h"

struct db;

struct status_count {
	char *name;
	int64_t n;
};

/* One row of the rule_stats view. */
struct status_rule {
	char *rule;
	int64_t evaluated, pass, fail, limit, skip, rejected;
};

struct status {
	int schema_version;
	int64_t prompts, reference_conflicts;
	struct status_count *by_source, *by_domain; /* distinct prompts per source; per domain */
	int nsource, ndomain;
	int64_t jobs[QS_COUNT], jobs_total;
	int64_t traces;
	char ruleset[65]; /* hash of the current rule set; "" when none */
	int64_t judged, accepted, rejected, flagged;
	struct status_rule *rules;
	int nrules;
	int64_t near_duplicate_prompts, near_duplicate_traces, contaminated_prompts;
	int64_t exports;     /* not pruned */
	char *latest_export; /* outdir of the newest export, or NULL */
	int64_t latest_export_samples;
	int64_t attempts, cost_micro_usd;
};

/* Fill s from db (one read transaction, so the numbers agree).  On error s
 * is released. */
int status_collect(struct db *db, struct status *s, struct derr *e);
void status_release(struct status *s);

#endif
