/*
 * zst.h - the only module that touches libzstd: one-shot compression of raw
 * bodies, bounded decompression, and streaming file reading/writing for
 * .jsonl.zst inputs and shards.  Decompression is always bounded: a frame
 * that would expand past the caller's cap fails with DERR_LIMIT.
 */
#ifndef DISTILL_ZST_H
#define DISTILL_ZST_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

struct buf;

/* Compress src into out (appended).  0 or DERR_ZSTD / DERR_LIMIT. */
int zst_compress(const void *src, size_t n, int level, struct buf *out, struct derr *e);

/* Decompress a whole frame (or frames) into out (appended), never growing
 * out past max bytes of output: DERR_LIMIT then.  DERR_CORRUPT on bad data. */
int zst_decompress(const void *src, size_t n, size_t max, struct buf *out, struct derr *e);

/* Does this buffer start with the zstd frame magic? */
int zst_is_frame(const void *p, size_t n);

/* Streaming reader over a file: transparently decompresses when the file
 * starts with the zstd magic, else passes bytes through.  max_total bounds
 * the decompressed bytes (0: unbounded). */
struct zst_reader;
int zst_reader_open(struct zst_reader **out, const char *path, unsigned long long max_total, struct derr *e);
/* Read up to n bytes: returns bytes read (0 at end) or a negative code. */
long zst_reader_read(struct zst_reader *r, void *dst, size_t n, struct derr *e);
void zst_reader_close(struct zst_reader *r);

/* Streaming writer: compresses to f (not closed) with the frame checksum on,
 * single-threaded so bytes do not depend on the machine. */
struct zst_writer;
int zst_writer_new(struct zst_writer **out, FILE *f, int level, struct derr *e);
int zst_writer_write(struct zst_writer *w, const void *p, size_t n, struct derr *e);
/* End the frame and flush; the writer is freed either way. */
int zst_writer_finish(struct zst_writer *w, struct derr *e);
void zst_writer_free(struct zst_writer *w);

#endif
