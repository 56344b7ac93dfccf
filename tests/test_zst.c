/* test_zst.c - bounded decompression and streaming files. */
#include "t.h"
#include "buf.h"
#include "err.h"
#include "zst.h"

#include <pthread.h>
#include <unistd.h>
#include <zstd.h>

/* zst_compress reuses one context per thread: its bytes must stay those of
 * a fresh one-shot ZSTD_compress, whatever ran on the thread before. */
static int same_as_oneshot(const struct buf *src, int level)
{
	struct buf z = BUF_INIT(1 << 24);
	size_t cap = ZSTD_compressBound(src->len), r;
	char *want = malloc(cap);
	struct derr e = {0};
	int same;

	r = ZSTD_compress(want, cap, src->data, src->len, level);
	same = !ZSTD_isError(r) && !zst_compress(src->data, src->len, level, &z, &e) && z.len == r &&
	       !memcmp(z.data, want, r);
	free(want);
	buf_release(&z);
	return same;
}

/* Each thread compresses and decompresses with its own cached contexts. */
static void *round_trips(void *arg)
{
	const struct buf *src = arg;
	struct buf z = BUF_INIT(1 << 24), out = BUF_INIT(1 << 24);
	struct derr e = {0};
	intptr_t bad = 0;

	for (int i = 0; i < 20 && !bad; i++) {
		buf_reset(&z);
		buf_reset(&out);
		bad = zst_compress(src->data, src->len, 1 + i % 4, &z, &e) ||
		      zst_decompress(z.data, z.len, src->len, &out, &e) || out.len != src->len ||
		      memcmp(out.data, src->data, src->len) != 0;
	}
	buf_release(&z);
	buf_release(&out);
	return (void *)bad;
}

int main(void)
{
	struct buf src = BUF_INIT(1 << 24), z = BUF_INIT(1 << 24), out = BUF_INIT(1 << 24);
	struct derr e = {0};
	char dir[256], path[512];
	long first;

	for (int i = 0; i < 20000; i++)
		buf_printf(&src, "{\"line\": %d, \"text\": \"step %d\"}\n", i, i % 7);
	T_OK(zst_compress(src.data, src.len, 3, &z, &e), &e);
	T_TRUE(zst_is_frame(z.data, z.len));
	T_TRUE(z.len < src.len / 4);
	T_OK(zst_decompress(z.data, z.len, src.len, &out, &e), &e);
	T_EQ_INT(out.len, src.len);
	T_TRUE(memcmp(out.data, src.data, src.len) == 0);

	/* A cap below the real size fails and leaves out as it was. */
	buf_reset(&out);
	T_EQ_INT(zst_decompress(z.data, z.len, src.len - 1, &out, &e), DERR_LIMIT);
	T_EQ_INT(out.len, 0);
	/* Truncated and garbage frames are corrupt, not crashes. */
	T_EQ_INT(zst_decompress(z.data, z.len / 2, src.len, &out, &e), DERR_CORRUPT);
	T_EQ_INT(zst_decompress("\x28\xb5\x2f\xfdgarbage", 11, 100, &out, &e), DERR_CORRUPT);

	/* Streaming writer then reader; a plain file reads through unchanged. */
	t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/a.jsonl.zst", dir);
	FILE *f = fopen(path, "wb");
	struct zst_writer *w;
	T_OK(zst_writer_new(&w, f, 3, &e), &e);
	T_OK(zst_writer_write(w, src.data, src.len / 2, &e), &e);
	T_OK(zst_writer_write(w, src.data + src.len / 2, src.len - src.len / 2, &e), &e);
	T_OK(zst_writer_finish(w, &e), &e);
	fclose(f);

	struct zst_reader *r;
	char chunk[777];
	long n;
	buf_reset(&out);
	T_OK(zst_reader_open(&r, path, 0, &e), &e);
	while ((n = zst_reader_read(r, chunk, sizeof(chunk), &e)) > 0)
		buf_append(&out, chunk, (size_t)n);
	T_EQ_INT(n, 0);
	zst_reader_close(r);
	T_EQ_INT(out.len, src.len);
	T_TRUE(out.len == src.len && memcmp(out.data, src.data, src.len) == 0);

	/* The reader's total cap. */
	T_OK(zst_reader_open(&r, path, 1000, &e), &e);
	while ((n = zst_reader_read(r, chunk, sizeof(chunk), &e)) > 0)
		;
	T_EQ_INT(n, DERR_LIMIT);
	zst_reader_close(r);

	/* Context reuse: after a checksummed stream, one-shot bytes are unchanged
	 * at any level; a reader holding a context does not disturb a nested
	 * decompression on the same thread; threads keep their own. */
	T_TRUE(same_as_oneshot(&src, 3));
	T_TRUE(same_as_oneshot(&src, 1));
	T_TRUE(same_as_oneshot(&src, 19));
	T_TRUE(same_as_oneshot(&src, 3));
	buf_reset(&z);
	T_OK(zst_compress(src.data, src.len, 3, &z, &e), &e);
	T_OK(zst_reader_open(&r, path, 0, &e), &e);
	n = zst_reader_read(r, chunk, sizeof(chunk), &e);
	T_TRUE(n > 0 && memcmp(chunk, src.data, (size_t)n) == 0);
	first = n;
	buf_reset(&out);
	T_OK(zst_decompress(z.data, z.len, src.len, &out, &e), &e);
	T_TRUE(out.len == src.len && memcmp(out.data, src.data, src.len) == 0);
	buf_reset(&out);
	while ((n = zst_reader_read(r, chunk, sizeof(chunk), &e)) > 0)
		buf_append(&out, chunk, (size_t)n);
	T_EQ_INT(n, 0);
	zst_reader_close(r);
	T_TRUE(first > 0 && out.len + (size_t)first == src.len &&
	       memcmp(out.data, src.data + first, out.len) == 0);
	{
		pthread_t th[3];
		void *bad = NULL;
		for (int i = 0; i < 3; i++)
			T_EQ_INT(pthread_create(&th[i], NULL, round_trips, &src), 0);
		for (int i = 0; i < 3; i++) {
			pthread_join(th[i], &bad);
			T_TRUE(bad == NULL);
		}
	}

	snprintf(path, sizeof(path), "%s/plain.txt", dir);
	f = fopen(path, "wb");
	fputs("plain text\n", f);
	fclose(f);
	T_OK(zst_reader_open(&r, path, 0, &e), &e);
	n = zst_reader_read(r, chunk, sizeof(chunk), &e);
	T_EQ_INT(n, 11);
	zst_reader_close(r);
	unlink(path);
	snprintf(path, sizeof(path), "%s/a.jsonl.zst", dir);
	unlink(path);
	rmdir(dir);

	buf_release(&src);
	buf_release(&z);
	buf_release(&out);
	return t_done();
}
