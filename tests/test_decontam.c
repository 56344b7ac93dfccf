/* test_decontam.c - word n-gram matching (case, punctuation, numbers, short
 * texts compared whole, n configurable), benchmark files, marks in the
 * database and incremental reruns; on the real data: gsm8k_test against
 * itself (all marked) and math500_test (none), and a lightly reworded
 * MATH-500 problem (marked). */
#include "buf.h"
#include "db.h"
#include "decontam.h"
#include "fields.h"
#include "hash.h"
#include "json.h"
#include "jsonl.h"
#include "t.h"

static char dir[256];

static struct db *new_db(const char *name)
{
	char path[512];
	struct derr e = {0};
	struct db *db = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	return db;
}

static int64_t add_prompt(struct db *db, const char *text)
{
	struct derr e = {0};
	struct db_stmt *st = NULL;
	char hash[33];
	hash128_hex(text, strlen(text), hash);
	T_OK(db_prepare(db,
			"INSERT INTO prompts (hash, norm_version, text, created_at) VALUES (?1, 1, ?2, 0)",
			&st, &e),
	     &e);
	db_bind_text(st, 1, hash, -1);
	db_bind_text(st, 2, text, -1);
	T_OK(db_step(st, &e), &e);
	db_finalize(st);
	return db_last_rowid(db);
}

static int64_t q(struct db *db, const char *sql)
{
	struct derr e = {0};
	int64_t v = -999;
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	return v;
}

static int match(struct decontam *d, const char *text, const char **item, const char **ngram)
{
	return decontam_match(d, 0, text, strlen(text), item, ngram);
}

static const char bench_text[] =
	"The quick brown fox jumps over the lazy dog near the river bank at 7 o'clock.";

static void matching(void)
{
	struct derr e = {0};
	struct decontam *d = decontam_new(8);
	const char *item = NULL, *ngram = NULL;

	T_TRUE(decontam_new(0) == NULL);
	T_TRUE(decontam_new(65) == NULL);
	T_EQ_INT(decontam_add_benchmark(d, "b", "00", &e), 0);
	T_EQ_INT(decontam_add_benchmark(d, "b", "00", &e), DERR_EXISTS);
	decontam_add_item(d, 0, "fox", bench_text, strlen(bench_text));
	decontam_add_item(d, 0, "short", "Compute 2 + 2.", 14);

	/* Case and punctuation do not matter; the first n-gram is reported. */
	T_EQ_INT(match(d, "Puzzle: THE QUICK, brown fox -- jumps over the lazy dog!", &item, &ngram), 1);
	T_EQ_STR(item, "fox");
	T_EQ_STR(ngram, "the quick brown fox jumps over the lazy");
	/* Seven shared words are not an 8-gram. */
	T_EQ_INT(match(d, "the quick brown fox jumps over the cat", &item, &ngram), 0);
	/* Numbers are words: another number, another n-gram. */
	T_EQ_INT(match(d, "dog near the river bank at 7 o", &item, &ngram), 1);
	T_EQ_INT(match(d, "a dog near the river bank at 8 o'clock", &item, &ngram), 0);
	/* Short texts are compared whole, both ways. */
	T_EQ_INT(match(d, "compute 2+2", &item, &ngram), 1);
	T_EQ_STR(item, "short");
	T_EQ_STR(ngram, "compute 2 2");
	T_EQ_INT(match(d, "compute 2+3", &item, &ngram), 0);
	T_EQ_INT(match(d, "the quick brown fox", &item, &ngram), 0); /* part of a longer problem */
	T_EQ_INT(match(d, "", &item, &ngram), 0);
	T_EQ_INT(match(d, "?!", &item, &ngram), 0);
	decontam_free(d);

	/* n is configurable. */
	d = decontam_new(5);
	T_EQ_INT(decontam_add_benchmark(d, "b", "00", &e), 0);
	decontam_add_item(d, 0, "fox", bench_text, strlen(bench_text));
	T_EQ_INT(match(d, "the quick brown fox jumps over the cat", &item, &ngram), 1);
	T_EQ_STR(ngram, "the quick brown fox jumps");
	decontam_free(d);
	decontam_free(NULL);
}

static int write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(s, f);
	return fclose(f);
}

/* Files, marks in the database, incremental reruns, n changes. */
static void files_and_runs(void)
{
	char path[512], path2[512];
	struct derr e = {0};
	struct decontam_file_report fr;
	struct decontam_bench_report rep[2];
	struct decontam *d;
	struct db *db = new_db("runs.db");

	snprintf(path, sizeof(path), "%s/mini_bench.jsonl", dir);
	T_OK(write_file(
		     path,
		     "{\"id\": \"q1\", \"problem\": \"The quick brown fox jumps over the lazy dog near the "
		     "river bank.\"}\n"
		     "not json\n"
		     "{\"question\": \"How many legs do three spiders and two ants have in total?\"}\n"
		     "{\"other\": 1}\n"),
	     &e);
	d = decontam_new(8);
	T_OK(decontam_load_file(d, path, &fr, &e), &e);
	T_EQ_INT(fr.records, 4);
	T_EQ_INT(fr.problems, 2);
	T_EQ_INT(fr.rejected, 2);
	T_EQ_INT(fr.first_bad_line, 2);
	T_EQ_INT(decontam_load_file(d, path, &fr, &e), DERR_EXISTS);
	snprintf(path2, sizeof(path2), "%s/empty.json", dir);
	T_OK(write_file(path2, "[{\"x\": 1}]"), &e);
	T_EQ_INT(decontam_load_file(d, path2, &fr, &e), DERR_BENCH_EMPTY);
	snprintf(path2, sizeof(path2), "%s/absent.jsonl", dir);
	T_EQ_INT(decontam_load_file(d, path2, &fr, &e), DERR_NOTFOUND);

	int64_t p1 = add_prompt(db, "Riddle: the quick brown fox jumps over the lazy dog near the barn.");
	add_prompt(db, "Something else entirely, with no overlap at all with any problem here.");
	T_OK(decontam_run(db, d, rep, &e), &e);
	T_EQ_STR(rep[0].name, "mini_bench");
	T_EQ_INT(rep[0].items, 2);
	T_EQ_INT(rep[0].checked, 2);
	T_EQ_INT(rep[0].marked, 1);
	T_EQ_INT(rep[0].contaminated, 1);
	T_EQ_INT(q(db, "SELECT prompt_id FROM contamination"), p1);
	T_EQ_INT(q(db, "SELECT count(*) FROM contamination WHERE benchmark = 'mini_bench' AND benchmark_item "
		       "= 'q1'"
		       " AND ngram = 'the quick brown fox jumps over the lazy'"),
		 1);
	T_EQ_INT(q(db, "SELECT count(*) FROM sample_audit"), 0);

	/* Rerun: only the new prompt is checked; the old mark stays. */
	int64_t p3 = add_prompt(db, "how many legs do THREE spiders and two ants have, in total?");
	T_OK(decontam_run(db, d, rep, &e), &e);
	T_EQ_INT(rep[0].checked, 1);
	T_EQ_INT(rep[0].marked, 1);
	T_EQ_INT(rep[0].contaminated, 2);
	char sql[200];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM contamination WHERE prompt_id = %lld AND benchmark_item = 'line 3'",
		 (long long)p3);
	T_EQ_INT(q(db, sql), 1);
	decontam_free(d);

	/* Another n: every prompt is checked again, marks replaced. */
	d = decontam_new(12);
	T_OK(decontam_load_file(d, path, &fr, &e), &e);
	T_OK(decontam_run(db, d, rep, &e), &e);
	T_EQ_INT(rep[0].rechecked, 1);
	T_EQ_INT(rep[0].checked, 3);
	T_EQ_INT(rep[0].contaminated, 1); /* the fox prompt shares only 11 words */
	decontam_free(d);
	db_close(db);
}

/* Insert every problem of a shared data file as a prompt; returns the count. */
static long load_prompts(struct db *db, const char *path)
{
	struct jsonl_reader *rd = NULL;
	struct jsonl_record rec;
	struct derr e = {0};
	long n = 0;
	T_OK(jsonl_open(&rd, path, 1 << 20, &e), &e);
	T_OK(db_begin(db, &e), &e);
	while (jsonl_next(rd, &rec, &e) == 1) {
		cJSON *o = json_parse(rec.data, rec.len);
		const char *p = o ? fields_prompt(o, NULL) : NULL;
		if (p) {
			add_prompt(db, p);
			n++;
		}
		cJSON_Delete(o);
	}
	T_OK(db_commit(db, &e), &e);
	jsonl_close(rd);
	return n;
}

/* A MATH-500 problem with every tenth word replaced. */
static void reword(const char *text, struct buf *out)
{
	int word = 0, in = 0;
	for (const char *s = text; *s; s++) {
		int sp = *s == ' ';
		if (!sp && !in) {
			in = 1;
			if (word++ % 10 == 0) {
				buf_puts(out, "kindly");
				while (s[1] && s[1] != ' ')
					s++;
				continue;
			}
		}
		if (sp)
			in = 0;
		buf_putc(out, *s);
	}
}

static void real_data(void)
{
	char gsm[512], math[512];
	struct derr e = {0};
	struct decontam_file_report fr;
	struct decontam_bench_report rep[2];
	struct decontam *d;
	struct db *db;
	long n;

	if (!t_shared_path("gsm8k_test.jsonl", gsm, sizeof(gsm)) ||
	    !t_shared_path("math500_test.jsonl", math, sizeof(math))) {
		printf("real-data cases skipped: shared data absent\n");
		return;
	}
	db = new_db("real.db");
	n = load_prompts(db, gsm);
	T_EQ_INT(n, 1319);
	d = decontam_new(8);
	T_OK(decontam_load_file(d, gsm, &fr, &e), &e);
	T_OK(decontam_load_file(d, math, &fr, &e), &e);
	T_EQ_INT(fr.problems, 500);
	T_OK(decontam_run(db, d, rep, &e), &e);
	T_EQ_STR(rep[0].name, "gsm8k_test");
	T_EQ_INT(rep[0].contaminated, 1319);
	T_EQ_STR(rep[1].name, "math500_test");
	T_EQ_INT(rep[1].contaminated, 0);
	T_EQ_INT(q(db,
		   "SELECT count(*) FROM contamination WHERE benchmark = 'gsm8k_test' AND length(ngram) > 8"),
		 1319);

	/* A lightly reworded MATH-500 problem (the first with 40+ words). */
	{
		struct jsonl_reader *rd = NULL;
		struct jsonl_record rec;
		struct buf b = BUF_INIT(1 << 20);
		T_OK(jsonl_open(&rd, math, 1 << 20, &e), &e);
		while (jsonl_next(rd, &rec, &e) == 1) {
			cJSON *o = json_parse(rec.data, rec.len);
			const char *p = o ? fields_prompt(o, NULL) : NULL;
			int words = 0;
			for (const char *s = p; s && *s; s++)
				words += *s == ' ';
			if (p && words >= 40)
				reword(p, &b);
			cJSON_Delete(o);
			if (b.len)
				break;
		}
		jsonl_close(rd);
		T_TRUE(b.len > 0);
		int64_t id = add_prompt(db, buf_str(&b));
		T_OK(decontam_run(db, d, rep, &e), &e);
		T_EQ_INT(rep[1].checked, 1);
		T_EQ_INT(rep[1].marked, 1);
		char sql[160];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM contamination WHERE prompt_id = %lld",
			 (long long)id);
		T_EQ_INT(q(db, sql), 1);
		buf_release(&b);
	}
	decontam_free(d);
	db_close(db);
}

int main(void)
{
	t_tmpdir(dir, sizeof(dir));
	matching();
	files_and_runs();
	real_data();
	return t_done();
}
