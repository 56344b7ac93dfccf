/* cli.c - shared command-line plumbing (see cli.h). */
#include "cli.h"
#include "db.h"
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

const char *cli_prog = "distill";

static void stderr_sink(void *ctx, enum log_level level, const char *msg)
{
	static const char *prefix[] = {"debug: ", "", "warning: ", "error: "};
	(void)ctx;
	fprintf(stderr, "%s: %s%s\n", cli_prog, prefix[level], msg);
}

void cli_log_init(int verbose)
{
	log_set_sink(stderr_sink, NULL, verbose ? LOG_DEBUG : LOG_INFO);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_fail(const struct derr *e)
{
	cli_error("%s", e->msg[0] ? e->msg : derr_desc(e->code));
	return EXIT_ERROR;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s%s%s --help'.\n", cli_prog, cmd ? " " : "", cmd ? cmd : "");
	return EXIT_USAGE;
}

int cli_one_operand(const char *cmd, int argc, char **argv, const char *missing, const char **out)
{
	if (optind >= argc)
		return cli_usage_error(cmd, "%s", missing);
	if (optind + 1 < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
	*out = argv[optind];
	return 0;
}

const char *cli_db_path(const char *opt)
{
	const char *env;
	if (opt)
		return opt;
	env = getenv("DISTILL_DB");
	return env && *env ? env : "distill.db";
}

struct db *cli_open_db(const char *path, unsigned flags)
{
	struct db *db = NULL;
	struct derr e = {0};
	if (db_open(&db, path, flags, &e)) {
		cli_fail(&e);
		return NULL;
	}
	return db;
}

int cli_stderr_is_tty(void)
{
	return isatty(STDERR_FILENO);
}
