/*
 * sim.c - the teacher simulator's deterministic core (see sim.h): tasks,
 * R1-style traces, replay, noise and fault draws, reply rendering.
 */
#include "sim.h"
#include "hash.h"
#include "json.h"
#include "jsonl.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

const char *const sim_placement_names[SIM_PLACE_COUNT] = {"reasoning_content", "reasoning", "inline",
							  "close_only"};
const char *const sim_noise_names[SIM_NOISE_COUNT] = {"wrong",	  "mixlang", "loop",
						      "truncate", "no_box",  "empty_think"};
const char *const sim_fault_names[SIM_FAULT_COUNT] = {"none",	   "http_429", "http_500", "http_503",
						      "malformed", "close",    "stall"};
const char *const sim_kind_names[SIM_KIND_COUNT] = {"add", "sub", "mul", "word"};

/* Append a string literal without measuring it. */
#define PUT_LIT(b, lit) buf_append((b), "" lit, sizeof(lit) - 1)

/* Caps on what one reply may hold: far above any sane max_tokens. */
#define TEXT_MAX ((size_t)8 << 20)
#define BODY_MAX ((size_t)64 << 20)
#define STREAM_PIECE 64	    /* bytes of text per SSE event */
#define CREATED 1735689600L /* fixed "created": replies depend on nothing but their inputs */

/* ---- seeded draws ------------------------------------------------------------ */

/* splitmix64: tiny, fast, and good enough for drawing noise. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
	return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform in [lo, hi] (hi >= lo). */
static int64_t rng_range(uint64_t *s, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1;
	return lo + (int64_t)(span ? rng_next(s) % span : rng_next(s));
}

/* ---- configuration ----------------------------------------------------------- */

#define CFG_OFF(field) offsetof(struct sim_config, field)

const struct sim_opt sim_opts[] = {
	{"seed", SIM_OPT_SEED, CFG_OFF(seed), "S", "server seed: content and faults are drawn from it"},
	{"model", SIM_OPT_MODELS, 0, "NAME[,NAME...]", "model names served (default distill-sim)"},
	{"placement", SIM_OPT_WEIGHTS, 0, "NAME=W,...",
	 "reasoning placement weights: reasoning_content, reasoning, inline, close_only (default all 1)"},
	{"wrong", SIM_OPT_PROB, CFG_OFF(noise_p[SIM_NOISE_WRONG]), "P",
	 "probability of a wrong final answer"},
	{"mixlang", SIM_OPT_PROB, CFG_OFF(noise_p[SIM_NOISE_MIXLANG]), "P",
	 "probability of Chinese sentences inside the English reasoning"},
	{"loop", SIM_OPT_PROB, CFG_OFF(noise_p[SIM_NOISE_LOOP]), "P",
	 "probability of a repetition loop up to max_tokens (finish_reason length)"},
	{"truncate", SIM_OPT_PROB, CFG_OFF(noise_p[SIM_NOISE_TRUNCATE]), "P",
	 "probability of a cut mid-sentence (finish_reason length)"},
	{"no-box", SIM_OPT_PROB, CFG_OFF(noise_p[SIM_NOISE_NO_BOX]), "P",
	 "probability of no \\boxed{} answer"},
	{"empty-think", SIM_OPT_PROB, CFG_OFF(noise_p[SIM_NOISE_EMPTY_THINK]), "P",
	 "probability of empty thinking (<think>\\n\\n</think>)"},
	{"http-429", SIM_OPT_PROB, CFG_OFF(fault_p[SIM_FAULT_HTTP_429]), "P",
	 "probability of HTTP 429 with Retry-After (per attempt)"},
	{"http-500", SIM_OPT_PROB, CFG_OFF(fault_p[SIM_FAULT_HTTP_500]), "P",
	 "probability of HTTP 500 (per attempt)"},
	{"http-503", SIM_OPT_PROB, CFG_OFF(fault_p[SIM_FAULT_HTTP_503]), "P",
	 "probability of HTTP 503 (per attempt)"},
	{"malformed", SIM_OPT_PROB, CFG_OFF(fault_p[SIM_FAULT_MALFORMED]), "P",
	 "probability of a 200 whose body is not valid JSON (per attempt)"},
	{"close", SIM_OPT_PROB, CFG_OFF(fault_p[SIM_FAULT_CLOSE]), "P",
	 "probability of the connection closed mid-body (per attempt)"},
	{"stall", SIM_OPT_PROB, CFG_OFF(fault_p[SIM_FAULT_STALL]), "P",
	 "probability of a stall of --stall-time with no bytes (per attempt)"},
	{"stall-time", SIM_OPT_MS, CFG_OFF(stall_ms), "DUR", "length of a stall (default 5s)"},
	{"retry-after", SIM_OPT_INT, CFG_OFF(retry_after_s), "SECONDS", "Retry-After of a 429 (default 1)"},
	{"wait", SIM_OPT_PROB, CFG_OFF(wait_p), "P", "share of traces with a \"Wait,\" check (default 0.2)"},
	{"ttft", SIM_OPT_MS, CFG_OFF(ttft_ms), "DUR", "latency model: time to first token (default 0)"},
	{"tokens-per-s", SIM_OPT_REAL, CFG_OFF(tokens_per_s), "R",
	 "latency model: tokens per second after the first (default 0: instant)"},
	{"pad-reasoning", SIM_OPT_INT, CFG_OFF(pad_reasoning), "BYTES",
	 "pad each reasoning with check steps to at least BYTES (benchmarks)"},
	{"max-tokens", SIM_OPT_INT, CFG_OFF(default_max_tokens), "N",
	 "max_tokens when a request gives none (default 4096)"},
	{"max-body", SIM_OPT_INT, CFG_OFF(max_body), "BYTES",
	 "larger request bodies get 413 (default 1048576)"},
};
const size_t sim_opt_count = ARRAY_SIZE(sim_opts);

void sim_config_init(struct sim_config *c)
{
	memset(c, 0, sizeof(*c));
	c->models[0] = xstrdup("distill-sim");
	c->nmodels = 1;
	for (int i = 0; i < SIM_PLACE_COUNT; i++)
		c->placement_weight[i] = 1.0;
	c->wait_p = 0.2;
	c->retry_after_s = 1;
	c->stall_ms = 5000;
	c->default_max_tokens = 4096;
	c->max_body = 1 << 20;
}

void sim_config_release(struct sim_config *c)
{
	for (int i = 0; i < c->nmodels; i++)
		free(c->models[i]);
	c->nmodels = 0;
}

/* Compare option names with '-' and '_' equal. */
static int opt_name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;
		if (x != y)
			return 0;
	}
	return *a == *b;
}

static int set_models(struct sim_config *c, const char *value, struct derr *e)
{
	char *names[SIM_MAX_MODELS];
	int n = 0;
	const char *p = value;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len >= 128 || n == SIM_MAX_MODELS) {
			for (int i = 0; i < n; i++)
				free(names[i]);
			return derr_set(e, DERR_INVALID, "model: expected 1 to %d names of 1 to 127 bytes",
					SIM_MAX_MODELS);
		}
		names[n++] = xstrndup(p, len);
		p += len + (end ? 1 : 0);
	}
	if (!n)
		return derr_set(e, DERR_INVALID, "model: no name given");
	sim_config_release(c);
	memcpy(c->models, names, sizeof(names[0]) * (size_t)n);
	c->nmodels = n;
	return 0;
}

static int set_weights(struct sim_config *c, const char *value, struct derr *e)
{
	double w[SIM_PLACE_COUNT] = {0};
	const char *p = value;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		char name[32], num[32];
		int k = -1;
		double v;
		if (!eq || (size_t)(eq - p) >= sizeof(name) || len - (size_t)(eq - p) - 1 >= sizeof(num))
			return derr_set(e, DERR_INVALID, "placement: expected NAME=WEIGHT,... at '%s'", p);
		memcpy(name, p, (size_t)(eq - p));
		name[eq - p] = '\0';
		memcpy(num, eq + 1, len - (size_t)(eq - p) - 1);
		num[len - (size_t)(eq - p) - 1] = '\0';
		for (int i = 0; i < SIM_PLACE_COUNT; i++)
			if (opt_name_eq(name, sim_placement_names[i]))
				k = i;
		if (k < 0)
			return derr_set(
				e, DERR_INVALID,
				"placement: unknown '%s' (reasoning_content, reasoning, inline, close_only)",
				name);
		if (parse_double(num, &v) || !(v >= 0 && v <= 1e9))
			return derr_set(e, DERR_INVALID, "placement: bad weight '%s'", num);
		w[k] = v;
		p += len + (end ? 1 : 0);
	}
	memcpy(c->placement_weight, w, sizeof(w));
	return 0;
}

int sim_config_set(struct sim_config *c, const char *name, const char *value, struct derr *e)
{
	const struct sim_opt *o = NULL;
	char *field;
	double d;
	int64_t i;

	for (size_t k = 0; k < sim_opt_count; k++)
		if (opt_name_eq(name, sim_opts[k].name))
			o = &sim_opts[k];
	if (!o)
		return derr_set(e, DERR_NOTFOUND, "unknown option '%s'", name);
	field = (char *)c + o->off;
	switch (o->type) {
	case SIM_OPT_SEED: {
		char *end;
		unsigned long long v;
		errno = 0;
		v = strtoull(value, &end, 10);
		if (errno || !*value || *end || *value == '-')
			return derr_set(e, DERR_INVALID, "%s: expected an unsigned integer, got '%s'",
					o->name, value);
		*(uint64_t *)field = v;
		return 0;
	}
	case SIM_OPT_PROB:
		if (parse_double(value, &d) || !(d >= 0 && d <= 1))
			return derr_set(e, DERR_INVALID, "%s: expected a probability in [0,1], got '%s'",
					o->name, value);
		*(double *)field = d;
		return 0;
	case SIM_OPT_REAL:
		if (parse_double(value, &d) || !(d >= 0 && d <= 1e12))
			return derr_set(e, DERR_INVALID, "%s: expected a number >= 0, got '%s'", o->name,
					value);
		*(double *)field = d;
		return 0;
	case SIM_OPT_MS:
		if (duration_parse(value, &i) || i < 0 || i > 86400000)
			return derr_set(e, DERR_INVALID, "%s: expected a duration (500ms, 5s), got '%s'",
					o->name, value);
		*(int64_t *)field = i;
		return 0;
	case SIM_OPT_INT:
		if (parse_int64(value, 0, INT64_C(1) << 40, &i))
			return derr_set(e, DERR_INVALID, "%s: expected an integer >= 0, got '%s'", o->name,
					value);
		*(int64_t *)field = i;
		return 0;
	case SIM_OPT_MODELS: return set_models(c, value, e);
	case SIM_OPT_WEIGHTS: return set_weights(c, value, e);
	}
	return derr_set(e, DERR_INVALID, "%s: bad option type", o->name);
}

int sim_config_check(const struct sim_config *c, struct derr *e)
{
	double sum = 0, w = 0;
	for (int i = 1; i < SIM_FAULT_COUNT; i++)
		sum += c->fault_p[i];
	if (sum > 1.0 + 1e-9)
		return derr_set(e, DERR_INVALID, "fault probabilities sum to %g, more than 1", sum);
	for (int i = 0; i < SIM_PLACE_COUNT; i++)
		w += c->placement_weight[i];
	if (!(w > 0))
		return derr_set(e, DERR_INVALID, "placement: every weight is 0");
	if (c->nmodels < 1)
		return derr_set(e, DERR_INVALID, "no model name");
	return 0;
}

/* Text of one JSON config value for sim_config_set. */
static int json_value_text(const cJSON *v, struct buf *out)
{
	char num[64];
	if (cJSON_IsString(v))
		return buf_puts(out, v->valuestring);
	if (cJSON_IsNumber(v)) {
		json_num_str(v->valuedouble, num, sizeof(num));
		return buf_puts(out, num);
	}
	if (cJSON_IsArray(v)) {
		const cJSON *it;
		int first = 1;
		cJSON_ArrayForEach(it, v)
		{
			if (!cJSON_IsString(it))
				return DERR_INVALID;
			if ((!first && buf_putc(out, ',')) || buf_puts(out, it->valuestring))
				return DERR_LIMIT;
			first = 0;
		}
		return 0;
	}
	if (cJSON_IsObject(v)) {
		const cJSON *it;
		int first = 1;
		cJSON_ArrayForEach(it, v)
		{
			if (!cJSON_IsNumber(it))
				return DERR_INVALID;
			json_num_str(it->valuedouble, num, sizeof(num));
			if (buf_printf(out, "%s%s=%s", first ? "" : ",", it->string, num))
				return DERR_LIMIT;
			first = 0;
		}
		return 0;
	}
	return DERR_INVALID;
}

int sim_config_load_json(struct sim_config *c, const char *text, size_t len, struct derr *e)
{
	cJSON *root = json_parse(text, len);
	const cJSON *it;
	struct buf v = BUF_INIT(1 << 16);
	int rc = 0;

	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return derr_set(e, DERR_PARSE, "config: not a JSON object");
	}
	cJSON_ArrayForEach(it, root)
	{
		buf_reset(&v);
		if (json_value_text(it, &v)) {
			rc = derr_set(e, DERR_INVALID, "config: bad value for \"%s\"", it->string);
			break;
		}
		rc = sim_config_set(c, it->string, buf_str(&v), e);
		if (rc) {
			derr_wrap(e, "config");
			break;
		}
	}
	buf_release(&v);
	cJSON_Delete(root);
	return rc;
}

/* ---- replay ------------------------------------------------------------------- */

struct replay_rec {
	char *prompt; /* trimmed */
	size_t plen;
	char *response;
	uint64_t hash;
	int next; /* next record in the same hash bucket, -1 */
};

struct sim_replay {
	struct replay_rec *rec;
	size_t n, cap;
	int *bucket; /* head record per bucket, -1 */
	size_t nbucket;
};

struct sim_replay *sim_replay_new(void)
{
	return xcalloc(1, sizeof(struct sim_replay));
}

void sim_replay_free(struct sim_replay *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->rec[i].prompt);
		free(r->rec[i].response);
	}
	free(r->rec);
	free(r->bucket);
	free(r);
}

size_t sim_replay_count(const struct sim_replay *r)
{
	return r ? r->n : 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static void trim(const char **p, size_t *n)
{
	while (*n && is_space(**p))
		(*p)++, (*n)--;
	while (*n && is_space((*p)[*n - 1]))
		(*n)--;
}

static void replay_rehash(struct sim_replay *r)
{
	size_t nb = 64;
	while (nb < r->n * 2)
		nb *= 2;
	free(r->bucket);
	r->bucket = xmalloc(nb * sizeof(int));
	for (size_t i = 0; i < nb; i++)
		r->bucket[i] = -1;
	r->nbucket = nb;
	for (size_t i = 0; i < r->n; i++) {
		size_t b = r->rec[i].hash & (nb - 1);
		r->rec[i].next = r->bucket[b];
		r->bucket[b] = (int)i;
	}
}

void sim_replay_add(struct sim_replay *r, const char *prompt, const char *response)
{
	const char *p = prompt;
	size_t n = strlen(prompt);
	struct replay_rec *rec;

	trim(&p, &n);
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->rec = xrealloc(r->rec, r->cap * sizeof(*r->rec));
	}
	rec = &r->rec[r->n++];
	rec->prompt = xstrndup(p, n);
	rec->plen = n;
	rec->response = xstrdup(response);
	rec->hash = hash64(p, n, 0);
	if (r->n * 2 > r->nbucket) {
		replay_rehash(r);
	} else {
		size_t b = rec->hash & (r->nbucket - 1);
		rec->next = r->bucket[b];
		r->bucket[b] = (int)(r->n - 1);
	}
}

int sim_replay_load(struct sim_replay *r, const char *path, long *skipped, struct derr *e)
{
	struct jsonl_reader *rd = NULL;
	struct jsonl_record rec;
	long skip = 0;
	int rc;

	/* A recorded R1 trace can run to 100 KB; 16 MB bounds a bad line. */
	rc = jsonl_open(&rd, path, (size_t)16 << 20, e);
	if (rc)
		return rc;
	while ((rc = jsonl_next(rd, &rec, e)) == 1) {
		cJSON *o = rec.data ? json_parse(rec.data, rec.len) : NULL;
		const char *prompt = json_get_str(o, "prompt"), *resp = json_get_str(o, "response");
		if (prompt && resp && *prompt)
			sim_replay_add(r, prompt, resp);
		else
			skip++;
		cJSON_Delete(o);
	}
	jsonl_close(rd);
	if (skipped)
		*skipped = skip;
	return rc < 0 ? rc : 0;
}

/* The recorded response for a user message: an exact (trimmed) match, else
 * the longest recorded prompt the message contains; among records with that
 * prompt one is drawn.  NULL when none. */
static const char *replay_find(const struct sim_replay *r, const char *user, uint64_t *rng)
{
	const char *p = user;
	size_t n = strlen(user);
	const struct replay_rec *best = NULL;
	int cand[64], ncand = 0;

	if (!r || !r->n)
		return NULL;
	trim(&p, &n);
	uint64_t h = hash64(p, n, 0);
	for (int i = r->bucket[h & (r->nbucket - 1)]; i >= 0; i = r->rec[i].next)
		if (r->rec[i].hash == h && r->rec[i].plen == n && !memcmp(r->rec[i].prompt, p, n)) {
			best = &r->rec[i];
			break;
		}
	if (!best) {
		/* Short prompts would match by accident inside longer text. */
		for (size_t i = 0; i < r->n; i++)
			if (r->rec[i].plen >= 16 && r->rec[i].plen <= n &&
			    (!best || r->rec[i].plen > best->plen) &&
			    memmem(p, n, r->rec[i].prompt, r->rec[i].plen))
				best = &r->rec[i];
	}
	if (!best)
		return NULL;
	for (int i = r->bucket[best->hash & (r->nbucket - 1)]; i >= 0 && ncand < 64; i = r->rec[i].next)
		if (r->rec[i].hash == best->hash && r->rec[i].plen == best->plen &&
		    !memcmp(r->rec[i].prompt, best->prompt, best->plen))
			cand[ncand++] = i;
	/* Bucket order is newest first; sort so the draw does not depend on it. */
	for (int i = 1; i < ncand; i++)
		for (int j = i; j > 0 && cand[j - 1] > cand[j]; j--) {
			int t = cand[j];
			cand[j] = cand[j - 1];
			cand[j - 1] = t;
		}
	return r->rec[cand[rng_range(rng, 0, ncand - 1)]].response;
}

/* ---- tasks -------------------------------------------------------------------- */

/* Word problems: a template with three number slots (%N) and two steps,
 * each combining two values (slots 0..2, step results 3..4). */
struct word_step {
	int lhs;
	char op;
	int rhs;
	const char *label;
};

static const struct word_tmpl {
	const char *text;
	struct word_step step[2];
} word_tmpls[] = {
	{"A baker bakes %N loaves of bread in the morning and %N loaves in the afternoon. She sells %N "
	 "loaves. How many loaves are left?",
	 {{0, '+', 1, "Loaves baked"}, {3, '-', 2, "Left after selling"}}},
	{"Tom has %N marbles. He buys %N bags with %N marbles in each bag. How many marbles does he have "
	 "now?",
	 {{1, '*', 2, "Marbles in the bags"}, {0, '+', 3, "Marbles now"}}},
	{"A farmer plants %N rows of apple trees with %N trees in each row. A storm knocks down %N trees. "
	 "How "
	 "many trees are still standing?",
	 {{0, '*', 1, "Trees planted"}, {3, '-', 2, "Still standing"}}},
	{"Maria saves %N dollars each week for %N weeks, then spends %N dollars on a bike. How many dollars "
	 "does she have left?",
	 {{0, '*', 1, "Dollars saved"}, {3, '-', 2, "Left after the bike"}}},
	{"A library has %N books. It lends out %N books on Monday and gets back %N books on Tuesday. How "
	 "many "
	 "books are in the library now?",
	 {{0, '-', 1, "After Monday"}, {3, '+', 2, "After Tuesday"}}},
	{"A school orders %N boxes of pencils with %N pencils in each box and shares them equally among %N "
	 "classes. How many pencils does each class get?",
	 {{0, '*', 1, "Pencils in all"}, {3, '/', 2, "Pencils per class"}}},
};

static int64_t pow10i(int d)
{
	int64_t p = 1;
	while (d-- > 0)
		p *= 10;
	return p;
}

/* Apply op; 0, or -1 when the result is negative, inexact or overflows. */
static int apply_op(int64_t a, char op, int64_t b, int64_t *out)
{
	switch (op) {
	case '+': return __builtin_add_overflow(a, b, out) ? -1 : 0;
	case '-': *out = a - b; return *out < 0 ? -1 : 0;
	case '*': return __builtin_mul_overflow(a, b, out) ? -1 : 0;
	case '/':
		if (b == 0 || a % b)
			return -1;
		*out = a / b;
		return 0;
	}
	return -1;
}

/* Values of a word problem's steps; -1 when the numbers do not make one. */
static int word_eval(const struct word_tmpl *t, const int64_t num[3], int64_t val[5])
{
	memcpy(val, num, 3 * sizeof(int64_t));
	for (int s = 0; s < 2; s++)
		if (apply_op(val[t->step[s].lhs], t->step[s].op, val[t->step[s].rhs], &val[3 + s]))
			return -1;
	return 0;
}

/* Write a template with its numbers filled in. */
static void word_render(const struct word_tmpl *t, const int64_t num[3], char *out, size_t len)
{
	size_t o = 0;
	int k = 0;
	for (const char *p = t->text; *p && o + 24 < len; p++) {
		if (p[0] == '%' && p[1] == 'N' && k < 3) {
			o += (size_t)snprintf(out + o, len - o, "%" PRId64, num[k++]);
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

int sim_task_gen(enum sim_kind kind, int digits, uint64_t *rng, struct sim_task *out)
{
	int64_t lo, hi, a, b, r = 0;

	if (kind == SIM_KIND_WORD) {
		if (digits < 1 || digits > 6)
			return DERR_INVALID;
		lo = digits == 1 ? 2 : pow10i(digits - 1);
		hi = pow10i(digits) - 1;
		const struct word_tmpl *t =
			&word_tmpls[rng_range(rng, 0, (int64_t)ARRAY_SIZE(word_tmpls) - 1)];
		for (int tries = 0;; tries++) {
			int64_t num[3], val[5];
			for (int i = 0; i < 3; i++)
				num[i] = rng_range(rng, lo, hi);
			/* Divisors and counts of classes stay small, as in real problems. */
			if (t->step[1].op == '/')
				num[2] = rng_range(rng, 2, 9);
			if (word_eval(t, num, val) == 0 || tries > 1000) {
				if (tries > 1000) /* cannot happen with these templates; keep it total */
					num[1] = num[2] = 1;
				word_eval(t, num, val);
				word_render(t, num, out->prompt, sizeof(out->prompt));
				snprintf(out->answer, sizeof(out->answer), "%" PRId64, val[4]);
				return 0;
			}
		}
	}
	if (kind >= SIM_KIND_COUNT || digits < 1 ||
	    digits > (kind == SIM_KIND_MUL ? SIM_MAX_DIGITS_MUL : SIM_MAX_DIGITS_ADD))
		return DERR_INVALID;
	lo = digits == 1 ? 0 : pow10i(digits - 1);
	hi = pow10i(digits) - 1;
	a = rng_range(rng, lo, hi);
	b = rng_range(rng, lo, hi);
	if (kind == SIM_KIND_SUB && a < b) {
		int64_t t = a;
		a = b;
		b = t;
	}
	static const char ops[] = {'+', '-', '*'};
	apply_op(a, ops[kind], b, &r);
	snprintf(out->prompt, sizeof(out->prompt), "What is %" PRId64 " %c %" PRId64 "?", a, ops[kind], b);
	snprintf(out->answer, sizeof(out->answer), "%" PRId64, r);
	return 0;
}

/* A recognised task: the operands and what solving it takes. */
struct task {
	enum sim_kind kind;
	int64_t a, b;
	const struct word_tmpl *tmpl;
	int64_t num[3], val[5];
	int64_t answer;
};

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Read a run of at most maxd digits at *p into v; 0 or -1. */
static int read_int(const char **p, int maxd, int64_t *v)
{
	const char *s = *p;
	int64_t x = 0;
	int d = 0;
	while (is_digit(*s)) {
		if (++d > maxd)
			return -1;
		x = x * 10 + (*s++ - '0');
	}
	if (!d)
		return -1;
	*v = x;
	*p = s;
	return 0;
}

/* Find "A op B" (op + - * ×) anywhere in text. */
static int find_arith(const char *text, struct task *t)
{
	for (const char *p = text; *p; p++) {
		const char *q = p;
		int64_t a, b;
		enum sim_kind kind;
		if (!is_digit(*p) || (p > text && (is_digit(p[-1]) || p[-1] == '.')))
			continue;
		if (read_int(&q, SIM_MAX_DIGITS_ADD, &a))
			continue;
		while (*q == ' ')
			q++;
		if (*q == '+')
			kind = SIM_KIND_ADD, q++;
		else if (*q == '-')
			kind = SIM_KIND_SUB, q++;
		else if (*q == '*')
			kind = SIM_KIND_MUL, q++;
		else if (!strncmp(q, "\xc3\x97", 2))
			kind = SIM_KIND_MUL, q += 2;
		else
			continue;
		while (*q == ' ')
			q++;
		if (read_int(&q, SIM_MAX_DIGITS_ADD, &b) || (*q == '.' && is_digit(q[1])))
			continue;
		if (kind == SIM_KIND_MUL &&
		    (a >= pow10i(SIM_MAX_DIGITS_MUL) || b >= pow10i(SIM_MAX_DIGITS_MUL)))
			continue;
		t->kind = kind;
		t->a = a;
		t->b = b;
		t->answer = kind == SIM_KIND_ADD ? a + b : kind == SIM_KIND_SUB ? a - b : a * b;
		return 0;
	}
	return -1;
}

/* Match a word template at text (literal text and %N number slots). */
static int word_match_at(const struct word_tmpl *w, const char *text, int64_t num[3])
{
	const char *s = text;
	int k = 0;
	for (const char *p = w->text; *p; p++) {
		if (p[0] == '%' && p[1] == 'N') {
			if (k == 3)
				return -1;
			if (read_int(&s, 12, &num[k++]))
				return -1;
			p++;
		} else if (*s++ != *p) {
			return -1;
		}
	}
	return 0;
}

static int find_word(const char *text, struct task *t)
{
	const char *end = text + strlen(text);
	for (size_t i = 0; i < ARRAY_SIZE(word_tmpls); i++) {
		const struct word_tmpl *w = &word_tmpls[i];
		size_t lit = strcspn(w->text, "%");
		/* Each place the literal start occurs, in order.  memchr for its
		 * first byte, then compare: memmem's setup was most of this on
		 * short prompts. */
		for (const char *p = text; p + lit <= end; p++) {
			if (lit && !(p = memchr(p, w->text[0], (size_t)(end - p) - lit + 1)))
				break;
			if (memcmp(p, w->text, lit))
				continue;
			if (!word_match_at(w, p, t->num) && !word_eval(w, t->num, t->val)) {
				t->kind = SIM_KIND_WORD;
				t->tmpl = w;
				t->answer = t->val[4];
				return 0;
			}
		}
	}
	return -1;
}

/* ---- traces ------------------------------------------------------------------- */

/* The two halves of a completion before placement. */
struct trace {
	struct buf reasoning;
	struct buf answer;
	int has_reasoning; /* 0: a replayed response with no </think>: content only */
	int open;	   /* reasoning cut off: no closing tag, no answer */
	int truncated;	   /* finish_reason "length" */
};

/* Digits of v, least significant first; returns the count (>= 1). */
static int digits_of(int64_t v, int d[20])
{
	int n = 0;
	do {
		d[n++] = (int)(v % 10);
		v /= 10;
	} while (v);
	return n;
}

/* v in decimal, written at the end of d; returns its length.  The traces
 * and reply frames are built from many small numbers, and printf for each
 * was a large share of a reply's cost. */
static size_t fmt_i64(char d[24], int64_t v)
{
	size_t n = 0;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do {
		d[24 - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		d[24 - 1 - n++] = '-';
	return n;
}

static void put_i64(struct buf *b, int64_t v)
{
	char d[24];
	size_t n = fmt_i64(d, v);
	buf_append(b, d + sizeof(d) - n, n);
}

/* A write combiner: the traces are made of many short pieces, and an
 * append per piece was a real share of a reply.  Pieces gather in s and go
 * to the buffer in one append when it fills and at ln_done. */
struct line {
	struct buf *b;
	size_t n;
	char s[256];
};

/* Not an initializer: that would zero s on every call. */
static void ln_init(struct line *l, struct buf *b)
{
	l->b = b;
	l->n = 0;
}

static void ln_flush(struct line *l)
{
	buf_append(l->b, l->s, l->n);
	l->n = 0;
}

static void ln_str(struct line *l, const char *s, size_t n)
{
	if (n > sizeof(l->s) - l->n) {
		ln_flush(l);
		if (n > sizeof(l->s)) {
			buf_append(l->b, s, n);
			return;
		}
	}
	memcpy(l->s + l->n, s, n);
	l->n += n;
}

#define LN_LIT(l, lit) ln_str((l), "" lit, sizeof(lit) - 1)

static void ln_c(struct line *l, char c)
{
	ln_str(l, &c, 1);
}

static void ln_i64(struct line *l, int64_t v)
{
	char d[24];
	size_t n = fmt_i64(d, v);
	ln_str(l, d + sizeof(d) - n, n);
}

static void trace_add(struct buf *r, int64_t a, int64_t b)
{
	int da[20], db[20], na = digits_of(a, da), nb = digits_of(b, db), n = na > nb ? na : nb, carry = 0;
	struct line l;
	ln_init(&l, r);
	for (int i = 0; i < n; i++) {
		int x = i < na ? da[i] : 0, y = i < nb ? db[i] : 0, s = x + y + carry;
		/* "2. 4+8+1=13: write 3, carry 1." */
		ln_i64(&l, i + 1);
		LN_LIT(&l, ". ");
		ln_i64(&l, x);
		ln_c(&l, '+');
		ln_i64(&l, y);
		if (carry)
			LN_LIT(&l, "+1=");
		else
			LN_LIT(&l, "=");
		ln_i64(&l, s);
		LN_LIT(&l, ": write ");
		carry = s >= 10;
		ln_i64(&l, carry && i + 1 < n ? s % 10 : s);
		if (carry && i + 1 < n)
			LN_LIT(&l, ", carry 1.\n");
		else
			LN_LIT(&l, ".\n");
	}
	ln_flush(&l);
}

static void trace_sub(struct buf *r, int64_t a, int64_t b)
{
	int da[20], db[20], na = digits_of(a, da), nb = digits_of(b, db), borrow = 0;
	for (int i = 0; i < na; i++) {
		int x = da[i] - borrow, y = i < nb ? db[i] : 0, need = x < y;
		buf_printf(r, "%d. %d%s%s-%d=%d: write %d", i + 1, da[i], borrow ? "-1" : "",
			   need ? "+10" : "", y, x + (need ? 10 : 0) - y, x + (need ? 10 : 0) - y);
		buf_puts(r, need ? ", borrow 1.\n" : ".\n");
		borrow = need;
	}
}

static void trace_mul(struct buf *r, int64_t a, int64_t b)
{
	int db[20], nb = digits_of(b, db), step = 1;
	int64_t place = 1, parts[20];
	int nparts = 0;
	for (int i = 0; i < nb; i++, place *= 10) {
		if (!db[i])
			continue;
		parts[nparts] = a * db[i] * place;
		buf_printf(r, "%d. %" PRId64 "*%" PRId64 "=%" PRId64 ".\n", step++, a, db[i] * place,
			   parts[nparts]);
		nparts++;
	}
	if (nparts > 1) {
		int64_t sum = 0;
		buf_printf(r, "%d. ", step);
		for (int i = 0; i < nparts; i++) {
			buf_printf(r, "%s%" PRId64, i ? "+" : "", parts[i]);
			sum += parts[i];
		}
		buf_printf(r, "=%" PRId64 ".\n", sum);
	}
}

static const char op_text[] = "+-*/";
static const char *const op_show[] = {"+", "-", "*", "/"};

static const char *op_str(char op)
{
	const char *p = strchr(op_text, op);
	return p ? op_show[p - op_text] : "?";
}

/* Solve a recognised task into t (shown answer: ans, which may be wrong). */
static void trace_task(const struct task *k, int64_t ans, int wait, struct trace *t)
{
	struct buf *r = &t->reasoning;
	static const char sym[] = {'+', '-', '*'};

	if (k->kind == SIM_KIND_WORD) {
		const struct word_tmpl *w = k->tmpl;
		for (int s = 0; s < 2; s++) {
			const struct word_step *st = &w->step[s];
			int64_t v = s == 1 ? ans : k->val[3 + s];
			buf_printf(r, "%d. %s: %" PRId64 " %s %" PRId64 " = %" PRId64 ".\n", s + 1, st->label,
				   k->val[st->lhs], op_str(st->op), k->val[st->rhs], v);
		}
		if (wait)
			buf_printf(r,
				   "Wait, let me check step 1 again: %" PRId64 " %s %" PRId64 " = %" PRId64
				   ". Yes.\n",
				   k->val[w->step[0].lhs], op_str(w->step[0].op), k->val[w->step[0].rhs],
				   k->val[3]);
		buf_printf(r, "So the answer is %" PRId64 ".", ans);
		buf_printf(&t->answer,
			   "%s: %" PRId64 ", then %s: %" PRId64 ".\n\n**Answer:** \\boxed{%" PRId64 "}",
			   w->step[0].label, k->val[3], w->step[1].label, ans, ans);
		return;
	}
	if (k->kind == SIM_KIND_SUB && k->a < k->b) {
		buf_printf(r, "%" PRId64 " < %" PRId64 ", so compute %" PRId64 "-%" PRId64 " and negate.\n",
			   k->a, k->b, k->b, k->a);
		trace_sub(r, k->b, k->a);
	} else if (k->kind == SIM_KIND_ADD) {
		trace_add(r, k->a, k->b);
	} else if (k->kind == SIM_KIND_SUB) {
		trace_sub(r, k->a, k->b);
	} else {
		trace_mul(r, k->a, k->b);
	}
	struct line l;
	ln_init(&l, r);
	if (wait && k->kind != SIM_KIND_MUL) {
		/* "Wait, check: 936-589=347. Yes." (the inverse operation) */
		LN_LIT(&l, "Wait, check: ");
		ln_i64(&l, ans);
		ln_c(&l, k->kind == SIM_KIND_ADD ? '-' : '+');
		ln_i64(&l, k->b);
		ln_c(&l, '=');
		ln_i64(&l, k->kind == SIM_KIND_ADD ? ans - k->b : ans + k->b);
		LN_LIT(&l, ". Yes.\n");
	} else if (wait) {
		LN_LIT(&l, "Wait, check the size: about ");
		ln_i64(&l, k->a);
		ln_c(&l, '*');
		ln_i64(&l, k->b);
		LN_LIT(&l, ", so ");
		ln_i64(&l, ans);
		LN_LIT(&l, " fits.\n");
	}
	/* "So 347+589=936." and "347 + 589 = 936\n\n\boxed{936}" */
	LN_LIT(&l, "So ");
	ln_i64(&l, k->a);
	ln_c(&l, sym[k->kind]);
	ln_i64(&l, k->b);
	ln_c(&l, '=');
	ln_i64(&l, ans);
	ln_c(&l, '.');
	ln_flush(&l);
	l.b = &t->answer;
	ln_i64(&l, k->a);
	ln_c(&l, ' ');
	ln_c(&l, sym[k->kind]);
	ln_c(&l, ' ');
	ln_i64(&l, k->b);
	LN_LIT(&l, " = ");
	ln_i64(&l, ans);
	LN_LIT(&l, "\n\n\\boxed{");
	ln_i64(&l, ans);
	ln_c(&l, '}');
	ln_flush(&l);
}

/* Copy at most max bytes of s, cut at a UTF-8 boundary. */
static size_t utf8_prefix(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

static void trace_generic(const char *user, uint64_t *rng, struct trace *t)
{
	size_t n = strlen(user), q = utf8_prefix(user, n, 80);
	PUT_LIT(&t->reasoning, "1. The question asks: \"");
	for (size_t i = 0; i < q; i++)
		buf_putc(&t->reasoning, user[i] == '\n' ? ' ' : user[i]);
	buf_puts(&t->reasoning, q < n ? "...\"\n" : "\"\n");
	buf_puts(&t->reasoning, "2. Break it into smaller parts.\n3. Work through each part in order.\n"
				"So the steps give the result.");
	buf_printf(&t->answer, "Following the steps above gives the result.\n\n\\boxed{%d}",
		   (int)rng_range(rng, 1, 99));
}

/* Split a recorded response at its first </think>. */
static void trace_replay(const char *resp, struct trace *t)
{
	const char *close = strstr(resp, "</think>");
	const char *p = resp;
	size_t n;

	if (!close) {
		t->has_reasoning = 0;
		buf_puts(&t->answer, resp);
		return;
	}
	n = (size_t)(close - resp);
	trim(&p, &n);
	if (n >= 7 && !memcmp(p, "<think>", 7)) {
		p += 7, n -= 7;
		trim(&p, &n);
	}
	buf_append(&t->reasoning, p, n);
	p = close + 8;
	n = strlen(p);
	trim(&p, &n);
	buf_append(&t->answer, p, n);
}

/* ---- noise -------------------------------------------------------------------- */

static const char *const mixlang_text[] = {
	"让我们仔细检查这一步。这个结果看起来是正确的。",
	"嗯，我需要再算一遍，确保没有出错。",
	"所以我们可以继续下一步。答案应该就在这里。",
};

/* Insert a Chinese passage after the first line of the reasoning. */
static int noise_mixlang(struct trace *t, uint64_t *rng)
{
	const char *z = mixlang_text[rng_range(rng, 0, (int64_t)ARRAY_SIZE(mixlang_text) - 1)];
	const char *r = buf_str(&t->reasoning);
	const char *nl = strchr(r, '\n');
	size_t at = nl ? (size_t)(nl - r) + 1 : t->reasoning.len;
	struct buf out = BUF_INIT(TEXT_MAX);

	if (!t->reasoning.len)
		return 0;
	buf_append(&out, r, at);
	buf_puts(&out, z);
	buf_putc(&out, '\n');
	buf_append(&out, r + at, t->reasoning.len - at);
	buf_release(&t->reasoning);
	t->reasoning = out;
	return 1;
}

/* Repeat a line of the reasoning until `limit` bytes, cut there. */
static int noise_loop(struct trace *t, size_t limit)
{
	const char *r = buf_str(&t->reasoning);
	const char *nl = strchr(r, '\n');
	size_t first = nl ? (size_t)(nl - r) + 1 : t->reasoning.len;
	struct buf unit = BUF_INIT(4096);

	buf_append(&unit, r, first < 400 ? first : 400);
	if (!nl)
		buf_putc(&unit, '\n');
	PUT_LIT(&unit, "Wait, let me redo that.\n");
	while (t->reasoning.len < limit)
		if (buf_append(&t->reasoning, unit.data, unit.len))
			break;
	buf_release(&unit);
	t->reasoning.len = utf8_prefix(t->reasoning.data, t->reasoning.len, limit);
	t->reasoning.data[t->reasoning.len] = '\0';
	buf_reset(&t->answer);
	t->open = 1;
	t->truncated = 1;
	return 1;
}

static int is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Cut the reasoning mid-sentence: right after a letter or digit that a
 * letter, digit or space follows (never at a sentence end). */
static int noise_truncate(struct trace *t, uint64_t *rng)
{
	size_t n = t->reasoning.len, at;
	const char *r = t->reasoning.data;
	if (n < 8)
		return 0;
	at = (size_t)rng_range(rng, (int64_t)(n / 3), (int64_t)(2 * n / 3));
	while (at < n && !(is_alnum(r[at - 1]) && (is_alnum(r[at]) || r[at] == ' ')))
		at++;
	if (at >= n)
		return 0;
	t->reasoning.len = at;
	t->reasoning.data[at] = '\0';
	buf_reset(&t->answer);
	t->open = 1;
	t->truncated = 1;
	return 1;
}

/* Replace every \boxed{X} by X (brace-matched). */
static int noise_no_box(struct buf *b)
{
	struct buf out = BUF_INIT(TEXT_MAX);
	const char *s = buf_str(b), *p;
	int any = 0;

	while ((p = strstr(s, "\\boxed{"))) {
		const char *q = p + 7;
		int depth = 1;
		while (*q && depth) {
			depth += *q == '{' ? 1 : *q == '}' ? -1 : 0;
			q++;
		}
		if (depth)
			break;
		buf_append(&out, s, (size_t)(p - s));
		buf_append(&out, p + 7, (size_t)(q - 1 - (p + 7)));
		s = q;
		any = 1;
	}
	if (!any) {
		buf_release(&out);
		return 0;
	}
	buf_puts(&out, s);
	buf_release(b);
	*b = out;
	return 1;
}

/* A recorded answer made wrong: the last \boxed{integer} plus one. */
static int noise_wrong_replay(struct buf *b)
{
	const char *s = buf_str(b), *p = NULL, *q;
	for (q = s; (q = strstr(q, "\\boxed{")); q++)
		p = q;
	if (!p)
		return 0;
	q = p + 7;
	int64_t v;
	const char *e = q;
	int neg = *e == '-';
	e += neg;
	if (read_int(&e, 17, &v) || *e != '}')
		return 0;
	struct buf out = BUF_INIT(TEXT_MAX);
	buf_append(&out, s, (size_t)(q - s));
	buf_printf(&out, "%" PRId64, (neg ? -v : v) + 1);
	buf_puts(&out, e);
	buf_release(b);
	*b = out;
	return 1;
}

#define PAD_LINE ": the steps above are consistent with the question."
#define PAD_ROOM 96 /* what pad_line may store: 7 + 10 digits + 64 */

/* Write "\nCheck k" and the padding line at d (PAD_ROOM bytes of room);
 * returns the length.  Fixed-size copies straight into place: composing the
 * line elsewhere and copying it cost a store-forwarding stall per line. */
static size_t pad_line(char *d, int k)
{
	static const char line[64] = PAD_LINE; /* zero-filled to the copy size */
	char digits[12];
	size_t nd = 0, len = 7;
	memcpy(d, "\nCheck ", 8);
	for (int v = k; v; v /= 10)
		digits[nd++] = (char)('0' + v % 10);
	while (nd)
		d[len++] = digits[--nd];
	memcpy(d + len, line, sizeof(line));
	return len + sizeof(PAD_LINE) - 1;
}

static void noise_pad(struct trace *t, size_t want)
{
	struct buf *b = &t->reasoning;
	if (b->len < want)
		buf_grow(b, want - b->len + 2 * PAD_ROOM);
	/* printf and an append per piece were most of a padded reply's cost:
	 * lines go straight into the room made above (the append path only
	 * when that runs out). */
	for (int k = 1; b->len < want; k++) {
		if (b->cap - b->len > PAD_ROOM) {
			b->len += pad_line(b->data + b->len, k);
			b->data[b->len] = '\0';
		} else {
			char ln[PAD_ROOM];
			if (buf_append(b, ln, pad_line(ln, k)))
				break;
		}
	}
}
#undef PAD_LINE
#undef PAD_ROOM

/* ---- requests ----------------------------------------------------------------- */

void sim_request_release(struct sim_request *req)
{
	free(req->user);
	req->user = NULL;
}

/* Text of a message's content: a string, or the text parts of an array. */
static int content_text(const cJSON *content, struct buf *out)
{
	const cJSON *part;
	if (cJSON_IsString(content))
		return buf_puts(out, content->valuestring);
	if (!cJSON_IsArray(content))
		return -1;
	cJSON_ArrayForEach(part, content)
	{
		const char *type = json_get_str(part, "type"), *text = json_get_str(part, "text");
		if (!type)
			return -1;
		if (!strcmp(type, "text") && text && buf_puts(out, text))
			return -1;
	}
	return 0;
}

#define REQ_ERR(status, type, ...)                        \
	do {                                              \
		snprintf(err_type, type_len, "%s", type); \
		snprintf(msg, msg_len, __VA_ARGS__);      \
		rc = status;                              \
		goto out;                                 \
	} while (0)

int sim_request_parse_json(const struct sim_config *c, const char *body, size_t len, struct sim_request *req,
			   char *err_type, size_t type_len, char *msg, size_t msg_len)
{
	cJSON *root = json_parse(body, len);
	const cJSON *msgs, *m, *v, *so;
	const char *model;
	struct buf user = BUF_INIT(TEXT_MAX);
	int rc = 0, known = 0;
	double d;

	memset(req, 0, sizeof(*req));
	if (!cJSON_IsObject(root))
		REQ_ERR(400, "invalid_request_error",
			"We could not parse the JSON body of your request. (HINT: This likely means you "
			"aren't "
			"using your HTTP library correctly.)");
	model = json_get_str(root, "model");
	if (!model)
		REQ_ERR(400, "invalid_request_error", "you must provide a model parameter");
	for (int i = 0; i < c->nmodels; i++)
		known |= !strcmp(model, c->models[i]);
	if (!known || strlen(model) >= sizeof(req->model))
		REQ_ERR(404, "invalid_request_error", "The model `%.100s` does not exist.", model);
	memcpy(req->model, model, strlen(model) + 1); /* shorter than req->model: checked above */
	msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
	if (!cJSON_IsArray(msgs) || !cJSON_GetArraySize(msgs))
		REQ_ERR(400, "invalid_request_error",
			"'messages' is a required property and must be a non-empty array");
	cJSON_ArrayForEach(m, msgs)
	{
		const char *role = json_get_str(m, "role");
		const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
		struct buf text = BUF_INIT(TEXT_MAX);
		if (!role || (!cJSON_IsString(content) && !cJSON_IsArray(content)) ||
		    content_text(content, &text)) {
			buf_release(&text);
			REQ_ERR(400, "invalid_request_error",
				"messages[%d]: each message needs a 'role' and a string 'content'",
				req->nmessages);
		}
		req->prompt_bytes += text.len;
		req->nmessages++;
		if (!strcmp(role, "user") || !user.len) {
			buf_reset(&user);
			buf_append(&user, buf_str(&text), text.len);
		}
		buf_release(&text);
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "stream");
	if (v && !cJSON_IsBool(v) && !cJSON_IsNull(v))
		REQ_ERR(400, "invalid_request_error", "'stream' must be a boolean");
	req->stream = cJSON_IsTrue(v);
	so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
	req->include_usage =
		cJSON_IsObject(so) && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
	if (!json_get_num(root, "max_completion_tokens", &d) || !json_get_num(root, "max_tokens", &d)) {
		if (!(d >= 1 && d <= 1e7) || d != (double)(int64_t)d)
			REQ_ERR(400, "invalid_request_error",
				"max_tokens must be an integer in [1, 10000000]");
		req->max_tokens = (int64_t)d;
	}
	req->user = buf_detach(&user, NULL);
	if (!req->user)
		req->user = xstrdup("");
out:
	buf_release(&user);
	cJSON_Delete(root);
	return rc;
}

/* ---- requests: the fast path ------------------------------------------------ */

/* A strict, allocation-free JSON scanner for the usual request body: one
 * object with a string model, an array of {role, content: string} messages
 * and plain scalars.  It answers only when it is sure to agree with
 * sim_request_parse_json (the cJSON path) and leaves everything else to it:
 * errors, escaped keys, \u escapes, raw control bytes, duplicate keys that
 * matter, content part arrays, trailing bytes, deep nesting. */

#define FAST_DEPTH 16 /* deeper values go to the general path */
#define FAST_NUM 63   /* cJSON reads at most this many number bytes */

struct jscan {
	const char *p, *end;
};

/* JSON whitespace bytes (cJSON skips any byte <= 32; those go the slow way). */
static const unsigned char js_space[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

/* Bytes a short escape may name, and what they stand for. */
static const char js_unescape[256] = {['"'] = '"',  ['\\'] = '\\', ['/'] = '/',	 ['b'] = '\b',
				      ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t'};

static void js_ws(struct jscan *j)
{
	while (j->p < j->end && js_space[(unsigned char)*j->p])
		j->p++;
}

/* At ws then c: consume both; 0, or -1. */
static int js_expect(struct jscan *j, char c)
{
	js_ws(j);
	if (j->p >= j->end || *j->p != c)
		return -1;
	j->p++;
	return 0;
}

/* After a member of an object or array: ws, then ',' (0: another member
 * follows) or close (1: the container ended); anything else is -1. */
static int js_next(struct jscan *j, char close)
{
	char c;
	js_ws(j);
	if (j->p >= j->end)
		return -1;
	c = *j->p++;
	return c == close ? 1 : c == ',' ? 0 : -1;
}

/* A string at j->p: its raw bytes between the quotes and whether it has
 * escapes.  -1 on a raw control byte, a \u or a bad escape. */
static int js_str(struct jscan *j, const char **s, size_t *n, int *esc)
{
	const char *p;
	*esc = 0;
	if (j->p >= j->end || *j->p != '"')
		return -1;
	p = j->p + 1;
	for (;;) {
		/* skip the plain run up to the next quote or backslash */
		const char *q = p;
		while (q < j->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
			q++;
		if (q >= j->end || (unsigned char)*q < 0x20)
			return -1;
		if (*q == '"') {
			*s = j->p + 1;
			*n = (size_t)(q - *s);
			j->p = q + 1;
			return 0;
		}
		if (q + 1 >= j->end || !js_unescape[(unsigned char)q[1]])
			return -1;
		*esc = 1;
		p = q + 2;
	}
}

/* Decode the raw bytes of a string js_str accepted. */
static int js_decode(const char *s, size_t n, struct buf *out)
{
	buf_reset(out);
	if (buf_grow(out, n))
		return -1;
	char *d = out->data;
	for (size_t i = 0; i < n; i++)
		*d++ = s[i] == '\\' ? js_unescape[(unsigned char)s[++i]] : s[i];
	out->len = (size_t)(d - out->data);
	*d = '\0';
	return 0;
}

static int js_digits(struct jscan *j)
{
	const char *p = j->p;
	while (j->p < j->end && is_digit(*j->p))
		j->p++;
	return j->p > p ? 0 : -1;
}

/* A number in the strict grammar; its text in num (NUL-terminated). */
static int js_num(struct jscan *j, char num[FAST_NUM + 1])
{
	const char *p = j->p;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (js_digits(j))
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (js_digits(j))
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (js_digits(j))
			return -1;
	}
	size_t n = (size_t)(j->p - p);
	if (n > FAST_NUM)
		return -1;
	memcpy(num, p, n);
	num[n] = '\0';
	return 0;
}

static int js_lit(struct jscan *j, const char *lit, size_t n)
{
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return -1;
	j->p += n;
	return 0;
}

/* Skip one value after ws; -1 when it is not strict JSON (or too deep). */
static int js_skip(struct jscan *j, int depth)
{
	const char *s;
	size_t n;
	int esc, r;
	char num[FAST_NUM + 1];

	js_ws(j);
	if (j->p >= j->end || depth > FAST_DEPTH)
		return -1;
	switch (*j->p) {
	case '"': return js_str(j, &s, &n, &esc);
	case 't': return js_lit(j, "true", 4);
	case 'f': return js_lit(j, "false", 5);
	case 'n': return js_lit(j, "null", 4);
	case '[':
	case '{': {
		char close = *j->p == '[' ? ']' : '}';
		j->p++;
		js_ws(j);
		if (j->p < j->end && *j->p == close)
			return j->p++, 0;
		for (;;) {
			if (close == '}') {
				js_ws(j);
				if (js_str(j, &s, &n, &esc) || js_expect(j, ':'))
					return -1;
			}
			if (js_skip(j, depth + 1) || (r = js_next(j, close)) < 0)
				return -1;
			if (r)
				return 0;
		}
	}
	default: return js_num(j, num);
	}
}

/* Walk an object after ws: for each member, key() is called with the key's
 * raw bytes and j at the value, and must consume the value.  -1 when not
 * an object, on an escaped key, or when key() fails. */
static int js_object(struct jscan *j, int (*key)(struct jscan *j, const char *k, size_t kn, void *ctx),
		     void *ctx)
{
	const char *k;
	size_t kn;
	int esc, r;
	if (js_expect(j, '{'))
		return -1;
	js_ws(j);
	if (j->p < j->end && *j->p == '}')
		return j->p++, 0;
	for (;;) {
		js_ws(j);
		if (js_str(j, &k, &kn, &esc) || esc || js_expect(j, ':'))
			return -1;
		js_ws(j);
		if (key(j, k, kn, ctx) || (r = js_next(j, '}')) < 0)
			return -1;
		if (r)
			return 0;
	}
}

static int key_is(const char *k, size_t kn, const char *name)
{
	return strlen(name) == kn && !memcmp(k, name, kn);
}

/* What the fast path gathers from the body. */
struct fast_req {
	const struct sim_config *c;
	struct sim_request *req;
	struct buf *user, *text;
	unsigned seen; /* bit per top-level key below, to refuse duplicates */
	int have_max;  /* a numeric max_tokens (first of the two names) */
	double max_completion, max_tokens;
	int have_completion, have_tokens;
	/* per message */
	const char *role, *content;
	size_t role_n, content_n;
	int content_esc;
	int include_usage;
};

enum { FK_MODEL, FK_MESSAGES, FK_STREAM, FK_STREAM_OPTIONS, FK_MAX_COMPLETION, FK_MAX_TOKENS };
static const char *const fast_keys[] = {
	"model", "messages", "stream", "stream_options", "max_completion_tokens", "max_tokens"};

static int fast_message_key(struct jscan *j, const char *k, size_t kn, void *ctx)
{
	struct fast_req *f = ctx;
	int esc;
	if (key_is(k, kn, "role")) {
		if (f->role || js_str(j, &f->role, &f->role_n, &esc) || esc)
			return -1;
		return 0;
	}
	if (key_is(k, kn, "content")) {
		if (f->content || js_str(j, &f->content, &f->content_n, &f->content_esc))
			return -1;
		return 0;
	}
	return js_skip(j, 2);
}

static int fast_messages(struct jscan *j, struct fast_req *f)
{
	struct sim_request *req = f->req;
	int r;
	if (js_expect(j, '['))
		return -1;
	for (;;) {
		f->role = f->content = NULL;
		if (js_object(j, fast_message_key, f) || !f->role || !f->content)
			return -1;
		if (f->content_esc) {
			if (js_decode(f->content, f->content_n, f->text))
				return -1;
		} else {
			buf_reset(f->text);
			if (buf_append(f->text, f->content, f->content_n))
				return -1;
		}
		req->prompt_bytes += f->text->len;
		req->nmessages++;
		/* as the general path: the last user message, else the first text */
		if ((f->role_n == 4 && !memcmp(f->role, "user", 4)) || !f->user->len) {
			struct buf *t = f->user;
			f->user = f->text;
			f->text = t;
		}
		if ((r = js_next(j, ']')) < 0)
			return -1;
		if (r)
			return 0;
	}
}

static int fast_options_key(struct jscan *j, const char *k, size_t kn, void *ctx)
{
	struct fast_req *f = ctx;
	if (!key_is(k, kn, "include_usage"))
		return js_skip(j, 2);
	if (f->include_usage >= 0) /* a second include_usage */
		return -1;
	f->include_usage = !js_lit(j, "true", 4);
	return f->include_usage ? 0 : js_skip(j, 2);
}

static int fast_top_key(struct jscan *j, const char *k, size_t kn, void *ctx)
{
	struct fast_req *f = ctx;
	struct sim_request *req = f->req;
	const char *s;
	size_t n;
	int esc, which = -1, known = 0;
	char num[FAST_NUM + 1];

	for (int i = 0; i < (int)ARRAY_SIZE(fast_keys); i++)
		if (key_is(k, kn, fast_keys[i]))
			which = i;
	if (which < 0)
		return js_skip(j, 1);
	if (f->seen & (1u << which))
		return -1;
	f->seen |= 1u << which;
	switch (which) {
	case FK_MODEL:
		if (js_str(j, &s, &n, &esc) || esc || n >= sizeof(req->model))
			return -1;
		for (int i = 0; i < f->c->nmodels; i++)
			known |= strlen(f->c->models[i]) == n && !memcmp(f->c->models[i], s, n);
		if (!known)
			return -1;
		memcpy(req->model, s, n);
		req->model[n] = '\0';
		return 0;
	case FK_MESSAGES: return fast_messages(j, f);
	case FK_STREAM:
		if (!js_lit(j, "true", 4))
			req->stream = 1;
		else if (js_lit(j, "false", 5) && js_lit(j, "null", 4))
			return -1;
		return 0;
	case FK_STREAM_OPTIONS:
		if (j->p < j->end && *j->p == '{') {
			f->include_usage = -1;
			if (js_object(j, fast_options_key, f))
				return -1;
			f->include_usage = f->include_usage > 0;
			return 0;
		}
		return js_skip(j, 1);
	default: /* max_completion_tokens, max_tokens: numbers count, others are ignored */
		if (j->p < j->end && (*j->p == '-' || is_digit(*j->p))) {
			if (js_num(j, num))
				return -1;
			double d = strtod(num, NULL);
			if (which == FK_MAX_COMPLETION)
				f->max_completion = d, f->have_completion = 1;
			else
				f->max_tokens = d, f->have_tokens = 1;
			return 0;
		}
		return js_skip(j, 1);
	}
}

/* 1 when the fast path parsed body into req (which the caller set to
 * zero), 0 when the general path must. */
static int request_fast(const struct sim_config *c, const char *body, size_t len, struct sim_request *req)
{
	struct jscan j = {body, body + len};
	struct buf a = BUF_INIT(TEXT_MAX), b = BUF_INIT(TEXT_MAX);
	struct fast_req f = {.c = c, .req = req, .user = &a, .text = &b};
	int ok = !js_object(&j, fast_top_key, &f);

	js_ws(&j);
	ok = ok && j.p == j.end && (f.seen & (1u << FK_MODEL)) && req->nmessages > 0;
	if (ok && (f.have_completion || f.have_tokens)) {
		double d = f.have_completion ? f.max_completion : f.max_tokens;
		ok = d >= 1 && d <= 1e7 && d == (double)(int64_t)d;
		req->max_tokens = ok ? (int64_t)d : 0;
	}
	req->include_usage = f.include_usage;
	if (ok) {
		req->user = buf_detach(f.user, NULL);
	} else {
		buf_release(f.user);
	}
	buf_release(f.text);
	return ok;
}

int sim_request_parse(const struct sim_config *c, const char *body, size_t len, struct sim_request *req,
		      char *err_type, size_t type_len, char *msg, size_t msg_len)
{
	memset(req, 0, sizeof(*req));
	if (request_fast(c, body, len, req))
		return 0;
	sim_request_release(req);
	return sim_request_parse_json(c, body, len, req, err_type, type_len, msg, msg_len);
}

/* ---- fast JSON strings ---------------------------------------------------------- */

/* The escape of each byte inside a JSON string: 0 for none, the letter of
 * a short escape (\n, \"), or 'u' for \u00XX. */
static const char json_esc_kind[256] = {
	['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r', ['"'] = '"',  ['\\'] = '\\',
	[0x00] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u', [0x06] = 'u',
	[0x07] = 'u', [0x0b] = 'u', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u', [0x11] = 'u', [0x12] = 'u',
	[0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u', [0x18] = 'u', [0x19] = 'u',
	[0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u', [0x1e] = 'u', [0x1f] = 'u',
};

/* Room json_esc needs beyond lim.  One round starts below lim and may write
 * up to 15 plain bytes of a 16-byte block and then one 6-byte escape: 21
 * bytes past its start.  (The whole-block store itself is 16.) */
#define JSON_ESC_SLACK 24

/* Escape s[0..n) into dst, stopping before dst would pass lim (which has
 * JSON_ESC_SLACK bytes of room after it).  Plain runs move eight bytes at a
 * time, stored whole before they are checked: replies are mostly text that
 * needs no escaping, and this is the hot path of the benchmark.  Returns
 * the bytes of s consumed; *out is advanced. */
static size_t json_esc(char **out, const char *lim, const char *s, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	char *d = *out;
	size_t i = 0;

	while (i < n && d < lim) {
#ifdef __SSE2__
		if (i + 16 <= n) {
			const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
			_mm_storeu_si128((__m128i *)(void *)d, v);
			/* v <= 0x1f unsigned, or a '"', or a '\\' */
			__m128i m = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
			m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
			m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
			unsigned mask = (unsigned)_mm_movemask_epi8(m);
			if (!mask) {
				i += 16;
				d += 16;
				continue;
			}
			size_t k = (size_t)__builtin_ctz(mask);
			i += k;
			d += k;
		} else
#endif
			if (i + 8 <= n) {
			uint64_t w, q, bs;
			memcpy(&w, s + i, 8);
			memcpy(d, &w, 8);
			q = w ^ (ones * '"');
			bs = w ^ (ones * '\\');
			/* a byte < 0x20, a '"' or a '\\' somewhere in the word? */
			uint64_t hit =
				(((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & high;
			if (!hit) {
				i += 8;
				d += 8;
				continue;
			}
			/* The lowest flagged byte is exact (false hits only come after a
			 * true one); the bytes before it are already stored. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			size_t k = (size_t)__builtin_ctzll(hit) / 8;
			i += k;
			d += k;
#endif
		}
		unsigned char c = (unsigned char)s[i++];
		char kind = json_esc_kind[c];
		if (!kind) {
			*d++ = (char)c;
			continue;
		}
		d[0] = '\\';
		d[1] = kind;
		if (kind != 'u') {
			d += 2;
			continue;
		}
		d[2] = d[3] = '0';
		d[4] = hx[c >> 4];
		d[5] = hx[c & 15];
		d += 6;
	}
	*out = d;
	return i;
}

/* Append s as the characters of a JSON string literal (same output as
 * json_append_str), escaping straight into the buffer's spare room. */
static int put_json_chars(struct buf *b, const char *s, size_t n)
{
	while (n) {
		/* Room for the text, some escapes and the slack; more rounds only
		 * when a run is escape-heavy. */
		size_t want = n + n / 8 + 64;
		if (buf_grow(b, want + JSON_ESC_SLACK) && buf_grow(b, 64 + JSON_ESC_SLACK))
			return DERR_LIMIT;
		char *d = b->data + b->len;
		size_t k = json_esc(&d, b->data + b->cap - 1 - JSON_ESC_SLACK, s, n);
		b->len = (size_t)(d - b->data);
		b->data[b->len] = '\0';
		s += k;
		n -= k;
	}
	return 0;
}

static int put_json_str(struct buf *b, const char *s, size_t n)
{
	if (buf_putc(b, '"') || put_json_chars(b, s, n) || buf_putc(b, '"'))
		return DERR_LIMIT;
	return 0;
}

/* ---- replies ------------------------------------------------------------------ */

void sim_reply_init(struct sim_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, BODY_MAX);
	r->content_type = "application/json";
	r->retry_after_s = -1;
	r->close_at = SIZE_MAX;
	r->placement = -1;
	r->kind = SIM_KIND_COUNT;
}

void sim_reply_release(struct sim_reply *r)
{
	buf_release(&r->body);
	free(r->seg);
	r->seg = NULL;
	r->nseg = 0;
}

int sim_reply_is_immediate(const struct sim_reply *r)
{
	for (size_t i = 0; i < r->nseg; i++)
		if (r->seg[i].due_ms > 0)
			return 0;
	return r->head_due_ms <= 0 && r->close_at == SIZE_MAX && r->declared_len == r->body.len;
}

static void reply_one_segment(struct sim_reply *r, int64_t due)
{
	free(r->seg);
	r->seg = xmalloc(sizeof(*r->seg));
	r->seg[0].end = r->body.len;
	r->seg[0].due_ms = due;
	r->nseg = 1;
	r->head_due_ms = due;
	r->declared_len = r->body.len;
}

void sim_reply_error(struct sim_reply *r, int status, const char *type, const char *code, const char *msg)
{
	buf_reset(&r->body);
	r->status = status;
	r->content_type = "application/json";
	PUT_LIT(&r->body, "{\"error\":{\"message\":");
	put_json_str(&r->body, msg, strlen(msg));
	PUT_LIT(&r->body, ",\"type\":");
	put_json_str(&r->body, type, strlen(type));
	PUT_LIT(&r->body, ",\"param\":null,\"code\":");
	if (code)
		put_json_str(&r->body, code, strlen(code));
	else
		PUT_LIT(&r->body, "null");
	PUT_LIT(&r->body, "}}");
	reply_one_segment(r, 0);
}

/* Token estimate: four bytes a token, as a rough BPE tokenizer gives on English. */
static int64_t tokens_of(size_t bytes)
{
	return (int64_t)((bytes + 3) / 4);
}

/* The text each placement shows in "content", and the reasoning field. */
static void placement_content(const struct trace *t, int place, struct buf *content)
{
	if (!t->has_reasoning || place == SIM_PLACE_REASONING_CONTENT || place == SIM_PLACE_REASONING) {
		buf_append(content, buf_str(&t->answer), t->answer.len);
		return;
	}
	if (place == SIM_PLACE_INLINE)
		PUT_LIT(content, "<think>\n");
	buf_append(content, buf_str(&t->reasoning), t->reasoning.len);
	if (t->open)
		return;
	PUT_LIT(content, "\n</think>\n\n");
	buf_append(content, buf_str(&t->answer), t->answer.len);
}

static const char *reasoning_field(const struct trace *t, int place)
{
	if (!t->has_reasoning)
		return NULL;
	return place == SIM_PLACE_REASONING_CONTENT ? "reasoning_content"
	       : place == SIM_PLACE_REASONING	    ? "reasoning"
						    : NULL;
}

struct render {
	char id[40];
	const char *model;
	int64_t prompt_tokens, completion_tokens;
	const char *finish;
};

/* "chatcmpl-" and 16 hex digits of the content seed. */
static void put_id(char id[40], uint64_t v)
{
	static const char hx[] = "0123456789abcdef";
	memcpy(id, "chatcmpl-", 9);
	for (int i = 0; i < 16; i++)
		id[9 + i] = hx[(v >> (60 - 4 * i)) & 15];
	id[25] = '\0';
}

static void put_usage(struct buf *b, const struct render *x)
{
	PUT_LIT(b, "\"usage\":{\"prompt_tokens\":");
	put_i64(b, x->prompt_tokens);
	PUT_LIT(b, ",\"completion_tokens\":");
	put_i64(b, x->completion_tokens);
	PUT_LIT(b, ",\"total_tokens\":");
	put_i64(b, x->prompt_tokens + x->completion_tokens);
	buf_putc(b, '}');
}

static void put_head(struct buf *b, const struct render *x, const char *object)
{
	PUT_LIT(b, "{\"id\":\"");
	buf_puts(b, x->id);
	PUT_LIT(b, "\",\"object\":\"");
	buf_puts(b, object);
	PUT_LIT(b, "\",\"created\":");
	put_i64(b, CREATED);
	PUT_LIT(b, ",\"model\":");
	put_json_str(b, x->model, strlen(x->model));
}

static void render_whole(struct sim_reply *r, const struct trace *t, int place, const struct render *x)
{
	const char *field = reasoning_field(t, place);
	struct buf *b = &r->body;

	/* room for everything at once: the text plus its escapes and the frame */
	buf_grow(b, (t->reasoning.len + t->answer.len) * 9 / 8 + 512);
	put_head(b, x, "chat.completion");
	PUT_LIT(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"");
	/* the content of placement_content(), escaped piece by piece, no copy */
	if (!t->has_reasoning || field) {
		put_json_chars(b, buf_str(&t->answer), t->answer.len);
	} else {
		if (place == SIM_PLACE_INLINE)
			PUT_LIT(b, "<think>\\n");
		put_json_chars(b, buf_str(&t->reasoning), t->reasoning.len);
		if (!t->open) {
			PUT_LIT(b, "\\n</think>\\n\\n");
			put_json_chars(b, buf_str(&t->answer), t->answer.len);
		}
	}
	buf_putc(b, '"');
	if (field) {
		PUT_LIT(b, ",\"");
		buf_puts(b, field);
		PUT_LIT(b, "\":");
		put_json_str(b, buf_str(&t->reasoning), t->reasoning.len);
	}
	PUT_LIT(b, "},\"logprobs\":null,\"finish_reason\":\"");
	buf_puts(b, x->finish);
	PUT_LIT(b, "\"}],");
	put_usage(b, x);
	PUT_LIT(b, "}");
}

/* SSE events, one segment each, paced by the latency model. */
struct stream_out {
	struct sim_reply *r;
	size_t cap;
	const struct render *x;
	int64_t ttft_ms;
	double tps;
	size_t text_sent; /* bytes of text so far, for pacing */
};

static void stream_event_end(struct stream_out *s)
{
	struct sim_reply *r = s->r;
	if (r->nseg == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		r->seg = xrealloc(r->seg, s->cap * sizeof(*r->seg));
	}
	r->seg[r->nseg].end = r->body.len;
	r->seg[r->nseg].due_ms =
		s->ttft_ms + (s->tps > 0 ? (int64_t)((double)tokens_of(s->text_sent) * 1000.0 / s->tps) : 0);
	r->nseg++;
}

static void stream_delta(struct stream_out *s, const char *field, const char *text, size_t n)
{
	struct buf *b = &s->r->body;
	PUT_LIT(b, "data: ");
	put_head(b, s->x, "chat.completion.chunk");
	buf_printf(b, ",\"choices\":[{\"index\":0,\"delta\":{\"%s\":", field);
	put_json_str(b, text, n);
	PUT_LIT(b, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
	s->text_sent += n;
	stream_event_end(s);
}

static void stream_text(struct stream_out *s, const char *field, const char *text, size_t n)
{
	while (n) {
		size_t k = utf8_prefix(text, n, STREAM_PIECE);
		if (!k) /* a lone continuation byte run: send it whole */
			k = n < STREAM_PIECE ? n : STREAM_PIECE;
		stream_delta(s, field, text, k);
		text += k;
		n -= k;
	}
}

static void render_stream(struct sim_reply *r, const struct trace *t, int place, const struct render *x,
			  int include_usage, const struct sim_config *c)
{
	struct stream_out s = {r, 0, x, c->ttft_ms, c->tokens_per_s, 0};
	const char *field = reasoning_field(t, place);
	struct buf content = BUF_INIT(TEXT_MAX);
	struct buf *b = &r->body;

	r->stream = 1;
	r->content_type = "text/event-stream";
	PUT_LIT(b, "data: ");
	put_head(b, x, "chat.completion.chunk");
	buf_puts(
		b,
		",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":"
		"null,\"finish_reason\":null}]}\n\n");
	stream_event_end(&s);
	if (field)
		stream_text(&s, field, buf_str(&t->reasoning), t->reasoning.len);
	placement_content(t, place, &content);
	stream_text(&s, "content", buf_str(&content), content.len);
	PUT_LIT(b, "data: ");
	put_head(b, x, "chat.completion.chunk");
	buf_printf(
		b,
		",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]}\n\n",
		x->finish);
	stream_event_end(&s);
	if (include_usage) {
		PUT_LIT(b, "data: ");
		put_head(b, x, "chat.completion.chunk");
		PUT_LIT(b, ",\"choices\":[],");
		put_usage(b, x);
		PUT_LIT(b, "}\n\n");
		stream_event_end(&s);
	}
	PUT_LIT(b, "data: [DONE]\n\n");
	stream_event_end(&s);
	buf_release(&content);
	r->head_due_ms = c->ttft_ms;
	r->declared_len = r->body.len;
}

/* Draw one index over weights with u in [0,1). */
static int draw_weighted(const double *w, int n, double u)
{
	double sum = 0, acc = 0;
	for (int i = 0; i < n; i++)
		sum += w[i];
	for (int i = 0; i < n; i++) {
		acc += w[i];
		if (w[i] > 0 && u * sum < acc)
			return i;
	}
	for (int i = n - 1; i >= 0; i--)
		if (w[i] > 0)
			return i;
	return 0;
}

/* Carry out a transport fault on a rendered 200 reply. */
static void apply_fault(struct sim_reply *r, const struct sim_config *c)
{
	size_t mid = r->body.len / 2;
	switch (r->fault) {
	case SIM_FAULT_MALFORMED:
		if (r->stream) {
			/* Cut the JSON of the middle event, keep the rest of the stream. */
			size_t k = r->nseg / 2, start = k ? r->seg[k - 1].end : 0, end = r->seg[k].end;
			size_t cut = start + (end - start) / 2, drop = end - 2 - cut;
			memmove(r->body.data + cut, r->body.data + end - 2, r->body.len - (end - 2) + 1);
			r->body.len -= drop;
			for (size_t i = k; i < r->nseg; i++)
				r->seg[i].end -= drop;
		} else {
			r->body.len = mid;
			r->body.data[mid] = '\0';
			r->seg[0].end = mid;
		}
		r->declared_len = r->body.len;
		break;
	case SIM_FAULT_CLOSE: r->close_at = mid; break;
	case SIM_FAULT_STALL:
		if (r->stream) {
			for (size_t i = r->nseg / 2; i < r->nseg; i++)
				r->seg[i].due_ms += c->stall_ms;
		} else {
			r->seg[0].due_ms += c->stall_ms;
			r->head_due_ms += c->stall_ms;
		}
		break;
	default: break;
	}
}

void sim_complete(const struct sim_config *c, const char *body, size_t len, int64_t attempt,
		  struct sim_reply *r)
{
	struct sim_request req;
	char type[64], msg[256];
	uint64_t content_seed = hash64(body, len, c->seed);
	uint64_t crng = content_seed, frng = hash_mix64(content_seed, (uint64_t)attempt ^ 0x5eedfa17ULL);
	double u_noise[SIM_NOISE_COUNT], u_place, u_wait, u_fault;
	struct trace t = {BUF_INIT(TEXT_MAX), BUF_INIT(TEXT_MAX), 1, 0, 0};
	struct task task;
	struct render x;
	int status, place;
	const char *rec = NULL;
	size_t limit;

	sim_reply_init(r);
	status = sim_request_parse(c, body, len, &req, type, sizeof(type), msg, sizeof(msg));
	if (status) {
		sim_reply_error(r, status, type, status == 404 ? "model_not_found" : NULL, msg);
		sim_request_release(&req);
		return;
	}

	/* Faults first: an error status renders no completion. */
	u_fault = rng_unit(&frng);
	{
		/* u_fault < sum of the probabilities: a fault, chosen in
		 * proportion to them (draw_weighted takes u on [0, 1)). */
		double sum = 0;
		for (int i = 1; i < SIM_FAULT_COUNT; i++)
			sum += c->fault_p[i];
		r->fault = u_fault < sum
				   ? (enum sim_fault)(1 + draw_weighted(c->fault_p + 1, SIM_FAULT_COUNT - 1,
									u_fault / sum))
				   : SIM_FAULT_NONE;
	}
	if (r->fault == SIM_FAULT_HTTP_429 || r->fault == SIM_FAULT_HTTP_500 ||
	    r->fault == SIM_FAULT_HTTP_503) {
		static const struct {
			int status;
			const char *type, *code, *msg;
		} err[] = {
			{429, "requests", "rate_limit_exceeded",
			 "Rate limit reached for requests. Please try again later."},
			{500, "server_error", NULL, "The server had an error while processing your request."},
			{503, "server_error", "overloaded",
			 "The engine is currently overloaded, please try again later."},
		};
		int k = r->fault - SIM_FAULT_HTTP_429;
		sim_reply_error(r, err[k].status, err[k].type, err[k].code, err[k].msg);
		if (r->fault == SIM_FAULT_HTTP_429)
			r->retry_after_s = c->retry_after_s;
		sim_request_release(&req);
		return;
	}

	/* One allocation each for the usual trace instead of a chain of reallocs. */
	if (buf_grow(&t.reasoning, 1024 + (size_t)c->pad_reasoning))
		buf_grow(&t.reasoning, 1024);
	buf_grow(&t.answer, 256);

	/* Content draws, all up front so each has a fixed place in the sequence. */
	for (int i = 0; i < SIM_NOISE_COUNT; i++)
		u_noise[i] = rng_unit(&crng);
	u_place = rng_unit(&crng);
	u_wait = rng_unit(&crng);
	place = draw_weighted(c->placement_weight, SIM_PLACE_COUNT, u_place);
#define DRAWN(k) (u_noise[k] < c->noise_p[k])

	if (c->replay)
		rec = replay_find(c->replay, req.user, &crng);
	if (rec) {
		r->replayed = 1;
		trace_replay(rec, &t);
		if (DRAWN(SIM_NOISE_WRONG) && noise_wrong_replay(&t.answer))
			r->noise |= 1u << SIM_NOISE_WRONG;
	} else if (!find_word(req.user, &task) || !find_arith(req.user, &task)) {
		int64_t ans = task.answer;
		r->kind = task.kind;
		if (DRAWN(SIM_NOISE_WRONG)) {
			static const int64_t delta[] = {1, -1, 10, -10, 2, 100};
			ans += delta[rng_range(&crng, 0, (int64_t)ARRAY_SIZE(delta) - 1)];
			r->noise |= 1u << SIM_NOISE_WRONG;
		}
		trace_task(&task, ans, u_wait < c->wait_p, &t);
	} else {
		trace_generic(req.user, &crng, &t);
	}

	if (t.has_reasoning && c->pad_reasoning > 0)
		noise_pad(&t, (size_t)c->pad_reasoning);
	if (t.has_reasoning && DRAWN(SIM_NOISE_EMPTY_THINK)) {
		buf_reset(&t.reasoning);
		r->noise |= 1u << SIM_NOISE_EMPTY_THINK;
	} else if (t.has_reasoning && DRAWN(SIM_NOISE_MIXLANG) && noise_mixlang(&t, &crng)) {
		r->noise |= 1u << SIM_NOISE_MIXLANG;
	}
	if (DRAWN(SIM_NOISE_NO_BOX) && (noise_no_box(&t.answer) | noise_no_box(&t.reasoning)))
		r->noise |= 1u << SIM_NOISE_NO_BOX;
	limit = (size_t)(req.max_tokens ? req.max_tokens : c->default_max_tokens) * 4;
	if (t.has_reasoning && t.reasoning.len && DRAWN(SIM_NOISE_LOOP) && noise_loop(&t, limit))
		r->noise |= 1u << SIM_NOISE_LOOP;
	else if (t.has_reasoning && DRAWN(SIM_NOISE_TRUNCATE) && noise_truncate(&t, &crng))
		r->noise |= 1u << SIM_NOISE_TRUNCATE;
#undef DRAWN
	/* max_tokens cuts whatever is longer, as a real server does. */
	if (t.reasoning.len + t.answer.len > limit) {
		if (t.reasoning.len >= limit) {
			t.reasoning.len = utf8_prefix(t.reasoning.data, t.reasoning.len, limit);
			t.reasoning.data[t.reasoning.len] = '\0';
			buf_reset(&t.answer);
			t.open = t.has_reasoning;
		} else {
			t.answer.len = utf8_prefix(t.answer.data, t.answer.len, limit - t.reasoning.len);
			t.answer.data[t.answer.len] = '\0';
		}
		t.truncated = 1;
	}

	r->placement = t.has_reasoning ? place : -1;
	put_id(x.id, content_seed);
	x.model = req.model;
	x.prompt_tokens = tokens_of(req.prompt_bytes) + 4 * req.nmessages;
	x.completion_tokens = tokens_of(t.reasoning.len + t.answer.len);
	x.finish = t.truncated ? "length" : "stop";
	r->status = 200;
	if (req.stream) {
		render_stream(r, &t, place, &x, req.include_usage, c);
	} else {
		render_whole(r, &t, place, &x);
		reply_one_segment(r,
				  c->ttft_ms + (c->tokens_per_s > 0 ? (int64_t)((double)x.completion_tokens *
										1000.0 / c->tokens_per_s)
								    : 0));
	}
	apply_fault(r, c);
	buf_release(&t.reasoning);
	buf_release(&t.answer);
	sim_request_release(&req);
}

void sim_models_json(const struct sim_config *c, struct buf *out)
{
	PUT_LIT(out, "{\"object\":\"list\",\"data\":[");
	for (int i = 0; i < c->nmodels; i++) {
		buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
		put_json_str(out, c->models[i], strlen(c->models[i]));
		buf_printf(out, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"distill\"}", CREATED);
	}
	PUT_LIT(out, "]}");
}

/* ---- statistics ------------------------------------------------------------- */

#define STAT_ADD(field) __atomic_fetch_add(&(field), 1, __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

void sim_stats_add(struct sim_stats *s, const struct sim_reply *r)
{
	STAT_ADD(s->completions);
	if (r->status >= 400 && r->status < 500 && r->fault == SIM_FAULT_NONE)
		STAT_ADD(s->errors_4xx);
	if (r->stream)
		STAT_ADD(s->stream);
	if (r->replayed)
		STAT_ADD(s->replayed);
	STAT_ADD(s->fault[r->fault]);
	for (int i = 0; i < SIM_NOISE_COUNT; i++)
		if (r->noise & (1u << i))
			STAT_ADD(s->noise[i]);
	if (r->placement >= 0)
		STAT_ADD(s->placement[r->placement]);
	if (r->status == 200)
		STAT_ADD(s->kind[r->kind]);
}

static void stats_group(struct buf *out, const char *name, const char *const *names, const uint64_t *v, int n)
{
	buf_printf(out, ",\"%s\":{", name);
	for (int i = 0; i < n; i++)
		buf_printf(out, "%s\"%s\":%" PRIu64, i ? "," : "", names[i], STAT_GET(v[i]));
	buf_putc(out, '}');
}

void sim_stats_json(const struct sim_stats *s, struct buf *out)
{
	static const char *const kinds[SIM_KIND_COUNT + 1] = {"add", "sub", "mul", "word", "other"};
	buf_printf(out,
		   "{\"requests\":%" PRIu64 ",\"completions\":%" PRIu64 ",\"errors_4xx\":%" PRIu64
		   ",\"stream\":%" PRIu64 ",\"replayed\":%" PRIu64,
		   STAT_GET(s->requests), STAT_GET(s->completions), STAT_GET(s->errors_4xx),
		   STAT_GET(s->stream), STAT_GET(s->replayed));
	stats_group(out, "faults", sim_fault_names, s->fault, SIM_FAULT_COUNT);
	stats_group(out, "noise", sim_noise_names, s->noise, SIM_NOISE_COUNT);
	stats_group(out, "placements", sim_placement_names, s->placement, SIM_PLACE_COUNT);
	stats_group(out, "kinds", kinds, s->kind, SIM_KIND_COUNT + 1);
	buf_putc(out, '}');
}
