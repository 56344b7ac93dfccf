# Issue 2, "Done when": GSM8K train with 4 samples per prompt, then again.
@ skip-unless-shared
$ distill init --db g.db >/dev/null
$ distill ingest --db g.db --samples 4 $SHARED/gsm8k_train.jsonl
> 7473 records from 1 file: 7473 new, 0 duplicates, 0 rejected; 0 reference conflicts; 29892 jobs queued for profile 'default'
$ sqlite3 g.db "SELECT state, count FROM queue_stats"
> queued|29892
> leased|0
> done|0
> failed|0
> dead|0
$ distill ingest --db g.db --samples 4 $SHARED/gsm8k_train.jsonl
> 7473 records from 1 file: 0 new, 7473 duplicates, 0 rejected; 0 reference conflicts; 0 jobs queued for profile 'default'
$ sqlite3 g.db "SELECT reference FROM prompts ORDER BY id LIMIT 2"
> 72
> 10
$ distill check --db g.db
> ok
