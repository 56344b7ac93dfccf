/* test_db.c - open, migrate, statements, errors, backup. */
#include "buf.h"
#include "db.h"
#include "schema.h"
#include "t.h"

#include <sys/wait.h>
#include <unistd.h>

/* A new database at dir/name built by migrations 001-003 only, the state
 * of a database made by an older distill. */
static struct db *open_at_v3(const char *dir, const char *name, char *path, size_t len)
{
	struct db *d = NULL;
	struct derr e = {0};
	snprintf(path, len, "%s/%s", dir, name);
	T_OK(db_open(&d, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	for (int i = 0; d && i < schema_migration_count && schema_migrations[i].version <= 3; i++)
		T_OK(db_exec(d, schema_migrations[i].sql, &e), &e);
	return d;
}

int main(void)
{
	char dir[256], path[512], bk[512];
	struct derr e = {0};
	struct db *db = NULL;
	int from = -1, to = -1, v = 0;

	t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);

	/* Missing file without CREATE: not found; unmigrated: schema error. */
	T_EQ_INT(db_open(&db, path, 0, &e), DERR_NOTFOUND);
	T_TRUE(db == NULL);
	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, &from, &to, &e), &e);
	T_EQ_INT(from, 0);
	T_EQ_INT(to, db_schema_latest());
	T_OK(db_migrate(db, &from, &to, &e), &e); /* twice changes nothing */
	T_EQ_INT(from, to);
	T_OK(db_user_version(db, &v, &e), &e);
	T_EQ_INT(v, db_schema_latest());
	db_close(db);

	T_OK(db_open(&db, path, 0, &e), &e);
	struct db_stmt *st;
	T_OK(db_prepare(db, "INSERT INTO meta(key, value) VALUES (?1, ?2)", &st, &e), &e);
	db_bind_text(st, 1, "k", -1);
	db_bind_text(st, 2, "v", -1);
	T_EQ_INT(db_step(st, &e), 0);
	db_reset(st);
	db_bind_text(st, 1, "k", -1);
	db_bind_text(st, 2, "again", -1);
	T_EQ_INT(db_step(st, &e), DERR_DB); /* primary key */
	db_finalize(st);

	int64_t n = 0;
	T_OK(db_query_int64(db, "SELECT COUNT(*) FROM queue_stats", &n, &e), &e);
	T_EQ_INT(n, 5);

	struct buf ic = BUF_INIT(1 << 16);
	T_OK(db_integrity_check(db, &ic, &e), &e);
	T_EQ_STR(buf_str(&ic), "ok");
	buf_release(&ic);

	snprintf(bk, sizeof(bk), "%s/backup.db", dir);
	T_OK(db_backup(db, bk, &e), &e);
	T_EQ_INT(db_backup(db, bk, &e), DERR_EXISTS);
	db_close(db);
	T_OK(db_open(&db, bk, DB_OPEN_READONLY, &e), &e);
	T_OK(db_query_int64(db, "SELECT COUNT(*) FROM meta", &n, &e), &e);
	T_EQ_INT(n, 1);
	db_close(db);

	/* Backup while another process writes: the copy is a consistent
	 * snapshot (integrity ok, rows of whole transactions only). */
	{
		char live[512], snap[512];
		struct db *w = NULL;
		pid_t pid;
		int status = 0;
		snprintf(live, sizeof(live), "%s/live.db", dir);
		snprintf(snap, sizeof(snap), "%s/snap.db", dir);
		T_OK(db_open(&w, live, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
		T_OK(db_migrate(w, NULL, NULL, &e), &e);
		T_OK(db_exec(w, "CREATE TABLE t(a, b); INSERT INTO t VALUES (0, zeroblob(4000))", &e), &e);
		db_close(w);
		pid = fork();
		if (pid == 0) {
			struct db *c = NULL;
			struct derr ce = {0};
			if (db_open(&c, live, 0, &ce))
				_exit(1);
			/* Each transaction adds a pair of rows: a snapshot has an odd count. */
			for (int i = 0; i < 400; i++)
				if (db_exec(c,
					    "BEGIN IMMEDIATE; INSERT INTO t VALUES (1, zeroblob(4000)); "
					    "INSERT INTO t VALUES (2, zeroblob(4000)); COMMIT",
					    &ce))
					_exit(2);
			db_close(c);
			_exit(0);
		}
		usleep(20000);
		T_OK(db_open(&w, live, 0, &e), &e);
		T_OK(db_backup(w, snap, &e), &e);
		db_close(w);
		waitpid(pid, &status, 0);
		T_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		T_OK(db_open(&w, snap, DB_OPEN_READONLY, &e), &e);
		if (w) {
			struct buf ic2 = BUF_INIT(1 << 16);
			T_OK(db_integrity_check(w, &ic2, &e), &e);
			T_EQ_STR(buf_str(&ic2), "ok");
			buf_release(&ic2);
			T_OK(db_query_int64(w, "SELECT COUNT(*) % 2 FROM t", &n, &e), &e);
			T_EQ_INT(n, 1);
			db_close(w);
		}
	}

	/* 004 rewrites the long CHECK IN lists as comparisons, in place: a
	 * database at version 3 with rows migrates, the rows stay valid, bad
	 * values are still refused, and a connection opened before the
	 * migration sees the new schema. */
	{
		char old[512];
		struct db *o = open_at_v3(dir, "v3.db", old, sizeof(old)), *other = NULL;
		T_OK(db_exec(o,
			     "PRAGMA user_version = 3;"
			     "INSERT INTO prompts(hash, norm_version, text, domain, created_at) "
			     "VALUES ('h', 1, 't', 'code', 0);"
			     "INSERT INTO profiles(name, created_at) VALUES ('p', 0);"
			     "INSERT INTO jobs(prompt_id, profile_id, sample_index, state, created_at, "
			     "updated_at) "
			     "VALUES (1, 1, 0, 'dead', 0, 0)",
			     &e),
		     &e);
		T_OK(db_open(&other, old, DB_OPEN_ANY_VERSION, &e), &e);
		T_OK(db_query_int64(other, "SELECT COUNT(*) FROM jobs", &n, &e), &e);
		T_OK(db_migrate(o, &from, &to, &e), &e);
		T_EQ_INT(from, 3);
		T_EQ_INT(to, db_schema_latest());
		T_OK(db_query_int64(other,
				    "SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('prompts', 'jobs', "
				    "'verdicts') "
				    "AND (sql LIKE '%domain IN (%' OR sql LIKE '%state IN (%')",
				    &n, &e),
		     &e);
		T_EQ_INT(n, 0);
		struct buf ic3 = BUF_INIT(1 << 16);
		T_OK(db_integrity_check(o, &ic3, &e), &e);
		T_EQ_STR(buf_str(&ic3), "ok");
		buf_release(&ic3);
		T_EQ_INT(db_exec(other, "UPDATE jobs SET state = 'lost'", &e), DERR_DB);
		T_EQ_INT(db_exec(o, "UPDATE prompts SET domain = 'poetry'", &e), DERR_DB);
		T_OK(db_exec(o, "UPDATE prompts SET domain = 'general'; UPDATE jobs SET state = 'queued'",
			     &e),
		     &e);
		db_close(other);
		db_close(o);
	}

	/* Across 004 (verdicts' state CHECK as comparisons), a database at
	 * version 3 keeps its verdict rows, the audit views still read them,
	 * and the checks refuse the same values as before. */
	{
		char old[512];
		struct db *m = open_at_v3(dir, "v3-verdicts.db", old, sizeof(old));
		T_OK(db_exec(m,
			     "PRAGMA user_version = 3;"
			     "INSERT INTO prompts(id, hash, norm_version, text, domain, created_at)"
			     " VALUES (1, 'h', 1, 'p', 'math', 0);"
			     "INSERT INTO profiles(id, name, created_at) VALUES (1, 'default', 0);"
			     "INSERT INTO jobs(id, prompt_id, profile_id, sample_index, state, created_at,"
			     " updated_at) VALUES (1, 1, 1, 0, 'done', 0, 0);"
			     "INSERT INTO traces(id, job_id, created_at, reasoning, answer)"
			     " VALUES (1, 1, 0, 'r', 'a');"
			     "INSERT INTO rulesets(id, hash, text, engine_version, checker_version,"
			     " is_current, created_at) VALUES (1, 'rs', 't', 'e', 'c', 1, 0);"
			     "INSERT INTO verdicts(trace_id, ruleset_id, rule, state, action, detail)"
			     " VALUES (1, 1, 'a', 'pass', 'reject', NULL), (1, 1, 'b', 'fail', 'flag', "
			     "'why'),"
			     " (1, 1, 'c', 'limit', 'reject', 'slow'), (1, 1, 'd', 'skip', 'reject', NULL);"
			     "INSERT INTO trace_outcomes(trace_id, ruleset_id, accepted, flagged, judged_at)"
			     " VALUES (1, 1, 0, 1, 0);",
			     &e),
		     &e);
		T_OK(db_migrate(m, &from, &to, &e), &e);
		T_EQ_INT(from, 3);
		T_EQ_INT(to, db_schema_latest());
		T_OK(db_query_int64(m, "SELECT COUNT(*) FROM verdicts", &n, &e), &e);
		T_EQ_INT(n, 4);
		T_OK(db_query_int64(m,
				    "SELECT COUNT(*) FROM verdicts WHERE rule = 'b' AND state = 'fail'"
				    " AND action = 'flag' AND detail = 'why'",
				    &n, &e),
		     &e);
		T_EQ_INT(n, 1);
		T_OK(db_query_int64(m, "SELECT SUM(evaluated) + 10 * SUM(rejected) FROM rule_stats", &n, &e),
		     &e);
		T_EQ_INT(n, 4 + 10 * 1);
		T_OK(db_query_int64(m, "SELECT json_array_length(failed_rules) FROM sample_audit", &n, &e),
		     &e);
		T_EQ_INT(n, 1);
		T_EQ_INT(db_exec(m,
				 "INSERT INTO verdicts(trace_id, ruleset_id, rule, state) VALUES (1, 1, 'e', "
				 "'ok')",
				 &e),
			 DERR_DB);
		T_EQ_INT(db_exec(m,
				 "INSERT INTO verdicts(trace_id, ruleset_id, rule, state, action)"
				 " VALUES (1, 1, 'e', 'pass', 'drop')",
				 &e),
			 DERR_DB);
		T_OK(db_exec(m,
			     "INSERT INTO verdicts(trace_id, ruleset_id, rule, state) VALUES (1, 1, 'e', "
			     "'skip')",
			     &e),
		     &e);
		struct buf ic3 = BUF_INIT(1 << 16);
		T_OK(db_integrity_check(m, &ic3, &e), &e);
		T_EQ_STR(buf_str(&ic3), "ok");
		buf_release(&ic3);
		db_close(m);
	}

	/* A file that is not a database. */
	snprintf(path, sizeof(path), "%s/junk.db", dir);
	FILE *f = fopen(path, "wb");
	fputs("this is not sqlite, just some bytes long enough to be a header......", f);
	fclose(f);
	T_EQ_INT(db_open(&db, path, 0, &e), DERR_CORRUPT);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	T_EQ_INT(system(cmd), 0);
	return t_done();
}
