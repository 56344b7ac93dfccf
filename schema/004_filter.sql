-- 004_filter.sql: verdicts with CHECK constraints that cost no more than the
-- comparisons they make.
--
-- 001 wrote the state check as `state IN ('pass', 'fail', 'limit', 'skip')`.
-- SQLite evaluates an IN list of more than two values by building a
-- temporary index (OpenEphemeral: a pager, a page and four inserts) on every
-- row it inserts, and `distill filter` inserts one row per rule per trace:
-- that check alone cost about as much as the row itself.  The same checks
-- written as comparisons accept and refuse exactly the same values.
--
-- SQLite cannot change a CHECK in place: the table is rebuilt (the
-- documented procedure: new table, copy, drop, rename).  The views that read
-- verdicts (sample_audit, rule_stats) refer to it by name and stay as they
-- are; legacy_alter_table keeps the rename from re-parsing them while the
-- old table is gone.
CREATE TABLE verdicts_004 (
  trace_id       INTEGER NOT NULL REFERENCES traces(id),
  ruleset_id     INTEGER NOT NULL REFERENCES rulesets(id),
  rule           TEXT NOT NULL,
  state          TEXT NOT NULL
                 CHECK (state = 'pass' OR state = 'fail' OR state = 'limit' OR state = 'skip'),
  action         TEXT NOT NULL DEFAULT 'reject' CHECK (action = 'reject' OR action = 'flag'),
  detail         TEXT,
  PRIMARY KEY (trace_id, ruleset_id, rule)
) WITHOUT ROWID;
INSERT INTO verdicts_004(trace_id, ruleset_id, rule, state, action, detail)
  SELECT trace_id, ruleset_id, rule, state, action, detail FROM verdicts ORDER BY trace_id, ruleset_id, rule;
DROP TABLE verdicts;
PRAGMA legacy_alter_table = ON;
ALTER TABLE verdicts_004 RENAME TO verdicts;
PRAGMA legacy_alter_table = OFF;
CREATE INDEX verdicts_ruleset ON verdicts(ruleset_id, rule, state, action); -- covers rule_stats
