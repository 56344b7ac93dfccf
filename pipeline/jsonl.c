/*
 * jsonl.c - streaming record reader (see jsonl.h).  The first stage every
 * input passes through: bytes come from zst.h (plain or zstd), records go
 * out raw, one at a time, never more than max_record bytes held.
 *
 * Two layouts, told apart by the first byte that is not white space (a UTF-8
 * byte-order mark is skipped): '[' means one JSON array whose elements are
 * the records; anything else means JSON Lines, one record per line (blank
 * lines skipped, a trailing CR dropped).  The array splitter tracks only
 * strings and nesting depth, so it never parses values; it is lenient about
 * separators (a missing comma just starts the next element) and whatever
 * follows the closing ']' is read as JSON Lines.
 */
#include "jsonl.h"
#include "buf.h"
#include "util.h"
#include "zst.h"

#include <stdlib.h>
#include <string.h>

#define JSONL_CHUNK (64 * 1024)

enum jsonl_mode { MODE_UNKNOWN, MODE_LINES, MODE_ARRAY };

struct jsonl_reader {
	struct zst_reader *zr;
	char *in;
	size_t in_len, in_pos;
	int eof;
	struct buf rec;
	size_t max_record;
	long line; /* line of the byte at in_pos */
	enum jsonl_mode mode;
};

int jsonl_open(struct jsonl_reader **out, const char *path, size_t max_record, struct derr *e)
{
	struct jsonl_reader *r;
	struct zst_reader *zr = NULL;
	int rc;

	*out = NULL;
	if (max_record == 0)
		return derr_set(e, DERR_INVALID, "jsonl: max_record must be positive");
	/* No total cap: memory is bounded by max_record, not by the file size. */
	rc = zst_reader_open(&zr, path, 0, e);
	if (rc)
		return rc;
	r = xcalloc(1, sizeof(*r));
	r->zr = zr;
	r->in = xmalloc(JSONL_CHUNK);
	r->max_record = max_record;
	/* One spare byte so that a CR before the newline does not count. */
	buf_init(&r->rec, max_record + 1);
	r->line = 1;
	*out = r;
	return 0;
}

void jsonl_close(struct jsonl_reader *r)
{
	if (!r)
		return;
	zst_reader_close(r->zr);
	buf_release(&r->rec);
	free(r->in);
	free(r);
}

/* Make at least one byte available unless at end of input.  0 (check
 * in_pos < in_len for data) or a negative code. */
static int fill(struct jsonl_reader *r, struct derr *e)
{
	long n;

	if (r->in_pos < r->in_len || r->eof)
		return 0;
	n = zst_reader_read(r->zr, r->in, JSONL_CHUNK, e);
	if (n < 0)
		return (int)n;
	r->in_len = (size_t)n;
	r->in_pos = 0;
	if (n == 0)
		r->eof = 1;
	return 0;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Skip leading white space and a byte-order mark, then pick the layout. */
static int detect(struct jsonl_reader *r, struct derr *e)
{
	int rc = fill(r, e);

	if (rc)
		return rc;
	if (r->in_len - r->in_pos >= 3 && memcmp(r->in + r->in_pos, "\xEF\xBB\xBF", 3) == 0)
		r->in_pos += 3;
	for (;;) {
		if ((rc = fill(r, e)))
			return rc;
		if (r->in_pos >= r->in_len) {
			r->mode = MODE_LINES;
			return 0;
		}
		unsigned char c = (unsigned char)r->in[r->in_pos];
		if (!is_space(c))
			break;
		if (c == '\n')
			r->line++;
		r->in_pos++;
	}
	if (r->in[r->in_pos] == '[') {
		r->in_pos++;
		r->mode = MODE_ARRAY;
	} else {
		r->mode = MODE_LINES;
	}
	return 0;
}

/* Append to the record unless it is already over the cap. */
static void rec_add(struct jsonl_reader *r, const char *p, size_t n, int *too_long)
{
	if (*too_long)
		return;
	if (buf_append(&r->rec, p, n)) {
		*too_long = 1;
		buf_reset(&r->rec);
	}
}

/* One line into rec.  1: a line (possibly over the cap), 0: end of input. */
static int read_line(struct jsonl_reader *r, int *too_long, struct derr *e)
{
	int rc, any = 0;

	buf_reset(&r->rec);
	*too_long = 0;
	for (;;) {
		if ((rc = fill(r, e)))
			return rc;
		if (r->in_pos >= r->in_len) {
			if (!any)
				return 0;
			break; /* a last line without a newline */
		}
		any = 1;
		char *p = r->in + r->in_pos;
		size_t avail = r->in_len - r->in_pos;
		char *nl = memchr(p, '\n', avail);
		size_t take = nl ? (size_t)(nl - p) : avail;
		rec_add(r, p, take, too_long);
		r->in_pos += take;
		if (nl) {
			r->in_pos++;
			r->line++;
			break;
		}
	}
	if (!*too_long && r->rec.len && r->rec.data[r->rec.len - 1] == '\r')
		r->rec.data[--r->rec.len] = '\0';
	if (!*too_long && r->rec.len > r->max_record) {
		*too_long = 1;
		buf_reset(&r->rec);
	}
	return 1;
}

static int blank(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (!is_space((unsigned char)b->data[i]))
			return 0;
	return 1;
}

static int next_line_record(struct jsonl_reader *r, struct jsonl_record *rec, struct derr *e)
{
	for (;;) {
		long start = r->line;
		int too_long, rc = read_line(r, &too_long, e);
		if (rc <= 0)
			return rc;
		if (!too_long && blank(&r->rec))
			continue;
		rec->line = start;
		rec->too_long = too_long;
		rec->data = too_long ? NULL : buf_str(&r->rec);
		rec->len = too_long ? 0 : r->rec.len;
		return 1;
	}
}

/* The next element of the top-level array.  Strings and nesting are tracked
 * so that commas and brackets inside values do not split them. */
static int next_array_record(struct jsonl_reader *r, struct jsonl_record *rec, struct derr *e)
{
	int rc, too_long = 0, depth = 0, in_str = 0, esc = 0;
	long start;

	/* Separators between elements, or the end of the array. */
	for (;;) {
		if ((rc = fill(r, e)))
			return rc;
		if (r->in_pos >= r->in_len)
			return 0; /* unterminated array: what was complete was handed out */
		char c = r->in[r->in_pos];
		if (c == ']') {
			r->in_pos++;
			r->mode = MODE_LINES; /* anything after the array is read as lines */
			return next_line_record(r, rec, e);
		}
		if (!is_space((unsigned char)c) && c != ',')
			break;
		if (c == '\n')
			r->line++;
		r->in_pos++;
	}
	buf_reset(&r->rec);
	start = r->line;
	for (int first = 1;; first = 0) {
		if ((rc = fill(r, e)))
			return rc;
		if (r->in_pos >= r->in_len)
			break; /* truncated element: handed out, the parser will refuse it */
		char c = r->in[r->in_pos];
		int end_after = 0;
		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0 && !first)
				break; /* the array's own ']' (or a stray brace) ends a scalar */
			if (depth > 0 && --depth == 0)
				end_after = 1;
		} else if (depth == 0 && !first && (c == ',' || is_space((unsigned char)c))) {
			break;
		}
		if (c == '\n')
			r->line++;
		rec_add(r, &c, 1, &too_long);
		r->in_pos++;
		if (end_after)
			break;
	}
	if (!too_long && r->rec.len > r->max_record) {
		too_long = 1;
		buf_reset(&r->rec);
	}
	rec->line = start;
	rec->too_long = too_long;
	rec->data = too_long ? NULL : buf_str(&r->rec);
	rec->len = too_long ? 0 : r->rec.len;
	return 1;
}

int jsonl_next(struct jsonl_reader *r, struct jsonl_record *rec, struct derr *e)
{
	int rc;

	memset(rec, 0, sizeof(*rec));
	if (r->mode == MODE_UNKNOWN && (rc = detect(r, e)))
		return rc;
	if (r->mode == MODE_ARRAY)
		return next_array_record(r, rec, e);
	return next_line_record(r, rec, e);
}
