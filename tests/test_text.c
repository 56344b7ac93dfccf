/* test_text.c - UTF-8 repair and prompt normalisation. */
#include "t.h"
#include "buf.h"
#include "err.h"
#include "text.h"

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
	buf_release(&b);
	return t_done();
}
