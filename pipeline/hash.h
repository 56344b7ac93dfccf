/*
 * hash.h - fast non-cryptographic hashes (XXH3 from libxxhash, wrapped here
 * only) and SHA-256 (our own, for manifests and file identity).
 */
#ifndef DISTILL_HASH_H
#define DISTILL_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash64(const void *p, size_t n, uint64_t seed);

/* 128-bit XXH3 as 32 lowercase hex chars plus NUL (prompt and profile ids). */
void hash128_hex(const void *p, size_t n, char out[33]);

/* Combine values into one 64-bit hash (seeds, ids, split). */
uint64_t hash_mix64(uint64_t a, uint64_t b);

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t block[64];
	size_t fill;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *p, size_t n);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* Digest as 64 hex chars plus NUL. */
void sha256_hex(const void *p, size_t n, char out[65]);
void sha256_final_hex(struct sha256 *s, char out[65]);
/* SHA-256 uses the CPU's SHA instructions where it has them.  on = 0 forces
 * the portable rounds (tests compare the two); returns whether the
 * instructions are in use now.  Call before hashing, not concurrently. */
int sha256_accel(int on);

void hex_encode(const uint8_t *p, size_t n, char *out); /* out: 2n+1 */

#endif
