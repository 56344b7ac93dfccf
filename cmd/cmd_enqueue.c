/*
 * cmd_enqueue.c - `distill enqueue`: raise the number of samples per prompt,
 * by default only for prompts with no accepted trace yet (rejection
 * sampling for the hard prompts).
 */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "queue.h"
#include "util.h"
#include "verdict.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static const char enqueue_usage[] =
	"usage: distill enqueue --samples K [--only-unaccepted] [--profile NAME] [--db PATH]\n\n"
	"Make sure prompts have jobs for samples 0..K-1 of a generation profile; jobs\n"
	"that exist are kept.  With --only-unaccepted, only prompts with no accepted\n"
	"trace of that profile under the current rule set get more samples (run\n"
	"`distill filter` first); then `distill work` asks the teacher for them.\n\n"
	"  --samples K        samples per prompt (1 to 1000)\n"
	"  --only-unaccepted  only prompts with no accepted trace yet\n"
	"  --profile NAME     generation profile (default: default)\n"
	"  --db PATH          database file (default $DISTILL_DB or distill.db)\n";

/* Prompts per write transaction. */
#define ENQUEUE_BATCH 1000

int cmd_enqueue(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB,
					     CLI_OPT_HELP,
					     {"samples", required_argument, NULL, 'k'},
					     {"only-unaccepted", no_argument, NULL, 'u'},
					     {"profile", required_argument, NULL, 'P'},
					     {0, 0, 0, 0}};
	const char *dbpath = NULL, *profile = "default";
	int64_t k = 0, *ids = NULL, n = 0, profile_id = 0, unjudged = 0, added = 0;
	int c, only = 0, rc = EXIT_OK;
	struct derr e = {0};
	struct db *db;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'k':
			if (parse_int64(optarg, 1, 1000, &k))
				return cli_usage_error("enqueue", "--samples wants 1 to 1000, not '%s'",
						       optarg);
			break;
		case 'u': only = 1; break;
		case 'P': profile = optarg; break;
		case 'h': fputs(enqueue_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("enqueue", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("enqueue", "unexpected argument '%s'", argv[optind]);
	if (k == 0)
		return cli_usage_error("enqueue", "--samples K is required");
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db)
		return EXIT_ERROR;
	if (verdict_prompts_to_sample(db, profile, only, &ids, &n, &profile_id, &unjudged, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (only && unjudged > 0) {
		cli_error("%" PRId64 " traces of profile '%s' have no verdicts under the current rule set; "
			  "run distill filter first",
			  unjudged, profile);
		rc = EXIT_ERROR;
		goto out;
	}
	for (int64_t i = 0; i < n; i += ENQUEUE_BATCH) {
		int64_t end = i + ENQUEUE_BATCH < n ? i + ENQUEUE_BATCH : n;
		if (db_begin_immediate(db, &e)) {
			rc = cli_fail(&e);
			goto out;
		}
		for (int64_t j = i; j < end; j++) {
			int64_t a = 0;
			if (queue_enqueue(db, ids[j], profile_id, (int)k, &a, &e)) {
				db_rollback(db);
				rc = cli_fail(&e);
				goto out;
			}
			added += a;
		}
		if (db_commit(db, &e)) {
			db_rollback(db);
			rc = cli_fail(&e);
			goto out;
		}
	}
	printf("%" PRId64 " prompt%s%s: %" PRId64 " new job%s (samples 0..%" PRId64 ", profile %s)\n", n,
	       n == 1 ? "" : "s", only ? " without an accepted trace" : "", added, added == 1 ? "" : "s",
	       k - 1, profile);
out:
	free(ids);
	db_close(db);
	return rc;
}
