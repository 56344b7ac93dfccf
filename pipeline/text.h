/*
 * text.h - UTF-8 validation and repair, and the versioned prompt
 * normalisation (NFC with utf8proc, whitespace collapsed) whose hash is a
 * prompt's identity (DESIGN §13).  The only module that touches utf8proc.
 */
#ifndef DISTILL_TEXT_H
#define DISTILL_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/* Bump when the normalisation changes; stored with every prompt. */
#define TEXT_NORM_VERSION 1

/* 1 if p[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int utf8_valid(const char *p, size_t n);

/* Characters (code points) in n bytes of UTF-8: every byte that is not a
 * continuation byte.  Exact for valid text, which stored text is. */
size_t utf8_count(const char *p, size_t n);

/* Copy p into out, replacing each invalid sequence with U+FFFD.  Returns
 * the number of replacements (0: the text was valid), or DERR_LIMIT. */
long utf8_repair(const char *p, size_t n, struct buf *out);

/* Decode one code point at p (n bytes left); returns its length (1 for an
 * invalid byte, with *cp = 0xFFFD). */
int utf8_decode(const char *p, size_t n, uint32_t *cp);

/* Normalise a prompt: NFC, then runs of Unicode white space become one
 * space, leading and trailing space dropped.  out is reset first.  Returns 0,
 * DERR_UTF8 on invalid input, or DERR_LIMIT. */
int text_normalize(const char *p, size_t n, struct buf *out);

/* The prompt identity: 32 hex chars of XXH3-128 over the normalised text. */
int text_prompt_hash(const char *p, size_t n, char out[33]);

#endif
