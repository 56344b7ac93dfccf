-- 002_ingest.sql: an occurrence of a prompt is its place in a file (the
-- file's SHA-256 and line), so reading a file again adds no prompt_sources
-- rows: ingest inserts with OR IGNORE and an interrupted ingest can simply
-- be rerun.  Occurrences without a file (imported one by one) are not
-- constrained.
CREATE UNIQUE INDEX prompt_sources_occurrence
  ON prompt_sources(file_sha256, line, prompt_id) WHERE file_sha256 IS NOT NULL;
