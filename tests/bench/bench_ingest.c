/*
 * bench_ingest.c - `distill ingest` of 800,000 prompts made from
 * gsm8k_train.jsonl with varied numbers (issue 2: target under 20 s on this
 * machine, memory flat).  Runs the real binary as a child and reads its
 * wall time and peak RSS; a 10x smaller run in the same process shows that
 * memory does not grow with the input.  Skips when ../shared/data is absent.
 * Usage: bench_ingest [N]   (N prompts, default 800000; BENCH_RUNS=3 for a median)
 */
#include "t.h"

#include <ctype.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Write n records: question i of the set with every number shifted by the
 * round (i / lines), so each round is a new set of distinct prompts. */
static long make_input(const char *src, const char *dst, long n)
{
	FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
	char **lines = NULL, buf[65536];
	long nl = 0, cap = 0, written = 0;

	if (!in || !out)
		return -1;
	while (fgets(buf, sizeof(buf), in)) {
		if (nl == cap) {
			cap = cap ? cap * 2 : 8192;
			lines = realloc(lines, (size_t)cap * sizeof(*lines));
		}
		lines[nl++] = strdup(buf);
	}
	fclose(in);
	for (long i = 0; i < n && nl; i++) {
		const char *p = lines[i % nl];
		long round = i / nl;
		/* Shift numbers only inside the question (the first string value). */
		const char *q_end = strstr(p, "\", \"answer\"");
		while (*p) {
			if (*p == '\\' && p[1]) { /* an escape, \uXXXX included, is copied as is */
				size_t k = p[1] == 'u' ? 6 : 2;
				for (size_t j = 0; j < k && *p; j++)
					fputc(*p++, out);
			} else if (isdigit((unsigned char)*p) && (!q_end || p < q_end) && round) {
				char *end;
				long v = strtol(p, &end, 10);
				fprintf(out, "%ld", v + round);
				p = end;
			} else {
				fputc(*p++, out);
			}
		}
		written++;
	}
	for (long i = 0; i < nl; i++)
		free(lines[i]);
	free(lines);
	fclose(out);
	return written;
}

static double last_cpu; /* user + system seconds of the last child */

/* Run argv, return wall seconds; *rss_kb gets the child's peak RSS. */
static double run(char *const argv[], long *rss_kb, int *code)
{
	struct timespec a, b;
	struct rusage ru;
	int status = 0;
	pid_t pid;

	clock_gettime(CLOCK_MONOTONIC, &a);
	pid = fork();
	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	wait4(pid, &status, 0, &ru);
	clock_gettime(CLOCK_MONOTONIC, &b);
	*rss_kb = ru.ru_maxrss;
	last_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	*code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
	return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* One timed ingest of n prompts into a fresh database; median over runs. */
static int bench(const char *dir, const char *src, long n, int runs, double *median, double *cpu, long *rss)
{
	char input[600], db[600], bin[600], cmd[2048];
	double t[16], c[16];
	int code;

	snprintf(input, sizeof(input), "%s/prompts-%ld.jsonl", dir, n);
	snprintf(db, sizeof(db), "%s/bench-%ld.db", dir, n);
	t_bin("distill", bin, sizeof(bin));
	if (make_input(src, input, n) != n)
		return -1;
	*rss = 0;
	for (int r = 0; r < runs; r++) {
		long kb;
		snprintf(cmd, sizeof(cmd), "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
		if (system(cmd) != 0)
			return -1;
		char *init[] = {bin, "init", "--db", db, NULL};
		run(init, &kb, &code);
		if (code)
			return -1;
		char *ing[] = {bin, "ingest", "--db", db, input, NULL};
		t[r] = run(ing, &kb, &code);
		c[r] = last_cpu;
		if (code)
			return -1;
		if (kb > *rss)
			*rss = kb;
	}
	qsort(t, (size_t)runs, sizeof(double), cmp_double);
	qsort(c, (size_t)runs, sizeof(double), cmp_double);
	*median = t[runs / 2];
	*cpu = c[runs / 2];
	return 0;
}

int main(int argc, char **argv)
{
	char src[512], dir[256], cmd[600];
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 800000, rss_small, rss_big;
	int runs = getenv("BENCH_RUNS") ? (int)strtol(getenv("BENCH_RUNS"), NULL, 10) : 1;
	double t_small, t_big, c_small, c_big;

	if (!t_shared_path("gsm8k_train.jsonl", src, sizeof(src)))
		return t_skip("../shared/data/gsm8k_train.jsonl absent");
	if (runs < 1 || runs > 15)
		runs = 1;
	t_tmpdir(dir, sizeof(dir));
	if (bench(dir, src, n / 10, runs, &t_small, &c_small, &rss_small) ||
	    bench(dir, src, n, runs, &t_big, &c_big, &rss_big)) {
		fprintf(stderr, "bench_ingest: a run failed\n");
		return 1;
	}
	/* CPU time is printed too: on a shared machine wall time includes waiting for a core. */
	printf("ingest %ld prompts: median %.2f s wall, %.2f s CPU over %d run%s (%.0f prompts/s), peak RSS "
	       "%ld MB\n",
	       n, t_big, c_big, runs, runs == 1 ? "" : "s", (double)n / t_big, rss_big / 1024);
	printf("ingest %ld prompts: median %.2f s wall, %.2f s CPU, peak RSS %ld MB (RSS ratio for 10x "
	       "input: %.2f)\n",
	       n / 10, t_small, c_small, rss_small / 1024, (double)rss_big / (double)rss_small);
	printf("target 20 s: wall %.2fx, CPU %.2fx of the target (<= 1.00 meets it)\n", t_big / 20.0,
	       c_big / 20.0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
