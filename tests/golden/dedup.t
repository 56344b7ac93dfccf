# distill dedup: usage errors, a small run, an incremental rerun, a benchmark.
$ distill dedup --help | head -1
> usage: distill dedup [--db PATH] [--benchmark FILE]... [--ngram N] [--threshold T]
$ distill dedup --bogus
? 2
$ distill dedup --threshold 1.5
? 2
~ --threshold wants a number in (0, 1]
$ distill dedup --ngram 0
? 2
~ --ngram wants a whole number from 1 to 64
$ distill dedup --prompts-only --traces-only
? 2
~ exclude each other
$ distill dedup --traces-only --benchmark b.jsonl
? 2
$ distill dedup --db missing.db
? 1
$ distill init --db t.db >/dev/null
$ sqlite3 t.db "INSERT INTO prompts (hash, norm_version, text, created_at) VALUES ('h1', 1, 'Tom has 3 red apples and 4 green pears in a basket on the table. He gives 2 apples to his sister Ann. How many apples does Tom have now?', 0), ('h2', 1, 'TOM has 3 red apples and 4 green  pears in a basket on the table. he gives 2 apples to his sister Ann. How many apples does Tom have now ?', 0), ('h3', 1, 'Tom has 5 red apples and 4 green pears in a basket on the table. He gives 2 apples to his sister Ann. How many apples does Tom have now?', 0)"
$ distill dedup --db t.db
> prompts: 3 new, 3 indexed, 1 candidate pairs, 1 confirmed; 1 near-duplicate in 1 cluster
> traces: 0 new, 0 indexed, 0 candidate pairs, 0 confirmed; 0 near-duplicates in 0 clusters
$ sqlite3 t.db "SELECT member_id, cluster_id, rank, duplicate_of FROM dup_members ORDER BY member_id"
> 1|1|0|
> 2|1|1|1
# A rerun with nothing new does nothing; a new copy joins the cluster.
$ sqlite3 t.db "INSERT INTO prompts (hash, norm_version, text, created_at) VALUES ('h4', 1, 'Tom has 3 red apples and 4 green pears in a basket on the table. He gives 2 apples to his sister Ann. How many apples does Tom have left?', 0)" && distill dedup --db t.db --prompts-only
> prompts: 1 new, 1 indexed, 1 candidate pairs, 1 confirmed; 2 near-duplicates in 1 cluster
$ printf '{"id": "b1", "question": "He gives 2 apples to his sister Ann. How many apples?"}\n' > bench.jsonl && distill dedup --db t.db --prompts-only --benchmark bench.jsonl
> prompts: 0 new, 0 indexed, 0 candidate pairs, 0 confirmed; 2 near-duplicates in 1 cluster
> benchmark bench: 1 problems, 4 prompts checked, 4 newly marked, 4 contaminated
$ sqlite3 t.db "SELECT prompt_id, benchmark, benchmark_item, ngram FROM contamination ORDER BY prompt_id LIMIT 1"
> 1|bench|b1|he gives 2 apples to his sister ann
$ printf 'junk\n{"id": "b1", "question": "He gives 2 apples to his sister Ann. How many apples?"}\n' > bench2.jsonl && distill dedup --db t.db --prompts-only --benchmark bench2.jsonl
> prompts: 0 new, 0 indexed, 0 candidate pairs, 0 confirmed; 2 near-duplicates in 1 cluster
> benchmark bench2: 1 problems, 4 prompts checked, 4 newly marked, 4 contaminated
? 3
~ bench2.jsonl: 1 of 2 records without a usable problem (first at line 1)
$ printf '{"x": 1}\n' > none.jsonl && distill dedup --db t.db --benchmark none.jsonl
? 1
~ no problem found
