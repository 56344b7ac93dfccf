/* test_tconfig.c - the teacher config parser and profile binding. */
#include "t.h"

#include "db.h"
#include "tconfig.h"

/* Configs that must be refused, and a piece of the message each must give. */
static const struct {
	const char *json, *msg;
} bad[] = {
	{"", "not valid JSON"},
	{"{}", "endpoints"},
	{"{\"endpoints\":[]}", "endpoints"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\"}],\"bogus\":1}", "\"bogus\""},
	{"{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\",\"api_key\":\"sk-1\"}]}",
	 "\"api_key\" in endpoints[0]"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/v1\"}]}", "\"model\" is required"},
	{"{\"endpoints\":[{\"base_url\":\"ftp://x\",\"model\":\"m\"}]}", "base_url"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\",\"max_concurrency\":0}]}",
	 "max_concurrency"},
	{"{\"endpoints\":[{\"name\":\"a\",\"base_url\":\"http://x/v1\",\"model\":\"m\"},"
	 "{\"name\":\"a\",\"base_url\":\"http://y/v1\",\"model\":\"m\"}]}",
	 "used twice"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\"}],\"profiles\":{\"p\":{\"temp\":1}}}",
	 "\"temp\" in profiles.p"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/"
	 "v1\",\"model\":\"m\"}],\"profiles\":{\"p\":{\"template\":\"x\"}}}",
	 "{prompt}"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\"}],\"timeouts\":{\"total\":\"soon\"}}",
	 "duration"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/"
	 "v1\",\"model\":\"m\"}],\"budget\":{\"max_cost_usd\":{\"daily\":1}}}",
	 "\"daily\" in budget.max_cost_usd"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\",\"stream\":\"yes\"}]}", "stream"},
	{"{\"endpoints\":[{\"base_url\":\"http://x/"
	 "v1\",\"model\":\"m\"}],\"max_attempts\":2,\"max_attempts\":3}",
	 "appears twice"},
};

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tconfig c;
		struct derr e = {0};
		T_EQ_INT(tconfig_parse(bad[i].json, strlen(bad[i].json), NULL, &c, &e), DERR_CONFIG);
		if (!strstr(e.msg, bad[i].msg))
			T_FAIL_AT("case %zu: message \"%s\" lacks \"%s\"", i, e.msg, bad[i].msg);
	}
}

static void test_full(void)
{
	static const char json[] =
		"{\"endpoints\":[{\"name\":\"a\",\"base_url\":\"http://h:1/"
		"v1\",\"model\":\"m\",\"api_key_env\":\"K\","
		"\"max_concurrency\":8,\"requests_per_minute\":600,\"tokens_per_minute\":1e6,\"weight\":3,"
		"\"stream\":false,\"price_per_mtok_in\":0.55,\"price_per_mtok_out\":2.19},"
		"{\"name\":\"b\",\"base_url\":\"http://h:2/v1\",\"model\":\"m\"}],"
		"\"profiles\":{\"r1\":{\"system\":\"s\",\"temperature\":0.7,\"max_tokens\":512,\"seed\":3},"
		"\"plain\":{\"template\":\"{prompt}\"}},"
		"\"timeouts\":{\"connect\":\"2s\",\"total\":90,\"stall\":\"500ms\",\"grace\":\"1s\"},"
		"\"max_attempts\":3,\"max_response_bytes\":65536,"
		"\"budget\":{\"max_completion_tokens\":{\"per_run\":1000},\"max_cost_usd\":{\"total\":1.5}}}";
	struct tconfig c;
	struct derr e = {0};

	T_OK(tconfig_parse(json, strlen(json), NULL, &c, &e), &e);
	T_EQ_INT(c.nendpoints, 2);
	T_EQ_STR(c.endpoints[0].api_key_env, "K");
	T_EQ_INT(c.endpoints[0].max_concurrency, 8);
	T_EQ_INT(c.endpoints[0].stream, 0);
	T_EQ_INT(c.endpoints[1].stream, 1);
	T_EQ_DBL(c.endpoints[0].weight, 3, 0);
	T_EQ_DBL(c.endpoints[0].price_per_mtok_out, 2.19, 0);
	T_EQ_INT(c.nprofiles, 2);
	T_EQ_STR(c.profiles[0].name, "r1");
	T_EQ_STR(c.profiles[0].model, "m");
	T_EQ_DBL(c.profiles[0].temperature, 0.7, 0);
	T_EQ_DBL(c.profiles[1].top_p, 0.95, 0);
	T_EQ_STR(c.profiles[1].template, "{prompt}");
	T_EQ_STR(tconfig_profile(&c, "r1")->system, "s");
	T_EQ_STR(c.profiles[0].template, TEACHER_DEFAULT_TEMPLATE);
	T_EQ_INT(c.connect_ms, 2000);
	T_EQ_INT(c.total_ms, 90000);
	T_EQ_INT(c.stall_ms, 500);
	T_EQ_INT(c.lease_ms, 150000);
	T_EQ_INT(c.max_attempts, 3);
	T_EQ_INT(c.max_tokens_run, 1000);
	T_EQ_INT(c.max_tokens_total, -1);
	T_EQ_INT(c.max_cost_total, 1500000);
	tconfig_release(&c);

	T_OK(tconfig_default("http://127.0.0.1:9/v1", &c, &e), &e);
	T_EQ_STR(c.endpoints[0].base_url, "http://127.0.0.1:9/v1");
	T_EQ_STR(c.profiles[0].name, "default");
	T_EQ_INT(c.endpoints[0].stream, 1);
	tconfig_release(&c);
}

/* The shipped examples parse. */
static void test_examples(void)
{
	static const char *const files[] = {"examples/teacher-sim.json", "examples/teacher-vllm.json"};
	for (size_t i = 0; i < 2; i++) {
		char path[4096];
		struct tconfig c;
		struct derr e = {0};
		T_OK(tconfig_load(t_src(files[i], path, sizeof(path)), &c, &e), &e);
		tconfig_release(&c);
	}
}

/* Profiles are immutable once bound (DESIGN §13). */
static void test_bind(void)
{
	char dir[256], path[300];
	struct db *db = NULL;
	struct derr e = {0};
	struct tconfig c;
	int64_t ids[2] = {0}, ids2[2] = {0};
	const char *j1 = "{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\"}],"
			 "\"profiles\":{\"a\":{},\"b\":{\"temperature\":1}}}";
	const char *j2 = "{\"endpoints\":[{\"base_url\":\"http://x/v1\",\"model\":\"m\"}],"
			 "\"profiles\":{\"a\":{\"temperature\":0.7}}}";

	t_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	T_OK(db_open(&db, path, DB_OPEN_CREATE | DB_OPEN_ANY_VERSION, &e), &e);
	T_OK(db_migrate(db, NULL, NULL, &e), &e);
	/* A name created unbound (as ingest does) is bound by the first run. */
	T_OK(db_exec(db, "INSERT INTO profiles(name, created_at) VALUES ('b', 0)", &e), &e);
	T_OK(tconfig_parse(j1, strlen(j1), NULL, &c, &e), &e);
	T_OK(tconfig_bind_profiles(db, &c, ids, &e), &e);
	T_OK(tconfig_bind_profiles(db, &c, ids2, &e), &e);
	T_EQ_INT(ids[0], ids2[0]);
	T_EQ_INT(ids[1], ids2[1]);
	T_EQ_INT(ids[1], 1);
	tconfig_release(&c);
	T_OK(tconfig_parse(j2, strlen(j2), NULL, &c, &e), &e);
	T_EQ_INT(tconfig_bind_profiles(db, &c, ids, &e), DERR_PROFILE);
	T_TRUE(strstr(e.msg, "\"a\"") != NULL);
	tconfig_release(&c);
	{
		int64_t n = -1;
		T_OK(db_query_int64(db, "SELECT COUNT(*) FROM profiles WHERE hash IS NOT NULL", &n, &e), &e);
		T_EQ_INT(n, 2);
	}
	db_close(db);
}

int main(void)
{
	test_bad();
	test_full();
	test_examples();
	test_bind();
	return t_done();
}
