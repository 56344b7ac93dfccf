/*
 * ingest.c - prompt files into prompts, prompt_sources and the queue (see
 * ingest.h).  The first stage of the pipeline; it meets the others only in
 * the database.
 */
#include "ingest.h"
#include "answer.h"
#include "buf.h"
#include "db.h"
#include "fields.h"
#include "hash.h"
#include "json.h"
#include "jsonl.h"
#include "queue.h"
#include "text.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_PROFILE_ADD[] = "INSERT INTO profiles(name, created_at) VALUES (?1, ?2) "
				      "ON CONFLICT(name) DO NOTHING";
static const char SQL_PROFILE_ID[] = "SELECT id FROM profiles WHERE name = ?1";
static const char SQL_PROMPT_FIND[] = "SELECT id, reference, reference_conflict FROM prompts WHERE hash = ?1";
/* Insert first: a new prompt (the common case) costs one statement.  Its id
 * is read with db_changes()/db_last_rowid(), not RETURNING, which makes
 * SQLite open and close a temporary b-tree at every execution (a sixth of
 * the ingest's CPU time at 800k records). */
static const char SQL_PROMPT_ADD[] = "INSERT INTO prompts(hash, norm_version, text, reference, domain, meta, "
				     "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
				     "ON CONFLICT(hash) DO NOTHING";
static const char SQL_PROMPT_SET_REF[] =
	"UPDATE prompts SET reference = ?2 WHERE id = ?1 AND reference IS NULL";
static const char SQL_PROMPT_CONFLICT[] = "UPDATE prompts SET reference_conflict = 1 WHERE id = ?1";
/* The unique index of schema/002 makes a re-read occurrence a no-op. */
static const char SQL_SOURCE_ADD[] = "INSERT OR IGNORE INTO prompt_sources(prompt_id, source, source_id, "
				     "raw_reference, file_sha256, line, created_at) "
				     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_FILE_ADD[] = "INSERT INTO ingested_files(sha256, path, source, lines, new_prompts, "
				   "rejected, ingested_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
				   "ON CONFLICT(sha256) DO NOTHING";
static const char SQL_FILE_KNOWN[] = "SELECT 1 FROM ingested_files WHERE sha256 = ?1";
/* Prompt hashes are random keys: the unique index is written all over, so a
 * page cache that holds it (64 MB, bounded) saves rereading and rewriting
 * pages at every batch. */
static const char SQL_CACHE[] = "PRAGMA cache_size = -262144";
/* Ingest writes only ids it has just read or created, so the foreign-key
 * probes (three per record) are switched off for its connection while it
 * runs and back on in ingest_free; `distill check` verifies the links. */
static const char SQL_FK_OFF[] = "PRAGMA foreign_keys = OFF";
static const char SQL_FK_ON[] = "PRAGMA foreign_keys = ON";

/* Record fields that name an item of its source (HumanEval task_id, MATH unique_id). */
static const char *const source_id_fields[] = {"id", "task_id", "unique_id", "problem_id", "idx"};
/* Fields that make a record a code task. */
static const char *const code_fields[] = {"entry_point", "canonical_solution"};
/* Source names of well-known math sets (lower-case substrings). */
static const char *const math_sources[] = {"gsm8k", "math",   "aime",	   "amc",   "minerva", "olympiad",
					   "aops",  "numina", "mmlu_stem", "svamp", "asdiv"};
static const char *const domains[] = {"math", "code", "general"};

struct ingest {
	struct db *db;
	struct ingest_options o;
	int64_t profile_id;
	int in_tx;	/* a transaction is open */
	int pending;	/* records written since the last commit */
	int strict_bad; /* strict mode saw a bad record: nothing more is written */
	int finished;
	/* New prompts of the open batch whose jobs are not queued yet: ids
	 * first..last, all created by this batch (0: none).  They are queued
	 * with one statement per sample index before the commit. */
	int64_t new_first, new_last;
	struct ingest_report rep;
	struct buf norm, clean, meta;
	struct answer_options aopt;
};

static int tx_begin(struct ingest *in, struct derr *e)
{
	int rc;
	if (in->in_tx)
		return 0;
	rc = db_begin_immediate(in->db, e);
	if (!rc)
		in->in_tx = 1;
	return rc;
}

static void tx_rollback(struct ingest *in)
{
	if (in->in_tx)
		db_rollback(in->db);
	in->in_tx = 0;
	in->new_first = in->new_last = 0;
}

/* Queue the jobs of the batch's pending new prompts. */
static int flush_jobs(struct ingest *in, struct derr *e)
{
	int64_t added = 0;
	int rc;

	if (!in->new_first)
		return 0;
	rc = queue_enqueue_range(in->db, in->new_first, in->new_last, in->profile_id, in->o.samples, &added,
				 e);
	if (rc)
		return rc;
	in->rep.jobs_added += added;
	in->new_first = in->new_last = 0;
	return 0;
}

static int tx_commit(struct ingest *in, struct derr *e)
{
	int rc;
	if (!in->in_tx)
		return 0;
	rc = flush_jobs(in, e);
	if (!rc) {
		rc = db_commit(in->db, e);
		if (rc)
			derr_wrap(e, "%s: commit", db_path(in->db));
	}
	if (rc) {
		tx_rollback(in);
		return rc;
	}
	in->in_tx = 0;
	in->pending = 0;
	return 0;
}

/* A new prompt's jobs, deferred to flush_jobs: extend the pending id range,
 * or flush it and start another when the id does not follow. */
static int defer_jobs(struct ingest *in, int64_t id, struct derr *e)
{
	int rc;

	if (in->new_first && id == in->new_last + 1) {
		in->new_last = id;
		return 0;
	}
	if ((rc = flush_jobs(in, e)))
		return rc;
	in->new_first = in->new_last = id;
	return 0;
}

/* One record done: commit every batch_rows (never in strict mode, where
 * the whole ingest is one transaction). */
static int tx_tick(struct ingest *in, struct derr *e)
{
	if (in->o.strict || ++in->pending < in->o.batch_rows)
		return 0;
	return tx_commit(in, e);
}

int ingest_open(struct ingest **out, struct db *db, const struct ingest_options *o, struct derr *e)
{
	struct ingest *in;
	struct db_stmt *st = NULL;
	int rc, ok = 0;

	*out = NULL;
	if (o->samples < 0)
		return derr_set(e, DERR_INVALID, "samples must be 0 or more");
	if (o->domain) {
		for (size_t i = 0; i < ARRAY_SIZE(domains); i++)
			ok |= !strcmp(o->domain, domains[i]);
		if (!ok)
			return derr_set(e, DERR_INVALID, "domain must be math, code or general, not '%s'",
					o->domain);
	}
	in = xcalloc(1, sizeof(*in));
	in->db = db;
	in->o = *o;
	if (!in->o.profile)
		in->o.profile = "default";
	if (!in->o.max_record)
		in->o.max_record = INGEST_MAX_RECORD;
	if (in->o.batch_rows <= 0)
		in->o.batch_rows = INGEST_BATCH_ROWS;
	buf_init(&in->norm, in->o.max_record * 2 + 64);
	buf_init(&in->clean, in->o.max_record + 64);
	buf_init(&in->meta, in->o.max_record * 2 + 64);
	answer_options_default(&in->aopt);

	rc = db_exec(db, SQL_CACHE, e);
	if (!rc)
		rc = db_exec(db, SQL_FK_OFF, e);
	if (!rc)
		rc = db_prepare(db, SQL_PROFILE_ADD, &st, e);
	if (!rc) {
		db_bind_text(st, 1, in->o.profile, -1);
		db_bind_int64(st, 2, now_ms());
		rc = db_step(st, e);
		db_finalize(st);
	}
	if (!rc)
		rc = db_prepare(db, SQL_PROFILE_ID, &st, e);
	if (!rc) {
		db_bind_text(st, 1, in->o.profile, -1);
		rc = db_step(st, e);
		if (rc == 1)
			in->profile_id = db_col_int64(st, 0);
		rc = rc == 1 ? 0 : derr_set(e, DERR_DB, "profile '%s' could not be created", in->o.profile);
		db_finalize(st);
	}
	if (rc) {
		ingest_free(in);
		return rc;
	}
	*out = in;
	return 0;
}

const struct ingest_report *ingest_get_report(const struct ingest *in)
{
	return &in->rep;
}

void ingest_free(struct ingest *in)
{
	if (!in)
		return;
	tx_rollback(in);
	db_exec(in->db, SQL_FK_ON, NULL);
	buf_release(&in->norm);
	buf_release(&in->clean);
	buf_release(&in->meta);
	free(in);
}

int ingest_finish(struct ingest *in, struct derr *e)
{
	in->finished = 1;
	if (in->o.strict && in->rep.rejected) {
		tx_rollback(in);
		return derr_set(e, DERR_PARSE, "%lld bad record%s: nothing ingested (--strict)",
				(long long)in->rep.rejected, in->rep.rejected == 1 ? "" : "s");
	}
	return tx_commit(in, e);
}

const char *ingest_domain(const char *source, const char *clean_reference, int has_code_fields)
{
	char low[128];
	size_t i;

	if (has_code_fields)
		return "code";
	if (source) {
		for (i = 0; source[i] && i < sizeof(low) - 1; i++)
			low[i] = (char)tolower((unsigned char)source[i]);
		low[i] = '\0';
		for (i = 0; i < ARRAY_SIZE(math_sources); i++)
			if (strstr(low, math_sources[i]))
				return "math";
	}
	if (clean_reference && strpbrk(clean_reference, "0123456789\\+-*/^=<>()[]{}|"))
		return "math";
	return "general";
}

/* Compare a new clean reference with the stored one: 1 when they differ
 * (neither the same text nor equivalent for the answer checker). */
static int references_differ(struct ingest *in, const char *stored, const char *fresh)
{
	struct answer_result r;

	if (!strcmp(stored, fresh))
		return 0;
	answer_check_pred(stored, fresh, &in->aopt, &r);
	return !(r.status == ANSWER_OK && r.equal);
}

/* The prompt record's other fields as a JSON object (metadata), leaving out
 * the prompt and the reference (stored elsewhere); NULL when nothing is left. */
static const char *record_meta(struct ingest *in, const cJSON *obj, const char *prompt, const char *raw)
{
	const cJSON *c;
	int n = 0;

	if (!obj)
		return NULL;
	buf_reset(&in->meta);
	buf_putc(&in->meta, '{');
	cJSON_ArrayForEach(c, obj)
	{
		char *v;
		if (!c->string)
			continue;
		if (cJSON_IsString(c) && (c->valuestring == prompt || (raw && !strcmp(c->valuestring, raw))))
			continue;
		v = cJSON_PrintUnformatted(c);
		if (!v)
			continue;
		if (n++)
			buf_putc(&in->meta, ',');
		json_append_str(&in->meta, c->string, strlen(c->string));
		buf_putc(&in->meta, ':');
		if (buf_puts(&in->meta, v)) {
			free(v);
			return NULL; /* over the cap: no metadata rather than a truncated object */
		}
		free(v);
	}
	if (!n || buf_putc(&in->meta, '}'))
		return NULL;
	return buf_str(&in->meta);
}

/* The shared body of ingest_prompt and of each file record. */
static int add_occurrence(struct ingest *in, const char *text, const char *raw, const char *source,
			  const char *source_id, const char *sha, long line, const char *domain,
			  const cJSON *obj, int has_code, int defer, int64_t *prompt_id, int *is_new,
			  struct derr *e)
{
	struct db_stmt *st;
	char hash[33];
	const char *clean = NULL;
	int64_t id = 0, added = 0, now = now_ms();
	int rc, found = 0, conflict = 0, occurrence;
	char *stored = NULL;

	rc = text_normalize(text, strlen(text), &in->norm);
	if (rc == DERR_UTF8)
		return derr_set(e, DERR_UTF8, "invalid UTF-8 in the prompt");
	if (rc)
		return derr_set(e, DERR_LIMIT, "prompt too long");
	if (in->norm.len == 0)
		return derr_set(e, DERR_INVALID, "empty prompt");
	/* Same as text_prompt_hash(), without normalising twice. */
	hash128_hex(in->norm.data, in->norm.len, hash);

	buf_reset(&in->clean);
	if (raw && *raw && answer_extract_reference(raw, strlen(raw), &in->clean) == 0 && in->clean.len)
		clean = buf_str(&in->clean);

	if ((rc = tx_begin(in, e)))
		return rc;
	if (!domain)
		domain = in->o.domain ? in->o.domain : ingest_domain(source, clean, has_code);
	if ((rc = db_prepare_cached(in->db, SQL_PROMPT_ADD, &st, e)))
		return rc;
	db_bind_text_ref(st, 1, hash, 32);
	db_bind_int64(st, 2, TEXT_NORM_VERSION);
	db_bind_text_ref(st, 3, text, -1);
	db_bind_text_ref(st, 4, clean, -1);
	db_bind_text_ref(st, 5, domain, -1);
	db_bind_text_ref(st, 6, record_meta(in, obj, text, raw), -1);
	db_bind_int64(st, 7, now);
	rc = db_step(st, e);
	db_reset(st);
	if (rc < 0)
		return rc;
	if (db_changes(in->db) > 0) {
		id = db_last_rowid(in->db);
	} else { /* known prompt */
		if ((rc = db_prepare_cached(in->db, SQL_PROMPT_FIND, &st, e)))
			return rc;
		db_bind_text_ref(st, 1, hash, 32);
		rc = db_step(st, e);
		if (rc == 1) {
			found = 1;
			id = db_col_int64(st, 0);
			if (!db_col_isnull(st, 1))
				stored = xstrdup(db_col_text(st, 1));
			conflict = (int)db_col_int64(st, 2);
		}
		db_reset(st);
		if (rc < 0)
			return rc;
		if (!found)
			return derr_set(e, DERR_DB, "prompt %s vanished", hash);
	}

	if ((rc = db_prepare_cached(in->db, SQL_SOURCE_ADD, &st, e)))
		goto out;
	db_bind_int64(st, 1, id);
	db_bind_text_ref(st, 2, source, -1);
	db_bind_text_ref(st, 3, source_id, -1);
	db_bind_text_ref(st, 4, raw, -1);
	db_bind_text_ref(st, 5, sha, -1);
	if (line > 0)
		db_bind_int64(st, 6, line);
	db_bind_int64(st, 7, now);
	rc = db_step(st, e);
	db_reset(st);
	if (rc < 0)
		goto out;
	occurrence = db_changes(in->db) > 0;
	in->rep.occurrences += occurrence;

	/* A new occurrence of a known prompt: fill a missing reference, or
	 * flag a disagreement with the stored one. */
	if (found && occurrence && clean) {
		const char *sql = NULL;
		if (!stored)
			sql = SQL_PROMPT_SET_REF;
		else if (!conflict && references_differ(in, stored, clean))
			sql = SQL_PROMPT_CONFLICT;
		if (sql) {
			if ((rc = db_prepare_cached(in->db, sql, &st, e)))
				goto out;
			db_bind_int64(st, 1, id);
			if (sql == SQL_PROMPT_SET_REF)
				db_bind_text_ref(st, 2, clean, -1);
			rc = db_step(st, e);
			db_reset(st);
			if (rc < 0)
				goto out;
			if (sql == SQL_PROMPT_CONFLICT)
				in->rep.conflicts++;
		}
	}

	if (in->o.samples > 0 && defer && !found) {
		if ((rc = defer_jobs(in, id, e)))
			goto out;
	} else if (in->o.samples > 0 && !(in->new_first && id >= in->new_first && id <= in->new_last)) {
		/* (a prompt of the pending range gets its jobs with the range) */
		rc = queue_enqueue(in->db, id, in->profile_id, in->o.samples, &added, e);
		if (rc)
			goto out;
		in->rep.jobs_added += added;
	}
	if (found)
		in->rep.duplicates++;
	else
		in->rep.new_prompts++;
	if (prompt_id)
		*prompt_id = id;
	if (is_new)
		*is_new = !found;
	rc = 0;
out:
	free(stored);
	return rc;
}

int ingest_prompt(struct ingest *in, const char *text, const char *raw_reference, const char *source,
		  const char *source_id, const char *file_sha256, long line, const char *domain,
		  int64_t *prompt_id, int *is_new, struct derr *e)
{
	int rc;

	if (!text || !source)
		return derr_set(e, DERR_INVALID, "ingest_prompt: text and source are required");
	if (!utf8_valid(text, strlen(text)))
		return derr_set(e, DERR_UTF8, "invalid UTF-8 in the prompt");
	rc = add_occurrence(in, text, raw_reference, source, source_id, file_sha256, line, domain, NULL, 0, 0,
			    prompt_id, is_new, e);
	if (rc)
		return rc;
	return tx_tick(in, e);
}

int ingest_file_sha256(const char *path, char out[65], struct derr *e)
{
	struct sha256 s;
	FILE *f = fopen(path, "rb");
	char *chunk;
	size_t n;
	int rc = 0;

	if (!f)
		return derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "%s: %s", path,
				strerror(errno));
	chunk = xmalloc(1 << 20);
	sha256_init(&s);
	while ((n = fread(chunk, 1, 1 << 20, f)) > 0)
		sha256_update(&s, chunk, n);
	if (ferror(f))
		rc = derr_set(e, DERR_IO, "%s: read error", path);
	else
		sha256_final_hex(&s, out);
	fclose(f);
	free(chunk);
	return rc;
}

int ingest_file_known(struct db *db, const char *sha256, int *known, struct derr *e)
{
	struct db_stmt *st;
	int rc = db_prepare(db, SQL_FILE_KNOWN, &st, e);

	if (rc)
		return rc;
	db_bind_text(st, 1, sha256, -1);
	rc = db_step(st, e);
	db_finalize(st);
	if (rc < 0)
		return rc;
	*known = rc == 1;
	return 0;
}

/* "dir/gsm8k_train.jsonl.zst" -> "gsm8k_train". */
static void source_from_path(const char *path, char *out, size_t len)
{
	const char *base = strrchr(path, '/');
	char *dot;

	base = base ? base + 1 : path;
	snprintf(out, len, "%s", base);
	dot = strchr(out, '.');
	if (dot && dot != out)
		*dot = '\0';
	if (!out[0])
		snprintf(out, len, "input");
}

static void report_bad(struct ingest *in, const char *path, long line, const char *reason)
{
	in->rep.rejected++;
	if (in->o.strict)
		in->strict_bad = 1;
	if (in->o.on_bad)
		in->o.on_bad(in->o.ctx, path, line, reason);
}

/* The first source-id field present, as text. */
static const char *record_source_id(const cJSON *obj, char *tmp, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(source_id_fields); i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, source_id_fields[i]);
		if (cJSON_IsString(v))
			return v->valuestring;
		if (cJSON_IsNumber(v)) {
			json_num_str(v->valuedouble, tmp, len);
			return tmp;
		}
	}
	return NULL;
}

/* Parse and add one record.  0 (added, or bad and reported) or a fatal code. */
static int ingest_record(struct ingest *in, const char *path, const char *source, const char *sha,
			 const struct jsonl_record *rec, char **refbuf, size_t *refcap, struct derr *e)
{
	const char *parse_end = NULL, *prompt, *raw = NULL, *sid;
	char reason[160], idtmp[64];
	cJSON *obj;
	int rc, has_code = 0;

	if (rec->too_long) {
		snprintf(reason, sizeof(reason), "record over %zu bytes", in->o.max_record);
		report_bad(in, path, rec->line, reason);
		return 0;
	}
	if (!utf8_valid(rec->data, rec->len)) {
		report_bad(in, path, rec->line, "invalid UTF-8");
		return 0;
	}
	obj = cJSON_ParseWithLengthOpts(rec->data, rec->len, &parse_end, 0);
	if (obj && parse_end) {
		/* cJSON stops at the end of the value: anything but space after it is an error. */
		while (parse_end < rec->data + rec->len && isspace((unsigned char)*parse_end))
			parse_end++;
		if (parse_end < rec->data + rec->len) {
			cJSON_Delete(obj);
			obj = NULL;
		}
	}
	if (!obj) {
		report_bad(in, path, rec->line, "invalid JSON");
		return 0;
	}
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		report_bad(in, path, rec->line, "not a JSON object");
		return 0;
	}
	prompt = fields_prompt(obj, in->o.prompt_field);
	if (!prompt) {
		if (in->o.prompt_field)
			snprintf(reason, sizeof(reason), "no string field \"%.60s\"", in->o.prompt_field);
		else
			snprintf(reason, sizeof(reason), "no prompt field (prompt, problem or question)");
		cJSON_Delete(obj);
		report_bad(in, path, rec->line, reason);
		return 0;
	}
	if (in->strict_bad) { /* strict and already failed: only validate the rest */
		cJSON_Delete(obj);
		return 0;
	}
	if (*refcap < rec->len + 64) {
		*refcap = rec->len + 64;
		*refbuf = xrealloc(*refbuf, *refcap);
	}
	if (fields_reference(obj, in->o.answer_field, *refbuf, *refcap) == 1)
		raw = *refbuf;
	for (size_t i = 0; i < ARRAY_SIZE(code_fields); i++)
		has_code |= cJSON_GetObjectItemCaseSensitive(obj, code_fields[i]) != NULL;
	sid = record_source_id(obj, idtmp, sizeof(idtmp));

	rc = add_occurrence(in, prompt, raw, source, sid, sha, rec->line, NULL, obj, has_code, 1, NULL, NULL,
			    e);
	cJSON_Delete(obj);
	if (rc == DERR_UTF8 || rc == DERR_INVALID || rc == DERR_LIMIT) {
		report_bad(in, path, rec->line, e ? e->msg : derr_desc(rc));
		return 0;
	}
	if (rc)
		return rc;
	return tx_tick(in, e);
}

int ingest_file(struct ingest *in, const char *path, struct derr *e)
{
	struct jsonl_reader *r = NULL;
	struct jsonl_record rec;
	struct db_stmt *st;
	char sha[65], source[256];
	char *refbuf = NULL;
	size_t refcap = 0;
	int64_t records = 0, new_before = in->rep.new_prompts, rej_before = in->rep.rejected;
	int rc;

	if (in->finished)
		return derr_set(e, DERR_INVALID, "ingest already finished");
	if (in->o.source)
		snprintf(source, sizeof(source), "%s", in->o.source);
	else
		source_from_path(path, source, sizeof(source));
	if ((rc = ingest_file_sha256(path, sha, e)))
		return rc;
	if ((rc = jsonl_open(&r, path, in->o.max_record, e)))
		return rc;
	while ((rc = jsonl_next(r, &rec, e)) == 1) {
		records++;
		in->rep.records++;
		if ((rc = ingest_record(in, path, source, sha, &rec, &refbuf, &refcap, e)))
			break;
	}
	jsonl_close(r);
	free(refbuf);
	if (rc < 0) {
		derr_wrap(e, "%s", path);
		tx_rollback(in);
		return rc;
	}
	in->rep.files++;
	if (in->strict_bad)
		return 0;
	if ((rc = tx_begin(in, e)) || (rc = db_prepare_cached(in->db, SQL_FILE_ADD, &st, e)))
		return rc;
	db_bind_text(st, 1, sha, 64);
	db_bind_text(st, 2, path, -1);
	db_bind_text(st, 3, source, -1);
	db_bind_int64(st, 4, records);
	db_bind_int64(st, 5, in->rep.new_prompts - new_before);
	db_bind_int64(st, 6, in->rep.rejected - rej_before);
	db_bind_int64(st, 7, now_ms());
	rc = db_step(st, e);
	db_reset(st);
	if (rc < 0)
		return rc;
	/* Each file ends with a commit, so a later file's failure keeps this one. */
	return in->o.strict ? 0 : tx_commit(in, e);
}
