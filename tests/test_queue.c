/* test_queue.c - claims, leases, completion rules, retries, several processes. */
#include "db.h"
#include "queue.h"
#include "t.h"
#include "util.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static char dbpath[512];

static struct db *open_db(void)
{
	struct db *db = NULL;
	struct derr e = {0};
	if (db_open(&db, dbpath, 0, &e)) {
		fprintf(stderr, "open: %s\n", e.msg);
		exit(1);
	}
	return db;
}

/* n prompts, one profile, k samples each. */
static void setup(int n, int k)
{
	struct db *db = NULL;
	struct derr e = {0};
	struct db_stmt *st;
	char dir[256];

	t_tmpdir(dir, sizeof(dir));
	snprintf(dbpath, sizeof(dbpath), "%s/q.db", dir);
	T_OK(db_open(&db, dbpath, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	T_OK(db_exec(db, "INSERT INTO profiles(name, created_at) VALUES ('default', 0)", &e), &e);
	T_OK(db_begin(db, &e), &e);
	T_OK(db_prepare(db, "INSERT INTO prompts(hash, norm_version, text, created_at) VALUES (?1, 1, ?2, 0)",
			&st, &e),
	     &e);
	for (int i = 0; i < n; i++) {
		char h[33], txt[64];
		snprintf(h, sizeof(h), "%032d", i);
		snprintf(txt, sizeof(txt), "What is %d + %d?", i, i + 1);
		db_bind_text(st, 1, h, -1);
		db_bind_text(st, 2, txt, -1);
		T_EQ_INT(db_step(st, &e), 0);
		db_reset(st);
		int64_t added = 0;
		T_OK(queue_enqueue(db, db_last_rowid(db), 1, k, &added, &e), &e);
		T_EQ_INT(added, k);
	}
	db_finalize(st);
	T_OK(db_commit(db, &e), &e);
	db_close(db);
}

static int64_t count(struct db *db, const char *sql)
{
	int64_t v = -1;
	struct derr e = {0};
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	return v;
}

static struct queue_result done_result(int64_t job_id, const struct queue_trace *tr)
{
	struct queue_result r;
	memset(&r, 0, sizeof(r));
	r.job_id = job_id;
	r.outcome = QUEUE_DONE;
	r.has_attempt = 1;
	r.attempt.attempt_no = 1;
	r.attempt.endpoint = "sim";
	r.attempt.started_at = now_ms();
	r.attempt.http_status = 200;
	r.trace = tr;
	return r;
}

static const struct queue_trace trace = {
	.reasoning = "Step 1: add.",
	.answer = "\\boxed{3}",
	.placement = "think_tags",
	.finish_reason = "stop",
	.endpoint = "sim",
	.model = "distill-sim",
};

static void test_basic(void)
{
	struct derr e = {0};
	struct queue_job *jobs;
	int n;

	setup(10, 2);
	struct db *db = open_db();
	/* Raising K later adds only the missing samples: 20 + 2 = 22 jobs. */
	int64_t added = -1;
	T_OK(queue_enqueue(db, 1, 1, 4, &added, &e), &e);
	T_EQ_INT(added, 2);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM jobs WHERE state='queued'"), 22);

	T_OK(queue_claim(db, "a", NULL, 0, 5, 60000, &jobs, &n, &e), &e);
	T_EQ_INT(n, 5);
	T_TRUE(jobs[0].prompt && strstr(jobs[0].prompt, "What is"));
	T_EQ_INT(strlen(jobs[0].prompt_hash), 32);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM jobs WHERE state='leased' AND lease_owner='a'"), 5);

	/* Complete one; a second completion is refused but its attempt kept. */
	struct queue_result r[2] = {done_result(jobs[0].id, &trace), done_result(jobs[0].id, &trace)};
	T_OK(queue_record(db, "a", 3, r, 2, &e), &e);
	T_EQ_INT(r[0].status, 0);
	T_TRUE(r[0].trace_id > 0);
	T_EQ_INT(r[1].status, DERR_STALE);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM traces"), 1);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM attempts"), 2);
	T_EQ_INT(count(db, "SELECT attempts FROM jobs WHERE state='done'"), 1);

	/* Retry until dead: max_attempts 3. */
	int64_t jid = jobs[1].id;
	for (int i = 0; i < 3; i++) {
		struct queue_result f;
		memset(&f, 0, sizeof(f));
		f.job_id = jid;
		f.outcome = QUEUE_RETRY;
		f.has_attempt = 1;
		f.attempt.attempt_no = i + 1;
		f.attempt.http_status = 500;
		f.attempt.error_class = "job";
		f.attempt.error_code = "http_500";
		f.error = "server error";
		f.error_code = "http_500";
		T_OK(queue_record(db, "a", 3, &f, 1, &e), &e);
		T_EQ_INT(f.status, 0);
		if (i < 2) {
			T_EQ_INT(count(db, "SELECT COUNT(*) FROM jobs WHERE state='failed'"), 1);
			/* Reclaim it regardless of backoff by moving its time. */
			T_OK(db_exec(db, "UPDATE jobs SET next_attempt_at = 0 WHERE state='failed'", &e), &e);
			struct queue_job *again;
			int m;
			T_OK(queue_claim(db, "a", NULL, 0, 100, 60000, &again, &m, &e), &e);
			T_TRUE(m >= 1);
			queue_jobs_free(again, m);
		}
	}
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM jobs WHERE state='dead' AND last_error_code='http_500'"), 1);

	/* Requeue the dead job. */
	int64_t rq = 0;
	T_OK(queue_requeue(db, "dead", "http_500", 0, &rq, &e), &e);
	T_EQ_INT(rq, 1);
	T_EQ_INT(queue_requeue(db, "done", NULL, 0, &rq, &e), DERR_INVALID);

	/* Release returns leases without using attempts. */
	T_OK(queue_release(db, "a", NULL, 0, &e), &e);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM jobs WHERE state='leased'"), 0);

	int64_t c[QS_COUNT];
	T_OK(queue_counts(db, c, &e), &e);
	T_EQ_INT(c[QS_DONE], 1);
	T_EQ_INT(c[QS_QUEUED], 21);
	queue_jobs_free(jobs, n);
	db_close(db);

	T_EQ_INT(queue_backoff_ms(0, 1000, 300000, 0.0), 500);
	T_EQ_INT(queue_backoff_ms(3, 1000, 300000, 0.999999), 7999);
	T_EQ_INT(queue_backoff_ms(30, 1000, 300000, 0.0), 150000);
}

/* A lease that expires is claimed by another owner; the first completion
 * wins; a failure reported by the old owner does not disturb the new one. */
static void test_takeover(void)
{
	struct derr e = {0};
	struct queue_job *ja, *jb;
	int na, nb;

	setup(1, 1);
	struct db *db = open_db();
	T_OK(queue_claim(db, "a", NULL, 0, 1, 1, &ja, &na, &e), &e);
	T_EQ_INT(na, 1);
	usleep(5000);
	T_OK(queue_claim(db, "b", NULL, 0, 1, 60000, &jb, &nb, &e), &e);
	T_EQ_INT(nb, 1);
	T_EQ_INT(jb[0].id, ja[0].id);

	struct queue_result f;
	memset(&f, 0, sizeof(f));
	f.job_id = ja[0].id;
	f.outcome = QUEUE_RETRY;
	f.has_attempt = 1;
	f.attempt.error_code = "timeout";
	T_OK(queue_record(db, "a", 3, &f, 1, &e), &e);
	T_EQ_INT(f.status, DERR_STALE);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM jobs WHERE state='leased' AND lease_owner='b'"), 1);

	struct queue_result rb = done_result(jb[0].id, &trace), ra = done_result(ja[0].id, &trace);
	T_OK(queue_record(db, "b", 3, &rb, 1, &e), &e);
	T_EQ_INT(rb.status, 0);
	T_OK(queue_record(db, "a", 3, &ra, 1, &e), &e);
	T_EQ_INT(ra.status, DERR_STALE); /* refused: b completed first */
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM traces"), 1);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM attempts"), 3);
	queue_jobs_free(ja, na);
	queue_jobs_free(jb, nb);
	db_close(db);
}

/* Four processes claim and complete at once: every job exactly once. */
static void test_processes(void)
{
	enum { NPROC = 4, NJOBS = 400 };
	pid_t pids[NPROC];

	setup(NJOBS, 1);
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			struct db *db = open_db(); /* opened after fork */
			struct derr e = {0};
			char owner[32];
			int stale = 0;
			snprintf(owner, sizeof(owner), "w%d", p);
			for (;;) {
				struct queue_job *jobs;
				int n;
				if (queue_claim(db, owner, NULL, 0, 7, 60000, &jobs, &n, &e))
					_exit(10);
				if (n == 0)
					break;
				struct queue_result r[7];
				for (int i = 0; i < n; i++)
					r[i] = done_result(jobs[i].id, &trace);
				if (queue_record(db, owner, 3, r, n, &e))
					_exit(11);
				for (int i = 0; i < n; i++)
					stale += r[i].status != 0;
				queue_jobs_free(jobs, n);
			}
			db_close(db);
			_exit(stale ? 12 : 0);
		}
	}
	for (int p = 0; p < NPROC; p++) {
		int status = 0;
		waitpid(pids[p], &status, 0);
		T_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	struct db *db = open_db();
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM jobs WHERE state='done'"), NJOBS);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM traces"), NJOBS);
	T_EQ_INT(count(db, "SELECT COUNT(*) FROM attempts"), NJOBS); /* no job requested twice */
	db_close(db);
}

/* A process killed between claim and complete: its jobs come back after the lease. */
static void test_sigkill(void)
{
	int fds[2];
	pid_t pid;
	char c;

	setup(5, 1);
	T_EQ_INT(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		struct db *db = open_db();
		struct derr e = {0};
		struct queue_job *jobs;
		int n;
		if (queue_claim(db, "doomed", NULL, 0, 5, 300, &jobs, &n, &e) || n != 5)
			_exit(1);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	T_EQ_INT(read(fds[0], &c, 1), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	close(fds[1]);

	struct db *db = open_db();
	struct derr e = {0};
	struct queue_job *jobs;
	int n;
	T_OK(queue_claim(db, "next", NULL, 0, 5, 60000, &jobs, &n, &e), &e);
	T_EQ_INT(n, 0); /* still leased */
	usleep(400000);
	T_OK(queue_claim(db, "next", NULL, 0, 5, 60000, &jobs, &n, &e), &e);
	T_EQ_INT(n, 5);
	queue_jobs_free(jobs, n);
	db_close(db);
}

int main(void)
{
	test_basic();
	test_takeover();
	test_processes();
	test_sigkill();
	return t_done();
}
