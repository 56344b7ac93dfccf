/*
 * rules.c - the rule-file parser and the canonical rule text (see rules.h).
 * Sits before the filter engine: it turns what a person wrote into rules
 * with line numbers, so every later error can say file:line.
 */
#include "rules.h"
#include "buf.h"
#include "text.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const target_names[RULE_TARGET_COUNT] = {"prompt", "reasoning", "answer", "response"};
static const char *const action_names[] = {"reject", "flag"};
static const char *const when_names[RULE_WHEN_COUNT] = {"domain", "source", "profile"};

const char *rule_target_name(enum rule_target t)
{
	return (unsigned)t < RULE_TARGET_COUNT ? target_names[t] : "?";
}

const char *rule_action_name(enum rule_action a)
{
	return (unsigned)a < ARRAY_SIZE(action_names) ? action_names[a] : "?";
}

const char *rule_when_field_name(enum rule_when_field f)
{
	return (unsigned)f < RULE_WHEN_COUNT ? when_names[f] : "?";
}

/* Index of s in names[0..n), or -1. */
static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], s))
			return i;
	return -1;
}

void rules_init(struct rules *rs)
{
	memset(rs, 0, sizeof(*rs));
}

static void rule_release(struct rule *r)
{
	free(r->name);
	free(r->kind);
	for (int i = 0; i < r->nparams; i++) {
		free(r->params[i].key);
		free(r->params[i].value);
	}
	free(r->params);
	for (int i = 0; i < r->nwhen; i++) {
		for (int j = 0; j < r->when[i].nvalues; j++)
			free(r->when[i].values[j]);
		free(r->when[i].values);
	}
	free(r->when);
	memset(r, 0, sizeof(*r));
}

void rules_release(struct rules *rs)
{
	for (int i = 0; i < rs->n; i++)
		rule_release(&rs->v[i]);
	free(rs->v);
	for (int i = 0; i < rs->nfiles; i++)
		free(rs->files[i]);
	free(rs->files);
	rules_init(rs);
}

const char *rule_param(const struct rule *r, const char *key, int *line)
{
	for (int i = 0; i < r->nparams; i++) {
		if (!strcmp(r->params[i].key, key)) {
			if (line)
				*line = r->params[i].line;
			return r->params[i].value;
		}
	}
	return NULL;
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '.';
}

static int is_key(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || *s == '_' || (*s >= '0' && *s <= '9')))
			return 0;
	return 1;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Parser state: where we are, for messages. */
struct parse {
	struct rules *rs;
	const char *fname;
	int line;
	struct derr *e;
};

__attribute__((format(printf, 2, 3))) static int perr(struct parse *p, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return derr_set(p->e, DERR_PARSE, "%s:%d: %s", p->fname, p->line, msg);
}

static int check_name(struct parse *p, const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > RULES_MAX_NAME)
		return perr(p, "a rule name is 1 to %d characters", RULES_MAX_NAME);
	for (size_t i = 0; i < n; i++)
		if (!is_name_char(name[i]))
			return perr(p, "rule name '%s': use letters, digits, '_', '-' and '.'", name);
	for (int i = 0; i < p->rs->n; i++)
		if (!strcmp(p->rs->v[i].name, name))
			return perr(p, "rule '%s' is already defined at %s:%d", name, p->rs->v[i].file,
				    p->rs->v[i].line);
	return 0;
}

/* "domain = math, code" -> field and values. */
static int parse_when(struct parse *p, struct rule *r, char *v)
{
	char *eq = strchr(v, '='), *end, *s;
	struct rule_when w = {0};
	int f;

	if (!eq)
		return perr(p, "when needs FIELD = VALUE[,VALUE...]");
	end = eq;
	while (end > v && is_blank(end[-1]))
		end--;
	*end = '\0';
	f = lookup(when_names, RULE_WHEN_COUNT, v);
	if (f < 0)
		return perr(p, "unknown when field '%s' (domain, source or profile)", v);
	w.field = (enum rule_when_field)f;
	w.line = p->line;
	s = eq + 1;
	for (;;) {
		char *comma = strchr(s, ','), *b, *t;
		if (comma)
			*comma = '\0';
		b = s;
		while (is_blank(*b))
			b++;
		t = b + strlen(b);
		while (t > b && is_blank(t[-1]))
			t--;
		if (t == b) {
			for (int j = 0; j < w.nvalues; j++)
				free(w.values[j]);
			free(w.values);
			return perr(p, "empty value in when");
		}
		w.values = xrealloc(w.values, sizeof(char *) * (size_t)(w.nvalues + 1));
		w.values[w.nvalues++] = xstrndup(b, (size_t)(t - b));
		if (!comma)
			break;
		s = comma + 1;
	}
	r->when = xrealloc(r->when, sizeof(*r->when) * (size_t)(r->nwhen + 1));
	r->when[r->nwhen++] = w;
	return 0;
}

static int finish_rule(struct parse *p, struct rule *r)
{
	if (!r->kind) {
		int save = p->line;
		p->line = r->line;
		perr(p, "rule '%s' has no kind", r->name);
		p->line = save;
		return DERR_PARSE;
	}
	return 0;
}

/* One `key value` line of the current rule. */
static int parse_field(struct parse *p, struct rule *r, const char *key, char *value)
{
	int i;

	if (!is_key(key))
		return perr(p, "'%s' is not a key (lower-case letters, digits, '_')", key);
	if (!*value)
		return perr(p, "%s needs a value", key);
	if (!strcmp(key, "kind")) {
		if (r->kind)
			return perr(p, "kind given twice");
		if (!is_key(value))
			return perr(p, "'%s' is not a kind name", value);
		r->kind = xstrdup(value);
		r->kind_line = p->line;
		return 0;
	}
	if (!strcmp(key, "target")) {
		if (r->has_target)
			return perr(p, "target given twice");
		i = lookup(target_names, RULE_TARGET_COUNT, value);
		if (i < 0)
			return perr(p, "unknown target '%s' (prompt, reasoning, answer or response)", value);
		r->target = (enum rule_target)i;
		r->has_target = 1;
		return 0;
	}
	if (!strcmp(key, "action")) {
		i = lookup(action_names, (int)ARRAY_SIZE(action_names), value);
		if (i < 0)
			return perr(p, "unknown action '%s' (reject or flag)", value);
		r->action = (enum rule_action)i;
		return 0;
	}
	if (!strcmp(key, "when"))
		return parse_when(p, r, value);
	if (rule_param(r, key, &i))
		return perr(p, "%s given twice (first at line %d)", key, i);
	if (r->nparams >= RULES_MAX_PARAMS)
		return perr(p, "more than %d parameters", RULES_MAX_PARAMS);
	r->params = xrealloc(r->params, sizeof(*r->params) * (size_t)(r->nparams + 1));
	r->params[r->nparams].key = xstrdup(key);
	r->params[r->nparams].value = xstrdup(value);
	r->params[r->nparams].line = p->line;
	r->nparams++;
	return 0;
}

int rules_parse(struct rules *rs, const char *fname, const char *text, size_t len, struct derr *e)
{
	struct parse p = {rs, fname, 0, e};
	int n0 = rs->n, rc = 0, have_rule = 0;
	const char *fname_owned;
	char *line = NULL;
	size_t pos = 0;

	if (len > RULES_MAX_FILE)
		return derr_set(e, DERR_LIMIT, "%s: rule file over %u bytes", fname, RULES_MAX_FILE);
	rs->files = xrealloc(rs->files, sizeof(char *) * (size_t)(rs->nfiles + 1));
	rs->files[rs->nfiles] = xstrdup(fname);
	fname_owned = rs->files[rs->nfiles++];
	p.fname = fname_owned;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *k, *v, *end;

		p.line++;
		if (memchr(text + pos, '\0', ll)) {
			rc = perr(&p, "NUL byte in the rule file");
			goto fail;
		}
		if (!utf8_valid(text + pos, ll)) {
			rc = perr(&p, "invalid UTF-8");
			goto fail;
		}
		free(line);
		line = xstrndup(text + pos, ll);
		pos += ll + (nl ? 1 : 0);

		end = line + ll;
		while (end > line && (is_blank(end[-1]) || end[-1] == '\r'))
			end--;
		*end = '\0';
		k = line;
		while (is_blank(*k))
			k++;
		if (!*k || *k == '#')
			continue;
		v = k;
		while (*v && !is_blank(*v))
			v++;
		if (*v) {
			*v++ = '\0';
			while (is_blank(*v))
				v++;
		}
		if (!strcmp(k, "rule")) {
			struct rule *r;
			if (have_rule && (rc = finish_rule(&p, &rs->v[rs->n - 1])))
				goto fail;
			if ((rc = check_name(&p, v)))
				goto fail;
			if (rs->n >= RULES_MAX_RULES) {
				rc = perr(&p, "more than %d rules", RULES_MAX_RULES);
				goto fail;
			}
			rs->v = xrealloc(rs->v, sizeof(*rs->v) * (size_t)(rs->n + 1));
			r = &rs->v[rs->n++];
			memset(r, 0, sizeof(*r));
			r->name = xstrdup(v);
			r->file = fname_owned;
			r->line = p.line;
			have_rule = 1;
			continue;
		}
		if (!have_rule) {
			rc = perr(&p, "expected 'rule NAME' before '%s'", k);
			goto fail;
		}
		if ((rc = parse_field(&p, &rs->v[rs->n - 1], k, v)))
			goto fail;
	}
	if (have_rule && (rc = finish_rule(&p, &rs->v[rs->n - 1])))
		goto fail;
	free(line);
	return 0;
fail:
	free(line);
	while (rs->n > n0)
		rule_release(&rs->v[--rs->n]);
	return rc;
}

static int read_file(const char *path, struct buf *out, struct derr *e)
{
	FILE *f = fopen(path, "rb");
	char chunk[65536];
	size_t got;
	int rc = 0;

	if (!f)
		return derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "%s: %s", path,
				strerror(errno));
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(out, chunk, got)) {
			rc = derr_set(e, DERR_LIMIT, "%s: rule file over %u bytes", path, RULES_MAX_FILE);
			break;
		}
	}
	if (!rc && ferror(f))
		rc = derr_set(e, DERR_IO, "%s: read error", path);
	fclose(f);
	return rc;
}

static int load_one(struct rules *rs, const char *path, struct derr *e)
{
	struct buf b = BUF_INIT(RULES_MAX_FILE);
	int rc = read_file(path, &b, e);
	if (!rc)
		rc = rules_parse(rs, path, buf_str(&b), b.len, e);
	buf_release(&b);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int rules_load(struct rules *rs, const char *path, struct derr *e)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	int n = 0, rc = 0;

	if (stat(path, &st))
		return derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "%s: %s", path,
				strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return load_one(rs, path, e);
	d = opendir(path);
	if (!d)
		return derr_set(e, DERR_IO, "%s: %s", path, strerror(errno));
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.' || l < 7 || strcmp(de->d_name + l - 6, ".rules"))
			continue;
		names = xrealloc(names, sizeof(char *) * (size_t)(n + 1));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n == 0) {
		free(names);
		return derr_set(e, DERR_NOTFOUND, "%s: no *.rules files", path);
	}
	qsort(names, (size_t)n, sizeof(char *), cmp_str);
	for (int i = 0; i < n; i++) {
		if (!rc) {
			struct buf p = BUF_INIT(8192);
			if (buf_printf(&p, "%s/%s", path, names[i]))
				rc = derr_set(e, DERR_LIMIT, "path too long");
			else
				rc = load_one(rs, buf_str(&p), e);
			buf_release(&p);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static int cmp_param(const void *a, const void *b)
{
	return strcmp(((const struct rule_param *)a)->key, ((const struct rule_param *)b)->key);
}

int rules_canonical(const struct rules *rs, struct buf *out)
{
	int rc = 0;
	for (int i = 0; i < rs->n && !rc; i++) {
		const struct rule *r = &rs->v[i];
		struct rule_param *ps = NULL;

		rc |= buf_printf(out, "rule %s\nkind %s\n", r->name, r->kind);
		if (r->has_target)
			rc |= buf_printf(out, "target %s\n", rule_target_name(r->target));
		rc |= buf_printf(out, "action %s\n", rule_action_name(r->action));
		/* when lines in field order, values as written (order is meaningless
		 * but rare to vary; keep it simple and exact). */
		for (int f = 0; f < RULE_WHEN_COUNT; f++) {
			for (int w = 0; w < r->nwhen; w++) {
				if ((int)r->when[w].field != f)
					continue;
				rc |= buf_printf(out, "when %s =", when_names[f]);
				for (int j = 0; j < r->when[w].nvalues; j++)
					rc |= buf_printf(out, "%s%s", j ? "," : " ", r->when[w].values[j]);
				rc |= buf_putc(out, '\n');
			}
		}
		if (r->nparams) {
			ps = xmalloc(sizeof(*ps) * (size_t)r->nparams);
			memcpy(ps, r->params, sizeof(*ps) * (size_t)r->nparams);
			qsort(ps, (size_t)r->nparams, sizeof(*ps), cmp_param);
			for (int j = 0; j < r->nparams; j++)
				rc |= buf_printf(out, "%s %s\n", ps[j].key, ps[j].value);
			free(ps);
		}
		rc |= buf_putc(out, '\n');
	}
	return rc ? DERR_LIMIT : 0;
}
