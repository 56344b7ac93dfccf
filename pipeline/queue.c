/*
 * queue.c - the job queue (see queue.h).  Infrastructure between ingest
 * (which enqueues) and the workers (which claim, renew and record).
 * Every state change is one statement inside a BEGIN IMMEDIATE transaction,
 * so two processes never claim the same job and a crash leaves either the
 * whole batch or none of it.
 */
#include "queue.h"
#include "buf.h"
#include "db.h"
#include "text.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runnable jobs: expired leases first (recovery), then due retries, then
 * queued jobs.  Each branch walks an index in order and stops at ?4 rows. */
static const char SQL_CLAIM[] =
	"UPDATE jobs SET state = 'leased', lease_owner = ?1, lease_expires = ?2, updated_at = ?3 "
	"WHERE id IN ("
	" SELECT id FROM (SELECT id FROM jobs WHERE state = 'leased' AND lease_expires < ?3"
	"   AND (?5 IS NULL OR profile_id IN (SELECT value FROM json_each(?5))) ORDER BY lease_expires LIMIT "
	"?4)"
	" UNION ALL SELECT id FROM (SELECT id FROM jobs WHERE state = 'failed' AND next_attempt_at <= ?3"
	"   AND (?5 IS NULL OR profile_id IN (SELECT value FROM json_each(?5))) ORDER BY next_attempt_at "
	"LIMIT ?4)"
	" UNION ALL SELECT id FROM (SELECT id FROM jobs WHERE state = 'queued' AND next_attempt_at <= ?3"
	"   AND (?5 IS NULL OR profile_id IN (SELECT value FROM json_each(?5))) ORDER BY next_attempt_at, id "
	"LIMIT ?4)"
	" LIMIT ?4) "
	"RETURNING id, prompt_id, profile_id, sample_index, attempts";

static const char SQL_PROMPT[] = "SELECT hash, text FROM prompts WHERE id = ?1";

static const char SQL_RENEW[] = "UPDATE jobs SET lease_expires = ?1 "
				"WHERE state = 'leased' AND lease_owner = ?2 "
				"AND id IN (SELECT value FROM json_each(?3))";

static const char SQL_RELEASE_SOME[] =
	"UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires = NULL, "
	"updated_at = ?1 WHERE state = 'leased' AND lease_owner = ?2 "
	"AND id IN (SELECT value FROM json_each(?3))";

static const char SQL_RELEASE_ALL[] =
	"UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_expires = NULL, "
	"updated_at = ?1 WHERE state = 'leased' AND lease_owner = ?2";

static const char SQL_JOB_STATE[] = "SELECT state, attempts, lease_owner FROM jobs WHERE id = ?1";

static const char SQL_ATTEMPT[] =
	"INSERT INTO attempts (job_id, attempt_no, endpoint, started_at, ms, http_status, error_class, "
	"error_code, bytes, request_id, prompt_tokens, completion_tokens, cost_micro_usd, raw_body, "
	"imported) "
	"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

static const char SQL_TRACE[] =
	"INSERT INTO traces (job_id, attempt_id, reasoning, answer, placement, finish_reason, prompt_tokens, "
	"completion_tokens, latency_ms, endpoint, model, request_id, raw_body, utf8_repaired, created_at, "
	"reasoning_chars) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

static const char SQL_DONE[] =
	"UPDATE jobs SET state = 'done', attempts = attempts + ?2, lease_owner = NULL, "
	"lease_expires = NULL, done_at = ?3, updated_at = ?3, last_error = NULL, "
	"last_error_code = NULL WHERE id = ?1";

static const char SQL_FAIL[] =
	"UPDATE jobs SET state = ?2, attempts = attempts + ?3, lease_owner = NULL, "
	"lease_expires = NULL, next_attempt_at = ?4, updated_at = ?5, last_error = ?6, "
	"last_error_code = ?7 WHERE id = ?1";

static const char SQL_ENQUEUE_RANGE[] =
	"INSERT OR IGNORE INTO jobs (prompt_id, profile_id, sample_index, created_at, updated_at) "
	"SELECT id, ?2, ?3, ?4, ?4 FROM prompts WHERE id BETWEEN ?1 AND ?5 ORDER BY id";

static const char SQL_REQUEUE[] =
	"UPDATE jobs SET state = 'queued', attempts = 0, next_attempt_at = 0, lease_owner = NULL, "
	"lease_expires = NULL, updated_at = ?4 "
	"WHERE (state = ?1 OR (?1 IS NULL AND state IN ('dead', 'failed'))) "
	"AND (?2 IS NULL OR last_error_code = ?2) AND updated_at >= ?3";

static const char SQL_COUNTS[] = "SELECT state, COUNT(*) FROM jobs GROUP BY state";

static const char SQL_WAKEUP[] =
	"SELECT MIN(t) FROM (SELECT MIN(next_attempt_at) AS t FROM jobs WHERE state = 'failed' "
	"UNION ALL SELECT MIN(lease_expires) FROM jobs WHERE state = 'leased')";

static const char *const state_names[QS_COUNT] = {"queued", "leased", "done", "failed", "dead"};

const char *queue_state_name(enum queue_state s)
{
	return (unsigned)s < QS_COUNT ? state_names[s] : "unknown";
}

/* JSON array of ids, for json_each() bindings. */
static void ids_json(struct buf *b, const int64_t *ids, int n)
{
	buf_putc(b, '[');
	for (int i = 0; i < n; i++)
		buf_printf(b, "%s%lld", i ? "," : "", (long long)ids[i]);
	buf_putc(b, ']');
}

void queue_jobs_free(struct queue_job *jobs, int n)
{
	if (!jobs)
		return;
	for (int i = 0; i < n; i++)
		free(jobs[i].prompt);
	free(jobs);
}

int queue_claim(struct db *db, const char *owner, const int64_t *profile_ids, int nprofiles, int max,
		int64_t lease_ms, struct queue_job **jobs, int *n, struct derr *e)
{
	struct db_stmt *st = NULL, *pst = NULL;
	struct buf prof = BUF_INIT(1 << 20);
	struct queue_job *out = NULL;
	int64_t now = now_ms();
	int rc, count = 0;

	*jobs = NULL;
	*n = 0;
	if (max <= 0)
		return 0;
	rc = db_begin_immediate(db, e);
	if (rc)
		return rc;
	rc = db_prepare_cached(db, SQL_CLAIM, &st, e);
	if (rc)
		goto fail;
	db_bind_text(st, 1, owner, -1);
	db_bind_int64(st, 2, now + lease_ms);
	db_bind_int64(st, 3, now);
	db_bind_int64(st, 4, max);
	if (profile_ids && nprofiles > 0) {
		ids_json(&prof, profile_ids, nprofiles);
		db_bind_text(st, 5, buf_str(&prof), (int)prof.len);
	}
	out = xcalloc((size_t)max, sizeof(*out));
	while ((rc = db_step(st, e)) == 1 && count < max) {
		struct queue_job *j = &out[count++];
		j->id = db_col_int64(st, 0);
		j->prompt_id = db_col_int64(st, 1);
		j->profile_id = db_col_int64(st, 2);
		j->sample_index = (int)db_col_int64(st, 3);
		j->attempts = (int)db_col_int64(st, 4);
	}
	db_reset(st);
	if (rc < 0)
		goto fail;
	rc = db_prepare_cached(db, SQL_PROMPT, &pst, e);
	if (rc)
		goto fail;
	for (int i = 0; i < count; i++) {
		db_reset(pst);
		db_bind_int64(pst, 1, out[i].prompt_id);
		rc = db_step(pst, e);
		if (rc != 1) {
			if (rc == 0)
				rc = derr_set(e, DERR_CORRUPT, "job %lld: prompt %lld missing",
					      (long long)out[i].id, (long long)out[i].prompt_id);
			db_reset(pst);
			goto fail;
		}
		snprintf(out[i].prompt_hash, sizeof(out[i].prompt_hash), "%s", db_col_text(pst, 0));
		out[i].prompt = xstrdup(db_col_text(pst, 1));
	}
	db_reset(pst);
	rc = db_commit(db, e);
	if (rc)
		goto fail;
	buf_release(&prof);
	if (count == 0) {
		free(out);
		out = NULL;
	}
	*jobs = out;
	*n = count;
	return 0;
fail:
	db_rollback(db);
	buf_release(&prof);
	queue_jobs_free(out, count);
	return rc;
}

static int lease_update(struct db *db, const char *sql, int64_t t, const char *owner, const int64_t *ids,
			int n, struct derr *e)
{
	struct buf js = BUF_INIT(64u << 20);
	struct db_stmt *st;
	int rc = db_prepare_cached(db, sql, &st, e);

	if (rc)
		return rc;
	db_bind_int64(st, 1, t);
	db_bind_text(st, 2, owner, -1);
	if (ids) {
		ids_json(&js, ids, n);
		db_bind_text(st, 3, buf_str(&js), (int)js.len);
	}
	rc = db_step(st, e);
	db_reset(st);
	buf_release(&js);
	return rc < 0 ? rc : 0;
}

int queue_renew(struct db *db, const char *owner, const int64_t *job_ids, int n, int64_t lease_ms,
		struct derr *e)
{
	if (n <= 0)
		return 0;
	return lease_update(db, SQL_RENEW, now_ms() + lease_ms, owner, job_ids, n, e);
}

int queue_release(struct db *db, const char *owner, const int64_t *job_ids, int n, struct derr *e)
{
	if (job_ids && n <= 0)
		return 0;
	return lease_update(db, job_ids ? SQL_RELEASE_SOME : SQL_RELEASE_ALL, now_ms(), owner, job_ids, n, e);
}

int64_t queue_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, double r)
{
	double cap = (double)base_ms * pow(2.0, attempt < 0 ? 0 : (attempt > 40 ? 40 : attempt));
	if (cap > (double)max_ms)
		cap = (double)max_ms;
	return (int64_t)(cap / 2 + r * cap / 2);
}

/* A small per-process generator for jitter; quality is not critical. */
static double jitter_uniform(void)
{
	static uint64_t s;
	if (!s)
		s = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (double)(s >> 11) / 9007199254740992.0;
}

static int insert_attempt(struct db *db, int64_t job_id, const struct queue_attempt *a, int64_t *id,
			  struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare_cached(db, SQL_ATTEMPT, &st, e);
	if (rc)
		return rc;
	db_bind_int64(st, 1, job_id);
	db_bind_int64(st, 2, a->attempt_no);
	db_bind_text(st, 3, a->endpoint, -1);
	db_bind_int64(st, 4, a->started_at);
	db_bind_int64(st, 5, a->ms);
	if (a->http_status)
		db_bind_int64(st, 6, a->http_status);
	db_bind_text(st, 7, a->error_class, -1);
	db_bind_text(st, 8, a->error_code, -1);
	db_bind_int64(st, 9, a->bytes);
	db_bind_text(st, 10, a->request_id, -1);
	db_bind_int64(st, 11, a->prompt_tokens);
	db_bind_int64(st, 12, a->completion_tokens);
	db_bind_int64(st, 13, a->cost_micro_usd);
	db_bind_blob(st, 14, a->raw_body_z, a->raw_body_z_len);
	db_bind_int64(st, 15, a->imported);
	rc = db_step(st, e);
	db_reset(st);
	if (rc < 0)
		return rc;
	*id = db_last_rowid(db);
	return 0;
}

static int insert_trace(struct db *db, int64_t job_id, int64_t attempt_id, const struct queue_trace *t,
			int64_t now, int64_t *id, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare_cached(db, SQL_TRACE, &st, e);
	if (rc)
		return rc;
	db_bind_int64(st, 1, job_id);
	if (attempt_id)
		db_bind_int64(st, 2, attempt_id);
	db_bind_text(st, 3, t->reasoning, -1);
	db_bind_text(st, 4, t->answer, -1);
	db_bind_text(st, 5, t->placement, -1);
	db_bind_text(st, 6, t->finish_reason, -1);
	db_bind_int64(st, 7, t->prompt_tokens);
	db_bind_int64(st, 8, t->completion_tokens);
	db_bind_int64(st, 9, t->latency_ms);
	db_bind_text(st, 10, t->endpoint, -1);
	db_bind_text(st, 11, t->model, -1);
	db_bind_text(st, 12, t->request_id, -1);
	db_bind_blob(st, 13, t->raw_body_z, t->raw_body_z_len);
	db_bind_int64(st, 14, t->utf8_repaired);
	db_bind_int64(st, 15, now);
	db_bind_int64(st, 16, t->reasoning ? (int64_t)utf8_count(t->reasoning, strlen(t->reasoning)) : 0);
	rc = db_step(st, e);
	db_reset(st);
	if (rc < 0)
		return rc;
	*id = db_last_rowid(db);
	return 0;
}

/* Apply one result inside the open transaction. */
static int record_one(struct db *db, const char *owner, int max_attempts, struct queue_result *r, int64_t now,
		      struct derr *e)
{
	struct db_stmt *st;
	char state[16] = "", lease_owner[256] = "";
	int attempts = 0, rc, counts;

	r->status = 0;
	r->trace_id = 0;
	r->attempt_id = 0;
	rc = db_prepare_cached(db, SQL_JOB_STATE, &st, e);
	if (rc)
		return rc;
	db_bind_int64(st, 1, r->job_id);
	rc = db_step(st, e);
	if (rc == 1) {
		const char *lo = db_col_text(st, 2);
		snprintf(state, sizeof(state), "%s", db_col_text(st, 0));
		attempts = (int)db_col_int64(st, 1);
		snprintf(lease_owner, sizeof(lease_owner), "%s", lo ? lo : "");
	}
	db_reset(st);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return derr_set(e, DERR_NOTFOUND, "job %lld does not exist", (long long)r->job_id);

	/* The attempt is kept whatever became of the job: it was paid for. */
	if (r->has_attempt) {
		rc = insert_attempt(db, r->job_id, &r->attempt, &r->attempt_id, e);
		if (rc)
			return rc;
	}
	if (!strcmp(state, "done")) {
		r->status = DERR_STALE;
		return 0;
	}
	counts = r->has_attempt && !r->attempt.imported ? 1 : 0;
	if (r->outcome == QUEUE_DONE) {
		/* First completion wins, whoever holds the lease now. */
		rc = insert_trace(db, r->job_id, r->attempt_id, r->trace, now, &r->trace_id, e);
		if (rc)
			return rc;
		rc = db_prepare_cached(db, SQL_DONE, &st, e);
		if (rc)
			return rc;
		db_bind_int64(st, 1, r->job_id);
		db_bind_int64(st, 2, counts);
		db_bind_int64(st, 3, now);
		rc = db_step(st, e);
		db_reset(st);
		return rc < 0 ? rc : 0;
	}
	/* A failure only moves a job this owner still holds: a worker whose
	 * lease was taken over must not disturb the new holder. */
	if (strcmp(state, "leased") != 0 || strcmp(lease_owner, owner) != 0) {
		r->status = DERR_STALE;
		return 0;
	}
	const char *new_state;
	int64_t next = now;
	int add = 0;
	switch (r->outcome) {
	case QUEUE_RETRY:
		add = 1;
		if (attempts + 1 >= max_attempts) {
			new_state = "dead";
		} else {
			int64_t delay = queue_backoff_ms(attempts, 1000, 300000, jitter_uniform());
			if (r->retry_after_ms > delay)
				delay = r->retry_after_ms;
			new_state = "failed";
			next = now + delay;
		}
		break;
	case QUEUE_DEAD:
		add = counts;
		new_state = "dead";
		break;
	case QUEUE_RELEASE:
	default:
		new_state = "queued";
		next = now + (r->retry_after_ms > 0 ? r->retry_after_ms : 0);
		break;
	}
	rc = db_prepare_cached(db, SQL_FAIL, &st, e);
	if (rc)
		return rc;
	db_bind_int64(st, 1, r->job_id);
	db_bind_text(st, 2, new_state, -1);
	db_bind_int64(st, 3, add);
	db_bind_int64(st, 4, next);
	db_bind_int64(st, 5, now);
	db_bind_text(st, 6, r->error, -1);
	db_bind_text(st, 7, r->error_code, -1);
	rc = db_step(st, e);
	db_reset(st);
	return rc < 0 ? rc : 0;
}

int queue_record(struct db *db, const char *owner, int max_attempts, struct queue_result *results, int n,
		 struct derr *e)
{
	int64_t now = now_ms();
	int rc;

	if (n <= 0)
		return 0;
	rc = db_begin_immediate(db, e);
	if (rc)
		return rc;
	for (int i = 0; i < n; i++) {
		rc = record_one(db, owner, max_attempts, &results[i], now, e);
		if (rc)
			goto fail;
	}
	rc = db_commit(db, e);
	if (rc)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	for (int i = 0; i < n; i++) {
		results[i].trace_id = 0;
		results[i].attempt_id = 0;
	}
	return rc;
}

int queue_enqueue_range(struct db *db, int64_t first_id, int64_t last_id, int64_t profile_id, int k,
			int64_t *added, struct derr *e)
{
	struct db_stmt *st;
	int64_t now = now_ms(), n = 0;
	int rc = db_prepare_cached(db, SQL_ENQUEUE_RANGE, &st, e);

	if (rc)
		return rc;
	for (int i = 0; i < k && first_id <= last_id; i++) {
		db_bind_int64(st, 1, first_id);
		db_bind_int64(st, 2, profile_id);
		db_bind_int64(st, 3, i);
		db_bind_int64(st, 4, now);
		db_bind_int64(st, 5, last_id);
		rc = db_step(st, e);
		db_reset(st);
		if (rc < 0)
			return rc;
		n += db_changes(db);
	}
	if (added)
		*added = n;
	return 0;
}

int queue_enqueue(struct db *db, int64_t prompt_id, int64_t profile_id, int k, int64_t *added, struct derr *e)
{
	return queue_enqueue_range(db, prompt_id, prompt_id, profile_id, k, added, e);
}

int queue_requeue(struct db *db, const char *state, const char *error_code, int64_t since_ms, int64_t *n,
		  struct derr *e)
{
	struct db_stmt *st;
	int rc;

	if (state && strcmp(state, "dead") != 0 && strcmp(state, "failed") != 0)
		return derr_set(e, DERR_INVALID, "requeue takes state dead or failed, not '%s'", state);
	rc = db_prepare(db, SQL_REQUEUE, &st, e);
	if (rc)
		return rc;
	db_bind_text(st, 1, state, -1);
	db_bind_text(st, 2, error_code, -1);
	db_bind_int64(st, 3, since_ms);
	db_bind_int64(st, 4, now_ms());
	rc = db_step(st, e);
	db_finalize(st);
	if (rc < 0)
		return rc;
	if (n)
		*n = db_changes(db);
	return 0;
}

int queue_counts(struct db *db, int64_t counts[QS_COUNT], struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, SQL_COUNTS, &st, e);

	if (rc)
		return rc;
	memset(counts, 0, sizeof(int64_t) * QS_COUNT);
	while ((rc = db_step(st, e)) == 1) {
		const char *s = db_col_text(st, 0);
		for (int i = 0; i < QS_COUNT; i++)
			if (s && !strcmp(s, state_names[i]))
				counts[i] = db_col_int64(st, 1);
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int queue_next_wakeup(struct db *db, int64_t *at_ms, struct derr *e)
{
	int64_t v = 0;
	int rc = db_query_int64(db, SQL_WAKEUP, &v, e);
	if (!rc)
		*at_ms = v;
	return rc;
}
