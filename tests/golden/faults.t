# Bad inputs end to end: each gets a clear message and the right exit code.
$ distill init --db f.db >/dev/null
# A prompts file with invalid lines: the good ones go in, each bad one is
# named with its line, and the exit is 3 (partial).
$ printf '{"prompt":"What is 1+1?","answer":"2"}\nnot json\n{"question":"What is 2+2?","answer":"4"}\n{"foo":1}\n' > p.jsonl && distill ingest --db f.db p.jsonl
> 4 records from 1 file: 2 new, 0 duplicates, 2 rejected; 0 reference conflicts; 2 jobs queued for profile 'default'
? 3
~ p.jsonl:2: invalid JSON
$ distill ingest --db f.db p.jsonl --strict
? 1
~ nothing ingested (--strict)
# A teacher config with a wrong key names the key; usage-class exit 2.
$ echo '{"endpoints":[],"profilez":{}}' > bad.json && distill work --db f.db --teacher bad.json
? 2
~ unknown key "profilez"
# A rules file with a syntax error: file:line: message.
$ printf 'rule x\n  kind: nosuch\n' > bad.rules && distill filter --db f.db --rules bad.rules
? 2
~ bad.rules:2:
# An export directory that already exists is refused without --force.
$ distill filter --db f.db --rules $SRC/rules/r1.rules >/dev/null 2>&1 && mkdir out && distill export --db f.db out
? 1
~ out: already exists (use --force to replace it)
# A corrupt shard is refused by the trainer before it trains.
$ mkdir ex && printf '{"format_version":1,"shards":[{"file":"train-00000-of-00001.jsonl.zst","split":"train","samples":1,"bytes":3,"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}]}' > ex/manifest.json && printf 'abc' > ex/train-00000-of-00001.jsonl.zst && distill-train --data ex --out o
? 1
~ SHA-256 mismatch
# A database that is not one, and one that is missing.
$ echo junk > junk.db && distill status --db junk.db
? 1
~ not a database
$ distill status --db missing.db
? 1
~ no such database
