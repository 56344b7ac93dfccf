/* db.c - SQLite wrapper and migrations (see db.h). */
#include "db.h"
#include "buf.h"
#include "schema.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DB_STMT_CACHE 64

struct db {
	sqlite3 *h;
	char *path;
	struct {
		const char *key;
		sqlite3_stmt *st;
	} cache[DB_STMT_CACHE];
	int ncache;
};

/* sqlite3_stmt is used directly as our opaque db_stmt. */
#define ST(s) ((sqlite3_stmt *)(s))

static int map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE: return 0;
	case SQLITE_FULL: return DERR_FULL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return DERR_BUSY;
	case SQLITE_READONLY: return DERR_READONLY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return DERR_CORRUPT;
	case SQLITE_CANTOPEN: return DERR_IO;
	case SQLITE_IOERR: return DERR_IO;
	default: return DERR_DB;
	}
}

static int db_fail(sqlite3 *h, int rc, struct derr *e, const char *what)
{
	int code = map_rc(rc);
	const char *msg = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
	if (code == DERR_FULL)
		msg = "disk full (database or disk is full)";
	else if (code == DERR_CORRUPT)
		msg = "file is not a database or is corrupt";
	else if (code == DERR_READONLY)
		msg = "read-only database or directory (SQLite writes the database and its -wal and -shm "
		      "files beside it)";
	/* SQLite reports a failed write (ENOSPC aside) as a bare I/O error and
	 * the errno is gone by now: name the usual causes in the one line. */
	if (code == DERR_IO && rc != SQLITE_CANTOPEN)
		return derr_set(e, code, "%s: %s (out of space, over a file-size limit, or a device error)",
				what, msg);
	return derr_set(e, code, "%s: %s", what, msg);
}

int db_schema_latest(void)
{
	return schema_migration_count ? schema_migrations[schema_migration_count - 1].version : 0;
}

const char *db_path(struct db *db)
{
	return db->path;
}

int db_exec(struct db *db, const char *sql, struct derr *e)
{
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return db_fail(db->h, rc, e, "sql");
	return 0;
}

int db_user_version(struct db *db, int *version, struct derr *e)
{
	int64_t v = 0;
	int rc = db_query_int64(db, "PRAGMA user_version", &v, e);
	if (rc)
		return rc;
	*version = (int)v;
	return 0;
}

/* Library-wide settings, made once before SQLite initialises: no memory
 * statistics (nobody reads them, and keeping them takes a global mutex on
 * every allocation: a few percent of a bulk ingest). */
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void db_config(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int db_open(struct db **out, const char *path, unsigned flags, struct derr *e)
{
	struct db *db = NULL;
	int oflags, rc, ver = 0;
	char pragmas[256];

	*out = NULL;
	if (!(flags & DB_OPEN_CREATE) && access(path, F_OK) != 0)
		return derr_set(e, DERR_NOTFOUND, "%s: no such database (create it with `distill init`)",
				path);

	if (flags & DB_OPEN_READONLY)
		oflags = SQLITE_OPEN_READONLY;
	else
		oflags = SQLITE_OPEN_READWRITE | ((flags & DB_OPEN_CREATE) ? SQLITE_OPEN_CREATE : 0);
	oflags |= SQLITE_OPEN_NOMUTEX;

	pthread_once(&config_once, db_config);
	db = xcalloc(1, sizeof(*db));
	db->path = xstrdup(path);
	rc = sqlite3_open_v2(path, &db->h, oflags, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(db->h, rc, e, path);
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 0);
	sqlite3_busy_timeout(db->h, 30000);

	/* The first real read tells a corrupt file from a database. */
	rc = db_user_version(db, &ver, e);
	if (rc) {
		derr_wrap(e, "%s", path);
		goto fail;
	}
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA foreign_keys=ON; PRAGMA synchronous=%s; PRAGMA temp_store=MEMORY;",
		 (flags & DB_OPEN_SYNC_FULL) ? "FULL" : "NORMAL");
	rc = db_exec(db, pragmas, e);
	if (rc)
		goto fail;
	if (!(flags & DB_OPEN_READONLY)) {
		rc = db_exec(db, "PRAGMA journal_mode=WAL;", e);
		if (rc) {
			derr_wrap(e, "%s", path);
			goto fail;
		}
	}
	if (!(flags & DB_OPEN_ANY_VERSION)) {
		if (ver > db_schema_latest()) {
			rc = derr_set(
				e, DERR_SCHEMA,
				"%s: schema version %d is newer than this program (%d); upgrade distill",
				path, ver, db_schema_latest());
			goto fail;
		}
		if (ver < db_schema_latest()) {
			rc = derr_set(e, DERR_SCHEMA,
				      ver == 0 ? "%s: not initialised (run `distill init`)"
					       : "%s: schema version is older than this program (run "
						 "`distill init` to migrate)",
				      path);
			goto fail;
		}
	}
	*out = db;
	return 0;
fail:
	sqlite3_close(db->h);
	free(db->path);
	free(db);
	return rc;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < db->ncache; i++)
		sqlite3_finalize(db->cache[i].st);
	sqlite3_close_v2(db->h);
	free(db->path);
	free(db);
}

int db_migrate(struct db *db, int *from, int *to, struct derr *e)
{
	int ver = 0, rc;
	int64_t sv = 0;
	char sql[96];

	rc = db_user_version(db, &ver, e);
	if (rc)
		return rc;
	if (from)
		*from = ver;
	if (ver > db_schema_latest())
		return derr_set(e, DERR_SCHEMA, "schema version %d is newer than this program (%d)", ver,
				db_schema_latest());
	for (int i = 0; i < schema_migration_count; i++) {
		const struct schema_migration *m = &schema_migrations[i];
		if (m->version <= ver)
			continue;
		rc = db_begin_immediate(db, e);
		if (rc)
			return rc;
		rc = db_exec(db, m->sql, e);
		/* A migration may edit sqlite_schema directly (004): a new
		 * schema_version makes every other connection reread it. */
		if (!rc)
			rc = db_query_int64(db, "PRAGMA schema_version", &sv, e);
		if (!rc) {
			snprintf(sql, sizeof(sql), "PRAGMA schema_version=%lld; PRAGMA user_version=%d",
				 (long long)sv + 1, m->version);
			rc = db_exec(db, sql, e);
		}
		if (!rc)
			rc = db_commit(db, e);
		if (rc) {
			db_rollback(db);
			return derr_wrap(e, "migration %s", m->name);
		}
		ver = m->version;
	}
	if (to)
		*to = ver;
	return 0;
}

int db_begin(struct db *db, struct derr *e)
{
	return db_exec(db, "BEGIN", e);
}

int db_begin_immediate(struct db *db, struct derr *e)
{
	return db_exec(db, "BEGIN IMMEDIATE", e);
}

int db_commit(struct db *db, struct derr *e)
{
	return db_exec(db, "COMMIT", e);
}

void db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

int db_prepare(struct db *db, const char *sql, struct db_stmt **out, struct derr *e)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		*out = NULL;
		return db_fail(db->h, rc, e, "prepare");
	}
	*out = (struct db_stmt *)st;
	return 0;
}

int db_prepare_cached(struct db *db, const char *sql, struct db_stmt **out, struct derr *e)
{
	int rc;

	for (int i = 0; i < db->ncache; i++) {
		if (db->cache[i].key == sql) {
			sqlite3_reset(db->cache[i].st);
			sqlite3_clear_bindings(db->cache[i].st);
			*out = (struct db_stmt *)db->cache[i].st;
			return 0;
		}
	}
	if (db->ncache == DB_STMT_CACHE)
		return derr_set(e, DERR_DB, "statement cache full (raise DB_STMT_CACHE)");
	rc = db_prepare(db, sql, out, e);
	if (rc)
		return rc;
	db->cache[db->ncache].key = sql;
	db->cache[db->ncache].st = ST(*out);
	db->ncache++;
	return 0;
}

void db_finalize(struct db_stmt *st)
{
	if (st)
		sqlite3_finalize(ST(st));
}

void db_reset(struct db_stmt *st)
{
	sqlite3_reset(ST(st));
	sqlite3_clear_bindings(ST(st));
}

int db_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	return map_rc(sqlite3_bind_int64(ST(st), i, v));
}

int db_bind_double(struct db_stmt *st, int i, double v)
{
	return map_rc(sqlite3_bind_double(ST(st), i, v));
}

int db_bind_text(struct db_stmt *st, int i, const char *s, int n)
{
	if (!s)
		return map_rc(sqlite3_bind_null(ST(st), i));
	return map_rc(sqlite3_bind_text(ST(st), i, s, n, SQLITE_TRANSIENT));
}

int db_bind_text_ref(struct db_stmt *st, int i, const char *s, int n)
{
	if (!s)
		return map_rc(sqlite3_bind_null(ST(st), i));
	return map_rc(sqlite3_bind_text(ST(st), i, s, n, SQLITE_STATIC));
}

int db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
	if (!p)
		return map_rc(sqlite3_bind_null(ST(st), i));
	return map_rc(sqlite3_bind_blob64(ST(st), i, p, n, SQLITE_TRANSIENT));
}

int db_bind_null(struct db_stmt *st, int i)
{
	return map_rc(sqlite3_bind_null(ST(st), i));
}

int db_param_index(struct db_stmt *st, const char *name)
{
	return sqlite3_bind_parameter_index(ST(st), name);
}

int db_step(struct db_stmt *st, struct derr *e)
{
	int rc = sqlite3_step(ST(st));
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_fail(sqlite3_db_handle(ST(st)), rc, e, "sql");
}

int db_column_count(struct db_stmt *st)
{
	return sqlite3_column_count(ST(st));
}

const char *db_column_name(struct db_stmt *st, int i)
{
	return sqlite3_column_name(ST(st), i);
}

int db_col_isnull(struct db_stmt *st, int i)
{
	return sqlite3_column_type(ST(st), i) == SQLITE_NULL;
}

int64_t db_col_int64(struct db_stmt *st, int i)
{
	return sqlite3_column_int64(ST(st), i);
}

double db_col_double(struct db_stmt *st, int i)
{
	return sqlite3_column_double(ST(st), i);
}

const char *db_col_text(struct db_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(ST(st), i);
}

const void *db_col_blob(struct db_stmt *st, int i)
{
	return sqlite3_column_blob(ST(st), i);
}

size_t db_col_bytes(struct db_stmt *st, int i)
{
	return (size_t)sqlite3_column_bytes(ST(st), i);
}

int64_t db_last_rowid(struct db *db)
{
	return sqlite3_last_insert_rowid(db->h);
}

int64_t db_changes(struct db *db)
{
	return sqlite3_changes64(db->h);
}

int db_query_int64(struct db *db, const char *sql, int64_t *out, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, sql, &st, e);
	if (rc)
		return rc;
	rc = db_step(st, e);
	if (rc == 1) {
		*out = db_col_int64(st, 0);
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

int db_integrity_check(struct db *db, struct buf *out, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, "PRAGMA integrity_check", &st, e);
	if (rc)
		return rc;
	while ((rc = db_step(st, e)) == 1) {
		const char *t = db_col_text(st, 0);
		if (out->len)
			buf_putc(out, '\n');
		buf_puts(out, t ? t : "");
	}
	db_finalize(st);
	return rc;
}

int db_backup(struct db *db, const char *dest, struct derr *e)
{
	char tmp[4096];
	sqlite3 *dh = NULL;
	sqlite3_backup *bk;
	int rc;

	if (access(dest, F_OK) == 0)
		return derr_set(e, DERR_EXISTS, "%s: already exists", dest);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", dest, (long)getpid()) >= sizeof(tmp))
		return derr_set(e, DERR_INVALID, "backup path too long");
	rc = sqlite3_open_v2(tmp, &dh, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(dh, rc, e, tmp);
		sqlite3_close(dh);
		return rc;
	}
	bk = sqlite3_backup_init(dh, "main", db->h, "main");
	if (!bk) {
		rc = db_fail(dh, sqlite3_errcode(dh), e, "backup");
		goto out;
	}
	/* Copy in steps so writers are not starved; a write by another
	 * connection restarts the copy, which is what keeps it consistent. */
	do {
		rc = sqlite3_backup_step(bk, 256);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			sqlite3_sleep(20);
	} while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
	sqlite3_backup_finish(bk);
	if (rc != SQLITE_DONE) {
		rc = db_fail(dh, rc, e, "backup");
		goto out;
	}
	/* A backup is a single self-contained file: leave WAL mode. */
	rc = sqlite3_exec(dh, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = db_fail(dh, rc, e, "backup");
		goto out;
	}
out:
	sqlite3_close(dh);
	if (rc == 0 && rename(tmp, dest) != 0)
		rc = derr_set(e, DERR_IO, "rename %s: %s", dest, strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}
