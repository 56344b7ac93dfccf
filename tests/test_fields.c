/* test_fields.c - prompt and reference field detection (tests as data: tests/data/fields.jsonl). */
#include "buf.h"
#include "err.h"
#include "fields.h"
#include "json.h"
#include "t.h"

int main(void)
{
	char path[512], line[8192], ref[256];
	FILE *f = fopen(t_src("tests/data/fields.jsonl", path, sizeof(path)), "r");
	int cases = 0;

	T_TRUE(f != NULL);
	if (!f)
		return t_done();
	/* Each line: {"record": {...}, "prompt_field": F?, "answer_field": F?, "prompt": P|null, "reference": R|null} */
	while (fgets(line, sizeof(line), f)) {
		cJSON *c = json_parse(line, strlen(line));
		if (!c)
			continue;
		const cJSON *rec = cJSON_GetObjectItemCaseSensitive(c, "record");
		const char *pf = json_get_str(c, "prompt_field"), *af = json_get_str(c, "answer_field");
		const char *want_p = json_get_str(c, "prompt"), *want_r = json_get_str(c, "reference");
		const char *got_p = fields_prompt(rec, pf);
		int rc = fields_reference(rec, af, ref, sizeof(ref));
		cases++;
		if (want_p)
			T_EQ_STR(got_p, want_p);
		else
			T_TRUE(got_p == NULL);
		if (want_r) {
			T_EQ_INT(rc, 1);
			T_EQ_STR(ref, want_r);
		} else {
			T_EQ_INT(rc, 0);
			T_EQ_STR(ref, "");
		}
		if ((want_p && (!got_p || strcmp(got_p, want_p))) || (want_r && strcmp(ref, want_r)))
			fprintf(stderr, "  case: %s", line);
		cJSON_Delete(c);
	}
	fclose(f);
	T_TRUE(cases >= 10);

	/* Too long for the caller's buffer: DERR_LIMIT, out empty. */
	cJSON *o = json_parse("{\"question\":\"q\",\"answer\":\"0123456789\"}", 38);
	char small[4];
	T_EQ_INT(fields_reference(o, NULL, small, sizeof(small)), DERR_LIMIT);
	T_EQ_STR(small, "");
	cJSON_Delete(o);
	return t_done();
}
