/* test_report.c - every figure on the report page equals the SQL behind it. */
#include "t.h"
#include "buf.h"
#include "db.h"
#include "report.h"
#include "report_fixture.h"

#include <unistd.h>

static struct buf page = BUF_INIT(64u << 20);

/* The value of data-k="key" in the page, or NULL. */
static const char *figure(const char *key, char *out, size_t len)
{
	char pat[256];
	const char *p;
	snprintf(pat, sizeof(pat), "data-k=\"%s\">", key);
	p = strstr(buf_str(&page), pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	size_t n = strcspn(p, "<");
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static void same(struct db *db, const char *key, const char *sql)
{
	char got[64], want[64];
	int64_t v = -1;
	struct derr e = {0};
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	snprintf(want, sizeof(want), "%lld", (long long)v);
	if (!figure(key, got, sizeof(got))) {
		T_FAIL_AT("figure %s missing from the page", key);
		return;
	}
	t_checks++;
	if (strcmp(got, want) != 0)
		T_FAIL_AT("figure %s: page says %s, SQL says %s", key, got, want);
}

static void golden(const char *key, const char *want)
{
	char got[64];
	T_EQ_STR(figure(key, got, sizeof(got)), want);
}

int main(void)
{
	char dir[256], path[512], out[600], log[600];
	struct derr e = {0};
	struct report_summary sum;

	t_tmpdir(dir, sizeof(dir));
	struct db *db = report_fixture(dir, path, sizeof(path));
	snprintf(out, sizeof(out), "%s/report.html", dir);
	snprintf(log, sizeof(log), "%s/train.log", dir);
	FILE *f = fopen(log, "w");
	fputs("step 1 | loss 2.50 | lr 1e-3\nstep 2 | loss 2.00\nstep 2 val_loss 2.20\n{\"step\": 3, "
	      "\"loss\": 1.5}\n",
	      f);
	fclose(f);

	struct report_options o = {out, log, "test"};
	T_OK(report_write(db, &o, &sum, &e), &e);
	T_EQ_INT(sum.traces, 5);
	f = fopen(out, "rb");
	T_TRUE(f != NULL);
	char chunk[8192];
	size_t n;
	while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&page, chunk, n);
	if (f)
		fclose(f);

	/* The same numbers as SQL over the public views. */
	same(db, "prompts", "SELECT COUNT(*) FROM prompts");
	same(db, "traces", "SELECT COUNT(*) FROM sample_audit");
	same(db, "accepted", "SELECT COUNT(*) FROM sample_audit WHERE accepted = 1");
	same(db, "rejected", "SELECT COUNT(*) FROM sample_audit WHERE accepted = 0");
	same(db, "dead_jobs", "SELECT count FROM queue_stats WHERE state = 'dead'");
	same(db, "duplicate_prompts",
	     "SELECT COUNT(*) FROM dup_members WHERE kind='prompt' AND duplicate_of IS NOT NULL");
	same(db, "contaminated_prompts",
	     "SELECT COUNT(DISTINCT prompt_id) FROM sample_audit WHERE contaminated");
	same(db, "exported", "SELECT COUNT(*) FROM sample_audit WHERE export_shard IS NOT NULL");
	same(db, "rule.answer_correct.rejected",
	     "SELECT rejected FROM rule_stats WHERE rule = 'answer_correct'");
	same(db, "rule.language.fail", "SELECT n_fail FROM rule_stats WHERE rule = 'language'");
	same(db, "rule.language.evaluated", "SELECT evaluated FROM rule_stats WHERE rule = 'language'");
	same(db, "source.gsm8k.traces", "SELECT COUNT(*) FROM sample_audit WHERE source = 'gsm8k'");
	same(db, "source.gsm8k.accepted",
	     "SELECT COUNT(*) FROM sample_audit WHERE source = 'gsm8k' AND accepted = 1");
	same(db, "source.sim.rejected",
	     "SELECT COUNT(*) FROM sample_audit WHERE source = 'sim' AND accepted = 0");
	same(db, "source.gsm8k.exported",
	     "SELECT COUNT(*) FROM sample_audit WHERE source = 'gsm8k' AND export_shard IS NOT NULL");
	same(db, "endpoint.b.traces", "SELECT COUNT(*) FROM sample_audit WHERE endpoint = 'b'");
	same(db, "endpoint.a.accepted",
	     "SELECT COUNT(*) FROM sample_audit WHERE endpoint = 'a' AND accepted = 1");
	same(db, "attempts", "SELECT COUNT(*) FROM attempts");
	same(db, "teacher.b.errors",
	     "SELECT COUNT(*) FROM attempts WHERE endpoint = 'b' AND error_code IS NOT NULL");
	same(db, "export.1.samples", "SELECT COUNT(*) FROM export_items WHERE export_id = 1");

	/* Golden values worked out by hand from the fixture. */
	golden("traces", "5");
	golden("accepted", "2");
	golden("source.gsm8k.accept_rate", "50.0");
	golden("latency_p50_ms", "300");
	golden("latency_p90_ms", "500");
	golden("cost_usd", "0.0050");
	golden("reason.0.count", "2");
	golden("reason.0.sample", "2");
	golden("teacher.a.tokens_per_s", "366.7");

	/* Self-contained: no script, no external fetches; the loss curve drawn. */
	T_TRUE(strstr(buf_str(&page), "<script") == NULL);
	T_TRUE(strstr(buf_str(&page), "src=\"http") == NULL);
	T_TRUE(strstr(buf_str(&page), "href=\"http") == NULL);
	T_TRUE(strstr(buf_str(&page), "<polyline") != NULL);
	T_TRUE(strstr(buf_str(&page), "no rejections") == NULL);

	/* A missing log is a clear error and leaves no file behind. */
	char out2[600];
	snprintf(out2, sizeof(out2), "%s/r2.html", dir);
	struct report_options bad = {out2, "/nonexistent/train.log", NULL};
	T_EQ_INT(report_write(db, &bad, NULL, &e), DERR_IO);
	T_TRUE(access(out2, F_OK) != 0);

	db_close(db);
	buf_release(&page);
	snprintf(chunk, sizeof(chunk), "rm -rf '%s'", dir);
	T_EQ_INT(system(chunk), 0);
	return t_done();
}
