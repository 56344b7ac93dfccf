/* test_gpt.c - the student model: loss masking, KV-cached inference against
 * the full forward pass, checkpoints (round trip, truncation, corruption). */
#include "t.h"
#include "gpt.h"

#include <math.h>
#include <unistd.h>

enum { B = 2, T = 24 };

static void tiny(struct gpt *g)
{
	struct gpt_config c = {
		.max_seq_len = 32, .vocab_size = 40, .num_layers = 2, .num_heads = 2, .channels = 16};
	struct derr e = {0};
	T_OK(gpt_init(g, &c, 5, 2, GPTK_ISA_AUTO, &e), &e);
}

static void batch(int *inp, int *tgt, int *pos, float *w)
{
	for (int i = 0; i < B * T; i++) {
		inp[i] = (i * 7 + 3) % 40;
		tgt[i] = (i * 11 + 1) % 40;
		pos[i] = i % T;
		w[i] = (i % T) >= 10 ? ((i % 3) ? 1.0f : 0.5f) : 0.0f; /* the "assistant" part */
	}
}

static void test_masking(void)
{
	struct gpt g;
	struct derr e = {0};
	int inp[B * T], tgt[B * T], pos[B * T];
	float w[B * T], loss1, *grads1;
	tiny(&g);
	batch(inp, tgt, pos, w);
	T_OK(gpt_forward(&g, inp, pos, tgt, w, B, T, &e), &e);
	loss1 = g.loss;
	T_EQ_INT(g.mask_count, B * (T - 10));
	gpt_zero_grad(&g);
	gpt_backward(&g);
	grads1 = malloc(sizeof(float) * g.num_params);
	memcpy(grads1, g.grads, sizeof(float) * g.num_params);
	/* other targets where the weight is 0: same loss, same gradients */
	for (int i = 0; i < B * T; i++)
		if (w[i] == 0)
			tgt[i] = (tgt[i] + 13) % 40;
	T_OK(gpt_forward(&g, inp, pos, tgt, w, B, T, &e), &e);
	T_EQ_INT(memcmp(&loss1, &g.loss, sizeof(float)), 0);
	gpt_zero_grad(&g);
	gpt_backward(&g);
	T_EQ_INT(memcmp(grads1, g.grads, sizeof(float) * g.num_params), 0);
	/* and a changed target inside the mask does change it */
	tgt[B * T - 1] = (tgt[B * T - 1] + 1) % 40;
	T_OK(gpt_forward(&g, inp, pos, tgt, w, B, T, &e), &e);
	T_TRUE(g.loss != loss1);
	/* nothing to learn: refused */
	memset(w, 0, sizeof(w));
	T_EQ_INT(gpt_forward(&g, inp, pos, tgt, w, B, T, &e), DERR_TRAIN_NOMASK);
	free(grads1);
	gpt_release(&g);
}

static void test_kv_cache(void)
{
	struct gpt g;
	struct derr e = {0};
	int inp[T], pos[T];
	float logits[2 * 64], worst = 0;
	struct gpt_kv *kv;
	tiny(&g);
	for (int t = 0; t < T; t++) {
		inp[t] = (t * 5 + 2) % 40;
		pos[t] = t;
	}
	T_OK(gpt_forward(&g, inp, pos, NULL, NULL, 1, T, &e), &e);
	kv = gpt_kv_new(&g, 2);
	for (int t = 0; t < T; t++) {
		int tok[2] = {inp[t], inp[t]}, p[2] = {t, t};
		gpt_kv_step(&g, kv, tok, p, logits);
		for (int v = 0; v < 40; v++) {
			float d = fabsf(logits[v] - g.a.logits[(size_t)t * g.cfg.padded_vocab_size + v]);
			worst = d > worst ? d : worst;
			T_EQ_DBL(logits[v], logits[64 + v], 0);
		}
	}
	T_TRUE(worst < 1e-4f);
	gpt_kv_free(kv);
	gpt_release(&g);
}

static void test_checkpoint(void)
{
	struct gpt g, h;
	struct derr e = {0};
	char dir[512], path[600], cmd[700];
	char state[16] = "trainer-state!!", st2[16];
	struct gpt_adamw ad = {
		.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .grad_scale = 1, .t = 1};
	FILE *f;
	long size;

	t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/ckpt.bin", dir);
	tiny(&g);
	gpt_update(&g, &ad); /* moments exist */
	T_OK(gpt_save(&g, path, state, sizeof(state), &e), &e);
	T_OK(gpt_load(&h, path, st2, sizeof(st2), 1, GPTK_ISA_AUTO, &e), &e);
	T_EQ_STR(st2, state);
	T_EQ_INT(h.num_params, g.num_params);
	T_EQ_INT(memcmp(h.params, g.params, sizeof(float) * g.num_params), 0);
	T_EQ_INT(memcmp(h.v, g.v, sizeof(float) * g.num_params), 0);
	gpt_release(&h);
	/* a wrong state size */
	T_EQ_INT(gpt_load(&h, path, st2, 8, 1, GPTK_ISA_AUTO, &e), DERR_TRAIN_CKPT);
	/* truncated */
	f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fclose(f);
	T_EQ_INT(truncate(path, size - 100), 0);
	T_EQ_INT(gpt_load(&h, path, st2, sizeof(st2), 1, GPTK_ISA_AUTO, &e), DERR_TRAIN_CKPT);
	T_TRUE(strstr(e.msg, "truncated") != NULL);
	/* a flipped byte */
	T_OK(gpt_save(&g, path, state, sizeof(state), &e), &e);
	f = fopen(path, "r+b");
	fseek(f, size / 2, SEEK_SET);
	fputc(0x55, f);
	fclose(f);
	T_EQ_INT(gpt_load(&h, path, st2, sizeof(st2), 1, GPTK_ISA_AUTO, &e), DERR_TRAIN_CKPT);
	T_TRUE(strstr(e.msg, "checksum") != NULL);
	/* not a checkpoint */
	f = fopen(path, "wb");
	fputs("hello, world", f);
	fclose(f);
	T_EQ_INT(gpt_load(&h, path, st2, sizeof(st2), 1, GPTK_ISA_AUTO, &e), DERR_TRAIN_CKPT);
	T_TRUE(strstr(e.msg, "magic") != NULL);
	gpt_release(&g);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	T_EQ_INT(system(cmd), 0);
}

static void test_sample(void)
{
	float logits[5] = {0, 3, 1, 2, -1};
	uint64_t rng = 1;
	int counts[5] = {0};
	T_EQ_INT(gpt_sample(logits, 5, 0, 1, &rng), 1);
	for (int i = 0; i < 2000; i++)
		counts[gpt_sample(logits, 5, 1.0f, 0.7f, &rng)]++;
	/* top-p 0.7 keeps tokens 1 and 3 only (0.64 + 0.24 >= 0.7) */
	T_EQ_INT(counts[0] + counts[2] + counts[4], 0);
	T_TRUE(counts[1] > counts[3] && counts[3] > 0);
}

int main(void)
{
	test_masking();
	test_kv_cache();
	test_checkpoint();
	test_sample();
	return t_done();
}
