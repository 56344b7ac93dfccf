/*
 * rat.h - exact rational numbers for the answer checker (the one module
 * that touches GMP).  Every operation is bounded: results larger than
 * RAT_MAX_BITS fail with DERR_LIMIT, so no answer can make the checker
 * compute without end.  Values are heap objects: rat_new/rat_free.
 */
#ifndef DISTILL_RAT_H
#define DISTILL_RAT_H

#include <stddef.h>

/* Largest numerator or denominator kept, in bits (2006! is ~64k bits). */
#define RAT_MAX_BITS (1u << 18)

struct rat;

struct rat *rat_new(void);    /* 0 */
void rat_free(struct rat *r); /* NULL is fine */
void rat_set(struct rat *r, const struct rat *a);
void rat_set_int(struct rat *r, long v);

/* Parse a plain decimal: digits, optional '.', digits, optional exponent
 * e[+-]digits.  0, or DERR_INVALID (r unchanged) / DERR_LIMIT. */
int rat_set_dec(struct rat *r, const char *s, size_t n);

/* r = a op b (r may alias a or b).  0, DERR_LIMIT on a too-large result,
 * DERR_INVALID on division by zero. */
int rat_add(struct rat *r, const struct rat *a, const struct rat *b);
int rat_sub(struct rat *r, const struct rat *a, const struct rat *b);
int rat_mul(struct rat *r, const struct rat *a, const struct rat *b);
int rat_div(struct rat *r, const struct rat *a, const struct rat *b);
void rat_neg(struct rat *r, const struct rat *a);
/* r = a^e for an integer e (|e| bounded by the size cap). */
int rat_pow(struct rat *r, const struct rat *a, long e);
/* r = the exact k-th root of a when it is rational; DERR_INVALID when not. */
int rat_root(struct rat *r, const struct rat *a, unsigned long k);
/* r = a! for an integer 0 <= a <= 20000. */
int rat_fact(struct rat *r, const struct rat *a);

int rat_cmp(const struct rat *a, const struct rat *b);
int rat_sgn(const struct rat *a);
int rat_is_int(const struct rat *a);
/* The value as a long when it is an integer that fits; 0 or DERR_INVALID. */
int rat_get_long(const struct rat *a, long *out);
double rat_get_d(const struct rat *a);

/* |a - b| <= 5 * 10^-(d+1), i.e. a rounds to b at d decimals (d >= 0). */
int rat_close_dec(const struct rat *a, const struct rat *b, int d);

#endif
