/*
 * gptk.c - instantiates the layer kernels of gptk_tmpl.h (float generic,
 * float AVX2+FMA, double), the worker-thread splitter and the peak-FLOP/s
 * probe.  See gptk.h.
 */
#include "gptk.h"
#include "util.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- threads ---------------------------------------------------------------- */

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single(void)
{
	openblas_set_num_threads(1);
}

struct par_job {
	gptk_range_fn *fn;
	void *ctx;
	int i0, i1;
};

static void *par_main(void *p)
{
	struct par_job *j = p;
	j->fn(j->ctx, j->i0, j->i1);
	return NULL;
}

void gptk_par(int nth, int n, gptk_range_fn *fn, void *ctx)
{
	enum { MAXTH = 64 };
	pthread_t tid[MAXTH];
	struct par_job jobs[MAXTH];
	int started[MAXTH] = {0};

	pthread_once(&blas_once, blas_single);
	if (nth > MAXTH)
		nth = MAXTH;
	if (nth > n)
		nth = n;
	if (nth <= 1) {
		if (n > 0)
			fn(ctx, 0, n);
		return;
	}
	for (int t = 0; t < nth; t++) {
		jobs[t].fn = fn;
		jobs[t].ctx = ctx;
		jobs[t].i0 = (int)((int64_t)n * t / nth);
		jobs[t].i1 = (int)((int64_t)n * (t + 1) / nth);
	}
	for (int t = 1; t < nth; t++)
		started[t] = pthread_create(&tid[t], NULL, par_main, &jobs[t]) == 0;
	fn(ctx, jobs[0].i0, jobs[0].i1);
	/* A thread that could not start is run here: the split stays the same. */
	for (int t = 1; t < nth; t++) {
		if (started[t])
			pthread_join(tid[t], NULL);
		else
			fn(ctx, jobs[t].i0, jobs[t].i1);
	}
}

/* ---- exp for float: Cody-Waite reduction and a degree-6 polynomial
 * (relative error ~2e-7), written so compilers vectorize it. ------------- */

#define FEXP_BODY                                         \
	union {                                           \
		float f;                                  \
		int32_t i;                                \
	} u_, s_;                                         \
	float n_, r_, p_;                                 \
	x = x < -87.0f ? -87.0f : x;                      \
	x = x > 88.0f ? 88.0f : x;                        \
	u_.f = x * 1.44269504088896341f + 12582912.0f;    \
	n_ = u_.f - 12582912.0f;                          \
	r_ = x - n_ * 0.693359375f + n_ * 2.12194440e-4f; \
	p_ = 1.9875691500e-4f;                            \
	p_ = p_ * r_ + 1.3981999507e-3f;                  \
	p_ = p_ * r_ + 8.3334519073e-3f;                  \
	p_ = p_ * r_ + 4.1665795894e-2f;                  \
	p_ = p_ * r_ + 1.6666665459e-1f;                  \
	p_ = p_ * r_ + 5.0000001201e-1f;                  \
	p_ = p_ * r_ * r_ + r_ + 1.0f;                    \
	s_.i = (u_.i - 0x4B400000 + 127) * (1 << 23);     \
	return p_ * s_.f;

/* ---- float, generic ---------------------------------------------------------- */

static inline float fexp_generic(float x)
{
	FEXP_BODY
}

#define R float
#define F(n) n##_f
#define GEMM cblas_sgemm
#define EXPR(x) fexp_generic(x)
#define SQRTR sqrtf
#define LOGR logf
#define OPS_T struct gptk_ops
#include "gptk_tmpl.h"
#undef F
#undef EXPR

/* ---- float, AVX2 + FMA -------------------------------------------------------- */

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define GPTK_HAVE_AVX2_BUILD 1
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

static inline float fexp_avx2(float x)
{
	FEXP_BODY
}

#define F(n) n##_f_avx2
#define EXPR(x) fexp_avx2(x)
#include "gptk_tmpl.h"
#undef F
#undef EXPR

static double peak_avx2(long iters)
{
	__m256 acc[10], m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
	float out[8];
	double s = 0;
	for (int k = 0; k < 10; k++)
		acc[k] = _mm256_set1_ps((float)k);
	for (long i = 0; i < iters; i++)
		for (int k = 0; k < 10; k++)
			acc[k] = _mm256_fmadd_ps(acc[k], m, a);
	for (int k = 1; k < 10; k++)
		acc[0] = _mm256_add_ps(acc[0], acc[k]);
	_mm256_storeu_ps(out, acc[0]);
	for (int k = 0; k < 8; k++)
		s += out[k];
	return s;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#undef R
#undef GEMM
#undef SQRTR
#undef LOGR
#undef OPS_T

/* ---- double -------------------------------------------------------------------- */

#define R double
#define F(n) n##_d
#define GEMM cblas_dgemm
#define EXPR(x) exp(x)
#define SQRTR sqrt
#define LOGR log
#define OPS_T struct gptk_ops_d
#include "gptk_tmpl.h"
#undef R
#undef F
#undef GEMM
#undef EXPR
#undef SQRTR
#undef LOGR
#undef OPS_T

/* ---- selection ------------------------------------------------------------------ */

int gptk_have_avx2(void)
{
#if defined(GPTK_HAVE_AVX2_BUILD)
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
	return 0;
#endif
}

static struct gptk_ops ops_generic, ops_avx2;
static struct gptk_ops_d ops_double;
static pthread_once_t ops_once = PTHREAD_ONCE_INIT;

static void ops_setup(void)
{
	ops_generic = gptk_ops_f;
	ops_generic.name = "generic";
#if defined(GPTK_HAVE_AVX2_BUILD)
	ops_avx2 = gptk_ops_f_avx2;
	ops_avx2.name = "avx2";
#endif
	ops_double = gptk_ops_d;
	ops_double.name = "double";
}

const struct gptk_ops *gptk_ops_get(enum gptk_isa isa)
{
	pthread_once(&ops_once, ops_setup);
	if (isa != GPTK_ISA_GENERIC && gptk_have_avx2())
		return &ops_avx2;
	return &ops_generic;
}

const struct gptk_ops_d *gptk_ops_double(void)
{
	pthread_once(&ops_once, ops_setup);
	return &ops_double;
}

/* ---- peak FLOP/s ------------------------------------------------------------------ */

struct peak_args {
	long iters;
	double sink[64];
};

static double peak_generic(long iters)
{
	float acc[32], s = 0;
	for (int k = 0; k < 32; k++)
		acc[k] = (float)k;
	for (long i = 0; i < iters; i++)
		for (int k = 0; k < 32; k++)
			acc[k] = acc[k] * 0.999999f + 1e-7f;
	for (int k = 0; k < 32; k++)
		s += acc[k];
	return s;
}

static void peak_run(void *ctx, int t0, int t1)
{
	struct peak_args *a = ctx;
	for (int t = t0; t < t1; t++) {
#if defined(GPTK_HAVE_AVX2_BUILD)
		if (gptk_have_avx2()) {
			a->sink[t & 63] = peak_avx2(a->iters);
			continue;
		}
#endif
		a->sink[t & 63] = peak_generic(a->iters);
	}
}

double gptk_peak_flops(int nth, int ms)
{
	struct peak_args a = {.iters = 1 << 16};
	double flops_per_iter = gptk_have_avx2() ? 10 * 8 * 2 : 32 * 2, best = 0;
	int64_t budget = (int64_t)ms * 1000000, t_start = mono_ns();

	if (nth < 1)
		nth = 1;
	for (;;) {
		int64_t t0 = mono_ns(), dt;
		gptk_par(nth, nth, peak_run, &a);
		dt = mono_ns() - t0;
		if (dt > 0) {
			double f = flops_per_iter * (double)a.iters * nth / ((double)dt * 1e-9);
			best = f > best ? f : best;
		}
		if (mono_ns() - t_start > budget)
			break;
		if (dt < 5000000)
			a.iters *= 2;
	}
	return best;
}
