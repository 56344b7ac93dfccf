-- 001_init.sql: the core tables, DESIGN §3 and §13.
-- Times are milliseconds since the epoch (INTEGER).  Nothing the user ingested
-- or the teacher returned is ever deleted by the pipeline.

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per distinct prompt: identity is the hash of the NFC-normalised,
-- whitespace-collapsed text (norm_version says which normalisation).
CREATE TABLE prompts (
  id             INTEGER PRIMARY KEY,
  hash           TEXT NOT NULL UNIQUE,       -- hex, 32 chars
  norm_version   INTEGER NOT NULL,
  text           TEXT NOT NULL,
  reference      TEXT,                       -- clean reference answer (answer module)
  domain         TEXT NOT NULL DEFAULT 'general' CHECK (domain IN ('math', 'code', 'general')),
  meta           TEXT,                       -- JSON object
  reference_conflict INTEGER NOT NULL DEFAULT 0, -- sources disagree on the reference
  created_at     INTEGER NOT NULL
);

-- Every ingested occurrence of a prompt.
CREATE TABLE prompt_sources (
  id             INTEGER PRIMARY KEY,
  prompt_id      INTEGER NOT NULL REFERENCES prompts(id),
  source         TEXT NOT NULL,
  source_id      TEXT,
  raw_reference  TEXT,                       -- exactly as given (numbers in shortest round-trip form)
  file_sha256    TEXT,
  line           INTEGER,
  created_at     INTEGER NOT NULL
);
CREATE INDEX prompt_sources_prompt ON prompt_sources(prompt_id);
CREATE INDEX prompt_sources_source ON prompt_sources(source);

-- Files already ingested, by content hash (refresh skips them).
CREATE TABLE ingested_files (
  sha256         TEXT PRIMARY KEY,
  path           TEXT NOT NULL,
  source         TEXT NOT NULL,
  lines          INTEGER NOT NULL,
  new_prompts    INTEGER NOT NULL,
  rejected       INTEGER NOT NULL,
  ingested_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Named, immutable generation profiles.  A row is created by ingest with
-- only the name; the first `distill work` binds definition and hash.
CREATE TABLE profiles (
  id             INTEGER PRIMARY KEY,
  name           TEXT NOT NULL UNIQUE,
  hash           TEXT,                       -- NULL until bound
  definition     TEXT,                       -- canonical JSON: model, system, template, sampling
  created_at     INTEGER NOT NULL,
  bound_at       INTEGER
);

-- The queue: one job per (prompt, profile, sample index).
CREATE TABLE jobs (
  id             INTEGER PRIMARY KEY,
  prompt_id      INTEGER NOT NULL REFERENCES prompts(id),
  profile_id     INTEGER NOT NULL REFERENCES profiles(id),
  sample_index   INTEGER NOT NULL,
  state          TEXT NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'leased', 'done', 'failed', 'dead')),
  attempts       INTEGER NOT NULL DEFAULT 0,
  lease_owner    TEXT,
  lease_expires  INTEGER,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error     TEXT,
  last_error_code TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  done_at        INTEGER,
  UNIQUE (prompt_id, profile_id, sample_index)
);
CREATE INDEX jobs_runnable ON jobs(state, next_attempt_at);
CREATE INDEX jobs_lease ON jobs(state, lease_expires) WHERE state = 'leased';

-- One row per HTTP request (or imported trace).
CREATE TABLE attempts (
  id             INTEGER PRIMARY KEY,
  job_id         INTEGER NOT NULL REFERENCES jobs(id),
  attempt_no     INTEGER NOT NULL,
  endpoint       TEXT,
  started_at     INTEGER NOT NULL,
  ms             INTEGER,
  http_status    INTEGER,
  error_class    TEXT,                       -- NULL ok | job | endpoint
  error_code     TEXT,                       -- e.g. http_429, timeout, malformed
  bytes          INTEGER,
  request_id     TEXT,
  prompt_tokens  INTEGER,
  completion_tokens INTEGER,
  cost_micro_usd INTEGER NOT NULL DEFAULT 0,
  raw_body       BLOB,                       -- zstd-compressed, capped
  imported       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attempts_job ON attempts(job_id);

-- One trace per done job.
CREATE TABLE traces (
  id             INTEGER PRIMARY KEY,
  job_id         INTEGER NOT NULL UNIQUE REFERENCES jobs(id),
  attempt_id     INTEGER REFERENCES attempts(id),
  reasoning_chars INTEGER,                   -- characters (code points) of reasoning, kept so that
                                             -- length statistics need not read every text
  placement      TEXT,                       -- reasoning_content | reasoning | think_tags | close_tag_only | none
  finish_reason  TEXT,
  prompt_tokens  INTEGER,
  completion_tokens INTEGER,
  latency_ms     INTEGER,
  endpoint       TEXT,
  model          TEXT,
  request_id     TEXT,
  utf8_repaired  INTEGER NOT NULL DEFAULT 0, -- invalid UTF-8 replaced with U+FFFD
  created_at     INTEGER NOT NULL,
  -- The large columns come last: a column stored after a long text lives in
  -- its overflow pages, and every scan of the small ones would walk them.
  reasoning      TEXT,
  answer         TEXT,
  raw_body       BLOB                        -- zstd-compressed response body as received
);
-- Covers the statistics that scan every trace (report, status) without
-- touching the pages that hold the texts.
CREATE INDEX traces_stats ON traces(job_id, endpoint, completion_tokens, reasoning_chars);

-- Rule sets: each hash covers canonical rule text + engine and checker versions.
CREATE TABLE rulesets (
  id             INTEGER PRIMARY KEY,
  hash           TEXT NOT NULL UNIQUE,
  text           TEXT NOT NULL,
  engine_version TEXT NOT NULL,
  checker_version TEXT NOT NULL,
  is_current     INTEGER NOT NULL DEFAULT 0,
  created_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX rulesets_current ON rulesets(is_current) WHERE is_current = 1;

-- Per trace, per rule, per rule set.
CREATE TABLE verdicts (
  trace_id       INTEGER NOT NULL REFERENCES traces(id),
  ruleset_id     INTEGER NOT NULL REFERENCES rulesets(id),
  rule           TEXT NOT NULL,
  state          TEXT NOT NULL CHECK (state IN ('pass', 'fail', 'limit', 'skip')),
  action         TEXT NOT NULL DEFAULT 'reject' CHECK (action IN ('reject', 'flag')),
  detail         TEXT,
  PRIMARY KEY (trace_id, ruleset_id, rule)
) WITHOUT ROWID;
CREATE INDEX verdicts_ruleset ON verdicts(ruleset_id, rule, state, action); -- covers rule_stats

-- The overall outcome of a trace under a rule set.
CREATE TABLE trace_outcomes (
  trace_id       INTEGER NOT NULL REFERENCES traces(id),
  ruleset_id     INTEGER NOT NULL REFERENCES rulesets(id),
  accepted       INTEGER NOT NULL,
  flagged        INTEGER NOT NULL DEFAULT 0,
  judged_at      INTEGER NOT NULL,
  PRIMARY KEY (trace_id, ruleset_id)
) WITHOUT ROWID;
CREATE INDEX trace_outcomes_ruleset ON trace_outcomes(ruleset_id, accepted);

-- Dedup clusters (marks, never deletions).  kind: 'prompt' or 'trace'.
-- rank 0 is the earliest member; duplicate_of is the rank-0 member's id.
CREATE TABLE dup_members (
  kind           TEXT NOT NULL CHECK (kind IN ('prompt', 'trace')),
  member_id      INTEGER NOT NULL,
  cluster_id     INTEGER NOT NULL,
  rank           INTEGER NOT NULL,
  duplicate_of   INTEGER,                    -- NULL for rank 0
  similarity     REAL,
  PRIMARY KEY (kind, member_id)
) WITHOUT ROWID;
CREATE INDEX dup_members_cluster ON dup_members(kind, cluster_id, rank);

-- Decontamination marks.
CREATE TABLE contamination (
  prompt_id      INTEGER NOT NULL REFERENCES prompts(id),
  benchmark      TEXT NOT NULL,
  benchmark_item TEXT,
  ngram          TEXT,
  marked_at      INTEGER NOT NULL,
  PRIMARY KEY (prompt_id, benchmark)
) WITHOUT ROWID;

-- Exports and their lineage.
CREATE TABLE exports (
  id             INTEGER PRIMARY KEY,
  version        TEXT,                       -- vNNNN under refresh, NULL for a plain export
  outdir         TEXT NOT NULL,
  ruleset_hash   TEXT,
  options        TEXT NOT NULL,              -- JSON
  samples        INTEGER NOT NULL DEFAULT 0,
  manifest_sha256 TEXT,
  pruned         INTEGER NOT NULL DEFAULT 0,
  created_at     INTEGER NOT NULL
);
CREATE TABLE export_items (
  export_id      INTEGER NOT NULL REFERENCES exports(id),
  trace_id       INTEGER NOT NULL REFERENCES traces(id),
  shard          TEXT NOT NULL,
  line           INTEGER NOT NULL,
  split          TEXT NOT NULL CHECK (split IN ('train', 'val')),
  PRIMARY KEY (export_id, trace_id)
) WITHOUT ROWID;
CREATE INDEX export_items_trace ON export_items(trace_id);

-- ---------------------------------------------------------------------------
-- Audit views: the public SQL surface (README "Auditing with SQL").

CREATE VIEW current_ruleset AS
  SELECT id, hash FROM rulesets WHERE is_current = 1;

CREATE VIEW queue_stats AS
  SELECT s.state AS state, COUNT(j.id) AS count
  FROM (SELECT 'queued' AS state, 1 AS o UNION ALL SELECT 'leased', 2 UNION ALL
        SELECT 'done', 3 UNION ALL SELECT 'failed', 4 UNION ALL SELECT 'dead', 5) s
  LEFT JOIN jobs j ON j.state = s.state
  GROUP BY s.state ORDER BY MIN(s.o);

CREATE VIEW sample_audit AS
  SELECT
    t.id                AS trace_id,
    j.prompt_id         AS prompt_id,
    j.id                AS job_id,
    j.sample_index      AS sample_index,
    p.text              AS prompt,
    p.reference         AS reference,
    p.domain            AS domain,
    (SELECT ps.source FROM prompt_sources ps WHERE ps.prompt_id = p.id ORDER BY ps.id LIMIT 1) AS source,
    pr.name             AS profile,
    t.model             AS teacher,
    t.endpoint          AS endpoint,
    t.placement         AS placement,
    t.finish_reason     AS finish_reason,
    t.prompt_tokens     AS prompt_tokens,
    t.completion_tokens AS completion_tokens,
    COALESCE(t.reasoning_chars, length(t.reasoning)) AS reasoning_chars,
    length(t.answer)    AS answer_chars,
    o.accepted          AS accepted,
    o.flagged           AS flagged,
    CASE WHEN o.trace_id IS NULL THEN NULL ELSE
      (SELECT json_group_array(v.rule) FROM verdicts v
        WHERE v.trace_id = t.id AND v.ruleset_id = o.ruleset_id
          AND v.state IN ('fail', 'limit') AND v.action = 'reject') END AS failed_rules,
    (SELECT d.duplicate_of FROM dup_members d WHERE d.kind = 'trace' AND d.member_id = t.id) AS duplicate_of,
    (SELECT d.duplicate_of FROM dup_members d WHERE d.kind = 'prompt' AND d.member_id = p.id) AS duplicate_prompt_of,
    EXISTS (SELECT 1 FROM contamination c WHERE c.prompt_id = p.id) AS contaminated,
    (SELECT ei.shard FROM export_items ei JOIN exports e ON e.id = ei.export_id
      WHERE ei.trace_id = t.id AND e.pruned = 0 ORDER BY e.id DESC LIMIT 1) AS export_shard,
    t.created_at        AS created_at
  FROM traces t
  JOIN jobs j      ON j.id = t.job_id
  JOIN prompts p   ON p.id = j.prompt_id
  JOIN profiles pr ON pr.id = j.profile_id
  LEFT JOIN trace_outcomes o
    ON o.trace_id = t.id AND o.ruleset_id = (SELECT id FROM rulesets WHERE is_current = 1);

CREATE VIEW rule_stats AS
  -- Counted per (rule, state, action) along the covering index, then pivoted:
  -- one pass over the index instead of six expressions per verdict row.
  SELECT
    g.rule                                                        AS rule,
    SUM(g.n)                                                      AS evaluated,
    SUM(CASE WHEN g.state = 'pass' THEN g.n ELSE 0 END)           AS n_pass,
    SUM(CASE WHEN g.state = 'fail' THEN g.n ELSE 0 END)           AS n_fail,
    SUM(CASE WHEN g.state = 'limit' THEN g.n ELSE 0 END)          AS n_limit,
    SUM(CASE WHEN g.state = 'skip' THEN g.n ELSE 0 END)           AS n_skip,
    SUM(CASE WHEN g.state IN ('fail', 'limit') AND g.action = 'reject' THEN g.n ELSE 0 END) AS rejected
  FROM (SELECT v.rule AS rule, v.state AS state, v.action AS action, COUNT(*) AS n
        FROM verdicts v
        WHERE v.ruleset_id = (SELECT id FROM rulesets WHERE is_current = 1)
        GROUP BY v.rule, v.state, v.action) g
  GROUP BY g.rule;
