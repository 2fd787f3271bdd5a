/*
 * check.c - shmc_check(), the walk over every invariant, and shmc_keys().
 *
 * check() must never crash, whatever the segment holds: every offset,
 * link and length is bounds-checked before it is followed, every list walk
 * is bounded by the number of segments, and each list is walked under
 * log_lock so it cannot change under us.  The index is walked in chunks,
 * each inside its own short read section, so writers are never stalled;
 * an entry that changes while it is examined is read again, not reported.
 *
 * check() must also never hang.  It waits for log_lock at most
 * shmc__check_lock_wait_ns (2 s): a holder that keeps it longer (a stopped process, or a
 * lock word naming a thread that does not exist, which no one will ever
 * release) is reported, and so is a lock word that is not a mutex at all;
 * the lists are then not walked.  Every other lock it meets (slot mutexes,
 * bucket locks) it only tries.  So does the overflow pool's accounting
 * try index_lock, and it concludes only from a walk no writer disturbed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

/* How long check waits for log_lock; the fuzz target shortens it. */
uint64_t shmc__check_lock_wait_ns = 2ull * 1000000000u;

struct ck {
	struct shmc *c;
	void (*report)(const char *problem, void *arg);
	void *arg;
	int problems;
	uint8_t *seen; /* per segment: which list or owner claimed it */
	uint32_t nseg;
};

__attribute__((format(printf, 2, 3))) static void bad(struct ck *k,
                                                      const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	k->problems++;
	if (k->report)
		k->report(buf, k->arg);
}

static const char *state_name(uint32_t s)
{
	static const char *n[] = {"unused", "free", "open",
	                          "small",  "main", "retired"};
	return s < sizeof(n) / sizeof(n[0]) ? n[s] : "invalid";
}

/* Items of committed segment id, parsed up to write_off. */
static void check_segment(struct ck *k, uint32_t id, uint32_t st)
{
	struct shmc *c = k->c;
	struct shmc__seghdr *sh = shmc__seg(c, id);
	if (sh->magic != SHMC__SEG_MAGIC) {
		bad(k, "segment %u: bad magic %#x", id, sh->magic);
		return;
	}
	if (st == SHMC__SEG_FREE)
		return;
	uint64_t w = shmc__load(&sh->write_off, __ATOMIC_ACQUIRE);
	if (w < SHMC__SEGHDR_SIZE || w > c->seg_size) {
		bad(k, "segment %u: write offset %llu out of bounds", id,
		    (unsigned long long)w);
		return;
	}
	uint64_t base = (uint64_t)id << c->seg_shift;
	for (uint64_t off = SHMC__SEGHDR_SIZE; off < w;) {
		if (off + sizeof(struct shmc__item) > w) {
			bad(k, "segment %u: torn item header at %llu", id,
			    (unsigned long long)off);
			return;
		}
		const struct shmc__item *it =
		    (const struct shmc__item *)(c->data + base + off);
		uint64_t sz = shmc__item_size(it->klen, shmc__vlen(it));
		if (it->klen == 0 || it->klen > SHMC_KEY_MAX || sz > w - off) {
			bad(k, "segment %u: item at %llu has bad lengths "
			       "(key %u, value %u)",
			    id, (unsigned long long)off, it->klen, shmc__vlen(it));
			return;
		}
		off += sz;
	}
}

/* Walks one list: every member committed, in the list's state, on no
 * other list; as many as its count says. */
static void check_list(struct ck *k, const char *name, uint32_t head,
                       uint32_t count, uint32_t state, uint8_t mark)
{
	struct shmc *c = k->c;
	uint32_t n = 0, link = head;
	while (link) {
		uint32_t id = link - 1;
		if (id >= k->nseg) {
			bad(k, "%s list: link to segment %u beyond the %u "
			       "that may be committed",
			    name, id, k->nseg);
			return;
		}
		uint64_t w = c->dir[id];
		if (SHMC__DIR_STATE(w) != state ||
		    (state == SHMC__SEG_OPEN && SHMC__DIR_OWNER(w))) {
			bad(k, "%s list: segment %u is %s", name, id,
			    state_name(SHMC__DIR_STATE(w)));
			return; /* never follow links out of unused memory */
		}
		if (k->seen[id]) {
			bad(k, "%s list: segment %u already on another list "
			       "or a cycle",
			    name, id);
			return;
		}
		k->seen[id] = mark;
		n++;
		link = shmc__seg(c, id)->next;
	}
	if (n != count)
		bad(k, "%s list: %u segments linked, header says %u", name, n,
		    count);
}

/*
 * Takes log_lock within shmc__check_lock_wait_ns, or reports why not.  Polls
 * shmc__log_trylock, which rebuilds the lists when the last holder died
 * (log.c keeps that repair to itself).  After the first miss, one
 * shmc__lock_timed(0) tells a busy lock from a garbage one, which is
 * reported at once; should the holder die in the microseconds between
 * the two calls, shmc__lock_timed takes the lock without the repair, and
 * that is reported too.
 */
static bool ck_log_lock(struct ck *k)
{
	struct shmc *c = k->c;
	pthread_mutex_t *mu = &c->map.hdr->log_lock;
	uint64_t end = shmc__now_ns() + shmc__check_lock_wait_ns;
	int rc = SHMC_ECORRUPT;
	if (!shmc__mutex_ok(mu))
		goto out; /* not even a trylock is safe on it */
	if (shmc__log_trylock(c))
		return true;
	rc = shmc__lock_timed(mu, 0);
	while (rc == -ETIMEDOUT && shmc__now_ns() < end) {
		nanosleep(&(struct timespec){0, 200 * 1000}, NULL);
		if (shmc__log_trylock(c))
			return true;
	}
out:
	if (rc == 0)
		return true;
	if (rc == 1) {
		bad(k, "log_lock: its holder died during the check; the lists "
		       "were not rebuilt");
		return true;
	}
	if (rc == -ETIMEDOUT) {
#ifdef __GLIBC__
		/* glibc's owner field: the holder's thread id (read only to
		 * name it). */
		bad(k, "log_lock: held by thread %d for > %g s, lists not "
		       "checked",
		    (int)(shmc__load(&mu->__data.__owner, __ATOMIC_RELAXED) &
		          0x3fffffff),
		    (double)shmc__check_lock_wait_ns / 1e9);
#else
		bad(k, "log_lock: held for > %g s, lists not checked",
		    (double)shmc__check_lock_wait_ns / 1e9);
#endif
	} else {
		bad(k, "log_lock: corrupt (%s), lists not checked",
		    shmc_strerror(rc));
	}
	return false;
}

/*
 * The log, from its one truth, the directory: each word well formed; the
 * lists agree with it; every OPEN segment with an owner is that owner's
 * (a writer slot's or the copy-forward segment); seg_used counts the
 * committed ones; committed bytes are within the budget; and no UNUSED
 * segment still holds blocks of the file (the one question asked of the
 * file system: SEEK_DATA answers it right on every file system).
 */
static void check_log(struct ck *k)
{
	struct shmc *c = k->c;
	struct shmc__hdr *h = c->map.hdr;
	if (!ck_log_lock(k))
		return;
	k->nseg = h->nseg_hw;
	if (k->nseg > c->nseg_max) {
		bad(k, "header: high-water mark %u segments, reservation "
		       "holds %u",
		    k->nseg, c->nseg_max);
		k->nseg = c->nseg_max;
	}
	k->seen = calloc(k->nseg + 1, 1);
	if (!k->seen) {
		shmc__log_unlock(c);
		bad(k, "out of memory for the segment walk");
		return;
	}
	uint64_t used = 0;
	for (uint32_t id = 0; id < k->nseg; id++) {
		uint64_t w = c->dir[id];
		uint32_t st = SHMC__DIR_STATE(w);
		if (st >= SHMC__SEG_NSTATES ||
		    (st != SHMC__SEG_OPEN && (w >> 8))) {
			bad(k, "segment %u: directory word %#llx is not one "
			       "the cache writes",
			    id, (unsigned long long)w);
			k->seen[id] = 9;
			continue;
		}
		if (st == SHMC__SEG_UNUSED) {
			k->seen[id] = 5; /* never read: it has no memory */
			continue;
		}
		used++;
	}
	if (used != h->seg_used)
		bad(k, "header: %llu segments counted in use, the directory "
		       "has %llu",
		    (unsigned long long)h->seg_used, (unsigned long long)used);
	/* Over the budget only while a shrink is still at work. */
	uint64_t committed = shmc__committed(c);
	if (committed > shmc__load(&h->memory, __ATOMIC_ACQUIRE) &&
	    h->resize_phase != 2)
		bad(k, "header: committed %llu bytes over the budget %llu",
		    (unsigned long long)committed,
		    (unsigned long long)h->memory);
	check_list(k, "free", h->free_head, h->free_count, SHMC__SEG_FREE, 1);
	check_list(k, "small", h->small_head, h->small_count, SHMC__SEG_SMALL,
	           2);
	check_list(k, "main", h->main_head, h->main_count, SHMC__SEG_MAIN, 3);
	check_list(k, "retire", h->retire_head, h->retire_count,
	           SHMC__SEG_RETIRED, 4);
	check_list(k, "park", h->park_head, h->park_count, SHMC__SEG_OPEN, 6);
	for (uint32_t id = 0; id < k->nseg; id++) {
		uint64_t w = c->dir[id];
		uint32_t st = SHMC__DIR_STATE(w), o = SHMC__DIR_OWNER(w);
		if (k->seen[id] == 5) {
			if (shmc__seg_is_hole(c, id))
				continue;
			bad(k, "segment %u: unused but holds memory", id);
			continue;
		}
		if (k->seen[id] == 9)
			continue;
		check_segment(k, id, st);
		if (k->seen[id])
			continue;
		if (st == SHMC__SEG_OPEN && o == SHMC__OWNER_CF &&
		    h->cf_seg == id + 1)
			continue;
		/* Its writer's, or a dead writer's whose slot still names it
		 * (the slot's next owner, or a reclaim when memory runs
		 * short, detaches it). */
		if (st == SHMC__SEG_OPEN && o && o <= c->max_readers &&
		    shmc__slot_at(&c->map, o - 1)->open_seg == id + 1)
			continue;
		bad(k, "segment %u: %s but on no list and not %s", id,
		    state_name(st), o ? "its owner's" : "owned");
	}
	shmc__log_unlock(c);
}

static bool usable_state(uint64_t w)
{
	uint32_t st = SHMC__DIR_STATE(w);
	return st == SHMC__SEG_OPEN || st == SHMC__SEG_SMALL ||
	       st == SHMC__SEG_MAIN;
}

/* Entry i of bucket bk, which is in the chain of head bucket b. */
static void check_entry(struct ck *k, struct shmc__bucket *bk, uint64_t b,
                        unsigned i)
{
	uint64_t g = shmc__load(&k->c->map.hdr->index_geom, __ATOMIC_ACQUIRE);
	struct shmc *c = k->c;
	uint64_t e = shmc__load(&bk->e[i], __ATOMIC_ACQUIRE);
	if (!e)
		return;
	uint64_t loc = shmc__e_loc(e);
	const struct shmc__item *it = shmc__item_at(c, loc);
	const char *why = NULL;
	uint32_t id = (uint32_t)((loc << 3) >> c->seg_shift);
	if (!it) {
		why = "location or lengths out of bounds";
	} else if (it->klen == 0 || it->klen > SHMC_KEY_MAX) {
		why = "bad key length";
	} else {
		struct shmc__seghdr *sh = shmc__seg(c, id);
		uint64_t h = shmc__hash(it->data, it->klen);
		if (id >= shmc__load(&c->map.hdr->nseg_hw, __ATOMIC_RELAXED))
			why = "points into an uncommitted segment";
		else if (!usable_state(shmc__load(&c->dir[id],
		                                  __ATOMIC_ACQUIRE)))
			why = "points into a segment that is not in use";
		else if (((loc << 3) & (c->seg_size - 1)) +
		             shmc__item_size(it->klen, shmc__vlen(it)) >
		         shmc__load(&sh->write_off, __ATOMIC_ACQUIRE))
			why = "points past its segment's write offset";
		else if (shmc__geom_bucket(c, g, h) != b)
			why = "item hashes to another bucket";
		else if (shmc__tag(h) != shmc__e_tag(e) ||
		         shmc__hcheck(h) != it->hcheck)
			why = "tag does not match the item's hash";
	}
	/* A concurrent writer may have moved the entry meanwhile. */
	if (why && shmc__load(&bk->e[i], __ATOMIC_ACQUIRE) == e &&
	    shmc__load(&c->map.hdr->index_geom, __ATOMIC_ACQUIRE) == g)
		bad(k, "bucket %llu entry %u: %s", (unsigned long long)b, i,
		    why);
}

/* Two entries of one chain pointing at the same item: a key that a
 * delete or an eviction would only half remove. */
static void check_duplicates(struct ck *k, uint64_t b)
{
	struct shmc *c = k->c;
	uint64_t seen[(SHMC__CHAIN_MAX + 1) * SHMC__BUCKET_WAYS]; /* 3.6 KiB */
	unsigned nseen = 0;
	struct shmc__bucket *bk = shmc__bucket_at(c, b);
	for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
			uint64_t e = shmc__load(&bk->e[i], __ATOMIC_ACQUIRE);
			if (!e)
				continue;
			for (unsigned j = 0; j < nseen; j++)
				if (seen[j] == shmc__e_loc(e) &&
				    shmc__load(&bk->e[i], __ATOMIC_ACQUIRE) == e)
					bad(k, "bucket %llu: two entries for the "
					       "item at %llu",
					    (unsigned long long)b,
					    (unsigned long long)shmc__e_loc(e));
			seen[nseen++] = shmc__e_loc(e);
		}
		bk = shmc__chain_next(c, bk);
	}
}

static void check_bucket_lock(struct ck *k, uint64_t b)
{
	struct shmc *c = k->c;
	uint64_t w = shmc__load(&shmc__bucket_at(c, b)->lock, __ATOMIC_RELAXED);
	if (!(w & 1u))
		return;
	uint32_t owner = (uint32_t)(w >> 1) & 0x7fffu;
	if (owner >= c->max_readers) {
		bad(k, "bucket %llu: locked by slot %u beyond the %u slots",
		    (unsigned long long)b, owner, c->max_readers);
		return;
	}
	/* A dead owner's lock is released by the probe. */
	if (shmc__slot_probe(&c->map, owner, shmc__dead_slot, false, c) == 0 &&
	    shmc__load(&shmc__bucket_at(c, b)->lock, __ATOMIC_RELAXED) == w)
		bad(k, "bucket %llu: locked by slot %u, which is free",
		    (unsigned long long)b, owner);
}

static void check_index(struct ck *k, struct shmc__thr *t)
{
	struct shmc *c = k->c;
	struct shmc__hdr *h = c->map.hdr;
	uint64_t g = shmc__load(&h->index_geom, __ATOMIC_RELAXED);
	unsigned L = (unsigned)(g >> SHMC__GEOM_LEVEL_SHIFT);
	uint64_t p = g & SHMC__GEOM_SPLIT_MASK;
	if (L > 40 || (2ull << L) > h->index_max_buckets || p >= (1ull << L)) {
		bad(k, "header: index geometry level %u split %llu does not "
		       "fit %llu buckets",
		    L, (unsigned long long)p,
		    (unsigned long long)h->index_max_buckets);
		return;
	}
	uint64_t nb = shmc__geom_buckets(g);
	if (nb * SHMC__BUCKET_SIZE > h->index_committed)
		bad(k, "header: index committed %llu bytes, geometry needs "
		       "%llu",
		    (unsigned long long)h->index_committed,
		    (unsigned long long)(nb * SHMC__BUCKET_SIZE));
	if (h->pool_committed > c->pool_max)
		bad(k, "header: %u overflow buckets committed, room for %u",
		    h->pool_committed, c->pool_max);
	for (uint64_t b0 = 0; b0 < nb; b0 += 1024) {
		shmc__section_enter(c, t);
		for (uint64_t b = b0; b < b0 + 1024 && b < nb; b++) {
			struct shmc__bucket *bk = shmc__bucket_at(c, b);
			for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
				for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++)
					check_entry(k, bk, b, i);
				bk = shmc__chain_next(c, bk);
			}
			check_duplicates(k, b);
		}
		shmc__section_exit(t);
		for (uint64_t b = b0; b < b0 + 1024 && b < nb; b++)
			check_bucket_lock(k, b);
	}
}

/*
 * The overflow pool's accounting: every committed pool bucket on the free
 * stack, in the fresh range, or linked from exactly one chain.  It can be
 * concluded only while the index is quiet (index_lock free, no bucket
 * locked, the pool unmoved: shmc__pool_audit); a few tries, then, on a
 * busy cache, nothing is concluded and nothing reported.  A writer's
 * death inside a pool window was audited (and its bucket given back) by
 * shmc__ix_recover before this, as when a process opens the cache: a
 * bucket still unfound is a problem.
 */
static void check_pool(struct ck *k, struct shmc__thr *t)
{
	struct shmc__pool_acct a;
	int rc = SHMC_EBUSY;
	for (int i = 0; i < 20 && rc == SHMC_EBUSY; i++) {
		if (i)
			nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
		rc = shmc__pool_audit(k->c, t, false, &a);
	}
	if (rc == SHMC_EBUSY)
		return;
	if (rc) {
		bad(k, "overflow pool not checked: %s", shmc_strerror(rc));
		return;
	}
	if (a.bad)
		bad(k, "overflow pool: %s", a.bad);
	if (a.twice)
		bad(k, "overflow pool: %u buckets linked twice, or linked and "
		       "free (first: bucket %u)",
		    a.twice, a.first_twice - 1);
	if (a.leaked)
		bad(k, "overflow pool: %u of %u committed buckets neither free, "
		       "fresh nor linked from a chain (first: bucket %u)",
		    a.leaked, a.committed, a.first_leaked - 1);
}

static void check_slots(struct ck *k)
{
	struct shmc *c = k->c;
	for (uint32_t i = 0; i < c->max_readers; i++) {
		struct shmc__slot *s = shmc__slot_at(&c->map, i);
		uint32_t st = shmc__load(&s->state, __ATOMIC_ACQUIRE);
		if (st != SHMC__SLOT_FREE && st != SHMC__SLOT_USED)
			bad(k, "slot %u: invalid state %u", i, st);
		else if (st == SHMC__SLOT_USED)
			shmc__slot_probe(&c->map, i, shmc__dead_slot, false, c);
	}
}

static void mrc_report(void *k, const char *problem)
{
	bad(k, "%s", problem);
}

int shmc_check(shmc_t *c, void (*report)(const char *problem, void *arg),
               void *arg)
{
	if (!c)
		return -EINVAL;
	struct ck k = {.c = c, .report = report, .arg = arg};
	int rc = shmc__hdr_validate(c->map.base, SHMC__HDR_SIZE, c->map.size);
	if (rc) {
		bad(&k, "header: %s", shmc_strerror(rc));
		return k.problems;
	}
	struct shmc__hdr *h = c->map.hdr;
	uint64_t gm = (uint64_t)h->ghost_mask + 1;
	if (gm & (gm - 1) || gm > h->index_max_buckets * SHMC__GHOST_PER_BUCKET)
		bad(&k, "header: ghost table size %llu invalid",
		    (unsigned long long)gm);
	check_slots(&k);
	check_log(&k);
	free(k.seen);
	shmc__mrc_check(c, mrc_report, &k);
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t) {
		bad(&k, "index not checked: %s", shmc_strerror(rc));
		return k.problems;
	}
	if (t->depth) {
		bad(&k, "index not checked: called inside a read section");
		return k.problems;
	}
	/* A split or merge that died half-way is tidied first, as any
	 * process that opens the cache does: what is left is a problem. */
	shmc__ix_recover(c, t);
	check_index(&k, t);
	check_pool(&k, t);
	return k.problems;
}

/* Calls fn for the live keys of one chain; true when fn asked to stop. */
static bool keys_chain(struct shmc *c, struct shmc__bucket *bk, uint32_t now,
                       int (*fn)(const void *, size_t, size_t, void *),
                       void *arg)
{
	for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
			uint64_t e = shmc__load(&bk->e[i], __ATOMIC_ACQUIRE);
			const struct shmc__item *it =
			    e ? shmc__item_at(c, shmc__e_loc(e)) : NULL;
			if (!it || it->klen == 0 || it->klen > SHMC_KEY_MAX ||
			    shmc__expired(it, now) ||
			    (it->vword & (SHMC__V_LEASE | SHMC__V_NEG)))
				continue;
			if (fn(it->data, it->klen, shmc__uvlen(it), arg) != 0)
				return true;
		}
		bk = shmc__chain_next(c, bk);
	}
	return false;
}

int shmc_keys(shmc_t *c,
              int (*fn)(const void *key, size_t klen, size_t vlen, void *arg),
              void *arg)
{
	int rc = 0;
	if (!c || !fn)
		return -EINVAL;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	struct shmc__hdr *h = c->map.hdr;
	uint64_t g = shmc__load(&h->index_geom, __ATOMIC_RELAXED);
	uint64_t nb = (shmc__geom_buckets(g) - 1) & c->index_max_mask;
	bool stop = false;
	/* Short read sections, 256 buckets each, so writers never wait on
	 * the walk (a split meanwhile may make a key show twice or not). */
	for (uint64_t b0 = 0; b0 <= nb && !stop; b0 += 256) {
		shmc__section_enter(c, t);
		uint32_t now = shmc__now(c);
		for (uint64_t b = b0; b < b0 + 256 && b <= nb && !stop; b++)
			stop = keys_chain(c, shmc__bucket_at(c, b), now, fn, arg);
		shmc__section_exit(t);
	}
	return 0;
}
