/* cmd_export.c - `distill export OUTDIR` and `distill export --verify OUTDIR`. */
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "export.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char export_usage[] =
	"usage: distill export OUTDIR [options]\n"
	"       distill export --verify OUTDIR\n\n"
	"Write the accepted, non-duplicate, uncontaminated traces as zstd JSONL shards\n"
	"(train-00000-of-0000N.jsonl.zst, val-...) and manifest.json to OUTDIR, atomically.\n"
	"Two exports of the same database with the same options are byte-identical.\n\n"
	"  --ruleset HASH|current   rule set whose verdicts decide (default current)\n"
	"  --max-per-prompt M       keep the first M accepted samples of each prompt\n"
	"  --val-fraction F         share of prompts in the val split (by prompt hash)\n"
	"  --shard-bytes N          target JSONL bytes per shard before compression\n"
	"                           (suffixes K, M, G; default 256M)\n"
	"  --level L                zstd level (default 3)\n"
	"  --seed S                 shuffle seed (default 0)\n"
	"  --include LIST           widen: duplicates,contaminated,flagged\n"
	"  --domain D, --source S, --profile P   select\n"
	"  --max-tokens N           only traces with at most N completion tokens\n"
	"  --mix FILE               quotas: {\"domain\": {\"math\": N, \"*\": N}, \"source\": {...}}\n"
	"  --threads N              shards built in parallel (default: the cores)\n"
	"  --force                  replace an existing OUTDIR\n"
	"  --verify                 check OUTDIR's shards against its manifest\n"
	"  --db PATH                database file (default $DISTILL_DB or distill.db)\n";

/* "256M" -> bytes. */
static int parse_size(const char *s, int64_t *out)
{
	static const struct {
		char c;
		int shift;
	} units[] = {{'K', 10}, {'k', 10}, {'M', 20}, {'m', 20}, {'G', 30}, {'g', 30}};
	char num[32];
	size_t n = strlen(s);
	int shift = 0;

	if (n == 0 || n >= sizeof(num))
		return DERR_INVALID;
	memcpy(num, s, n + 1);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (num[n - 1] == units[i].c) {
			shift = units[i].shift;
			num[n - 1] = '\0';
		}
	if (parse_int64(num, 1, INT64_MAX >> 30, out))
		return DERR_INVALID;
	*out <<= shift;
	return 0;
}

static int read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	char tmp[8192];
	size_t n;
	int rc = 0;

	if (!f)
		return -1;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_append(b, tmp, n))
			rc = -1;
	if (ferror(f))
		rc = -1;
	fclose(f);
	return rc;
}

enum {
	OPT_RULESET = 256,
	OPT_MAXPP,
	OPT_VAL,
	OPT_SHARD,
	OPT_LEVEL,
	OPT_SEED,
	OPT_INCLUDE,
	OPT_DOMAIN,
	OPT_SOURCE,
	OPT_PROFILE,
	OPT_MAXTOK,
	OPT_MIX,
	OPT_FORCE,
	OPT_VERIFY,
	OPT_THREADS,
};

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_OPT_DB,
		CLI_OPT_HELP,
		{"ruleset", required_argument, NULL, OPT_RULESET},
		{"max-per-prompt", required_argument, NULL, OPT_MAXPP},
		{"val-fraction", required_argument, NULL, OPT_VAL},
		{"shard-bytes", required_argument, NULL, OPT_SHARD},
		{"level", required_argument, NULL, OPT_LEVEL},
		{"seed", required_argument, NULL, OPT_SEED},
		{"include", required_argument, NULL, OPT_INCLUDE},
		{"domain", required_argument, NULL, OPT_DOMAIN},
		{"source", required_argument, NULL, OPT_SOURCE},
		{"profile", required_argument, NULL, OPT_PROFILE},
		{"max-tokens", required_argument, NULL, OPT_MAXTOK},
		{"mix", required_argument, NULL, OPT_MIX},
		{"force", no_argument, NULL, OPT_FORCE},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"threads", required_argument, NULL, OPT_THREADS},
		{0, 0, 0, 0},
	};
	struct export_opts o;
	struct export_plan *plan = NULL;
	struct export_result res;
	struct buf mix = BUF_INIT(16 << 20);
	struct derr e = {0};
	struct db *db = NULL;
	const char *dbpath = NULL, *mixpath = NULL, *outdir;
	int c, force = 0, verify = 0, rc = EXIT_ERROR;
	int64_t v;
	double d;

	export_opts_init(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(export_usage, stdout); return EXIT_OK;
		case OPT_RULESET: o.ruleset = optarg; break;
		case OPT_MAXPP:
			if (parse_int64(optarg, 0, INT64_MAX, &o.max_per_prompt))
				return cli_usage_error("export", "--max-per-prompt: not a count: '%s'",
						       optarg);
			break;
		case OPT_VAL:
			if (parse_double(optarg, &d) || !(d >= 0 && d <= 1))
				return cli_usage_error("export", "--val-fraction: want a number in [0, 1]");
			o.val_fraction = d;
			break;
		case OPT_SHARD:
			if (parse_size(optarg, &o.shard_bytes))
				return cli_usage_error("export", "--shard-bytes: not a size: '%s'", optarg);
			break;
		case OPT_LEVEL:
			if (parse_int64(optarg, 1, 22, &v))
				return cli_usage_error("export", "--level: want 1..22");
			o.level = (int)v;
			break;
		case OPT_SEED:
			if (parse_int64(optarg, 0, INT64_MAX, &v))
				return cli_usage_error("export", "--seed: not a number: '%s'", optarg);
			o.seed = (uint64_t)v;
			break;
		case OPT_INCLUDE:
			if (export_include_parse(optarg, &o.include, &e))
				return cli_usage_error("export", "%s", e.msg);
			break;
		case OPT_DOMAIN: o.domain = optarg; break;
		case OPT_SOURCE: o.source = optarg; break;
		case OPT_PROFILE: o.profile = optarg; break;
		case OPT_MAXTOK:
			if (parse_int64(optarg, 1, INT64_MAX, &o.max_tokens))
				return cli_usage_error("export", "--max-tokens: not a count: '%s'", optarg);
			break;
		case OPT_MIX: mixpath = optarg; break;
		case OPT_FORCE: force = 1; break;
		case OPT_VERIFY: verify = 1; break;
		case OPT_THREADS:
			if (parse_int64(optarg, 1, 256, &v))
				return cli_usage_error("export", "--threads: want 1..256");
			o.threads = (int)v;
			break;
		default: return cli_usage_error("export", "bad option");
		}
	}
	if (cli_one_operand("export", argc, argv, "missing OUTDIR", &outdir))
		return EXIT_USAGE;

	if (verify) {
		int64_t n = 0;
		if (export_verify(outdir, &n, &e))
			return cli_fail(&e);
		printf("%s: ok, %lld samples\n", outdir, (long long)n);
		return EXIT_OK;
	}
	if (mixpath) {
		if (read_file(mixpath, &mix)) {
			cli_error("%s: %s", mixpath, errno ? strerror(errno) : "cannot read");
			goto out;
		}
		o.mix_json = buf_str(&mix);
	}
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db)
		goto out;
	if (export_plan_new(db, &o, &plan, &e) ||
	    export_plan_write(db, plan, outdir, force, NULL, &res, &e)) {
		rc = e.code == DERR_INVALID || e.code == DERR_PARSE ? EXIT_USAGE : EXIT_ERROR;
		cli_fail(&e);
		goto out;
	}
	printf("exported %lld samples (train %lld, val %lld) in %d shards, %lld bytes, to %s\n",
	       (long long)res.samples, (long long)res.train, (long long)res.val, res.shards,
	       (long long)res.bytes, outdir);
	rc = EXIT_OK;
out:
	export_plan_free(plan);
	db_close(db);
	buf_release(&mix);
	return rc;
}
