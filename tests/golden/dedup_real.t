# Real data: the same GSM8K question from three teachers' trace files is one
# prompt; GSM8K test prompts are contaminated by gsm8k_test, not by math500_test.
@ skip-unless-shared
$ distill init --db t.db >/dev/null && distill ingest --db t.db --samples 0 $SHARED/traces_r1_gsm8k.jsonl $SHARED/traces_qwq32b_gsm8k_part1.jsonl $SHARED/traces_r1distill_qwen32b_gsm8k.jsonl >/dev/null 2>&1
$ sqlite3 t.db "SELECT count(*), (SELECT count(*) FROM prompt_sources) FROM prompts"
> 582|1455
$ distill dedup --db t.db --prompts-only --benchmark $SHARED/gsm8k_test.jsonl --benchmark $SHARED/math500_test.jsonl
> prompts: 582 new, 582 indexed, 0 candidate pairs, 0 confirmed; 0 near-duplicates in 0 clusters
> benchmark gsm8k_test: 1319 problems, 582 prompts checked, 582 newly marked, 582 contaminated
> benchmark math500_test: 500 problems, 582 prompts checked, 0 newly marked, 0 contaminated
$ distill status --db t.db --json | grep -o '"near_duplicate_prompts":[0-9]*,"near_duplicate_traces":[0-9]*,"contaminated_prompts":[0-9]*'
> "near_duplicate_prompts":0,"near_duplicate_traces":0,"contaminated_prompts":582
