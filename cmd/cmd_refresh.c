/*
 * cmd_refresh.c - `distill refresh --config refresh.json`: the cron job.
 * Under the refresh lock: remove stale temp dirs, then run the stages of
 * the table below in order (ingest, work, filter, dedup, export, publish,
 * prune, backup), one log line each with counts and duration, and an
 * optional --json summary on stdout.  Exit 0 done, 1 failure, 3 partial
 * (a stage could not do all its work, or publication was withheld), 75
 * when another refresh holds the lock.
 */
#include "answer.h"
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "decontam.h"
#include "dedup.h"
#include "export.h"
#include "filter.h"
#include "ingest.h"
#include "json.h"
#include "lock.h"
#include "log.h"
#include "queue.h"
#include "refresh.h"
#include "rules.h"
#include "tconfig.h"
#include "util.h"
#include "verdict.h"
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char refresh_usage[] =
	"usage: distill refresh --config refresh.json [--json] [--db PATH]\n\n"
	"The nightly job.  Takes an exclusive lock on <db>.lock (a second refresh exits\n"
	"75 at once), removes temp dirs left by a killed run, ingests new inbox files,\n"
	"works the queue, filters, dedups, exports a new version under\n"
	"export_root/vNNNN/ when anything changed, points export_root/latest at it unless\n"
	"the publish guard trips, and prunes versions beyond keep_last.\n\n"
	"  --config FILE  refresh.json (see README \"Refresh (cron)\")\n"
	"  --json         print a machine-readable summary on stdout\n"
	"  --db PATH      database (default: the config's \"db\", $DISTILL_DB, distill.db)\n\n"
	"Exit: 0 done, 1 failure, 3 partial or publication withheld, 75 already running.\n";

/* Without rules, refresh still tells "nothing to judge" from "could not judge". */
static const char SQL_UNJUDGED[] =
	"SELECT COUNT(*) FROM traces t WHERE NOT EXISTS (SELECT 1 FROM trace_outcomes o"
	" WHERE o.trace_id = t.id AND o.ruleset_id = (SELECT id FROM rulesets WHERE is_current = 1))";

enum stage_status { ST_DONE, ST_NOTHING, ST_SKIPPED, ST_PARTIAL, ST_WITHHELD, ST_FAILED };
static const char *const status_names[] = {"done",    "nothing to do", "skipped",
					   "partial", "withheld",      "failed"};
static const char *const status_keys[] = {"done", "nothing", "skipped", "partial", "withheld", "failed"};

struct run {
	struct refresh_config cfg;
	struct db *db;
	struct buf counts; /* this stage's counts as JSON members ("\"new\": 3") */
	struct buf text;   /* ... and as words for the log line */
	/* Export state shared by the stages after it. */
	int64_t new_id, prev_id;
	char new_version[16], prev_version[16], published[64];
	int changed;
	struct buf deltas, pruned;
	char reason[600];
};

static void count(struct run *r, const char *key, long long v, const char *words)
{
	buf_printf(&r->counts, "%s\"%s\": %lld", r->counts.len ? ", " : "", key, v);
	buf_printf(&r->text, "%s%lld %s", r->text.len ? ", " : "", v, words);
}

static void note(struct run *r, const char *fmt, const char *arg)
{
	if (r->text.len)
		buf_puts(&r->text, ", ");
	buf_printf(&r->text, fmt, arg);
}

/* --- stages ------------------------------------------------------------- */

static void on_bad_record(void *ctx, const char *path, long line, const char *reason)
{
	(void)ctx;
	log_warn("%s:%ld: %s", path, line, reason);
}

static int stage_ingest(struct run *r, struct derr *e)
{
	char **paths = NULL, **shas = NULL;
	struct ingest_options io;
	struct ingest *in = NULL;
	const struct ingest_report *rep;
	int n = 0, st = ST_FAILED;

	if (!r->cfg.inbox)
		return ST_SKIPPED;
	if (refresh_inbox_scan(r->db, r->cfg.inbox, r->cfg.inbox_min_age_ms, now_ms(), &paths, &shas, &n, e))
		return ST_FAILED;
	count(r, "new_files", n, "new files");
	if (!n) {
		st = ST_NOTHING;
		goto out;
	}
	memset(&io, 0, sizeof(io));
	io.source = r->cfg.source;
	io.profile = r->cfg.profile;
	io.samples = (int)r->cfg.samples;
	io.on_bad = on_bad_record;
	if (ingest_open(&in, r->db, &io, e))
		goto out;
	for (int i = 0; i < n; i++)
		if (ingest_file(in, paths[i], e))
			goto out;
	if (ingest_finish(in, e))
		goto out;
	rep = ingest_get_report(in);
	count(r, "new_prompts", rep->new_prompts, "new prompts");
	count(r, "duplicates", rep->duplicates, "duplicates");
	count(r, "rejected", rep->rejected, "rejected lines");
	count(r, "jobs_added", rep->jobs_added, "jobs queued");
	st = rep->rejected ? ST_PARTIAL : ST_DONE;
out:
	ingest_free(in);
	refresh_files_free(paths, n);
	refresh_files_free(shas, n);
	return st;
}

static volatile int stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1; /* the work stage drains; the later stages still run */
}

static int stage_work(struct run *r, struct derr *e)
{
	static const char *const end_names[] = {"queue empty",	  "max_time reached",
						"stopped",	  "max jobs reached",
						"budget reached", "every endpoint paused"};
	int64_t before[QS_COUNT] = {0}, after[QS_COUNT] = {0}, runnable;
	struct tconfig cfg;
	struct worker_opts o;
	struct worker_shared *sh = NULL;
	int64_t *ids = NULL;
	const char **keys = NULL;
	enum worker_end end = WORKER_EMPTY;
	int st = ST_FAILED, loaded = 0;

	if (queue_counts(r->db, before, e))
		return ST_FAILED;
	runnable = before[QS_QUEUED] + before[QS_FAILED] + before[QS_LEASED];
	count(r, "runnable_jobs", runnable, "runnable jobs");
	if (!runnable)
		return ST_NOTHING;
	if (!r->cfg.teacher) {
		note(r, "%s", "not worked: no teacher configured");
		return ST_PARTIAL;
	}
	if (tconfig_load(r->cfg.teacher, &cfg, e))
		return ST_FAILED;
	loaded = 1;
	/* refresh.json's budget is this run's (per_run) budget. */
	if (r->cfg.budget_micro_usd)
		cfg.max_cost_run = r->cfg.budget_micro_usd;
	if (r->cfg.budget_completion_tokens)
		cfg.max_tokens_run = r->cfg.budget_completion_tokens;
	keys = xcalloc((size_t)cfg.nendpoints + 1, sizeof(*keys));
	for (int i = 0; i < cfg.nendpoints; i++) {
		const char *env = cfg.endpoints[i].api_key_env;
		if (env && !(keys[i] = getenv(env))) {
			derr_set(e, DERR_CONFIG, "endpoint %s: the environment variable %s is not set",
				 cfg.endpoints[i].name, env);
			goto out;
		}
	}
	ids = xcalloc((size_t)cfg.nprofiles + 1, sizeof(*ids));
	sh = xcalloc(1, sizeof(*sh));
	worker_shared_init(sh, 1, -1);
	if (tconfig_bind_profiles(r->db, &cfg, ids, e) ||
	    worker_spent(r->db, &sh->spent_tokens_before, &sh->spent_cost_before, e) ||
	    worker_note_budget(r->db, &cfg, e))
		goto out;
	worker_opts_init(&o);
	o.cfg = &cfg;
	o.profile_ids = ids;
	o.api_keys = keys;
	o.concurrency = 64;
	o.deadline_ms = r->cfg.max_time_ms ? now_ms() + r->cfg.max_time_ms : 0;
	o.until_empty = 1;
	o.stop = &stop_flag;
	o.shared = sh;
	o.proc = 0;
	if (worker_run(r->db, &o, &end, e))
		goto out;
	if (queue_counts(r->db, after, e))
		goto out;
	count(r, "done", after[QS_DONE] - before[QS_DONE], "done");
	count(r, "dead", after[QS_DEAD] - before[QS_DEAD], "newly dead");
	count(r, "requests", sh->procs[0].requests, "requests");
	note(r, "%s", end_names[end]);
	st = end == WORKER_BUDGET || after[QS_DEAD] > before[QS_DEAD] ||
			     after[QS_QUEUED] + after[QS_FAILED] + after[QS_LEASED] > 0
		     ? ST_PARTIAL
		     : ST_DONE;
out:
	free(sh);
	free(ids);
	free(keys);
	if (loaded)
		tconfig_release(&cfg);
	return st;
}

static int stage_filter(struct run *r, struct derr *e)
{
	struct rules rs;
	struct filter *f = NULL;
	struct buf canon = BUF_INIT(64 << 20);
	struct verdict_stats vs = {0};
	char hash[65];
	int64_t rs_id = 0, unjudged = 0;
	int created = 0, st = ST_FAILED, rc;

	if (!r->cfg.rules) {
		if (db_query_int64(r->db, SQL_UNJUDGED, &unjudged, e))
			return ST_FAILED;
		count(r, "unjudged_traces", unjudged, "unjudged traces");
		if (!unjudged)
			return ST_NOTHING;
		note(r, "%s", "not judged: no rules configured");
		return ST_PARTIAL;
	}
	rules_init(&rs);
	if (rules_load(&rs, r->cfg.rules, e) || filter_new(&f, &rs, e))
		goto out;
	if ((rc = filter_ruleset_hash(&rs, answer_checker_version(), hash, &canon))) {
		derr_set(e, rc, "%s: rule text too large", r->cfg.rules);
		goto out;
	}
	if (verdict_ruleset_use(r->db, hash, buf_str(&canon), answer_checker_version(), &rs_id, &created, e))
		goto out;
	if (created)
		note(r, "new rule set %s", hash);
	if (verdict_judge_range(r->db, f, rs_id, 0, 0, INT64_MAX, 256, &vs, e))
		goto out;
	count(r, "judged", vs.judged, "judged");
	count(r, "accepted", vs.accepted, "accepted");
	count(r, "flagged", vs.flagged, "flagged");
	st = vs.judged ? ST_DONE : ST_NOTHING;
out:
	filter_free(f);
	rules_release(&rs);
	buf_release(&canon);
	return st;
}

static int stage_dedup(struct run *r, struct derr *e)
{
	static const enum dedup_kind kinds[] = {DEDUP_PROMPT, DEDUP_TRACE};
	struct decontam_bench_report reports[DECONTAM_MAX_BENCHMARKS];
	struct minhash_params mp;
	struct decontam *dc = NULL;
	int64_t items = 0, dups = 0, marked = 0;
	int st = ST_FAILED, partial = 0;

	if (r->cfg.nbenchmarks > DECONTAM_MAX_BENCHMARKS) {
		derr_set(e, DERR_INVALID, "benchmarks: at most %d files", DECONTAM_MAX_BENCHMARKS);
		return ST_FAILED;
	}
	/* Benchmarks first: a bad file fails before any work. */
	if (r->cfg.nbenchmarks) {
		dc = decontam_new(DECONTAM_NGRAM_DEFAULT);
		for (int i = 0; i < r->cfg.nbenchmarks; i++) {
			struct decontam_file_report fr;
			if (decontam_load_file(dc, r->cfg.benchmarks[i], &fr, e))
				goto out;
			if (fr.rejected) {
				log_warn("refresh: %s: %ld of %ld records without a usable problem",
					 r->cfg.benchmarks[i], fr.rejected, fr.records);
				partial = 1;
			}
		}
	}
	minhash_params_default(&mp);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		struct dedup_report rep;
		if (dedup_run(r->db, kinds[i], &mp, NULL, NULL, &rep, e))
			goto out;
		items += rep.new_items;
		dups += rep.duplicates;
	}
	count(r, "new_items", items, "new prompts and traces");
	count(r, "duplicates", dups, "duplicates in all");
	if (dc) {
		if (decontam_run(r->db, dc, reports, e))
			goto out;
		for (int i = 0; i < decontam_count(dc); i++)
			marked += reports[i].marked;
		count(r, "contaminated_new", marked, "newly contaminated prompts");
	}
	st = partial ? ST_PARTIAL : items || marked ? ST_DONE : ST_NOTHING;
out:
	decontam_free(dc);
	return st;
}

static int read_mix(const char *path, struct buf *b, struct derr *e)
{
	FILE *f = fopen(path, "rb");
	char tmp[8192];
	size_t n;
	if (!f)
		return derr_set(e, DERR_IO, "mix %s: %s", path, strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_append(b, tmp, n)) {
			fclose(f);
			return derr_set(e, DERR_LIMIT, "mix %s: too large", path);
		}
	fclose(f);
	return 0;
}

static int stage_export(struct run *r, struct derr *e)
{
	struct export_opts o = r->cfg.export;
	struct export_plan *plan = NULL;
	struct export_result res;
	struct buf mix = BUF_INIT(16 << 20);
	char fp[65], outdir[4096];
	int st = ST_FAILED;

	if (mkdir(r->cfg.export_root, 0755) != 0 && errno != EEXIST) {
		derr_set(e, DERR_IO, "%s: %s", r->cfg.export_root, strerror(errno));
		goto out;
	}
	if (r->cfg.x_mix_path) {
		if (read_mix(r->cfg.x_mix_path, &mix, e))
			goto out;
		o.mix_json = buf_str(&mix);
	}
	if (refresh_last_export(r->db, &r->prev_id, r->prev_version, fp, e))
		goto out;
	if (export_plan_new(r->db, &o, &plan, e)) {
		if (e->code == DERR_NOTFOUND && !o.ruleset) { /* nothing judged yet */
			note(r, "%s", "no current rule set yet");
			st = ST_NOTHING;
		}
		goto out;
	}
	count(r, "samples", export_plan_samples(plan), "samples");
	if (r->prev_id && !strcmp(fp, export_plan_fingerprint(plan))) {
		note(r, "unchanged since %s", r->prev_version);
		st = ST_NOTHING;
		goto out;
	}
	if (!r->prev_id && export_plan_samples(plan) == 0) {
		note(r, "%s", "no accepted traces yet");
		st = ST_NOTHING;
		goto out;
	}
	if (refresh_next_version(r->db, r->cfg.export_root, r->new_version, e))
		goto out;
	snprintf(outdir, sizeof(outdir), "%s/%s", r->cfg.export_root, r->new_version);
	if (export_plan_write(r->db, plan, outdir, 0, r->new_version, &res, e))
		goto out;
	r->new_id = res.export_id;
	r->changed = 1;
	count(r, "shards", res.shards, "shards");
	count(r, "bytes", res.bytes, "bytes");
	note(r, "wrote %s", r->new_version);
	if (r->prev_id && refresh_deltas(r->db, r->new_id, r->prev_id, &r->deltas, e))
		goto out;
	st = ST_DONE;
out:
	export_plan_free(plan);
	buf_release(&mix);
	return st;
}

static int stage_publish(struct run *r, struct derr *e)
{
	char latest[64];
	int64_t pub_id = 0, cand_id = r->new_id;
	const char *cand = r->new_version;
	struct derr g = {0};

	refresh_latest(r->cfg.export_root, latest);
	if (latest[0] && refresh_export_by_version(r->db, latest, &pub_id, e))
		return ST_FAILED;
	if (!cand_id && r->prev_id && strcmp(r->prev_version, latest)) {
		/* Unchanged, but the newest version was withheld before: try again. */
		cand_id = r->prev_id;
		cand = r->prev_version;
	}
	snprintf(r->published, sizeof(r->published), "%s", latest);
	if (!cand_id) {
		note(r, "latest stays %s", latest[0] ? latest : "(none)");
		return ST_NOTHING;
	}
	if (refresh_guard_check(r->db, cand_id, pub_id, &r->cfg.guard, &g)) {
		if (g.code != DERR_WITHHELD) {
			*e = g;
			return ST_FAILED;
		}
		snprintf(r->reason, sizeof(r->reason), "%s withheld: %s", cand, g.msg);
		note(r, "%s", r->reason);
		log_warn("refresh: publish: %s; latest stays %s", r->reason, latest[0] ? latest : "(none)");
		return ST_WITHHELD;
	}
	if (refresh_publish(r->cfg.export_root, cand, e))
		return ST_FAILED;
	snprintf(r->published, sizeof(r->published), "%s", cand);
	note(r, "latest -> %s", cand);
	return ST_DONE;
}

static int stage_prune(struct run *r, struct derr *e)
{
	int n = 0;
	if (!r->cfg.keep_last)
		return ST_SKIPPED;
	if (refresh_prune(r->db, r->cfg.export_root, r->cfg.keep_last, r->published[0] ? r->published : NULL,
			  &r->pruned, &n, e))
		return ST_FAILED;
	count(r, "pruned", n, "versions pruned");
	return n ? ST_DONE : ST_NOTHING;
}

static int stage_backup(struct run *r, struct derr *e)
{
	if (!r->cfg.backup)
		return ST_SKIPPED;
	char tmp[4096];
	/* db_backup never overwrites: back up aside, then replace the old copy. */
	if (snprintf(tmp, sizeof(tmp), "%s.new-%ld", r->cfg.backup, (long)getpid()) >= (int)sizeof(tmp)) {
		derr_set(e, DERR_INVALID, "backup: path too long");
		return ST_FAILED;
	}
	unlink(tmp);
	if (db_backup(r->db, tmp, e))
		return ST_FAILED;
	if (rename(tmp, r->cfg.backup) != 0) {
		derr_set(e, DERR_IO, "backup: %s: %s", r->cfg.backup, strerror(errno));
		unlink(tmp);
		return ST_FAILED;
	}
	note(r, "to %s", r->cfg.backup);
	return ST_DONE;
}

static const struct stage {
	const char *name;
	int (*run)(struct run *r, struct derr *e);
} stages[] = {
	{"ingest", stage_ingest}, {"work", stage_work},	    {"filter", stage_filter},
	{"dedup", stage_dedup},	  {"export", stage_export}, {"publish", stage_publish},
	{"prune", stage_prune},	  {"backup", stage_backup},
};

/* --- driver -------------------------------------------------------------- */

static int load_config(const char *path, struct refresh_config *c, struct derr *e)
{
	FILE *f = fopen(path, "rb");
	struct buf b = BUF_INIT(1 << 20);
	char tmp[8192];
	size_t n;
	int rc;

	if (!f)
		return derr_set(e, DERR_NOTFOUND, "%s: %s", path, strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_append(&b, tmp, n)) {
			fclose(f);
			buf_release(&b);
			return derr_set(e, DERR_LIMIT, "%s: too large", path);
		}
	fclose(f);
	rc = refresh_config_parse(buf_str(&b), b.len, path, c, e);
	buf_release(&b);
	return rc;
}

int cmd_refresh(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB,
					     CLI_OPT_HELP,
					     {"config", required_argument, NULL, 'c'},
					     {"json", no_argument, NULL, 'j'},
					     {0, 0, 0, 0}};
	const char *dbopt = NULL, *config = NULL, *dbpath;
	struct run r;
	struct lock *lk = NULL;
	struct derr e = {0};
	struct buf summary = BUF_INIT(16 << 20);
	int c, json = 0, exit_code = EXIT_OK, stale = 0;
	int64_t t0 = mono_ns();

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbopt = optarg; break;
		case 'h': fputs(refresh_usage, stdout); return EXIT_OK;
		case 'c': config = optarg; break;
		case 'j': json = 1; break;
		default: return cli_usage_error("refresh", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("refresh", "unexpected argument '%s'", argv[optind]);
	if (!config)
		return cli_usage_error("refresh", "--config FILE is required");

	memset(&r, 0, sizeof(r));
	buf_init(&r.counts, 1 << 16);
	buf_init(&r.text, 1 << 16);
	buf_init(&r.deltas, 4 << 20);
	buf_init(&r.pruned, 1 << 20);
	if (load_config(config, &r.cfg, &e)) {
		buf_release(&r.counts);
		buf_release(&r.text);
		buf_release(&r.deltas);
		buf_release(&r.pruned);
		return e.code == DERR_PARSE ? (cli_fail(&e), EXIT_USAGE) : cli_fail(&e);
	}
	dbpath = dbopt ? dbopt : r.cfg.db ? r.cfg.db : cli_db_path(NULL);

	{
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_stop;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	/* The lock first, before touching anything. */
	if (lock_open(&lk, dbpath, &e)) {
		cli_fail(&e);
		exit_code = e.code == DERR_LOCKED ? EXIT_LOCKED : EXIT_ERROR;
		goto out;
	}
	r.db = cli_open_db(dbpath, 0);
	if (!r.db) {
		exit_code = EXIT_ERROR;
		goto out;
	}
	if (refresh_clean_stale(r.cfg.export_root, &stale, &e)) {
		cli_fail(&e);
		exit_code = EXIT_ERROR;
		goto out;
	}
	log_info("refresh: cleanup: %d stale temp entries removed", stale);

	buf_printf(&summary, "{\"stale_removed\": %d, \"stages\": [", stale);
	for (size_t i = 0; i < ARRAY_SIZE(stages); i++) {
		int64_t s0 = mono_ns(), ms;
		int st;
		buf_reset(&r.counts);
		buf_reset(&r.text);
		derr_clear(&e);
		st = stages[i].run(&r, &e);
		ms = (mono_ns() - s0) / 1000000;
		if (st == ST_FAILED)
			log_error("refresh: %s: failed: %s (%lldms)", stages[i].name, e.msg, (long long)ms);
		else
			log_info("refresh: %s: %s%s%s (%lldms)", stages[i].name, status_names[st],
				 r.text.len ? ": " : "", buf_str(&r.text), (long long)ms);
		buf_printf(&summary,
			   "%s{\"stage\": \"%s\", \"status\": \"%s\", \"ms\": %lld, \"counts\": {%s}",
			   i ? ", " : "", stages[i].name, status_keys[st], (long long)ms, buf_str(&r.counts));
		if (st == ST_FAILED) {
			buf_puts(&summary, ", \"error\": ");
			json_append_str(&summary, e.msg, strlen(e.msg));
		}
		buf_putc(&summary, '}');
		if (st == ST_FAILED) {
			exit_code = EXIT_ERROR;
			break;
		}
		if (st == ST_PARTIAL || st == ST_WITHHELD)
			exit_code = EXIT_PARTIAL;
	}
	buf_printf(&summary,
		   "], \"version\": %s%s%s, \"changed\": %s, \"latest\": ", r.new_version[0] ? "\"" : "",
		   r.new_version[0] ? r.new_version : "null", r.new_version[0] ? "\"" : "",
		   r.changed ? "true" : "false");
	if (r.published[0])
		json_append_str(&summary, r.published, strlen(r.published));
	else
		buf_puts(&summary, "null");
	buf_puts(&summary, ", \"withheld\": ");
	if (r.reason[0])
		json_append_str(&summary, r.reason, strlen(r.reason));
	else
		buf_puts(&summary, "null");
	buf_printf(&summary, ", \"deltas\": %s, \"pruned\": %s, \"ms\": %lld, \"exit\": %d}\n",
		   r.deltas.len ? buf_str(&r.deltas) : "[]", r.pruned.len ? buf_str(&r.pruned) : "[]",
		   (long long)((mono_ns() - t0) / 1000000), exit_code);
	if (r.deltas.len)
		log_info("refresh: deltas vs %s: %s", r.prev_version, buf_str(&r.deltas));
	if (json)
		fputs(buf_str(&summary), stdout);
out:
	db_close(r.db);
	lock_close(lk);
	refresh_config_release(&r.cfg);
	buf_release(&summary);
	buf_release(&r.counts);
	buf_release(&r.text);
	buf_release(&r.deltas);
	buf_release(&r.pruned);
	return exit_code;
}
