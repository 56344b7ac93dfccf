/*
 * train.h - the subcommands of distill-train (cmd/train*.c): train (the
 * default), sample and eval.  Each takes argv with argv[0] = its name and
 * returns the exit code.
 */
#ifndef DISTILL_TRAIN_CMD_H
#define DISTILL_TRAIN_CMD_H

int train_cmd_train(int argc, char **argv);
int train_cmd_sample(int argc, char **argv);
int train_cmd_eval(int argc, char **argv);

/* Worker threads: the online CPUs. */
int train_default_threads(void);

/* Parse the --isa value: auto, generic, avx2; -1 when unknown. */
int train_parse_isa(const char *s);

#endif
