/* cmd_backup.c - `distill backup DEST`: an online copy of the database (db_backup). */
#include "cli.h"
#include "cmd.h"
#include "db.h"

#include <stdio.h>

static const char backup_usage[] =
	"usage: distill backup DEST [--db PATH]\n\n"
	"Copy the database to DEST with SQLite's online backup: a consistent snapshot,\n"
	"safe while workers write.  DEST must not exist; it is written aside and renamed,\n"
	"so it never appears half-written.\n\n"
	"  --db PATH      database file (default $DISTILL_DB or distill.db)\n";

int cmd_backup(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB, CLI_OPT_HELP, {0, 0, 0, 0}};
	const char *dbpath = NULL, *dest;
	struct derr e = {0};
	struct db *db;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(backup_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("backup", "bad option");
		}
	}
	if (cli_one_operand("backup", argc, argv, "no destination file", &dest))
		return EXIT_USAGE;
	dbpath = cli_db_path(dbpath);
	db = cli_open_db(dbpath, 0);
	if (!db)
		return EXIT_ERROR;
	rc = db_backup(db, dest, &e);
	db_close(db);
	if (rc)
		return cli_fail(&e);
	printf("%s: backed up to %s\n", dbpath, dest);
	return EXIT_OK;
}
