-- audit.sql: example queries over a distill database (sqlite3 distill.db < examples/audit.sql).
-- The views queue_stats, sample_audit and rule_stats are the public surface (README, "Database and
-- audit views"); the tables are documented there too.
.headers on
.mode column

-- The queue: jobs per state, zeros included.
SELECT * FROM queue_stats;

-- Prompts per source and domain (a prompt seen in two sources counts in both).
SELECT s.source, p.domain, COUNT(DISTINCT p.id) AS prompts
  FROM prompt_sources s JOIN prompts p ON p.id = s.prompt_id
  GROUP BY s.source, p.domain ORDER BY prompts DESC;

-- Prompts whose sources disagree on the reference, with every raw reference given.
SELECT p.id, p.reference, s.source, s.line, s.raw_reference
  FROM prompts p JOIN prompt_sources s ON s.prompt_id = p.id
  WHERE p.reference_conflict = 1 ORDER BY p.id, s.id LIMIT 50;

-- Acceptance per source and per teacher under the current rule set.
SELECT source, teacher, COUNT(*) AS judged, SUM(accepted) AS accepted,
       ROUND(100.0 * AVG(accepted), 1) AS accept_pct
  FROM sample_audit WHERE accepted IS NOT NULL
  GROUP BY source, teacher ORDER BY judged DESC;

-- What each rule of the current rule set did.
SELECT rule, evaluated, n_pass, n_fail, n_limit, n_skip, rejected,
       ROUND(100.0 * rejected / evaluated, 1) AS rejected_pct
  FROM rule_stats ORDER BY rejected DESC;

-- Rejections by rule, counted from the traces (failed_rules is a JSON array).
SELECT j.value AS rule, COUNT(*) AS traces
  FROM sample_audit a, json_each(a.failed_rules) j
  GROUP BY j.value ORDER BY traces DESC;

-- A sample of rejected traces with why, shortest first.
SELECT trace_id, failed_rules, reasoning_chars, substr(prompt, 1, 60) AS prompt
  FROM sample_audit WHERE accepted = 0 ORDER BY reasoning_chars LIMIT 20;

-- Reasoning length of accepted traces by 1000-character bucket.
SELECT (reasoning_chars / 1000) * 1000 AS chars_from, COUNT(*) AS traces
  FROM sample_audit WHERE accepted = 1 GROUP BY chars_from ORDER BY chars_from;

-- Prompts with no accepted trace yet (candidates for more samples: distill enqueue --only-unaccepted).
SELECT p.id, substr(p.text, 1, 60) AS prompt
  FROM prompts p
  WHERE NOT EXISTS (SELECT 1 FROM sample_audit a WHERE a.prompt_id = p.id AND a.accepted = 1)
  LIMIT 20;

-- Duplicates and contamination.
SELECT COUNT(*) AS duplicate_prompts FROM dup_members WHERE kind = 'prompt' AND rank > 0;
SELECT benchmark, COUNT(*) AS contaminated_prompts FROM contamination GROUP BY benchmark;

-- Jobs that died, by error code, and what they cost.
SELECT j.last_error_code, COUNT(*) AS jobs FROM jobs j WHERE j.state = 'dead'
  GROUP BY j.last_error_code ORDER BY jobs DESC;
SELECT COUNT(*) AS requests, SUM(cost_micro_usd) / 1e6 AS usd,
       SUM(error_code IS NOT NULL) AS failed_requests FROM attempts;

-- Lineage: where each exported trace went, newest export first.
SELECT e.id AS export_id, e.version, i.shard, i.line, i.split, a.source, a.teacher
  FROM export_items i JOIN exports e ON e.id = i.export_id JOIN sample_audit a ON a.trace_id = i.trace_id
  WHERE e.pruned = 0 ORDER BY e.id DESC, i.shard, i.line LIMIT 20;
