# distill ingest: counts, idempotence, K, bad lines, strict, usage errors.
$ distill init --db t.db >/dev/null
$ distill ingest --db t.db --samples 2 $SRC/examples/prompts.jsonl
> 24 records from 1 file: 24 new, 0 duplicates, 0 rejected; 0 reference conflicts; 48 jobs queued for profile 'default'
# Again: nothing new.  A larger K adds only the missing samples.
$ distill ingest --db t.db --samples 2 $SRC/examples/prompts.jsonl
> 24 records from 1 file: 0 new, 24 duplicates, 0 rejected; 0 reference conflicts; 0 jobs queued for profile 'default'
$ distill ingest --db t.db --samples 3 $SRC/examples/prompts.jsonl
> 24 records from 1 file: 0 new, 24 duplicates, 0 rejected; 0 reference conflicts; 24 jobs queued for profile 'default'
$ sqlite3 t.db "SELECT state, count FROM queue_stats WHERE count > 0"
> queued|72
$ sqlite3 t.db "SELECT COUNT(*), COUNT(DISTINCT source_id), MIN(source) FROM prompt_sources"
> 24|24|prompts
# The same prompt with other white space, from another source, in a JSON array, zstd-compressed.
$ printf '[{"question": "What is  915 +\\n988?", "answer": 1903}]' | zstd -q -o more.json.zst && distill ingest --db t.db --source extra --profile p2 more.json.zst
> 1 record from 1 file: 0 new, 1 duplicate, 0 rejected; 0 reference conflicts; 1 job queued for profile 'p2'
$ sqlite3 t.db "SELECT source, raw_reference FROM prompt_sources WHERE source = 'extra'"
> extra|1903
# Bad lines are reported with FILE:LINE and skipped; exit 3.
$ printf '{"question":"ok 1"}\nnot json\n{"answer":"1"}\n\n[1]\n{"question":"ok 2"}\n' > bad.jsonl && distill ingest --db t.db bad.jsonl
> 5 records from 1 file: 2 new, 0 duplicates, 3 rejected; 0 reference conflicts; 2 jobs queued for profile 'default'
? 3
~ bad.jsonl:3: no prompt field (prompt, problem or question)
$ distill ingest --db t.db bad.jsonl 2>&1 >/dev/null
> bad.jsonl:2: invalid JSON
> bad.jsonl:3: no prompt field (prompt, problem or question)
> bad.jsonl:5: not a JSON object
? 3
# --strict: any bad line and nothing is written.
$ printf '{"question":"strict 1"}\n{"question":"strict 2"\n' > s.jsonl && distill ingest --db t.db --strict s.jsonl
? 1
~ nothing ingested (--strict)
$ sqlite3 t.db "SELECT COUNT(*) FROM prompts WHERE text LIKE 'strict%'"
> 0
# Explicit fields and domain.
$ printf '{"body":"Name a prime","gold":"7"}\n' > f.jsonl && distill ingest --db t.db --prompt-field body --answer-field gold --domain general --samples 0 f.jsonl
> 1 record from 1 file: 1 new, 0 duplicates, 0 rejected; 0 reference conflicts; 0 jobs queued for profile 'default'
$ sqlite3 t.db "SELECT domain, reference FROM prompts WHERE text = 'Name a prime'"
> general|7
# Usage errors: exit 2.
$ distill ingest --db t.db
? 2
~ no input file
$ distill ingest --db t.db --samples x f.jsonl
? 2
~ --samples takes a whole number
$ distill ingest --db t.db --domain poetry f.jsonl
? 2
~ --domain must be math, code or general
$ distill ingest --db t.db --bogus f.jsonl
? 2
$ distill ingest --help | head -1
> usage: distill ingest FILE... [--source NAME] [--samples K] [--profile NAME]
