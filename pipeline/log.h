/*
 * log.h - the library never prints: it reports through a sink that the
 * command installs (stderr for the CLI, nothing in tests).  Infrastructure.
 */
#ifndef DISTILL_LOG_H
#define DISTILL_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

typedef void log_sink_fn(void *ctx, enum log_level level, const char *msg);

/* Install a sink (NULL: discard).  Not thread-safe against concurrent logs. */
void log_set_sink(log_sink_fn *fn, void *ctx, enum log_level min);

void logf_(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) logf_(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) logf_(LOG_INFO, __VA_ARGS__)
#define log_warn(...) logf_(LOG_WARN, __VA_ARGS__)
#define log_error(...) logf_(LOG_ERROR, __VA_ARGS__)

#endif
