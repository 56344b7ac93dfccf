/*
 * report.h - the dataset drawn as one self-contained HTML page (inline SVG
 * and CSS, no script, no network).  A read-only stage: it reads the
 * database (and optionally a trainer log) and writes one file, atomically.
 * Every figure on the page carries a data-k="name" attribute so tests and
 * scripts can compare it with the SQL that produced it.
 */
#ifndef DISTILL_REPORT_H
#define DISTILL_REPORT_H

#include "err.h"

struct db;

struct report_options {
	const char *out_path;  /* where the HTML goes (written aside, then renamed) */
	const char *train_log; /* optional distill-train log for the loss curve */
	const char *title;     /* page title; NULL: "distill report" */
};

/* Summary numbers, also returned to the caller for its one-line message. */
struct report_summary {
	long long prompts, traces, accepted, exported;
};

int report_write(struct db *db, const struct report_options *o, struct report_summary *sum, struct derr *e);

#endif
