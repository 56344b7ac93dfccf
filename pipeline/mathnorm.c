/* mathnorm.c - LaTeX normalisation for the answer checker (see mathnorm.h). */
#include "mathnorm.h"
#include "buf.h"
#include "err.h"
#include "util.h"

#include <string.h>
#include <strings.h>

#define NORM_MAX_DEPTH 32

enum cmd_action {
	CMD_DROP,     /* \left, \quad: nothing */
	CMD_REPLACE,  /* \dfrac -> \frac, \le -> <= */
	CMD_UNWRAP,   /* \text{..}: the argument, as text when it is words */
	CMD_DROP_ARG, /* \hspace{..}: nothing, argument included */
	CMD_DEGREE,   /* \circ: nothing unless strict */
	CMD_ENV,      /* \begin{name}: the name kept verbatim */
};

static const struct norm_cmd {
	const char *name;
	enum cmd_action action;
	const char *repl;
} norm_cmds[] = {
	{"left", CMD_DROP, NULL},
	{"right", CMD_DROP, NULL},
	{"big", CMD_DROP, NULL},
	{"Big", CMD_DROP, NULL},
	{"bigg", CMD_DROP, NULL},
	{"Bigg", CMD_DROP, NULL},
	{"bigl", CMD_DROP, NULL},
	{"bigr", CMD_DROP, NULL},
	{"Bigl", CMD_DROP, NULL},
	{"Bigr", CMD_DROP, NULL},
	{"displaystyle", CMD_DROP, NULL},
	{"textstyle", CMD_DROP, NULL},
	{"scriptstyle", CMD_DROP, NULL},
	{"limits", CMD_DROP, NULL},
	{"nolimits", CMD_DROP, NULL},
	{"quad", CMD_DROP, NULL},
	{"qquad", CMD_DROP, NULL},
	{"mathstrut", CMD_DROP, NULL},
	{"strut", CMD_DROP, NULL},
	{"nonumber", CMD_DROP, NULL},
	{"notag", CMD_DROP, NULL},
	{"dfrac", CMD_REPLACE, "\\frac"},
	{"tfrac", CMD_REPLACE, "\\frac"},
	{"cfrac", CMD_REPLACE, "\\frac"},
	{"le", CMD_REPLACE, "<="},
	{"leq", CMD_REPLACE, "<="},
	{"leqslant", CMD_REPLACE, "<="},
	{"ge", CMD_REPLACE, ">="},
	{"geq", CMD_REPLACE, ">="},
	{"geqslant", CMD_REPLACE, ">="},
	{"ne", CMD_REPLACE, "!="},
	{"neq", CMD_REPLACE, "!="},
	{"lt", CMD_REPLACE, "<"},
	{"gt", CMD_REPLACE, ">"},
	{"cdot", CMD_REPLACE, "*"},
	{"times", CMD_REPLACE, "*"},
	{"ast", CMD_REPLACE, "*"},
	{"div", CMD_REPLACE, "/"},
	{"lbrace", CMD_REPLACE, "\\{"},
	{"rbrace", CMD_REPLACE, "\\}"},
	{"langle", CMD_REPLACE, "("},
	{"rangle", CMD_REPLACE, ")"},
	{"lvert", CMD_REPLACE, "|"},
	{"rvert", CMD_REPLACE, "|"},
	{"vert", CMD_REPLACE, "|"},
	{"lfloor", CMD_REPLACE, "\\lfloor "},
	{"infin", CMD_REPLACE, "\\infty"},
	{"approx", CMD_REPLACE, "\\approx "},
	{"equiv", CMD_REPLACE, "="},
	{"dots", CMD_REPLACE, "\\dots"},
	{"ldots", CMD_REPLACE, "\\dots"},
	{"cdots", CMD_REPLACE, "\\dots"},
	{"varnothing", CMD_REPLACE, "\\emptyset"},
	{"text", CMD_UNWRAP, "t"},
	{"textbf", CMD_UNWRAP, "t"},
	{"textit", CMD_UNWRAP, "t"},
	{"textrm", CMD_UNWRAP, "t"},
	{"textsf", CMD_UNWRAP, "t"},
	{"texttt", CMD_UNWRAP, "t"},
	{"textnormal", CMD_UNWRAP, "t"},
	{"mathrm", CMD_UNWRAP, "t"},
	{"mathbf", CMD_UNWRAP, NULL},
	{"mathit", CMD_UNWRAP, NULL},
	{"mathsf", CMD_UNWRAP, NULL},
	{"mathtt", CMD_UNWRAP, NULL},
	{"mathnormal", CMD_UNWRAP, NULL},
	{"boldsymbol", CMD_UNWRAP, NULL},
	{"bm", CMD_UNWRAP, NULL},
	{"mbox", CMD_UNWRAP, "t"},
	{"hbox", CMD_UNWRAP, "t"},
	{"emph", CMD_UNWRAP, "t"},
	{"boxed", CMD_UNWRAP, NULL},
	{"fbox", CMD_UNWRAP, NULL},
	{"framebox", CMD_UNWRAP, NULL},
	{"operatorname", CMD_UNWRAP, NULL},
	{"hspace", CMD_DROP_ARG, NULL},
	{"vspace", CMD_DROP_ARG, NULL},
	{"phantom", CMD_DROP_ARG, NULL},
	{"label", CMD_DROP_ARG, NULL},
	{"circ", CMD_DEGREE, NULL},
	{"degree", CMD_DEGREE, NULL},
	{"degrees", CMD_DEGREE, NULL},
	{"begin", CMD_ENV, "\\begin"},
	{"end", CMD_ENV, "\\end"},
};

/* Non-ASCII signs and their plain forms (UTF-8 bytes). */
static const struct {
	const char *from, *to;
} norm_utf8[] = {
	{"\xe2\x88\x92", "-"},	       /* minus sign */
	{"\xe2\x80\x93", "-"},	       /* en dash */
	{"\xc3\x97", "*"},	       /* multiplication sign */
	{"\xc2\xb7", "*"},	       /* middle dot */
	{"\xe2\x8b\x85", "*"},	       /* dot operator */
	{"\xc3\xb7", "/"},	       /* division sign */
	{"\xcf\x80", "\\pi "},	       /* pi */
	{"\xe2\x88\x9a", "\\sqrt"},    /* square root */
	{"\xe2\x89\xa4", "<="},	       /* less-or-equal */
	{"\xe2\x89\xa5", ">="},	       /* greater-or-equal */
	{"\xe2\x89\xa0", "!="},	       /* not equal */
	{"\xe2\x89\x88", "\\approx "}, /* almost equal */
	{"\xe2\x88\x9e", "\\infty "},  /* infinity */
	{"\xc2\xa0", " "},	       /* no-break space */
	{"\xe2\x80\xaf", " "},	       /* narrow no-break space */
	{"\xe2\x80\x89", " "},	       /* thin space */
};

/* Bare words that are functions or constants, not text. */
static const char *const norm_funcs[] = {
	"sin",	"cos",	"tan", "cot", "sec", "csc",  "arcsin", "arccos", "arctan", "sinh",
	"cosh", "tanh", "log", "ln",  "exp", "sqrt", "pi",     "lg",	 "mod",	   "gcd",
	"lcm",	"max",	"min", "abs", "det", "deg",  "inf",    "infty",	 "floor",  "ceil"};

/* Two-letter words that are units (longer words are always text). */
static const char *const norm_units2[] = {"cm", "mm", "km", "kg", "mg", "ml", "mL", "ft", "yd",
					  "oz", "lb", "hr", "in", "sq", "cu", "mi", "pm", "am"};

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_dig(char c)
{
	return c >= '0' && c <= '9';
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The argument of a command at s[*i]: a brace group (escapes skipped) or
 * one character.  Sets the span and advances *i; -1 when there is none. */
static int norm_arg(const char *s, size_t n, size_t *i, size_t *a, size_t *alen)
{
	size_t j = *i;
	while (j < n && is_ws(s[j]))
		j++;
	if (j >= n)
		return -1;
	if (s[j] != '{') {
		if (s[j] == '}')
			return -1;
		*a = j;
		*alen = 1;
		*i = j + 1;
		return 0;
	}
	int depth = 0;
	for (size_t k = j; k < n; k++) {
		if (s[k] == '\\' && k + 1 < n) {
			k++;
			continue;
		}
		if (s[k] == '{')
			depth++;
		else if (s[k] == '}' && --depth == 0) {
			*a = j + 1;
			*alen = k - j - 1;
			*i = k + 1;
			return 0;
		}
	}
	/* Unbalanced: the rest of the string. */
	*a = j + 1;
	*alen = n - j - 1;
	*i = n;
	return 0;
}

static int put(struct buf *out, const char *s, size_t n)
{
	return buf_append(out, s, n) ? DERR_LIMIT : 0;
}

/* Space only where it separates something (never leading, never doubled). */
static int put_space(struct buf *out)
{
	if (!out->len || out->data[out->len - 1] == ' ')
		return 0;
	return put(out, " ", 1);
}

static int norm_span(const char *s, size_t n, int strict, int depth, struct buf *out);

/* Is every byte a letter, a space or a word mark, with at least 2 letters? */
static int wordish(const char *s, size_t n, int min_letters)
{
	int letters = 0;
	for (size_t i = 0; i < n; i++) {
		if (is_alpha(s[i]))
			letters++;
		else if (!is_ws(s[i]) && s[i] != '.' && s[i] != '\'' && s[i] != '-' && s[i] != '/')
			return 0;
	}
	return letters >= min_letters;
}

static int put_text(struct buf *out, const char *s, size_t n)
{
	int rc;
	while (n && is_ws(*s)) {
		s++;
		n--;
	}
	while (n && (is_ws(s[n - 1]) || s[n - 1] == '.'))
		n--;
	if ((rc = put_space(out)) || (rc = put(out, "\x01", 1)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (is_ws(s[i])) {
			if (i && !is_ws(s[i - 1]) && (rc = put(out, " ", 1)))
				return rc;
		} else if ((rc = put(out, s + i, 1))) {
			return rc;
		}
	}
	if ((rc = put(out, "\x02", 1)))
		return rc;
	return put(out, " ", 1);
}

static int norm_unwrap(const char *s, size_t a, size_t alen, int text, int strict, int depth, struct buf *out)
{
	struct buf tmp = BUF_INIT(out->max);
	int rc;

	if (alen == 1 && is_alpha(s[a]) && !text)
		return put(out, s + a, 1);
	rc = norm_span(s + a, alen, strict, depth + 1, &tmp);
	if (!rc) {
		/* Words become one text run; anything else stays math. */
		const char *t = buf_str(&tmp);
		int plain = 1;
		for (size_t i = 0; i < tmp.len; i++)
			if (t[i] == '\x01' || t[i] == '\x02' || t[i] == '\\')
				plain = 0;
		if (plain && wordish(t, tmp.len, text ? 1 : 2))
			rc = put_text(out, t, tmp.len);
		else if ((rc = put_space(out)) == 0 && (rc = put(out, t, tmp.len)) == 0)
			rc = put(out, " ", 1);
	}
	buf_release(&tmp);
	return rc;
}

static const struct norm_cmd *norm_lookup(const char *name, size_t n)
{
	for (size_t k = 0; k < ARRAY_SIZE(norm_cmds); k++)
		if (strlen(norm_cmds[k].name) == n && !memcmp(norm_cmds[k].name, name, n))
			return &norm_cmds[k];
	return NULL;
}

static int in_list(const char *const *list, size_t count, const char *s, size_t n)
{
	for (size_t k = 0; k < count; k++)
		if (strlen(list[k]) == n && !memcmp(list[k], s, n))
			return 1;
	return 0;
}

/* A degree sign just emitted as "^" or "^{" loses its caret. */
static void drop_caret(struct buf *out)
{
	while (out->len && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '{' ||
			    out->data[out->len - 1] == '^')) {
		char c = out->data[--out->len];
		out->data[out->len] = '\0';
		if (c == '^')
			break;
	}
}

static int norm_command(const char *s, size_t n, size_t *i, int strict, int depth, struct buf *out)
{
	size_t j = *i + 1, a, alen;
	const struct norm_cmd *c;

	while (j < n && is_alpha(s[j]))
		j++;
	c = norm_lookup(s + *i + 1, j - *i - 1);
	if (!c) {
		int rc = put(out, s + *i, j - *i);
		*i = j;
		/* Keep a command apart from a following letter: "\pi r". */
		if (!rc && j < n && is_alpha(s[j]))
			rc = put(out, " ", 1);
		return rc;
	}
	*i = j;
	switch (c->action) {
	case CMD_DROP: return 0;
	case CMD_REPLACE: return put(out, c->repl, strlen(c->repl));
	case CMD_DROP_ARG: norm_arg(s, n, i, &a, &alen); return 0;
	case CMD_DEGREE:
		if (strict)
			return put(out, "\\circ ", 6);
		drop_caret(out);
		/* "^{\circ}": skip the closing brace of the caret group. */
		while (*i < n && is_ws(s[*i]))
			(*i)++;
		if (*i < n && s[*i] == '}')
			(*i)++;
		return 0;
	case CMD_ENV: {
		int rc = put(out, c->repl, strlen(c->repl));
		if (!rc && !norm_arg(s, n, i, &a, &alen) && (rc = put(out, "{", 1)) == 0 &&
		    (rc = put(out, s + a, alen)) == 0)
			rc = put(out, "} ", 2);
		return rc;
	}
	case CMD_UNWRAP:
		if (norm_arg(s, n, i, &a, &alen))
			return 0;
		return norm_unwrap(s, a, alen, c->repl != NULL, strict, depth, out);
	}
	return 0;
}

static int norm_span(const char *s, size_t n, int strict, int depth, struct buf *out)
{
	int rc = 0;

	if (depth > NORM_MAX_DEPTH)
		return DERR_LIMIT;
	for (size_t i = 0; i < n && !rc;) {
		char c = s[i];
		if (c == '\\' && i + 1 < n && is_alpha(s[i + 1])) {
			rc = norm_command(s, n, &i, strict, depth, out);
			continue;
		}
		if (c == '\\' && i + 1 < n) {
			char d = s[i + 1];
			i += 2;
			if (d == '{' || d == '}')
				rc = put(out, s + i - 2, 2);
			else if (d == '\\')
				rc = put(out, "\\\\ ", 3);
			else if (d == '%')
				rc = put(out, "%", 1);
			else if (d == '$')
				rc = strict ? put(out, "$", 1) : 0;
			else if (d == '&' || d == '#' || d == '_')
				rc = put(out, &d, 1);
			else if (d == ' ')
				rc = put_space(out);
			/* \, \! \; \: \> and others: spacing, dropped. */
			continue;
		}
		if ((unsigned char)c >= 0x80) {
			size_t k;
			for (k = 0; k < ARRAY_SIZE(norm_utf8); k++) {
				size_t m = strlen(norm_utf8[k].from);
				if (i + m <= n && !memcmp(s + i, norm_utf8[k].from, m))
					break;
			}
			if (k < ARRAY_SIZE(norm_utf8)) {
				rc = put(out, norm_utf8[k].to, strlen(norm_utf8[k].to));
				i += strlen(norm_utf8[k].from);
			} else if (i + 1 < n && (unsigned char)c == 0xc2 && (unsigned char)s[i + 1] == 0xb0) {
				/* degree sign */
				if (strict)
					rc = put(out, "\\circ ", 6);
				i += 2;
			} else {
				rc = put(out, s + i, 1);
				i++;
			}
			continue;
		}
		if (c == '$') {
			i++;
			continue;
		}
		if (c == '~' || is_ws(c)) {
			rc = put_space(out);
			i++;
			continue;
		}
		if (c == '\x01' || c == '\x02') {
			i++;
			continue;
		}
		if (is_alpha(c)) {
			size_t j = i;
			while (j < n && is_alpha(s[j]))
				j++;
			size_t w = j - i;
			if ((w >= 3 && !in_list(norm_funcs, ARRAY_SIZE(norm_funcs), s + i, w)) ||
			    (w == 2 && in_list(norm_units2, ARRAY_SIZE(norm_units2), s + i, w))) {
				rc = put_text(out, s + i, w);
			} else {
				rc = put(out, s + i, w);
				/* "sin x" keeps its space: a function name, then its argument. */
				if (!rc && w >= 2 && j < n && is_ws(s[j]))
					rc = put(out, " ", 1);
			}
			i = j;
			continue;
		}
		/* A clock time on the hour: "2:00 pm" is 2 (the "pm" is a unit). */
		if (c == ':' && !strict && out->len && is_dig(out->data[out->len - 1]) && i + 2 < n + 0 &&
		    s[i + 1] == '0' && s[i + 2] == '0' && (i + 3 >= n || !is_dig(s[i + 3]))) {
			i += 3;
			continue;
		}
		rc = put(out, &c, 1);
		i++;
	}
	return rc;
}

/* Length of a thousands-grouped number at s[i] ("1,234,567": 1-3 digits,
 * then groups of ",ddd", not followed by a digit), or 0. */
static size_t thousands_len(const char *s, size_t n, size_t i)
{
	size_t j = i, groups = 0;
	while (j < n && is_dig(s[j]) && j - i < 4)
		j++;
	if (j == i || j - i > 3)
		return 0;
	while (j + 3 < n && s[j] == ',' && is_dig(s[j + 1]) && is_dig(s[j + 2]) && is_dig(s[j + 3]) &&
	       (j + 4 >= n || !is_dig(s[j + 4]))) {
		j += 4;
		groups++;
	}
	return groups ? j - i : 0;
}

/* Drop "{,}" and thousands commas ("1,234,567") outside brackets. */
static void norm_separators(struct buf *b)
{
	char *s = b->data;
	size_t n = b->len, o = 0;
	int depth = 0;

	if (!s)
		return;
	for (size_t i = 0; i < n;) {
		char c = s[i];
		if (c == '{' && i + 2 < n && s[i + 1] == ',' && s[i + 2] == '}') {
			i += 3;
			continue;
		}
		if (c == '(' || c == '[' || c == '{')
			depth++;
		else if ((c == ')' || c == ']' || c == '}') && depth > 0)
			depth--;
		if (is_dig(c) && depth == 0 &&
		    (i == 0 || !(is_dig(s[i - 1]) || is_alpha(s[i - 1]) || s[i - 1] == '.'))) {
			size_t l = thousands_len(s, n, i);
			for (size_t k = i; k < i + l; k++)
				if (s[k] != ',')
					s[o++] = s[k];
			if (l) {
				i += l;
				continue;
			}
		}
		s[o++] = c;
		i++;
	}
	s[o] = '\0';
	b->len = o;
}

int mathnorm(const char *s, size_t n, int strict, struct buf *out)
{
	int rc;

	buf_reset(out);
	rc = norm_span(s, n, strict, 0, out);
	if (rc)
		return rc;
	norm_separators(out);
	/* Trim spaces, a trailing full stop or comma. */
	while (out->len && (out->data[out->len - 1] == ' ' || out->data[out->len - 1] == '.' ||
			    out->data[out->len - 1] == ','))
		out->data[--out->len] = '\0';
	if (out->len && out->data[0] == ' ') {
		memmove(out->data, out->data + 1, out->len);
		out->len--;
	}
	return 0;
}
