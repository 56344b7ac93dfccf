/*
 * refresh.h - what the cron refresh needs beyond the stages themselves: its
 * config (refresh.json), stale temp-dir cleanup, the inbox scan, versioned
 * exports under export_root (vNNNN/ and the `latest` symlink), the publish
 * guard, per-source deltas and pruning.  cmd/cmd_refresh.c runs the stages
 * in order under the lock (lock.h) and calls these between them.
 */
#ifndef DISTILL_REFRESH_H
#define DISTILL_REFRESH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "export.h"

struct db;
struct buf;

struct refresh_guard {
	double max_drop_pct;	       /* exported count may fall at most this much overall */
	double max_source_drop_pct;    /* ... or for any one source */
	double max_accept_rate_change; /* accept rate may move at most this many points */
};

/* refresh.json.  Relative paths are resolved against the config file's
 * directory; NULL means "not configured". */
struct refresh_config {
	char *db;
	char *inbox;
	int64_t inbox_min_age_ms;
	char *source; /* ingest source name; NULL: the file's base name */
	char *profile;
	int64_t samples;
	char *teacher;
	char *rules;
	char **benchmarks;
	int nbenchmarks;
	char *export_root;
	struct export_opts export; /* its strings point into the fields below */
	char *x_ruleset, *x_domain, *x_source, *x_profile, *x_mix_path;
	int64_t max_time_ms;		  /* 0: none */
	int64_t budget_micro_usd;	  /* 0: none */
	int64_t budget_completion_tokens; /* 0: none */
	struct refresh_guard guard;
	int64_t keep_last;
	char *backup;
};

/* Parse a config (its path resolves relative paths).  Unknown keys, and a
 * key given twice in one object, are an error (a typo in a cron config must
 * not pass silently): DERR_PARSE. */
int refresh_config_parse(const char *json, size_t n, const char *config_path, struct refresh_config *c,
			 struct derr *e);
void refresh_config_release(struct refresh_config *c);

/* Remove `*.tmp-*` entries of dir left by killed runs; *removed counts
 * them.  Each is logged.  A missing dir is fine. */
int refresh_clean_stale(const char *dir, int *removed, struct derr *e);

/* Inbox files (`*.jsonl`, `*.jsonl.zst`) last modified at least min_age_ms
 * before now_ms whose content hash is not in `ingested_files`, sorted by
 * name.  Each entry of *paths is "dir/name"; *sha256s the matching hex
 * hashes (65 bytes each).  Free both with refresh_files_free. */
int refresh_inbox_scan(struct db *db, const char *inbox, int64_t min_age_ms, int64_t now_ms, char ***paths,
		       char ***sha256s, int *n, struct derr *e);
void refresh_files_free(char **v, int n);

/* The next version name ("v0001"...) under root, above every version the
 * database or the directory knows. */
int refresh_next_version(struct db *db, const char *root, char out[16], struct derr *e);

/* What root/latest points to ("v0003"), or "" when absent. */
void refresh_latest(const char *root, char out[64]);

/* Point root/latest at version atomically (a new symlink renamed over it). */
int refresh_publish(const char *root, const char *version, struct derr *e);

/* The newest non-pruned versioned export: id, version, fingerprint.  *id
 * is 0 when there is none. */
int refresh_last_export(struct db *db, int64_t *id, char version[16], char fingerprint[65], struct derr *e);
/* The export row of a version; *id 0 when unknown. */
int refresh_export_by_version(struct db *db, const char *version, int64_t *id, struct derr *e);

/* Compare export new_id with the published export old_id: 0 when it may be
 * published, DERR_WITHHELD with the reason in e otherwise. */
int refresh_guard_check(struct db *db, int64_t new_id, int64_t old_id, const struct refresh_guard *g,
			struct derr *e);

/* Per-source deltas of export new_id against old_id (0: none), as a JSON
 * array appended to out: [{"source", "samples", "added", "removed",
 * "verdict_changed"}] (verdict changed: removed because the current rule
 * set now rejects it). */
int refresh_deltas(struct db *db, int64_t new_id, int64_t old_id, struct buf *out, struct derr *e);

/* Prune versioned exports beyond the newest keep_last (never the one named
 * keep_version): remove root/vNNNN, mark the row pruned, delete its items.
 * Pruned version names are appended to out as a JSON array. */
int refresh_prune(struct db *db, const char *root, int64_t keep_last, const char *keep_version,
		  struct buf *out, int *npruned, struct derr *e);

#endif
