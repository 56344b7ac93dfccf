/* test_tok.c - the trainer's tokenizer: chat framing and loss segments. */
#include "json.h"
#include "t.h"
#include "tok.h"

static void test_chat(void)
{
	const char *j = "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"hi\"},"
			"{\"role\":\"assistant\",\"content\":\"<think>\\nr\\n</think>\\n\\nA\"}]";
	cJSON *m = json_parse(j, strlen(j));
	struct tok_seq s;
	struct derr e = {0};
	int n_r = 0, n_a = 0, n_0 = 0;
	tok_seq_init(&s);
	T_OK(tok_chat(&s, m, 0.5f, 2.0f, &e), &e);
	/* SYSTEM S END USER h i END ASSISTANT <think>\nr\n</think>\n\n A END */
	T_EQ_INT(s.n, 3 + 4 + 1 + 20 + 1 + 1);
	T_EQ_INT(s.ids[0], TOK_SYSTEM);
	T_EQ_INT(s.ids[3], TOK_USER);
	T_EQ_INT(s.ids[7], TOK_ASSISTANT);
	T_EQ_INT(s.ids[s.n - 1], TOK_END);
	for (int i = 0; i < s.n; i++) {
		n_0 += s.w[i] == 0;
		n_r += s.w[i] == 0.5f;
		n_a += s.w[i] == 2.0f;
	}
	T_EQ_INT(n_0, 8);  /* everything up to and including ASSISTANT */
	T_EQ_INT(n_r, 20); /* "<think>\nr\n</think>\n\n" */
	T_EQ_INT(n_a, 2);  /* "A" and END */
	T_EQ_INT(s.w[s.n - 1], 2);
	cJSON_Delete(m);

	/* an unknown role is an error and leaves the sequence as it was */
	j = "[{\"role\":\"robot\",\"content\":\"x\"}]";
	m = json_parse(j, strlen(j));
	T_EQ_INT(tok_chat(&s, m, 1, 1, &e), DERR_PARSE);
	T_EQ_INT(s.n, 30);
	T_TRUE(strstr(e.msg, "robot") != NULL);
	cJSON_Delete(m);
	T_EQ_INT(tok_chat(&s, NULL, 1, 1, &e), DERR_PARSE);
	tok_seq_release(&s);
}

static void test_reasoning_len(void)
{
	const char *a = "<think>\nx\n</think>\n\nanswer";
	T_EQ_INT(tok_reasoning_len(a, strlen(a)), strlen(a) - strlen("answer"));
	T_EQ_INT(tok_reasoning_len("no tags", 7), 0);
	/* the opening tag may be missing (R1-distill outputs) */
	a = "steps</think>ans";
	T_EQ_INT(tok_reasoning_len(a, strlen(a)), 13);
}

static void test_prompt_decode(void)
{
	struct tok_seq s;
	char out[64];
	tok_seq_init(&s);
	tok_prompt(&s, NULL, "2+2?");
	T_EQ_INT(s.n, 1 + 4 + 1 + 1);
	T_EQ_INT(s.ids[s.n - 1], TOK_ASSISTANT);
	for (int i = 0; i < s.n; i++)
		T_EQ_INT(s.w[i], 0);
	tok_decode(s.ids, s.n, out, sizeof(out));
	T_EQ_STR(out, "<|user|>2+2?<|end|><|assistant|>");
	tok_decode(s.ids, s.n, out, 10); /* truncated, still terminated */
	T_EQ_STR(out, "<|user|>2");
	tok_seq_release(&s);
}

int main(void)
{
	test_chat();
	test_reasoning_len();
	test_prompt_decode();
	return t_done();
}
