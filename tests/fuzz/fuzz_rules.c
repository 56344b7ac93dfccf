/*
 * fuzz_rules.c - the rule-file parser and the filter compiler on arbitrary
 * bytes: no crash, no leak, and a compiled set judges a small trace.
 */
#include "buf.h"
#include "filter.h"
#include "rules.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rules rs;
	struct derr e = {0};
	struct filter *f = NULL;
	struct buf canon = BUF_INIT(1 << 24);

	rules_init(&rs);
	if (rules_parse(&rs, "fuzz", (const char *)data, size, &e) == 0) {
		rules_canonical(&rs, &canon);
		if (filter_new(&f, &rs, &e) == 0) {
			static const char reasoning[] =
				"Let me think. 3 times 4 is 12.\n\nSo the\xe5\x88\x86 answer.";
			static const char answer[] = "The answer is \\boxed{12}.";
			struct filter_doc d = {0};
			struct filter_verdict *v = calloc((size_t)filter_rule_count(f) + 1, sizeof(*v));
			int acc, flag;
			d.prompt = "What is 3 times 4?";
			d.prompt_len = strlen(d.prompt);
			d.reasoning = reasoning;
			d.reasoning_len = sizeof(reasoning) - 1;
			d.answer = answer;
			d.answer_len = sizeof(answer) - 1;
			d.reference = "12";
			d.domain = "math";
			filter_judge(f, &d, v);
			filter_outcome(f, v, &acc, &flag);
			free(v);
			filter_free(f);
		}
	}
	buf_release(&canon);
	rules_release(&rs);
	return 0;
}
