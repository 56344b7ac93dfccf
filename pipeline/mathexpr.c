/* mathexpr.c - parse and compare normalised answers (see mathexpr.h). */
#include "mathexpr.h"
#include "err.h"
#include "mathnorm.h"
#include "rat.h"
#include "util.h"

#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MX_MAX_NODES 2048
#define MX_MAX_DEPTH 64
#define MX_MAX_ITEMS 128
#define MX_MAX_VARS 8
#define MX_POINTS 6
#define MX_MAX_STEPS 200000

enum mx_kind {
	MX_NUM,
	MX_VAR,
	MX_CONST,
	MX_ADD,
	MX_SUB,
	MX_MUL,
	MX_DIV,
	MX_POW,
	MX_NEG,
	MX_FUNC,
	MX_FACT,
	MX_PCT,
	MX_PM, /* a \pm b */
	MX_TEXT,
	MX_LIST,
	MX_REL,
	MX_MATRIX,
	MX_UNION,
};

enum mx_const { C_PI, C_E, C_I, C_INF };

enum mx_rel { R_EQ, R_LT, R_LE, R_GT, R_GE, R_NE, R_IN, R_APPROX };

enum mx_func {
	F_SQRT,
	F_ROOT,
	F_SIN,
	F_COS,
	F_TAN,
	F_COT,
	F_SEC,
	F_CSC,
	F_ASIN,
	F_ACOS,
	F_ATAN,
	F_SINH,
	F_COSH,
	F_TANH,
	F_LN,
	F_LOG,
	F_EXP,
	F_ABS,
	F_BINOM,
	F_LOGB,
};

struct mx_node {
	enum mx_kind kind;
	int op;			      /* const, rel, func id */
	char open, close;	      /* MX_LIST brackets; 0 for a bare list */
	int count;		      /* items of a list/union, cells of a matrix */
	int rows, cols;		      /* MX_MATRIX */
	int decimals;		      /* MX_NUM: digits after '.', -1 for an integer literal */
	int sig;		      /* MX_NUM: significant digits */
	struct mx_node *a, *b, *next; /* children; next links list items */
	struct rat *val;	      /* MX_NUM */
	const char *name;	      /* MX_VAR, MX_TEXT: points into the text copy */
	size_t nlen;
};

#define MX_CHUNK 64

/* Nodes come from chunks that never move (children point at them). */
struct mx_chunk {
	struct mx_chunk *next;
	int used;
	struct mx_node n[MX_CHUNK];
};

struct mathexpr {
	char *text; /* a private copy: names point into it */
	size_t n;
	struct mx_node *root;
	int used; /* nodes in all chunks */
	struct mx_chunk *chunks;
};

/* ---- parser ------------------------------------------------------------------------ */

struct mx_parser {
	struct mathexpr *e;
	const char *s;
	size_t n, i;
	int depth;
	int err; /* MATHEXPR_UNPARSED or MATHEXPR_BUDGET once something failed */
	const struct mathexpr_opts *o;
};

static struct mx_node *mk(struct mx_parser *p, enum mx_kind k)
{
	struct mx_node *x;
	if (p->e->used >= MX_MAX_NODES) {
		p->err = MATHEXPR_BUDGET;
		return NULL;
	}
	struct mx_chunk *c = p->e->chunks;
	if (!c || c->used == MX_CHUNK) {
		c = xmalloc(sizeof(*c));
		c->used = 0;
		c->next = p->e->chunks;
		p->e->chunks = c;
	}
	x = &c->n[c->used++];
	p->e->used++;
	memset(x, 0, sizeof(*x));
	x->kind = k;
	x->decimals = -1;
	return x;
}

static struct mx_node *mk2(struct mx_parser *p, enum mx_kind k, struct mx_node *a, struct mx_node *b)
{
	struct mx_node *x = mk(p, k);
	if (x) {
		x->a = a;
		x->b = b;
	}
	return x;
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_dig(char c)
{
	return c >= '0' && c <= '9';
}

static void skip_ws(struct mx_parser *p)
{
	while (p->i < p->n && p->s[p->i] == ' ')
		p->i++;
}

static char peek(struct mx_parser *p)
{
	skip_ws(p);
	return p->i < p->n ? p->s[p->i] : '\0';
}

/* Does the input continue with the literal t (after spaces)? */
static int at(struct mx_parser *p, const char *t)
{
	size_t m = strlen(t);
	skip_ws(p);
	if (p->i + m > p->n || memcmp(p->s + p->i, t, m))
		return 0;
	/* a command name must end there: "\in" is not "\infty" */
	if (t[0] == '\\' && is_alpha(t[m - 1]) && p->i + m < p->n && is_alpha(p->s[p->i + m]))
		return 0;
	return 1;
}

static int eat(struct mx_parser *p, const char *t)
{
	if (!at(p, t))
		return 0;
	p->i += strlen(t);
	return 1;
}

static void fail(struct mx_parser *p)
{
	if (!p->err)
		p->err = MATHEXPR_UNPARSED;
}

/* A command name at p->i (which is at '\'): its letters. */
static size_t cmd_len(struct mx_parser *p)
{
	size_t j = p->i + 1;
	while (j < p->n && is_alpha(p->s[j]))
		j++;
	return j - p->i - 1;
}

static struct mx_node *parse_items(struct mx_parser *p, const char *closers, int *count);
static struct mx_node *parse_union(struct mx_parser *p);
static struct mx_node *parse_sum(struct mx_parser *p);
static struct mx_node *parse_unary(struct mx_parser *p);
static struct mx_node *parse_postfix(struct mx_parser *p);

static struct mx_node *parse_number(struct mx_parser *p, int one_digit)
{
	size_t b = p->i, j = p->i;
	int frac = 0, sig = 0, seen_nz = 0, dot = 0;
	struct mx_node *x;

	if (one_digit) {
		j = b + 1;
	} else {
		while (j < p->n &&
		       (is_dig(p->s[j]) || (p->s[j] == '.' && !dot && j + 1 < p->n && is_dig(p->s[j + 1])))) {
			if (p->s[j] == '.') {
				dot = 1;
			} else {
				if (p->s[j] != '0')
					seen_nz = 1;
				if (seen_nz)
					sig++;
				if (dot)
					frac++;
			}
			j++;
		}
		/* scientific notation: 4.5e33, 1E-5 */
		if (j + 1 < p->n && (p->s[j] == 'e' || p->s[j] == 'E') &&
		    (is_dig(p->s[j + 1]) ||
		     ((p->s[j + 1] == '-' || p->s[j + 1] == '+') && j + 2 < p->n && is_dig(p->s[j + 2])))) {
			j += 2;
			while (j < p->n && is_dig(p->s[j]))
				j++;
		}
	}
	x = mk(p, MX_NUM);
	if (!x)
		return NULL;
	x->val = rat_new();
	int rc = rat_set_dec(x->val, p->s + b, j - b);
	if (rc) {
		p->err = rc == DERR_LIMIT ? MATHEXPR_BUDGET : MATHEXPR_UNPARSED;
		return NULL;
	}
	x->decimals = dot ? frac : -1;
	x->sig = sig ? sig : 1;
	p->i = j;
	return x;
}

/* An argument of \frac, \sqrt, ^: a brace group, one digit, or one primary. */
static struct mx_node *parse_arg(struct mx_parser *p)
{
	char c = peek(p);
	if (c == '{') {
		p->i++;
		int count;
		struct mx_node *x = parse_items(p, "}", &count);
		if (!x || !eat(p, "}")) {
			fail(p);
			return NULL;
		}
		return x;
	}
	if (is_dig(c))
		return parse_number(p, 1);
	if (c == '-') {
		p->i++;
		struct mx_node *x = parse_arg(p);
		return x ? mk2(p, MX_NEG, x, NULL) : NULL;
	}
	return parse_postfix(p);
}

/* Exponent after '^': a brace group, a whole number ("2^10" as typed in
 * plain text), a signed one, or one primary. */
static struct mx_node *parse_exponent(struct mx_parser *p)
{
	char c = peek(p);
	if (is_dig(c))
		return parse_number(p, 0);
	if (c == '-' || c == '+') {
		p->i++;
		struct mx_node *x = parse_exponent(p);
		if (!x || c == '+')
			return x;
		return mk2(p, MX_NEG, x, NULL);
	}
	return parse_arg(p);
}

static const struct {
	const char *name;
	int id;
} mx_funcs[] = {
	{"sin", F_SIN},	  {"cos", F_COS},     {"tan", F_TAN},	  {"cot", F_COT},     {"sec", F_SEC},
	{"csc", F_CSC},	  {"arcsin", F_ASIN}, {"arccos", F_ACOS}, {"arctan", F_ATAN}, {"sinh", F_SINH},
	{"cosh", F_COSH}, {"tanh", F_TANH},   {"ln", F_LN},	  {"log", F_LOG},     {"exp", F_EXP},
};

static const char *const mx_greek[] = {
	"alpha",    "beta",    "gamma", "delta",  "epsilon", "varepsilon", "zeta",  "eta",   "theta",
	"vartheta", "iota",    "kappa", "lambda", "mu",	     "nu",	   "xi",    "rho",   "sigma",
	"tau",	    "upsilon", "phi",	"varphi", "chi",     "psi",	   "omega", "Gamma", "Delta",
	"Theta",    "Lambda",  "Sigma", "Phi",	  "Psi",     "Omega"};

static struct mx_node *parse_function(struct mx_parser *p, int id)
{
	struct mx_node *f = mk(p, MX_FUNC), *pw = NULL, *base = NULL;
	if (!f)
		return NULL;
	f->op = id;
	if (id == F_LOG && eat(p, "_")) {
		base = parse_arg(p);
		if (!base)
			return NULL;
		f->op = F_LOGB;
	}
	if (eat(p, "^")) {
		pw = parse_exponent(p);
		if (!pw)
			return NULL;
	}
	/* The argument: a parenthesised group, or the next power ("\sin 2x" is
	 * read as \sin(2) x, an accepted ambiguity). */
	if (peek(p) == '(') {
		p->i++;
		int count;
		f->a = parse_items(p, ")", &count);
		if (!f->a || count != 1 || !eat(p, ")")) {
			fail(p);
			return NULL;
		}
	} else {
		f->a = parse_unary(p);
		if (!f->a)
			return NULL;
	}
	f->b = base;
	if (pw)
		return mk2(p, MX_POW, f, pw);
	return f;
}

/* \begin{pmatrix} a & b \\ c & d \end{pmatrix} (any matrix environment). */
static struct mx_node *parse_matrix(struct mx_parser *p)
{
	size_t j;
	struct mx_node *m, *last = NULL;
	int rows = 0, cols = -1, c = 0;

	if (!eat(p, "{")) {
		fail(p);
		return NULL;
	}
	j = p->i;
	while (j < p->n && p->s[j] != '}')
		j++;
	int array = j - p->i == 5 && !memcmp(p->s + p->i, "array", 5);
	if (j >= p->n || (!array && !memmem(p->s + p->i, j - p->i, "matrix", 6))) {
		fail(p);
		return NULL;
	}
	p->i = j + 1;
	if (array && eat(p, "{")) {
		/* the column spec, {cc} or {c|c} */
		while (p->i < p->n && p->s[p->i] != '}')
			p->i++;
		p->i++;
	}
	m = mk(p, MX_MATRIX);
	if (!m)
		return NULL;
	for (;;) {
		struct mx_node *cell = parse_sum(p);
		if (!cell)
			return NULL;
		if (last)
			last->next = cell;
		else
			m->a = cell;
		last = cell;
		c++;
		m->count++;
		if (eat(p, "&"))
			continue;
		if (eat(p, "\\\\")) {
			if (at(p, "\\end"))
				goto end;
			if (cols >= 0 && c != cols) {
				fail(p);
				return NULL;
			}
			cols = c;
			c = 0;
			rows++;
			continue;
		}
	end:
		if (!eat(p, "\\end") || !eat(p, "{")) {
			fail(p);
			return NULL;
		}
		while (p->i < p->n && p->s[p->i] != '}')
			p->i++;
		p->i++;
		if (cols >= 0 && c != cols) {
			fail(p);
			return NULL;
		}
		cols = c;
		rows++;
		break;
	}
	m->rows = rows;
	m->cols = cols;
	return m;
}

static struct mx_node *mk_const(struct mx_parser *p, int id)
{
	struct mx_node *x = mk(p, MX_CONST);
	if (x)
		x->op = id;
	return x;
}

static struct mx_node *parse_command(struct mx_parser *p)
{
	size_t len = cmd_len(p);
	const char *name = p->s + p->i + 1;
	struct mx_node *x, *y;

#define IS(lit) (len == sizeof(lit) - 1 && !memcmp(name, lit, len))
	if (len == 0) {
		fail(p);
		return NULL;
	}
	p->i += len + 1;
	if (IS("frac")) {
		x = parse_arg(p);
		y = x ? parse_arg(p) : NULL;
		return y ? mk2(p, MX_DIV, x, y) : NULL;
	}
	if (IS("binom")) {
		x = parse_arg(p);
		y = x ? parse_arg(p) : NULL;
		if (!y)
			return NULL;
		struct mx_node *f = mk2(p, MX_FUNC, x, y);
		if (f)
			f->op = F_BINOM;
		return f;
	}
	if (IS("sqrt")) {
		struct mx_node *idx = NULL;
		if (peek(p) == '[') {
			p->i++;
			idx = parse_sum(p);
			if (!idx || !eat(p, "]")) {
				fail(p);
				return NULL;
			}
		}
		x = parse_arg(p);
		if (!x)
			return NULL;
		y = mk2(p, MX_FUNC, x, idx);
		if (y)
			y->op = idx ? F_ROOT : F_SQRT;
		return y;
	}
	if (IS("pi"))
		return mk_const(p, C_PI);
	if (IS("infty"))
		return mk_const(p, C_INF);
	if (IS("emptyset")) {
		x = mk(p, MX_LIST);
		if (x) {
			x->open = '{';
			x->close = '}';
		}
		return x;
	}
	if (IS("begin"))
		return parse_matrix(p);
	for (size_t k = 0; k < ARRAY_SIZE(mx_funcs); k++)
		if (strlen(mx_funcs[k].name) == len && !memcmp(mx_funcs[k].name, name, len))
			return parse_function(p, mx_funcs[k].id);
	for (size_t k = 0; k < ARRAY_SIZE(mx_greek); k++)
		if (strlen(mx_greek[k]) == len && !memcmp(mx_greek[k], name, len)) {
			x = mk(p, MX_VAR);
			if (x) {
				x->name = name - 1;
				x->nlen = len + 1;
			}
			return x;
		}
#undef IS
	fail(p);
	return NULL;
}

static struct mx_node *parse_bracketed(struct mx_parser *p, char open)
{
	int count;
	struct mx_node *items, *l;
	const char *closers = open == '{' ? "\\}" : ")]";
	char close;

	items = parse_items(p, closers, &count);
	if (!items && p->err)
		return NULL;
	if (open == '{') {
		if (!eat(p, "\\}")) {
			fail(p);
			return NULL;
		}
		close = '}';
	} else {
		close = peek(p);
		if (close != ')' && close != ']') {
			fail(p);
			return NULL;
		}
		p->i++;
	}
	if (open != '{' && count == 1 && ((open == '(' && close == ')') || (open == '[' && close == ']')))
		return items; /* grouping */
	l = mk(p, MX_LIST);
	if (!l)
		return NULL;
	l->open = open;
	l->close = close;
	l->a = items;
	l->count = count;
	return l;
}

static struct mx_node *parse_primary(struct mx_parser *p)
{
	char c = peek(p);
	struct mx_node *x;

	if (p->depth > MX_MAX_DEPTH) {
		p->err = MATHEXPR_BUDGET;
		return NULL;
	}
	if (is_dig(c) || (c == '.' && p->i + 1 < p->n && is_dig(p->s[p->i + 1]))) {
		if (c == '.') {
			/* ".5": read as 0.5 */
			x = mk(p, MX_NUM);
			if (!x)
				return NULL;
			size_t j = p->i + 1;
			while (j < p->n && is_dig(p->s[j]))
				j++;
			char tmp[64];
			size_t l = j - p->i;
			if (l + 1 >= sizeof(tmp)) {
				fail(p);
				return NULL;
			}
			tmp[0] = '0';
			memcpy(tmp + 1, p->s + p->i, l);
			x->val = rat_new();
			if (rat_set_dec(x->val, tmp, l + 1)) {
				fail(p);
				return NULL;
			}
			x->decimals = (int)l - 1;
			x->sig = (int)l - 1;
			p->i = j;
			return x;
		}
		return parse_number(p, 0);
	}
	if (is_alpha(c)) {
		p->i++;
		if (c == 'e' || c == 'i')
			return mk_const(p, c == 'e' ? C_E : C_I);
		x = mk(p, MX_VAR);
		if (!x)
			return NULL;
		x->name = p->s + p->i - 1;
		x->nlen = 1;
		return x;
	}
	if (c == MATHNORM_TEXT_OPEN) {
		size_t j = p->i + 1;
		while (j < p->n && p->s[j] != MATHNORM_TEXT_CLOSE)
			j++;
		x = mk(p, MX_TEXT);
		if (!x)
			return NULL;
		x->name = p->s + p->i + 1;
		x->nlen = j - p->i - 1;
		p->i = j < p->n ? j + 1 : j;
		return x;
	}
	if (c == '\\') {
		if (at(p, "\\{")) {
			p->i += 2;
			p->depth++;
			x = parse_bracketed(p, '{');
			p->depth--;
			return x;
		}
		return parse_command(p);
	}
	if (c == '(' || c == '[') {
		p->i++;
		p->depth++;
		x = parse_bracketed(p, c);
		p->depth--;
		return x;
	}
	if (c == '{') {
		p->i++;
		p->depth++;
		int count;
		x = parse_items(p, "}", &count);
		p->depth--;
		if (!x || !eat(p, "}")) {
			fail(p);
			return NULL;
		}
		if (count > 1) {
			struct mx_node *l = mk(p, MX_LIST);
			if (!l)
				return NULL;
			l->a = x;
			l->count = count;
			return l;
		}
		return x;
	}
	if (c == '|') {
		p->i++;
		p->depth++;
		x = parse_sum(p);
		p->depth--;
		if (!x || !eat(p, "|")) {
			fail(p);
			return NULL;
		}
		struct mx_node *f = mk2(p, MX_FUNC, x, NULL);
		if (f)
			f->op = F_ABS;
		return f;
	}
	fail(p);
	return NULL;
}

static struct mx_node *parse_postfix(struct mx_parser *p)
{
	struct mx_node *x = parse_primary(p);

	while (x) {
		char c = peek(p);
		if (c == '!' && !(p->i + 1 < p->n && p->s[p->i + 1] == '=')) {
			p->i++;
			x = mk2(p, MX_FACT, x, NULL);
		} else if (c == '%') {
			p->i++;
			x = mk2(p, MX_PCT, x, NULL);
		} else if (c == '_' && x->kind == MX_VAR) {
			/* x_1, a_{n}: the subscript is part of the name */
			size_t b = p->i;
			p->i++;
			if (!parse_arg(p))
				return NULL;
			x->nlen = p->i - (size_t)(x->name - p->s);
			(void)b;
		} else if (c == '\'' && x->kind == MX_VAR) {
			p->i++;
			x->nlen = p->i - (size_t)(x->name - p->s);
		} else {
			break;
		}
	}
	return x;
}

static struct mx_node *parse_power(struct mx_parser *p)
{
	struct mx_node *x = parse_postfix(p);
	if (x && eat(p, "^")) {
		struct mx_node *y;
		p->depth++;
		if (p->depth > MX_MAX_DEPTH) {
			p->err = MATHEXPR_BUDGET;
			return NULL;
		}
		y = parse_exponent(p);
		/* right-associative: 2^3^2 = 2^(3^2) */
		while (y && at(p, "^")) {
			p->i++;
			struct mx_node *z = parse_exponent(p);
			if (!z)
				return NULL;
			y = mk2(p, MX_POW, y, z);
		}
		p->depth--;
		if (!y)
			return NULL;
		x = mk2(p, MX_POW, x, y);
		/* a factorial or percent after a power: (2^3)! */
		while (x && (peek(p) == '!' || peek(p) == '%') &&
		       !(p->i + 1 < p->n && p->s[p->i + 1] == '=')) {
			x = mk2(p, peek(p) == '!' ? MX_FACT : MX_PCT, x, NULL);
			p->i++;
		}
	}
	return x;
}

static struct mx_node *parse_unary(struct mx_parser *p)
{
	if (eat(p, "-")) {
		p->depth++;
		if (p->depth > MX_MAX_DEPTH) {
			p->err = MATHEXPR_BUDGET;
			return NULL;
		}
		struct mx_node *x = parse_unary(p);
		p->depth--;
		return x ? mk2(p, MX_NEG, x, NULL) : NULL;
	}
	if (eat(p, "+"))
		return parse_unary(p);
	return parse_power(p);
}

/* Can the next token begin a factor of an implicit product ("2x", "3\pi")? */
static int starts_factor(struct mx_parser *p)
{
	char c = peek(p);
	if (is_dig(c) || is_alpha(c) || c == '(')
		return 1;
	if (c == '\\') {
		if (at(p, "\\{") || at(p, "\\}") || at(p, "\\\\") || at(p, "\\cup") || at(p, "\\in") ||
		    at(p, "\\pm") || at(p, "\\mp") || at(p, "\\cap") || at(p, "\\end") || at(p, "\\dots") ||
		    at(p, "\\approx") || at(p, "\\to"))
			return 0;
		return 1;
	}
	return 0;
}

static int is_sep_word(const struct mx_node *t)
{
	return t->kind == MX_TEXT && ((t->nlen == 3 && !strncasecmp(t->name, "and", 3)) ||
				      (t->nlen == 2 && !strncasecmp(t->name, "or", 2)));
}

/* A unit after a quantity: text, with an optional power or "/unit". */
static int skip_unit(struct mx_parser *p)
{
	size_t save = p->i;
	if (peek(p) != MATHNORM_TEXT_OPEN)
		return 0;
	struct mx_node *t = parse_primary(p);
	if (!t || is_sep_word(t)) {
		p->i = save;
		p->err = 0;
		return 0;
	}
	if (at(p, "^")) {
		p->i++;
		if (!parse_exponent(p))
			return 0;
	}
	return 1;
}

/* An integer literal, or a negated one. */
static int is_int_literal(const struct mx_node *x)
{
	if (x->kind == MX_NEG)
		x = x->a;
	return x->kind == MX_NUM && x->decimals < 0;
}

static struct mx_node *parse_term(struct mx_parser *p)
{
	struct mx_node *x = parse_unary(p);

	while (x) {
		if (eat(p, "*")) {
			struct mx_node *y = parse_unary(p);
			x = y ? mk2(p, MX_MUL, x, y) : NULL;
		} else if (peek(p) == '/' && !at(p, "//")) {
			p->i++;
			struct mx_node *y = parse_unary(p);
			x = y ? mk2(p, MX_DIV, x, y) : NULL;
		} else if (!p->o->strict && peek(p) == MATHNORM_TEXT_OPEN && x->kind != MX_TEXT) {
			/* "10 cm", "5\text{ dollars}": units after a quantity go */
			if (!skip_unit(p))
				break;
			while (peek(p) == '/' && p->i + 1 < p->n) {
				size_t save = p->i;
				p->i++;
				if (!skip_unit(p)) {
					p->i = save;
					break;
				}
			}
		} else if (starts_factor(p) && x->kind != MX_TEXT) {
			int mixed = at(p, "\\frac") && is_int_literal(x);
			struct mx_node *y = parse_power(p);
			if (y && mixed && y->kind == MX_DIV && is_int_literal(y->a) && is_int_literal(y->b)) {
				/* a mixed number, 2\\frac{1}{2} = 5/2 (-2\\frac12 = -5/2) */
				if (x->kind == MX_NEG) {
					struct mx_node *sum = mk2(p, MX_ADD, x->a, y);
					x = sum ? mk2(p, MX_NEG, sum, NULL) : NULL;
				} else {
					x = mk2(p, MX_ADD, x, y);
				}
			} else {
				x = y ? mk2(p, MX_MUL, x, y) : NULL;
			}
		} else {
			break;
		}
	}
	return x;
}

static struct mx_node *parse_sum(struct mx_parser *p)
{
	struct mx_node *x;

	if (at(p, "\\pm")) {
		p->i += 3;
		struct mx_node *y = parse_term(p);
		x = y ? mk2(p, MX_PM, NULL, y) : NULL;
	} else {
		x = parse_term(p);
	}
	while (x) {
		enum mx_kind k;
		if (eat(p, "+"))
			k = MX_ADD;
		else if (peek(p) == '-' && !(p->i + 1 < p->n && p->s[p->i + 1] == '>')) {
			p->i++;
			k = MX_SUB;
		} else if (eat(p, "\\pm") || eat(p, "\\mp"))
			k = MX_PM;
		else
			break;
		struct mx_node *y = parse_term(p);
		x = y ? mk2(p, k, x, y) : NULL;
	}
	return x;
}

static int parse_relop(struct mx_parser *p)
{
	static const struct {
		const char *t;
		int op;
	} ops[] = {{"<=", R_LE},   {">=", R_GE}, {"!=", R_NE},		{"=<", R_LE},	{"=>", R_GE},
		   {"=", R_EQ},	   {"<", R_LT},	 {">", R_GT},		{"\\in", R_IN}, {":", R_EQ},
		   {"\\to", R_EQ}, {"->", R_EQ}, {"\\approx", R_APPROX}};
	for (size_t k = 0; k < ARRAY_SIZE(ops); k++)
		if (eat(p, ops[k].t))
			return ops[k].op;
	return -1;
}

#define MX_MAX_CHAIN 16

/*
 * A relation or a chain of them.  A chain of equalities keeps its first and
 * last sides ("x = 5+5+1 = 11" is x = 11) and stops at an approximation
 * ("x = 1/3 \approx 0.33" is x = 1/3; "x \approx 11" alone is x = 11).
 * Other chains ("a < x < b") stay nested left to right.
 */
static struct mx_node *parse_rel(struct mx_parser *p)
{
	struct mx_node *side[MX_MAX_CHAIN + 1];
	int ops[MX_MAX_CHAIN], n = 0, op, all_eq = 1;

	side[0] = parse_sum(p);
	if (!side[0])
		return NULL;
	while ((op = parse_relop(p)) >= 0) {
		if (n >= MX_MAX_CHAIN) {
			p->err = MATHEXPR_BUDGET;
			return NULL;
		}
		ops[n] = op;
		side[++n] = parse_sum(p);
		if (!side[n])
			return NULL;
		if (op != R_EQ && op != R_APPROX)
			all_eq = 0;
	}
	if (n == 0)
		return side[0];
	if (all_eq) {
		int last = 1;
		while (last < n && ops[last] == R_EQ)
			last++;
		struct mx_node *x = mk2(p, MX_REL, side[0], side[last]);
		if (x)
			x->op = R_EQ;
		return x;
	}
	struct mx_node *x = side[0];
	for (int k = 0; k < n && x; k++) {
		x = mk2(p, MX_REL, x, side[k + 1]);
		if (x)
			x->op = ops[k] == R_APPROX ? R_EQ : ops[k];
	}
	return x;
}

static struct mx_node *parse_union(struct mx_parser *p)
{
	struct mx_node *x = parse_rel(p), *u = NULL, *last = NULL;

	while (x && at(p, "\\cup")) {
		p->i += 4;
		if (!u) {
			u = mk(p, MX_UNION);
			if (!u)
				return NULL;
			u->a = last = x;
			u->count = 1;
		}
		struct mx_node *y = parse_rel(p);
		if (!y)
			return NULL;
		last->next = y;
		last = y;
		u->count++;
	}
	return u ? u : x;
}

/* Items separated by ',' ';' or the words "and"/"or", up to one of the
 * closers (not consumed) or the end.  The first item, linked by next. */
static struct mx_node *parse_items(struct mx_parser *p, const char *closers, int *count)
{
	struct mx_node *first = NULL, *last = NULL;

	*count = 0;
	for (;;) {
		char c = peek(p);
		if (c == '\0' || (closers && strchr(closers, c) && !(c == '\\' && !at(p, "\\}"))))
			break;
		struct mx_node *x = parse_union(p);
		if (!x)
			return NULL;
		if (*count >= MX_MAX_ITEMS) {
			p->err = MATHEXPR_BUDGET;
			return NULL;
		}
		if (last)
			last->next = x;
		else
			first = x;
		last = x;
		(*count)++;
		if (eat(p, ",") || eat(p, ";"))
			continue;
		if (peek(p) == MATHNORM_TEXT_OPEN) {
			size_t save = p->i;
			struct mx_node *t = parse_primary(p);
			if (t && is_sep_word(t))
				continue;
			p->i = save;
		}
		break;
	}
	return first;
}

int mathexpr_parse(const char *s, size_t n, const struct mathexpr_opts *o, struct mathexpr **out)
{
	struct mathexpr *e = xcalloc(1, sizeof(*e));
	struct mx_parser p = {0};
	int count = 0;

	*out = NULL;
	e->text = xstrndup(s, n);
	e->n = n;
	p.e = e;
	p.s = e->text;
	p.n = n;
	p.o = o;
	struct mx_node *first = parse_items(&p, NULL, &count);
	if (!p.err && (!first || peek(&p) != '\0'))
		p.err = MATHEXPR_UNPARSED;
	if (!p.err && count > 1) {
		struct mx_node *l = mk(&p, MX_LIST);
		if (l) {
			l->a = first;
			l->count = count;
			first = l;
		}
	}
	if (p.err) {
		int rc = p.err;
		mathexpr_free(e);
		return rc;
	}
	e->root = first;
	*out = e;
	return 0;
}

void mathexpr_free(struct mathexpr *e)
{
	if (!e)
		return;
	while (e->chunks) {
		struct mx_chunk *c = e->chunks;
		e->chunks = c->next;
		for (int k = 0; k < c->used; k++)
			rat_free(c->n[k].val);
		free(c);
	}
	free(e->text);
	free(e);
}

/* ---- evaluation -------------------------------------------------------------------- */

struct mx_cmp {
	const struct mathexpr_opts *o;
	long steps;
	int budget;
	int pct; /* 1: a percent is /100; 0: the sign is dropped */
	int nvars;
	const char *vname[MX_MAX_VARS];
	size_t vlen[MX_MAX_VARS];
};

static int step(struct mx_cmp *c)
{
	if (++c->steps > MX_MAX_STEPS)
		c->budget = 1;
	return c->budget;
}

/* Exact value: 0 and out set; 1 when not rational or not a number. */
static int ex_eval(struct mx_cmp *c, const struct mx_node *x, struct rat *out)
{
	struct rat *a = NULL, *b = NULL;
	int rc = 1, r;
	long e;

	if (step(c))
		return 1;
	switch (x->kind) {
	case MX_NUM: rat_set(out, x->val); return 0;
	case MX_NEG:
		if (ex_eval(c, x->a, out))
			return 1;
		rat_neg(out, out);
		return 0;
	case MX_PCT:
		if (ex_eval(c, x->a, out))
			return 1;
		if (c->pct) {
			a = rat_new();
			rat_set_int(a, 100);
			rc = rat_div(out, out, a) ? 1 : 0;
			rat_free(a);
			return rc;
		}
		return 0;
	case MX_ADD:
	case MX_SUB:
	case MX_MUL:
	case MX_DIV:
	case MX_POW:
	case MX_FUNC:
	case MX_FACT: break;
	default: return 1;
	}
	a = rat_new();
	b = rat_new();
	if (x->kind == MX_FACT) {
		if (ex_eval(c, x->a, a))
			goto out;
		r = rat_fact(out, a);
		if (r == DERR_LIMIT)
			c->budget = 1;
		rc = r ? 1 : 0;
		goto out;
	}
	if (x->kind == MX_FUNC) {
		if (x->op == F_SQRT || x->op == F_ROOT || x->op == F_ABS) {
			long k = 2;
			if (ex_eval(c, x->a, a))
				goto out;
			if (x->op == F_ABS) {
				if (rat_sgn(a) < 0)
					rat_neg(a, a);
				rat_set(out, a);
				rc = 0;
				goto out;
			}
			if (x->op == F_ROOT && (ex_eval(c, x->b, b) || rat_get_long(b, &k) || k < 1))
				goto out;
			if (rat_sgn(a) < 0 && k % 2 == 1) {
				rat_neg(a, a);
				if (rat_root(out, a, (unsigned long)k))
					goto out;
				rat_neg(out, out);
				rc = 0;
				goto out;
			}
			rc = rat_root(out, a, (unsigned long)k) ? 1 : 0;
			goto out;
		}
		if (x->op == F_BINOM) {
			long n, k;
			struct rat *t = NULL;
			if (ex_eval(c, x->a, a) || ex_eval(c, x->b, b) || rat_get_long(a, &n) ||
			    rat_get_long(b, &k) || n < 0 || n > 20000)
				goto out;
			if (k < 0 || k > n) {
				rat_set_int(out, 0);
				rc = 0;
				goto out;
			}
			t = rat_new();
			rat_set_int(t, n - k);
			rc = rat_fact(out, a) || rat_fact(a, b) || rat_fact(b, t) || rat_div(out, out, a) ||
			     rat_div(out, out, b);
			rat_free(t);
			goto out;
		}
		goto out;
	}
	if (ex_eval(c, x->a, a) || ex_eval(c, x->b, b))
		goto out;
	switch (x->kind) {
	case MX_ADD: r = rat_add(out, a, b); break;
	case MX_SUB: r = rat_sub(out, a, b); break;
	case MX_MUL: r = rat_mul(out, a, b); break;
	case MX_DIV: r = rat_div(out, a, b); break;
	default:
		/* a^b: integer b, or b = p/q with an exact q-th root */
		if (!rat_get_long(b, &e)) {
			r = rat_pow(out, a, e);
		} else {
			struct rat *num = rat_new(), *den = rat_new(), *one = rat_new();
			long q = 0, pn;
			r = DERR_INVALID;
			/* find q with b*q an integer (small q only) */
			for (long k = 2; k <= 12 && r == DERR_INVALID; k++) {
				rat_set_int(den, k);
				if (rat_mul(num, b, den) || rat_get_long(num, &pn))
					continue;
				q = k;
				if (rat_root(one, a, (unsigned long)q) == 0)
					r = rat_pow(out, one, pn);
				break;
			}
			(void)q;
			rat_free(num);
			rat_free(den);
			rat_free(one);
		}
		break;
	}
	if (r == DERR_LIMIT)
		c->budget = 1;
	rc = r ? 1 : 0;
out:
	rat_free(a);
	rat_free(b);
	return rc;
}

static int var_index(struct mx_cmp *c, const char *name, size_t n)
{
	for (int k = 0; k < c->nvars; k++)
		if (c->vlen[k] == n && !memcmp(c->vname[k], name, n))
			return k;
	return -1;
}

/* Record the variables of x; 0, or -1 when there are too many. */
static int collect_vars(struct mx_cmp *c, const struct mx_node *x)
{
	for (; x; x = NULL) {
		if (x->kind == MX_VAR && var_index(c, x->name, x->nlen) < 0) {
			if (c->nvars >= MX_MAX_VARS)
				return -1;
			c->vname[c->nvars] = x->name;
			c->vlen[c->nvars++] = x->nlen;
		}
		if ((x->a && collect_vars(c, x->a)) || (x->b && collect_vars(c, x->b)))
			return -1;
		if (x->kind == MX_LIST || x->kind == MX_MATRIX || x->kind == MX_UNION)
			for (const struct mx_node *y = x->a ? x->a->next : NULL; y; y = y->next)
				if (collect_vars(c, y))
					return -1;
	}
	return 0;
}

static int has_vars(const struct mx_node *x)
{
	if (!x)
		return 0;
	if (x->kind == MX_VAR)
		return 1;
	return has_vars(x->a) || has_vars(x->b);
}

static double complex nu_func(int op, double complex a, double complex b)
{
	switch (op) {
	case F_SQRT: return cimag(a) == 0 && creal(a) >= 0 ? sqrt(creal(a)) : csqrt(a);
	case F_ROOT:
		if (cimag(a) == 0 && cimag(b) == 0) {
			double k = creal(b), v = creal(a);
			if (v < 0 && fmod(k, 2) == 1)
				return -pow(-v, 1 / k);
			if (v >= 0)
				return pow(v, 1 / k);
		}
		return cpow(a, 1 / b);
	case F_SIN: return csin(a);
	case F_COS: return ccos(a);
	case F_TAN: return ctan(a);
	case F_COT: return 1 / ctan(a);
	case F_SEC: return 1 / ccos(a);
	case F_CSC: return 1 / csin(a);
	case F_ASIN: return casin(a);
	case F_ACOS: return cacos(a);
	case F_ATAN: return catan(a);
	case F_SINH: return csinh(a);
	case F_COSH: return ccosh(a);
	case F_TANH: return ctanh(a);
	case F_LN: return clog(a);
	case F_LOG: return clog(a) / log(10);
	case F_LOGB: return clog(a) / clog(b);
	case F_EXP: return cexp(a);
	case F_ABS: return cabs(a);
	case F_BINOM:
		return exp(lgamma(creal(a) + 1) - lgamma(creal(b) + 1) - lgamma(creal(a) - creal(b) + 1));
	}
	return NAN;
}

/* re + im*i with the signs of zero kept (C11: a complex is a double[2]). */
static double complex mx_complex(double re, double im)
{
	double complex z;
	((double *)&z)[0] = re;
	((double *)&z)[1] = im;
	return z;
}

static double complex nu_eval(struct mx_cmp *c, const struct mx_node *x, const double *vals)
{
	double complex a, b;
	int k;

	if (step(c))
		return NAN;
	switch (x->kind) {
	case MX_NUM: return rat_get_d(x->val);
	case MX_VAR: k = var_index(c, x->name, x->nlen); return k < 0 ? NAN : vals[k];
	case MX_CONST:
		switch (x->op) {
		case C_PI: return M_PI;
		case C_E: return M_E;
		case C_I: return I;
		default: return INFINITY;
		}
	case MX_NEG:
		/* -0i + 0.0 is +0i: csqrt(-1) must be i, not -i */
		a = nu_eval(c, x->a, vals);
		return mx_complex(-creal(a), -cimag(a) + 0.0);
	case MX_PCT: return nu_eval(c, x->a, vals) / (c->pct ? 100.0 : 1.0);
	case MX_FACT:
		a = nu_eval(c, x->a, vals);
		return cimag(a) == 0 && creal(a) >= 0 ? tgamma(creal(a) + 1) : NAN;
	case MX_FUNC:
		a = nu_eval(c, x->a, vals);
		b = x->b ? nu_eval(c, x->b, vals) : 0;
		return nu_func(x->op, a, b);
	case MX_ADD: return nu_eval(c, x->a, vals) + nu_eval(c, x->b, vals);
	case MX_SUB: return nu_eval(c, x->a, vals) - nu_eval(c, x->b, vals);
	case MX_MUL: return nu_eval(c, x->a, vals) * nu_eval(c, x->b, vals);
	case MX_DIV:
		b = nu_eval(c, x->b, vals);
		if (b == 0)
			return NAN;
		return nu_eval(c, x->a, vals) / b;
	case MX_POW:
		a = nu_eval(c, x->a, vals);
		b = nu_eval(c, x->b, vals);
		if (cimag(a) == 0 && cimag(b) == 0 && (creal(a) >= 0 || creal(b) == floor(creal(b))))
			return pow(creal(a), creal(b));
		return cpow(a, b);
	default: return NAN;
	}
}

/* ---- comparison -------------------------------------------------------------------- */

static int eq(struct mx_cmp *c, const struct mx_node *g, const struct mx_node *p);

/* A lone decimal literal (possibly negated): its node, or NULL. */
static const struct mx_node *lone_decimal(const struct mx_node *x)
{
	while (x->kind == MX_NEG)
		x = x->a;
	return x->kind == MX_NUM && x->decimals > 0 ? x : NULL;
}

static int contains_decimal(const struct mx_node *x)
{
	if (!x)
		return 0;
	if (x->kind == MX_NUM)
		return x->decimals > 0;
	return contains_decimal(x->a) || contains_decimal(x->b);
}

static int is_inf(const struct mx_node *x, int *sign)
{
	*sign = 1;
	while (x->kind == MX_NEG || (x->kind == MX_PM && !x->a)) {
		if (x->kind == MX_NEG)
			*sign = -*sign;
		x = x->kind == MX_NEG ? x->a : x->b;
	}
	return x->kind == MX_CONST && x->op == C_INF;
}

/* May an approximate value (a rounded decimal) stand for an exact one? */
static int dec_ok(const struct mx_node *d)
{
	return d->sig >= 3 || (d->sig >= 2 && d->decimals >= 2);
}

static int close_rel(double complex a, double complex b, double tol)
{
	double d = cabs(a - b), m = fmax(cabs(a), cabs(b));
	return d <= tol * fmax(m, 1e-300) || d <= 1e-12 * tol / 1e-9 * (m < 1e-6);
}

static int scal_eq(struct mx_cmp *c, const struct mx_node *g, const struct mx_node *p)
{
	const struct mx_node *dg = lone_decimal(g), *dp = lone_decimal(p);
	int dec = contains_decimal(g) || contains_decimal(p);
	double prec = c->o->precision > 0 ? c->o->precision : 1e-6;
	int sg, sp, ig = is_inf(g, &sg), ip = is_inf(p, &sp);

	if (ig || ip)
		return ig && ip && sg == sp;
	if (!has_vars(g) && !has_vars(p)) {
		struct rat *rg = rat_new(), *rp = rat_new();
		int res = -1;
		if (!ex_eval(c, g, rg) && !ex_eval(c, p, rp)) {
			if (!rat_cmp(rg, rp))
				res = 1;
			else if (dp && dec_ok(dp) && rat_close_dec(rg, rp, dp->decimals) &&
				 !(dg && dg->decimals <= dp->decimals))
				res = 1;
			else if (dg && dg->sig >= 2 && !(dp && dp->decimals <= dg->decimals) &&
				 rat_close_dec(rp, rg, dg->decimals))
				res = 1;
			else if (dec && close_rel(rat_get_d(rg), rat_get_d(rp), prec))
				res = 1;
			else
				res = 0;
		}
		rat_free(rg);
		rat_free(rp);
		if (res >= 0 || c->budget)
			return res > 0;
		/* not rational: numeric, with the digits given as the tolerance */
		double complex vg = nu_eval(c, g, NULL), vp = nu_eval(c, p, NULL);
		if (!isfinite(creal(vg)) || !isfinite(cimag(vg)) || !isfinite(creal(vp)) ||
		    !isfinite(cimag(vp)))
			return 0;
		/* an irrational value rounded: at least 4 significant digits */
		if (dp && dp->sig >= 4 && cabs(vg - vp) <= 0.5 * pow(10, -dp->decimals) * (1 + 1e-9))
			return 1;
		if (dg && dg->sig >= 2 && cabs(vg - vp) <= 0.5 * pow(10, -dg->decimals) * (1 + 1e-9))
			return 1;
		return close_rel(vg, vp, dec ? prec : 1e-9);
	}
	/* expressions: the same variables, equal at every sample point */
	struct mx_cmp vc = *c;
	vc.nvars = 0;
	if (collect_vars(&vc, g))
		return 0;
	int ng = vc.nvars;
	if (collect_vars(&vc, p) || vc.nvars != ng)
		return 0;
	{
		struct mx_cmp pc = vc;
		pc.nvars = 0;
		if (collect_vars(&pc, p) || pc.nvars != ng)
			return 0;
	}
	static const double base[MX_POINTS] = {0.7312, 1.3719, 2.1143, 0.4157, 1.8861, 2.6473};
	int valid = 0;
	for (int k = 0; k < MX_POINTS; k++) {
		double vals[MX_MAX_VARS];
		for (int v = 0; v < ng; v++)
			vals[v] = base[(k + 2 * v) % MX_POINTS] + 0.1173 * v;
		double complex vg = nu_eval(&vc, g, vals), vp = nu_eval(&vc, p, vals);
		if (vc.budget)
			break;
		if (!isfinite(creal(vg)) || !isfinite(cimag(vg)) || !isfinite(creal(vp)) ||
		    !isfinite(cimag(vp)))
			continue;
		if (!close_rel(vg, vp, dec ? prec : 1e-8))
			return 0;
		valid++;
	}
	c->steps = vc.steps;
	c->budget = vc.budget;
	return valid >= 2;
}

/* Order-free match of two item chains of equal length. */
static int match_free(struct mx_cmp *c, const struct mx_node *g, const struct mx_node *p, int n)
{
	char used[MX_MAX_ITEMS] = {0};
	for (; g; g = g->next) {
		int k = 0, found = 0;
		for (const struct mx_node *q = p; q; q = q->next, k++) {
			if (k < MX_MAX_ITEMS && !used[k] && eq(c, g, q)) {
				used[k] = 1;
				found = 1;
				break;
			}
			if (c->budget)
				return 0;
		}
		if (!found)
			return 0;
	}
	(void)n;
	return 1;
}

static int match_ordered(struct mx_cmp *c, const struct mx_node *g, const struct mx_node *p)
{
	for (; g && p; g = g->next, p = p->next)
		if (!eq(c, g, p))
			return 0;
	return !g && !p;
}

static int has_pm_item(const struct mx_node *x)
{
	for (; x; x = x->next)
		if (x->kind == MX_PM)
			return 1;
	return 0;
}

/* The items of a set with each a \\pm b as two items, a + b and a - b:
 * shallow copies in a new array linked by next (free it); *n the count. */
static struct mx_node *set_expand(const struct mx_node *first, int *n)
{
	int cnt = 0, k = 0;
	for (const struct mx_node *x = first; x; x = x->next)
		cnt += x->kind == MX_PM ? 2 : 1;
	struct mx_node *arr = xcalloc((size_t)(cnt ? cnt : 1), sizeof(*arr));
	for (const struct mx_node *x = first; x; x = x->next) {
		if (x->kind != MX_PM) {
			arr[k++] = *x;
			continue;
		}
		arr[k].kind = x->a ? MX_ADD : MX_NEG;
		arr[k].a = x->a ? x->a : x->b;
		arr[k++].b = x->a ? x->b : NULL;
		if (x->a) {
			arr[k].kind = MX_SUB;
			arr[k].a = x->a;
			arr[k++].b = x->b;
		} else {
			arr[k++] = *x->b;
		}
	}
	for (int j = 0; j < cnt; j++)
		arr[j].next = j + 1 < cnt ? &arr[j + 1] : NULL;
	*n = cnt;
	return arr;
}

static int list_eq(struct mx_cmp *c, const struct mx_node *g, const struct mx_node *p)
{
	int gset = g->open == '{' || !g->open, pset = p->open == '{' || !p->open;

	if (gset && pset && (has_pm_item(g->a) || has_pm_item(p->a))) {
		int ng, np, r = 0;
		struct mx_node *eg = set_expand(g->a, &ng), *ep = set_expand(p->a, &np);
		if (ng == np)
			r = match_free(c, ng ? eg : NULL, np ? ep : NULL, ng);
		free(eg);
		free(ep);
		return r;
	}
	if (g->count != p->count)
		return 0;
	if (gset && pset)
		return match_free(c, g->a, p->a, g->count);
	if (g->open && p->open)
		return g->open == p->open && g->close == p->close && match_ordered(c, g->a, p->a);
	/* a bare list for a tuple: "1, 2" for "(1, 2)" */
	if (c->o->strict)
		return 0;
	if ((g->open == '(' && !p->open) || (p->open == '(' && !g->open))
		return match_ordered(c, g->a, p->a);
	return 0;
}

static int text_eq(const struct mx_node *g, const struct mx_node *p)
{
	size_t i = 0, j = 0;
	for (;;) {
		while (i < g->nlen && (g->name[i] == ' ' || g->name[i] == '.'))
			i++;
		while (j < p->nlen && (p->name[j] == ' ' || p->name[j] == '.'))
			j++;
		if (i == g->nlen || j == p->nlen)
			return i == g->nlen && j == p->nlen;
		char a = g->name[i++], b = p->name[j++];
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (b >= 'A' && b <= 'Z')
			b = (char)(b - 'A' + 'a');
		if (a != b)
			return 0;
	}
}

/* x > a as a < x, x >= a as a <= x: relations read left to right. */
static void rel_norm(const struct mx_node *r, int *op, const struct mx_node **l, const struct mx_node **rr)
{
	*op = r->op;
	*l = r->a;
	*rr = r->b;
	if (*op == R_GT || *op == R_GE) {
		*op = *op == R_GT ? R_LT : R_LE;
		*l = r->b;
		*rr = r->a;
	}
}

/* Is x a bare name ("x", "f(x)" is not)? */
static int is_name(const struct mx_node *x)
{
	return x->kind == MX_VAR;
}

static int has_num(const struct mx_node *x)
{
	if (!x)
		return 0;
	return x->kind == MX_NUM || has_num(x->a) || has_num(x->b);
}

/* The left side of a definition: a name ("x", "a_1", "\\theta") or a
 * function of names ("f(x)"). */
static int is_lhs_name(const struct mx_node *x)
{
	if (x->kind == MX_VAR)
		return 1;
	if (x->kind == MX_LIST) {
		/* "(a, b) = (2, 3)" */
		for (const struct mx_node *y = x->a; y; y = y->next)
			if (y->kind != MX_VAR)
				return 0;
		return x->a != NULL;
	}
	return x->kind == MX_MUL && x->a->kind == MX_VAR && has_vars(x->b) && !has_num(x->b);
}

/* "x < 3" as an interval, built in tmp (5 nodes).  NULL when the relation
 * is not one variable against constants. */
static const struct mx_node *rel_interval(const struct mx_node *r, struct mx_node *tmp)
{
	int op, op2 = -1;
	const struct mx_node *l, *rr, *lo = NULL, *hi = NULL;
	int lo_closed = 0, hi_closed = 0;

	if (r->kind != MX_REL)
		return NULL;
	rel_norm(r, &op, &l, &rr);
	if (op != R_LT && op != R_LE)
		return NULL;
	if (l->kind == MX_REL) {
		/* a < x < b */
		const struct mx_node *ll, *lr;
		rel_norm(l, &op2, &ll, &lr);
		if ((op2 != R_LT && op2 != R_LE) || !is_name(lr) || has_vars(ll) || has_vars(rr))
			return NULL;
		lo = ll;
		lo_closed = op2 == R_LE;
		hi = rr;
		hi_closed = op == R_LE;
	} else if (is_name(l) && !has_vars(rr)) {
		hi = rr;
		hi_closed = op == R_LE;
	} else if (is_name(rr) && !has_vars(l)) {
		lo = l;
		lo_closed = op == R_LE;
	} else {
		return NULL;
	}
	memset(tmp, 0, 5 * sizeof(*tmp));
	struct mx_node *list = &tmp[0], *ninf = &tmp[1], *inf = &tmp[2], *inf2 = &tmp[3];
	inf->kind = MX_CONST;
	inf->op = C_INF;
	ninf->kind = MX_NEG;
	ninf->a = inf;
	*inf2 = *inf;
	/* endpoints are copied so that the originals keep their links */
	struct mx_node *a = &tmp[4], *b = inf2;
	*a = lo ? *lo : *ninf;
	a->next = NULL;
	if (hi) {
		b = inf2;
		*b = *hi;
	}
	b->next = NULL;
	a->next = b;
	list->kind = MX_LIST;
	list->count = 2;
	list->a = a;
	list->open = lo && lo_closed ? '[' : '(';
	list->close = hi && hi_closed ? ']' : ')';
	return list;
}

static int rel_eq(struct mx_cmp *c, const struct mx_node *g, const struct mx_node *p)
{
	int gop, pop;
	const struct mx_node *gl, *gr, *pl, *pr;

	rel_norm(g, &gop, &gl, &gr);
	rel_norm(p, &pop, &pl, &pr);
	if (gop == pop) {
		if (eq(c, gl, pl) && eq(c, gr, pr))
			return 1;
		if ((gop == R_EQ || gop == R_NE) && eq(c, gl, pr) && eq(c, gr, pl))
			return 1;
	}
	struct mx_node tg[5], tp[5];
	const struct mx_node *ig = rel_interval(g, tg), *ip = rel_interval(p, tp);
	if (ig && ip)
		return eq(c, ig, ip);
	if (gop == pop && gop != R_IN && gl->kind != MX_REL && pl->kind != MX_REL &&
	    (has_vars(gl) || has_vars(gr))) {
		/* the same relation up to a factor: lhs - rhs of g and p differ by a
		 * constant ratio at every sample point, nonzero for = and !=,
		 * positive for < and <= ("-x > -1" is "x < 1") */
		struct mx_node dg = {0}, dp = {0};
		dg.kind = dp.kind = MX_SUB;
		dg.a = (struct mx_node *)gl;
		dg.b = (struct mx_node *)gr;
		dp.a = (struct mx_node *)pl;
		dp.b = (struct mx_node *)pr;
		struct mx_cmp vc = *c;
		vc.nvars = 0;
		if (collect_vars(&vc, &dg))
			return 0;
		int ng = vc.nvars;
		if (collect_vars(&vc, &dp) || vc.nvars != ng)
			return 0;
		static const double base[MX_POINTS] = {0.7312, 1.3719, 2.1143, 0.4157, 1.8861, 2.6473};
		double complex ratio = 0;
		int valid = 0;
		for (int k = 0; k < MX_POINTS; k++) {
			double vals[MX_MAX_VARS];
			for (int v = 0; v < ng; v++)
				vals[v] = base[(k + 3 * v) % MX_POINTS] + 0.2311 * v;
			double complex a = nu_eval(&vc, &dg, vals), b = nu_eval(&vc, &dp, vals);
			if (vc.budget || !isfinite(creal(a)) || !isfinite(creal(b)) || cabs(b) < 1e-9)
				continue;
			if (valid == 0)
				ratio = a / b;
			else if (!close_rel(a / b, ratio, 1e-8))
				return 0;
			valid++;
		}
		c->budget = vc.budget;
		if (gop == R_LT || gop == R_LE)
			return valid >= 3 && fabs(cimag(ratio)) < 1e-12 && creal(ratio) > 1e-12;
		return valid >= 3 && cabs(ratio) > 1e-12;
	}
	return 0;
}

static int eq(struct mx_cmp *c, const struct mx_node *g, const struct mx_node *p)
{
	if (step(c))
		return 0;
	/* a \pm b is the set {a + b, a - b} */
	if (g->kind == MX_PM || p->kind == MX_PM) {
		const struct mx_node *x = g->kind == MX_PM ? g : p;
		struct mx_node add = {0}, sub = {0}, set = {0};
		add.kind = x->a ? MX_ADD : MX_NEG;
		add.a = x->a ? x->a : x->b;
		add.b = x->a ? x->b : NULL;
		if (!x->a) {
			sub = *x->b;
		} else {
			sub.kind = MX_SUB;
			sub.a = x->a;
			sub.b = x->b;
		}
		sub.next = NULL;
		add.next = &sub;
		set.kind = MX_LIST;
		set.open = '{';
		set.close = '}';
		set.count = 2;
		set.a = &add;
		return x == g ? eq(c, &set, p) : eq(c, g, &set);
	}
	if (g->kind == MX_REL && p->kind == MX_REL)
		return rel_eq(c, g, p);
	if (g->kind == MX_REL || p->kind == MX_REL) {
		const struct mx_node *r = g->kind == MX_REL ? g : p, *o = r == g ? p : g;
		struct mx_node tmp[5];
		const struct mx_node *iv;
		if (c->o->strict)
			return 0;
		/* "x = 3" for "3", "y = 2x + 1" for "2x + 1", "f(x) = x^2" for "x^2":
		 * the side after a name ("2x + z = 1" is not "1") */
		if ((r->op == R_EQ || r->op == R_IN) && is_lhs_name(r->a))
			return r == g ? eq(c, r->b, o) : eq(c, o, r->b);
		/* a computation, "\\frac{20}{4} = 5": its result */
		if (r->op == R_EQ && !has_vars(r->a) && !has_vars(r->b))
			return r == g ? eq(c, r->b, o) : eq(c, o, r->b);
		/* "x > 3" for "(3, \infty)" */
		if (o->kind == MX_LIST && (iv = rel_interval(r, tmp)))
			return r == g ? eq(c, iv, o) : eq(c, o, iv);
		return 0;
	}
	if (g->kind == MX_LIST && p->kind == MX_LIST)
		return list_eq(c, g, p);
	if (g->kind == MX_UNION && p->kind == MX_UNION)
		return g->count == p->count && match_free(c, g->a, p->a, g->count);
	if (g->kind == MX_MATRIX && p->kind == MX_MATRIX)
		return g->rows == p->rows && g->cols == p->cols && match_ordered(c, g->a, p->a);
	if (g->kind == MX_TEXT && p->kind == MX_TEXT)
		return text_eq(g, p);
	if (g->kind == MX_LIST || p->kind == MX_LIST || g->kind == MX_UNION || p->kind == MX_UNION ||
	    g->kind == MX_MATRIX || p->kind == MX_MATRIX || g->kind == MX_TEXT || p->kind == MX_TEXT)
		return 0;
	return scal_eq(c, g, p);
}

static int has_pct(const struct mx_node *x)
{
	if (!x)
		return 0;
	if (x->kind == MX_PCT)
		return 1;
	if (has_pct(x->a) || has_pct(x->b))
		return 1;
	if (x->kind == MX_LIST || x->kind == MX_UNION)
		for (const struct mx_node *y = x->a; y; y = y->next)
			if (has_pct(y))
				return 1;
	return 0;
}

int mathexpr_equal(const struct mathexpr *gold, const struct mathexpr *pred, const struct mathexpr_opts *o)
{
	struct mx_cmp c = {0};
	int r;

	c.o = o;
	/* strict: a percent is always /100; else first the sign dropped ("50%"
	 * for "50"), then, with the percent convention, /100 ("50%" for 0.5) */
	c.pct = o->strict ? 1 : 0;
	r = eq(&c, gold->root, pred->root);
	if (!r && !c.budget && !o->strict && o->percent && (has_pct(gold->root) || has_pct(pred->root))) {
		c.pct = 1;
		r = eq(&c, gold->root, pred->root);
	}
	if (c.budget)
		return MATHEXPR_BUDGET;
	return r ? MATHEXPR_EQUAL : MATHEXPR_NOT_EQUAL;
}

int mathexpr_is_number(const struct mathexpr *e)
{
	const struct mx_node *x = e->root;
	while (x->kind == MX_NEG)
		x = x->a;
	return x->kind == MX_NUM;
}
