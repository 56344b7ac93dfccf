/*
 * test_report_render.c - the report renders in a real browser: headless
 * Chromium screenshots the page, and the PNG must have the window's size and
 * real content (pixel variance).  Skips when Chromium is not installed.
 */
#include "buf.h"
#include "db.h"
#include "report.h"
#include "report_fixture.h"
#include "t.h"

#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int paeth(int a, int b, int c)
{
	int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
	return pa <= pb && pa <= pc ? a : (pb <= pc ? b : c);
}

/* Decode an 8-bit RGB/RGBA non-interlaced PNG; returns luminance variance,
 * or -1 on anything unexpected. */
static double png_variance(const unsigned char *png, size_t n, uint32_t *w, uint32_t *h)
{
	struct buf idat = BUF_INIT(256u << 20);
	size_t pos = 8;
	int depth = 0, ctype = 0, bpp;
	double var = -1;

	if (n < 8 || memcmp(png, "\x89PNG\r\n\x1a\n", 8) != 0)
		return -1;
	while (pos + 12 <= n) {
		uint32_t len = be32(png + pos);
		const unsigned char *type = png + pos + 4, *data = png + pos + 8;
		if (pos + 12 + len > n)
			break;
		if (!memcmp(type, "IHDR", 4)) {
			*w = be32(data);
			*h = be32(data + 4);
			depth = data[8];
			ctype = data[9];
		} else if (!memcmp(type, "IDAT", 4)) {
			buf_append(&idat, data, len);
		}
		pos += 12 + len;
	}
	bpp = ctype == 6 ? 4 : 3;
	if (depth != 8 || (ctype != 2 && ctype != 6) || *w == 0 || *h == 0 || *w > 8000 || *h > 8000)
		goto out;
	size_t stride = (size_t)*w * bpp, rawlen = (stride + 1) * *h;
	unsigned char *raw = malloc(rawlen), *prev = calloc(stride, 1);
	uLongf got = rawlen;
	if (uncompress(raw, &got, (const Bytef *)idat.data, idat.len) != Z_OK || got != rawlen) {
		free(raw);
		free(prev);
		goto out;
	}
	double sum = 0, sum2 = 0;
	for (uint32_t y = 0; y < *h; y++) {
		unsigned char *row = raw + y * (stride + 1) + 1;
		int f = row[-1];
		for (size_t x = 0; x < stride; x++) {
			int a = x >= (size_t)bpp ? row[x - bpp] : 0, b = prev[x],
			    c = x >= (size_t)bpp ? prev[x - bpp] : 0;
			int add = f == 1   ? a
				  : f == 2 ? b
				  : f == 3 ? (a + b) / 2
				  : f == 4 ? paeth(a, b, c)
					   : 0;
			row[x] = (unsigned char)(row[x] + add);
		}
		for (uint32_t x = 0; x < *w; x++) {
			double l = 0.299 * row[x * bpp] + 0.587 * row[x * bpp + 1] + 0.114 * row[x * bpp + 2];
			sum += l;
			sum2 += l * l;
		}
		memcpy(prev, row, stride);
	}
	double cnt = (double)*w * *h, mean = sum / cnt;
	var = sum2 / cnt - mean * mean;
	free(raw);
	free(prev);
out:
	buf_release(&idat);
	return var;
}

int main(void)
{
	char dir[256], path[512], html[600], png[600], cmd[2400];
	struct derr e = {0};
	const char *chromium = access("/usr/bin/chromium", X_OK) == 0 ? "/usr/bin/chromium" : NULL;

	if (!chromium)
		return t_skip("chromium is not installed (apt-get install chromium)");
	t_tmpdir(dir, sizeof(dir));
	struct db *db = report_fixture(dir, path, sizeof(path));
	snprintf(html, sizeof(html), "%s/report.html", dir);
	snprintf(png, sizeof(png), "%s/shot.png", dir);
	struct report_options o = {html, NULL, "render test"};
	T_OK(report_write(db, &o, NULL, &e), &e);
	db_close(db);

	/* The flags keep Chromium off the network (this machine has none). */
	snprintf(
		cmd, sizeof(cmd),
		"%s --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
		"--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars "
		"--user-data-dir='%s/profile' --window-size=1000,1400 --screenshot='%s' 'file://%s' "
		">/dev/null 2>&1",
		chromium, dir, png, html);
	T_EQ_INT(system(cmd), 0);

	FILE *f = fopen(png, "rb");
	T_TRUE(f != NULL);
	if (f) {
		struct buf b = BUF_INIT(64u << 20);
		char chunk[65536];
		size_t n;
		uint32_t w = 0, h = 0;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_append(&b, chunk, n);
		fclose(f);
		double var = png_variance((const unsigned char *)b.data, b.len, &w, &h);
		T_EQ_INT(w, 1000);
		T_EQ_INT(h, 1400);
		if (var < 100)
			T_FAIL_AT("screenshot looks blank: luminance variance %.1f", var);
		else
			t_checks++;
		buf_release(&b);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	T_EQ_INT(system(cmd), 0);
	return t_done();
}
