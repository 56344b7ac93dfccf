-- 004_checks.sql: the CHECK constraints whose IN lists have three values or
-- more are written as chains of comparisons.  SQLite evaluates such an IN
-- list by building a temporary b-tree at every row written, which cost about
-- a fifth of ingest's CPU time (prompts.domain, jobs.state) and weighs on
-- every claim and every verdict row.  The two forms accept exactly the same
-- values, so the stored rows stay valid and only the schema text changes:
-- SQLite's documented procedure for changing a constraint without rebuilding
-- the table (the migration runner then bumps schema_version, so that other
-- connections reread the schema).
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (domain IN (''math'', ''code'', ''general''))',
                     'CHECK (domain = ''math'' OR domain = ''code'' OR domain = ''general'')')
 WHERE type = 'table' AND name = 'prompts';
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (state IN (''queued'', ''leased'', ''done'', ''failed'', ''dead''))',
                     'CHECK (state = ''queued'' OR state = ''leased'' OR state = ''done'' OR '
                     || 'state = ''failed'' OR state = ''dead'')')
 WHERE type = 'table' AND name = 'jobs';
UPDATE sqlite_schema
   SET sql = replace(sql, 'CHECK (state IN (''pass'', ''fail'', ''limit'', ''skip''))',
                     'CHECK (state = ''pass'' OR state = ''fail'' OR state = ''limit'' OR state = ''skip'')')
 WHERE type = 'table' AND name = 'verdicts';
PRAGMA writable_schema = OFF;
