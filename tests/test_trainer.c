/*
 * test_trainer.c - the training loop end to end on a fixture export:
 * fixed-seed golden losses (both instruction-set paths), resume equals an
 * uninterrupted run, a 32-sample set is overfit, and the refusals (empty
 * loss mask, corrupt shard, wrong manifest, truncated checkpoint).
 */
#include "t.h"
#include "train_fixture.h"
#include "trainer.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

/* Losses of the first 10 steps of small_opts() with seed 1, measured once
 * with the generic kernels; every path must match within 1e-4 relative. */
static const double golden[10] = {
	5.5779295,  5.45585537, 5.2972188,  5.14954948, 5.02722549,
	4.89689684, 4.77358007, 4.69051218, 4.63348007, 4.59149075,
};

struct losses {
	double v[64];
	int n;
};

static void record(void *ctx, const struct trainer_report *r)
{
	struct losses *l = ctx;
	if (!r->is_val && l->n < 64)
		l->v[l->n++] = r->loss;
}

static void small_opts(struct trainer_opts *o, const char *data, const char *out)
{
	trainer_opts_default(o);
	o->data_dir = data;
	o->out_dir = out;
	o->model.num_layers = 2;
	o->model.num_heads = 2;
	o->model.channels = 32;
	o->model.max_seq_len = 128;
	o->batch = 4;
	o->steps = 10;
	o->warmup = 3;
	o->lr = 3e-3f;
	o->threads = 2;
	o->peak_flops = 1e9;
}

static void test_golden(const char *data, const char *out)
{
	static const enum gptk_isa isas[] = {GPTK_ISA_GENERIC, GPTK_ISA_AVX2};
	for (size_t k = 0; k < 2; k++) {
		struct trainer_opts o;
		struct trainer_result r;
		struct losses l = {{0}, 0};
		struct derr e = {0};
		small_opts(&o, data, out);
		o.isa = isas[k];
		T_OK(trainer_run(&o, record, &l, &r, &e), &e);
		T_EQ_INT(l.n, 10);
		for (int i = 0; i < 10 && i < l.n; i++) {
			if (getenv("DISTILL_PRINT_GOLDEN"))
				printf("%.9g,\n", l.v[i]);
			T_EQ_DBL(l.v[i], golden[i], 1e-4 * golden[i]);
		}
		T_TRUE(r.val_loss > 0);
	}
}

static void test_resume(const char *data, const char *out)
{
	struct trainer_opts o;
	struct trainer_result full, part, rest;
	struct losses l1 = {{0}, 0}, l2 = {{0}, 0};
	struct derr e = {0};
	char ckpt[800], out2[700];
	snprintf(out2, sizeof(out2), "%s-b", out);
	small_opts(&o, data, out);
	T_OK(trainer_run(&o, record, &l1, &full, &e), &e);
	small_opts(&o, data, out2);
	o.stop_at = 4;
	T_OK(trainer_run(&o, record, &l2, &part, &e), &e);
	T_EQ_INT(part.steps_done, 4);
	snprintf(ckpt, sizeof(ckpt), "%s/ckpt.bin", out2);
	small_opts(&o, data, out2);
	o.resume = ckpt;
	T_OK(trainer_run(&o, record, &l2, &rest, &e), &e);
	T_EQ_INT(rest.steps_done, 10);
	T_EQ_INT(l2.n, 10);
	for (int i = 0; i < 10; i++)
		T_EQ_INT(memcmp(&l1.v[i], &l2.v[i], sizeof(double)), 0);
	T_TRUE(full.param_hash == rest.param_hash);
	/* a truncated checkpoint is refused with a clear error */
	T_EQ_INT(truncate(ckpt, 1000), 0);
	T_EQ_INT(trainer_run(&o, NULL, NULL, &rest, &e), DERR_TRAIN_CKPT);
	T_TRUE(strstr(e.msg, "truncated") != NULL);
}

/* The sample and eval commands on a checkpoint of the run above. */
static void test_cli(const char *data, const char *out)
{
	char bin[600], cmd[4096], prompts[700], line[512] = "";
	FILE *f, *p;
	snprintf(prompts, sizeof(prompts), "%s-prompts.jsonl", out);
	f = fopen(prompts, "w");
	fputs("{\"question\": \"What is 100 + 200?\", \"answer\": \"300\"}\n"
	      "{\"problem\": \"What is 111 + 222?\", \"answer\": 333}\n"
	      "{\"question\": \"no reference\"}\n",
	      f);
	fclose(f);
	t_bin("distill-train", bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd),
		 "'%s' sample --ckpt '%s/ckpt.bin' --prompt 'What is 1 + 2?' --max-new 8 -n 2 >/dev/null",
		 bin, out);
	T_EQ_INT(system(cmd), 0);
	snprintf(cmd, sizeof(cmd),
		 "'%s' eval --ckpt '%s/ckpt.bin' --prompts '%s' --data '%s' --max-new 20 --out "
		 "'%s-eval.jsonl' 2>/dev/null",
		 bin, out, prompts, data, out);
	p = popen(cmd, "r");
	T_TRUE(p != NULL);
	if (p) {
		if (!fgets(line, sizeof(line), p))
			line[0] = '\0';
		T_EQ_INT(pclose(p), 0);
	}
	T_TRUE(!strncmp(line, "accuracy: ", 10));
	T_TRUE(strstr(line, "/2 = ") != NULL);
	T_TRUE(strstr(line, "skipped: 1") != NULL);
}

static void test_overfit(const char *out)
{
	char data[700];
	struct trainer_opts o;
	struct trainer_result r;
	struct derr e = {0};
	snprintf(data, sizeof(data), "%s-32", out);
	T_EQ_INT(mkdir(data, 0755), 0);
	T_EQ_INT(fixture_export(data, 32, 0, 3, 100, 999, 1), 0);
	small_opts(&o, data, out);
	o.model.channels = 64;
	o.model.max_seq_len = 64;
	o.batch = 8;
	o.steps = 200;
	o.warmup = 10;
	o.lr = 1e-2f;
	o.weight_decay = 0;
	T_OK(trainer_run(&o, NULL, NULL, &r, &e), &e);
	printf("overfit: 32 samples, %ld steps, final loss %.4f\n", r.steps_done, (double)r.last_loss);
	T_TRUE(r.last_loss < 0.05f);
}

static void test_refusals(const char *data, const char *out)
{
	struct trainer_opts o;
	struct trainer_result r;
	struct derr e = {0};
	char path[700];
	FILE *f;
	/* weights that zero every assistant token */
	small_opts(&o, data, out);
	o.w_reasoning = 0;
	o.w_answer = 0;
	T_EQ_INT(trainer_run(&o, NULL, NULL, &r, &e), DERR_TRAIN_NOMASK);
	T_TRUE(strstr(e.msg, "refusing to start") != NULL);
	/* a corrupt shard */
	snprintf(path, sizeof(path), "%s/train-00000-of-00001.jsonl.zst", data);
	f = fopen(path, "ab");
	fputc('x', f);
	fclose(f);
	small_opts(&o, data, out);
	T_EQ_INT(trainer_run(&o, NULL, NULL, &r, &e), DERR_TRAIN_CHECKSUM);
	/* a wrong manifest */
	snprintf(path, sizeof(path), "%s/manifest.json", data);
	f = fopen(path, "wb");
	fputs("{\"shards\": 3}", f);
	fclose(f);
	T_EQ_INT(trainer_run(&o, NULL, NULL, &r, &e), DERR_TRAIN_MANIFEST);
}

int main(void)
{
	char dir[512], data[600], out[600], cmd[700];
	t_tmpdir(dir, sizeof(dir));
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	T_EQ_INT(mkdir(data, 0755), 0);
	T_EQ_INT(fixture_export(data, 200, 20, 11, 100, 999, 0), 0);
	test_golden(data, out);
	test_resume(data, out);
	test_cli(data, out);
	test_overfit(out);
	test_refusals(data, out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	T_EQ_INT(system(cmd), 0);
	return t_done();
}
