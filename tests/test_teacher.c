/* test_teacher.c - request bodies, the SSE parser, the four reasoning placements. */
#include "t.h"

#include "buf.h"
#include "json.h"
#include "teacher.h"

static const struct teacher_profile prof = {
	.name = "p",
	.model = "m1",
	.system = "be brief",
	.template = "Q: {prompt} ({prompt})",
	.temperature = 0.6,
	.top_p = 0.95,
	.max_tokens = 100,
	.seed = 7,
};

static void test_body(void)
{
	struct buf b = BUF_INIT(1 << 20), b2 = BUF_INIT(1 << 20);
	cJSON *j, *msgs;
	double v;

	T_EQ_INT(teacher_request_body(&prof, "2+\"2\"", "00112233445566778899aabbccddeeff", 3, 1, &b), 0);
	j = json_parse(b.data, b.len);
	T_TRUE(j != NULL);
	T_EQ_STR(json_get_str(j, "model"), "m1");
	msgs = cJSON_GetObjectItem(j, "messages");
	T_EQ_INT(cJSON_GetArraySize(msgs), 2);
	T_EQ_STR(json_get_str(cJSON_GetArrayItem(msgs, 0), "role"), "system");
	T_EQ_STR(json_get_str(cJSON_GetArrayItem(msgs, 1), "content"), "Q: 2+\"2\" (2+\"2\")");
	T_EQ_INT(json_get_num(j, "temperature", &v), 0);
	T_EQ_DBL(v, 0.6, 0);
	T_EQ_INT(json_get_num(j, "max_tokens", &v), 0);
	T_EQ_DBL(v, 100, 0);
	T_EQ_INT(json_get_num(j, "seed", &v), 0);
	T_EQ_DBL(v, (double)teacher_seed(7, "00112233445566778899aabbccddeeff", 3), 0);
	T_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
	T_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
	cJSON_Delete(j);

	/* Samples differ by seed; the same sample is the same body. */
	T_TRUE(teacher_seed(7, "abc", 0) != teacher_seed(7, "abc", 1));
	T_TRUE(teacher_seed(7, "abc", 0) != teacher_seed(8, "abc", 0));
	T_EQ_INT(teacher_seed(7, "abc", 2), teacher_seed(7, "abc", 2));
	T_TRUE(teacher_seed(7, "abc", 2) < (1ULL << 31));
	buf_reset(&b);
	teacher_request_body(&prof, "x", "h", 0, 0, &b);
	teacher_request_body(&prof, "x", "h", 0, 0, &b2);
	T_EQ_STR(b.data, b2.data);
	T_TRUE(strstr(b.data, "\"stream\"") == NULL);

	buf_reset(&b);
	T_EQ_INT(teacher_profile_canonical(&prof, &b), 0);
	T_EQ_STR(b.data, "{\"model\":\"m1\",\"system\":\"be brief\",\"template\":\"Q: {prompt} ({prompt})\","
			 "\"temperature\":0.6,\"top_p\":0.95,\"max_tokens\":100,\"seed\":7}");
	buf_release(&b);
	buf_release(&b2);
}

/* The four placements (DESIGN §4), plus none, empty thinking and truncation. */
static const struct {
	const char *body;
	const char *placement, *reasoning, *answer;
	int closed;
} cases[] = {
	{"{\"choices\":[{\"message\":{\"content\":\"A \\\\boxed{4}\",\"reasoning_content\":\"think 2+2\"},"
	 "\"finish_reason\":\"stop\"}]}",
	 "reasoning_content", "think 2+2", "A \\boxed{4}", 1},
	{"{\"choices\":[{\"message\":{\"content\":\"A\",\"reasoning\":\" r \"}}]}", "reasoning", "r", "A", 1},
	{"{\"choices\":[{\"message\":{\"content\":\"<think>\\nsteps\\n</think>\\n\\nA\"}}]}", "think_tags",
	 "steps", "A", 1},
	{"{\"choices\":[{\"message\":{\"content\":\"steps here\\n</think>\\n\\nA\"}}]}", "close_tag_only",
	 "steps here", "A", 1},
	{"{\"choices\":[{\"message\":{\"content\":\"just A\"}}]}", "none", "", "just A", 1},
	{"{\"choices\":[{\"message\":{\"content\":\"<think>\\n\\n</think>\\n\\nA\"}}]}", "think_tags", "",
	 "A", 1},
	{"{\"choices\":[{\"message\":{\"content\":\"<think>\\nnever ends\"}}]}", "think_tags", "never ends",
	 "", 0},
	{"{\"choices\":[{\"message\":{\"content\":\"<think>x</think>A\",\"reasoning_content\":\"\"}}]}",
	 "think_tags", "x", "A", 1},
	{"{\"choices\":[{\"message\":{\"content\":null,\"reasoning_content\":\"only thinking\"}}]}",
	 "reasoning_content", "only thinking", "", 1},
};

static void test_placements(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct teacher_response r;
		struct derr e = {0};
		T_OK(teacher_parse_response(cases[i].body, strlen(cases[i].body), &r, &e), &e);
		T_EQ_STR(teacher_placement_name(r.placement), cases[i].placement);
		T_EQ_STR(r.reasoning, cases[i].reasoning);
		T_EQ_STR(r.answer, cases[i].answer);
		T_EQ_INT(r.think_closed, cases[i].closed);
		teacher_response_release(&r);
	}
}

static void test_response_fields(void)
{
	static const char body[] =
		"{\"id\":\"cmpl-1\",\"model\":\"m\",\"choices\":[{\"message\":{\"content\":"
		"\"bad \\u00ff \xff\xfe end\"},\"finish_reason\":\"length\"}],"
		"\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34}}";
	static const char *const bad[] = {"",
					  "[]",
					  "{\"choices\":[]}",
					  "{\"choices\":[{}]}",
					  "not json",
					  "{\"error\":{\"message\":\"overloaded\"}}",
					  "{\"choices\":[{\"message\":{\"content\":5}}]}"};
	struct teacher_response r;
	struct derr e = {0};

	T_OK(teacher_parse_response(body, strlen(body), &r, &e), &e);
	T_EQ_STR(r.id, "cmpl-1");
	T_EQ_STR(r.finish_reason, "length");
	T_EQ_INT(r.prompt_tokens, 12);
	T_EQ_INT(r.completion_tokens, 34);
	T_EQ_INT(r.utf8_repaired, 1);
	T_EQ_STR(r.answer, "bad \xc3\xbf \xef\xbf\xbd\xef\xbf\xbd end");
	teacher_response_release(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_EQ_INT(teacher_parse_response(bad[i], strlen(bad[i]), &r, &e), DERR_TEACHER_MALFORMED);
		T_TRUE(e.msg[0] != '\0');
	}
}

static const char stream[] =
	": keep-alive\n\n"
	"data: "
	"{\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n"
	"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"reasoning_content\":\"Let me \"}}]}\r\n\r\n"
	"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"reasoning_content\":\"think. é\"}}]}\n\n"
	"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"The answer\"}}]}\n\n"
	"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\" is "
	"4.\"},\"finish_reason\":\"stop\"}]}\n\n"
	"data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9}}\n\n"
	"data: [DONE]\n\n";

/* Feeding the stream in every split gives the same final body. */
static void test_sse(void)
{
	struct buf first = BUF_INIT(1 << 20);
	size_t n = strlen(stream);

	for (size_t step = 1; step <= n; step = step < 8 ? step + 1 : step * 3) {
		struct teacher_sse s;
		struct buf out = BUF_INIT(1 << 20);
		struct teacher_response r;
		struct derr e = {0};
		teacher_sse_init(&s, 1 << 20);
		for (size_t off = 0; off < n; off += step)
			T_EQ_INT(teacher_sse_feed(&s, stream + off, off + step <= n ? step : n - off), 0);
		T_OK(teacher_sse_finish(&s, &out, &e), &e);
		T_TRUE(s.done);
		if (!first.data)
			buf_append(&first, out.data, out.len);
		else
			T_EQ_STR(out.data, first.data);
		T_OK(teacher_parse_response(out.data, out.len, &r, &e), &e);
		T_EQ_STR(teacher_placement_name(r.placement), "reasoning_content");
		T_EQ_STR(r.reasoning, "Let me think. é");
		T_EQ_STR(r.answer, "The answer is 4.");
		T_EQ_STR(r.finish_reason, "stop");
		T_EQ_STR(r.id, "c1");
		T_EQ_INT(r.completion_tokens, 9);
		teacher_response_release(&r);
		teacher_sse_release(&s);
		buf_release(&out);
	}
	buf_release(&first);

	/* Broken streams are malformed, never a success. */
	{
		static const char *const bad[] = {"", "data: {not json}\n\n",
						  "data: {\"error\":{\"code\":500}}\n\n",
						  ": only comments\n\n"};
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct teacher_sse s;
			struct buf out = BUF_INIT(1 << 20);
			struct derr e = {0};
			int rc;
			teacher_sse_init(&s, 1 << 20);
			rc = teacher_sse_feed(&s, bad[i], strlen(bad[i]));
			if (!rc)
				rc = teacher_sse_finish(&s, &out, &e);
			T_EQ_INT(rc, DERR_TEACHER_MALFORMED);
			teacher_sse_release(&s);
			buf_release(&out);
		}
	}
	/* The cap holds. */
	{
		struct teacher_sse s;
		teacher_sse_init(&s, 64);
		T_EQ_INT(teacher_sse_feed(&s, stream, strlen(stream)), DERR_LIMIT);
		teacher_sse_release(&s);
	}
}

int main(void)
{
	test_body();
	test_placements();
	test_response_fields();
	test_sse();
	return t_done();
}
