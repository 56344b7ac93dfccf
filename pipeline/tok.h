/*
 * tok.h - the bundled trainer's tokenizer: one token per byte (0..255) plus
 * special tokens that frame chat turns.  A sample is its messages in order,
 * each as ROLE content END; the assistant's content is split into its
 * reasoning (up to and including "</think>" and the blank line after it) and
 * its answer, each with its own loss weight.  Everything outside assistant
 * content weighs 0, so the loss can only be masked to assistant tokens.
 * Pure: no I/O.
 */
#ifndef DISTILL_TOK_H
#define DISTILL_TOK_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "err.h"

enum tok_special {
	TOK_USER = 256,
	TOK_ASSISTANT = 257,
	TOK_END = 258,
	TOK_SYSTEM = 259,
	TOK_VOCAB = 260, /* vocabulary size */
};

/* A tokenized sample: ids[i] and w[i], the loss weight of predicting ids[i]
 * from what precedes it. */
struct tok_seq {
	int *ids;
	float *w;
	int n, cap;
};

void tok_seq_init(struct tok_seq *s);
void tok_seq_release(struct tok_seq *s);
void tok_seq_reset(struct tok_seq *s);

/* Append token id with weight w. */
void tok_push(struct tok_seq *s, int id, float w);

/* Append a chat: messages is a JSON array of {"role", "content"} with roles
 * system, user, assistant.  Assistant content gets w_reasoning on its
 * reasoning bytes and w_answer on its answer bytes and closing END.
 * DERR_PARSE (message says why) on a malformed array or unknown role. */
int tok_chat(struct tok_seq *s, const cJSON *messages, float w_reasoning, float w_answer, struct derr *e);

/* Append a generation prompt: [SYSTEM system END] USER user END ASSISTANT,
 * all of weight 0.  system may be NULL. */
void tok_prompt(struct tok_seq *s, const char *system, const char *user);

/* Length of the reasoning part of an assistant message: up to and including
 * "</think>" and the whitespace after it; 0 when there is no "</think>". */
size_t tok_reasoning_len(const char *content, size_t n);

/* Text of ids (bytes as is; special tokens as <|user|>, <|assistant|>,
 * <|end|>, <|system|>) into out of size len, NUL-terminated, truncated to
 * fit.  Returns the length written. */
size_t tok_decode(const int *ids, int n, char *out, size_t len);

#endif
