/*
 * worker.h - one worker process's loop (DESIGN §4, §11, §13): claim jobs
 * from the queue in batches, send each to a teacher endpoint (many requests
 * in flight through the http module), parse the answer (teacher module),
 * and record every attempt and trace through queue_record in batches.  It
 * renews its leases while requests are in flight, classifies job-level and
 * endpoint-level errors, spreads requests over endpoints by weight within
 * their concurrency and rate limits, opens a circuit breaker on endpoints
 * that keep failing, enforces the budget counting requests in flight, and
 * drains on request.
 *
 * Several processes share one struct worker_shared (the command places it in
 * shared memory before fork()): the --max-jobs allowance, the budget
 * counters, and per-process statistics for the progress line.  The library
 * only reads and writes it with atomic operations.
 */
#ifndef DISTILL_WORKER_H
#define DISTILL_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct db;
struct tconfig;

/* Per-process counters, written by that process only. */
struct worker_stats {
	int64_t requests, errors, done, dead, stale;
	int64_t prompt_tokens, completion_tokens;
	int64_t inflight;
	int64_t pid;
};

#define WORKER_MAX_PROCS 256

struct worker_shared {
	int64_t jobs_left; /* --max-jobs allowance; -1: unlimited */
	/* Budget of this run (all processes): used and reserved by requests in flight. */
	int64_t tokens_used, tokens_reserved, cost_used, cost_reserved;
	int64_t spent_tokens_before, spent_cost_before; /* the `total` budget's past */
	int64_t budget_hit;
	int nprocs;
	struct worker_stats procs[WORKER_MAX_PROCS];
};

/* Why a worker stopped. */
enum worker_end {
	WORKER_EMPTY,	 /* --until-empty: nothing runnable is left */
	WORKER_DEADLINE, /* --max-time reached */
	WORKER_STOPPED,	 /* stop requested (SIGINT/SIGTERM) */
	WORKER_MAX_JOBS, /* --max-jobs used up */
	WORKER_BUDGET,	 /* the budget stopped dispatching */
	WORKER_PAUSED,	 /* every endpoint is paused */
};

struct worker_opts {
	const struct tconfig *cfg;
	const int64_t *profile_ids;  /* row ids of cfg->profiles (tconfig_bind_profiles) */
	const char *const *api_keys; /* per endpoint: the key, or NULL; never stored or logged */
	int concurrency;	     /* requests in flight in this process */
	int64_t deadline_ms;	     /* wall clock; 0: none */
	int until_empty;
	volatile int *stop; /* set (by a signal handler) to drain; may be NULL */
	struct worker_shared *shared;
	int proc; /* this process's index in shared->procs */
	int batch_max;
	int64_t batch_ms;
	int64_t idle_poll_ms; /* without --until-empty: how often to look for new jobs */
};

/* Defaults: batches of 16 results or 200 ms, idle poll 500 ms. */
void worker_opts_init(struct worker_opts *o);

/* Zero the shared block for nprocs processes and set its budget past and
 * --max-jobs allowance (-1: unlimited). */
void worker_shared_init(struct worker_shared *sh, int nprocs, int64_t max_jobs);

/* Sum of completion tokens and cost (micro-dollars) over all non-imported
 * attempts: the past of the `total` budget. */
int worker_spent(struct db *db, int64_t *tokens, int64_t *cost_micro, struct derr *e);

/* Record the total cost budget in meta (budget_total_micro_usd) for the
 * report, when cfg has one. */
int worker_note_budget(struct db *db, const struct tconfig *cfg, struct derr *e);

/* Run the loop on db (opened by this process) until one of enum
 * worker_end; *end says which.  On DERR_PAUSED (every endpoint paused) e
 * says why for each endpoint.  Leases still held are returned on every exit
 * path.  Returns 0 or a negative code. */
int worker_run(struct db *db, const struct worker_opts *o, enum worker_end *end, struct derr *e);

/* Overwrite every occurrence of secret in p[0..n) with '*' (same length);
 * returns how many were found.  An empty or NULL secret finds nothing. */
int worker_redact(char *p, size_t n, const char *secret);

#endif
