/*
 * trainer.h - the bundled trainer's loop: reads an export directory
 * (shardread.h), tokenizes (tok.h), packs samples into rows of T tokens,
 * masks the loss to assistant tokens, trains the GPT of gpt.h with AdamW,
 * warmup + cosine decay and global-norm clipping, evaluates on the val
 * split, and checkpoints for bit-exact resume.  Also batched generation for
 * `sample` and `eval`.  Reports through a per-step callback; never prints.
 */
#ifndef DISTILL_TRAINER_H
#define DISTILL_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gpt.h"

struct trainer_opts {
	const char *data_dir; /* export directory (manifest.json + shards) */
	const char *out_dir;  /* checkpoints go here (created); NULL: none */
	const char *resume;   /* checkpoint to resume from, or NULL */
	struct gpt_config model;
	int batch;	       /* B rows per step */
	long steps;	       /* total steps; 0: from epochs */
	double epochs;	       /* used when steps is 0 */
	float lr, min_lr_frac; /* peak learning rate; cosine floor as a fraction of it */
	long warmup;	       /* linear warmup steps */
	float weight_decay, grad_clip, beta1, beta2, eps;
	uint64_t seed;
	float w_reasoning, w_answer; /* loss weights of thinking and answer tokens */
	long val_every;		     /* validation every K steps (0: only at the end) */
	int val_batches;	     /* batches of the val split per validation */
	long ckpt_every;	     /* checkpoint every K steps (0: only at the end) */
	long stop_at;		     /* stop (and checkpoint) after this step; 0: run to the end */
	int threads;
	enum gptk_isa isa;
	double peak_flops; /* MFU denominator; 0: measure */
	size_t max_tokens; /* cap on training tokens held in memory */
	long max_samples;  /* use at most this many training samples (0: all) */
};

/* Defaults: 4 layers, 4 heads, width 128, context 256, B 8, lr 1e-3,
 * 1 epoch, warmup 50, weight decay 0.1, clip 1.0, betas 0.9/0.95, seed 1,
 * weights 1/1. */
void trainer_opts_default(struct trainer_opts *o);

/* What the callback sees after each step (and each validation). */
struct trainer_report {
	long step, steps; /* 1-based step just done, of steps */
	int is_val;	  /* 1: a validation report (val_loss set) */
	float loss, val_loss;
	double grad_norm, lr, ms, tok_per_s, mfu;
	double cpu_ms; /* process CPU time of the step (all threads) */
	long epoch;
	const int64_t *kernel_ns; /* cumulative per-kernel time, GPT_K_COUNT entries */
};

typedef void trainer_log_fn(void *ctx, const struct trainer_report *r);

struct trainer_result {
	long steps_done;
	float last_loss, val_loss; /* val_loss < 0 when there is no val split */
	uint64_t param_hash;	   /* hash of the final parameters */
	long train_samples, train_tokens, truncated, rows_per_epoch;
	double peak_flops;
};

/* Train.  Verifies the shards first (DERR_TRAIN_CHECKSUM on a mismatch),
 * refuses a mask that covers no token (DERR_TRAIN_NOMASK), a non-finite loss
 * ends the run (DERR_TRAIN_DIVERGED).  Writes OUT/ckpt.bin (atomically) at
 * checkpoints and at the end.  log may be NULL. */
int trainer_run(const struct trainer_opts *o, trainer_log_fn *log, void *ctx, struct trainer_result *res,
		struct derr *e);

/* Load the model of a training checkpoint (OUT/ckpt.bin) for inference. */
int trainer_load_model(struct gpt *g, const char *path, int nth, enum gptk_isa isa, struct derr *e);

struct trainer_gen_opts {
	int max_new;	   /* tokens generated at most per prompt */
	float temperature; /* 0: greedy */
	float top_p;
	uint64_t seed;
	int batch; /* sequences decoded together */
};

/* Generate a completion for each of n user prompts (system may be NULL):
 * outs[i] gets a malloc'd string (the assistant text, without the closing
 * END).  Deterministic in seed, independent of batch. */
int trainer_generate(struct gpt *g, const char *system, const char *const *users, int n,
		     const struct trainer_gen_opts *o, char **outs, struct derr *e);

#endif
