/*
 * cli.h - what every command shares: exit codes, the stderr log sink, the
 * database path (--db, $DISTILL_DB, distill.db), and error reporting.  The
 * face of the project: only cmd/ prints or exits.
 */
#ifndef DISTILL_CLI_H
#define DISTILL_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "err.h"

/* Exit codes (DESIGN §13). */
enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_PARTIAL = 3,
	EXIT_LOCKED = 75,
};

struct db;

/* Program name for messages ("distill", "distill-teacher-sim", ...). */
extern const char *cli_prog;

/* Route the library's log to stderr ("distill: warning: ..."); verbose adds debug. */
void cli_log_init(int verbose);

/* Print "PROG: message" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a library error as one line; returns EXIT_ERROR. */
int cli_fail(const struct derr *e);

/* Usage error: print the message and a hint to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Exactly one operand after the options (getopt's optind): *out gets it
 * and 0 is returned; otherwise a usage error ("missing" when there is
 * none, the first extra one otherwise) and EXIT_USAGE. */
int cli_one_operand(const char *cmd, int argc, char **argv, const char *missing, const char **out);

/* The database path: the --db value if given, else $DISTILL_DB, else "distill.db". */
const char *cli_db_path(const char *opt);

/* Open the database for a command (schema must be current).  Prints the
 * error and returns NULL on failure. */
struct db *cli_open_db(const char *path, unsigned flags);

/* Is stderr a terminal (live progress line) or a log (periodic lines)? */
int cli_stderr_is_tty(void);

/* The common long option every command takes. */
#define CLI_OPT_DB                                 \
	{                                          \
		"db", required_argument, NULL, 'D' \
	}
#define CLI_OPT_HELP                           \
	{                                      \
		"help", no_argument, NULL, 'h' \
	}

#endif
