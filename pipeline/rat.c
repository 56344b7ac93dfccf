/* rat.c - bounded exact rationals over GMP's mpq (see rat.h). */
#include "rat.h"
#include "err.h"
#include "util.h"

#include <gmp.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct rat {
	mpq_t q;
};

struct rat *rat_new(void)
{
	struct rat *r = xmalloc(sizeof(*r));
	mpq_init(r->q);
	return r;
}

void rat_free(struct rat *r)
{
	if (!r)
		return;
	mpq_clear(r->q);
	free(r);
}

void rat_set(struct rat *r, const struct rat *a)
{
	mpq_set(r->q, a->q);
}

void rat_set_int(struct rat *r, long v)
{
	mpq_set_si(r->q, v, 1);
}

static size_t bits(const mpq_t q)
{
	size_t a = mpz_sizeinbase(mpq_numref(q), 2), b = mpz_sizeinbase(mpq_denref(q), 2);
	return a > b ? a : b;
}

static int too_big(const struct rat *r)
{
	return bits(r->q) > RAT_MAX_BITS;
}

int rat_set_dec(struct rat *r, const char *s, size_t n)
{
	mpz_t num, den;
	size_t i = 0, frac = 0;
	long ex = 0;
	int any = 0, rc = 0;

	if (n > 4000)
		return DERR_LIMIT;
	mpz_init_set_ui(num, 0);
	mpz_init_set_ui(den, 1);
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, any = 1) {
		mpz_mul_ui(num, num, 10);
		mpz_add_ui(num, num, (unsigned long)(s[i] - '0'));
	}
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, any = 1, frac++) {
			mpz_mul_ui(num, num, 10);
			mpz_add_ui(num, num, (unsigned long)(s[i] - '0'));
		}
	}
	if (any && i < n && (s[i] == 'e' || s[i] == 'E')) {
		int neg = 0, dig = 0;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			neg = s[i++] == '-';
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, dig = 1) {
			if (ex > 100000) {
				rc = DERR_LIMIT;
				goto out;
			}
			ex = ex * 10 + (s[i] - '0');
		}
		if (!dig)
			any = 0;
		if (neg)
			ex = -ex;
	}
	if (!any || i != n) {
		rc = DERR_INVALID;
		goto out;
	}
	ex -= (long)frac;
	if (ex > 20000 || ex < -20000) {
		rc = DERR_LIMIT;
		goto out;
	}
	if (ex > 0) {
		mpz_t p;
		mpz_init(p);
		mpz_ui_pow_ui(p, 10, (unsigned long)ex);
		mpz_mul(num, num, p);
		mpz_clear(p);
	} else if (ex < 0) {
		mpz_ui_pow_ui(den, 10, (unsigned long)-ex);
	}
	mpq_set_num(r->q, num);
	mpq_set_den(r->q, den);
	mpq_canonicalize(r->q);
out:
	mpz_clear(num);
	mpz_clear(den);
	return rc;
}

int rat_add(struct rat *r, const struct rat *a, const struct rat *b)
{
	if (bits(a->q) > RAT_MAX_BITS / 2 || bits(b->q) > RAT_MAX_BITS / 2)
		return DERR_LIMIT;
	mpq_add(r->q, a->q, b->q);
	return too_big(r) ? DERR_LIMIT : 0;
}

int rat_sub(struct rat *r, const struct rat *a, const struct rat *b)
{
	if (bits(a->q) > RAT_MAX_BITS / 2 || bits(b->q) > RAT_MAX_BITS / 2)
		return DERR_LIMIT;
	mpq_sub(r->q, a->q, b->q);
	return too_big(r) ? DERR_LIMIT : 0;
}

int rat_mul(struct rat *r, const struct rat *a, const struct rat *b)
{
	if (bits(a->q) + bits(b->q) > RAT_MAX_BITS)
		return DERR_LIMIT;
	mpq_mul(r->q, a->q, b->q);
	return 0;
}

int rat_div(struct rat *r, const struct rat *a, const struct rat *b)
{
	if (mpq_sgn(b->q) == 0)
		return DERR_INVALID;
	if (bits(a->q) + bits(b->q) > RAT_MAX_BITS)
		return DERR_LIMIT;
	mpq_div(r->q, a->q, b->q);
	return 0;
}

void rat_neg(struct rat *r, const struct rat *a)
{
	mpq_neg(r->q, a->q);
}

int rat_pow(struct rat *r, const struct rat *a, long e)
{
	unsigned long ue;
	mpz_t n, d;

	if (e == LONG_MIN)
		return DERR_LIMIT;
	if (e < 0 && mpq_sgn(a->q) == 0)
		return DERR_INVALID;
	ue = (unsigned long)(e < 0 ? -e : e);
	/* 0, 1 and -1 stay small whatever the exponent. */
	if (mpz_cmp_ui(mpq_denref(a->q), 1) == 0 && mpz_cmpabs_ui(mpq_numref(a->q), 1) <= 0) {
		ue = ue & 1 ? 1 : (ue ? 2 : 0);
	} else if (ue > RAT_MAX_BITS || (double)bits(a->q) * (double)ue > RAT_MAX_BITS) {
		return DERR_LIMIT;
	}
	mpz_init(n);
	mpz_init(d);
	mpz_pow_ui(n, mpq_numref(a->q), ue);
	mpz_pow_ui(d, mpq_denref(a->q), ue);
	if (e < 0)
		mpz_swap(n, d);
	mpq_set_num(r->q, n);
	mpq_set_den(r->q, d);
	mpq_canonicalize(r->q);
	mpz_clear(n);
	mpz_clear(d);
	return 0;
}

int rat_root(struct rat *r, const struct rat *a, unsigned long k)
{
	mpz_t n, d;
	int ok;

	if (k == 0 || k > 1000 || (mpq_sgn(a->q) < 0 && k % 2 == 0))
		return DERR_INVALID;
	mpz_init(n);
	mpz_init(d);
	ok = mpz_root(n, mpq_numref(a->q), k) && mpz_root(d, mpq_denref(a->q), k);
	if (ok) {
		mpq_set_num(r->q, n);
		mpq_set_den(r->q, d);
		mpq_canonicalize(r->q);
	}
	mpz_clear(n);
	mpz_clear(d);
	return ok ? 0 : DERR_INVALID;
}

int rat_fact(struct rat *r, const struct rat *a)
{
	long v;
	if (rat_get_long(a, &v) || v < 0)
		return DERR_INVALID;
	if (v > 20000)
		return DERR_LIMIT;
	mpz_t f;
	mpz_init(f);
	mpz_fac_ui(f, (unsigned long)v);
	mpq_set_z(r->q, f);
	mpz_clear(f);
	return 0;
}

int rat_cmp(const struct rat *a, const struct rat *b)
{
	return mpq_cmp(a->q, b->q);
}

int rat_sgn(const struct rat *a)
{
	return mpq_sgn(a->q);
}

int rat_is_int(const struct rat *a)
{
	return mpz_cmp_ui(mpq_denref(a->q), 1) == 0;
}

int rat_get_long(const struct rat *a, long *out)
{
	if (!rat_is_int(a) || !mpz_fits_slong_p(mpq_numref(a->q)))
		return DERR_INVALID;
	*out = mpz_get_si(mpq_numref(a->q));
	return 0;
}

double rat_get_d(const struct rat *a)
{
	return mpq_get_d(a->q);
}

int rat_close_dec(const struct rat *a, const struct rat *b, int d)
{
	mpq_t diff, tol;
	mpz_t p;
	int ok;

	if (d < 0 || d > 1000)
		return 0;
	mpq_init(diff);
	mpq_init(tol);
	mpz_init(p);
	mpq_sub(diff, a->q, b->q);
	mpq_abs(diff, diff);
	mpz_ui_pow_ui(p, 10, (unsigned long)d + 1);
	mpq_set_ui(tol, 5, 1);
	mpq_set_den(tol, p);
	mpq_canonicalize(tol);
	ok = mpq_cmp(diff, tol) <= 0;
	mpq_clear(diff);
	mpq_clear(tol);
	mpz_clear(p);
	return ok;
}
