/*
 * test_verdict.c - the verdict store: rule sets and the current one, the
 * plan over id ranges, judging writes one verdict per rule plus the outcome,
 * a rerun with the same hash does nothing, a new engine or checker version
 * (a new hash) re-judges, the audit views, and the prompts that need more
 * samples.
 */
#include "t.h"
#include "answer.h"
#include "filter.h"
#include "filter_fixture.h"
#include "rules.h"
#include "verdict.h"

#include <string.h>

static const char RULES[] =
	"rule think\n kind think_format\n"
	"rule ans\n kind answer_correct\n when domain = math\n"
	"rule lang\n kind language\n"
	"rule boxed\n kind must_match\n target answer\n pattern \\\\boxed\\{\n action flag\n";

static int64_t q(struct db *db, const char *sql)
{
	int64_t v = -1;
	struct derr e = {0};
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	return v;
}

static void judge_all(struct db *db, struct filter *f, int64_t rs_id, int all, int parts,
		      struct verdict_stats *st)
{
	int64_t bounds[9], count = 0;
	int nparts = 0;
	struct derr e = {0};
	T_OK(verdict_plan(db, rs_id, all, parts, bounds, &nparts, &count, &e), &e);
	for (int i = 0; i < nparts; i++) {
		T_TRUE(bounds[i] < bounds[i + 1]);
		T_OK(verdict_judge_range(db, f, rs_id, all, bounds[i], bounds[i + 1], 2, st, &e), &e);
	}
}

int main(void)
{
	char dir[256], path[512], h1[65], h2[65];
	struct db *db;
	struct derr e = {0};
	struct rules rs;
	struct filter *f = NULL;
	struct buf canon = BUF_INIT(1 << 20);
	int64_t id1 = 0, id2 = 0, id3 = 0, bounds[9], count = 0, t_cn;
	int created = -1, nparts = 0;
	struct verdict_stats st = {0};

	t_tmpdir(dir, sizeof(dir));
	db = fx_open(dir, "v.db", path, sizeof(path));
	fx_add(db, "1+1?", "2", "math", "gsm8k", "one and one", "\\boxed{2}", "stop");
	fx_add(db, "2+2?", "4", "math", "gsm8k", "two and two", "\\boxed{5}", "stop");
	t_cn = fx_add(db, "3+3?", "6", "math", "gsm8k", "three and三 three", "\\boxed{6}", "stop");
	fx_add(db, "hello?", NULL, "general", "chat", "greeting", "Hello!", "stop");
	fx_add(db, "4+4?", "8", "math", "gsm8k", "four", "8", "length");
	T_EQ_INT(t_cn, 3);

	rules_init(&rs);
	T_OK(rules_parse(&rs, "v.rules", RULES, strlen(RULES), &e), &e);
	T_OK(filter_new(&f, &rs, &e), &e);
	T_OK(filter_ruleset_hash(&rs, answer_checker_version(), h1, &canon), &e);

	/* Before filtering: sample_audit.accepted is NULL. */
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM sample_audit WHERE accepted IS NULL"), 5);

	T_OK(verdict_ruleset_use(db, h1, buf_str(&canon), answer_checker_version(), &id1, &created, &e), &e);
	T_EQ_INT(created, 1);
	T_OK(verdict_ruleset_use(db, h1, buf_str(&canon), answer_checker_version(), &id2, &created, &e), &e);
	T_EQ_INT(created, 0);
	T_EQ_INT(id2, id1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM rulesets WHERE is_current = 1"), 1);

	/* The plan covers every trace in disjoint ranges. */
	T_OK(verdict_plan(db, id1, 0, 3, bounds, &nparts, &count, &e), &e);
	T_EQ_INT(count, 5);
	T_EQ_INT(nparts, 3);
	T_EQ_INT(bounds[0], 0);
	T_EQ_INT(bounds[nparts], 5);
	T_OK(verdict_plan(db, id1, 0, 8, bounds, &nparts, &count, &e), &e);
	T_EQ_INT(nparts, 5); /* never more ranges than traces */

	judge_all(db, f, id1, 0, 3, &st);
	T_EQ_INT(st.judged, 5);
	T_EQ_INT(st.accepted, 2); /* 1 correct; the general one (ans skipped) */
	T_EQ_INT(st.flagged, 2);  /* no box: the general one and the truncated one */
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM verdicts"), 5 * 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM trace_outcomes"), 5);
	T_EQ_INT(q(db, "SELECT n_fail FROM rule_stats WHERE rule = 'lang'"), 1);
	T_EQ_INT(q(db, "SELECT n_skip FROM rule_stats WHERE rule = 'ans'"), 1);
	T_EQ_INT(q(db, "SELECT rejected FROM rule_stats WHERE rule = 'boxed'"), 0);
	T_EQ_INT(q(db, "SELECT n_fail FROM rule_stats WHERE rule = 'boxed'"), 2);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM sample_audit s, json_each(s.failed_rules) j"
		       " WHERE s.trace_id = 3 AND j.value = 'lang'"),
		 1);
	T_EQ_INT(q(db, "SELECT accepted FROM sample_audit WHERE trace_id = 1"), 1);

	/* A rerun under the same hash finds nothing; a new trace is judged alone. */
	T_OK(verdict_plan(db, id1, 0, 2, bounds, &nparts, &count, &e), &e);
	T_EQ_INT(count, 0);
	T_EQ_INT(nparts, 0);
	fx_add(db, "5+5?", "10", "math", "gsm8k", "five and five", "\\boxed{10}", "stop");
	memset(&st, 0, sizeof(st));
	judge_all(db, f, id1, 0, 2, &st);
	T_EQ_INT(st.judged, 1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM trace_outcomes"), 6);
	/* --all judges everything again, replacing rows. */
	memset(&st, 0, sizeof(st));
	judge_all(db, f, id1, 1, 2, &st);
	T_EQ_INT(st.judged, 6);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM verdicts"), 6 * 4);

	/* A new checker (or engine) version is a new hash: a new current rule
	 * set, and every trace is to be judged again. */
	T_OK(filter_ruleset_hash(&rs, "another-checker", h2, NULL), &e);
	T_TRUE(strcmp(h1, h2) != 0);
	T_OK(verdict_ruleset_use(db, h2, buf_str(&canon), "another-checker", &id3, &created, &e), &e);
	T_EQ_INT(created, 1);
	T_TRUE(id3 != id1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM rulesets WHERE is_current = 1"), 1);
	T_EQ_INT(q(db, "SELECT id FROM current_ruleset"), id3);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM sample_audit WHERE accepted IS NULL"), 6);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM rule_stats"), 0);
	T_OK(verdict_plan(db, id3, 0, 2, bounds, &nparts, &count, &e), &e);
	T_EQ_INT(count, 6);
	memset(&st, 0, sizeof(st));
	judge_all(db, f, id3, 0, 2, &st);
	T_EQ_INT(st.judged, 6);
	/* The old rule set's verdicts stay (gc removes them). */
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM verdicts"), 2 * 6 * 4);

	/* Prompts that need more samples: no accepted trace under the current
	 * rule set (traces 2, 3 and 5 are rejected; 1, 4, 6 accepted). */
	{
		int64_t *ids = NULL, n = 0, prof = 0, unjudged = -1;
		T_OK(verdict_prompts_to_sample(db, "default", 1, &ids, &n, &prof, &unjudged, &e), &e);
		T_EQ_INT(n, 3);
		T_EQ_INT(prof, 1);
		T_EQ_INT(unjudged, 0);
		if (n == 3) {
			T_EQ_INT(ids[0], 2);
			T_EQ_INT(ids[1], 3);
			T_EQ_INT(ids[2], 5);
		}
		free(ids);
		T_OK(verdict_prompts_to_sample(db, "default", 0, &ids, &n, &prof, &unjudged, &e), &e);
		T_EQ_INT(n, 6);
		free(ids);
		T_EQ_INT(verdict_prompts_to_sample(db, "nope", 1, &ids, &n, &prof, &unjudged, &e),
			 DERR_NOTFOUND);
	}

	/* One trace for --explain. */
	{
		struct verdict_trace t;
		T_OK(verdict_trace_load(db, 3, &t, &e), &e);
		T_EQ_STR(t.doc.source, "gsm8k");
		T_EQ_STR(t.doc.profile, "default");
		T_EQ_STR(t.doc.reference, "6");
		T_EQ_INT(t.doc.reasoning_len, strlen("three and三 three"));
		verdict_trace_release(&t);
		T_EQ_INT(verdict_trace_load(db, 99, &t, &e), DERR_NOTFOUND);
	}

	filter_free(f);
	rules_release(&rs);
	buf_release(&canon);
	db_close(db);
	return t_done();
}
