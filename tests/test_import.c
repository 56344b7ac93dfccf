/* test_import.c - distill import-traces: records become done jobs with imported
 * attempts, split like teacher content; bad records reported by line; a second
 * import adds nothing; the real trace files import whole. */
#include "t.h"

#include "db.h"
#include "import.h"

static long bad_lines[16];
static int nbad;

static void on_bad(void *ctx, long line, const char *reason)
{
	(void)ctx;
	(void)reason;
	if (nbad < 16)
		bad_lines[nbad++] = line;
}

static struct db *fresh(const char *name)
{
	static char dir[256];
	char path[400];
	struct db *db = NULL;
	struct derr e = {0};
	if (!dir[0])
		t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s.db", dir, name);
	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	return db;
}

static int64_t q(struct db *db, const char *sql)
{
	struct derr e = {0};
	int64_t v = -1;
	T_OK(db_query_int64(db, sql, &v, &e), &e);
	return v;
}

static void test_small(void)
{
	char path[4096];
	struct db *db = fresh("small");
	struct import_report rep;
	struct derr e = {0};

	t_src("tests/data/import_traces.jsonl", path, sizeof(path));
	T_OK(import_traces(db, path, "imported", on_bad, NULL, &rep, &e), &e);
	T_EQ_INT(rep.records, 7);
	T_EQ_INT(rep.rejected, 2);
	T_EQ_INT(nbad, 2);
	T_EQ_INT(bad_lines[0], 3);
	T_EQ_INT(bad_lines[1], 4);
	/* t-7 is t-1's prompt up to white space with the same response: already there
	 * (its occurrence is still recorded, as ingest records every occurrence). */
	T_EQ_INT(rep.imported, 4);
	T_EQ_INT(rep.already, 1);
	T_EQ_INT(rep.new_prompts, 3);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs WHERE state = 'done'"), 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces"), 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM attempts WHERE imported = 1"), 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM jobs WHERE state != 'done'"), 0);
	/* Two samples of "What is 2 + 2?": indexes 0 and 1. */
	T_EQ_INT(q(db, "SELECT MAX(sample_index) FROM jobs"), 1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces WHERE placement = 'close_tag_only'"), 2);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces WHERE placement = 'think_tags' AND reasoning = '3 and 3 "
		       "make 6.' "
		       "AND answer = '\\boxed{6}'"),
		 1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces WHERE placement = 'none' AND answer = 'Blue.'"), 1);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces t JOIN jobs j ON j.id = t.job_id JOIN profiles p "
		       "ON p.id = j.profile_id WHERE p.name = 'imported' AND p.hash IS NULL"),
		 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM prompt_sources WHERE source = 'import_traces'"), 5);
	/* Again: nothing new. */
	nbad = 0;
	T_OK(import_traces(db, path, "imported", on_bad, NULL, &rep, &e), &e);
	T_EQ_INT(rep.imported, 0);
	T_EQ_INT(rep.already, 5);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces"), 4);
	/* Another profile is another set of jobs. */
	T_OK(import_traces(db, path, "other", on_bad, NULL, &rep, &e), &e);
	T_EQ_INT(rep.imported, 4);
	T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces"), 8);
	db_close(db);
}

static void test_real(void)
{
	static const struct {
		const char *file;
		int records;
		const char *placement;
	} files[] = {
		{"traces_r1_gsm8k.jsonl", 582, "close_tag_only"},
		{"traces_qwq32b_gsm8k_part1.jsonl", 291, "close_tag_only"},
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[4096], sql[256];
		struct db *db;
		struct import_report rep;
		struct derr e = {0};
		if (!t_shared_path(files[i].file, path, sizeof(path)))
			continue;
		db = fresh(files[i].file);
		T_OK(import_traces(db, path, "teacher", NULL, NULL, &rep, &e), &e);
		T_EQ_INT(rep.records, files[i].records);
		T_EQ_INT(rep.rejected, 0);
		T_EQ_INT(rep.imported + rep.already, files[i].records);
		T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces"), rep.imported);
		snprintf(sql, sizeof(sql),
			 "SELECT COUNT(*) FROM traces WHERE placement = '%s' AND length(reasoning) > 0",
			 files[i].placement);
		/* Nearly all carry their reasoning before a lone </think>. */
		T_TRUE(q(db, sql) * 100 >= rep.imported * 95);
		T_EQ_INT(q(db, "SELECT COUNT(*) FROM traces WHERE reasoning LIKE '%</think>%'"), 0);
		db_close(db);
	}
}

int main(void)
{
	test_small();
	test_real();
	return t_done();
}
