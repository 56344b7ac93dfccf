/*
 * export.h - the last stage: accepted traces -> zstd training shards and a
 * checksummed manifest (DESIGN §7, §13 "Shards").
 *
 * An export runs in two steps.  export_plan_new() reads the database once,
 * streaming, and keeps only a small record per selected trace (ids, shuffle
 * key, split): which traces, in which order, in which split.  Its fingerprint
 * says whether anything changed since an earlier export (refresh uses it).
 * export_plan_write() then cuts each split's order into shards of equally
 * many lines (shard_bytes over the mean of the first lines) and builds and
 * compresses each shard start to end on one thread with its own connection,
 * shards in parallel (so bytes never depend on the machine or the thread
 * count); it writes everything under OUTDIR.tmp-PID, fsyncs, records
 * `exports` and `export_items`, and renames the directory into place.
 *
 * A line's `id` is the hex of H(prompt hash, profile hash, sample index); the
 * split is H(prompt hash, split salt) < fraction * 2^64, so a prompt never
 * straddles splits and a growing set never moves one.  Nothing depends on
 * the clock.
 */
#ifndef DISTILL_EXPORT_H
#define DISTILL_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct db;
struct buf;

#define EXPORT_FORMAT_VERSION 1
#define EXPORT_SPLIT_SALT "distill-split-v1"

/* --include flags: widen the export. */
enum export_include {
	EXPORT_INCLUDE_DUPLICATES = 1 << 0,
	EXPORT_INCLUDE_CONTAMINATED = 1 << 1,
	EXPORT_INCLUDE_FLAGGED = 1 << 2,
};

struct export_opts {
	const char *ruleset;	/* rule-set hash, "current" or NULL (current) */
	int64_t max_per_prompt; /* keep the first M accepted samples per prompt; 0: all */
	double val_fraction;	/* 0..1; 0: no val split */
	int64_t shard_bytes;	/* about this many JSONL bytes per shard, before compression */
	int level;		/* zstd level */
	uint64_t seed;		/* shuffle seed */
	unsigned include;	/* enum export_include */
	const char *domain;	/* selectors; NULL: any */
	const char *source;
	const char *profile;
	int64_t max_tokens;   /* completion tokens <= this; 0: no bound */
	const char *mix_json; /* contents of a --mix file (quotas), or NULL */
	int threads;	      /* shards built in parallel; 0: the number of cores */
};

/* Defaults: current rule set, level 3, 256 MiB shards, seed 0, no val. */
void export_opts_init(struct export_opts *o);

/* Parse "duplicates,contaminated,flagged" (any subset) into *flags. */
int export_include_parse(const char *s, unsigned *flags, struct derr *e);

struct export_plan;

/* Select and order the traces to export.  Reads the database (streaming;
 * memory is ~64 bytes per selected trace); writes nothing.  DERR_NOTFOUND
 * when the rule set does not exist (or no current one), DERR_PARSE for a bad
 * mix file, DERR_INVALID for bad options.  *out is NULL on failure. */
int export_plan_new(struct db *db, const struct export_opts *o, struct export_plan **out, struct derr *e);
void export_plan_free(struct export_plan *p);

/* What the plan holds. */
int64_t export_plan_samples(const struct export_plan *p);
int64_t export_plan_train(const struct export_plan *p);
int64_t export_plan_val(const struct export_plan *p);
const char *export_plan_ruleset(const struct export_plan *p);
/* 64 hex chars over the rule set, the options and the ordered line ids:
 * equal fingerprints mean byte-identical shards. */
const char *export_plan_fingerprint(const struct export_plan *p);
/* Accepted / judged traces under the plan's rule set, in [0, 1]; -1 if none judged. */
double export_plan_accept_rate(const struct export_plan *p);

struct export_result {
	int64_t export_id; /* the new `exports` row */
	int64_t samples, train, val;
	int shards;
	int64_t bytes; /* compressed bytes of all shards */
	char manifest_sha256[65];
};

/* Write the planned export to outdir: aside under outdir.tmp-PID, then
 * renamed.  An existing outdir is DERR_EXISTS unless force (then it is
 * replaced as a whole).  version (e.g. "v0003", or NULL) is stored in the
 * `exports` row.  On failure the temp directory is removed and neither
 * outdir nor the database changed. */
int export_plan_write(struct db *db, struct export_plan *p, const char *outdir, int force,
		      const char *version, struct export_result *res, struct derr *e);

/* A parsed manifest. */
struct export_shard {
	char file[64]; /* a bare file name: never a path */
	char split[8]; /* "train" | "val" */
	int64_t samples;
	int64_t bytes;
	char sha256[65];
};

struct export_manifest {
	int format_version;
	char ruleset_hash[80];
	int64_t samples;
	struct export_shard *shards;
	int nshards;
};

/* Parse manifest.json bytes (untrusted: fuzzed).  Shard names must be
 * train-/val-NNNNN-of-NNNNN.jsonl.zst with a matching split, so no entry can
 * name a path outside the directory.  DERR_PARSE with a message otherwise. */
int export_manifest_parse(const char *p, size_t n, struct export_manifest *m, struct derr *e);
void export_manifest_release(struct export_manifest *m);

/* Recompute each shard's size, SHA-256 and line count (decompressing it,
 * which also checks the zstd frame checksums) against dir/manifest.json.
 * DERR_MISMATCH naming the first bad shard, DERR_NOTFOUND for a missing one.
 * *samples (may be NULL) receives the verified line total. */
int export_verify(const char *dir, int64_t *samples, struct derr *e);

/* Remove a directory tree (symlinks are removed, never followed).  0 or -1. */
int export_rmtree(const char *path);

#endif
