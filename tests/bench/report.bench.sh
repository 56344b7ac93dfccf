#!/bin/sh
# Benchmark: `distill report` on a synthetic database of N traces (default
# 800,000) with verdicts, outcomes, dedup marks and an export.  Target: under
# 10 s.  Prints the median of 3 runs and the peak RSS.
set -eu
N="${REPORT_BENCH_N:-800000}"
BIN="${DISTILL_BIN:-build}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db="$work/r.db"
"$BIN/distill" init --db "$db" >/dev/null
sqlite3 "$db" <<SQL
PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
BEGIN;
INSERT INTO profiles(id, name, created_at) VALUES (1, 'default', 0);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $N)
INSERT INTO prompts(id, hash, norm_version, text, reference, domain, created_at)
  SELECT i, printf('%032x', i), 1, 'What is ' || i || ' + ' || (i * 7) || '?', i * 8, 'math', 0 FROM c;
INSERT INTO prompt_sources(prompt_id, source, created_at) SELECT id, 'src' || (id % 5), 0 FROM prompts;
INSERT INTO jobs(id, prompt_id, profile_id, sample_index, state, created_at, updated_at)
  SELECT id, id, 1, 0, 'done', 0, 0 FROM prompts;
INSERT INTO attempts(id, job_id, attempt_no, endpoint, started_at, ms, http_status, error_code, completion_tokens,
  cost_micro_usd) SELECT id, id, 1, 'ep' || (id % 3), 0, 200 + id % 5000, 200, CASE WHEN id % 50 = 0 THEN 'http_429' END,
  500 + id % 1500, 30 FROM jobs;
INSERT INTO traces(id, job_id, attempt_id, reasoning, reasoning_chars, answer, endpoint, model, completion_tokens,
  created_at) SELECT id, id, id, substr(printf('%.4000c', 'x'), 1, 500 + id % 3500), 500 + id % 3500,
  '\boxed{' || id || '}', 'ep' || (id % 3), 'sim', 500 + id % 1500, 0 FROM jobs;
INSERT INTO rulesets(id, hash, text, engine_version, checker_version, is_current, created_at)
  VALUES (1, 'bench', 'x', '1', '1', 1, 0);
INSERT INTO verdicts(trace_id, ruleset_id, rule, state, action)
  SELECT t.id, 1, r.rule, CASE WHEN (t.id + r.k) % 11 = 0 THEN 'fail' ELSE 'pass' END, 'reject'
  FROM traces t, (SELECT 'answer_correct' AS rule, 1 AS k UNION ALL SELECT 'language', 2 UNION ALL
    SELECT 'repetition', 3 UNION ALL SELECT 'think_format', 4) r;
INSERT INTO trace_outcomes(trace_id, ruleset_id, accepted, judged_at)
  SELECT id, 1, NOT ((id + 1) % 11 = 0 OR (id + 2) % 11 = 0 OR (id + 3) % 11 = 0 OR (id + 4) % 11 = 0), 0 FROM traces;
INSERT INTO dup_members(kind, member_id, cluster_id, rank, duplicate_of)
  SELECT 'prompt', id, id - id % 100, CASE WHEN id % 100 = 0 THEN 0 ELSE 1 END,
  CASE WHEN id % 100 = 0 THEN NULL ELSE id - id % 100 END FROM prompts WHERE id % 100 IN (0, 1);
INSERT INTO exports(id, version, outdir, options, samples, created_at) VALUES (1, 'v0001', 'x', '{}', 0, 0);
INSERT INTO export_items(export_id, trace_id, shard, line, split)
  SELECT 1, trace_id, printf('train-%05d-of-00008.jsonl.zst', trace_id % 8), trace_id, 'train'
  FROM trace_outcomes WHERE accepted = 1;
COMMIT;
SQL
times=""
for i in 1 2 3; do
	s=$(date +%s.%N)
	/usr/bin/time -f "%M" -o "$work/rss" "$BIN/distill" report --db "$db" --out "$work/r.html" >/dev/null
	e=$(date +%s.%N)
	times="$times $(echo "$e - $s" | bc)"
done
med=$(echo $times | tr ' ' '\n' | sort -n | sed -n 2p)
echo "report on $N traces: median ${med}s of 3 (target < 10 s), peak RSS $(cat "$work/rss") KB, page $(wc -c <"$work/r.html") bytes"
