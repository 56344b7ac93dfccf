/*
 * bench_dedup.c - `distill dedup` at scale: N prompts of GSM8K length
 * (~250 bytes, 2% planted near copies) and N traces of 4 KB (4 samples per
 * prompt, 5% near copies of a sibling), then the wall time and peak RSS of
 * the distill process, from scratch and for an incremental rerun after 1%
 * more of each.  Target (issue 7): minutes, under 1 GB.  N defaults to
 * 800,000 (BENCH_DEDUP_N overrides); the database goes to $TMPDIR and is
 * removed afterwards.  WAL, synchronous=NORMAL on both runs.
 */
#include "db.h"
#include "t.h"
#include "util.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 17;
}

static char vocab[4096][10];

/* Random text of about len bytes; numbers appear as words. */
static size_t gen(uint64_t *s, char *out, size_t len)
{
	size_t o = 0;
	while (o + 24 < len) {
		uint64_t r = rng(s);
		if (r % 9 == 0)
			o += (size_t)snprintf(out + o, len - o, "%u ", (unsigned)(r >> 12) % 500);
		else
			o += (size_t)snprintf(out + o, len - o, "%s%s", vocab[(r >> 12) % 4096],
					      r % 13 ? " " : ". ");
	}
	out[o] = '\0';
	return o;
}

/* Replace k words of text in place by other words of the same length. */
static void mutate(uint64_t *s, char *text, size_t len, int k)
{
	for (int i = 0; i < k; i++) {
		size_t at = rng(s) % len;
		while (at < len && text[at] != ' ')
			at++;
		for (at++; at < len && text[at] != ' ' && text[at] != '.'; at++)
			text[at] = (char)('a' + rng(s) % 26);
	}
}

static int fill(struct db *db, int64_t from, int64_t count, uint64_t *s, struct derr *e)
{
	struct db_stmt *pst = NULL, *jst = NULL, *tst = NULL;
	static char prev[320], trace[4200], sib[4200];
	char hash[40];
	int rc;

	if ((rc = db_begin(db, e)) ||
	    (rc = db_prepare(db,
			     "INSERT INTO prompts (id, hash, norm_version, text, created_at)"
			     " VALUES (?1, ?2, 1, ?3, 0)",
			     &pst, e)) ||
	    (rc = db_prepare(db,
			     "INSERT INTO jobs (id, prompt_id, profile_id, sample_index, state, created_at, "
			     "updated_at)"
			     " VALUES (?1, ?2, 1, ?3, 'done', 0, 0)",
			     &jst, e)) ||
	    (rc = db_prepare(db,
			     "INSERT INTO traces (id, job_id, reasoning, answer, created_at) VALUES (?1, ?1, "
			     "?2, 'x', 0)",
			     &tst, e)))
		goto out;
	for (int64_t i = from; i < from + count; i++) {
		char text[320];
		if (i > 1 && rng(s) % 50 == 0) { /* a near copy of the previous prompt */
			snprintf(text, sizeof(text), "%s", prev);
			mutate(s, text, strlen(text), 1);
		} else {
			gen(s, text, 260);
		}
		snprintf(prev, sizeof(prev), "%s", text);
		snprintf(hash, sizeof(hash), "%032llx", (unsigned long long)i);
		db_reset(pst);
		db_bind_int64(pst, 1, i);
		db_bind_text(pst, 2, hash, -1);
		db_bind_text(pst, 3, text, -1);
		if ((rc = db_step(pst, e)) < 0)
			goto out;
		/* Trace i belongs to prompt (i + 3) / 4, sample (i - 1) % 4. */
		if (i % 4 != 1 && rng(s) % 20 == 0) {
			memcpy(trace, sib, sizeof(trace));
			mutate(s, trace, strlen(trace), 2);
		} else {
			gen(s, trace, 4096);
		}
		memcpy(sib, trace, sizeof(sib));
		db_reset(jst);
		db_bind_int64(jst, 1, i);
		db_bind_int64(jst, 2, (i + 3) / 4);
		db_bind_int64(jst, 3, (i - 1) % 4);
		if ((rc = db_step(jst, e)) < 0)
			goto out;
		db_reset(tst);
		db_bind_int64(tst, 1, i);
		db_bind_text(tst, 2, trace, -1);
		if ((rc = db_step(tst, e)) < 0)
			goto out;
		if (i % 20000 == 0) {
			if ((rc = db_commit(db, e)) || (rc = db_begin(db, e)))
				goto out;
		}
	}
	rc = db_commit(db, e);
out:
	if (rc)
		db_rollback(db);
	db_finalize(pst);
	db_finalize(jst);
	db_finalize(tst);
	return rc;
}

/* Run `distill dedup --db path`; wall and CPU seconds, peak RSS in MiB. */
static int run_dedup(const char *path, double *secs, double *cpu, double *rss_mib)
{
	char bin[512];
	struct rusage ru;
	int status;
	int64_t t0 = mono_ns();
	pid_t pid;

	t_bin("distill", bin, sizeof(bin));
	pid = fork();
	if (pid == 0) {
		execl(bin, "distill", "dedup", "--db", path, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
		return -1;
	*secs = (double)(mono_ns() - t0) / 1e9;
	*rss_mib = (double)ru.ru_maxrss / 1024.0;
	*cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
	char dir[256], path[512];
	const char *env = getenv("BENCH_DEDUP_N");
	int64_t n = 800000;
	uint64_t s = 99;
	struct derr e = {0};
	struct db *db = NULL;
	double secs, cpu, rss, secs2, cpu2, rss2;

	if (env && parse_int64(env, 8, INT64_C(100000000), &n)) {
		fprintf(stderr, "BENCH_DEDUP_N: not a count\n");
		return 2;
	}
	for (int v = 0; v < 4096; v++) {
		int len = 2 + (int)(rng(&s) % 8);
		for (int k = 0; k < len; k++)
			vocab[v][k] = (char)('a' + rng(&s) % 26);
		vocab[v][len] = '\0';
	}
	t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/bench.db", dir);
	if (db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e) || db_migrate(db, NULL, NULL, &e) ||
	    db_exec(db, "INSERT INTO profiles (id, name, created_at) VALUES (1, 'default', 0)", &e)) {
		fprintf(stderr, "%s\n", e.msg);
		return 1;
	}
	int64_t t0 = mono_ns();
	if (fill(db, 1, n, &s, &e)) {
		fprintf(stderr, "fill: %s\n", e.msg);
		return 1;
	}
	printf("dedup: generated %lld prompts (~250 B) and %lld traces (4 KB) in %.0f s\n", (long long)n,
	       (long long)n, (double)(mono_ns() - t0) / 1e9);
	fflush(stdout);
	if (run_dedup(path, &secs, &cpu, &rss) != 0) {
		fprintf(stderr, "distill dedup failed\n");
		return 1;
	}
	if (fill(db, n + 1, n / 100, &s, &e)) {
		fprintf(stderr, "fill: %s\n", e.msg);
		return 1;
	}
	if (run_dedup(path, &secs2, &cpu2, &rss2) != 0) {
		fprintf(stderr, "distill dedup (rerun) failed\n");
		return 1;
	}
	int64_t pd = 0, td = 0;
	db_query_int64(db, "SELECT count(*) FROM dup_members WHERE kind = 'prompt' AND rank > 0", &pd, &e);
	db_query_int64(db, "SELECT count(*) FROM dup_members WHERE kind = 'trace' AND rank > 0", &td, &e);
	db_close(db);
	printf("  from scratch: %.1f s wall, %.1f s CPU, peak RSS %.0f MiB   (target: minutes, < 1024 MiB: "
	       "%s)\n",
	       secs, cpu, rss, secs < 600 && rss < 1024 ? "met" : "NOT met");
	printf("  rerun after +1%%: %.1f s wall, %.1f s CPU, peak RSS %.0f MiB; marked %lld prompts, %lld "
	       "traces\n",
	       secs2, cpu2, rss2, (long long)pd, (long long)td);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bench.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bench.db-shm", dir);
	unlink(path);
	rmdir(dir);
	return 0;
}
