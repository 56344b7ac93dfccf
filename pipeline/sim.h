/*
 * sim.h - the teacher simulator's deterministic core: the synthetic task
 * family (arithmetic and short word problems with reference answers), the
 * R1-style traces that solve them, replay of recorded traces, the seeded
 * noise and fault draws, the reasoning placements of DESIGN §4, and the
 * rendering of an OpenAI chat-completions reply (whole JSON or SSE events).
 *
 * Pure functions: a request body, the server seed and the attempt number
 * give the same reply every time (DESIGN §13 "Seeds": content from
 * (seed, body), faults from (seed, body, attempt)).  The HTTP server lives in
 * cmd/teacher_sim.c and only carries out what a struct sim_reply says
 * (status, headers, bytes, when to send them, where to stop).
 */
#ifndef DISTILL_SIM_H
#define DISTILL_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* Where the reasoning goes (DESIGN §4). */
enum sim_placement {
	SIM_PLACE_REASONING_CONTENT, /* "reasoning_content" field */
	SIM_PLACE_REASONING,	     /* "reasoning" field */
	SIM_PLACE_INLINE,	     /* <think>...</think> in content */
	SIM_PLACE_CLOSE_ONLY,	     /* ...</think>answer in content */
	SIM_PLACE_COUNT
};

/* Content noise: drawn from (seed, body), so a retry gets the same text. */
enum sim_noise {
	SIM_NOISE_WRONG,       /* wrong final answer */
	SIM_NOISE_MIXLANG,     /* Chinese sentences inside English reasoning */
	SIM_NOISE_LOOP,	       /* repetition loop up to max_tokens, finish "length" */
	SIM_NOISE_TRUNCATE,    /* cut mid-sentence, finish "length" */
	SIM_NOISE_NO_BOX,      /* answer without \boxed{} */
	SIM_NOISE_EMPTY_THINK, /* <think>\n\n</think> */
	SIM_NOISE_COUNT
};

/* Transport faults: drawn from (seed, body, attempt), at most one per
 * request, so a retry can succeed. */
enum sim_fault {
	SIM_FAULT_NONE,
	SIM_FAULT_HTTP_429,  /* 429 with Retry-After */
	SIM_FAULT_HTTP_500,  /* 500 server_error */
	SIM_FAULT_HTTP_503,  /* 503 overloaded */
	SIM_FAULT_MALFORMED, /* 200 with a body that is not valid JSON */
	SIM_FAULT_CLOSE,     /* connection closed mid-body */
	SIM_FAULT_STALL,     /* no bytes for stall_ms */
	SIM_FAULT_COUNT
};

/* Names as used in flags, the JSON config and /stats ("http_429", ...). */
extern const char *const sim_placement_names[SIM_PLACE_COUNT];
extern const char *const sim_noise_names[SIM_NOISE_COUNT];
extern const char *const sim_fault_names[SIM_FAULT_COUNT];

/* Task kinds of the synthetic family. */
enum sim_kind { SIM_KIND_ADD, SIM_KIND_SUB, SIM_KIND_MUL, SIM_KIND_WORD, SIM_KIND_COUNT };
extern const char *const sim_kind_names[SIM_KIND_COUNT];

#define SIM_MAX_MODELS 8
#define SIM_MAX_DIGITS_ADD 18 /* add/sub operands fit in int64 */
#define SIM_MAX_DIGITS_MUL 9  /* mul products fit in int64 */

struct sim_replay;

struct sim_config {
	uint64_t seed;
	char *models[SIM_MAX_MODELS]; /* owned; accepted model names */
	int nmodels;
	double placement_weight[SIM_PLACE_COUNT];
	double noise_p[SIM_NOISE_COUNT];
	double fault_p[SIM_FAULT_COUNT]; /* [SIM_FAULT_NONE] unused */
	double wait_p;			 /* share of traces with a "Wait," check */
	int64_t retry_after_s;		 /* Retry-After of a 429 */
	int64_t stall_ms;		 /* length of a stall */
	int64_t ttft_ms;		 /* latency model: time to first token */
	double tokens_per_s;		 /* latency model: 0 = instant */
	int64_t pad_reasoning;		 /* pad each trace's reasoning to this many bytes */
	int64_t default_max_tokens;	 /* when the request gives none (loops stop here) */
	int64_t max_body;		 /* request bodies above this get 413 */
	const struct sim_replay *replay; /* not owned; NULL: none */
};

/* Defaults: seed 0, model "distill-sim", equal placement weights, no
 * noise, no faults, wait_p 0.2, retry_after 1 s, stall 5 s, no latency,
 * default_max_tokens 4096, max_body 1 MiB. */
void sim_config_init(struct sim_config *c);
void sim_config_release(struct sim_config *c);

/* The settable options, one table for flags and the JSON config file. */
enum sim_opt_type {
	SIM_OPT_SEED,	 /* uint64 */
	SIM_OPT_PROB,	 /* double in [0,1] */
	SIM_OPT_WEIGHTS, /* placement weights */
	SIM_OPT_MS,	 /* duration -> int64 ms */
	SIM_OPT_INT,	 /* int64 >= 0 */
	SIM_OPT_REAL,	 /* double >= 0 */
	SIM_OPT_MODELS,	 /* model name list */
};
struct sim_opt {
	const char *name; /* flag name; the JSON key is the same with '_' for '-' */
	enum sim_opt_type type;
	size_t off;	 /* offset of the field in struct sim_config */
	const char *arg; /* argument placeholder for --help */
	const char *help;
};
extern const struct sim_opt sim_opts[];
extern const size_t sim_opt_count;

/* Set option `name` (flag spelling or JSON spelling) from text: a
 * probability in [0,1], a duration ("250ms", "5s"), an integer, a real, a
 * comma list of models, or weights "inline=2,close_only=1" (names not
 * given get 0).  0, DERR_NOTFOUND (no such option) or DERR_INVALID, with
 * the config unchanged on error. */
int sim_config_set(struct sim_config *c, const char *name, const char *value, struct derr *e);

/* Cross-field checks: fault probabilities sum to at most 1, some
 * placement weight is positive, at least one model.  0 or DERR_INVALID. */
int sim_config_check(const struct sim_config *c, struct derr *e);

/* Apply a JSON config object (keys as in sim_opts, values as strings,
 * numbers, arrays of model names, or objects of weights).  Unknown keys are
 * errors.  0 or DERR_PARSE/DERR_INVALID/DERR_NOTFOUND. */
int sim_config_load_json(struct sim_config *c, const char *text, size_t len, struct derr *e);

/* ---- replay --------------------------------------------------------------- */

/* Load recorded traces (JSON Lines with "prompt" and "response"; other
 * lines are skipped and counted).  Adds to *r, which starts zeroed or from
 * sim_replay_new().  0, or DERR_IO / DERR_PARSE. */
struct sim_replay *sim_replay_new(void);
void sim_replay_free(struct sim_replay *r);
int sim_replay_load(struct sim_replay *r, const char *path, long *skipped, struct derr *e);
void sim_replay_add(struct sim_replay *r, const char *prompt, const char *response);
size_t sim_replay_count(const struct sim_replay *r);

/* ---- tasks ---------------------------------------------------------------- */

struct sim_task {
	char prompt[512];
	char answer[32];
};

/* Draw one task of `kind` with `digits`-digit operands from rng state *rng
 * (any 64-bit value; advanced).  Word problems use digits to size their
 * numbers.  DERR_INVALID when digits is out of range for the kind. */
int sim_task_gen(enum sim_kind kind, int digits, uint64_t *rng, struct sim_task *out);

/* ---- requests and replies ------------------------------------------------- */

struct sim_request {
	char model[128];
	int stream;
	int include_usage;
	int64_t max_tokens; /* 0: not given */
	char *user;	    /* owned: text of the last user message */
	size_t prompt_bytes;
	int nmessages;
};

/* Parse a chat-completions body.  On a bad request returns the HTTP status
 * to answer (400 malformed JSON / missing or bad messages / bad fields, 404
 * unknown model) and fills err_type and msg; 0 on success.  req is
 * released with sim_request_release either way.  The usual body (strict
 * JSON, string contents, no \u escapes) is read by an allocation-free
 * scanner; everything else, and every error, by sim_request_parse_json. */
int sim_request_parse(const struct sim_config *c, const char *body, size_t len, struct sim_request *req,
		      char *err_type, size_t type_len, char *msg, size_t msg_len);

/* The same through a cJSON tree, for any body: the reference that
 * sim_request_parse must agree with (the fuzz target checks it does). */
int sim_request_parse_json(const struct sim_config *c, const char *body, size_t len, struct sim_request *req,
			   char *err_type, size_t type_len, char *msg, size_t msg_len);
void sim_request_release(struct sim_request *req);

/* One stretch of the reply body and when it may be sent. */
struct sim_segment {
	size_t end;	/* body offset where this stretch ends */
	int64_t due_ms; /* earliest send time, ms after the request arrived */
};

struct sim_reply {
	int status;
	const char *content_type;
	int64_t retry_after_s; /* -1: no Retry-After header */
	struct buf body;       /* the whole body (SSE: every event) */
	size_t declared_len;   /* Content-Length to announce (> body.len when closing early) */
	int stream;	       /* SSE: send with chunked encoding */
	struct sim_segment *seg;
	size_t nseg;
	int64_t head_due_ms; /* earliest time to send the status line */
	size_t close_at;     /* close the connection after this many body bytes; SIZE_MAX: never */
	/* what was drawn, for the statistics */
	enum sim_fault fault;
	int placement;	    /* enum sim_placement, -1 when no completion was rendered */
	unsigned noise;	    /* bit per enum sim_noise applied */
	int replayed;	    /* 1 when a recorded trace was served */
	enum sim_kind kind; /* task recognised; SIM_KIND_COUNT: generic or replay */
};

void sim_reply_init(struct sim_reply *r);
void sim_reply_release(struct sim_reply *r);

/* 1 when the reply can go out at once in one piece (no waits, no early close). */
int sim_reply_is_immediate(const struct sim_reply *r);

/* An OpenAI-style error reply {"error": {"message", "type", "param", "code"}}. */
void sim_reply_error(struct sim_reply *r, int status, const char *type, const char *code, const char *msg);

/* The whole simulator for one POST /v1/chat/completions: parse the body,
 * draw content and faults, render.  attempt is the X-Distill-Attempt value
 * (0 when absent).  Never fails: bad requests become error replies.  r is
 * reset first (sim_reply_init) and must be released. */
void sim_complete(const struct sim_config *c, const char *body, size_t len, int64_t attempt,
		  struct sim_reply *r);

/* The body of GET /v1/models. */
void sim_models_json(const struct sim_config *c, struct buf *out);

/* ---- statistics ------------------------------------------------------------ */

struct sim_stats {
	uint64_t requests;    /* every HTTP request */
	uint64_t completions; /* chat-completions requests */
	uint64_t errors_4xx;
	uint64_t stream;
	uint64_t replayed;
	uint64_t fault[SIM_FAULT_COUNT];
	uint64_t noise[SIM_NOISE_COUNT];
	uint64_t placement[SIM_PLACE_COUNT];
	uint64_t kind[SIM_KIND_COUNT + 1];
};

/* Count one completion reply into s (atomic adds: callable from any thread). */
void sim_stats_add(struct sim_stats *s, const struct sim_reply *r);

/* s as one JSON object (the /stats body and the exit log line). */
void sim_stats_json(const struct sim_stats *s, struct buf *out);

#endif
