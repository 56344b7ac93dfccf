-- 003_dedup.sql: the persistent near-duplicate index and the bookkeeping that
-- makes `distill dedup` incremental (DESIGN §6).  Derived data only: the
-- marks themselves are dup_members and contamination (001).

-- One row per indexed prompt or trace: its LSH band keys (little-endian
-- uint32 each) and its group.  Two items can be near duplicates only within
-- a group: traces of the same prompt (group = prompt id); prompts with the
-- same multiset of numbers (group = a hash of it), since numbers are
-- significant.
CREATE TABLE dedup_index (
  kind           TEXT NOT NULL CHECK (kind IN ('prompt', 'trace')),
  member_id      INTEGER NOT NULL,
  grp            INTEGER NOT NULL,
  bands          BLOB NOT NULL,
  PRIMARY KEY (kind, member_id)
) WITHOUT ROWID;

-- Per kind: the parameters the index was built with and the last id
-- processed.  Other parameters rebuild the index and the marks of that kind.
CREATE TABLE dedup_state (
  kind           TEXT PRIMARY KEY CHECK (kind IN ('prompt', 'trace')),
  params         TEXT NOT NULL,
  last_id        INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
) WITHOUT ROWID;

-- Per benchmark name: the file content and n-gram size its marks were made
-- with, and the last prompt id checked.  Another file or n re-checks all.
CREATE TABLE decontam_state (
  benchmark      TEXT PRIMARY KEY,
  sha256         TEXT NOT NULL,
  ngram          INTEGER NOT NULL,
  items          INTEGER NOT NULL,
  last_prompt_id INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
) WITHOUT ROWID;
