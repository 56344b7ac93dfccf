/* test_util.c - util, buf and err. */
#include "buf.h"
#include "err.h"
#include "t.h"
#include "util.h"

static void test_duration(void)
{
	static const struct {
		const char *in;
		int64_t ms;
		int rc;
	} cases[] = {
		{"90s", 90000, 0},	  {"15m", 900000, 0},	  {"8h", 28800000, 0},
		{"2d", 172800000, 0},	  {"500ms", 500, 0},	  {"1.5s", 1500, 0},
		{"30", 30000, 0},	  {"", 0, DERR_INVALID},  {"10x", 0, DERR_INVALID},
		{"-1s", 0, DERR_INVALID}, {"s", 0, DERR_INVALID},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int64_t ms = 0;
		T_EQ_INT(duration_parse(cases[i].in, &ms), cases[i].rc);
		if (!cases[i].rc)
			T_EQ_INT(ms, cases[i].ms);
	}
	char b[32];
	duration_format(900000, b, sizeof(b));
	T_EQ_STR(b, "15m");
	duration_format(28800000, b, sizeof(b));
	T_EQ_STR(b, "8h");
	duration_format(90000, b, sizeof(b));
	T_EQ_STR(b, "90s");
}

static void test_buf_cap(void)
{
	struct buf b = BUF_INIT(10);
	T_EQ_INT(buf_puts(&b, "hello"), 0);
	T_EQ_INT(buf_puts(&b, "world"), 0);
	T_EQ_INT(buf_putc(&b, '!'), DERR_LIMIT);
	T_EQ_STR(buf_str(&b), "helloworld"); /* unchanged on failure */
	buf_reset(&b);
	T_EQ_INT(buf_printf(&b, "%d-%s", 42, "x"), 0);
	T_EQ_STR(buf_str(&b), "42-x");
	T_EQ_INT(buf_printf(&b, "%s", "0123456789"), DERR_LIMIT);
	T_EQ_STR(buf_str(&b), "42-x");
	buf_release(&b);
	T_EQ_STR(buf_str(&b), "");
}

static void test_parse_int(void)
{
	int64_t v;
	T_EQ_INT(parse_int64("42", 0, 100, &v), 0);
	T_EQ_INT(v, 42);
	T_EQ_INT(parse_int64("101", 0, 100, &v), DERR_INVALID);
	T_EQ_INT(parse_int64("4x", 0, 100, &v), DERR_INVALID);
	T_EQ_INT(parse_int64("", 0, 100, &v), DERR_INVALID);
}

static void test_err(void)
{
	struct derr e = {0};
	T_EQ_INT(derr_set(&e, DERR_IO, "open %s", "x"), DERR_IO);
	derr_wrap(&e, "ingest");
	T_EQ_STR(e.msg, "ingest: open x");
	T_EQ_STR(derr_name(DERR_FULL), "DERR_FULL");
	T_EQ_STR(derr_name(12345), "DERR_UNKNOWN");
}

int main(void)
{
	test_duration();
	test_buf_cap();
	test_parse_int();
	test_err();
	return t_done();
}
