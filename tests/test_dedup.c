/* test_dedup.c - near-duplicate clusters: the constructed cases of
 * tests/data/dedup_pairs.tsv, cluster ranks and sample_audit, traces only
 * within their prompt, merges, determinism, and incremental runs giving the
 * same marks as a run from scratch. */
#include "buf.h"
#include "db.h"
#include "dedup.h"
#include "fields.h"
#include "hash.h"
#include "json.h"
#include "jsonl.h"
#include "minhash.h"
#include "t.h"
#include "text.h"
#include "util.h"

#include <time.h>

static char dir[256];
static int ndb;

static struct db *new_db(void)
{
	char path[512];
	struct derr e = {0};
	struct db *db = NULL;
	snprintf(path, sizeof(path), "%s/t%d.db", dir, ndb++);
	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	T_OK(db_exec(db, "INSERT INTO profiles (id, name, created_at) VALUES (1, 'default', 0)", &e), &e);
	return db;
}

static int64_t add_prompt(struct db *db, const char *text)
{
	static long serial;
	struct derr e = {0};
	struct db_stmt *st = NULL;
	char hash[33], tag[64];
	snprintf(tag, sizeof(tag), "%ld", serial++);
	hash128_hex(tag, strlen(tag), hash);
	T_OK(db_prepare(db,
			"INSERT INTO prompts (hash, norm_version, text, created_at) VALUES (?1, 1, ?2, 0)",
			&st, &e),
	     &e);
	db_bind_text(st, 1, hash, -1);
	db_bind_text(st, 2, text, -1);
	T_EQ_INT(db_step(st, &e), 0);
	db_finalize(st);
	return db_last_rowid(db);
}

static int64_t add_trace(struct db *db, int64_t prompt, int sample, const char *reasoning)
{
	struct derr e = {0};
	struct db_stmt *st = NULL;
	int64_t job;
	T_OK(db_prepare(
		     db,
		     "INSERT INTO jobs (prompt_id, profile_id, sample_index, state, created_at, updated_at)"
		     " VALUES (?1, 1, ?2, 'done', 0, 0)",
		     &st, &e),
	     &e);
	db_bind_int64(st, 1, prompt);
	db_bind_int64(st, 2, sample);
	T_OK(db_step(st, &e), &e);
	db_finalize(st);
	job = db_last_rowid(db);
	T_OK(db_prepare(db,
			"INSERT INTO traces (job_id, reasoning, answer, created_at) VALUES (?1, ?2, 'x', 0)",
			&st, &e),
	     &e);
	db_bind_int64(st, 1, job);
	db_bind_text(st, 2, reasoning, -1);
	T_OK(db_step(st, &e), &e);
	db_finalize(st);
	return db_last_rowid(db);
}

static struct dedup_report run(struct db *db, enum dedup_kind kind, double threshold)
{
	struct minhash_params p;
	struct dedup_report r;
	struct derr e = {0};
	minhash_params_default(&p);
	minhash_params_set_threshold(&p, threshold);
	T_OK(dedup_run(db, kind, &p, NULL, NULL, &r, &e), &e);
	return r;
}

/* All marks of a kind as text, in member order (for comparisons). */
static char *dump(struct db *db, const char *kind)
{
	struct buf b = BUF_INIT(1 << 24);
	struct derr e = {0};
	struct db_stmt *st = NULL;
	T_OK(db_prepare(db,
			"SELECT member_id, cluster_id, rank, coalesce(duplicate_of, -1), "
			"coalesce(similarity, -1)"
			" FROM dup_members WHERE kind = ?1 ORDER BY member_id",
			&st, &e),
	     &e);
	db_bind_text(st, 1, kind, -1);
	while (db_step(st, &e) == 1)
		buf_printf(&b, "%lld %lld %lld %lld %.17g\n", (long long)db_col_int64(st, 0),
			   (long long)db_col_int64(st, 1), (long long)db_col_int64(st, 2),
			   (long long)db_col_int64(st, 3), db_col_double(st, 4));
	db_finalize(st);
	buf_putc(&b, '\0');
	return buf_detach(&b, NULL);
}

static int64_t q(struct db *db, const char *sql)
{
	struct derr e = {0};
	int64_t v = -999;
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	return v;
}

/* tests/data/dedup_pairs.tsv: each pair in a fresh database. */
static void pair_table(void)
{
	char path[512], line[8192];
	FILE *f = fopen(t_src("tests/data/dedup_pairs.tsv", path, sizeof(path)), "r");
	int cases = 0;
	T_TRUE(f != NULL);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *fld[4], *s = line;
		int n = 0;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = '\0';
		while (n < 4) {
			fld[n++] = s;
			s = strchr(s, '\t');
			if (!s)
				break;
			*s++ = '\0';
		}
		T_EQ_INT(n, 4);
		if (n != 4)
			continue;
		struct db *db = new_db();
		add_prompt(db, fld[2]);
		add_prompt(db, fld[3]);
		run(db, DEDUP_PROMPT, 0.8);
		int64_t marked = q(db, "SELECT count(*) FROM dup_members WHERE kind = 'prompt'");
		int want = !strcmp(fld[0], "dup") ? 2 : 0;
		if (marked != want)
			fprintf(stderr, "case '%s': want %s\n", fld[1], fld[0]);
		T_EQ_INT(marked, want);
		db_close(db);
		cases++;
	}
	fclose(f);
	T_TRUE(cases >= 10);
}

/* n random lower-case words (no digits: numbers would form groups). */
static void random_words(uint64_t *s, char words[][12], int n)
{
	for (int i = 0; i < n; i++) {
		int len = 3 + (int)(*s % 6);
		for (int k = 0; k < len; k++) {
			*s = *s * 6364136223846793005ull + 1442695040888963407ull;
			words[i][k] = (char)('a' + (*s >> 33) % 26);
		}
		words[i][len] = '\0';
	}
}

static void join(char words[][12], int n, char *out, size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < n && o + 14 < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? " " : "", words[i]);
}

/* Prompts of a shared data file by their identity hash (as ingest does);
 * with traces, the response's reasoning as a trace of that prompt. */
static void load_real(struct db *db, const char *path, int with_traces, int sample)
{
	struct jsonl_reader *rd = NULL;
	struct jsonl_record rec;
	struct derr e = {0};
	struct db_stmt *ins = NULL, *get = NULL;
	T_OK(jsonl_open(&rd, path, 1 << 22, &e), &e);
	T_OK(db_prepare(db,
			"INSERT INTO prompts (hash, norm_version, text, created_at) VALUES (?1, 1, ?2, 0)"
			" ON CONFLICT (hash) DO NOTHING",
			&ins, &e),
	     &e);
	T_OK(db_prepare(db, "SELECT id FROM prompts WHERE hash = ?1", &get, &e), &e);
	T_OK(db_begin(db, &e), &e);
	while (jsonl_next(rd, &rec, &e) == 1) {
		cJSON *o = json_parse(rec.data, rec.len);
		const char *p = o ? fields_prompt(o, NULL) : NULL,
			   *resp = o ? json_get_str(o, "response") : NULL;
		char hash[33];
		if (p && text_prompt_hash(p, strlen(p), hash) == 0) {
			db_reset(ins);
			db_bind_text(ins, 1, hash, -1);
			db_bind_text(ins, 2, p, -1);
			T_OK(db_step(ins, &e), &e);
			if (with_traces && resp) {
				db_reset(get);
				db_bind_text(get, 1, hash, -1);
				T_EQ_INT(db_step(get, &e), 1);
				const char *end = strstr(resp, "</think>");
				char *reasoning = xstrndup(resp, end ? (size_t)(end - resp) : strlen(resp));
				add_trace(db, db_col_int64(get, 0), sample, reasoning);
				free(reasoning);
			}
		}
		cJSON_Delete(o);
	}
	T_OK(db_commit(db, &e), &e);
	db_finalize(ins);
	db_finalize(get);
	jsonl_close(rd);
}

/* The same GSM8K question from three trace files (three teachers) is one
 * prompt; their traces are kept apart by prompt; marks are deterministic. */
static void real_data(void)
{
	static const char *const files[] = {"traces_r1_gsm8k.jsonl", "traces_qwq32b_gsm8k_part1.jsonl",
					    "traces_r1distill_qwen32b_gsm8k.jsonl"};
	char path[512];
	struct db *a, *b;
	if (!t_shared_path("gsm8k_test.jsonl", path, sizeof(path))) {
		printf("real-data cases skipped: shared data absent\n");
		return;
	}
	a = new_db();
	b = new_db();
	for (int i = 0; i < 3; i++) {
		char f[512];
		if (!t_shared_path(files[i], f, sizeof(f)))
			continue;
		load_real(a, f, 1, i);
		load_real(b, f, 1, i);
	}
	T_EQ_INT(q(a, "SELECT count(*) FROM prompts"), 582);
	T_EQ_INT(q(a, "SELECT count(*) FROM traces"), 582 + 291 + 582);
	load_real(a, path, 0, 0);
	load_real(b, path, 0, 0);
	T_EQ_INT(q(a, "SELECT count(*) FROM prompts"), 1319); /* all 582 are GSM8K test questions */
	struct dedup_report rp = run(a, DEDUP_PROMPT, 0.8), rt = run(a, DEDUP_TRACE, 0.8);
	printf("real: %lld near-duplicate gsm8k prompts in %lld clusters; %lld of %lld traces near-identical "
	       "to a "
	       "sibling\n",
	       (long long)rp.duplicates, (long long)rp.clusters, (long long)rt.duplicates,
	       (long long)rt.indexed);
	/* Different teachers rarely write the same reasoning. */
	T_TRUE(rt.duplicates * 20 < rt.indexed);
	T_TRUE(rp.duplicates * 20 < 1319);
	run(b, DEDUP_TRACE, 0.8);
	run(b, DEDUP_PROMPT, 0.8);
	char *x = dump(a, "prompt"), *y = dump(b, "prompt");
	T_EQ_STR(x, y);
	free(x);
	free(y);
	x = dump(a, "trace");
	y = dump(b, "trace");
	T_EQ_STR(x, y);
	free(x);
	free(y);
	db_close(a);
	db_close(b);
}

int main(void)
{
	struct db *db;
	char text[4096];
	char w[80][12];
	uint64_t seed = (uint64_t)time(NULL) | 1, s;

	t_tmpdir(dir, sizeof(dir));
	printf("seed %llu\n", (unsigned long long)seed);
	pair_table();

	/* A cluster of three near duplicates plus one unrelated prompt: ranks by
	 * id, duplicate_of = rank 0, similarity with rank 0; sample_audit shows it. */
	{
		char c[80][12], a2[4096], a3[4096], x[4096];
		s = seed;
		random_words(&s, c, 60);
		join(c, 60, text, sizeof(text));
		snprintf(c[10], sizeof(c[10]), "%s", "changed");
		join(c, 60, a2, sizeof(a2));
		snprintf(c[40], sizeof(c[40]), "%s", "another");
		join(c, 60, a3, sizeof(a3));
		random_words(&s, c, 60);
		join(c, 60, x, sizeof(x));
		db = new_db();
		int64_t pa = add_prompt(db, text), px = add_prompt(db, x), p2 = add_prompt(db, a2),
			p3 = add_prompt(db, a3);
		add_trace(db, p3, 0, "some reasoning");
		struct dedup_report r = run(db, DEDUP_PROMPT, 0.8);
		T_EQ_INT(r.new_items, 4);
		T_EQ_INT(r.duplicates, 2);
		T_EQ_INT(r.clusters, 1);
		char expect[256];
		char *got = dump(db, "prompt");
		/* similarity is checked apart: cut it off. */
		struct derr e = {0};
		struct db_stmt *st = NULL;
		T_OK(db_prepare(
			     db,
			     "SELECT member_id, cluster_id, rank, duplicate_of, similarity FROM dup_members"
			     " WHERE kind = 'prompt' ORDER BY rank",
			     &st, &e),
		     &e);
		int64_t want_member[] = {pa, p2, p3};
		for (int i = 0; i < 3; i++) {
			T_EQ_INT(db_step(st, &e), 1);
			T_EQ_INT(db_col_int64(st, 0), want_member[i]);
			T_EQ_INT(db_col_int64(st, 1), pa);
			T_EQ_INT(db_col_int64(st, 2), i);
			if (i == 0) {
				T_TRUE(db_col_isnull(st, 3));
				T_TRUE(db_col_isnull(st, 4));
			} else {
				T_EQ_INT(db_col_int64(st, 3), pa);
				/* rank 2 joined through rank 1 (two words off rank 0). */
				if (i == 1)
					T_TRUE(db_col_double(st, 4) >= 0.8 && db_col_double(st, 4) < 1.0);
				else
					T_TRUE(db_col_double(st, 4) > 0.5 && db_col_double(st, 4) < 0.8);
			}
		}
		T_EQ_INT(db_step(st, &e), 0);
		db_finalize(st);
		snprintf(expect, sizeof(expect),
			 "SELECT duplicate_prompt_of FROM sample_audit WHERE prompt_id = %lld",
			 (long long)p3);
		T_EQ_INT(q(db, expect), pa);
		(void)px;
		/* Determinism: a rerun with nothing new changes nothing. */
		r = run(db, DEDUP_PROMPT, 0.8);
		T_EQ_INT(r.new_items, 0);
		T_EQ_INT(r.rows, 0);
		char *again = dump(db, "prompt");
		T_EQ_STR(again, got);
		free(again);
		/* Another threshold rebuilds, as a fresh run would. */
		r = run(db, DEDUP_PROMPT, 0.95);
		T_EQ_INT(r.rebuilt, 1);
		T_EQ_INT(r.new_items, 4);
		T_EQ_INT(q(db, "SELECT count(*) FROM dup_members WHERE kind = 'prompt'"), 0);
		r = run(db, DEDUP_PROMPT, 0.8);
		again = dump(db, "prompt");
		T_EQ_STR(again, got);
		free(again);
		/* An index written under an older signature scheme (its band keys
		 * mean nothing now) is rebuilt, giving the marks of a fresh run. */
		{
			struct derr e2 = {0};
			char want[32];
			T_OK(db_exec(db,
				     "UPDATE dedup_state SET params = 'v1' || substr(params, 3) WHERE kind = "
				     "'prompt';"
				     " UPDATE dedup_index SET bands = zeroblob(length(bands)) WHERE kind = "
				     "'prompt'",
				     &e2),
			     &e2);
			r = run(db, DEDUP_PROMPT, 0.8);
			T_EQ_INT(r.rebuilt, 1);
			T_EQ_INT(r.new_items, 4);
			again = dump(db, "prompt");
			T_EQ_STR(again, got);
			free(again);
			snprintf(want, sizeof(want), "v%d %%", MINHASH_SCHEME);
			char sql[160];
			snprintf(
				sql, sizeof(sql),
				"SELECT count(*) FROM dedup_state WHERE kind = 'prompt' AND params LIKE '%s'",
				want);
			T_EQ_INT(q(db, sql), 1);
			r = run(db, DEDUP_PROMPT, 0.8); /* and then it is current */
			T_EQ_INT(r.rebuilt, 0);
			T_EQ_INT(r.new_items, 0);
		}
		free(got);
		db_close(db);
	}

	/* Traces: near-identical reasoning within one prompt is marked; the same
	 * reasoning under another prompt is not. */
	{
		char c[80][12], r1[4096], r2[4096], r3[4096];
		s = seed ^ 0x1234;
		random_words(&s, c, 70);
		join(c, 70, r1, sizeof(r1));
		snprintf(c[35], sizeof(c[35]), "%s", "swapped");
		join(c, 70, r2, sizeof(r2));
		random_words(&s, c, 70);
		join(c, 70, r3, sizeof(r3));
		db = new_db();
		int64_t p1 = add_prompt(db, "first prompt"), p2 = add_prompt(db, "second prompt");
		int64_t t1 = add_trace(db, p1, 0, r1), t2 = add_trace(db, p1, 1, r2);
		add_trace(db, p1, 2, r3);
		int64_t t4 = add_trace(db, p2, 0, r1);
		add_trace(db, p2, 1, ""); /* no tokens: ignored */
		struct dedup_report r = run(db, DEDUP_TRACE, 0.8);
		T_EQ_INT(r.new_items, 5);
		T_EQ_INT(r.indexed, 4);
		T_EQ_INT(r.duplicates, 1);
		char sql[256];
		snprintf(sql, sizeof(sql), "SELECT duplicate_of FROM sample_audit WHERE trace_id = %lld",
			 (long long)t2);
		T_EQ_INT(q(db, sql), t1);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM dup_members WHERE member_id = %lld",
			 (long long)t4);
		T_EQ_INT(q(db, sql), 0);
		/* Prompt dedup is separate: "first prompt" vs "second prompt" differ. */
		T_EQ_INT(q(db, "SELECT count(*) FROM dup_members WHERE kind = 'prompt'"), 0);
		db_close(db);
	}

	/* A later prompt merging two clusters: ranks and cluster ids of the old
	 * members are rewritten, as a fresh run would have them. */
	{
		char c[80][12], a[4096], b[4096], cc[4096], tmp[80][12];
		s = seed ^ 0x9999;
		random_words(&s, c, 60);
		join(c, 60, cc, sizeof(cc));
		memcpy(tmp, c, sizeof(c));
		for (int i = 0; i < 4; i++)
			snprintf(tmp[i], sizeof(tmp[i]), "head%c", 'a' + i);
		join(tmp, 60, a, sizeof(a));
		memcpy(tmp, c, sizeof(c));
		for (int i = 56; i < 60; i++)
			snprintf(tmp[i], sizeof(tmp[i]), "tail%c", 'a' + i - 56);
		join(tmp, 60, b, sizeof(b));
		struct db *inc = new_db(), *all = new_db();
		const char *order[] = {a, a, b, b, cc};
		for (int i = 0; i < 5; i++) {
			if (i == 4)
				run(inc, DEDUP_PROMPT, 0.8);
			add_prompt(inc, order[i]);
			add_prompt(all, order[i]);
		}
		T_EQ_INT(q(inc, "SELECT count(DISTINCT cluster_id) FROM dup_members"), 2);
		run(inc, DEDUP_PROMPT, 0.8);
		run(all, DEDUP_PROMPT, 0.8);
		T_EQ_INT(q(inc, "SELECT count(DISTINCT cluster_id) FROM dup_members"), 1);
		T_EQ_INT(q(inc, "SELECT max(rank) FROM dup_members"), 4);
		char *x = dump(inc, "prompt"), *y = dump(all, "prompt");
		T_EQ_STR(x, y);
		free(x);
		free(y);
		db_close(inc);
		db_close(all);
	}

	/* Incremental = from scratch, randomized: 240 prompts (and traces) made
	 * of 30 bases with 0-8 words replaced, added in four batches. */
	{
		struct db *inc = new_db(), *all = new_db();
		char base[30][80][12];
		s = seed ^ 0x5555;
		for (int i = 0; i < 30; i++)
			random_words(&s, base[i], 60);
		for (int batch = 0; batch < 4; batch++) {
			for (int i = 0; i < 60; i++) {
				s = s * 6364136223846793005ull + 1442695040888963407ull;
				int bi = (int)((s >> 33) % 30), k = (int)((s >> 20) % 9);
				memcpy(w, base[bi], sizeof(w));
				for (int j = 0; j < k; j++) {
					s = s * 6364136223846793005ull + 1442695040888963407ull;
					snprintf(w[(s >> 33) % 60], sizeof(w[0]), "zz%c%c",
						 'a' + (int)(s >> 20) % 26, 'a' + (int)(s >> 40) % 26);
				}
				join(w, 60, text, sizeof(text));
				int64_t pi = add_prompt(inc, text), pj = add_prompt(all, text);
				add_trace(inc, pi, 0, text);
				add_trace(all, pj, 0, text);
				int64_t home =
					pi > 3 ? 1 + (int64_t)(bi % 3) : pi; /* traces of a few prompts */
				add_trace(inc, home, 100 + batch * 60 + i, text);
				add_trace(all, home, 100 + batch * 60 + i, text);
			}
			run(inc, DEDUP_PROMPT, 0.8);
			run(inc, DEDUP_TRACE, 0.8);
		}
		run(all, DEDUP_PROMPT, 0.8);
		run(all, DEDUP_TRACE, 0.8);
		char *x = dump(inc, "prompt"), *y = dump(all, "prompt");
		T_EQ_STR(x, y);
		T_TRUE(strlen(x) > 100); /* the generator does make clusters */
		free(x);
		free(y);
		x = dump(inc, "trace");
		y = dump(all, "trace");
		T_EQ_STR(x, y);
		T_TRUE(strlen(x) > 100);
		free(x);
		free(y);
		db_close(inc);
		db_close(all);
	}
	real_data();
	return t_done();
}
