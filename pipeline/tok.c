/* tok.c - byte-level tokenizer with chat framing (see tok.h). */
#include "tok.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void tok_seq_init(struct tok_seq *s)
{
	memset(s, 0, sizeof(*s));
}

void tok_seq_release(struct tok_seq *s)
{
	free(s->ids);
	free(s->w);
	tok_seq_init(s);
}

void tok_seq_reset(struct tok_seq *s)
{
	s->n = 0;
}

void tok_push(struct tok_seq *s, int id, float w)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->ids = xrealloc(s->ids, sizeof(int) * (size_t)s->cap);
		s->w = xrealloc(s->w, sizeof(float) * (size_t)s->cap);
	}
	s->ids[s->n] = id;
	s->w[s->n] = w;
	s->n++;
}

static void push_bytes(struct tok_seq *s, const char *p, size_t n, float w)
{
	for (size_t i = 0; i < n; i++)
		tok_push(s, (unsigned char)p[i], w);
}

size_t tok_reasoning_len(const char *content, size_t n)
{
	static const char close[] = "</think>";
	size_t k = sizeof(close) - 1, end = 0;
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(content + i, close, k))
			end = i + k; /* the last closing tag */
	if (!end)
		return 0;
	while (end < n && (content[end] == '\n' || content[end] == ' ' || content[end] == '\r'))
		end++;
	return end;
}

static const struct {
	const char *role;
	int token;
} roles[] = {
	{"system", TOK_SYSTEM},
	{"user", TOK_USER},
	{"assistant", TOK_ASSISTANT},
};

int tok_chat(struct tok_seq *s, const cJSON *messages, float w_reasoning, float w_answer, struct derr *e)
{
	const cJSON *m;
	int start = s->n, i = 0;

	if (!cJSON_IsArray(messages))
		return derr_set(e, DERR_PARSE, "\"messages\" is not an array");
	cJSON_ArrayForEach(m, messages)
	{
		const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		int token = -1;
		size_t len, r;

		if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
			s->n = start;
			return derr_set(e, DERR_PARSE, "message %d lacks a string role or content", i);
		}
		for (size_t k = 0; k < ARRAY_SIZE(roles); k++)
			if (!strcmp(role->valuestring, roles[k].role))
				token = roles[k].token;
		if (token < 0) {
			s->n = start;
			return derr_set(e, DERR_PARSE, "message %d has unknown role \"%.40s\"", i,
					role->valuestring);
		}
		len = strlen(content->valuestring);
		tok_push(s, token, 0);
		if (token == TOK_ASSISTANT) {
			r = tok_reasoning_len(content->valuestring, len);
			push_bytes(s, content->valuestring, r, w_reasoning);
			push_bytes(s, content->valuestring + r, len - r, w_answer);
			tok_push(s, TOK_END, w_answer);
		} else {
			push_bytes(s, content->valuestring, len, 0);
			tok_push(s, TOK_END, 0);
		}
		i++;
	}
	return 0;
}

void tok_prompt(struct tok_seq *s, const char *system, const char *user)
{
	if (system) {
		tok_push(s, TOK_SYSTEM, 0);
		push_bytes(s, system, strlen(system), 0);
		tok_push(s, TOK_END, 0);
	}
	tok_push(s, TOK_USER, 0);
	push_bytes(s, user, strlen(user), 0);
	tok_push(s, TOK_END, 0);
	tok_push(s, TOK_ASSISTANT, 0);
}

size_t tok_decode(const int *ids, int n, char *out, size_t len)
{
	static const char *const names[] = {"<|user|>", "<|assistant|>", "<|end|>", "<|system|>"};
	size_t o = 0;
	if (!len)
		return 0;
	for (int i = 0; i < n; i++) {
		const char *p;
		size_t k;
		char b;
		if (ids[i] >= 0 && ids[i] < 256) {
			b = (char)ids[i];
			p = &b;
			k = 1;
		} else if (ids[i] >= TOK_USER && ids[i] < TOK_VOCAB) {
			p = names[ids[i] - TOK_USER];
			k = strlen(p);
		} else {
			continue;
		}
		if (o + k >= len)
			break;
		memcpy(out + o, p, k);
		o += k;
	}
	out[o] = '\0';
	return o;
}
