/*
 * bench_recall.c - LSH recall against exact all-pairs Jaccard on 20,000
 * items with 1,000 planted pairs spread over Jaccard 0.5-1.0, at the default
 * parameters (5-word shingles, 128 permutations, threshold 0.8, 21 bands of
 * 6 rows).  Ground truth: every pair sharing a shingle, from an inverted
 * index of the shingle sets (pairs sharing none have Jaccard 0).  Prints the
 * recall of the LSH candidates at the threshold (target >= 0.95), by
 * Jaccard bucket, the precision of the candidates before confirmation, and
 * how many true pairs the confirmation drops: none with the exact Jaccard
 * confirmation dedup uses, and for comparison how many a confirmation by
 * the MinHash estimate would drop.
 */
#include "minhash.h"
#include "t.h"
#include "util.h"

#include <stdint.h>

#define ITEMS 20000
#define PAIRS 1000
#define WORDS 80
#define VOCAB 2000

static uint64_t rng(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 17;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A set of pair keys (i << 32 | j, i < j) with a value, open addressing. */
struct pairmap {
	uint64_t *key;
	uint32_t *val;
	size_t n, cap;
};

static uint32_t *pm_slot(struct pairmap *m, uint64_t k)
{
	if (2 * (m->n + 1) > m->cap) {
		struct pairmap o = *m;
		m->cap = m->cap ? 2 * m->cap : 1 << 16;
		m->key = xcalloc(m->cap, sizeof(*m->key));
		m->val = xcalloc(m->cap, sizeof(*m->val));
		m->n = 0;
		for (size_t i = 0; i < o.cap; i++)
			if (o.key[i])
				*pm_slot(m, o.key[i]) = o.val[i];
		free(o.key);
		free(o.val);
	}
	size_t s = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
	while (m->key[s] && m->key[s] != k)
		s = (s + 1) & (m->cap - 1);
	if (!m->key[s]) {
		m->key[s] = k;
		m->n++;
	}
	return &m->val[s];
}

static uint32_t pm_get(const struct pairmap *m, uint64_t k)
{
	if (!m->cap)
		return 0;
	size_t s = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1);
	while (m->key[s] && m->key[s] != k)
		s = (s + 1) & (m->cap - 1);
	return m->key[s] ? m->val[s] : 0;
}

static uint64_t pk(uint32_t i, uint32_t j)
{
	return i < j ? ((uint64_t)i << 32 | j) + 1 : ((uint64_t)j << 32 | i) + 1;
}

int main(void)
{
	static char vocab[VOCAB][10];
	static int doc[ITEMS][WORDS];
	char *text = xmalloc(WORDS * 12);
	uint64_t s = 2024, **sets = xmalloc(ITEMS * sizeof(*sets));
	size_t *nset = xmalloc(ITEMS * sizeof(*nset));
	uint32_t(*keys)[MINHASH_MAX_BANDS] = xmalloc(ITEMS * sizeof(*keys));
	uint32_t(*sigs)[MINHASH_PERM] = xmalloc(ITEMS * sizeof(*sigs));
	struct minhash_params p;
	struct minhash m;
	struct pairmap inter = {0}, cand = {0};

	for (int v = 0; v < VOCAB; v++) {
		int len = 3 + (int)(rng(&s) % 6);
		for (int k = 0; k < len; k++)
			vocab[v][k] = (char)('a' + rng(&s) % 26);
		vocab[v][len] = '\0';
	}
	/* Items 2k and 2k+1 (k < PAIRS) are planted pairs: a copy with its
	 * first or last r words replaced, which changes r of its N = WORDS - 4
	 * shingles: Jaccard (N - r) / (N + r), r drawn so that the target
	 * Jaccard is uniform over 0.5-1.0. */
	for (int i = 0; i < ITEMS; i++) {
		if (i < 2 * PAIRS && i % 2 == 1) {
			double target = 0.5 + 0.5 * (double)(rng(&s) % 10001) / 10000.0, n = WORDS - 4;
			int r = (int)(n * (1 - target) / (1 + target) + 0.5);
			int at = rng(&s) % 2 ? 0 : WORDS - r;
			memcpy(doc[i], doc[i - 1], sizeof(doc[i]));
			for (int k = at; k < at + r; k++)
				doc[i][k] = (int)(rng(&s) % VOCAB);
		} else {
			for (int k = 0; k < WORDS; k++)
				doc[i][k] = (int)(rng(&s) % VOCAB);
		}
	}
	minhash_params_default(&p);
	minhash_init(&m, &p);
	for (int i = 0; i < ITEMS; i++) {
		size_t o = 0;
		for (int k = 0; k < WORDS; k++)
			o += (size_t)snprintf(text + o, WORDS * 12 - o, "%s ", vocab[doc[i][k]]);
		minhash_shingle(&m, text, o);
		minhash_signature(&m, m.sh, m.nsh, sigs[i]);
		minhash_bands(&m, sigs[i], 0, keys[i]);
		minhash_shingle_set(&m);
		sets[i] = xmalloc(m.nsh * sizeof(uint64_t));
		memcpy(sets[i], m.sh, m.nsh * sizeof(uint64_t));
		nset[i] = m.nsh;
	}

	/* Exact Jaccard of every pair that shares a shingle. */
	{
		size_t total = 0, o = 0;
		for (int i = 0; i < ITEMS; i++)
			total += nset[i];
		uint64_t(*post)[2] = xmalloc(total * sizeof(*post));
		for (int i = 0; i < ITEMS; i++)
			for (size_t k = 0; k < nset[i]; k++) {
				post[o][0] = sets[i][k];
				post[o++][1] = (uint64_t)i;
			}
		qsort(post, total, sizeof(*post), cmp_u64); /* by shingle (first word) */
		for (size_t a = 0; a < total;) {
			size_t b = a + 1;
			while (b < total && post[b][0] == post[a][0])
				b++;
			for (size_t x = a; x < b; x++)
				for (size_t y = x + 1; y < b; y++)
					if (post[x][1] != post[y][1])
						(*pm_slot(&inter,
							  pk((uint32_t)post[x][1], (uint32_t)post[y][1])))++;
			a = b;
		}
		free(post);
	}
	/* LSH candidates: pairs sharing a band key. */
	for (int b = 0; b < p.bands; b++) {
		uint64_t *arr = xmalloc(ITEMS * sizeof(*arr));
		for (int i = 0; i < ITEMS; i++)
			arr[i] = (uint64_t)keys[i][b] << 32 | (uint64_t)i;
		qsort(arr, ITEMS, sizeof(*arr), cmp_u64);
		for (int a = 0; a < ITEMS;) {
			int e = a + 1;
			while (e < ITEMS && arr[e] >> 32 == arr[a] >> 32)
				e++;
			for (int x = a; x < e; x++)
				for (int y = x + 1; y < e; y++)
					*pm_slot(&cand, pk((uint32_t)arr[x], (uint32_t)arr[y])) = 1;
			a = e;
		}
		free(arr);
	}

	/* Tally. */
	long truth = 0, found = 0, cand_true = 0, est_drop = 0, exact_drop = 0, planted_range = 0;
	long bucket_t[5] = {0}, bucket_f[5] = {0};
	for (size_t k = 0; k < inter.cap; k++) {
		if (!inter.key[k])
			continue;
		uint32_t i = (uint32_t)((inter.key[k] - 1) >> 32), j = (uint32_t)(inter.key[k] - 1);
		double jac = (double)inter.val[k] / (double)(nset[i] + nset[j] - inter.val[k]);
		if (i < 2 * PAIRS && j == i + 1 && i % 2 == 0 && jac >= 0.5)
			planted_range++;
		if (jac < p.threshold)
			continue;
		int bk = jac >= 1.0 ? 4 : (int)((jac - 0.8) / 0.05);
		bk = bk < 0 ? 0 : bk > 4 ? 4 : bk;
		truth++;
		bucket_t[bk]++;
		if (pm_get(&cand, inter.key[k])) {
			found++;
			bucket_f[bk]++;
			/* Confirmation as dedup does it: exact Jaccard of the sets. */
			if (minhash_jaccard(sets[i], nset[i], sets[j], nset[j]) < p.threshold)
				exact_drop++;
			int eq = 0;
			for (int q = 0; q < MINHASH_PERM; q++)
				eq += sigs[i][q] == sigs[j][q];
			if ((double)eq / MINHASH_PERM < p.threshold)
				est_drop++;
		}
	}
	for (size_t k = 0; k < cand.cap; k++) {
		if (!cand.key[k])
			continue;
		uint32_t i = (uint32_t)((cand.key[k] - 1) >> 32), j = (uint32_t)(cand.key[k] - 1);
		uint32_t c = pm_get(&inter, cand.key[k]);
		if ((double)c / (double)(nset[i] + nset[j] - c) >= p.threshold)
			cand_true++;
	}
	printf("recall: %d items, %d planted pairs (%ld with Jaccard 0.5-1.0), %d-word shingles, %d "
	       "permutations, "
	       "%d bands x %d rows, threshold %.2f\n",
	       ITEMS, PAIRS, planted_range, p.shingle, MINHASH_PERM, p.bands, p.rows, p.threshold);
	printf("  pairs sharing a shingle (exact Jaccard computed): %zu\n", inter.n);
	printf("  true pairs (Jaccard >= %.2f): %ld; found by LSH: %ld; recall %.4f (target >= 0.95)\n",
	       p.threshold, truth, found, truth ? (double)found / (double)truth : 0.0);
	for (int b = 0; b < 5; b++)
		printf("    Jaccard %s: %ld of %ld\n",
		       (const char *[]){"[0.80,0.85)", "[0.85,0.90)", "[0.90,0.95)", "[0.95,1.00)",
					"1.00       "}[b],
		       bucket_f[b], bucket_t[b]);
	printf("  LSH candidates: %zu; at or above the threshold: %ld; precision before confirmation %.3f\n",
	       cand.n, cand_true, cand.n ? (double)cand_true / (double)cand.n : 0.0);
	printf("  true pairs dropped by the confirmation: %ld with exact Jaccard (dedup's); %ld if the "
	       "MinHash "
	       "estimate confirmed instead\n",
	       exact_drop, est_drop);
	for (int i = 0; i < ITEMS; i++)
		free(sets[i]);
	free(sets);
	free(nset);
	free(keys);
	free(sigs);
	free(text);
	free(inter.key);
	free(inter.val);
	free(cand.key);
	free(cand.val);
	minhash_release(&m);
	return 0;
}
