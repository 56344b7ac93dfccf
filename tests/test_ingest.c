/*
 * test_ingest.c - the ingest stage: identity, occurrences, bad records,
 * references and conflicts, domains, jobs (K and re-ingest), strict mode,
 * a full disk, and every prompt file of ../shared/data (skipped without it).
 */
#include "t.h"
#include "buf.h"
#include "check.h"
#include "db.h"
#include "ingest.h"
#include "zst.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];
static char bad_log[4096];

static void on_bad(void *ctx, const char *path, long line, const char *reason)
{
	size_t n = strlen(bad_log);
	const char *base = strrchr(path, '/');
	(void)ctx;
	snprintf(bad_log + n, sizeof(bad_log) - n, "%s:%ld: %s\n", base ? base + 1 : path, line, reason);
}

static const char *write_file(const char *name, const char *text)
{
	static char path[4][512];
	static int k;
	char *p = path[k++ % 4];
	FILE *f;
	snprintf(p, 512, "%s/%s", dir, name);
	f = fopen(p, "wb");
	fputs(text, f);
	fclose(f);
	return p;
}

static struct db *fresh_db(const char *name)
{
	char path[512];
	struct db *db = NULL;
	struct derr e = {0};
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e) || db_migrate(db, NULL, NULL, &e)) {
		fprintf(stderr, "db: %s\n", e.msg);
		exit(1);
	}
	return db;
}

static int64_t q(struct db *db, const char *sql)
{
	int64_t v = -1;
	struct derr e = {0};
	if (db_query_int64(db, sql, &v, &e))
		fprintf(stderr, "query %s: %s\n", sql, e.msg);
	return v;
}

static char *qs(struct db *db, const char *sql, char *out, size_t len)
{
	struct db_stmt *st;
	struct derr e = {0};
	out[0] = '\0';
	if (db_prepare(db, sql, &st, &e) == 0) {
		if (db_step(st, &e) == 1)
			snprintf(out, len, "%s", db_col_text(st, 0) ? db_col_text(st, 0) : "(null)");
		db_finalize(st);
	}
	return out;
}

/* Ingest files with options; returns the ingest's status, report copied out. */
static int run_ingest(struct db *db, struct ingest_options o, const char *const *files, int n,
		      struct ingest_report *rep)
{
	struct ingest *in = NULL;
	struct derr e = {0};
	int rc;
	o.on_bad = on_bad;
	bad_log[0] = '\0';
	rc = ingest_open(&in, db, &o, &e);
	for (int i = 0; !rc && i < n; i++)
		rc = ingest_file(in, files[i], &e);
	if (!rc)
		rc = ingest_finish(in, &e);
	if (in)
		*rep = *ingest_get_report(in);
	ingest_free(in);
	return rc;
}

static void test_basic(void)
{
	struct db *db = fresh_db("basic.db");
	struct ingest_report r;
	char s[256];
	/* Lines 1-2 one prompt (white space), 3 NFC variant of 4, bad lines 5-9, 10 code, 11 number. */
	const char *a = write_file(
		"a.jsonl", "{\"question\": \"What is  2+2?\", \"answer\": \"2+2=4\\n#### 4\"}\n"
			   "{\"question\": \" What is 2+2?\\n\", \"answer\": \"#### 4\"}\n"
			   "{\"problem\": \"caf\\u00e9 costs 3\", \"answer\": \"3\"}\n"
			   "{\"problem\": \"cafe\\u0301 costs 3\", \"answer\": \"3\"}\n"
			   "{\"question\": \"broken\"\n"
			   "{\"text\": \"no prompt here\"}\n"
			   "[1, 2]\n"
			   "{\"question\": \"bad \xff byte\"}\n"
			   "{\"question\": \"   \"}\n"
			   "{\"task_id\": \"T/0\", \"prompt\": \"def f():\\n\", \"entry_point\": \"f\"}\n"
			   "{\"id\": 7, \"question\": \"Halve 55\", \"answer\": 27.5}\n");
	const char *files[] = {a};
	struct ingest_options o = {.samples = 2};

	T_EQ_INT(run_ingest(db, o, files, 1, &r), 0);
	T_EQ_INT(r.records, 11);
	T_EQ_INT(r.new_prompts, 4);
	T_EQ_INT(r.duplicates, 2);
	T_EQ_INT(r.rejected, 5);
	T_EQ_INT(r.jobs_added, 8);
	T_EQ_INT(r.occurrences, 6);
	T_EQ_STR(bad_log, "a.jsonl:5: invalid JSON\n"
			  "a.jsonl:6: no prompt field (prompt, problem or question)\n"
			  "a.jsonl:7: not a JSON object\n"
			  "a.jsonl:8: invalid UTF-8\n"
			  "a.jsonl:9: empty prompt\n");
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts"), 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompt_sources"), 6);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'"), 8);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts WHERE norm_version = 1"), 4);
	/* The first occurrence's text is kept as given; the source is the file name. */
	T_EQ_STR(qs(db, "SELECT text FROM prompts ORDER BY id LIMIT 1", s, sizeof(s)), "What is  2+2?");
	T_EQ_STR(qs(db, "SELECT group_concat(DISTINCT source) FROM prompt_sources", s, sizeof(s)), "a");
	/* Raw references exactly as given, numbers in shortest round-trip form. */
	T_EQ_STR(qs(db, "SELECT raw_reference FROM prompt_sources WHERE line = 1", s, sizeof(s)),
		 "2+2=4\n#### 4");
	T_EQ_STR(qs(db, "SELECT raw_reference FROM prompt_sources WHERE line = 11", s, sizeof(s)), "27.5");
	T_EQ_STR(qs(db, "SELECT source_id FROM prompt_sources WHERE line = 11", s, sizeof(s)), "7");
	T_EQ_STR(qs(db, "SELECT source_id FROM prompt_sources WHERE line = 10", s, sizeof(s)), "T/0");
	T_EQ_INT(q(db,
		   "SELECT COUNT(DISTINCT file_sha256) FROM prompt_sources WHERE length(file_sha256) = 64"),
		 1);
	/* The clean reference comes from the answer module. */
	T_EQ_STR(qs(db, "SELECT reference FROM prompts ORDER BY id LIMIT 1", s, sizeof(s)), "4");
	/* Domains: HumanEval-like is code, a mathematical reference is math, the rest general. */
	T_EQ_STR(qs(db, "SELECT domain FROM prompts WHERE text LIKE 'def f%'", s, sizeof(s)), "code");
	T_EQ_STR(qs(db, "SELECT domain FROM prompts WHERE text = 'Halve 55'", s, sizeof(s)), "math");
	T_EQ_STR(qs(db, "SELECT json_extract(meta, '$.entry_point') FROM prompts WHERE domain = 'code'", s,
		    sizeof(s)),
		 "f");
	/* The profile row exists by name, unbound. */
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM profiles WHERE name = 'default' AND hash IS NULL"), 1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM ingested_files WHERE lines = 11 AND new_prompts = 4 AND "
		       "rejected = 5"),
		 1);

	/* Again: nothing new, no occurrence twice, no job twice. */
	T_EQ_INT(run_ingest(db, o, files, 1, &r), 0);
	T_EQ_INT(r.new_prompts, 0);
	T_EQ_INT(r.duplicates, 6);
	T_EQ_INT(r.jobs_added, 0);
	T_EQ_INT(r.occurrences, 0);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompt_sources"), 6);
	/* Raising K adds only the missing samples. */
	o.samples = 3;
	T_EQ_INT(run_ingest(db, o, files, 1, &r), 0);
	T_EQ_INT(r.jobs_added, 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs"), 12);
	T_EQ_INT(q(db, "SELECT MAX(sample_index) FROM jobs"), 2);

	/* Another source: the same prompt with another reference is a conflict;
	 * an equal reference and a new prompt are not. */
	const char *b =
		write_file("b.json", "[{\"question\": \"What is 2+2?\", \"answer\": \"5\"},\n"
				     " {\"problem\": \"caf\\u00e9 costs 3\", \"final_answer\": \"3\"},\n"
				     " {\"question\": \"Name a colour\", \"answer\": \"red\"}]\n");
	const char *files_b[] = {b};
	o.samples = 1;
	o.source = "other";
	T_EQ_INT(run_ingest(db, o, files_b, 1, &r), 0);
	T_EQ_INT(r.new_prompts, 1);
	T_EQ_INT(r.duplicates, 2);
	T_EQ_INT(r.conflicts, 1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts WHERE reference_conflict = 1"), 1);
	T_EQ_INT(q(db, "SELECT reference_conflict FROM prompts WHERE text = 'What is  2+2?'"), 1);
	T_EQ_STR(qs(db, "SELECT domain FROM prompts WHERE text = 'Name a colour'", s, sizeof(s)), "general");
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompt_sources WHERE source = 'other'"), 3);
	T_EQ_INT(q(db, "SELECT line FROM prompt_sources WHERE source = 'other' ORDER BY id DESC LIMIT 1"), 3);

	int bad = -1;
	struct derr e = {0};
	T_OK(check_run(db, NULL, NULL, &bad, &e), &e);
	T_EQ_INT(bad, 0);
	db_close(db);
}

/* Jobs of new prompts are queued a batch at a time: across commits, with
 * repeats inside and across batches, every prompt gets exactly K jobs. */
static void test_job_batches(void)
{
	struct db *db = fresh_db("batches.db");
	struct ingest_report r;
	char body[8192];
	size_t len = 0;

	for (int i = 0; i < 60; i++) /* 40 prompts; each of the first 20 twice, 13 lines apart */
		len += (size_t)snprintf(body + len, sizeof(body) - len, "{\"question\": \"Add %d and 1\"}\n",
					i < 40 ? i : (i - 40) * 13 % 20);
	const char *files[] = {write_file("rep.jsonl", body)};
	struct ingest_options o = {.samples = 2, .batch_rows = 7};

	T_EQ_INT(run_ingest(db, o, files, 1, &r), 0);
	T_EQ_INT(r.new_prompts, 40);
	T_EQ_INT(r.duplicates, 20);
	T_EQ_INT(r.jobs_added, 80);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs"), 80);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM (SELECT prompt_id FROM jobs GROUP BY prompt_id "
		       "HAVING COUNT(*) = 2 AND MIN(sample_index) = 0 AND MAX(sample_index) = 1)"),
		 40);
	/* A larger K later: the missing sample of each, nothing else. */
	o.samples = 3;
	o.batch_rows = 11;
	T_EQ_INT(run_ingest(db, o, files, 1, &r), 0);
	T_EQ_INT(r.jobs_added, 40);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs WHERE sample_index = 2"), 40);
	db_close(db);
}

static void test_strict_and_options(void)
{
	struct db *db = fresh_db("strict.db");
	struct ingest_report r;
	struct ingest *in = NULL;
	struct derr e = {0};
	char s[256];
	const char *good =
		write_file("good.jsonl", "{\"q\": \"one\", \"gold\": 1}\n{\"q\": \"two\", \"gold\": 2}\n");
	const char *bad = write_file("bad.jsonl", "{\"q\": \"three\"}\n{\"q\": 4}\n");
	const char *files[] = {good, bad};
	struct ingest_options o = {.samples = 1, .strict = 1, .prompt_field = "q", .answer_field = "gold"};

	/* Strict: one bad line in the second file, nothing from either is written. */
	T_EQ_INT(run_ingest(db, o, files, 2, &r), DERR_PARSE);
	T_EQ_INT(r.rejected, 1);
	T_EQ_STR(bad_log, "bad.jsonl:2: no string field \"q\"\n");
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts"), 0);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs"), 0);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM ingested_files"), 0);
	/* Strict with good input writes everything; explicit fields and domain. */
	o.domain = "general";
	T_EQ_INT(run_ingest(db, o, files, 1, &r), 0);
	T_EQ_INT(r.new_prompts, 2);
	T_EQ_STR(qs(db, "SELECT group_concat(raw_reference, ',') FROM prompt_sources", s, sizeof(s)), "1,2");
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts WHERE domain = 'general'"), 2);

	/* Invalid options are refused before anything happens. */
	struct ingest_options bad_domain = {.domain = "poetry"}, bad_k = {.samples = -1};
	T_EQ_INT(ingest_open(&in, db, &bad_domain, &e), DERR_INVALID);
	T_EQ_INT(ingest_open(&in, db, &bad_k, &e), DERR_INVALID);
	/* A missing file is an error of its own, not a bad line. */
	const char *missing[] = {"/nonexistent/file.jsonl"};
	o.strict = 0;
	T_EQ_INT(run_ingest(db, o, missing, 1, &r), DERR_NOTFOUND);

	/* A record over the cap is a bad line; zstd input reads like plain. */
	struct buf z = BUF_INIT(1 << 20);
	const char plain[] = "{\"q\": \"zstd prompt\", \"gold\": \"x\"}\n{\"q\": \"a very long prompt "
			     "indeed, over the cap\"}\n";
	zst_compress(plain, sizeof(plain) - 1, 3, &z, &e);
	char zpath[512];
	snprintf(zpath, sizeof(zpath), "%s/c.jsonl.zst", dir);
	FILE *f = fopen(zpath, "wb");
	fwrite(z.data, 1, z.len, f);
	fclose(f);
	buf_release(&z);
	const char *zf[] = {zpath};
	o.max_record = 40;
	o.source = NULL;
	T_EQ_INT(run_ingest(db, o, zf, 1, &r), 0);
	T_EQ_INT(r.new_prompts, 1);
	T_EQ_INT(r.rejected, 1);
	T_EQ_STR(bad_log, "c.jsonl.zst:2: record over 40 bytes\n");
	T_EQ_STR(qs(db, "SELECT source FROM prompt_sources ORDER BY id DESC LIMIT 1", s, sizeof(s)), "c");

	/* ingest_prompt: one occurrence at a time (import-traces). */
	struct ingest_options po = {.samples = 0};
	int64_t id1 = 0, id2 = 0;
	int is_new = -1;
	T_OK(ingest_open(&in, db, &po, &e), &e);
	T_OK(ingest_prompt(in, "Trace prompt", "#### 9", "traces", "t-1", NULL, 0, NULL, &id1, &is_new, &e),
	     &e);
	T_EQ_INT(is_new, 1);
	T_OK(ingest_prompt(in, "Trace  prompt ", "9", "traces2", "t-2", NULL, 0, "math", &id2, &is_new, &e),
	     &e);
	T_EQ_INT(is_new, 0);
	T_EQ_INT(id1, id2);
	T_EQ_INT(ingest_prompt(in, "bad \xff", NULL, "traces", NULL, NULL, 0, NULL, NULL, NULL, &e),
		 DERR_UTF8);
	T_EQ_INT(ingest_prompt(in, " \n", NULL, "traces", NULL, NULL, 0, NULL, NULL, NULL, &e), DERR_INVALID);
	T_OK(ingest_finish(in, &e), &e);
	ingest_free(in);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompt_sources WHERE source LIKE 'traces%'"), 2);
	T_EQ_INT(q(db, "SELECT reference_conflict FROM prompts WHERE text = 'Trace prompt'"), 0);

	/* ingest_file_known, for refresh. */
	char sha[65];
	int known = -1;
	T_OK(ingest_file_sha256(good, sha, &e), &e);
	T_OK(ingest_file_known(db, sha, &known, &e), &e);
	T_EQ_INT(known, 1);
	T_OK(ingest_file_sha256(bad, sha, &e), &e);
	T_OK(ingest_file_known(db, sha, &known, &e), &e);
	T_EQ_INT(known, 0);
	db_close(db);
}

/* A full disk (a file-size limit in a child): a clear DERR_FULL/DERR_IO,
 * and the database is left as it was before the ingest. */
static void test_full_disk(void)
{
	struct db *db = fresh_db("full.db");
	char big[512], path[512];
	int status = 0;
	pid_t pid;

	snprintf(big, sizeof(big), "%s/big.jsonl", dir);
	FILE *f = fopen(big, "w");
	for (int i = 0; i < 10000; i++)
		fprintf(f, "{\"question\": \"Prompt number %d, padded %0200d\", \"answer\": \"%d\"}\n", i, 0,
			i);
	fclose(f);
	snprintf(path, sizeof(path), "%s/full.db", dir);
	db_close(db);
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = {2u << 20, 2u << 20};
		struct db *cdb = NULL;
		struct ingest *in = NULL;
		struct ingest_options o = {.samples = 1, .batch_rows = 1000000};
		struct derr e = {0};
		int rc;
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &rl);
		if (db_open(&cdb, path, 0, &e))
			_exit(10);
		rc = ingest_open(&in, cdb, &o, &e);
		if (!rc)
			rc = ingest_file(in, big, &e);
		if (!rc)
			rc = ingest_finish(in, &e);
		ingest_free(in);
		db_close(cdb);
		_exit(rc == DERR_FULL || rc == DERR_IO ? 0 : 20 + (rc < 0 ? -rc : rc));
	}
	waitpid(pid, &status, 0);
	T_TRUE(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
	struct derr e = {0};
	int bad = -1;
	T_OK(db_open(&db, path, 0, &e), &e);
	if (!db)
		return;
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts"), 0);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs"), 0);
	T_OK(check_run(db, NULL, NULL, &bad, &e), &e);
	T_EQ_INT(bad, 0);
	db_close(db);
}

/* A read-only directory: the ingest fails with one clear error and the
 * database is unchanged.  Root ignores permissions, so as root the check
 * runs in a child that has dropped to an unprivileged user. */
static void test_readonly(void)
{
	char rodir[300], path[320], cmd[2000];
	const char *input = write_file("ro.jsonl", "{\"question\": \"read-only?\"}\n");
	struct db *db;
	int status = 0;
	pid_t pid;

	snprintf(rodir, sizeof(rodir), "%s/ro", dir);
	snprintf(path, sizeof(path), "%s/t.db", rodir);
	snprintf(cmd, sizeof(cmd), "mkdir '%s'", rodir);
	T_EQ_INT(system(cmd), 0);
	db = fresh_db("ro/t.db");
	db_close(db);
	/* A clean close leaves no -wal/-shm; the directory and file become read-only. */
	snprintf(cmd, sizeof(cmd), "chmod 755 '%s' && chmod 644 '%s' '%s' && chmod 555 '%s'", dir, path,
		 input, rodir);
	T_EQ_INT(system(cmd), 0);
	pid = fork();
	if (pid == 0) {
		struct db *cdb = NULL;
		struct ingest *in = NULL;
		struct ingest_options o = {.samples = 1};
		struct derr e = {0};
		int rc;
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(9);
		rc = db_open(&cdb, path, 0, &e);
		if (!rc) {
			rc = ingest_open(&in, cdb, &o, &e);
			if (!rc)
				rc = ingest_file(in, input, &e);
			if (!rc)
				rc = ingest_finish(in, &e);
			ingest_free(in);
			db_close(cdb);
		}
		if (rc == 0)
			_exit(1);
		fprintf(stderr, "read-only: %s\n", e.msg);
		_exit(rc == DERR_READONLY || rc == DERR_IO ? 0 : 2);
	}
	waitpid(pid, &status, 0);
	T_TRUE(WIFEXITED(status));
	T_EQ_INT(WEXITSTATUS(status), 0);
	snprintf(cmd, sizeof(cmd), "chmod 755 '%s'", rodir);
	T_EQ_INT(system(cmd), 0);
	struct derr e = {0};
	T_OK(db_open(&db, path, 0, &e), &e);
	if (db) {
		T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts"), 0);
		db_close(db);
	}
}

/* Every prompt file of ../shared/data ingests with no manual step. */
static int test_shared(void)
{
	static const struct {
		const char *file;
		long n; /* prompts */
		const char *domain;
	} sets[] = {
		{"gsm8k_train.jsonl", 7473, "math"},
		{"gsm8k_test.jsonl", 1319, "math"},
		{"math500_test.jsonl", 500, "math"},
		{"aime24_test.jsonl", 30, "math"},
		{"amc23_test.jsonl", 40, "math"},
		{"minerva_math_test.jsonl", 272, "math"},
		{"humaneval.jsonl", 164, "code"},
		{"traces_r1_gsm8k.jsonl", 582, "math"},
		{"traces_qwq32b_gsm8k_part1.jsonl", 291, "math"},
		{"traces_r1distill_qwen32b_gsm8k.jsonl", 582, "math"},
	};
	char path[512], sql[1024];
	struct ingest_report r;
	struct db *db;

	if (!t_shared_path("gsm8k_train.jsonl", path, sizeof(path)))
		return 0;
	db = fresh_db("shared.db");
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		const char *files[1];
		struct ingest_options o = {.samples = 1};
		files[0] = t_shared_path(sets[i].file, path, sizeof(path));
		T_EQ_INT(run_ingest(db, o, files, 1, &r), 0);
		T_EQ_INT(r.rejected, 0);
		T_EQ_INT(r.records, sets[i].n);
		snprintf(sql, sizeof(sql),
			 "SELECT COUNT(DISTINCT p.id) FROM prompts p JOIN prompt_sources s ON s.prompt_id = "
			 "p.id "
			 "WHERE s.file_sha256 = (SELECT sha256 FROM ingested_files WHERE path = '%s') "
			 "AND p.domain = '%s'",
			 path, sets[i].domain);
		T_EQ_INT(q(db, sql), sets[i].n);
		if (strcmp(sets[i].domain, "math") == 0) {
			/* A reference for every math prompt (minerva's from its solution's box). */
			snprintf(sql, sizeof(sql),
				 "SELECT COUNT(*) FROM prompt_sources s WHERE s.file_sha256 = (SELECT sha256 "
				 "FROM "
				 "ingested_files WHERE path = '%s') AND s.raw_reference IS NULL",
				 path);
			T_EQ_INT(q(db, sql), 0);
		}
	}
	/* The R1 traces' prompts are all in gsm8k_test: no new prompts, same references. */
	T_EQ_INT(q(db, "SELECT new_prompts FROM ingested_files WHERE path LIKE '%traces_r1_gsm8k.jsonl'"), 0);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompts WHERE reference_conflict = 1"), 0);
	db_close(db);
	return 1;
}

int main(void)
{
	t_tmpdir(dir, sizeof(dir));
	test_basic();
	test_job_batches();
	test_strict_and_options();
	test_full_disk();
	test_readonly();
	if (!test_shared())
		printf("note: ../shared/data absent, real-data checks skipped\n");
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	T_EQ_INT(system(cmd), 0);
	return t_done();
}
