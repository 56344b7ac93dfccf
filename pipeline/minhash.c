/* minhash.c - tokens, shingles, MinHash signatures, LSH bands (see minhash.h). */
#include "minhash.h"
#include "hash.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MINHASH_X86 1
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define LITTLE_ENDIAN_HOST 0
#else
#define LITTLE_ENDIAN_HOST 1
#endif

#define BAND_SEED 0x42414e444b455931ull

void minhash_tokens_init(struct minhash_tokens *t)
{
	memset(t, 0, sizeof(*t));
}

void minhash_tokens_release(struct minhash_tokens *t)
{
	free(t->hash);
	free(t->off);
	free(t->len);
	minhash_tokens_init(t);
}

/* Room for at least `more` further tokens. */
static void tokens_reserve(struct minhash_tokens *t, size_t more)
{
	size_t cap = t->cap ? t->cap : 256;
	if (t->cap - t->n >= more)
		return;
	while (cap - t->n < more)
		cap *= 2;
	t->hash = xrealloc(t->hash, cap * sizeof(*t->hash));
	t->off = xrealloc(t->off, cap * sizeof(*t->off));
	t->len = xrealloc(t->len, cap * sizeof(*t->len));
	t->cap = cap;
}

static void tokens_push(struct minhash_tokens *t, uint64_t h, size_t off, size_t len)
{
	if (t->n == t->cap)
		tokens_reserve(t, 1);
	t->hash[t->n] = h;
	t->off[t->n] = (uint32_t)off;
	t->len[t->n] = (uint32_t)len;
	t->n++;
}

/* Byte classes: 0 separator, 1 token byte (ASCII letter or digit, or any
 * byte of a non-ASCII character), 2 ASCII symbol (a token of its own under
 * MINHASH_TOK_SYMBOLS, else a separator). */
static const unsigned char byte_class[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
	2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
	2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Length of a non-ASCII separator at p (NBSP, U+2000-U+206F), else 0. */
static inline size_t unicode_sep(const unsigned char *p, size_t left)
{
	if (p[0] < 0x80)
		return 0;
	if (left >= 2 && p[0] == 0xC2 && p[1] == 0xA0)
		return 2;
	if (left >= 3 && p[0] == 0xE2 && (p[1] == 0x80 || p[1] == 0x81) && (p[2] & 0xC0) == 0x80)
		return 3;
	return 0;
}

static inline uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

/* Up to 8 token bytes as a little-endian word, ASCII lower-cased.  Token
 * bytes are letters, digits or >= 0x80: setting 0x20 on every byte below
 * 0x80 lowers A-Z and leaves digits and a-z as they are. */
static inline uint64_t lower_word(const unsigned char *p, size_t n, size_t avail)
{
	uint64_t v = 0, keep = n >= 8 ? ~0ull : ((1ull << (8 * n)) - 1);
	if (avail >= 8) {
		memcpy(&v, p, 8); /* one load; bytes past the token are masked off */
		if (!LITTLE_ENDIAN_HOST)
			v = __builtin_bswap64(v);
		v &= keep;
	} else {
		for (size_t i = 0; i < n && i < 8; i++)
			v |= (uint64_t)p[i] << (8 * i);
	}
	return v | (((~v & 0x8080808080808080ull) >> 2) & keep);
}

/* Hash of a token, ASCII lower-cased; a bijection for tokens up to 7 bytes
 * (most words), so those never collide. */
static inline uint64_t token_hash(const unsigned char *p, size_t n, size_t avail)
{
	uint64_t h = 0x746f6b656e686173ull;
	size_t len = n;
	if (n < 8)
		return fmix64(lower_word(p, n, avail) ^ ((uint64_t)n << 56));
	while (n >= 8) {
		h = fmix64(h ^ lower_word(p, 8, avail)) * 0x9e3779b97f4a7c15ull;
		p += 8;
		n -= 8;
		avail -= 8;
	}
	if (n)
		h = fmix64(h ^ lower_word(p, n, avail)) * 0x9e3779b97f4a7c15ull;
	return fmix64(h ^ len);
}

/* The hash of the token p[start, start + len): a word as token_hash, a
 * symbol (sym = 1) as itself, not case-folded.  Words under 8 bytes and
 * symbols with 8 bytes readable take one load and no branch on the kind. */
static inline uint64_t any_token_hash(const unsigned char *p, size_t n, size_t start, size_t len,
				      uint64_t sym)
{
	if (len < 8 && n - start >= 8) {
		uint64_t v, keep = ~0ull >> (64 - 8 * len), word = sym - 1; /* all ones for a word */
		memcpy(&v, p + start, 8);
		if (!LITTLE_ENDIAN_HOST)
			v = __builtin_bswap64(v);
		v &= keep;
		v |= ((~v & 0x8080808080808080ull) >> 2) & keep & word;
		return fmix64(v ^ (((len & word) | (0x53 & ~word)) << 56));
	}
	if (sym)
		return fmix64(p[start] ^ (0x53ull << 56));
	return token_hash(p + start, len, n - start);
}

void minhash_tokenize_scalar(struct minhash_tokens *t, const char *text, size_t n, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = 0;

	t->n = 0;
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	while (i < n) {
		unsigned char cls = byte_class[p[i]];
		if (cls == 0) {
			i++;
			continue;
		}
		if (cls == 2) {
			if (flags & MINHASH_TOK_SYMBOLS)
				tokens_push(t, fmix64(p[i] ^ (0x53ull << 56)), i, 1); /* not case-folded */
			i++;
			continue;
		}
		size_t s = unicode_sep(p + i, n - i);
		if (s) {
			i += s;
			continue;
		}
		size_t start = i;
		while (i < n && byte_class[p[i]] == 1 && (p[i] < 0x80 || !unicode_sep(p + i, n - i)))
			i++;
		tokens_push(t, token_hash(p + start, i - start, n - start), start, i - start);
	}
}

#ifdef MINHASH_X86
/* The same tokens from bit masks of 64-byte blocks: W marks token bytes,
 * S symbols.  Token ends are found with a count of trailing zeros instead
 * of a branch per byte.  Non-ASCII separators are cleared from W by a scan
 * of the lead bytes in text order that skips bytes an earlier separator
 * consumed, exactly as the scalar loop visits them. */
__attribute__((target("avx2,bmi"))) static void
tokenize_avx2(struct minhash_tokens *t, const unsigned char *p, size_t n, unsigned flags)
{
	const __m256i lo_a = _mm256_set1_epi8('a' - 1), hi_z = _mm256_set1_epi8('z' + 1);
	const __m256i lo_0 = _mm256_set1_epi8('0' - 1), hi_9 = _mm256_set1_epi8('9' + 1);
	const __m256i sp = _mm256_set1_epi8(' '), del = _mm256_set1_epi8(0x7f), bit5 = _mm256_set1_epi8(0x20);
	size_t consumed = 0; /* bytes before this offset were eaten by a separator */
	size_t start = 0;
	int open = 0;

	t->n = 0;
	for (size_t base = 0; base < n; base += 64) {
		size_t len = n - base < 64 ? n - base : 64;
		uint64_t W = 0, S = 0, HI = 0;

		if (len == 64) {
			for (int h = 0; h < 2; h++) {
				__m256i v = _mm256_loadu_si256((const __m256i *)(p + base + 32 * (size_t)h));
				__m256i low = _mm256_or_si256(v, bit5);
				__m256i letter = _mm256_and_si256(_mm256_cmpgt_epi8(low, lo_a),
								  _mm256_cmpgt_epi8(hi_z, low));
				__m256i digit = _mm256_and_si256(_mm256_cmpgt_epi8(v, lo_0),
								 _mm256_cmpgt_epi8(hi_9, v));
				__m256i print =
					_mm256_and_si256(_mm256_cmpgt_epi8(v, sp), _mm256_cmpgt_epi8(del, v));
				uint64_t w = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(letter, digit));
				uint64_t pr = (uint32_t)_mm256_movemask_epi8(print);
				uint64_t hi = (uint32_t)_mm256_movemask_epi8(v);
				W |= (w | hi) << (32 * h);
				S |= (pr & ~w) << (32 * h);
				HI |= hi << (32 * h);
			}
		} else {
			for (size_t i = 0; i < len; i++) {
				unsigned char c = byte_class[p[base + i]];
				W |= (uint64_t)(c == 1) << i;
				S |= (uint64_t)(c == 2) << i;
				HI |= (uint64_t)(p[base + i] >= 0x80) << i;
			}
		}
		/* Bytes of a separator that started in the previous block. */
		if (consumed > base) {
			size_t k = consumed - base;
			W &= k >= 64 ? 0 : ~0ull << k;
			S &= k >= 64 ? 0 : ~0ull << k;
		}
		for (uint64_t h = HI; h; h &= h - 1) {
			size_t i = base + (size_t)__builtin_ctzll(h), k;
			if (i < consumed || (p[i] != 0xC2 && p[i] != 0xE2))
				continue;
			k = unicode_sep(p + i, n - i);
			if (!k)
				continue;
			consumed = i + k;
			for (size_t j = i; j < consumed && j < base + 64; j++) {
				W &= ~(1ull << (j - base));
				S &= ~(1ull << (j - base));
			}
		}
		if (!(flags & MINHASH_TOK_SYMBOLS))
			S = 0;
		/* Token starts and last bytes: a word run starts where the byte
		 * before is no word byte and ends where the byte after is none;
		 * a symbol is both.  A word still running at bit 63 has no last
		 * byte here: it stays open into the next block. */
		uint64_t ST = (W & ~((W << 1) | (uint64_t)open)) | S;
		uint64_t L = ((W & ~(W >> 1)) & ~(W & (1ull << 63))) | S;
		tokens_reserve(t, 65); /* at most 64 starts and one word closed */
		/* Locals: stores through hash/off/len cannot then alias t. */
		uint64_t *th = t->hash;
		uint32_t *to = t->off, *tl = t->len;
		size_t tn = t->n;
		if (open) {
			if (!~W)
				continue; /* the word runs through the whole block */
			unsigned z = (unsigned)__builtin_ctzll(~W);
			size_t wl = base + z - start;
			th[tn] = any_token_hash(p, n, start, wl, 0);
			to[tn] = (uint32_t)start;
			tl[tn] = (uint32_t)wl;
			tn++;
			if (z)
				L &= L - 1;
			open = 0;
		}
		while (ST) {
			unsigned s0 = (unsigned)__builtin_ctzll(ST);
			ST &= ST - 1;
			if (!L) { /* only the last start can lack its end */
				open = 1;
				start = base + s0;
				break;
			}
			unsigned e = (unsigned)__builtin_ctzll(L) + 1;
			L &= L - 1;
			th[tn] = any_token_hash(p, n, base + s0, e - s0, S >> s0 & 1);
			to[tn] = (uint32_t)(base + s0);
			tl[tn] = e - s0;
			tn++;
		}
		t->n = tn;
	}
	if (open)
		tokens_push(t, token_hash(p + start, n - start, n - start), start, n - start);
}
#endif

void minhash_tokenize(struct minhash_tokens *t, const char *text, size_t n, unsigned flags)
{
	if (n > UINT32_MAX)
		n = UINT32_MAX;
#ifdef MINHASH_X86
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi")) {
		tokenize_avx2(t, (const unsigned char *)text, n, flags);
		return;
	}
#endif
	minhash_tokenize_scalar(t, text, n, flags);
}

void minhash_params_default(struct minhash_params *p)
{
	p->shingle = 5;
	p->flags = MINHASH_TOK_SYMBOLS;
	p->seed = 0x6d696e6861736831ull;
	minhash_params_set_threshold(p, 0.8);
}

double minhash_candidate_prob(int bands, int rows, double j)
{
	return 1.0 - pow(1.0 - pow(j, rows), bands);
}

int minhash_params_set_threshold(struct minhash_params *p, double t)
{
	if (!(t > 0.0 && t <= 1.0))
		return -1;
	p->threshold = t;
	p->rows = 1;
	p->bands = MINHASH_PERM;
	for (int r = MINHASH_PERM; r >= 1; r--) {
		if (minhash_candidate_prob(MINHASH_PERM / r, r, t) >= 0.99) {
			p->rows = r;
			p->bands = MINHASH_PERM / r;
			break;
		}
	}
	return 0;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void minhash_init(struct minhash *m, const struct minhash_params *p)
{
	uint64_t s;

	memset(m, 0, sizeof(*m));
	m->p = *p;
	s = p->seed;
	for (int i = 0; i < MINHASH_PERM; i++) {
		m->a[i] = (uint32_t)(splitmix64(&s) >> 32) | 1u; /* odd: a bijection of 32-bit keys */
		m->b[i] = (uint32_t)(splitmix64(&s) >> 32);
	}
	minhash_tokens_init(&m->tok);
}

void minhash_release(struct minhash *m)
{
	minhash_tokens_release(&m->tok);
	free(m->sh);
	m->sh = NULL;
	m->nsh = m->capsh = 0;
}

/* Shingle hashes: the polynomial sum_j h_(i+j) P^(k-1-j) mod 2^64 of the k
 * token hashes, rolled from one shingle to the next with two multiplies
 * instead of rehashing k words.  Token hashes are fmix64 outputs, so the sum
 * of their multiples is uniform and two different shingles collide with
 * probability about 2^-64; its high 32 bits are the signature key. */
#define SHINGLE_P 0x9e3779b97f4a7c15ull /* odd */

size_t minhash_shingle(struct minhash *m, const char *p, size_t n)
{
	struct minhash_tokens *t = &m->tok;
	size_t k = (size_t)m->p.shingle, count;
	const uint64_t *h;
	uint64_t s = 0, pk = 1;

	minhash_tokenize(t, p, n, m->p.flags);
	h = t->hash;
	m->nsh = 0;
	if (t->n == 0)
		return 0;
	count = t->n >= k ? t->n - k + 1 : 1;
	if (count > m->capsh) {
		m->capsh = count + count / 2;
		m->sh = xrealloc(m->sh, m->capsh * sizeof(*m->sh));
	}
	if (t->n < k) {
		for (size_t i = 0; i < t->n; i++)
			s = s * SHINGLE_P + h[i];
		m->sh[0] = s;
	} else {
		for (size_t j = 0; j < k; j++) {
			s = s * SHINGLE_P + h[j];
			if (j + 1 < k)
				pk *= SHINGLE_P;
		}
		m->sh[0] = s;
		for (size_t i = 1; i < count; i++) {
			s = (s - h[i - 1] * pk) * SHINGLE_P + h[i + k - 1];
			m->sh[i] = s;
		}
	}
	m->nsh = count;
	return count;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

size_t minhash_shingle_set(struct minhash *m)
{
	size_t j = 0;
	if (m->nsh == 0)
		return 0;
	qsort(m->sh, m->nsh, sizeof(*m->sh), cmp_u64);
	for (size_t i = 1; i < m->nsh; i++)
		if (m->sh[i] != m->sh[j])
			m->sh[++j] = m->sh[i];
	m->nsh = j + 1;
	return m->nsh;
}

void minhash_signature_scalar(const struct minhash *m, const uint64_t *sh, size_t n,
			      uint32_t sig[MINHASH_PERM])
{
	for (int i = 0; i < MINHASH_PERM; i++)
		sig[i] = UINT32_MAX;
	for (size_t k = 0; k < n; k++) {
		uint32_t x = (uint32_t)(sh[k] >> 32);
		for (int i = 0; i < MINHASH_PERM; i++) {
			uint32_t h = m->a[i] * x + m->b[i];
			if (h < sig[i])
				sig[i] = h;
		}
	}
}

#ifdef MINHASH_X86
/* The same arithmetic, eight permutations per instruction (32-bit lanes:
 * _mm256_mullo_epi32 is the multiplication mod 2^32).  The permutations go
 * in blocks of MINHASH_BLOCK: their multipliers, offsets and minima stay in
 * registers while the loop runs over every shingle key. */
#define MINHASH_BLOCK 32

__attribute__((target("avx2"))) static void signature_avx2(const struct minhash *m, const uint64_t *sh,
							   size_t n, uint32_t sig[MINHASH_PERM])
{
	for (int base = 0; base < MINHASH_PERM; base += MINHASH_BLOCK) {
		__m256i a[MINHASH_BLOCK / 8], b[MINHASH_BLOCK / 8], acc[MINHASH_BLOCK / 8];
		for (int v = 0; v < MINHASH_BLOCK / 8; v++) {
			a[v] = _mm256_loadu_si256((const __m256i *)(m->a + base + 8 * v));
			b[v] = _mm256_loadu_si256((const __m256i *)(m->b + base + 8 * v));
			acc[v] = _mm256_set1_epi32(-1);
		}
		for (size_t k = 0; k < n; k++) {
			__m256i x = _mm256_set1_epi32((int)(uint32_t)(sh[k] >> 32));
			for (int v = 0; v < MINHASH_BLOCK / 8; v++)
				acc[v] = _mm256_min_epu32(
					acc[v], _mm256_add_epi32(_mm256_mullo_epi32(a[v], x), b[v]));
		}
		for (int v = 0; v < MINHASH_BLOCK / 8; v++)
			_mm256_storeu_si256((__m256i *)(sig + base + 8 * v), acc[v]);
	}
}
#endif

void minhash_signature(const struct minhash *m, const uint64_t *sh, size_t n, uint32_t sig[MINHASH_PERM])
{
#ifdef MINHASH_X86
	if (__builtin_cpu_supports("avx2")) {
		signature_avx2(m, sh, n, sig);
		return;
	}
#endif
	minhash_signature_scalar(m, sh, n, sig);
}

void minhash_bands(const struct minhash *m, const uint32_t sig[MINHASH_PERM], uint64_t group, uint32_t *keys)
{
	uint64_t seed = hash_mix64(BAND_SEED, group);
	for (int i = 0; i < m->p.bands; i++)
		keys[i] = (uint32_t)hash64(sig + (size_t)i * (size_t)m->p.rows,
					   (size_t)m->p.rows * sizeof(uint32_t), seed + (uint64_t)i);
}

double minhash_jaccard(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	size_t i = 0, j = 0, inter = 0;
	if (na == 0 && nb == 0)
		return 1.0;
	while (i < na && j < nb) {
		if (a[i] < b[j]) {
			i++;
		} else if (a[i] > b[j]) {
			j++;
		} else {
			inter++;
			i++;
			j++;
		}
	}
	return (double)inter / (double)(na + nb - inter);
}
