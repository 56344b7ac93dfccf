/*
 * buf.h - a growable byte buffer with a hard cap set at init (curl's habit):
 * appending past the cap fails with DERR_LIMIT and leaves the buffer as it
 * was.  Infrastructure.  The data is always NUL-terminated.
 */
#ifndef DISTILL_BUF_H
#define DISTILL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max; /* hard cap on len */
};

#define BUF_INIT(maxbytes)             \
	{                              \
		NULL, 0, 0, (maxbytes) \
	}

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */

/* Append; 0 or DERR_LIMIT (buffer unchanged). */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Ensure room for n more bytes (plus NUL); 0 or DERR_LIMIT. */
int buf_grow(struct buf *b, size_t n);

/* Hand over the data (caller frees); the buffer is reset to empty. */
char *buf_detach(struct buf *b, size_t *len);

/* Always a valid C string, "" when empty. */
static inline const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

#endif
