/*
 * t.h - the in-house test assertions.  Each failing check prints both values
 * and where it fired; the test binary exits non-zero if any check failed.
 * Usage: T_EQ_INT(a, b); T_EQ_STR(a, b); T_TRUE(x); ... return t_done();
 * Tests that need ../shared/data call t_shared_path() and t_skip() when it
 * is absent (ctest counts exit 77 as skipped).
 */
#ifndef DISTILL_T_H
#define DISTILL_T_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;
static int t_checks;

#define T_FAIL_AT(...)                                          \
	do {                                                    \
		t_failures++;                                   \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                   \
		fputc('\n', stderr);                            \
	} while (0)

#define T_TRUE(x)                                           \
	do {                                                \
		t_checks++;                                 \
		if (!(x))                                   \
			T_FAIL_AT("expected true: %s", #x); \
	} while (0)

#define T_EQ_INT(a, b)                                                                \
	do {                                                                          \
		long long t_a = (long long)(a), t_b = (long long)(b);                 \
		t_checks++;                                                           \
		if (t_a != t_b)                                                       \
			T_FAIL_AT("%s == %s: got %lld, want %lld", #a, #b, t_a, t_b); \
	} while (0)

#define T_EQ_DBL(a, b, tol)                                                                     \
	do {                                                                                    \
		double t_a = (double)(a), t_b = (double)(b);                                    \
		t_checks++;                                                                     \
		if (!(t_a - t_b <= (tol) && t_b - t_a <= (tol)))                                \
			T_FAIL_AT("%s ~= %s: got %.17g, want %.17g (tol %g)", #a, #b, t_a, t_b, \
				  (double)(tol));                                               \
	} while (0)

#define T_EQ_STR(a, b)                                                                               \
	do {                                                                                         \
		const char *t_a = (a), *t_b = (b);                                                   \
		t_checks++;                                                                          \
		if (!t_a || !t_b || strcmp(t_a, t_b) != 0)                                           \
			T_FAIL_AT("%s == %s: got \"%s\", want \"%s\"", #a, #b, t_a ? t_a : "(null)", \
				  t_b ? t_b : "(null)");                                             \
	} while (0)

/* Check a function returning 0 on success; prints the derr message. */
#define T_OK(call, errp)                                                             \
	do {                                                                         \
		int t_rc = (call);                                                   \
		t_checks++;                                                          \
		if (t_rc != 0)                                                       \
			T_FAIL_AT("%s: returned %d (%s)", #call, t_rc, (errp)->msg); \
	} while (0)

static inline int t_done(void)
{
	if (t_failures) {
		fprintf(stderr, "FAILED: %d of %d checks\n", t_failures, t_checks);
		return 1;
	}
	printf("ok: %d checks\n", t_checks);
	return 0;
}

/* Skip the whole test binary (ctest SKIP_RETURN_CODE 77). */
static inline int t_skip(const char *why)
{
	printf("skipped: %s\n", why);
	return 77;
}

/* Path to a file of the real data set, or NULL when ../shared/data is absent. */
static inline const char *t_shared_path(const char *name, char *out, size_t len)
{
	const char *dir = getenv("DISTILL_SHARED");
	FILE *f;
	if (!dir || !*dir)
		dir = "../shared/data";
	snprintf(out, len, "%s/%s", dir, name);
	f = fopen(out, "rb");
	if (!f)
		return NULL;
	fclose(f);
	return out;
}

/* Scratch directories are removed when the test process that made them
 * exits (not when a forked child does).  Set T_KEEP=1 to keep them. */
static char t_tmpdirs[16][4096];
static int t_ntmpdirs;
static long t_tmpdir_owner;

static inline void t_tmpdir_cleanup(void)
{
	extern int getpid(void);
	char cmd[4200];
	if ((long)getpid() != t_tmpdir_owner || getenv("T_KEEP"))
		return;
	for (int i = 0; i < t_ntmpdirs; i++) {
		size_t n = strnlen(t_tmpdirs[i], sizeof(t_tmpdirs[0]) - 1);
		memcpy(cmd, "rm -rf '", 8);
		memcpy(cmd + 8, t_tmpdirs[i], n);
		memcpy(cmd + 8 + n, "'", 2);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", t_tmpdirs[i]);
	}
}

/* A fresh scratch directory under $TMPDIR for one test; returns its path. */
static inline const char *t_tmpdir(char *out, size_t len)
{
	extern int getpid(void);
	extern char *mkdtemp(char *);
	const char *base = getenv("TMPDIR");
	snprintf(out, len, "%s/distill-test-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(out)) {
		perror("mkdtemp");
		exit(1);
	}
	if (t_ntmpdirs < 16) {
		if (t_ntmpdirs == 0) {
			t_tmpdir_owner = (long)getpid();
			atexit(t_tmpdir_cleanup);
		}
		size_t n = strnlen(out, sizeof(t_tmpdirs[0]) - 1);
		memcpy(t_tmpdirs[t_ntmpdirs], out, n);
		t_tmpdirs[t_ntmpdirs++][n] = '\0';
	}
	return out;
}

/* Path of a built binary ($DISTILL_BIN/name) or a source file ($DISTILL_SRC/name). */
static inline const char *t_bin(const char *name, char *out, size_t len)
{
	const char *d = getenv("DISTILL_BIN");
	snprintf(out, len, "%s/%s", d && *d ? d : ".", name);
	return out;
}

static inline const char *t_src(const char *name, char *out, size_t len)
{
	const char *d = getenv("DISTILL_SRC");
	snprintf(out, len, "%s/%s", d && *d ? d : "..", name);
	return out;
}

#endif
