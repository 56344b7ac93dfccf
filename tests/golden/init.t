# distill init creates, then leaves an up-to-date database alone.
$ distill init --db t.db | sed 's/version [0-9]*/version N/'
> t.db: created, schema version N
$ distill init --db t.db | sed 's/version [0-9]*/version N/'
> t.db: schema version N, up to date
$ DISTILL_DB=env.db distill init >/dev/null && test -f env.db
# Usage errors exit 2 with one clear line.
$ distill nosuch
? 2
~ 'nosuch' is not a distill command
$ distill init --bogus
? 2
$ distill init extra
? 2
~ unexpected argument
# A file that is not a database is a clear error, not a crash.
$ echo garbage > bad.db && distill init --db bad.db
? 1
~ not a database
$ distill --help | head -1
> usage: distill <command> [options]
