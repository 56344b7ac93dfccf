/*
 * bench_train.c - training throughput of the bundled trainer's GPT on the
 * issue's reference shape (4 layers, 4 heads, width 256, vocabulary 512,
 * B=8, T=256): median step time, tokens/s, MFU against the measured FP32
 * peak, and the per-kernel breakdown; then attention time per token at
 * T=1024 against T=256.  The side-by-side llm.c figure comes from
 * tests/bench/train.bench.sh, which runs this binary and llm.c together.
 * Usage: bench_train [steps] [threads]
 */
#include "gpt.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* CPU time of the whole process (all threads), ns. */
static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct run {
	double median_ms, tok_s, att_ns_per_tok;
	double cpu_ms, cpu_tok_s; /* process CPU time: robust to a shared machine */
	int64_t kernel_ns[GPT_K_COUNT];
};

static int bench(int B, int T, int steps, int nth, enum gptk_isa isa, struct run *out)
{
	struct gpt_config cfg = {
		.max_seq_len = T, .vocab_size = 512, .num_layers = 4, .num_heads = 4, .channels = 256};
	struct gpt g;
	struct derr e = {0};
	struct gpt_adamw ad = {.lr = 1e-4f,
			       .beta1 = 0.9f,
			       .beta2 = 0.95f,
			       .eps = 1e-8f,
			       .weight_decay = 0.1f,
			       .grad_scale = 1};
	int n = B * T, *inp = malloc(sizeof(int) * n), *tgt = malloc(sizeof(int) * n),
	    *pos = malloc(sizeof(int) * n);
	float *w = malloc(sizeof(float) * n);
	double *ms = malloc(sizeof(double) * steps), *cpu = malloc(sizeof(double) * steps);
	uint64_t rng = 7;
	int64_t k0[GPT_K_COUNT];

	if (gpt_init(&g, &cfg, 1, nth, isa, &e)) {
		fprintf(stderr, "bench_train: %s\n", e.msg);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		inp[i] = (int)(gpt_rng_next(&rng) % 512);
		tgt[i] = (int)(gpt_rng_next(&rng) % 512);
		pos[i] = i % T;
		w[i] = 1;
	}
	for (int s = -2; s < steps; s++) {
		int64_t t0 = mono_ns(), c0 = cpu_ns();
		if (s == 0)
			memcpy(k0, g.kernel_ns, sizeof(k0));
		gpt_forward(&g, inp, pos, tgt, w, B, T, &e);
		gpt_zero_grad(&g);
		gpt_backward(&g);
		ad.t = s + 3;
		gpt_update(&g, &ad);
		if (s >= 0) {
			ms[s] = (double)(mono_ns() - t0) / 1e6;
			cpu[s] = (double)(cpu_ns() - c0) / 1e6;
		}
	}
	qsort(cpu, steps, sizeof(double), cmp_double);
	out->cpu_ms = cpu[steps / 2];
	out->cpu_tok_s = n / (out->cpu_ms / 1e3);
	qsort(ms, steps, sizeof(double), cmp_double);
	out->median_ms = ms[steps / 2];
	out->tok_s = n / (out->median_ms / 1e3);
	for (int k = 0; k < GPT_K_COUNT; k++)
		out->kernel_ns[k] = (g.kernel_ns[k] - k0[k]) / steps;
	out->att_ns_per_tok = (double)out->kernel_ns[GPT_K_ATTENTION] / n;
	gpt_release(&g);
	free(inp), free(tgt), free(pos), free(w), free(ms), free(cpu);
	return 0;
}

int main(int argc, char **argv)
{
	int steps = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 10;
	int nth = argc > 2 ? (int)strtol(argv[2], NULL, 10) : (int)sysconf(_SC_NPROCESSORS_ONLN);
	struct gpt_config cfg = {
		.max_seq_len = 256, .vocab_size = 512, .num_layers = 4, .num_heads = 4, .channels = 256};
	struct gpt g;
	struct run r, r1024;
	double peak, flops, total = 0;

	if (steps < 1)
		steps = 10;
	peak = gptk_peak_flops(nth, 300);
	gpt_init(&g, &cfg, 1, 1, GPTK_ISA_AUTO, NULL);
	flops = gpt_flops_per_token(&g, 256);
	printf("shape: L=4 H=4 C=256 V=512 B=8 T=256, %zu parameters, %.1f MFLOP/token, %d threads, kernels "
	       "%s\n",
	       g.num_params, flops / 1e6, nth, g.ops->name);
	gpt_release(&g);
	printf("measured FP32 peak: %.1f GFLOP/s\n", peak / 1e9);
	if (bench(8, 256, steps, nth, GPTK_ISA_AUTO, &r))
		return 1;
	printf("distill-train: median step %.1f ms, %.0f tokens/s, MFU %.1f%%; CPU %.1f ms/step, %.0f tokens "
	       "per "
	       "CPU-second\n",
	       r.median_ms, r.tok_s, 100 * flops * r.tok_s / peak, r.cpu_ms, r.cpu_tok_s);
	for (int k = 0; k < GPT_K_COUNT; k++)
		total += (double)r.kernel_ns[k];
	printf("per-kernel time per step:\n");
	for (int k = 0; k < GPT_K_COUNT; k++)
		printf("  %-13s %7.2f ms %5.1f%%\n", gpt_kernel_names[k], r.kernel_ns[k] / 1e6,
		       100 * r.kernel_ns[k] / total);
	if (bench(2, 1024, steps > 4 ? steps / 2 : 2, nth, GPTK_ISA_AUTO, &r1024))
		return 1;
	printf("attention fwd+bwd per token: T=256 %.0f ns, T=1024 %.0f ns (ratio %.2f; FLOPs ratio 4.0)\n",
	       r.att_ns_per_tok, r1024.att_ns_per_tok, r1024.att_ns_per_tok / r.att_ns_per_tok);
	printf("whole step per token: T=256 %.1f us, T=1024 %.1f us (ratio %.2f)\n", 1e3 * r.median_ms / 2048,
	       1e3 * r1024.median_ms / 2048, r1024.median_ms / r.median_ms);
	printf("tokens/s %.0f\n", r.tok_s);
	printf("cpu_tokens/s %.0f\n", r.cpu_tok_s);
	return 0;
}
