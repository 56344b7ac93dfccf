/*
 * report.c - `distill report`: the funnel, length histograms, acceptance per
 * source and endpoint, teacher statistics, top rejection reasons, export
 * versions and the trainer's loss curve, as one HTML file (see report.h).
 * Aggregates come from SQL; the two per-row passes (trace lengths and
 * attempt latencies) stream with bounded state.
 */
#include "report.h"
#include "buf.h"
#include "db.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPORT_MAX_BYTES (64u << 20)
#define REPORT_MAX_ROWS 64 /* bars per chart; the rest are summed as "other" */
#define HIST_BINS 96	   /* quarter-octave bins: 1 .. 2^24 */
#define LAT_BINS 4096	   /* latency histogram: 1 ms .. ~1 h in log buckets */
#define CURVE_MAX 4096

/* Source of a prompt: its first ingested occurrence (as sample_audit does). */
#define SQL_PSRC                                                                                      \
	"WITH psrc AS (SELECT ps.prompt_id AS prompt_id, ps.source AS source FROM prompt_sources ps " \
	"WHERE ps.id = (SELECT MIN(id) FROM prompt_sources WHERE prompt_id = ps.prompt_id)), "        \
	"cur AS (SELECT id FROM rulesets WHERE is_current = 1), "                                     \
	"lastexp AS (SELECT MAX(id) AS id FROM exports WHERE pruned = 0) "

static const char SQL_TOTALS[] = SQL_PSRC
	"SELECT (SELECT COUNT(*) FROM prompts), (SELECT COUNT(*) FROM jobs), (SELECT COUNT(*) FROM traces), "
	"(SELECT COUNT(*) FROM trace_outcomes o, cur WHERE o.ruleset_id = cur.id AND o.accepted = 1), "
	"(SELECT COUNT(*) FROM trace_outcomes o, cur WHERE o.ruleset_id = cur.id AND o.accepted = 0), "
	"(SELECT COUNT(*) FROM dup_members WHERE kind = 'prompt' AND rank > 0), "
	"(SELECT COUNT(*) FROM dup_members WHERE kind = 'trace' AND rank > 0), "
	"(SELECT COUNT(DISTINCT prompt_id) FROM contamination), "
	"(SELECT COUNT(*) FROM export_items ei, lastexp WHERE ei.export_id = lastexp.id), "
	"(SELECT COUNT(*) FROM jobs WHERE state = 'dead'), "
	"(SELECT COALESCE(SUM(cost_micro_usd), 0) FROM attempts), "
	"(SELECT COUNT(*) FROM attempts), (SELECT hash FROM rulesets WHERE is_current = 1)";

/* One pass over the current rule set's verdicts (along the covering index)
 * feeds both the rule table and the top rejection reasons. */
static const char SQL_VERDICTS[] =
	"SELECT rule, state, action, COUNT(*), MIN(trace_id) FROM verdicts "
	"WHERE ruleset_id = (SELECT id FROM rulesets WHERE is_current = 1) GROUP BY rule, state, action";

/* The one pass over every job and trace: source, outcome, marks, lengths.
 * Rows come in prompt order, so prompts are counted on change. */
static const char SQL_SCAN[] =
	"WITH psrc AS (SELECT prompt_id, source, MIN(id) FROM prompt_sources GROUP BY prompt_id), "
	"lastexp AS (SELECT MAX(id) AS id FROM exports WHERE pruned = 0) "
	"SELECT s.prompt_id, s.source, j.id IS NOT NULL, t.id IS NOT NULL, o.accepted, "
	"t.id IS NOT NULL AND EXISTS (SELECT 1 FROM dup_members d WHERE d.kind = 'prompt' "
	"AND d.member_id = s.prompt_id AND d.rank > 0), "
	"t.id IS NOT NULL AND EXISTS (SELECT 1 FROM contamination c WHERE c.prompt_id = s.prompt_id), "
	"t.id IS NOT NULL AND EXISTS (SELECT 1 FROM export_items ei WHERE ei.trace_id = t.id "
	"AND ei.export_id = (SELECT id FROM lastexp)), "
	"t.reasoning_chars, t.completion_tokens, t.endpoint "
	"FROM psrc s LEFT JOIN jobs j ON j.prompt_id = s.prompt_id "
	"LEFT JOIN traces t INDEXED BY traces_stats ON t.job_id = j.id "
	"LEFT JOIN trace_outcomes o ON o.trace_id = t.id AND o.ruleset_id = (SELECT id FROM rulesets "
	"WHERE is_current = 1)";

/* One pass over the requests: latency of the successful ones, and per
 * endpoint counts, tokens, time and cost. */
static const char SQL_ATTEMPTS[] =
	"SELECT COALESCE(endpoint, '(none)'), ms, completion_tokens, error_code IS NOT NULL, cost_micro_usd "
	"FROM attempts WHERE imported = 0";

static const char SQL_ERRORS[] = "SELECT error_code, COUNT(*) FROM attempts WHERE error_code IS NOT NULL "
				 "GROUP BY error_code ORDER BY 2 DESC, 1";

static const char SQL_EXPORTS[] = "SELECT id, COALESCE(version, ''), outdir, samples, created_at, pruned, "
				  "COALESCE(ruleset_hash, '') FROM exports ORDER BY id DESC LIMIT 20";

static const char SQL_SHARDS[] = "SELECT shard, split, COUNT(*) FROM export_items WHERE export_id = ?1 "
				 "GROUP BY shard, split ORDER BY shard";

static const char SQL_BUDGET[] = "SELECT value FROM meta WHERE key = 'budget_total_micro_usd'";

/* ---- HTML helpers ----------------------------------------------------- */

static void esc(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': buf_puts(b, "&lt;"); break;
		case '>': buf_puts(b, "&gt;"); break;
		case '&': buf_puts(b, "&amp;"); break;
		case '"': buf_puts(b, "&quot;"); break;
		default: buf_putc(b, *s);
		}
	}
}

/* A figure the tests can find: <span class="n" data-k="key">value</span>. */
static void num(struct buf *b, const char *key, long long v)
{
	buf_puts(b, "<span class=\"n\" data-k=\"");
	esc(b, key);
	buf_printf(b, "\">%lld</span>", v);
}

static void numf(struct buf *b, const char *key, double v, int prec)
{
	buf_puts(b, "<span class=\"n\" data-k=\"");
	esc(b, key);
	buf_printf(b, "\">%.*f</span>", prec, v);
}

static const char *palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"};

/* Horizontal bar chart of (label, value) rows. */
struct bar {
	char label[128];
	double value;
	int color;
};

static void svg_bars(struct buf *b, const char *title, const struct bar *rows, int n, const char *unit)
{
	double max = 0;
	int h = 24 + 22 * (n ? n : 1), labw = 220, w = 760;

	for (int i = 0; i < n; i++)
		if (rows[i].value > max)
			max = rows[i].value;
	buf_printf(b, "<figure><figcaption>");
	esc(b, title);
	buf_printf(b,
		   "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		   "role=\"img\">",
		   w, h);
	if (n == 0)
		buf_puts(b, "<text x=\"4\" y=\"20\" class=\"muted\">nothing yet</text>");
	for (int i = 0; i < n; i++) {
		double bw = max > 0 ? (w - labw - 90) * rows[i].value / max : 0;
		int y = 8 + 22 * i;
		buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", labw - 6, y + 14);
		esc(b, rows[i].label);
		buf_printf(b, "</text><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"16\" fill=\"%s\"/>",
			   labw, y, bw, palette[rows[i].color % (int)ARRAY_SIZE(palette)]);
		buf_printf(b, "<text x=\"%.1f\" y=\"%d\">%.0f%s</text>", labw + bw + 4, y + 14, rows[i].value,
			   unit ? unit : "");
	}
	buf_puts(b, "</svg></figure>\n");
}

/* Log-scale length histogram, two series (accepted, rejected). */
struct hist {
	long long acc[HIST_BINS], rej[HIST_BINS], other[HIST_BINS];
};

static int hist_bin(double v)
{
	int k = v < 1 ? 0 : (int)(log2(v) * 4.0);
	return k < 0 ? 0 : (k >= HIST_BINS ? HIST_BINS - 1 : k);
}

static void svg_hist(struct buf *b, const char *title, const struct hist *h, const char *unit)
{
	long long max = 1;
	int lo = HIST_BINS, hi = -1, w = 760, ht = 220;

	for (int i = 0; i < HIST_BINS; i++) {
		long long t = h->acc[i] + h->rej[i] + h->other[i];
		if (t) {
			lo = i < lo ? i : lo;
			hi = i;
		}
		if (h->acc[i] > max)
			max = h->acc[i];
		if (h->rej[i] > max)
			max = h->rej[i];
		if (h->other[i] > max)
			max = h->other[i];
	}
	buf_printf(b, "<figure><figcaption>");
	esc(b, title);
	buf_printf(b,
		   " <span class=\"key a\">accepted</span> <span class=\"key r\">rejected</span> "
		   "<span class=\"key u\">not judged</span></figcaption>"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">",
		   w, ht + 30);
	if (hi < 0) {
		buf_puts(b, "<text x=\"4\" y=\"20\" class=\"muted\">nothing yet</text></svg></figure>\n");
		return;
	}
	int nb = hi - lo + 1;
	double bw = (double)(w - 40) / nb;
	if (bw > 48)
		bw = 48;
	for (int i = lo; i <= hi; i++) {
		double x = 30 + (i - lo) * bw;
		const long long *series[3] = {h->acc, h->rej, h->other};
		static const char *cls[3] = {"a", "r", "u"};
		for (int s = 0; s < 3; s++) {
			double bh = (double)(ht - 10) * (double)series[s][i] / (double)max;
			buf_printf(
				b,
				"<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
				cls[s], x + s * bw / 3, ht - bh, bw / 3 - 1, bh);
		}
		if ((i - lo) % (nb > 24 ? 8 : 4) == 0)
			buf_printf(b, "<text x=\"%.1f\" y=\"%d\" class=\"tick\">%.0f%s</text>", x, ht + 16,
				   pow(2, i / 4.0), unit);
	}
	buf_puts(b, "</svg></figure>\n");
}

/* Loss curve from a trainer log: lines with "step N" and "loss X" (or
 * key=value / JSON forms), and optionally "val_loss X". */
static int word_before_ok(const char *line, const char *p)
{
	return p == line ||
	       !(p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'));
}

static int find_num(const char *line, const char *key, double *out)
{
	const char *p = line;
	size_t kl = strlen(key);
	while ((p = strstr(p, key))) {
		const char *q = p + kl;
		if (word_before_ok(line, p) && !(*q == '_' || (*q >= 'a' && *q <= 'z'))) {
			while (*q == ' ' || *q == '=' || *q == ':' || *q == '"' || *q == '\t')
				q++;
			char *end;
			double v = strtod(q, &end);
			if (end != q && isfinite(v)) {
				*out = v;
				return 1;
			}
		}
		p += kl;
	}
	return 0;
}

struct curve {
	double step[CURVE_MAX], loss[CURVE_MAX], vstep[CURVE_MAX], vloss[CURVE_MAX];
	int n, nv;
};

static int read_curve(const char *path, struct curve *c, struct derr *e)
{
	char line[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return derr_set(e, DERR_IO, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		double s, l;
		if (!find_num(line, "step", &s))
			continue;
		if (find_num(line, "val_loss", &l) && c->nv < CURVE_MAX) {
			c->vstep[c->nv] = s;
			c->vloss[c->nv++] = l;
		}
		if (find_num(line, "loss", &l) && c->n < CURVE_MAX) {
			c->step[c->n] = s;
			c->loss[c->n++] = l;
		}
	}
	fclose(f);
	return 0;
}

static void svg_polyline(struct buf *b, const double *x, const double *y, int n, double x0, double x1,
			 double y0, double y1, const char *color)
{
	if (n == 0)
		return;
	buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
	for (int i = 0; i < n; i++)
		buf_printf(b, "%.1f,%.1f ", 40 + 700 * (x[i] - x0) / (x1 - x0 > 0 ? x1 - x0 : 1),
			   10 + 200 * (1 - (y[i] - y0) / (y1 - y0 > 0 ? y1 - y0 : 1)));
	buf_puts(b, "\"/>");
}

static void svg_curve(struct buf *b, const struct curve *c)
{
	double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
	for (int i = 0; i < c->n; i++) {
		x0 = fmin(x0, c->step[i]), x1 = fmax(x1, c->step[i]);
		y0 = fmin(y0, c->loss[i]), y1 = fmax(y1, c->loss[i]);
	}
	for (int i = 0; i < c->nv; i++) {
		x0 = fmin(x0, c->vstep[i]), x1 = fmax(x1, c->vstep[i]);
		y0 = fmin(y0, c->vloss[i]), y1 = fmax(y1, c->vloss[i]);
	}
	buf_puts(b, "<figure><figcaption>training loss <span class=\"key a\">train</span> "
		    "<span class=\"key r\">validation</span></figcaption>"
		    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"240\" role=\"img\">");
	if (c->n + c->nv == 0) {
		buf_puts(b, "<text x=\"4\" y=\"20\" class=\"muted\">no loss lines in the log</text>");
	} else {
		buf_printf(
			b,
			"<text x=\"2\" y=\"16\" class=\"tick\">%.3g</text><text x=\"2\" y=\"210\" "
			"class=\"tick\">%.3g</text><text x=\"700\" y=\"232\" class=\"tick\">step %.0f</text>",
			y1, y0, x1);
		svg_polyline(b, c->step, c->loss, c->n, x0, x1, y0, y1, "#4e79a7");
		svg_polyline(b, c->vstep, c->vloss, c->nv, x0, x1, y0, y1, "#e15759");
	}
	buf_puts(b, "</svg></figure>\n");
}

/* ---- the page --------------------------------------------------------- */

static const char CSS[] =
	"body{font:14px/1.45 system-ui,sans-serif;margin:24px "
	"auto;max-width:980px;color:#222;background:#fff}"
	"h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}"
	"table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;"
	"text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f6f6f6}"
	"figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}svg text{font-size:12px;fill:#333}"
	".tick{font-size:10px;fill:#666}.muted{fill:#888;color:#888}rect.a{fill:#59a14f}rect.r{fill:#e15759}"
	"rect.u{fill:#bab0ac}.key{font-weight:400;padding:0 6px;border-left:12px "
	"solid}.key.a{border-color:#59a14f}"
	".key.r{border-color:#e15759}.key.u{border-color:#bab0ac}code,pre{background:#f6f6f6;font-size:12px}"
	"pre{padding:6px;white-space:pre-wrap}.cards span.n{font-size:20px;font-weight:600;display:block}"
	".cards div{display:inline-block;min-width:120px;margin:4px 12px 4px 0}";

struct totals {
	long long prompts, jobs, traces, accepted, rejected, dup_prompts, dup_traces, contaminated, exported,
		dead, cost, attempts;
	char ruleset[80];
};

static int load_totals(struct db *db, struct totals *t, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, SQL_TOTALS, &st, e);
	if (rc)
		return rc;
	rc = db_step(st, e);
	if (rc == 1) {
		long long *f[] = {&t->prompts,	&t->jobs,	 &t->traces,	 &t->accepted,
				  &t->rejected, &t->dup_prompts, &t->dup_traces, &t->contaminated,
				  &t->exported, &t->dead,	 &t->cost,	 &t->attempts};
		for (size_t i = 0; i < ARRAY_SIZE(f); i++)
			*f[i] = db_col_int64(st, (int)i);
		snprintf(t->ruleset, sizeof(t->ruleset), "%s",
			 db_col_text(st, 12) ? db_col_text(st, 12) : "");
		rc = 0;
	}
	db_finalize(st);
	return rc;
}

static void card(struct buf *b, const char *label, const char *key, long long v)
{
	buf_puts(b, "<div>");
	num(b, key, v);
	esc(b, label);
	buf_puts(b, "</div>");
}

/* Verdict counts of the current rule set, per rule and per rejecting state. */
#define REPORT_MAX_RULES 256
enum { RS_EVAL, RS_PASS, RS_FAIL, RS_LIMIT, RS_SKIP, RS_REJECTED, RS_NCOLS };

struct rulestat {
	char rule[128];
	long long v[RS_NCOLS];
	long long rej[2];    /* rejecting fail, rejecting limit */
	long long sample[2]; /* smallest trace id of each */
};

struct reason {
	const struct rulestat *r;
	int limit; /* 0: fail, 1: limit */
};

static int rulestat_cmp(const void *a, const void *b)
{
	const struct rulestat *x = a, *y = b;
	if (x->v[RS_REJECTED] != y->v[RS_REJECTED])
		return x->v[RS_REJECTED] < y->v[RS_REJECTED] ? 1 : -1;
	return strcmp(x->rule, y->rule);
}

static int reason_cmp(const void *a, const void *b)
{
	const struct reason *x = a, *y = b;
	long long cx = x->r->rej[x->limit], cy = y->r->rej[y->limit];
	int c;
	if (cx != cy)
		return cx < cy ? 1 : -1;
	c = strcmp(x->r->rule, y->r->rule);
	return c ? c : x->limit - y->limit;
}

static int load_rules(struct db *db, struct rulestat *rs, int *n, struct derr *e)
{
	static const char *states[] = {"pass", "fail", "limit", "skip"};
	struct db_stmt *st;
	int rc = db_prepare(db, SQL_VERDICTS, &st, e);

	*n = 0;
	if (rc)
		return rc;
	while ((rc = db_step(st, e)) == 1) {
		const char *rule = db_col_text(st, 0), *state = db_col_text(st, 1),
			   *action = db_col_text(st, 2);
		long long cnt = db_col_int64(st, 3), first = db_col_int64(st, 4);
		struct rulestat *r = NULL;
		int k;
		for (k = 0; k < *n; k++)
			if (!strcmp(rs[k].rule, rule ? rule : ""))
				break;
		if (k == *n) {
			if (*n == REPORT_MAX_RULES)
				continue;
			r = &rs[(*n)++];
			memset(r, 0, sizeof(*r));
			snprintf(r->rule, sizeof(r->rule), "%s", rule ? rule : "");
		}
		r = &rs[k];
		r->v[RS_EVAL] += cnt;
		for (int i = 0; i < 4; i++)
			if (state && !strcmp(state, states[i]))
				r->v[RS_PASS + i] += cnt;
		if (state && action && !strcmp(action, "reject") &&
		    (!strcmp(state, "fail") || !strcmp(state, "limit"))) {
			int lim = !strcmp(state, "limit");
			r->v[RS_REJECTED] += cnt;
			r->rej[lim] += cnt;
			if (!r->sample[lim] || first < r->sample[lim])
				r->sample[lim] = first;
		}
	}
	db_finalize(st);
	if (rc < 0)
		return rc;
	qsort(rs, (size_t)*n, sizeof(*rs), rulestat_cmp);
	return 0;
}

static void section_funnel(struct buf *b, const struct totals *t, const struct rulestat *rs, int nrs)
{
	struct bar rows[REPORT_MAX_ROWS + 16];
	int n = 0;

	buf_puts(b, "<h2>Funnel</h2><div class=\"cards\">");
	card(b, "prompts", "prompts", t->prompts);
	card(b, "jobs", "jobs", t->jobs);
	card(b, "traces", "traces", t->traces);
	card(b, "accepted", "accepted", t->accepted);
	card(b, "rejected", "rejected", t->rejected);
	card(b, "near-duplicate prompts", "duplicate_prompts", t->dup_prompts);
	card(b, "duplicate traces", "duplicate_traces", t->dup_traces);
	card(b, "contaminated prompts", "contaminated_prompts", t->contaminated);
	card(b, "exported (latest)", "exported", t->exported);
	card(b, "dead jobs", "dead_jobs", t->dead);
	buf_puts(b, "</div>\n");

	const struct {
		const char *label;
		long long v;
	} steps[] = {{"prompts", t->prompts}, {"jobs", t->jobs}, {"traces", t->traces}};
	for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
		snprintf(rows[n].label, sizeof(rows[n].label), "%s", steps[i].label);
		rows[n].value = (double)steps[i].v;
		rows[n++].color = 0;
	}
	buf_puts(b, "<table><tr><th>rule</th><th>evaluated</th><th>pass</th><th>fail</th><th>limit</th>"
		    "<th>skip</th><th>rejected</th></tr>");
	for (int i = 0; i < nrs; i++) {
		static const char *cols[RS_NCOLS] = {"evaluated", "pass", "fail",
						     "limit",	  "skip", "rejected"};
		char key[200];
		buf_puts(b, "<tr><td>");
		esc(b, rs[i].rule);
		buf_puts(b, "</td>");
		for (int c = 0; c < RS_NCOLS; c++) {
			snprintf(key, sizeof(key), "rule.%s.%s", rs[i].rule, cols[c]);
			buf_puts(b, "<td>");
			num(b, key, rs[i].v[c]);
			buf_puts(b, "</td>");
		}
		buf_puts(b, "</tr>");
		if (n < REPORT_MAX_ROWS) {
			snprintf(rows[n].label, sizeof(rows[n].label), "rejected by %s", rs[i].rule);
			rows[n].value = (double)rs[i].v[RS_REJECTED];
			rows[n++].color = 3;
		}
	}
	buf_puts(b, "</table>\n");
	const struct {
		const char *label;
		long long v;
		int color;
	} tail[] = {{"accepted", t->accepted, 2},
		    {"duplicate prompts", t->dup_prompts, 5},
		    {"contaminated prompts", t->contaminated, 6},
		    {"exported", t->exported, 4}};
	for (size_t i = 0; i < ARRAY_SIZE(tail); i++) {
		snprintf(rows[n].label, sizeof(rows[n].label), "%s", tail[i].label);
		rows[n].value = (double)tail[i].v;
		rows[n++].color = tail[i].color;
	}
	svg_bars(b, "the whole set", rows, n, NULL);
}

/* Per-source and per-endpoint tallies from the one pass. */
enum { SRC_PROMPTS, SRC_JOBS, SRC_TRACES, SRC_ACC, SRC_REJ, SRC_DUP, SRC_CONTAM, SRC_EXPORTED, SRC_NCOLS };

struct tally {
	char name[128];
	long long v[SRC_NCOLS];
};

struct scan {
	struct tally src[REPORT_MAX_ROWS + 1]; /* the last row is "(other)" */
	struct tally ep[REPORT_MAX_ROWS + 1];
	int nsrc, nep;
	struct hist chars, toks;
};

static struct tally *tally_find(struct tally *t, int *n, const char *name)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(t[i].name, name))
			return &t[i];
	if (*n == REPORT_MAX_ROWS) {
		if (t[*n].name[0] == '\0')
			snprintf(t[*n].name, sizeof(t[*n].name), "(other)");
		return &t[*n];
	}
	snprintf(t[*n].name, sizeof(t[*n].name), "%s", name);
	return &t[(*n)++];
}

static int scan_all(struct db *db, struct scan *sc, struct derr *e)
{
	struct db_stmt *st;
	int64_t last_prompt = -1;
	int rc = db_prepare(db, SQL_SCAN, &st, e);

	if (rc)
		return rc;
	while ((rc = db_step(st, e)) == 1) {
		const char *src = db_col_text(st, 1);
		struct tally *t = tally_find(sc->src, &sc->nsrc, src ? src : "");
		int64_t pid = db_col_int64(st, 0);
		int judged = !db_col_isnull(st, 4), acc = judged && db_col_int64(st, 4);

		if (pid != last_prompt)
			t->v[SRC_PROMPTS]++;
		last_prompt = pid;
		t->v[SRC_JOBS] += db_col_int64(st, 2);
		if (!db_col_int64(st, 3))
			continue;
		t->v[SRC_TRACES]++;
		t->v[SRC_ACC] += judged && acc;
		t->v[SRC_REJ] += judged && !acc;
		t->v[SRC_DUP] += db_col_int64(st, 5);
		t->v[SRC_CONTAM] += db_col_int64(st, 6);
		t->v[SRC_EXPORTED] += db_col_int64(st, 7);

		const char *ep = db_col_text(st, 10);
		struct tally *te = tally_find(sc->ep, &sc->nep, ep ? ep : "(none)");
		te->v[SRC_TRACES]++;
		te->v[SRC_ACC] += judged && acc;
		te->v[SRC_REJ] += judged && !acc;

		long long *hc = judged ? (acc ? sc->chars.acc : sc->chars.rej) : sc->chars.other;
		long long *hk = judged ? (acc ? sc->toks.acc : sc->toks.rej) : sc->toks.other;
		hc[hist_bin((double)db_col_int64(st, 8))]++;
		hk[hist_bin((double)db_col_int64(st, 9))]++;
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

static int tally_count(int n, const struct tally *t)
{
	return n + (t[n].name[0] != '\0');
}

static void rate_cell(struct buf *b, const char *prefix, const char *name, long long acc, long long rej)
{
	char key[200];
	buf_puts(b, "<td>");
	if (acc + rej) {
		snprintf(key, sizeof(key), "%s.%s.accept_rate", prefix, name);
		numf(b, key, 100.0 * (double)acc / (double)(acc + rej), 1);
		buf_puts(b, "%");
	} else {
		buf_puts(b, "&ndash;");
	}
	buf_puts(b, "</td>");
}

static void section_sources(struct buf *b, const struct scan *sc)
{
	static const char *cols[SRC_NCOLS] = {"prompts",  "jobs",	"traces",	"accepted",
					      "rejected", "duplicates", "contaminated", "exported"};
	struct bar rows[REPORT_MAX_ROWS + 1];
	int n = tally_count(sc->nsrc, sc->src);

	buf_puts(b, "<h2>Per source</h2><table><tr><th>source</th>");
	for (int c = 0; c < SRC_NCOLS; c++)
		buf_printf(b, "<th>%s</th>", cols[c]);
	buf_puts(b, "<th>accept rate</th></tr>");
	for (int i = 0; i < n; i++) {
		const struct tally *t = &sc->src[i];
		char key[200];
		buf_puts(b, "<tr><td>");
		esc(b, t->name);
		buf_puts(b, "</td>");
		for (int c = 0; c < SRC_NCOLS; c++) {
			snprintf(key, sizeof(key), "source.%s.%s", t->name, cols[c]);
			buf_puts(b, "<td>");
			num(b, key, t->v[c]);
			buf_puts(b, "</td>");
		}
		rate_cell(b, "source", t->name, t->v[SRC_ACC], t->v[SRC_REJ]);
		buf_puts(b, "</tr>");
		snprintf(rows[i].label, sizeof(rows[i].label), "%s", t->name);
		rows[i].value =
			t->v[SRC_ACC] + t->v[SRC_REJ]
				? 100.0 * (double)t->v[SRC_ACC] / (double)(t->v[SRC_ACC] + t->v[SRC_REJ])
				: 0;
		rows[i].color = 2;
	}
	buf_puts(b, "</table>\n");
	svg_bars(b, "acceptance rate per source (%)", rows, n, "%");
}

static void section_lengths(struct buf *b, const struct scan *sc)
{
	buf_puts(b, "<h2>Reasoning length</h2>");
	svg_hist(b, "reasoning length in characters (log scale)", &sc->chars, "");
	svg_hist(b, "completion tokens (log scale)", &sc->toks, "");
}

static void section_endpoints(struct buf *b, const struct scan *sc)
{
	static const struct {
		const char *key;
		int col;
	} cols[] = {{"traces", SRC_TRACES}, {"accepted", SRC_ACC}, {"rejected", SRC_REJ}};
	int n = tally_count(sc->nep, sc->ep);

	buf_puts(b, "<h2>Acceptance per teacher endpoint</h2><table><tr><th>endpoint</th><th>traces</th>"
		    "<th>accepted</th><th>rejected</th><th>accept rate</th></tr>");
	for (int i = 0; i < n; i++) {
		const struct tally *t = &sc->ep[i];
		char key[200];
		buf_puts(b, "<tr><td>");
		esc(b, t->name);
		buf_puts(b, "</td>");
		for (size_t c = 0; c < ARRAY_SIZE(cols); c++) {
			snprintf(key, sizeof(key), "endpoint.%s.%s", t->name, cols[c].key);
			buf_puts(b, "<td>");
			num(b, key, t->v[cols[c].col]);
			buf_puts(b, "</td>");
		}
		rate_cell(b, "endpoint", t->name, t->v[SRC_ACC], t->v[SRC_REJ]);
		buf_puts(b, "</tr>");
	}
	buf_puts(b, "</table>\n");
}

/* Latency buckets: 1 ms resolution below 1 s, then 1% steps. */
static int lat_bucket(long long ms)
{
	if (ms < 1000)
		return ms < 0 ? 0 : (int)ms;
	int k = 1000 + (int)(log((double)ms / 1000.0) / log(1.01));
	return k >= LAT_BINS ? LAT_BINS - 1 : k;
}

static double lat_value(int k)
{
	return k < 1000 ? (double)k : 1000.0 * pow(1.01, k - 1000);
}

struct epspeed {
	char name[128];
	long long requests, errors, tokens, ok_ms, cost;
};

static int epspeed_cmp(const void *a, const void *b)
{
	const struct epspeed *x = a, *y = b;
	if (x->requests != y->requests)
		return x->requests < y->requests ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int section_teacher(struct db *db, struct buf *b, const struct totals *t, struct derr *e)
{
	long long *lat = xcalloc(LAT_BINS, sizeof(long long)), ok = 0;
	struct epspeed *eps = xcalloc(REPORT_MAX_ROWS + 1, sizeof(*eps));
	struct db_stmt *st;
	int neps = 0, rc = db_prepare(db, SQL_ATTEMPTS, &st, e);

	if (rc)
		goto out;
	while ((rc = db_step(st, e)) == 1) {
		const char *name = db_col_text(st, 0);
		struct epspeed *p = NULL;
		int err = (int)db_col_int64(st, 3);
		for (int i = 0; i < neps && !p; i++)
			if (!strcmp(eps[i].name, name))
				p = &eps[i];
		if (!p && neps < REPORT_MAX_ROWS) {
			p = &eps[neps++];
			snprintf(p->name, sizeof(p->name), "%s", name);
		} else if (!p) {
			p = &eps[REPORT_MAX_ROWS]; /* the rest, summed */
			snprintf(p->name, sizeof(p->name), "(other)");
		}
		p->requests++;
		p->errors += err;
		p->tokens += db_col_int64(st, 2);
		p->cost += db_col_int64(st, 4);
		if (!err) {
			p->ok_ms += db_col_int64(st, 1);
			lat[lat_bucket(db_col_int64(st, 1))]++;
			ok++;
		}
	}
	db_finalize(st);
	if (rc < 0)
		goto out;
	if (eps[REPORT_MAX_ROWS].requests)
		neps++;
	qsort(eps, (size_t)neps, sizeof(*eps), epspeed_cmp);
	buf_puts(b, "<h2>Teacher</h2><div class=\"cards\">");
	card(b, "requests", "attempts", t->attempts);
	card(b, "successful requests", "attempts_ok", ok);
	static const struct {
		const char *name;
		double q;
	} qs[] = {{"latency_p50_ms", 0.50}, {"latency_p90_ms", 0.90}, {"latency_p99_ms", 0.99}};
	for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
		long long want = (long long)ceil(qs[i].q * (double)ok), seen = 0;
		int k = 0;
		for (; k < LAT_BINS && ok; k++) {
			seen += lat[k];
			if (seen >= want && seen > 0)
				break;
		}
		buf_puts(b, "<div>");
		num(b, qs[i].name, ok ? (long long)lat_value(k) : 0);
		buf_printf(b, "%s latency (ms)</div>", qs[i].name + 8);
	}
	buf_puts(b, "<div>");
	numf(b, "cost_usd", (double)t->cost / 1e6, 4);
	buf_puts(b, "cost so far (USD)</div>");
	int64_t budget = 0;
	if (db_query_int64(db, SQL_BUDGET, &budget, e) == 0 && budget > 0) {
		buf_puts(b, "<div>");
		numf(b, "budget_usd", (double)budget / 1e6, 2);
		buf_printf(b, "total budget (USD), %.1f%% used</div>",
			   100.0 * (double)t->cost / (double)budget);
	}
	buf_puts(b, "</div>\n");

	buf_puts(b, "<table><tr><th>endpoint</th><th>requests</th><th>errors</th><th>completion tokens</th>"
		    "<th>tokens/s per request</th><th>cost (USD)</th></tr>");
	for (int i = 0; i < neps; i++) {
		const struct epspeed *p = &eps[i];
		char key[200];
		buf_puts(b, "<tr><td>");
		esc(b, p->name);
		buf_puts(b, "</td><td>");
		snprintf(key, sizeof(key), "teacher.%s.requests", p->name);
		num(b, key, p->requests);
		buf_puts(b, "</td><td>");
		snprintf(key, sizeof(key), "teacher.%s.errors", p->name);
		num(b, key, p->errors);
		buf_puts(b, "</td><td>");
		snprintf(key, sizeof(key), "teacher.%s.completion_tokens", p->name);
		num(b, key, p->tokens);
		buf_puts(b, "</td><td>");
		snprintf(key, sizeof(key), "teacher.%s.tokens_per_s", p->name);
		numf(b, key, p->ok_ms > 0 ? (double)p->tokens / ((double)p->ok_ms / 1000.0) : 0, 1);
		buf_printf(b, "</td><td>%.4f</td></tr>", (double)p->cost / 1e6);
	}
	buf_puts(b, "</table>\n");

	struct bar rows[REPORT_MAX_ROWS];
	int n = 0;
	rc = db_prepare(db, SQL_ERRORS, &st, e);
	if (rc)
		goto out;
	while ((rc = db_step(st, e)) == 1 && n < REPORT_MAX_ROWS) {
		snprintf(rows[n].label, sizeof(rows[n].label), "%s", db_col_text(st, 0));
		rows[n].value = (double)db_col_int64(st, 1);
		rows[n++].color = 3;
	}
	db_finalize(st);
	if (rc < 0)
		goto out;
	svg_bars(b, "errors by kind (requests)", rows, n, NULL);
	rc = 0;
out:
	free(lat);
	free(eps);
	return rc;
}

static void section_reasons(struct buf *b, const struct rulestat *rs, int nrs)
{
	struct reason top[2 * REPORT_MAX_RULES];
	int n = 0;

	for (int i = 0; i < nrs; i++)
		for (int lim = 0; lim < 2; lim++)
			if (rs[i].rej[lim])
				top[n++] = (struct reason){&rs[i], lim};
	qsort(top, (size_t)n, sizeof(top[0]), reason_cmp);
	if (n > 10)
		n = 10;
	buf_puts(b, "<h2>Top rejection reasons</h2><table><tr><th>rule</th><th>verdict</th><th>traces</th>"
		    "<th>sample trace</th><th>all of them</th></tr>");
	for (int i = 0; i < n; i++) {
		const char *rule = top[i].r->rule, *state = top[i].limit ? "limit" : "fail";
		char key[200];
		buf_puts(b, "<tr><td>");
		esc(b, rule);
		buf_printf(b, "</td><td>%s</td><td>", state);
		snprintf(key, sizeof(key), "reason.%d.count", i);
		num(b, key, top[i].r->rej[top[i].limit]);
		buf_puts(b, "</td><td>");
		snprintf(key, sizeof(key), "reason.%d.sample", i);
		num(b, key, top[i].r->sample[top[i].limit]);
		buf_puts(b, "</td><td><code>SELECT v.trace_id, v.detail FROM verdicts v JOIN current_ruleset "
			    "r ON "
			    "v.ruleset_id = r.id WHERE v.rule = '");
		/* The rule name inside a SQL string literal: double any quote. */
		for (const char *p = rule; *p; p++) {
			char one[2] = {*p, 0};
			if (*p == '\'')
				buf_putc(b, '\'');
			esc(b, one);
		}
		buf_printf(b, "' AND v.state = '%s' AND v.action = 'reject';</code></td></tr>", state);
	}
	if (n == 0)
		buf_puts(b, "<tr><td colspan=\"5\" class=\"muted\">no rejections under the current rule set"
			    "</td></tr>");
	buf_puts(b, "</table>\n");
}

static int section_exports(struct db *db, struct buf *b, struct derr *e)
{
	struct db_stmt *st, *sh = NULL;
	int rc = db_prepare(db, SQL_EXPORTS, &st, e), n = 0;

	if (rc)
		return rc;
	rc = db_prepare(db, SQL_SHARDS, &sh, e);
	if (rc) {
		db_finalize(st);
		return rc;
	}
	buf_puts(b, "<h2>Exports</h2>");
	while ((rc = db_step(st, e)) == 1) {
		int64_t id = db_col_int64(st, 0);
		char key[120];
		buf_printf(b, "<h3>export %lld ", (long long)id);
		esc(b, db_col_text(st, 1));
		buf_puts(b, "</h3><p><code>");
		esc(b, db_col_text(st, 2));
		buf_puts(b, "</code>: ");
		snprintf(key, sizeof(key), "export.%lld.samples", (long long)id);
		num(b, key, db_col_int64(st, 3));
		buf_puts(b, " samples");
		if (db_col_int64(st, 5))
			buf_puts(b, " (pruned)");
		buf_puts(b, ", rule set <code>");
		esc(b, db_col_text(st, 6));
		buf_puts(b, "</code></p><table><tr><th>shard</th><th>split</th><th>samples</th></tr>");
		db_reset(sh);
		db_bind_int64(sh, 1, id);
		while ((rc = db_step(sh, e)) == 1) {
			buf_puts(b, "<tr><td>");
			esc(b, db_col_text(sh, 0));
			buf_puts(b, "</td><td>");
			esc(b, db_col_text(sh, 1));
			buf_printf(b, "</td><td>%lld</td></tr>", (long long)db_col_int64(sh, 2));
		}
		buf_puts(b, "</table>");
		if (rc < 0)
			break;
		n++;
	}
	db_finalize(st);
	db_finalize(sh);
	if (rc < 0)
		return rc;
	if (n == 0)
		buf_puts(b, "<p class=\"muted\">no exports yet</p>");
	return 0;
}

static int write_atomic(const char *path, const struct buf *b, struct derr *e)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= sizeof(tmp))
		return derr_set(e, DERR_INVALID, "output path too long");
	f = fopen(tmp, "wb");
	if (!f)
		return derr_set(e, errno == ENOSPC ? DERR_FULL : DERR_IO, "%s: %s", tmp, strerror(errno));
	if (fwrite(b->data, 1, b->len, f) != b->len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		int err = errno;
		fclose(f);
		unlink(tmp);
		return derr_set(e, err == ENOSPC ? DERR_FULL : DERR_IO, "%s: %s", tmp, strerror(err));
	}
	fclose(f);
	if (rename(tmp, path) != 0) {
		int err = errno;
		unlink(tmp);
		return derr_set(e, DERR_IO, "rename to %s: %s", path, strerror(err));
	}
	return 0;
}

int report_write(struct db *db, const struct report_options *o, struct report_summary *sum, struct derr *e)
{
	struct buf b = BUF_INIT(REPORT_MAX_BYTES);
	struct totals t;
	struct curve *c = NULL;
	struct scan *sc = NULL;
	struct rulestat *rs = NULL;
	int nrs = 0;
	const char *title = o->title ? o->title : "distill report";
	int rc;

	memset(&t, 0, sizeof(t));
	/* One read transaction: every section sees the same snapshot. */
	rc = db_begin(db, e);
	if (rc)
		return rc;
	rc = load_totals(db, &t, e);
	if (rc)
		goto out;
	buf_puts(&b, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
	esc(&b, title);
	buf_printf(&b, "</title><style>%s</style></head><body><h1>", CSS);
	esc(&b, title);
	buf_puts(&b, "</h1><p class=\"muted\">rule set <code>");
	esc(&b, t.ruleset[0] ? t.ruleset : "(none: run distill filter)");
	buf_puts(&b, "</code></p>\n");
	sc = xcalloc(1, sizeof(*sc));
	rs = xcalloc(REPORT_MAX_RULES, sizeof(*rs));
	if ((rc = scan_all(db, sc, e)) || (rc = load_rules(db, rs, &nrs, e)))
		goto out;
	section_funnel(&b, &t, rs, nrs);
	section_sources(&b, sc);
	section_lengths(&b, sc);
	section_endpoints(&b, sc);
	if ((rc = section_teacher(db, &b, &t, e)))
		goto out;
	section_reasons(&b, rs, nrs);
	if ((rc = section_exports(db, &b, e)))
		goto out;
	if (o->train_log) {
		c = xcalloc(1, sizeof(*c));
		rc = read_curve(o->train_log, c, e);
		if (rc)
			goto out;
		buf_puts(&b, "<h2>Training</h2>");
		svg_curve(&b, c);
	}
	rc = buf_puts(&b,
		      "<p class=\"muted\">Every figure on this page is the result of SQL over the database; "
		      "see the README's audit views.</p></body></html>\n");
	if (rc) {
		rc = derr_set(e, DERR_LIMIT, "report over %u bytes", REPORT_MAX_BYTES);
		goto out;
	}
	db_rollback(db);
	rc = write_atomic(o->out_path, &b, e);
	if (!rc && sum) {
		sum->prompts = t.prompts;
		sum->traces = t.traces;
		sum->accepted = t.accepted;
		sum->exported = t.exported;
	}
out:
	db_rollback(db);
	free(c);
	free(sc);
	free(rs);
	buf_release(&b);
	return rc;
}
