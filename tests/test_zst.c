/* test_zst.c - bounded decompression and streaming files. */
#include "t.h"
#include "buf.h"
#include "err.h"
#include "zst.h"

#include <unistd.h>

int main(void)
{
	struct buf src = BUF_INIT(1 << 24), z = BUF_INIT(1 << 24), out = BUF_INIT(1 << 24);
	struct derr e = {0};
	char dir[256], path[512];

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
