/*
 * jsonl.h - streaming reader of record files: JSON Lines (plain or .zst) and
 * JSON arrays (split at the top level, one element at a time), so no input is
 * ever held whole in memory.  A parser of untrusted bytes (fuzzed).
 * Records are handed out raw; parsing them (json.h) is the caller's, so a
 * bad record is reported with its line and skipped, never fatal.
 */
#ifndef DISTILL_JSONL_H
#define DISTILL_JSONL_H

#include <stddef.h>

#include "err.h"

struct jsonl_reader;

struct jsonl_record {
	const char *data; /* one JSON value, NUL-terminated; valid until the next call */
	size_t len;
	long line;    /* 1-based line where the record starts */
	int too_long; /* over max_record: data is NULL, the record was skipped */
};

/* Open path (".zst" or zstd magic: decompressed, bounded).  max_record caps
 * one record's bytes. */
int jsonl_open(struct jsonl_reader **out, const char *path, size_t max_record, struct derr *e);

/* 1: *rec holds the next record (or a too_long marker); 0: end of input;
 * <0: an I/O or decompression error (the rest of the file is unreadable). */
int jsonl_next(struct jsonl_reader *r, struct jsonl_record *rec, struct derr *e);

void jsonl_close(struct jsonl_reader *r);

#endif
