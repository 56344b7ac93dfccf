/* test_shardread.c - export manifest parsing, shard checksums, record streaming. */
#include "buf.h"
#include "shardread.h"
#include "t.h"
#include "train_fixture.h"

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	fputs(text, f);
	fclose(f);
}

static void test_good(const char *dir)
{
	struct shardread_manifest m;
	struct shardread *r = NULL;
	struct derr e = {0};
	long long n = 0;
	long count = 0;
	cJSON *rec;
	int rc;
	const struct shardread_profile *p;

	T_OK(shardread_manifest_load(&m, dir, &e), &e);
	T_EQ_INT(m.format_version, 1);
	T_EQ_INT(m.nshards, 2);
	T_EQ_STR(m.shards[1].split, "val");
	T_OK(shardread_verify(&m, dir, "train", &n, &e), &e);
	T_EQ_INT(n, 40);
	T_OK(shardread_open(&r, &m, dir, "train", &e), &e);
	while ((rc = shardread_next(r, &rec, &e)) == 1) {
		T_TRUE(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(rec, "messages")));
		cJSON_Delete(rec);
		count++;
	}
	T_EQ_INT(rc, 0);
	T_EQ_INT(count, 40);
	shardread_close(r);
	p = shardread_profile(&m, NULL);
	T_TRUE(p != NULL);
	T_EQ_STR(p->template_, "{prompt}");
	T_TRUE(shardread_profile(&m, "nope") == NULL);
	shardread_manifest_release(&m);
}

static void test_corrupt_shard(const char *dir)
{
	struct shardread_manifest m;
	struct derr e = {0};
	char path[4096];
	FILE *f;
	int c;
	T_OK(shardread_manifest_load(&m, dir, &e), &e);
	snprintf(path, sizeof(path), "%s/%s", dir, m.shards[0].file);
	f = fopen(path, "r+b");
	fseek(f, 40, SEEK_SET);
	c = fgetc(f);
	fseek(f, 40, SEEK_SET);
	fputc(c ^ 0x20, f);
	fclose(f);
	T_EQ_INT(shardread_verify(&m, dir, NULL, NULL, &e), DERR_TRAIN_CHECKSUM);
	T_TRUE(strstr(e.msg, "SHA-256 mismatch") != NULL);
	T_TRUE(strstr(e.msg, m.shards[0].file) != NULL);
	shardread_manifest_release(&m);
}

static void test_bad_manifests(const char *dir)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"{not json", "not a JSON object"},
		{"{\"format_version\":1}", "no shards listed"},
		{"{\"shards\":[{\"file\":\"a\",\"split\":\"train\"}]}",
		 "lacks file, split or a 64-hex sha256"},
		{"{\"shards\":[{\"file\":\"../x\",\"split\":\"train\",\"sha256\":"
		 "\"0000000000000000000000000000000000000000000000000000000000000000\"}]}",
		 "not a plain name"},
	};
	struct shardread_manifest m;
	struct derr e = {0};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(dir, "manifest.json", cases[i].text);
		T_EQ_INT(shardread_manifest_load(&m, dir, &e), DERR_TRAIN_MANIFEST);
		if (!strstr(e.msg, cases[i].want))
			fprintf(stderr, "case %zu: %s\n", i, e.msg);
		T_TRUE(strstr(e.msg, cases[i].want) != NULL);
	}
	T_EQ_INT(shardread_manifest_load(&m, "/nonexistent-dir", &e), DERR_TRAIN_MANIFEST);
	T_TRUE(strstr(e.msg, "manifest.json") != NULL);
}

static void test_template(void)
{
	struct buf b = BUF_INIT(1024);
	T_OK(shardread_apply_template("Q: {prompt}\nA: {{prompt}}!", "x", &b), &(struct derr){0});
	T_EQ_STR(buf_str(&b), "Q: x\nA: x!");
	buf_reset(&b);
	T_OK(shardread_apply_template(NULL, "plain", &b), &(struct derr){0});
	T_EQ_STR(buf_str(&b), "plain");
	buf_release(&b);
}

int main(void)
{
	char dir[512], cmd[600];
	t_tmpdir(dir, sizeof(dir));
	T_EQ_INT(fixture_export(dir, 40, 8, 7, 100, 999, 0), 0);
	test_good(dir);
	test_corrupt_shard(dir);
	test_bad_manifests(dir);
	test_template();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	T_EQ_INT(system(cmd), 0);
	return t_done();
}
