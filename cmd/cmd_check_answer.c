/* cmd_check_answer.c - `distill check-answer [FILE]`: JSON lines of
 * {"gold", "response"|"pred", "options"} in, one verdict line out per input
 * line, in order.  A bad line gets an error object, never a crash. */
#include "answer.h"
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "json.h"
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char check_answer_usage[] =
	"usage: distill check-answer [--mode math|mcq|number] [--strict] [--precision X] [FILE]\n\n"
	"Read JSON lines (FILE, or stdin) of {\"gold\": ..., \"response\": ...} or\n"
	"{\"gold\": ..., \"pred\": ...} (a bare answer, no extraction), each with optional\n"
	"\"options\": {\"precision\": X, \"strict\": true, \"mode\": \"math|mcq|number\",\n"
	"\"percent\": true}.  Write one JSON line per input line, in order:\n"
	"{\"equal\": true|false|null, \"status\": \"ok|no_answer|gold_unparsed|budget\",\n"
	"\"extracted\": \"...\"}; a line that is not such an object gets {\"error\": ...}.\n\n"
	"  --mode M        default mode for lines without options (math)\n"
	"  --strict        no lenient conventions (units, percent, equations)\n"
	"  --precision X   relative tolerance where decimals are involved (1e-6)\n"
	"  --db PATH       accepted for uniformity; no database is used\n\n"
	"Exit: 0, or 3 when some lines were rejected.\n";

/* Cap on one input line: a response is at most a few hundred KB. */
#define CHECK_LINE_MAX (64u << 20)

static const struct {
	const char *name;
	enum answer_mode mode;
} check_modes[] = {{"math", ANSWER_MODE_MATH}, {"mcq", ANSWER_MODE_MCQ}, {"number", ANSWER_MODE_NUMBER}};

static const char *const check_status[] = {"ok", "no_answer", "gold_unparsed", "budget"};

static int parse_mode(const char *s, enum answer_mode *m)
{
	for (size_t k = 0; k < sizeof(check_modes) / sizeof(check_modes[0]); k++)
		if (!strcmp(s, check_modes[k].name)) {
			*m = check_modes[k].mode;
			return 0;
		}
	return -1;
}

/* Options of one line over the defaults; NULL, or the error message. */
static const char *line_options(const cJSON *opt, struct answer_options *o)
{
	const cJSON *v;
	double d;

	if (!opt)
		return NULL;
	if (!cJSON_IsObject(opt))
		return "\"options\" must be an object";
	if ((v = cJSON_GetObjectItemCaseSensitive(opt, "mode"))) {
		if (!cJSON_IsString(v) || parse_mode(v->valuestring, &o->mode))
			return "\"mode\" must be \"math\", \"mcq\" or \"number\"";
	}
	if (cJSON_GetObjectItemCaseSensitive(opt, "precision")) {
		if (json_get_num(opt, "precision", &d) || !(d >= 0 && d < 1))
			return "\"precision\" must be a number in [0, 1)";
		o->precision = d;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(opt, "strict"))) {
		if (!cJSON_IsBool(v))
			return "\"strict\" must be true or false";
		o->strict = cJSON_IsTrue(v);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(opt, "percent"))) {
		if (!cJSON_IsBool(v))
			return "\"percent\" must be true or false";
		o->percent = cJSON_IsTrue(v);
	}
	return NULL;
}

/* A gold value: a string, or a number in its shortest round-trip form. */
static const char *gold_text(const cJSON *v, char *num, size_t len)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	if (cJSON_IsNumber(v)) {
		json_num_str(v->valuedouble, num, len);
		return num;
	}
	return NULL;
}

static void put_error(struct buf *out, long line, const char *msg)
{
	buf_printf(out, "{\"error\":");
	json_append_str(out, msg, strlen(msg));
	buf_printf(out, ",\"line\":%ld}\n", line);
}

static int check_line(const char *text, size_t n, long line, const struct answer_options *defaults,
		      struct buf *out)
{
	struct answer_options o = *defaults;
	struct answer_result r;
	cJSON *j = json_parse(text, n);
	const cJSON *gold, *resp, *pred;
	const char *msg, *g;
	char num[64];

	if (!j || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		put_error(out, line, "not a JSON object");
		return -1;
	}
	gold = cJSON_GetObjectItemCaseSensitive(j, "gold");
	resp = cJSON_GetObjectItemCaseSensitive(j, "response");
	pred = cJSON_GetObjectItemCaseSensitive(j, "pred");
	if (!(g = gold_text(gold, num, sizeof(num))))
		msg = "\"gold\" must be a string or a number";
	else if (!!resp == !!pred)
		msg = "exactly one of \"response\" and \"pred\" is needed";
	else if ((resp && !cJSON_IsString(resp)) || (pred && !cJSON_IsString(pred)))
		msg = "\"response\"/\"pred\" must be a string";
	else
		msg = line_options(cJSON_GetObjectItemCaseSensitive(j, "options"), &o);
	if (msg) {
		put_error(out, line, msg);
		cJSON_Delete(j);
		return -1;
	}
	if (resp)
		answer_check(g, resp->valuestring, strlen(resp->valuestring), &o, &r);
	else
		answer_check_pred(g, pred->valuestring, &o, &r);
	buf_printf(out, "{\"equal\":%s,\"status\":\"%s\",\"extracted\":",
		   r.status != ANSWER_OK ? "null"
		   : r.equal		 ? "true"
					 : "false",
		   check_status[r.status]);
	/* the input may not be UTF-8; the output line always is */
	struct buf ex = BUF_INIT(4 * sizeof(r.extracted));
	utf8_repair(r.extracted, strlen(r.extracted), &ex);
	json_append_str(out, buf_str(&ex), ex.len);
	buf_release(&ex);
	buf_puts(out, "}\n");
	cJSON_Delete(j);
	return 0;
}

int cmd_check_answer(int argc, char **argv)
{
	static const struct option opts[] = {CLI_OPT_DB,
					     CLI_OPT_HELP,
					     {"mode", required_argument, NULL, 'm'},
					     {"strict", no_argument, NULL, 's'},
					     {"precision", required_argument, NULL, 'p'},
					     {0, 0, 0, 0}};
	struct answer_options def;
	struct buf out = BUF_INIT(1 << 20);
	FILE *in = stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	long lineno = 0, bad = 0;
	int c;

	answer_options_default(&def);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': break;
		case 'h': fputs(check_answer_usage, stdout); return EXIT_OK;
		case 'm':
			if (parse_mode(optarg, &def.mode))
				return cli_usage_error("check-answer", "--mode must be math, mcq or number");
			break;
		case 's': def.strict = 1; break;
		case 'p': {
			char *end;
			errno = 0;
			def.precision = strtod(optarg, &end);
			if (errno || *end || !(def.precision >= 0 && def.precision < 1))
				return cli_usage_error("check-answer",
						       "--precision must be a number in [0, 1)");
			break;
		}
		default: return cli_usage_error("check-answer", "bad option");
		}
	}
	if (argc - optind > 1)
		return cli_usage_error("check-answer", "unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc && strcmp(argv[optind], "-")) {
		in = fopen(argv[optind], "rb");
		if (!in) {
			cli_error("%s: %s", argv[optind], strerror(errno));
			return EXIT_ERROR;
		}
	}
	while ((got = getline(&line, &cap, in)) != -1) {
		size_t n = (size_t)got;
		lineno++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		buf_reset(&out);
		if (n == 0) {
			put_error(&out, lineno, "empty line");
			bad++;
		} else if (n > CHECK_LINE_MAX) {
			put_error(&out, lineno, "line too long");
			bad++;
		} else if (check_line(line, n, lineno, &def, &out)) {
			bad++;
		}
		if (fwrite(out.data, 1, out.len, stdout) != out.len)
			break;
	}
	free(line);
	buf_release(&out);
	if (in != stdin)
		fclose(in);
	if (fflush(stdout) || ferror(stdout)) {
		cli_error("write error: %s", strerror(errno));
		return EXIT_ERROR;
	}
	return bad ? EXIT_PARTIAL : EXIT_OK;
}
