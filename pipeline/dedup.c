/* dedup.c - near-duplicate clusters of prompts and of traces (see dedup.h). */
#include "dedup.h"
#include "db.h"
#include "hash.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What differs between the two kinds: SQL, and how an item's group is made. */
static const struct dedup_kind_def {
	const char *name;
	const char *sql_max;  /* the highest id now */
	const char *sql_new;  /* id, text, group source for ids in (?1, ?2] */
	const char *sql_text; /* the text of id ?1 */
	int group_by_numbers; /* 1: group = numbers of the text; 0: group = column 2 */
} kinds[] = {
	[DEDUP_PROMPT] = {"prompt", "SELECT coalesce(max(id), 0) FROM prompts",
			  "SELECT id, text, 0 FROM prompts WHERE id > ?1 AND id <= ?2 ORDER BY id",
			  "SELECT text FROM prompts WHERE id = ?1", 1},
	[DEDUP_TRACE] = {"trace", "SELECT coalesce(max(id), 0) FROM traces",
			 "SELECT t.id, t.reasoning, j.prompt_id FROM traces t JOIN jobs j ON j.id = t.job_id"
			 " WHERE t.id > ?1 AND t.id <= ?2 ORDER BY t.id",
			 "SELECT reasoning FROM traces WHERE id = ?1", 0},
};

static const char SQL_STATE_GET[] = "SELECT params, last_id FROM dedup_state WHERE kind = ?1";
static const char SQL_STATE_PUT[] =
	"INSERT INTO dedup_state (kind, params, last_id, updated_at) VALUES (?1, ?2, ?3, ?4)"
	" ON CONFLICT (kind) DO UPDATE SET params = excluded.params,"
	" last_id = excluded.last_id, updated_at = excluded.updated_at";
static const char SQL_INDEX_LOAD[] =
	"SELECT member_id, grp, bands FROM dedup_index WHERE kind = ?1 ORDER BY member_id";
static const char SQL_INDEX_PUT[] =
	"INSERT INTO dedup_index (kind, member_id, grp, bands) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_INDEX_CLEAR[] = "DELETE FROM dedup_index WHERE kind = ?1";
static const char SQL_MARKS_LOAD[] = "SELECT member_id, cluster_id, rank FROM dup_members WHERE kind = ?1";
static const char SQL_MARKS_CLEAR[] = "DELETE FROM dup_members WHERE kind = ?1";
static const char SQL_MARK_PUT[] =
	"INSERT INTO dup_members (kind, member_id, cluster_id, rank, duplicate_of, similarity)"
	" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (kind, member_id) DO UPDATE SET"
	" cluster_id = excluded.cluster_id, rank = excluded.rank,"
	" duplicate_of = excluded.duplicate_of, similarity = excluded.similarity";
static const char SQL_COUNT_DUPS[] =
	"SELECT count(*), coalesce(sum(rank = 0), 0) FROM dup_members WHERE kind = ?1";

#define SET_CACHE_SLOTS 1024
#define FILTER_BITS (1u << 22) /* bitmap of new band keys, 512 KiB */

/* The items of one run, in id order: the old ones (from the index) first,
 * then the new ones. */
struct items {
	size_t n, cap, nold;
	int bands;
	int64_t *id, *grp;
	uint32_t *keys; /* n * bands */
};

/* Shingle sets fetched for exact Jaccard, direct-mapped by item index. */
struct set_slot {
	int64_t idx; /* -1: empty */
	uint64_t *set;
	size_t n, cap;
};

struct run {
	struct db *db;
	const struct dedup_kind_def *def;
	struct minhash mh;
	struct items it;
	uint32_t *parent;
	unsigned char *touched;
	struct set_slot *cache;
	struct db_stmt *text_st;
	uint64_t *rejected; /* open-addressing set of pair keys, 0 = empty */
	size_t rej_n, rej_cap;
};

const char *dedup_kind_name(enum dedup_kind kind)
{
	return kinds[kind].name;
}

static void items_push(struct items *it, int64_t id, int64_t grp, const uint32_t *keys)
{
	if (it->n == it->cap) {
		it->cap = it->cap ? 2 * it->cap : 4096;
		it->id = xrealloc(it->id, it->cap * sizeof(*it->id));
		it->grp = xrealloc(it->grp, it->cap * sizeof(*it->grp));
		it->keys = xrealloc(it->keys, it->cap * (size_t)it->bands * sizeof(*it->keys));
	}
	it->id[it->n] = id;
	it->grp[it->n] = grp;
	memcpy(it->keys + it->n * (size_t)it->bands, keys, (size_t)it->bands * sizeof(*keys));
	it->n++;
}

/* Index of id among the items, or -1 (ids are sorted). */
static int64_t items_find(const struct items *it, int64_t id)
{
	size_t lo = 0, hi = it->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (it->id[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < it->n && it->id[lo] == id ? (int64_t)lo : -1;
}

static uint32_t uf_find(uint32_t *parent, uint32_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

/* Union by smaller index as root: roots are then the earliest members. */
static int uf_union(uint32_t *parent, uint32_t a, uint32_t b)
{
	a = uf_find(parent, a);
	b = uf_find(parent, b);
	if (a == b)
		return 0;
	if (a < b)
		parent[b] = a;
	else
		parent[a] = b;
	return 1;
}

/* A hash of the multiset of numbers in a text (digit runs, with '.' or ','
 * between digits), so that texts differing in any number never match. */
static int64_t numbers_group(const char *p, size_t n)
{
	uint64_t sum = 0;
	size_t i = 0;
	while (i < n) {
		if (p[i] < '0' || p[i] > '9') {
			i++;
			continue;
		}
		size_t s = i;
		while (i < n &&
		       ((p[i] >= '0' && p[i] <= '9') || ((p[i] == '.' || p[i] == ',') && i + 1 < n &&
							 p[i + 1] >= '0' && p[i + 1] <= '9' && i > s)))
			i++;
		sum += hash64(p + s, i - s, 0x4e554d42ull);
	}
	return (int64_t)sum;
}

static uint64_t pair_key(uint32_t i, uint32_t j)
{
	return ((uint64_t)i << 32 | j) + 1; /* never 0 */
}

static size_t rej_slot(uint64_t key, size_t cap)
{
	return (size_t)(hash_mix64(key, 0) & (cap - 1));
}

static int rej_has(struct run *r, uint64_t key)
{
	if (!r->rej_cap)
		return 0;
	for (size_t s = rej_slot(key, r->rej_cap);; s = (s + 1) & (r->rej_cap - 1)) {
		if (r->rejected[s] == key)
			return 1;
		if (r->rejected[s] == 0)
			return 0;
	}
}

static void rej_add(struct run *r, uint64_t key)
{
	if (2 * (r->rej_n + 1) > r->rej_cap) {
		size_t ncap = r->rej_cap ? 2 * r->rej_cap : 1024;
		uint64_t *old = r->rejected;
		size_t ocap = r->rej_cap;
		r->rejected = xcalloc(ncap, sizeof(*r->rejected));
		r->rej_cap = ncap;
		for (size_t i = 0; i < ocap; i++) {
			if (!old[i])
				continue;
			size_t s = rej_slot(old[i], ncap);
			while (r->rejected[s])
				s = (s + 1) & (ncap - 1);
			r->rejected[s] = old[i];
		}
		free(old);
	}
	size_t s = rej_slot(key, r->rej_cap);
	while (r->rejected[s])
		s = (s + 1) & (r->rej_cap - 1);
	r->rejected[s] = key;
	r->rej_n++;
}

/* The shingle set of item idx, fetched from the database (cached). */
static int item_set(struct run *r, uint32_t idx, struct set_slot **out, struct derr *e)
{
	struct set_slot *sl = &r->cache[idx % SET_CACHE_SLOTS];
	const char *text;
	int rc;

	if (sl->idx == (int64_t)idx) {
		*out = sl;
		return 0;
	}
	db_reset(r->text_st);
	db_bind_int64(r->text_st, 1, r->it.id[idx]);
	rc = db_step(r->text_st, e);
	if (rc < 0)
		return rc;
	text = rc == 1 ? db_col_text(r->text_st, 0) : NULL;
	minhash_shingle(&r->mh, text ? text : "", text ? strlen(text) : 0);
	minhash_shingle_set(&r->mh);
	if (r->mh.nsh > sl->cap) {
		sl->cap = r->mh.nsh;
		sl->set = xrealloc(sl->set, sl->cap * sizeof(*sl->set));
	}
	if (r->mh.nsh)
		memcpy(sl->set, r->mh.sh, r->mh.nsh * sizeof(*sl->set));
	sl->n = r->mh.nsh;
	sl->idx = idx;
	db_reset(r->text_st);
	*out = sl;
	return 0;
}

static int item_jaccard(struct run *r, uint32_t a, uint32_t b, double *j, struct derr *e)
{
	struct set_slot *sa, *sb;
	int rc;
	/* Distinct slots or the same item: a second fetch cannot evict the first. */
	if (a % SET_CACHE_SLOTS == b % SET_CACHE_SLOTS && a != b) {
		uint64_t *copy;
		size_t na;
		if ((rc = item_set(r, a, &sa, e)))
			return rc;
		na = sa->n;
		copy = xmalloc((na ? na : 1) * sizeof(*copy));
		if (na)
			memcpy(copy, sa->set, na * sizeof(*copy));
		rc = item_set(r, b, &sb, e);
		if (!rc)
			*j = minhash_jaccard(copy, na, sb->set, sb->n);
		free(copy);
		return rc;
	}
	if ((rc = item_set(r, a, &sa, e)) || (rc = item_set(r, b, &sb, e)))
		return rc;
	*j = minhash_jaccard(sa->set, sa->n, sb->set, sb->n);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Compare every new item with the items sharing one of its band keys. */
static int find_pairs(struct run *r, struct dedup_report *rep, struct derr *e)
{
	struct items *it = &r->it;
	uint64_t *arr;
	int rc = 0;

	uint64_t *filter = NULL;
	size_t m;

	if (it->n == it->nold)
		return 0;
	arr = xmalloc(it->n * sizeof(*arr));
	/* A small increment: only old items whose key some new item has can
	 * pair with a new item, so a bitmap of the new keys picks them and only
	 * those are sorted, instead of the whole index. */
	if (2 * (it->n - it->nold) < it->n)
		filter = xcalloc(FILTER_BITS / 64, sizeof(*filter));
	for (int b = 0; b < it->bands && !rc; b++) {
		const uint32_t *key = it->keys + (size_t)b;
		size_t stride = (size_t)it->bands;
		m = 0;
		if (filter) {
			for (size_t i = it->nold; i < it->n; i++)
				filter[(key[i * stride] & (FILTER_BITS - 1)) / 64] |=
					1ull << (key[i * stride] % 64);
			for (size_t i = 0; i < it->n; i++) {
				uint32_t k = key[i * stride];
				if (i >= it->nold || filter[(k & (FILTER_BITS - 1)) / 64] >> (k % 64) & 1)
					arr[m++] = (uint64_t)k << 32 | (uint64_t)i;
			}
			for (size_t i = it->nold; i < it->n; i++)
				filter[(key[i * stride] & (FILTER_BITS - 1)) / 64] = 0;
		} else {
			for (size_t i = 0; i < it->n; i++)
				arr[m++] = (uint64_t)key[i * stride] << 32 | (uint64_t)i;
		}
		qsort(arr, m, sizeof(*arr), cmp_u64);
		for (size_t s = 0; s < m && !rc;) {
			size_t end = s + 1;
			while (end < m && arr[end] >> 32 == arr[s] >> 32)
				end++;
			/* Sorted by index within a key: the last is the newest. */
			if (end - s > 1 && (uint32_t)arr[end - 1] >= it->nold) {
				for (size_t q = s + 1; q < end && !rc; q++) {
					uint32_t j = (uint32_t)arr[q];
					if (j < it->nold)
						continue;
					for (size_t p = s; p < q && !rc; p++) {
						uint32_t i = (uint32_t)arr[p];
						double jac = 0;
						if (it->grp[i] != it->grp[j] ||
						    uf_find(r->parent, i) == uf_find(r->parent, j) ||
						    rej_has(r, pair_key(i, j)))
							continue;
						rep->candidates++;
						if ((rc = item_jaccard(r, i, j, &jac, e)))
							break;
						if (jac >= r->mh.p.threshold) {
							rep->confirmed++;
							uf_union(r->parent, i, j);
							r->touched[i] = r->touched[j] = 1;
						} else {
							rej_add(r, pair_key(i, j));
						}
					}
				}
			}
			s = end;
		}
	}
	free(arr);
	free(filter);
	return rc;
}

/* Read the stored index: the old items, in id order. */
static int load_old(struct run *r, struct derr *e)
{
	struct db_stmt *st = NULL;
	struct items *it = &r->it;
	size_t want = (size_t)it->bands * sizeof(uint32_t);
	int rc;

	if ((rc = db_prepare(r->db, SQL_INDEX_LOAD, &st, e)))
		return rc;
	db_bind_text(st, 1, r->def->name, -1);
	while ((rc = db_step(st, e)) == 1) {
		if (db_col_bytes(st, 2) != want) {
			db_finalize(st);
			return derr_set(
				e, DERR_CORRUPT, "dedup_index: band blob of %s %lld has %zu bytes, want %zu",
				r->def->name, (long long)db_col_int64(st, 0), db_col_bytes(st, 2), want);
		}
		items_push(it, db_col_int64(st, 0), db_col_int64(st, 1), db_col_blob(st, 2));
	}
	db_finalize(st);
	if (rc < 0)
		return rc;
	it->nold = it->n;
	return 0;
}

static int load_marks(struct run *r, int64_t *old_cluster, int32_t *old_rank, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc;

	if ((rc = db_prepare(r->db, SQL_MARKS_LOAD, &st, e)))
		return rc;
	db_bind_text(st, 1, r->def->name, -1);
	while ((rc = db_step(st, e)) == 1) {
		int64_t x = items_find(&r->it, db_col_int64(st, 0));
		int64_t c = items_find(&r->it, db_col_int64(st, 1));
		if (x < 0 || c < 0)
			continue; /* a mark without an index entry: rewritten if touched */
		old_cluster[x] = db_col_int64(st, 1);
		old_rank[x] = (int32_t)db_col_int64(st, 2);
		uf_union(r->parent, (uint32_t)x, (uint32_t)c);
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

/* Stream the items added since last_id and compute their band keys. */
static int read_new(struct run *r, int64_t last_id, int64_t max_id, dedup_progress_fn *progress, void *ctx,
		    struct dedup_report *rep, struct derr *e)
{
	struct db_stmt *st = NULL;
	uint32_t sig[MINHASH_PERM], keys[MINHASH_MAX_BANDS];
	int rc;

	if ((rc = db_prepare(r->db, r->def->sql_new, &st, e)))
		return rc;
	db_bind_int64(st, 1, last_id);
	db_bind_int64(st, 2, max_id);
	while ((rc = db_step(st, e)) == 1) {
		const char *text = db_col_text(st, 1);
		size_t len = text ? strlen(text) : 0;
		int64_t grp;

		rep->new_items++;
		if (progress && rep->new_items % 10000 == 0)
			progress(ctx, r->def == &kinds[DEDUP_PROMPT] ? DEDUP_PROMPT : DEDUP_TRACE,
				 rep->new_items, max_id - last_id);
		if (minhash_shingle(&r->mh, text ? text : "", len) == 0)
			continue; /* no tokens: nothing to compare */
		minhash_signature(&r->mh, r->mh.sh, r->mh.nsh, sig);
		grp = r->def->group_by_numbers ? numbers_group(text, len) : db_col_int64(st, 2);
		minhash_bands(&r->mh, sig, (uint64_t)grp, keys);
		items_push(&r->it, db_col_int64(st, 0), grp, keys);
		rep->indexed++;
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

/* Write the new index rows and every mark that changed. */
static int write_marks(struct run *r, const int64_t *old_cluster, const int32_t *old_rank,
		       struct dedup_report *rep, struct derr *e)
{
	struct items *it = &r->it;
	struct db_stmt *ins = NULL, *mark = NULL;
	uint32_t *count = NULL, *first = NULL;
	int rc;

	if ((rc = db_prepare(r->db, SQL_INDEX_PUT, &ins, e)) ||
	    (rc = db_prepare(r->db, SQL_MARK_PUT, &mark, e)))
		goto out;
	for (size_t i = it->nold; i < it->n; i++) {
		db_reset(ins);
		db_bind_text(ins, 1, r->def->name, -1);
		db_bind_int64(ins, 2, it->id[i]);
		db_bind_int64(ins, 3, it->grp[i]);
		db_bind_blob(ins, 4, it->keys + i * (size_t)it->bands, (size_t)it->bands * sizeof(uint32_t));
		if ((rc = db_step(ins, e)) < 0)
			goto out;
	}
	/* Roots of the clusters that gained an edge this run. */
	for (size_t i = 0; i < it->n; i++)
		if (r->touched[i])
			r->touched[uf_find(r->parent, (uint32_t)i)] |= 2;
	count = xcalloc(it->n ? it->n : 1, sizeof(*count));
	first = xcalloc(it->n ? it->n : 1, sizeof(*first));
	for (size_t i = 0; i < it->n; i++) {
		uint32_t root = uf_find(r->parent, (uint32_t)i);
		uint32_t rank;
		double sim = 0;
		if (!(r->touched[root] & 2))
			continue;
		rank = count[root]++;
		if (rank == 0)
			first[root] = (uint32_t)i; /* ascending index = ascending id */
		if (old_cluster[i] == it->id[first[root]] && old_rank[i] == (int32_t)rank)
			continue; /* unchanged, so is its similarity to the same rank 0 */
		if (rank > 0 && (rc = item_jaccard(r, first[root], (uint32_t)i, &sim, e)))
			goto out;
		db_reset(mark);
		db_bind_text(mark, 1, r->def->name, -1);
		db_bind_int64(mark, 2, it->id[i]);
		db_bind_int64(mark, 3, it->id[first[root]]);
		db_bind_int64(mark, 4, rank);
		if (rank > 0) {
			db_bind_int64(mark, 5, it->id[first[root]]);
			db_bind_double(mark, 6, sim);
		} else {
			db_bind_null(mark, 5);
			db_bind_null(mark, 6);
		}
		if ((rc = db_step(mark, e)) < 0)
			goto out;
		rep->rows++;
	}
	rc = 0;
out:
	free(count);
	free(first);
	db_finalize(ins);
	db_finalize(mark);
	return rc;
}

static int state_get(struct db *db, const char *kind, char *params, size_t plen, int64_t *last_id,
		     struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc;

	params[0] = '\0';
	*last_id = -1;
	if ((rc = db_prepare(db, SQL_STATE_GET, &st, e)))
		return rc;
	db_bind_text(st, 1, kind, -1);
	rc = db_step(st, e);
	if (rc == 1) {
		snprintf(params, plen, "%s", db_col_text(st, 0) ? db_col_text(st, 0) : "");
		*last_id = db_col_int64(st, 1);
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

static int exec_kind(struct db *db, const char *sql, const char *kind, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, sql, &st, e);
	if (rc)
		return rc;
	db_bind_text(st, 1, kind, -1);
	rc = db_step(st, e);
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

static int count_marks(struct db *db, const char *kind, struct dedup_report *rep, struct derr *e)
{
	struct db_stmt *st = NULL;
	int rc = db_prepare(db, SQL_COUNT_DUPS, &st, e);
	if (rc)
		return rc;
	db_bind_text(st, 1, kind, -1);
	rc = db_step(st, e);
	if (rc == 1) {
		rep->clusters = db_col_int64(st, 1);
		rep->duplicates = db_col_int64(st, 0) - rep->clusters;
	}
	db_finalize(st);
	return rc < 0 ? rc : 0;
}

int dedup_run(struct db *db, enum dedup_kind kind, const struct minhash_params *p,
	      dedup_progress_fn *progress, void *ctx, struct dedup_report *rep, struct derr *e)
{
	struct run r = {.db = db, .def = &kinds[kind]};
	char params[256], stored[256], again[256];
	int64_t last_id, last_again, max_id = 0, *old_cluster = NULL;
	int32_t *old_rank = NULL;
	int rc, in_tx = 0;

	memset(rep, 0, sizeof(*rep));
	minhash_init(&r.mh, p);
	r.it.bands = p->bands;
	/* The scheme first: an index made under another scheme is rebuilt. */
	snprintf(params, sizeof(params), "v%d shingle=%d flags=%u threshold=%.6g bands=%d rows=%d seed=%llu",
		 MINHASH_SCHEME, p->shingle, p->flags, p->threshold, p->bands, p->rows,
		 (unsigned long long)p->seed);
	if ((rc = state_get(db, r.def->name, stored, sizeof(stored), &last_id, e)))
		goto out;
	if (last_id >= 0 && strcmp(stored, params) != 0) {
		log_info("dedup %s: parameters changed (%s -> %s): rebuilding", r.def->name, stored, params);
		rep->rebuilt = 1;
	}
	if (last_id < 0 || rep->rebuilt)
		last_id = 0;
	else if ((rc = load_old(&r, e)))
		goto out;
	if ((rc = db_query_int64(db, r.def->sql_max, &max_id, e)))
		goto out;
	if ((rc = read_new(&r, last_id, max_id, progress, ctx, rep, e)))
		goto out;

	r.parent = xmalloc((r.it.n ? r.it.n : 1) * sizeof(*r.parent));
	for (size_t i = 0; i < r.it.n; i++)
		r.parent[i] = (uint32_t)i;
	r.touched = xcalloc(r.it.n ? r.it.n : 1, 1);
	old_cluster = xcalloc(r.it.n ? r.it.n : 1, sizeof(*old_cluster));
	old_rank = xmalloc((r.it.n ? r.it.n : 1) * sizeof(*old_rank));
	for (size_t i = 0; i < r.it.n; i++)
		old_rank[i] = -1;
	if (!rep->rebuilt && (rc = load_marks(&r, old_cluster, old_rank, e)))
		goto out;
	r.cache = xmalloc(SET_CACHE_SLOTS * sizeof(*r.cache));
	for (int i = 0; i < SET_CACHE_SLOTS; i++)
		r.cache[i] = (struct set_slot){.idx = -1};
	if ((rc = db_prepare(db, r.def->sql_text, &r.text_st, e)))
		goto out;
	if ((rc = find_pairs(&r, rep, e)))
		goto out;

	if ((rc = db_begin_immediate(db, e)))
		goto out;
	in_tx = 1;
	/* Another run may have written since we read: then our view is stale. */
	if ((rc = state_get(db, r.def->name, again, sizeof(again), &last_again, e)))
		goto out;
	if (strcmp(again, stored) != 0 || (last_again >= 0 && !rep->rebuilt && last_again != last_id)) {
		rc = derr_set(e, DERR_DEDUP_RACE,
			      "dedup %s: another run updated the index meanwhile; run again", r.def->name);
		goto out;
	}
	if (rep->rebuilt && ((rc = exec_kind(db, SQL_INDEX_CLEAR, r.def->name, e)) ||
			     (rc = exec_kind(db, SQL_MARKS_CLEAR, r.def->name, e))))
		goto out;
	if ((rc = write_marks(&r, old_cluster, old_rank, rep, e)))
		goto out;
	{
		struct db_stmt *st = NULL;
		if ((rc = db_prepare(db, SQL_STATE_PUT, &st, e)))
			goto out;
		db_bind_text(st, 1, r.def->name, -1);
		db_bind_text(st, 2, params, -1);
		db_bind_int64(st, 3, max_id > last_id ? max_id : last_id);
		db_bind_int64(st, 4, now_ms());
		rc = db_step(st, e);
		db_finalize(st);
		if (rc < 0)
			goto out;
	}
	if ((rc = count_marks(db, r.def->name, rep, e)))
		goto out;
	if ((rc = db_commit(db, e)))
		goto out;
	in_tx = 0;
	rep->index_size = (int64_t)r.it.n;
	rc = 0;
out:
	if (in_tx)
		db_rollback(db);
	db_finalize(r.text_st);
	if (r.cache)
		for (int i = 0; i < SET_CACHE_SLOTS; i++)
			free(r.cache[i].set);
	free(r.cache);
	free(r.parent);
	free(r.touched);
	free(r.rejected);
	free(old_cluster);
	free(old_rank);
	free(r.it.id);
	free(r.it.grp);
	free(r.it.keys);
	minhash_release(&r.mh);
	return rc;
}
