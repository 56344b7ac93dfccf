/*
 * regex.h - the only module that touches PCRE2.  Patterns are compiled with
 * UTF and JIT; every search is bounded three ways so that no rule can hang a
 * filter worker (DESIGN §5, §11):
 *   - a match limit and a depth limit per start position (stop exponential
 *     backtracking such as (a+)+$);
 *   - a cap on the subject length;
 *   - a time budget (in thread CPU time, so a descheduled worker is not
 *     penalised; at most 1.25 budgets and two windows): the search runs over windows of start positions (PCRE2's
 *     offset limit) and checks the clock between windows, so a
 *     quadratic pattern such as (.{20,}?)\1{3,} on a 30 KB line ends with
 *     DERR_LIMIT after about the budget instead of running for seconds.
 * Subjects must be valid UTF-8 (traces are validated when recorded), so
 * matching uses PCRE2_NO_UTF_CHECK.
 *
 * A struct regex holds its own match data: use one per process or thread.
 */
#ifndef DISTILL_REGEX_H
#define DISTILL_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct regex;

/* Compile flags (the rule file's `flags` letters i, m, s, x). */
enum regex_flags {
	REGEX_CASELESS = 1 << 0,  /* i */
	REGEX_MULTILINE = 1 << 1, /* m: ^ and $ at line ends */
	REGEX_DOTALL = 1 << 2,	  /* s: . matches newline */
	REGEX_EXTENDED = 1 << 3,  /* x: white space and # comments ignored */
};

/* Bounds on one search (regex_search) or one count (regex_count). */
struct regex_limits {
	uint32_t match_limit; /* PCRE2 match limit, per start position */
	uint32_t depth_limit; /* PCRE2 depth limit (interpreter fallback) */
	size_t max_subject;   /* longer subjects are not searched: DERR_LIMIT */
	int64_t time_ns;      /* time budget of one call */
};

/* The defaults: match limit 10000, depth limit 1000, subject 1 MiB, 15 ms
 * of CPU time. */
void regex_limits_default(struct regex_limits *l);

/* Compile pattern[0..len) with flags.  On error *out is NULL, e says
 * "offset N: reason", and DERR_PARSE is returned.  JIT is used when PCRE2
 * supports it here; the interpreter otherwise. */
int regex_compile(struct regex **out, const char *pattern, size_t len, unsigned flags, struct derr *e);
void regex_free(struct regex *re); /* NULL is fine */

/* The code unit (byte) that every match starts with, when a memchr for it
 * skips exactly what PCRE2 itself would (searches do so); -1 otherwise.  A
 * text without it has no match. */
int regex_first_unit(const struct regex *re);

/* Search s[0..n) from byte offset start.  1: a match at [*so, *eo); 0: no
 * match; DERR_LIMIT: a bound was hit (e says which); DERR_INVALID: another
 * PCRE2 error.  so/eo may be NULL. */
int regex_search(struct regex *re, const char *s, size_t n, size_t start, const struct regex_limits *l,
		 size_t *so, size_t *eo, struct derr *e);

/* Count non-overlapping matches in s[0..n), stopping early once *count
 * reaches stop (0: no early stop).  0 or DERR_LIMIT / DERR_INVALID (then
 * *count holds the matches found so far).  One time budget covers the whole
 * count. */
int regex_count(struct regex *re, const char *s, size_t n, long stop, const struct regex_limits *l,
		long *count, struct derr *e);

#endif
