/*
 * dedup.h - near-duplicate prompts and near-identical traces of the same
 * prompt (DESIGN §6, §13).  Reads prompts and traces from the database,
 * keeps a persistent MinHash/LSH index in dedup_index (schema 005), and
 * records clusters in dup_members: marks, never deletions, never survivors.
 *
 * Two items are near duplicates when they share an LSH band key, belong to
 * the same group, and the exact Jaccard of their shingle sets is at least
 * the threshold.  Groups: traces only match traces of the same prompt (on
 * the reasoning text); prompts only match prompts with the same multiset of
 * numbers (numbers are significant).  A cluster is a connected component of
 * that relation; its members are ranked by id, rank 0 (the earliest) has
 * duplicate_of NULL, every other member duplicate_of = the rank-0 id,
 * cluster_id = the rank-0 id, similarity = exact Jaccard with rank 0.
 * Singletons get no row.
 *
 * Incremental: a run handles only items with ids above the last run's, and
 * compares them against the stored index, so it gives the same marks as a
 * run from scratch.  Other parameters than the stored ones rebuild the
 * index and the marks of that kind.
 */
#ifndef DISTILL_DEDUP_H
#define DISTILL_DEDUP_H

#include <stdint.h>

#include "err.h"
#include "minhash.h"

struct db;

enum dedup_kind { DEDUP_PROMPT, DEDUP_TRACE };

struct dedup_report {
	int rebuilt;	    /* the parameters changed: index and marks were rebuilt */
	int64_t new_items;  /* items read this run */
	int64_t indexed;    /* of those, items with at least one token */
	int64_t index_size; /* items in the index after the run */
	int64_t candidates; /* candidate pairs compared exactly */
	int64_t confirmed;  /* candidate pairs at or above the threshold */
	int64_t rows;	    /* dup_members rows written or rewritten */
	int64_t duplicates; /* members with rank > 0, after the run */
	int64_t clusters;   /* clusters, after the run */
};

/* Progress callback: done of total new items read (may be NULL). */
typedef void dedup_progress_fn(void *ctx, enum dedup_kind kind, int64_t done, int64_t total);

/* Run dedup of one kind with params p (minhash_params_default for the
 * documented defaults).  Reads without a write lock; writes the index rows,
 * the marks and the state in one transaction at the end.  Returns 0, a
 * DERR_* from the database, or DERR_DEDUP_RACE when another run changed the
 * state meanwhile (nothing written).  r is filled on success. */
int dedup_run(struct db *db, enum dedup_kind kind, const struct minhash_params *p,
	      dedup_progress_fn *progress, void *ctx, struct dedup_report *r, struct derr *e);

/* "prompt" or "trace". */
const char *dedup_kind_name(enum dedup_kind kind);

#endif
