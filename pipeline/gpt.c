/*
 * gpt.c - the student model: parameters, activations, forward/backward,
 * AdamW, checkpoints and KV-cached inference (see gpt.h).  The layer math is
 * in gptk_tmpl.h; this file lays out memory and calls the layers in order.
 */
#include "gpt.h"
#include "hash.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const gpt_kernel_names[GPT_K_COUNT] = {
	"encoder", "layernorm", "matmul", "attention", "gelu", "residual", "crossentropy", "adamw",
};

#define TIMED(g, k, call)                             \
	do {                                          \
		int64_t t0_ = mono_ns();              \
		call;                                 \
		(g)->kernel_ns[k] += mono_ns() - t0_; \
	} while (0)

/* ---- random numbers ------------------------------------------------------------ */

uint64_t gpt_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

float gpt_rng_uniform(uint64_t *s)
{
	return (float)(gpt_rng_next(s) >> 40) / 16777216.0f;
}

static double rng_normal(uint64_t *s)
{
	double u1 = ((double)(gpt_rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
	double u2 = (double)(gpt_rng_next(s) >> 11) / 9007199254740992.0;
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- layout ------------------------------------------------------------------------ */

int gpt_config_check(struct gpt_config *c, struct derr *e)
{
	if (c->num_layers < 1 || c->num_layers > 64 || c->num_heads < 1 || c->channels < 1 ||
	    c->channels > 8192 || c->channels % c->num_heads || c->max_seq_len < 2 ||
	    c->max_seq_len > 16384 || c->vocab_size < 2 || c->vocab_size > 1 << 20)
		return derr_set(
			e, DERR_INVALID,
			"bad model shape: layers %d, heads %d, dim %d, ctx %d, vocab %d (dim must be a "
			"multiple of heads)",
			c->num_layers, c->num_heads, c->channels, c->max_seq_len, c->vocab_size);
	c->padded_vocab_size = (c->vocab_size + 63) / 64 * 64;
	return 0;
}

static void param_sizes(const struct gpt_config *c, size_t s[GPT_NUM_PARAM_TENSORS])
{
	size_t Vp = c->padded_vocab_size, C = c->channels, L = c->num_layers, T = c->max_seq_len;
	size_t sz[GPT_NUM_PARAM_TENSORS] = {
		Vp * C, T * C, L * C,	      L * C,	 L * 3 * C * C, L * 3 * C, L * C * C, L * C,
		L * C,	L * C, L * 4 * C * C, L * 4 * C, L * C * 4 * C, L * C,	   C,	      C,
	};
	memcpy(s, sz, sizeof(sz));
}

/* Tensors that get weight decay (matrices and embeddings), in param order. */
static const int param_decay[GPT_NUM_PARAM_TENSORS] = {1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0};

static void point_params(struct gpt_params *p, float *mem, const size_t *sizes)
{
	float **ptrs[GPT_NUM_PARAM_TENSORS] = {
		&p->wte,  &p->wpe,  &p->ln1w, &p->ln1b, &p->qkvw,    &p->qkvb,	  &p->attprojw, &p->attprojb,
		&p->ln2w, &p->ln2b, &p->fcw,  &p->fcb,	&p->fcprojw, &p->fcprojb, &p->lnfw,	&p->lnfb,
	};
	for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
		*ptrs[i] = mem;
		mem += sizes[i];
	}
}

/* Activation sizes for (B,T); for_grads keeps only what backward writes. */
static void act_sizes(const struct gpt_config *c, int B, int T, int for_grads, size_t s[GPT_NUM_ACT_TENSORS])
{
	size_t N = (size_t)B * T, C = c->channels, L = c->num_layers, NH = c->num_heads,
	       Vp = c->padded_vocab_size;
	size_t sz[GPT_NUM_ACT_TENSORS] = {
		N * C,
		L * N * C,
		L * N,
		L * N,
		L * N * 3 * C,
		L * N * C,
		L * NH * N,
		L * N * C,
		L * N * C,
		L * N * C,
		L * N,
		L * N,
		L * N * 4 * C,
		L * N * 4 * C,
		L * N * C,
		L * N * C,
		N * C,
		N,
		N,
		N * Vp,
		N,
	};
	/* grads of: encoded ln1 qkv atty residual2 ln2 fch fch_gelu residual3 lnf logits */
	static const int needed[GPT_NUM_ACT_TENSORS] = {1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0,
							0, 1, 1, 0, 1, 1, 0, 0, 1, 0};
	for (int i = 0; i < GPT_NUM_ACT_TENSORS; i++)
		s[i] = !for_grads || needed[i] ? sz[i] : 0;
}

static void point_acts(struct gpt_acts *a, float *mem, const size_t *sizes)
{
	float **ptrs[GPT_NUM_ACT_TENSORS] = {
		&a->encoded,  &a->ln1,	    &a->ln1_mean,  &a->ln1_rstd,  &a->qkv,	&a->atty,
		&a->lse,      &a->attproj,  &a->residual2, &a->ln2,	  &a->ln2_mean, &a->ln2_rstd,
		&a->fch,      &a->fch_gelu, &a->fcproj,	   &a->residual3, &a->lnf,	&a->lnf_mean,
		&a->lnf_rstd, &a->logits,   &a->losses,
	};
	for (int i = 0; i < GPT_NUM_ACT_TENSORS; i++) {
		*ptrs[i] = sizes[i] ? mem : NULL;
		mem += sizes[i];
	}
}

static void alloc_params(struct gpt *g)
{
	param_sizes(&g->cfg, g->param_sizes);
	g->num_params = 0;
	for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++)
		g->num_params += g->param_sizes[i];
	g->params = xcalloc(g->num_params, sizeof(float));
	g->grads = xcalloc(g->num_params, sizeof(float));
	point_params(&g->p, g->params, g->param_sizes);
	point_params(&g->g, g->grads, g->param_sizes);
}

static int gpt_setup(struct gpt *g, const struct gpt_config *cfg, int nth, enum gptk_isa isa, struct derr *e)
{
	memset(g, 0, sizeof(*g));
	g->cfg = *cfg;
	if (gpt_config_check(&g->cfg, e))
		return e ? e->code : DERR_INVALID;
	g->ops = gptk_ops_get(isa);
	g->nth = nth < 1 ? 1 : nth;
	alloc_params(g);
	return 0;
}

int gpt_init(struct gpt *g, const struct gpt_config *cfg, uint64_t seed, int nth, enum gptk_isa isa,
	     struct derr *e)
{
	uint64_t rng = seed ^ 0x5DEECE66DULL;
	float *w = NULL;
	size_t C, L, V;
	int rc = gpt_setup(g, cfg, nth, isa, e);
	if (rc)
		return rc;
	C = g->cfg.channels;
	L = g->cfg.num_layers;
	V = g->cfg.vocab_size;
	/* Every tensor in order: normal for matrices and embeddings, residual
	 * projections scaled by 1/sqrt(2L), ones for LayerNorm weights. */
	w = g->params;
	for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
		size_t n = g->param_sizes[i];
		double std = 0.02;
		if (i == 6 || i == 12)
			std = 0.02 / sqrt(2.0 * (double)L);
		if (param_decay[i]) {
			for (size_t k = 0; k < n; k++)
				w[k] = (float)(std * rng_normal(&rng));
		} else if (i == 2 || i == 8 || i == 14) {
			for (size_t k = 0; k < n; k++)
				w[k] = 1.0f;
		}
		w += n;
	}
	/* Padded vocabulary rows are never predicted: keep them zero. */
	memset(g->p.wte + V * C, 0, sizeof(float) * (g->cfg.padded_vocab_size - V) * C);
	return 0;
}

void gpt_release(struct gpt *g)
{
	free(g->params);
	free(g->grads);
	free(g->m);
	free(g->v);
	free(g->acts);
	free(g->dacts);
	free(g->inputs);
	free(g->targets);
	free(g->pos);
	free(g->weights);
	memset(g, 0, sizeof(*g));
}

static void ensure_acts(struct gpt *g, int B, int T)
{
	size_t s[GPT_NUM_ACT_TENSORS], ds[GPT_NUM_ACT_TENSORS], n = 0, dn = 0;
	if (g->acts && g->B == B && g->T == T)
		return;
	free(g->acts);
	free(g->dacts);
	free(g->inputs);
	free(g->targets);
	free(g->pos);
	free(g->weights);
	act_sizes(&g->cfg, B, T, 0, s);
	act_sizes(&g->cfg, B, T, 1, ds);
	for (int i = 0; i < GPT_NUM_ACT_TENSORS; i++) {
		n += s[i];
		dn += ds[i];
	}
	g->acts = xcalloc(n, sizeof(float));
	g->dacts = xcalloc(dn, sizeof(float));
	g->num_acts = dn;
	point_acts(&g->a, g->acts, s);
	point_acts(&g->da, g->dacts, ds);
	g->inputs = xcalloc((size_t)B * T, sizeof(int));
	g->targets = xcalloc((size_t)B * T, sizeof(int));
	g->pos = xcalloc((size_t)B * T, sizeof(int));
	g->weights = xcalloc((size_t)B * T, sizeof(float));
	g->B = B;
	g->T = T;
}

/* ---- forward / backward --------------------------------------------------------------- */

int gpt_forward(struct gpt *g, const int *inputs, const int *pos, const int *targets, const float *weights,
		int B, int T, struct derr *e)
{
	const struct gptk_ops *k = g->ops;
	int C = g->cfg.channels, L = g->cfg.num_layers, NH = g->cfg.num_heads, V = g->cfg.vocab_size;
	int Vp = g->cfg.padded_vocab_size, N = B * T, nth = g->nth;
	struct gpt_params *p = &g->p;
	struct gpt_acts *a = &g->a;
	const float *residual;
	double sum = 0;
	long count = 0;

	if (T > g->cfg.max_seq_len || B < 1 || T < 1)
		return derr_set(e, DERR_INVALID, "batch %dx%d does not fit the model's context %d", B, T,
				g->cfg.max_seq_len);
	for (int i = 0; i < N; i++)
		if (inputs[i] < 0 || inputs[i] >= V || pos[i] < 0 || pos[i] >= g->cfg.max_seq_len ||
		    (targets && (targets[i] < 0 || targets[i] >= V)))
			return derr_set(e, DERR_INVALID, "token or position out of range at %d", i);
	ensure_acts(g, B, T);
	memcpy(g->inputs, inputs, sizeof(int) * N);
	memcpy(g->pos, pos, sizeof(int) * N);
	if (targets) {
		memcpy(g->targets, targets, sizeof(int) * N);
		memcpy(g->weights, weights, sizeof(float) * N);
	}

	TIMED(g, GPT_K_ENCODER, k->encoder_fwd(a->encoded, g->inputs, g->pos, p->wte, p->wpe, N, C));
	residual = a->encoded;
	for (int l = 0; l < L; l++) {
		size_t nc = (size_t)N * C;
		float *ln1 = a->ln1 + l * nc, *ln1m = a->ln1_mean + (size_t)l * N,
		      *ln1r = a->ln1_rstd + (size_t)l * N;
		float *qkv = a->qkv + l * nc * 3, *atty = a->atty + l * nc,
		      *lse = a->lse + (size_t)l * N * NH;
		float *attproj = a->attproj + l * nc, *res2 = a->residual2 + l * nc, *ln2 = a->ln2 + l * nc;
		float *ln2m = a->ln2_mean + (size_t)l * N, *ln2r = a->ln2_rstd + (size_t)l * N;
		float *fch = a->fch + l * nc * 4, *fchg = a->fch_gelu + l * nc * 4,
		      *fcproj = a->fcproj + l * nc;
		float *res3 = a->residual3 + l * nc;

		TIMED(g, GPT_K_LAYERNORM,
		      k->layernorm_fwd(ln1, ln1m, ln1r, residual, p->ln1w + l * C, p->ln1b + l * C, N, C,
				       nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_fwd(qkv, ln1, p->qkvw + (size_t)l * 3 * C * C, p->qkvb + l * 3 * C, N, C,
				    3 * C, nth));
		TIMED(g, GPT_K_ATTENTION, k->attention_fwd(atty, lse, qkv, B, T, C, NH, nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_fwd(attproj, atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, N, C,
				    C, nth));
		TIMED(g, GPT_K_RESIDUAL, k->residual_fwd(res2, residual, attproj, (int)nc, nth));
		TIMED(g, GPT_K_LAYERNORM,
		      k->layernorm_fwd(ln2, ln2m, ln2r, res2, p->ln2w + l * C, p->ln2b + l * C, N, C, nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_fwd(fch, ln2, p->fcw + (size_t)l * 4 * C * C, p->fcb + l * 4 * C, N, C, 4 * C,
				    nth));
		TIMED(g, GPT_K_GELU, k->gelu_fwd(fchg, fch, (int)nc * 4, nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_fwd(fcproj, fchg, p->fcprojw + (size_t)l * C * 4 * C, p->fcprojb + l * C, N,
				    4 * C, C, nth));
		TIMED(g, GPT_K_RESIDUAL, k->residual_fwd(res3, res2, fcproj, (int)nc, nth));
		residual = res3;
	}
	TIMED(g, GPT_K_LAYERNORM,
	      k->layernorm_fwd(a->lnf, a->lnf_mean, a->lnf_rstd, residual, p->lnfw, p->lnfb, N, C, nth));
	TIMED(g, GPT_K_MATMUL, k->matmul_fwd(a->logits, a->lnf, p->wte, NULL, N, C, Vp, nth));

	g->mask_count = 0;
	g->loss = -1;
	if (!targets)
		return 0;
	for (int i = 0; i < N; i++)
		count += g->weights[i] != 0;
	g->mask_count = count;
	if (!count)
		return derr_set(e, DERR_TRAIN_NOMASK,
				"the loss mask covers no token: no assistant tokens in this batch");
	TIMED(g, GPT_K_CROSSENTROPY,
	      k->crossentropy(a->losses, NULL, a->logits, g->targets, g->weights, 1, N, V, Vp, nth));
	for (int i = 0; i < N; i++)
		sum += (double)g->weights[i] * a->losses[i];
	g->loss = (float)(sum / (double)count);
	return 0;
}

void gpt_zero_grad(struct gpt *g)
{
	memset(g->grads, 0, sizeof(float) * g->num_params);
	if (g->dacts)
		memset(g->dacts, 0, sizeof(float) * g->num_acts);
}

void gpt_backward(struct gpt *g)
{
	const struct gptk_ops *k = g->ops;
	int B = g->B, T = g->T, C = g->cfg.channels, L = g->cfg.num_layers, NH = g->cfg.num_heads;
	int V = g->cfg.vocab_size, Vp = g->cfg.padded_vocab_size, N = B * T, nth = g->nth;
	size_t nc = (size_t)N * C;
	struct gpt_params *p = &g->p, *gr = &g->g;
	struct gpt_acts *a = &g->a, *da = &g->da;
	float *res_last = a->residual3 + (L - 1) * nc, *dres_last = da->residual3 + (L - 1) * nc;

	TIMED(g, GPT_K_CROSSENTROPY,
	      k->crossentropy(a->losses, da->logits, a->logits, g->targets, g->weights,
			      1.0f / (float)g->mask_count, N, V, Vp, nth));
	TIMED(g, GPT_K_MATMUL,
	      k->matmul_bwd(da->lnf, gr->wte, NULL, da->logits, a->lnf, p->wte, N, C, Vp, nth));
	TIMED(g, GPT_K_LAYERNORM,
	      k->layernorm_bwd(dres_last, gr->lnfw, gr->lnfb, da->lnf, res_last, p->lnfw, a->lnf_mean,
			       a->lnf_rstd, N, C, nth));
	for (int l = L - 1; l >= 0; l--) {
		const float *residual = l == 0 ? a->encoded : a->residual3 + (l - 1) * nc;
		float *dresidual = l == 0 ? da->encoded : da->residual3 + (l - 1) * nc;
		float *ln1 = a->ln1 + l * nc, *ln1m = a->ln1_mean + (size_t)l * N,
		      *ln1r = a->ln1_rstd + (size_t)l * N;
		float *qkv = a->qkv + l * nc * 3, *atty = a->atty + l * nc,
		      *lse = a->lse + (size_t)l * N * NH;
		float *res2 = a->residual2 + l * nc, *ln2 = a->ln2 + l * nc;
		float *ln2m = a->ln2_mean + (size_t)l * N, *ln2r = a->ln2_rstd + (size_t)l * N;
		float *fch = a->fch + l * nc * 4, *fchg = a->fch_gelu + l * nc * 4;
		float *dln1 = da->ln1 + l * nc, *dqkv = da->qkv + l * nc * 3, *datty = da->atty + l * nc;
		float *dres2 = da->residual2 + l * nc, *dln2 = da->ln2 + l * nc, *dfch = da->fch + l * nc * 4;
		float *dfchg = da->fch_gelu + l * nc * 4, *dres3 = da->residual3 + l * nc;

		/* residual3 = residual2 + fcproj: both get dres3 */
		TIMED(g, GPT_K_RESIDUAL, k->residual_fwd(dres2, dres2, dres3, (int)nc, nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_bwd(dfchg, gr->fcprojw + (size_t)l * C * 4 * C, gr->fcprojb + l * C, dres3,
				    fchg, p->fcprojw + (size_t)l * C * 4 * C, N, 4 * C, C, nth));
		TIMED(g, GPT_K_GELU, k->gelu_bwd(dfch, fch, dfchg, (int)nc * 4, nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_bwd(dln2, gr->fcw + (size_t)l * 4 * C * C, gr->fcb + l * 4 * C, dfch, ln2,
				    p->fcw + (size_t)l * 4 * C * C, N, C, 4 * C, nth));
		TIMED(g, GPT_K_LAYERNORM,
		      k->layernorm_bwd(dres2, gr->ln2w + l * C, gr->ln2b + l * C, dln2, res2, p->ln2w + l * C,
				       ln2m, ln2r, N, C, nth));
		/* residual2 = residual + attproj: both get dres2 */
		TIMED(g, GPT_K_RESIDUAL, k->residual_fwd(dresidual, dresidual, dres2, (int)nc, nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_bwd(datty, gr->attprojw + (size_t)l * C * C, gr->attprojb + l * C, dres2,
				    atty, p->attprojw + (size_t)l * C * C, N, C, C, nth));
		TIMED(g, GPT_K_ATTENTION, k->attention_bwd(dqkv, datty, qkv, atty, lse, B, T, C, NH, nth));
		TIMED(g, GPT_K_MATMUL,
		      k->matmul_bwd(dln1, gr->qkvw + (size_t)l * 3 * C * C, gr->qkvb + l * 3 * C, dqkv, ln1,
				    p->qkvw + (size_t)l * 3 * C * C, N, C, 3 * C, nth));
		TIMED(g, GPT_K_LAYERNORM,
		      k->layernorm_bwd(dresidual, gr->ln1w + l * C, gr->ln1b + l * C, dln1, residual,
				       p->ln1w + l * C, ln1m, ln1r, N, C, nth));
	}
	TIMED(g, GPT_K_ENCODER, k->encoder_bwd(gr->wte, gr->wpe, da->encoded, g->inputs, g->pos, N, C));
}

double gpt_grad_norm(const struct gpt *g)
{
	double s = 0;
	for (size_t i = 0; i < g->num_params; i++)
		s += (double)g->grads[i] * g->grads[i];
	return sqrt(s);
}

void gpt_update(struct gpt *g, const struct gpt_adamw *o)
{
	int64_t t0 = mono_ns();
	float b1c = 1.0f - powf(o->beta1, (float)o->t), b2c = 1.0f - powf(o->beta2, (float)o->t);
	size_t off = 0;
	if (!g->m) {
		g->m = xcalloc(g->num_params, sizeof(float));
		g->v = xcalloc(g->num_params, sizeof(float));
	}
	for (int i = 0; i < GPT_NUM_PARAM_TENSORS; i++) {
		float wd = param_decay[i] ? o->weight_decay : 0.0f;
		for (size_t j = off; j < off + g->param_sizes[i]; j++) {
			float gr = g->grads[j] * o->grad_scale;
			float m = o->beta1 * g->m[j] + (1.0f - o->beta1) * gr;
			float v = o->beta2 * g->v[j] + (1.0f - o->beta2) * gr * gr;
			g->m[j] = m;
			g->v[j] = v;
			g->params[j] -= o->lr * ((m / b1c) / (sqrtf(v / b2c) + o->eps) + wd * g->params[j]);
		}
		off += g->param_sizes[i];
	}
	g->kernel_ns[GPT_K_ADAMW] += mono_ns() - t0;
}

double gpt_flops_per_token(const struct gpt *g, int T)
{
	const struct gpt_config *c = &g->cfg;
	double matmul_params = (double)g->num_params - (double)c->max_seq_len * c->channels;
	return 6.0 * matmul_params + 6.0 * c->num_layers * c->channels * (double)T;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static const char ckpt_magic[8] = {'D', 'S', 'T', 'L', 'G', 'P', 'T', '\0'};
#define CKPT_VERSION 1u

struct ckpt_head {
	char magic[8];
	uint32_t version;
	uint32_t head_bytes;
	int32_t cfg[6]; /* maxT, V, Vp, L, NH, C */
	uint32_t state_len;
	uint32_t has_moments;
	uint64_t num_params;
};

static int write_all(int fd, const void *p, size_t n, uint64_t *h)
{
	const char *c = p;
	*h = hash64(p, n, *h);
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int gpt_save(const struct gpt *g, const char *path, const void *state, size_t state_len, struct derr *e)
{
	struct ckpt_head h = {.version = CKPT_VERSION, .head_bytes = sizeof(struct ckpt_head)};
	char tmp[4096];
	uint64_t sum = 0;
	int fd, bad;

	memcpy(h.magic, ckpt_magic, 8);
	h.cfg[0] = g->cfg.max_seq_len;
	h.cfg[1] = g->cfg.vocab_size;
	h.cfg[2] = g->cfg.padded_vocab_size;
	h.cfg[3] = g->cfg.num_layers;
	h.cfg[4] = g->cfg.num_heads;
	h.cfg[5] = g->cfg.channels;
	h.state_len = (uint32_t)state_len;
	h.has_moments = g->m != NULL;
	h.num_params = g->num_params;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return derr_set(e, DERR_INVALID, "checkpoint path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return derr_set(e, DERR_IO, "create %s: %s", tmp, strerror(errno));
	bad = write_all(fd, &h, sizeof(h), &sum) || (state_len && write_all(fd, state, state_len, &sum)) ||
	      write_all(fd, g->params, sizeof(float) * g->num_params, &sum);
	if (!bad && g->m)
		bad = write_all(fd, g->m, sizeof(float) * g->num_params, &sum) ||
		      write_all(fd, g->v, sizeof(float) * g->num_params, &sum);
	if (!bad) {
		uint64_t s2 = sum;
		bad = write_all(fd, &s2, sizeof(s2), &sum);
	}
	if (!bad)
		bad = fsync(fd) != 0;
	if (close(fd) != 0)
		bad = 1;
	if (bad) {
		int err = errno;
		unlink(tmp);
		return derr_set(e, err == ENOSPC ? DERR_FULL : DERR_IO, "write %s: %s", tmp, strerror(err));
	}
	if (rename(tmp, path) != 0) {
		int err = errno;
		unlink(tmp);
		return derr_set(e, DERR_IO, "rename %s: %s", path, strerror(err));
	}
	return 0;
}

static int read_exact(FILE *f, void *p, size_t n, uint64_t *h)
{
	if (fread(p, 1, n, f) != n)
		return -1;
	*h = hash64(p, n, *h);
	return 0;
}

int gpt_load(struct gpt *g, const char *path, void *state, size_t state_len, int nth, enum gptk_isa isa,
	     struct derr *e)
{
	struct ckpt_head h;
	struct gpt_config cfg;
	uint64_t sum = 0, want, stored;
	long long fsize, expect;
	FILE *f = fopen(path, "rb");
	int rc = 0;

	memset(g, 0, sizeof(*g));
	if (!f)
		return derr_set(e, DERR_IO, "open checkpoint %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (fsize = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
		rc = derr_set(e, DERR_IO, "read checkpoint %s: %s", path, strerror(errno));
		goto out;
	}
	if (read_exact(f, &h, sizeof(h), &sum) || memcmp(h.magic, ckpt_magic, 8) != 0) {
		rc = derr_set(e, DERR_TRAIN_CKPT, "%s is not a distill-train checkpoint (bad magic)", path);
		goto out;
	}
	if (h.version != CKPT_VERSION || h.head_bytes != sizeof(h)) {
		rc = derr_set(e, DERR_TRAIN_CKPT, "%s: checkpoint version %u, this program reads version %u",
			      path, h.version, CKPT_VERSION);
		goto out;
	}
	if (h.state_len != state_len) {
		rc = derr_set(e, DERR_TRAIN_CKPT, "%s: trainer state of %u bytes, expected %zu", path,
			      h.state_len, state_len);
		goto out;
	}
	cfg = (struct gpt_config){h.cfg[0], h.cfg[1], 0, h.cfg[3], h.cfg[4], h.cfg[5]};
	if ((rc = gpt_setup(g, &cfg, nth, isa, e)))
		goto out;
	if (g->cfg.padded_vocab_size != h.cfg[2] || g->num_params != h.num_params) {
		rc = derr_set(e, DERR_TRAIN_CKPT, "%s: parameter count does not match its model shape", path);
		goto out;
	}
	expect = (long long)sizeof(h) + (long long)state_len +
		 (long long)sizeof(float) * (long long)g->num_params * (h.has_moments ? 3 : 1) + 8;
	if (fsize != expect) {
		rc = derr_set(e, DERR_TRAIN_CKPT,
			      "%s: truncated or padded checkpoint (%lld bytes, expected %lld)", path, fsize,
			      expect);
		goto out;
	}
	if ((state_len && read_exact(f, state, state_len, &sum)) ||
	    read_exact(f, g->params, sizeof(float) * g->num_params, &sum)) {
		rc = derr_set(e, DERR_TRAIN_CKPT, "%s: short read", path);
		goto out;
	}
	if (h.has_moments) {
		g->m = xmalloc(sizeof(float) * g->num_params);
		g->v = xmalloc(sizeof(float) * g->num_params);
		if (read_exact(f, g->m, sizeof(float) * g->num_params, &sum) ||
		    read_exact(f, g->v, sizeof(float) * g->num_params, &sum)) {
			rc = derr_set(e, DERR_TRAIN_CKPT, "%s: short read", path);
			goto out;
		}
	}
	want = sum;
	if (fread(&stored, 1, 8, f) != 8 || stored != want)
		rc = derr_set(e, DERR_TRAIN_CKPT, "%s: checksum mismatch (corrupt checkpoint)", path);
out:
	fclose(f);
	if (rc && g->params)
		gpt_release(g);
	return rc;
}

/* ---- inference ------------------------------------------------------------------------------ */

struct gpt_kv {
	int nseq, maxT;
	float *k, *v; /* (L, nseq, maxT, C) */
	float *x, *ln, *mean, *rstd, *qkv, *atty, *tmp, *fch, *fchg, *att;
};

struct gpt_kv *gpt_kv_new(const struct gpt *g, int nseq)
{
	struct gpt_kv *kv = xcalloc(1, sizeof(*kv));
	size_t C = g->cfg.channels, L = g->cfg.num_layers, T = g->cfg.max_seq_len, n = nseq;
	kv->nseq = nseq;
	kv->maxT = (int)T;
	kv->k = xcalloc(L * n * T * C, sizeof(float));
	kv->v = xcalloc(L * n * T * C, sizeof(float));
	kv->x = xcalloc(n * C, sizeof(float));
	kv->ln = xcalloc(n * C, sizeof(float));
	kv->mean = xcalloc(n, sizeof(float));
	kv->rstd = xcalloc(n, sizeof(float));
	kv->qkv = xcalloc(n * 3 * C, sizeof(float));
	kv->atty = xcalloc(n * C, sizeof(float));
	kv->tmp = xcalloc(n * C, sizeof(float));
	kv->fch = xcalloc(n * 4 * C, sizeof(float));
	kv->fchg = xcalloc(n * 4 * C, sizeof(float));
	kv->att = xcalloc(T, sizeof(float));
	return kv;
}

void gpt_kv_free(struct gpt_kv *kv)
{
	if (!kv)
		return;
	free(kv->k);
	free(kv->v);
	free(kv->x);
	free(kv->ln);
	free(kv->mean);
	free(kv->rstd);
	free(kv->qkv);
	free(kv->atty);
	free(kv->tmp);
	free(kv->fch);
	free(kv->fchg);
	free(kv->att);
	free(kv);
}

/* One query per sequence against its cached keys 0..pos (inclusive). */
static void kv_attend(const struct gpt *g, struct gpt_kv *kv, int l, const int *pos)
{
	int C = g->cfg.channels, NH = g->cfg.num_heads, hs = C / NH, T = kv->maxT;
	float scale = 1.0f / sqrtf((float)hs);
	for (int i = 0; i < kv->nseq; i++) {
		size_t base = (((size_t)l * kv->nseq + i) * T) * C;
		float *kc = kv->k + base, *vc = kv->v + base, *q = kv->qkv + (size_t)i * 3 * C;
		memcpy(kc + (size_t)pos[i] * C, q + C, sizeof(float) * C);
		memcpy(vc + (size_t)pos[i] * C, q + 2 * C, sizeof(float) * C);
		for (int h = 0; h < NH; h++) {
			float mx = -INFINITY, sum = 0, *o = kv->atty + (size_t)i * C + h * hs;
			for (int t = 0; t <= pos[i]; t++) {
				const float *kt = kc + (size_t)t * C + h * hs;
				float s = 0;
				for (int d = 0; d < hs; d++)
					s += q[h * hs + d] * kt[d];
				kv->att[t] = s * scale;
				mx = kv->att[t] > mx ? kv->att[t] : mx;
			}
			for (int t = 0; t <= pos[i]; t++) {
				kv->att[t] = expf(kv->att[t] - mx);
				sum += kv->att[t];
			}
			memset(o, 0, sizeof(float) * hs);
			for (int t = 0; t <= pos[i]; t++) {
				const float *vt = vc + (size_t)t * C + h * hs;
				float w = kv->att[t] / sum;
				for (int d = 0; d < hs; d++)
					o[d] += w * vt[d];
			}
		}
	}
}

void gpt_kv_step(struct gpt *g, struct gpt_kv *kv, const int *tokens, const int *pos, float *logits)
{
	const struct gptk_ops *k = g->ops;
	struct gpt_params *p = &g->p;
	int C = g->cfg.channels, L = g->cfg.num_layers, n = kv->nseq, nth = g->nth;

	k->encoder_fwd(kv->x, tokens, pos, p->wte, p->wpe, n, C);
	for (int l = 0; l < L; l++) {
		k->layernorm_fwd(kv->ln, kv->mean, kv->rstd, kv->x, p->ln1w + l * C, p->ln1b + l * C, n, C,
				 nth);
		k->matmul_fwd(kv->qkv, kv->ln, p->qkvw + (size_t)l * 3 * C * C, p->qkvb + l * 3 * C, n, C,
			      3 * C, nth);
		kv_attend(g, kv, l, pos);
		k->matmul_fwd(kv->tmp, kv->atty, p->attprojw + (size_t)l * C * C, p->attprojb + l * C, n, C,
			      C, nth);
		k->residual_fwd(kv->x, kv->x, kv->tmp, n * C, 1);
		k->layernorm_fwd(kv->ln, kv->mean, kv->rstd, kv->x, p->ln2w + l * C, p->ln2b + l * C, n, C,
				 nth);
		k->matmul_fwd(kv->fch, kv->ln, p->fcw + (size_t)l * 4 * C * C, p->fcb + l * 4 * C, n, C,
			      4 * C, nth);
		k->gelu_fwd(kv->fchg, kv->fch, n * 4 * C, 1);
		k->matmul_fwd(kv->tmp, kv->fchg, p->fcprojw + (size_t)l * C * 4 * C, p->fcprojb + l * C, n,
			      4 * C, C, nth);
		k->residual_fwd(kv->x, kv->x, kv->tmp, n * C, 1);
	}
	k->layernorm_fwd(kv->ln, kv->mean, kv->rstd, kv->x, p->lnfw, p->lnfb, n, C, nth);
	k->matmul_fwd(logits, kv->ln, p->wte, NULL, n, C, g->cfg.padded_vocab_size, nth);
}

struct prob_idx {
	float p;
	int i;
};

static int prob_desc(const void *a, const void *b)
{
	const struct prob_idx *x = a, *y = b;
	if (x->p != y->p)
		return x->p < y->p ? 1 : -1;
	return x->i - y->i;
}

int gpt_sample(const float *logits, int V, float temperature, float top_p, uint64_t *rng)
{
	struct prob_idx *pi;
	float mx = logits[0], sum = 0, r, acc = 0;
	int best = 0, n = V, out;

	for (int v = 1; v < V; v++)
		if (logits[v] > mx) {
			mx = logits[v];
			best = v;
		}
	if (temperature <= 0)
		return best;
	pi = xmalloc(sizeof(*pi) * (size_t)V);
	for (int v = 0; v < V; v++) {
		pi[v].p = expf((logits[v] - mx) / temperature);
		pi[v].i = v;
		sum += pi[v].p;
	}
	qsort(pi, (size_t)V, sizeof(*pi), prob_desc);
	if (top_p > 0 && top_p < 1) {
		float cut = top_p * sum, c = 0;
		for (n = 0; n < V; n++) {
			c += pi[n].p;
			if (c >= cut) {
				n++;
				break;
			}
		}
		if (n > V)
			n = V;
		sum = c;
	}
	r = gpt_rng_uniform(rng) * sum;
	out = pi[n - 1].i;
	for (int j = 0; j < n; j++) {
		acc += pi[j].p;
		if (r < acc) {
			out = pi[j].i;
			break;
		}
	}
	free(pi);
	return out;
}
