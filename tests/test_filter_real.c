/*
 * test_filter_real.c - rules/r1.rules on the real traces of ../shared/data:
 * the API-error record is rejected, the four QwQ traces with Chinese
 * passages are rejected by the language rule (and no other trace is), and
 * no R1 GSM8K trace whose boxed answer is correct is rejected for format
 * reasons.  Skips when the data is absent.
 */
#include "answer.h"
#include "filter.h"
#include "filter_fixture.h"
#include "rules.h"
#include "t.h"

#include <stdlib.h>
#include <string.h>

struct run {
	struct filter *f;
	struct filter_verdict *v;
	const char *file;
	int language_fails;
	char language_ids[512];
	int api_error_rejected;
	int boxed_correct, boxed_correct_format_rejected;
	int accepted, total;
	int fails[64];
};

static int rule_index(struct filter *f, const char *name)
{
	for (int i = 0; i < filter_rule_count(f); i++)
		if (!strcmp(filter_rule_name(f, i), name))
			return i;
	return -1;
}

static void judge_one(void *ctx, const struct fx_real *r)
{
	struct run *run = ctx;
	struct filter_doc d;
	int accepted, flagged, n = filter_rule_count(run->f);
	int lang = rule_index(run->f, "language"), ans = rule_index(run->f, "answer_correct");
	int box = rule_index(run->f, "boxed_answer"), api = rule_index(run->f, "api_error");

	fx_doc(r, &d);
	filter_judge(run->f, &d, run->v);
	filter_outcome(run->f, run->v, &accepted, &flagged);
	run->total++;
	run->accepted += accepted;
	for (int i = 0; i < n && i < 64; i++)
		run->fails[i] += run->v[i].state == FILTER_FAIL || run->v[i].state == FILTER_LIMIT;
	if (run->v[lang].state == FILTER_FAIL) {
		run->language_fails++;
		size_t l = strlen(run->language_ids);
		snprintf(run->language_ids + l, sizeof(run->language_ids) - l, "%s%s", l ? "," : "", r->id);
	}
	if (!strcmp(r->id, "mip-gsm8k-0066") && strstr(run->file, "r1_gsm8k")) {
		run->api_error_rejected = !accepted && run->v[api].state == FILTER_FAIL;
	}
	/* A correct boxed answer: every other reject rule is a format reason. */
	if (run->v[ans].state == FILTER_PASS && run->v[box].state == FILTER_PASS) {
		run->boxed_correct++;
		for (int i = 0; i < n; i++) {
			if (i == ans || !filter_rule_rejects(run->f, i))
				continue;
			if (run->v[i].state == FILTER_FAIL || run->v[i].state == FILTER_LIMIT) {
				run->boxed_correct_format_rejected++;
				printf("%s %s: correct boxed answer rejected by %s: %s\n", run->file, r->id,
				       filter_rule_name(run->f, i), run->v[i].detail);
			}
		}
	}
}

static struct run judge_file(struct filter *f, const char *name)
{
	char path[1024];
	struct run run;
	memset(&run, 0, sizeof(run));
	run.f = f;
	run.file = name;
	run.v = calloc((size_t)filter_rule_count(f), sizeof(*run.v));
	if (!t_shared_path(name, path, sizeof(path)))
		return run;
	T_TRUE(fx_each_real(path, judge_one, &run) > 0);
	printf("%s: %d traces, %d accepted, %d boxed and correct;", name, run.total, run.accepted,
	       run.boxed_correct);
	for (int i = 0; i < filter_rule_count(f); i++)
		if (run.fails[i])
			printf(" %s %d", filter_rule_name(f, i), run.fails[i]);
	printf("\n");
	free(run.v);
	return run;
}

int main(void)
{
	char path[1024];
	struct rules rs;
	struct filter *f = NULL;
	struct derr e = {0};
	struct run r1, qwq, distill;

	if (!t_shared_path("traces_r1_gsm8k.jsonl", path, sizeof(path)))
		return t_skip("../shared/data absent");
	rules_init(&rs);
	T_OK(rules_load(&rs, t_src("rules/r1.rules", path, sizeof(path)), &e), &e);
	T_OK(filter_new(&f, &rs, &e), &e);
	if (!f)
		return t_done();

	r1 = judge_file(f, "traces_r1_gsm8k.jsonl");
	qwq = judge_file(f, "traces_qwq32b_gsm8k_part1.jsonl");
	distill = judge_file(f, "traces_r1distill_qwen32b_gsm8k.jsonl");

	/* The API error stored as a response. */
	T_TRUE(r1.api_error_rejected);
	/* Exactly the four QwQ traces with Chinese, and none elsewhere. */
	T_EQ_STR(qwq.language_ids, "mip-gsm8k-0075,mip-gsm8k-0157,mip-gsm8k-0197,mip-gsm8k-0217");
	T_EQ_INT(r1.language_fails, 0);
	T_EQ_INT(distill.language_fails, 0);
	/* No correct boxed R1 answer rejected for its format. */
	T_TRUE(r1.boxed_correct > 400);
	T_EQ_INT(r1.boxed_correct_format_rejected, 0);

	filter_free(f);
	rules_release(&rs);
	return t_done();
}
