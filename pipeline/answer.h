/*
 * answer.h - the answer checker (DESIGN §5): extract a final answer from a
 * response, extract a clean reference from a raw one, and decide
 * equivalence.  Pure: no database, no I/O.  Every call is bounded in time
 * and memory; the budget status says a bound was hit.
 */
#ifndef DISTILL_ANSWER_H
#define DISTILL_ANSWER_H

#include <stddef.h>

struct buf;

enum answer_status {
	ANSWER_OK,	      /* equal is meaningful */
	ANSWER_NO_ANSWER,     /* nothing extractable from the response */
	ANSWER_GOLD_UNPARSED, /* the reference could not be understood */
	ANSWER_BUDGET,	      /* a time or size bound was hit */
};

enum answer_mode { ANSWER_MODE_MATH, ANSWER_MODE_MCQ, ANSWER_MODE_NUMBER };

struct answer_options {
	enum answer_mode mode;
	double precision; /* relative tolerance for decimals */
	int strict;	  /* no lenient conventions (units, percent, equations) */
	int percent;	  /* 1: "50%" may equal 0.5 */
};

struct answer_result {
	enum answer_status status;
	int equal;	     /* 0/1, meaningful when status == ANSWER_OK */
	char extracted[512]; /* the extracted prediction, truncated */
};

void answer_options_default(struct answer_options *o);

/* Version string of the checker; part of the rule-set hash, so bump it on
 * any change that can alter a verdict. */
const char *answer_checker_version(void);

/* Extract the final answer from a response: the answer part (after the
 * reasoning) first, then the reasoning.  0 and the answer in out (reset
 * first), or ANSWER_NO_ANSWER. */
int answer_extract(const char *answer, size_t alen, const char *reasoning, size_t rlen, struct buf *out);

/* Compare a gold answer with a response (extracting from it) or with a bare
 * prediction (pred != NULL: no extraction). */
void answer_check(const char *gold, const char *response, size_t rlen, const struct answer_options *o,
		  struct answer_result *r);
void answer_check_pred(const char *gold, const char *pred, const struct answer_options *o,
		       struct answer_result *r);
/* The same, for a stored trace's two parts. */
void answer_check_trace(const char *gold, const char *answer, size_t alen, const char *reasoning, size_t rlen,
			const struct answer_options *o, struct answer_result *r);

/* Compare two already-extracted answers (gold, then prediction).  Returns
 * ANSWER_OK with *equal set, ANSWER_GOLD_UNPARSED, ANSWER_NO_ANSWER (empty
 * prediction) or ANSWER_BUDGET. */
int answer_compare(const char *gold, size_t glen, const char *pred, size_t plen,
		   const struct answer_options *o, int *equal);

/* Clean reference from a raw one as ingested: GSM8K "... #### 42" -> "42",
 * the last \boxed{} of a solution, surrounding $...$ stripped.  0, or
 * ANSWER_GOLD_UNPARSED when nothing usable is found. */
int answer_extract_reference(const char *raw, size_t n, struct buf *out);

#endif
