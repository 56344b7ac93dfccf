/*
 * tconfig.h - the teacher config (README "Teacher config and `distill
 * work`"): endpoints, generation profiles, timeouts, attempts, response cap
 * and budget, parsed strictly (an unknown key is an error that names it),
 * and the binding of profiles to their definitions in the database
 * (DESIGN §13 "Generation profiles").  Used by the worker and `distill work`.
 */
#ifndef DISTILL_TCONFIG_H
#define DISTILL_TCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "teacher.h"

struct db;

/* Where the embedded default config points when neither --teacher nor
 * $DISTILL_TEACHER_URL says otherwise: the simulator's default address. */
#define TCONFIG_SIM_URL "http://127.0.0.1:8000/v1"
#define TCONFIG_SIM_MODEL "distill-sim"

struct tconfig_endpoint {
	char *name, *base_url, *model;
	char *api_key_env; /* NULL: no Authorization header */
	int max_concurrency;
	double requests_per_minute, tokens_per_minute; /* 0: unlimited */
	double weight;
	int stream;
	double price_per_mtok_in, price_per_mtok_out; /* USD per million tokens */
};

struct tconfig {
	struct tconfig_endpoint *endpoints;
	int nendpoints;
	struct teacher_profile *profiles;
	int nprofiles;
	int64_t connect_ms, total_ms, stall_ms; /* timeouts */
	int64_t lease_ms;			/* default: total + 60 s */
	int64_t grace_ms;			/* drain on SIGTERM */
	int max_attempts;
	int64_t max_response_bytes;
	/* Budget; -1: no limit.  Cost in micro-dollars. */
	int64_t max_tokens_run, max_tokens_total;
	int64_t max_cost_run, max_cost_total;
};

/* Parse config JSON text.  default_url, when not NULL, replaces the
 * base_url of every endpoint that has none (the embedded default).  On
 * failure DERR_CONFIG with a message naming the key, and cfg is empty. */
int tconfig_parse(const char *text, size_t n, const char *default_url, struct tconfig *cfg, struct derr *e);

/* Read and parse a file (at most 1 MB). */
int tconfig_load(const char *path, struct tconfig *cfg, struct derr *e);

/* The embedded default config: one endpoint at base_url (TCONFIG_SIM_URL
 * when NULL), the default profile. */
int tconfig_default(const char *base_url, struct tconfig *cfg, struct derr *e);

void tconfig_release(struct tconfig *cfg);

/* The profile named name, or NULL. */
const struct teacher_profile *tconfig_profile(const struct tconfig *cfg, const char *name);

/* Bind every profile of cfg in the database: a name seen for the first
 * time (or created unbound by ingest) gets its canonical definition and
 * hash; a bound name whose definition differs is DERR_PROFILE, naming it.
 * ids[i] receives the row id of cfg->profiles[i].  All or nothing. */
int tconfig_bind_profiles(struct db *db, const struct tconfig *cfg, int64_t *ids, struct derr *e);

#endif
