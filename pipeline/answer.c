/*
 * answer.c - the answer checker's front (DESIGN §5): find the final answer
 * in a response or a raw reference, then hand both strings to the math
 * comparison.  Pure: no database, no I/O, every scan bounded.
 */
#include "answer.h"
#include "buf.h"
#include "err.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bump on any change that can alter a verdict (part of the rule-set hash). */
#define ANSWER_CHECKER_VERSION "answer-1"

/* Longest answer we try to understand; longer ones are a budget status. */
#define ANSWER_MAX_LEN 4096

void answer_options_default(struct answer_options *o)
{
	o->mode = ANSWER_MODE_MATH;
	o->precision = 1e-6;
	o->strict = 0;
	o->percent = 1;
}

const char *answer_checker_version(void)
{
	return ANSWER_CHECKER_VERSION;
}

/* ---- small scanning helpers ----------------------------------------------- */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim ASCII whitespace from both ends of [*p, *p + *n). */
static void trim(const char **p, size_t *n)
{
	while (*n && is_space(**p)) {
		(*p)++;
		(*n)--;
	}
	while (*n && is_space((*p)[*n - 1]))
		(*n)--;
}

/* Last occurrence of needle (case-insensitive when icase) in s[0, n). */
static const char *rfind(const char *s, size_t n, const char *needle, int icase)
{
	size_t m = strlen(needle);
	if (m == 0 || m > n)
		return NULL;
	for (size_t i = n - m + 1; i-- > 0;) {
		if (icase ? !strncasecmp(s + i, needle, m) : !memcmp(s + i, needle, m))
			return s + i;
	}
	return NULL;
}

/*
 * The argument of a box command starting at p (just past "\boxed"): either a
 * brace group, matched with escapes (\{ \}) skipped, or a single token
 * ("\boxed 5").  Sets [*a, *a + *alen) and returns 0; -1 when unbalanced.
 */
static int box_argument(const char *p, const char *end, const char **a, size_t *alen)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end)
		return -1;
	if (*p == '{') {
		int depth = 0;
		for (const char *q = p; q < end; q++) {
			if (*q == '\\' && q + 1 < end) {
				q++;
				continue;
			}
			if (*q == '{')
				depth++;
			else if (*q == '}' && --depth == 0) {
				*a = p + 1;
				*alen = (size_t)(q - p - 1);
				return 0;
			}
		}
		return -1;
	}
	/* "\boxed 5": up to whitespace, '$' or end. */
	const char *q = p;
	while (q < end && !is_space(*q) && *q != '$')
		q++;
	if (q == p)
		return -1;
	*a = p;
	*alen = (size_t)(q - p);
	return 0;
}

/* The box commands, tried together: the last complete one wins. */
static const char *const box_names[] = {"\\boxed", "\\fbox", "\\framebox"};

/* Last complete \boxed{}/\fbox{} in s[0, n).  0 and the content, or -1. */
static int last_box(const char *s, size_t n, const char **a, size_t *alen)
{
	const char *end = s + n;
	const char *best = NULL, *ba = NULL;
	size_t bl = 0;

	for (size_t k = 0; k < ARRAY_SIZE(box_names); k++) {
		size_t m = strlen(box_names[k]);
		size_t lim = n;
		/* Walk backwards over occurrences until one is complete. */
		for (;;) {
			const char *hit = rfind(s, lim, box_names[k], 0);
			const char *ca;
			size_t cl;
			if (!hit)
				break;
			/* \boxed must not be the prefix of a longer name (\boxedfoo). */
			if (!isalpha((unsigned char)hit[m]) && !box_argument(hit + m, end, &ca, &cl)) {
				if (!best || hit > best) {
					best = hit;
					ba = ca;
					bl = cl;
				}
				break;
			}
			lim = (size_t)(hit - s);
		}
	}
	if (!best)
		return -1;
	*a = ba;
	*alen = bl;
	return 0;
}

/* The phrases that introduce a final answer, most specific first. */
static const char *const answer_phrases[] = {
	"final answer is",
	"final answer:",
	"answer is",
	"answer:",
};

/*
 * Text after the last answer phrase: to the end of its line, with markdown
 * bold and a trailing period removed.  0 and the span, or -1.
 */
static int phrase_answer(const char *s, size_t n, const char **a, size_t *alen)
{
	for (size_t k = 0; k < ARRAY_SIZE(answer_phrases); k++) {
		const char *hit = rfind(s, n, answer_phrases[k], 1);
		if (!hit)
			continue;
		const char *p = hit + strlen(answer_phrases[k]);
		const char *end = s + n;
		/* "**Answer:** 42", "Answer: **42**", "answer is: 42". */
		while (p < end && (*p == '*' || *p == ':' || *p == ' ' || *p == '\t'))
			p++;
		const char *q = p;
		while (q < end && *q != '\n')
			q++;
		size_t l = (size_t)(q - p);
		trim(&p, &l);
		while (l && (p[l - 1] == '*' || p[l - 1] == '.' || is_space(p[l - 1])))
			l--;
		if (l == 0)
			continue;
		*a = p;
		*alen = l;
		return 0;
	}
	return -1;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Last resort: the last number in the final 400 bytes of s (sign, digits with
 * thousands commas, decimals, a/b).  0 and the span, or -1.
 */
static int last_number(const char *s, size_t n, const char **a, size_t *alen)
{
	size_t lo = n > 400 ? n - 400 : 0;
	size_t i = n;
	while (i > lo && !is_digit(s[i - 1]))
		i--;
	if (i == lo)
		return -1;
	size_t e = i, b = i;
	while (b > lo && (is_digit(s[b - 1]) || ((s[b - 1] == ',' || s[b - 1] == '.' || s[b - 1] == '/') &&
						 b - 1 > lo && is_digit(s[b - 2]))))
		b--;
	if (b > lo && s[b - 1] == '-')
		b--;
	*a = s + b;
	*alen = e - b;
	return 0;
}

/* Strip a surrounding $...$, $$...$$, \(...\) or \[...\] and whitespace. */
static void strip_math_delims(const char **p, size_t *n)
{
	for (int again = 1; again;) {
		again = 0;
		trim(p, n);
		if (*n >= 2 && (*p)[0] == '$' && (*p)[*n - 1] == '$') {
			(*p)++;
			*n -= 2;
			again = 1;
		} else if (*n >= 4 && (*p)[0] == '\\' && ((*p)[1] == '(' || (*p)[1] == '[') &&
			   (*p)[*n - 2] == '\\' && ((*p)[*n - 1] == ')' || (*p)[*n - 1] == ']')) {
			*p += 2;
			*n -= 4;
			again = 1;
		}
	}
}

/* Put [p, p + n) into out, trimmed; ANSWER_BUDGET when it is too long. */
static int emit(const char *p, size_t n, struct buf *out)
{
	buf_reset(out);
	strip_math_delims(&p, &n);
	if (n > ANSWER_MAX_LEN)
		n = ANSWER_MAX_LEN;
	if (buf_append(out, p, n))
		return ANSWER_BUDGET;
	return 0;
}

/* Extraction from one part: box, then phrase, then (if allowed) a number. */
static int extract_part(const char *s, size_t n, int allow_number, struct buf *out)
{
	const char *a;
	size_t l;

	if (!s || !n)
		return ANSWER_NO_ANSWER;
	if (!last_box(s, n, &a, &l) || !phrase_answer(s, n, &a, &l) ||
	    (allow_number && !last_number(s, n, &a, &l))) {
		emit(a, l, out);
		return out->len ? 0 : ANSWER_NO_ANSWER;
	}
	return ANSWER_NO_ANSWER;
}

int answer_extract(const char *answer, size_t alen, const char *reasoning, size_t rlen, struct buf *out)
{
	buf_reset(out);
	if (!extract_part(answer, alen, 1, out))
		return 0;
	if (!extract_part(reasoning, rlen, 1, out))
		return 0;
	buf_reset(out);
	return ANSWER_NO_ANSWER;
}

/* Split a raw response at its last </think> (§4: the opening tag may be
 * missing).  Without one, a response that opens <think> is all reasoning
 * (truncated), anything else is all answer. */
static void split_response(const char *r, size_t n, const char **ans, size_t *alen, const char **rea,
			   size_t *rlen)
{
	const char *close = rfind(r, n, "</think>", 0);
	if (close) {
		*rea = r;
		*rlen = (size_t)(close - r);
		*ans = close + 8;
		*alen = n - *rlen - 8;
		return;
	}
	const char *p = r;
	size_t m = n;
	trim(&p, &m);
	if (m >= 7 && !memcmp(p, "<think>", 7)) {
		*rea = r;
		*rlen = n;
		*ans = NULL;
		*alen = 0;
		return;
	}
	*ans = r;
	*alen = n;
	*rea = NULL;
	*rlen = 0;
}

int answer_extract_reference(const char *raw, size_t n, struct buf *out)
{
	const char *a, *hash;
	size_t l;

	buf_reset(out);
	if (!raw)
		return ANSWER_GOLD_UNPARSED;
	/* GSM8K: the answer follows the last "####", separators dropped. */
	hash = rfind(raw, n, "####", 0);
	if (hash) {
		const char *p = hash + 4, *end = raw + n;
		while (p < end && *p != '\n') {
			if (*p != ',' && *p != '$' && !is_space(*p) && buf_putc(out, *p))
				return ANSWER_GOLD_UNPARSED;
			p++;
		}
		return out->len ? 0 : ANSWER_GOLD_UNPARSED;
	}
	if (!last_box(raw, n, &a, &l)) {
		emit(a, l, out);
		return out->len ? 0 : ANSWER_GOLD_UNPARSED;
	}
	/* A bare reference: one short line, as given. */
	a = raw;
	l = n;
	trim(&a, &l);
	if (l && l <= 256 && !memchr(a, '\n', l)) {
		emit(a, l, out);
		return out->len ? 0 : ANSWER_GOLD_UNPARSED;
	}
	/* A solution without a box: its "answer is" sentence, if any. */
	if (!phrase_answer(raw, n, &a, &l)) {
		emit(a, l, out);
		return out->len ? 0 : ANSWER_GOLD_UNPARSED;
	}
	return ANSWER_GOLD_UNPARSED;
}

/* ---- comparison -------------------------------------------------------------- */

static void result_set(struct answer_result *r, enum answer_status st, int equal, const char *ex, size_t n)
{
	r->status = st;
	r->equal = st == ANSWER_OK ? equal : 0;
	if (n >= sizeof(r->extracted))
		n = sizeof(r->extracted) - 1;
	if (ex && n)
		memcpy(r->extracted, ex, n);
	r->extracted[n] = '\0';
}

void answer_check_pred(const char *gold, const char *pred, const struct answer_options *o,
		       struct answer_result *r)
{
	struct answer_options def;
	int equal = 0;
	int rc;

	if (!o) {
		answer_options_default(&def);
		o = &def;
	}
	if (!pred) {
		result_set(r, ANSWER_NO_ANSWER, 0, NULL, 0);
		return;
	}
	rc = answer_compare(gold ? gold : "", strlen(gold ? gold : ""), pred, strlen(pred), o, &equal);
	result_set(r, rc, equal, pred, strlen(pred));
}

void answer_check_trace(const char *gold, const char *answer, size_t alen, const char *reasoning, size_t rlen,
			const struct answer_options *o, struct answer_result *r)
{
	struct answer_options def;
	struct buf ex = BUF_INIT(ANSWER_MAX_LEN + 1);
	int equal = 0, rc;

	if (!o) {
		answer_options_default(&def);
		o = &def;
	}
	if (answer_extract(answer, alen, reasoning, rlen, &ex)) {
		result_set(r, ANSWER_NO_ANSWER, 0, NULL, 0);
		buf_release(&ex);
		return;
	}
	rc = answer_compare(gold ? gold : "", strlen(gold ? gold : ""), ex.data, ex.len, o, &equal);
	result_set(r, rc, equal, ex.data, ex.len);
	buf_release(&ex);
}

void answer_check(const char *gold, const char *response, size_t rlen, const struct answer_options *o,
		  struct answer_result *r)
{
	const char *a, *re;
	size_t al, rl;

	if (!response) {
		result_set(r, ANSWER_NO_ANSWER, 0, NULL, 0);
		return;
	}
	split_response(response, rlen, &a, &al, &re, &rl);
	answer_check_trace(gold, a, al, re, rl, o, r);
}

/* First version: a light normalisation and an exact compare of plain
 * numbers; the full LaTeX/expression comparison replaces it. */
static void light_norm(const char *s, size_t n, struct buf *out)
{
	static const char *const drop[] = {"\\left", "\\right",	       "\\!", "\\,",
					   "\\;",    "\\displaystyle", "$",   "~"};
	buf_reset(out);
	for (size_t i = 0; i < n;) {
		size_t k;
		if (is_space(s[i])) {
			i++;
			continue;
		}
		for (k = 0; k < ARRAY_SIZE(drop); k++) {
			size_t m = strlen(drop[k]);
			if (i + m <= n && !memcmp(s + i, drop[k], m))
				break;
		}
		if (k < ARRAY_SIZE(drop)) {
			i += strlen(drop[k]);
			continue;
		}
		if (i + 6 <= n && (!memcmp(s + i, "\\dfrac", 6) || !memcmp(s + i, "\\tfrac", 6))) {
			buf_puts(out, "\\frac");
			i += 6;
			continue;
		}
		buf_putc(out, s[i]);
		i++;
	}
	while (out->len && out->data[out->len - 1] == '.')
		out->data[--out->len] = '\0';
}

static int plain_number(const char *s, long double *v)
{
	char tmp[128];
	size_t j = 0;
	char *end;
	for (; *s && j + 1 < sizeof(tmp); s++)
		if (*s != ',')
			tmp[j++] = *s;
	tmp[j] = '\0';
	if (!j)
		return -1;
	*v = strtold(tmp, &end);
	return *end ? -1 : 0;
}

int answer_compare(const char *gold, size_t glen, const char *pred, size_t plen,
		   const struct answer_options *o, int *equal)
{
	struct buf g = BUF_INIT(ANSWER_MAX_LEN * 2), p = BUF_INIT(ANSWER_MAX_LEN * 2);
	long double a, b;
	int rc = ANSWER_OK;

	(void)o;
	*equal = 0;
	if (glen > ANSWER_MAX_LEN || plen > ANSWER_MAX_LEN)
		return ANSWER_BUDGET;
	light_norm(gold, glen, &g);
	light_norm(pred, plen, &p);
	if (!g.len)
		rc = ANSWER_GOLD_UNPARSED;
	else if (!p.len)
		rc = ANSWER_NO_ANSWER;
	else if (!strcmp(buf_str(&g), buf_str(&p)))
		*equal = 1;
	else if (!plain_number(buf_str(&g), &a) && !plain_number(buf_str(&p), &b))
		*equal = a == b;
	buf_release(&g);
	buf_release(&p);
	return rc;
}
