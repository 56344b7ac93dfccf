/*
 * teacher_sim.c - distill-teacher-sim: an OpenAI-compatible chat-completions
 * server on 127.0.0.1 for demos, tests and benchmarks, and `gen-prompts`,
 * which writes the synthetic task family as JSONL.  The only file that
 * touches libmicrohttpd.  What to answer comes from pipeline/sim.c; this file
 * routes requests, checks the API key, carries out the reply's timing
 * (latency, stalls, early close) without blocking the event loop (suspend and
 * resume driven by one timer thread), keeps statistics and shuts down
 * cleanly on SIGINT/SIGTERM.
 */
#include "cli.h"
#include "fields.h"
#include "hash.h"
#include "json.h"
#include "jsonl.h"
#include "log.h"
#include "sim.h"
#include "text.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char serve_usage[] =
	"usage: distill-teacher-sim [--port P] [--seed S] [--config FILE] [--replay FILE.jsonl]...\n"
	"                           [--api-key-env NAME] [--threads N] [--conn-timeout SECONDS] [options]\n"
	"       distill-teacher-sim gen-prompts --n N --seed S [--kind add|sub|mul|word] [--digits D]\n"
	"                           [--exclude FILE]...\n"
	"\n"
	"An OpenAI-compatible teacher on 127.0.0.1: POST /v1/chat/completions (stream or not),\n"
	"GET /v1/models, GET /stats.  Prints 'listening on 127.0.0.1:PORT' first on stdout.\n"
	"\n"
	"  --port P             port to bind (0: pick a free one; default 8000)\n"
	"  --config FILE        JSON object of the options below (keys with '_' for '-');\n"
	"                       flags given on the command line override it\n"
	"  --replay FILE        recorded traces (JSONL with prompt and response); repeatable\n"
	"  --api-key-env NAME   require 'Authorization: Bearer $NAME' (401 otherwise)\n"
	"  --threads N          event-loop threads (default 1)\n"
	"  --conn-timeout S     close idle connections after S seconds (default 5)\n"
	"  -v, --verbose        log every request\n";

/* ---- timer: resumes suspended connections when their wait is over ---------- */

struct wake {
	int64_t due_ns;
	struct MHD_Connection *conn;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wake *heap;
	size_t n, cap;
	int stop;
	pthread_t th;
} timer = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0};

static volatile int shutting_down;

static void heap_push(struct wake w)
{
	size_t i;
	if (timer.n == timer.cap) {
		timer.cap = timer.cap ? timer.cap * 2 : 256;
		timer.heap = xrealloc(timer.heap, timer.cap * sizeof(*timer.heap));
	}
	i = timer.n++;
	while (i && timer.heap[(i - 1) / 2].due_ns > w.due_ns) {
		timer.heap[i] = timer.heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	timer.heap[i] = w;
}

static struct wake heap_pop(void)
{
	struct wake top = timer.heap[0], last = timer.heap[--timer.n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= timer.n)
			break;
		if (c + 1 < timer.n && timer.heap[c + 1].due_ns < timer.heap[c].due_ns)
			c++;
		if (timer.heap[c].due_ns >= last.due_ns)
			break;
		timer.heap[i] = timer.heap[c];
		i = c;
	}
	if (timer.n)
		timer.heap[i] = last;
	return top;
}

/* Suspend conn (from its own callback) and resume it at due_ns. */
static void wait_until(struct MHD_Connection *conn, int64_t due_ns)
{
	struct wake w = {due_ns, conn};
	MHD_suspend_connection(conn);
	pthread_mutex_lock(&timer.mu);
	if (timer.stop) {
		pthread_mutex_unlock(&timer.mu);
		MHD_resume_connection(conn);
		return;
	}
	heap_push(w);
	pthread_cond_signal(&timer.cv);
	pthread_mutex_unlock(&timer.mu);
}

static void *timer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&timer.mu);
	while (!timer.stop) {
		if (!timer.n) {
			pthread_cond_wait(&timer.cv, &timer.mu);
			continue;
		}
		int64_t now = mono_ns(), due = timer.heap[0].due_ns;
		if (due <= now) {
			struct wake w = heap_pop();
			pthread_mutex_unlock(&timer.mu);
			MHD_resume_connection(w.conn);
			pthread_mutex_lock(&timer.mu);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		int64_t abs_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (due - now);
		ts.tv_sec = abs_ns / 1000000000;
		ts.tv_nsec = abs_ns % 1000000000;
		pthread_cond_timedwait(&timer.cv, &timer.mu, &ts);
	}
	/* Shutting down: every waiting connection goes back to the loop now. */
	while (timer.n) {
		struct wake w = heap_pop();
		MHD_resume_connection(w.conn);
	}
	pthread_mutex_unlock(&timer.mu);
	return NULL;
}

static int timer_start(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_destroy(&timer.cv);
	pthread_cond_init(&timer.cv, &ca);
	pthread_condattr_destroy(&ca);
	return pthread_create(&timer.th, NULL, timer_main, NULL);
}

static void timer_stop(void)
{
	pthread_mutex_lock(&timer.mu);
	timer.stop = 1;
	pthread_cond_signal(&timer.cv);
	pthread_mutex_unlock(&timer.mu);
	pthread_join(timer.th, NULL);
	free(timer.heap);
	timer.heap = NULL;
}

/* ---- the server -------------------------------------------------------------- */

struct server {
	struct sim_config cfg;
	struct sim_stats stats;
	char *api_key; /* NULL: no check */
	int verbose;
};

static struct server srv;

struct route;

/* Per request. */
struct conn {
	const struct route *rt; /* NULL: no route (an error reply is queued) */
	struct buf body;
	int too_big;
	int64_t start_ns;
	int have_reply;
	int answered; /* an error reply went out on the first call */
	struct sim_reply reply;
};

/* A paced or cut reply being sent (owned by its MHD response). */
struct pacer {
	struct MHD_Connection *conn;
	struct sim_reply reply;
	int64_t start_ns;
	size_t seg;
};

static ssize_t pacer_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct pacer *p = cls;
	struct sim_reply *r = &p->reply;
	size_t n;

	if (pos >= r->close_at)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (pos >= r->body.len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	while (p->seg + 1 < r->nseg && r->seg[p->seg].end <= pos)
		p->seg++;
	int64_t due = p->start_ns + r->seg[p->seg].due_ms * 1000000;
	if (due > mono_ns()) {
		if (shutting_down)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		wait_until(p->conn, due);
		return 0;
	}
	n = r->seg[p->seg].end - (size_t)pos;
	if (n > max)
		n = max;
	if (r->close_at != SIZE_MAX && n > r->close_at - pos)
		n = r->close_at - (size_t)pos;
	memcpy(out, r->body.data + pos, n);
	return (ssize_t)n;
}

static void pacer_free(void *cls)
{
	struct pacer *p = cls;
	sim_reply_release(&p->reply);
	free(p);
}

static enum MHD_Result queue_buf(struct MHD_Connection *conn, int status, const char *type, const char *body,
				 size_t len, int64_t retry_after)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;
	char ra[32];
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (retry_after >= 0) {
		snprintf(ra, sizeof(ra), "%" PRId64, retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	rc = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result queue_error(struct MHD_Connection *conn, int status, const char *type,
				   const char *code, const char *msg)
{
	struct sim_reply r;
	enum MHD_Result rc;
	__atomic_fetch_add(&srv.stats.errors_4xx, 1, __ATOMIC_RELAXED);
	sim_reply_init(&r);
	sim_reply_error(&r, status, type, code, msg);
	rc = queue_buf(conn, status, r.content_type, buf_str(&r.body), r.body.len, -1);
	sim_reply_release(&r);
	return rc;
}

/* Send c's reply: at once when nothing waits, else through a pacer. */
static enum MHD_Result queue_reply(struct MHD_Connection *conn, struct conn *c)
{
	struct sim_reply *r = &c->reply;
	struct MHD_Response *resp;
	enum MHD_Result rc;
	char ra[32];

	if (sim_reply_is_immediate(r) || shutting_down) {
		size_t len = 0;
		char *data = buf_detach(&r->body, &len);
		resp = MHD_create_response_from_buffer(len, data ? data : (char *)"",
						       data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	} else {
		struct pacer *p = xcalloc(1, sizeof(*p));
		p->conn = conn;
		p->reply = *r;
		p->start_ns = c->start_ns;
		sim_reply_init(r); /* ownership moved to the pacer */
		r = &p->reply;
		/* A known length even for streams: an early close then ends the
		 * connection at once, where a chunked one lingered until the
		 * connection timeout with MHD_USE_TURBO. */
		resp = MHD_create_response_from_callback(r->declared_len, 4096, pacer_read, p, pacer_free);
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->stream)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (r->retry_after_s >= 0) {
		snprintf(ra, sizeof(ra), "%" PRId64, r->retry_after_s);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	rc = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result do_completions(struct MHD_Connection *conn, struct conn *c)
{
	if (!c->have_reply) {
		const char *att = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Distill-Attempt");
		int64_t attempt = 0;
		if (att && parse_int64(att, 0, INT64_MAX, &attempt))
			attempt = 0;
		if (c->too_big) {
			sim_reply_init(&c->reply);
			sim_reply_error(&c->reply, 413, "invalid_request_error", "request_too_large",
					"Request body too large.");
		} else {
			sim_complete(&srv.cfg, buf_str(&c->body), c->body.len, attempt, &c->reply);
		}
		c->have_reply = 1;
		sim_stats_add(&srv.stats, &c->reply);
		if (srv.verbose)
			log_debug("completion: status %d fault %s placement %d noise %#x attempt %" PRId64,
				  c->reply.status, sim_fault_names[c->reply.fault], c->reply.placement,
				  c->reply.noise, attempt);
	}
	int64_t due = c->start_ns + c->reply.head_due_ms * 1000000;
	if (!shutting_down && c->reply.head_due_ms > 0 && due > mono_ns()) {
		wait_until(conn, due);
		return MHD_YES;
	}
	return queue_reply(conn, c);
}

static enum MHD_Result do_models(struct MHD_Connection *conn, struct conn *c)
{
	struct buf b = BUF_INIT(1 << 16);
	enum MHD_Result rc;
	(void)c;
	sim_models_json(&srv.cfg, &b);
	rc = queue_buf(conn, 200, "application/json", buf_str(&b), b.len, -1);
	buf_release(&b);
	return rc;
}

static enum MHD_Result do_stats(struct MHD_Connection *conn, struct conn *c)
{
	struct buf b = BUF_INIT(1 << 16);
	enum MHD_Result rc;
	(void)c;
	sim_stats_json(&srv.stats, &b);
	rc = queue_buf(conn, 200, "application/json", buf_str(&b), b.len, -1);
	buf_release(&b);
	return rc;
}

static enum MHD_Result do_health(struct MHD_Connection *conn, struct conn *c)
{
	(void)c;
	return queue_buf(conn, 200, "application/json", "{\"status\":\"ok\"}", 15, -1);
}

static const struct route {
	const char *method;
	const char *path;
	int needs_key;
	int has_body;
	enum MHD_Result (*fn)(struct MHD_Connection *conn, struct conn *c);
} routes[] = {
	{"POST", "/v1/chat/completions", 1, 1, do_completions},
	{"POST", "/chat/completions", 1, 1, do_completions},
	{"GET", "/v1/models", 1, 0, do_models},
	{"GET", "/models", 1, 0, do_models},
	{"GET", "/stats", 0, 0, do_stats},
	{"GET", "/health", 0, 0, do_health},
};

static int key_ok(struct MHD_Connection *conn)
{
	const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	return auth && !strncmp(auth, "Bearer ", 7) && !strcmp(auth + 7, srv.api_key);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size,
				  void **con_cls)
{
	struct conn *c = *con_cls;
	const struct route *rt = NULL;
	int path_known = 0;
	(void)cls;
	(void)version;

	if (!c) {
		/* The route is found once, on the headers call, and kept. */
		for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
			if (!strcmp(url, routes[i].path)) {
				path_known = 1;
				if (!strcmp(method, routes[i].method))
					rt = &routes[i];
			}
		/* malloc and memset: glibc's calloc skips the per-thread cache */
		c = xmalloc(sizeof(*c));
		memset(c, 0, sizeof(*c));
		c->rt = rt;
		buf_init(&c->body, (size_t)srv.cfg.max_body);
		c->start_ns = mono_ns();
		*con_cls = c;
		c->answered = 1; /* until the checks below pass */
		__atomic_fetch_add(&srv.stats.requests, 1, __ATOMIC_RELAXED);
		if (!rt && path_known)
			return queue_error(conn, 405, "invalid_request_error", NULL, "Method not allowed.");
		if (!rt)
			return queue_error(conn, 404, "invalid_request_error", "unknown_url",
					   "Unknown request URL.");
		if (rt->needs_key && srv.api_key && !key_ok(conn))
			return queue_error(conn, 401, "invalid_request_error", "invalid_api_key",
					   "Incorrect API key provided.");
		if (rt->has_body) {
			const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								     MHD_HTTP_HEADER_CONTENT_LENGTH);
			int64_t n;
			if (cl && !parse_int64(cl, 0, INT64_MAX, &n)) {
				if (n > srv.cfg.max_body)
					return queue_error(conn, 413, "invalid_request_error",
							   "request_too_large", "Request body too large.");
				buf_grow(&c->body, (size_t)n); /* one allocation for the whole body */
			}
		}
		c->answered = 0;
		return MHD_YES;
	}
	rt = c->rt;
	if (c->answered || !rt) /* an error reply is already queued: drop the rest of the body */
		return (*upload_size = 0, MHD_YES);
	if (*upload_size) {
		if (!c->too_big && buf_append(&c->body, upload, *upload_size))
			c->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	return rt->fn(conn, c);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode t)
{
	struct conn *c = *con_cls;
	(void)cls;
	(void)conn;
	(void)t;
	if (!c)
		return;
	buf_release(&c->body);
	if (c->have_reply)
		sim_reply_release(&c->reply);
	free(c);
	*con_cls = NULL;
}

/* ---- options ------------------------------------------------------------------- */

#define CONN_MEMORY 8192 /* bytes of MHD memory per connection */
#define SIM_MHD_FLAGS \
	(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME)

enum { OPT_PORT = 1000, OPT_CONFIG, OPT_REPLAY, OPT_KEY_ENV, OPT_THREADS, OPT_CONN_TIMEOUT, OPT_SIM = 2000 };

static int read_file(const char *path, struct buf *out, struct derr *e)
{
	FILE *f = fopen(path, "rb");
	char tmp[8192];
	size_t n;
	if (!f)
		return derr_set(e, DERR_IO, "%s: %s", path, strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (buf_append(out, tmp, n)) {
			fclose(f);
			return derr_set(e, DERR_LIMIT, "%s: too large", path);
		}
	if (ferror(f)) {
		fclose(f);
		return derr_set(e, DERR_IO, "%s: read error", path);
	}
	fclose(f);
	return 0;
}

static void print_help(void)
{
	fputs(serve_usage, stdout);
	fputs("\nBehaviour (also as JSON config keys):\n", stdout);
	for (size_t i = 0; i < sim_opt_count; i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s %s", sim_opts[i].name, sim_opts[i].arg);
		printf("  %-26s %s\n", left, sim_opts[i].help);
	}
	fputs("\nPer-request draws: content noise from (seed, body); faults (http-*, malformed, close,\n"
	      "stall) from (seed, body, X-Distill-Attempt), at most one per request.\n",
	      stdout);
}

/* SIGINT/SIGTERM write their number to a pipe that the main thread reads:
 * a handler is process-wide, so the signal is caught whichever thread it
 * lands on (sanitizer runtimes start threads of their own before main). */
static int signal_pipe[2] = {-1, -1};
static void on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	ssize_t n = write(signal_pipe[1], &b, 1);
	(void)n;
}

static int serve(int argc, char **argv)
{
	struct option *lo = xcalloc(sim_opt_count + 16, sizeof(*lo));
	size_t nlo = 0;
	const char *config = NULL, *key_env = NULL;
	const char **replays = xcalloc((size_t)argc + 1, sizeof(char *));
	int nreplay = 0, c, rc = EXIT_ERROR;
	int64_t port = 8000, threads = 1, conn_timeout = 5;
	struct derr e = {0};
	struct sim_replay *replay = NULL;
	struct MHD_Daemon *d = NULL;
	/* flags are applied after the config file, so they win */
	int *set_idx = xcalloc((size_t)argc + 1, sizeof(int));
	char **set_val = xcalloc((size_t)argc + 1, sizeof(char *));
	int nset = 0;

	static const struct option fixed[] = {
		{"port", required_argument, NULL, OPT_PORT},
		{"config", required_argument, NULL, OPT_CONFIG},
		{"replay", required_argument, NULL, OPT_REPLAY},
		{"api-key-env", required_argument, NULL, OPT_KEY_ENV},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"conn-timeout", required_argument, NULL, OPT_CONN_TIMEOUT},
		{"verbose", no_argument, NULL, 'v'},
		CLI_OPT_HELP,
	};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		lo[nlo++] = fixed[i];
	for (size_t i = 0; i < sim_opt_count; i++)
		lo[nlo++] = (struct option){sim_opts[i].name, required_argument, NULL, OPT_SIM + (int)i};

	sim_config_init(&srv.cfg);
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
		switch (c) {
		case OPT_PORT:
			if (parse_int64(optarg, 0, 65535, &port)) {
				rc = cli_usage_error(NULL, "--port: expected 0..65535, got '%s'", optarg);
				goto out;
			}
			break;
		case OPT_CONFIG: config = optarg; break;
		case OPT_REPLAY: replays[nreplay++] = optarg; break;
		case OPT_KEY_ENV: key_env = optarg; break;
		case OPT_THREADS:
			if (parse_int64(optarg, 1, 64, &threads)) {
				rc = cli_usage_error(NULL, "--threads: expected 1..64, got '%s'", optarg);
				goto out;
			}
			break;
		case OPT_CONN_TIMEOUT:
			if (parse_int64(optarg, 1, 3600, &conn_timeout)) {
				rc = cli_usage_error(
					NULL, "--conn-timeout: expected 1..3600 seconds, got '%s'", optarg);
				goto out;
			}
			break;
		case 'v': srv.verbose = 1; break;
		case 'h':
			print_help();
			rc = EXIT_OK;
			goto out;
		default:
			if (c >= OPT_SIM && c < OPT_SIM + (int)sim_opt_count) {
				set_idx[nset] = c - OPT_SIM;
				set_val[nset++] = optarg;
				break;
			}
			rc = cli_usage_error(NULL, "unknown option");
			goto out;
		}
	}
	if (optind < argc) {
		rc = cli_usage_error(NULL, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (config) {
		struct buf text = BUF_INIT(1 << 20);
		int r = read_file(config, &text, &e);
		if (!r)
			r = sim_config_load_json(&srv.cfg, buf_str(&text), text.len, &e);
		buf_release(&text);
		if (r) {
			derr_wrap(&e, "%s", config);
			rc = r == DERR_IO ? cli_fail(&e) : cli_usage_error(NULL, "%s", e.msg);
			goto out;
		}
	}
	for (int i = 0; i < nset; i++)
		if (sim_config_set(&srv.cfg, sim_opts[set_idx[i]].name, set_val[i], &e)) {
			rc = cli_usage_error(NULL, "--%s", e.msg);
			goto out;
		}
	if (sim_config_check(&srv.cfg, &e)) {
		rc = cli_usage_error(NULL, "%s", e.msg);
		goto out;
	}
	if (key_env) {
		const char *k = getenv(key_env);
		if (!k || !*k) {
			cli_error("--api-key-env: $%s is not set", key_env);
			goto out;
		}
		srv.api_key = xstrdup(k);
	}
	if (nreplay) {
		replay = sim_replay_new();
		for (int i = 0; i < nreplay; i++) {
			long skipped = 0;
			if (sim_replay_load(replay, replays[i], &skipped, &e)) {
				cli_fail(&e);
				goto out;
			}
			if (skipped)
				log_warn("%s: %ld lines without prompt and response skipped", replays[i],
					 skipped);
		}
		log_info("replay: %zu recorded traces", sim_replay_count(replay));
		srv.cfg.replay = replay;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (pipe(signal_pipe)) {
		cli_error("pipe: %s", strerror(errno));
		goto out;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (timer_start()) {
		cli_error("cannot start the timer thread");
		goto out;
	}
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* CONN_MEMORY: MHD zeroes a connection's whole pool for every request
	 * on a kept-alive connection, so its size is paid per request; 8 KiB
	 * still takes about 6 KB of request headers (tested). */
	d = MHD_start_daemon(SIM_MHD_FLAGS, (uint16_t)port, NULL, NULL, on_request, NULL,
			     MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)conn_timeout,
			     MHD_OPTION_CONNECTION_LIMIT, 8192U, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
			     (size_t)CONN_MEMORY, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
	if (!d) {
		cli_error("cannot listen on 127.0.0.1:%" PRId64 " (port in use?)", port);
		timer_stop();
		goto out;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("listening on 127.0.0.1:%u\n", info ? (unsigned)info->port : (unsigned)port);
	fflush(stdout);
	log_info("seed %" PRIu64 ", model %s%s", srv.cfg.seed, srv.cfg.models[0],
		 srv.cfg.nmodels > 1 ? ", ..." : "");

	unsigned char sig = 0;
	while (read(signal_pipe[0], &sig, 1) != 1 && errno == EINTR)
		;
	log_info("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
	shutting_down = 1;
	timer_stop();
	MHD_stop_daemon(d);
	{
		struct buf b = BUF_INIT(1 << 16);
		sim_stats_json(&srv.stats, &b);
		log_info("stats: %s", buf_str(&b));
		buf_release(&b);
	}
	rc = EXIT_OK;
out:
	sim_replay_free(replay);
	free(srv.api_key);
	sim_config_release(&srv.cfg);
	free(lo);
	free(replays);
	free(set_idx);
	free(set_val);
	if (signal_pipe[0] >= 0) {
		close(signal_pipe[0]);
		close(signal_pipe[1]);
	}
	return rc;
}

/* ---- gen-prompts ----------------------------------------------------------------- */

/* An open-addressing set of 64-bit prompt hashes (0 is stored as 1). */
struct hset {
	uint64_t *v;
	size_t n, cap;
};

static int hset_add(struct hset *s, uint64_t h)
{
	h = h ? h : 1;
	if ((s->n + 1) * 2 > s->cap) {
		struct hset t = {xcalloc(s->cap ? s->cap * 2 : 1024, sizeof(uint64_t)), 0,
				 s->cap ? s->cap * 2 : 1024};
		for (size_t i = 0; i < s->cap; i++)
			if (s->v[i])
				hset_add(&t, s->v[i]);
		free(s->v);
		*s = t;
	}
	for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->v[i] == h)
			return 0;
		if (!s->v[i]) {
			s->v[i] = h;
			s->n++;
			return 1;
		}
	}
}

static int hset_has(const struct hset *s, uint64_t h)
{
	h = h ? h : 1;
	if (!s->cap)
		return 0;
	for (size_t i = h & (s->cap - 1); s->v[i]; i = (i + 1) & (s->cap - 1))
		if (s->v[i] == h)
			return 1;
	return 0;
}

/* Identity of a prompt: the hash of its normalised text, as ingest sees it. */
static uint64_t prompt_key(const char *p, struct buf *tmp)
{
	if (text_normalize(p, strlen(p), tmp))
		return hash64(p, strlen(p), 0);
	return hash64(buf_str(tmp), tmp->len, 0);
}

static int load_exclude(const char *path, struct hset *ex, struct buf *tmp)
{
	struct jsonl_reader *rd = NULL;
	struct jsonl_record rec;
	struct derr e = {0};
	int rc;

	if (jsonl_open(&rd, path, (size_t)16 << 20, &e)) {
		cli_error("--exclude: %s", e.msg);
		return -1;
	}
	while ((rc = jsonl_next(rd, &rec, &e)) == 1) {
		cJSON *o = rec.data ? json_parse(rec.data, rec.len) : NULL;
		/* prompt, problem or question: the fields ingest detects */
		const char *p = fields_prompt(o, NULL);
		if (p)
			hset_add(ex, prompt_key(p, tmp));
		cJSON_Delete(o);
	}
	jsonl_close(rd);
	if (rc < 0) {
		cli_error("--exclude: %s", e.msg);
		return -1;
	}
	return 0;
}

static const char gen_usage[] =
	"usage: distill-teacher-sim gen-prompts --n N --seed S [--kind add|sub|mul|word] [--digits D]\n"
	"                                       [--exclude FILE]...\n"
	"\n"
	"Write N distinct synthetic prompts as JSONL ({\"id\", \"prompt\", \"answer\", \"kind\"}) on "
	"stdout.\n"
	"  --kind K       add (default), sub, mul, or word (short two-step word problems)\n"
	"  --digits D     operand digits: add/sub 1..18, mul 1..9, word 1..6 (default 3; word 2)\n"
	"  --exclude FILE leave out the prompts of FILE (JSONL with prompt, problem or question)\n";

static int gen_prompts(int argc, char **argv)
{
	static const struct option lo[] = {
		{"n", required_argument, NULL, 'n'},
		{"seed", required_argument, NULL, 's'},
		{"kind", required_argument, NULL, 'k'},
		{"digits", required_argument, NULL, 'd'},
		{"exclude", required_argument, NULL, 'x'},
		CLI_OPT_HELP,
		{NULL, 0, NULL, 0},
	};
	int64_t n = -1, seed = -1, digits = -1;
	int kind = SIM_KIND_ADD, c, rc = EXIT_ERROR;
	struct hset seen = {0}, ex = {0};
	struct buf tmp = BUF_INIT(1 << 20), line = BUF_INIT(1 << 16);
	int64_t made = 0, tries = 0;
	uint64_t rng;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_int64(optarg, 0, 100000000, &n))
				return cli_usage_error("gen-prompts", "--n: expected 0..100000000, got '%s'",
						       optarg);
			break;
		case 's':
			if (parse_int64(optarg, 0, INT64_MAX, &seed))
				return cli_usage_error("gen-prompts",
						       "--seed: expected an integer >= 0, got '%s'", optarg);
			break;
		case 'k':
			kind = -1;
			for (int i = 0; i < SIM_KIND_COUNT; i++)
				if (!strcmp(optarg, sim_kind_names[i]))
					kind = i;
			if (kind < 0)
				return cli_usage_error("gen-prompts",
						       "--kind: expected add, sub, mul or word");
			break;
		case 'd':
			if (parse_int64(optarg, 1, 18, &digits))
				return cli_usage_error("gen-prompts", "--digits: expected 1..18, got '%s'",
						       optarg);
			break;
		case 'x':
			if (load_exclude(optarg, &ex, &tmp))
				goto out;
			break;
		case 'h': fputs(gen_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("gen-prompts", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage_error("gen-prompts", "unexpected argument '%s'", argv[optind]);
	if (n < 0 || seed < 0) {
		rc = cli_usage_error("gen-prompts", "--n and --seed are required");
		goto out;
	}
	if (digits < 0)
		digits = kind == SIM_KIND_WORD ? 2 : 3;
	{
		struct sim_task t;
		uint64_t probe = 0;
		if (sim_task_gen(kind, (int)digits, &probe, &t)) {
			rc = cli_usage_error("gen-prompts", "--digits %" PRId64 " is out of range for %s",
					     digits, sim_kind_names[kind]);
			goto out;
		}
	}
	rng = hash_mix64((uint64_t)seed, ((uint64_t)kind << 8) | (uint64_t)digits);
	while (made < n) {
		struct sim_task t;
		if (tries++ > n * 50 + 100000) {
			cli_error("only %" PRId64 " distinct %s prompts with %" PRId64
				  " digits could be made",
				  made, sim_kind_names[kind], digits);
			goto out;
		}
		sim_task_gen(kind, (int)digits, &rng, &t);
		uint64_t key = prompt_key(t.prompt, &tmp);
		if (hset_has(&ex, key) || !hset_add(&seen, key))
			continue;
		buf_reset(&line);
		buf_printf(&line, "{\"id\":\"sim-%s%" PRId64 "-%" PRId64 "-%" PRId64 "\",\"prompt\":",
			   sim_kind_names[kind], digits, seed, made);
		json_append_str(&line, t.prompt, strlen(t.prompt));
		buf_puts(&line, ",\"answer\":");
		json_append_str(&line, t.answer, strlen(t.answer));
		buf_printf(&line, ",\"kind\":\"%s\"}\n", sim_kind_names[kind]);
		if (fwrite(line.data, 1, line.len, stdout) != line.len) {
			cli_error("write error: %s", strerror(errno));
			goto out;
		}
		made++;
	}
	rc = fflush(stdout) ? (cli_error("write error: %s", strerror(errno)), EXIT_ERROR) : EXIT_OK;
out:
	free(seen.v);
	free(ex.v);
	buf_release(&tmp);
	buf_release(&line);
	return rc;
}

int main(int argc, char **argv)
{
	cli_prog = "distill-teacher-sim";
	cli_log_init(0);
	if (argc > 1 && !strcmp(argv[1], "gen-prompts"))
		return gen_prompts(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			cli_log_init(1);
	return serve(argc, argv);
}
