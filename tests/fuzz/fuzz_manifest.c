/* fuzz_manifest.c - the manifest parser of `distill export --verify` and the
 * trainer: untrusted bytes must never crash it, and whatever it accepts
 * names only shard files inside the directory. */
#include "export.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct export_manifest m;
	struct derr e = {0};

	if (export_manifest_parse((const char *)data, size, &m, &e) == 0) {
		for (int i = 0; i < m.nshards; i++)
			if (strchr(m.shards[i].file, '/') || m.shards[i].file[0] == '.')
				abort();
		export_manifest_release(&m);
	}
	return 0;
}
