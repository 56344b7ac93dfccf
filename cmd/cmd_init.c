/* cmd_init.c - `distill init`: create the database or migrate it forward. */
#include "cli.h"
#include "cmd.h"
#include "db.h"

#include <stdio.h>

static const char init_usage[] =
	"usage: distill init [--db PATH]\n\n"
	"Create the database (WAL mode) or apply the migrations it lacks.  Running it\n"
	"twice changes nothing.\n\n"
	"  --db PATH      database file (default $DISTILL_DB or distill.db)\n"
	"";

int cmd_init(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB, CLI_OPT_HELP, {0, 0, 0, 0}};
	const char *dbpath = NULL;
	struct derr e = {0};
	struct db *db = NULL;
	int c, from = 0, to = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(init_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("init", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
	dbpath = cli_db_path(dbpath);
	if (db_open(&db, dbpath, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e))
		return cli_fail(&e);
	if (db_migrate(db, &from, &to, &e)) {
		db_close(db);
		return cli_fail(&e);
	}
	db_close(db);
	if (from == to)
		printf("%s: schema version %d, up to date\n", dbpath, to);
	else if (from == 0)
		printf("%s: created, schema version %d\n", dbpath, to);
	else
		printf("%s: migrated from schema version %d to %d\n", dbpath, from, to);
	return EXIT_OK;
}
