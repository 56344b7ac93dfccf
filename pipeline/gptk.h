/*
 * gptk.h - the layer kernels of the bundled trainer's GPT (forward/backward
 * pairs, llm.c style), used by gpt.c.  One implementation (gptk_tmpl.h)
 * instantiated three ways: float with generic code, float with AVX2+FMA
 * (chosen at run time when the CPU has it), and double for the gradient
 * checks.  Matrix products go to OpenBLAS, which the kernels call single-
 * threaded from their own worker threads (gptk_par).  Pure computation: no
 * I/O, no global state besides the BLAS thread setting.
 */
#ifndef DISTILL_GPTK_H
#define DISTILL_GPTK_H

/* Query rows per attention block: each worker holds a (GPTK_QB, T) tile. */
#define GPTK_QB 64

enum gptk_isa {
	GPTK_ISA_AUTO,	  /* the best the CPU supports */
	GPTK_ISA_GENERIC, /* portable C (SSE2 on x86-64) */
	GPTK_ISA_AVX2,	  /* AVX2 + FMA */
};

#define GPTK_OPS_FIELDS(R)                                                                                   \
	void (*encoder_fwd)(R * out, const int *inp, const int *pos, const R *wte, const R *wpe, int N,      \
			    int C);                                                                          \
	void (*encoder_bwd)(R * dwte, R * dwpe, const R *dout, const int *inp, const int *pos, int N,        \
			    int C);                                                                          \
	void (*layernorm_fwd)(R * out, R * mean, R * rstd, const R *inp, const R *w, const R *b, int N,      \
			      int C, int nth);                                                               \
	void (*layernorm_bwd)(R * dinp, R * dw, R * db, const R *dout, const R *inp, const R *w,             \
			      const R *mean, const R *rstd, int N, int C, int nth);                          \
	void (*matmul_fwd)(R * out, const R *inp, const R *w, const R *bias, int N, int C, int OC, int nth); \
	void (*matmul_bwd)(R * dinp, R * dw, R * dbias, const R *dout, const R *inp, const R *w, int N,      \
			   int C, int OC, int nth);                                                          \
	void (*attention_fwd)(R * out, R * lse, const R *qkv, int B, int T, int C, int NH, int nth);         \
	void (*attention_bwd)(R * dqkv, const R *dout, const R *qkv, const R *out, const R *lse, int B,      \
			      int T, int C, int NH, int nth);                                                \
	void (*gelu_fwd)(R * out, const R *inp, int n, int nth);                                             \
	void (*gelu_bwd)(R * dinp, const R *inp, const R *dout, int n, int nth);                             \
	void (*residual_fwd)(R * out, const R *a, const R *b, int n, int nth);                               \
	void (*crossentropy)(R * losses, R * dlogits, const R *logits, const int *targets, const R *weights, \
			     R dscale, int N, int V, int Vp, int nth);

/* The kernels of one instantiation.  Shapes and semantics in gptk_tmpl.h:
 * out (N,OC) = inp (N,C) @ w (OC,C)^T + bias; attention over qkv (B,T,3C)
 * with lse (B,NH,T); backward kernels accumulate into their outputs;
 * crossentropy gives per-row losses (0 where weight is 0) and, when dlogits
 * is not NULL, adds weight * dscale * (softmax - onehot) to it. */
struct gptk_ops {
	const char *name;
	GPTK_OPS_FIELDS(float)
};

struct gptk_ops_d {
	const char *name;
	GPTK_OPS_FIELDS(double)
};

/* The float kernels for an instruction set; AUTO picks AVX2 when the CPU
 * has AVX2 and FMA.  Asking for AVX2 on a CPU without it gives generic. */
const struct gptk_ops *gptk_ops_get(enum gptk_isa isa);

/* The double-precision kernels (gradient checks). */
const struct gptk_ops_d *gptk_ops_double(void);

/* Does this CPU run the AVX2+FMA kernels? */
int gptk_have_avx2(void);

/* Run fn over [0, n) split into nth contiguous ranges, one thread each
 * (the calling thread takes the first).  Also puts OpenBLAS in single-
 * thread mode once, since the kernels parallelize around it. */
typedef void gptk_range_fn(void *ctx, int i0, int i1);
void gptk_par(int nth, int n, gptk_range_fn *fn, void *ctx);

/* Measure the machine's FP32 FMA peak in FLOP/s over nth threads for about
 * ms milliseconds (the MFU denominator). */
double gptk_peak_flops(int nth, int ms);

#endif
