/*
 * test_sim.c - the teacher simulator's deterministic core (pipeline/sim.c):
 * tasks and their traces, each reasoning placement, each noise and fault
 * kind, determinism of content and faults, request errors, streaming,
 * latency pacing, replay and configuration.  The real server is tested in
 * test_sim_server.c.
 */
#include "t.h"

#include "buf.h"
#include "hash.h"
#include "json.h"
#include "sim.h"

#include <inttypes.h>

static const char *add_body =
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is "
	"347 + 589?\"}],\"seed\":11}";

struct msg {
	cJSON *root;
	const char *content, *reasoning_content, *reasoning, *finish;
	double completion_tokens;
};

/* Run one request and parse the non-streaming reply. */
static int complete(const struct sim_config *c, const char *body, int64_t attempt, struct sim_reply *r,
		    struct msg *m)
{
	const cJSON *ch, *msg, *usage;
	memset(m, 0, sizeof(*m));
	sim_complete(c, body, strlen(body), attempt, r);
	m->root = json_parse(buf_str(&r->body), r->body.len);
	if (!m->root)
		return -1;
	ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m->root, "choices"), 0);
	msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
	m->content = json_get_str(msg, "content");
	m->reasoning_content = json_get_str(msg, "reasoning_content");
	m->reasoning = json_get_str(msg, "reasoning");
	m->finish = json_get_str(ch, "finish_reason");
	usage = cJSON_GetObjectItemCaseSensitive(m->root, "usage");
	json_get_num(usage, "completion_tokens", &m->completion_tokens);
	return 0;
}

static void done(struct sim_reply *r, struct msg *m)
{
	cJSON_Delete(m->root);
	m->root = NULL;
	sim_reply_release(r);
}

static void only_placement(struct sim_config *c, int p)
{
	for (int i = 0; i < SIM_PLACE_COUNT; i++)
		c->placement_weight[i] = i == p;
}

static void test_placements(void)
{
	struct sim_config c;
	struct sim_reply r;
	struct msg m;

	sim_config_init(&c);
	c.wait_p = 0;
	for (int p = 0; p < SIM_PLACE_COUNT; p++) {
		only_placement(&c, p);
		T_OK(complete(&c, add_body, 0, &r, &m), &(struct derr){0});
		T_EQ_INT(r.status, 200);
		T_EQ_INT(r.placement, p);
		T_EQ_STR(m.finish, "stop");
		switch (p) {
		case SIM_PLACE_REASONING_CONTENT:
			T_TRUE(m.reasoning_content && strstr(m.reasoning_content, "7+9=16"));
			T_TRUE(!m.reasoning);
			T_EQ_STR(m.content, "347 + 589 = 936\n\n\\boxed{936}");
			break;
		case SIM_PLACE_REASONING:
			T_TRUE(m.reasoning && strstr(m.reasoning, "So 347+589=936."));
			T_TRUE(!m.reasoning_content);
			T_EQ_STR(m.content, "347 + 589 = 936\n\n\\boxed{936}");
			break;
		case SIM_PLACE_INLINE:
			T_EQ_STR(m.content,
				 "<think>\n1. 7+9=16: write 6, carry 1.\n2. 4+8+1=13: write 3, carry 1.\n"
				 "3. 3+5+1=9: write 9.\nSo 347+589=936.\n</think>\n\n347 + 589 = 936\n\n"
				 "\\boxed{936}");
			break;
		case SIM_PLACE_CLOSE_ONLY:
			T_TRUE(m.content && !strncmp(m.content, "1. 7+9=16", 9));
			T_TRUE(strstr(m.content, "\n</think>\n\n347 + 589 = 936") != NULL);
			T_TRUE(!strstr(m.content, "<think>"));
			break;
		}
		done(&r, &m);
	}
	/* Weights are honoured: 3:1 over many bodies. */
	{
		int count[SIM_PLACE_COUNT] = {0};
		char body[256];
		sim_config_release(&c);
		sim_config_init(&c);
		T_OK(sim_config_set(&c, "placement", "inline=3,close_only=1", NULL), &(struct derr){0});
		for (int i = 0; i < 400; i++) {
			snprintf(body, sizeof(body),
				 "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":"
				 "\"What is "
				 "1 + 2?\"}],\"seed\":%d}",
				 i);
			sim_complete(&c, body, strlen(body), 0, &r);
			count[r.placement]++;
			sim_reply_release(&r);
		}
		T_EQ_INT(count[SIM_PLACE_REASONING_CONTENT] + count[SIM_PLACE_REASONING], 0);
		T_TRUE(count[SIM_PLACE_INLINE] > 250 && count[SIM_PLACE_INLINE] < 350);
	}
	sim_config_release(&c);
}

/* The reasoning text of a reply, whatever the placement. */
static const char *reasoning_of(const struct msg *m)
{
	return m->reasoning_content ? m->reasoning_content : m->reasoning;
}

static void test_noise(void)
{
	struct sim_config c;
	struct sim_reply r;
	struct msg m;
	const char *body =
		"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 347 + "
		"589?\"}],\"max_tokens\":300}";

	for (int k = 0; k < SIM_NOISE_COUNT; k++) {
		sim_config_init(&c);
		only_placement(&c, SIM_PLACE_REASONING_CONTENT);
		c.noise_p[k] = 1;
		T_OK(complete(&c, body, 0, &r, &m), &(struct derr){0});
		T_EQ_INT(r.noise, 1u << k);
		const char *rs = reasoning_of(&m);
		T_TRUE(rs != NULL && m.content != NULL);
		if (!rs || !m.content) {
			done(&r, &m);
			sim_config_release(&c);
			continue;
		}
		switch (k) {
		case SIM_NOISE_WRONG:
			T_TRUE(strstr(m.content, "\\boxed{") && !strstr(m.content, "\\boxed{936}"));
			T_EQ_STR(m.finish, "stop");
			break;
		case SIM_NOISE_MIXLANG:
			T_TRUE(strstr(rs, "\xe3\x80\x82") != NULL); /* a Chinese full stop */
			T_TRUE(strstr(rs, "7+9=16") != NULL);
			break;
		case SIM_NOISE_LOOP:
			T_EQ_STR(m.finish, "length");
			T_EQ_INT((long long)m.completion_tokens, 300);
			T_EQ_INT(strlen(rs), 1200);
			T_EQ_STR(m.content, "");
			T_TRUE(strstr(rs + 600, "Wait, let me redo that.") != NULL);
			break;
		case SIM_NOISE_TRUNCATE: {
			size_t n = strlen(rs);
			T_EQ_STR(m.finish, "length");
			T_EQ_STR(m.content, "");
			T_TRUE(n > 10 && n < 100);
			T_TRUE(n && rs[n - 1] != '.' && rs[n - 1] != '\n');
			break;
		}
		case SIM_NOISE_NO_BOX:
			T_TRUE(!strstr(m.content, "\\boxed"));
			T_TRUE(strstr(m.content, "936") != NULL);
			break;
		case SIM_NOISE_EMPTY_THINK:
			T_EQ_STR(rs, "");
			T_TRUE(strstr(m.content, "\\boxed{936}") != NULL);
			break;
		}
		done(&r, &m);
		/* Inline placement of the same noise: the open/closed think block. */
		only_placement(&c, SIM_PLACE_INLINE);
		T_OK(complete(&c, body, 0, &r, &m), &(struct derr){0});
		if (m.content && k == SIM_NOISE_EMPTY_THINK)
			T_TRUE(!strncmp(m.content, "<think>\n\n</think>\n\n", 19));
		if (m.content && (k == SIM_NOISE_LOOP || k == SIM_NOISE_TRUNCATE))
			T_TRUE(!strncmp(m.content, "<think>\n", 8) && !strstr(m.content, "</think>"));
		done(&r, &m);
		sim_config_release(&c);
	}
}

static void test_faults(void)
{
	struct sim_config c;
	struct sim_reply r;

	for (int f = 1; f < SIM_FAULT_COUNT; f++) {
		sim_config_init(&c);
		c.fault_p[f] = 1;
		c.stall_ms = 1500;
		for (int stream = 0; stream < 2; stream++) {
			char body[256];
			snprintf(body, sizeof(body),
				 "{\"model\":\"distill-sim\",\"stream\":%s,\"messages\":[{\"role\":\"user\","
				 "\"content\":"
				 "\"What is 12 + 30?\"}]}",
				 stream ? "true" : "false");
			sim_complete(&c, body, strlen(body), 3, &r);
			T_EQ_INT(r.fault, f);
			cJSON *j = json_parse(buf_str(&r.body), r.body.len);
			switch (f) {
			case SIM_FAULT_HTTP_429:
				T_EQ_INT(r.status, 429);
				T_EQ_INT(r.retry_after_s, 1);
				T_TRUE(j && cJSON_GetObjectItem(j, "error"));
				break;
			case SIM_FAULT_HTTP_500:
				T_EQ_INT(r.status, 500);
				T_TRUE(j && json_get_str(cJSON_GetObjectItem(j, "error"), "message"));
				break;
			case SIM_FAULT_HTTP_503:
				T_EQ_INT(r.status, 503);
				T_EQ_STR(json_get_str(cJSON_GetObjectItem(j, "error"), "code"), "overloaded");
				break;
			case SIM_FAULT_MALFORMED:
				T_EQ_INT(r.status, 200);
				if (!stream) {
					T_TRUE(j == NULL);
				} else {
					/* One data line of the stream is not JSON; [DONE] still ends it. */
					int bad = 0;
					const char *p = buf_str(&r.body);
					while ((p = strstr(p, "data: "))) {
						const char *e = strstr(p, "\n\n");
						cJSON *ev;
						p += 6;
						if (!strncmp(p, "[DONE]", 6))
							break;
						ev = json_parse(p, (size_t)(e - p));
						bad += ev == NULL;
						cJSON_Delete(ev);
						p = e;
					}
					T_EQ_INT(bad, 1);
					T_TRUE(strstr(buf_str(&r.body), "data: [DONE]\n\n") != NULL);
				}
				break;
			case SIM_FAULT_CLOSE:
				T_EQ_INT(r.status, 200);
				T_TRUE(r.close_at < r.body.len);
				T_TRUE(r.close_at > 0);
				T_TRUE(!sim_reply_is_immediate(&r));
				break;
			case SIM_FAULT_STALL:
				T_EQ_INT(r.status, 200);
				if (!stream) {
					T_EQ_INT(r.head_due_ms, 1500);
				} else {
					T_EQ_INT(r.head_due_ms, 0);
					T_EQ_INT(r.seg[0].due_ms, 0);
					T_EQ_INT(r.seg[r.nseg - 1].due_ms, 1500);
				}
				T_TRUE(!sim_reply_is_immediate(&r));
				break;
			}
			cJSON_Delete(j);
			sim_reply_release(&r);
		}
		sim_config_release(&c);
	}
}

static void test_determinism(void)
{
	struct sim_config c;
	struct sim_reply a, b;
	char body[256];
	int ok = 0, failed = 0, differ = 0;

	sim_config_init(&c);
	c.seed = 42;
	c.noise_p[SIM_NOISE_WRONG] = 0.3;
	c.fault_p[SIM_FAULT_HTTP_500] = 0.5;
	/* The same body and attempt: byte-identical replies. */
	sim_complete(&c, add_body, strlen(add_body), 1, &a);
	sim_complete(&c, add_body, strlen(add_body), 1, &b);
	T_EQ_INT(a.status, b.status);
	T_TRUE(a.body.len == b.body.len && !memcmp(buf_str(&a.body), buf_str(&b.body), a.body.len));
	sim_reply_release(&a);
	sim_reply_release(&b);
	/* Faults depend on the attempt, content does not: a retry can succeed,
	 * and every success carries the same text. */
	struct buf first = BUF_INIT(1 << 20);
	for (int att = 0; att < 40; att++) {
		sim_complete(&c, add_body, strlen(add_body), att, &a);
		if (a.status == 500) {
			failed++;
		} else {
			ok++;
			if (!first.len)
				buf_append(&first, a.body.data, a.body.len);
			else
				T_TRUE(first.len == a.body.len &&
				       !memcmp(first.data, a.body.data, a.body.len));
		}
		sim_reply_release(&a);
	}
	T_TRUE(ok > 5 && failed > 5);
	buf_release(&first);
	/* K samples with different request seeds differ. */
	c.fault_p[SIM_FAULT_HTTP_500] = 0;
	for (int k = 0; k < 8; k++) {
		snprintf(body, sizeof(body),
			 "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is "
			 "347 + "
			 "589?\"}],\"seed\":%d}",
			 k);
		sim_complete(&c, body, strlen(body), 0, &a);
		snprintf(body, sizeof(body),
			 "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is "
			 "347 + "
			 "589?\"}],\"seed\":%d}",
			 k + 100);
		sim_complete(&c, body, strlen(body), 0, &b);
		differ += a.body.len != b.body.len || memcmp(a.body.data, b.body.data, a.body.len) != 0;
		sim_reply_release(&a);
		sim_reply_release(&b);
	}
	T_EQ_INT(differ, 8);
	/* Another server seed: other draws. */
	sim_complete(&c, add_body, strlen(add_body), 0, &a);
	c.seed = 43;
	sim_complete(&c, add_body, strlen(add_body), 0, &b);
	T_TRUE(a.body.len != b.body.len || memcmp(a.body.data, b.body.data, a.body.len) != 0);
	sim_reply_release(&a);
	sim_reply_release(&b);
	sim_config_release(&c);
}

static void test_bad_requests(void)
{
	static const struct {
		const char *body;
		int status;
		const char *needle;
	} cases[] = {
		{"", 400, "parse the JSON"},
		{"{\"model\":", 400, "parse the JSON"},
		{"[1,2]", 400, "parse the JSON"},
		{"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "model"},
		{"{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 404, "gpt-4"},
		{"{\"model\":\"distill-sim\"}", 400, "messages"},
		{"{\"model\":\"distill-sim\",\"messages\":[]}", 400, "messages"},
		{"{\"model\":\"distill-sim\",\"messages\":[{\"content\":\"hi\"}]}", 400, "role"},
		{"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400,
		 "content"},
		{"{\"model\":\"distill-sim\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":"
		 "\"hi\"}]}",
		 400, "stream"},
		{"{\"model\":\"distill-sim\",\"max_tokens\":-3,\"messages\":[{\"role\":\"user\",\"content\":"
		 "\"hi\"}]}",
		 400, "max_tokens"},
		{"{\"model\":\"distill-sim\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\",\"content\":"
		 "\"hi\"}]}",
		 400, "max_tokens"},
		{"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
		 "\"text\",\"text\":"
		 "\"What is 2 + 2?\"}]}]}",
		 200, "\\\\boxed{4}"},
		{"{\"model\":\"other\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 200, "other"},
	};
	struct sim_config c;
	struct sim_reply r;

	sim_config_init(&c);
	T_OK(sim_config_set(&c, "model", "distill-sim,other", NULL), &(struct derr){0});
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sim_complete(&c, cases[i].body, strlen(cases[i].body), 0, &r);
		T_EQ_INT(r.status, cases[i].status);
		if (!strstr(buf_str(&r.body), cases[i].needle))
			T_FAIL_AT("case %zu: body lacks '%s': %s", i, cases[i].needle, buf_str(&r.body));
		if (cases[i].status != 200) {
			cJSON *j = json_parse(buf_str(&r.body), r.body.len);
			const cJSON *err = cJSON_GetObjectItem(j, "error");
			T_TRUE(json_get_str(err, "message") && json_get_str(err, "type"));
			cJSON_Delete(j);
		}
		sim_reply_release(&r);
	}
	/* An error reply by hand (413 comes from the server). */
	sim_reply_init(&r);
	sim_reply_error(&r, 413, "invalid_request_error", "request_too_large", "Request body too large.");
	T_EQ_STR(buf_str(&r.body),
		 "{\"error\":{\"message\":\"Request body too large.\",\"type\":"
		 "\"invalid_request_error\",\"param\":null,\"code\":\"request_too_large\"}}");
	sim_reply_release(&r);
	sim_config_release(&c);
}

/* Reassemble a stream: concatenated content and reasoning deltas. */
static void test_stream(void)
{
	struct sim_config c;
	struct sim_reply r, w;
	struct msg m;
	const char *sbody =
		"{\"model\":\"distill-sim\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
		"\"messages\":[{\"role\":\"user\",\"content\":\"What is 347 + 589?\"}]}";
	const char *wbody =
		"{\"model\":\"distill-sim\",\"stream\":false,\"stream_options\":{\"include_usage\":true},"
		"\"messages\":[{\"role\":\"user\",\"content\":\"What is 347 + 589?\"}]}";

	sim_config_init(&c);
	c.wait_p = 0;
	c.pad_reasoning = 500; /* several chunks */
	for (int p = 0; p < SIM_PLACE_COUNT; p++) {
		struct buf content = BUF_INIT(1 << 20), reasoning = BUF_INIT(1 << 20);
		int usage = 0, done_seen = 0, events = 0;
		const char *finish = NULL;
		cJSON *keep = NULL;
		only_placement(&c, p);
		sim_complete(&c, sbody, strlen(sbody), 0, &r);
		T_EQ_INT(r.status, 200);
		T_TRUE(r.stream);
		T_EQ_STR(r.content_type, "text/event-stream");
		const char *s = buf_str(&r.body);
		while ((s = strstr(s, "data: "))) {
			const char *e = strstr(s, "\n\n");
			s += 6;
			T_TRUE(e != NULL);
			if (!e)
				break;
			if (!strncmp(s, "[DONE]", 6)) {
				done_seen = 1;
				T_EQ_INT(e + 2 - buf_str(&r.body), (long long)r.body.len);
				break;
			}
			cJSON *ev = json_parse(s, (size_t)(e - s));
			T_TRUE(ev != NULL);
			const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(ev, "choices"), 0);
			const cJSON *d = cJSON_GetObjectItem(ch, "delta");
			const char *t;
			if ((t = json_get_str(d, "content")))
				buf_puts(&content, t);
			if ((t = json_get_str(d, "reasoning_content")) || (t = json_get_str(d, "reasoning")))
				buf_puts(&reasoning, t);
			if (json_get_str(ch, "finish_reason")) {
				cJSON_Delete(keep);
				keep = ev;
				finish = json_get_str(ch, "finish_reason");
				ev = NULL;
			}
			if (cJSON_GetObjectItem(ev, "usage"))
				usage = 1;
			cJSON_Delete(ev);
			events++;
			s = e;
		}
		T_TRUE(done_seen && usage);
		T_EQ_STR(finish, "stop");
		T_TRUE(events > 5);
		T_EQ_INT(r.nseg, events + 1);
		/* Same content as the non-streaming reply to the same request. */
		T_OK(complete(&c, wbody, 0, &w, &m), &(struct derr){0});
		T_EQ_STR(buf_str(&content), m.content);
		if (reasoning_of(&m))
			T_EQ_STR(buf_str(&reasoning), reasoning_of(&m));
		done(&w, &m);
		cJSON_Delete(keep);
		buf_release(&content);
		buf_release(&reasoning);
		sim_reply_release(&r);
	}
	/* Without include_usage no usage chunk. */
	{
		const char *b = "{\"model\":\"distill-sim\",\"stream\":true,\"messages\":[{\"role\":\"user\","
				"\"content\":\"hi\"}]}";
		sim_complete(&c, b, strlen(b), 0, &r);
		T_TRUE(!strstr(buf_str(&r.body), "\"usage\""));
		sim_reply_release(&r);
	}
	sim_config_release(&c);
}

static void test_latency(void)
{
	struct sim_config c;
	struct sim_reply r;
	const char *sbody =
		"{\"model\":\"distill-sim\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
		"\"What is 347 + 589?\"}]}";

	sim_config_init(&c);
	T_OK(sim_config_set(&c, "ttft", "200ms", NULL), &(struct derr){0});
	T_OK(sim_config_set(&c, "tokens-per-s", "100", NULL), &(struct derr){0});
	sim_complete(&c, sbody, strlen(sbody), 0, &r);
	T_EQ_INT(r.head_due_ms, 200);
	T_EQ_INT(r.seg[0].due_ms, 200);
	for (size_t i = 1; i < r.nseg; i++)
		T_TRUE(r.seg[i].due_ms >= r.seg[i - 1].due_ms);
	T_TRUE(r.seg[r.nseg - 1].due_ms > 250);
	sim_reply_release(&r);
	sim_complete(&c, add_body, strlen(add_body), 0, &r);
	/* Non-streaming: the whole reply after ttft + tokens / rate. */
	T_TRUE(r.head_due_ms > 200 && r.nseg == 1 && r.seg[0].due_ms == r.head_due_ms);
	sim_reply_release(&r);
	sim_config_release(&c);
}

/* Extract the last \boxed{...} of s into out. */
static void last_box(const char *s, char *out, size_t len)
{
	const char *p = NULL, *q;
	out[0] = '\0';
	for (q = s; q && (q = strstr(q, "\\boxed{")); q++)
		p = q;
	if (p) {
		const char *e = strchr(p, '}');
		snprintf(out, len, "%.*s", e ? (int)(e - p - 7) : 0, p + 7);
	}
}

static void test_tasks_solved(void)
{
	struct sim_config c;
	static const int digits[SIM_KIND_COUNT] = {3, 4, 3, 2};
	uint64_t rng = 7;

	sim_config_init(&c);
	only_placement(&c, SIM_PLACE_REASONING_CONTENT);
	for (int k = 0; k < SIM_KIND_COUNT; k++) {
		int right = 0, short_traces = 0;
		for (int i = 0; i < 200; i++) {
			struct sim_task t;
			struct sim_reply r;
			struct msg m;
			struct buf body = BUF_INIT(4096);
			char box[64];
			T_EQ_INT(sim_task_gen((enum sim_kind)k, digits[k], &rng, &t), 0);
			buf_puts(&body,
				 "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":");
			json_append_str(&body, t.prompt, strlen(t.prompt));
			buf_printf(&body, "}],\"seed\":%d}", i);
			if (complete(&c, buf_str(&body), 0, &r, &m) == 0 && m.content) {
				last_box(m.content, box, sizeof(box));
				right += !strcmp(box, t.answer);
				if (r.kind != (enum sim_kind)k)
					T_FAIL_AT("kind %d not recognised in '%s'", k, t.prompt);
				size_t n = strlen(m.reasoning_content ? m.reasoning_content : "");
				short_traces += n >= 20 && n <= 200;
			}
			done(&r, &m);
			buf_release(&body);
		}
		T_EQ_INT(right, 200);
		if (k == SIM_KIND_ADD)
			T_EQ_INT(short_traces, 200); /* the easiest kind: tens to ~200 chars */
	}
	/* Operand ranges and the size of the add-3 space. */
	{
		struct sim_task t;
		for (int i = 0; i < 1000; i++) {
			long long a, b;
			sim_task_gen(SIM_KIND_ADD, 3, &rng, &t);
			T_EQ_INT(sscanf(t.prompt, "What is %lld + %lld?", &a, &b), 2);
			T_TRUE(a >= 100 && a <= 999 && b >= 100 && b <= 999);
		}
		T_EQ_INT(sim_task_gen(SIM_KIND_MUL, 10, &rng, &t), DERR_INVALID);
		T_EQ_INT(sim_task_gen(SIM_KIND_ADD, 0, &rng, &t), DERR_INVALID);
		T_EQ_INT(sim_task_gen(SIM_KIND_WORD, 7, &rng, &t), DERR_INVALID);
		T_EQ_INT(sim_task_gen(SIM_KIND_ADD, 18, &rng, &t), 0);
	}
	/* A "Wait," check appears at the configured share. */
	{
		int waits = 0;
		for (int i = 0; i < 200; i++) {
			char body[256];
			struct sim_reply r;
			snprintf(body, sizeof(body),
				 "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":"
				 "\"What is 5 + "
				 "7?\"}],\"seed\":%d}",
				 i);
			sim_complete(&c, body, strlen(body), 0, &r);
			waits += strstr(buf_str(&r.body), "Wait, check") != NULL;
			sim_reply_release(&r);
		}
		T_TRUE(waits > 15 && waits < 70); /* wait_p 0.2 */
	}
	sim_config_release(&c);
}

static void test_replay(void)
{
	struct sim_config c;
	struct sim_replay *rp = sim_replay_new();
	struct sim_reply r;
	struct msg m;
	char path[4096];
	const char *body =
		"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"Solve this: "
		"James runs 3 sprints 3 times a week, 60 meters each. How far?\\nPut the answer in "
		"a box.\"}]}";

	sim_replay_add(rp, "James runs 3 sprints 3 times a week, 60 meters each. How far?",
		       "Okay, 3*3=9 sprints, 9*60=540.\n</think>\n\nHe runs **540** meters: \\boxed{540}");
	sim_replay_add(rp, "Short", "x</think>y");
	T_EQ_INT(sim_replay_count(rp), 2);
	sim_config_init(&c);
	c.replay = rp;
	for (int p = 0; p < SIM_PLACE_COUNT; p++) {
		only_placement(&c, p);
		T_OK(complete(&c, body, 0, &r, &m), &(struct derr){0});
		T_TRUE(r.replayed);
		if (p == SIM_PLACE_INLINE)
			T_EQ_STR(m.content,
				 "<think>\nOkay, 3*3=9 sprints, 9*60=540.\n</think>\n\nHe runs **540** "
				 "meters: \\boxed{540}");
		else if (p == SIM_PLACE_CLOSE_ONLY)
			T_EQ_STR(m.content, "Okay, 3*3=9 sprints, 9*60=540.\n</think>\n\nHe runs **540** "
					    "meters: \\boxed{540}");
		else
			T_EQ_STR(reasoning_of(&m), "Okay, 3*3=9 sprints, 9*60=540.");
		done(&r, &m);
	}
	/* Wrong answer on a replayed trace: the last box changes. */
	c.noise_p[SIM_NOISE_WRONG] = 1;
	T_OK(complete(&c, body, 0, &r, &m), &(struct derr){0});
	T_TRUE(m.content && strstr(m.content, "\\boxed{541}"));
	done(&r, &m);
	/* Too short a prompt never matches inside other text. */
	const char *other = "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"Short "
			    "question\"}]}";
	sim_complete(&c, other, strlen(other), 0, &r);
	T_TRUE(!r.replayed);
	sim_reply_release(&r);
	sim_config_release(&c);
	sim_replay_free(rp);

	/* The real traces, when present: every recorded prompt is found. */
	if (t_shared_path("traces_qwq32b_gsm8k_part1.jsonl", path, sizeof(path))) {
		long skipped = -1;
		struct derr e = {0};
		rp = sim_replay_new();
		T_OK(sim_replay_load(rp, path, &skipped, &e), &e);
		T_EQ_INT(sim_replay_count(rp), 291);
		T_EQ_INT(skipped, 0);
		sim_config_init(&c);
		c.replay = rp;
		only_placement(&c, SIM_PLACE_REASONING_CONTENT);
		const char *b =
			"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"James "
			"decides to run 3 sprints 3 times a week.  He runs 60 meters each sprint.  How many "
			"total "
			"meters does he run a week?\"}]}";
		T_OK(complete(&c, b, 0, &r, &m), &(struct derr){0});
		T_TRUE(r.replayed);
		T_TRUE(reasoning_of(&m) && !strncmp(reasoning_of(&m), "Okay, so James", 14));
		T_TRUE(m.content && !strstr(m.content, "</think>") && strstr(m.content, "540"));
		done(&r, &m);
		sim_config_release(&c);
		sim_replay_free(rp);
	}
}

/* Every byte that needs escaping, at every offset within an 8-byte word,
 * comes back exactly through the reply's JSON. */
static void test_escaping(void)
{
	struct sim_config c;
	struct sim_replay *rp = sim_replay_new();
	struct sim_reply r;
	struct msg m;
	char text[600], resp[700];
	size_t n = 0;
	const char *body = "{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"escape "
			   "test prompt here\"}]}";

	for (int i = 0; i < 40; i++) {
		/* plain runs of varying length, then a byte that must be escaped */
		for (int k = 0; k < i % 11; k++)
			text[n++] = (char)('a' + k);
		static const char special[] = {'"', '\\', '\n', '\t', '\r', '\b', '\f', 1, 0x1f, 0x7f};
		text[n++] = special[i % sizeof(special)];
	}
	memcpy(text + n, "\xe4\xb8\xad\xe6\x96\x87 done", 11); /* UTF-8 passes through */
	n += 11;
	text[n] = '\0';
	snprintf(resp, sizeof(resp), "%s</think>answer", text);
	sim_replay_add(rp, "escape test prompt here", resp);
	sim_config_init(&c);
	c.replay = rp;
	for (int p = 0; p < SIM_PLACE_COUNT; p++) {
		only_placement(&c, p);
		T_OK(complete(&c, body, 0, &r, &m), &(struct derr){0});
		if (p <= SIM_PLACE_REASONING)
			T_TRUE(reasoning_of(&m) && !strcmp(reasoning_of(&m), text));
		else
			T_TRUE(m.content && strstr(m.content, text) != NULL);
		done(&r, &m);
	}
	sim_config_release(&c);
	sim_replay_free(rp);
}

static void test_config(void)
{
	struct sim_config c;
	struct derr e = {0};
	const char *json =
		"{\"seed\": 9, \"model\": [\"a\", \"b\"], \"wrong\": 0.25, \"http_429\": 0.1, "
		"\"stall_time\": \"2s\", \"ttft\": 150, \"placement\": {\"inline\": 1, \"reasoning\": 2}}";

	sim_config_init(&c);
	T_OK(sim_config_load_json(&c, json, strlen(json), &e), &e);
	T_EQ_INT(c.seed, 9);
	T_EQ_INT(c.nmodels, 2);
	T_EQ_STR(c.models[1], "b");
	T_EQ_DBL(c.noise_p[SIM_NOISE_WRONG], 0.25, 0);
	T_EQ_DBL(c.fault_p[SIM_FAULT_HTTP_429], 0.1, 0);
	T_EQ_INT(c.stall_ms, 2000);
	T_EQ_INT(c.ttft_ms, 150000); /* a bare number is seconds, as everywhere */
	T_EQ_DBL(c.placement_weight[SIM_PLACE_REASONING], 2, 0);
	T_EQ_DBL(c.placement_weight[SIM_PLACE_REASONING_CONTENT], 0, 0);
	T_OK(sim_config_check(&c, &e), &e);

	T_EQ_INT(sim_config_set(&c, "nosuch", "1", &e), DERR_NOTFOUND);
	T_EQ_INT(sim_config_set(&c, "wrong", "1.5", &e), DERR_INVALID);
	T_EQ_INT(sim_config_set(&c, "wrong", "abc", &e), DERR_INVALID);
	T_EQ_DBL(c.noise_p[SIM_NOISE_WRONG], 0.25, 0); /* unchanged on error */
	T_EQ_INT(sim_config_set(&c, "placement", "sideways=1", &e), DERR_INVALID);
	T_EQ_INT(sim_config_set(&c, "seed", "-1", &e), DERR_INVALID);
	T_EQ_INT(sim_config_set(&c, "model", "", &e), DERR_INVALID);
	T_EQ_INT(sim_config_set(&c, "model", "a,,b", &e), DERR_INVALID);
	T_EQ_INT(sim_config_set(&c, "stall-time", "soon", &e), DERR_INVALID);
	T_OK(sim_config_set(&c, "http-500", "0.95", &e), &e);
	T_EQ_INT(sim_config_check(&c, &e), DERR_INVALID); /* faults sum over 1 */
	T_OK(sim_config_set(&c, "placement", "inline=0", &e), &e);
	T_OK(sim_config_set(&c, "http-500", "0", &e), &e);
	T_EQ_INT(sim_config_check(&c, &e), DERR_INVALID); /* no placement left */
	T_EQ_INT(sim_config_load_json(&c, "[1]", 3, &e), DERR_PARSE);
	T_EQ_INT(sim_config_load_json(&c, "{\"bogus\":1}", 11, &e), DERR_NOTFOUND);
	T_EQ_INT(sim_config_load_json(&c, "{\"wrong\":true}", 14, &e), DERR_INVALID);
	sim_config_release(&c);
}

static void test_stats(void)
{
	struct sim_config c;
	struct sim_stats s;
	struct sim_reply r;
	struct buf b = BUF_INIT(1 << 16);

	memset(&s, 0, sizeof(s));
	sim_config_init(&c);
	only_placement(&c, SIM_PLACE_INLINE);
	c.noise_p[SIM_NOISE_MIXLANG] = 1;
	sim_complete(&c, add_body, strlen(add_body), 0, &r);
	sim_stats_add(&s, &r);
	sim_reply_release(&r);
	c.fault_p[SIM_FAULT_HTTP_503] = 1;
	sim_complete(&c, add_body, strlen(add_body), 0, &r);
	sim_stats_add(&s, &r);
	sim_reply_release(&r);
	sim_stats_json(&s, &b);
	cJSON *j = json_parse(buf_str(&b), b.len);
	double v = -1;
	T_TRUE(j != NULL);
	json_get_num(j, "completions", &v);
	T_EQ_DBL(v, 2, 0);
	json_get_num(cJSON_GetObjectItem(j, "faults"), "http_503", &v);
	T_EQ_DBL(v, 1, 0);
	json_get_num(cJSON_GetObjectItem(j, "noise"), "mixlang", &v);
	T_EQ_DBL(v, 1, 0);
	json_get_num(cJSON_GetObjectItem(j, "placements"), "inline", &v);
	T_EQ_DBL(v, 1, 0);
	json_get_num(cJSON_GetObjectItem(j, "kinds"), "add", &v);
	T_EQ_DBL(v, 1, 0);
	cJSON_Delete(j);
	buf_reset(&b);
	sim_models_json(&c, &b);
	T_EQ_STR(buf_str(&b),
		 "{\"object\":\"list\",\"data\":[{\"id\":\"distill-sim\",\"object\":\"model\",\"created\":"
		 "1735689600,\"owned_by\":\"distill\"}]}");
	buf_release(&b);
	sim_config_release(&c);
}

/* Several fault kinds at once come out in proportion to their
 * probabilities, and the rest of the requests succeed. */
static void test_fault_mix(void)
{
	struct sim_config c;
	struct sim_reply a;
	int n429 = 0, n500 = 0, n503 = 0, nok = 0, other = 0;
	const int total = 4000;

	sim_config_init(&c);
	c.seed = 9;
	c.fault_p[SIM_FAULT_HTTP_429] = 0.10;
	c.fault_p[SIM_FAULT_HTTP_500] = 0.05;
	c.fault_p[SIM_FAULT_HTTP_503] = 0.05;
	for (int att = 0; att < total; att++) {
		sim_complete(&c, add_body, strlen(add_body), att, &a);
		switch (a.status) {
		case 429: n429++; break;
		case 500: n500++; break;
		case 503: n503++; break;
		case 200: nok++; break;
		default: other++;
		}
		sim_reply_release(&a);
	}
	/* Expected 400, 200, 200 and 3200; bounds are about 5 standard deviations. */
	T_TRUE(n429 > 300 && n429 < 500);
	T_TRUE(n500 > 130 && n500 < 270);
	T_TRUE(n503 > 130 && n503 < 270);
	T_TRUE(nok > 3000 && nok < 3400);
	T_EQ_INT(other, 0);
	sim_config_release(&c);
}

/* Bodies for the reply-bytes golden: every task kind, streams, errors,
 * escapes, \u escapes, content parts, replay, trailing bytes. */
static const char *const golden_bodies[] = {
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 347 + 589?\"}],"
	"\"seed\":%d}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 9347 - "
	"12589?\"}],\"seed\":%d,\"stream\":true}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":"
	"\"user\",\"content\":\"What is 347 * 589?\"}],\"seed\":%d,\"max_tokens\":50}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"Tom has 12 marbles. He "
	"buys 3 bags with 7 marbles in each bag. How many marbles does he have now?\"}],\"seed\":%d}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me \\\"a "
	"story\\\"\\nabout \\u00e9 and \\ud83d\\ude00 %d\"}]}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
	"\"text\":\"What is 3 + 4?\"}]}],\"seed\":%d,\"stream\":true,\"stream_options\":{\"include_"
	"usage\":true}}",
	"{\"model\":\"nope\",\"messages\":[],\"seed\":%d}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\"}],\"seed\":%d}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is the capital of "
	"France, in one word?\"}],\"n\":%d}",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 1 + "
	"1?\"}],\"seed\":%d} trailing",
	"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 1 + "
	"1?\"}],\"max_tokens\":\"x\",\"max_completion_tokens\":7,\"seed\":%d}",
	"{\"model\":\"distill-sim\",\"model\":\"x\",\"messages\":[{\"content\":\"tab\\there\",\"role\":"
	"\"assistant\"},{\"role\":\"user\",\"content\":\"\"}],\"seed\":%d}",
	"  {\"model\" : \"distill-sim\" , \"messages\" : [ { \"role\" : \"user\" , \"content\" : \"What is "
	"55 + 66?\" } ] , \"seed\" : %d , \"x\":[1,2.5e3,-0.1,true,false,null,{\"a\":[]}] }  ",
	"not json %d",
};

/* A hash of every reply (status, headers, pacing, body bytes) to the
 * bodies above under eight configurations. */
static uint64_t golden_replies_hash(void)
{
	struct sim_replay *rp = sim_replay_new();
	uint64_t h = 0;
	sim_replay_add(rp, "What is the capital of France, in one word?",
		       "<think>Paris is the capital.\nYes \"quoted\".</think>\n\n\\boxed{Paris}");
	for (int cfg = 0; cfg < 8; cfg++) {
		struct sim_config c;
		sim_config_init(&c);
		c.seed = (uint64_t)cfg * 7 + 1;
		c.pad_reasoning = cfg & 1 ? 3500 : 0;
		for (int i = 0; cfg & 2 && i < SIM_NOISE_COUNT; i++)
			c.noise_p[i] = 0.2;
		for (int i = 1; cfg & 4 && i < SIM_FAULT_COUNT; i++)
			c.fault_p[i] = 0.1;
		if (cfg & 4) {
			c.ttft_ms = 5;
			c.tokens_per_s = 100;
			c.replay = rp;
		}
		for (size_t b = 0; b < sizeof(golden_bodies) / sizeof(golden_bodies[0]); b++)
			for (int k = 0; k < 12; k++) {
				char body[1024], meta[256];
				struct sim_reply r;
				int len = snprintf(body, sizeof(body), golden_bodies[b], k);
				sim_complete(&c, body, (size_t)len, k % 5, &r);
				len = snprintf(meta, sizeof(meta),
					       "%d %s %" PRId64 " %zu %d %" PRId64 " %zu %d %u %d %d %zu",
					       r.status, r.content_type, r.retry_after_s, r.declared_len,
					       r.stream, r.head_due_ms, r.close_at, (int)r.fault, r.noise,
					       r.placement, r.replayed, r.nseg);
				h = hash64(meta, (size_t)len, h);
				h = hash64(buf_str(&r.body), r.body.len, h);
				for (size_t s = 0; s < r.nseg; s++) {
					int64_t seg[2] = {(int64_t)r.seg[s].end, r.seg[s].due_ms};
					h = hash64(seg, sizeof(seg), h);
				}
				sim_reply_release(&r);
			}
		sim_config_release(&c);
	}
	sim_replay_free(rp);
	return h;
}

/* The reply bytes are part of the contract (DESIGN §13: the same request
 * gives the same reply, across versions too, so recorded runs replay).  A
 * change here must be deliberate: update the constant with a note why. */
static void test_golden_replies(void)
{
	T_TRUE(golden_replies_hash() == UINT64_C(0x41a01c9f5dadacc2));
}

/* The request parser's fast path agrees with the cJSON reference on the
 * usual bodies and on the ones it hands over. */
static void test_parse_paths(void)
{
	static const char *const bodies[] = {
		"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 1 + "
		"2?\"}]}",
		"{\"messages\":[{\"content\":\"a\\n\\\"b\\\\c\\/"
		"d\\t\",\"role\":\"system\"},{\"role\":\"user\","
		"\"content\":\"\"}],\"model\":\"distill-sim\",\"stream\":true,\"stream_options\":{"
		"\"include_usage\":true},\"max_tokens\":12,\"max_completion_tokens\":\"x\"}",
		"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9\"}]}",
		"{\"model\":\"distill-sim\",\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":"
		"\"x\"}]}",
		"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} junk",
		"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_"
		"tokens\":0}",
		"{\"model\":\"distill-sim\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":"
		"1}",
		"{\"model\":\"distill-sim\",\"messages\":[]}",
		"{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
		"[1,2]",
		"",
	};
	struct sim_config c;
	sim_config_init(&c);
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct sim_request a, b;
		char ta[64] = "", ma[256] = "", tb[64] = "", mb[256] = "";
		int ra = sim_request_parse(&c, bodies[i], strlen(bodies[i]), &a, ta, sizeof(ta), ma,
					   sizeof(ma));
		int rb = sim_request_parse_json(&c, bodies[i], strlen(bodies[i]), &b, tb, sizeof(tb), mb,
						sizeof(mb));
		T_EQ_INT(ra, rb);
		T_EQ_STR(ta, tb);
		T_EQ_STR(ma, mb);
		if (!ra && !rb) {
			T_EQ_STR(a.model, b.model);
			T_EQ_STR(a.user, b.user);
			T_EQ_INT(a.stream, b.stream);
			T_EQ_INT(a.include_usage, b.include_usage);
			T_EQ_INT(a.max_tokens, b.max_tokens);
			T_EQ_INT(a.prompt_bytes, b.prompt_bytes);
			T_EQ_INT(a.nmessages, b.nmessages);
		}
		sim_request_release(&a);
		sim_request_release(&b);
	}
	/* what the second body carries, so agreement is not agreement on nothing */
	struct sim_request r;
	char t[64], m[256];
	T_EQ_INT(sim_request_parse(&c, bodies[1], strlen(bodies[1]), &r, t, sizeof(t), m, sizeof(m)), 0);
	T_EQ_STR(r.user, "");
	T_EQ_INT(r.nmessages, 2);
	T_EQ_INT(r.prompt_bytes, 9);
	T_EQ_INT(r.stream, 1);
	T_EQ_INT(r.include_usage, 1);
	T_EQ_INT(r.max_tokens, 12);
	sim_request_release(&r);
	sim_config_release(&c);
}

int main(void)
{
	test_golden_replies();
	test_parse_paths();
	test_fault_mix();
	test_placements();
	test_noise();
	test_faults();
	test_determinism();
	test_bad_requests();
	test_stream();
	test_latency();
	test_tasks_solved();
	test_replay();
	test_escaping();
	test_config();
	test_stats();
	return t_done();
}
