/*
 * fuzz_minhash.c - the tokenizer, shingles, signatures and n-gram matching
 * on arbitrary bytes (teacher text and benchmark problems are untrusted):
 * never crash or read out of bounds; every token span lies inside the input;
 * the vector and scalar tokenizers and signatures agree; a text always matches itself as a
 * benchmark problem when it has a word.
 */
#include "decontam.h"
#include "minhash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct minhash_params p;
	struct minhash m;
	uint32_t s1[MINHASH_PERM], s2[MINHASH_PERM];
	const char *text = (const char *)data, *item, *ngram;
	struct decontam *d;
	struct derr e = {0};

	minhash_params_default(&p);
	p.shingle = 1 + (size ? data[0] % 8 : 0);
	minhash_init(&m, &p);
	minhash_shingle(&m, text, size);
	for (size_t i = 0; i < m.tok.n; i++)
		if ((size_t)m.tok.off[i] + m.tok.len[i] > size || m.tok.len[i] == 0)
			abort();
	minhash_signature(&m, m.sh, m.nsh, s1);
	minhash_signature_scalar(&m, m.sh, m.nsh, s2);
	if (memcmp(s1, s2, sizeof(s1)) != 0)
		abort();
	minhash_shingle_set(&m);
	for (size_t i = 1; i < m.nsh; i++)
		if (m.sh[i - 1] >= m.sh[i])
			abort();
	if (minhash_jaccard(m.sh, m.nsh, m.sh, m.nsh) != 1.0)
		abort();
	/* The vector tokenizer equals the scalar one. */
	{
		struct minhash_tokens v;
		minhash_tokens_init(&v);
		for (unsigned fl = 0; fl < 2; fl++) {
			minhash_tokenize(&m.tok, text, size, fl);
			minhash_tokenize_scalar(&v, text, size, fl);
			if (v.n != m.tok.n)
				abort();
			for (size_t i = 0; i < v.n; i++)
				if (v.hash[i] != m.tok.hash[i] || v.off[i] != m.tok.off[i] ||
				    v.len[i] != m.tok.len[i])
					abort();
		}
		minhash_tokens_release(&v);
	}
	minhash_release(&m);

	d = decontam_new(p.shingle);
	if (decontam_add_benchmark(d, "fuzz", "0", &e) != 0)
		abort();
	decontam_add_item(d, 0, "self", text, size);
	minhash_tokens_init(&m.tok);
	minhash_tokenize(&m.tok, text, size, 0);
	if (m.tok.n > 0 && decontam_match(d, 0, text, size, &item, &ngram) != 1)
		abort();
	minhash_tokens_release(&m.tok);
	decontam_free(d);
	return 0;
}
