# distill status: text and --json, before and after later stages have run.
$ distill init --db t.db >/dev/null && distill ingest --db t.db --samples 2 $SRC/examples/prompts.jsonl >/dev/null
$ distill status --db t.db | sed "s/(schema [0-9]*)/(schema N)/"
> database: t.db (schema N)
> prompts: 24 (0 with conflicting references)
>   by source: prompts 24
>   by domain: math 24
> jobs: 48 (queued 48, leased 0, done 0, failed 0, dead 0)
> traces: 0
> filter: not run (no current rule set)
> dedup: 0 near-duplicate prompts, 0 near-duplicate traces, 0 contaminated prompts
> exports: 0
> cost: $0.000000 over 0 requests
$ distill status --db t.db --json | sed "s/\"schema_version\":[0-9]*/\"schema_version\":N/"
> {"schema_version":N,"prompts":24,"prompts_by_source":{"prompts":24},"prompts_by_domain":{"math":24},"reference_conflicts":0,"jobs":{"queued":48,"leased":0,"done":0,"failed":0,"dead":0},"jobs_total":48,"traces":0,"ruleset":null,"judged":0,"accepted":0,"rejected":0,"flagged":0,"rejected_by_rule":{},"rules":[],"near_duplicate_prompts":0,"near_duplicate_traces":0,"contaminated_prompts":0,"exports":0,"latest_export":null,"attempts":0,"cost_micro_usd":0}
# Later stages' rows (written here with SQL): traces, verdicts, marks, an export, cost.
$ sqlite3 t.db < $SRC/tests/data/status_rows.sql
$ distill status --db t.db | sed "s/(schema [0-9]*)/(schema N)/"
> database: t.db (schema N)
> prompts: 24 (0 with conflicting references)
>   by source: prompts 24
>   by domain: math 24
> jobs: 48 (queued 45, leased 0, done 3, failed 0, dead 0)
> traces: 3
> filter: rule set 0123456789ab: 3 judged, 1 accepted (33.3%), 2 rejected, 1 flagged
>   rule                         evaluated      pass      fail     limit      skip  rejected
>   correct                              3         1         1         0         1         1
>   format                               3         1         1         1         0         2
> dedup: 1 near-duplicate prompts, 0 near-duplicate traces, 2 contaminated prompts
> exports: 1 (latest out/v0001, 1 samples)
> cost: $0.001500 over 4 requests
$ distill status --db t.db --json | jq -c '{accepted, rejected, rejected_by_rule, near_duplicate_prompts, contaminated_prompts, exports, cost_micro_usd, jobs: .jobs.done}'
> {"accepted":1,"rejected":2,"rejected_by_rule":{"correct":1,"format":2},"near_duplicate_prompts":1,"contaminated_prompts":2,"exports":1,"cost_micro_usd":1500,"jobs":3}
# The reserved keys of DESIGN §13 are always present.
$ distill status --db t.db --json | jq -r '[has("prompts"), has("jobs"), has("traces"), has("accepted"), has("rejected_by_rule"), has("near_duplicate_prompts"), has("contaminated_prompts"), has("exports"), has("cost_micro_usd")] | all'
> true
$ distill status --db missing.db
? 1
~ no such database
$ distill status --db t.db extra
? 2
# The example audit queries run against such a database.
$ sqlite3 -bail t.db < $SRC/examples/audit.sql > audit.out && grep -c . audit.out >/dev/null && echo fine
> fine
