/* test_text.c - UTF-8 repair and prompt normalisation. */
#include "t.h"
#include "buf.h"
#include "err.h"
#include "text.h"

#include <time.h>

int main(void)
{
	struct buf b = BUF_INIT(1 << 20);

	T_TRUE(utf8_valid("h\xc3\xa9llo", 6));
	T_TRUE(!utf8_valid("\xc3", 1));
	T_TRUE(!utf8_valid("\xc0\xaf", 2));	    /* overlong */
	T_TRUE(!utf8_valid("\xed\xa0\x80", 3));	    /* surrogate */
	T_TRUE(!utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	T_TRUE(utf8_valid("\xef\xbf\xbd", 3));	    /* U+FFFD itself is valid */

	T_EQ_INT(utf8_repair("a\xffz\xc3", 4, &b), 2);
	T_EQ_STR(buf_str(&b), "a\xef\xbf\xbdz\xef\xbf\xbd");
	buf_reset(&b);
	T_EQ_INT(utf8_repair("ok", 2, &b), 0);
	T_EQ_STR(buf_str(&b), "ok");

	/* Whitespace collapsed, NFC applied (e + combining acute = é). */
	const char *ws = "  What is\t\n 2+2?\xc2\xa0 ";
	T_EQ_INT(text_normalize(ws, strlen(ws), &b), 0);
	T_EQ_STR(buf_str(&b), "What is 2+2?");
	T_EQ_INT(text_normalize("caf"
				"e\xcc\x81",
				6, &b),
		 0);
	T_EQ_STR(buf_str(&b), "caf\xc3\xa9");
	T_EQ_INT(text_normalize("bad \xff", 5, &b), DERR_UTF8);

	char h1[33], h2[33], h3[33];
	T_EQ_INT(text_prompt_hash("What is  2+2?", 13, h1), 0);
	T_EQ_INT(text_prompt_hash(" What is 2+2?\n", 14, h2), 0);
	T_EQ_INT(text_prompt_hash("What is 2+3?", 12, h3), 0);
	T_EQ_STR(h1, h2);
	T_TRUE(strcmp(h1, h3) != 0); /* numbers are significant */

	/* The ASCII fast path agrees with the utf8proc path: s and s + " é"
	 * normalise alike up to the suffix, over random ASCII (seed printed). */
	{
		struct buf b2 = BUF_INIT(1 << 20);
		unsigned seed = (unsigned)time(NULL), bad = 0;
		char s[80], s2[90], want[100];
		printf("seed %u\n", seed);
		srand(seed);
		for (int it = 0; it < 20000; it++) {
			int n = 1 + rand() % 60;
			for (int i = 0; i < n; i++)
				s[i] = (char)(rand() % 3 ? ' ' + rand() % 95 : "\t\n\v\f\r \x01"[rand() % 7]);
			s[n] = '\0';
			snprintf(s2, sizeof(s2), "%s \xc3\xa9", s);
			text_normalize(s, strlen(s), &b);
			text_normalize(s2, strlen(s2), &b2);
			snprintf(want, sizeof(want), "%s%s\xc3\xa9", buf_str(&b), b.len ? " " : "");
			bad += strcmp(want, buf_str(&b2)) != 0;
		}
		T_EQ_INT(bad, 0);
		buf_release(&b2);
	}
	buf_release(&b);
	return t_done();
}
