/* fuzz_answer.c - the answer checker's parsers of untrusted text: response
 * and reference extraction, LaTeX normalisation, expression parsing and
 * comparison.  Input: gold, a NUL byte, then the prediction (without a NUL
 * the whole input is both).  Nothing may crash, leak or run unbounded. */
#include "answer.h"
#include "buf.h"
#include "mathnorm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf b = BUF_INIT(1 << 16);
	struct answer_options o;
	struct answer_result r;
	const char *s = (const char *)data;
	const uint8_t *nul = memchr(data, 0, size);
	size_t glen = nul ? (size_t)(nul - data) : size;
	char *gold = malloc(glen + 1), *pred;
	size_t plen = nul ? size - glen - 1 : size;

	memcpy(gold, s, glen);
	gold[glen] = '\0';
	pred = malloc(plen + 1);
	memcpy(pred, nul ? s + glen + 1 : s, plen);
	pred[plen] = '\0';

	answer_extract_reference(s, size, &b);
	answer_extract(s, size, NULL, 0, &b);
	mathnorm(s, size, 0, &b);
	mathnorm(s, size, 1, &b);

	answer_options_default(&o);
	answer_check_pred(gold, pred, &o, &r);
	answer_check(gold, pred, strlen(pred), &o, &r);
	o.strict = 1;
	answer_check_pred(gold, pred, &o, &r);
	o.strict = 0;
	o.mode = ANSWER_MODE_MCQ;
	answer_check_pred(gold, pred, &o, &r);
	o.mode = ANSWER_MODE_NUMBER;
	answer_check_pred(gold, pred, &o, &r);

	free(gold);
	free(pred);
	buf_release(&b);
	return 0;
}
