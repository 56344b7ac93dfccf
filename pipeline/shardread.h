/*
 * shardread.h - the trainer's side of the export format (DESIGN §7, §13
 * "Shards"): parse OUTDIR/manifest.json, verify each shard's size and
 * SHA-256 against it, and stream a split's records (zstd JSON lines) one
 * parsed object at a time.  Also the profile templates the manifest records
 * and their application to a prompt.  Untrusted input: every line and the
 * manifest are bounded; shard file names cannot leave the directory.
 */
#ifndef DISTILL_SHARDREAD_H
#define DISTILL_SHARDREAD_H

#include <cjson/cJSON.h>

#include "err.h"

struct buf;

struct shardread_shard {
	char *file;  /* a plain file name inside the export directory */
	char *split; /* "train", "val", ... */
	long long samples, bytes;
	char sha256[65];
};

struct shardread_profile {
	char *name;
	char *template_; /* user message template, "{prompt}" marks the prompt; NULL: the prompt as is */
	char *system;	 /* system prompt or NULL */
};

struct shardread_manifest {
	int format_version;
	char *ruleset; /* may be NULL */
	struct shardread_shard *shards;
	int nshards;
	struct shardread_profile *profiles;
	int nprofiles;
};

/* Parse DIR/manifest.json.  DERR_TRAIN_MANIFEST with a message naming the
 * problem (missing file, bad JSON, a shard entry without file/split/sha256,
 * a file name with a path in it). */
int shardread_manifest_load(struct shardread_manifest *m, const char *dir, struct derr *e);
void shardread_manifest_release(struct shardread_manifest *m);

/* The same from the manifest's text (n bytes); path names it in messages. */
int shardread_manifest_parse(struct shardread_manifest *m, const char *text, size_t n, const char *path,
			     struct derr *e);

/* Check every shard of split (NULL: all) exists, has the manifest's size
 * and SHA-256.  DERR_TRAIN_CHECKSUM naming the shard and both digests on a
 * mismatch; DERR_IO when a shard cannot be read.  nsamples (may be NULL)
 * gets the manifest's sample count of those shards. */
int shardread_verify(const struct shardread_manifest *m, const char *dir, const char *split,
		     long long *nsamples, struct derr *e);

/* Stream the records of split's shards in manifest order. */
struct shardread;
int shardread_open(struct shardread **out, const struct shardread_manifest *m, const char *dir,
		   const char *split, struct derr *e);
/* 1 and *rec (owned by the caller, cJSON_Delete it) for the next record;
 * 0 at the end; <0 on a read error or a line that is not a JSON object
 * (the message names shard and line). */
int shardread_next(struct shardread *r, cJSON **rec, struct derr *e);
void shardread_close(struct shardread *r);

/* The profile called name, or the only/first one when name is NULL; NULL
 * when the manifest records none (or none by that name). */
const struct shardread_profile *shardread_profile(const struct shardread_manifest *m, const char *name);

/* Apply a user template to a prompt: every "{prompt}" (or "{{prompt}}") is
 * replaced; a NULL template gives the prompt unchanged.  0 or DERR_LIMIT. */
int shardread_apply_template(const char *templ, const char *prompt, struct buf *out);

#endif
