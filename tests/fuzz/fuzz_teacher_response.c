/* fuzz_teacher_response.c - the response parser on any bytes: success with
 * valid UTF-8 text, or DERR_TEACHER_MALFORMED; then teacher_split on the raw
 * bytes as imported text. */
#include "teacher.h"
#include "text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct teacher_response r;
	struct derr e = {0};
	int rc = teacher_parse_response((const char *)data, size, &r, &e);

	if (rc == 0) {
		if (!utf8_valid(r.reasoning, strlen(r.reasoning)) || !utf8_valid(r.answer, strlen(r.answer)))
			abort();
		teacher_response_release(&r);
	} else if (rc != DERR_TEACHER_MALFORMED) {
		abort();
	}
	memset(&r, 0, sizeof(r));
	teacher_split((const char *)data, size, NULL, NULL, &r);
	if (!utf8_valid(r.reasoning, strlen(r.reasoning)) || !utf8_valid(r.answer, strlen(r.answer)))
		abort();
	teacher_response_release(&r);
	return 0;
}
