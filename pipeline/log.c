/* log.c - pluggable log sink (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static log_sink_fn *sink_fn;
static void *sink_ctx;
static enum log_level sink_min = LOG_INFO;

void log_set_sink(log_sink_fn *fn, void *ctx, enum log_level min)
{
	sink_fn = fn;
	sink_ctx = ctx;
	sink_min = min;
}

void logf_(enum log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!sink_fn || level < sink_min)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sink_fn(sink_ctx, level, msg);
}
