/*
 * fields.h - auto-detection of the prompt and reference fields of an input
 * record, shared by ingest, dedup's benchmark files and the trainer's eval:
 * prompt from "prompt", "problem" or "question"; reference from "answer",
 * "final_answer", "reference_answer" or "reference" (an explicit field name
 * overrides).  Numbers are returned in shortest round-trip text.
 */
#ifndef DISTILL_FIELDS_H
#define DISTILL_FIELDS_H

#include <cjson/cJSON.h>

/* The prompt string of obj, or NULL. */
const char *fields_prompt(const cJSON *obj, const char *override_field);

/* The raw reference as text (a string as is; a number in shortest
 * round-trip form) written to out (size len), or 0 when absent. */
int fields_reference(const cJSON *obj, const char *override_field, char *out, size_t len);

#endif
