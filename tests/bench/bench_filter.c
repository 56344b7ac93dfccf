/*
 * bench_filter.c - the filter engine alone, without the database: judge the
 * first N traces of a benchmark database (filter.bench.sh makes it), held in
 * memory, with a rule file; prints "traces bytes cpu_seconds" of the median
 * of 3 passes.  filter.bench.sh compares it with filter_baseline.py's
 * memory mode, to separate the rules' cost from SQLite's.
 *
 * usage: bench_filter DB RULES N      (run by filter.bench.sh, not alone)
 */
#include "buf.h"
#include "db.h"
#include "filter.h"
#include "rules.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char SQL_LOAD[] =
	"SELECT t.reasoning, t.answer, t.finish_reason, t.placement, p.reference, p.domain, p.text"
	" FROM traces t JOIN jobs j ON j.id = t.job_id JOIN prompts p ON p.id = j.prompt_id"
	" ORDER BY t.id LIMIT ?1";

static char *dup_col(struct db_stmt *st, int i)
{
	const char *s = db_col_text(st, i);
	return s ? xstrndup(s, db_col_bytes(st, i)) : NULL;
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct derr e = {0};
	struct db *db = NULL;
	struct db_stmt *st = NULL;
	struct rules rs;
	struct filter *f = NULL;
	struct filter_doc *docs;
	struct filter_verdict *v;
	int64_t n = 0, cap;
	double bytes = 0, times[3];

	if (argc == 1) {
		printf("bench_filter: measured by tests/bench/filter.bench.sh (it makes the database)\n");
		return 0;
	}
	if (argc != 4 || parse_int64(argv[3], 1, 10000000, &cap)) {
		fprintf(stderr, "usage: bench_filter DB RULES N\n");
		return 2;
	}
	rules_init(&rs);
	if (rules_load(&rs, argv[2], &e) || filter_new(&f, &rs, &e) || db_open(&db, argv[1], 0, &e) ||
	    db_prepare(db, SQL_LOAD, &st, &e)) {
		fprintf(stderr, "bench_filter: %s\n", e.msg);
		return 1;
	}
	docs = xcalloc((size_t)cap, sizeof(*docs));
	db_bind_int64(st, 1, cap);
	while (n < cap && db_step(st, &e) == 1) {
		struct filter_doc *d = &docs[n++];
		d->reasoning = dup_col(st, 0);
		d->reasoning_len = d->reasoning ? strlen(d->reasoning) : 0;
		d->answer = dup_col(st, 1);
		d->answer_len = d->answer ? strlen(d->answer) : 0;
		d->finish_reason = dup_col(st, 2);
		d->placement = dup_col(st, 3);
		d->reference = dup_col(st, 4);
		d->domain = dup_col(st, 5);
		d->prompt = dup_col(st, 6);
		d->prompt_len = d->prompt ? strlen(d->prompt) : 0;
		bytes += (double)(d->reasoning_len + d->answer_len);
	}
	db_finalize(st);
	db_close(db);
	v = xcalloc((size_t)filter_rule_count(f) + 1, sizeof(*v));
	for (int rep = 0; rep < 3; rep++) {
		double t0 = cpu_s();
		long accepted = 0;
		for (int64_t i = 0; i < n; i++) {
			int acc, flag;
			filter_judge(f, &docs[i], v);
			filter_outcome(f, v, &acc, &flag);
			accepted += acc;
		}
		times[rep] = cpu_s() - t0;
		if (accepted < 0)
			return 1;
	}
	qsort(times, 3, sizeof(double), cmp_double);
	printf("%lld %.0f %.4f\n", (long long)n, bytes, times[1]);
	for (int64_t i = 0; i < n; i++) {
		free((void *)docs[i].reasoning);
		free((void *)docs[i].answer);
		free((void *)docs[i].finish_reason);
		free((void *)docs[i].placement);
		free((void *)docs[i].reference);
		free((void *)docs[i].domain);
		free((void *)docs[i].prompt);
	}
	free(docs);
	free(v);
	filter_free(f);
	rules_release(&rs);
	return 0;
}
