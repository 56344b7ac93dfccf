/*
 * bench_export.c - distill export of N accepted ~4 KB traces (default
 * 800,000) against the baseline named by the export issue: the `zstd -3`
 * command on the same JSONL, measured side by side in this run.  The export
 * side includes the database read and the JSON building; it runs in a
 * child process so that its peak RSS is its own.  Traces are real R1
 * reasoning from ../shared/data when present (cycled), else synthetic text.
 *
 * Environment: DISTILL_BENCH_N (traces), DISTILL_BENCH_RUNS (default 3),
 * DISTILL_BENCH_DB (a database file to keep: built there when missing,
 * reused as is when present, so repeated runs skip the build).
 * Prints medians, MB/s of JSONL, the speed ratio (target >= 0.80) and the
 * export's peak RSS (target < 500 MB).  Scratch files are removed.
 */
#include "buf.h"
#include "db.h"
#include "export.h"
#include "export_fixture.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct sample {
	char *reasoning, *answer;
};

static struct sample *samples;
static int nsamples;

static void load_real(void)
{
	const char *dir = getenv("DISTILL_SHARED");
	char path[4096], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/traces_r1_gsm8k.jsonl", dir && *dir ? dir : "../shared/data");
	if (!(f = fopen(path, "r")))
		return;
	while ((n = getline(&line, &cap, f)) > 0) {
		cJSON *o = json_parse(line, (size_t)n);
		const char *resp = json_get_str(o, "response"), *cut;
		if (resp && (cut = strstr(resp, "</think>"))) {
			samples = xrealloc(samples, (size_t)(nsamples + 1) * sizeof(*samples));
			samples[nsamples].reasoning = xstrndup(resp, (size_t)(cut - resp));
			samples[nsamples].answer = xstrdup(cut + 8);
			nsamples++;
		}
		cJSON_Delete(o);
	}
	free(line);
	fclose(f);
}

static void build_db(const char *path, int64_t n)
{
	struct db *db = fx_open(path);
	struct buf r = BUF_INIT(1 << 20);
	int64_t prof = fx_profile(
		db, "default",
		"{\"model\":\"deepseek-reasoner\",\"template\":\"{prompt}\\nPlease reason step by step, and "
		"put your final answer within \\\\boxed{}.\"}");
	int64_t rs = fx_ruleset(db, "bench", 1);

	fx_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN");
	for (int64_t i = 0; i < n; i++) {
		char text[128];
		const char *reasoning, *answer = "The answer is \\boxed{42}.";
		int64_t p;
		snprintf(text, sizeof(text), "Benchmark prompt number %lld: what is %lld + %lld?",
			 (long long)i, (long long)i, (long long)(i * 7));
		p = fx_prompt(db, text, "42", "math", i % 3 ? "gsm8k" : "math500");
		if (nsamples) {
			reasoning = samples[i % nsamples].reasoning;
			answer = samples[i % nsamples].answer;
		} else {
			fx_text(&r, (uint64_t)i, 3700);
			reasoning = buf_str(&r);
		}
		fx_trace(db, p, prof, 0, reasoning, answer, "deepseek-reasoner", rs, 1, 0);
		if (i % 50000 == 49999)
			fx_exec(db, "COMMIT; BEGIN");
	}
	fx_exec(db, "COMMIT");
	db_close(db);
	buf_release(&r);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void sink(void *ctx, enum log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	fprintf(stderr, "    %s\n", msg);
}

static double cpu_of(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
	       (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* Export in a child; returns wall seconds, *cpu its CPU seconds, *rss_kb its peak RSS. */
static double run_export(const char *dbp, const char *out, double *cpu, long *rss_kb)
{
	struct rusage ru;
	int64_t t0 = mono_ns();
	int st = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct db *db = NULL;
		struct export_opts o;
		struct export_plan *p = NULL;
		struct export_result res;
		struct derr e = {0};
		export_opts_init(&o);
		if (getenv("DISTILL_VERBOSE"))
			log_set_sink(sink, NULL, LOG_DEBUG);
		if (db_open(&db, dbp, 0, &e) || export_plan_new(db, &o, &p, &e) ||
		    export_plan_write(db, p, out, 1, NULL, &res, &e)) {
			fprintf(stderr, "export: %s\n", e.msg);
			_exit(1);
		}
		export_plan_free(p);
		db_close(db);
		_exit(0);
	}
	wait4(pid, &st, 0, &ru);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "export child failed\n");
		exit(1);
	}
	*rss_kb = ru.ru_maxrss;
	*cpu = cpu_of(&ru);
	return (double)(mono_ns() - t0) / 1e9;
}

/* Run a shell command; wall seconds, and its CPU seconds in *cpu. */
static double run_cmd(const char *cmd, double *cpu)
{
	struct rusage ru;
	int64_t t0 = mono_ns();
	int st = 0;
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	wait4(pid, &st, 0, &ru);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "failed: %s\n", cmd);
		exit(1);
	}
	if (cpu)
		*cpu = cpu_of(&ru);
	return (double)(mono_ns() - t0) / 1e9;
}

int main(void)
{
	const char *ns = getenv("DISTILL_BENCH_N"), *rs = getenv("DISTILL_BENCH_RUNS"),
		   *base = getenv("TMPDIR"), *keep = getenv("DISTILL_BENCH_DB");
	int64_t n = 800000, runs = 3;
	char dir[1024], dbp[1100], out[1100], jsonl[1100], cmd[4096];
	double te[16], tz[16], ce[16], cz[16], jsonl_mb;
	long rss = 0, peak = 0;
	FILE *f;

	if (ns && parse_int64(ns, 1, 100000000, &n))
		return 2;
	if (rs && parse_int64(rs, 1, 15, &runs))
		return 2;
	snprintf(dir, sizeof(dir), "%s/distill-bench-export-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	if (keep && *keep)
		snprintf(dbp, sizeof(dbp), "%s", keep);
	else
		snprintf(dbp, sizeof(dbp), "%s/bench.db", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(jsonl, sizeof(jsonl), "%s/all.jsonl", dir);
	load_real();
	printf("bench_export: %lld traces (%s text), %lld runs\n", (long long)n,
	       nsamples ? "real R1 reasoning" : "synthetic", (long long)runs);
	if (!keep || !*keep || access(dbp, F_OK) != 0)
		build_db(dbp, n);

	for (int i = 0; i < runs; i++) {
		te[i] = run_export(dbp, out, &ce[i], &rss);
		if (rss > peak)
			peak = rss;
	}
	/* The same JSONL, uncompressed, as the baseline's input. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && zstd -dcq $(ls train-*.jsonl.zst val-*.jsonl.zst 2>/dev/null) > '%s'", out,
		 jsonl);
	run_cmd(cmd, NULL);
	f = fopen(jsonl, "rb");
	fseek(f, 0, SEEK_END);
	jsonl_mb = (double)ftell(f) / 1e6;
	fclose(f);
	snprintf(cmd, sizeof(cmd), "exec zstd -3 -q -f '%s' -o '%s.zst'", jsonl, jsonl);
	for (int i = 0; i < runs; i++)
		tz[i] = run_cmd(cmd, &cz[i]);
	qsort(te, (size_t)runs, sizeof(double), dcmp);
	qsort(tz, (size_t)runs, sizeof(double), dcmp);
	qsort(ce, (size_t)runs, sizeof(double), dcmp);
	qsort(cz, (size_t)runs, sizeof(double), dcmp);
	printf("  JSONL: %.1f MB\n", jsonl_mb);
	printf("  distill export (db read + JSON + zstd -3, shards in parallel): median %.2f s, %.0f MB/s\n",
	       te[runs / 2], jsonl_mb / te[runs / 2]);
	printf("  zstd -3 command on the same JSONL:                            median %.2f s, %.0f MB/s\n",
	       tz[runs / 2], jsonl_mb / tz[runs / 2]);
	printf("  speed ratio export/zstd (wall): %.2f (target >= 0.80)\n", tz[runs / 2] / te[runs / 2]);
	printf("  CPU seconds: export %.2f, zstd %.2f (CPU ratio %.2f; the export may use 2 cores)\n",
	       ce[runs / 2], cz[runs / 2], cz[runs / 2] / ce[runs / 2]);
	printf("  export peak RSS: %.0f MB (target < 500 MB)\n", (double)peak / 1024.0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	run_cmd(cmd, NULL);
	return 0;
}
