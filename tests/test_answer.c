/* test_answer.c - the answer checker: reference extraction, response
 * extraction and verdicts. */
#include "answer.h"
#include "buf.h"
#include "t.h"

static const char *ref(const char *raw, struct buf *b)
{
	if (answer_extract_reference(raw, strlen(raw), b))
		return "(unparsed)";
	return buf_str(b);
}

int main(void)
{
	struct buf b = BUF_INIT(1 << 16);
	struct answer_result r;

	T_EQ_STR(ref("He sprints 3*3=<<3*3=9>>9 times\n#### 1,540", &b), "1540");
	T_EQ_STR(ref("so $\\boxed{\\frac{1}{2}}$ and then \\boxed{\\{1,2\\}}.", &b), "\\{1,2\\}");
	T_EQ_STR(ref("$\\left( 3, \\frac{\\pi}{2} \\right)$", &b), "\\left( 3, \\frac{\\pi}{2} \\right)");
	T_EQ_STR(ref("or $\\framebox{204}$ minutes", &b), "204");
	T_EQ_STR(ref("", &b), "(unparsed)");
	T_EQ_STR(ref("#### ", &b), "(unparsed)");

	const char *resp = "reasoning \\boxed{3}</think>\n\nSo **Answer:** 42.";
	answer_check("42", resp, strlen(resp), NULL, &r);
	T_EQ_INT(r.status, ANSWER_OK);
	T_EQ_INT(r.equal, 1);
	T_EQ_STR(r.extracted, "42");
	answer_check_pred("\\frac{1}{2}", "\\dfrac{1}{2}", NULL, &r);
	T_EQ_INT(r.equal, 1);
	answer_check_pred("540", "541", NULL, &r);
	T_EQ_INT(r.status, ANSWER_OK);
	T_EQ_INT(r.equal, 0);
	buf_release(&b);
	return t_done();
}
