/* train_sample.c - `distill-train sample`: generate from a checkpoint. */
#include "cli.h"
#include "gpt.h"
#include "train.h"
#include "trainer.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>

static const char sample_usage[] =
	"usage: distill-train sample --ckpt FILE --prompt TEXT [options]\n\n"
	"Generate the assistant's reply to a user prompt, with a KV cache.\n\n"
	"  --ckpt FILE          checkpoint (train-out/ckpt.bin)\n"
	"  --prompt TEXT        the user message, as the teacher saw it (template applied)\n"
	"  --system TEXT        a system prompt\n"
	"  --temperature X      0 is greedy (default 0.8)\n"
	"  --top-p X            nucleus sampling mass (default 0.95)\n"
	"  --max-new N          tokens to generate at most (default 512)\n"
	"  -n, --num N          samples to draw (default 1)\n"
	"  --seed S             sampling seed (default 1)\n"
	"  --threads N          worker threads\n";

enum { O_CKPT = 256, O_PROMPT, O_SYSTEM, O_TEMP, O_TOPP, O_MAXNEW, O_NUM, O_SEED, O_THREADS };

int train_cmd_sample(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ckpt", required_argument, NULL, O_CKPT},
		{"prompt", required_argument, NULL, O_PROMPT},
		{"system", required_argument, NULL, O_SYSTEM},
		{"temperature", required_argument, NULL, O_TEMP},
		{"top-p", required_argument, NULL, O_TOPP},
		{"max-new", required_argument, NULL, O_MAXNEW},
		{"num", required_argument, NULL, 'n'},
		{"seed", required_argument, NULL, O_SEED},
		{"threads", required_argument, NULL, O_THREADS},
		CLI_OPT_HELP,
		{0, 0, 0, 0},
	};
	struct trainer_gen_opts go = {
		.max_new = 512, .temperature = 0.8f, .top_p = 0.95f, .seed = 1, .batch = 16};
	const char *ckpt = NULL, *prompt = NULL, *system = NULL, **users;
	struct derr e = {0};
	struct gpt g;
	char **outs;
	int c, num = 1, threads = train_default_threads(), rc;
	int64_t iv;
	double dv;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hn:", opts, NULL)) != -1) {
		switch (c) {
		case O_CKPT: ckpt = optarg; break;
		case O_PROMPT: prompt = optarg; break;
		case O_SYSTEM: system = optarg; break;
		case O_TEMP:
			if (parse_double(optarg, &dv) || dv < 0 || dv > 100)
				return cli_usage_error("sample", "--temperature wants a number >= 0");
			go.temperature = (float)dv;
			break;
		case O_TOPP:
			if (parse_double(optarg, &dv) || dv <= 0 || dv > 1)
				return cli_usage_error("sample", "--top-p wants a number in (0, 1]");
			go.top_p = (float)dv;
			break;
		case O_MAXNEW:
			if (parse_int64(optarg, 1, 1 << 20, &iv))
				return cli_usage_error("sample", "--max-new wants a positive integer");
			go.max_new = (int)iv;
			break;
		case 'n':
			if (parse_int64(optarg, 1, 10000, &iv))
				return cli_usage_error("sample", "--num wants an integer in [1, 10000]");
			num = (int)iv;
			break;
		case O_SEED:
			if (parse_int64(optarg, 0, INT64_MAX, &iv))
				return cli_usage_error("sample", "--seed wants a non-negative integer");
			go.seed = (uint64_t)iv;
			break;
		case O_THREADS:
			if (parse_int64(optarg, 1, 64, &iv))
				return cli_usage_error("sample", "--threads wants an integer in [1, 64]");
			threads = (int)iv;
			break;
		case 'h': fputs(sample_usage, stdout); return EXIT_OK;
		default: return cli_usage_error("sample", "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error("sample", "unexpected argument '%s'", argv[optind]);
	if (!ckpt || !prompt)
		return cli_usage_error("sample", "--ckpt and --prompt are required");
	if (trainer_load_model(&g, ckpt, threads, GPTK_ISA_AUTO, &e))
		return cli_fail(&e);
	users = xcalloc((size_t)num, sizeof(*users));
	outs = xcalloc((size_t)num, sizeof(*outs));
	for (int i = 0; i < num; i++)
		users[i] = prompt;
	rc = trainer_generate(&g, system, users, num, &go, outs, &e);
	for (int i = 0; i < num; i++) {
		if (!rc)
			printf("%s%s\n", num > 1 ? "---\n" : "", outs[i]);
		free(outs[i]);
	}
	free(outs);
	free(users);
	gpt_release(&g);
	return rc ? cli_fail(&e) : EXIT_OK;
}
