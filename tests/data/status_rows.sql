-- Rows that later stages write, for the status golden test: three done jobs
-- with traces and attempts, a current rule set with verdicts and outcomes,
-- dedup and contamination marks, one export.
UPDATE jobs SET state = 'done', done_at = 1, updated_at = 1 WHERE id IN (1, 2, 3);
INSERT INTO attempts (id, job_id, attempt_no, started_at, cost_micro_usd) VALUES
  (1, 1, 1, 1, 500), (2, 2, 1, 1, 400), (3, 3, 1, 1, 300), (4, 3, 2, 1, 300);
INSERT INTO traces (id, job_id, attempt_id, reasoning, answer, created_at) VALUES
  (1, 1, 1, 'r', 'a', 1), (2, 2, 2, 'r', 'a', 1), (3, 3, 4, 'r', 'a', 1);
INSERT INTO rulesets (id, hash, text, engine_version, checker_version, is_current, created_at) VALUES
  (1, '0123456789abcdef0123456789abcdef', 'rules', 'e1', 'c1', 1, 1);
INSERT INTO verdicts (trace_id, ruleset_id, rule, state) VALUES
  (1, 1, 'format', 'pass'), (1, 1, 'correct', 'pass'),
  (2, 1, 'format', 'fail'), (2, 1, 'correct', 'skip'),
  (3, 1, 'format', 'limit'), (3, 1, 'correct', 'fail');
INSERT INTO trace_outcomes (trace_id, ruleset_id, accepted, flagged, judged_at) VALUES
  (1, 1, 1, 1, 1), (2, 1, 0, 0, 1), (3, 1, 0, 0, 1);
INSERT INTO dup_members (kind, member_id, cluster_id, rank, duplicate_of, similarity) VALUES
  ('prompt', 1, 1, 0, NULL, NULL), ('prompt', 2, 1, 1, 1, 0.9);
INSERT INTO contamination (prompt_id, benchmark, marked_at) VALUES (3, 'bench_a', 1), (3, 'bench_b', 1), (4, 'bench_a', 1);
INSERT INTO exports (id, version, outdir, options, samples, created_at) VALUES (1, 'v0001', 'out/v0001', '{}', 1, 1);
