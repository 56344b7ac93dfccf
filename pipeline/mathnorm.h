/*
 * mathnorm.h - LaTeX normalisation for the answer checker: turns an
 * extracted answer ("$\dfrac12\,\text{cm}$", "1{,}000", "30^\circ") into a
 * canonical LaTeX-lite string that mathexpr parses.  Layout commands,
 * spacing, math delimiters, degree signs and currency go; \dfrac/\tfrac
 * become \frac; relations become <= >= !=; Unicode math signs become their
 * ASCII/LaTeX forms; \text{}-like groups are unwrapped, and a group or a
 * bare word of letters becomes a text run between MATHNORM_TEXT_OPEN and
 * MATHNORM_TEXT_CLOSE (units, words like "odd").  Pure; bounded by the
 * output buffer's cap.
 */
#ifndef DISTILL_MATHNORM_H
#define DISTILL_MATHNORM_H

#include <stddef.h>

struct buf;

#define MATHNORM_TEXT_OPEN '\x01'
#define MATHNORM_TEXT_CLOSE '\x02'

/* Normalise s[0, n) into out (reset first).  strict keeps degree signs as
 * "\circ" and currency.  0, or DERR_LIMIT when out's cap or the nesting
 * bound is hit. */
int mathnorm(const char *s, size_t n, int strict, struct buf *out);

#endif
