/*
 * teacher.h - the OpenAI chat-completions protocol as distill speaks it
 * (DESIGN §4, §13 "Seeds", "Streaming", "Text"): request bodies built from a
 * generation profile, the SSE parser that reassembles a streamed answer into
 * the final JSON body, and the response parser that finds the reasoning in
 * any of its four placements.  Parsers of untrusted bytes: each has a fuzz
 * target.  No I/O here; the worker moves the bytes.
 */
#ifndef DISTILL_TEACHER_H
#define DISTILL_TEACHER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* DeepSeek's recommended user prompt for R1-style reasoning. */
#define TEACHER_DEFAULT_TEMPLATE \
	"{prompt}\nPlease reason step by step, and put your final answer within \\boxed{}."

/* A generation profile (DESIGN §13): immutable once bound. */
struct teacher_profile {
	char *name;
	char *model;
	char *system;	/* NULL: no system message */
	char *template; /* contains {prompt} */
	double temperature, top_p;
	int64_t max_tokens; /* 0: not sent */
	uint64_t seed;
};

/* The seed of sample k of a prompt: H(profile seed, prompt hash, k), kept
 * within 31 bits so that every server accepts it. */
uint64_t teacher_seed(uint64_t profile_seed, const char *prompt_hash, int k);

/* The user message: the template with each {prompt} replaced.  Appends to out. */
int teacher_user_message(const char *template, const char *prompt, struct buf *out);

/* Append the JSON request body for sample k of prompt to out: model,
 * messages (optional system + templated user), temperature, top_p,
 * max_tokens, seed, and with stream != 0 "stream": true and
 * stream_options.include_usage.  0 or DERR_LIMIT. */
int teacher_request_body(const struct teacher_profile *p, const char *prompt, const char *prompt_hash, int k,
			 int stream, struct buf *out);

/* Canonical JSON of a profile's definition (fixed key order, shortest
 * numbers) appended to out; its hash identifies the profile. */
int teacher_profile_canonical(const struct teacher_profile *p, struct buf *out);

/* --- streaming (server-sent events) --------------------------------- */

/* Incremental SSE parser: feed bytes as they arrive, in any split.  It
 * accumulates the deltas (content, reasoning_content, reasoning), the
 * finish_reason, usage, id and model.  Every text field is capped at max
 * bytes (DERR_LIMIT beyond). */
struct teacher_sse {
	struct buf line; /* the partial line */
	struct buf data; /* the data of the current event */
	struct buf content, reasoning_content, reasoning;
	char *id, *model, *finish_reason, *usage_json;
	char *error_json; /* an {"error": ...} event */
	int has_reasoning_content, has_reasoning;
	int done;   /* [DONE] seen */
	int events; /* data events parsed */
};

void teacher_sse_init(struct teacher_sse *s, size_t max);
void teacher_sse_release(struct teacher_sse *s);
/* 0, DERR_TEACHER_MALFORMED (an event that is not JSON), or DERR_LIMIT. */
int teacher_sse_feed(struct teacher_sse *s, const char *p, size_t n);
/* End of stream: flush a last event and append the reassembled chat
 * completion JSON (the same shape as a non-streamed body) to out.
 * DERR_TEACHER_MALFORMED when no event came or the stream carried an error. */
int teacher_sse_finish(struct teacher_sse *s, struct buf *out, struct derr *e);

/* --- responses ------------------------------------------------------ */

/* Where the reasoning was found (DESIGN §4). */
enum teacher_placement {
	TP_NONE,
	TP_REASONING_CONTENT,
	TP_REASONING,
	TP_THINK_TAGS,
	TP_CLOSE_TAG_ONLY,
};
const char *teacher_placement_name(enum teacher_placement p);

struct teacher_response {
	char *reasoning, *answer; /* valid UTF-8 (repaired), never NULL after success */
	enum teacher_placement placement;
	int think_closed;  /* 0 when <think> was opened and never closed */
	int utf8_repaired; /* invalid sequences were replaced with U+FFFD */
	char *finish_reason, *id, *model;
	int64_t prompt_tokens, completion_tokens; /* -1 when absent */
};

void teacher_response_release(struct teacher_response *r);

/* Parse a (non-streamed or reassembled) chat completion body.  On failure
 * DERR_TEACHER_MALFORMED with the reason in e, and r holds nothing. */
int teacher_parse_response(const char *body, size_t n, struct teacher_response *r, struct derr *e);

/* Split a message into reasoning and answer: reasoning_content or reasoning
 * fields win (either may be NULL), else <think>...</think> in content, else
 * a lone closing </think>, else no reasoning.  Used for responses and for
 * imported traces.  Fills reasoning, answer, placement, think_closed,
 * utf8_repaired. */
int teacher_split(const char *content, size_t content_len, const char *reasoning_content,
		  const char *reasoning, struct teacher_response *r);

#endif
