/*
 * test_gptk.c - finite-difference gradient checks of every layer of the
 * trainer's GPT, in double precision (gptk_ops_double), on tiny shapes.
 * Each layer's output is reduced to a scalar loss = sum(out * r) with a fixed
 * random r; the backward kernel, fed dout = r, must match central
 * differences of that loss with respect to every input and parameter.
 * Also checks that the float kernels (each instruction-set path) agree with
 * the double ones.
 */
#include "gptk.h"
#include "t.h"

#include <math.h>

static uint64_t rng_state = 42;

static double urand(void)
{
	rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static double *rnd(size_t n, double scale)
{
	double *p = malloc(sizeof(double) * n);
	for (size_t i = 0; i < n; i++)
		p[i] = urand() * scale;
	return p;
}

static double *zeros(size_t n)
{
	return calloc(n, sizeof(double));
}

/* The layer under test: recompute the scalar loss from the current inputs. */
typedef double loss_fn(void *ctx);

/* Compare grad[i] with central differences of loss over x[i], i < n. */
static double check_grad(const char *what, loss_fn *f, void *ctx, double *x, const double *grad, size_t n)
{
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double keep = x[i], h = 1e-5, lp, lm, fd, err;
		x[i] = keep + h;
		lp = f(ctx);
		x[i] = keep - h;
		lm = f(ctx);
		x[i] = keep;
		fd = (lp - lm) / (2 * h);
		err = fabs(fd - grad[i]) / fmax(1e-6, fabs(fd) + fabs(grad[i]));
		if (fabs(fd - grad[i]) < 1e-8)
			err = 0;
		if (err > worst)
			worst = err;
	}
	if (worst > 1e-5)
		fprintf(stderr, "%s: worst relative gradient error %g\n", what, worst);
	T_TRUE(worst <= 1e-5);
	return worst;
}

static double dot(const double *a, const double *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

enum { B = 2, T = 5, C = 8, NH = 2, OC = 6, V = 7, Vp = 8, N = B * T };

/* ---- layernorm ---- */
struct ln_ctx {
	const struct gptk_ops_d *k;
	double *inp, *w, *b, *out, *mean, *rstd, *r;
};

static double ln_loss(void *p)
{
	struct ln_ctx *c = p;
	c->k->layernorm_fwd(c->out, c->mean, c->rstd, c->inp, c->w, c->b, N, C, 1);
	return dot(c->out, c->r, N * C);
}

static void test_layernorm(const struct gptk_ops_d *k)
{
	struct ln_ctx c = {k,	     rnd(N * C, 1), rnd(C, 1),	  rnd(C, 1), zeros(N * C),
			   zeros(N), zeros(N),	    rnd(N * C, 1)};
	double *dinp = zeros(N * C), *dw = zeros(C), *db = zeros(C);
	ln_loss(&c);
	k->layernorm_bwd(dinp, dw, db, c.r, c.inp, c.w, c.mean, c.rstd, N, C, 2);
	check_grad("layernorm inp", ln_loss, &c, c.inp, dinp, N * C);
	check_grad("layernorm w", ln_loss, &c, c.w, dw, C);
	check_grad("layernorm b", ln_loss, &c, c.b, db, C);
	free(c.inp), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.r);
	free(dinp), free(dw), free(db);
}

/* ---- matmul ---- */
struct mm_ctx {
	const struct gptk_ops_d *k;
	double *inp, *w, *bias, *out, *r;
};

static double mm_loss(void *p)
{
	struct mm_ctx *c = p;
	c->k->matmul_fwd(c->out, c->inp, c->w, c->bias, N, C, OC, 1);
	return dot(c->out, c->r, N * OC);
}

static void test_matmul(const struct gptk_ops_d *k)
{
	struct mm_ctx c = {k, rnd(N * C, 1), rnd(OC * C, 1), rnd(OC, 1), zeros(N * OC), rnd(N * OC, 1)};
	double *dinp = zeros(N * C), *dw = zeros(OC * C), *db = zeros(OC);
	mm_loss(&c);
	k->matmul_bwd(dinp, dw, db, c.r, c.inp, c.w, N, C, OC, 2);
	check_grad("matmul inp", mm_loss, &c, c.inp, dinp, N * C);
	check_grad("matmul w", mm_loss, &c, c.w, dw, OC * C);
	check_grad("matmul bias", mm_loss, &c, c.bias, db, OC);
	free(c.inp), free(c.w), free(c.bias), free(c.out), free(c.r), free(dinp), free(dw), free(db);
}

/* ---- attention (T larger than one query block, to cross blocks) ---- */
enum { AT = GPTK_QB + 7, AB = 2 };
struct att_ctx {
	const struct gptk_ops_d *k;
	double *qkv, *out, *lse, *r;
};

static double att_loss(void *p)
{
	struct att_ctx *c = p;
	c->k->attention_fwd(c->out, c->lse, c->qkv, AB, AT, C, NH, 1);
	return dot(c->out, c->r, AB * AT * C);
}

static void test_attention(const struct gptk_ops_d *k)
{
	struct att_ctx c = {k, rnd(AB * AT * 3 * C, 1.5), zeros(AB * AT * C), zeros(AB * NH * AT),
			    rnd(AB * AT * C, 1)};
	double *dqkv = zeros(AB * AT * 3 * C);
	att_loss(&c);
	k->attention_bwd(dqkv, c.r, c.qkv, c.out, c.lse, AB, AT, C, NH, 2);
	check_grad("attention qkv", att_loss, &c, c.qkv, dqkv, AB * AT * 3 * C);
	/* causality: the first output row depends on nothing after t = 0 */
	{
		double keep = c.qkv[5 * 3 * C + C + 1], before, after;
		att_loss(&c);
		before = c.out[0];
		c.qkv[5 * 3 * C + C + 1] += 1.0;
		att_loss(&c);
		after = c.out[0];
		c.qkv[5 * 3 * C + C + 1] = keep;
		T_EQ_DBL(before, after, 0);
	}
	free(c.qkv), free(c.out), free(c.lse), free(c.r), free(dqkv);
}

/* ---- gelu ---- */
struct gelu_ctx {
	const struct gptk_ops_d *k;
	double *inp, *out, *r;
};

static double gelu_loss(void *p)
{
	struct gelu_ctx *c = p;
	c->k->gelu_fwd(c->out, c->inp, N * C, 1);
	return dot(c->out, c->r, N * C);
}

static void test_gelu(const struct gptk_ops_d *k)
{
	struct gelu_ctx c = {k, rnd(N * C, 3), zeros(N * C), rnd(N * C, 1)};
	double *dinp = zeros(N * C);
	gelu_loss(&c);
	k->gelu_bwd(dinp, c.inp, c.r, N * C, 2);
	check_grad("gelu", gelu_loss, &c, c.inp, dinp, N * C);
	free(c.inp), free(c.out), free(c.r), free(dinp);
}

/* ---- residual, encoder ---- */
struct enc_ctx {
	const struct gptk_ops_d *k;
	double *wte, *wpe, *out, *r;
	int inp[N], pos[N];
};

static double enc_loss(void *p)
{
	struct enc_ctx *c = p;
	c->k->encoder_fwd(c->out, c->inp, c->pos, c->wte, c->wpe, N, C);
	return dot(c->out, c->r, N * C);
}

static void test_encoder(const struct gptk_ops_d *k)
{
	struct enc_ctx c = {k, rnd(V * C, 1), rnd(T * C, 1), zeros(N * C), rnd(N * C, 1), {0}, {0}};
	double *dwte = zeros(V * C), *dwpe = zeros(T * C);
	for (int i = 0; i < N; i++) {
		c.inp[i] = (i * 3) % V;
		c.pos[i] = i % T;
	}
	enc_loss(&c);
	k->encoder_bwd(dwte, dwpe, c.r, c.inp, c.pos, N, C);
	check_grad("encoder wte", enc_loss, &c, c.wte, dwte, V * C);
	check_grad("encoder wpe", enc_loss, &c, c.wpe, dwpe, T * C);
	free(c.wte), free(c.wpe), free(c.out), free(c.r), free(dwte), free(dwpe);
}

/* ---- cross-entropy with weights (masking) ---- */
struct ce_ctx {
	const struct gptk_ops_d *k;
	double *logits, *losses, *w;
	int targets[N];
};

static double ce_loss(void *p)
{
	struct ce_ctx *c = p;
	c->k->crossentropy(c->losses, NULL, c->logits, c->targets, c->w, 1, N, V, Vp, 1);
	return dot(c->losses, c->w, N) * 0.25;
}

static void test_crossentropy(const struct gptk_ops_d *k)
{
	struct ce_ctx c = {k, rnd(N * Vp, 2), zeros(N), zeros(N), {0}};
	double *dl = zeros(N * Vp);
	for (int i = 0; i < N; i++) {
		c.targets[i] = (i * 5 + 1) % V;
		c.w[i] = i % 3 == 0 ? 0 : (i % 3 == 1 ? 1.0 : 0.5);
	}
	ce_loss(&c);
	k->crossentropy(c.losses, dl, c.logits, c.targets, c.w, 0.25, N, V, Vp, 2);
	check_grad("crossentropy logits", ce_loss, &c, c.logits, dl, N * Vp);
	/* a masked row contributes nothing whatever its target */
	{
		double before = ce_loss(&c), after;
		c.targets[0] = (c.targets[0] + 1) % V;
		after = ce_loss(&c);
		T_EQ_DBL(before, after, 0);
	}
	free(c.logits), free(c.losses), free(c.w), free(dl);
}

/* The float kernels must agree with the double ones (attention and GELU
 * use a polynomial exp in float). */
static void test_float_agrees(const struct gptk_ops *kf, const struct gptk_ops_d *kd)
{
	size_t n = AB * AT * 3 * C;
	double *qkv = rnd(n, 1.5), *out = zeros(AB * AT * C), *lse = zeros(AB * NH * AT);
	float *qf = malloc(sizeof(float) * n), *of = calloc(AB * AT * C, sizeof(float));
	float *lf = calloc(AB * NH * AT, sizeof(float)), *gf = calloc(N * C, sizeof(float));
	double worst = 0;
	for (size_t i = 0; i < n; i++)
		qf[i] = (float)qkv[i];
	kd->attention_fwd(out, lse, qkv, AB, AT, C, NH, 1);
	kf->attention_fwd(of, lf, qf, AB, AT, C, NH, 2);
	for (int i = 0; i < AB * AT * C; i++)
		worst = fmax(worst, fabs(out[i] - of[i]));
	T_TRUE(worst < 1e-5);
	kd->gelu_fwd(out, qkv, N * C, 1);
	kf->gelu_fwd(gf, qf, N * C, 1);
	worst = 0;
	for (int i = 0; i < N * C; i++)
		worst = fmax(worst, fabs(out[i] - gf[i]));
	T_TRUE(worst < 1e-6);
	free(qkv), free(out), free(lse), free(qf), free(of), free(lf), free(gf);
}

int main(void)
{
	const struct gptk_ops_d *k = gptk_ops_double();
	test_layernorm(k);
	test_matmul(k);
	test_attention(k);
	test_gelu(k);
	test_encoder(k);
	test_crossentropy(k);
	test_float_agrees(gptk_ops_get(GPTK_ISA_GENERIC), k);
	test_float_agrees(gptk_ops_get(GPTK_ISA_AUTO), k);
	T_TRUE(gptk_peak_flops(1, 20) > 1e8);
	return t_done();
}
