/* cmd_gc.c - `distill gc`: delete derived rows only. */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "gc.h"

#include <stdio.h>

static const char gc_usage[] =
	"usage: distill gc [--dry-run] [--db PATH]\n\n"
	"Delete derived rows only: verdicts and outcomes of rule sets that are no longer\n"
	"current, and the items of pruned exports.  Prompts, jobs, attempts, traces, rule\n"
	"sets and export records are never touched.\n\n"
	"  --dry-run      count what would go, delete nothing\n"
	"  --db PATH      database file (default $DISTILL_DB or distill.db)\n";

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_OPT_DB, CLI_OPT_HELP, {"dry-run", no_argument, NULL, 'n'}, {0, 0, 0, 0}};
	const char *dbpath = NULL;
	struct gc_counts n;
	struct derr e = {0};
	struct db *db;
	int c, dry = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(gc_usage, stdout); return EXIT_OK;
		case 'n': dry = 1; break;
		default: return cli_usage_error("gc", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("gc", "unexpected argument '%s'", argv[optind]);
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db)
		return EXIT_ERROR;
	rc = gc_run(db, dry, &n, &e);
	db_close(db);
	if (rc)
		return cli_fail(&e);
	printf("%s %lld verdicts and %lld outcomes of old rule sets, %lld items of pruned exports\n",
	       dry ? "would delete" : "deleted", (long long)n.verdicts, (long long)n.outcomes,
	       (long long)n.export_items);
	return EXIT_OK;
}
