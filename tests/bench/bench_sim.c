/*
 * bench_sim.c - requests/s of distill-teacher-sim at zero latency, no
 * faults, ~4 KB responses, against a minimal libmicrohttpd server that
 * answers every request with a fixed 4 KB body (the baseline), measured
 * side by side in one run.  Each server runs pinned to CPU 0, the libcurl
 * multi client (keep-alive, 64 requests in flight) pinned to CPU 1.
 * Rounds alternate between the two; medians and the ratio are printed.
 * Usage: bench_sim [seconds per round, default 2] [rounds, default 3] [PORT]
 * With PORT, only the client runs, against a simulator already listening
 * there (to profile the server under load).
 */
#include "t.h"

#include "util.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define INFLIGHT 64

static void pin(int cpu)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	CPU_ZERO(&set);
	CPU_SET(n > 1 ? cpu : 0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* ---- the baseline: a minimal MHD server with a fixed 4 KB body ------------------ */

static struct MHD_Response *fixed;

static enum MHD_Result hello(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			     const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	static int marker;
	(void)cls, (void)url, (void)method, (void)version, (void)upload;
	if (!*con_cls) {
		*con_cls = &marker;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0;
		return MHD_YES;
	}
	return MHD_queue_response(c, MHD_HTTP_OK, fixed);
}

/* Fork the baseline server on CPU 0; its port comes back through a pipe. */
static pid_t start_baseline(int *port)
{
	int fds[2];
	pid_t pid;
	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		static char body[4096];
		struct MHD_Daemon *d;
		const union MHD_DaemonInfo *info;
		pin(0);
		memset(body, 'x', sizeof(body));
		fixed = MHD_create_response_from_buffer(sizeof(body), body, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(fixed, "Content-Type", "application/json");
		d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, hello,
				     NULL, MHD_OPTION_CONNECTION_TIMEOUT, 5U, MHD_OPTION_END);
		info = d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
		int p = info ? info->port : 0;
		if (write(fds[1], &p, sizeof(p)) != sizeof(p))
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], port, sizeof(*port)) != sizeof(*port))
		*port = 0;
	close(fds[0]);
	return pid;
}

/* Exec the simulator on CPU 0 with --port 0; read its port. */
static pid_t start_sim(int *port, const char *pad)
{
	char bin[4096], line[256];
	int fds[2];
	pid_t pid;
	FILE *f;
	t_bin("distill-teacher-sim", bin, sizeof(bin));
	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		pin(0);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(bin, bin, "--port", "0", "--seed", "1", "--pad-reasoning", pad, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	*port = 0;
	f = fdopen(fds[0], "r");
	if (f && fgets(line, sizeof(line), f))
		sscanf(line, "listening on 127.0.0.1:%d", port);
	if (f)
		fclose(f);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* ---- the client ------------------------------------------------------------------ */

struct slot {
	CURL *h;
	char body[256];
	size_t bytes;
};

static size_t count_bytes(char *p, size_t sz, size_t n, void *ud)
{
	(void)p;
	*(size_t *)ud += sz * n;
	return sz * n;
}

/* Run for `secs` seconds; returns requests/s, and mean response bytes. */
static double run_client(int port, double secs, double *mean_bytes, long *errors)
{
	CURLM *m = curl_multi_init();
	struct slot s[INFLIGHT];
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
	char url[128];
	long done = 0, bad = 0, seq = 0;
	size_t total = 0;
	int running = 0;
	int64_t t0, end;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", port);
	for (int i = 0; i < INFLIGHT; i++) {
		s[i].h = curl_easy_init();
		s[i].bytes = 0;
		curl_easy_setopt(s[i].h, CURLOPT_URL, url);
		curl_easy_setopt(s[i].h, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(s[i].h, CURLOPT_WRITEFUNCTION, count_bytes);
		curl_easy_setopt(s[i].h, CURLOPT_WRITEDATA, &s[i].bytes);
		curl_easy_setopt(s[i].h, CURLOPT_PRIVATE, &s[i]);
		curl_easy_setopt(s[i].h, CURLOPT_TIMEOUT, 20L);
		curl_easy_setopt(s[i].h, CURLOPT_NOSIGNAL, 1L);
		snprintf(s[i].body, sizeof(s[i].body),
			 "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is "
			 "347 + "
			 "589?\"}],\"seed\":%ld}",
			 seq++);
		curl_easy_setopt(s[i].h, CURLOPT_POSTFIELDS, s[i].body);
		curl_multi_add_handle(m, s[i].h);
	}
	t0 = mono_ns();
	end = t0 + (int64_t)(secs * 1e9);
	do {
		CURLMsg *msg;
		int left;
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct slot *sl;
			long status = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			if (msg->data.result != CURLE_OK || status != 200)
				bad++;
			done++;
			total += sl->bytes;
			sl->bytes = 0;
			curl_multi_remove_handle(m, sl->h);
			if (mono_ns() < end) {
				snprintf(sl->body, sizeof(sl->body),
					 "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\","
					 "\"content\":"
					 "\"What is 347 + 589?\"}],\"seed\":%ld}",
					 seq++);
				curl_easy_setopt(sl->h, CURLOPT_POSTFIELDS, sl->body);
				curl_multi_add_handle(m, sl->h);
				running = 1;
			}
		}
		if (running)
			curl_multi_poll(m, NULL, 0, 50, NULL);
	} while (running);
	double elapsed = (double)(mono_ns() - t0) / 1e9;
	for (int i = 0; i < INFLIGHT; i++)
		curl_easy_cleanup(s[i].h);
	curl_slist_free_all(hl);
	curl_multi_cleanup(m);
	*mean_bytes = done ? (double)total / (double)done : 0;
	*errors = bad;
	return (double)done / elapsed;
}

/* CPU seconds (user + system) a process has used so far. */
static double cpu_secs(pid_t pid)
{
	char path[64], line[1024];
	unsigned long ut = 0, st = 0;
	FILE *f;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(line, sizeof(line), f)) {
		const char *p = strrchr(line, ')');
		/* fields after the command: state is 3rd, utime 14th, stime 15th */
		if (p)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
	}
	fclose(f);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? strtod(argv[1], NULL) : 2.0;
	int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
	double base[16], sim[16], bcpu[16], scpu[16], bbytes = 0, sbytes = 0;
	long berr = 0, serr = 0;
	int bport, sport;
	pid_t bpid, spid;
	char bin[4096];

	if (rounds < 1 || rounds > 16 || !(secs > 0))
		return fprintf(stderr, "usage: bench_sim [seconds] [rounds 1..16]\n"), 2;
	if (access(t_bin("distill-teacher-sim", bin, sizeof(bin)), X_OK))
		return fprintf(stderr, "bench_sim: %s not built\n", bin), 1;
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc > 3) {
		double b;
		long e;
		pin(1);
		printf("client only: %.0f req/s\n", run_client((int)strtol(argv[3], NULL, 10), secs, &b, &e));
		curl_global_cleanup();
		return 0;
	}
	bpid = start_baseline(&bport);
	/* --pad-reasoning 3500 makes the add reply about 4 KB of JSON. */
	spid = start_sim(&sport, "3500");
	if (!bport || !sport) {
		fprintf(stderr, "bench_sim: a server did not start\n");
		stop(bpid);
		stop(spid);
		return 1;
	}
	pin(1);
	for (int r = 0; r < rounds; r++) {
		double b, s, c0;
		long e;
		c0 = cpu_secs(bpid);
		base[r] = run_client(bport, secs, &b, &e);
		/* server CPU per request: what one dedicated core would sustain */
		bcpu[r] = (cpu_secs(bpid) - c0) / (base[r] * secs) * 1e6;
		bbytes = b, berr += e;
		c0 = cpu_secs(spid);
		sim[r] = run_client(sport, secs, &s, &e);
		scpu[r] = (cpu_secs(spid) - c0) / (sim[r] * secs) * 1e6;
		sbytes = s, serr += e;
		printf("round %d: baseline %.0f req/s (%.1f us CPU/req), sim %.0f req/s (%.1f us CPU/req)\n",
		       r + 1, base[r], bcpu[r], sim[r], scpu[r]);
	}
	stop(bpid);
	stop(spid);
	qsort(base, (size_t)rounds, sizeof(double), cmp_double);
	qsort(sim, (size_t)rounds, sizeof(double), cmp_double);
	qsort(bcpu, (size_t)rounds, sizeof(double), cmp_double);
	qsort(scpu, (size_t)rounds, sizeof(double), cmp_double);
	printf("baseline (minimal libmicrohttpd, 4096-byte body): median %.0f req/s, errors %ld\n",
	       base[rounds / 2], berr);
	printf("distill-teacher-sim (%.0f-byte replies, no faults, zero latency): median %.0f req/s, errors "
	       "%ld\n",
	       sbytes, sim[rounds / 2], serr);
	printf("ratio sim/baseline: %.2f  (target: sim >= 40000 req/s)\n",
	       sim[rounds / 2] / base[rounds / 2]);
	printf("server CPU per request (median): baseline %.1f us, sim %.1f us; one dedicated core would "
	       "serve "
	       "baseline %.0f req/s, sim %.0f req/s (ratio %.2f)\n",
	       bcpu[rounds / 2], scpu[rounds / 2], 1e6 / bcpu[rounds / 2], 1e6 / scpu[rounds / 2],
	       bcpu[rounds / 2] / scpu[rounds / 2]);
	(void)bbytes;
	curl_global_cleanup();
	return 0;
}
