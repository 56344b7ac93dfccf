/*
 * cmd_filter.c - `distill filter`: judge stored traces with a rule set, in
 * parallel (forked workers over trace-id ranges, each with its own
 * connection), or explain one trace's verdicts.
 */
#include "answer.h"
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "filter.h"
#include "rules.h"
#include "util.h"
#include "verdict.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char filter_usage[] =
	"usage: distill filter [--rules FILE|DIR] [--all] [--procs N] [--batch N] [--db PATH]\n"
	"       distill filter --explain TRACE_ID [--rules FILE|DIR] [--db PATH]\n\n"
	"Judge every trace that has no verdicts under the current rule set (its hash\n"
	"covers the rule text and the engine and checker versions), writing one verdict\n"
	"per rule and the overall outcome.  A rerun with unchanged rules does nothing;\n"
	"changed rules re-judge the stored traces without asking the teacher again.\n\n"
	"  --rules FILE|DIR  rule file, or every *.rules file of a directory\n"
	"                    (default rules/r1.rules)\n"
	"  --all             judge every trace again under the current rule set\n"
	"  --procs N         worker processes (default: the number of CPUs)\n"
	"  --batch N         traces per write transaction (default 1024)\n"
	"  --explain ID      print each rule's verdict and detail for one trace;\n"
	"                    nothing is written\n"
	"  --db PATH         database file (default $DISTILL_DB or distill.db)\n\n"
	"Rule kinds:\n";

static void print_usage(void)
{
	const char *summary;
	fputs(filter_usage, stdout);
	for (int i = 0; filter_kind_name(i, &summary); i++)
		printf("  %-17s %s\n", filter_kind_name(i, NULL), summary);
}

/* The default rule file: ./rules/r1.rules, else the source tree's next to a
 * build directory (the binary's ../rules/r1.rules). */
static const char *default_rules(char *out, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;
	if (access("rules/r1.rules", R_OK) == 0)
		return "rules/r1.rules";
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		char *slash;
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/../rules/r1.rules", exe);
			if (access(out, R_OK) == 0)
				return out;
		}
	}
	return "rules/r1.rules";
}

static int explain(struct db *db, struct filter *f, int64_t id, const char *rules_path, const char *hash)
{
	struct verdict_trace t;
	struct derr e = {0};
	struct filter_verdict *v;
	int n = filter_rule_count(f), accepted, flagged;

	if (verdict_trace_load(db, id, &t, &e))
		return cli_fail(&e);
	v = xcalloc((size_t)(n ? n : 1), sizeof(*v));
	filter_judge(f, &t.doc, v);
	filter_outcome(f, v, &accepted, &flagged);
	printf("trace %" PRId64 " under rule set %.12s (%s)\n", id, hash, rules_path);
	for (int i = 0; i < n; i++)
		printf("  %-24s %-5s %-6s %s\n", filter_rule_name(f, i), filter_state_name(v[i].state),
		       filter_rule_rejects(f, i) ? "reject" : "flag", v[i].detail);
	printf("outcome: %s%s", accepted ? "accepted" : "rejected", flagged ? ", flagged" : "");
	if (!accepted) {
		const char *sep = " (";
		for (int i = 0; i < n; i++) {
			if (filter_rule_rejects(f, i) &&
			    (v[i].state == FILTER_FAIL || v[i].state == FILTER_LIMIT)) {
				printf("%s%s", sep, filter_rule_name(f, i));
				sep = ", ";
			}
		}
		printf(")");
	}
	printf("\n");
	free(v);
	verdict_trace_release(&t);
	return EXIT_OK;
}

/* One worker: its own connection, one id range, stats back through a pipe. */
static int worker(const char *dbpath, struct filter *f, int64_t ruleset_id, int all, int64_t lo, int64_t hi,
		  int batch, int fd)
{
	struct derr e = {0};
	struct verdict_stats st = {0};
	struct db *db = NULL;
	int rc = db_open(&db, dbpath, 0, &e);
	if (!rc)
		rc = verdict_judge_range(db, f, ruleset_id, all, lo, hi, batch, &st, &e);
	db_close(db);
	if (rc)
		cli_fail(&e);
	if (write(fd, &st, sizeof(st)) != (ssize_t)sizeof(st))
		rc = DERR_IO;
	close(fd);
	return rc ? EXIT_ERROR : EXIT_OK;
}

static int run(const char *dbpath, struct filter *f, int64_t ruleset_id, int all, int procs, int batch,
	       const char *hash)
{
	struct derr e = {0};
	struct db *db = cli_open_db(dbpath, 0);
	int64_t *bounds, count = 0, t0 = mono_ns();
	struct verdict_stats sum = {0};
	pid_t *pids;
	int *fds, nparts = 0, failed = 0;

	if (!db)
		return EXIT_ERROR;
	bounds = xcalloc((size_t)procs + 1, sizeof(*bounds));
	if (verdict_plan(db, ruleset_id, all, procs, bounds, &nparts, &count, &e)) {
		db_close(db);
		free(bounds);
		return cli_fail(&e);
	}
	/* Connections are opened after fork, never inherited. */
	db_close(db);
	if (nparts == 0) {
		printf("nothing to judge: no trace lacks verdicts under rule set %.12s\n", hash);
		free(bounds);
		return EXIT_OK;
	}
	pids = xcalloc((size_t)nparts, sizeof(*pids));
	fds = xcalloc((size_t)nparts, sizeof(*fds));
	fflush(NULL);
	for (int i = 0; i < nparts; i++) {
		int pfd[2];
		if (pipe(pfd)) {
			cli_error("pipe: %s", strerror(errno));
			failed++;
			fds[i] = -1;
			continue;
		}
		pids[i] = fork();
		if (pids[i] == 0) {
			close(pfd[0]);
			_exit(worker(dbpath, f, ruleset_id, all, bounds[i], bounds[i + 1], batch, pfd[1]));
		}
		close(pfd[1]);
		fds[i] = pfd[0];
		if (pids[i] < 0) {
			cli_error("fork: %s", strerror(errno));
			failed++;
			close(pfd[0]);
			fds[i] = -1;
		}
	}
	for (int i = 0; i < nparts; i++) {
		struct verdict_stats st;
		int status = 0;
		if (fds[i] < 0)
			continue;
		if (read(fds[i], &st, sizeof(st)) == (ssize_t)sizeof(st)) {
			sum.judged += st.judged;
			sum.accepted += st.accepted;
			sum.flagged += st.flagged;
			sum.bytes += st.bytes;
		}
		close(fds[i]);
		if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed++;
	}
	double secs = (double)(mono_ns() - t0) / 1e9;
	printf("judged %" PRId64 " traces under rule set %.12s: %" PRId64 " accepted, %" PRId64
	       " rejected, %" PRId64 " flagged\n",
	       sum.judged, hash, sum.accepted, sum.judged - sum.accepted, sum.flagged);
	fprintf(stderr, "distill: filter: %.1f MB in %.2f s with %d worker%s\n", (double)sum.bytes / 1e6,
		secs, nparts, nparts == 1 ? "" : "s");
	free(bounds);
	free(pids);
	free(fds);
	if (failed) {
		cli_error("%d of %d filter workers failed; rerun to finish (done batches are kept)", failed,
			  nparts);
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

int cmd_filter(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB,
					     CLI_OPT_HELP,
					     {"rules", required_argument, NULL, 'r'},
					     {"all", no_argument, NULL, 'a'},
					     {"procs", required_argument, NULL, 'p'},
					     {"batch", required_argument, NULL, 'b'},
					     {"explain", required_argument, NULL, 'x'},
					     {0, 0, 0, 0}};
	const char *dbpath = NULL, *rules_path = NULL;
	char defpath[PATH_MAX + 32], hash[65];
	int c, all = 0, rc;
	int64_t procs = 0, batch = 1024, explain_id = -1, ruleset_id = 0;
	struct rules rs;
	struct filter *f = NULL;
	struct derr e = {0};
	struct buf canon = BUF_INIT((size_t)64 << 20);

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'r': rules_path = optarg; break;
		case 'a': all = 1; break;
		case 'p':
			if (parse_int64(optarg, 1, 1024, &procs))
				return cli_usage_error("filter", "--procs wants 1 to 1024, not '%s'", optarg);
			break;
		case 'b':
			if (parse_int64(optarg, 1, 100000, &batch))
				return cli_usage_error("filter", "--batch wants 1 to 100000, not '%s'",
						       optarg);
			break;
		case 'x':
			if (parse_int64(optarg, 1, INT64_MAX, &explain_id))
				return cli_usage_error("filter", "--explain wants a trace id, not '%s'",
						       optarg);
			break;
		case 'h': print_usage(); return EXIT_OK;
		default: return cli_usage_error("filter", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("filter", "unexpected argument '%s'", argv[optind]);
	if (explain_id > 0 && all)
		return cli_usage_error("filter", "--explain and --all do not go together");
	dbpath = cli_db_path(dbpath);
	if (!rules_path)
		rules_path = default_rules(defpath, sizeof(defpath));
	if (procs == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		procs = ncpu > 0 ? ncpu : 1;
	}

	rules_init(&rs);
	if (rules_load(&rs, rules_path, &e) || filter_new(&f, &rs, &e)) {
		rules_release(&rs);
		cli_error("%s", e.msg);
		return e.code == DERR_PARSE ? EXIT_USAGE : EXIT_ERROR;
	}
	if ((rc = filter_ruleset_hash(&rs, answer_checker_version(), hash, &canon))) {
		derr_set(&e, rc, "rule text too large");
		rc = cli_fail(&e);
		goto out;
	}
	if (explain_id > 0) {
		struct db *db = cli_open_db(dbpath, DB_OPEN_READONLY);
		rc = db ? explain(db, f, explain_id, rules_path, hash) : EXIT_ERROR;
		db_close(db);
		goto out;
	}
	{
		struct db *db = cli_open_db(dbpath, 0);
		int created = 0;
		if (!db) {
			rc = EXIT_ERROR;
			goto out;
		}
		rc = verdict_ruleset_use(db, hash, buf_str(&canon), answer_checker_version(), &ruleset_id,
					 &created, &e);
		db_close(db);
		if (rc) {
			rc = cli_fail(&e);
			goto out;
		}
		if (created)
			fprintf(stderr, "distill: filter: new rule set %.12s from %s (%d rules)\n", hash,
				rules_path, rs.n);
	}
	rc = run(dbpath, f, ruleset_id, all, (int)procs, (int)batch, hash);
out:
	filter_free(f);
	rules_release(&rs);
	buf_release(&canon);
	return rc;
}
