/* cmd_check.c - `distill check`: integrity check plus the queue invariants (pipeline/check.h). */
#include "check.h"
#include "cli.h"
#include "cmd.h"
#include "db.h"

#include <stdio.h>

static const char check_usage[] =
	"usage: distill check [--db PATH]\n\n"
	"Run SQLite's integrity check and the pipeline's invariants: traces = done jobs\n"
	"(no done job without its trace, no trace of a job that is not done), no lease on\n"
	"a job that is not leased, every job's prompt and profile present.  Prints 'ok',\n"
	"or each violation with its count and example ids, and exits 1.\n\n"
	"  --db PATH      database file (default $DISTILL_DB or distill.db)\n";

static void print_violation(void *ctx, const char *invariant, long long count, const char *examples)
{
	(void)ctx;
	printf("violation: %s: %lld (%s)\n", invariant, count, examples);
}

static void report(void *ctx, const char *invariant, int64_t count, const char *examples)
{
	print_violation(ctx, invariant, (long long)count, examples);
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB, CLI_OPT_HELP, {0, 0, 0, 0}};
	const char *dbpath = NULL;
	struct derr e = {0};
	struct db *db;
	int c, rc, bad = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(check_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("check", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
	dbpath = cli_db_path(dbpath);
	db = cli_open_db(dbpath, DB_OPEN_READONLY);
	if (!db)
		return EXIT_ERROR;
	rc = check_run(db, report, NULL, &bad, &e);
	db_close(db);
	if (rc)
		return cli_fail(&e);
	if (bad) {
		cli_error("%s: %d invariant%s violated", dbpath, bad, bad == 1 ? "" : "s");
		return EXIT_ERROR;
	}
	printf("ok\n");
	return EXIT_OK;
}
