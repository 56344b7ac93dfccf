/* json.c - cJSON helpers (see json.h). */
#include "json.h"
#include "buf.h"
#include "err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *json_parse(const char *p, size_t n)
{
	return cJSON_ParseWithLength(p, n);
}

const char *json_get_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int json_get_num(const cJSON *obj, const char *key, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(v))
		return -1;
	*out = v->valuedouble;
	return 0;
}

void json_num_str(double v, char *out, size_t len)
{
	if (!isfinite(v)) {
		snprintf(out, len, "null");
		return;
	}
	if (fabs(v) < 1e15 && v == (double)(long long)v) { /* range first: the cast is UB outside it */
		snprintf(out, len, "%lld", (long long)v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, len, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

int json_append_str(struct buf *out, const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	int rc = buf_putc(out, '"');
	size_t run = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		default:
			memcpy(u, "\\u00", 4);
			u[4] = hx[c >> 4];
			u[5] = hx[c & 15];
			u[6] = '\0';
			esc = u;
		}
		rc = buf_append(out, s + run, i - run);
		if (!rc)
			rc = buf_puts(out, esc);
		run = i + 1;
	}
	if (!rc)
		rc = buf_append(out, s + run, n - run);
	if (!rc)
		rc = buf_putc(out, '"');
	return rc ? DERR_LIMIT : 0;
}
