/* test_refresh.c - distill refresh end to end: versions, no-op reruns, the
 * lock (exit 75), the publish guard (exit 3), pruning, and a SIGKILL during
 * export that the next refresh cleans up; and its config parser as a table. */
#include "t.h"

#include "buf.h"
#include "db.h"
#include "export.h"
#include "export_fixture.h"
#include "json.h"
#include "lock.h"
#include "refresh.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp[1024], dbp[1200], cfg[1200], root[1200], outp[1200], errp[1200];
static int64_t prof, rs;
static int nprompts;

static void write_config(int level)
{
	FILE *f = fopen(cfg, "w");
	fprintf(f,
		"{\"export_root\": \"exports\", \"keep_last\": 2,\n"
		" \"export\": {\"val_fraction\": 0.1, \"shard_bytes\": 50000, \"level\": %d},\n"
		" \"publish_guard\": {\"max_drop_pct\": 20, \"max_source_drop_pct\": 50,"
		" \"max_accept_rate_change\": 100}}\n",
		level);
	fclose(f);
}

static void add_traces(struct db *db, int n, size_t bytes)
{
	struct buf r = BUF_INIT(1 << 20);
	fx_exec(db, "BEGIN");
	for (int i = 0; i < n; i++, nprompts++) {
		char text[64];
		int64_t p;
		snprintf(text, sizeof(text), "Refresh prompt %d?", nprompts);
		p = fx_prompt(db, text, "1", "math", nprompts % 2 ? "gsm8k" : "math500");
		fx_text(&r, (uint64_t)nprompts, bytes);
		fx_trace(db, p, prof, 0, buf_str(&r), "\\boxed{1}", "teacher", rs, 1, 0);
	}
	fx_exec(db, "COMMIT");
	buf_release(&r);
}

static int atoi_safe(const char *s)
{
	int64_t v = 0;
	char buf[16];
	size_t n = strspn(s, "0123456789");
	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return parse_int64(buf, 1, 65535, &v) ? 0 : (int)v;
}

static pid_t spawn(void)
{
	char bin[1024];
	pid_t pid;
	t_bin("distill", bin, sizeof(bin));
	pid = fork();
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644),
		    e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(o, 1);
		dup2(e, 2);
		execl(bin, "distill", "refresh", "--config", cfg, "--db", dbp, "--json", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_code(pid_t pid)
{
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run a refresh; returns its exit code, the --json summary parsed in *sum. */
static int refresh(cJSON **sum)
{
	int code = wait_code(spawn());
	struct buf b = BUF_INIT(1 << 24);
	FILE *f = fopen(outp, "r");
	char tmp2[4096];
	size_t n;
	while (f && (n = fread(tmp2, 1, sizeof(tmp2), f)) > 0)
		buf_append(&b, tmp2, n);
	if (f)
		fclose(f);
	*sum = json_parse(buf_str(&b), b.len);
	if (code != 0 && code != 3 && code != 75) {
		char cmd[1400];
		snprintf(cmd, sizeof(cmd), "cat '%s' >&2", errp);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot show stderr\n");
	}
	buf_release(&b);
	return code;
}

static void latest(char out[64])
{
	char p[1300];
	ssize_t n;
	snprintf(p, sizeof(p), "%s/latest", root);
	n = readlink(p, out, 63);
	out[n > 0 ? n : 0] = '\0';
}

static int exists(const char *name)
{
	char p[1300];
	struct stat sb;
	snprintf(p, sizeof(p), "%s/%s", root, name);
	return stat(p, &sb) == 0;
}

static int tmp_entries(void)
{
	DIR *d = opendir(root);
	struct dirent *de;
	int n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += strstr(de->d_name, ".tmp-") != NULL;
	closedir(d);
	return n;
}

static int verify(const char *version)
{
	char p[1300];
	struct derr e = {0};
	snprintf(p, sizeof(p), "%s/%s", root, version);
	return export_verify(p, NULL, &e);
}

static int64_t q(struct db *db, const char *sql)
{
	int64_t v = -1;
	struct derr e = {0};
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	return v;
}

/* End to end against the simulator: inbox -> ingest -> work -> filter ->
 * export -> publish; a file younger than inbox_min_age waits; a rerun does
 * nothing new. */
static void end_to_end(void)
{
	char dir[1024], bin[4096], sim[4096], rules[4096], src[4096], ex[1400], cmd[32768], line[256] = "";
	char tmpp[4096];
	int pfd[2], port = 0;
	pid_t spid;
	FILE *f;
	cJSON *sum = NULL;
	struct db *db;
	struct derr e = {0};
	int64_t accepted = -1, n = -1;

	t_tmpdir(dir, sizeof(dir));
	/* The shell below runs in dir: make every path absolute. */
	if (!realpath(t_bin("distill-teacher-sim", tmpp, sizeof(tmpp)), sim) ||
	    !realpath(t_bin("distill", tmpp, sizeof(tmpp)), bin) ||
	    !realpath(t_src("rules/r1.rules", tmpp, sizeof(tmpp)), rules) ||
	    !realpath(t_src(".", tmpp, sizeof(tmpp)), src)) {
		T_TRUE(!"binaries and sources found");
		return;
	}
	snprintf(outp, sizeof(outp), "%s/out.json", dir);
	snprintf(errp, sizeof(errp), "%s/err.txt", dir);
	snprintf(cfg, sizeof(cfg), "%s/refresh.json", dir);
	snprintf(dbp, sizeof(dbp), "%s/d.db", dir);
	snprintf(root, sizeof(root), "%s/exports", dir);
	if (pipe(pfd) != 0)
		return;
	spid = fork();
	if (spid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(sim, "distill-teacher-sim", "--port", "0", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (f && fgets(line, sizeof(line), f)) {
		const char *c = strrchr(line, ':');
		port = c ? atoi_safe(c + 1) : 0;
	}
	T_TRUE(port > 0);
	snprintf(
		cmd, sizeof(cmd),
		"cd '%s' && mkdir inbox && '%s' gen-prompts --n 20 --seed 5 > inbox/a.jsonl &&"
		" touch -d '10 minutes ago' inbox/a.jsonl && '%s' gen-prompts --n 5 --seed 6 > "
		"inbox/young.jsonl &&"
		" sed 's/127.0.0.1:8000/127.0.0.1:%d/' '%s/examples/teacher-sim.json' > teacher.json &&"
		" printf '{\"db\": \"d.db\", \"inbox\": \"inbox\", \"inbox_min_age\": \"5m\", \"samples\": 2,"
		" \"teacher\": \"teacher.json\", \"rules\": \"%s\", \"export_root\": \"exports\","
		" \"max_time\": \"60s\"}' > refresh.json && '%s' init --db d.db > /dev/null",
		dir, sim, sim, port, src, rules, bin);
	T_EQ_INT(system(cmd), 0);
	T_EQ_INT(refresh(&sum), 0);
	T_EQ_STR(json_get_str(sum, "version"), "v0001");
	cJSON_Delete(sum);
	T_EQ_INT(verify("v0001"), 0);
	db = fx_open(dbp);
	/* Accepted, less the later accepted members of each dedup cluster
	 * (the simulator's samples of one arithmetic prompt are often alike). */
	accepted = q(db, "SELECT COUNT(*) FROM sample_audit s WHERE s.accepted = 1 AND NOT EXISTS ("
			 " SELECT 1 FROM dup_members d JOIN dup_members d2 ON d2.kind = d.kind"
			 " AND d2.cluster_id = d.cluster_id AND d2.rank < d.rank"
			 " JOIN sample_audit s2 ON s2.accepted = 1 AND ((d.kind = 'trace' AND s2.trace_id = "
			 "d2.member_id)"
			 "  OR (d.kind = 'prompt' AND s2.prompt_id = d2.member_id))"
			 " WHERE (d.kind = 'trace' AND d.member_id = s.trace_id)"
			 "  OR (d.kind = 'prompt' AND d.member_id = s.prompt_id))");
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces"), 40); /* the young file waited */
	T_TRUE(accepted > 0);
	snprintf(ex, sizeof(ex), "%s/v0001", root);
	T_OK(export_verify(ex, &n, &e), &e);
	T_EQ_INT(n, accepted);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM sample_audit WHERE export_shard IS NOT NULL"), accepted);
	db_close(db);
	/* Nothing new: nothing exported. */
	T_EQ_INT(refresh(&sum), 0);
	T_TRUE(cJSON_IsNull(cJSON_GetObjectItem(sum, "version")));
	cJSON_Delete(sum);
	kill(spid, SIGTERM);
	waitpid(spid, NULL, 0);
	if (f)
		fclose(f);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

/* The config parser as a table: what parses, and the words of each refusal. */
static void config_table(void)
{
	static const struct {
		const char *json;
		const char *err; /* NULL: parses */
	} cases[] = {
		{"{\"export_root\": \"x\"}", NULL},
		{"{\"export_root\": \"x\", \"max_time\": 90}", NULL},
		{"{\"export_root\": \"x\", \"max_time\": \"15m\"}", NULL},
		{"{\"export_root\": \"x\", \"max_time\": 1e300}", "want a duration"},
		{"{\"export_root\": \"x\", \"max_time\": -1}", "want a duration"},
		{"{\"export_root\": \"x\", \"samples\": 2.5}", "want a whole number"},
		{"{\"export_root\": \"x\", \"samples\": 1e300}", "want a whole number"},
		{"{\"export_root\": \"x\", \"export_root\": \"y\"}", "'export_root' is given twice"},
		{"{\"export_root\": \"x\", \"benchmarks\": \"a\", \"benchmarks\": [\"b\"]}",
		 "'benchmarks' is given twice"},
		{"{\"export_root\": \"x\", \"export\": {\"level\": 3, \"level\": 4}}",
		 "export.level: given twice"},
		{"{\"export_root\": \"x\", \"export\": {\"ruleset\": \"a\", \"ruleset\": \"b\"}}",
		 "export.ruleset: given twice"},
		{"{\"export_root\": \"x\", \"export\": {\"level\": 23}}",
		 "export.level: unknown key or bad value"},
		{"{\"export_root\": \"x\", \"export\": {\"include\": \"duplicates,bogus\"}}",
		 "export.include: \"duplicates,bogus\": want a comma list"},
		{"{\"export_root\": \"x\", \"budget\": {\"max_cost_usd\": -1}}", "budget.max_cost_usd"},
		{"{\"export_root\": \"x\", \"publish_guard\": {\"max_drop_pct\": 101}}", "not in 0..100"},
		{"{\"export_root\": \"x\", \"bogus\": 1}", "unknown key 'bogus'"},
		{"{}", "export_root is required"},
		{"[1]", "not a JSON object"},
		{"{\"export_root\": ", "not a JSON object"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct refresh_config c;
		struct derr e = {0};
		int rc = refresh_config_parse(cases[i].json, strlen(cases[i].json), "conf/refresh.json", &c,
					      &e);
		if (!cases[i].err) {
			T_EQ_INT(rc, 0);
			if (rc == 0) {
				T_EQ_STR(c.export_root, "conf/x");
				refresh_config_release(&c);
			}
		} else {
			T_EQ_INT(rc, DERR_PARSE);
			if (!strstr(e.msg, cases[i].err))
				T_FAIL_AT("case %zu: \"%s\" lacks \"%s\"", i, e.msg, cases[i].err);
		}
	}
}

int main(void)
{
	struct db *db;
	cJSON *s = NULL;
	char l[64];
	int code;

	config_table();
	t_tmpdir(tmp, sizeof(tmp));
	snprintf(dbp, sizeof(dbp), "%s/t.db", tmp);
	snprintf(cfg, sizeof(cfg), "%s/refresh.json", tmp);
	snprintf(root, sizeof(root), "%s/exports", tmp);
	snprintf(outp, sizeof(outp), "%s/out.json", tmp);
	snprintf(errp, sizeof(errp), "%s/err.txt", tmp);
	db = fx_open(dbp);
	prof = fx_profile(db, "default", "{\"model\":\"teacher\",\"template\":\"{prompt}\"}");
	rs = fx_ruleset(db, "rules1", 1);
	add_traces(db, 40, 400);
	write_config(3);

	/* First run: v0001 published. */
	T_EQ_INT(refresh(&s), 0);
	T_EQ_STR(json_get_str(s, "version"), "v0001");
	cJSON_Delete(s);
	latest(l);
	T_EQ_STR(l, "v0001");
	T_EQ_INT(verify("v0001"), 0);

	/* Nothing new: nothing exported. */
	T_EQ_INT(refresh(&s), 0);
	T_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(s, "changed")));
	T_TRUE(cJSON_IsNull(cJSON_GetObjectItem(s, "version")));
	cJSON_Delete(s);
	T_TRUE(!exists("v0002"));
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM exports"), 1);

	/* A concurrent refresh gets 75 at once. */
	{
		struct lock *lk = NULL;
		struct derr e = {0};
		int64_t t0 = mono_ns();
		T_OK(lock_open(&lk, dbp, &e), &e);
		T_EQ_INT(refresh(&s), 75);
		cJSON_Delete(s);
		T_TRUE(mono_ns() - t0 < 20LL * 1000000000);
		{
			struct lock *lk2 = NULL;
			T_EQ_INT(lock_open(&lk2, dbp, &e), DERR_LOCKED);
		}
		lock_close(lk);
	}

	/* New traces: v0002, with per-source deltas. */
	add_traces(db, 10, 400);
	T_EQ_INT(refresh(&s), 0);
	T_EQ_STR(json_get_str(s, "version"), "v0002");
	{
		const cJSON *d, *deltas = cJSON_GetObjectItem(s, "deltas");
		double added = 0, x;
		cJSON_ArrayForEach(d, deltas) if (!json_get_num(d, "added", &x)) added += x;
		T_EQ_INT((int64_t)added, 10);
	}
	cJSON_Delete(s);
	latest(l);
	T_EQ_STR(l, "v0002");

	/* The guard withholds a version that lost half its samples. */
	fx_exec(db, "UPDATE trace_outcomes SET accepted = 0 WHERE trace_id % 2 = 0");
	T_EQ_INT(refresh(&s), 3);
	T_EQ_STR(json_get_str(s, "version"), "v0003");
	T_TRUE(json_get_str(s, "withheld") && strstr(json_get_str(s, "withheld"), "fell"));
	{
		const cJSON *d, *deltas = cJSON_GetObjectItem(s, "deltas");
		double changed = 0, x;
		cJSON_ArrayForEach(d, deltas) if (!json_get_num(d, "verdict_changed", &x)) changed += x;
		T_EQ_INT((int64_t)changed, 25);
	}
	cJSON_Delete(s);
	latest(l);
	T_EQ_STR(l, "v0002");
	T_EQ_INT(verify("v0003"), 0);
	/* Still withheld on a rerun, and nothing new written. */
	T_EQ_INT(refresh(&s), 3);
	cJSON_Delete(s);
	T_TRUE(!exists("v0004"));

	/* Restored: v0004 published; keep_last 2 prunes v0001 and v0002. */
	fx_exec(db, "UPDATE trace_outcomes SET accepted = 1");
	T_EQ_INT(refresh(&s), 0);
	T_EQ_STR(json_get_str(s, "version"), "v0004");
	cJSON_Delete(s);
	latest(l);
	T_EQ_STR(l, "v0004");
	T_TRUE(!exists("v0001") && !exists("v0002") && exists("v0003") && exists("v0004"));
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM exports WHERE pruned = 1"), 2);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM export_items ei JOIN exports e ON e.id = ei.export_id WHERE "
		       "e.pruned = 1"),
		 0);

	/* SIGKILL during export: a temp dir stays, latest is untouched, and the
	 * next refresh removes it. */
	add_traces(db, 1500, 3000);
	write_config(19);
	{
		pid_t pid = spawn();
		int seen = 0;
		for (int i = 0; i < 20000 && !seen; i++) {
			struct timespec ts = {0, 1000000};
			seen = tmp_entries() > 0;
			if (!seen)
				nanosleep(&ts, NULL);
		}
		kill(pid, SIGKILL);
		code = wait_code(pid);
		T_TRUE(seen);
		T_EQ_INT(code, 128 + SIGKILL);
	}
	T_TRUE(tmp_entries() > 0);
	latest(l);
	T_EQ_STR(l, "v0004");
	T_EQ_INT(verify(l), 0);
	T_TRUE(!exists("v0005"));
	write_config(1);
	T_EQ_INT(refresh(&s), 0);
	T_EQ_INT(tmp_entries(), 0);
	{
		double stale = 0;
		json_get_num(s, "stale_removed", &stale);
		T_EQ_INT((int64_t)stale, 1);
	}
	T_EQ_STR(json_get_str(s, "version"), "v0005");
	cJSON_Delete(s);
	latest(l);
	T_EQ_STR(l, "v0005");
	T_EQ_INT(verify("v0005"), 0);

	db_close(db);
	{
		char cmd[1400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	end_to_end();
	return t_done();
}
