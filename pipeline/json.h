/*
 * json.h - the one include of cJSON, plus the few helpers every module
 * wants: typed getters that tolerate a missing key, and number formatting in
 * the shortest form that reads back to the same double.
 */
#ifndef DISTILL_JSON_H
#define DISTILL_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

struct buf;

/* Parse n bytes (not necessarily NUL-terminated).  NULL on error. */
cJSON *json_parse(const char *p, size_t n);

/* String value of key, or NULL when absent or not a string. */
const char *json_get_str(const cJSON *obj, const char *key);
/* Number value of key into *out; 0 on success, -1 when absent/not a number. */
int json_get_num(const cJSON *obj, const char *key, double *out);

/* Shortest round-trip text of a double ("0.1", "42", "1e+21"). */
void json_num_str(double v, char *out, size_t len);

/* Append s as a JSON string literal (quoted, escaped) to out. */
int json_append_str(struct buf *out, const char *s, size_t n);

#endif
