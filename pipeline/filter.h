/*
 * filter.h - the filter engine (DESIGN §5): compiles parsed rules (rules.h)
 * against the table of rule kinds and judges one trace at a time, giving
 * each rule a verdict (pass, fail, limit, skip; DESIGN §13) and a short
 * detail.  Pure computation: no database, no I/O; the verdict store is
 * verdict.h.  A struct filter holds scratch memory and compiled regexes:
 * use one per process (filter workers fork, then build their own).
 */
#ifndef DISTILL_FILTER_H
#define DISTILL_FILTER_H

#include <stddef.h>

#include "err.h"

struct rules;
struct buf;

/* Part of the rule-set hash: bump on any change that can alter a verdict. */
#define FILTER_ENGINE_VERSION "filter-1"

enum filter_state { FILTER_PASS, FILTER_FAIL, FILTER_LIMIT, FILTER_SKIP };

/* One trace as the rules see it.  Strings are not owned; a NULL string is
 * absent (reasoning NULL: the response had no reasoning part).  Lengths are
 * in bytes; the text is valid UTF-8 (validated when recorded). */
struct filter_doc {
	const char *prompt;
	size_t prompt_len;
	const char *reasoning;
	size_t reasoning_len;
	const char *answer;
	size_t answer_len;
	const char *finish_reason; /* "stop", "length", ... or NULL */
	const char *placement;	   /* reasoning placement (DESIGN §4) or NULL */
	const char *reference;	   /* clean reference answer or NULL */
	const char *domain;	   /* math | code | general, or NULL */
	const char *source;	   /* first ingest source, or NULL */
	const char *profile;	   /* generation profile name, or NULL */
};

#define FILTER_DETAIL_MAX 200

struct filter_verdict {
	enum filter_state state;
	char detail[FILTER_DETAIL_MAX];
};

struct filter;

/* Compile rs into a filter.  rs must outlive the filter.  Unknown kinds,
 * parameters that a kind does not take, bad values and regexes that do not
 * compile are DERR_PARSE with "file:line: message". */
int filter_new(struct filter **out, const struct rules *rs, struct derr *e);
void filter_free(struct filter *f); /* NULL is fine */

int filter_rule_count(const struct filter *f);
const char *filter_rule_name(const struct filter *f, int i);
/* 1 when rule i rejects (action reject), 0 when it only flags. */
int filter_rule_rejects(const struct filter *f, int i);

/* Judge one trace: out[i] receives rule i's verdict (filter_rule_count
 * entries).  Never fails: a bound hit is a FILTER_LIMIT verdict. */
void filter_judge(struct filter *f, const struct filter_doc *d, struct filter_verdict *out);

/* The overall outcome: accepted unless a reject rule failed or hit a limit;
 * flagged when a flag rule failed or hit a limit. */
void filter_outcome(const struct filter *f, const struct filter_verdict *v, int *accepted, int *flagged);

const char *filter_state_name(enum filter_state s);

/* What the rules read besides the reasoning and the answer, so that the
 * verdict store fetches only that. */
enum filter_uses { FILTER_USES_PROMPT = 1, FILTER_USES_SOURCE = 2, FILTER_USES_PROFILE = 4 };
unsigned filter_uses(const struct filter *f);

/* The rule-set hash (DESIGN §13): 64 hex chars of SHA-256 over the
 * canonical rule text, FILTER_ENGINE_VERSION and checker_version.  The
 * canonical text is appended to canon when it is not NULL. */
int filter_ruleset_hash(const struct rules *rs, const char *checker_version, char out[65], struct buf *canon);

/* The kinds, for documentation and --help: name and a one-line summary;
 * NULL name past the end. */
const char *filter_kind_name(int i, const char **summary);

#endif
