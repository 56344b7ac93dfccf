/* cmd_import_traces.c - `distill import-traces FILE --profile NAME` (pipeline/import.h). */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "import.h"

#include <stdio.h>

static const char import_usage[] =
	"usage: distill import-traces FILE --profile NAME [--db PATH]\n\n"
	"Record traces you already have as done jobs of profile NAME, so they join the\n"
	"same filters, dedup and export.  FILE is JSON Lines (plain or .zst) or a JSON\n"
	"array of objects with \"prompt\" and \"response\" (the model's raw text: the\n"
	"reasoning is found as in a teacher's answer: <think>...</think>, or a lone\n"
	"</think>), and optionally \"reference_answer\", \"id\" and \"model\".  Prompts\n"
	"are added as `distill ingest` adds them.  Importing a file twice adds nothing.\n\n"
	"  --profile NAME  the generation profile the traces belong to (required)\n"
	"  --db PATH       database file (default $DISTILL_DB or distill.db)\n\n"
	"Exit: 0 ok, 1 error, 2 usage, 3 some records were rejected (reported by line).\n";

static void report_bad(void *ctx, long line, const char *reason)
{
	const char *path = ctx;
	fprintf(stderr, "%s:%ld: %s\n", path, line, reason);
}

int cmd_import_traces(int argc, char **argv)
{
	enum { OPT_PROFILE = 256 };
	static const struct option opts[] = {
		{"profile", required_argument, NULL, OPT_PROFILE}, CLI_OPT_DB, CLI_OPT_HELP, {0, 0, 0, 0}};
	const char *dbpath = NULL, *profile = NULL, *file;
	struct import_report rep;
	struct derr e = {0};
	struct db *db;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_PROFILE: profile = optarg; break;
		case 'D': dbpath = optarg; break;
		case 'h': fputs(import_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("import-traces", "bad option");
		}
	}
	if (cli_one_operand("import-traces", argc, argv, "FILE is required", &file))
		return EXIT_USAGE;
	if (!profile || !*profile)
		return cli_usage_error("import-traces", "--profile NAME is required");
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db)
		return EXIT_ERROR;
	rc = import_traces(db, file, profile, report_bad, (void *)file, &rep, &e);
	db_close(db);
	printf("%s: %lld records, %lld imported, %lld already there, %lld rejected, %lld new prompts\n", file,
	       (long long)rep.records, (long long)rep.imported, (long long)rep.already,
	       (long long)rep.rejected, (long long)rep.new_prompts);
	if (rc)
		return cli_fail(&e);
	return rep.rejected ? EXIT_PARTIAL : EXIT_OK;
}
