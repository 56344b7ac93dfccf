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
#include <pthread.h>
#include <stdint.h>
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

/* The scratch buffers that turn a record into a prepared occurrence; one
 * per thread that prepares. */
struct preparer {
	struct buf norm, clean, meta;
	char *refbuf; /* the raw reference as text */
	size_t refcap;
};

/* The fields of a prepared occurrence, kept in its arena. */
enum { PF_TEXT, PF_RAW, PF_SID, PF_CLEAN, PF_META, PF_COUNT };
#define PF_NONE SIZE_MAX

/* Why a prepared record is not stored. */
enum { PREP_OK, PREP_BAD_RECORD, PREP_BAD_PROMPT };

/* One occurrence made ready for the database: everything but the writes
 * (parsing, fields, normalisation, hash, clean reference, domain, meta). */
struct prep {
	long line;
	int bad;	  /* PREP_*: BAD_RECORD before the prompt was found, BAD_PROMPT after */
	char reason[160]; /* when bad */
	char hash[33];
	const char *domain; /* a static name or the caller's */
	struct buf arena;   /* the fields, each NUL-terminated */
	size_t off[PF_COUNT];
};

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
	struct preparer pp; /* for ingest_prompt (files prepare in a thread of their own) */
	struct prep one;
	struct answer_options aopt;
};

static void preparer_init(struct preparer *pp, size_t max_record)
{
	buf_init(&pp->norm, max_record * 2 + 64);
	buf_init(&pp->clean, max_record + 64);
	buf_init(&pp->meta, max_record * 2 + 64);
	pp->refbuf = NULL;
	pp->refcap = 0;
}

static void preparer_free(struct preparer *pp)
{
	buf_release(&pp->norm);
	buf_release(&pp->clean);
	buf_release(&pp->meta);
	free(pp->refbuf);
}

/* Room for every field: text, raw reference and source id up to a record
 * each, the clean reference up to the raw one, meta up to two records. */
static void prep_init(struct prep *p, size_t max_record)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->arena, max_record * 6 + 256);
}

static const char *prep_get(const struct prep *p, int f)
{
	return p->off[f] == PF_NONE ? NULL : p->arena.data + p->off[f];
}

static int prep_put(struct prep *p, int f, const char *s)
{
	p->off[f] = PF_NONE;
	if (!s)
		return 0;
	p->off[f] = p->arena.len;
	return buf_append(&p->arena, s, strlen(s) + 1);
}

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
	preparer_init(&in->pp, in->o.max_record);
	prep_init(&in->one, in->o.max_record);
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
	preparer_free(&in->pp);
	buf_release(&in->one.arena);
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
static const char *record_meta(struct preparer *in, const cJSON *obj, const char *prompt, const char *raw)
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

/* The database-free half of an occurrence: normalise and hash the prompt,
 * clean the reference, choose the domain, gather the metadata.  text and
 * raw are the record's own strings (record_meta leaves them out by
 * identity).  DERR_UTF8 / DERR_LIMIT / DERR_INVALID for a prompt that
 * cannot be used. */
static int prepare_occurrence(struct preparer *pp, const struct ingest_options *o, const char *text,
			      const char *raw, const char *source, const char *source_id, const char *domain,
			      const cJSON *obj, int has_code, struct prep *p, struct derr *e)
{
	const char *clean = NULL;
	int rc;

	rc = text_normalize(text, strlen(text), &pp->norm);
	if (rc == DERR_UTF8)
		return derr_set(e, DERR_UTF8, "invalid UTF-8 in the prompt");
	if (rc)
		return derr_set(e, DERR_LIMIT, "prompt too long");
	if (pp->norm.len == 0)
		return derr_set(e, DERR_INVALID, "empty prompt");
	/* Same as text_prompt_hash(), without normalising twice. */
	hash128_hex(pp->norm.data, pp->norm.len, p->hash);

	buf_reset(&pp->clean);
	if (raw && *raw && answer_extract_reference(raw, strlen(raw), &pp->clean) == 0 && pp->clean.len)
		clean = buf_str(&pp->clean);
	if (!domain)
		domain = o->domain ? o->domain : ingest_domain(source, clean, has_code);
	p->domain = domain;

	buf_reset(&p->arena);
	if (prep_put(p, PF_TEXT, text) || prep_put(p, PF_RAW, raw) || prep_put(p, PF_SID, source_id) ||
	    prep_put(p, PF_CLEAN, clean) || prep_put(p, PF_META, record_meta(pp, obj, text, raw)))
		return derr_set(e, DERR_LIMIT, "prompt too long");
	return 0;
}

/* The database half: the prompt row (or the known one), the occurrence,
 * the reference bookkeeping and the jobs (deferred to the batch's end when
 * defer is set). */
static int store_occurrence(struct ingest *in, const struct prep *p, const char *source, const char *sha,
			    long line, int defer, int64_t *prompt_id, int *is_new, struct derr *e)
{
	struct db_stmt *st;
	const char *text = prep_get(p, PF_TEXT), *raw = prep_get(p, PF_RAW), *clean = prep_get(p, PF_CLEAN);
	const char *hash = p->hash, *domain = p->domain;
	int64_t id = 0, added = 0, now = now_ms();
	int rc, found = 0, conflict = 0, occurrence;
	char *stored = NULL;

	if ((rc = tx_begin(in, e)))
		return rc;
	if ((rc = db_prepare_cached(in->db, SQL_PROMPT_ADD, &st, e)))
		return rc;
	db_bind_text_ref(st, 1, hash, 32);
	db_bind_int64(st, 2, TEXT_NORM_VERSION);
	db_bind_text_ref(st, 3, text, -1);
	db_bind_text_ref(st, 4, clean, -1);
	db_bind_text_ref(st, 5, domain, -1);
	db_bind_text_ref(st, 6, prep_get(p, PF_META), -1);
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
	db_bind_text_ref(st, 3, prep_get(p, PF_SID), -1);
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
	rc = prepare_occurrence(&in->pp, &in->o, text, raw_reference, source, source_id, domain, NULL, 0,
				&in->one, e);
	if (!rc)
		rc = store_occurrence(in, &in->one, source, file_sha256, line, 0, prompt_id, is_new, e);
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

/* Mark a prepared record bad. */
static void prep_bad(struct prep *p, int kind, const char *reason)
{
	size_t n = strnlen(reason, sizeof(p->reason) - 1);

	p->bad = kind;
	memcpy(p->reason, reason, n);
	p->reason[n] = '\0';
}

/* Parse and prepare one record (no database): p->bad and p->reason say
 * whether and why it is skipped. */
static void prepare_record(struct preparer *pp, const struct ingest_options *o, const char *source,
			   const struct jsonl_record *rec, struct prep *p)
{
	const char *parse_end = NULL, *prompt, *raw = NULL, *sid;
	char reason[160], idtmp[64];
	struct derr e = {0};
	cJSON *obj;
	int has_code = 0;

	p->line = rec->line;
	p->bad = PREP_OK;
	buf_reset(&p->arena);
	if (rec->too_long) {
		snprintf(reason, sizeof(reason), "record over %zu bytes", o->max_record);
		prep_bad(p, PREP_BAD_RECORD, reason);
		return;
	}
	if (!utf8_valid(rec->data, rec->len)) {
		prep_bad(p, PREP_BAD_RECORD, "invalid UTF-8");
		return;
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
		prep_bad(p, PREP_BAD_RECORD, "invalid JSON");
		return;
	}
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		prep_bad(p, PREP_BAD_RECORD, "not a JSON object");
		return;
	}
	prompt = fields_prompt(obj, o->prompt_field);
	if (!prompt) {
		if (o->prompt_field)
			snprintf(reason, sizeof(reason), "no string field \"%.60s\"", o->prompt_field);
		else
			snprintf(reason, sizeof(reason), "no prompt field (prompt, problem or question)");
		cJSON_Delete(obj);
		prep_bad(p, PREP_BAD_RECORD, reason);
		return;
	}
	if (pp->refcap < rec->len + 64) {
		pp->refcap = rec->len + 64;
		pp->refbuf = xrealloc(pp->refbuf, pp->refcap);
	}
	if (fields_reference(obj, o->answer_field, pp->refbuf, pp->refcap) == 1)
		raw = pp->refbuf;
	for (size_t i = 0; i < ARRAY_SIZE(code_fields); i++)
		has_code |= cJSON_GetObjectItemCaseSensitive(obj, code_fields[i]) != NULL;
	sid = record_source_id(obj, idtmp, sizeof(idtmp));
	if (prepare_occurrence(pp, o, prompt, raw, source, sid, NULL, obj, has_code, p, &e))
		prep_bad(p, PREP_BAD_PROMPT, e.msg);
	cJSON_Delete(obj);
}

/* Store one prepared record.  0 (added, or bad and reported) or a fatal code. */
static int ingest_prepared(struct ingest *in, const char *path, const char *source, const char *sha,
			   const struct prep *p, struct derr *e)
{
	int rc;

	if (p->bad == PREP_BAD_RECORD || (p->bad == PREP_BAD_PROMPT && !in->strict_bad)) {
		report_bad(in, path, p->line, p->reason);
		return 0;
	}
	if (in->strict_bad || p->bad) /* strict and already failed: only validate the rest */
		return 0;
	rc = store_occurrence(in, p, source, sha, p->line, 1, NULL, NULL, e);
	if (rc)
		return rc;
	return tx_tick(in, e);
}

/*
 * Files are read and prepared by a thread of their own while this one
 * writes: parsing, normalising and hashing overlap SQLite's work.  The two
 * meet in a ring of prepared records, bounded in count and in bytes, and
 * the records are stored in file order, so reports, strict mode and the
 * database come out as from one thread.
 */
#define FEED_SLOTS 64
#define FEED_BYTES ((size_t)64 << 20) /* prepared bytes in flight, past one record */
#define FEED_KEEP ((size_t)1 << 20)   /* a slot's arena above this is freed after use */

struct feed {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t can_put, can_take;
	struct prep slot[FEED_SLOTS];
	unsigned long head, tail;  /* taken at head, filled at tail */
	size_t bytes;		   /* arena bytes of the filled slots */
	int put_waits, take_waits; /* a side is waiting: only then is the other's signal needed */
	int done;		   /* the reader has ended: rc and err say how */
	int stop;		   /* the writer gives up: the reader ends */
	int rc;
	struct derr err;
	/* the reader's own */
	struct jsonl_reader *r;
	struct preparer pp;
	const struct ingest_options *o;
	const char *source;
};

static void *feed_main(void *arg)
{
	struct feed *f = arg;
	struct jsonl_record rec;
	struct derr err = {0};
	struct prep *p;
	int rc;

	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (!f->stop &&
		       (f->tail - f->head == FEED_SLOTS || (f->tail != f->head && f->bytes >= FEED_BYTES))) {
			f->put_waits = 1;
			pthread_cond_wait(&f->can_put, &f->mu);
		}
		p = &f->slot[f->tail % FEED_SLOTS];
		rc = f->stop ? 0 : 1;
		pthread_mutex_unlock(&f->mu);
		if (rc == 1)
			rc = jsonl_next(f->r, &rec, &err);
		if (rc != 1)
			break;
		prepare_record(&f->pp, f->o, f->source, &rec, p);
		pthread_mutex_lock(&f->mu);
		f->tail++;
		f->bytes += p->arena.len;
		/* Wake the writer once a few records are ready, not at every one. */
		if (f->take_waits && (f->tail - f->head >= FEED_SLOTS / 4 || f->bytes >= FEED_BYTES / 4)) {
			f->take_waits = 0;
			pthread_cond_signal(&f->can_take);
		}
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_lock(&f->mu);
	f->done = 1;
	f->rc = rc < 0 ? rc : 0;
	f->err = err;
	f->take_waits = 0;
	pthread_cond_signal(&f->can_take);
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static int feed_start(struct feed **out, struct ingest *in, const char *path, const char *source,
		      struct derr *e)
{
	struct feed *f = xcalloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	if ((rc = jsonl_open(&f->r, path, in->o.max_record, e))) {
		free(f);
		return rc;
	}
	f->o = &in->o;
	f->source = source;
	preparer_init(&f->pp, in->o.max_record);
	for (int i = 0; i < FEED_SLOTS; i++)
		prep_init(&f->slot[i], in->o.max_record);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->can_put, NULL);
	pthread_cond_init(&f->can_take, NULL);
	if ((rc = pthread_create(&f->thread, NULL, feed_main, f))) {
		f->done = 1; /* nothing to join */
		f->thread = pthread_self();
		rc = derr_set(e, DERR_LIMIT, "%s: cannot start the reader thread: %s", path, strerror(rc));
	}
	*out = f;
	return rc;
}

/* The next prepared record in file order, or NULL at the end (feed_end). */
static struct prep *feed_take(struct feed *f)
{
	struct prep *p = NULL;

	pthread_mutex_lock(&f->mu);
	while (f->head == f->tail && !f->done) {
		f->take_waits = 1;
		pthread_cond_wait(&f->can_take, &f->mu);
	}
	if (f->head != f->tail)
		p = &f->slot[f->head % FEED_SLOTS];
	pthread_mutex_unlock(&f->mu);
	return p;
}

/* Give back the record feed_take returned. */
static void feed_release(struct feed *f)
{
	struct prep *p = &f->slot[f->head % FEED_SLOTS];
	size_t len = p->arena.len;

	if (p->arena.cap > FEED_KEEP)
		buf_release(&p->arena);
	pthread_mutex_lock(&f->mu);
	f->head++;
	f->bytes -= len;
	/* Wake the reader once the ring is half free. */
	if (f->put_waits && f->tail - f->head <= FEED_SLOTS / 2) {
		f->put_waits = 0;
		pthread_cond_signal(&f->can_put);
	}
	pthread_mutex_unlock(&f->mu);
}

/* Stop the reader and free the feed.  Returns the reader's outcome: 0, or
 * its error (a read error, corrupt input) copied to e. */
static int feed_end(struct feed *f, struct derr *e)
{
	int rc;

	pthread_mutex_lock(&f->mu);
	f->stop = 1;
	f->put_waits = 0;
	pthread_cond_signal(&f->can_put);
	pthread_mutex_unlock(&f->mu);
	if (!pthread_equal(f->thread, pthread_self()))
		pthread_join(f->thread, NULL);
	rc = f->rc;
	if (rc && e)
		*e = f->err;
	jsonl_close(f->r);
	preparer_free(&f->pp);
	for (int i = 0; i < FEED_SLOTS; i++)
		buf_release(&f->slot[i].arena);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->can_put);
	pthread_cond_destroy(&f->can_take);
	free(f);
	return rc;
}

int ingest_file(struct ingest *in, const char *path, struct derr *e)
{
	struct feed *f = NULL;
	struct prep *p;
	struct db_stmt *st;
	char sha[65], source[256];
	int64_t records = 0, new_before = in->rep.new_prompts, rej_before = in->rep.rejected;
	int rc, frc;

	if (in->finished)
		return derr_set(e, DERR_INVALID, "ingest already finished");
	if (in->o.source)
		snprintf(source, sizeof(source), "%s", in->o.source);
	else
		source_from_path(path, source, sizeof(source));
	if ((rc = ingest_file_sha256(path, sha, e)))
		return rc;
	rc = feed_start(&f, in, path, source, e);
	while (!rc && f && (p = feed_take(f))) {
		records++;
		in->rep.records++;
		rc = ingest_prepared(in, path, source, sha, p, e);
		feed_release(f);
	}
	if (f) {
		frc = feed_end(f, rc ? NULL : e);
		if (!rc)
			rc = frc;
	}
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
