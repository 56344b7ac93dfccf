/*
 * distill.c - the `distill` CLI: one table of subcommands drives dispatch
 * and the help listing (git's commands[] habit).
 */
#include "cli.h"
#include "cmd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISTILL_VERSION "0.1.0"

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"init", cmd_init, "create a database, or migrate an existing one forward"},
	{"export", cmd_export, "write accepted traces as zstd training shards with a manifest"},
	{"refresh", cmd_refresh, "the cron job: ingest, work, filter, dedup, export, publish"},
	{"gc", cmd_gc, "delete derived rows of old rule sets and pruned exports"},
	{"check-answer", cmd_check_answer, "judge answers against gold ones (JSON lines in and out)"},
	{"reextract", cmd_reextract, "re-extract clean references from the stored raw ones"},
	{"ingest", cmd_ingest, "read prompt files into the database and queue jobs"},
	{"status", cmd_status, "counts: prompts, jobs, traces, acceptance, dedup, exports, cost"},
	{"check", cmd_check, "integrity check and queue invariants"},
	{"backup", cmd_backup, "online copy of the database, safe while workers write"},
	{"work", cmd_work, "ask the teacher for every runnable job and record the traces"},
	{"requeue", cmd_requeue, "put dead or failed jobs back in the queue"},
	{"import-traces", cmd_import_traces, "record existing traces as done jobs"},
	{"dedup", cmd_dedup, "mark near-duplicate prompts and traces, and benchmark contamination"},
	{"report", cmd_report, "draw the dataset as a self-contained HTML page"},
	{"filter", cmd_filter, "judge traces with the quality rules (rules/*.rules)"},
	{"enqueue", cmd_enqueue, "raise the sample count of prompts with no accepted trace yet"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: distill <command> [options]\n\n"
		   "Make and refresh reasoning-trace sets for distillation: queue prompts, ask a\n"
		   "teacher, filter, dedup, export training shards.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nEvery command takes --help and --db PATH (default $DISTILL_DB or distill.db).\n"
		   "Exit codes: 0 ok, 1 error, 2 usage, 3 partial, 75 another refresh holds the lock.\n");
}

int main(int argc, char **argv)
{
	cli_prog = "distill";
	/* A closed pipe (distill status | head) is an EPIPE, not a signal death. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("distill %s\n", DISTILL_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (!strcmp(argv[1], commands[i].name)) {
			int verbose = getenv("DISTILL_VERBOSE") != NULL;
			cli_log_init(verbose);
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	return cli_usage_error(NULL, "'%s' is not a distill command", argv[1]);
}
