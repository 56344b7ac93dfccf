# distill export / refresh / gc: usage and error paths of the CLI.
$ distill export --help | head -1
> usage: distill export OUTDIR [options]
$ distill export
? 2
~ missing OUTDIR
$ distill export a b
? 2
~ unexpected argument
$ distill export out --level 99
? 2
~ --level
$ distill export out --include everything
? 2
~ unknown 'everything'
$ distill init --db t.db >/dev/null
$ distill export out --db t.db
? 1
~ no current rule set
$ test ! -e out
$ distill export --verify nosuch
? 1
~ manifest.json
$ distill gc --db t.db
> deleted 0 verdicts and 0 outcomes of old rule sets, 0 items of pruned exports
$ distill refresh --db t.db
? 2
~ --config FILE is required
$ echo '{"export_root": "ex", "keep_lats": 3}' > r.json && distill refresh --config r.json --db t.db
? 2
~ unknown key 'keep_lats'
$ echo '{"inbox": "in"}' > r2.json && distill refresh --config r2.json --db t.db
? 2
~ export_root is required
# An empty database: nothing to export, nothing published, exit 0.
$ echo '{"export_root": "ex"}' > r3.json && distill refresh --config r3.json --db t.db 2>/dev/null; echo $?; test ! -e ex/latest
> 0
