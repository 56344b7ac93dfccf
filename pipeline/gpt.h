/*
 * gpt.h - the bundled trainer's student model: a GPT-2 style decoder
 * (learned positions, pre-LayerNorm, GELU MLP, tied embeddings) in float,
 * after llm.c's train_gpt2.c: one allocation for all parameters, one for
 * all activations, layer forward/backward pairs from gptk.h.  Also AdamW,
 * checkpoints (magic, version, hyperparameters; atomic write) and KV-cached
 * inference with temperature / top-p sampling.  No I/O besides checkpoint
 * files; errors as DERR_* with a message.
 */
#ifndef DISTILL_GPT_H
#define DISTILL_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gptk.h"

struct gpt_config {
	int max_seq_len;       /* maxT: learned positions */
	int vocab_size;	       /* V */
	int padded_vocab_size; /* Vp: V rounded up to 64 (aligned GEMMs) */
	int num_layers;	       /* L */
	int num_heads;	       /* NH */
	int channels;	       /* C, a multiple of NH */
};

#define GPT_NUM_PARAM_TENSORS 16
#define GPT_NUM_ACT_TENSORS 21

struct gpt_params {
	float *wte;	 /* (Vp, C) token embeddings, also the output head */
	float *wpe;	 /* (maxT, C) */
	float *ln1w;	 /* (L, C) */
	float *ln1b;	 /* (L, C) */
	float *qkvw;	 /* (L, 3C, C) */
	float *qkvb;	 /* (L, 3C) */
	float *attprojw; /* (L, C, C) */
	float *attprojb; /* (L, C) */
	float *ln2w;	 /* (L, C) */
	float *ln2b;	 /* (L, C) */
	float *fcw;	 /* (L, 4C, C) */
	float *fcb;	 /* (L, 4C) */
	float *fcprojw;	 /* (L, C, 4C) */
	float *fcprojb;	 /* (L, C) */
	float *lnfw;	 /* (C) */
	float *lnfb;	 /* (C) */
};

struct gpt_acts {
	float *encoded;	  /* (B, T, C) */
	float *ln1;	  /* (L, B, T, C) */
	float *ln1_mean;  /* (L, B, T) */
	float *ln1_rstd;  /* (L, B, T) */
	float *qkv;	  /* (L, B, T, 3C) */
	float *atty;	  /* (L, B, T, C) */
	float *lse;	  /* (L, B, NH, T) softmax log-sum-exp */
	float *attproj;	  /* (L, B, T, C) */
	float *residual2; /* (L, B, T, C) */
	float *ln2;	  /* (L, B, T, C) */
	float *ln2_mean;  /* (L, B, T) */
	float *ln2_rstd;  /* (L, B, T) */
	float *fch;	  /* (L, B, T, 4C) */
	float *fch_gelu;  /* (L, B, T, 4C) */
	float *fcproj;	  /* (L, B, T, C) */
	float *residual3; /* (L, B, T, C) */
	float *lnf;	  /* (B, T, C) */
	float *lnf_mean;  /* (B, T) */
	float *lnf_rstd;  /* (B, T) */
	float *logits;	  /* (B, T, Vp) */
	float *losses;	  /* (B, T) */
};

/* Kernel timers (per-kernel breakdown for the log and the benchmark). */
enum gpt_kernel {
	GPT_K_ENCODER,
	GPT_K_LAYERNORM,
	GPT_K_MATMUL,
	GPT_K_ATTENTION,
	GPT_K_GELU,
	GPT_K_RESIDUAL,
	GPT_K_CROSSENTROPY,
	GPT_K_ADAMW,
	GPT_K_COUNT
};
extern const char *const gpt_kernel_names[GPT_K_COUNT];

struct gpt {
	struct gpt_config cfg;
	const struct gptk_ops *ops;
	int nth; /* worker threads */

	size_t param_sizes[GPT_NUM_PARAM_TENSORS];
	size_t num_params;
	struct gpt_params p, g; /* parameters and their gradients */
	float *params, *grads;	/* the two single allocations */
	float *m, *v;		/* AdamW moments (NULL until the first update) */

	int B, T; /* activation shape allocated */
	struct gpt_acts a, da;
	float *acts, *dacts;
	size_t num_acts;
	int *inputs, *targets, *pos; /* (B, T) */
	float *weights;		     /* (B, T) loss weight per target */

	float loss;	 /* weighted mean over the positions of nonzero weight */
	long mask_count; /* positions of nonzero weight in the last forward */
	int64_t kernel_ns[GPT_K_COUNT];
};

/* Fill in padded_vocab_size and check the shape: 0 or DERR_INVALID. */
int gpt_config_check(struct gpt_config *c, struct derr *e);

/* A model with fresh weights: N(0, 0.02), residual projections scaled by
 * 1/sqrt(2L), LayerNorm weights 1, biases 0; deterministic in seed.
 * nth worker threads; isa picks the kernels. */
int gpt_init(struct gpt *g, const struct gpt_config *cfg, uint64_t seed, int nth, enum gptk_isa isa,
	     struct derr *e);
void gpt_release(struct gpt *g);

/* Forward pass over inputs (B,T) at positions pos (B,T).  With targets
 * and weights (B,T) also the loss: sum(w * CE) / count(w != 0); when the
 * weights are all zero the loss is not computed and DERR_TRAIN_NOMASK is
 * returned.  Reallocates activations when (B,T) grows.  Inputs are copied. */
int gpt_forward(struct gpt *g, const int *inputs, const int *pos, const int *targets, const float *weights,
		int B, int T, struct derr *e);

/* Zero the gradients, then backward from the last forward's loss. */
void gpt_zero_grad(struct gpt *g);
void gpt_backward(struct gpt *g);

/* Global L2 norm of the gradients (accumulated in double). */
double gpt_grad_norm(const struct gpt *g);

struct gpt_adamw {
	float lr, beta1, beta2, eps, weight_decay;
	float grad_scale; /* multiplies every gradient first (clipping) */
	long t;		  /* 1-based step count for bias correction */
};

/* One AdamW step; weight decay applies to matrices and embeddings, not to
 * biases or LayerNorm parameters. */
void gpt_update(struct gpt *g, const struct gpt_adamw *o);

/* Model FLOPs per token of one training step (forward + backward):
 * 6 * (parameters in matrix products) + 6 * L * C * T for attention. */
double gpt_flops_per_token(const struct gpt *g, int T);

/* ---- checkpoints -------------------------------------------------------------
 * File: 8-byte magic "DSTLGPT\0", u32 version, u32 header bytes, the config,
 * the caller's state bytes, the parameters, then (if present) the AdamW
 * moments, and an XXH3 of everything before it.  Written to PATH.tmp,
 * fsynced, renamed over PATH. */
int gpt_save(const struct gpt *g, const char *path, const void *state, size_t state_len, struct derr *e);

/* Load a checkpoint into a fresh *g (released first by the caller).  The
 * state bytes are copied into state (state_len must match the file's, else
 * DERR_TRAIN_CKPT).  A bad magic, version, size or checksum: DERR_TRAIN_CKPT
 * with a message that says which. */
int gpt_load(struct gpt *g, const char *path, void *state, size_t state_len, int nth, enum gptk_isa isa,
	     struct derr *e);

/* ---- inference with a KV cache ----------------------------------------------- */

struct gpt_kv;

/* A cache for nseq sequences of up to maxT tokens each. */
struct gpt_kv *gpt_kv_new(const struct gpt *g, int nseq);
void gpt_kv_free(struct gpt_kv *kv);

/* Feed one token per sequence (tokens[i] at position pos[i] of sequence i;
 * earlier positions must have been fed) and get logits (nseq, Vp). */
void gpt_kv_step(struct gpt *g, struct gpt_kv *kv, const int *tokens, const int *pos, float *logits);

/* Sample from logits[0..V): temperature 0 is greedy; else softmax at that
 * temperature, restricted to the smallest set of mass >= top_p.  *rng is a
 * splitmix64 state. */
int gpt_sample(const float *logits, int V, float temperature, float top_p, uint64_t *rng);

/* splitmix64 and a uniform float in [0,1). */
uint64_t gpt_rng_next(uint64_t *s);
float gpt_rng_uniform(uint64_t *s);

#endif
