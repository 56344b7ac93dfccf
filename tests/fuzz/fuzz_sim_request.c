/*
 * fuzz_sim_request.c - the simulator's request parser and everything a
 * request body reaches: parse, draws, trace rendering, noise, faults,
 * streaming.  Every reply must be a valid status with a bounded body, and
 * every 200 that is not a malformed-JSON fault must parse as JSON (or as
 * SSE events of JSON).  The request parser's fast path must agree with the
 * cJSON reference on every input.
 */
#include "json.h"
#include "sim.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int valid_reply(const struct sim_reply *r)
{
	const char *s = buf_str(&r->body);
	if (r->status != 200 || r->fault == SIM_FAULT_MALFORMED) {
		cJSON *j = r->status == 200 ? NULL : json_parse(s, r->body.len);
		int ok = r->status == 200 || j != NULL;
		cJSON_Delete(j);
		return ok;
	}
	if (!r->stream) {
		cJSON *j = json_parse(s, r->body.len);
		int ok = j != NULL;
		cJSON_Delete(j);
		return ok;
	}
	while ((s = strstr(s, "data: "))) {
		const char *e = strstr(s, "\n\n");
		cJSON *j;
		s += 6;
		if (!e)
			return 0;
		if (!strncmp(s, "[DONE]", 6))
			return 1;
		j = json_parse(s, (size_t)(e - s));
		if (!j)
			return 0;
		cJSON_Delete(j);
		s = e;
	}
	return 0;
}

/* sim_request_parse (fast path first) and sim_request_parse_json give the
 * same status, error text and request. */
static int parsers_agree(const struct sim_config *c, const char *p, size_t n)
{
	struct sim_request a, b;
	char ta[64] = "", ma[256] = "", tb[64] = "", mb[256] = "";
	int ra = sim_request_parse(c, p, n, &a, ta, sizeof(ta), ma, sizeof(ma));
	int rb = sim_request_parse_json(c, p, n, &b, tb, sizeof(tb), mb, sizeof(mb));
	int same = ra == rb && !strcmp(ta, tb) && !strcmp(ma, mb);
	if (same && !ra)
		same = !strcmp(a.model, b.model) && a.stream == b.stream &&
		       a.include_usage == b.include_usage && a.max_tokens == b.max_tokens &&
		       a.prompt_bytes == b.prompt_bytes && a.nmessages == b.nmessages && a.user && b.user &&
		       !strcmp(a.user, b.user);
	sim_request_release(&a);
	sim_request_release(&b);
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sim_config c;
	static struct sim_replay *rp;
	static int ready;
	struct sim_reply r;

	if (!ready) {
		sim_config_init(&c);
		/* Every noise and fault now and then, short loops, a tiny replay. */
		for (int i = 0; i < SIM_NOISE_COUNT; i++)
			c.noise_p[i] = 0.15;
		for (int i = 1; i < SIM_FAULT_COUNT; i++)
			c.fault_p[i] = 0.05;
		c.default_max_tokens = 256;
		c.pad_reasoning = 100;
		rp = sim_replay_new();
		sim_replay_add(rp, "What is the capital of France, in one word?",
			       "<think>Paris is the capital.</think>\n\n\\boxed{Paris}");
		c.replay = rp;
		ready = 1;
	}
	if (!parsers_agree(&c, (const char *)data, size) ||
	    (size && !parsers_agree(&c, (const char *)data + 1, size - 1)))
		abort();
	/* The first byte picks the attempt, so fault draws vary too. */
	sim_complete(&c, (const char *)data + (size ? 1 : 0), size ? size - 1 : 0, size ? data[0] : 0, &r);
	if (!valid_reply(&r) || r.body.len > ((size_t)64 << 20))
		abort();
	sim_reply_release(&r);
	return 0;
}
