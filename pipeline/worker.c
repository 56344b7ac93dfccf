/* worker.c - the worker loop (see worker.h). */
#include "worker.h"
#include "buf.h"
#include "db.h"
#include "http.h"
#include "log.h"
#include "queue.h"
#include "tconfig.h"
#include "teacher.h"
#include "util.h"
#include "zst.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Endpoint health: the same job-level error this many times in a row opens
 * the circuit (the endpoint rests, the requests use no attempts); opening it
 * this many times without a success in between pauses the endpoint for the
 * run, as do auth and model errors and repeated connection failures. */
enum {
	SAME_ERROR_RUN = 8,
	MAX_OPENS = 5,
	MAX_CONNECT_FAILS = 3,
	ERROR_BODY_CAP = 64 * 1024,
	RAW_ZSTD_LEVEL = 1,
};

static const char SQL_SPENT[] =
	"SELECT COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_micro_usd), 0) "
	"FROM attempts WHERE imported = 0";

static const char SQL_NOTE_BUDGET[] = "INSERT INTO meta(key, value) VALUES ('budget_total_micro_usd', ?1) "
				      "ON CONFLICT(key) DO UPDATE SET value = excluded.value";

struct wendpoint {
	const struct tconfig_endpoint *cfg;
	const char *key;
	char *url;
	struct http_headers *hdr;
	int inflight;
	double cw; /* smooth weighted round-robin */
	double rpm_bucket, tpm_bucket;
	int64_t bucket_ms;
	int64_t hold_until;
	int hard_paused;
	char reason[200];
	char last_code[32];
	int same_run, opens, connect_fails;
};

struct wjob {
	struct queue_job job;
	int prof; /* index into cfg->profiles */
};

struct wreq {
	struct http_req http;
	struct teacher_sse sse;
	struct buf post;
	char attempt_hdr[48];
	struct wjob job;
	int ep;
	int stream;
	int64_t started_ms;
	int64_t res_tokens, res_cost;
	int used;
};

struct wres {
	struct teacher_response resp;
	struct buf rawz;
	char code[32];
	char msg[320];
	char request_id[96];
	int last_attempt; /* a retry that the queue will turn dead */
	struct queue_trace trace;
};

struct worker {
	struct db *db;
	const struct worker_opts *o;
	const struct tconfig *cfg;
	struct worker_shared *sh;
	struct worker_stats *st;
	char owner[128];
	struct http_client *http;
	struct wendpoint *eps;
	int neps;
	struct wjob *pending; /* FIFO ring */
	int pcap, phead, pn;
	struct wreq *reqs;
	int nreqs, inflight;
	struct queue_result results[64];
	struct wres extra[64];
	int nres;
	int64_t first_res_ms;
	int64_t next_renew_ms;
	int64_t *claim_profiles;
	int nclaim_profiles;
	int draining, budget_stop, jobs_exhausted;
	int64_t drain_deadline;
	int64_t next_claim_ms;
	uint64_t rng;
	struct buf scratch;
};

void worker_opts_init(struct worker_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->concurrency = 64;
	o->batch_max = 16;
	o->batch_ms = 200;
	o->idle_poll_ms = 500;
}

void worker_shared_init(struct worker_shared *sh, int nprocs, int64_t max_jobs)
{
	memset(sh, 0, sizeof(*sh));
	sh->nprocs = nprocs;
	sh->jobs_left = max_jobs;
}

int worker_spent(struct db *db, int64_t *tokens, int64_t *cost, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_SPENT, &st, e);
	*tokens = *cost = 0;
	if (!rc && (rc = db_step(st, e)) == 1) {
		*tokens = db_col_int64(st, 0);
		*cost = db_col_int64(st, 1);
		rc = 0;
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int worker_note_budget(struct db *db, const struct tconfig *cfg, struct derr *e)
{
	struct db_stmt *st = NULL;
	char v[32];
	int rc;

	if (cfg->max_cost_total < 0)
		return 0;
	snprintf(v, sizeof(v), "%lld", (long long)cfg->max_cost_total);
	rc = db_prepare(db, SQL_NOTE_BUDGET, &st, e);
	if (!rc) {
		db_bind_text(st, 1, v, -1);
		rc = db_step(st, e);
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int worker_redact(char *p, size_t n, const char *secret)
{
	size_t k = secret ? strlen(secret) : 0;
	int found = 0;
	char *q = p;

	if (!k)
		return 0;
	while ((size_t)(q - p) + k <= n && (q = memmem(q, n - (size_t)(q - p), secret, k))) {
		memset(q, '*', k);
		q += k;
		found++;
	}
	return found;
}

static double rnd(struct worker *w)
{
	/* xorshift64*: jitter only, never security. */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return (double)((w->rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static int64_t a_load(int64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void a_add(int64_t *p, int64_t v)
{
	__atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

/* --- pending FIFO --------------------------------------------------- */

static void pending_push(struct worker *w, struct wjob *j)
{
	if (w->pn == w->pcap) {
		int ncap = w->pcap ? w->pcap * 2 : 64;
		struct wjob *n = xcalloc((size_t)ncap, sizeof(*n));
		for (int i = 0; i < w->pn; i++)
			n[i] = w->pending[(w->phead + i) % w->pcap];
		free(w->pending);
		w->pending = n;
		w->pcap = ncap;
		w->phead = 0;
	}
	w->pending[(w->phead + w->pn) % w->pcap] = *j;
	w->pn++;
}

static struct wjob *pending_front(struct worker *w)
{
	return w->pn ? &w->pending[w->phead] : NULL;
}

static void pending_pop(struct worker *w)
{
	w->phead = (w->phead + 1) % w->pcap;
	w->pn--;
}

/* Give every pending (claimed, not sent) job back to the queue. */
static int pending_release(struct worker *w, struct derr *e)
{
	int64_t *ids;
	int n = w->pn, rc = 0;

	if (!n)
		return 0;
	ids = xcalloc((size_t)n, sizeof(*ids));
	for (int i = 0; i < n; i++) {
		struct wjob *j = &w->pending[(w->phead + i) % w->pcap];
		ids[i] = j->job.id;
		free(j->job.prompt);
	}
	w->pn = 0;
	w->phead = 0;
	rc = queue_release(w->db, w->owner, ids, n, e);
	free(ids);
	return rc;
}

/* --- endpoints ------------------------------------------------------ */

static void refill(struct wendpoint *ep, int64_t now)
{
	double dt = (double)(now - ep->bucket_ms) / 60000.0;
	if (dt <= 0)
		return;
	ep->bucket_ms = now;
	if (ep->cfg->requests_per_minute > 0) {
		double burst = fmax(1.0, ep->cfg->requests_per_minute / 60.0);
		ep->rpm_bucket = fmin(burst, ep->rpm_bucket + dt * ep->cfg->requests_per_minute);
	}
	if (ep->cfg->tokens_per_minute > 0) {
		double burst = fmax(1.0, ep->cfg->tokens_per_minute / 60.0);
		ep->tpm_bucket = fmin(burst, ep->tpm_bucket + dt * ep->cfg->tokens_per_minute);
	}
}

static int ep_available(struct wendpoint *ep, const char *model, int64_t now)
{
	if (ep->hard_paused || strcmp(ep->cfg->model, model) != 0)
		return 0;
	if (ep->inflight >= ep->cfg->max_concurrency || ep->hold_until > now)
		return 0;
	refill(ep, now);
	if (ep->cfg->requests_per_minute > 0 && ep->rpm_bucket < 1.0)
		return 0;
	if (ep->cfg->tokens_per_minute > 0 && ep->tpm_bucket <= 0)
		return 0;
	return 1;
}

/* Smooth weighted round-robin among the available endpoints serving model. */
static int pick_endpoint(struct worker *w, const char *model, int64_t now)
{
	double total = 0;
	int best = -1;

	for (int i = 0; i < w->neps; i++) {
		struct wendpoint *ep = &w->eps[i];
		if (!ep_available(ep, model, now))
			continue;
		ep->cw += ep->cfg->weight;
		total += ep->cfg->weight;
		if (best < 0 || ep->cw > w->eps[best].cw)
			best = i;
	}
	if (best >= 0)
		w->eps[best].cw -= total;
	return best;
}

static int all_paused(struct worker *w)
{
	for (int i = 0; i < w->neps; i++)
		if (!w->eps[i].hard_paused)
			return 0;
	return 1;
}

static void hard_pause(struct wendpoint *ep, const char *why)
{
	if (ep->hard_paused)
		return;
	ep->hard_paused = 1;
	snprintf(ep->reason, sizeof(ep->reason), "%s", why);
	log_warn("endpoint %s paused for this run: %s", ep->cfg->name, why);
}

/* Open the circuit: the endpoint rests, longer each time. */
static void open_circuit(struct worker *w, struct wendpoint *ep, int64_t now, const char *why)
{
	int64_t rest = (int64_t)2000 << (ep->opens < 5 ? ep->opens : 5);
	ep->opens++;
	ep->same_run = 0;
	if (ep->opens >= MAX_OPENS) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s, again after %d rests", why, MAX_OPENS - 1);
		hard_pause(ep, msg);
		return;
	}
	ep->hold_until = now + rest + (int64_t)(rnd(w) * 500);
	log_warn("endpoint %s: %s; resting %lld ms", ep->cfg->name, why, (long long)rest);
}

/* --- budget --------------------------------------------------------- */

static int over(int64_t limit, int64_t v)
{
	return limit >= 0 && v > limit;
}

/* Reserve a request's worst case against the budget: 0 when it fits; 1 when
 * it would fit once requests in flight end (wait); -1 when it cannot fit
 * even with nothing in flight (the budget is reached: stop dispatching). */
static int budget_reserve(struct worker *w, int64_t tokens, int64_t cost)
{
	const struct tconfig *c = w->cfg;
	struct worker_shared *sh = w->sh;
	int64_t t, k, ut, uk;

	if (c->max_tokens_run < 0 && c->max_tokens_total < 0 && c->max_cost_run < 0 && c->max_cost_total < 0)
		return 0;
	t = __atomic_add_fetch(&sh->tokens_reserved, tokens, __ATOMIC_SEQ_CST);
	k = __atomic_add_fetch(&sh->cost_reserved, cost, __ATOMIC_SEQ_CST);
	ut = a_load(&sh->tokens_used);
	uk = a_load(&sh->cost_used);
	if (!over(c->max_tokens_run, t + ut) &&
	    !over(c->max_tokens_total, t + ut + sh->spent_tokens_before) && !over(c->max_cost_run, k + uk) &&
	    !over(c->max_cost_total, k + uk + sh->spent_cost_before))
		return 0;
	a_add(&sh->tokens_reserved, -tokens);
	a_add(&sh->cost_reserved, -cost);
	if (over(c->max_tokens_run, tokens + ut) ||
	    over(c->max_tokens_total, tokens + ut + sh->spent_tokens_before) ||
	    over(c->max_cost_run, cost + uk) || over(c->max_cost_total, cost + uk + sh->spent_cost_before)) {
		__atomic_store_n(&sh->budget_hit, 1, __ATOMIC_SEQ_CST);
		return -1;
	}
	return 1;
}

static int64_t cost_micro(const struct tconfig_endpoint *ep, int64_t in, int64_t out)
{
	double c = (double)(in > 0 ? in : 0) * ep->price_per_mtok_in +
		   (double)(out > 0 ? out : 0) * ep->price_per_mtok_out;
	return (int64_t)llround(c);
}

/* --- claiming ------------------------------------------------------- */

static int profile_index(struct worker *w, int64_t profile_id)
{
	for (int i = 0; i < w->cfg->nprofiles; i++)
		if (w->o->profile_ids[i] == profile_id)
			return i;
	return -1;
}

static int claim(struct worker *w, int64_t now, int *got, struct derr *e)
{
	struct queue_job *jobs = NULL;
	int want = 2 * w->o->concurrency - w->pn - w->inflight, n = 0, rc;

	*got = 0;
	if (want > 256)
		want = 256;
	if (w->sh->jobs_left >= 0) {
		/* Take our share of the --max-jobs allowance first. */
		int64_t left = __atomic_sub_fetch(&w->sh->jobs_left, want, __ATOMIC_SEQ_CST);
		if (left < 0) {
			int64_t give = -left < want ? -left : want;
			a_add(&w->sh->jobs_left, give);
			want -= (int)give;
		}
		if (want <= 0) {
			w->jobs_exhausted = 1;
			return 0;
		}
	}
	rc = queue_claim(w->db, w->owner, w->claim_profiles, w->nclaim_profiles, want, w->cfg->lease_ms,
			 &jobs, &n, e);
	if (w->sh->jobs_left >= 0 && want > (rc ? 0 : n))
		a_add(&w->sh->jobs_left, want - (rc ? 0 : n));
	if (rc)
		return rc;
	for (int i = 0; i < n; i++) {
		struct wjob j;
		j.job = jobs[i];
		j.prof = profile_index(w, jobs[i].profile_id);
		jobs[i].prompt = NULL; /* moved */
		pending_push(w, &j);
	}
	queue_jobs_free(jobs, n);
	*got = n;
	if (n == 0)
		w->next_claim_ms = now + (w->o->until_empty ? 100 : w->o->idle_poll_ms);
	return 0;
}

/* --- requests ------------------------------------------------------- */

static int on_sse(void *ctx, const char *p, size_t n)
{
	struct wreq *r = ctx;
	return teacher_sse_feed(&r->sse, p, n);
}

static struct wreq *free_slot(struct worker *w)
{
	for (int i = 0; i < w->nreqs; i++)
		if (!w->reqs[i].used)
			return &w->reqs[i];
	return NULL;
}

static int start_request(struct worker *w, struct wjob *j, int epi, int64_t res_tokens, int64_t res_cost,
			 struct derr *e)
{
	struct wendpoint *ep = &w->eps[epi];
	const struct teacher_profile *p = &w->cfg->profiles[j->prof];
	struct wreq *r = free_slot(w);
	int rc;

	r->used = 1;
	r->job = *j;
	r->ep = epi;
	r->stream = ep->cfg->stream;
	r->res_tokens = res_tokens;
	r->res_cost = res_cost;
	buf_reset(&r->post);
	rc = teacher_request_body(p, r->job.job.prompt, r->job.job.prompt_hash, r->job.job.sample_index,
				  r->stream, &r->post);
	if (rc) {
		r->used = 0;
		return derr_set(e, rc, "request body too large");
	}
	if (r->stream) {
		teacher_sse_release(&r->sse);
		teacher_sse_init(&r->sse, (size_t)w->cfg->max_response_bytes);
	}
	r->http.url = ep->url;
	r->http.headers = ep->hdr;
	/* The attempt number lets a server (the simulator) draw faults per attempt. */
	snprintf(r->attempt_hdr, sizeof(r->attempt_hdr), "X-Distill-Attempt: %d", r->job.job.attempts + 1);
	r->http.extra_header = r->attempt_hdr;
	r->http.post = r->post.data;
	r->http.post_len = r->post.len;
	r->http.connect_timeout_ms = w->cfg->connect_ms;
	r->http.timeout_ms = w->cfg->total_ms;
	r->http.stall_ms = r->stream ? w->cfg->stall_ms : 0;
	r->http.max_bytes = (size_t)w->cfg->max_response_bytes;
	r->http.on_data = r->stream ? on_sse : NULL;
	r->http.data_ctx = r;
	r->http.user = r;
	r->started_ms = now_ms();
	rc = http_add(w->http, &r->http, e);
	if (rc) {
		r->used = 0;
		return rc;
	}
	ep->inflight++;
	w->inflight++;
	if (ep->cfg->requests_per_minute > 0)
		ep->rpm_bucket -= 1.0;
	if (ep->cfg->tokens_per_minute > 0)
		ep->tpm_bucket -= (double)r->post.len / 4.0;
	a_add(&w->st->requests, 1);
	__atomic_store_n(&w->st->inflight, w->inflight, __ATOMIC_RELAXED);
	return 0;
}

/* Send pending jobs while slots, endpoints and budget allow. */
static int dispatch(struct worker *w, int64_t now, struct derr *e)
{
	while (w->pn && w->inflight < w->o->concurrency && !w->budget_stop) {
		struct wjob *j = pending_front(w);
		const struct teacher_profile *p;
		int64_t tokens, cost;
		int epi, rc;

		if (j->prof < 0) {
			/* Not ours (no endpoint serves it): should not be claimed; give it back. */
			int64_t id = j->job.id;
			free(j->job.prompt);
			pending_pop(w);
			rc = queue_release(w->db, w->owner, &id, 1, e);
			if (rc)
				return rc;
			continue;
		}
		p = &w->cfg->profiles[j->prof];
		epi = pick_endpoint(w, p->model, now);
		if (epi < 0)
			break;
		tokens = p->max_tokens > 0 ? p->max_tokens : 32768;
		cost = cost_micro(w->eps[epi].cfg, (int64_t)(strlen(j->job.prompt) / 3 + 64), tokens);
		rc = budget_reserve(w, tokens, cost);
		if (rc > 0)
			break; /* fits once requests in flight end */
		if (rc < 0) {
			w->budget_stop = 1;
			log_info("budget reached: no more requests are sent");
			break;
		}
		rc = start_request(w, j, epi, tokens, cost, e);
		if (rc)
			return rc;
		pending_pop(w);
	}
	return 0;
}

/* --- results -------------------------------------------------------- */

static int flush(struct worker *w, struct derr *e)
{
	int rc;

	if (!w->nres)
		return 0;
	rc = queue_record(w->db, w->owner, w->cfg->max_attempts, w->results, w->nres, e);
	for (int i = 0; i < w->nres; i++) {
		struct queue_result *q = &w->results[i];
		struct wres *x = &w->extra[i];
		if (!rc) {
			if (q->status == DERR_STALE)
				a_add(&w->st->stale, 1);
			else if (q->outcome == QUEUE_DONE)
				a_add(&w->st->done, 1);
			else if (q->outcome == QUEUE_DEAD || (q->outcome == QUEUE_RETRY && x->last_attempt))
				a_add(&w->st->dead, 1);
		}
		teacher_response_release(&x->resp);
		buf_release(&x->rawz);
	}
	w->nres = 0;
	return rc;
}

/* Compress (and scrub of the key) a body for the attempts/traces rows. */
static void keep_raw(struct worker *w, struct wres *x, char *p, size_t n, size_t cap, const char *key)
{
	struct derr ze = {0};
	if (n > cap)
		n = cap;
	worker_redact(p, n, key);
	buf_init(&x->rawz, n + n / 2 + 1024);
	if (zst_compress(p, n, RAW_ZSTD_LEVEL, &x->rawz, &ze))
		buf_release(&x->rawz);
}

static void set_code(struct wres *x, const char *code, const char *fmt, const char *detail)
{
	snprintf(x->code, sizeof(x->code), "%s", code);
	snprintf(x->msg, sizeof(x->msg), fmt, detail);
}

/* Turn one finished request into a result of the batch. */
static int complete(struct worker *w, struct wreq *r, int64_t now, struct derr *e)
{
	struct wendpoint *ep = &w->eps[r->ep];
	const char *key = ep->key;
	struct queue_result *q = &w->results[w->nres];
	struct wres *x = &w->extra[w->nres];
	struct http_req *h = &r->http;
	struct derr pe = {0};
	int endpoint_err = 0, job_err = 0, dead = 0, ok = 0;
	int64_t in_tok = 0, out_tok = 0;

	memset(q, 0, sizeof(*q));
	memset(x, 0, sizeof(*x));
	if (w->nres == 0)
		w->first_res_ms = now;
	snprintf(x->request_id, sizeof(x->request_id), "%s", h->request_id);

	if (h->err == 0 && h->status >= 200 && h->status < 300) {
		struct buf *raw = &h->body;
		struct buf sse_json = BUF_INIT((size_t)w->cfg->max_response_bytes * 2 + 4096);
		int rc = 0;
		if (r->stream) {
			rc = teacher_sse_finish(&r->sse, &sse_json, &pe);
			raw = &sse_json;
			/* Neither [DONE] nor a finish_reason: the stream was cut short. */
			if (!rc && !r->sse.done && !r->sse.finish_reason)
				rc = derr_set(&pe, DERR_TEACHER_MALFORMED, "the stream ended before its end");
		}
		if (!rc)
			rc = teacher_parse_response(buf_str(raw), raw->len, &x->resp, &pe);
		worker_redact(pe.msg, strlen(pe.msg), key);
		if (rc) {
			job_err = 1;
			set_code(x, "malformed", "%s", pe.msg);
		} else {
			ok = 1;
			in_tok = x->resp.prompt_tokens;
			out_tok = x->resp.completion_tokens;
			if (!x->request_id[0] && x->resp.id)
				snprintf(x->request_id, sizeof(x->request_id), "%s", x->resp.id);
		}
		keep_raw(w, x, raw->data ? raw->data : (char *)"", raw->len,
			 (size_t)w->cfg->max_response_bytes, key);
		buf_release(&sse_json);
	} else if (h->err) {
		switch (h->err) {
		case DERR_HTTP_CONNECT:
			endpoint_err = 1;
			set_code(x, "connect", "cannot connect: %s", h->errmsg);
			ep->connect_fails++;
			if (ep->connect_fails >= MAX_CONNECT_FAILS) {
				char why[200];
				snprintf(why, sizeof(why), "cannot connect to %s: %s", ep->cfg->base_url,
					 h->errmsg);
				hard_pause(ep, why);
			} else {
				ep->hold_until = now + ((int64_t)500 << ep->connect_fails);
			}
			break;
		case DERR_HTTP_TIMEOUT:
			job_err = 1;
			set_code(x, "timeout", "request timed out: %s", h->errmsg);
			break;
		case DERR_HTTP_STALL:
			job_err = 1;
			set_code(x, "stall", "response stalled: %s", h->errmsg);
			break;
		case DERR_HTTP_TOOBIG:
			job_err = 1;
			set_code(x, "too_large", "%s", h->errmsg);
			break;
		case DERR_HTTP:
			job_err = 1;
			set_code(x, "transport", "transport error: %s", h->errmsg);
			break;
		default:
			job_err = 1;
			set_code(x, "malformed", "malformed stream: %s", h->errmsg);
			break;
		}
		if (h->body.len)
			keep_raw(w, x, h->body.data, h->body.len, ERROR_BODY_CAP, key);
	} else {
		int s = h->status;
		char code[32];
		snprintf(code, sizeof(code), "http_%d", s);
		if (s == 401 || s == 403 || s == 404) {
			char why[200];
			endpoint_err = 1;
			snprintf(why, sizeof(why), "HTTP %d from %s (%s)", s, ep->cfg->base_url,
				 s == 404 ? "unknown model or path" : "check the API key");
			set_code(x, code, "%s", why);
			hard_pause(ep, why);
		} else if (s == 400 || (s >= 400 && s < 500 && s != 408 && s != 409 && s != 429)) {
			dead = 1;
			set_code(x, code, "HTTP %s: the teacher refused this request", code + 5);
		} else {
			/* A 429 is about this request (DESIGN 13): its Retry-After
			 * delays this job's retry, not the endpoint; a run of them
			 * from several jobs opens the circuit breaker below. */
			job_err = 1;
			set_code(x, code, "HTTP %s", code + 5);
		}
		if (h->body.len)
			keep_raw(w, x, h->body.data, h->body.len, ERROR_BODY_CAP, key);
	}

	/* Endpoint health: the same job-level error from several jobs in a row
	 * is the endpoint's fault, not the job's. */
	if (job_err) {
		if (!strcmp(ep->last_code, x->code)) {
			if (++ep->same_run >= SAME_ERROR_RUN) {
				char why[96];
				snprintf(why, sizeof(why), "%d \"%s\" errors in a row", SAME_ERROR_RUN,
					 x->code);
				open_circuit(w, ep, now, why);
				endpoint_err = 1;
			}
		} else {
			snprintf(ep->last_code, sizeof(ep->last_code), "%s", x->code);
			ep->same_run = 1;
		}
	} else if (ok || dead) {
		ep->same_run = 0;
		ep->last_code[0] = '\0';
		ep->opens = 0;
		ep->connect_fails = 0;
	}

	/* Budget: replace the reservation with what was spent. */
	if (in_tok < 0)
		in_tok = 0;
	if (out_tok < 0)
		out_tok = 0;
	{
		int64_t cost = cost_micro(ep->cfg, in_tok, out_tok);
		a_add(&w->sh->tokens_used, out_tok);
		a_add(&w->sh->cost_used, cost);
		a_add(&w->sh->tokens_reserved, -r->res_tokens);
		a_add(&w->sh->cost_reserved, -r->res_cost);
		q->attempt.cost_micro_usd = cost;
		a_add(&w->st->prompt_tokens, in_tok);
		a_add(&w->st->completion_tokens, out_tok);
		if (ep->cfg->tokens_per_minute > 0)
			ep->tpm_bucket -= (double)(in_tok + out_tok) - (double)r->post.len / 4.0;
	}
	if (!ok)
		a_add(&w->st->errors, 1);

	q->job_id = r->job.job.id;
	q->has_attempt = 1;
	q->attempt.attempt_no = r->job.job.attempts + 1;
	q->attempt.endpoint = ep->cfg->name;
	q->attempt.started_at = r->started_ms;
	q->attempt.ms = h->ms;
	q->attempt.http_status = h->status;
	q->attempt.error_class = ok ? NULL : endpoint_err ? "endpoint" : "job";
	q->attempt.error_code = ok ? NULL : x->code;
	q->attempt.bytes = (int64_t)h->bytes;
	q->attempt.request_id = x->request_id[0] ? x->request_id : NULL;
	q->attempt.prompt_tokens = in_tok;
	q->attempt.completion_tokens = out_tok;
	q->attempt.raw_body_z = x->rawz.data;
	q->attempt.raw_body_z_len = x->rawz.len;
	if (ok) {
		x->trace.reasoning = x->resp.reasoning;
		x->trace.answer = x->resp.answer;
		x->trace.placement = teacher_placement_name(x->resp.placement);
		x->trace.finish_reason = x->resp.finish_reason;
		x->trace.prompt_tokens = in_tok;
		x->trace.completion_tokens = out_tok;
		x->trace.latency_ms = h->ms;
		x->trace.endpoint = ep->cfg->name;
		x->trace.model = x->resp.model ? x->resp.model : ep->cfg->model;
		x->trace.request_id = q->attempt.request_id;
		x->trace.raw_body_z = x->rawz.data;
		x->trace.raw_body_z_len = x->rawz.len;
		x->trace.utf8_repaired = x->resp.utf8_repaired;
		q->outcome = QUEUE_DONE;
		q->trace = &x->trace;
	} else {
		worker_redact(x->msg, strlen(x->msg), key);
		q->error = x->msg;
		q->error_code = x->code;
		if (endpoint_err)
			q->outcome = QUEUE_RELEASE;
		else if (dead)
			q->outcome = QUEUE_DEAD;
		else
			q->outcome = QUEUE_RETRY;
		q->retry_after_ms = h->retry_after_ms > 0 ? h->retry_after_ms : 0;
		/* The queue turns a retry dead at max_attempts; count it as such. */
		x->last_attempt =
			q->outcome == QUEUE_RETRY && r->job.job.attempts + 1 >= w->cfg->max_attempts;
	}
	w->nres++;

	ep->inflight--;
	w->inflight--;
	__atomic_store_n(&w->st->inflight, w->inflight, __ATOMIC_RELAXED);
	free(r->job.job.prompt);
	r->job.job.prompt = NULL;
	http_req_release(&r->http);
	if (r->stream)
		teacher_sse_release(&r->sse);
	r->used = 0;
	if (w->nres >= w->o->batch_max || w->nres == (int)ARRAY_SIZE(w->results))
		return flush(w, e);
	return 0;
}

static int renew(struct worker *w, struct derr *e)
{
	int64_t *ids;
	int n = 0, rc;

	if (!w->inflight && !w->pn)
		return 0;
	ids = xcalloc((size_t)w->inflight + (size_t)w->pn, sizeof(*ids));
	for (int i = 0; i < w->nreqs; i++)
		if (w->reqs[i].used)
			ids[n++] = w->reqs[i].job.job.id;
	for (int i = 0; i < w->pn; i++)
		ids[n++] = w->pending[(w->phead + i) % w->pcap].job.id;
	rc = queue_renew(w->db, w->owner, ids, n, w->cfg->lease_ms, e);
	free(ids);
	return rc;
}

/* Cancel every request in flight (after the grace period, or on error). */
static void cancel_all(struct worker *w)
{
	for (int i = 0; i < w->nreqs; i++) {
		struct wreq *r = &w->reqs[i];
		if (!r->used)
			continue;
		http_cancel(w->http, &r->http);
		http_req_release(&r->http);
		if (r->stream)
			teacher_sse_release(&r->sse);
		a_add(&w->sh->tokens_reserved, -r->res_tokens);
		a_add(&w->sh->cost_reserved, -r->res_cost);
		w->eps[r->ep].inflight--;
		free(r->job.job.prompt);
		r->job.job.prompt = NULL;
		r->used = 0;
	}
	w->inflight = 0;
}

/* --until-empty: is anything left that this run could still do? */
static int queue_has_work(struct worker *w, int64_t now, int *has, struct derr *e)
{
	int64_t counts[QS_COUNT] = {0}, wake = 0;
	int rc = queue_counts(w->db, counts, e);

	*has = 0;
	if (rc)
		return rc;
	if (counts[QS_QUEUED] || counts[QS_LEASED]) {
		*has = 1;
		return 0;
	}
	if (!counts[QS_FAILED])
		return 0;
	rc = queue_next_wakeup(w->db, &wake, e);
	if (rc)
		return rc;
	/* Backoffs that end within --max-time are worth waiting for. */
	*has = wake > 0 && (!w->o->deadline_ms || wake < w->o->deadline_ms);
	if (*has && wake > now && wake - now > 100)
		w->next_claim_ms = wake < now + 1000 ? wake : now + 1000;
	return 0;
}

static int setup(struct worker *w, struct db *db, const struct worker_opts *o, struct derr *e)
{
	char host[64] = "host";
	int conns = 0;

	memset(w, 0, sizeof(*w));
	w->db = db;
	w->o = o;
	w->cfg = o->cfg;
	w->sh = o->shared;
	w->st = &o->shared->procs[o->proc];
	w->st->pid = getpid();
	gethostname(host, sizeof(host) - 1);
	w->rng = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
	snprintf(w->owner, sizeof(w->owner), "%.60s:%d:%llx", host, (int)getpid(),
		 (unsigned long long)(w->rng & 0xffffff));
	w->neps = w->cfg->nendpoints;
	w->eps = xcalloc((size_t)w->neps, sizeof(*w->eps));
	for (int i = 0; i < w->neps; i++) {
		struct wendpoint *ep = &w->eps[i];
		struct buf url = BUF_INIT(4096);
		const char *lines[3];
		char auth[600];
		int nl = 0;
		const char *base;
		size_t bl;
		ep->cfg = &w->cfg->endpoints[i];
		ep->key = o->api_keys ? o->api_keys[i] : NULL;
		base = ep->cfg->base_url;
		bl = strlen(base);
		while (bl && base[bl - 1] == '/')
			bl--;
		buf_append(&url, base, bl);
		buf_puts(&url, "/chat/completions");
		ep->url = buf_detach(&url, NULL);
		lines[nl++] = "Content-Type: application/json";
		lines[nl++] = "Expect:";
		if (ep->key && *ep->key) {
			snprintf(auth, sizeof(auth), "Authorization: Bearer %s", ep->key);
			lines[nl++] = auth;
		}
		ep->hdr = http_headers_new(lines, nl);
		memset(auth, 0, sizeof(auth));
		ep->bucket_ms = now_ms();
		ep->rpm_bucket = fmax(1.0, ep->cfg->requests_per_minute / 60.0);
		ep->tpm_bucket = fmax(1.0, ep->cfg->tokens_per_minute / 60.0);
		conns += ep->cfg->max_concurrency;
	}
	/* Claim only the profiles whose model an endpoint serves (DESIGN §13). */
	w->claim_profiles = xcalloc((size_t)w->cfg->nprofiles, sizeof(int64_t));
	for (int i = 0; i < w->cfg->nprofiles; i++) {
		int served = 0;
		for (int k = 0; k < w->neps; k++)
			served |= !strcmp(w->cfg->endpoints[k].model, w->cfg->profiles[i].model);
		if (served)
			w->claim_profiles[w->nclaim_profiles++] = o->profile_ids[i];
		else
			log_warn("profile %s: no endpoint serves model %s; its jobs are left alone",
				 w->cfg->profiles[i].name, w->cfg->profiles[i].model);
	}
	w->nreqs = o->concurrency;
	w->reqs = xcalloc((size_t)w->nreqs, sizeof(*w->reqs));
	for (int i = 0; i < w->nreqs; i++)
		buf_init(&w->reqs[i].post, (size_t)64 << 20);
	buf_init(&w->scratch, 1 << 20);
	if (!w->nclaim_profiles)
		return derr_set(e, DERR_CONFIG, "no endpoint serves the model of any profile");
	return http_client_new(&w->http, conns < o->concurrency ? conns : o->concurrency, e);
}

static void teardown(struct worker *w)
{
	cancel_all(w);
	http_client_free(w->http);
	for (int i = 0; i < w->neps; i++) {
		free(w->eps[i].url);
		http_headers_free(w->eps[i].hdr);
	}
	free(w->eps);
	for (int i = 0; i < w->pn; i++)
		free(w->pending[(w->phead + i) % w->pcap].job.prompt);
	free(w->pending);
	for (int i = 0; i < w->nreqs; i++) {
		buf_release(&w->reqs[i].post);
		http_req_release(&w->reqs[i].http);
	}
	free(w->reqs);
	free(w->claim_profiles);
	buf_release(&w->scratch);
	__atomic_store_n(&w->st->inflight, 0, __ATOMIC_RELAXED);
}

static void paused_message(struct worker *w, struct derr *e)
{
	struct buf b = BUF_INIT(sizeof(e->msg) - 1);
	buf_puts(&b, "every endpoint is paused:");
	for (int i = 0; i < w->neps; i++)
		buf_printf(&b, " %s: %s%s", w->eps[i].cfg->name, w->eps[i].reason,
			   i + 1 < w->neps ? ";" : "");
	derr_set(e, DERR_PAUSED, "%s", buf_str(&b));
	buf_release(&b);
}

int worker_run(struct db *db, const struct worker_opts *o, enum worker_end *end, struct derr *e)
{
	struct worker w;
	struct http_req *done[64];
	int rc = setup(&w, db, o, e);
	int64_t now = now_ms();

	*end = WORKER_STOPPED;
	w.next_renew_ms = now + w.cfg->lease_ms / 3;
	while (!rc) {
		int ndone = 0, wait;
		now = now_ms();
		if (!w.draining && o->stop && *o->stop) {
			w.draining = 1;
			*end = WORKER_STOPPED;
		} else if (!w.draining && o->deadline_ms && now >= o->deadline_ms) {
			w.draining = 1;
			*end = WORKER_DEADLINE;
		} else if (!w.budget_stop && a_load(&w.sh->budget_hit)) {
			w.budget_stop = 1;
		}
		if (w.draining && !w.drain_deadline) {
			w.drain_deadline = now + w.cfg->grace_ms;
			rc = pending_release(&w, e);
			if (rc)
				break;
		}
		if (w.budget_stop && w.pn) {
			rc = pending_release(&w, e);
			if (rc)
				break;
		}
		if (w.draining && now >= w.drain_deadline) {
			log_warn("grace period over: %d requests abandoned (their jobs go back to the queue)",
				 w.inflight);
			cancel_all(&w);
		}
		if (all_paused(&w)) {
			rc = pending_release(&w, e);
			if (!rc && !w.inflight) {
				paused_message(&w, e);
				*end = WORKER_PAUSED;
				rc = DERR_PAUSED;
				break;
			}
		}
		/* Claim when slots are free. */
		if (!w.draining && !w.budget_stop && !w.jobs_exhausted && !all_paused(&w) &&
		    now >= w.next_claim_ms && w.pn + w.inflight < o->concurrency + o->concurrency / 2 + 1) {
			int got = 0;
			rc = claim(&w, now, &got, e);
			if (rc)
				break;
		}
		rc = dispatch(&w, now, e);
		if (rc)
			break;
		/* End conditions, once nothing is in flight. */
		if (!w.inflight && !w.pn) {
			int has = 1;
			if (w.draining)
				break;
			if (w.budget_stop) {
				*end = WORKER_BUDGET;
				break;
			}
			if (w.jobs_exhausted) {
				*end = WORKER_MAX_JOBS;
				break;
			}
			if (o->until_empty && now >= w.next_claim_ms - 100) {
				rc = flush(&w, e);
				if (!rc)
					rc = queue_has_work(&w, now, &has, e);
				if (rc)
					break;
				if (!has) {
					*end = WORKER_EMPTY;
					break;
				}
			}
		}
		wait = w.inflight ? 100 : 50;
		if (w.nres && now - w.first_res_ms + wait > o->batch_ms)
			wait = (int)(o->batch_ms - (now - w.first_res_ms));
		if (wait < 0)
			wait = 0;
		if (w.inflight) {
			rc = http_run(w.http, wait, done, (int)ARRAY_SIZE(done), &ndone, e);
			if (rc)
				break;
		} else if (wait > 0) {
			struct timespec ts = {0, (long)wait * 1000000L};
			nanosleep(&ts, NULL);
		}
		now = now_ms();
		for (int i = 0; i < ndone && !rc; i++)
			rc = complete(&w, (struct wreq *)done[i]->user, now, e);
		if (rc)
			break;
		if (w.nres && (now - w.first_res_ms >= o->batch_ms || !w.inflight))
			rc = flush(&w, e);
		if (!rc && now >= w.next_renew_ms) {
			rc = renew(&w, e);
			w.next_renew_ms = now + w.cfg->lease_ms / 3;
		}
	}
	/* Whatever happened: record what we have, give back every lease. */
	{
		struct derr e2 = {0};
		int rc2 = flush(&w, rc ? &e2 : e);
		cancel_all(&w);
		if (!rc2 || rc)
			rc2 = pending_release(&w, rc ? &e2 : e);
		if (!rc2)
			rc2 = queue_release(db, w.owner, NULL, 0, rc ? &e2 : e);
		if (!rc)
			rc = rc2;
	}
	teardown(&w);
	return rc;
}
