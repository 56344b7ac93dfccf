/*
 * test_filter.c - the rule kinds as data: tests/data/rules_cases.txt holds
 * rule / document / expected-verdict triples (jq's tests-as-data habit) and
 * this one driver runs them.  Format, per case:
 *
 *   === title
 *   rule text (raw, as in a .rules file; its lines are "rules:N")
 *   ---
 *   field: value      prompt, reasoning, answer, finish_reason, placement,
 *                     reference, domain, source, profile; \n \t \\ \uXXXX
 *                     escapes; "field*N: value" repeats value N times; lines
 *                     of one field are concatenated
 *   ---
 *   RULE STATE [~ text in the detail]     one per rule worth checking
 *   outcome accepted|rejected [flagged]
 *   error text in the compile error       (instead, for bad rules)
 */
#include "buf.h"
#include "filter.h"
#include "rules.h"
#include "t.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	F_PROMPT,
	F_REASONING,
	F_ANSWER,
	F_FINISH,
	F_PLACEMENT,
	F_REFERENCE,
	F_DOMAIN,
	F_SOURCE,
	F_PROFILE,
	F_N
};
static const char *const field_names[F_N] = {"prompt",	  "reasoning", "answer", "finish_reason", "placement",
					     "reference", "domain",    "source", "profile"};

struct tcase {
	char title[200];
	int line; /* of the === line */
	struct buf rules, expect;
	struct buf field[F_N];
	int has[F_N];
};

/* Append value with escapes decoded. */
static void unescape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s != '\\' || !s[1]) {
			buf_putc(b, *s);
			continue;
		}
		s++;
		switch (*s) {
		case 'n': buf_putc(b, '\n'); break;
		case 't': buf_putc(b, '\t'); break;
		case '\\': buf_putc(b, '\\'); break;
		case 'u': {
			unsigned cp = 0;
			char enc[4];
			int k = 0;
			for (int i = 1; i <= 4 && s[i]; i++) {
				char c = s[i];
				cp = cp * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
				k = i;
			}
			s += k;
			if (cp < 0x80) {
				enc[0] = (char)cp;
				buf_append(b, enc, 1);
			} else if (cp < 0x800) {
				enc[0] = (char)(0xC0 | cp >> 6);
				enc[1] = (char)(0x80 | (cp & 0x3F));
				buf_append(b, enc, 2);
			} else {
				enc[0] = (char)(0xE0 | cp >> 12);
				enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
				enc[2] = (char)(0x80 | (cp & 0x3F));
				buf_append(b, enc, 3);
			}
			break;
		}
		default: buf_putc(b, '\\'); buf_putc(b, *s);
		}
	}
}

static void doc_line(struct tcase *c, char *line, int lineno)
{
	char *colon = strstr(line, ": "), *star;
	long rep = 1;
	if (!colon) {
		if (line[0])
			fprintf(stderr, "rules_cases.txt:%d: bad document line\n", lineno), exit(2);
		return;
	}
	*colon = '\0';
	star = strchr(line, '*');
	if (star) {
		int64_t r;
		*star = '\0';
		if (parse_int64(star + 1, 1, 10000000, &r))
			fprintf(stderr, "rules_cases.txt:%d: bad repeat\n", lineno), exit(2);
		rep = (long)r;
	}
	for (int f = 0; f < F_N; f++) {
		if (strcmp(line, field_names[f]))
			continue;
		struct buf one = BUF_INIT(1 << 20);
		unescape(&one, colon + 2);
		for (long i = 0; i < rep; i++)
			buf_append(&c->field[f], buf_str(&one), one.len);
		buf_release(&one);
		c->has[f] = 1;
		return;
	}
	fprintf(stderr, "rules_cases.txt:%d: unknown field '%s'\n", lineno, line);
	exit(2);
}

static const char *fv(struct tcase *c, int f)
{
	return c->has[f] ? buf_str(&c->field[f]) : NULL;
}

static void run_case(struct tcase *c)
{
	struct rules rs;
	struct filter *f = NULL;
	struct derr e = {0};
	struct filter_doc d;
	struct filter_verdict *v = NULL;
	int accepted = 0, flagged = 0, rc;
	char *line, *next;

	rules_init(&rs);
	rc = rules_parse(&rs, "rules", buf_str(&c->rules), c->rules.len, &e);
	if (!rc)
		rc = filter_new(&f, &rs, &e);
	if (!rc) {
		memset(&d, 0, sizeof(d));
		d.prompt = fv(c, F_PROMPT);
		d.prompt_len = d.prompt ? c->field[F_PROMPT].len : 0;
		d.reasoning = fv(c, F_REASONING);
		d.reasoning_len = d.reasoning ? c->field[F_REASONING].len : 0;
		d.answer = fv(c, F_ANSWER);
		d.answer_len = d.answer ? c->field[F_ANSWER].len : 0;
		d.finish_reason = c->has[F_FINISH] ? fv(c, F_FINISH) : "stop";
		d.placement = c->has[F_PLACEMENT] ? fv(c, F_PLACEMENT)
			      : d.reasoning	  ? "close_tag_only"
						  : "none";
		d.reference = fv(c, F_REFERENCE);
		d.domain = fv(c, F_DOMAIN);
		d.source = fv(c, F_SOURCE);
		d.profile = fv(c, F_PROFILE);
		v = xcalloc((size_t)filter_rule_count(f) + 1, sizeof(*v));
		filter_judge(f, &d, v);
		filter_outcome(f, v, &accepted, &flagged);
	}
	for (line = c->expect.data; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char name[128] = "", state[32] = "";
		const char *want_detail = strstr(line, " ~ ");
		t_checks++;
		if (!strncmp(line, "error ", 6)) {
			if (!rc || !strstr(e.msg, line + 6))
				T_FAIL_AT("case '%s' (line %d): want error '%s', got %s", c->title, c->line,
					  line + 6, rc ? e.msg : "no error");
			continue;
		}
		if (rc) {
			T_FAIL_AT("case '%s' (line %d): rules did not compile: %s", c->title, c->line, e.msg);
			break;
		}
		if (sscanf(line, "%127s %31s", name, state) < 2) {
			T_FAIL_AT("case '%s': bad expectation '%s'", c->title, line);
			continue;
		}
		if (!strcmp(name, "outcome")) {
			const char *got = accepted ? "accepted" : "rejected";
			int want_flag = strstr(line, "flagged") != NULL;
			if (strcmp(state, got) || want_flag != flagged)
				T_FAIL_AT("case '%s' (line %d): outcome %s%s, want %s", c->title, c->line,
					  got, flagged ? " flagged" : "", line + 8);
			continue;
		}
		int i, found = 0;
		for (i = 0; i < filter_rule_count(f); i++) {
			if (!strcmp(filter_rule_name(f, i), name)) {
				found = 1;
				break;
			}
		}
		if (!found) {
			T_FAIL_AT("case '%s': no rule '%s'", c->title, name);
			continue;
		}
		if (strcmp(filter_state_name(v[i].state), state) ||
		    (want_detail && !strstr(v[i].detail, want_detail + 3)))
			T_FAIL_AT("case '%s' (line %d): %s is %s \"%s\", want %s", c->title, c->line, name,
				  filter_state_name(v[i].state), v[i].detail, line + strlen(name) + 1);
	}
	free(v);
	filter_free(f);
	rules_release(&rs);
}

static void tcase_reset(struct tcase *c)
{
	buf_release(&c->rules);
	buf_release(&c->expect);
	for (int f = 0; f < F_N; f++)
		buf_release(&c->field[f]);
	memset(c, 0, sizeof(*c));
	buf_init(&c->rules, 1 << 20);
	buf_init(&c->expect, 1 << 20);
	for (int f = 0; f < F_N; f++)
		buf_init(&c->field[f], 1 << 26);
}

int main(void)
{
	char path[1024], line[65536];
	FILE *fp = fopen(t_src("tests/data/rules_cases.txt", path, sizeof(path)), "r");
	struct tcase c;
	int section = -1, lineno = 0, ncases = 0;

	if (!fp) {
		perror(path);
		return 1;
	}
	memset(&c, 0, sizeof(c));
	tcase_reset(&c);
	while (fgets(line, sizeof(line), fp)) {
		size_t l = strlen(line);
		lineno++;
		if (l && line[l - 1] == '\n')
			line[--l] = '\0';
		if (!strncmp(line, "=== ", 4)) {
			if (section >= 0) {
				run_case(&c);
				ncases++;
			}
			tcase_reset(&c);
			snprintf(c.title, sizeof(c.title), "%.150s", line + 4);
			c.line = lineno;
			section = 0;
			continue;
		}
		if (section < 0) {
			if (line[0] && line[0] != '#')
				fprintf(stderr, "rules_cases.txt:%d: text before the first case\n", lineno),
					exit(2);
			continue;
		}
		if (!strcmp(line, "---")) {
			section++;
			continue;
		}
		if (section == 0) {
			buf_puts(&c.rules, line);
			buf_putc(&c.rules, '\n');
		} else if (section == 1) {
			doc_line(&c, line, lineno);
		} else if (line[0] && line[0] != '#') {
			buf_puts(&c.expect, line);
			buf_putc(&c.expect, '\n');
		}
	}
	if (section >= 0) {
		run_case(&c);
		ncases++;
	}
	fclose(fp);
	tcase_reset(&c);
	buf_release(&c.rules);
	buf_release(&c.expect);
	for (int f = 0; f < F_N; f++)
		buf_release(&c.field[f]);
	printf("%d cases\n", ncases);
	T_TRUE(ncases >= 40);
	return t_done();
}
