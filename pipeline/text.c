/* text.c - UTF-8 and prompt normalisation (see text.h). */
#include "text.h"
#include "buf.h"
#include "err.h"
#include "hash.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

int utf8_decode(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t c;
	int len;

	if (n == 0) {
		*cp = 0xFFFD;
		return 0;
	}
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		len = 2, c = p[0] & 0x1F;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		len = 3, c = p[0] & 0x0F;
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		len = 4, c = p[0] & 0x07;
	} else {
		*cp = 0xFFFD;
		return 1;
	}
	if ((size_t)len > n) {
		*cp = 0xFFFD;
		return 1;
	}
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80) {
			*cp = 0xFFFD;
			return 1;
		}
		c = (c << 6) | (p[i] & 0x3F);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
	    (len == 4 && (c < 0x10000 || c > 0x10FFFF))) {
		*cp = 0xFFFD;
		return 1;
	}
	*cp = c;
	return len;
}

static int decode_ok(const char *p, size_t n, int *len)
{
	uint32_t cp;
	*len = utf8_decode(p, n, &cp);
	return !(cp == 0xFFFD && !(*len == 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBF &&
				   (unsigned char)p[2] == 0xBD));
}

int utf8_valid(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		int len;
		if ((unsigned char)p[i] < 0x80) {
			i++;
			continue;
		}
		if (!decode_ok(p + i, n - i, &len))
			return 0;
		i += (size_t)len;
	}
	return 1;
}

size_t utf8_count(const char *p, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)p[i] & 0xC0) != 0x80;
	return k;
}

long utf8_repair(const char *p, size_t n, struct buf *out)
{
	size_t i = 0, run = 0;
	long bad = 0;

	while (i < n) {
		int len;
		if ((unsigned char)p[i] < 0x80) {
			i++;
			continue;
		}
		if (decode_ok(p + i, n - i, &len)) {
			i += (size_t)len;
			continue;
		}
		if (buf_append(out, p + run, i - run) || buf_append(out, "\xEF\xBF\xBD", 3))
			return DERR_LIMIT;
		bad++;
		i += (size_t)len;
		run = i;
	}
	if (buf_append(out, p + run, n - run))
		return DERR_LIMIT;
	return bad;
}

/* ASCII text is its own NFC and its only white space is the C set, so it
 * needs no utf8proc: the common case of ingest, 5x faster, same result. */
static int normalize_ascii(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;

	/* The output is never longer than the input: with room for all of it
	 * (the common case), write it in place, a byte at a time. */
	if (buf_grow(out, n) == 0) {
		char *d = out->data + out->len;
		int space = out->len > 0;
		for (; i < n; i++) {
			char c = p[i];
			if (c == ' ' || (c >= '\t' && c <= '\r')) {
				space = d != out->data;
				continue;
			}
			if (space)
				*d++ = ' ';
			space = 0;
			*d++ = c;
		}
		out->len = (size_t)(d - out->data);
		out->data[out->len] = '\0';
		return 0;
	}
	while (i < n) {
		size_t start;
		while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && !(p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
			i++;
		if ((out->len && buf_putc(out, ' ')) || buf_append(out, p + start, i - start))
			return DERR_LIMIT;
	}
	return 0;
}

int text_normalize(const char *p, size_t n, struct buf *out)
{
	utf8proc_uint8_t *nfc = NULL;
	utf8proc_ssize_t len;
	int space = 0, rc = 0;
	size_t i;

	buf_reset(out);
	for (i = 0; i < n && !((unsigned char)p[i] & 0x80); i++)
		;
	if (i == n)
		return normalize_ascii(p, n, out);
	if (!utf8_valid(p, n))
		return DERR_UTF8;
	len = utf8proc_map((const utf8proc_uint8_t *)p, (utf8proc_ssize_t)n, &nfc,
			   UTF8PROC_STABLE | UTF8PROC_COMPOSE);
	if (len < 0)
		return DERR_UTF8;
	for (i = 0; (utf8proc_ssize_t)i < len;) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t l = utf8proc_iterate(nfc + i, len - (utf8proc_ssize_t)i, &cp);
		if (l <= 0) {
			rc = DERR_UTF8;
			break;
		}
		utf8proc_category_t cat = utf8proc_category(cp);
		int ws = cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' ||
			 cp == 0x85 || cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
			 cat == UTF8PROC_CATEGORY_ZP;
		if (ws) {
			space = out->len > 0;
		} else {
			if (space && buf_putc(out, ' ')) {
				rc = DERR_LIMIT;
				break;
			}
			space = 0;
			if (buf_append(out, nfc + i, (size_t)l)) {
				rc = DERR_LIMIT;
				break;
			}
		}
		i += (size_t)l;
	}
	free(nfc);
	return rc;
}

int text_prompt_hash(const char *p, size_t n, char out[33])
{
	struct buf b = BUF_INIT(64u << 20);
	int rc = text_normalize(p, n, &b);
	if (!rc)
		hash128_hex(b.data ? b.data : "", b.len, out);
	buf_release(&b);
	return rc;
}
