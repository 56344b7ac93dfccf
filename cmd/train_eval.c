/*
 * train_eval.c - `distill-train eval`: generate answers for prompts that
 * have references, score them with the answer checker the filters use, and
 * print the accuracy.  Prompts are read with ingest's field detection; the
 * profile template recorded in the export manifest is applied first.
 */
#include "answer.h"
#include "buf.h"
#include "cli.h"
#include "fields.h"
#include "gpt.h"
#include "json.h"
#include "jsonl.h"
#include "shardread.h"
#include "train.h"
#include "trainer.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char eval_usage[] =
	"usage: distill-train eval --ckpt FILE --prompts FILE [options]\n\n"
	"Generate an answer for every prompt that has a reference, check it with the\n"
	"answer checker, and print the accuracy.  The prompt file is JSON Lines (or a\n"
	"JSON array, plain or .zst); fields are detected as by `distill ingest`.\n\n"
	"  --ckpt FILE           checkpoint (train-out/ckpt.bin)\n"
	"  --prompts FILE        prompts with references\n"
	"  --data DIR            export directory whose manifest gives the profile template\n"
	"  --profile NAME        which profile of the manifest (default: the first)\n"
	"  --template TEXT       user template overriding the manifest's ({prompt} marks it)\n"
	"  --prompt-field F      field holding the prompt (default: detected)\n"
	"  --answer-field F      field holding the reference (default: detected)\n"
	"  --limit N             score at most N prompts\n"
	"  --max-new N           tokens to generate at most (default 512)\n"
	"  --batch N             prompts decoded together (default 64)\n"
	"  --temperature X       0 is greedy (default 0)\n"
	"  --top-p X             nucleus mass when sampling (default 1)\n"
	"  --seed S              sampling seed (default 1)\n"
	"  --out FILE            write one JSON line per prompt: prompt, reference,\n"
	"                        response, extracted, equal\n"
	"  --threads N           worker threads\n";

enum {
	O_CKPT = 256,
	O_PROMPTS,
	O_DATA,
	O_PROFILE,
	O_TEMPLATE,
	O_PFIELD,
	O_AFIELD,
	O_LIMIT,
	O_MAXNEW,
	O_BATCH,
	O_TEMP,
	O_TOPP,
	O_SEED,
	O_OUT,
	O_THREADS
};

struct item {
	char *prompt; /* templated user message */
	char *raw_prompt;
	char *reference;
};

int train_cmd_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ckpt", required_argument, NULL, O_CKPT},
		{"prompts", required_argument, NULL, O_PROMPTS},
		{"data", required_argument, NULL, O_DATA},
		{"profile", required_argument, NULL, O_PROFILE},
		{"template", required_argument, NULL, O_TEMPLATE},
		{"prompt-field", required_argument, NULL, O_PFIELD},
		{"answer-field", required_argument, NULL, O_AFIELD},
		{"limit", required_argument, NULL, O_LIMIT},
		{"max-new", required_argument, NULL, O_MAXNEW},
		{"batch", required_argument, NULL, O_BATCH},
		{"temperature", required_argument, NULL, O_TEMP},
		{"top-p", required_argument, NULL, O_TOPP},
		{"seed", required_argument, NULL, O_SEED},
		{"out", required_argument, NULL, O_OUT},
		{"threads", required_argument, NULL, O_THREADS},
		CLI_OPT_HELP,
		{0, 0, 0, 0},
	};
	struct trainer_gen_opts go = {.max_new = 512, .temperature = 0, .top_p = 1, .seed = 1, .batch = 64};
	const char *ckpt = NULL, *prompts = NULL, *data = NULL, *profile = NULL, *templ = NULL,
		   *system = NULL;
	const char *pfield = NULL, *afield = NULL, *outpath = NULL;
	struct shardread_manifest m = {0};
	struct jsonl_reader *jr = NULL;
	struct jsonl_record rec;
	struct answer_options ao;
	struct derr e = {0};
	struct item *items = NULL;
	struct gpt g = {0};
	const char **users = NULL;
	char **outs = NULL;
	FILE *out = NULL;
	long limit = -1, skipped = 0, correct = 0, noanswer = 0;
	int c, n = 0, cap = 0, rc = EXIT_OK, have_manifest = 0, threads = train_default_threads();
	int64_t iv;
	double dv;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_CKPT: ckpt = optarg; break;
		case O_PROMPTS: prompts = optarg; break;
		case O_DATA: data = optarg; break;
		case O_PROFILE: profile = optarg; break;
		case O_TEMPLATE: templ = optarg; break;
		case O_PFIELD: pfield = optarg; break;
		case O_AFIELD: afield = optarg; break;
		case O_OUT: outpath = optarg; break;
		case O_LIMIT:
			if (parse_int64(optarg, 0, INT64_C(1) << 40, &iv))
				return cli_usage_error("eval", "--limit wants a non-negative integer");
			limit = (long)iv;
			break;
		case O_MAXNEW:
			if (parse_int64(optarg, 1, 1 << 20, &iv))
				return cli_usage_error("eval", "--max-new wants a positive integer");
			go.max_new = (int)iv;
			break;
		case O_BATCH:
			if (parse_int64(optarg, 1, 4096, &iv))
				return cli_usage_error("eval", "--batch wants an integer in [1, 4096]");
			go.batch = (int)iv;
			break;
		case O_TEMP:
			if (parse_double(optarg, &dv) || dv < 0 || dv > 100)
				return cli_usage_error("eval", "--temperature wants a number >= 0");
			go.temperature = (float)dv;
			break;
		case O_TOPP:
			if (parse_double(optarg, &dv) || dv <= 0 || dv > 1)
				return cli_usage_error("eval", "--top-p wants a number in (0, 1]");
			go.top_p = (float)dv;
			break;
		case O_SEED:
			if (parse_int64(optarg, 0, INT64_MAX, &iv))
				return cli_usage_error("eval", "--seed wants a non-negative integer");
			go.seed = (uint64_t)iv;
			break;
		case O_THREADS:
			if (parse_int64(optarg, 1, 64, &iv))
				return cli_usage_error("eval", "--threads wants an integer in [1, 64]");
			threads = (int)iv;
			break;
		case 'h': fputs(eval_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("eval", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
	if (!ckpt || !prompts)
		return cli_usage_error("eval", "--ckpt and --prompts are required");

	if (data) {
		const struct shardread_profile *p;
		if (shardread_manifest_load(&m, data, &e))
			return cli_fail(&e);
		have_manifest = 1;
		p = shardread_profile(&m, profile);
		if (profile && !p) {
			shardread_manifest_release(&m);
			return cli_usage_error("eval", "the manifest records no profile '%s'", profile);
		}
		if (p) {
			if (!templ)
				templ = p->template_;
			system = p->system;
		}
	}
	if (trainer_load_model(&g, ckpt, threads, GPTK_ISA_AUTO, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (jsonl_open(&jr, prompts, 1 << 24, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	while (limit < 0 || n < limit) {
		char ref[4096];
		const char *pr;
		cJSON *obj;
		struct buf tb = BUF_INIT(1 << 24);
		int r = jsonl_next(jr, &rec, &e);
		if (r < 0) {
			rc = cli_fail(&e);
			goto out;
		}
		if (r == 0)
			break;
		obj = rec.too_long ? NULL : json_parse(rec.data, rec.len);
		pr = fields_prompt(obj, pfield);
		if (!pr || fields_reference(obj, afield, ref, sizeof(ref)) != 1) {
			cli_error("%s:%ld: no prompt or no reference, skipped", prompts, rec.line);
			skipped++;
			cJSON_Delete(obj);
			continue;
		}
		if (shardread_apply_template(templ, pr, &tb)) {
			cli_error("%s:%ld: prompt too long, skipped", prompts, rec.line);
			skipped++;
			cJSON_Delete(obj);
			buf_release(&tb);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			items = xrealloc(items, sizeof(*items) * (size_t)cap);
		}
		items[n].prompt = buf_detach(&tb, NULL);
		if (!items[n].prompt)
			items[n].prompt = xstrdup("");
		items[n].raw_prompt = xstrdup(pr);
		{
			struct buf cb = BUF_INIT(sizeof(ref) * 2);
			items[n].reference = answer_extract_reference(ref, strlen(ref), &cb) == 0 && cb.len
						     ? buf_detach(&cb, NULL)
						     : xstrdup(ref);
			buf_release(&cb);
		}
		n++;
		cJSON_Delete(obj);
	}
	if (n == 0) {
		cli_error("%s: no prompt with a reference", prompts);
		rc = EXIT_ERROR;
		goto out;
	}
	users = xcalloc((size_t)n, sizeof(*users));
	outs = xcalloc((size_t)n, sizeof(*outs));
	for (int i = 0; i < n; i++)
		users[i] = items[i].prompt;
	if (trainer_generate(&g, system, users, n, &go, outs, &e)) {
		rc = cli_fail(&e);
		goto out;
	}
	if (outpath && !(out = fopen(outpath, "w"))) {
		cli_error("cannot write %s", outpath);
		rc = EXIT_ERROR;
		goto out;
	}
	answer_options_default(&ao);
	for (int i = 0; i < n; i++) {
		struct answer_result ar;
		answer_check(items[i].reference, outs[i], strlen(outs[i]), &ao, &ar);
		correct += ar.status == ANSWER_OK && ar.equal;
		noanswer += ar.status == ANSWER_NO_ANSWER;
		if (out) {
			struct buf lb = BUF_INIT(1 << 26);
			buf_puts(&lb, "{\"prompt\":");
			json_append_str(&lb, items[i].raw_prompt, strlen(items[i].raw_prompt));
			buf_puts(&lb, ",\"reference\":");
			json_append_str(&lb, items[i].reference, strlen(items[i].reference));
			buf_puts(&lb, ",\"response\":");
			json_append_str(&lb, outs[i], strlen(outs[i]));
			buf_puts(&lb, ",\"extracted\":");
			json_append_str(&lb, ar.extracted, strlen(ar.extracted));
			buf_printf(&lb, ",\"equal\":%s}\n",
				   ar.status == ANSWER_OK && ar.equal ? "true" : "false");
			fputs(buf_str(&lb), out);
			buf_release(&lb);
		}
	}
	printf("accuracy: %ld/%d = %.1f%% (no answer: %ld, skipped: %ld)\n", correct, n, 100.0 * correct / n,
	       noanswer, skipped);
out:
	if (out)
		fclose(out);
	for (int i = 0; i < n; i++) {
		free(items[i].prompt);
		free(items[i].raw_prompt);
		free(items[i].reference);
		if (outs)
			free(outs[i]);
	}
	free(items);
	free(users);
	free(outs);
	if (jr)
		jsonl_close(jr);
	if (g.params)
		gpt_release(&g);
	if (have_manifest)
		shardread_manifest_release(&m);
	return rc;
}
