/*
 * bench_queue.c - the queue under 4 worker processes: claim 16 jobs, then
 * complete them with a 4 KB trace, until the queue is empty.  distill's
 * queue_claim/queue_record against the baseline of issue 2, a plain SQLite
 * loop (UPDATE ... RETURNING to claim, claims and commits batched by 16),
 * written here with sqlite3 directly, on the same data, the same
 * synchronous mode (NORMAL, as distill opens it) and in the same run,
 * alternating the two.  Target: distill >= 0.7 of the plain loop.
 * Usage: bench_queue [JOBS] [RUNS]   (default 40000 jobs, 3 runs each; median)
 */
#include "db.h"
#include "queue.h"
#include "t.h"
#include "util.h"

#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROCS 4
#define BATCH 16
#define TRACE_BYTES 4096

static char trace_text[TRACE_BYTES + 1];

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A fresh database with n queued jobs (one per prompt). */
static int setup(const char *path, long n)
{
	char sql[2048];
	struct db *db = NULL;
	struct derr e = {0};
	int rc;

	snprintf(sql, sizeof(sql), "rm -f '%s' '%s-wal' '%s-shm'", path, path, path);
	if (system(sql) != 0)
		return -1;
	rc = db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e);
	if (!rc)
		rc = db_migrate(db, NULL, NULL, &e);
	if (!rc)
		rc = db_exec(db, "INSERT INTO profiles(name, created_at) VALUES ('default', 0)", &e);
	if (!rc) {
		snprintf(sql, sizeof(sql),
			 "BEGIN;"
			 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %ld) "
			 "INSERT INTO prompts(id, hash, norm_version, text, created_at) "
			 "SELECT i, printf('%%032x', i), 1, 'What is ' || i || ' plus ' || (i * 7 %% 100) || "
			 "'?', 0 "
			 "FROM c;"
			 "INSERT INTO jobs(prompt_id, profile_id, sample_index, created_at, updated_at) "
			 "SELECT id, 1, 0, 0, 0 FROM prompts;"
			 "COMMIT;",
			 n);
		rc = db_exec(db, sql, &e);
	}
	db_close(db);
	if (rc)
		fprintf(stderr, "setup: %s\n", e.msg);
	return rc;
}

/* distill: queue_claim + queue_record (trace, no attempt row unless with_attempt). */
static int worker_distill(const char *path, int id, int with_attempt)
{
	struct db *db = NULL;
	struct derr e = {0};
	struct queue_trace tr = {.reasoning = trace_text,
				 .answer = "The answer is \\boxed{42}.",
				 .placement = "reasoning_content",
				 .finish_reason = "stop",
				 .completion_tokens = 1000,
				 .endpoint = "bench",
				 .model = "bench"};
	struct queue_result res[BATCH];
	char owner[32];

	snprintf(owner, sizeof(owner), "bench-%d", id);
	if (db_open(&db, path, 0, &e))
		return 1;
	for (;;) {
		struct queue_job *jobs = NULL;
		int n = 0;
		if (queue_claim(db, owner, NULL, 0, BATCH, 600000, &jobs, &n, &e))
			return 2;
		if (n == 0)
			break;
		memset(res, 0, sizeof(res));
		for (int i = 0; i < n; i++) {
			res[i].job_id = jobs[i].id;
			res[i].outcome = QUEUE_DONE;
			res[i].trace = &tr;
			res[i].has_attempt = with_attempt;
			res[i].attempt.attempt_no = 1;
			res[i].attempt.endpoint = "bench";
			res[i].attempt.started_at = 1;
			res[i].attempt.http_status = 200;
		}
		if (queue_record(db, owner, 3, res, n, &e)) {
			fprintf(stderr, "record: %s\n", e.msg);
			return 3;
		}
		queue_jobs_free(jobs, n);
	}
	db_close(db);
	return 0;
}

static const char SQL_BASE_CLAIM[] =
	"UPDATE jobs SET state = 'leased', lease_owner = ?1, lease_expires = ?2, updated_at = ?3 "
	"WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' ORDER BY next_attempt_at, id LIMIT 16) "
	"RETURNING id, (SELECT text FROM prompts p WHERE p.id = prompt_id)";
static const char SQL_BASE_TRACE[] =
	"INSERT INTO traces(job_id, reasoning, answer, placement, finish_reason, "
	"completion_tokens, endpoint, model, created_at) "
	"VALUES (?1, ?2, ?3, 'reasoning_content', 'stop', 1000, 'bench', 'bench', ?4)";
static const char SQL_BASE_DONE[] =
	"UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires = NULL, "
	"done_at = ?2, updated_at = ?2 WHERE id = ?1";

/* The baseline: the same work as a plain SQLite loop. */
static int worker_plain(const char *path, int id)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *claim, *trace, *done;
	char owner[32];
	int64_t ids[BATCH];

	snprintf(owner, sizeof(owner), "plain-%d", id);
	if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return 1;
	sqlite3_busy_timeout(h, 30000);
	sqlite3_exec(h, "PRAGMA synchronous=NORMAL; PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON", NULL,
		     NULL, NULL);
	if (sqlite3_prepare_v2(h, SQL_BASE_CLAIM, -1, &claim, NULL) ||
	    sqlite3_prepare_v2(h, SQL_BASE_TRACE, -1, &trace, NULL) ||
	    sqlite3_prepare_v2(h, SQL_BASE_DONE, -1, &done, NULL)) {
		fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(h));
		return 2;
	}
	for (;;) {
		int n = 0;
		int64_t t = now_ms();
		if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			return 3;
		sqlite3_bind_text(claim, 1, owner, -1, SQLITE_STATIC);
		sqlite3_bind_int64(claim, 2, t + 600000);
		sqlite3_bind_int64(claim, 3, t);
		while (sqlite3_step(claim) == SQLITE_ROW && n < BATCH) {
			ids[n++] = sqlite3_column_int64(claim, 0);
			(void)sqlite3_column_text(claim, 1); /* the prompt, as a worker reads it */
		}
		sqlite3_reset(claim);
		if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return 4;
		if (n == 0)
			break;
		if (sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			return 5;
		for (int i = 0; i < n; i++) {
			sqlite3_bind_int64(trace, 1, ids[i]);
			sqlite3_bind_text(trace, 2, trace_text, TRACE_BYTES, SQLITE_STATIC);
			sqlite3_bind_text(trace, 3, "The answer is \\boxed{42}.", -1, SQLITE_STATIC);
			sqlite3_bind_int64(trace, 4, t);
			if (sqlite3_step(trace) != SQLITE_DONE)
				return 6;
			sqlite3_reset(trace);
			sqlite3_bind_int64(done, 1, ids[i]);
			sqlite3_bind_int64(done, 2, t);
			if (sqlite3_step(done) != SQLITE_DONE)
				return 7;
			sqlite3_reset(done);
		}
		if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return 8;
	}
	sqlite3_finalize(claim);
	sqlite3_finalize(trace);
	sqlite3_finalize(done);
	sqlite3_close(h);
	return 0;
}

enum kind { KIND_PLAIN, KIND_DISTILL, KIND_DISTILL_ATTEMPT };

/* One run: PROCS processes (each opening its own connection after fork)
 * drain n jobs.  Returns jobs per second, or -1. */
static double run(const char *path, long n, enum kind k)
{
	pid_t pids[PROCS];
	double t0, t1;
	int ok = 1;
	int64_t done = 0;
	struct db *db = NULL;
	struct derr e = {0};

	if (setup(path, n))
		return -1;
	t0 = now_s();
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(k == KIND_PLAIN ? worker_plain(path, i)
					      : worker_distill(path, i, k == KIND_DISTILL_ATTEMPT));
	}
	for (int i = 0; i < PROCS; i++) {
		int st = 0;
		waitpid(pids[i], &st, 0);
		ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	t1 = now_s();
	if (db_open(&db, path, 0, &e) || db_query_int64(db, "SELECT COUNT(*) FROM traces", &done, &e))
		ok = 0;
	db_close(db);
	if (!ok || done != n) {
		fprintf(stderr, "run failed (%lld of %ld traces)\n", (long long)done, n);
		return -1;
	}
	return (double)n / (t1 - t0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 40000;
	int runs = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
	double r[3][16];
	char dir[256], path[512], cmd[600];
	static const char *names[] = {"plain SQLite loop (baseline)", "distill queue_claim/queue_record",
				      "distill, with an attempts row per job"};

	if (n < 1 || runs < 1 || runs > 16)
		return 2;
	for (int i = 0; i < TRACE_BYTES; i++)
		trace_text[i] = "Let me think step by step. "[i % 27];
	t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/q.db", dir);
	/* Alternate the kinds so machine noise hits them alike. */
	for (int i = 0; i < runs; i++)
		for (int k = 0; k < 3; k++)
			if ((r[k][i] = run(path, n, (enum kind)k)) < 0)
				return 1;
	for (int k = 0; k < 3; k++)
		qsort(r[k], (size_t)runs, sizeof(double), cmp_double);
	printf("queue: %d processes, %ld jobs, batches of %d, %d-byte traces, synchronous=NORMAL, median of "
	       "%d\n",
	       PROCS, n, BATCH, TRACE_BYTES, runs);
	for (int k = 0; k < 3; k++)
		printf("  %-40s %8.0f jobs/s  ratio %.2f\n", names[k], r[k][runs / 2],
		       r[k][runs / 2] / r[0][runs / 2]);
	printf("target: distill >= 0.70 of the plain loop: %s\n",
	       r[1][runs / 2] / r[0][runs / 2] >= 0.7 ? "met" : "NOT met");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}
