/*
 * mathexpr.h - the answer checker's mathematics: parse a normalised answer
 * (mathnorm.h) into a tree (numbers, variables, + - * / ^, \frac, \sqrt,
 * functions, factorials, percents, tuples, intervals, sets, matrices,
 * relations, text) and decide whether two answers are equal: exact
 * rationals where the values are rational (rat.h), evaluation at random
 * points with a tolerance where they are not, structure-wise for tuples,
 * sets (order-free), intervals (open/closed matters) and equations.
 * Pure, deterministic (fixed seeds) and bounded in nodes and steps.
 */
#ifndef DISTILL_MATHEXPR_H
#define DISTILL_MATHEXPR_H

#include <stddef.h>

struct mathexpr;

struct mathexpr_opts {
	double precision; /* relative tolerance where a decimal is involved */
	int strict;	  /* no units dropped, no equation or percent leniency */
	int percent;	  /* 50% may equal 0.5 */
};

enum mathexpr_verdict {
	MATHEXPR_NOT_EQUAL = 0,
	MATHEXPR_EQUAL = 1,
	MATHEXPR_UNPARSED = 2, /* the text is not an expression we understand */
	MATHEXPR_BUDGET = 3,   /* a node, size or step bound was hit */
};

/* Parse a normalised answer.  0 and *out (free with mathexpr_free), or
 * MATHEXPR_UNPARSED / MATHEXPR_BUDGET with *out NULL. */
int mathexpr_parse(const char *s, size_t n, const struct mathexpr_opts *o, struct mathexpr **out);
void mathexpr_free(struct mathexpr *e); /* NULL is fine */

/* Is the answer one plain number ("42", "-3.5")? */
int mathexpr_is_number(const struct mathexpr *e);

/* Compare gold with pred: MATHEXPR_EQUAL, MATHEXPR_NOT_EQUAL or
 * MATHEXPR_BUDGET. */
int mathexpr_equal(const struct mathexpr *gold, const struct mathexpr *pred, const struct mathexpr_opts *o);

#endif
