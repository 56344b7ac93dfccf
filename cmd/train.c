/*
 * train.c - distill-train: the bundled student trainer.  It needs no
 * database, only an export directory.  One table of subcommands; training
 * is the default when the first argument is an option.
 */
#include "train.h"
#include "cli.h"
#include "trainer.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"train", train_cmd_train, "train a student on an export directory (the default)"},
	{"sample", train_cmd_sample, "generate text from a checkpoint"},
	{"eval", train_cmd_eval, "generate answers for prompts with references and score them"},
};

static const char train_usage[] =
	"usage: distill-train [train] --data EXPORTDIR [options]\n"
	"       distill-train sample --ckpt FILE --prompt TEXT [options]\n"
	"       distill-train eval --ckpt FILE --prompts FILE [options]\n\n"
	"Train a small GPT (byte tokens, loss on assistant tokens only) on the shards of\n"
	"`distill export`.  Every shard's SHA-256 is checked against the manifest first.\n\n"
	"  --data DIR             export directory (manifest.json and shards)\n"
	"  --out DIR              checkpoints and log.jsonl (default train-out)\n"
	"  --layers L --heads H --dim C --ctx T   model shape (default 4, 4, 128, 256)\n"
	"  --batch B              rows of T tokens per step (default 8)\n"
	"  --steps N | --epochs E training length (default 1 epoch)\n"
	"  --lr X                 peak learning rate (default 1e-3)\n"
	"  --min-lr-frac X        cosine floor as a fraction of --lr (default 0.1)\n"
	"  --warmup N             linear warmup steps (default 50)\n"
	"  --weight-decay X       AdamW weight decay on matrices (default 0.1)\n"
	"  --clip X               global gradient-norm clip (default 1.0; 0: off)\n"
	"  --seed S               initialization and data order (default 1)\n"
	"  --weight-reasoning A   loss weight of the thinking tokens (default 1)\n"
	"  --weight-answer B      loss weight of the answer tokens (default 1)\n"
	"  --val-every K          validation loss every K steps (default: at the end)\n"
	"  --val-batches N        val batches per validation (default 8)\n"
	"  --ckpt-every K         checkpoint every K steps (default: at the end)\n"
	"  --resume CKPT          continue a run bit-exactly (shape and hyperparameters\n"
	"                         come from the checkpoint; --steps may extend it)\n"
	"  --stop-at N            save and stop after step N (a staged run)\n"
	"  --max-samples N        use at most N training samples\n"
	"  --threads N            worker threads (default: the online CPUs)\n"
	"  --isa auto|generic|avx2  kernel instruction set (default auto)\n"
	"  --log-every N          print every Nth step (default 1)\n"
	"  --profile              print the per-kernel time breakdown at the end\n"
	"\nExit codes: 0 ok, 1 error (bad shard, empty loss mask, bad checkpoint), 2 usage.\n";

int train_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int train_parse_isa(const char *s)
{
	static const struct {
		const char *name;
		enum gptk_isa isa;
	} isas[] = {{"auto", GPTK_ISA_AUTO}, {"generic", GPTK_ISA_GENERIC}, {"avx2", GPTK_ISA_AVX2}};
	for (size_t i = 0; i < ARRAY_SIZE(isas); i++)
		if (!strcmp(s, isas[i].name))
			return (int)isas[i].isa;
	return -1;
}

struct log_ctx {
	FILE *log;
	long every;
	int profile;
};

static void on_step(void *p, const struct trainer_report *r)
{
	struct log_ctx *c = p;
	if (r->is_val) {
		fprintf(stderr, "step %ld/%ld val_loss %.4f\n", r->step, r->steps, (double)r->val_loss);
		if (c->log)
			fprintf(c->log, "{\"step\":%ld,\"val_loss\":%.6f}\n", r->step, (double)r->val_loss);
	} else {
		if (r->step % c->every == 0 || r->step == r->steps || r->step == 1)
			fprintf(stderr,
				"step %ld/%ld loss %.4f gnorm %.3f lr %.2e ms %.1f tok/s %.0f mfu %.1f%% "
				"epoch %ld\n",
				r->step, r->steps, (double)r->loss, r->grad_norm, r->lr, r->ms, r->tok_per_s,
				100 * r->mfu, r->epoch);
		if (c->log)
			fprintf(c->log,
				"{\"step\":%ld,\"loss\":%.6f,\"grad_norm\":%.5f,\"lr\":%.6g,\"ms\":%.2f,"
				"\"cpu_ms\":%.2f,\"tok_per_s\":%.1f,\"mfu\":%.4f}\n",
				r->step, (double)r->loss, r->grad_norm, r->lr, r->ms, r->cpu_ms, r->tok_per_s,
				r->mfu);
	}
	if (c->log)
		fflush(c->log);
	if (!r->is_val && r->kernel_ns && r->step == r->steps && c->profile) {
		int64_t total = 0;
		for (int k = 0; k < GPT_K_COUNT; k++)
			total += r->kernel_ns[k];
		for (int k = 0; k < GPT_K_COUNT; k++)
			fprintf(stderr, "  %-13s %8.1f ms  %5.1f%%\n", gpt_kernel_names[k],
				r->kernel_ns[k] / 1e6, total ? 100.0 * r->kernel_ns[k] / total : 0);
	}
}

enum {
	O_DATA = 256,
	O_OUT,
	O_LAYERS,
	O_HEADS,
	O_DIM,
	O_CTX,
	O_BATCH,
	O_STEPS,
	O_EPOCHS,
	O_LR,
	O_MINLR,
	O_WARMUP,
	O_WD,
	O_CLIP,
	O_SEED,
	O_WR,
	O_WA,
	O_VALEVERY,
	O_VALBATCHES,
	O_CKPTEVERY,
	O_RESUME,
	O_STOPAT,
	O_MAXSAMPLES,
	O_THREADS,
	O_ISA,
	O_LOGEVERY,
	O_PROFILE,
};

static int num_opt(const char *name, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
	if (parse_int64(v, lo, hi, out))
		return cli_usage_error(NULL, "--%s wants an integer in [%lld, %lld], not '%s'", name,
				       (long long)lo, (long long)hi, v);
	return 0;
}

static int real_opt(const char *name, const char *v, double lo, double hi, double *out)
{
	if (parse_double(v, out) || !(*out >= lo && *out <= hi))
		return cli_usage_error(NULL, "--%s wants a number in [%g, %g], not '%s'", name, lo, hi, v);
	return 0;
}

int train_cmd_train(int argc, char **argv)
{
	static const struct option opts[] = {
		{"data", required_argument, NULL, O_DATA},
		{"out", required_argument, NULL, O_OUT},
		{"layers", required_argument, NULL, O_LAYERS},
		{"heads", required_argument, NULL, O_HEADS},
		{"dim", required_argument, NULL, O_DIM},
		{"ctx", required_argument, NULL, O_CTX},
		{"batch", required_argument, NULL, O_BATCH},
		{"steps", required_argument, NULL, O_STEPS},
		{"epochs", required_argument, NULL, O_EPOCHS},
		{"lr", required_argument, NULL, O_LR},
		{"min-lr-frac", required_argument, NULL, O_MINLR},
		{"warmup", required_argument, NULL, O_WARMUP},
		{"weight-decay", required_argument, NULL, O_WD},
		{"clip", required_argument, NULL, O_CLIP},
		{"seed", required_argument, NULL, O_SEED},
		{"weight-reasoning", required_argument, NULL, O_WR},
		{"weight-answer", required_argument, NULL, O_WA},
		{"val-every", required_argument, NULL, O_VALEVERY},
		{"val-batches", required_argument, NULL, O_VALBATCHES},
		{"ckpt-every", required_argument, NULL, O_CKPTEVERY},
		{"resume", required_argument, NULL, O_RESUME},
		{"stop-at", required_argument, NULL, O_STOPAT},
		{"max-samples", required_argument, NULL, O_MAXSAMPLES},
		{"threads", required_argument, NULL, O_THREADS},
		{"isa", required_argument, NULL, O_ISA},
		{"log-every", required_argument, NULL, O_LOGEVERY},
		{"profile", no_argument, NULL, O_PROFILE},
		CLI_OPT_HELP,
		{0, 0, 0, 0},
	};
	struct trainer_opts o;
	struct trainer_result res;
	struct log_ctx lc = {NULL, 1, 0};
	struct derr e = {0};
	const char *out = "train-out";
	char logpath[4096];
	int c, rc;
	int64_t iv;
	double dv;

	trainer_opts_default(&o);
	o.threads = train_default_threads();
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_DATA: o.data_dir = optarg; break;
		case O_OUT: out = optarg; break;
		case O_LAYERS:
			if (num_opt("layers", optarg, 1, 64, &iv))
				return EXIT_USAGE;
			o.model.num_layers = (int)iv;
			break;
		case O_HEADS:
			if (num_opt("heads", optarg, 1, 256, &iv))
				return EXIT_USAGE;
			o.model.num_heads = (int)iv;
			break;
		case O_DIM:
			if (num_opt("dim", optarg, 1, 8192, &iv))
				return EXIT_USAGE;
			o.model.channels = (int)iv;
			break;
		case O_CTX:
			if (num_opt("ctx", optarg, 2, 16384, &iv))
				return EXIT_USAGE;
			o.model.max_seq_len = (int)iv;
			break;
		case O_BATCH:
			if (num_opt("batch", optarg, 1, 65536, &iv))
				return EXIT_USAGE;
			o.batch = (int)iv;
			break;
		case O_STEPS:
			if (num_opt("steps", optarg, 1, INT64_C(1) << 40, &iv))
				return EXIT_USAGE;
			o.steps = (long)iv;
			break;
		case O_EPOCHS:
			if (real_opt("epochs", optarg, 1e-6, 1e6, &dv))
				return EXIT_USAGE;
			o.epochs = dv;
			break;
		case O_LR:
			if (real_opt("lr", optarg, 0, 10, &dv))
				return EXIT_USAGE;
			o.lr = (float)dv;
			break;
		case O_MINLR:
			if (real_opt("min-lr-frac", optarg, 0, 1, &dv))
				return EXIT_USAGE;
			o.min_lr_frac = (float)dv;
			break;
		case O_WARMUP:
			if (num_opt("warmup", optarg, 0, INT64_C(1) << 40, &iv))
				return EXIT_USAGE;
			o.warmup = (long)iv;
			break;
		case O_WD:
			if (real_opt("weight-decay", optarg, 0, 10, &dv))
				return EXIT_USAGE;
			o.weight_decay = (float)dv;
			break;
		case O_CLIP:
			if (real_opt("clip", optarg, 0, 1e9, &dv))
				return EXIT_USAGE;
			o.grad_clip = (float)dv;
			break;
		case O_SEED:
			if (num_opt("seed", optarg, 0, INT64_MAX, &iv))
				return EXIT_USAGE;
			o.seed = (uint64_t)iv;
			break;
		case O_WR:
			if (real_opt("weight-reasoning", optarg, 0, 1e6, &dv))
				return EXIT_USAGE;
			o.w_reasoning = (float)dv;
			break;
		case O_WA:
			if (real_opt("weight-answer", optarg, 0, 1e6, &dv))
				return EXIT_USAGE;
			o.w_answer = (float)dv;
			break;
		case O_VALEVERY:
			if (num_opt("val-every", optarg, 0, INT64_C(1) << 40, &iv))
				return EXIT_USAGE;
			o.val_every = (long)iv;
			break;
		case O_VALBATCHES:
			if (num_opt("val-batches", optarg, 1, 1 << 20, &iv))
				return EXIT_USAGE;
			o.val_batches = (int)iv;
			break;
		case O_CKPTEVERY:
			if (num_opt("ckpt-every", optarg, 0, INT64_C(1) << 40, &iv))
				return EXIT_USAGE;
			o.ckpt_every = (long)iv;
			break;
		case O_RESUME: o.resume = optarg; break;
		case O_STOPAT:
			if (num_opt("stop-at", optarg, 1, INT64_C(1) << 40, &iv))
				return EXIT_USAGE;
			o.stop_at = (long)iv;
			break;
		case O_MAXSAMPLES:
			if (num_opt("max-samples", optarg, 1, INT64_C(1) << 40, &iv))
				return EXIT_USAGE;
			o.max_samples = (long)iv;
			break;
		case O_THREADS:
			if (num_opt("threads", optarg, 1, 64, &iv))
				return EXIT_USAGE;
			o.threads = (int)iv;
			break;
		case O_ISA:
			if (train_parse_isa(optarg) < 0)
				return cli_usage_error(NULL, "--isa is auto, generic or avx2, not '%s'",
						       optarg);
			o.isa = (enum gptk_isa)train_parse_isa(optarg);
			break;
		case O_LOGEVERY:
			if (num_opt("log-every", optarg, 1, INT64_C(1) << 40, &iv))
				return EXIT_USAGE;
			lc.every = (long)iv;
			break;
		case O_PROFILE: lc.profile = 1; break;
		case 'h': fputs(train_usage, stdout); return EXIT_OK;
		default: return cli_usage_error(NULL, "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error(NULL, "unexpected argument '%s'", argv[optind]);
	if (!o.data_dir)
		return cli_usage_error(NULL, "--data EXPORTDIR is required");
	o.out_dir = out;
	snprintf(logpath, sizeof(logpath), "%s/log.jsonl", out);
	{
		struct derr me = {0};
		/* the log sits next to the checkpoint; create OUT first */
		if (mkdir(out, 0755) != 0 && errno != EEXIST) {
			derr_set(&me, DERR_IO, "create %s: %s", out, strerror(errno));
			return cli_fail(&me);
		}
	}
	lc.log = fopen(logpath, o.resume ? "a" : "w");
	rc = trainer_run(&o, on_step, &lc, &res, &e);
	if (lc.log)
		fclose(lc.log);
	if (rc)
		return cli_fail(&e);
	printf("trained %ld steps on %ld samples (%ld tokens, %ld rows per epoch, %ld cut to the context): "
	       "loss %.4f",
	       res.steps_done, res.train_samples, res.train_tokens, res.rows_per_epoch, res.truncated,
	       (double)res.last_loss);
	if (res.val_loss >= 0)
		printf(", val loss %.4f", (double)res.val_loss);
	printf("\ncheckpoint: %s/ckpt.bin\n", out);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	cli_prog = "distill-train";
	signal(SIGPIPE, SIG_IGN);
	cli_log_init(getenv("DISTILL_VERBOSE") != NULL);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		fputs(train_usage, stdout);
		fputs("\ncommands:\n", stdout);
		for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
			printf("  %-8s %s\n", commands[i].name, commands[i].summary);
		return EXIT_OK;
	}
	if (argc >= 2 && argv[1][0] != '-') {
		for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
			if (!strcmp(argv[1], commands[i].name))
				return commands[i].fn(argc - 1, argv + 1);
		return cli_usage_error(NULL, "'%s' is not a distill-train command", argv[1]);
	}
	return train_cmd_train(argc, argv);
}
