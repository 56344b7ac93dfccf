/* zst.c - libzstd wrapper (see zst.h). */
#include "zst.h"
#include "buf.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* A context kept for the next call is at most this big; a larger one (a
 * high level, a frame with a huge window) is freed after its call. */
#define ZST_CACHE_MAX_BYTES ((size_t)32 << 20)

/* One compression and one decompression context per thread, kept between
 * calls: making a context allocates and clears its tables, which costs
 * more than compressing a 4 KB body.  A caller takes the context (the slot
 * is then empty, so nested use on one thread gets a fresh one) and gives
 * it back when done.  Thread exit frees them. */
struct zst_cache {
	ZSTD_CCtx *cc;
	ZSTD_DCtx *dc;
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_ok;

static void cache_free(void *p)
{
	struct zst_cache *c = p;
	ZSTD_freeCCtx(c->cc);
	ZSTD_freeDCtx(c->dc);
	free(c);
}

static void cache_init(void)
{
	cache_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

static struct zst_cache *cache_get(void)
{
	struct zst_cache *c;
	pthread_once(&cache_once, cache_init);
	if (!cache_ok)
		return NULL;
	c = pthread_getspecific(cache_key);
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		if (pthread_setspecific(cache_key, c) != 0) {
			free(c);
			return NULL;
		}
	}
	return c;
}

/* A compression context with default parameters. */
static ZSTD_CCtx *cctx_take(void)
{
	struct zst_cache *c = cache_get();
	ZSTD_CCtx *cc = c ? c->cc : NULL;
	if (!cc)
		return ZSTD_createCCtx();
	c->cc = NULL;
	ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
	return cc;
}

static void cctx_give(ZSTD_CCtx *cc)
{
	struct zst_cache *c;
	if (!cc)
		return;
	c = ZSTD_sizeof_CCtx(cc) <= ZST_CACHE_MAX_BYTES ? cache_get() : NULL;
	if (c && !c->cc)
		c->cc = cc;
	else
		ZSTD_freeCCtx(cc);
}

/* A decompression context ready for a new frame. */
static ZSTD_DCtx *dctx_take(void)
{
	struct zst_cache *c = cache_get();
	ZSTD_DCtx *dc = c ? c->dc : NULL;
	if (!dc)
		return ZSTD_createDCtx();
	c->dc = NULL;
	ZSTD_DCtx_reset(dc, ZSTD_reset_session_and_parameters);
	return dc;
}

static void dctx_give(ZSTD_DCtx *dc)
{
	struct zst_cache *c;
	if (!dc)
		return;
	c = ZSTD_sizeof_DCtx(dc) <= ZST_CACHE_MAX_BYTES ? cache_get() : NULL;
	if (c && !c->dc)
		c->dc = dc;
	else
		ZSTD_freeDCtx(dc);
}

int zst_is_frame(const void *p, size_t n)
{
	static const unsigned char magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
	return n >= 4 && memcmp(p, magic, 4) == 0;
}

int zst_compress(const void *src, size_t n, int level, struct buf *out, struct derr *e)
{
	size_t bound = ZSTD_compressBound(n), r;
	ZSTD_CCtx *cc;

	if (buf_grow(out, bound))
		return derr_set(e, DERR_LIMIT, "compressed output over its cap");
	if (!(cc = cctx_take()))
		return derr_set(e, DERR_ZSTD, "zstd: cannot create context");
	/* The same bytes as ZSTD_compress, which makes a context per call. */
	r = ZSTD_compressCCtx(cc, out->data + out->len, bound, src, n, level);
	cctx_give(cc);
	if (ZSTD_isError(r))
		return derr_set(e, DERR_ZSTD, "zstd: %s", ZSTD_getErrorName(r));
	out->len += r;
	out->data[out->len] = '\0';
	return 0;
}

int zst_decompress(const void *src, size_t n, size_t max, struct buf *out, struct derr *e)
{
	ZSTD_DCtx *ds = dctx_take();
	ZSTD_inBuffer in = {src, n, 0};
	size_t start = out->len, r = 1;
	int rc = 0;
	char tmp[16384];

	if (!ds)
		return derr_set(e, DERR_ZSTD, "zstd: cannot create stream");
	while (in.pos < in.size || r != 0) {
		ZSTD_outBuffer o = {tmp, sizeof(tmp), 0};
		size_t before = in.pos;
		r = ZSTD_decompressStream(ds, &o, &in);
		if (ZSTD_isError(r)) {
			rc = derr_set(e, DERR_CORRUPT, "zstd: %s", ZSTD_getErrorName(r));
			goto out;
		}
		if (out->len - start + o.pos > max || buf_append(out, tmp, o.pos)) {
			rc = derr_set(e, DERR_LIMIT, "decompressed size over the %zu-byte cap", max);
			goto out;
		}
		if (o.pos == 0 && in.pos == before) {
			if (r != 0)
				rc = derr_set(e, DERR_CORRUPT, "zstd: truncated frame");
			break;
		}
	}
out:
	dctx_give(ds);
	if (rc) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
	}
	return rc;
}

struct zst_reader {
	FILE *f;
	ZSTD_DCtx *ds; /* NULL: plain file */
	unsigned char *in;
	size_t in_cap;
	ZSTD_inBuffer ib;
	unsigned long long total, max_total;
	size_t last_ret;
	int eof;
};

int zst_reader_open(struct zst_reader **out, const char *path, unsigned long long max_total, struct derr *e)
{
	struct zst_reader *r;
	FILE *f = fopen(path, "rb");

	*out = NULL;
	if (!f)
		return derr_set(e, errno == ENOENT ? DERR_NOTFOUND : DERR_IO, "%s: %s", path,
				strerror(errno));
	r = xcalloc(1, sizeof(*r));
	r->f = f;
	r->max_total = max_total;
	r->in_cap = ZSTD_DStreamInSize();
	r->in = xmalloc(r->in_cap);
	r->ib.src = r->in;
	r->ib.size = fread(r->in, 1, r->in_cap, f);
	r->ib.pos = 0;
	if (ferror(f)) {
		zst_reader_close(r);
		return derr_set(e, DERR_IO, "%s: read error", path);
	}
	if (zst_is_frame(r->in, r->ib.size) && !(r->ds = dctx_take())) {
		zst_reader_close(r);
		return derr_set(e, DERR_ZSTD, "zstd: cannot create stream");
	}
	*out = r;
	return 0;
}

static int refill(struct zst_reader *r, struct derr *e)
{
	if (r->ib.pos < r->ib.size || r->eof)
		return 0;
	r->ib.size = fread(r->in, 1, r->in_cap, r->f);
	r->ib.pos = 0;
	if (ferror(r->f))
		return derr_set(e, DERR_IO, "read error");
	if (r->ib.size == 0)
		r->eof = 1;
	return 0;
}

long zst_reader_read(struct zst_reader *r, void *dst, size_t n, struct derr *e)
{
	size_t got = 0;
	int rc;

	if (r->max_total && n > r->max_total - r->total + 1)
		n = (size_t)(r->max_total - r->total + 1);
	while (got == 0 && n > 0) {
		if ((rc = refill(r, e)))
			return rc;
		if (!r->ds) {
			size_t take = r->ib.size - r->ib.pos;
			if (take > n)
				take = n;
			memcpy(dst, r->in + r->ib.pos, take);
			r->ib.pos += take;
			got = take;
			if (r->eof)
				break;
		} else {
			ZSTD_outBuffer o = {dst, n, 0};
			if (r->eof) {
				if (r->last_ret != 0)
					return derr_set(e, DERR_CORRUPT, "zstd: truncated file");
				break;
			}
			r->last_ret = ZSTD_decompressStream(r->ds, &o, &r->ib);
			if (ZSTD_isError(r->last_ret))
				return derr_set(e, DERR_CORRUPT, "zstd: %s", ZSTD_getErrorName(r->last_ret));
			got = o.pos;
		}
	}
	r->total += got;
	if (r->max_total && r->total > r->max_total)
		return derr_set(e, DERR_LIMIT, "decompressed size over the %llu-byte cap", r->max_total);
	return (long)got;
}

void zst_reader_close(struct zst_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	dctx_give(r->ds);
	free(r->in);
	free(r);
}

struct zst_writer {
	FILE *f;
	ZSTD_CCtx *cc;
	unsigned char *out;
	size_t out_cap;
};

int zst_writer_new(struct zst_writer **out, FILE *f, int level, struct derr *e)
{
	struct zst_writer *w = xcalloc(1, sizeof(*w));

	w->f = f;
	w->cc = cctx_take();
	if (!w->cc) {
		free(w);
		return derr_set(e, DERR_ZSTD, "zstd: cannot create context");
	}
	ZSTD_CCtx_setParameter(w->cc, ZSTD_c_compressionLevel, level);
	ZSTD_CCtx_setParameter(w->cc, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(w->cc, ZSTD_c_nbWorkers, 0);
	w->out_cap = ZSTD_CStreamOutSize();
	w->out = xmalloc(w->out_cap);
	*out = w;
	return 0;
}

static int writer_pump(struct zst_writer *w, ZSTD_inBuffer *in, ZSTD_EndDirective mode, struct derr *e)
{
	size_t r;
	do {
		ZSTD_outBuffer o = {w->out, w->out_cap, 0};
		r = ZSTD_compressStream2(w->cc, &o, in, mode);
		if (ZSTD_isError(r))
			return derr_set(e, DERR_ZSTD, "zstd: %s", ZSTD_getErrorName(r));
		if (o.pos && fwrite(w->out, 1, o.pos, w->f) != o.pos)
			return derr_set(e, errno == ENOSPC ? DERR_FULL : DERR_IO, "write: %s",
					strerror(errno));
	} while (mode == ZSTD_e_end ? r != 0 : in->pos < in->size);
	return 0;
}

int zst_writer_write(struct zst_writer *w, const void *p, size_t n, struct derr *e)
{
	ZSTD_inBuffer in = {p, n, 0};
	return writer_pump(w, &in, ZSTD_e_continue, e);
}

int zst_writer_finish(struct zst_writer *w, struct derr *e)
{
	ZSTD_inBuffer in = {NULL, 0, 0};
	int rc = writer_pump(w, &in, ZSTD_e_end, e);
	if (!rc && fflush(w->f) != 0)
		rc = derr_set(e, errno == ENOSPC ? DERR_FULL : DERR_IO, "flush: %s", strerror(errno));
	zst_writer_free(w);
	return rc;
}

void zst_writer_free(struct zst_writer *w)
{
	if (!w)
		return;
	cctx_give(w->cc);
	free(w->out);
	free(w);
}
