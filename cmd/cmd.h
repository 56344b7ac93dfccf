/*
 * cmd.h - one function per `distill` subcommand (cmd/cmd_<name>.c), listed
 * in the table of cmd/distill.c.  Each takes argv with argv[0] = the
 * subcommand name and returns the process exit code.
 */
#ifndef DISTILL_CMD_H
#define DISTILL_CMD_H

int cmd_init(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_refresh(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_check_answer(int argc, char **argv);
int cmd_reextract(int argc, char **argv);
int cmd_ingest(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_work(int argc, char **argv);
int cmd_requeue(int argc, char **argv);
int cmd_import_traces(int argc, char **argv);
int cmd_dedup(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_filter(int argc, char **argv);
int cmd_enqueue(int argc, char **argv);

#endif
