/*
 * regex.c - bounded PCRE2 matching for the filter rules (see regex.h).
 * The only file that includes pcre2.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"
#include "util.h"

#include <pcre2.h>
#include <string.h>
#include <time.h>

/* Start positions per window: small at first so that a pathological
 * pattern is caught after a few milliseconds, then at once the largest
 * while windows are cheap so that ordinary patterns pay little for the extra
 * calls (each window is one pcre2_jit_match call and a clock read).
 * The worst overrun past the budget is one window of REGEX_WINDOW_MAX
 * start positions, each bounded by the match limit. */
#define REGEX_WINDOW_MIN 256
#define REGEX_WINDOW_MAX 8192

struct regex {
	pcre2_code *code;
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jstack;
	int jit;
	int first; /* the code unit every match starts with, or -1 */
};

void regex_limits_default(struct regex_limits *l)
{
	l->match_limit = 10000;
	l->depth_limit = 1000;
	l->max_subject = (size_t)1 << 20;
	l->time_ns = 15 * 1000000LL;
}

static const struct {
	unsigned flag;
	uint32_t pcre;
} flag_map[] = {
	{REGEX_CASELESS, PCRE2_CASELESS},
	{REGEX_MULTILINE, PCRE2_MULTILINE},
	{REGEX_DOTALL, PCRE2_DOTALL},
	{REGEX_EXTENDED, PCRE2_EXTENDED},
};

/* The code unit that starts every match, when a memchr for it is exactly
 * what PCRE2's own start-of-match optimisation does: PCRE2 reports it (a
 * lead byte in UTF-8, never a continuation byte), and the match is not
 * caseless there.  PCRE2 does not say whether its first code unit is
 * caseless, so only units that cannot have another case qualify: ASCII
 * other than letters, or any unit of a pattern without the i flag and
 * without inline settings.  A pattern with (* verbs or options (such as
 * NO_START_OPT, under which skipping start positions changes results) gets
 * none.  -1: no such unit. */
static int first_unit(const pcre2_code *code, const char *pattern, size_t len, unsigned flags)
{
	uint32_t type = 0, unit = 0;
	int letter, inline_opts = 0;

	for (size_t i = 0; i + 1 < len; i++) {
		if (pattern[i] == '(' && pattern[i + 1] == '*')
			return -1;
		if (pattern[i] == '(' && pattern[i + 1] == '?')
			inline_opts = 1;
	}
	if (pcre2_pattern_info(code, PCRE2_INFO_FIRSTCODETYPE, &type) || type != 1 ||
	    pcre2_pattern_info(code, PCRE2_INFO_FIRSTCODEUNIT, &unit) || unit > 0xFF)
		return -1;
	letter = (unit | 0x20) >= 'a' && (unit | 0x20) <= 'z';
	if (unit < 0x80 && !letter)
		return (int)unit;
	if (!(flags & REGEX_CASELESS) && !inline_opts)
		return (int)unit;
	return -1;
}

int regex_compile(struct regex **out, const char *pattern, size_t len, unsigned flags, struct derr *e)
{
	uint32_t opts = PCRE2_UTF | PCRE2_USE_OFFSET_LIMIT | PCRE2_NO_UTF_CHECK;
	int errcode = 0;
	PCRE2_SIZE erroff = 0;
	struct regex *re;

	*out = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(flag_map); i++)
		if (flags & flag_map[i].flag)
			opts |= flag_map[i].pcre;
	/* The pattern comes from a rule file that was checked as UTF-8 by the
	 * parser, but a bad pattern must not be undefined behaviour: keep
	 * PCRE2's check on the pattern itself. */
	opts &= ~(uint32_t)PCRE2_NO_UTF_CHECK;
	re = xcalloc(1, sizeof(*re));
	re->code = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &errcode, &erroff, NULL);
	if (!re->code) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		free(re);
		return derr_set(e, DERR_PARSE, "offset %zu: %s", (size_t)erroff, (const char *)msg);
	}
	re->first = first_unit(re->code, pattern, len, flags);
	re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;
	re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
	re->mctx = pcre2_match_context_create(NULL);
	if (!re->md || !re->mctx)
		abort(); /* out of memory: the project's policy */
	if (re->jit) {
		/* The default 32 KiB JIT stack fails on legitimate patterns with
		 * nested groups; 1 MiB bounds memory while leaving room. */
		re->jstack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
		if (!re->jstack)
			abort();
		pcre2_jit_stack_assign(re->mctx, NULL, re->jstack);
	}
	*out = re;
	return 0;
}

int regex_first_unit(const struct regex *re)
{
	return re->first;
}

void regex_free(struct regex *re)
{
	if (!re)
		return;
	pcre2_jit_stack_free(re->jstack);
	pcre2_match_context_free(re->mctx);
	pcre2_match_data_free(re->md);
	pcre2_code_free(re->code);
	free(re);
}

/* A start offset must sit on a character boundary (NO_UTF_CHECK). */
static size_t char_boundary(const char *s, size_t n, size_t i)
{
	while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80)
		i++;
	return i;
}

static int limit_error(int rc, size_t at, struct derr *e)
{
	const char *what;
	switch (rc) {
	case PCRE2_ERROR_MATCHLIMIT: what = "match limit"; break;
	case PCRE2_ERROR_DEPTHLIMIT: what = "depth limit"; break;
	case PCRE2_ERROR_HEAPLIMIT: what = "heap limit"; break;
	case PCRE2_ERROR_JIT_STACKLIMIT: what = "JIT stack limit"; break;
	default: {
		PCRE2_UCHAR msg[120];
		pcre2_get_error_message(rc, msg, sizeof(msg));
		return derr_set(e, DERR_INVALID, "regex error near offset %zu: %s", at, (const char *)msg);
	}
	}
	return derr_set(e, DERR_LIMIT, "%s hit near offset %zu", what, at);
}

/* CPU time of this thread: a worker descheduled on a busy machine must
 * not turn its regexes into "limit" verdicts.  Reading it is a system call,
 * so the wall clock (vDSO, cheap) is watched first: CPU time never runs
 * ahead of wall time, so only once the wall clock passes the budget is CPU
 * time read, and the search then gets a quarter of the budget more of CPU
 * time (what it used before is unknown, but at most the wall time).
 * Worst case: 1.25 budgets plus two windows; with the default limits the
 * first window costs at most 256 positions x 10000 steps (about 7 ms
 * here), so a pathological pattern ends within about 35 ms of CPU time. */
static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct deadline {
	int64_t budget;
	int64_t wall_start;
	int64_t cpu_at; /* 0 until the wall clock passes the budget */
};

static void deadline_start(struct deadline *d, int64_t budget)
{
	d->budget = budget;
	d->wall_start = mono_ns();
	d->cpu_at = 0;
}

/* 1 when the budget is spent; *elapsed gets the wall time so far. */
static int deadline_passed(struct deadline *d, int64_t *elapsed)
{
	int64_t w = mono_ns() - d->wall_start;
	if (elapsed)
		*elapsed = w;
	if (w <= d->budget)
		return 0;
	if (!d->cpu_at) {
		d->cpu_at = cpu_ns() + d->budget / 4;
		return 0;
	}
	return cpu_ns() > d->cpu_at;
}

/* One search from start, windows of start positions, clock between them. */
static int search_until(struct regex *re, const char *s, size_t n, size_t start, struct deadline *d,
			size_t *so, size_t *eo, struct derr *e)
{
	size_t w = REGEX_WINDOW_MIN, pos = start;
	int64_t prev = 0, now = 0;

	for (;;) {
		size_t lim;
		int rc;

		if (re->first >= 0) {
			const char *p = memchr(s + pos, re->first, n - pos);
			if (!p)
				return 0;
			pos = (size_t)(p - s);
		}
		lim = n - pos > w ? char_boundary(s, n, pos + w) : n;

		pcre2_set_offset_limit(re->mctx, lim);
		if (re->jit)
			rc = pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, pos, 0, re->md, re->mctx);
		else
			rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, re->md,
					 re->mctx);
		if (rc >= 0) {
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
			if (so)
				*so = ov[0];
			if (eo)
				*eo = ov[1];
			return 1;
		}
		if (rc != PCRE2_ERROR_NOMATCH)
			return limit_error(rc, pos, e);
		if (lim >= n)
			return 0;
		/* Positions up to lim were tried; lim itself again is harmless. */
		pos = lim;
		if (deadline_passed(d, &now))
			return derr_set(e, DERR_LIMIT, "time budget exhausted at offset %zu of %zu", pos, n);
		/* Grow the window while windows are cheap: one that took under
		 * a 256th of the budget makes the next, 32 times wider, expect
		 * an eighth of it. */
		if (w < REGEX_WINDOW_MAX && now - prev < d->budget / 256)
			w = w * 32 < REGEX_WINDOW_MAX ? w * 32 : REGEX_WINDOW_MAX;
		prev = now;
	}
}

static int check_subject(size_t n, const struct regex_limits *l, struct derr *e)
{
	if (n > l->max_subject)
		return derr_set(e, DERR_LIMIT, "subject of %zu bytes exceeds the cap of %zu", n,
				l->max_subject);
	return 0;
}

static void apply_limits(struct regex *re, const struct regex_limits *l)
{
	pcre2_set_match_limit(re->mctx, l->match_limit);
	pcre2_set_depth_limit(re->mctx, l->depth_limit);
}

int regex_search(struct regex *re, const char *s, size_t n, size_t start, const struct regex_limits *l,
		 size_t *so, size_t *eo, struct derr *e)
{
	int rc = check_subject(n, l, e);
	if (rc)
		return rc;
	if (start > n)
		return 0;
	/* A subject without the first code unit has no match: no clock. */
	if (re->first >= 0 && !memchr(s + start, re->first, n - start))
		return 0;
	struct deadline d;
	deadline_start(&d, l->time_ns);
	apply_limits(re, l);
	return search_until(re, s, n, start, &d, so, eo, e);
}

int regex_count(struct regex *re, const char *s, size_t n, long stop, const struct regex_limits *l,
		long *count, struct derr *e)
{
	struct deadline d;
	size_t pos = 0, so = 0, eo = 0;
	int rc = check_subject(n, l, e);

	*count = 0;
	if (rc)
		return rc;
	deadline_start(&d, l->time_ns);
	apply_limits(re, l);
	while (pos <= n) {
		rc = search_until(re, s, n, pos, &d, &so, &eo, e);
		if (rc <= 0)
			return rc;
		++*count;
		if (stop > 0 && *count >= stop)
			return 0;
		/* An empty match must not be found again at the same place. */
		pos = eo > so ? eo : char_boundary(s, n, eo + 1);
		if (eo == so && eo >= n)
			break;
		if (*count % 64 == 0 && deadline_passed(&d, NULL))
			return derr_set(e, DERR_LIMIT, "time budget exhausted at offset %zu of %zu", pos, n);
	}
	return 0;
}
