/*
 * cmd_work.c - `distill work`: fork worker processes that pull jobs from the
 * queue and ask the teacher (pipeline/worker.h).  The parent binds the
 * profiles, forks, forwards signals, prints progress from the counters the
 * workers share with it, and picks the exit code.
 */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "log.h"
#include "queue.h"
#include "tconfig.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char work_usage[] =
	"usage: distill work [--teacher CONFIG.json] [--procs N] [--concurrency C]\n"
	"                    [--max-time DURATION] [--until-empty] [--max-jobs N] [--db PATH]\n\n"
	"Ask the teacher for every runnable job of the queue and record each trace.\n"
	"N worker processes (default: the number of cores) each keep up to C requests\n"
	"in flight (default 64).  Without --teacher the embedded default config is used:\n"
	"one endpoint at $DISTILL_TEACHER_URL, else the simulator at " TCONFIG_SIM_URL ",\n"
	"and the profile \"default\".\n\n"
	"  --teacher FILE     teacher config (README: \"Teacher config and distill work\")\n"
	"  --procs N          worker processes\n"
	"  --concurrency C    requests in flight per process\n"
	"  --max-time D       stop after D (90s, 15m, 8h): drain and exit\n"
	"  --until-empty      stop when no runnable job is left (waits for backoffs that\n"
	"                     end within --max-time)\n"
	"  --max-jobs N       claim at most N jobs in all\n"
	"  --db PATH          database file (default $DISTILL_DB or distill.db)\n\n"
	"SIGINT/SIGTERM: stop claiming, wait for requests in flight (timeouts.grace),\n"
	"return the other leases, exit 0.  A second SIGINT aborts at once.\n"
	"Exit: 0 ok, 1 error (e.g. every endpoint paused), 2 usage or config error,\n"
	"3 partial (budget reached, or jobs dead in this run).\n";

static volatile int stop_flag;
static volatile sig_atomic_t nsignals;
static pid_t children[WORKER_MAX_PROCS];
static int nchildren;

static void child_signal(int sig)
{
	/* The first signal drains; a second SIGINT aborts (leases then expire). */
	if (stop_flag && sig == SIGINT)
		_exit(130);
	stop_flag = 1;
}

static void parent_signal(int sig)
{
	nsignals++;
	for (int i = 0; i < nchildren; i++)
		if (children[i] > 0)
			kill(children[i], sig);
}

static void on_signals(void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

struct progress {
	int tty;
	int64_t start_ms, last_ms, last_line_ms;
	int64_t total;
	int64_t last_done, last_tokens;
	double rate_req, rate_tok;
};

static void sum_stats(const struct worker_shared *sh, struct worker_stats *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < sh->nprocs; i++) {
		const struct worker_stats *p = &sh->procs[i];
		s->requests += __atomic_load_n(&p->requests, __ATOMIC_RELAXED);
		s->errors += __atomic_load_n(&p->errors, __ATOMIC_RELAXED);
		s->done += __atomic_load_n(&p->done, __ATOMIC_RELAXED);
		s->dead += __atomic_load_n(&p->dead, __ATOMIC_RELAXED);
		s->stale += __atomic_load_n(&p->stale, __ATOMIC_RELAXED);
		s->completion_tokens += __atomic_load_n(&p->completion_tokens, __ATOMIC_RELAXED);
		s->inflight += __atomic_load_n(&p->inflight, __ATOMIC_RELAXED);
	}
}

static void show_progress(struct progress *pg, const struct worker_shared *sh, int final)
{
	struct worker_stats s;
	int64_t now = now_ms();
	double secs = (double)(now - pg->start_ms) / 1000.0, dt = (double)(now - pg->last_ms) / 1000.0;
	char eta[32] = "-";

	sum_stats(sh, &s);
	if (dt >= 1.0 || final) {
		pg->rate_req = dt > 0 ? (double)(s.done - pg->last_done) / dt : 0;
		pg->rate_tok = dt > 0 ? (double)(s.completion_tokens - pg->last_tokens) / dt : 0;
		pg->last_done = s.done;
		pg->last_tokens = s.completion_tokens;
		pg->last_ms = now;
	}
	if (final) {
		pg->rate_req = secs > 0 ? (double)s.done / secs : 0;
		pg->rate_tok = secs > 0 ? (double)s.completion_tokens / secs : 0;
	}
	if (pg->total > 0 && pg->rate_req > 0) {
		int64_t left = pg->total - s.done - s.dead;
		duration_format((int64_t)((double)(left > 0 ? left : 0) / pg->rate_req) * 1000, eta,
				sizeof(eta));
	}
	if (pg->tty && !final) {
		fprintf(stderr,
			"\r\033[Kdone %lld/%lld  %.0f traces/s  %.0f tok/s  errors %lld  dead %lld  in "
			"flight %lld  "
			"ETA %s",
			(long long)s.done, (long long)pg->total, pg->rate_req, pg->rate_tok,
			(long long)s.errors, (long long)s.dead, (long long)s.inflight, eta);
		fflush(stderr);
		return;
	}
	if (pg->tty)
		fputs("\r\033[K", stderr);
	fprintf(stderr,
		"distill: work: %s%lld done, %lld dead, %lld requests (%lld errors, %lld late), %.0f "
		"traces/s, "
		"%.0f tok/s, %.1fs\n",
		final ? "finished: " : "", (long long)s.done, (long long)s.dead, (long long)s.requests,
		(long long)s.errors, (long long)s.stale, pg->rate_req, pg->rate_tok, secs);
	pg->last_line_ms = now;
}

/* The jobs this run could do: queued + failed + leased at the start. */
static int64_t runnable_total(const char *dbpath)
{
	struct db *db = NULL;
	int64_t c[QS_COUNT] = {0};
	struct derr e = {0};
	if (db_open(&db, dbpath, 0, &e))
		return 0;
	queue_counts(db, c, &e);
	db_close(db);
	return c[QS_QUEUED] + c[QS_FAILED] + c[QS_LEASED];
}

static int run_child(const char *dbpath, struct worker_opts *o)
{
	struct db *db = NULL;
	struct derr e = {0};
	enum worker_end end = WORKER_STOPPED;
	int rc;

	on_signals(child_signal);
	/* A worker whose parent dies is a crashed worker: its leases expire. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(EXIT_ERROR);
	if (db_open(&db, dbpath, 0, &e)) /* after fork: never share a connection */
		return cli_fail(&e);
	rc = worker_run(db, o, &end, &e);
	db_close(db);
	if (rc) {
		/* Every process reaches the same verdict on paused endpoints: say it once. */
		if (rc != DERR_PAUSED || o->proc == 0)
			cli_fail(&e);
		return EXIT_ERROR;
	}
	return end == WORKER_BUDGET ? EXIT_PARTIAL : EXIT_OK;
}

int cmd_work(int argc, char **argv)
{
	enum { OPT_TEACHER = 256, OPT_PROCS, OPT_CONC, OPT_MAXTIME, OPT_UNTIL, OPT_MAXJOBS };
	static const struct option opts[] = {{"teacher", required_argument, NULL, OPT_TEACHER},
					     {"procs", required_argument, NULL, OPT_PROCS},
					     {"concurrency", required_argument, NULL, OPT_CONC},
					     {"max-time", required_argument, NULL, OPT_MAXTIME},
					     {"until-empty", no_argument, NULL, OPT_UNTIL},
					     {"max-jobs", required_argument, NULL, OPT_MAXJOBS},
					     CLI_OPT_DB,
					     CLI_OPT_HELP,
					     {0, 0, 0, 0}};
	const char *dbpath = NULL, *teacher = NULL;
	int64_t procs = sysconf(_SC_NPROCESSORS_ONLN), conc = 64, max_time = 0, max_jobs = -1;
	int until_empty = 0, c, exit_code = EXIT_OK, any_error = 0, any_budget = 0;
	struct tconfig cfg;
	struct derr e = {0};
	struct db *db = NULL;
	int64_t *profile_ids = NULL;
	const char **keys = NULL;
	struct worker_shared *sh;
	struct worker_opts o;
	struct progress pg;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_TEACHER: teacher = optarg; break;
		case OPT_PROCS:
			if (parse_int64(optarg, 1, WORKER_MAX_PROCS, &procs))
				return cli_usage_error("work", "--procs wants 1..%d", WORKER_MAX_PROCS);
			break;
		case OPT_CONC:
			if (parse_int64(optarg, 1, 10000, &conc))
				return cli_usage_error("work", "--concurrency wants 1..10000");
			break;
		case OPT_MAXTIME:
			if (duration_parse(optarg, &max_time) || max_time <= 0)
				return cli_usage_error("work",
						       "--max-time wants a duration such as 90s or 15m");
			break;
		case OPT_UNTIL: until_empty = 1; break;
		case OPT_MAXJOBS:
			if (parse_int64(optarg, 0, INT64_MAX / 2, &max_jobs))
				return cli_usage_error("work", "--max-jobs wants a whole number");
			break;
		case 'D': dbpath = optarg; break;
		case 'h': fputs(work_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("work", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("work", "unexpected argument '%s'", argv[optind]);
	if (procs < 1)
		procs = 1;
	dbpath = cli_db_path(dbpath);

	if (teacher ? tconfig_load(teacher, &cfg, &e)
		    : tconfig_default(getenv("DISTILL_TEACHER_URL"), &cfg, &e)) {
		cli_fail(&e);
		return EXIT_USAGE;
	}
	keys = xcalloc((size_t)cfg.nendpoints, sizeof(*keys));
	for (int i = 0; i < cfg.nendpoints; i++) {
		const char *env = cfg.endpoints[i].api_key_env;
		if (!env)
			continue;
		keys[i] = getenv(env);
		if (!keys[i] || !*keys[i]) {
			cli_error("endpoint %s: the environment variable %s (api_key_env) is not set",
				  cfg.endpoints[i].name, env);
			exit_code = EXIT_USAGE;
			goto out;
		}
	}

	db = cli_open_db(dbpath, 0);
	if (!db) {
		exit_code = EXIT_ERROR;
		goto out;
	}
	profile_ids = xcalloc((size_t)cfg.nprofiles, sizeof(*profile_ids));
	if (tconfig_bind_profiles(db, &cfg, profile_ids, &e)) {
		exit_code = e.code == DERR_PROFILE ? EXIT_USAGE : EXIT_ERROR;
		cli_fail(&e);
		db_close(db);
		goto out;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		cli_error("mmap: %s", strerror(errno));
		db_close(db);
		exit_code = EXIT_ERROR;
		goto out;
	}
	worker_shared_init(sh, (int)procs, max_jobs);
	if (worker_spent(db, &sh->spent_tokens_before, &sh->spent_cost_before, &e) ||
	    worker_note_budget(db, &cfg, &e)) {
		cli_fail(&e);
		db_close(db);
		exit_code = EXIT_ERROR;
		goto unmap;
	}
	db_close(db); /* connections are opened after fork(), never inherited */

	worker_opts_init(&o);
	o.cfg = &cfg;
	o.profile_ids = profile_ids;
	o.api_keys = keys;
	o.concurrency = (int)conc;
	o.deadline_ms = max_time ? now_ms() + max_time : 0;
	o.until_empty = until_empty;
	o.stop = &stop_flag;
	o.shared = sh;

	memset(&pg, 0, sizeof(pg));
	pg.tty = cli_stderr_is_tty();
	pg.start_ms = pg.last_ms = pg.last_line_ms = now_ms();
	pg.total = runnable_total(dbpath);
	if (max_jobs >= 0 && pg.total > max_jobs)
		pg.total = max_jobs;

	fflush(NULL);
	on_signals(parent_signal);
	for (int i = 0; i < procs; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			cli_error("fork: %s", strerror(errno));
			stop_flag = 1;
			parent_signal(SIGTERM);
			any_error = 1;
			break;
		}
		if (pid == 0) {
			int code;
			o.proc = i;
			code = run_child(dbpath, &o);
			free(profile_ids);
			free(keys);
			tconfig_release(&cfg);
			exit(code); /* not _exit: leak checkers look at the workers too */
		}
		children[nchildren++] = pid;
	}

	/* Wait for the workers, showing progress. */
	for (int left = nchildren; left > 0;) {
		int status = 0;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid > 0) {
			int code = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_ERROR;
			for (int i = 0; i < nchildren; i++)
				if (children[i] == pid)
					children[i] = -1;
			left--;
			if (code == EXIT_PARTIAL)
				any_budget = 1;
			else if (code != EXIT_OK)
				any_error = code;
			continue;
		}
		if (pid < 0 && errno != EINTR)
			break;
		{
			struct timespec ts = {0, 100 * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (pg.tty ? now_ms() - pg.last_ms >= 1000 : now_ms() - pg.last_line_ms >= 10000)
			show_progress(&pg, sh, 0);
	}
	show_progress(&pg, sh, 1);
	{
		struct worker_stats s;
		sum_stats(sh, &s);
		if (any_error)
			exit_code = any_error == 130 ? 130 : EXIT_ERROR;
		else if (any_budget || sh->budget_hit) {
			fprintf(stderr, "distill: work: budget reached; the next run resumes where this one "
					"stopped\n");
			exit_code = EXIT_PARTIAL;
		} else if (s.dead > 0) {
			fprintf(stderr, "distill: work: %lld jobs dead in this run (see `distill requeue`)\n",
				(long long)s.dead);
			exit_code = EXIT_PARTIAL;
		}
	}
unmap:
	munmap(sh, sizeof(*sh));
out:
	free(profile_ids);
	free(keys);
	tconfig_release(&cfg);
	return exit_code;
}
