/*
 * answer.c - the answer checker's front (DESIGN §5): find the final answer
 * in a response or a raw reference, then hand both strings to the math
 * comparison.  Pure: no database, no I/O, every scan bounded.
 */
#include "answer.h"
#include "buf.h"
#include "err.h"
#include "mathexpr.h"
#include "mathnorm.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bump on any change that can alter a verdict (part of the rule-set hash). */
#define ANSWER_CHECKER_VERSION "answer-5"

/* Longest answer we try to understand; longer ones are a budget status. */
#define ANSWER_MAX_LEN 4096
/* How far a box's closing brace is looked for, and how many unclosed boxes
 * are passed over before giving up on boxes. */
#define BOX_SCAN_MAX (2 * ANSWER_MAX_LEN)
#define BOX_TRIES_MAX 64

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

/* Last occurrence of needle (case-insensitive when icase) in s[0, n).
 * Candidates are found by their first byte (memrchr), so a miss costs one
 * pass over s. */
static const char *rfind(const char *s, size_t n, const char *needle, int icase)
{
	size_t m = strlen(needle);
	unsigned char lo = (unsigned char)tolower((unsigned char)needle[0]);
	unsigned char up = (unsigned char)toupper((unsigned char)needle[0]);

	if (m == 0 || m > n)
		return NULL;
	for (size_t lim = n - m + 1; lim > 0;) {
		const char *hit;
		if (!icase || lo == up) {
			hit = memrchr(s, needle[0], lim);
		} else {
			/* one backward pass: two memrchr calls would rescan the
			 * prefix for a case that never occurs */
			hit = NULL;
			for (size_t i = lim; i-- > 0;)
				if ((unsigned char)s[i] == lo || (unsigned char)s[i] == up) {
					hit = s + i;
					break;
				}
		}
		if (!hit)
			return NULL;
		if (icase ? !strncasecmp(hit, needle, m) : !memcmp(hit, needle, m))
			return hit;
		lim = (size_t)(hit - s);
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
		/* A box holds an answer, not a page: looking further than the
		 * answer bound keeps many unclosed boxes linear, not quadratic. */
		if ((size_t)(end - p) > BOX_SCAN_MAX)
			end = p + BOX_SCAN_MAX;
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
		for (int tries = 0; tries < BOX_TRIES_MAX; tries++) {
			const char *hit = rfind(s, lim, box_names[k], 0);
			const char *ca;
			size_t cl;
			if (!hit)
				break;
			/* \boxed must not be the prefix of a longer name (\boxedfoo). */
			if (hit + m < end && !isalpha((unsigned char)hit[m]) &&
			    !box_argument(hit + m, end, &ca, &cl)) {
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

/* After "answer" (markdown marks skipped): ':' or "is" introduces it. */
static const char *phrase_tail(const char *p, const char *end)
{
	while (p < end && (*p == '*' || *p == '_' || *p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == ':')
		return p + 1;
	if (end - p >= 2 && !strncasecmp(p, "is", 2) && (end - p == 2 || !isalpha((unsigned char)p[2])))
		return p + 2;
	return NULL;
}

/* The last bold span "**X**" of [p, p + n): 0 and the span, or -1. */
static int bold_span(const char *p, size_t n, const char **a, size_t *alen)
{
	const char *close = rfind(p, n, "**", 0);
	if (!close)
		return -1;
	const char *open = rfind(p, (size_t)(close - p), "**", 0);
	if (!open || close - open <= 2)
		return -1;
	*a = open + 2;
	*alen = (size_t)(close - open - 2);
	trim(a, alen);
	return *alen ? 0 : -1;
}

/* "$28\\%$. I hope it is correct.": a leading $...$ span, else the text up to
 * a ". " that starts a new sentence. */
static void first_sentence(const char **p, size_t *l)
{
	const char *s = *p;
	size_t n = *l;
	if (n > 1 && s[0] == '$') {
		size_t open = s[1] == '$' ? 2 : 1;
		for (size_t i = open; i + open <= n; i++)
			if (s[i] == '$' && s[i - 1] != '\\') {
				*l = i + open <= n ? i + open : n;
				return;
			}
		return;
	}
	for (size_t i = 0; i + 2 < n; i++)
		if (s[i] == '.' && s[i + 1] == ' ' && s[i + 2] >= 'A' && s[i + 2] <= 'Z') {
			*l = i;
			return;
		}
}

/*
 * Text after the last "answer:" / "answer is" ("**Answer:** 42", "The final
 * answer is 7", "**Answer**: ..."): the rest of its line (the next line when
 * it is empty), its bold part when it has one, without a final full stop.
 * 0 and the span, or -1.
 */
static int phrase_answer(const char *s, size_t n, const char **a, size_t *alen)
{
	const char *end = s + n, *p = NULL;
	size_t lim = n;

	for (int tries = 0;; tries++) {
		const char *hit = rfind(s, lim, "answer", 1);
		if (!hit || tries == BOX_TRIES_MAX)
			return -1;
		p = phrase_tail(hit + 6, end);
		if (p)
			break;
		lim = (size_t)(hit - s);
	}
	for (int line = 0; line < 2 && p < end; line++) {
		while (p < end && (*p == '*' || *p == '_' || *p == ':' || *p == ' ' || *p == '\t'))
			p++;
		const char *q = p;
		while (q < end && *q != '\n')
			q++;
		size_t l = (size_t)(q - p);
		const char *ba;
		size_t bl;
		if (!bold_span(p, l, &ba, &bl)) {
			p = ba;
			l = bl;
		}
		first_sentence(&p, &l);
		trim(&p, &l);
		while (l && (p[l - 1] == '*' || p[l - 1] == '.' || is_space(p[l - 1])))
			l--;
		if (l) {
			*a = p;
			*alen = l;
			return 0;
		}
		p = q + (q < end);
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

/* The last inline math span ($...$, \\(...\\), \\[...\\]) of the final 300
 * bytes ("Therefore $x \\geq 5$ is the solution."): 0 and its inside, or -1. */
static int last_math(const char *s, size_t n, const char **a, size_t *alen)
{
	size_t lo = n > 300 ? n - 300 : 0;
	const char *base = s + lo, *open;
	const char *paren = rfind(base, n - lo, "\\)", 0), *brack = rfind(base, n - lo, "\\]", 0);
	const char *dol = rfind(base, n - lo, "$", 0), *best = paren;

	if (brack && (!best || brack > best))
		best = brack;
	if (dol && (!best || dol > best)) {
		/* a closing $ (not \$): its opening one, on the same line */
		if (dol > s && dol[-1] == '\\')
			return -1;
		for (open = dol; open > base;) {
			open--;
			if (*open == '\n')
				return -1;
			if (*open == '$' && !(open > s && open[-1] == '\\'))
				break;
		}
		if (*open != '$' || open == dol || dol - open < 2)
			return -1;
		/* "$24.00 + $5.00 (tip) = **$29.00**": dollars, not math */
		if ((dol + 1 < s + n && isdigit((unsigned char)dol[1])) ||
		    memmem(open, (size_t)(dol - open), "**", 2))
			return -1;
		*a = open + 1;
		*alen = (size_t)(dol - open - 1);
		trim(a, alen);
		return *alen ? 0 : -1;
	}
	if (!best)
		return -1;
	open = rfind(base, (size_t)(best - base), best == paren ? "\\(" : "\\[", 0);
	if (!open)
		return -1;
	*a = open + 2;
	*alen = (size_t)(best - open - 2);
	trim(a, alen);
	return *alen ? 0 : -1;
}

/* Extraction from one part: box, then phrase, then the last inline math,
 * then (if allowed) a number. */
static int extract_part(const char *s, size_t n, int allow_number, struct buf *out)
{
	const char *a;
	size_t l;

	if (!s || !n)
		return ANSWER_NO_ANSWER;
	if (!last_box(s, n, &a, &l) || !phrase_answer(s, n, &a, &l) || !last_math(s, n, &a, &l) ||
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
	if (n >= sizeof(r->extracted)) {
		n = sizeof(r->extracted) - 1;
		/* never cut a UTF-8 sequence in two */
		while (n && ((unsigned char)ex[n] & 0xc0) == 0x80)
			n--;
	}
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

/* A multiple-choice letter: "B", "(B)", "B)", "B.", "(B) 12", "Option B".
 * The letter, or 0. */
static char mcq_letter(const char *s, size_t n, int loose)
{
	const char *p = s;
	size_t l = n;

	trim(&p, &l);
	for (int k = 0; k < 2 && l; k++) {
		static const char *const lead[] = {"option ", "choice ", "answer "};
		for (size_t j = 0; j < ARRAY_SIZE(lead); j++) {
			size_t m = strlen(lead[j]);
			if (l > m && !strncasecmp(p, lead[j], m)) {
				p += m;
				l -= m;
			}
		}
	}
	if (l && (*p == '(' || *p == '[')) {
		p++;
		l--;
	}
	if (!l || *p < 'A' || *p > 'J')
		return 0;
	char c = *p;
	p++;
	l--;
	if (l && (*p == ')' || *p == ']')) {
		p++;
		l--;
	}
	if (!l)
		return c;
	/* "B. 12", "(B) 12": only when told the answer is a letter */
	if (loose && (is_space(*p) || *p == '.' || *p == ':'))
		return c;
	return 0;
}

/* Normalised text as a letter: strip the text-run marks mathnorm adds. */
static char mcq_of_norm(const char *s, int loose)
{
	char tmp[64];
	size_t j = 0;
	for (; *s && j + 1 < sizeof(tmp); s++)
		if (*s != '\x01' && *s != '\x02')
			tmp[j++] = *s;
	tmp[j] = '\0';
	return mcq_letter(tmp, j, loose);
}

static void mx_opts(const struct answer_options *o, struct mathexpr_opts *m)
{
	m->precision = o->precision;
	m->strict = o->strict;
	m->percent = o->percent;
}

/* Number mode: the last number of each side, compared as numbers. */
static int last_number_norm(const char *s, size_t n, struct buf *out)
{
	const char *a;
	size_t l;
	buf_reset(out);
	if (last_number(s, n, &a, &l))
		return -1;
	for (size_t i = 0; i < l; i++)
		if (a[i] != ',' && buf_putc(out, a[i]))
			return -1;
	return 0;
}

/* The one number of a normalised sentence (outside its text runs): 0 and
 * the number in out, or -1 when there is none or several different ones. */
static int sentence_number(const char *s, size_t n, struct buf *out)
{
	const char *found = NULL;
	size_t flen = 0;
	int in_text = 0;

	for (size_t i = 0; i < n;) {
		if (s[i] == MATHNORM_TEXT_OPEN || s[i] == MATHNORM_TEXT_CLOSE) {
			in_text = s[i] == MATHNORM_TEXT_OPEN;
			i++;
			continue;
		}
		if (in_text || !is_digit(s[i]) ||
		    (i && (isalpha((unsigned char)s[i - 1]) || s[i - 1] == '.'))) {
			i++;
			continue;
		}
		size_t b = i;
		if (b && s[b - 1] == '-')
			b--;
		while (i < n && (is_digit(s[i]) || (s[i] == '.' && i + 1 < n && is_digit(s[i + 1]))))
			i++;
		if (found && (flen != i - b || memcmp(found, s + b, flen)))
			return -1;
		found = s + b;
		flen = i - b;
	}
	if (!found)
		return -1;
	buf_reset(out);
	return buf_append(out, found, flen) ? -1 : 0;
}

/* Equal as text once case, spaces, full stops and text marks are ignored
 * (and at least one letter compared). */
static int loose_text_equal(const char *a, size_t an, const char *b, size_t bn)
{
	size_t i = 0, j = 0;
	int letters = 0;
	for (;;) {
		while (i < an && (is_space(a[i]) || a[i] == '.' || a[i] == MATHNORM_TEXT_OPEN ||
				  a[i] == MATHNORM_TEXT_CLOSE))
			i++;
		while (j < bn && (is_space(b[j]) || b[j] == '.' || b[j] == MATHNORM_TEXT_OPEN ||
				  b[j] == MATHNORM_TEXT_CLOSE))
			j++;
		if (i == an || j == bn)
			return i == an && j == bn && letters;
		if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[j]))
			return 0;
		letters += isalpha((unsigned char)a[i]) != 0;
		i++;
		j++;
	}
}

/* The one amount of money ("$4", "\\$1,200.50") in a raw sentence: 0 and
 * the number in out, or -1 when there is none or several different ones. */
static int money_number(const char *s, size_t n, struct buf *out)
{
	char found[64] = "", cur[64];
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '$' || !is_digit(s[i + 1]))
			continue;
		size_t j = i + 1, k = 0;
		while (j < n && k + 1 < sizeof(cur) &&
		       (is_digit(s[j]) ||
			((s[j] == ',' || s[j] == '.') && j + 1 < n && is_digit(s[j + 1])))) {
			if (s[j] != ',')
				cur[k++] = s[j];
			j++;
		}
		cur[k] = '\0';
		if (found[0] && strcmp(found, cur))
			return -1;
		memcpy(found, cur, k + 1);
		i = j - 1;
	}
	if (!found[0])
		return -1;
	buf_reset(out);
	return buf_puts(out, found) ? -1 : 0;
}

int answer_compare(const char *gold, size_t glen, const char *pred, size_t plen,
		   const struct answer_options *o, int *equal)
{
	struct buf g = BUF_INIT(ANSWER_MAX_LEN * 4), p = BUF_INIT(ANSWER_MAX_LEN * 4);
	struct mathexpr *ge = NULL, *pe = NULL;
	struct mathexpr_opts mo;
	int rc = ANSWER_OK;
	char gl;

	*equal = 0;
	mx_opts(o, &mo);
	if (glen > ANSWER_MAX_LEN || plen > ANSWER_MAX_LEN)
		return ANSWER_BUDGET;
	if (mathnorm(gold, glen, o->strict, &g) || mathnorm(pred, plen, o->strict, &p)) {
		rc = ANSWER_BUDGET;
		goto out;
	}
	if (!g.len) {
		rc = ANSWER_GOLD_UNPARSED;
		goto out;
	}
	if (!p.len) {
		rc = ANSWER_NO_ANSWER;
		goto out;
	}
	if (o->mode == ANSWER_MODE_NUMBER) {
		struct buf t = BUF_INIT(ANSWER_MAX_LEN * 4);
		if (last_number_norm(g.data, g.len, &t)) {
			rc = ANSWER_GOLD_UNPARSED;
		} else {
			buf_reset(&g);
			buf_append(&g, t.data, t.len);
			if (last_number_norm(p.data, p.len, &t)) {
				rc = ANSWER_NO_ANSWER;
			} else {
				buf_reset(&p);
				buf_append(&p, t.data, t.len);
			}
		}
		buf_release(&t);
		if (rc != ANSWER_OK)
			goto out;
	}
	/* Multiple choice: told so, or the gold is a lone letter. */
	gl = mcq_of_norm(g.data, o->mode == ANSWER_MODE_MCQ);
	if (o->mode == ANSWER_MODE_MCQ || gl) {
		if (!gl) {
			rc = ANSWER_GOLD_UNPARSED;
			goto out;
		}
		char pl = mcq_of_norm(p.data, 1);
		*equal = pl == gl;
		goto out;
	}
	if (g.len == p.len && !memcmp(g.data, p.data, g.len)) {
		*equal = 1;
		goto out;
	}
	int r = mathexpr_parse(g.data, g.len, &mo, &ge);
	if (r == MATHEXPR_BUDGET) {
		rc = ANSWER_BUDGET;
		goto out;
	}
	if (r) {
		/* a reference we cannot read may still match word for word */
		if (g.len == p.len && !strncasecmp(g.data, p.data, g.len))
			*equal = 1;
		else
			rc = ANSWER_GOLD_UNPARSED;
		goto out;
	}
	r = mathexpr_parse(p.data, p.len, &mo, &pe);
	if (r == MATHEXPR_BUDGET) {
		rc = ANSWER_BUDGET;
		goto out;
	}
	if (!r) {
		r = mathexpr_equal(ge, pe, &mo);
		if (r == MATHEXPR_BUDGET) {
			rc = ANSWER_BUDGET;
			goto out;
		}
		*equal = r == MATHEXPR_EQUAL;
	}
	/* The same words, whatever their case, spacing or marks ("No Solution"
	 * for \\text{no solution}). */
	if (!*equal && memchr(g.data, MATHNORM_TEXT_OPEN, g.len) &&
	    loose_text_equal(g.data, g.len, p.data, p.len))
		*equal = 1;
	/* A sentence ("Tom could buy 11 more CDs") for a number: its only
	 * number, else its only amount of money ("... cost \\$4 more than 2"). */
	if (!*equal && !o->strict && (!pe || memchr(p.data, MATHNORM_TEXT_OPEN, p.len)) &&
	    mathexpr_is_number(ge)) {
		struct buf t = BUF_INIT(256);
		if (sentence_number(p.data, p.len, &t) == 0 || money_number(pred, plen, &t) == 0) {
			mathexpr_free(pe);
			pe = NULL;
			if (mathexpr_parse(t.data, t.len, &mo, &pe) == 0)
				*equal = mathexpr_equal(ge, pe, &mo) == MATHEXPR_EQUAL;
		}
		buf_release(&t);
	}
out:
	mathexpr_free(ge);
	mathexpr_free(pe);
	buf_release(&g);
	buf_release(&p);
	return rc;
}
