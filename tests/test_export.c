/* test_export.c - export: round trip, determinism, split, selection, verify, gc. */
#include "t.h"

#include "buf.h"
#include "check.h"
#include "db.h"
#include "export.h"
#include "export_fixture.h"
#include "gc.h"
#include "json.h"
#include "util.h"
#include "zst.h"

#include <sys/stat.h>
#include <unistd.h>

#define NPROMPTS 60
#define NSAMPLES 3

static const char DEF_DEFAULT[] =
	"{\"model\":\"teacher-x\",\"system\":\"You are careful.\",\"template\":\"{prompt}\\nPlease reason "
	"step by "
	"step, and put your final answer within \\\\boxed{}.\",\"sampling\":{\"temperature\":0.6}}";
static const char DEF_PLAIN[] = "{\"model\":\"teacher-y\",\"template\":\"Q: {prompt}\"}";

struct expect {
	int64_t trace_id;
	int64_t prompt;
	int want; /* selected by the default export */
	int seen;
};

static struct expect ex[NPROMPTS * NSAMPLES + 8];
static int nex;
static int64_t rs_cur, rs_old;

static void build(struct db *db)
{
	struct buf r = BUF_INIT(1 << 20);
	int64_t p_def, p_plain, pids[NPROMPTS];

	fx_exec(db, "BEGIN");
	p_def = fx_profile(db, "default", DEF_DEFAULT);
	p_plain = fx_profile(db, "plain", DEF_PLAIN);
	rs_old = fx_ruleset(db, "oldrules", 1);
	rs_cur = fx_ruleset(db, "currules", 1);
	for (int i = 0; i < NPROMPTS; i++) {
		char text[64], ref[16];
		snprintf(text, sizeof(text), "What is %d + %d?", i, i + 1);
		snprintf(ref, sizeof(ref), "%d", 2 * i + 1);
		pids[i] = fx_prompt(db, text, ref, i % 3 ? "general" : "math", i % 2 ? "gsm8k" : "math500");
		for (int k = 0; k < NSAMPLES; k++) {
			int acc = (i + k) % 4 != 0, flag = i == 5 && k == 1;
			struct expect *x = &ex[nex++];
			fx_text(&r, (uint64_t)i * 10 + (uint64_t)k, 300 + (size_t)(i % 7) * 50);
			x->trace_id = fx_trace(db, pids[i], p_def, k, buf_str(&r),
					       "The answer is \\boxed{1}.", "teacher-x", rs_cur, acc, flag);
			fx_insert(db,
				  "INSERT INTO trace_outcomes (trace_id, ruleset_id, accepted, judged_at) "
				  "VALUES (?1, ?2, 1, 1)",
				  "ii", x->trace_id, rs_old);
			fx_insert(db,
				  "INSERT INTO verdicts (trace_id, ruleset_id, rule, state) VALUES (?1, ?2, "
				  "'r', 'pass')",
				  "ii", x->trace_id, rs_old);
			x->prompt = i;
			x->want = acc && !flag && i != 7 && !(i == 9 && k == 2) && i != 21;
		}
	}
	/* A sample of another profile (no system prompt). */
	ex[nex].trace_id = fx_trace(db, pids[30], p_plain, 0, "plain reasoning", "42", NULL, rs_cur, 1, 0);
	ex[nex].prompt = 30;
	ex[nex++].want = 1;
	/* Every ASCII byte, at each alignment against the escaper's 16-byte
	 * steps, and UTF-8 cut across them. */
	buf_reset(&r);
	for (int off = 0; off < 17; off++) {
		for (int k = 0; k < off; k++)
			buf_putc(&r, 'a');
		for (int c = 1; c < 128; c++)
			buf_putc(&r, (char)c);
		buf_puts(&r, "\xc3\xa9\xe2\x88\x9a\xf0\x9f\x99\x82\"\\\x1f \x7f");
	}
	ex[nex].trace_id = fx_trace(db, pids[31], p_plain, 0, buf_str(&r), "\x1f\"\\", NULL, rs_cur, 1, 0);
	ex[nex].prompt = 31;
	ex[nex++].want = 1;
	/* Marks: prompt 7 contaminated; traces 9/1 and 9/2 one cluster; prompts 20 and 21 one cluster. */
	fx_insert(db, "INSERT INTO contamination (prompt_id, benchmark, marked_at) VALUES (?1, 'aime', 1)",
		  "i", pids[7]);
	fx_insert(db,
		  "INSERT INTO dup_members (kind, member_id, cluster_id, rank) VALUES ('trace', ?1, 1, 0)",
		  "i", ex[9 * NSAMPLES + 1].trace_id);
	fx_insert(db,
		  "INSERT INTO dup_members (kind, member_id, cluster_id, rank) VALUES ('trace', ?1, 1, 1)",
		  "i", ex[9 * NSAMPLES + 2].trace_id);
	fx_insert(db,
		  "INSERT INTO dup_members (kind, member_id, cluster_id, rank) VALUES ('prompt', ?1, 5, 0)",
		  "i", pids[20]);
	fx_insert(db,
		  "INSERT INTO dup_members (kind, member_id, cluster_id, rank) VALUES ('prompt', ?1, 5, 1)",
		  "i", pids[21]);
	fx_exec(db, "COMMIT");
	buf_release(&r);
}

static int read_file(const char *path, struct buf *out)
{
	FILE *f = fopen(path, "rb");
	char tmp[65536];
	size_t n;
	if (!f)
		return -1;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_append(out, tmp, n);
	fclose(f);
	return 0;
}

static void read_shard(const char *path, struct buf *out)
{
	struct zst_reader *zr = NULL;
	struct derr e = {0};
	char tmp[65536];
	long n;
	T_OK(zst_reader_open(&zr, path, 1 << 30, &e), &e);
	if (!zr)
		return;
	while ((n = zst_reader_read(zr, tmp, sizeof(tmp), &e)) > 0)
		buf_append(out, tmp, (size_t)n);
	T_TRUE(n == 0);
	zst_reader_close(zr);
}

static struct expect *find(int64_t trace_id)
{
	for (int i = 0; i < nex; i++)
		if (ex[i].trace_id == trace_id)
			return &ex[i];
	return NULL;
}

static const char *msg_content(const cJSON *msgs, int i, const char *role)
{
	const cJSON *m = cJSON_GetArrayItem(msgs, i);
	const char *r = json_get_str(m, "role");
	if (!r || strcmp(r, role))
		return NULL;
	return json_get_str(m, "content");
}

/* Read every shard of dir back and compare each line with the database. */
static void round_trip(struct db *db, const char *dir, int64_t export_id, int64_t want_samples)
{
	char path[4096];
	struct buf mb = BUF_INIT(1 << 24);
	struct export_manifest m;
	struct derr e = {0};
	struct db_stmt *item = NULL, *tr = NULL;
	int64_t lines = 0;
	char train_prompts[NPROMPTS] = {0}, val_prompts[NPROMPTS] = {0};

	for (int i = 0; i < nex; i++)
		ex[i].seen = 0;
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	T_EQ_INT(read_file(path, &mb), 0);
	T_OK(export_manifest_parse(buf_str(&mb), mb.len, &m, &e), &e);
	T_EQ_INT(m.samples, want_samples);
	T_EQ_STR(m.ruleset_hash, "currules");
	T_OK(db_prepare(db,
			"SELECT trace_id FROM export_items WHERE export_id = ?1 AND shard = ?2 AND line = ?3",
			&item, &e),
	     &e);
	T_OK(db_prepare(db,
			"SELECT t.reasoning, t.answer, p.reference, p.text, pr.name FROM traces t JOIN jobs "
			"j ON j.id ="
			" t.job_id JOIN prompts p ON p.id = j.prompt_id JOIN profiles pr ON pr.id = "
			"j.profile_id WHERE t.id = ?1",
			&tr, &e),
	     &e);
	for (int s = 0; s < m.nshards; s++) {
		struct buf data = BUF_INIT((size_t)1 << 30);
		const char *p, *nl;
		int64_t line = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, m.shards[s].file);
		read_shard(path, &data);
		for (p = buf_str(&data); (nl = strchr(p, '\n')); p = nl + 1, line++) {
			cJSON *o = json_parse(p, (size_t)(nl - p));
			const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
			struct expect *x = NULL;
			struct buf want = BUF_INIT(1 << 20);
			int64_t tid = 0;
			int plain;

			T_TRUE(o != NULL);
			/* Strict JSON: no raw control byte inside a line (cJSON lets them by). */
			for (const char *c = p; c < nl; c++)
				if ((unsigned char)*c < 0x20) {
					T_TRUE(!"raw control byte in a shard line");
					break;
				}
			db_reset(item);
			db_bind_int64(item, 1, export_id);
			db_bind_text(item, 2, m.shards[s].file, -1);
			db_bind_int64(item, 3, line);
			if (db_step(item, &e) == 1)
				tid = db_col_int64(item, 0);
			x = find(tid);
			T_TRUE(x != NULL);
			if (!x || !o) {
				cJSON_Delete(o);
				continue;
			}
			T_TRUE(x->want);
			x->seen++;
			(m.shards[s].split[0] == 'v' ? val_prompts : train_prompts)[x->prompt] = 1;
			db_reset(tr);
			db_bind_int64(tr, 1, tid);
			T_EQ_INT(db_step(tr, &e), 1);
			plain = !strcmp(db_col_text(tr, 4), "plain");
			T_EQ_STR(json_get_str(o, "reasoning"), db_col_text(tr, 0));
			T_EQ_STR(json_get_str(o, "answer"), db_col_text(tr, 1));
			T_EQ_STR(json_get_str(o, "reference"), db_col_text(tr, 2));
			T_EQ_STR(json_get_str(o, "source"), x->prompt % 2 ? "gsm8k" : "math500");
			T_EQ_STR(json_get_str(o, "teacher"), plain ? "teacher-y" : "teacher-x");
			T_TRUE(json_get_str(o, "id") && strlen(json_get_str(o, "id")) == 16);
			T_TRUE(json_get_str(o, "prompt_id") && strlen(json_get_str(o, "prompt_id")) == 32);
			/* messages: exactly what the teacher was sent, plus its answer. */
			T_EQ_INT(cJSON_GetArraySize(msgs), plain ? 2 : 3);
			if (!plain)
				T_EQ_STR(msg_content(msgs, 0, "system"), "You are careful.");
			buf_printf(&want,
				   plain ? "Q: %s"
					 : "%s\nPlease reason step by step, and put your final answer within "
					   "\\boxed{}.",
				   db_col_text(tr, 3));
			T_EQ_STR(msg_content(msgs, plain ? 0 : 1, "user"), buf_str(&want));
			buf_reset(&want);
			buf_printf(&want, "<think>\n%s\n</think>\n\n%s", db_col_text(tr, 0),
				   db_col_text(tr, 1));
			T_EQ_STR(msg_content(msgs, plain ? 1 : 2, "assistant"), buf_str(&want));
			buf_release(&want);
			cJSON_Delete(o);
		}
		T_EQ_INT(line, m.shards[s].samples);
		T_EQ_STR(p, ""); /* every line ends with a newline */
		lines += line;
		buf_release(&data);
	}
	T_EQ_INT(lines, want_samples);
	for (int i = 0; i < nex; i++)
		T_EQ_INT(ex[i].seen, ex[i].want);
	/* The split is by prompt: no prompt in both. */
	for (int i = 0; i < NPROMPTS; i++)
		T_TRUE(!(train_prompts[i] && val_prompts[i]));
	db_finalize(item);
	db_finalize(tr);
	export_manifest_release(&m);
	buf_release(&mb);
}

static int64_t do_export(struct db *db, const struct export_opts *o, const char *dir, int force,
			 struct derr *e)
{
	struct export_plan *p = NULL;
	struct export_result res;
	int rc = export_plan_new(db, o, &p, e);
	if (!rc)
		rc = export_plan_write(db, p, dir, force, NULL, &res, e);
	export_plan_free(p);
	return rc ? rc : res.export_id;
}

static int same_file(const char *a, const char *b)
{
	struct buf x = BUF_INIT(1 << 30), y = BUF_INIT(1 << 30);
	int same = !read_file(a, &x) && !read_file(b, &y) && x.len == y.len &&
		   !memcmp(buf_str(&x), buf_str(&y), x.len);
	buf_release(&x);
	buf_release(&y);
	return same;
}

static int64_t count_sql(struct db *db, const char *sql)
{
	int64_t v = -1;
	struct derr e = {0};
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	return v;
}

int main(void)
{
	char tmp[1024], dbp[1200], d1[1200], d2[1200], d3[1200], path[1400], path2[1400];
	struct export_opts o;
	struct export_manifest m;
	struct derr e = {0};
	struct db *db;
	int64_t id1, id2, want = 0, n = 0;

	t_tmpdir(tmp, sizeof(tmp));
	snprintf(dbp, sizeof(dbp), "%s/t.db", tmp);
	snprintf(d1, sizeof(d1), "%s/out1", tmp);
	snprintf(d2, sizeof(d2), "%s/out2", tmp);
	snprintf(d3, sizeof(d3), "%s/out3", tmp);
	db = fx_open(dbp);
	build(db);
	for (int i = 0; i < nex; i++)
		want += ex[i].want;

	/* Round trip, several shards, a val split. */
	export_opts_init(&o);
	o.val_fraction = 0.25;
	o.shard_bytes = 8000;
	o.seed = 7;
	o.threads = 1;
	id1 = do_export(db, &o, d1, 0, &e);
	T_TRUE(id1 > 0);
	round_trip(db, d1, id1, want);
	T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM export_items"), want);
	/* Foreign keys, off while the lineage is written, are on again. */
	T_EQ_INT(count_sql(db, "PRAGMA foreign_keys"), 1);
	T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM pragma_foreign_key_check('export_items')"), 0);
	{
		int bad = -1;
		T_OK(check_run(db, NULL, NULL, &bad, &e), &e);
		T_EQ_INT(bad, 0);
		/* `distill check` would see an item of a missing trace. */
		fx_exec(db,
			"PRAGMA foreign_keys = OFF; INSERT INTO export_items (export_id, trace_id, shard, "
			"line, split) VALUES (1, 999999, 'x', 0, 'train')");
		T_OK(check_run(db, NULL, NULL, &bad, &e), &e);
		T_EQ_INT(bad, 1);
		fx_exec(db, "DELETE FROM export_items WHERE trace_id = 999999; PRAGMA foreign_keys = ON");
	}
	T_EQ_INT(count_sql(db, "SELECT COUNT(DISTINCT shard) FROM export_items WHERE split = 'val'") > 0, 1);
	T_EQ_INT(count_sql(db, "SELECT COUNT(DISTINCT shard) FROM export_items WHERE split = 'train'") > 2,
		 1);
	T_OK(export_verify(d1, &n, &e), &e);
	T_EQ_INT(n, want);

	/* Byte-identical re-export, whatever the number of threads. */
	o.threads = 3;
	id2 = do_export(db, &o, d2, 0, &e);
	T_TRUE(id2 > id1);
	{
		struct buf mb = BUF_INIT(1 << 24);
		snprintf(path, sizeof(path), "%s/manifest.json", d1);
		read_file(path, &mb);
		T_OK(export_manifest_parse(buf_str(&mb), mb.len, &m, &e), &e);
		buf_release(&mb);
	}
	/* A split's lines are shared equally between its shards (to a line). */
	for (int s = 0; s < m.nshards; s++)
		for (int t = 0; t < m.nshards; t++)
			if (!strcmp(m.shards[s].split, m.shards[t].split))
				T_TRUE(m.shards[s].samples - m.shards[t].samples <= 1);
	snprintf(path2, sizeof(path2), "%s/manifest.json", d2);
	T_TRUE(same_file(path, path2));
	for (int s = 0; s < m.nshards; s++) {
		snprintf(path, sizeof(path), "%s/%s", d1, m.shards[s].file);
		snprintf(path2, sizeof(path2), "%s/%s", d2, m.shards[s].file);
		T_TRUE(same_file(path, path2));
	}

	/* An existing OUTDIR is refused; --force replaces it. */
	T_EQ_INT(do_export(db, &o, d2, 0, &e), DERR_EXISTS);
	o.seed = 8; /* other order, same lines and ids */
	T_TRUE(do_export(db, &o, d2, 1, &e) > 0);
	T_OK(export_verify(d2, &n, &e), &e);
	T_EQ_INT(n, want);
	snprintf(path, sizeof(path), "%s/%s", d1, m.shards[0].file);
	snprintf(path2, sizeof(path2), "%s/%s", d2, m.shards[0].file);
	T_TRUE(!same_file(path, path2));
	T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM (SELECT trace_id FROM export_items GROUP BY trace_id"
			       " HAVING COUNT(DISTINCT split) > 1)"),
		 0);

	/* Verify catches a flipped byte and a missing shard. */
	{
		FILE *f;
		int c;
		snprintf(path, sizeof(path), "%s/%s", d2, m.shards[0].file);
		f = fopen(path, "r+b");
		fseek(f, 20, SEEK_SET);
		c = fgetc(f);
		fseek(f, 20, SEEK_SET);
		fputc(c ^ 1, f);
		fclose(f);
		T_EQ_INT(export_verify(d2, NULL, &e), DERR_MISMATCH);
		T_TRUE(strstr(e.msg, m.shards[0].file) != NULL);
		snprintf(path, sizeof(path), "%s/%s", d1, m.shards[m.nshards - 1].file);
		T_EQ_INT(unlink(path), 0);
		T_EQ_INT(export_verify(d1, NULL, &e), DERR_NOTFOUND);
	}
	export_manifest_release(&m);

	/* Selection: --max-per-prompt 1 keeps the first accepted sample per prompt. */
	export_opts_init(&o);
	o.max_per_prompt = 1;
	T_TRUE(do_export(db, &o, d3, 1, &e) > 0);
	T_OK(export_verify(d3, &n, &e), &e);
	{
		int64_t prompts = 0;
		for (int i = 0; i < NPROMPTS; i++) {
			int any = 0;
			for (int k = 0; k < nex; k++)
				any |= ex[k].prompt == i && ex[k].want;
			prompts += any;
		}
		T_EQ_INT(n, prompts);
	}
	/* --include widens: duplicates, contaminated, flagged. */
	T_OK(export_include_parse("duplicates,contaminated,flagged", &o.include, &e), &e);
	T_EQ_INT(export_include_parse("duplicates,bogus", &o.include, &e), DERR_INVALID);
	export_opts_init(&o);
	T_OK(export_include_parse("duplicates,contaminated,flagged", &o.include, &e), &e);
	T_TRUE(do_export(db, &o, d3, 1, &e) > 0);
	T_OK(export_verify(d3, &n, &e), &e);
	T_EQ_INT(n,
		 count_sql(db, "SELECT COUNT(*) FROM trace_outcomes o JOIN rulesets r ON r.id = o.ruleset_id"
			       " WHERE r.is_current = 1 AND o.accepted = 1"));
	/* Selectors and quotas. */
	export_opts_init(&o);
	o.domain = "math";
	o.source = "gsm8k";
	T_TRUE(do_export(db, &o, d3, 1, &e) > 0);
	T_OK(export_verify(d3, &n, &e), &e);
	{
		int64_t w = 0;
		for (int i = 0; i < nex; i++)
			w += ex[i].want && ex[i].prompt % 3 == 0 && ex[i].prompt % 2 == 1 &&
			     ex[i].trace_id != ex[nex - 1].trace_id;
		T_EQ_INT(n, w);
	}
	export_opts_init(&o);
	o.mix_json = "{\"domain\": {\"math\": 5, \"*\": 3}}";
	T_TRUE(do_export(db, &o, d3, 1, &e) > 0);
	T_OK(export_verify(d3, &n, &e), &e);
	T_EQ_INT(n, 8);
	o.mix_json = "{\"domains\": {}}";
	T_EQ_INT(do_export(db, &o, d3, 1, &e), DERR_PARSE);
	export_opts_init(&o);
	o.ruleset = "nosuch";
	T_EQ_INT(do_export(db, &o, d3, 1, &e), DERR_NOTFOUND);
	o.ruleset = "oldrules"; /* everything was accepted under the old rules */
	o.include = EXPORT_INCLUDE_DUPLICATES | EXPORT_INCLUDE_CONTAMINATED;
	T_TRUE(do_export(db, &o, d3, 1, &e) > 0);
	T_OK(export_verify(d3, &n, &e), &e);
	T_EQ_INT(n, NPROMPTS * NSAMPLES);

	/* The manifest parser keeps shard names inside the directory. */
	{
		static const char *bad[] = {
			("{\"format_version\":1,\"ruleset_hash\":\"x\",\"counts\":{\"samples\":0},\"shards\":"
			 "["
			 "{\"file\":"
			 "\"../x\",\"split\":\"train\",\"samples\":0,\"bytes\":0,\"sha256\":\"" /* */
			 "0000000000000000000000000000000000000000000000000000000000000000\"}]}"),
			("{\"format_version\":1,\"ruleset_hash\":\"x\",\"counts\":{\"samples\":0},\"shards\":"
			 "["
			 "{\"file\":"
			 "\"val-00000-of-00001.jsonl.zst\",\"split\":\"train\",\"samples\":0,\"bytes\":0,"
			 "\"sha256\":\"" /* */
			 "0000000000000000000000000000000000000000000000000000000000000000\"}]}"),
			("{\"format_version\":9,\"ruleset_hash\":\"x\",\"counts\":{\"samples\":0},\"shards\":"
			 "[]}"),
			"[]",
		};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			T_EQ_INT(export_manifest_parse(bad[i], strlen(bad[i]), &m, &e), DERR_PARSE);
	}

	/* gc: derived rows only. */
	{
		struct gc_counts g;
		int64_t traces = count_sql(db, "SELECT COUNT(*) FROM traces");
		fx_exec(db, "UPDATE exports SET pruned = 1 WHERE id = 1");
		T_OK(gc_run(db, 1, &g, &e), &e);
		T_EQ_INT(g.verdicts, NPROMPTS * NSAMPLES);
		T_EQ_INT(g.outcomes, NPROMPTS * NSAMPLES);
		T_EQ_INT(g.export_items, want);
		T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM verdicts"), NPROMPTS * NSAMPLES);
		T_OK(gc_run(db, 0, &g, &e), &e);
		T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM verdicts"), 0);
		T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM trace_outcomes WHERE ruleset_id = 1"), 0);
		T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM export_items WHERE export_id = 1"), 0);
		T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM traces"), traces);
		T_EQ_INT(count_sql(db, "SELECT COUNT(*) FROM trace_outcomes"), nex);
	}
	db_close(db);
	{
		char cmd[1400];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
	}
	return t_done();
}
