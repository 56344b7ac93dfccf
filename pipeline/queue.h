/*
 * queue.h - the job queue in the database (DESIGN §3, §13 "Leases").
 *
 * A job is one (prompt, profile, sample index).  States:
 *   queued -> leased -> done
 *                    -> failed (will be retried at next_attempt_at) -> leased ...
 *                    -> dead   (attempts exhausted, or a non-retryable error)
 * A leased job whose lease expires is claimable again.  A completion is
 * accepted for any job not yet done, whoever holds the lease (the first
 * completion wins); a completion for a job already done is refused with
 * DERR_STALE but its attempt row is still recorded, never dropped.
 * Recording a trace and marking its job done happen in one transaction.
 */
#ifndef DISTILL_QUEUE_H
#define DISTILL_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct db;

/* A claimed job.  Strings are owned by the array (queue_jobs_free). */
struct queue_job {
	int64_t id;
	int64_t prompt_id;
	int64_t profile_id;
	int sample_index;
	int attempts;	      /* attempts already used before this claim */
	char prompt_hash[33]; /* hex identity of the prompt */
	char *prompt;	      /* the prompt text */
};

/* Claim up to max runnable jobs (queued; failed with next_attempt_at <= now;
 * leased with an expired lease) of the given profiles (NULL/0: any), oldest
 * first, leasing them to owner until now + lease_ms.  Atomic: two processes
 * never receive the same job.  *jobs is NULL when *n == 0. */
int queue_claim(struct db *db, const char *owner, const int64_t *profile_ids, int nprofiles, int max,
		int64_t lease_ms, struct queue_job **jobs, int *n, struct derr *e);
void queue_jobs_free(struct queue_job *jobs, int n);

/* Extend owner's leases on these jobs to now + lease_ms (one UPDATE). */
int queue_renew(struct db *db, const char *owner, const int64_t *job_ids, int n, int64_t lease_ms,
		struct derr *e);

/* Return owner's leased jobs to the queue now (graceful shutdown); the
 * attempts they used are kept.  NULL ids: all of owner's leases. */
int queue_release(struct db *db, const char *owner, const int64_t *job_ids, int n, struct derr *e);

/* One HTTP request (or imported trace) as an attempts row. */
struct queue_attempt {
	int attempt_no;
	const char *endpoint;
	int64_t started_at; /* ms since epoch */
	int64_t ms;
	int http_status;	 /* 0: no response */
	const char *error_class; /* NULL ok, "job", "endpoint" */
	const char *error_code;	 /* NULL ok, e.g. "http_429", "timeout", "malformed" */
	int64_t bytes;
	const char *request_id;
	int64_t prompt_tokens, completion_tokens;
	int64_t cost_micro_usd;
	const void *raw_body_z; /* zstd-compressed, capped; may be NULL */
	size_t raw_body_z_len;
	int imported;
};

/* The trace of a successful response. */
struct queue_trace {
	const char *reasoning, *answer;
	const char *placement; /* reasoning_content | reasoning | think_tags | close_tag_only | none */
	const char *finish_reason;
	int64_t prompt_tokens, completion_tokens, latency_ms;
	const char *endpoint, *model, *request_id;
	const void *raw_body_z;
	size_t raw_body_z_len;
	int utf8_repaired;
};

enum queue_outcome {
	QUEUE_DONE,    /* record the trace, mark done */
	QUEUE_RETRY,   /* job-level error: failed, retried after backoff (dead when attempts run out) */
	QUEUE_DEAD,    /* non-retryable job error (a 400): dead now */
	QUEUE_RELEASE, /* endpoint-level error: back to the queue, no attempt used */
};

struct queue_result {
	int64_t job_id;
	enum queue_outcome outcome;
	int has_attempt; /* record .attempt */
	struct queue_attempt attempt;
	const struct queue_trace *trace; /* QUEUE_DONE */
	int64_t retry_after_ms;		 /* QUEUE_RETRY: lower bound on the delay (Retry-After) */
	const char *error, *error_code;	 /* QUEUE_RETRY / QUEUE_DEAD */
	/* Filled by queue_record: 0 applied; DERR_STALE when the job was already
	 * done (the attempt is still recorded); with QUEUE_DONE, the trace id. */
	int status;
	int64_t trace_id;
	int64_t attempt_id;
};

/* Apply a batch of results in one transaction.  RETRY counts an attempt and
 * schedules next_attempt_at = now + max(retry_after_ms, backoff); when the
 * job's attempts reach max_attempts it is dead instead.  A result for a job
 * already done is refused (status DERR_STALE) without failing the batch.
 * Results are applied whoever holds the lease (first completion wins).
 * On error nothing of the batch is written. */
int queue_record(struct db *db, const char *owner, int max_attempts, struct queue_result *results, int n,
		 struct derr *e);

/* Exponential backoff with full jitter: base * 2^attempt capped at max_ms,
 * then uniform in [cap/2, cap].  r is a uniform random number in [0, 1). */
int64_t queue_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, double r);

/* Enqueue samples 0..k-1 of a prompt for a profile; existing ones are kept.
 * *added receives how many jobs were new (0 for a prompt that does not
 * exist). */
int queue_enqueue(struct db *db, int64_t prompt_id, int64_t profile_id, int k, int64_t *added,
		  struct derr *e);

/* The same for every prompt whose id lies in [first_id, last_id], as one
 * statement per sample index: a bulk load (ingest) queues a whole batch of
 * new prompts at once instead of stepping a statement per prompt.  Job ids
 * follow sample index, then prompt id.  *added receives how many were new. */
int queue_enqueue_range(struct db *db, int64_t first_id, int64_t last_id, int64_t profile_id, int k,
			int64_t *added, struct derr *e);

/* Put jobs back to queued (attempts reset): state "dead" or "failed" (NULL:
 * both), optional error code and minimum updated_at.  *n receives the count. */
int queue_requeue(struct db *db, const char *state, const char *error_code, int64_t since_ms, int64_t *n,
		  struct derr *e);

/* Count jobs per state; index by enum queue_state. */
enum queue_state { QS_QUEUED, QS_LEASED, QS_DONE, QS_FAILED, QS_DEAD, QS_COUNT };
int queue_counts(struct db *db, int64_t counts[QS_COUNT], struct derr *e);
const char *queue_state_name(enum queue_state s);

/* Earliest next_attempt_at among failed jobs, or 0 when none (for --until-empty). */
int queue_next_wakeup(struct db *db, int64_t *at_ms, struct derr *e);

#endif
