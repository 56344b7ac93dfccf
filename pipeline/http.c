/* http.c - libcurl multi client (see http.h). */
#include "http.h"
#include "util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_headers {
	struct curl_slist *list;
};

struct http_client {
	CURLM *multi;
	CURL **pool; /* idle easy handles, reused so their settings and buffers are */
	int npool, cappool;
	struct http_req *head; /* in flight */
	int inflight;
};

static struct curl_slist *slist_add(struct curl_slist *l, const char *line)
{
	struct curl_slist *n = curl_slist_append(l, line);
	if (!n)
		abort(); /* only fails on out-of-memory */
	return n;
}

struct http_headers *http_headers_new(const char *const *lines, int n)
{
	struct http_headers *h = xcalloc(1, sizeof(*h));
	for (int i = 0; i < n; i++)
		h->list = slist_add(h->list, lines[i]);
	return h;
}

void http_headers_free(struct http_headers *h)
{
	if (!h)
		return;
	curl_slist_free_all(h->list);
	free(h);
}

int http_client_new(struct http_client **out, int max_host_conns, struct derr *e)
{
	static int global_done;
	struct http_client *c;

	*out = NULL;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return derr_set(e, DERR_HTTP, "libcurl initialisation failed");
		global_done = 1;
	}
	c = xcalloc(1, sizeof(*c));
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		return derr_set(e, DERR_HTTP, "libcurl multi handle failed");
	}
	if (max_host_conns > 0)
		curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_host_conns);
	/* Keep a warm connection per request slot: reconnecting costs more than the request. */
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
			  (long)(max_host_conns > 0 ? max_host_conns * 2 : 64));
	*out = c;
	return 0;
}

static void unlink_req(struct http_client *c, struct http_req *r)
{
	if (r->prev_)
		r->prev_->next_ = r->next_;
	else
		c->head = r->next_;
	if (r->next_)
		r->next_->prev_ = r->prev_;
	r->next_ = r->prev_ = NULL;
	c->inflight--;
}

static void put_easy(struct http_client *c, CURL *easy)
{
	if (c->npool == c->cappool) {
		c->cappool = c->cappool ? c->cappool * 2 : 16;
		c->pool = xrealloc(c->pool, (size_t)c->cappool * sizeof(*c->pool));
	}
	c->pool[c->npool++] = easy;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	while (c->head) {
		struct http_req *r = c->head;
		curl_multi_remove_handle(c->multi, r->easy_);
		curl_easy_cleanup(r->easy_);
		r->easy_ = NULL;
		curl_slist_free_all(r->slist_);
		r->slist_ = NULL;
		unlink_req(c, r);
	}
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	free(c->pool);
	curl_multi_cleanup(c->multi);
	free(c);
}

int http_inflight(const struct http_client *c)
{
	return c->inflight;
}

void http_req_release(struct http_req *r)
{
	buf_release(&r->body);
}

/* The status is known once headers are in; read it before the first body byte. */
static void see_status(struct http_req *r)
{
	long code = 0;
	if (r->status_seen_)
		return;
	curl_easy_getinfo(r->easy_, CURLINFO_RESPONSE_CODE, &code);
	r->status = (int)code;
	r->status_seen_ = 1;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct http_req *r = ud;
	size_t n = size * nmemb;

	see_status(r);
	r->last_ns_ = mono_ns();
	if (r->max_bytes && r->bytes + n > r->max_bytes) {
		r->too_big_ = 1;
		return 0;
	}
	r->bytes += n;
	if (r->on_data && r->status >= 200 && r->status < 300) {
		int rc = r->on_data(r->data_ctx, p, n);
		if (rc) {
			r->cb_err_ = rc;
			return 0;
		}
		return n;
	}
	if (buf_append(&r->body, p, n)) {
		r->too_big_ = 1;
		return 0;
	}
	return n;
}

/* Copy a header value (trimmed) into out when the line is "name: value". */
static int header_value(const char *p, size_t n, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), i, j;
	if (n <= nl || p[nl] != ':' || strncasecmp(p, name, nl) != 0)
		return 0;
	i = nl + 1;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	j = n;
	while (j > i && isspace((unsigned char)p[j - 1]))
		j--;
	if (j - i >= outlen)
		j = i + outlen - 1;
	memcpy(out, p + i, j - i);
	out[j - i] = '\0';
	return 1;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct http_req *r = ud;
	size_t n = size * nmemb;
	char v[96];

	r->last_ns_ = mono_ns();
	if (n >= 5 && !memcmp(p, "HTTP/", 5)) {
		/* A new response (after a 100 Continue, or a redirect): forget the old headers. */
		r->retry_after_ms = -1;
		r->request_id[0] = '\0';
		return n;
	}
	if (header_value(p, n, "retry-after", v, sizeof(v)))
		r->retry_after_ms = http_parse_retry_after(v, now_ms());
	else if (header_value(p, n, "x-request-id", v, sizeof(v)))
		snprintf(r->request_id, sizeof(r->request_id), "%s", v);
	return n;
}

int http_add(struct http_client *c, struct http_req *r, struct derr *e)
{
	CURL *easy = c->npool ? c->pool[--c->npool] : curl_easy_init();
	size_t cap = r->max_bytes ? r->max_bytes : (size_t)1 << 30;

	if (!easy)
		return derr_set(e, DERR_HTTP, "libcurl easy handle failed");
	r->status = 0;
	r->err = 0;
	r->errmsg[0] = '\0';
	r->retry_after_ms = -1;
	r->request_id[0] = '\0';
	r->bytes = 0;
	r->ms = 0;
	buf_release(&r->body);
	buf_init(&r->body, cap);
	r->too_big_ = r->stalled_ = r->cb_err_ = r->status_seen_ = 0;
	r->easy_ = easy;

	curl_easy_setopt(easy, CURLOPT_URL, r->url);
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r->post);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->post_len);
	r->slist_ = NULL;
	if (r->extra_header) {
		/* Per-request header: a private copy of the shared list plus one line. */
		struct curl_slist *l = NULL;
		for (struct curl_slist *s = r->headers ? r->headers->list : NULL; s; s = s->next)
			l = slist_add(l, s->data);
		r->slist_ = slist_add(l, r->extra_header);
	}
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER,
			 r->slist_    ? r->slist_
			 : r->headers ? r->headers->list
				      : NULL);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
	/* The teacher's reply is never compressed on loopback, and "Expect: 100-continue"
	 * would cost a round trip on large bodies. */
	curl_easy_setopt(easy, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);

	r->start_ns_ = r->last_ns_ = mono_ns();
	if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
		put_easy(c, easy);
		r->easy_ = NULL;
		return derr_set(e, DERR_HTTP, "libcurl refused a request");
	}
	r->prev_ = NULL;
	r->next_ = c->head;
	if (c->head)
		c->head->prev_ = r;
	c->head = r;
	c->inflight++;
	return 0;
}

static void finish_req(struct http_client *c, struct http_req *r)
{
	curl_multi_remove_handle(c->multi, r->easy_);
	put_easy(c, r->easy_);
	r->easy_ = NULL;
	curl_slist_free_all(r->slist_);
	r->slist_ = NULL;
	unlink_req(c, r);
	r->ms = (mono_ns() - r->start_ns_) / 1000000;
}

void http_cancel(struct http_client *c, struct http_req *r)
{
	if (!r->easy_)
		return;
	finish_req(c, r);
}

/* Map libcurl's result for a finished transfer to our code and message.
 * The URL and headers never go into the message (they may carry secrets). */
static void classify(struct http_req *r, CURLcode cc)
{
	curl_off_t connect_us = 0;

	if (r->stalled_) {
		r->err = DERR_HTTP_STALL;
		snprintf(r->errmsg, sizeof(r->errmsg), "no data for %lld ms", (long long)r->stall_ms);
		return;
	}
	if (cc == CURLE_OK) {
		see_status(r);
		return;
	}
	if (r->too_big_) {
		r->err = DERR_HTTP_TOOBIG;
		snprintf(r->errmsg, sizeof(r->errmsg), "response larger than %zu bytes", r->max_bytes);
		return;
	}
	if (r->cb_err_) {
		r->err = r->cb_err_;
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", derr_desc(r->cb_err_));
		return;
	}
	curl_easy_getinfo(r->easy_, CURLINFO_CONNECT_TIME_T, &connect_us);
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT: r->err = DERR_HTTP_CONNECT; break;
	case CURLE_OPERATION_TIMEDOUT:
		/* Never connected: the endpoint is unreachable, not slow. */
		r->err = connect_us == 0 ? DERR_HTTP_CONNECT : DERR_HTTP_TIMEOUT;
		break;
	default: r->err = DERR_HTTP; break;
	}
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", curl_easy_strerror(cc));
}

static void collect(struct http_client *c, struct http_req **done, int max, int *ndone)
{
	CURLMsg *m;
	int left = 0;

	while (*ndone < max && (m = curl_multi_info_read(c->multi, &left))) {
		struct http_req *r = NULL;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		classify(r, m->data.result);
		finish_req(c, r);
		done[(*ndone)++] = r;
	}
}

int http_run(struct http_client *c, int wait_ms, struct http_req **done, int max, int *ndone, struct derr *e)
{
	int running = 0;
	CURLMcode mc;

	*ndone = 0;
	mc = curl_multi_perform(c->multi, &running);
	if (mc != CURLM_OK)
		return derr_set(e, DERR_HTTP, "libcurl: %s", curl_multi_strerror(mc));
	collect(c, done, max, ndone);
	if (*ndone == 0 && c->inflight && wait_ms > 0) {
		/* Nothing finished yet: wait for activity, then drive again. */
		mc = curl_multi_poll(c->multi, NULL, 0, wait_ms, NULL);
		if (mc != CURLM_OK)
			return derr_set(e, DERR_HTTP, "libcurl: %s", curl_multi_strerror(mc));
		mc = curl_multi_perform(c->multi, &running);
		if (mc != CURLM_OK)
			return derr_set(e, DERR_HTTP, "libcurl: %s", curl_multi_strerror(mc));
		collect(c, done, max, ndone);
	}
	/* Stall timeouts: the longest gap between chunks. */
	if (*ndone < max) {
		int64_t now = mono_ns();
		for (struct http_req *r = c->head, *next; r && *ndone < max; r = next) {
			next = r->next_;
			if (r->stall_ms > 0 && now - r->last_ns_ > r->stall_ms * 1000000) {
				see_status(r);
				r->stalled_ = 1;
				classify(r, CURLE_OK);
				finish_req(c, r);
				done[(*ndone)++] = r;
			}
		}
	}
	return 0;
}

int64_t http_parse_retry_after(const char *v, int64_t now)
{
	int64_t secs;
	time_t t;

	if (!v || !*v)
		return -1;
	if (!parse_int64(v, 0, 86400 * 7, &secs))
		return secs * 1000;
	t = curl_getdate(v, NULL);
	if (t < 0)
		return -1;
	return (int64_t)t * 1000 > now ? (int64_t)t * 1000 - now : 0;
}
