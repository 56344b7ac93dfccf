# distill check: integrity plus invariants; distill backup: an online copy.
$ distill init --db t.db >/dev/null && distill ingest --db t.db $SRC/examples/prompts.jsonl >/dev/null
$ distill check --db t.db
> ok
$ distill backup --db t.db copy.db
> t.db: backed up to copy.db
$ distill check --db copy.db && sqlite3 copy.db "SELECT COUNT(*) FROM prompts; PRAGMA journal_mode"
> ok
> 24
> delete
$ distill backup --db t.db copy.db
? 1
~ already exists
$ distill backup --db t.db
? 2
~ no destination file
# Break the invariants by hand: done jobs without traces, a lease left on a queued job.
$ sqlite3 t.db "UPDATE jobs SET state = 'done' WHERE id IN (1, 2); UPDATE jobs SET lease_owner = 'w1' WHERE id = 5"
$ distill check --db t.db
> violation: done job without a trace: 2 (1,2)
> violation: lease on a job that is not leased: 1 (5)
? 1
~ 2 invariants violated
$ sqlite3 t.db "INSERT INTO traces (job_id, created_at) VALUES (7, 1)" && distill check --db t.db | grep -c violation
> 3
$ distill check --db nothere.db
? 1
~ no such database
