/* cmd_status.c - `distill status [--json]`: the pipeline at a glance (pipeline/status.h). */
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "json.h"
#include "status.h"

#include <stdio.h>
#include <stdlib.h>

static const char status_usage[] =
	"usage: distill status [--json] [--db PATH]\n\n"
	"Job counts by state, prompts by source and domain, traces, acceptance under the\n"
	"current rule set, dedup and contamination marks, exports and cost.\n\n"
	"  --json         one JSON object (schema in README, \"Status\")\n"
	"  --db PATH      database file (default $DISTILL_DB or distill.db)\n";

static void add_int(cJSON *o, const char *k, int64_t v)
{
	cJSON_AddNumberToObject(o, k, (double)v);
}

static cJSON *counts_object(const struct status_count *c, int n)
{
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < n; i++)
		add_int(o, c[i].name, c[i].n);
	return o;
}

static int print_json(const struct status *s)
{
	cJSON *o = cJSON_CreateObject(), *jobs = cJSON_CreateObject(), *rej = cJSON_CreateObject();
	cJSON *rules = cJSON_CreateArray();
	char *text;

	add_int(o, "schema_version", s->schema_version);
	add_int(o, "prompts", s->prompts);
	cJSON_AddItemToObject(o, "prompts_by_source", counts_object(s->by_source, s->nsource));
	cJSON_AddItemToObject(o, "prompts_by_domain", counts_object(s->by_domain, s->ndomain));
	add_int(o, "reference_conflicts", s->reference_conflicts);
	for (int i = 0; i < QS_COUNT; i++)
		add_int(jobs, queue_state_name((enum queue_state)i), s->jobs[i]);
	cJSON_AddItemToObject(o, "jobs", jobs);
	add_int(o, "jobs_total", s->jobs_total);
	add_int(o, "traces", s->traces);
	if (s->ruleset[0])
		cJSON_AddStringToObject(o, "ruleset", s->ruleset);
	else
		cJSON_AddNullToObject(o, "ruleset");
	add_int(o, "judged", s->judged);
	add_int(o, "accepted", s->accepted);
	add_int(o, "rejected", s->rejected);
	add_int(o, "flagged", s->flagged);
	for (int i = 0; i < s->nrules; i++) {
		const struct status_rule *r = &s->rules[i];
		cJSON *ro = cJSON_CreateObject();
		if (r->rejected)
			add_int(rej, r->rule, r->rejected);
		cJSON_AddStringToObject(ro, "rule", r->rule);
		add_int(ro, "evaluated", r->evaluated);
		add_int(ro, "pass", r->pass);
		add_int(ro, "fail", r->fail);
		add_int(ro, "limit", r->limit);
		add_int(ro, "skip", r->skip);
		add_int(ro, "rejected", r->rejected);
		cJSON_AddItemToArray(rules, ro);
	}
	cJSON_AddItemToObject(o, "rejected_by_rule", rej);
	cJSON_AddItemToObject(o, "rules", rules);
	add_int(o, "near_duplicate_prompts", s->near_duplicate_prompts);
	add_int(o, "near_duplicate_traces", s->near_duplicate_traces);
	add_int(o, "contaminated_prompts", s->contaminated_prompts);
	add_int(o, "exports", s->exports);
	if (s->latest_export) {
		cJSON *le = cJSON_CreateObject();
		cJSON_AddStringToObject(le, "outdir", s->latest_export);
		add_int(le, "samples", s->latest_export_samples);
		cJSON_AddItemToObject(o, "latest_export", le);
	} else {
		cJSON_AddNullToObject(o, "latest_export");
	}
	add_int(o, "attempts", s->attempts);
	add_int(o, "cost_micro_usd", s->cost_micro_usd);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!text)
		return EXIT_ERROR;
	puts(text);
	free(text);
	return EXIT_OK;
}

static void print_counts(const char *label, const struct status_count *c, int n)
{
	printf("  %s:", label);
	if (!n)
		printf(" none");
	for (int i = 0; i < n; i++)
		printf("%s %s %lld", i ? "," : "", c[i].name, (long long)c[i].n);
	putchar('\n');
}

static void print_text(const char *path, const struct status *s)
{
	printf("database: %s (schema %d)\n", path, s->schema_version);
	printf("prompts: %lld (%lld with conflicting references)\n", (long long)s->prompts,
	       (long long)s->reference_conflicts);
	print_counts("by source", s->by_source, s->nsource);
	print_counts("by domain", s->by_domain, s->ndomain);
	printf("jobs: %lld (", (long long)s->jobs_total);
	for (int i = 0; i < QS_COUNT; i++)
		printf("%s%s %lld", i ? ", " : "", queue_state_name((enum queue_state)i),
		       (long long)s->jobs[i]);
	printf(")\ntraces: %lld\n", (long long)s->traces);
	if (!s->ruleset[0]) {
		printf("filter: not run (no current rule set)\n");
	} else {
		printf("filter: rule set %.12s: %lld judged, %lld accepted", s->ruleset, (long long)s->judged,
		       (long long)s->accepted);
		if (s->judged)
			printf(" (%.1f%%)", 100.0 * (double)s->accepted / (double)s->judged);
		printf(", %lld rejected, %lld flagged\n", (long long)s->rejected, (long long)s->flagged);
		if (s->nrules)
			printf("  %-28s %9s %9s %9s %9s %9s %9s\n", "rule", "evaluated", "pass", "fail",
			       "limit", "skip", "rejected");
		for (int i = 0; i < s->nrules; i++) {
			const struct status_rule *r = &s->rules[i];
			printf("  %-28s %9lld %9lld %9lld %9lld %9lld %9lld\n", r->rule,
			       (long long)r->evaluated, (long long)r->pass, (long long)r->fail,
			       (long long)r->limit, (long long)r->skip, (long long)r->rejected);
		}
	}
	printf("dedup: %lld near-duplicate prompts, %lld near-duplicate traces, %lld contaminated prompts\n",
	       (long long)s->near_duplicate_prompts, (long long)s->near_duplicate_traces,
	       (long long)s->contaminated_prompts);
	printf("exports: %lld", (long long)s->exports);
	if (s->latest_export)
		printf(" (latest %s, %lld samples)", s->latest_export, (long long)s->latest_export_samples);
	printf("\ncost: $%lld.%06lld over %lld requests\n", (long long)(s->cost_micro_usd / 1000000),
	       (long long)(s->cost_micro_usd % 1000000), (long long)s->attempts);
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_OPT_DB, CLI_OPT_HELP, {"json", no_argument, NULL, 'j'}, {0, 0, 0, 0}};
	const char *dbpath = NULL;
	struct status s;
	struct derr e = {0};
	struct db *db;
	int c, json = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'h': fputs(status_usage, stdout); return EXIT_OK;
		case 'j': json = 1; break;
		default: return cli_usage_error("status", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
	dbpath = cli_db_path(dbpath);
	db = cli_open_db(dbpath, DB_OPEN_READONLY);
	if (!db)
		return EXIT_ERROR;
	rc = status_collect(db, &s, &e);
	db_close(db);
	if (rc)
		return cli_fail(&e);
	if (json)
		rc = print_json(&s);
	else
		print_text(dbpath, &s);
	status_release(&s);
	if (fflush(stdout) != 0)
		return EXIT_ERROR;
	return rc;
}
