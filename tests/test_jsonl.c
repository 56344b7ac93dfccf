/* test_jsonl.c - the streaming record reader: lines, arrays, zstd, caps, line numbers. */
#include "buf.h"
#include "err.h"
#include "jsonl.h"
#include "t.h"
#include "zst.h"

#include <unistd.h>

static char dir[256];

static const char *write_file(const char *name, const void *p, size_t n)
{
	static char path[512];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
	return path;
}

/* Read every record of path into out as "LINE:DATA|" (or "LINE:LONG|"). */
static int read_all(const char *path, size_t cap, struct buf *out, struct derr *e)
{
	struct jsonl_reader *r = NULL;
	struct jsonl_record rec;
	int rc = jsonl_open(&r, path, cap, e);
	if (rc)
		return rc;
	buf_reset(out);
	while ((rc = jsonl_next(r, &rec, e)) == 1) {
		if (rec.too_long)
			buf_printf(out, "%ld:LONG|", rec.line);
		else
			buf_printf(out, "%ld:%s|", rec.line, rec.data);
	}
	jsonl_close(r);
	return rc;
}

int main(void)
{
	struct derr e = {0};
	struct buf out = BUF_INIT(1 << 24), big = BUF_INIT(1 << 26), z = BUF_INIT(1 << 26);
	const char *p;
	static const char lines[] = "{\"a\":1}\n\n  \n{\"b\":\"x,y\"}\r\n{\"c\":2}";

	t_tmpdir(dir, sizeof(dir));

	/* JSON Lines: blank lines skipped but counted, CR dropped, last line without newline. */
	p = write_file("a.jsonl", lines, sizeof(lines) - 1);
	T_OK(read_all(p, 1024, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "1:{\"a\":1}|4:{\"b\":\"x,y\"}|5:{\"c\":2}|");

	/* Over the cap: reported as too long with its line, and the next record is intact. */
	T_OK(read_all(p, 8, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "1:{\"a\":1}|4:LONG|5:{\"c\":2}|");

	/* A last line without a newline is capped like any other. */
	p = write_file("last.jsonl", "{\"a\":1}\n{\"b\":\"0123456789\"}", 26);
	T_OK(read_all(p, 10, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "1:{\"a\":1}|2:LONG|");

	/* A JSON array split at the top level, with line numbers of each element. */
	static const char arr[] =
		"\xEF\xBB\xBF\n[\n {\"a\": \"],[{\\\"\"},\n {\"b\": [1, {\"c\": 2}]}, 3,\n \"s\"\n]\n";
	p = write_file("a.json", arr, sizeof(arr) - 1);
	T_OK(read_all(p, 1024, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "3:{\"a\": \"],[{\\\"\"}|4:{\"b\": [1, {\"c\": 2}]}|4:3|5:\"s\"|");
	T_OK(read_all(p, 10, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "3:LONG|4:LONG|4:3|5:\"s\"|");

	/* Whatever follows the array is read as lines (and then refused by the parser). */
	static const char tail[] = "[{\"a\":1}]\ngarbage\n";
	p = write_file("tail.json", tail, sizeof(tail) - 1);
	T_OK(read_all(p, 1024, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "1:{\"a\":1}|2:garbage|");

	/* A truncated array hands out the partial element. */
	static const char trunc[] = "[{\"a\":1},\n{\"b\":";
	p = write_file("trunc.json", trunc, sizeof(trunc) - 1);
	T_OK(read_all(p, 1024, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "1:{\"a\":1}|2:{\"b\":|");

	/* Empty files and empty arrays have no records. */
	p = write_file("empty.jsonl", "", 0);
	T_OK(read_all(p, 1024, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "");
	p = write_file("empty.json", " [ ] ", 5);
	T_OK(read_all(p, 1024, &out, &e), &e);
	T_EQ_STR(buf_str(&out), "");

	/* zstd: the same records as the plain file, across many chunks. */
	for (int i = 0; i < 50000; i++)
		buf_printf(&big, "{\"i\":%d,\"pad\":\"%0*d\"}\n", i, i % 300, 0);
	T_OK(zst_compress(big.data, big.len, 3, &z, &e), &e);
	p = write_file("big.jsonl.zst", z.data, z.len);
	{
		struct jsonl_reader *r = NULL;
		struct jsonl_record rec;
		long n = 0, bad = 0;
		int rc;
		T_OK(jsonl_open(&r, p, 4096, &e), &e);
		while ((rc = jsonl_next(r, &rec, &e)) == 1) {
			char want[32];
			snprintf(want, sizeof(want), "{\"i\":%ld,", n);
			if (rec.line != n + 1 || strncmp(rec.data, want, strlen(want)) != 0)
				bad++;
			n++;
		}
		T_EQ_INT(rc, 0);
		T_EQ_INT(n, 50000);
		T_EQ_INT(bad, 0);
		jsonl_close(r);
	}

	/* A corrupt zstd file is an error, not a crash; a missing file is not found. */
	p = write_file("bad.jsonl.zst", z.data, z.len / 2);
	T_TRUE(read_all(p, 4096, &out, &e) < 0);
	T_EQ_INT(read_all("/nonexistent/x.jsonl", 4096, &out, &e), DERR_NOTFOUND);

	buf_release(&out);
	buf_release(&big);
	buf_release(&z);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	T_EQ_INT(system(cmd), 0);
	return t_done();
}
