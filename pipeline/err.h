/*
 * err.h - the one table of error codes, and an error struct that carries a
 * message.  Infrastructure: every module returns 0 or one of these negative
 * codes.  The codes are stored in the database (attempts, jobs), so a code is
 * never renumbered or reused: append new ones, each module in its own range.
 */
#ifndef DISTILL_ERR_H
#define DISTILL_ERR_H

#include <stddef.h>

/* X(name, value, short description).  Ranges: core -1..-29, http/worker
 * -30..-59, simulator -60..-79, rules/filter -80..-99, answer -100..-119,
 * dedup -120..-139, export/refresh -140..-159, trainer -160..-179. */
#define DERR_TABLE(X)                                                       \
	X(DERR_OK, 0, "ok")                                                 \
	X(DERR_IO, -1, "i/o error")                                         \
	X(DERR_DB, -2, "database error")                                    \
	X(DERR_PARSE, -3, "parse error")                                    \
	X(DERR_LIMIT, -4, "size or time limit reached")                     \
	X(DERR_INVALID, -5, "invalid argument")                             \
	X(DERR_NOTFOUND, -6, "not found")                                   \
	X(DERR_EXISTS, -7, "already exists")                                \
	X(DERR_FULL, -8, "disk full")                                       \
	X(DERR_CORRUPT, -9, "corrupt data")                                 \
	X(DERR_BUSY, -10, "busy or locked")                                 \
	X(DERR_UTF8, -11, "invalid UTF-8")                                  \
	X(DERR_SCHEMA, -12, "database schema is newer than this program")   \
	X(DERR_STALE, -13, "lease lost or job already done")                \
	X(DERR_ZSTD, -14, "compression error")                              \
	X(DERR_READONLY, -15, "read-only database or directory")            \
	X(DERR_INTERRUPTED, -16, "interrupted")                             \
	X(DERR_PROFILE, -17, "generation profile conflict")                 \
	X(DERR_HTTP_CONNECT, -30, "could not connect to the endpoint")      \
	X(DERR_HTTP_TIMEOUT, -31, "request timed out")                      \
	X(DERR_HTTP_STALL, -32, "response stalled")                         \
	X(DERR_HTTP_TOOBIG, -33, "response too large")                      \
	X(DERR_HTTP, -34, "HTTP transport error")                           \
	X(DERR_TEACHER_MALFORMED, -35, "malformed teacher response")        \
	X(DERR_BUDGET, -36, "budget reached")                               \
	X(DERR_PAUSED, -37, "every endpoint is paused")                     \
	X(DERR_CONFIG, -38, "invalid teacher config")                       \
	X(DERR_DEDUP_RACE, -120, "another dedup run changed the index")     \
	X(DERR_BENCH_EMPTY, -121, "benchmark file has no usable problems")  \
	X(DERR_TRAIN_CHECKSUM, -160, "shard checksum mismatch")             \
	X(DERR_TRAIN_MANIFEST, -161, "bad export manifest")                 \
	X(DERR_TRAIN_NOMASK, -162, "loss mask covers no token")             \
	X(DERR_TRAIN_CKPT, -163, "bad or truncated checkpoint")             \
	X(DERR_TRAIN_DIVERGED, -164, "training diverged (loss not finite)") \
	X(DERR_LOCKED, -140, "another refresh holds the lock")              \
	X(DERR_WITHHELD, -141, "publication withheld by the publish guard") \
	X(DERR_MISMATCH, -142, "export does not match its manifest")

enum derr_code {
#define DERR_ENUM(name, value, desc) name = value,
	DERR_TABLE(DERR_ENUM)
#undef DERR_ENUM
};

/* An error with a message.  Functions take a `struct derr *` that may be
 * NULL; on failure they fill it and return the (negative) code. */
struct derr {
	int code;
	char msg[512];
};

/* Set code and a printf-style message; returns code so callers can
 * `return derr_set(e, DERR_IO, "open %s: %s", path, strerror(errno));`. */
int derr_set(struct derr *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefix an existing message: "context: old message".  Returns e->code. */
int derr_wrap(struct derr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void derr_clear(struct derr *e);

/* Stable symbolic name ("DERR_IO") and description for a code; never NULL. */
const char *derr_name(int code);
const char *derr_desc(int code);

#endif
