/*
 * ingest.h - the first stage: prompt files into the database (DESIGN §3,
 * §13 "Prompts").  Records come from jsonl.h, fields from fields.h, the
 * clean reference from the answer module; each distinct prompt (identity:
 * text_prompt_hash, NFC + white space collapsed) is one `prompts` row, every
 * occurrence a `prompt_sources` row, and K jobs per prompt are queued for a
 * named profile through queue_enqueue().  Used by `distill ingest`, by
 * `distill refresh` (inbox files) and by `distill import-traces`.
 *
 * Idempotent: an occurrence is (file SHA-256, line, prompt), so reading the
 * same file again adds no rows and no jobs, and a larger K adds only the
 * missing samples.  Writes are committed in batches (whole records: a
 * prompt, its occurrence and its jobs commit together), so an interrupted
 * ingest leaves a consistent database and rerunning it completes the work.
 */
#ifndef DISTILL_INGEST_H
#define DISTILL_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct db;
struct ingest;

/* A bad record: path as given, its 1-based line, a short reason. */
typedef void ingest_bad_fn(void *ctx, const char *path, long line, const char *reason);

struct ingest_options {
	const char *source;	  /* NULL: each file's base name without extensions */
	const char *profile;	  /* NULL: "default" */
	int samples;		  /* K jobs per prompt (0: queue nothing) */
	const char *prompt_field; /* NULL: auto (fields.h) */
	const char *answer_field; /* NULL: auto */
	const char *domain;	  /* NULL: auto (see ingest_domain); else math|code|general */
	int strict;		  /* any bad record: nothing is written (ingest_finish fails) */
	size_t max_record;	  /* bytes per record; 0: INGEST_MAX_RECORD */
	int batch_rows;		  /* records per commit; 0: INGEST_BATCH_ROWS */
	ingest_bad_fn *on_bad;	  /* may be NULL */
	void *ctx;
};

#define INGEST_MAX_RECORD (16u << 20)
#define INGEST_BATCH_ROWS 100000

/* Counts since ingest_open (all files). */
struct ingest_report {
	int64_t files;
	int64_t records;     /* records read (good and bad) */
	int64_t new_prompts; /* prompts that did not exist before */
	int64_t duplicates;  /* good records whose prompt already existed */
	int64_t rejected;    /* bad records, skipped */
	int64_t conflicts;   /* prompts newly flagged reference_conflict */
	int64_t jobs_added;  /* jobs queued */
	int64_t occurrences; /* prompt_sources rows added */
};

/* Start an ingest on db: creates the profile row by name if missing
 * (unbound: no hash).  Validates the options (DERR_INVALID). */
int ingest_open(struct ingest **out, struct db *db, const struct ingest_options *o, struct derr *e);

/* Stream one file (JSON Lines, plain or .zst, or a JSON array).  Bad
 * records go to on_bad and are counted, never fatal.  Returns 0, or a
 * negative code for what stops the file: unreadable or corrupt input, a
 * database error (DERR_FULL on a full disk).  On error the uncommitted
 * batch is rolled back and the ingest should be abandoned (ingest_free). */
int ingest_file(struct ingest *in, const char *path, struct derr *e);

/* One occurrence whose fields are already known (import-traces).  text is
 * the prompt as given; raw_reference may be NULL; file_sha256 and line may
 * be NULL/0.  domain NULL: the ingest's option or auto.  *prompt_id (may be
 * NULL) receives the prompt's id, *is_new (may be NULL) whether it was
 * created.  DERR_UTF8 / DERR_INVALID for a prompt that cannot be used (not
 * counted as rejected: that is the caller's to report).  Runs inside the
 * ingest's open batch, which is committed every batch_rows calls; the
 * caller may write its own rows on the same connection in between. */
int ingest_prompt(struct ingest *in, const char *text, const char *raw_reference, const char *source,
		  const char *source_id, const char *file_sha256, long line, const char *domain,
		  int64_t *prompt_id, int *is_new, struct derr *e);

/* Commit what is pending.  With strict and any bad record, roll everything
 * back and return DERR_PARSE (nothing was written).  Call once. */
int ingest_finish(struct ingest *in, struct derr *e);

/* Free; rolls back anything not finished.  NULL is fine. */
void ingest_free(struct ingest *in);

const struct ingest_report *ingest_get_report(const struct ingest *in);

/* SHA-256 (64 hex chars) of a file's bytes as stored (compressed or not). */
int ingest_file_sha256(const char *path, char out[65], struct derr *e);

/* Has a file with this SHA-256 been ingested (ingested_files)?  For refresh. */
int ingest_file_known(struct db *db, const char *sha256, int *known, struct derr *e);

/* The automatic domain of a record: "code" when it has HumanEval-style
 * fields (entry_point or canonical_solution), "math" when its source names a
 * known math set (gsm8k, math, aime, amc, minerva, olympiad...) or its clean
 * reference looks mathematical (a digit, a LaTeX command or an operator),
 * else "general".  has_code_fields: the record had those fields. */
const char *ingest_domain(const char *source, const char *clean_reference, int has_code_fields);

#endif
