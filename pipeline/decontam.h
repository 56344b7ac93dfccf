/*
 * decontam.h - decontamination of prompts against benchmark problems
 * (DESIGN §6): a prompt that shares a word n-gram with a benchmark problem
 * is marked in `contamination` with the benchmark, the problem and the
 * n-gram.  Marks, never deletions.
 *
 * Words are the tokens of minhash.h without symbols: runs of letters,
 * digits and non-ASCII characters, ASCII lower-cased, so punctuation and
 * spacing do not matter and numbers do.  n = 8 by default (as open-r1).  A
 * text with fewer than n words has no n-gram: it is compared whole, i.e. it
 * matches a text with exactly the same words.
 *
 * Incremental: decontam_state remembers, per benchmark name, the file's
 * SHA-256, n and the last prompt id checked; a rerun with the same file and
 * n checks only newer prompts, another file or n re-checks every prompt
 * (replacing that benchmark's marks).
 */
#ifndef DISTILL_DECONTAM_H
#define DISTILL_DECONTAM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct db;
struct decontam;

#define DECONTAM_NGRAM_DEFAULT 8
#define DECONTAM_MAX_BENCHMARKS 64

/* A new, empty set of benchmarks for n-grams of n words (1..64). */
struct decontam *decontam_new(int n);
void decontam_free(struct decontam *d); /* NULL is fine */

/* Add a benchmark by name (sha256: its content identity, 64 hex chars).
 * Returns its index, or DERR_EXISTS for a name already added, DERR_LIMIT
 * past DECONTAM_MAX_BENCHMARKS. */
int decontam_add_benchmark(struct decontam *d, const char *name, const char *sha256, struct derr *e);

/* Add one problem text to benchmark b; item names it in the marks (copied). */
void decontam_add_item(struct decontam *d, int b, const char *item, const char *text, size_t n);

struct decontam_file_report {
	long records;  /* records read */
	long problems; /* with a problem text */
	long rejected; /* unparsable, too long, or without a problem field */
	long first_bad_line;
};

/* Load a benchmark file (JSONL or a JSON array, .zst allowed) with the
 * problem field auto-detected (fields.h: prompt, problem, question).  Its
 * name is the file name without directories and the .jsonl/.json/.zst
 * extensions, its item names the record's "id", "unique_id" or "task_id",
 * else "line N".  Bad records are counted in rep and skipped.  Returns 0,
 * DERR_EXISTS (name already added), DERR_BENCH_EMPTY (no problem at all), or
 * an I/O error. */
int decontam_load_file(struct decontam *d, const char *path, struct decontam_file_report *rep,
		       struct derr *e);

/* Match one text against benchmark b: 1 and the item and the n-gram (words
 * joined by single spaces, lower-cased) when some n-gram of the text (the
 * first in text order) or the whole short text is in b, else 0.  The
 * returned strings are valid until the next call. */
int decontam_match(struct decontam *d, int b, const char *text, size_t n, const char **item,
		   const char **ngram);

struct decontam_bench_report {
	char name[128];
	long items;
	int64_t checked;      /* prompts checked this run */
	int64_t marked;	      /* prompts newly marked this run */
	int64_t contaminated; /* prompts marked for this benchmark, after the run */
	int rechecked;	      /* the file or n changed: every prompt was checked */
};

/* Check the prompts against every benchmark added and record the marks;
 * reports[] (one per benchmark, in the order added) is filled.  One write
 * transaction at the end.  Returns 0 or a DERR_* from the database. */
int decontam_run(struct db *db, struct decontam *d, struct decontam_bench_report *reports, struct derr *e);

int decontam_count(const struct decontam *d);

#endif
