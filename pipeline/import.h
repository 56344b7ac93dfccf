/*
 * import.h - traces a team already has, recorded as done jobs (`distill
 * import-traces`): each record's prompt is ingested like any prompt
 * (ingest_prompt), a job is added for the named profile, and the response is
 * split exactly as a teacher's content would be (teacher_split) and recorded
 * with an imported attempt through queue_record, so imported traces join the
 * same filters, dedup and export.  Records: JSON Lines (or a JSON array)
 * with "prompt" and "response", optional "reference_answer" (string or
 * number), "id" and "model".
 *
 * Idempotent: a response already imported for the same prompt and profile
 * (same text) is skipped, so importing a file twice adds nothing.
 */
#ifndef DISTILL_IMPORT_H
#define DISTILL_IMPORT_H

#include <stdint.h>

#include "err.h"

struct db;

typedef void import_bad_fn(void *ctx, long line, const char *reason);

struct import_report {
	int64_t records;  /* records read */
	int64_t imported; /* new done jobs with their traces */
	int64_t already;  /* responses imported before: skipped */
	int64_t rejected; /* bad records (reported through on_bad) */
	int64_t new_prompts;
	int64_t utf8_repaired;
};

/* Import every record of path under profile (created unbound if missing).
 * Bad records go to on_bad (may be NULL) and are counted, never fatal.
 * Returns 0, or a negative code when the file or the database fails (what
 * was recorded stays recorded). */
int import_traces(struct db *db, const char *path, const char *profile, import_bad_fn *on_bad, void *ctx,
		  struct import_report *rep, struct derr *e);

#endif
