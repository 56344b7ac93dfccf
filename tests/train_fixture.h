/*
 * train_fixture.h - writes a small export directory in the format of
 * DESIGN §7 (manifest.json + zstd JSON-lines shards) for the trainer's
 * tests and benchmarks: 3-digit addition prompts with short R1-style
 * traces ending in \boxed{sum}.  Header-only, for tests/ only.
 */
#ifndef DISTILL_TRAIN_FIXTURE_H
#define DISTILL_TRAIN_FIXTURE_H

#include "buf.h"
#include "hash.h"
#include "json.h"
#include "zst.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* One addition sample as a shard line (appended to line); terse: the
 * trace is only the sum. */
static inline void fixture_add_line(struct buf *line, unsigned a, unsigned b, long id, int terse)
{
	char user[64], asst[1024], id_s[32];
	struct buf t = BUF_INIT(4096);
	unsigned carry = 0, x = a, y = b;
	static const char *const place[] = {"ones", "tens", "hundreds", "thousands"};
	snprintf(user, sizeof(user), "What is %u + %u?", a, b);
	buf_puts(&t, "<think>\n");
	for (int d = 0; d < 3 && !terse; d++) {
		unsigned s = x % 10 + y % 10 + carry;
		buf_printf(&t, "%s: %u + %u + %u = %u, write %u carry %u.\n", place[d], x % 10, y % 10, carry,
			   s, s % 10, s / 10);
		carry = s / 10;
		x /= 10;
		y /= 10;
	}
	if (terse)
		buf_printf(&t, "%u\n</think>\n\n\\boxed{%u}", a + b, a + b);
	else
		buf_printf(&t, "So %u + %u = %u.\n</think>\n\nThe answer is \\boxed{%u}.", a, b, a + b,
			   a + b);
	snprintf(asst, sizeof(asst), "%s", buf_str(&t));
	snprintf(id_s, sizeof(id_s), "%016lx", (unsigned long)id);
	buf_puts(line, "{\"id\":");
	json_append_str(line, id_s, strlen(id_s));
	buf_puts(line, ",\"prompt_id\":");
	json_append_str(line, id_s, strlen(id_s));
	buf_puts(line, ",\"messages\":[{\"role\":\"user\",\"content\":");
	json_append_str(line, user, strlen(user));
	buf_puts(line, "},{\"role\":\"assistant\",\"content\":");
	json_append_str(line, asst, strlen(asst));
	buf_puts(line, "}],\"reasoning\":\"\",\"answer\":\"\",\"reference\":");
	{
		char ref[16];
		snprintf(ref, sizeof(ref), "%u", a + b);
		json_append_str(line, ref, strlen(ref));
	}
	buf_puts(line, ",\"source\":\"fixture\",\"teacher\":\"fixture\"}\n");
	buf_release(&t);
}

/* Write one shard file from the lines in text; fills its manifest entry. */
static inline int fixture_shard(const char *dir, const char *file, const char *split, const struct buf *text,
				long samples, struct buf *manifest, int first)
{
	char path[4096], hex[65];
	struct derr e = {0};
	struct zst_writer *w = NULL;
	struct buf bytes = BUF_INIT((size_t)1 << 30);
	FILE *f;
	long size;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "wb");
	if (!f || zst_writer_new(&w, f, 3, &e) || zst_writer_write(w, text->data, text->len, &e) ||
	    zst_writer_finish(w, &e)) {
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	f = fopen(path, "rb");
	{
		char tmp[65536];
		size_t n;
		while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
			buf_append(&bytes, tmp, n);
		fclose(f);
	}
	sha256_hex(bytes.data, bytes.len, hex);
	size = (long)bytes.len;
	buf_printf(manifest,
		   "%s{\"file\":\"%s\",\"split\":\"%s\",\"samples\":%ld,\"bytes\":%ld,\"sha256\":\"%s\"}",
		   first ? "" : ",", file, split, samples, size, hex);
	buf_release(&bytes);
	return 0;
}

/* An export of ntrain + nval addition samples drawn with seed.  Operands
 * are in [lo, hi].  Returns 0 or -1. */
static inline int fixture_export(const char *dir, long ntrain, long nval, uint64_t seed, unsigned lo,
				 unsigned hi, int terse)
{
	struct buf tr = BUF_INIT((size_t)1 << 30), va = BUF_INIT((size_t)1 << 30), man = BUF_INIT(1 << 20);
	char path[4096];
	FILE *f;
	uint64_t s = seed * 2654435761u + 1;
	int rc = 0;
	for (long i = 0; i < ntrain + nval; i++) {
		unsigned a, b;
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		a = lo + (unsigned)((s >> 33) % (hi - lo + 1));
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		b = lo + (unsigned)((s >> 33) % (hi - lo + 1));
		fixture_add_line(i < ntrain ? &tr : &va, a, b, i, terse);
	}
	buf_puts(&man, "{\"format_version\":1,\"ruleset\":\"fixture\",\"shards\":[");
	rc |= fixture_shard(dir, "train-00000-of-00001.jsonl.zst", "train", &tr, ntrain, &man, 1);
	if (nval)
		rc |= fixture_shard(dir, "val-00000-of-00001.jsonl.zst", "val", &va, nval, &man, 0);
	buf_puts(&man, "],\"profiles\":{\"default\":{\"template\":\"{prompt}\"}}}\n");
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	f = fopen(path, "wb");
	if (!f)
		rc = -1;
	else {
		fputs(buf_str(&man), f);
		fclose(f);
	}
	buf_release(&tr);
	buf_release(&va);
	buf_release(&man);
	return rc;
}

#endif
