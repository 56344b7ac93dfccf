/* fuzz_tconfig.c - the teacher config parser: any bytes parse or fail with
 * DERR_CONFIG and a message, never crash or leak. */
#include "tconfig.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tconfig c;
	struct derr e = {0};
	int rc = tconfig_parse((const char *)data, size, size & 1 ? "http://127.0.0.1:1/v1" : NULL, &c, &e);

	if (rc == 0)
		tconfig_release(&c);
	else if (rc != DERR_CONFIG || !e.msg[0])
		abort();
	return 0;
}
