/* cmd_requeue.c - `distill requeue`: put dead or failed jobs back in the queue (queue_requeue). */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "queue.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char requeue_usage[] =
	"usage: distill requeue [--state dead|failed] [--error CODE] [--since T] [--db PATH]\n\n"
	"Put jobs back in the queue with their attempts reset, e.g. after fixing an\n"
	"endpoint.  Without --state both dead and failed jobs are requeued.\n\n"
	"  --state S      dead or failed\n"
	"  --error CODE   only jobs whose last error code is CODE (http_429, timeout,\n"
	"                 malformed, http_400, ...: see attempts.error_code)\n"
	"  --since T      only jobs updated since T: a duration ago (2h, 3d) or a UTC\n"
	"                 time 2026-01-31 or 2026-01-31T08:00:00\n"
	"  --db PATH      database file (default $DISTILL_DB or distill.db)\n";

/* A duration ago, or a UTC date/time; milliseconds since the epoch. */
static int parse_since(const char *s, int64_t *out)
{
	static const char *const formats[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M",
					      "%Y-%m-%d"};
	int64_t ms;

	if (!duration_parse(s, &ms)) {
		*out = now_ms() - ms;
		return 0;
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct tm tm;
		const char *end;
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, formats[i], &tm);
		if (end && (*end == '\0' || !strcmp(end, "Z"))) {
			*out = (int64_t)timegm(&tm) * 1000;
			return 0;
		}
	}
	return -1;
}

int cmd_requeue(int argc, char **argv)
{
	enum { OPT_STATE = 256, OPT_ERROR, OPT_SINCE };
	static const struct option opts[] = {{"state", required_argument, NULL, OPT_STATE},
					     {"error", required_argument, NULL, OPT_ERROR},
					     {"since", required_argument, NULL, OPT_SINCE},
					     CLI_OPT_DB,
					     CLI_OPT_HELP,
					     {0, 0, 0, 0}};
	const char *dbpath = NULL, *state = NULL, *code = NULL;
	int64_t since = 0, n = 0;
	struct derr e = {0};
	struct db *db;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_STATE:
			if (strcmp(optarg, "dead") != 0 && strcmp(optarg, "failed") != 0)
				return cli_usage_error("requeue", "--state wants dead or failed");
			state = optarg;
			break;
		case OPT_ERROR: code = optarg; break;
		case OPT_SINCE:
			if (parse_since(optarg, &since))
				return cli_usage_error(
					"requeue", "--since wants a duration (2h) or a date (2026-01-31)");
			break;
		case 'D': dbpath = optarg; break;
		case 'h': fputs(requeue_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("requeue", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("requeue", "unexpected argument '%s'", argv[optind]);
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db)
		return EXIT_ERROR;
	rc = queue_requeue(db, state, code, since, &n, &e);
	db_close(db);
	if (rc)
		return cli_fail(&e);
	printf("requeued %lld jobs\n", (long long)n);
	return EXIT_OK;
}
