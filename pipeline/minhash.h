/*
 * minhash.h - MinHash signatures over word shingles, LSH band keys and exact
 * Jaccard, the building blocks of near-duplicate detection (dedup.c) and of
 * the word n-grams of decontamination (decontam.c).  Pure computation: no
 * database, no I/O.
 *
 * Tokens: maximal runs of ASCII letters and digits and of non-ASCII
 * characters, ASCII lower-cased.  Digits stay inside tokens, so texts that
 * differ only in their numbers have different shingles.  White space, ASCII
 * punctuation and the Unicode general punctuation block (U+2000-U+206F, plus
 * U+00A0) separate tokens.  With MINHASH_TOK_SYMBOLS each ASCII symbol
 * (+ - * / = < > ( ) ...) is also a token of its own, so "3+4" and "3*4"
 * differ; dedup uses that, decontamination does not.
 *
 * Hashing (MINHASH_SCHEME 2): a shingle of k consecutive tokens hashes to
 * the polynomial sum_j h_j P^(k-1-j) mod 2^64 of its tokens' 64-bit hashes,
 * rolled along the text with two multiplies per shingle.  Permutation i maps
 * the high 32 bits x of a shingle hash to a_i x + b_i mod 2^32 (a_i odd: a
 * bijection; the minimum is decided by the high bits of a_i x, a
 * multiply-shift hash of x), eight permutations per AVX2 instruction.
 */
#ifndef DISTILL_MINHASH_H
#define DISTILL_MINHASH_H

#include <stddef.h>
#include <stdint.h>

#define MINHASH_PERM 128 /* permutations per signature */

/* The signature scheme: shingle hashing and permutations.  Signatures and
 * band keys of another scheme are not comparable; dedup stores this with its
 * index and rebuilds an index made under another.  Scheme 1 hashed shingles
 * with hash64 and permuted 64-bit keys; scheme 2 is described above. */
#define MINHASH_SCHEME 2
#define MINHASH_MAX_BANDS MINHASH_PERM

enum minhash_tok_flags {
	MINHASH_TOK_SYMBOLS = 1 << 0, /* ASCII symbols are tokens too */
};

/* Tokens of a text: 64-bit hash of each (lower-cased) token and its byte
 * span in the text.  Reused across calls; _release frees it. */
struct minhash_tokens {
	uint64_t *hash;
	uint32_t *off, *len;
	size_t n, cap;
};

void minhash_tokens_init(struct minhash_tokens *t);
void minhash_tokens_release(struct minhash_tokens *t);

/* Tokenise p[0..n) into t (reset first).  Texts over 4 GiB are cut at
 * 4 GiB (spans are 32-bit).  Never fails: allocation aborts on OOM. */
void minhash_tokenize(struct minhash_tokens *t, const char *p, size_t n, unsigned flags);

/* The same with the portable code path only (tests compare the two). */
void minhash_tokenize_scalar(struct minhash_tokens *t, const char *p, size_t n, unsigned flags);

/* Parameters.  Defaults (minhash_params_default): 5-token shingles, symbols
 * as tokens, threshold 0.8, and the band layout minhash_params_set_threshold
 * picks for it (21 bands of 6 rows). */
struct minhash_params {
	int shingle;	  /* tokens per shingle, >= 1 */
	unsigned flags;	  /* MINHASH_TOK_* */
	double threshold; /* Jaccard at or above which two texts are near duplicates */
	int bands, rows;  /* bands * rows <= MINHASH_PERM */
	uint64_t seed;	  /* permutation seed (fixed: signatures are stored) */
};

void minhash_params_default(struct minhash_params *p);

/* Set the threshold and pick the band layout for it: the most rows per band
 * (fewest spurious candidates) such that a pair at exactly the threshold
 * becomes a candidate with probability >= 0.99, bands = 128 / rows.
 * Returns 0, or -1 when t is not in (0, 1]. */
int minhash_params_set_threshold(struct minhash_params *p, double t);

/* Probability that a pair of Jaccard j shares at least one band key. */
double minhash_candidate_prob(int bands, int rows, double j);

/* A hasher: the permutations drawn from params->seed, and scratch space. */
struct minhash {
	struct minhash_params p;
	uint32_t a[MINHASH_PERM], b[MINHASH_PERM]; /* permutation i: x -> a[i] x + b[i] mod 2^32 */
	struct minhash_tokens tok;
	uint64_t *sh; /* shingle hashes of the last text */
	size_t nsh, capsh;
};

void minhash_init(struct minhash *m, const struct minhash_params *p);
void minhash_release(struct minhash *m);

/* Shingle hashes of a text into m->sh (m->nsh of them, with repeats, in text
 * order).  A text with fewer tokens than the shingle size is one shingle of
 * all its tokens; a text without tokens has none.  Returns m->nsh. */
size_t minhash_shingle(struct minhash *m, const char *p, size_t n);

/* Sort and de-duplicate m->sh in place (the set exact Jaccard needs). */
size_t minhash_shingle_set(struct minhash *m);

/* The signature of a shingle multiset (order and repeats do not matter).
 * With no shingles every entry is UINT32_MAX. */
void minhash_signature(const struct minhash *m, const uint64_t *sh, size_t n, uint32_t sig[MINHASH_PERM]);

/* The signature with the portable code path only (tests compare the two). */
void minhash_signature_scalar(const struct minhash *m, const uint64_t *sh, size_t n,
			      uint32_t sig[MINHASH_PERM]);

/* LSH band keys: keys[i] hashes rows [i*rows, (i+1)*rows) of sig with the
 * band number and group (items of different groups never share keys; traces
 * use their prompt id).  keys has m->p.bands entries. */
void minhash_bands(const struct minhash *m, const uint32_t sig[MINHASH_PERM], uint64_t group, uint32_t *keys);

/* Exact Jaccard of two sorted, de-duplicated sets; 1.0 when both are empty. */
double minhash_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb);

#endif
