/* cmd_dedup.c - `distill dedup`: near-duplicate prompts and traces, and
 * decontamination of prompts against benchmark files (pipeline/dedup.h,
 * pipeline/decontam.h). */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "decontam.h"
#include "dedup.h"
#include "minhash.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const char dedup_usage[] =
	"usage: distill dedup [--db PATH] [--benchmark FILE]... [--ngram N] [--threshold T]\n"
	"                     [--prompts-only | --traces-only]\n\n"
	"Mark near-duplicate prompts, near-identical traces of the same prompt, and\n"
	"prompts that overlap benchmark problems.  Marks, never deletions: clusters go\n"
	"to dup_members (rank 0 = earliest id), benchmark overlaps to contamination;\n"
	"both show in sample_audit.  A rerun handles only what was added since.\n\n"
	"  --benchmark FILE   benchmark problems, JSONL or JSON (.zst allowed), problem\n"
	"                     field auto-detected (prompt, problem, question); repeatable\n"
	"  --ngram N          words per n-gram for decontamination (default 8)\n"
	"  --threshold T      Jaccard of 5-word shingles at or above which two texts\n"
	"                     are near duplicates (default 0.8)\n"
	"  --prompts-only     dedup prompts only (and decontaminate)\n"
	"  --traces-only      dedup traces only\n"
	"  --db PATH          database file (default $DISTILL_DB or distill.db)\n\n"
	"Exit: 0 ok, 1 error, 2 usage, 3 some benchmark records were unusable.\n";

static void progress(void *ctx, enum dedup_kind kind, int64_t done, int64_t total)
{
	if (cli_stderr_is_tty())
		fprintf(stderr, "\r%s: %lld of ~%lld read", dedup_kind_name(kind), (long long)done,
			(long long)total);
	else if (done % 100000 == 0)
		fprintf(stderr, "%s: %lld of ~%lld read\n", dedup_kind_name(kind), (long long)done,
			(long long)total);
}

static int run_kind(struct db *db, enum dedup_kind kind, const struct minhash_params *p)
{
	struct dedup_report r;
	struct derr e = {0};
	int rc = dedup_run(db, kind, p, progress, NULL, &r, &e);

	if (cli_stderr_is_tty())
		fputs("\r\033[K", stderr);
	if (rc)
		return cli_fail(&e);
	printf("%ss: %lld new, %lld indexed%s, %lld candidate pairs, %lld confirmed; "
	       "%lld near-duplicate%s in %lld cluster%s\n",
	       dedup_kind_name(kind), (long long)r.new_items, (long long)r.indexed,
	       r.rebuilt ? " (parameters changed: index rebuilt)" : "", (long long)r.candidates,
	       (long long)r.confirmed, (long long)r.duplicates, r.duplicates == 1 ? "" : "s",
	       (long long)r.clusters, r.clusters == 1 ? "" : "s");
	return EXIT_OK;
}

int cmd_dedup(int argc, char **argv)
{
	enum { OPT_BENCH = 1000, OPT_NGRAM, OPT_THRESHOLD, OPT_PROMPTS, OPT_TRACES };
	static const struct option opts[] = {
		CLI_OPT_DB,
		CLI_OPT_HELP,
		{"benchmark", required_argument, NULL, OPT_BENCH},
		{"ngram", required_argument, NULL, OPT_NGRAM},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"prompts-only", no_argument, NULL, OPT_PROMPTS},
		{"traces-only", no_argument, NULL, OPT_TRACES},
		{0, 0, 0, 0},
	};
	const char *dbpath = NULL, *bench[DECONTAM_MAX_BENCHMARKS];
	int nbench = 0, prompts_only = 0, traces_only = 0, c, status = EXIT_OK;
	int64_t ngram = DECONTAM_NGRAM_DEFAULT;
	double threshold = 0.8;
	struct minhash_params mp;
	struct decontam *dc = NULL;
	struct decontam_bench_report reports[DECONTAM_MAX_BENCHMARKS];
	struct derr e = {0};
	struct db *db = NULL;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(dedup_usage, stdout); return EXIT_OK;
		case OPT_BENCH:
			if (nbench == DECONTAM_MAX_BENCHMARKS)
				return cli_usage_error("dedup", "at most %d benchmarks",
						       DECONTAM_MAX_BENCHMARKS);
			bench[nbench++] = optarg;
			break;
		case OPT_NGRAM:
			if (parse_int64(optarg, 1, 64, &ngram))
				return cli_usage_error("dedup", "--ngram wants a whole number from 1 to 64");
			break;
		case OPT_THRESHOLD:
			if (parse_double(optarg, &threshold) || !(threshold > 0 && threshold <= 1))
				return cli_usage_error("dedup", "--threshold wants a number in (0, 1]");
			break;
		case OPT_PROMPTS: prompts_only = 1; break;
		case OPT_TRACES: traces_only = 1; break;
		default: return cli_usage_error("dedup", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("dedup", "unexpected argument '%s'", argv[optind]);
	if (prompts_only && traces_only)
		return cli_usage_error("dedup", "--prompts-only and --traces-only exclude each other");
	if (traces_only && nbench)
		return cli_usage_error("dedup", "--benchmark decontaminates prompts: not with --traces-only");
	minhash_params_default(&mp);
	minhash_params_set_threshold(&mp, threshold);

	/* Benchmarks first: a bad file fails before any work. */
	if (nbench) {
		dc = decontam_new((int)ngram);
		for (int i = 0; i < nbench; i++) {
			struct decontam_file_report fr;
			if (decontam_load_file(dc, bench[i], &fr, &e)) {
				decontam_free(dc);
				return cli_fail(&e);
			}
			if (fr.rejected) {
				cli_error(
					"%s: %ld of %ld records without a usable problem (first at line %ld)",
					bench[i], fr.rejected, fr.records, fr.first_bad_line);
				status = EXIT_PARTIAL;
			}
		}
	}
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db) {
		decontam_free(dc);
		return EXIT_ERROR;
	}
	if (!traces_only && (c = run_kind(db, DEDUP_PROMPT, &mp)) != EXIT_OK)
		goto out;
	if (!prompts_only && (c = run_kind(db, DEDUP_TRACE, &mp)) != EXIT_OK)
		goto out;
	if (dc) {
		if (decontam_run(db, dc, reports, &e)) {
			c = cli_fail(&e);
			goto out;
		}
		for (int i = 0; i < decontam_count(dc); i++)
			printf("benchmark %s: %ld problems, %lld prompts checked%s, %lld newly marked, "
			       "%lld contaminated\n",
			       reports[i].name, reports[i].items, (long long)reports[i].checked,
			       reports[i].rechecked ? " (file or n changed: all rechecked)" : "",
			       (long long)reports[i].marked, (long long)reports[i].contaminated);
	}
	c = status;
out:
	decontam_free(dc);
	db_close(db);
	return c;
}
