/*
 * test_worker.c - `distill work` end to end against distill-teacher-sim:
 * placements, fault kinds, exact counts, SIGKILL and rerun, SIGTERM drain,
 * the budget stop, samples that differ, short leases under slow answers, a
 * paused endpoint, and the API key never stored.  Sizes are small so that
 * the whole file runs in seconds; each scenario has its own simulator and
 * database.  Skips when the simulator is not built.
 */
#include "t.h"

#include "buf.h"
#include "db.h"
#include "queue.h"
#include "zst.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];
static char distill[4096], simbin[4096];
static int scenario;

struct sim {
	pid_t pid;
	int port;
	int nstats; /* our own GET /stats requests, which the simulator counts too */
};

static void msleep(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Start the simulator with extra arguments (NULL-terminated); parse its port. */
static struct sim sim_start(const char *const *args)
{
	struct sim s = {0, 0, 0};
	const char *argv[40];
	int fd[2], n = 0;
	char line[256];
	FILE *f;

	argv[n++] = simbin;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--seed";
	argv[n++] = "7";
	while (args && *args && n < 38)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (pipe(fd))
		exit(1);
	s.pid = fork();
	if (s.pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execv(simbin, (char *const *)argv);
		_exit(127);
	}
	close(fd[1]);
	f = fdopen(fd[0], "r");
	if (f && fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "127.0.0.1:");
		if (p)
			s.port = (int)strtol(p + 10, NULL, 10);
	}
	if (f)
		fclose(f);
	if (!s.port) {
		fprintf(stderr, "simulator did not start\n");
		exit(1);
	}
	return s;
}

static void sim_stop(struct sim *s)
{
	kill(s->pid, SIGTERM);
	waitpid(s->pid, NULL, 0);
}

/* GET /stats and read one integer counter ("requests"). */
static long sim_stat(struct sim *s, const char *key)
{
	struct sockaddr_in a;
	char req[128], resp[8192], pat[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t r;
	const char *p;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)s->port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	snprintf(req, sizeof(req), "GET /stats HTTP/1.0\r\nHost: x\r\n\r\n");
	if (write(fd, req, strlen(req)) < 0) {
		close(fd);
		return -1;
	}
	while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
		got += (size_t)r;
	close(fd);
	s->nstats++;
	resp[got] = '\0';
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(resp, pat);
	return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

/* POSTs the simulator received (its count less our GET /stats). */
static long sim_requests(struct sim *s)
{
	long n = sim_stat(s, "requests");
	return n < 0 ? n : n - s->nstats;
}

/* A fresh database with n prompts, k samples each, for profile "default". */
static void seed_db(const char *path, int n, int k)
{
	struct db *db = NULL;
	struct db_stmt *st = NULL;
	struct derr e = {0};
	int64_t prof = 0;

	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	T_OK(db_exec(db, "INSERT INTO profiles(name, created_at) VALUES ('default', 0)", &e), &e);
	T_OK(db_query_int64(db, "SELECT id FROM profiles WHERE name = 'default'", &prof, &e), &e);
	T_OK(db_begin(db, &e), &e);
	T_OK(db_prepare(db, "INSERT INTO prompts(hash, norm_version, text, created_at) VALUES (?1, 1, ?2, 0)",
			&st, &e),
	     &e);
	for (int i = 0; i < n; i++) {
		char hash[33], text[96];
		snprintf(hash, sizeof(hash), "%032x", i + 1);
		snprintf(text, sizeof(text), "What is %d + %d?", 100 + i, 7 * i + 3);
		db_reset(st);
		db_bind_text(st, 1, hash, -1);
		db_bind_text(st, 2, text, -1);
		T_EQ_INT(db_step(st, &e), 0);
		T_OK(queue_enqueue(db, db_last_rowid(db), prof, k, NULL, &e), &e);
	}
	db_finalize(st);
	T_OK(db_commit(db, &e), &e);
	db_close(db);
}

static int64_t q(const char *path, const char *sql)
{
	struct db *db = NULL;
	struct derr e = {0};
	int64_t v = -1;
	T_OK(db_open(&db, path, 0, &e), &e);
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	db_close(db);
	return v;
}

/* Write a config for the simulator at port; each piece of extra JSON may be NULL. */
static void write_config(const char *path, int port, const char *endpoint_extra, const char *profile_extra,
			 const char *timeouts, const char *top_extra)
{
	FILE *f = fopen(path, "w");
	fprintf(f,
		"{\"endpoints\":[{\"name\":\"sim\",\"base_url\":\"http://127.0.0.1:%d/"
		"v1\",\"model\":\"distill-sim\"%s}],"
		"\"profiles\":{\"default\":{\"model\":\"distill-sim\"%s}},"
		"\"timeouts\":{%s}%s}",
		port, endpoint_extra ? endpoint_extra : "",
		profile_extra ? profile_extra : ",\"max_tokens\":2048",
		timeouts ? timeouts
			 : "\"connect\":\"2s\",\"total\":\"20s\",\"stall\":\"400ms\",\"grace\":\"5s\"",
		top_extra ? top_extra : "");
	fclose(f);
}

/* Start `distill work` with args; stderr goes to errpath.  Returns the pid. */
static pid_t work_start(const char *errpath, const char *const *args)
{
	const char *argv[32];
	int n = 0;
	pid_t pid;

	argv[n++] = distill;
	argv[n++] = "work";
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		close(fd);
		execv(distill, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static int work_wait(pid_t pid)
{
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int work(const char *errpath, const char *const *args)
{
	return work_wait(work_start(errpath, args));
}

struct paths {
	char db[512], cfg[512], err[512];
};

static void paths_new(struct paths *p, const char *name)
{
	scenario++;
	snprintf(p->db, sizeof(p->db), "%s/%d-%s.db", dir, scenario, name);
	snprintf(p->cfg, sizeof(p->cfg), "%s/%d-%s.json", dir, scenario, name);
	snprintf(p->err, sizeof(p->err), "%s/%d-%s.err", dir, scenario, name);
}

/* The invariants every run must leave: traces = done jobs, one trace per job,
 * no lease left, every attempt's job exists. */
static void check_invariants(const char *db)
{
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces"),
		 q(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"));
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces"), q(db, "SELECT COUNT(DISTINCT job_id) FROM traces"));
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs WHERE state = 'leased'"), 0);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done' AND lease_owner IS NOT NULL"), 0);
}

static void test_placements(void)
{
	struct paths p;
	struct sim s = sim_start(NULL);
	const char *args[] = {"--db", p.db, "--teacher", p.cfg, "--procs", "2", "--until-empty", NULL};

	paths_new(&p, "placements");
	seed_db(p.db, 120, 1);
	write_config(p.cfg, s.port, NULL, NULL, NULL, NULL);
	T_EQ_INT(work(p.err, args), 0);
	check_invariants(p.db);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces"), 120);
	/* Every placement the simulator used is recognised, with its reasoning. */
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces WHERE placement = 'none'"), 0);
	T_EQ_INT(q(p.db, "SELECT COUNT(DISTINCT placement) FROM traces"), 4);
	T_EQ_INT(q(p.db,
		   "SELECT COUNT(*) FROM traces WHERE length(reasoning) < 20 OR answer NOT LIKE '%boxed%'"),
		 0);
	T_EQ_INT(q(p.db,
		   "SELECT COUNT(*) FROM traces WHERE reasoning LIKE '%think>%' OR answer LIKE '%think>%'"),
		 0);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces WHERE placement = 'reasoning_content'"),
		 sim_stat(&s, "reasoning_content"));
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces WHERE placement = 'close_tag_only'"),
		 sim_stat(&s, "close_only"));
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces WHERE completion_tokens > 0 AND raw_body IS NOT NULL "
			 "AND finish_reason = 'stop'"),
		 120);
	sim_stop(&s);

	/* The same without streaming (the per-endpoint switch). */
	s = sim_start(NULL);
	paths_new(&p, "nostream");
	seed_db(p.db, 60, 1);
	write_config(p.cfg, s.port, ",\"stream\":false", NULL, NULL, NULL);
	T_EQ_INT(work(p.err, args), 0);
	check_invariants(p.db);
	T_EQ_INT(q(p.db, "SELECT COUNT(DISTINCT placement) FROM traces"), 4);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces WHERE placement != 'none' AND length(reasoning) > 20"),
		 60);
	T_EQ_INT(sim_stat(&s, "stream"), 0);
	sim_stop(&s);
}

/* Each fault kind: retried to success, with the right error on the attempts.
 * The kinds run side by side (each its own simulator and database). */
static void test_faults(void)
{
	static const struct {
		const char *flag, *code, *also;
	} kinds[] = {
		{"--http-429", "http_429", ""},
		{"--http-500", "http_500", ""},
		{"--http-503", "http_503", ""},
		{"--malformed", "malformed", ""},
		/* The simulator cannot cut a stream short: it stops sending, a stall. */
		{"--close", "transport", "stall"},
		{"--stall", "stall", ""},
	};
	enum { NK = sizeof(kinds) / sizeof(kinds[0]) };
	struct paths p[NK];
	struct sim s[NK];
	pid_t pid[NK];

	for (size_t i = 0; i < NK; i++) {
		const char *sargs[] = {kinds[i].flag, "0.2", "--stall-time", "3s", "--retry-after",
				       "0",	      NULL};
		const char *args[] = {"--db",	 p[i].db, "--teacher",	   p[i].cfg,
				      "--procs", "1",	  "--until-empty", NULL};
		s[i] = sim_start(sargs);
		paths_new(&p[i], kinds[i].code);
		seed_db(p[i].db, 24, 1);
		write_config(p[i].cfg, s[i].port, NULL, NULL, NULL, ",\"max_attempts\":8");
		pid[i] = work_start(p[i].err, args);
	}
	for (size_t i = 0; i < NK; i++) {
		char sql[256];
		int rc = work_wait(pid[i]);
		if (rc != 0)
			T_FAIL_AT("%s: exit %d", kinds[i].code, rc);
		check_invariants(p[i].db);
		T_EQ_INT(q(p[i].db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 24);
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM attempts WHERE error_code IN ('%s', '%s')",
			 kinds[i].code, kinds[i].also);
		if (q(p[i].db, sql) < 1)
			T_FAIL_AT("%s: no attempt recorded the fault", kinds[i].code);
		snprintf(sql, sizeof(sql),
			 "SELECT COUNT(*) FROM attempts WHERE error_code IS NOT NULL AND error_code NOT IN "
			 "('%s', '%s')",
			 kinds[i].code, kinds[i].also);
		T_EQ_INT(q(p[i].db, sql), 0);
		/* Every request the simulator saw is an attempt row. */
		T_EQ_INT(q(p[i].db, "SELECT COUNT(*) FROM attempts"), sim_requests(&s[i]));
		sim_stop(&s[i]);
	}
}

/* Dead jobs: a refused request (4xx) is dead at once; attempts run out. */
static void test_dead(void)
{
	struct paths p;
	const char *sargs[] = {"--max-body", "200", NULL};
	struct sim s = sim_start(sargs);
	const char *args[] = {"--db", p.db, "--teacher", p.cfg, "--procs", "1", "--until-empty", NULL};

	paths_new(&p, "dead");
	seed_db(p.db, 5, 1);
	write_config(p.cfg, s.port, NULL, NULL, NULL, NULL);
	T_EQ_INT(work(p.err, args), 3);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'dead' AND last_error_code = 'http_413'"),
		 5);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM attempts"), 5);
	sim_stop(&s);

	/* A response over max_response_bytes is a job error (too_large). */
	{
		const char *big[] = {"--pad-reasoning", "8000", NULL};
		s = sim_start(big);
		paths_new(&p, "toolarge");
		seed_db(p.db, 4, 1);
		write_config(p.cfg, s.port, NULL, NULL, NULL,
			     ",\"max_attempts\":1,\"max_response_bytes\":4096");
		T_EQ_INT(work(p.err, args), 3);
		T_EQ_INT(
			q(p.db,
			  "SELECT COUNT(*) FROM jobs WHERE state = 'dead' AND last_error_code = 'too_large'"),
			4);
		sim_stop(&s);
	}
	{
		const char *sargs2[] = {"--http-500", "0.6", "--retry-after", "0", NULL};
		const char *rq[] = {distill, "requeue", "--db", p.db, "--state", "dead", NULL};
		s = sim_start(sargs2);
		paths_new(&p, "exhausted");
		seed_db(p.db, 12, 1);
		write_config(p.cfg, s.port, NULL, NULL, NULL, ",\"max_attempts\":1");
		T_EQ_INT(work(p.err, args), 3);
		check_invariants(p.db);
		T_TRUE(q(p.db,
			 "SELECT COUNT(*) FROM jobs WHERE state = 'dead' AND last_error_code = 'http_500'") >
		       0);
		T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state IN ('done', 'dead')"), 12);
		/* requeue puts them back, and another run finishes them. */
		{
			pid_t pid = fork();
			if (pid == 0) {
				int fd = open("/dev/null", O_WRONLY);
				dup2(fd, 1);
				execv(distill, (char *const *)rq);
				_exit(127);
			}
			T_EQ_INT(work_wait(pid), 0);
		}
		T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'dead'"), 0);
		sim_stop(&s);
		s = sim_start(NULL);
		write_config(p.cfg, s.port, NULL, NULL, NULL, NULL);
		T_EQ_INT(work(p.err, args), 0);
		T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 12);
		sim_stop(&s);
	}
}

/* Exact counts under faults: every job done or dead, none done twice. */
static void test_counts(void)
{
	struct paths p;
	const char *sargs[] = {"--http-429", "0.03", "--http-500",    "0.03", "--malformed", "0.02",
			       "--close",    "0.02", "--retry-after", "0",    NULL};
	struct sim s = sim_start(sargs);
	const char *args[] = {"--db",	       p.db, "--teacher",     p.cfg, "--procs", "2",
			      "--concurrency", "32", "--until-empty", NULL};

	paths_new(&p, "counts");
	seed_db(p.db, 400, 2);
	write_config(p.cfg, s.port, NULL, NULL, NULL, ",\"max_attempts\":6");
	T_TRUE(work(p.err, args) != 1);
	check_invariants(p.db);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state IN ('done', 'dead')"), 800);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM attempts"), sim_requests(&s));
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM attempts WHERE error_code IS NULL"),
		 q(p.db, "SELECT COUNT(*) FROM traces"));
	sim_stop(&s);
}

/* SIGKILL mid-run, then a rerun completes with no duplicates; the requests
 * asked again are at most those in flight plus one batch per process. */
static void test_sigkill(void)
{
	struct paths p;
	const char *sargs[] = {"--ttft", "50ms", NULL};
	struct sim s = sim_start(sargs);
	const char *args[] = {"--db",	       p.db, "--teacher",     p.cfg, "--procs", "2",
			      "--concurrency", "8",  "--until-empty", NULL};
	pid_t pid;
	long requests;

	paths_new(&p, "sigkill");
	seed_db(p.db, 150, 1);
	write_config(p.cfg, s.port, NULL, NULL, "\"total\":\"5s\",\"stall\":\"2s\",\"lease\":\"1s\"", NULL);
	pid = work_start(p.err, args);
	msleep(400);
	kill(pid, SIGKILL);
	work_wait(pid);
	msleep(100);
	T_TRUE(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'") < 150);
	T_EQ_INT(work(p.err, args), 0);
	check_invariants(p.db);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 150);
	requests = sim_requests(&s);
	T_TRUE(requests >= 150);
	T_TRUE(requests <= 150 + 2 * (8 + 16));
	sim_stop(&s);
}

/* SIGTERM drains: exit 0, requests in flight recorded, leases returned. */
static void test_sigterm(void)
{
	struct paths p;
	const char *sargs[] = {"--ttft", "300ms", NULL};
	struct sim s = sim_start(sargs);
	const char *args[] = {"--db",	       p.db, "--teacher",     p.cfg, "--procs", "2",
			      "--concurrency", "8",  "--until-empty", NULL};
	pid_t pid;
	int64_t done;

	paths_new(&p, "sigterm");
	seed_db(p.db, 200, 1);
	write_config(p.cfg, s.port, NULL, NULL, NULL, NULL);
	pid = work_start(p.err, args);
	msleep(700);
	kill(pid, SIGTERM);
	T_EQ_INT(work_wait(pid), 0);
	check_invariants(p.db);
	done = q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'");
	T_TRUE(done > 0 && done < 200);
	/* Drained, not abandoned: every request the simulator answered was recorded. */
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM attempts"), sim_requests(&s));
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'"), 200 - done);
	sim_stop(&s);
}

/* The budget stop holds, counting requests in flight; the next run resumes. */
static void test_budget(void)
{
	struct paths p;
	struct sim s = sim_start(NULL);
	const char *args[] = {"--db",	       p.db, "--teacher",     p.cfg, "--procs", "2",
			      "--concurrency", "4",  "--until-empty", NULL};
	int64_t done1;

	paths_new(&p, "budget");
	seed_db(p.db, 100, 1);
	/* max_tokens 100 per request: 1000 tokens allow at most 10 requests at once. */
	write_config(p.cfg, s.port, NULL, ",\"max_tokens\":100", NULL,
		     ",\"budget\":{\"max_completion_tokens\":{\"per_run\":1000}}");
	T_EQ_INT(work(p.err, args), 3);
	check_invariants(p.db);
	T_TRUE(q(p.db, "SELECT SUM(completion_tokens) FROM attempts") <= 1000);
	done1 = q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'");
	T_TRUE(done1 > 0 && done1 < 100);
	T_EQ_INT(work(p.err, args), 3);
	T_TRUE(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'") > done1);
	/* A total budget counts earlier runs: already spent, nothing more is sent. */
	{
		int64_t n = q(p.db, "SELECT COUNT(*) FROM attempts");
		char budget[128];
		snprintf(budget, sizeof(budget), ",\"budget\":{\"max_completion_tokens\":{\"total\":%lld}}",
			 (long long)q(p.db, "SELECT SUM(completion_tokens) FROM attempts") + 50);
		write_config(p.cfg, s.port, NULL, ",\"max_tokens\":100", NULL, budget);
		T_EQ_INT(work(p.err, args), 3);
		T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM attempts"), n);
	}
	sim_stop(&s);
}

/* Four samples of one prompt are four different traces. */
static void test_samples(void)
{
	struct paths p;
	/* The simulator varies a trace's content with its seed through these draws. */
	const char *sargs[] = {"--wait", "0.5",	     "--wrong", "0.5", "--mixlang",
			       "0.3",	 "--no-box", "0.3",	NULL};
	struct sim s = sim_start(sargs);
	const char *args[] = {"--db", p.db, "--teacher", p.cfg, "--procs", "1", "--until-empty", NULL};

	paths_new(&p, "samples");
	seed_db(p.db, 1, 4);
	write_config(p.cfg, s.port, NULL, NULL, NULL, NULL);
	{
		/* --max-jobs stops after that many claims; the next run does the rest. */
		const char *two[] = {"--db", p.db,	   "--teacher", p.cfg, "--procs",
				     "2",    "--max-jobs", "3",		NULL};
		T_EQ_INT(work(p.err, two), 0);
		T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces"), 3);
		check_invariants(p.db);
	}
	T_EQ_INT(work(p.err, args), 0);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM traces"), 4);
	/* The simulator's synthetic traces vary little; their bodies all differ. */
	T_TRUE(q(p.db, "SELECT COUNT(DISTINCT placement || reasoning || answer) FROM traces") > 1);
	T_EQ_INT(q(p.db, "SELECT COUNT(DISTINCT raw_body) FROM traces"), 4);
	sim_stop(&s);
}

/* Leases shorter than the answers: renewal keeps them; each request is sent once. */
static void test_short_lease(void)
{
	struct paths p;
	const char *sargs[] = {"--ttft", "1500ms", NULL};
	struct sim s = sim_start(sargs);
	const char *args[] = {"--db",	       p.db, "--teacher",     p.cfg, "--procs", "2",
			      "--concurrency", "16", "--until-empty", NULL};

	paths_new(&p, "lease");
	seed_db(p.db, 24, 1);
	write_config(p.cfg, s.port, NULL, NULL, "\"total\":\"10s\",\"stall\":\"5s\",\"lease\":\"600ms\"",
		     NULL);
	T_EQ_INT(work(p.err, args), 0);
	check_invariants(p.db);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 24);
	T_EQ_INT(sim_requests(&s), 24);
	sim_stop(&s);
}

/* Does the file contain the bytes? */
static int file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT((size_t)1 << 30);
	char chunk[65536];
	size_t n;
	int found;
	if (!f)
		return 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	found = b.len && memmem(b.data, b.len, needle, strlen(needle)) != NULL;
	buf_release(&b);
	return found;
}

/* Decompress every raw body of a table and look for the key. */
static int raw_bodies_have(const char *dbpath, const char *table, const char *needle, int *scanned)
{
	struct db *db = NULL;
	struct db_stmt *st = NULL;
	struct derr e = {0};
	char sql[128];
	int found = 0;

	snprintf(sql, sizeof(sql), "SELECT raw_body FROM %s WHERE raw_body IS NOT NULL", table);
	T_OK(db_open(&db, dbpath, 0, &e), &e);
	T_OK(db_prepare(db, sql, &st, &e), &e);
	while (db_step(st, &e) == 1) {
		struct buf out = BUF_INIT(64 << 20);
		T_OK(zst_decompress(db_col_blob(st, 0), db_col_bytes(st, 0), 64 << 20, &out, &e), &e);
		(*scanned)++;
		if (out.len && memmem(out.data, out.len, needle, strlen(needle)))
			found = 1;
		buf_release(&out);
	}
	db_finalize(st);
	db_close(db);
	return found;
}

static void test_api_key(void)
{
	static const char key[] = "sk-test-Zq81SECRETkey";
	struct paths p;
	const char *sargs[] = {"--api-key-env", "DISTILL_TEST_SIM_KEY", "--http-500", "0.1", "--malformed",
			       "0.1",		"--retry-after",	"0",	      NULL};
	struct sim s;
	const char *args[] = {"--db", p.db, "--teacher", p.cfg, "--procs", "1", "--until-empty", NULL};
	int scanned = 0;
	char wal[600];

	setenv("DISTILL_TEST_SIM_KEY", key, 1);
	s = sim_start(sargs);
	paths_new(&p, "key");
	seed_db(p.db, 30, 1);
	write_config(p.cfg, s.port, ",\"api_key_env\":\"DISTILL_TEST_SIM_KEY\"", NULL, NULL,
		     ",\"max_attempts\":10");
	T_EQ_INT(work(p.err, args), 0);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 30);
	T_TRUE(q(p.db, "SELECT COUNT(*) FROM attempts WHERE error_code IS NOT NULL") > 0);
	T_TRUE(!file_has(p.db, key));
	snprintf(wal, sizeof(wal), "%s-wal", p.db);
	T_TRUE(!file_has(wal, key));
	T_TRUE(!file_has(p.err, key));
	T_TRUE(!raw_bodies_have(p.db, "attempts", key, &scanned));
	T_TRUE(!raw_bodies_have(p.db, "traces", key, &scanned));
	T_TRUE(scanned >= 60);
	T_TRUE(!q(p.db, "SELECT COUNT(*) FROM attempts WHERE instr(COALESCE(request_id, '') || "
			"COALESCE(error_code, ''), 'Zq81') > 0"));
	T_TRUE(!q(p.db, "SELECT COUNT(*) FROM jobs WHERE instr(COALESCE(last_error, ''), 'Zq81') > 0"));

	/* A wrong key: 401 pauses the endpoint, uses no attempts, exits 1 clearly. */
	paths_new(&p, "badkey");
	seed_db(p.db, 10, 1);
	setenv("DISTILL_TEST_SIM_KEY", "sk-wrong-Yy72", 1);
	write_config(p.cfg, s.port, ",\"api_key_env\":\"DISTILL_TEST_SIM_KEY\"", NULL, NULL, NULL);
	T_EQ_INT(work(p.err, args), 1);
	T_TRUE(file_has(p.err, "every endpoint is paused"));
	T_TRUE(file_has(p.err, "HTTP 401"));
	T_TRUE(!file_has(p.err, "Yy72"));
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND attempts = 0"), 10);
	T_TRUE(q(p.db,
		 "SELECT COUNT(*) FROM attempts WHERE error_class = 'endpoint' AND http_status = 401") >= 1);
	check_invariants(p.db);
	sim_stop(&s);
}

/* Several endpoints: spread by weight; a dead one is paused while the others
 * carry on; a rate limit holds. */
static void test_endpoints(void)
{
	struct paths p;
	struct sim s = sim_start(NULL), dead = sim_start(NULL);
	const char *args[] = {"--db",	       p.db, "--teacher",     p.cfg, "--procs", "1",
			      "--concurrency", "8",  "--until-empty", NULL};
	int dead_port = dead.port;
	FILE *f;

	sim_stop(&dead);
	paths_new(&p, "endpoints");
	seed_db(p.db, 80, 1);
	f = fopen(p.cfg, "w");
	fprintf(f,
		"{\"endpoints\":[{\"name\":\"a\",\"base_url\":\"http://127.0.0.1:%d/"
		"v1\",\"model\":\"distill-sim\","
		"\"weight\":3},{\"name\":\"b\",\"base_url\":\"http://127.0.0.1:%d/"
		"v1\",\"model\":\"distill-sim\"},"
		"{\"name\":\"down\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"model\":\"distill-sim\"}],"
		"\"timeouts\":{\"connect\":\"1s\"}}",
		s.port, s.port, dead_port);
	fclose(f);
	T_EQ_INT(work(p.err, args), 0);
	check_invariants(p.db);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done' AND attempts <= 1"), 80);
	T_EQ_INT(q(p.db,
		   "SELECT COUNT(*) FROM attempts WHERE endpoint = 'down' AND error_class != 'endpoint'"),
		 0);
	T_TRUE(q(p.db, "SELECT COUNT(*) FROM attempts WHERE endpoint = 'down'") >= 1);
	/* 3:1 between a and b, up to the requests the dead endpoint took first. */
	T_TRUE(q(p.db, "SELECT COUNT(*) FROM traces WHERE endpoint = 'a'") >= 55);
	T_TRUE(q(p.db, "SELECT COUNT(*) FROM traces WHERE endpoint = 'b'") >= 15);
	/* It rests after a failed connect instead of eating every job. */
	T_TRUE(q(p.db, "SELECT COUNT(*) FROM attempts WHERE endpoint = 'down'") <= 3);

	/* requests_per_minute 600: a burst of 10, then 10 per second; no second
	 * ever sees more than 10 + 10 request starts. */
	paths_new(&p, "rpm");
	seed_db(p.db, 40, 1);
	write_config(p.cfg, s.port, ",\"requests_per_minute\":600", NULL, NULL, NULL);
	T_EQ_INT(work(p.err, args), 0);
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 40);
	T_TRUE(q(p.db, "SELECT MAX((SELECT COUNT(*) FROM attempts b WHERE b.started_at >= a.started_at AND "
		       "b.started_at < a.started_at + 1000)) FROM attempts a") <= 21);
	sim_stop(&s);
}

/* Nothing listening: the run stops with exit 1 and says why. */
static void test_refused(void)
{
	struct paths p;
	const char *args[] = {"--db", p.db, "--teacher", p.cfg, "--procs", "2", "--until-empty", NULL};
	struct sim s = sim_start(NULL);
	int port = s.port;

	sim_stop(&s); /* the port is now closed */
	paths_new(&p, "refused");
	seed_db(p.db, 10, 1);
	write_config(p.cfg, port, NULL, NULL, NULL, NULL);
	T_EQ_INT(work(p.err, args), 1);
	T_TRUE(file_has(p.err, "every endpoint is paused"));
	T_TRUE(file_has(p.err, "cannot connect"));
	T_EQ_INT(q(p.db, "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND attempts = 0"), 10);
}

int main(void)
{
	struct stat sb;

	t_bin("distill-teacher-sim", simbin, sizeof(simbin));
	t_bin("distill", distill, sizeof(distill));
	if (stat(simbin, &sb) != 0)
		return t_skip("distill-teacher-sim is not built");
	signal(SIGPIPE, SIG_IGN);
	t_tmpdir(dir, sizeof(dir));
	test_placements();
	test_samples();
	test_dead();
	test_faults();
	test_counts();
	test_sigkill();
	test_sigterm();
	test_budget();
	test_short_lease();
	test_api_key();
	test_endpoints();
	test_refused();
	return t_done();
}
