/* shardread.c - export manifest, checksums and record streaming (see shardread.h). */
#include "shardread.h"
#include "buf.h"
#include "hash.h"
#include "json.h"
#include "util.h"
#include "zst.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_MAX (64u << 20)
#define LINE_MAX_BYTES (64u << 20)

static int read_small_file(const char *path, size_t max, struct buf *out, struct derr *e)
{
	FILE *f = fopen(path, "rb");
	char tmp[65536];
	size_t n;
	if (!f)
		return derr_set(e, DERR_IO, "open %s: %s", path, strerror(errno));
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if (out->len + n > max || buf_append(out, tmp, n)) {
			fclose(f);
			return derr_set(e, DERR_LIMIT, "%s is larger than %zu bytes", path, max);
		}
	if (ferror(f)) {
		fclose(f);
		return derr_set(e, DERR_IO, "read %s: %s", path, strerror(errno));
	}
	fclose(f);
	return 0;
}

static int safe_name(const char *s)
{
	return *s && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") && strcmp(s, "..");
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static const char *first_str(const cJSON *o, const char *const *keys, int n)
{
	for (int i = 0; i < n; i++) {
		const char *s = json_get_str(o, keys[i]);
		if (s)
			return s;
	}
	return NULL;
}

/* A profile entry: {"template"|"user_template"|"prompt_template", "system"|"system_prompt"}. */
static void add_profile(struct shardread_manifest *m, const char *name, const cJSON *o)
{
	static const char *const tk[] = {"template", "user_template", "prompt_template"};
	static const char *const sk[] = {"system", "system_prompt"};
	struct shardread_profile *p;
	const char *t = cJSON_IsString(o) ? o->valuestring : first_str(o, tk, 3);
	m->profiles = xrealloc(m->profiles, sizeof(*m->profiles) * (size_t)(m->nprofiles + 1));
	p = &m->profiles[m->nprofiles++];
	p->name = xstrdup(name ? name : "default");
	p->template_ = dup_or_null(t);
	p->system = cJSON_IsObject(o) ? dup_or_null(first_str(o, sk, 2)) : NULL;
}

int shardread_manifest_parse(struct shardread_manifest *m, const char *text, size_t n, const char *path,
			     struct derr *e)
{
	cJSON *root = NULL, *shards, *it, *profiles;
	double v;
	int rc = 0, i = 0;

	memset(m, 0, sizeof(*m));
	root = json_parse(text, n);
	if (!cJSON_IsObject(root)) {
		rc = derr_set(e, DERR_TRAIN_MANIFEST, "%s: not a JSON object", path);
		goto out;
	}
	/* Range first: converting an out-of-range double to int is undefined. */
	if (json_get_num(root, "format_version", &v) && json_get_num(root, "version", &v))
		v = 0;
	m->format_version = v >= -1e6 && v <= 1e6 ? (int)v : -1;
	m->ruleset = dup_or_null(json_get_str(root, "ruleset"));
	if (!m->ruleset)
		m->ruleset = dup_or_null(json_get_str(root, "ruleset_hash"));
	shards = cJSON_GetObjectItemCaseSensitive(root, "shards");
	if (!cJSON_IsArray(shards) || cJSON_GetArraySize(shards) == 0) {
		rc = derr_set(e, DERR_TRAIN_MANIFEST, "%s: no shards listed (an empty export?)", path);
		goto out;
	}
	m->shards = xcalloc((size_t)cJSON_GetArraySize(shards), sizeof(*m->shards));
	cJSON_ArrayForEach(it, shards)
	{
		struct shardread_shard *s = &m->shards[i];
		const char *file = json_get_str(it, "file"), *split = json_get_str(it, "split");
		const char *sha = json_get_str(it, "sha256");
		double cnt = -1, bytes = -1;
		if (!file || !split || !sha || strlen(sha) != 64) {
			rc = derr_set(e, DERR_TRAIN_MANIFEST,
				      "%s: shard %d lacks file, split or a 64-hex sha256", path, i);
			goto out;
		}
		if (!safe_name(file)) {
			rc = derr_set(e, DERR_TRAIN_MANIFEST, "%s: shard file \"%.200s\" is not a plain name",
				      path, file);
			goto out;
		}
		json_get_num(it, "samples", &cnt);
		json_get_num(it, "bytes", &bytes);
		s->file = xstrdup(file);
		s->split = xstrdup(split);
		s->samples = cnt >= 0 && cnt < 9e18 ? (long long)cnt : -1;
		s->bytes = bytes >= 0 && bytes < 9e18 ? (long long)bytes : -1;
		for (int k = 0; k < 64; k++)
			s->sha256[k] = (char)((sha[k] >= 'A' && sha[k] <= 'F') ? sha[k] - 'A' + 'a' : sha[k]);
		s->sha256[64] = '\0';
		m->nshards = ++i;
	}
	profiles = cJSON_GetObjectItemCaseSensitive(root, "profiles");
	if (cJSON_IsArray(profiles)) {
		cJSON_ArrayForEach(it, profiles) add_profile(m, json_get_str(it, "name"), it);
	} else if (cJSON_IsObject(profiles)) {
		cJSON_ArrayForEach(it, profiles) add_profile(m, it->string, it);
	}
out:
	cJSON_Delete(root);
	if (rc)
		shardread_manifest_release(m);
	return rc;
}

int shardread_manifest_load(struct shardread_manifest *m, const char *dir, struct derr *e)
{
	struct buf b = BUF_INIT(MANIFEST_MAX);
	struct derr re = {0};
	char path[4096];
	int rc;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if (read_small_file(path, MANIFEST_MAX, &b, &re)) {
		buf_release(&b);
		return derr_set(e, DERR_TRAIN_MANIFEST, "export manifest: %s", re.msg);
	}
	rc = shardread_manifest_parse(m, buf_str(&b), b.len, path, e);
	buf_release(&b);
	return rc;
}

void shardread_manifest_release(struct shardread_manifest *m)
{
	for (int i = 0; i < m->nshards; i++) {
		free(m->shards[i].file);
		free(m->shards[i].split);
	}
	for (int i = 0; i < m->nprofiles; i++) {
		free(m->profiles[i].name);
		free(m->profiles[i].template_);
		free(m->profiles[i].system);
	}
	free(m->shards);
	free(m->profiles);
	free(m->ruleset);
	memset(m, 0, sizeof(*m));
}

static int file_sha256(const char *path, char hex[65], long long *size, struct derr *e)
{
	struct sha256 s;
	FILE *f = fopen(path, "rb");
	static char tmp[1 << 16];
	size_t n;
	if (!f)
		return derr_set(e, DERR_IO, "open shard %s: %s", path, strerror(errno));
	sha256_init(&s);
	*size = 0;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		sha256_update(&s, tmp, n);
		*size += (long long)n;
	}
	if (ferror(f)) {
		fclose(f);
		return derr_set(e, DERR_IO, "read shard %s: %s", path, strerror(errno));
	}
	fclose(f);
	sha256_final_hex(&s, hex);
	return 0;
}

int shardread_verify(const struct shardread_manifest *m, const char *dir, const char *split,
		     long long *nsamples, struct derr *e)
{
	long long total = 0;
	for (int i = 0; i < m->nshards; i++) {
		const struct shardread_shard *s = &m->shards[i];
		char path[4096], hex[65];
		long long size = 0;
		int rc;
		if (split && strcmp(split, s->split))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, s->file);
		if ((rc = file_sha256(path, hex, &size, e)))
			return rc;
		if (strcmp(hex, s->sha256))
			return derr_set(
				e, DERR_TRAIN_CHECKSUM,
				"shard %s: SHA-256 mismatch: the manifest says %s, the file has %s; the "
				"export is corrupt or was modified, refusing to train on it",
				s->file, s->sha256, hex);
		if (s->bytes >= 0 && size != s->bytes)
			return derr_set(
				e, DERR_TRAIN_CHECKSUM,
				"shard %s: %lld bytes, the manifest says %lld; refusing to train on it",
				s->file, size, s->bytes);
		total += s->samples > 0 ? s->samples : 0;
	}
	if (nsamples)
		*nsamples = total;
	return 0;
}

struct shardread {
	const struct shardread_manifest *m;
	char *dir, *split;
	int shard; /* index of the open shard, -1 before the first */
	struct zst_reader *zr;
	struct buf line;
	char chunk[65536];
	size_t cpos, clen;
	long lineno;
};

int shardread_open(struct shardread **out, const struct shardread_manifest *m, const char *dir,
		   const char *split, struct derr *e)
{
	struct shardread *r = xcalloc(1, sizeof(*r));
	r->m = m;
	r->dir = xstrdup(dir);
	r->split = xstrdup(split);
	r->shard = -1;
	buf_init(&r->line, LINE_MAX_BYTES);
	*out = r;
	(void)e;
	return 0;
}

/* Open the next shard of the split; 0 when there is none left. */
static int next_shard(struct shardread *r, struct derr *e)
{
	if (r->zr) {
		zst_reader_close(r->zr);
		r->zr = NULL;
	}
	while (++r->shard < r->m->nshards) {
		const struct shardread_shard *s = &r->m->shards[r->shard];
		char path[4096];
		int rc;
		if (strcmp(s->split, r->split))
			continue;
		snprintf(path, sizeof(path), "%s/%s", r->dir, s->file);
		if ((rc = zst_reader_open(&r->zr, path, 0, e)) < 0)
			return rc;
		r->cpos = r->clen = 0;
		r->lineno = 0;
		return 1;
	}
	return 0;
}

int shardread_next(struct shardread *r, cJSON **rec, struct derr *e)
{
	*rec = NULL;
	for (;;) {
		if (!r->zr) {
			int rc = next_shard(r, e);
			if (rc <= 0)
				return rc;
		}
		/* one line: up to '\n' or the end of the shard */
		int got = 0, eol = 0;
		buf_reset(&r->line);
		while (!eol) {
			char *nl;
			size_t take;
			if (r->cpos == r->clen) {
				long n = zst_reader_read(r->zr, r->chunk, sizeof(r->chunk), e);
				if (n < 0)
					return derr_wrap(e, "shard %s", r->m->shards[r->shard].file);
				if (n == 0)
					break;
				r->cpos = 0;
				r->clen = (size_t)n;
			}
			nl = memchr(r->chunk + r->cpos, '\n', r->clen - r->cpos);
			take = nl ? (size_t)(nl - (r->chunk + r->cpos)) : r->clen - r->cpos;
			if (buf_append(&r->line, r->chunk + r->cpos, take))
				return derr_set(e, DERR_LIMIT, "shard %s line %ld: longer than %u bytes",
						r->m->shards[r->shard].file, r->lineno + 1, LINE_MAX_BYTES);
			r->cpos += take;
			got = 1;
			if (nl) {
				r->cpos++;
				eol = 1;
			}
		}
		if (!got) {
			zst_reader_close(r->zr);
			r->zr = NULL;
			continue;
		}
		r->lineno++;
		if (r->line.len == 0)
			continue;
		*rec = json_parse(r->line.data, r->line.len);
		if (!cJSON_IsObject(*rec)) {
			cJSON_Delete(*rec);
			*rec = NULL;
			return derr_set(e, DERR_PARSE, "shard %s line %ld: not a JSON object",
					r->m->shards[r->shard].file, r->lineno);
		}
		return 1;
	}
}

void shardread_close(struct shardread *r)
{
	if (!r)
		return;
	if (r->zr)
		zst_reader_close(r->zr);
	buf_release(&r->line);
	free(r->dir);
	free(r->split);
	free(r);
}

const struct shardread_profile *shardread_profile(const struct shardread_manifest *m, const char *name)
{
	for (int i = 0; i < m->nprofiles; i++)
		if (!name || !strcmp(m->profiles[i].name, name))
			return &m->profiles[i];
	return NULL;
}

int shardread_apply_template(const char *templ, const char *prompt, struct buf *out)
{
	static const char *const marks[] = {"{{prompt}}", "{prompt}"};
	const char *p = templ;
	if (!templ)
		return buf_puts(out, prompt);
	while (*p) {
		size_t k = 0;
		for (size_t i = 0; i < ARRAY_SIZE(marks) && !k; i++)
			if (!strncmp(p, marks[i], strlen(marks[i])))
				k = strlen(marks[i]);
		if (k) {
			if (buf_puts(out, prompt))
				return DERR_LIMIT;
			p += k;
		} else {
			if (buf_putc(out, *p))
				return DERR_LIMIT;
			p++;
		}
	}
	return 0;
}
