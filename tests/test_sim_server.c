/*
 * test_sim_server.c - distill-teacher-sim as a real server on a loopback
 * port: routes, errors, the API key, every fault kind as a client sees it
 * (status, Retry-After, bad JSON, early close, stall), latency, retries
 * that succeed, 256 concurrent connections, statistics and clean shutdown.
 * Drives the built binary with libcurl (tests may use it directly).
 */
#include "t.h"

#include "buf.h"
#include "json.h"
#include "util.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct sim_proc {
	pid_t pid;
	int port;
	char err_path[4200];
};

/* Start the simulator with extra args; read its port from the first line. */
static int sim_start(struct sim_proc *p, const char *const *args)
{
	char bin[4096], dir[4096];
	const char *argv[64];
	int n = 0, fds[2];
	FILE *f;
	char line[256];

	t_bin("distill-teacher-sim", bin, sizeof(bin));
	t_tmpdir(dir, sizeof(dir));
	snprintf(p->err_path, sizeof(p->err_path), "%s/stderr", dir);
	argv[n++] = bin;
	argv[n++] = "--port";
	argv[n++] = "0";
	for (; args && *args && n < 62; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	if (pipe(fds))
		return -1;
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		/* If this test dies (an abort under the sanitizers), the server goes
		 * too, instead of holding ctest's output pipe until the timeout. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		FILE *e = freopen(p->err_path, "w", stderr);
		(void)e;
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	p->port = 0;
	if (f && fgets(line, sizeof(line), f))
		sscanf(line, "listening on 127.0.0.1:%d", &p->port);
	if (f)
		fclose(f);
	return p->port > 0 ? 0 : -1;
}

/* SIGTERM and wait; returns the exit status (or -1).  On a bad exit the
 * server's stderr is shown. */
static int sim_stop(struct sim_proc *p)
{
	int st = 0, rc;
	kill(p->pid, SIGTERM);
	if (waitpid(p->pid, &st, 0) != p->pid)
		return -1;
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (rc) {
		char line[1024];
		FILE *f = fopen(p->err_path, "r");
		fprintf(stderr, "simulator exit %d (signal %d); its stderr:\n", rc,
			WIFSIGNALED(st) ? WTERMSIG(st) : 0);
		while (f && fgets(line, sizeof(line), f))
			fputs(line, stderr);
		if (f)
			fclose(f);
	}
	return rc;
}

static int file_contains(const char *path, const char *needle)
{
	char buf[1 << 16];
	FILE *f = fopen(path, "r");
	size_t n;
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strstr(buf, needle) != NULL;
}

struct resp {
	long status;
	CURLcode rc;
	double secs;
	struct buf body, head;
};

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
	buf_append(ud, p, sz * n);
	return sz * n;
}

static void setup(CURL *h, const struct sim_proc *p, const char *path, const char *body,
		  struct curl_slist *hl, struct resp *r)
{
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", p->port, path);
	buf_init(&r->body, 1 << 24);
	buf_init(&r->head, 1 << 16);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &r->head);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
}

/* One request; extra headers as a NULL-terminated list. */
static void http(const struct sim_proc *p, const char *path, const char *body, const char *const *headers,
		 struct resp *r)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	int64_t t0 = mono_ns();
	for (; headers && *headers; headers++)
		hl = curl_slist_append(hl, *headers);
	setup(h, p, path, body, hl, r);
	r->rc = curl_easy_perform(h);
	r->secs = (double)(mono_ns() - t0) / 1e9;
	r->status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
}

static void resp_release(struct resp *r)
{
	buf_release(&r->body);
	buf_release(&r->head);
}

static const char *add =
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 347 + "
	"589?\"}]}";
static const char *add_stream =
	"{\"model\":\"distill-sim\",\"stream\":true,\"stream_options\":{\"include_usage\":"
	"true},\"messages\":[{\"role\":\"user\",\"content\":\"What is 347 + 589?\"}]}";

static void test_basic(void)
{
	struct sim_proc p;
	struct resp r;
	const char *args[] = {"--seed", "1", "--max-body", "2000", NULL};
	char big[4000];

	if (sim_start(&p, args)) {
		T_FAIL_AT("simulator did not start");
		return;
	}
	http(&p, "/v1/models", NULL, NULL, &r);
	T_EQ_INT(r.status, 200);
	T_TRUE(strstr(buf_str(&r.body), "\"distill-sim\"") != NULL);
	resp_release(&r);

	http(&p, "/v1/chat/completions", add, NULL, &r);
	T_EQ_INT(r.status, 200);
	{
		cJSON *j = json_parse(buf_str(&r.body), r.body.len);
		T_TRUE(j && cJSON_GetObjectItem(j, "usage") && strstr(buf_str(&r.body), "\\\\boxed{936}"));
		cJSON_Delete(j);
	}
	struct resp again;
	http(&p, "/v1/chat/completions", add, NULL, &again);
	T_EQ_STR(buf_str(&again.body), buf_str(&r.body)); /* same request, same reply */
	resp_release(&again);
	resp_release(&r);

	http(&p, "/v1/chat/completions", add_stream, NULL, &r);
	T_EQ_INT(r.status, 200);
	T_TRUE(strstr(buf_str(&r.head), "text/event-stream") != NULL);
	T_TRUE(r.body.len > 20 && !strcmp(buf_str(&r.body) + r.body.len - 14, "data: [DONE]\n\n"));
	T_TRUE(strstr(buf_str(&r.body), "\"usage\"") != NULL);
	resp_release(&r);

	http(&p, "/v1/nothing", NULL, NULL, &r);
	T_EQ_INT(r.status, 404);
	T_TRUE(strstr(buf_str(&r.body), "\"error\"") != NULL);
	resp_release(&r);
	http(&p, "/v1/chat/completions", NULL, NULL, &r); /* GET */
	T_EQ_INT(r.status, 405);
	resp_release(&r);
	http(&p, "/v1/chat/completions", "{not json", NULL, &r);
	T_EQ_INT(r.status, 400);
	T_TRUE(strstr(buf_str(&r.body), "invalid_request_error") != NULL);
	resp_release(&r);
	http(&p, "/v1/chat/completions",
	     "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}", NULL, &r);
	T_EQ_INT(r.status, 404);
	T_TRUE(strstr(buf_str(&r.body), "model_not_found") != NULL);
	resp_release(&r);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	http(&p, "/v1/chat/completions", big, NULL, &r);
	T_EQ_INT(r.status, 413);
	resp_release(&r);
	/* Chunked upload: no Content-Length, the cap still holds. */
	{
		const char *hdr[] = {"Transfer-Encoding: chunked", NULL};
		http(&p, "/v1/chat/completions", big, hdr, &r);
		T_EQ_INT(r.status, 413);
		resp_release(&r);
	}
	/* Request headers of a few KB fit the per-connection memory. */
	{
		char hdr[4200];
		const char *hl[] = {hdr, NULL};
		memcpy(hdr, "X-Pad: ", 7);
		memset(hdr + 7, 'p', 4000);
		hdr[4007] = '\0';
		http(&p, "/v1/chat/completions", add, hl, &r);
		T_EQ_INT(r.status, 200);
		resp_release(&r);
	}

	http(&p, "/stats", NULL, NULL, &r);
	T_EQ_INT(r.status, 200);
	{
		cJSON *j = json_parse(buf_str(&r.body), r.body.len);
		double v = -1;
		json_get_num(j, "completions", &v);
		T_EQ_DBL(v, 7, 0);
		json_get_num(j, "stream", &v);
		T_EQ_DBL(v, 1, 0);
		json_get_num(j, "errors_4xx", &v); /* 404, 405, 400, 404 model, 413 twice */
		T_EQ_DBL(v, 6, 0);
		cJSON_Delete(j);
	}
	resp_release(&r);
	T_EQ_INT(sim_stop(&p), 0);
	T_TRUE(file_contains(p.err_path, "stats: {\"requests\":"));
}

static void test_api_key(void)
{
	struct sim_proc p;
	struct resp r;
	const char *args[] = {"--api-key-env", "SIM_TEST_KEY", NULL};
	const char *good[] = {"Authorization: Bearer sekrit", NULL};
	const char *bad[] = {"Authorization: Bearer nope", NULL};

	setenv("SIM_TEST_KEY", "sekrit", 1);
	if (sim_start(&p, args)) {
		T_FAIL_AT("simulator did not start");
		return;
	}
	http(&p, "/v1/chat/completions", add, NULL, &r);
	T_EQ_INT(r.status, 401);
	T_TRUE(strstr(buf_str(&r.body), "invalid_api_key") != NULL);
	resp_release(&r);
	http(&p, "/v1/chat/completions", add, bad, &r);
	T_EQ_INT(r.status, 401);
	resp_release(&r);
	http(&p, "/v1/models", NULL, NULL, &r);
	T_EQ_INT(r.status, 401);
	resp_release(&r);
	http(&p, "/v1/chat/completions", add, good, &r);
	T_EQ_INT(r.status, 200);
	resp_release(&r);
	T_EQ_INT(sim_stop(&p), 0);
	T_TRUE(!file_contains(p.err_path, "sekrit"));
}

/* Every fault kind, as the client sees it, streaming and not. */
static void test_faults(void)
{
	static const char *const flags[] = {"--http-429",  "--http-500", "--http-503",
					    "--malformed", "--close",	 "--stall"};
	for (size_t f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
		struct sim_proc p;
		const char *args[] = {flags[f], "1", "--stall-time", "300ms", "--retry-after", "3", NULL};
		if (sim_start(&p, args)) {
			T_FAIL_AT("simulator did not start");
			continue;
		}
		for (int stream = 0; stream < 2; stream++) {
			struct resp r;
			http(&p, "/v1/chat/completions", stream ? add_stream : add, NULL, &r);
			cJSON *j = json_parse(buf_str(&r.body), r.body.len);
			switch (f) {
			case 0:
				T_EQ_INT(r.status, 429);
				T_TRUE(strstr(buf_str(&r.head), "Retry-After: 3\r\n") != NULL);
				break;
			case 1: T_EQ_INT(r.status, 500); break;
			case 2: T_EQ_INT(r.status, 503); break;
			case 3:
				T_EQ_INT(r.status, 200);
				T_EQ_INT(r.rc, CURLE_OK);
				if (!stream)
					T_TRUE(j == NULL);
				else
					T_TRUE(strstr(buf_str(&r.body), "data: [DONE]") != NULL);
				break;
			case 4:
				T_EQ_INT(r.status, 200);
				T_TRUE(r.rc != CURLE_OK); /* cut short: partial file or receive error */
				T_TRUE(!strstr(buf_str(&r.body), "[DONE]"));
				break;
			case 5:
				T_EQ_INT(r.status, 200);
				T_EQ_INT(r.rc, CURLE_OK);
				T_TRUE(r.secs >= 0.29);
				break;
			}
			if (f < 3)
				T_TRUE(j && cJSON_GetObjectItem(j, "error"));
			cJSON_Delete(j);
			resp_release(&r);
		}
		T_EQ_INT(sim_stop(&p), 0);
	}
}

/* Faults are drawn per attempt: a retry can succeed; content stays. */
static void test_retry_and_latency(void)
{
	struct sim_proc p;
	const char *args[] = {"--http-500", "0.5", "--ttft", "100ms", "--seed", "3", "--threads", "2", NULL};
	int ok = 0, failed = 0;
	char first[8192] = "";

	if (sim_start(&p, args)) {
		T_FAIL_AT("simulator did not start");
		return;
	}
	for (int att = 0; att < 12; att++) {
		char hdr[64];
		const char *h[] = {hdr, NULL};
		struct resp r, r2;
		snprintf(hdr, sizeof(hdr), "X-Distill-Attempt: %d", att);
		http(&p, "/v1/chat/completions", add, h, &r);
		http(&p, "/v1/chat/completions", add, h, &r2);
		T_EQ_INT(r.status, r2.status); /* same attempt, same outcome */
		if (r.status == 200) {
			ok++;
			T_TRUE(r.secs >= 0.099); /* time to first token */
			if (!first[0])
				snprintf(first, sizeof(first), "%s", buf_str(&r.body));
			else
				T_EQ_STR(buf_str(&r.body), first);
		} else {
			failed++;
			T_EQ_INT(r.status, 500);
		}
		resp_release(&r);
		resp_release(&r2);
	}
	T_TRUE(ok >= 2 && failed >= 2);
	T_EQ_INT(sim_stop(&p), 0);
}

/* 256 connections at once, each with a timeout, all answered. */
static void test_concurrency(void)
{
	enum { CONNS = 256, TOTAL = 2048 };
	struct sim_proc p;
	CURLM *m = curl_multi_init();
	CURL *h[CONNS];
	struct resp r[CONNS];
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	int started = 0, finished = 0, good = 0, running = 1;

	if (sim_start(&p, NULL)) {
		T_FAIL_AT("simulator did not start");
		return;
	}
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)CONNS);
	for (int i = 0; i < CONNS; i++) {
		h[i] = curl_easy_init();
		setup(h[i], &p, "/v1/chat/completions", i % 2 ? add : add_stream, hl, &r[i]);
		curl_easy_setopt(h[i], CURLOPT_PRIVATE, (void *)(intptr_t)i);
		curl_multi_add_handle(m, h[i]);
		started++;
	}
	int64_t t0 = mono_ns();
	while (running || finished < started) {
		CURLMsg *msg;
		int left;
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			intptr_t i;
			long status = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&i);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result == CURLE_OK && status == 200 && r[i].body.len > 100)
				good++;
			else if (finished - good < 5)
				fprintf(stderr,
					"request failed: curl %d, status %ld, %zu bytes, after %.2f s\n",
					(int)msg->data.result, status, r[i].body.len,
					(double)(mono_ns() - t0) / 1e9);
			finished++;
			curl_multi_remove_handle(m, h[i]);
			buf_reset(&r[i].body);
			if (started < TOTAL) {
				curl_multi_add_handle(m, h[i]);
				started++;
				running = 1;
			}
		}
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
		if (mono_ns() - t0 > 60 * 1000000000LL)
			break;
	}
	T_EQ_INT(finished, TOTAL);
	T_EQ_INT(good, TOTAL);
	for (int i = 0; i < CONNS; i++) {
		curl_easy_cleanup(h[i]);
		resp_release(&r[i]);
	}
	curl_slist_free_all(hl);
	curl_multi_cleanup(m);
	T_EQ_INT(sim_stop(&p), 0);
}

/* SIGTERM while a reply waits (stall): the server still exits at once, cleanly. */
static void test_shutdown_while_waiting(void)
{
	struct sim_proc p;
	const char *args[] = {"--stall", "1", "--stall-time", "60s", NULL};
	CURLM *m = curl_multi_init();
	CURL *h = curl_easy_init();
	struct resp r;
	int running = 1;

	if (sim_start(&p, args)) {
		T_FAIL_AT("simulator did not start");
		return;
	}
	setup(h, &p, "/v1/chat/completions", add_stream, NULL, &r);
	curl_multi_add_handle(m, h);
	for (int i = 0; i < 20 && running; i++) { /* ~200 ms: the request is in and waiting */
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 10, NULL);
	}
	int64_t t0 = mono_ns();
	T_EQ_INT(sim_stop(&p), 0);
	T_TRUE(mono_ns() - t0 < 5 * 1000000000LL);
	T_TRUE(file_contains(p.err_path, "\"stall\":1"));
	curl_multi_remove_handle(m, h);
	curl_easy_cleanup(h);
	curl_multi_cleanup(m);
	resp_release(&r);
}

int main(void)
{
	char bin[4096];
	if (access(t_bin("distill-teacher-sim", bin, sizeof(bin)), X_OK))
		return t_skip("distill-teacher-sim not built");
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{"basic", test_basic},
		{"api_key", test_api_key},
		{"faults", test_faults},
		{"retry_and_latency", test_retry_and_latency},
		{"concurrency", test_concurrency},
		{"shutdown_while_waiting", test_shutdown_while_waiting},
	};
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int64_t t0 = mono_ns();
		tests[i].fn();
		printf("%s: %.2f s\n", tests[i].name, (double)(mono_ns() - t0) / 1e9);
	}
	curl_global_cleanup();
	return t_done();
}
