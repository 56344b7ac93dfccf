/*
 * fields.c - which field of an input record is the prompt, which the
 * reference (see fields.h).  Used by ingest, by dedup for benchmark files
 * and by the trainer's eval, so every reader of prompt files agrees.
 */
#include "fields.h"
#include "err.h"
#include "json.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* Tried in order; the first that is present (and usable) wins. */
static const char *const prompt_fields[] = {"prompt", "problem", "question"};
static const char *const reference_fields[] = {"answer", "final_answer", "reference_answer", "reference",
					       "solution"};

const char *fields_prompt(const cJSON *obj, const char *override_field)
{
	if (!cJSON_IsObject(obj))
		return NULL;
	if (override_field)
		return json_get_str(obj, override_field);
	for (size_t i = 0; i < ARRAY_SIZE(prompt_fields); i++) {
		const char *s = json_get_str(obj, prompt_fields[i]);
		if (s)
			return s;
	}
	return NULL;
}

/* The text of one reference value: 1 written, 0 not a usable value,
 * DERR_LIMIT when it does not fit. */
static int value_text(const cJSON *v, char *out, size_t len)
{
	char num[64];
	const char *s;

	if (cJSON_IsString(v) && v->valuestring)
		s = v->valuestring;
	else if (cJSON_IsNumber(v)) {
		json_num_str(v->valuedouble, num, sizeof(num));
		s = num;
	} else
		return 0;
	if (strlen(s) >= len) {
		if (len)
			out[0] = '\0';
		return DERR_LIMIT;
	}
	memcpy(out, s, strlen(s) + 1);
	return 1;
}

int fields_reference(const cJSON *obj, const char *override_field, char *out, size_t len)
{
	if (len)
		out[0] = '\0';
	if (!cJSON_IsObject(obj))
		return 0;
	if (override_field)
		return value_text(cJSON_GetObjectItemCaseSensitive(obj, override_field), out, len);
	for (size_t i = 0; i < ARRAY_SIZE(reference_fields); i++) {
		int rc = value_text(cJSON_GetObjectItemCaseSensitive(obj, reference_fields[i]), out, len);
		if (rc)
			return rc;
	}
	return 0;
}
