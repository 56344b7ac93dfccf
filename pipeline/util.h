/*
 * util.h - allocation that aborts on out-of-memory, clocks, durations.
 * Infrastructure used by every module.
 */
#ifndef DISTILL_UTIL_H
#define DISTILL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation never fails: out-of-memory aborts the process (STYLE.md). */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Wall clock in milliseconds since the epoch; monotonic clock in ns. */
int64_t now_ms(void);
int64_t mono_ns(void);

/* Parse a duration: "90s", "15m", "8h", "2d", "500ms", or a bare number of
 * seconds.  Stores milliseconds.  Returns 0, or DERR_INVALID. */
int duration_parse(const char *s, int64_t *ms);

/* Format milliseconds as the shortest exact unit ("90s", "15m"). */
void duration_format(int64_t ms, char *buf, size_t len);

/* Parse a whole decimal integer in [min, max]; returns 0 or DERR_INVALID.
 * (atoi is banned: it cannot report errors.) */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);
int parse_double(const char *s, double *out);

#endif
