/*
 * bench_work.c - `distill work` end to end against distill-teacher-sim at
 * zero latency with ~4 KB responses: traces recorded per second with 2
 * processes (64 requests in flight each) and client CPU seconds per 10,000
 * requests, side by side with the baseline of issue 4: the official OpenAI
 * Node SDK (npm install openai into a temporary directory) sending the same
 * requests to the same simulator with the same concurrency (128) and
 * discarding the answers.  Medians of alternating runs; SQLite in WAL with
 * synchronous=NORMAL on distill's side (the SDK writes nothing).
 * Environment: BENCH_N requests per run (default 10000), BENCH_RUNS (3).
 */
#include "t.h"

#include "db.h"
#include "queue.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256], distill[4096], simbin[4096];

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t spawn(const char *const *argv, const char *out, const char *err, int *outfd)
{
	int fd[2] = {-1, -1};
	pid_t pid;
	if (outfd && pipe(fd))
		exit(1);
	pid = fork();
	if (pid == 0) {
		if (outfd) {
			dup2(fd[1], 1);
			close(fd[0]);
			close(fd[1]);
		} else if (out) {
			int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			dup2(o, 1);
			close(o);
		}
		if (err) {
			int o = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			dup2(o, 2);
			close(o);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (outfd) {
		close(fd[1]);
		*outfd = fd[0];
	}
	return pid;
}

/* Run to the end; wall seconds and CPU seconds of the process and its children. */
static int run(const char *const *argv, const char *out, const char *err, double *wall, double *cpu)
{
	struct rusage ru;
	int status = 0;
	double t0 = now_s();
	pid_t pid = spawn(argv, out, err, NULL);
	wait4(pid, &status, 0, &ru);
	*wall = now_s() - t0;
	*cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void seed(const char *dbpath, const char *promptfile, int n, int offset)
{
	struct db *db = NULL;
	struct db_stmt *st = NULL;
	struct derr e = {0};
	int64_t prof = 0;
	FILE *f = fopen(promptfile, "w");

	unlink(dbpath);
	if (db_open(&db, dbpath, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e) ||
	    db_migrate(db, NULL, NULL, &e)) {
		fprintf(stderr, "db: %s\n", e.msg);
		exit(1);
	}
	db_exec(db, "INSERT INTO profiles(name, created_at) VALUES ('default', 0)", &e);
	db_query_int64(db, "SELECT id FROM profiles WHERE name = 'default'", &prof, &e);
	db_begin(db, &e);
	db_prepare(db, "INSERT INTO prompts(hash, norm_version, text, created_at) VALUES (?1, 1, ?2, 0)", &st,
		   &e);
	for (int i = 0; i < n; i++) {
		char hash[33], text[96];
		snprintf(hash, sizeof(hash), "%032x", i + 1);
		snprintf(text, sizeof(text), "What is %d + %d?", 1000 + i + offset, 7 * i + 3);
		fprintf(f, "%s\n", text);
		db_reset(st);
		db_bind_text(st, 1, hash, -1);
		db_bind_text(st, 2, text, -1);
		db_step(st, &e);
		queue_enqueue(db, db_last_rowid(db), prof, 1, NULL, &e);
	}
	db_finalize(st);
	db_commit(db, &e);
	db_close(db);
	fclose(f);
}

static int64_t q(const char *path, const char *sql)
{
	struct db *db = NULL;
	struct derr e = {0};
	int64_t v = -1;
	if (!db_open(&db, path, 0, &e))
		db_query_int64(db, sql, &v, &e);
	db_close(db);
	return v;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(void)
{
	const char *env_n = getenv("BENCH_N"), *env_r = getenv("BENCH_RUNS");
	int n = env_n ? (int)strtol(env_n, NULL, 10) : 10000, runs = env_r ? (int)strtol(env_r, NULL, 10) : 3;
	char npmdir[512], script[4096], cfg[512], dbpath[512], prompts[512], url[128], err[512], line[256],
		modules[600];
	double d_rate[16], d_cpu[16], s_rate[16], s_cpu[16], st_rate[16], st_cpu[16];
	const char *simargs[] = {simbin, "--port", "0", "--pad-reasoning", "3600", "--threads", "2", NULL};
	int simfd, port = 0, ok = 1;
	pid_t sim;
	FILE *f;
	struct stat sb;

	if (runs < 1 || runs > 16)
		runs = 3;
	t_bin("distill", distill, sizeof(distill));
	t_bin("distill-teacher-sim", simbin, sizeof(simbin));
	t_src("tests/bench/openai_baseline.mjs", script, sizeof(script));
	if (stat(simbin, &sb) != 0) {
		printf("bench_work: skipped (distill-teacher-sim not built)\n");
		return 0;
	}
	t_tmpdir(dir, sizeof(dir));
	snprintf(npmdir, sizeof(npmdir), "%s/npm", dir);
	mkdir(npmdir, 0755);
	{
		/* The baseline: the official SDK, installed for this run only. */
		const char *npm[] = {"npm",	   "install",	"--prefix", npmdir, "--silent",
				     "--no-audit", "--no-fund", "openai",   NULL};
		double w, c;
		if (run(npm, "/dev/null", NULL, &w, &c) != 0) {
			printf("bench_work: npm install openai failed: no baseline, no ratio\n");
			return 1;
		}
	}
	/* Node resolves the SDK from the script's own tree: copy the script next to it. */
	snprintf(modules, sizeof(modules), "%s/openai_baseline.mjs", npmdir);
	{
		const char *cp[] = {"cp", script, modules, NULL};
		double w, c;
		run(cp, NULL, NULL, &w, &c);
	}

	sim = spawn(simargs, NULL, "/dev/null", &simfd);
	f = fdopen(simfd, "r");
	if (f && fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "127.0.0.1:");
		if (p)
			port = (int)strtol(p + 10, NULL, 10);
	}
	if (!port) {
		printf("bench_work: the simulator did not start\n");
		return 1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", port);
	snprintf(cfg, sizeof(cfg), "%s/teacher.json", dir);
	snprintf(dbpath, sizeof(dbpath), "%s/bench.db", dir);
	snprintf(prompts, sizeof(prompts), "%s/prompts.txt", dir);
	snprintf(err, sizeof(err), "%s/work.err", dir);

	for (int r = 0; r < runs; r++) {
		for (int stream = 0; stream < 2; stream++) {
			const char *args[] = {distill,	       "work", "--db",		dbpath,
					      "--teacher",     cfg,    "--procs",	"2",
					      "--concurrency", "64",   "--until-empty", NULL};
			double w, c;
			int64_t traces, bytes;
			f = fopen(cfg, "w");
			fprintf(f,
				"{\"endpoints\":[{\"name\":\"sim\",\"base_url\":\"%s\",\"model\":\"distill-"
				"sim\","
				"\"max_concurrency\":128,\"stream\":%s}],\"profiles\":{\"default\":{"
				"\"model\":"
				"\"distill-sim\",\"max_tokens\":4096}},\"max_attempts\":5}",
				url, stream ? "true" : "false");
			fclose(f);
			seed(dbpath, prompts, n, r * n);
			if (run(args, "/dev/null", err, &w, &c) != 0)
				ok = 0;
			traces = q(dbpath, "SELECT COUNT(*) FROM traces");
			bytes = q(dbpath, "SELECT AVG(bytes) FROM attempts");
			if (traces != n)
				ok = 0;
			if (stream) {
				st_rate[r] = (double)traces / w;
				st_cpu[r] = c / (double)n * 10000;
			} else {
				d_rate[r] = (double)traces / w;
				d_cpu[r] = c / (double)n * 10000;
			}
			printf("  run %d distill (%s): %lld traces in %.2fs, %.0f/s, %.2f CPU-s/10k, %lld "
			       "B/response\n",
			       r + 1, stream ? "stream" : "no stream", (long long)traces, w,
			       (double)traces / w, c / (double)n * 10000, (long long)bytes);
		}
		{
			char conc[16] = "128", maxtok[16] = "4096";
			const char *args[] = {"node",  modules, url,	"distill-sim",
					      prompts, conc,	maxtok, NULL};
			char out[512];
			double w, c;
			long sdk_ok = 0;
			snprintf(out, sizeof(out), "%s/sdk.out", dir);
			if (run(args, out, NULL, &w, &c) != 0)
				ok = 0;
			f = fopen(out, "r");
			if (f && fgets(line, sizeof(line), f)) {
				const char *p = strstr(line, "\"ok\":");
				sdk_ok = p ? strtol(p + 5, NULL, 10) : 0;
			}
			if (f)
				fclose(f);
			if (sdk_ok != n)
				ok = 0;
			/* Only answered requests count, as only recorded traces count for distill. */
			s_rate[r] = (double)sdk_ok / w;
			s_cpu[r] = c / (double)n * 10000;
			printf("  run %d OpenAI Node SDK: %ld of %d answered in %.2fs, %.0f/s, %.2f "
			       "CPU-s/10k\n",
			       r + 1, sdk_ok, n, w, (double)sdk_ok / w, c / (double)n * 10000);
		}
		fflush(stdout);
	}
	kill(sim, SIGTERM);
	waitpid(sim, NULL, 0);
	{
		double dr = median(d_rate, runs), dc = median(d_cpu, runs), sr = median(s_rate, runs),
		       sc = median(s_cpu, runs), tr = median(st_rate, runs), tc = median(st_cpu, runs);
		printf("bench_work: %d requests x %d runs, 2 procs x 64 in flight vs SDK at 128, zero "
		       "latency\n",
		       n, runs);
		printf("  distill work, no stream : %8.0f traces/s  %6.2f CPU-s/10k  (writes every trace to "
		       "SQLite)\n",
		       dr, dc);
		printf("  distill work, streaming : %8.0f traces/s  %6.2f CPU-s/10k\n", tr, tc);
		printf("  OpenAI Node SDK         : %8.0f req/s     %6.2f CPU-s/10k  (discards the "
		       "answers)\n",
		       sr, sc);
		printf("  ratio (no stream)       : %.2fx the SDK's req/s, %.2fx less CPU  (target >= 4x)\n",
		       dr / sr, sc / dc);
		printf("  ratio (streaming)       : %.2fx the SDK's req/s, %.2fx less CPU\n", tr / sr,
		       sc / tc);
	}
	if (!ok) {
		printf("bench_work: some runs did not complete every request (see %s)\n", err);
		return 1;
	}
	return 0;
}
