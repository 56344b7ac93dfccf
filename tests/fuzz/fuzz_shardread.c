/*
 * fuzz_shardread.c - the trainer's parsers of untrusted bytes: an export
 * manifest (shardread_manifest_parse, then the profile lookup and template
 * application) and a shard line's "messages" (tok_chat).
 */
#include "buf.h"
#include "json.h"
#include "shardread.h"
#include "tok.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shardread_manifest m;
	struct derr e = {0};
	cJSON *rec;

	if (shardread_manifest_parse(&m, (const char *)data, size, "fuzz", &e) == 0) {
		const struct shardread_profile *p = shardread_profile(&m, NULL);
		struct buf b = BUF_INIT(1 << 20);
		if (p)
			shardread_apply_template(p->template_, "x", &b);
		buf_release(&b);
		shardread_manifest_release(&m);
	}
	rec = json_parse((const char *)data, size);
	if (rec) {
		struct tok_seq s;
		tok_seq_init(&s);
		tok_chat(&s, cJSON_GetObjectItemCaseSensitive(rec, "messages"), 1, 2, &e);
		tok_seq_release(&s);
		cJSON_Delete(rec);
	}
	return 0;
}
