/* fuzz_sse.c - the SSE parser: any bytes, split at a point taken from the
 * input, must end in a success or DERR_TEACHER_MALFORMED/DERR_LIMIT, and a
 * success must reassemble into a body the response parser accepts. */
#include "buf.h"
#include "teacher.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct teacher_sse s;
	struct buf out = BUF_INIT(1 << 20);
	struct derr e = {0};
	size_t cut = size ? data[0] % (size + 1) : 0;
	int rc;

	teacher_sse_init(&s, 1 << 16);
	rc = teacher_sse_feed(&s, (const char *)data, cut);
	if (!rc)
		rc = teacher_sse_feed(&s, (const char *)data + cut, size - cut);
	if (!rc)
		rc = teacher_sse_finish(&s, &out, &e);
	if (!rc) {
		struct teacher_response r;
		if (teacher_parse_response(out.data, out.len, &r, &e))
			abort(); /* a reassembled body always parses */
		teacher_response_release(&r);
	} else if (rc != DERR_TEACHER_MALFORMED && rc != DERR_LIMIT) {
		abort();
	}
	teacher_sse_release(&s);
	buf_release(&out);
	return 0;
}
