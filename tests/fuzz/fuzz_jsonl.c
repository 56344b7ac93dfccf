/*
 * fuzz_jsonl.c - the streaming record reader on arbitrary bytes (plain,
 * zstd, JSON Lines or arrays): it must never crash, hang or read out of
 * bounds, every record must respect the cap and carry a sane line number.
 * The input goes through a file because the reader's contract is a path.
 */
#include "err.h"
#include "jsonl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct jsonl_reader *r = NULL;
	struct jsonl_record rec;
	struct derr e = {0};
	long last = 0, newlines = 0;
	FILE *f;
	int rc;

	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz_jsonl.%ld", (long)getpid());
	f = fopen(path, "wb");
	if (!f)
		return 0;
	if (size && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return 0;
	}
	fclose(f);
	for (size_t i = 0; i < size; i++)
		newlines += data[i] == '\n';
	/* A small cap so that the too-long path is exercised often. */
	if (jsonl_open(&r, path, 64, &e) == 0) {
		while ((rc = jsonl_next(r, &rec, &e)) == 1) {
			if (rec.line < 1 || rec.line < last)
				abort();
			/* Plain input: a record cannot start past the last line. */
			if (size < 4 || memcmp(data, "\x28\xb5\x2f\xfd", 4) != 0)
				if (rec.line > newlines + 1)
					abort();
			last = rec.line;
			if (rec.too_long ? rec.data != NULL
					 : (!rec.data || rec.len > 64 || rec.data[rec.len] != '\0'))
				abort();
		}
		jsonl_close(r);
	}
	unlink(path);
	return 0;
}
