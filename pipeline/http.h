/*
 * http.h - the only module that touches libcurl: an HTTP client that drives
 * many POST requests in flight at once (the multi interface), each with a
 * connect timeout, a total timeout, a stall timeout (the longest allowed gap
 * between received chunks) and a cap on the response size.  It captures the
 * status, Retry-After and x-request-id, and classifies transport failures
 * into DERR_HTTP_* codes.  It knows nothing of teachers or jobs: the worker
 * builds bodies and reads results.
 *
 * Single-threaded: one client per process, driven by http_run().
 */
#ifndef DISTILL_HTTP_H
#define DISTILL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct http_client;
struct http_headers;

/* Receives the body of a 2xx response as it arrives.  Return 0 to go on, or
 * a negative DERR_* code to abort the request with that error. */
typedef int http_data_fn(void *ctx, const char *p, size_t n);

struct http_req {
	/* Set by the caller; must stay valid until the request completes. */
	const char *url;
	const struct http_headers *headers; /* may be NULL */
	const char *extra_header;	    /* one more "Name: value" line; may be NULL */
	const char *post;		    /* POST body */
	size_t post_len;
	int64_t connect_timeout_ms; /* 0: libcurl's default */
	int64_t timeout_ms;	    /* total; 0: none */
	int64_t stall_ms;	    /* longest gap between chunks; 0: none */
	size_t max_bytes;	    /* response body cap; 0: unlimited */
	http_data_fn *on_data;	    /* NULL: a 2xx body is kept in .body */
	void *data_ctx;
	void *user; /* the caller's */

	/* Results, valid once http_run() hands the request back. */
	int status; /* HTTP status; 0 when no response came */
	int err;    /* 0, a DERR_HTTP_* code, or the code on_data returned */
	char errmsg[160];
	int64_t retry_after_ms; /* from Retry-After; -1 when absent */
	char request_id[96];	/* x-request-id, "" when absent */
	size_t bytes;		/* body bytes received */
	int64_t ms;		/* wall time of the request */
	struct buf body;	/* non-2xx bodies always; 2xx when on_data is NULL */

	/* Private to the client. */
	void *easy_;
	void *slist_;
	int64_t start_ns_, last_ns_;
	int too_big_, stalled_, cb_err_, status_seen_;
	struct http_req *next_, *prev_;
};

/* A fixed list of request headers ("Name: value" lines), built once and
 * shared by many requests.  The values may hold secrets (Authorization):
 * they are never copied into errors or logs. */
struct http_headers *http_headers_new(const char *const *lines, int n);
void http_headers_free(struct http_headers *h);

/* A client allowing up to max_host_conns connections per host.  Returns
 * 0 or DERR_HTTP. */
int http_client_new(struct http_client **out, int max_host_conns, struct derr *e);
void http_client_free(struct http_client *c); /* aborts requests in flight; NULL is fine */

/* Start a request.  The result fields of r are reset.  0 or DERR_HTTP. */
int http_add(struct http_client *c, struct http_req *r, struct derr *e);

/* Abort one request in flight without handing it back. */
void http_cancel(struct http_client *c, struct http_req *r);

/* Drive transfers, waiting up to wait_ms for activity, and hand back up to
 * max completed requests in done[] (*ndone).  Stalled requests complete with
 * DERR_HTTP_STALL.  Returns 0 or DERR_HTTP. */
int http_run(struct http_client *c, int wait_ms, struct http_req **done, int max, int *ndone, struct derr *e);

/* Requests in flight. */
int http_inflight(const struct http_client *c);

/* Release the result buffer of a completed request (it may be reused). */
void http_req_release(struct http_req *r);

/* Parse a Retry-After value (seconds or an HTTP date) into milliseconds from
 * now_ms; -1 when it cannot be parsed. */
int64_t http_parse_retry_after(const char *v, int64_t now_ms);

#endif
