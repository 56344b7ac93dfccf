/*
 * trainer.c - data loading and packing, the training loop, validation,
 * checkpoint state and generation (see trainer.h).
 */
#include "trainer.h"
#include "hash.h"
#include "log.h"
#include "shardread.h"
#include "tok.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void trainer_opts_default(struct trainer_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->model = (struct gpt_config){.max_seq_len = 256,
				       .vocab_size = TOK_VOCAB,
				       .num_layers = 4,
				       .num_heads = 4,
				       .channels = 128};
	o->batch = 8;
	o->epochs = 1;
	o->lr = 1e-3f;
	o->min_lr_frac = 0.1f;
	o->warmup = 50;
	o->weight_decay = 0.1f;
	o->grad_clip = 1.0f;
	o->beta1 = 0.9f;
	o->beta2 = 0.95f;
	o->eps = 1e-8f;
	o->seed = 1;
	o->w_reasoning = 1;
	o->w_answer = 1;
	o->val_batches = 8;
	o->threads = 1;
	o->max_tokens = (size_t)256 << 20;
}

/* ---- the tokenized split in memory -------------------------------------------------
 * Tokens as uint16 and a segment class per token (0: no loss, 1: reasoning,
 * 2: answer), so the weights can be applied when rows are packed. */

enum { SEG_NONE = 0, SEG_REASONING = 1, SEG_ANSWER = 2 };

struct tdata {
	uint16_t *tok;
	uint8_t *seg;
	size_t ntok, cap;
	size_t *off; /* sample i is [off[i], off[i+1]) */
	long n, offcap;
	long truncated; /* samples longer than a row */
};

static void tdata_release(struct tdata *d)
{
	free(d->tok);
	free(d->seg);
	free(d->off);
	memset(d, 0, sizeof(*d));
}

static int tdata_load(struct tdata *d, const struct shardread_manifest *m, const char *dir, const char *split,
		      int row_len, size_t max_tokens, long max_samples, struct derr *e)
{
	struct shardread *r = NULL;
	struct tok_seq s;
	cJSON *rec;
	int rc;

	memset(d, 0, sizeof(*d));
	tok_seq_init(&s);
	d->offcap = 1024;
	d->off = xmalloc(sizeof(size_t) * (size_t)d->offcap);
	d->cap = 4096;
	d->tok = xmalloc(sizeof(uint16_t) * d->cap);
	d->seg = xmalloc(d->cap);
	d->off[0] = 0;
	if ((rc = shardread_open(&r, m, dir, split, e)))
		goto out;
	while ((rc = shardread_next(r, &rec, e)) == 1) {
		const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(rec, "messages");
		tok_seq_reset(&s);
		/* weights 1 and 2 mark the two assistant segments */
		rc = tok_chat(&s, msgs, (float)SEG_REASONING, (float)SEG_ANSWER, e);
		cJSON_Delete(rec);
		if (rc) {
			derr_wrap(e, "%s sample %ld", split, d->n + 1);
			goto out;
		}
		if (s.n > row_len)
			d->truncated++;
		if (d->ntok + (size_t)s.n > max_tokens) {
			rc = derr_set(e, DERR_LIMIT,
				      "the %s split has more than %zu tokens; use fewer samples", split,
				      max_tokens);
			goto out;
		}
		if (d->ntok + (size_t)s.n > d->cap) {
			d->cap = (d->cap + (size_t)s.n) * 2;
			d->tok = xrealloc(d->tok, sizeof(uint16_t) * d->cap);
			d->seg = xrealloc(d->seg, d->cap);
		}
		for (int i = 0; i < s.n; i++) {
			d->tok[d->ntok + (size_t)i] = (uint16_t)s.ids[i];
			d->seg[d->ntok + (size_t)i] = (uint8_t)s.w[i];
		}
		d->ntok += (size_t)s.n;
		if (d->n + 2 > d->offcap) {
			d->offcap *= 2;
			d->off = xrealloc(d->off, sizeof(size_t) * (size_t)d->offcap);
		}
		d->off[++d->n] = d->ntok;
		if (max_samples > 0 && d->n >= max_samples) {
			rc = 0;
			break;
		}
	}
out:
	shardread_close(r);
	tok_seq_release(&s);
	if (rc < 0)
		tdata_release(d);
	return rc < 0 ? rc : 0;
}

/* ---- packing ----------------------------------------------------------------------------
 * Whole samples, in a given order, are packed greedily into rows of T+1
 * tokens; a sample that does not fit the rest of a row starts the next one
 * (the rest is padding of weight 0); a sample longer than a row is cut.
 * Positions restart at 0 for every sample, so a prompt at generation time
 * looks exactly like one in training. */

struct rows {
	long *first; /* index into order of the row's first sample */
	int *count;
	long n;
};

static void rows_release(struct rows *r)
{
	free(r->first);
	free(r->count);
	memset(r, 0, sizeof(*r));
}

static void pack(struct rows *r, const struct tdata *d, const long *order, int row_len)
{
	long cap = d->n + 1, used = 0;
	memset(r, 0, sizeof(*r));
	r->first = xmalloc(sizeof(long) * (size_t)cap);
	r->count = xmalloc(sizeof(int) * (size_t)cap);
	for (long i = 0; i < d->n; i++) {
		long len = (long)(d->off[order[i] + 1] - d->off[order[i]]);
		if (r->n == 0 || used + len > row_len) {
			r->first[r->n] = i;
			r->count[r->n] = 0;
			r->n++;
			used = 0;
		}
		r->count[r->n - 1]++;
		used += len;
	}
}

static void shuffle_order(long *order, long n, uint64_t seed, long epoch)
{
	uint64_t s = hash_mix64(seed, (uint64_t)epoch + 0x9E37ULL);
	for (long i = 0; i < n; i++)
		order[i] = i;
	for (long i = n - 1; i > 0; i--) {
		long j = (long)(gpt_rng_next(&s) % (uint64_t)(i + 1));
		long t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
}

/* Fill one row of the batch (inputs, targets, weights, pos: T entries each). */
static void fill_row(const struct tdata *d, const long *order, long first, int count, int T, float w_r,
		     float w_a, int *inp, int *tgt, float *w, int *pos)
{
	int row_len = T + 1, k = 0;
	int *tok = xmalloc(sizeof(int) * (size_t)row_len), *p = xmalloc(sizeof(int) * (size_t)row_len);
	float *wt = xmalloc(sizeof(float) * (size_t)row_len);
	const float seg_w[3] = {0, w_r, w_a};

	for (int c = 0; c < count && k < row_len; c++) {
		long s = order[first + c];
		for (size_t i = d->off[s], j = 0; i < d->off[s + 1] && k < row_len; i++, j++, k++) {
			tok[k] = d->tok[i];
			wt[k] = seg_w[d->seg[i]];
			p[k] = (int)j;
		}
	}
	for (; k < row_len; k++) {
		tok[k] = TOK_END;
		wt[k] = 0;
		p[k] = 0;
	}
	for (int t = 0; t < T; t++) {
		inp[t] = tok[t];
		pos[t] = p[t];
		tgt[t] = tok[t + 1];
		/* a target that starts a new sample is never a loss position */
		w[t] = p[t + 1] == 0 ? 0 : wt[t + 1];
	}
	free(tok);
	free(p);
	free(wt);
}

static void fill_pad_row(int T, int *inp, int *tgt, float *w, int *pos)
{
	for (int t = 0; t < T; t++) {
		inp[t] = tgt[t] = TOK_END;
		w[t] = 0;
		pos[t] = 0;
	}
}

/* ---- checkpoint state ----------------------------------------------------------------- */

struct tstate {
	int64_t step, total_steps, epoch, row, warmup;
	uint64_t seed;
	int32_t batch, ctx;
	float lr, min_lr_frac, weight_decay, grad_clip, beta1, beta2, eps, w_reasoning, w_answer;
	int32_t reserved;
};

static float lr_at(const struct tstate *s, long step)
{
	double lr = s->lr, lo = s->lr * s->min_lr_frac, prog;
	if (step < s->warmup)
		return (float)(lr * (double)(step + 1) / (double)s->warmup);
	prog = (double)(step - s->warmup) /
	       (double)(s->total_steps - s->warmup > 1 ? s->total_steps - s->warmup : 1);
	if (prog > 1)
		prog = 1;
	return (float)(lo + 0.5 * (lr - lo) * (1.0 + cos(M_PI * prog)));
}

/* ---- validation ----------------------------------------------------------------------- */

static int validate(struct gpt *g, const struct tdata *vd, const long *vorder, const struct rows *vr,
		    const struct tstate *s, int nbatches, int *inp, int *tgt, float *w, int *pos, float *out,
		    struct derr *e)
{
	int B = s->batch, T = s->ctx;
	double sum = 0;
	long count = 0, row = 0;
	for (int b = 0; b < nbatches && row < vr->n; b++) {
		for (int i = 0; i < B; i++, row++) {
			size_t o = (size_t)i * T;
			if (row < vr->n)
				fill_row(vd, vorder, vr->first[row], vr->count[row], T, s->w_reasoning,
					 s->w_answer, inp + o, tgt + o, w + o, pos + o);
			else
				fill_pad_row(T, inp + o, tgt + o, w + o, pos + o);
		}
		int rc = gpt_forward(g, inp, pos, tgt, w, B, T, e);
		if (rc == DERR_TRAIN_NOMASK)
			continue;
		if (rc)
			return rc;
		sum += (double)g->loss * g->mask_count;
		count += g->mask_count;
	}
	*out = count ? (float)(sum / count) : -1.0f;
	return 0;
}

/* CPU time of the process, all threads (ns). */
static int64_t cpu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the loop --------------------------------------------------------------------------- */

static int mkdir_p(const char *dir, struct derr *e)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return derr_set(e, DERR_IO, "create %s: %s", dir, strerror(errno));
	return 0;
}

static int save(const struct gpt *g, const char *out_dir, const struct tstate *s, struct derr *e)
{
	char path[4096];
	if (!out_dir)
		return 0;
	snprintf(path, sizeof(path), "%s/ckpt.bin", out_dir);
	return gpt_save(g, path, s, sizeof(*s), e);
}

int trainer_run(const struct trainer_opts *o, trainer_log_fn *log, void *ctx, struct trainer_result *res,
		struct derr *e)
{
	struct shardread_manifest m;
	struct tdata td = {0}, vd = {0};
	struct rows rows = {0}, vrows = {0};
	struct gpt g = {0};
	struct tstate s;
	long *order = NULL, *vorder = NULL, mask_total = 0;
	int *inp = NULL, *tgt = NULL, *pos = NULL, B, T, rc, have_val = 0;
	float *w = NULL;
	double flops_tok;
	struct trainer_result r = {0};

	memset(&s, 0, sizeof(s));
	r.val_loss = -1;
	if ((rc = shardread_manifest_load(&m, o->data_dir, e)))
		return rc;
	if ((rc = shardread_verify(&m, o->data_dir, NULL, NULL, e)))
		goto out;
	if (o->out_dir && (rc = mkdir_p(o->out_dir, e)))
		goto out;

	if (o->resume) {
		if ((rc = gpt_load(&g, o->resume, &s, sizeof(s), o->threads, o->isa, e)))
			goto out;
		if (o->steps > 0)
			s.total_steps = o->steps;
	} else {
		struct gpt_config cfg = o->model;
		if (!cfg.vocab_size)
			cfg.vocab_size = TOK_VOCAB;
		if (cfg.vocab_size < TOK_VOCAB) {
			rc = derr_set(e, DERR_INVALID, "vocabulary %d is smaller than the tokenizer's %d",
				      cfg.vocab_size, TOK_VOCAB);
			goto out;
		}
		if ((rc = gpt_init(&g, &cfg, o->seed, o->threads, o->isa, e)))
			goto out;
		s.seed = o->seed;
		s.batch = o->batch;
		s.ctx = cfg.max_seq_len;
		s.lr = o->lr;
		s.min_lr_frac = o->min_lr_frac;
		s.warmup = o->warmup;
		s.weight_decay = o->weight_decay;
		s.grad_clip = o->grad_clip;
		s.beta1 = o->beta1;
		s.beta2 = o->beta2;
		s.eps = o->eps;
		s.w_reasoning = o->w_reasoning;
		s.w_answer = o->w_answer;
	}
	B = s.batch;
	T = s.ctx;
	if (B < 1 || T < 2 || T > g.cfg.max_seq_len) {
		rc = derr_set(e, DERR_INVALID, "bad batch %d or context %d", B, T);
		goto out;
	}

	if ((rc = tdata_load(&td, &m, o->data_dir, "train", T + 1, o->max_tokens, o->max_samples, e)))
		goto out;
	if (td.n == 0) {
		rc = derr_set(e, DERR_TRAIN_NOMASK, "the export has no training samples");
		goto out;
	}
	/* The mask, as the rows will see it: assistant tokens within the first
	 * T+1 tokens of each sample, with nonzero weight. */
	for (long i = 0; i < td.n; i++)
		for (size_t k = td.off[i] + 1; k < td.off[i + 1] && k < td.off[i] + (size_t)T + 1; k++) {
			uint8_t sg = td.seg[k];
			mask_total += (sg == SEG_REASONING && s.w_reasoning != 0) ||
				      (sg == SEG_ANSWER && s.w_answer != 0);
		}
	if (mask_total == 0) {
		rc = derr_set(e, DERR_TRAIN_NOMASK,
			      "refusing to start: the loss mask covers no token (%ld samples; no assistant "
			      "token with "
			      "nonzero weight within the first %d tokens of any sample)",
			      td.n, T + 1);
		goto out;
	}
	order = xmalloc(sizeof(long) * (size_t)td.n);
	shuffle_order(order, td.n, s.seed, 0);
	pack(&rows, &td, order, T + 1);
	if (!o->resume) {
		s.total_steps = o->steps > 0 ? o->steps : (int64_t)ceil(o->epochs * (double)rows.n / B);
		if (s.total_steps < 1)
			s.total_steps = 1;
	}
	if (s.epoch != 0) {
		rows_release(&rows);
		shuffle_order(order, td.n, s.seed, (long)s.epoch);
		pack(&rows, &td, order, T + 1);
	}
	r.train_samples = td.n;
	r.train_tokens = (long)td.ntok;
	r.truncated = td.truncated;
	r.rows_per_epoch = rows.n;

	for (int i = 0; i < m.nshards; i++)
		have_val |= !strcmp(m.shards[i].split, "val");
	if (have_val) {
		if ((rc = tdata_load(&vd, &m, o->data_dir, "val", T + 1, o->max_tokens, 0, e)))
			goto out;
		vorder = xmalloc(sizeof(long) * (size_t)(vd.n + 1));
		for (long i = 0; i < vd.n; i++)
			vorder[i] = i;
		pack(&vrows, &vd, vorder, T + 1);
		have_val = vd.n > 0;
	}

	inp = xmalloc(sizeof(int) * (size_t)B * T);
	tgt = xmalloc(sizeof(int) * (size_t)B * T);
	pos = xmalloc(sizeof(int) * (size_t)B * T);
	w = xmalloc(sizeof(float) * (size_t)B * T);
	r.peak_flops = o->peak_flops > 0 ? o->peak_flops : gptk_peak_flops(g.nth, 100);
	flops_tok = gpt_flops_per_token(&g, T);

	while (s.step < s.total_steps) {
		struct gpt_adamw ad;
		struct trainer_report rep = {0};
		int64_t t0 = mono_ns(), c0 = cpu_now_ns();
		double gnorm;

		for (int b = 0; b < B; b++) {
			size_t off = (size_t)b * T;
			if (s.row >= rows.n) { /* next epoch: a new order */
				s.epoch++;
				s.row = 0;
				rows_release(&rows);
				shuffle_order(order, td.n, s.seed, (long)s.epoch);
				pack(&rows, &td, order, T + 1);
			}
			fill_row(&td, order, rows.first[s.row], rows.count[s.row], T, s.w_reasoning,
				 s.w_answer, inp + off, tgt + off, w + off, pos + off);
			s.row++;
		}
		rc = gpt_forward(&g, inp, pos, tgt, w, B, T, e);
		s.step++;
		if (rc == DERR_TRAIN_NOMASK) { /* nothing to learn in this batch */
			log_warn("step %ld: no assistant token in the batch, skipped", (long)s.step);
			continue;
		}
		if (rc)
			goto out;
		if (!isfinite(g.loss)) {
			rc = derr_set(e, DERR_TRAIN_DIVERGED, "step %ld: loss is %f; lower --lr",
				      (long)s.step, (double)g.loss);
			goto out;
		}
		gpt_zero_grad(&g);
		gpt_backward(&g);
		gnorm = gpt_grad_norm(&g);
		ad = (struct gpt_adamw){.lr = lr_at(&s, (long)s.step - 1),
					.beta1 = s.beta1,
					.beta2 = s.beta2,
					.eps = s.eps,
					.weight_decay = s.weight_decay,
					.grad_scale = s.grad_clip > 0 && gnorm > s.grad_clip
							      ? (float)(s.grad_clip / gnorm)
							      : 1.0f,
					.t = (long)s.step};
		gpt_update(&g, &ad);

		rep.step = (long)s.step;
		rep.steps = (long)s.total_steps;
		rep.loss = g.loss;
		rep.grad_norm = gnorm;
		rep.lr = ad.lr;
		rep.ms = (double)(mono_ns() - t0) / 1e6;
		rep.cpu_ms = (double)(cpu_now_ns() - c0) / 1e6;
		rep.tok_per_s = (double)B * T / (rep.ms / 1e3);
		rep.mfu = flops_tok * rep.tok_per_s / r.peak_flops;
		rep.epoch = (long)s.epoch;
		rep.kernel_ns = g.kernel_ns;
		r.last_loss = g.loss;
		if (log)
			log(ctx, &rep);

		if (have_val &&
		    (s.step == s.total_steps || (o->val_every > 0 && s.step % o->val_every == 0) ||
		     (o->stop_at > 0 && s.step == o->stop_at))) {
			if ((rc = validate(&g, &vd, vorder, &vrows, &s, o->val_batches, inp, tgt, w, pos,
					   &rep.val_loss, e)))
				goto out;
			rep.is_val = 1;
			r.val_loss = rep.val_loss;
			if (log)
				log(ctx, &rep);
		}
		if (o->ckpt_every > 0 && s.step % o->ckpt_every == 0 && s.step < s.total_steps &&
		    (rc = save(&g, o->out_dir, &s, e)))
			goto out;
		if (o->stop_at > 0 && s.step >= o->stop_at)
			break;
	}
	if ((rc = save(&g, o->out_dir, &s, e)))
		goto out;
	r.steps_done = (long)s.step;
	r.param_hash = hash64(g.params, sizeof(float) * g.num_params, 0);
out:
	if (res)
		*res = r;
	free(inp);
	free(tgt);
	free(pos);
	free(w);
	free(order);
	free(vorder);
	rows_release(&rows);
	rows_release(&vrows);
	tdata_release(&td);
	tdata_release(&vd);
	if (g.params)
		gpt_release(&g);
	shardread_manifest_release(&m);
	return rc;
}

int trainer_load_model(struct gpt *g, const char *path, int nth, enum gptk_isa isa, struct derr *e)
{
	struct tstate s;
	return gpt_load(g, path, &s, sizeof(s), nth, isa, e);
}

/* ---- generation --------------------------------------------------------------------------- */

int trainer_generate(struct gpt *g, const char *system, const char *const *users, int n,
		     const struct trainer_gen_opts *o, char **outs, struct derr *e)
{
	int maxT = g->cfg.max_seq_len, Vp = g->cfg.padded_vocab_size, bs = o->batch > 0 ? o->batch : 32;
	for (int s0 = 0; s0 < n; s0 += bs) {
		int nb = n - s0 < bs ? n - s0 : bs, active;
		struct gpt_kv *kv = gpt_kv_new(g, nb);
		struct tok_seq *prompt = xcalloc((size_t)nb, sizeof(*prompt));
		struct tok_seq *gen = xcalloc((size_t)nb, sizeof(*gen));
		int *tok = xcalloc((size_t)nb, sizeof(int)), *posv = xcalloc((size_t)nb, sizeof(int));
		int *done = xcalloc((size_t)nb, sizeof(int));
		uint64_t *rng = xcalloc((size_t)nb, sizeof(uint64_t));
		float *logits = xmalloc(sizeof(float) * (size_t)nb * Vp);

		for (int i = 0; i < nb; i++) {
			tok_prompt(&prompt[i], system, users[s0 + i]);
			if (prompt[i].n >= maxT) /* no room to answer */
				done[i] = 1;
			rng[i] = hash_mix64(o->seed, (uint64_t)s0 + (uint64_t)i);
		}
		for (int p = 0;; p++) {
			active = 0;
			for (int i = 0; i < nb; i++) {
				posv[i] = p < maxT ? p : maxT - 1;
				if (p < prompt[i].n)
					tok[i] = prompt[i].ids[p];
				else if (!done[i] && gen[i].n > 0)
					tok[i] = gen[i].ids[gen[i].n - 1];
				else
					tok[i] = TOK_END;
				active += !done[i];
			}
			if (!active || p >= maxT - 1)
				break;
			gpt_kv_step(g, kv, tok, posv, logits);
			for (int i = 0; i < nb; i++) {
				int next;
				if (done[i] || p + 1 < prompt[i].n)
					continue;
				next = gpt_sample(logits + (size_t)i * Vp, g->cfg.vocab_size, o->temperature,
						  o->top_p, &rng[i]);
				if (next == TOK_END || gen[i].n >= o->max_new) {
					done[i] = 1;
					continue;
				}
				tok_push(&gen[i], next, 0);
			}
		}
		for (int i = 0; i < nb; i++) {
			size_t cap = (size_t)gen[i].n * 16 + 1;
			outs[s0 + i] = xmalloc(cap);
			tok_decode(gen[i].ids, gen[i].n, outs[s0 + i], cap);
			tok_seq_release(&prompt[i]);
			tok_seq_release(&gen[i]);
		}
		free(prompt);
		free(gen);
		free(tok);
		free(posv);
		free(done);
		free(rng);
		free(logits);
		gpt_kv_free(kv);
	}
	(void)e;
	return 0;
}
