/*
 * bench_minhash.c - MinHash signatures per second on one core, 4 KB
 * documents, 128 permutations, word 5-gram shingles: our hashing
 * (pipeline/minhash.c, the vector path) against its portable scalar loop and
 * against a mod-prime baseline implemented here as datasketch computes it,
 * ((a * h + b) mod (2^61 - 1)) & (2^32 - 1) with 64-bit wrap-around, all on
 * the same generated English-like documents, interleaved within each run.
 * Rates are per second of thread CPU time (one core); prints medians of 5
 * runs and the ratios.  Each loop is timed as a whole (no timer calls per
 * document); "signature only" is the end-to-end time less that of a loop
 * doing the tokens and shingles alone.
 */
#include "minhash.h"
#include "t.h"
#include "util.h"

#include <stdint.h>
#include <time.h>

#define DOC_BYTES 4096
#define RUNS 5

static const uint64_t MERSENNE61 = (1ull << 61) - 1;

struct baseline {
	uint64_t a[MINHASH_PERM], b[MINHASH_PERM];
};

static void baseline_signature(const struct baseline *bl, const uint64_t *sh, size_t n,
			       uint32_t sig[MINHASH_PERM])
{
	for (int i = 0; i < MINHASH_PERM; i++)
		sig[i] = UINT32_MAX;
	for (size_t k = 0; k < n; k++) {
		uint64_t hv = sh[k] & 0xffffffffu; /* datasketch hashes shingles to 32 bits */
		for (int i = 0; i < MINHASH_PERM; i++) {
			uint32_t h = (uint32_t)(((bl->a[i] * hv + bl->b[i]) % MERSENNE61) & 0xffffffffu);
			if (h < sig[i])
				sig[i] = h;
		}
	}
}

static uint64_t rng(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 17;
}

/* ndocs documents of DOC_BYTES each, concatenated with NULs. */
static char *make_docs(size_t ndocs)
{
	static const char *const words[] = {
		"the",	"of",	 "and",	      "to",	"a",	   "in",	"is",	 "that",
		"we",	"so",	 "first",     "number", "total",   "each",	"then",	 "wait",
		"let",	"me",	 "check",     "answer", "apples",  "minus",	"times", "equals",
		"half", "twice", "remaining", "step",	"compute", "therefore",
	};
	char *all = xmalloc(ndocs * (DOC_BYTES + 1));
	uint64_t s = 42;
	for (size_t d = 0; d < ndocs; d++) {
		char *p = all + d * (DOC_BYTES + 1);
		size_t o = 0;
		while (o + 16 < DOC_BYTES) {
			uint64_t r = rng(&s);
			if (r % 7 == 0)
				o += (size_t)snprintf(p + o, DOC_BYTES - o, "%u ", (unsigned)(r >> 8) % 1000);
			else
				o += (size_t)snprintf(p + o, DOC_BYTES - o, "%s%s",
						      words[(r >> 8) % ARRAY_SIZE(words)],
						      r % 11 == 0 ? ". " : " ");
		}
		memset(p + o, ' ', DOC_BYTES - o);
		p[DOC_BYTES] = '\0';
	}
	return all;
}

/* Thread CPU time: "per core" even while other processes share the cores. */
static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
	return v[n / 2];
}

/* Docs per CPU second of one pass over ndocs: sig 0 none, 1 ours, 2 our
 * scalar path, 3 the mod-prime baseline. */
static double pass(struct minhash *m, const struct baseline *bl, const char *docs, size_t ndocs, int sig,
		   uint64_t *sink)
{
	uint32_t out[MINHASH_PERM] = {0};
	int64_t t0 = cpu_ns();
	for (size_t d = 0; d < ndocs; d++) {
		minhash_shingle(m, docs + d * (DOC_BYTES + 1), DOC_BYTES);
		if (sig == 1)
			minhash_signature(m, m->sh, m->nsh, out);
		else if (sig == 2)
			minhash_signature_scalar(m, m->sh, m->nsh, out);
		else if (sig == 3)
			baseline_signature(bl, m->sh, m->nsh, out);
		else
			out[d % MINHASH_PERM] = (uint32_t)m->sh[m->nsh / 2];
		*sink += out[d % MINHASH_PERM];
	}
	return (double)ndocs / ((double)(cpu_ns() - t0) / 1e9);
}

int main(void)
{
	const size_t nfast = 20000, nplain = 4000, nslow = 1000;
	struct minhash_params p;
	struct minhash m;
	struct baseline bl;
	double fast[RUNS], fast_sig[RUNS], plain[RUNS], slow[RUNS];
	uint64_t s = 7, sink = 0, shingles = 0;
	char *docs = make_docs(nfast);

	minhash_params_default(&p);
	minhash_init(&m, &p);
	for (int i = 0; i < MINHASH_PERM; i++) {
		bl.a[i] = 1 + rng(&s) % (MERSENNE61 - 1);
		bl.b[i] = rng(&s) % MERSENNE61;
	}
	for (size_t d = 0; d < nfast; d++)
		shingles += minhash_shingle(&m, docs + d * (DOC_BYTES + 1), DOC_BYTES);
	for (int r = 0; r < RUNS; r++) {
		double e2e = pass(&m, &bl, docs, nfast, 1, &sink);
		double tok = pass(&m, &bl, docs, nfast, 0, &sink);
		fast[r] = e2e;
		fast_sig[r] = 1.0 / (1.0 / e2e - 1.0 / tok);
		plain[r] = pass(&m, &bl, docs, nplain, 2, &sink);
		slow[r] = pass(&m, &bl, docs, nslow, 3, &sink);
	}
	double f = median(fast, RUNS), fs = median(fast_sig, RUNS), pl = median(plain, RUNS),
	       sl = median(slow, RUNS);
	printf("minhash: 4 KB docs, %d permutations, %d-word shingles (%.0f shingles/doc), one core, median "
	       "of %d\n",
	       MINHASH_PERM, p.shingle, (double)shingles / (double)nfast, RUNS);
	printf("  ours (AVX2 when present):  %9.0f docs/s end to end (tokens+shingles+signature), %9.0f "
	       "docs/s "
	       "signature only\n",
	       f, fs);
	printf("  ours, plain scalar loop:   %9.0f docs/s end to end\n", pl);
	printf("  mod-prime (datasketch):    %9.0f docs/s end to end\n", sl);
	printf("  ratio ours / mod-prime: %.1fx, ours / plain loop: %.1fx   (target >= 50,000 docs/s: %s)\n",
	       f / sl, f / pl, f >= 50000 ? "met" : "NOT met");
	minhash_release(&m);
	free(docs);
	return sink == 42 ? 1 : 0; /* keep the work observable */
}
