/*
 * test_regex.c - bounded PCRE2 matching: results, flags, counts, UTF-8 at
 * window boundaries, and the bounds that turn pathological patterns into
 * DERR_LIMIT (exponential backtracking; the quadratic (.{20,}?)\1{3,} on a
 * 30 KB line, which runs for seconds unbounded).
 */
#include "buf.h"
#include "regex.h"
#include "t.h"
#include "util.h"

#include <string.h>
#include <time.h>

static struct regex *compile(const char *pat, unsigned flags)
{
	struct regex *re = NULL;
	struct derr e = {0};
	T_OK(regex_compile(&re, pat, strlen(pat), flags, &e), &e);
	return re;
}

static double cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(void)
{
	struct regex_limits l;
	struct derr e = {0};
	struct regex *re;
	size_t so = 0, eo = 0;
	long count = 0;
	const char *s;

	regex_limits_default(&l);

	/* Plain search with offsets. */
	re = compile("b+", 0);
	s = "aabbbc";
	T_EQ_INT(regex_search(re, s, strlen(s), 0, &l, &so, &eo, &e), 1);
	T_EQ_INT(so, 2);
	T_EQ_INT(eo, 5);
	T_EQ_INT(regex_search(re, s, strlen(s), 5, &l, &so, &eo, &e), 0);
	regex_free(re);

	/* Compile errors carry the offset. */
	re = (struct regex *)1;
	T_EQ_INT(regex_compile(&re, "a(b", 3, 0, &e), DERR_PARSE);
	T_TRUE(re == NULL);
	T_TRUE(strstr(e.msg, "offset 3") != NULL);

	/* Flags. */
	re = compile("^x$", REGEX_MULTILINE);
	T_EQ_INT(regex_search(re, "a\nx\nb", 5, 0, &l, NULL, NULL, &e), 1);
	regex_free(re);
	re = compile("^x$", 0);
	T_EQ_INT(regex_search(re, "a\nx\nb", 5, 0, &l, NULL, NULL, &e), 0);
	regex_free(re);
	re = compile("hello", REGEX_CASELESS);
	T_EQ_INT(regex_search(re, "say HeLLo", 9, 0, &l, NULL, NULL, &e), 1);
	regex_free(re);
	re = compile("a.b", REGEX_DOTALL);
	T_EQ_INT(regex_search(re, "a\nb", 3, 0, &l, NULL, NULL, &e), 1);
	regex_free(re);
	re = compile("a b # comment", REGEX_EXTENDED);
	T_EQ_INT(regex_search(re, "ab", 2, 0, &l, NULL, NULL, &e), 1);
	regex_free(re);

	/* Counting, including empty matches, and the early stop. */
	re = compile("\\d+", 0);
	s = "1 22 333 4444";
	T_OK(regex_count(re, s, strlen(s), 0, &l, &count, &e), &e);
	T_EQ_INT(count, 4);
	T_OK(regex_count(re, s, strlen(s), 2, &l, &count, &e), &e);
	T_EQ_INT(count, 2);
	regex_free(re);
	re = compile("x*", 0);
	T_OK(regex_count(re,
			 "a\xc3\xa9"
			 "b",
			 4, 0, &l, &count, &e),
	     &e);
	T_EQ_INT(count, 4); /* before a, é, b and at the end: é is one character */
	regex_free(re);

	/* A match far past the first windows, after multi-byte characters
	 * whose bytes straddle window edges. */
	{
		struct buf b = BUF_INIT(1 << 20);
		for (int i = 0; i < 5000; i++)
			buf_puts(&b, "\xc3\xa9\xe5\x88\x86"); /* é分 */
		buf_puts(&b, "needle");
		re = compile("分needle", 0);
		T_EQ_INT(regex_search(re, b.data, b.len, 0, &l, &so, &eo, &e), 1);
		T_EQ_INT(eo, b.len);
		regex_free(re);
		re = compile("(?<=é)分", 0); /* lookbehind across a window start */
		T_OK(regex_count(re, b.data, b.len, 0, &l, &count, &e), &e);
		T_EQ_INT(count, 5000);
		regex_free(re);
		buf_release(&b);
	}

	/* Patterns that start with a fixed code unit skip to it (and need no
	 * engine call without it); caseless ones and (* verbs must not. */
	re = compile("<[|x]>", 0);
	s = "a < b <x> c <|>";
	T_EQ_INT(regex_search(re, s, strlen(s), 0, &l, &so, &eo, &e), 1);
	T_EQ_INT(so, 6);
	T_EQ_INT(regex_search(re, s, strlen(s), 7, &l, &so, &eo, &e), 1);
	T_EQ_INT(so, 12);
	T_EQ_INT(regex_search(re, "no brackets", 11, 0, &l, &so, &eo, &e), 0);
	T_OK(regex_count(re, s, strlen(s), 0, &l, &count, &e), &e);
	T_EQ_INT(count, 2);
	regex_free(re);
	re = compile("\\x{FFFD}", 0);
	T_EQ_INT(regex_search(re, "ok \xef\xbc\x9c", 6, 0, &l, NULL, NULL, &e), 0); /* same lead byte */
	T_EQ_INT(regex_search(re, "bad \xef\xbf\xbd", 7, 0, &l, &so, NULL, &e), 1);
	T_EQ_INT(so, 4);
	regex_free(re);
	re = compile("(?<=x)y", 0); /* the lookbehind sees before the skip */
	T_EQ_INT(regex_search(re, "aaxy", 4, 0, &l, &so, NULL, &e), 1);
	T_EQ_INT(so, 3);
	regex_free(re);
	re = compile("abc", REGEX_CASELESS);
	T_EQ_INT(regex_search(re, "xxABC", 5, 0, &l, NULL, NULL, &e), 1);
	regex_free(re);
	re = compile("(?i)\xc3\xa9t\xc3\xa9", 0); /* inline caseless é */
	T_EQ_INT(regex_search(re, "L'\xc3\x89T\xc3\x89", 7, 0, &l, NULL, NULL, &e), 1);
	regex_free(re);
	re = compile("(?i:k)elvin", 0); /* K (Kelvin sign) folds to k */
	T_EQ_INT(regex_search(re,
			      "\xe2\x84\xaa"
			      "elvin",
			      8, 0, &l, NULL, NULL, &e),
		 1);
	regex_free(re);
	/* Without start-of-match optimisations (*COMMIT) at the first position
	 * ends the search; skipping ahead would find ABC. */
	re = compile("(*NO_START_OPT)(*COMMIT)ABC", 0);
	T_EQ_INT(regex_search(re, "xyzABC", 6, 0, &l, NULL, NULL, &e), 0);
	regex_free(re);

	/* The subject cap. */
	{
		struct regex_limits small = l;
		small.max_subject = 4;
		re = compile("x", 0);
		T_EQ_INT(regex_search(re, "abcdx", 5, 0, &small, NULL, NULL, &e), DERR_LIMIT);
		T_TRUE(strstr(e.msg, "exceeds the cap") != NULL);
		regex_free(re);
	}

	/* Exponential backtracking: the match limit stops it. */
	{
		char subj[64];
		memset(subj, 'a', 40);
		subj[40] = 'b';
		re = compile("^(a+)+$", 0);
		T_EQ_INT(regex_search(re, subj, 41, 0, &l, NULL, NULL, &e), DERR_LIMIT);
		T_TRUE(strstr(e.msg, "limit") != NULL);
		regex_free(re);
	}

	/* The quadratic pattern on a 30 KB line of ordinary text.  With the
	 * default limits the match limit ends it; with the match limit raised
	 * out of the way, the time budget does.  Unbounded, this search takes
	 * about a second (DESIGN §5); the times are printed, not asserted. */
	{
		struct buf b = BUF_INIT(1 << 20);
		unsigned seed = 12345;
		struct regex_limits big = l;
		double t0;
		while (b.len < 30000) {
			seed = seed * 1103515245u + 12345u;
			buf_putc(&b, "abcdefghij klmnopqrstuvwxyz,."[(seed >> 16) % 29]);
		}
		re = compile("(.{20,}?)\\1{3,}", 0);
		t0 = cpu_ms();
		T_EQ_INT(regex_search(re, b.data, b.len, 0, &l, NULL, NULL, &e), DERR_LIMIT);
		printf("quadratic, default limits: %s after %.1f ms CPU\n", e.msg, cpu_ms() - t0);
		big.match_limit = 100000000;
		t0 = cpu_ms();
		T_EQ_INT(regex_search(re, b.data, b.len, 0, &big, NULL, NULL, &e), DERR_LIMIT);
		printf("quadratic, match limit raised: %s after %.1f ms CPU (budget %lld ms)\n", e.msg,
		       cpu_ms() - t0, (long long)(big.time_ns / 1000000));
		T_TRUE(strstr(e.msg, "time budget") != NULL);
		T_OK(regex_count(re, b.data, 300, 0, &big, &count, &e), &e); /* short: finishes */
		/* A 9 KB line: each start position costs less than the default
		 * match limit, so only the time budget ends it. */
		t0 = cpu_ms();
		T_EQ_INT(regex_search(re, b.data, 9000, 0, &l, NULL, NULL, &e), DERR_LIMIT);
		printf("quadratic on 9 KB, default limits: %s after %.1f ms CPU\n", e.msg, cpu_ms() - t0);
		regex_free(re);
		buf_release(&b);
	}

	regex_free(NULL);
	return t_done();
}
