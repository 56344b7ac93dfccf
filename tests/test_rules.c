/*
 * test_rules.c - the rule-file parser: entries, raw values, `when`, the
 * canonical text (comments, spacing and key order do not change it), errors
 * as file:line, directories, and the shipped r1.rules.
 */
#include "buf.h"
#include "filter.h"
#include "rules.h"
#include "t.h"

#include <stdio.h>
#include <string.h>

static const char good[] = "# a comment\n"
			   "rule boxed_answer\n"
			   "  kind    must_match\n"
			   "  target  answer\n"
			   "  pattern \\\\boxed\\{ # not a comment   \n"
			   "  action  flag\n"
			   "  when    domain = math, code\n"
			   "\n"
			   "   # indented comment\n"
			   "rule len\r\n"
			   "\tkind length\r\n"
			   "\tmax 10\r\n"
			   "\tmin 1\r\n";

/* Same rules: other comments, spacing and key order. */
static const char same[] = "rule boxed_answer\n"
			   "when domain=math,code\n"
			   "action flag\n"
			   "pattern \\\\boxed\\{ # not a comment\n"
			   "kind must_match\n"
			   "target answer\n"
			   "rule len\n"
			   "  min 1\n"
			   "  kind length\n"
			   "  max 10\n";

static const struct {
	const char *text;
	const char *msg; /* expected error message */
} bad[] = {
	{"kind x\n", "t.rules:1: expected 'rule NAME' before 'kind'"},
	{"rule\n", "t.rules:1: a rule name is 1 to 64 characters"},
	{"rule a b\n", "t.rules:1: rule name 'a b': use letters, digits"},
	{"rule a\n  kind x\nrule a\n  kind y\n", "t.rules:3: rule 'a' is already defined at t.rules:1"},
	{"rule a\n  target body\n", "t.rules:2: unknown target 'body'"},
	{"rule a\n  kind k\n  action drop\n", "t.rules:3: unknown action 'drop'"},
	{"rule a\n  kind k\n  when lang = en\n", "t.rules:3: unknown when field 'lang'"},
	{"rule a\n  kind k\n  when domain math\n", "t.rules:3: when needs FIELD = VALUE"},
	{"rule a\n  kind k\n  when domain = math,\n", "t.rules:3: empty value in when"},
	{"rule a\n  kind k\n  max\n", "t.rules:3: max needs a value"},
	{"rule a\n  kind k\n  max 1\n  max 2\n", "t.rules:4: max given twice (first at line 3)"},
	{"rule a\n  kind k\n  kind j\n", "t.rules:3: kind given twice"},
	{"rule a\n  Max 1\n  kind k\n", "t.rules:2: 'Max' is not a key"},
	{"rule a\n  max 1\n\nrule b\n  kind k\n", "t.rules:1: rule 'a' has no kind"},
	{"rule a\n  kind k\n  pattern \xff\n", "t.rules:3: invalid UTF-8"},
};

int main(void)
{
	struct rules rs, rs2;
	struct derr e = {0};
	struct buf c1 = BUF_INIT(1 << 20), c2 = BUF_INIT(1 << 20);
	char path[1024], dir[256], hash1[65], hash2[65];

	rules_init(&rs);
	T_OK(rules_parse(&rs, "t.rules", good, strlen(good), &e), &e);
	T_EQ_INT(rs.n, 2);
	T_EQ_STR(rs.v[0].name, "boxed_answer");
	T_EQ_STR(rs.v[0].kind, "must_match");
	T_EQ_INT(rs.v[0].target, RULE_ANSWER);
	T_EQ_INT(rs.v[0].action, RULE_FLAG);
	T_EQ_STR(rule_param(&rs.v[0], "pattern", NULL), "\\\\boxed\\{ # not a comment");
	T_EQ_INT(rs.v[0].nwhen, 1);
	T_EQ_INT(rs.v[0].when[0].nvalues, 2);
	T_EQ_STR(rs.v[0].when[0].values[1], "code");
	T_EQ_INT(rs.v[0].line, 2);
	T_EQ_INT(rs.v[1].line, 10);
	T_EQ_INT(rs.v[1].has_target, 0);
	T_EQ_INT(rs.v[1].action, RULE_REJECT);
	T_EQ_STR(rule_param(&rs.v[1], "max", NULL), "10");
	T_TRUE(rule_param(&rs.v[1], "pattern", NULL) == NULL);

	/* Canonical text: same for the reordered file, different when a value
	 * changes. */
	rules_init(&rs2);
	T_OK(rules_parse(&rs2, "u.rules", same, strlen(same), &e), &e);
	T_OK(rules_canonical(&rs, &c1), &e);
	T_OK(rules_canonical(&rs2, &c2), &e);
	T_EQ_STR(buf_str(&c1), buf_str(&c2));
	T_OK(filter_ruleset_hash(&rs, "checker-1", hash1, NULL), &e);
	T_OK(filter_ruleset_hash(&rs2, "checker-1", hash2, NULL), &e);
	T_EQ_STR(hash1, hash2);
	/* A new checker version is a new rule set. */
	T_OK(filter_ruleset_hash(&rs, "checker-2", hash2, NULL), &e);
	T_TRUE(strcmp(hash1, hash2) != 0);
	rules_release(&rs2);
	rules_init(&rs2);
	{
		struct buf t = BUF_INIT(1 << 20);
		buf_puts(&t, same);
		memcpy(strstr(t.data, "max 10"), "max 11", 6);
		T_OK(rules_parse(&rs2, "u.rules", t.data, t.len, &e), &e);
		T_OK(filter_ruleset_hash(&rs2, "checker-1", hash2, NULL), &e);
		T_TRUE(strcmp(hash1, hash2) != 0);
		buf_release(&t);
	}
	rules_release(&rs2);

	/* Errors: file:line and message; rules of earlier files are kept. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int n0 = rs.n;
		t_checks++;
		if (rules_parse(&rs, "t.rules", bad[i].text, strlen(bad[i].text), &e) != DERR_PARSE ||
		    strncmp(e.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
			T_FAIL_AT("bad[%zu]: got \"%s\", want \"%s\"", i, e.msg, bad[i].msg);
		T_EQ_INT(rs.n, n0);
	}
	/* A name used in an earlier file. */
	T_EQ_INT(rules_parse(&rs, "x.rules", "rule len\n kind k\n", 17, &e), DERR_PARSE);
	T_TRUE(strstr(e.msg, "x.rules:1: rule 'len' is already defined at t.rules:10") != NULL);
	rules_release(&rs);

	/* Files and directories. */
	t_tmpdir(dir, sizeof(dir));
	rules_init(&rs);
	snprintf(path, sizeof(path), "%s/none.rules", dir);
	T_EQ_INT(rules_load(&rs, path, &e), DERR_NOTFOUND);
	T_EQ_INT(rules_load(&rs, dir, &e), DERR_NOTFOUND); /* no *.rules */
	{
		FILE *f;
		snprintf(path, sizeof(path), "%s/b.rules", dir);
		f = fopen(path, "w");
		fputs("rule second\n kind think_format\n", f);
		fclose(f);
		snprintf(path, sizeof(path), "%s/a.rules", dir);
		f = fopen(path, "w");
		fputs("rule first\n kind think_format\n", f);
		fclose(f);
		snprintf(path, sizeof(path), "%s/notes.txt", dir);
		f = fopen(path, "w");
		fputs("not rules\n", f);
		fclose(f);
	}
	T_OK(rules_load(&rs, dir, &e), &e);
	T_EQ_INT(rs.n, 2);
	T_EQ_STR(rs.v[0].name, "first");
	T_EQ_STR(rs.v[1].name, "second");
	T_TRUE(strstr(rs.v[1].file, "b.rules") != NULL);
	rules_release(&rs);

	/* The shipped rule set parses and compiles. */
	rules_init(&rs);
	T_OK(rules_load(&rs, t_src("rules/r1.rules", path, sizeof(path)), &e), &e);
	{
		struct filter *f = NULL;
		T_OK(filter_new(&f, &rs, &e), &e);
		T_TRUE(f && filter_rule_count(f) >= 8);
		filter_free(f);
	}
	rules_release(&rs);

	buf_release(&c1);
	buf_release(&c2);
	return t_done();
}
