/* fuzz_refresh_config.c - the refresh (cron) config parser: any bytes parse
 * or fail with DERR_PARSE and a message, never crash or leak. */
#include "refresh.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct refresh_config c;
	struct derr e = {0};
	int rc = refresh_config_parse((const char *)data, size,
				      size & 1 ? "conf/refresh.json" : "refresh.json", &c, &e);

	if (rc == 0)
		refresh_config_release(&c);
	else if (rc != DERR_PARSE || !e.msg[0])
		abort();
	return 0;
}
