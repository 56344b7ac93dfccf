/* err.c - error codes table and messages (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	int code;
	const char *name;
	const char *desc;
} derr_tab[] = {
#define DERR_ROW(name, value, desc) {value, #name, desc},
	DERR_TABLE(DERR_ROW)
#undef DERR_ROW
};

int derr_set(struct derr *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int derr_wrap(struct derr *e, const char *fmt, ...)
{
	char prefix[256], old[sizeof(e->msg)];
	va_list ap;

	if (!e)
		return DERR_INVALID;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* Truncation of an over-long message is acceptable. */
	size_t n = strlen(prefix);
	if (n > sizeof(e->msg) - 3)
		n = sizeof(e->msg) - 3;
	memcpy(e->msg, prefix, n);
	memcpy(e->msg + n, ": ", 2);
	size_t rest = sizeof(e->msg) - n - 3;
	size_t olen = strnlen(old, rest);
	memcpy(e->msg + n + 2, old, olen);
	e->msg[n + 2 + olen] = '\0';
	return e->code;
}

void derr_clear(struct derr *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}

const char *derr_name(int code)
{
	for (size_t i = 0; i < sizeof(derr_tab) / sizeof(derr_tab[0]); i++)
		if (derr_tab[i].code == code)
			return derr_tab[i].name;
	return "DERR_UNKNOWN";
}

const char *derr_desc(int code)
{
	for (size_t i = 0; i < sizeof(derr_tab) / sizeof(derr_tab[0]); i++)
		if (derr_tab[i].code == code)
			return derr_tab[i].desc;
	return "unknown error";
}
