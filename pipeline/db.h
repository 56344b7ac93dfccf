/*
 * db.h - the only module that touches SQLite.  It opens databases (WAL, busy
 * timeout, foreign keys), applies the embedded migrations, and wraps
 * statements so that other modules bind parameters and read columns without
 * seeing sqlite3.h.  SQLite result codes become DERR_* codes here:
 * SQLITE_FULL -> DERR_FULL, BUSY/LOCKED -> DERR_BUSY, READONLY -> DERR_READONLY,
 * CORRUPT/NOTADB -> DERR_CORRUPT, anything else -> DERR_DB.
 *
 * A connection belongs to one process and one thread: open it after fork().
 */
#ifndef DISTILL_DB_H
#define DISTILL_DB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct db;
struct db_stmt;
struct buf;

enum db_open_flags {
	DB_OPEN_CREATE = 1 << 0,      /* create the file if missing (distill init) */
	DB_OPEN_READONLY = 1 << 1,    /* analysts' and status reads */
	DB_OPEN_SYNC_FULL = 1 << 2,   /* synchronous=FULL instead of NORMAL */
	DB_OPEN_ANY_VERSION = 1 << 3, /* do not insist on the latest schema */
};

/* Open path.  Without DB_OPEN_CREATE a missing file is DERR_NOTFOUND.  Unless
 * DB_OPEN_ANY_VERSION, a schema older than this program is DERR_SCHEMA with a
 * message to run `distill init`, and a newer one is DERR_SCHEMA too.  On
 * failure *out is NULL and nothing was created. */
int db_open(struct db **out, const char *path, unsigned flags, struct derr *e);
void db_close(struct db *db); /* NULL is fine; finalizes nothing for you */

/* The latest schema version this program knows. */
int db_schema_latest(void);
int db_user_version(struct db *db, int *version, struct derr *e);

/* Apply every migration newer than the database, each in its own
 * transaction.  *from and *to (either may be NULL) receive the versions. */
int db_migrate(struct db *db, int *from, int *to, struct derr *e);

/* Run SQL without results (may hold several statements). */
int db_exec(struct db *db, const char *sql, struct derr *e);

/* Transactions.  begin_immediate takes the write lock up front (the queue
 * does this so that a claim never fails half-way on a lock upgrade). */
int db_begin(struct db *db, struct derr *e);
int db_begin_immediate(struct db *db, struct derr *e);
int db_commit(struct db *db, struct derr *e);
void db_rollback(struct db *db); /* safe when no transaction is open */

/* Statements.  Parameters are 1-based, columns 0-based. */
int db_prepare(struct db *db, const char *sql, struct db_stmt **out, struct derr *e);
void db_finalize(struct db_stmt *st); /* NULL is fine */

/* A statement prepared once per connection and kept, keyed by the address
 * of sql (pass a string constant).  It comes back reset with no bindings;
 * call db_reset() when done with it and never finalize it (db_close does). */
int db_prepare_cached(struct db *db, const char *sql, struct db_stmt **out, struct derr *e);
void db_reset(struct db_stmt *st); /* reset and clear bindings */
int db_bind_int64(struct db_stmt *st, int i, int64_t v);
int db_bind_double(struct db_stmt *st, int i, double v);
int db_bind_text(struct db_stmt *st, int i, const char *s, int n); /* n<0: strlen; NULL -> NULL */
/* As db_bind_text without a copy: s must stay unchanged until the statement
 * is reset (bulk writers binding buffers they own). */
int db_bind_text_ref(struct db_stmt *st, int i, const char *s, int n);
int db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n); /* NULL -> NULL */
int db_bind_null(struct db_stmt *st, int i);
/* Named parameter index, 0 if absent. */
int db_param_index(struct db_stmt *st, const char *name);

/* Step: 1 = a row is ready, 0 = done, <0 = error (e filled). */
int db_step(struct db_stmt *st, struct derr *e);

int db_column_count(struct db_stmt *st);
const char *db_column_name(struct db_stmt *st, int i);
int db_col_isnull(struct db_stmt *st, int i);
int64_t db_col_int64(struct db_stmt *st, int i);
double db_col_double(struct db_stmt *st, int i);
const char *db_col_text(struct db_stmt *st, int i); /* NULL for SQL NULL */
const void *db_col_blob(struct db_stmt *st, int i);
size_t db_col_bytes(struct db_stmt *st, int i);

int64_t db_last_rowid(struct db *db);
int64_t db_changes(struct db *db);

/* One-shot helpers: run sql (no params) and read the first column of the
 * first row; *out unchanged when there is no row. */
int db_query_int64(struct db *db, const char *sql, int64_t *out, struct derr *e);

/* PRAGMA integrity_check; "ok" or the problems, appended to out. */
int db_integrity_check(struct db *db, struct buf *out, struct derr *e);

/* Online backup to dest (a new file, written aside and renamed), safe while
 * other processes write. */
int db_backup(struct db *db, const char *dest, struct derr *e);

/* The path this connection was opened with. */
const char *db_path(struct db *db);

#endif
