/* test_minhash.c - tokens, shingles, signatures (vector = scalar), band
 * layout, exact Jaccard and the MinHash estimate. */
#include "minhash.h"
#include "t.h"

#include <time.h>

static size_t ntok(struct minhash_tokens *t, const char *s, unsigned flags)
{
	minhash_tokenize(t, s, strlen(s), flags);
	return t->n;
}

/* The shingle set of s, copied into out (cap entries). */
static size_t set_of(struct minhash *m, const char *s, uint64_t *out, size_t cap)
{
	minhash_shingle(m, s, strlen(s));
	minhash_shingle_set(m);
	T_TRUE(m->nsh <= cap);
	memcpy(out, m->sh, m->nsh * sizeof(*out));
	return m->nsh;
}

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(void)
{
	struct minhash_tokens t;
	struct minhash_params p;
	struct minhash m;
	uint64_t a[512], b[512];
	size_t na, nb;

	/* Tokens: words and numbers, lower-cased; symbols only when asked. */
	minhash_tokens_init(&t);
	T_EQ_INT(ntok(&t, "Hello, World! 3+4=7", 0), 5);
	T_EQ_INT(ntok(&t, "Hello, World! 3+4=7", MINHASH_TOK_SYMBOLS), 9);
	T_EQ_INT(t.off[1], 5); /* "," */
	T_EQ_INT(t.len[1], 1);
	T_EQ_INT(t.off[2], 7); /* "World" */
	T_EQ_INT(t.len[2], 5);
	T_EQ_INT(ntok(&t, "", MINHASH_TOK_SYMBOLS), 0);
	T_EQ_INT(ntok(&t, "  \t\n ", MINHASH_TOK_SYMBOLS), 0);
	ntok(&t, "HeLLo hello", 0);
	T_TRUE(t.hash[0] == t.hash[1]);
	ntok(&t, "x12 x13", 0);
	T_TRUE(t.hash[0] != t.hash[1]); /* digits stay inside tokens */
	/* General punctuation (em dash, curly quotes) and NBSP separate words;
	 * other non-ASCII letters are word characters. */
	T_EQ_INT(ntok(&t,
		      "a\xe2\x80\x94"
		      "b \xe2\x80\x9c"
		      "c\xe2\x80\x9d d\xc2\xa0"
		      "e",
		      0),
		 5);
	T_EQ_INT(ntok(&t, "caf\xc3\xa9 na\xc3\xafve", 0), 2);
	T_EQ_INT(t.len[0], 5);
	/* A token longer than the 64-byte hashing chunk. */
	{
		char lng[300];
		memset(lng, 'Q', sizeof(lng) - 1);
		lng[sizeof(lng) - 1] = '\0';
		T_EQ_INT(ntok(&t, lng, 0), 1);
		uint64_t h1 = t.hash[0];
		for (size_t i = 0; i + 1 < sizeof(lng); i++)
			lng[i] = 'q';
		ntok(&t, lng, 0);
		T_TRUE(t.hash[0] == h1);
		lng[200] = 'r';
		ntok(&t, lng, 0);
		T_TRUE(t.hash[0] != h1);
	}
	/* The vector tokenizer equals the scalar one on random mixes of letters,
	 * digits, symbols, spaces and (broken) UTF-8, across block boundaries. */
	{
		static const char *const pieces[] = {"a",
						     "Z",
						     "7",
						     " ",
						     "+",
						     ".",
						     "\xc2\xa0",
						     "\xe2\x80\x94",
						     "\xe2\x81\x80",
						     "\xc3\xa9",
						     "\xe2",
						     "\xc2",
						     "\x80",
						     "\xe2\x80",
						     "word",
						     "\n",
						     "\xe2\x80\xc2\xa0",
						     "\xff"};
		struct minhash_tokens v;
		char buf[400];
		uint64_t s = (uint64_t)time(NULL) * 2654435761u | 1;
		int bad = 0;
		minhash_tokens_init(&v);
		for (int round = 0; round < 3000 && !bad; round++) {
			size_t o = 0, want = rng(&s) % 300;
			while (o < want) {
				const char *pc = pieces[rng(&s) % ARRAY_LEN(pieces)];
				size_t l = strlen(pc);
				memcpy(buf + o, pc, l);
				o += l;
			}
			for (unsigned fl = 0; fl < 2; fl++) {
				minhash_tokenize(&t, buf, o, fl);
				minhash_tokenize_scalar(&v, buf, o, fl);
				bad |= t.n != v.n;
				for (size_t i = 0; i < t.n && !bad; i++) {
					bad |= t.hash[i] != v.hash[i] || t.off[i] != v.off[i] ||
					       t.len[i] != v.len[i];
					if (bad)
						fprintf(stderr, "token %zu: (%u,%u) vs (%u,%u)\n", i,
							t.off[i], t.len[i], v.off[i], v.len[i]);
				}
				if (bad)
					fprintf(stderr,
						"tokenizers differ on round %d (%zu bytes, flags %u)\n",
						round, o, fl);
			}
		}
		T_EQ_INT(bad, 0);
		/* Long words across several 64-byte blocks, texts ending inside a
		 * word exactly at a block end, and symbols at the very end. */
		for (int round = 0; round < 2000 && !bad; round++) {
			size_t o = 0, want = 1 + rng(&s) % 390;
			while (o < want) {
				size_t run = 1 + rng(&s) % (rng(&s) % 4 == 0 ? 150 : 9);
				unsigned kind = (unsigned)(rng(&s) % 4);
				for (size_t i = 0; i < run && o < sizeof(buf); i++)
					buf[o++] = kind == 0   ? ' '
						   : kind == 1 ? '+'
						   : kind == 2 ? (char)('a' + rng(&s) % 26)
							       : (char)('A' + rng(&s) % 40);
			}
			if (rng(&s) % 3 == 0)
				o = o >= 128 ? 128 : 64 < o ? 64 : o;
			for (unsigned fl = 0; fl < 2; fl++) {
				minhash_tokenize(&t, buf, o, fl);
				minhash_tokenize_scalar(&v, buf, o, fl);
				bad |= t.n != v.n;
				for (size_t i = 0; i < t.n && !bad; i++)
					bad |= t.hash[i] != v.hash[i] || t.off[i] != v.off[i] ||
					       t.len[i] != v.len[i];
				if (bad)
					fprintf(stderr,
						"tokenizers differ on long round %d (%zu bytes, flags %u)\n",
						round, o, fl);
			}
		}
		T_EQ_INT(bad, 0);
		minhash_tokens_release(&v);
	}
	minhash_tokens_release(&t);

	/* Parameters: the documented defaults and the band layout rule. */
	minhash_params_default(&p);
	T_EQ_INT(p.shingle, 5);
	T_EQ_DBL(p.threshold, 0.8, 0);
	T_EQ_INT(p.bands, 21);
	T_EQ_INT(p.rows, 6);
	T_TRUE(minhash_candidate_prob(p.bands, p.rows, 0.8) >= 0.99);
	T_TRUE(minhash_candidate_prob(p.bands, p.rows, 0.3) < 0.05);
	T_EQ_INT(minhash_params_set_threshold(&p, 0.5), 0);
	T_EQ_INT(p.rows, 3);
	T_EQ_INT(p.bands, 42);
	T_EQ_INT(minhash_params_set_threshold(&p, 0), -1);
	T_EQ_INT(minhash_params_set_threshold(&p, 1.5), -1);
	minhash_params_default(&p);

	minhash_init(&m, &p);
	/* Shingles: a short text is one shingle of all its tokens; none for no tokens. */
	T_EQ_INT(minhash_shingle(&m, "Compute 3+4", 11), 1);
	T_EQ_INT(minhash_shingle(&m, "What is 3+4?", 12), 2);
	T_EQ_INT(minhash_shingle(&m, "", 0), 0);
	T_EQ_INT(minhash_shingle(&m, "a b c d e f g", 13), 3);
	/* Case and spacing do not matter; numbers and symbols do. */
	na = set_of(&m, "What is 3+4?", a, 512);
	nb = set_of(&m, "what  is 3 + 4 ?", b, 512);
	T_EQ_DBL(minhash_jaccard(a, na, b, nb), 1.0, 0);
	nb = set_of(&m, "What is 3*4?", b, 512);
	T_EQ_DBL(minhash_jaccard(a, na, b, nb), 0.0, 0);
	nb = set_of(&m, "What is 3+5?", b, 512);
	T_EQ_DBL(minhash_jaccard(a, na, b, nb), 0.0, 0);
	/* Repeats count once in the set. */
	T_EQ_INT(set_of(&m, "a b c d e a b c d e a b c d e", a, 512), 5);
	/* Rolled shingle hashes equal those of each window hashed alone, so the
	 * same words give the same shingle wherever they stand. */
	{
		static const char *const w[] = {"alpha",   "Beta", "7",	  "+",	   "gamma", "delta",
						"epsilon", "zeta", "eta", "theta", "iota",  "kappa"};
		char text[256], win[128];
		size_t o = 0, cnt;
		uint64_t rolled[16];
		for (size_t i = 0; i < ARRAY_LEN(w); i++)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s ", w[i]);
		cnt = minhash_shingle(&m, text, o);
		T_EQ_INT(cnt, ARRAY_LEN(w) - 4);
		memcpy(rolled, m.sh, cnt * sizeof(*rolled));
		for (size_t i = 0; i < cnt; i++) {
			size_t wo = 0;
			for (size_t j = i; j < i + 5; j++)
				wo += (size_t)snprintf(win + wo, sizeof(win) - wo, "%s ", w[j]);
			T_EQ_INT(minhash_shingle(&m, win, wo), 1);
			T_TRUE(m.sh[0] == rolled[i]);
		}
		/* Order within a shingle matters. */
		minhash_shingle(&m, "Beta alpha 7 + gamma", 20);
		T_TRUE(m.sh[0] != rolled[0]);
	}

	/* Exact Jaccard. */
	{
		uint64_t x[] = {1, 2, 3, 4}, y[] = {3, 4, 5, 6, 7, 8};
		T_EQ_DBL(minhash_jaccard(x, 4, y, 6), 2.0 / 8.0, 1e-12);
		T_EQ_DBL(minhash_jaccard(x, 4, x, 4), 1.0, 0);
		T_EQ_DBL(minhash_jaccard(x, 0, y, 0), 1.0, 0);
		T_EQ_DBL(minhash_jaccard(x, 4, y, 0), 0.0, 0);
	}

	/* Signatures: the vector path equals the scalar one, order and repeats
	 * do not matter, and the fraction of equal entries estimates Jaccard. */
	{
		uint64_t seed = (uint64_t)time(NULL) | 1, s, sh[400], sh2[400];
		uint32_t s1[MINHASH_PERM], s2[MINHASH_PERM];
		int eq = 0;
		printf("seed %llu\n", (unsigned long long)seed);
		s = seed;
		for (int i = 0; i < 400; i++)
			sh[i] = rng(&s);
		/* Bit for bit, at every count around the vector widths. */
		for (size_t cnt = 0; cnt <= 400; cnt += cnt < 40 ? 1 : 37) {
			minhash_signature(&m, sh, cnt, s1);
			minhash_signature_scalar(&m, sh, cnt, s2);
			T_TRUE(memcmp(s1, s2, sizeof(s1)) == 0);
		}
		minhash_signature(&m, sh, 400, s1);
		minhash_signature_scalar(&m, sh, 400, s2);
		T_TRUE(memcmp(s1, s2, sizeof(s1)) == 0);
		/* Reversed and with repeats: the same signature. */
		for (int i = 0; i < 400; i++)
			sh2[i] = sh[399 - (i % 200)];
		minhash_signature(&m, sh2, 200, s2);
		minhash_signature(&m, sh + 200, 200, s1);
		T_TRUE(memcmp(s1, s2, sizeof(s1)) == 0);
		/* 300 shared of 500 distinct: Jaccard 0.6. */
		memcpy(sh2, sh, 300 * sizeof(*sh));
		for (int i = 300; i < 400; i++)
			sh2[i] = rng(&s);
		minhash_signature(&m, sh, 400, s1);
		minhash_signature(&m, sh2, 400, s2);
		for (int i = 0; i < MINHASH_PERM; i++)
			eq += s1[i] == s2[i];
		/* 128 draws at p = 0.6: sd 0.043; 0.2 is over 4.5 sd. */
		T_TRUE(eq >= (int)(0.4 * MINHASH_PERM) && eq <= (int)(0.8 * MINHASH_PERM));
		/* No shingles: every entry at its maximum. */
		minhash_signature(&m, sh, 0, s1);
		T_TRUE(s1[0] == UINT32_MAX && s1[MINHASH_PERM - 1] == UINT32_MAX);
	}

	/* Bands: equal signatures give equal keys within a group, and another
	 * group gives other keys. */
	{
		uint32_t sig[MINHASH_PERM], k1[MINHASH_MAX_BANDS], k2[MINHASH_MAX_BANDS];
		int same = 0;
		for (int i = 0; i < MINHASH_PERM; i++)
			sig[i] = (uint32_t)i * 2654435761u;
		minhash_bands(&m, sig, 7, k1);
		minhash_bands(&m, sig, 7, k2);
		T_TRUE(memcmp(k1, k2, (size_t)p.bands * sizeof(*k1)) == 0);
		minhash_bands(&m, sig, 8, k2);
		for (int i = 0; i < p.bands; i++)
			same += k1[i] == k2[i];
		T_EQ_INT(same, 0);
		sig[0]++; /* only band 0 changes */
		minhash_bands(&m, sig, 7, k2);
		T_TRUE(k1[0] != k2[0]);
		T_TRUE(memcmp(k1 + 1, k2 + 1, (size_t)(p.bands - 1) * sizeof(*k1)) == 0);
	}
	minhash_release(&m);
	return t_done();
}
