# Bad input: missing or corrupt database, missing input, a file-size limit
# (a full disk), a database newer than this program.  One clear line on
# stderr, non-zero exit, nothing half-written.
$ printf '{"question":"q"}\n' > p.jsonl
$ distill ingest --db none.db p.jsonl
? 1
~ no such database (create it with `distill init`)
$ test ! -e none.db
$ echo garbage > bad.db && distill ingest --db bad.db p.jsonl
? 1
~ not a database
$ distill status --db bad.db
? 1
~ not a database
$ distill init --db t.db >/dev/null && distill ingest --db t.db missing.jsonl
? 1
~ missing.jsonl: No such file or directory
$ distill ingest --db t.db p.jsonl missing.jsonl
? 1
~ missing.jsonl
$ sqlite3 t.db "SELECT COUNT(*) FROM prompts"
> 0
# A file-size limit stops the write: the batch is rolled back, the database stays consistent.
$ awk 'BEGIN { for (i = 0; i < 5000; i++) printf "{\"question\": \"q %d padded %0200d\"}\n", i, 0 }' > big.jsonl
$ sh -c "ulimit -f 2000; trap '' XFSZ; exec distill ingest --db t.db big.jsonl"
? 1
~ out of space, over a file-size limit, or a device error
$ distill check --db t.db && sqlite3 t.db "SELECT COUNT(*) FROM prompts; SELECT COUNT(*) FROM jobs"
> ok
> 0
> 0
# An uninitialised or too-new database is refused with what to do.
$ sqlite3 empty.db "CREATE TABLE x(a)" && distill status --db empty.db
? 1
~ run `distill init`
$ cp t.db new.db && sqlite3 new.db "PRAGMA user_version = 999" && distill ingest --db new.db p.jsonl
? 1
~ newer than this program
$ distill status --db t.db --bogus
? 2
~ Try 'distill status --help'
