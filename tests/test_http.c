/* test_http.c - Retry-After parsing and key redaction (the transfers
 * themselves are exercised against the simulator in test_worker). */
#include "t.h"

#include "http.h"
#include "worker.h"

int main(void)
{
	int64_t now = (int64_t)1445412480 * 1000; /* Wed, 21 Oct 2015 07:28:00 GMT */
	char body[] = "{\"echo\":\"Bearer sk-abc\",\"again\":\"sk-abcsk-abc\"}";
	size_t n = strlen(body);

	T_EQ_INT(http_parse_retry_after("5", now), 5000);
	T_EQ_INT(http_parse_retry_after("0", now), 0);
	T_EQ_INT(http_parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
	T_EQ_INT(http_parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
	T_EQ_INT(http_parse_retry_after("soon", now), -1);
	T_EQ_INT(http_parse_retry_after("", now), -1);
	T_EQ_INT(http_parse_retry_after(NULL, now), -1);

	T_EQ_INT(worker_redact(body, n, "sk-abc"), 3);
	T_EQ_STR(body, "{\"echo\":\"Bearer ******\",\"again\":\"************\"}");
	T_EQ_INT(worker_redact(body, n, ""), 0);
	T_EQ_INT(worker_redact(body, n, NULL), 0);
	T_EQ_INT(worker_redact(body, 3, "{\"echo"), 0); /* never past n */
	return t_done();
}
