/*
 * rules.h - the rule-file parser (DESIGN §5): plain text that a person
 * edits, one rule per entry, turned into a list of rules with their
 * parameters and source lines.  It knows the syntax, the targets, actions and
 * `when` fields; which kinds exist and which parameters each takes is the
 * filter engine's table (filter.h), checked when the rules are compiled.
 * A parser of untrusted bytes (fuzz target fuzz_rules).
 *
 * Syntax (README "Rules and distill filter"):
 *
 *     # a comment: a line whose first non-blank character is '#'
 *     rule boxed_answer
 *       kind    must_match
 *       target  answer
 *       pattern \\boxed\{
 *       action  reject
 *       when    domain = math
 *
 * `rule NAME` starts an entry (NAME is [A-Za-z0-9_.-]+, unique); `key value`
 * lines follow in any order: kind (required), target (prompt, reasoning,
 * answer or response; default: the kind's), action (reject, the default, or
 * flag), when (repeatable, all must hold: domain, source or profile = a
 * comma-separated list), and the kind's own parameters.  Regexes are written
 * raw: the pattern above matches the text "\boxed{".
 * A value runs from the first non-blank character after the key to the end
 * of the line, trailing blanks removed.
 */
#ifndef DISTILL_RULES_H
#define DISTILL_RULES_H

#include <stddef.h>

#include "err.h"

struct buf;

/* Caps: a rule file is a small hand-written text. */
#define RULES_MAX_FILE (4u << 20)
#define RULES_MAX_RULES 1000
#define RULES_MAX_PARAMS 32
#define RULES_MAX_NAME 64

enum rule_target { RULE_PROMPT, RULE_REASONING, RULE_ANSWER, RULE_RESPONSE, RULE_TARGET_COUNT };
enum rule_action { RULE_REJECT, RULE_FLAG };
enum rule_when_field { RULE_WHEN_DOMAIN, RULE_WHEN_SOURCE, RULE_WHEN_PROFILE, RULE_WHEN_COUNT };

struct rule_param {
	char *key;
	char *value;
	int line;
};

/* One `when` line: field = one of values (a comma-separated list). */
struct rule_when {
	enum rule_when_field field;
	char **values;
	int nvalues;
	int line;
};

struct rule {
	char *name;
	char *kind;
	int kind_line;
	enum rule_target target;
	int has_target; /* 0: the kind's default target */
	enum rule_action action;
	struct rule_param *params;
	int nparams;
	struct rule_when *when;
	int nwhen;
	const char *file; /* owned by struct rules */
	int line;	  /* of the `rule` line */
};

struct rules {
	struct rule *v;
	int n;
	char **files;
	int nfiles;
};

void rules_init(struct rules *rs);
void rules_release(struct rules *rs);

/* Parse text[0..len) named fname and append its rules to rs.  On error
 * returns DERR_PARSE with e = "fname:line: message" and rs keeps only the
 * rules of earlier files.  Rule names must be unique across everything
 * appended to rs. */
int rules_parse(struct rules *rs, const char *fname, const char *text, size_t len, struct derr *e);

/* Load a file, or every *.rules file of a directory in name order.  Errors:
 * DERR_IO / DERR_NOTFOUND (with the path), DERR_PARSE, DERR_LIMIT (a file
 * over RULES_MAX_FILE). */
int rules_load(struct rules *rs, const char *path, struct derr *e);

/* The canonical text of the rules: comments, blank lines, key order and
 * spacing do not change it; rule order, names and values do.  Appended to
 * out.  The rule-set hash is computed over it (filter.h). */
int rules_canonical(const struct rules *rs, struct buf *out);

/* The value of a parameter, or NULL; *line (may be NULL) gets its line. */
const char *rule_param(const struct rule *r, const char *key, int *line);

const char *rule_target_name(enum rule_target t);
const char *rule_action_name(enum rule_action a);
const char *rule_when_field_name(enum rule_when_field f);

#endif
