/* bench_answer.c - the answer checker's speed on the real traces of the
 * shared data: each case is a whole response (extract the final answer,
 * then compare it with reference_answer), on one core.  Side by side, in
 * the same run, the baseline the shared data's notes use: the last \boxed{}
 * compared as a trimmed string.  The target is 20,000 cases/s; its
 * quoted reference, Math-Verify (Python + SymPy), does about 37 cases/s on
 * another corpus (quoted, not measured here: no Python stack on this path).
 * Prints medians of 7 runs. */
#include "answer.h"
#include "buf.h"
#include "json.h"
#include "t.h"
#include "util.h"

#include <stdlib.h>

#define RUNS 7

static const char *const trace_files[] = {"traces_r1_gsm8k.jsonl", "traces_qwq32b_gsm8k_part1.jsonl",
					  "traces_r1distill_qwen32b_gsm8k.jsonl"};

struct bcase {
	char *gold, *resp;
	size_t rlen;
};

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The baseline: last "\boxed{" with brace matching, trimmed, strcmp. */
static int string_baseline(const struct bcase *c)
{
	const char *p = c->resp, *hit = NULL, *q;
	while ((q = strstr(p, "\\boxed{")))
		hit = q, p = q + 1;
	if (!hit)
		return 0;
	hit += 7;
	int depth = 1;
	for (q = hit; *q && depth; q++)
		depth += *q == '{' ? 1 : *q == '}' ? -1 : 0;
	if (depth)
		return 0;
	size_t n = (size_t)(q - 1 - hit);
	while (n && (*hit == ' '))
		hit++, n--;
	while (n && hit[n - 1] == ' ')
		n--;
	return strlen(c->gold) == n && !memcmp(hit, c->gold, n);
}

int main(void)
{
	char path[4096];
	struct bcase *cases = NULL;
	size_t n = 0, cap = 0;

	for (size_t k = 0; k < ARRAY_SIZE(trace_files); k++) {
		if (!t_shared_path(trace_files[k], path, sizeof(path)))
			continue;
		FILE *f = fopen(path, "r");
		char *line = NULL;
		size_t lcap = 0;
		while (f && getline(&line, &lcap, f) > 0) {
			cJSON *j = json_parse(line, strlen(line));
			const char *g = json_get_str(j, "reference_answer"), *r = json_get_str(j, "response");
			if (g && r) {
				if (n == cap) {
					cap = cap ? cap * 2 : 1024;
					cases = xrealloc(cases, cap * sizeof(*cases));
				}
				cases[n].gold = xstrdup(g);
				cases[n].resp = xstrdup(r);
				cases[n].rlen = strlen(r);
				n++;
			}
			cJSON_Delete(j);
		}
		free(line);
		if (f)
			fclose(f);
	}
	if (!n) {
		printf("bench_answer: skipped, the shared trace files are absent\n");
		return 0;
	}
	double ours[RUNS], base[RUNS];
	long equal = 0, bequal = 0;
	for (int run = 0; run < RUNS; run++) {
		struct answer_result r;
		int64_t t0 = mono_ns();
		equal = 0;
		for (size_t i = 0; i < n; i++) {
			answer_check(cases[i].gold, cases[i].resp, cases[i].rlen, NULL, &r);
			equal += r.status == ANSWER_OK && r.equal;
		}
		int64_t t1 = mono_ns();
		bequal = 0;
		for (size_t i = 0; i < n; i++)
			bequal += string_baseline(&cases[i]);
		int64_t t2 = mono_ns();
		ours[run] = (double)n / ((double)(t1 - t0) / 1e9);
		base[run] = (double)n / ((double)(t2 - t1) / 1e9);
	}
	qsort(ours, RUNS, sizeof(double), cmp_dbl);
	qsort(base, RUNS, sizeof(double), cmp_dbl);
	double mo = ours[RUNS / 2], mb = base[RUNS / 2];
	printf("bench_answer: %zu real traces (extract + compare with reference_answer), one core, median of "
	       "%d\n",
	       n, RUNS);
	printf("  checker %s:        %10.0f cases/s   judged equal %ld (%.1f%%)\n", answer_checker_version(),
	       mo, equal, 100.0 * (double)equal / (double)n);
	printf("  baseline last-box string compare: %10.0f cases/s   judged equal %ld (%.1f%%)\n", mb, bequal,
	       100.0 * (double)bequal / (double)n);
	printf("  ratio checker/baseline speed: %.3f;  checker / 20,000 target: %.2fx;  / Math-Verify's "
	       "quoted 37/s: "
	       "%.0fx\n",
	       mo / mb, mo / 20000.0, mo / 37.0);
	for (size_t i = 0; i < n; i++) {
		free(cases[i].gold);
		free(cases[i].resp);
	}
	free(cases);
	return 0;
}
