/* cmd_reextract.c - `distill reextract`: re-run the answer module's
 * reference extraction over every stored prompt (DESIGN §13: raw references
 * live in prompt_sources, the clean one in prompts.reference), so a better
 * extractor reaches prompts ingested before it. */
#include "answer.h"
#include "buf.h"
#include "cli.h"
#include "cmd.h"
#include "db.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char reextract_usage[] =
	"usage: distill reextract [--db PATH] [--dry-run]\n\n"
	"Extract the clean reference of every prompt again from its first stored raw\n"
	"reference (GSM8K \"#### n\", the last \\boxed{} of a solution, $...$ stripped)\n"
	"and update prompts.reference where it changed.  A raw reference that yields\n"
	"nothing leaves the prompt without a reference.  Prints the counts.\n\n"
	"  --db PATH      database file (default $DISTILL_DB or distill.db)\n"
	"  --dry-run      count the changes, write nothing\n";

/* One page of prompts at a time: the scan never holds the whole table. */
#define REEXTRACT_PAGE 1000

static const char SQL_REEXTRACT_PAGE[] =
	"SELECT p.id, p.reference,"
	" (SELECT s.raw_reference FROM prompt_sources s WHERE s.prompt_id = p.id"
	"  AND s.raw_reference IS NOT NULL ORDER BY s.id LIMIT 1)"
	" FROM prompts p WHERE p.id > ?1 ORDER BY p.id LIMIT ?2";

static const char SQL_REEXTRACT_SET[] = "UPDATE prompts SET reference = ?1 WHERE id = ?2";

struct reextract_row {
	int64_t id;
	char *clean; /* NULL: no reference */
	int changed;
};

int cmd_reextract(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_OPT_DB, CLI_OPT_HELP, {"dry-run", no_argument, NULL, 'n'}, {0, 0, 0, 0}};
	const char *dbpath = NULL;
	struct derr e = {0};
	struct db *db = NULL;
	struct db_stmt *sel = NULL, *upd = NULL;
	struct reextract_row *rows = xcalloc(REEXTRACT_PAGE, sizeof(*rows));
	struct buf clean = BUF_INIT(1 << 20);
	int64_t last = 0, scanned = 0, with_raw = 0, changed = 0, unparsed = 0;
	int dry = 0, c, rc = EXIT_ERROR;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dbpath = optarg; break;
		case 'n': dry = 1; break;
		case 'h':
			fputs(reextract_usage, stdout);
			free(rows);
			return EXIT_OK;
		default: free(rows); return cli_usage_error("reextract", "bad option");
		}
	}
	if (optind < argc) {
		free(rows);
		return cli_usage_error("reextract", "unexpected argument '%s'", argv[optind]);
	}
	db = cli_open_db(cli_db_path(dbpath), 0);
	if (!db) {
		free(rows);
		return EXIT_ERROR;
	}
	if (db_prepare(db, SQL_REEXTRACT_PAGE, &sel, &e) || db_prepare(db, SQL_REEXTRACT_SET, &upd, &e))
		goto fail;
	for (;;) {
		int n = 0, st;
		db_reset(sel);
		db_bind_int64(sel, 1, last);
		db_bind_int64(sel, 2, REEXTRACT_PAGE);
		while ((st = db_step(sel, &e)) == 1) {
			struct reextract_row *r = &rows[n++];
			const char *old = db_col_text(sel, 1), *raw = db_col_text(sel, 2);
			r->id = db_col_int64(sel, 0);
			r->clean = NULL;
			scanned++;
			if (raw) {
				with_raw++;
				if (answer_extract_reference(raw, strlen(raw), &clean) == 0)
					r->clean = xstrdup(buf_str(&clean));
				else
					unparsed++;
			}
			r->changed = (old == NULL) != (r->clean == NULL) ||
				     (old && r->clean && strcmp(old, r->clean));
			changed += r->changed;
			last = r->id;
		}
		db_reset(sel);
		if (st < 0)
			goto fail;
		if (n == 0)
			break;
		if (!dry) {
			if (db_begin_immediate(db, &e))
				goto fail;
			for (int k = 0; k < n; k++) {
				if (!rows[k].changed)
					continue;
				db_reset(upd);
				db_bind_text(upd, 1, rows[k].clean, -1);
				db_bind_int64(upd, 2, rows[k].id);
				if (db_step(upd, &e) < 0) {
					db_rollback(db);
					goto fail;
				}
			}
			if (db_commit(db, &e))
				goto fail;
		}
		for (int k = 0; k < n; k++) {
			free(rows[k].clean);
			rows[k].clean = NULL;
		}
	}
	printf("%lld prompts, %lld with a raw reference, %lld %s, %lld unparsed\n", (long long)scanned,
	       (long long)with_raw, (long long)changed, dry ? "would change" : "changed",
	       (long long)unparsed);
	rc = EXIT_OK;
	goto out;
fail:
	rc = cli_fail(&e);
out:
	for (int k = 0; k < REEXTRACT_PAGE; k++)
		free(rows[k].clean);
	free(rows);
	buf_release(&clean);
	db_finalize(sel);
	db_finalize(upd);
	db_close(db);
	return rc;
}
