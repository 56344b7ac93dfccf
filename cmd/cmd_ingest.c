/* cmd_ingest.c - `distill ingest`: prompt files into the database and the queue (pipeline/ingest.h). */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "ingest.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char ingest_usage[] =
	"usage: distill ingest FILE... [--source NAME] [--samples K] [--profile NAME]\n"
	"                      [--prompt-field F] [--answer-field F] [--domain D] [--strict] [--db PATH]\n\n"
	"Read prompt files (JSON Lines, plain or .zst, or a JSON array) into the database\n"
	"and queue K jobs per prompt.  The same prompt (NFC, white space collapsed) is one\n"
	"row however often it is ingested; every occurrence is recorded with its source.\n"
	"Ingesting a file again adds nothing; a larger --samples adds the missing jobs.\n\n"
	"  --source NAME        source name (default: the file name without extensions)\n"
	"  --samples K          jobs per prompt (default 1; 0 queues nothing)\n"
	"  --profile NAME       generation profile the jobs are for (default 'default')\n"
	"  --prompt-field F     prompt field (default: prompt, problem or question)\n"
	"  --answer-field F     reference field (default: answer, final_answer,\n"
	"                       reference_answer, reference, else solution)\n"
	"  --domain D           math, code or general (default: automatic)\n"
	"  --strict             any bad line fails the whole ingest, nothing written\n"
	"  --db PATH            database file (default $DISTILL_DB or distill.db)\n\n"
	"Bad lines are reported as FILE:LINE: reason on stderr and skipped.\n"
	"Exit status: 0 every line ingested, 3 some lines rejected, 1 error, 2 usage.\n";

static void print_bad(void *ctx, const char *path, long line, const char *reason)
{
	(void)ctx;
	fprintf(stderr, "%s:%ld: %s\n", path, line, reason);
}

int cmd_ingest(int argc, char **argv)
{
	enum { OPT_SOURCE = 256, OPT_SAMPLES, OPT_PROFILE, OPT_PFIELD, OPT_AFIELD, OPT_DOMAIN, OPT_STRICT };
	static const struct option opts[] = {
		CLI_OPT_DB,
		CLI_OPT_HELP,
		{"source", required_argument, NULL, OPT_SOURCE},
		{"samples", required_argument, NULL, OPT_SAMPLES},
		{"profile", required_argument, NULL, OPT_PROFILE},
		{"prompt-field", required_argument, NULL, OPT_PFIELD},
		{"answer-field", required_argument, NULL, OPT_AFIELD},
		{"domain", required_argument, NULL, OPT_DOMAIN},
		{"strict", no_argument, NULL, OPT_STRICT},
		{0, 0, 0, 0},
	};
	struct ingest_options o = {.samples = 1, .on_bad = print_bad};
	const char *dbpath = NULL;
	struct ingest *in = NULL;
	struct derr e = {0};
	struct db *db;
	int64_t k;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(ingest_usage, stdout); return EXIT_OK;
		case OPT_SOURCE: o.source = optarg; break;
		case OPT_SAMPLES:
			if (parse_int64(optarg, 0, 100000, &k))
				return cli_usage_error("ingest",
						       "--samples takes a whole number 0..100000, not '%s'",
						       optarg);
			o.samples = (int)k;
			break;
		case OPT_PROFILE: o.profile = optarg; break;
		case OPT_PFIELD: o.prompt_field = optarg; break;
		case OPT_AFIELD: o.answer_field = optarg; break;
		case OPT_DOMAIN: o.domain = optarg; break;
		case OPT_STRICT: o.strict = 1; break;
		default: return cli_usage_error("ingest", "bad option");
		}
	}
	if (optind >= argc)
		return cli_usage_error("ingest", "no input file");
	if (o.source && !*o.source)
		return cli_usage_error("ingest", "--source needs a name");
	if (o.profile && !*o.profile)
		return cli_usage_error("ingest", "--profile needs a name");
	if (o.domain && strcmp(o.domain, "math") && strcmp(o.domain, "code") && strcmp(o.domain, "general"))
		return cli_usage_error("ingest", "--domain must be math, code or general, not '%s'",
				       o.domain);
	/* Every input must be readable before anything is written. */
	for (int i = optind; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			cli_error("%s: %s", argv[i], strerror(errno));
			return EXIT_ERROR;
		}
		fclose(f);
	}
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db)
		return EXIT_ERROR;
	rc = ingest_open(&in, db, &o, &e);
	for (int i = optind; !rc && i < argc; i++)
		rc = ingest_file(in, argv[i], &e);
	if (!rc)
		rc = ingest_finish(in, &e);
	if (rc) {
		cli_fail(&e);
		ingest_free(in);
		db_close(db);
		return EXIT_ERROR;
	}
	const struct ingest_report *r = ingest_get_report(in);
	printf("%lld record%s from %lld file%s: %lld new, %lld duplicate%s, %lld rejected; "
	       "%lld reference conflict%s; %lld job%s queued for profile '%s'\n",
	       (long long)r->records, r->records == 1 ? "" : "s", (long long)r->files,
	       r->files == 1 ? "" : "s", (long long)r->new_prompts, (long long)r->duplicates,
	       r->duplicates == 1 ? "" : "s", (long long)r->rejected, (long long)r->conflicts,
	       r->conflicts == 1 ? "" : "s", (long long)r->jobs_added, r->jobs_added == 1 ? "" : "s",
	       o.profile ? o.profile : "default");
	rc = r->rejected ? EXIT_PARTIAL : EXIT_OK;
	ingest_free(in);
	db_close(db);
	return rc;
}
