/* cmd_report.c - `distill report`: the dataset as one self-contained HTML page. */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "report.h"

#include <stdio.h>

static const char report_usage[] =
	"usage: distill report [--out FILE] [--train-log FILE] [--title TEXT] [--db PATH]\n\n"
	"Write the dataset as one self-contained HTML page (inline SVG and CSS, no\n"
	"script, no network): the funnel per source, reasoning-length histograms,\n"
	"acceptance per source and per teacher endpoint, teacher latency, errors and\n"
	"cost, the top rejection reasons with the SQL that lists them, every export\n"
	"version with its shards, and the trainer's loss curve.\n\n"
	"  --out FILE        output file (default report.html)\n"
	"  --train-log FILE  a distill-train log: adds the loss curve\n"
	"  --title TEXT      page title\n"
	"  --db PATH         database (default $DISTILL_DB or distill.db)\n";

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB,
					     CLI_OPT_HELP,
					     {"out", required_argument, NULL, 'o'},
					     {"train-log", required_argument, NULL, 'l'},
					     {"title", required_argument, NULL, 't'},
					     {0, 0, 0, 0}};
	struct report_options o = {"report.html", NULL, NULL};
	struct report_summary sum = {0};
	const char *dbpath = NULL;
	struct derr e = {0};
	struct db *db;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'o': o.out_path = optarg; break;
		case 'l': o.train_log = optarg; break;
		case 't': o.title = optarg; break;
		case 'h': fputs(report_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("report", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("report", "unexpected argument '%s'", argv[optind]);
	db = cli_open_db(cli_db_path(dbpath), DB_OPEN_READONLY);
	if (!db)
		return EXIT_ERROR;
	rc = report_write(db, &o, &sum, &e);
	db_close(db);
	if (rc)
		return cli_fail(&e);
	printf("%s: %lld prompts, %lld traces, %lld accepted, %lld exported\n", o.out_path, sum.prompts,
	       sum.traces, sum.accepted, sum.exported);
	return EXIT_OK;
}
