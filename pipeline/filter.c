/*
 * filter.c - the filter engine (see filter.h): the table of rule kinds, each
 * with its parameters, its compile step and its evaluation.  Sits between
 * the rule-file parser (rules.c) and the verdict store (verdict.c).
 */
#include "filter.h"
#include "answer.h"
#include "buf.h"
#include "hash.h"
#include "regex.h"
#include "rules.h"
#include "text.h"
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

struct kind;

enum unit { UNIT_CHARS, UNIT_WORDS };

/* Scripts the language rule tells apart; letters outside every range are
 * not counted (digits, punctuation, math symbols). */
enum script {
	SC_LATIN,
	SC_GREEK,
	SC_CYRILLIC,
	SC_ARMENIAN,
	SC_HEBREW,
	SC_ARABIC,
	SC_DEVANAGARI,
	SC_THAI,
	SC_HANGUL,
	SC_KANA,
	SC_HAN,
	SC_COUNT
};

/* A compiled rule. */
struct frule {
	const struct rule *src;
	const struct kind *kind;
	enum rule_target target;
	/* regex kinds */
	struct regex *re;
	struct regex_limits lim;
	/* bounds (count, length, paragraph_length, code_blocks) */
	double min, max;
	int has_min, has_max;
	enum unit unit;
	/* language */
	unsigned allow; /* bit per enum script */
	double max_share, para_share;
	long para_min_letters, max_switches;
	/* repetition */
	int ngram;
	long max_repeats, min_words, sent_max, sent_min_chars;
	double max_dup_share;
	/* answer_correct */
	struct answer_options aopt;
	/* api_error */
	long max_chars;
};

struct tab_slot {
	uint64_t h;
	uint32_t c; /* 0: empty */
};

struct filter {
	const struct rules *rs;
	struct frule *r;
	int n;
	struct buf response; /* the response text, built once per trace */
	int response_built;
	/* repetition scratch: open-addressing table of (hash, count) */
	struct tab_slot *tab; /* hash and count side by side: one access a probe */
	size_t tab_cap, tab_alloc;
	uint64_t *words; /* word hashes */
	size_t words_cap;
};

/* ------------------------------------------------------------------------
 * Compile-time helpers: parameters with file:line errors. */

struct cctx {
	const struct rule *r;
	struct derr *e;
};

__attribute__((format(printf, 3, 4))) static int cerr(struct cctx *c, int line, const char *fmt, ...)
{
	char msg[360];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return derr_set(c->e, DERR_PARSE, "%s:%d: rule %s: %s", c->r->file, line ? line : c->r->line,
			c->r->name, msg);
}

/* Optional number parameter in [lo, hi]; *present says whether it was given. */
static int p_double(struct cctx *c, const char *key, double lo, double hi, double *out, int *present)
{
	int line = 0;
	const char *v = rule_param(c->r, key, &line);
	double d;
	if (present)
		*present = v != NULL;
	if (!v)
		return 0;
	if (parse_double(v, &d) || !(d >= lo && d <= hi))
		return cerr(c, line, "%s must be a number from %g to %g, not '%s'", key, lo, hi, v);
	*out = d;
	return 0;
}

static int p_long(struct cctx *c, const char *key, long lo, long hi, long *out)
{
	int line = 0;
	const char *v = rule_param(c->r, key, &line);
	int64_t x;
	if (!v)
		return 0;
	if (parse_int64(v, lo, hi, &x))
		return cerr(c, line, "%s must be a whole number from %ld to %ld, not '%s'", key, lo, hi, v);
	*out = (long)x;
	return 0;
}

static int p_unit(struct cctx *c, enum unit *u)
{
	int line = 0;
	const char *v = rule_param(c->r, "unit", &line);
	if (!v)
		return 0;
	if (!strcmp(v, "chars"))
		*u = UNIT_CHARS;
	else if (!strcmp(v, "words"))
		*u = UNIT_WORDS;
	else
		return cerr(c, line, "unit must be chars or words, not '%s'", v);
	return 0;
}

/* min and/or max; at least one required when need is set. */
static int p_bounds(struct cctx *c, struct frule *fr, int need)
{
	int rc = p_double(c, "min", 0, 1e15, &fr->min, &fr->has_min);
	if (!rc)
		rc = p_double(c, "max", 0, 1e15, &fr->max, &fr->has_max);
	if (rc)
		return rc;
	if (need && !fr->has_min && !fr->has_max)
		return cerr(c, c->r->kind_line, "%s needs min or max", c->r->kind);
	if (fr->has_min && fr->has_max && fr->min > fr->max)
		return cerr(c, c->r->kind_line, "min %g is above max %g", fr->min, fr->max);
	return 0;
}

static int p_regex(struct cctx *c, struct frule *fr)
{
	int line = 0, fline = 0, rc;
	const char *pat = rule_param(c->r, "pattern", &line);
	const char *fl = rule_param(c->r, "flags", &fline);
	const char *tl;
	unsigned flags = 0;
	long ml, dl, ms;
	struct derr re_err = {0};

	if (!pat)
		return cerr(c, c->r->kind_line, "%s needs a pattern", c->r->kind);
	for (; fl && *fl; fl++) {
		switch (*fl) {
		case 'i': flags |= REGEX_CASELESS; break;
		case 'm': flags |= REGEX_MULTILINE; break;
		case 's': flags |= REGEX_DOTALL; break;
		case 'x': flags |= REGEX_EXTENDED; break;
		default: return cerr(c, fline, "unknown flag '%c' (i, m, s, x)", *fl);
		}
	}
	regex_limits_default(&fr->lim);
	ml = fr->lim.match_limit;
	dl = fr->lim.depth_limit;
	ms = (long)fr->lim.max_subject;
	if ((rc = p_long(c, "match_limit", 1, 100000000L, &ml)) ||
	    (rc = p_long(c, "depth_limit", 1, 10000000L, &dl)) ||
	    (rc = p_long(c, "max_subject", 1, 1L << 30, &ms)))
		return rc;
	fr->lim.match_limit = (uint32_t)ml;
	fr->lim.depth_limit = (uint32_t)dl;
	fr->lim.max_subject = (size_t)ms;
	tl = rule_param(c->r, "time_limit", &line);
	if (tl) {
		int64_t tms;
		if (duration_parse(tl, &tms) || tms <= 0 || tms > 60000)
			return cerr(c, line, "time_limit must be a duration up to 60s (e.g. 25ms), not '%s'",
				    tl);
		fr->lim.time_ns = tms * 1000000LL;
	}
	rule_param(c->r, "pattern", &line);
	if (regex_compile(&fr->re, pat, strlen(pat), flags, &re_err))
		return cerr(c, line, "bad pattern: %s", re_err.msg);
	return 0;
}

/* ------------------------------------------------------------------------
 * Text helpers. */

/* Byte classes for the scanning loops: one table lookup per byte. */
enum { BC_SPACE = 1, BC_NEWLINE = 2, BC_END = 4, BC_LETTER = 8 };
static const unsigned char byte_class[256] = {
	['\t'] = BC_SPACE,
	['\n'] = BC_SPACE | BC_NEWLINE,
	['\v'] = BC_SPACE,
	['\f'] = BC_SPACE,
	['\r'] = BC_SPACE,
	[' '] = BC_SPACE,
	['.'] = BC_END,
	['!'] = BC_END,
	['?'] = BC_END,
#define L(c) [c] = BC_LETTER
	L('a'),
	L('b'),
	L('c'),
	L('d'),
	L('e'),
	L('f'),
	L('g'),
	L('h'),
	L('i'),
	L('j'),
	L('k'),
	L('l'),
	L('m'),
	L('n'),
	L('o'),
	L('p'),
	L('q'),
	L('r'),
	L('s'),
	L('t'),
	L('u'),
	L('v'),
	L('w'),
	L('x'),
	L('y'),
	L('z'),
	L('A'),
	L('B'),
	L('C'),
	L('D'),
	L('E'),
	L('F'),
	L('G'),
	L('H'),
	L('I'),
	L('J'),
	L('K'),
	L('L'),
	L('M'),
	L('N'),
	L('O'),
	L('P'),
	L('Q'),
	L('R'),
	L('S'),
	L('T'),
	L('U'),
	L('V'),
	L('W'),
	L('X'),
	L('Y'),
	L('Z'),
#undef L
};

static int is_space_byte(unsigned char ch)
{
	return byte_class[ch] & BC_SPACE;
}

/* ------------------------------------------------------------------------
 * Byte masks of 64-byte blocks: bit i says whether p[i] belongs to a class
 * of byte_class.  The scanning loops of the repetition and language rules
 * walk these masks instead of testing every byte; SSE2 (every x86-64) makes
 * one in a few instructions, other machines get the table. */

enum { BLOCK = 64 };

#if defined(__SSE2__)
/* Spaces: \t \n \v \f \r (9..13) and ' '. */
static inline unsigned space16(__m128i x)
{
	__m128i r = _mm_sub_epi8(x, _mm_set1_epi8(9));
	__m128i low = _mm_cmpeq_epi8(_mm_min_epu8(r, _mm_set1_epi8(4)), r);
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(low, _mm_cmpeq_epi8(x, _mm_set1_epi8(' '))));
}

/* Sentence ends: . ! ? and newline. */
static inline unsigned end16(__m128i x)
{
	__m128i m =
		_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')), _mm_cmpeq_epi8(x, _mm_set1_epi8('!')));
	m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('?')));
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('\n'))));
}

static inline uint64_t block_mask(const char *p, unsigned (*fn)(__m128i))
{
	uint64_t m = 0;
	for (int k = 0; k < BLOCK; k += 16)
		m |= (uint64_t)fn(_mm_loadu_si128((const __m128i *)(const void *)(p + k))) << k;
	return m;
}

static uint64_t space_mask(const char *p)
{
	return block_mask(p, space16);
}

static uint64_t end_mask(const char *p)
{
	return block_mask(p, end16);
}
#else
static uint64_t class_mask(const char *p, unsigned cls)
{
	uint64_t m = 0;
	for (int k = 0; k < BLOCK; k++)
		m |= (uint64_t)((byte_class[(unsigned char)p[k]] & cls) != 0) << k;
	return m;
}

static uint64_t space_mask(const char *p)
{
	return class_mask(p, BC_SPACE);
}

static uint64_t end_mask(const char *p)
{
	return class_mask(p, BC_NEWLINE | BC_END);
}
#endif

/* The mask of a last, partial block of len < BLOCK bytes: bytes past the
 * end count as members (a word ends, a sentence ends). */
static uint64_t tail_mask(const char *p, size_t len, uint64_t (*full)(const char *))
{
	char tmp[BLOCK];
	memcpy(tmp, p, len);
	memset(tmp + len, '\n', BLOCK - len);
	return full(tmp);
}

/* Is s[0..n) at least k characters long?  Counts only when the byte
 * length cannot tell (a character is 1 to 4 bytes). */
static int chars_at_least(const char *s, size_t n, size_t k);

static size_t count_words(const char *s, size_t n)
{
	size_t k = 0;
	int in = 0;
	for (size_t i = 0; i < n; i++) {
		int sp = is_space_byte((unsigned char)s[i]);
		if (!sp && !in)
			k++;
		in = !sp;
	}
	return k;
}

static int chars_at_least(const char *s, size_t n, size_t k)
{
	size_t c = 0;
	if (n < k)
		return 0;
	if (n / 4 >= k)
		return 1;
	/* Count a block at a time; stop once k is reached, or once it can no
	 * longer be (every byte left a character). */
	for (size_t i = 0; i < n; i += 256) {
		size_t m = n - i < 256 ? n - i : 256;
		c += utf8_count(s + i, m);
		if (c >= k)
			return 1;
		if (c + (n - i - m) < k)
			return 0;
	}
	return 0;
}

static size_t measure(enum unit u, const char *s, size_t n)
{
	return u == UNIT_WORDS ? count_words(s, n) : utf8_count(s, n);
}

static const char *unit_name(enum unit u)
{
	return u == UNIT_WORDS ? "words" : "chars";
}

/* Is the line s[0..n) blank? */
static int blank_line(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_space_byte((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Paragraph iterator: paragraphs are runs of non-blank lines. */
struct para_iter {
	const char *s;
	size_t n, pos;
};

static int para_next(struct para_iter *it, size_t *start, size_t *len)
{
	size_t b = 0;
	int have = 0;
	while (it->pos < it->n) {
		const char *nl = memchr(it->s + it->pos, '\n', it->n - it->pos);
		size_t ll = nl ? (size_t)(nl - (it->s + it->pos)) : it->n - it->pos;
		size_t ls = it->pos;
		it->pos += ll + (nl ? 1 : 0);
		if (blank_line(it->s + ls, ll)) {
			if (have) {
				*start = b;
				*len = ls - b;
				return 1;
			}
			continue;
		}
		if (!have) {
			have = 1;
			b = ls;
		}
	}
	if (have) {
		*start = b;
		*len = it->n - b;
		return 1;
	}
	return 0;
}

/* A short excerpt of s[so..eo) for a detail: newlines shown as \n, cut on
 * a character boundary. */
static void excerpt(char *out, size_t cap, const char *s, size_t n, size_t so, size_t eo)
{
	size_t o = 0, lim = cap > 8 ? cap - 8 : 0;
	if (eo > n)
		eo = n;
	for (size_t i = so; i < eo && o < lim;) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\n' || ch == '\t' || ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = ch == '\n' ? 'n' : ch == '\t' ? 't' : (char)ch;
			i++;
			continue;
		}
		size_t cl = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
		if (o + cl > lim || i + cl > eo)
			break;
		memcpy(out + o, s + i, cl);
		o += cl;
		i += cl;
	}
	if (o < (size_t)(eo - so) && o + 3 < cap) {
		/* mark the cut only when something was left out */
	}
	out[o] = '\0';
}

__attribute__((format(printf, 3, 4))) static void vset(struct filter_verdict *v, enum filter_state st,
						       const char *fmt, ...)
{
	va_list ap;
	v->state = st;
	va_start(ap, fmt);
	vsnprintf(v->detail, sizeof(v->detail), fmt, ap);
	va_end(ap);
}

/* A pass with no detail: the common verdict, without a trip through
 * vsnprintf. */
static void vpass(struct filter_verdict *v)
{
	v->state = FILTER_PASS;
	v->detail[0] = '\0';
}

/* ------------------------------------------------------------------------
 * Regex kinds. */

static int c_regex(struct cctx *c, struct frule *fr)
{
	return p_regex(c, fr);
}

static void regex_limit(struct filter_verdict *v, const struct derr *e)
{
	vset(v, FILTER_LIMIT, "%s", e->msg);
}

static void e_must_match(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			 size_t n, struct filter_verdict *v)
{
	struct derr e = {0};
	int rc = regex_search(fr->re, s, n, 0, &fr->lim, NULL, NULL, &e);
	if (rc < 0)
		regex_limit(v, &e);
	else if (rc)
		vpass(v);
	else
		vset(v, FILTER_FAIL, "no match in %s", rule_target_name(fr->target));
}

static void e_must_not_match(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			     size_t n, struct filter_verdict *v)
{
	struct derr e = {0};
	size_t so = 0, eo = 0;
	int rc = regex_search(fr->re, s, n, 0, &fr->lim, &so, &eo, &e);
	if (rc < 0) {
		regex_limit(v, &e);
	} else if (rc) {
		char ex[64];
		excerpt(ex, sizeof(ex), s, n, so, eo);
		vset(v, FILTER_FAIL, "matched at %zu: \"%s\"", so, ex);
	} else {
		vpass(v);
	}
}

static int c_count(struct cctx *c, struct frule *fr)
{
	int rc = p_regex(c, fr);
	return rc ? rc : p_bounds(c, fr, 1);
}

static void e_count(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s, size_t n,
		    struct filter_verdict *v)
{
	struct derr e = {0};
	long k = 0;
	/* Counting past max + 1 tells nothing more. */
	long stop = fr->has_max ? (long)fr->max + 1 : 0;
	int rc = regex_count(fr->re, s, n, stop, &fr->lim, &k, &e);
	if (rc < 0)
		regex_limit(v, &e);
	else if (fr->has_min && k < fr->min)
		vset(v, FILTER_FAIL, "%ld matches < min %g", k, fr->min);
	else if (fr->has_max && k > fr->max)
		vset(v, FILTER_FAIL, "%s%ld matches > max %g", stop && k >= stop ? "at least " : "", k,
		     fr->max);
	else
		vset(v, FILTER_PASS, "%ld matches", k);
}

/* ------------------------------------------------------------------------
 * Length and structure. */

static int c_length(struct cctx *c, struct frule *fr)
{
	int rc = p_unit(c, &fr->unit);
	return rc ? rc : p_bounds(c, fr, 1);
}

static void e_length(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s, size_t n,
		     struct filter_verdict *v)
{
	size_t k = measure(fr->unit, s, n);
	if (fr->has_min && (double)k < fr->min)
		vset(v, FILTER_FAIL, "%zu %s < min %g", k, unit_name(fr->unit), fr->min);
	else if (fr->has_max && (double)k > fr->max)
		vset(v, FILTER_FAIL, "%zu %s > max %g", k, unit_name(fr->unit), fr->max);
	else
		vset(v, FILTER_PASS, "%zu %s", k, unit_name(fr->unit));
}

static int c_paragraph(struct cctx *c, struct frule *fr)
{
	int rc = p_unit(c, &fr->unit);
	if (!rc)
		rc = p_double(c, "max", 1, 1e15, &fr->max, &fr->has_max);
	if (!rc && !fr->has_max)
		rc = cerr(c, c->r->kind_line, "paragraph_length needs max");
	return rc;
}

static void e_paragraph(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			size_t n, struct filter_verdict *v)
{
	struct para_iter it = {s, n, 0};
	size_t ps, pl, longest = 0, at = 0;
	int i = 0, which = 0;
	while (para_next(&it, &ps, &pl)) {
		size_t k = measure(fr->unit, s + ps, pl);
		i++;
		if (k > longest) {
			longest = k;
			which = i;
			at = ps;
		}
	}
	if ((double)longest > fr->max)
		vset(v, FILTER_FAIL, "paragraph %d (offset %zu) has %zu %s > max %g", which, at, longest,
		     unit_name(fr->unit), fr->max);
	else
		vset(v, FILTER_PASS, "%d paragraphs, longest %zu %s", i, longest, unit_name(fr->unit));
}

static int c_code_blocks(struct cctx *c, struct frule *fr)
{
	fr->max = 0;
	fr->has_max = 1;
	return p_double(c, "max", 0, 1e9, &fr->max, NULL);
}

static void e_code_blocks(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			  size_t n, struct filter_verdict *v)
{
	size_t pos = 0, fences = 0, first = 0;
	while (pos < n) {
		const char *nl = memchr(s + pos, '\n', n - pos);
		size_t ll = nl ? (size_t)(nl - (s + pos)) : n - pos, i = 0;
		while (i < ll && (s[pos + i] == ' ' || s[pos + i] == '\t'))
			i++;
		if (ll - i >= 3 && (!memcmp(s + pos + i, "```", 3) || !memcmp(s + pos + i, "~~~", 3))) {
			if (!fences)
				first = pos;
			fences++;
		}
		pos += ll + (nl ? 1 : 0);
	}
	/* An opening fence without its closing one is still a block. */
	size_t blocks = (fences + 1) / 2;
	if ((double)blocks > fr->max)
		vset(v, FILTER_FAIL, "%zu code block%s (first at offset %zu) > max %g", blocks,
		     blocks == 1 ? "" : "s", first, fr->max);
	else
		vset(v, FILTER_PASS, "%zu code blocks", blocks);
}

/* ------------------------------------------------------------------------
 * Language mixing. */

static const char *const script_names[SC_COUNT] = {"latin",  "greek",  "cyrillic",   "armenian",
						   "hebrew", "arabic", "devanagari", "thai",
						   "hangul", "kana",   "han"};

/* Letter ranges by script, sorted by start. */
static const struct {
	uint32_t lo, hi;
	enum script sc;
} script_ranges[] = {
	{0x0041, 0x005A, SC_LATIN},    {0x0061, 0x007A, SC_LATIN},	{0x00AA, 0x00AA, SC_LATIN},
	{0x00BA, 0x00BA, SC_LATIN},    {0x00C0, 0x00D6, SC_LATIN},	{0x00D8, 0x00F6, SC_LATIN},
	{0x00F8, 0x024F, SC_LATIN},    {0x0370, 0x03FF, SC_GREEK},	{0x0400, 0x052F, SC_CYRILLIC},
	{0x0531, 0x058F, SC_ARMENIAN}, {0x05D0, 0x05F2, SC_HEBREW},	{0x0620, 0x064A, SC_ARABIC},
	{0x0671, 0x06D3, SC_ARABIC},   {0x0900, 0x097F, SC_DEVANAGARI}, {0x0E01, 0x0E5B, SC_THAI},
	{0x1100, 0x11FF, SC_HANGUL},   {0x1E00, 0x1EFF, SC_LATIN},	{0x1F00, 0x1FFF, SC_GREEK},
	{0x3005, 0x3007, SC_HAN},      {0x3041, 0x309F, SC_KANA},	{0x30A0, 0x30FF, SC_KANA},
	{0x3130, 0x318F, SC_HANGUL},   {0x3400, 0x4DBF, SC_HAN},	{0x4E00, 0x9FFF, SC_HAN},
	{0xAC00, 0xD7AF, SC_HANGUL},   {0xF900, 0xFAFF, SC_HAN},	{0xFF66, 0xFF9F, SC_KANA},
	{0x20000, 0x2FFFF, SC_HAN},
};

/* The script of a letter, or -1 for anything that is not a letter here. */
static int script_of(uint32_t cp)
{
	size_t lo = 0, hi = ARRAY_SIZE(script_ranges);
	if (cp < 0x80)
		return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ? SC_LATIN : -1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cp < script_ranges[mid].lo)
			hi = mid;
		else if (cp > script_ranges[mid].hi)
			lo = mid + 1;
		else
			return (int)script_ranges[mid].sc;
	}
	return -1;
}

static int c_language(struct cctx *c, struct frule *fr)
{
	int line = 0, rc;
	const char *allow = rule_param(c->r, "allow", &line);
	fr->allow = 1u << SC_LATIN | 1u << SC_GREEK;
	if (allow) {
		const char *p = allow;
		fr->allow = 0;
		while (*p) {
			size_t l = strcspn(p, ", \t");
			int found = 0;
			if (l == 3 && !memcmp(p, "cjk", 3)) {
				fr->allow |= 1u << SC_HAN | 1u << SC_KANA | 1u << SC_HANGUL;
				found = 1;
			}
			for (int i = 0; i < SC_COUNT && !found; i++) {
				if (strlen(script_names[i]) == l && !memcmp(p, script_names[i], l)) {
					fr->allow |= 1u << i;
					found = 1;
				}
			}
			if (!found && l)
				return cerr(c, line, "unknown script '%.*s' in allow", (int)l, p);
			p += l;
			while (*p == ',' || *p == ' ' || *p == '\t')
				p++;
		}
	}
	fr->max_share = 0.05;
	fr->para_share = 0.3;
	fr->para_min_letters = 20;
	fr->max_switches = 0;
	if ((rc = p_double(c, "max_share", 0, 1, &fr->max_share, NULL)) ||
	    (rc = p_double(c, "paragraph_max_share", 0, 1, &fr->para_share, NULL)) ||
	    (rc = p_long(c, "paragraph_min_letters", 0, 1000000, &fr->para_min_letters)) ||
	    (rc = p_long(c, "max_switches", 0, 1000000000L, &fr->max_switches)))
		return rc;
	return 0;
}

static void e_language(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
		       size_t n, struct filter_verdict *v)
{
	size_t letters = 0, foreign = 0, p_letters = 0, p_foreign = 0, switches = 0, first_switch = 0;
	size_t worst_para_at = 0, line_start = 0;
	double worst_para = 0;
	int prev = -1; /* -1 no letter just before; 0 allowed; 1 foreign */
	int line_blank = 1;
	int foreign_script = -1;
	const int latin_allowed = (fr->allow >> SC_LATIN) & 1;

	for (size_t i = 0; i <= n;) {
		uint32_t cp;
		int len, sc, cls;
#if defined(__SSE2__)
		/* Fastest path: 16 bytes of ASCII without a newline, Latin
		 * allowed.  No letter in them is foreign, so a switch can only
		 * happen at the first byte; the last byte sets prev. */
		if (latin_allowed && n - i >= 16 && i < n) {
			__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
			unsigned special = (unsigned)_mm_movemask_epi8(
				_mm_or_si128(x, _mm_cmpeq_epi8(x, _mm_set1_epi8('\n'))));
			if (!special) {
				__m128i r = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)),
							 _mm_set1_epi8('a'));
				unsigned lm = (unsigned)_mm_movemask_epi8(
					_mm_cmpeq_epi8(_mm_min_epu8(r, _mm_set1_epi8(25)), r));
				unsigned k = (unsigned)__builtin_popcount(lm);
				if (space16(x) != 0xFFFFu)
					line_blank = 0;
				if ((lm & 1u) && prev == 1) {
					if (!switches)
						first_switch = i;
					switches++;
				}
				letters += k;
				p_letters += k;
				prev = (lm >> 15) & 1u ? 0 : -1;
				i += 16;
				continue;
			}
		}
#endif
		/* Fast path: ASCII other than a newline, Latin allowed. */
		if (i < n && (unsigned char)s[i] < 0x80 && s[i] != '\n' && latin_allowed) {
			unsigned bc = byte_class[(unsigned char)s[i]];
			if (!(bc & BC_SPACE))
				line_blank = 0;
			if (bc & BC_LETTER) {
				letters++;
				p_letters++;
				if (prev == 1) {
					if (!switches)
						first_switch = i;
					switches++;
				}
				prev = 0;
			} else {
				prev = -1;
			}
			i++;
			continue;
		}
		if (i == n) {
			cp = '\n';
			len = 1;
		} else if ((unsigned char)s[i] < 0x80) {
			cp = (unsigned char)s[i];
			len = 1;
		} else {
			len = utf8_decode(s + i, n - i, &cp);
		}
		if (cp == '\n') {
			/* A blank line (or the end) closes a paragraph. */
			if (line_blank || i == n) {
				if (p_letters >= (size_t)fr->para_min_letters && p_letters) {
					double sh = (double)p_foreign / (double)p_letters;
					if (sh > worst_para) {
						worst_para = sh;
						worst_para_at = line_start;
					}
				}
				p_letters = p_foreign = 0;
			}
			line_blank = 1;
			prev = -1;
			i += (size_t)len;
			line_start = i;
			if (i > n)
				break;
			continue;
		}
		if (!(cp == ' ' || cp == '\t' || cp == '\r'))
			line_blank = 0;
		sc = script_of(cp);
		if (sc < 0) {
			prev = -1;
			i += (size_t)len;
			continue;
		}
		cls = (fr->allow >> sc) & 1 ? 0 : 1;
		letters++;
		p_letters++;
		if (cls) {
			foreign++;
			p_foreign++;
			if (foreign_script < 0)
				foreign_script = sc;
		}
		if (prev >= 0 && prev != cls) {
			if (!switches)
				first_switch = i;
			switches++;
		}
		prev = cls;
		i += (size_t)len;
	}
	double share = letters ? (double)foreign / (double)letters : 0;
	const char *fs = foreign_script >= 0 ? script_names[foreign_script] : "none";
	if ((long)switches > fr->max_switches) {
		char ex[48];
		size_t so = first_switch > 12 ? first_switch - 12 : 0;
		while (so > 0 && ((unsigned char)s[so] & 0xC0) == 0x80)
			so--;
		excerpt(ex, sizeof(ex), s, n, so, first_switch + 12 < n ? first_switch + 12 : n);
		vset(v, FILTER_FAIL, "%zu script switch%s inside words (%s), first near \"%s\"", switches,
		     switches == 1 ? "" : "es", fs, ex);
	} else if (share > fr->max_share) {
		vset(v, FILTER_FAIL, "%.1f%% of %zu letters outside the allowed scripts (%s)", share * 100,
		     letters, fs);
	} else if (worst_para > fr->para_share) {
		vset(v, FILTER_FAIL,
		     "paragraph at offset %zu: %.1f%% of letters outside the allowed scripts (%s)",
		     worst_para_at, worst_para * 100, fs);
	} else {
		vset(v, FILTER_PASS, "%zu of %zu letters outside the allowed scripts", foreign, letters);
	}
}

/* ------------------------------------------------------------------------
 * Repetition: a linear detector over word n-grams and sentences, hashed
 * into an open-addressing table (never a backtracking regex). */

static int c_repetition(struct cctx *c, struct frule *fr)
{
	long ng = 8;
	int rc;
	fr->max_repeats = 40;
	fr->max_dup_share = 0.5;
	fr->min_words = 100;
	fr->sent_max = 20;
	fr->sent_min_chars = 20;
	if ((rc = p_long(c, "ngram", 1, 64, &ng)) ||
	    (rc = p_long(c, "max_repeats", 1, 1000000000L, &fr->max_repeats)) ||
	    (rc = p_double(c, "max_dup_share", 0, 1, &fr->max_dup_share, NULL)) ||
	    (rc = p_long(c, "min_words", 0, 1000000000L, &fr->min_words)) ||
	    (rc = p_long(c, "sentence_max_repeats", 1, 1000000000L, &fr->sent_max)) ||
	    (rc = p_long(c, "sentence_min_chars", 1, 1000000, &fr->sent_min_chars)))
		return rc;
	fr->ngram = (int)ng;
	return 0;
}

/* Reset the table to hold at least n keys at load <= 1/2. */
static void tab_reset(struct filter *f, size_t n)
{
	size_t cap = 64;
	while (cap < 2 * n)
		cap *= 2;
	if (cap > f->tab_alloc) {
		free(f->tab);
		f->tab = xmalloc(cap * sizeof(*f->tab));
		f->tab_alloc = cap;
	}
	memset(f->tab, 0, cap * sizeof(*f->tab));
	f->tab_cap = cap; /* the usable size for this call */
}

/* Count one more occurrence of h; returns the new count. */
static uint32_t tab_add(struct filter *f, uint64_t h)
{
	size_t mask = f->tab_cap - 1, i = (size_t)h & mask;
	for (;;) {
		struct tab_slot *t = &f->tab[i];
		if (!t->c) {
			t->h = h;
			t->c = 1;
			return 1;
		}
		if (t->h == h)
			return ++t->c;
		i = (i + 1) & mask;
	}
}

/* A 64-bit hash of a word s[0..len): 8-byte words mixed in turn.  avail
 * bytes are readable from s (at least len): a short word far enough from the
 * end is read as one 8-byte load and masked, so no byte after it counts. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ULL;
	x ^= x >> 32;
	return x;
}

static inline uint64_t load64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t word_hash(const char *s, size_t len, size_t avail)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL * (len + 1), v = 0;
	if (len >= 8) {
		size_t i = 0;
		for (; i + 8 < len; i += 8)
			h = mix64(h ^ load64(s + i)) + 0x5eed;
		return mix64(h ^ load64(s + len - 8));
	}
	if (avail >= 8) {
		v = load64(s);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		v >>= 8 * (8 - len);
#else
		v &= (1ULL << (8 * len)) - 1;
#endif
	} else {
		memcpy(&v, s, len);
	}
	return mix64(h ^ v);
}

static inline void add_word(struct filter *f, size_t *nw, const char *s, size_t b, size_t e, size_t n)
{
	if (*nw == f->words_cap) {
		f->words_cap = f->words_cap ? f->words_cap * 2 : 1024;
		f->words = xrealloc(f->words, f->words_cap * sizeof(*f->words));
	}
	f->words[(*nw)++] = word_hash(s + b, e - b, n - b);
}

/* Sentences so far: where the current one starts and the most repeated. */
struct sent_scan {
	size_t b;
	uint32_t worst;
	size_t worst_at, worst_len;
};

/* A sentence may end at j (a . ! ? or newline byte, or j == n). */
static void sentence_end(struct filter *f, const struct frule *fr, const char *s, size_t n, size_t j,
			 struct sent_scan *ss)
{
	unsigned cls = j < n ? byte_class[(unsigned char)s[j]] : BC_NEWLINE;
	if (!(cls & BC_NEWLINE) && j + 1 < n && !is_space_byte((unsigned char)s[j + 1]))
		return;
	size_t a = ss->b, z = j < n && s[j] != '\n' ? j + 1 : j;
	ss->b = j + 1;
	while (a < z && is_space_byte((unsigned char)s[a]))
		a++;
	while (z > a && is_space_byte((unsigned char)s[z - 1]))
		z--;
	if (!chars_at_least(s + a, z - a, (size_t)fr->sent_min_chars))
		return;
	uint32_t c = tab_add(f, hash64(s + a, z - a, 0x5e47));
	if (c > ss->worst) {
		ss->worst = c;
		ss->worst_at = a;
		ss->worst_len = z - a;
	}
}

static void e_repetition(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			 size_t n, struct filter_verdict *v)
{
	size_t nw = 0, dup = 0, grams, worst_at = 0;
	uint32_t worst = 0, worst_sent = 0;
	size_t worst_sent_at = 0, worst_sent_len = 0;

	/* Words: runs of non-space bytes.  A word starts where a non-space
	 * byte follows a space (the text starts after one) and ends where a
	 * space follows a non-space; the events alternate. */
	{
		uint64_t prev_space = 1;
		size_t b = 0;
		int in_word = 0;
		for (size_t base = 0; base < n; base += BLOCK) {
			size_t len = n - base < BLOCK ? n - base : BLOCK;
			uint64_t sp =
				len == BLOCK ? space_mask(s + base) : tail_mask(s + base, len, space_mask);
			uint64_t after_space = sp << 1 | prev_space;
			uint64_t ev = (~sp & after_space) | (sp & ~after_space);
			prev_space = sp >> 63;
			while (ev) {
				size_t k = base + (size_t)__builtin_ctzll(ev);
				ev &= ev - 1;
				if (in_word)
					add_word(f, &nw, s, b, k, n);
				else
					b = k;
				in_word = !in_word;
			}
		}
		if (in_word)
			add_word(f, &nw, s, b, n, n);
	}
	grams = nw >= (size_t)fr->ngram ? nw - (size_t)fr->ngram + 1 : 0;
	if ((long)nw >= fr->min_words && grams) {
		/* A rolling polynomial hash over the word hashes: O(1) per
		 * n-gram whatever n is. */
		const uint64_t base = 0x100000001b3ULL;
		uint64_t h = 0, top = 1;
		for (int k = 0; k < fr->ngram; k++) {
			h = h * base + f->words[k];
			if (k)
				top *= base;
		}
		tab_reset(f, grams);
		for (size_t g = 0;; g++) {
			uint32_t c = tab_add(f, (h ^ (h >> 31)) * 0x9e3779b97f4a7c15ULL);
			if (c > 1)
				dup++;
			if (c > worst) {
				worst = c;
				worst_at = g;
			}
			if (g + 1 >= grams)
				break;
			h = (h - f->words[g] * top) * base + f->words[g + (size_t)fr->ngram];
		}
	}
	/* Sentences: split after . ! ? followed by a space or the end, or at
	 * newlines; trimmed; only those of sent_min_chars or more count. */
	{
		struct sent_scan ss = {0, 0, 0, 0};
		size_t base = 0;
		tab_reset(f, n / (size_t)fr->sent_min_chars + 1);
		for (; base < n; base += BLOCK) {
			size_t len = n - base < BLOCK ? n - base : BLOCK;
			uint64_t ev = len == BLOCK ? end_mask(s + base) : tail_mask(s + base, len, end_mask);
			while (ev) {
				size_t j = base + (size_t)__builtin_ctzll(ev);
				ev &= ev - 1;
				if (j > n)
					break;
				sentence_end(f, fr, s, n, j, &ss);
			}
		}
		/* The end of the text ends the last sentence (a partial block
		 * already passed it). */
		if (n % BLOCK == 0)
			sentence_end(f, fr, s, n, n, &ss);
		worst_sent = ss.worst;
		worst_sent_at = ss.worst_at;
		worst_sent_len = ss.worst_len;
	}
	if ((long)worst > fr->max_repeats) {
		vset(v, FILTER_FAIL, "a %d-word sequence repeats %u times (first at word %zu)", fr->ngram,
		     worst, worst_at);
	} else if (grams && (long)nw >= fr->min_words && (double)dup / (double)grams > fr->max_dup_share) {
		vset(v, FILTER_FAIL, "%.0f%% of %d-word sequences are repeats",
		     100.0 * (double)dup / (double)grams, fr->ngram);
	} else if ((long)worst_sent > fr->sent_max) {
		char ex[64];
		excerpt(ex, sizeof(ex), s, n, worst_sent_at, worst_sent_at + worst_sent_len);
		vset(v, FILTER_FAIL, "a sentence repeats %u times: \"%s\"", worst_sent, ex);
	} else {
		vset(v, FILTER_PASS, "most repeated %d-gram %u, sentence %u", fr->ngram, worst, worst_sent);
	}
}

/* ------------------------------------------------------------------------
 * Think format, answer correctness, API errors. */

static int c_none(struct cctx *c, struct frule *fr)
{
	return 0;
}

/* Does s[0..n) contain needle?  memchr for its first byte (rare in text:
 * the needles here start with '<'), then a compare. */
static int contains(const char *s, size_t n, const char *needle)
{
	size_t len = strlen(needle);
	const char *p = s, *end = s + n;
	if (!s || n < len)
		return 0;
	if (len == 0)
		return 1;
	while ((p = memchr(p, needle[0], (size_t)(end - p) - len + 1)) != NULL) {
		if (!memcmp(p, needle, len))
			return 1;
		p++;
	}
	return 0;
}

static void e_think_format(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			   size_t n, struct filter_verdict *v)
{
	if (d->finish_reason && !strcmp(d->finish_reason, "length"))
		vset(v, FILTER_FAIL, "truncated: finish_reason length");
	else if (!d->reasoning || (d->placement && !strcmp(d->placement, "none")))
		vset(v, FILTER_FAIL, "no reasoning part");
	else if (blank_line(d->reasoning, d->reasoning_len))
		vset(v, FILTER_FAIL, "empty reasoning");
	else if (contains(d->reasoning, d->reasoning_len, "<think>") ||
		 contains(d->reasoning, d->reasoning_len, "</think>"))
		vset(v, FILTER_FAIL, "think tag inside the reasoning");
	else if (contains(d->answer, d->answer_len, "<think>") ||
		 contains(d->answer, d->answer_len, "</think>"))
		vset(v, FILTER_FAIL, "think tag inside the answer (reasoning not closed)");
	else if (!d->answer || blank_line(d->answer, d->answer_len))
		vset(v, FILTER_FAIL, "no answer after the reasoning");
	else
		vpass(v);
}

static int c_answer(struct cctx *c, struct frule *fr)
{
	int line = 0, rc;
	const char *mode = rule_param(c->r, "mode", &line);
	int pct = -1, strict = -1;
	long lpct = -1, lstrict = -1;
	answer_options_default(&fr->aopt);
	if (mode) {
		if (!strcmp(mode, "math"))
			fr->aopt.mode = ANSWER_MODE_MATH;
		else if (!strcmp(mode, "mcq"))
			fr->aopt.mode = ANSWER_MODE_MCQ;
		else if (!strcmp(mode, "number"))
			fr->aopt.mode = ANSWER_MODE_NUMBER;
		else
			return cerr(c, line, "mode must be math, mcq or number, not '%s'", mode);
	}
	if ((rc = p_double(c, "precision", 0, 1, &fr->aopt.precision, NULL)) ||
	    (rc = p_long(c, "strict", 0, 1, &lstrict)) || (rc = p_long(c, "percent", 0, 1, &lpct)))
		return rc;
	strict = (int)lstrict;
	pct = (int)lpct;
	if (strict >= 0)
		fr->aopt.strict = strict;
	if (pct >= 0)
		fr->aopt.percent = pct;
	return 0;
}

static void e_answer(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s, size_t n,
		     struct filter_verdict *v)
{
	struct answer_result r;
	if (!d->reference || !*d->reference) {
		vset(v, FILTER_SKIP, "no reference");
		return;
	}
	memset(&r, 0, sizeof(r));
	answer_check_trace(d->reference, d->answer ? d->answer : "", d->answer ? d->answer_len : 0,
			   d->reasoning ? d->reasoning : "", d->reasoning ? d->reasoning_len : 0, &fr->aopt,
			   &r);
	switch (r.status) {
	case ANSWER_OK:
		if (r.equal)
			vset(v, FILTER_PASS, "%.150s", r.extracted);
		else
			vset(v, FILTER_FAIL, "got %.80s, want %.80s", r.extracted, d->reference);
		break;
	case ANSWER_NO_ANSWER: vset(v, FILTER_FAIL, "no final answer found"); break;
	case ANSWER_GOLD_UNPARSED:
		vset(v, FILTER_SKIP, "reference not understood: %.120s", d->reference);
		break;
	case ANSWER_BUDGET: vset(v, FILTER_LIMIT, "checker budget exhausted"); break;
	default: vset(v, FILTER_LIMIT, "checker status %d", (int)r.status); break;
	}
}

/* What an API or client error looks like when it was stored as if it were
 * the model's text (the real data has one: "Error after 6 attempts: Error
 * code: 500 - {'error': ..."). */
static const char *const api_error_signatures[] = {
	"Error code: ",	      "Internal Server Error",
	"{'error': {",	      "{\"error\": {",
	"{\"error\":{",	      "Service Unavailable",
	"Bad Gateway",	      "Gateway Timeout",
	"Rate limit reached", "rate_limit_exceeded",
	"insufficient_quota", "context_length_exceeded",
	"Request timed out",  "APIConnectionError",
	"APIError",	      "Traceback (most recent call last)",
	"Error after ",
};

static int c_api_error(struct cctx *c, struct frule *fr)
{
	fr->max_chars = 2000;
	return p_long(c, "max_chars", 1, 1000000000L, &fr->max_chars);
}

static void e_api_error(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			size_t n, struct filter_verdict *v)
{
	/* A real response is long; an error message is short.  Only short
	 * texts are examined, so a trace that discusses errors passes. */
	if (!chars_at_least(s, n, (size_t)fr->max_chars + 1)) {
		for (size_t i = 0; i < ARRAY_SIZE(api_error_signatures); i++) {
			const char *p =
				memmem(s, n, api_error_signatures[i], strlen(api_error_signatures[i]));
			if (p) {
				char ex[80];
				excerpt(ex, sizeof(ex), s, n, (size_t)(p - s), n);
				vset(v, FILTER_FAIL, "looks like an API error: \"%s\"", ex);
				return;
			}
		}
	}
	vpass(v);
}

/* ------------------------------------------------------------------------
 * The table of kinds. */

typedef int kind_compile_fn(struct cctx *c, struct frule *fr);
typedef void kind_eval_fn(struct filter *f, struct frule *fr, const struct filter_doc *d, const char *s,
			  size_t n, struct filter_verdict *v);

#define REGEX_PARAMS "pattern", "flags", "match_limit", "depth_limit", "time_limit", "max_subject"

static const char *const p_none[] = {NULL};
static const char *const p_match[] = {REGEX_PARAMS, NULL};
static const char *const p_countp[] = {REGEX_PARAMS, "min", "max", NULL};
static const char *const p_len[] = {"unit", "min", "max", NULL};
static const char *const p_para[] = {"unit", "max", NULL};
static const char *const p_code[] = {"max", NULL};
static const char *const p_lang[] = {
	"allow", "max_share", "paragraph_max_share", "paragraph_min_letters", "max_switches", NULL};
static const char *const p_rep[] = {"ngram",	 "max_repeats",		 "max_dup_share",
				    "min_words", "sentence_max_repeats", "sentence_min_chars",
				    NULL};
static const char *const p_ans[] = {"mode", "precision", "strict", "percent", NULL};
static const char *const p_api[] = {"max_chars", NULL};

static const struct kind {
	const char *name;
	const char *summary;
	enum rule_target default_target;
	int fixed_target; /* the kind reads the trace's structure, not one text */
	const char *const *params;
	kind_compile_fn *compile;
	kind_eval_fn *eval;
} kinds[] = {
	{"must_match", "fails unless the regex matches the target", RULE_RESPONSE, 0, p_match, c_regex,
	 e_must_match},
	{"must_not_match", "fails when the regex matches the target", RULE_RESPONSE, 0, p_match, c_regex,
	 e_must_not_match},
	{"count", "fails unless the number of regex matches is within min..max", RULE_RESPONSE, 0, p_countp,
	 c_count, e_count},
	{"length", "fails unless the target's length (unit chars|words) is within min..max", RULE_RESPONSE, 0,
	 p_len, c_length, e_length},
	{"paragraph_length", "fails when a paragraph is longer than max (unit chars|words)", RULE_REASONING,
	 0, p_para, c_paragraph, e_paragraph},
	{"code_blocks", "fails when the target has more than max fenced code blocks (default 0)",
	 RULE_REASONING, 0, p_code, c_code_blocks, e_code_blocks},
	{"language",
	 "fails on letters outside the allowed scripts: switches inside words, overall or per-paragraph "
	 "share",
	 RULE_REASONING, 0, p_lang, c_language, e_language},
	{"repetition",
	 "fails on degenerate loops: a repeated word n-gram or sentence, or a high share of repeats",
	 RULE_RESPONSE, 0, p_rep, c_repetition, e_repetition},
	{"think_format",
	 "fails unless reasoning is present, non-empty, closed, followed by an answer, and not "
	 "truncated",
	 RULE_RESPONSE, 1, p_none, c_none, e_think_format},
	{"answer_correct", "fails unless the checker finds the reference in the answer (skip: no reference)",
	 RULE_ANSWER, 1, p_ans, c_answer, e_answer},
	{"api_error", "fails when a short target looks like an API error message stored as the response",
	 RULE_RESPONSE, 0, p_api, c_api_error, e_api_error},
};

const char *filter_kind_name(int i, const char **summary)
{
	if (i < 0 || (size_t)i >= ARRAY_SIZE(kinds))
		return NULL;
	if (summary)
		*summary = kinds[i].summary;
	return kinds[i].name;
}

static const struct kind *kind_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i].name, name))
			return &kinds[i];
	return NULL;
}

static int compile_rule(const struct rule *r, struct frule *fr, struct derr *e)
{
	struct cctx c = {r, e};
	const struct kind *k = kind_find(r->kind);

	if (!k) {
		struct buf names = BUF_INIT(1024);
		for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
			buf_printf(&names, "%s%s", i ? ", " : "", kinds[i].name);
		cerr(&c, r->kind_line, "unknown kind '%s' (%s)", r->kind, buf_str(&names));
		buf_release(&names);
		return DERR_PARSE;
	}
	for (int i = 0; i < r->nparams; i++) {
		int ok = 0;
		for (const char *const *p = k->params; *p && !ok; p++)
			ok = !strcmp(*p, r->params[i].key);
		if (!ok) {
			struct buf names = BUF_INIT(1024);
			for (const char *const *p = k->params; *p; p++)
				buf_printf(&names, "%s%s", p == k->params ? "" : ", ", *p);
			cerr(&c, r->params[i].line, "kind %s takes no parameter '%s' (it takes: %s)", k->name,
			     r->params[i].key, names.len ? buf_str(&names) : "none");
			buf_release(&names);
			return DERR_PARSE;
		}
	}
	fr->src = r;
	fr->kind = k;
	fr->target = r->has_target ? r->target : k->default_target;
	if (k->fixed_target && r->has_target && r->target != k->default_target)
		return cerr(&c, r->line, "kind %s always reads the %s", k->name,
			    rule_target_name(k->default_target));
	return k->compile(&c, fr);
}

int filter_new(struct filter **out, const struct rules *rs, struct derr *e)
{
	struct filter *f = xcalloc(1, sizeof(*f));
	int rc = 0;

	*out = NULL;
	f->rs = rs;
	f->n = rs->n;
	f->r = xcalloc((size_t)(rs->n ? rs->n : 1), sizeof(*f->r));
	buf_init(&f->response, (size_t)1 << 30);
	for (int i = 0; i < rs->n && !rc; i++)
		rc = compile_rule(&rs->v[i], &f->r[i], e);
	if (rc) {
		filter_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void filter_free(struct filter *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->n; i++)
		regex_free(f->r[i].re);
	free(f->r);
	buf_release(&f->response);
	free(f->tab);
	free(f->words);
	free(f);
}

int filter_rule_count(const struct filter *f)
{
	return f->n;
}

const char *filter_rule_name(const struct filter *f, int i)
{
	return f->r[i].src->name;
}

int filter_rule_rejects(const struct filter *f, int i)
{
	return f->r[i].src->action == RULE_REJECT;
}

const char *filter_state_name(enum filter_state s)
{
	static const char *const names[] = {"pass", "fail", "limit", "skip"};
	return (unsigned)s < ARRAY_SIZE(names) ? names[s] : "?";
}

unsigned filter_uses(const struct filter *f)
{
	unsigned u = 0;
	for (int i = 0; i < f->n; i++) {
		const struct rule *r = f->r[i].src;
		if (f->r[i].target == RULE_PROMPT)
			u |= FILTER_USES_PROMPT;
		for (int w = 0; w < r->nwhen; w++) {
			if (r->when[w].field == RULE_WHEN_SOURCE)
				u |= FILTER_USES_SOURCE;
			if (r->when[w].field == RULE_WHEN_PROFILE)
				u |= FILTER_USES_PROFILE;
		}
	}
	return u;
}

/* Does the rule's `when` hold for this trace? */
static int when_holds(const struct rule *r, const struct filter_doc *d, const char **why)
{
	for (int i = 0; i < r->nwhen; i++) {
		const struct rule_when *w = &r->when[i];
		const char *val = w->field == RULE_WHEN_DOMAIN	 ? d->domain
				  : w->field == RULE_WHEN_SOURCE ? d->source
								 : d->profile;
		int ok = 0;
		for (int j = 0; val && j < w->nvalues && !ok; j++)
			ok = !strcmp(w->values[j], val);
		if (!ok) {
			*why = rule_when_field_name(w->field);
			return 0;
		}
	}
	return 1;
}

/* The text a rule reads. */
static void target_text(struct filter *f, enum rule_target t, const struct filter_doc *d, const char **s,
			size_t *n)
{
	switch (t) {
	case RULE_PROMPT: *s = d->prompt, *n = d->prompt ? d->prompt_len : 0; break;
	case RULE_REASONING: *s = d->reasoning, *n = d->reasoning ? d->reasoning_len : 0; break;
	case RULE_ANSWER: *s = d->answer, *n = d->answer ? d->answer_len : 0; break;
	default:
		/* The whole response: reasoning, a blank line, answer. */
		if (!f->response_built) {
			buf_reset(&f->response);
			if (d->reasoning && d->reasoning_len) {
				buf_append(&f->response, d->reasoning, d->reasoning_len);
				buf_append(&f->response, "\n\n", 2);
			}
			if (d->answer)
				buf_append(&f->response, d->answer, d->answer_len);
			f->response_built = 1;
		}
		*s = buf_str(&f->response);
		*n = f->response.len;
		break;
	}
	if (!*s) {
		*s = "";
		*n = 0;
	}
}

/* Can a regex rule on the whole response be judged without building it?
 * When its pattern's every match starts with a code unit that is in
 * neither part (nor the blank line between them) it cannot match, and the
 * empty text gives the same verdict, as long as the response is within the
 * rule's subject cap (beyond it the verdict is a limit). */
static int response_cannot_match(const struct frule *fr, const struct filter_doc *d)
{
	int u = fr->re ? regex_first_unit(fr->re) : -1;
	size_t rl = d->reasoning ? d->reasoning_len : 0, al = d->answer ? d->answer_len : 0;
	if (u < 0 || u == '\n' || rl + 2 + al > fr->lim.max_subject)
		return 0;
	return !(rl && memchr(d->reasoning, u, rl)) && !(al && memchr(d->answer, u, al));
}

void filter_judge(struct filter *f, const struct filter_doc *d, struct filter_verdict *out)
{
	f->response_built = 0;
	for (int i = 0; i < f->n; i++) {
		struct frule *fr = &f->r[i];
		const char *why = NULL, *s;
		size_t n;
		out[i].detail[0] = '\0';
		if (!when_holds(fr->src, d, &why)) {
			vset(&out[i], FILTER_SKIP, "not applicable (%s)", why);
			continue;
		}
		if (fr->target == RULE_RESPONSE && !f->response_built && response_cannot_match(fr, d)) {
			fr->kind->eval(f, fr, d, "", 0, &out[i]);
			continue;
		}
		target_text(f, fr->target, d, &s, &n);
		fr->kind->eval(f, fr, d, s, n, &out[i]);
	}
}

void filter_outcome(const struct filter *f, const struct filter_verdict *v, int *accepted, int *flagged)
{
	*accepted = 1;
	*flagged = 0;
	for (int i = 0; i < f->n; i++) {
		if (v[i].state != FILTER_FAIL && v[i].state != FILTER_LIMIT)
			continue;
		if (f->r[i].src->action == RULE_REJECT)
			*accepted = 0;
		else
			*flagged = 1;
	}
}

int filter_ruleset_hash(const struct rules *rs, const char *checker_version, char out[65], struct buf *canon)
{
	struct buf text = BUF_INIT((size_t)RULES_MAX_FILE * 4);
	struct sha256 sh;
	int rc = rules_canonical(rs, &text);
	if (rc) {
		buf_release(&text);
		return rc;
	}
	sha256_init(&sh);
	sha256_update(&sh, text.data ? text.data : "", text.len);
	sha256_update(&sh, "\0engine ", 8);
	sha256_update(&sh, FILTER_ENGINE_VERSION, strlen(FILTER_ENGINE_VERSION));
	sha256_update(&sh, "\0checker ", 9);
	sha256_update(&sh, checker_version, strlen(checker_version));
	sha256_final_hex(&sh, out);
	if (canon)
		rc = buf_append(canon, buf_str(&text), text.len);
	buf_release(&text);
	return rc;
}
