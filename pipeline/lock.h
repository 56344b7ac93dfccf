/*
 * lock.h - the refresh lock: an exclusive flock(2) on `<db>.lock`, so two
 * cron refreshes never run at once (DESIGN §11).  The kernel drops the lock
 * when the process dies, even by SIGKILL, so a stale lock cannot outlive
 * its holder.  Infrastructure for cmd/ (refresh).
 */
#ifndef DISTILL_LOCK_H
#define DISTILL_LOCK_H

#include "err.h"

struct lock;

/* Take the lock of the database at db_path without waiting.  DERR_LOCKED
 * when another process holds it (the message names the lock file and, when
 * known, the holder's pid); DERR_IO when the lock file cannot be opened.
 * *out is NULL on failure. */
int lock_open(struct lock **out, const char *db_path, struct derr *e);

/* Release and free (NULL is fine).  The lock file stays: removing it would
 * let a waiter lock an unlinked inode. */
void lock_close(struct lock *l);

#endif
