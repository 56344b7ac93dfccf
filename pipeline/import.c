/* import.c - existing traces as done jobs (see import.h). */
#include "import.h"
#include "buf.h"
#include "db.h"
#include "hash.h"
#include "ingest.h"
#include "json.h"
#include "jsonl.h"
#include "queue.h"
#include "teacher.h"
#include "util.h"
#include "zst.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_PROFILE_ID[] = "SELECT id FROM profiles WHERE name = ?1";
static const char SQL_SEEN[] =
	"SELECT 1 FROM attempts a JOIN jobs j ON j.id = a.job_id "
	"WHERE j.prompt_id = ?1 AND j.profile_id = ?2 AND a.imported = 1 AND a.request_id = ?3 "
	"LIMIT 1";
static const char SQL_NJOBS[] = "SELECT COUNT(*) FROM jobs WHERE prompt_id = ?1 AND profile_id = ?2";
static const char SQL_JOB_ID[] =
	"SELECT id FROM jobs WHERE prompt_id = ?1 AND profile_id = ?2 AND sample_index = ?3";

enum { MAX_RECORD = 64 << 20 };

struct importer {
	struct db *db;
	struct ingest *in;
	int64_t profile_id;
	const char *source;
	char sha[65];
	struct db_stmt *seen, *njobs, *job_id;
	struct import_report *rep;
	import_bad_fn *on_bad;
	void *ctx;
};

static void bad(struct importer *im, long line, const char *reason)
{
	im->rep->rejected++;
	if (im->on_bad)
		im->on_bad(im->ctx, line, reason);
}

/* One statement with up to three integer/text parameters, first column. */
static int lookup(struct db_stmt *st, int64_t a, int64_t b, const char *text, int64_t c, int64_t *out,
		  struct derr *e)
{
	int rc;
	db_reset(st);
	db_bind_int64(st, 1, a);
	db_bind_int64(st, 2, b);
	if (text)
		db_bind_text(st, 3, text, -1);
	else
		db_bind_int64(st, 3, c);
	rc = db_step(st, e);
	if (rc == 1)
		*out = db_col_int64(st, 0);
	db_reset(st);
	return rc;
}

static int one_record(struct importer *im, const struct jsonl_record *rec, struct derr *e)
{
	cJSON *j = json_parse(rec->data, rec->len);
	const char *prompt, *response, *id, *model;
	const cJSON *ref;
	char refbuf[64], hash[33], request_id[48];
	const char *refp = NULL;
	int64_t prompt_id = 0, njobs = 0, job_id = 0, dummy = 0;
	int is_new = 0, rc = 0;
	struct teacher_response resp;
	struct buf rawz = BUF_INIT((size_t)rec->len + 4096);
	struct queue_trace tr;
	struct queue_result res;

	memset(&resp, 0, sizeof(resp));
	if (!cJSON_IsObject(j)) {
		bad(im, rec->line, "not a JSON object");
		goto out;
	}
	prompt = json_get_str(j, "prompt");
	response = json_get_str(j, "response");
	if (!prompt || !*prompt || !response) {
		bad(im, rec->line, "needs string fields \"prompt\" and \"response\"");
		goto out;
	}
	ref = cJSON_GetObjectItemCaseSensitive(j, "reference_answer");
	if (cJSON_IsString(ref))
		refp = ref->valuestring;
	else if (cJSON_IsNumber(ref)) {
		json_num_str(ref->valuedouble, refbuf, sizeof(refbuf));
		refp = refbuf;
	}
	id = json_get_str(j, "id");
	model = json_get_str(j, "model");
	rc = ingest_prompt(im->in, prompt, refp, im->source, id, im->sha, rec->line, NULL, &prompt_id,
			   &is_new, e);
	if (rc == DERR_UTF8 || rc == DERR_INVALID) {
		bad(im, rec->line, e->msg);
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (is_new)
		im->rep->new_prompts++;

	/* The same response for the same prompt and profile: imported before. */
	hash128_hex(response, strlen(response), hash);
	snprintf(request_id, sizeof(request_id), "import-%s", hash);
	rc = lookup(im->seen, prompt_id, im->profile_id, request_id, 0, &dummy, e);
	if (rc < 0)
		goto out;
	if (rc == 1) {
		im->rep->already++;
		rc = 0;
		goto out;
	}
	/* A new sample index for this trace: the next one after the jobs there are. */
	rc = lookup(im->njobs, prompt_id, im->profile_id, NULL, 0, &njobs, e);
	if (rc < 0)
		goto out;
	rc = queue_enqueue(im->db, prompt_id, im->profile_id, (int)njobs + 1, NULL, e);
	if (rc)
		goto out;
	rc = lookup(im->job_id, prompt_id, im->profile_id, NULL, njobs, &job_id, e);
	if (rc != 1) {
		rc = rc < 0 ? rc : derr_set(e, DERR_DB, "import: the new job is missing");
		goto out;
	}

	teacher_split(response, strlen(response), NULL, NULL, &resp);
	if (resp.utf8_repaired)
		im->rep->utf8_repaired++;
	rc = zst_compress(rec->data, rec->len, 3, &rawz, e);
	if (rc)
		goto out;
	memset(&tr, 0, sizeof(tr));
	tr.reasoning = resp.reasoning;
	tr.answer = resp.answer;
	tr.placement = teacher_placement_name(resp.placement);
	tr.endpoint = "import";
	tr.model = model;
	tr.request_id = request_id;
	tr.raw_body_z = rawz.data;
	tr.raw_body_z_len = rawz.len;
	tr.utf8_repaired = resp.utf8_repaired;
	memset(&res, 0, sizeof(res));
	res.job_id = job_id;
	res.outcome = QUEUE_DONE;
	res.has_attempt = 1;
	res.attempt.attempt_no = 1;
	res.attempt.endpoint = "import";
	res.attempt.started_at = now_ms();
	res.attempt.bytes = (int64_t)strlen(response);
	res.attempt.request_id = request_id;
	res.attempt.raw_body_z = rawz.data;
	res.attempt.raw_body_z_len = rawz.len;
	res.attempt.imported = 1;
	res.trace = &tr;
	rc = queue_record(im->db, "import", 1, &res, 1, e);
	if (!rc && res.status == 0)
		im->rep->imported++;
	else if (!rc)
		im->rep->already++;
out:
	teacher_response_release(&resp);
	buf_release(&rawz);
	cJSON_Delete(j);
	return rc;
}

/* The source name: the file's base name without its extensions. */
static char *source_name(const char *path)
{
	const char *b = strrchr(path, '/');
	char *s = xstrdup(b ? b + 1 : path);
	char *dot = strchr(s, '.');
	if (dot && dot != s)
		*dot = '\0';
	return s;
}

int import_traces(struct db *db, const char *path, const char *profile, import_bad_fn *on_bad, void *ctx,
		  struct import_report *rep, struct derr *e)
{
	struct importer im;
	struct ingest_options io;
	struct jsonl_reader *r = NULL;
	struct jsonl_record rec;
	struct db_stmt *pst = NULL;
	char *source = source_name(path);
	int rc;

	memset(rep, 0, sizeof(*rep));
	memset(&im, 0, sizeof(im));
	im.db = db;
	im.rep = rep;
	im.on_bad = on_bad;
	im.ctx = ctx;
	im.source = source;
	memset(&io, 0, sizeof(io));
	io.profile = profile;
	io.samples = 0;
	io.batch_rows = 1; /* queue_record runs its own transaction between prompts */
	rc = ingest_file_sha256(path, im.sha, e);
	if (!rc)
		rc = jsonl_open(&r, path, MAX_RECORD, e);
	if (!rc)
		rc = ingest_open(&im.in, db, &io, e);
	if (!rc)
		rc = db_prepare(db, SQL_PROFILE_ID, &pst, e);
	if (!rc) {
		db_bind_text(pst, 1, profile, -1);
		rc = db_step(pst, e);
		if (rc == 1) {
			im.profile_id = db_col_int64(pst, 0);
			rc = 0;
		} else if (rc == 0) {
			rc = derr_set(e, DERR_NOTFOUND, "profile \"%s\" was not created", profile);
		}
	}
	if (!rc)
		rc = db_prepare(db, SQL_SEEN, &im.seen, e);
	if (!rc)
		rc = db_prepare(db, SQL_NJOBS, &im.njobs, e);
	if (!rc)
		rc = db_prepare(db, SQL_JOB_ID, &im.job_id, e);
	while (!rc && (rc = jsonl_next(r, &rec, e)) == 1) {
		rep->records++;
		if (rec.too_long) {
			bad(&im, rec.line, "record too long");
			rc = 0;
			continue;
		}
		rc = one_record(&im, &rec, e);
	}
	if (rc > 0)
		rc = 0;
	if (!rc)
		rc = ingest_finish(im.in, e);
	if (rc)
		derr_wrap(e, "%s", path);
	db_finalize(pst);
	db_finalize(im.seen);
	db_finalize(im.njobs);
	db_finalize(im.job_id);
	ingest_free(im.in);
	jsonl_close(r);
	free(source);
	return rc;
}
