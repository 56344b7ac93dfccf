/*
 * fields.h - auto-detection of the prompt and reference fields of an input
 * record, shared by ingest, dedup's benchmark files and the trainer's eval:
 * prompt from "prompt", "problem" or "question"; reference from "answer",
 * "final_answer", "reference_answer" or "reference", and failing those a
 * worked "solution" (MATH/Minerva style: its last \boxed{} is the answer,
 * which answer_extract_reference() finds).  The first field present wins; an
 * explicit field name overrides the list.  Numbers are returned in shortest
 * round-trip text.
 */
#ifndef DISTILL_FIELDS_H
#define DISTILL_FIELDS_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The prompt string of obj (owned by obj), or NULL when obj is not an
 * object or has no such string field. */
const char *fields_prompt(const cJSON *obj, const char *override_field);

/* The raw reference as text (a string as is; a number in shortest
 * round-trip form) written to out (size len, NUL-terminated).  Returns 1
 * when written; 0 when absent (or not a string or number: out is "");
 * DERR_LIMIT when it does not fit in len bytes (out is ""). */
int fields_reference(const cJSON *obj, const char *override_field, char *out, size_t len);

#endif
