/*
 * index.c - the hash index: 64-byte buckets of 7 tagged entries.
 *
 * WHAT
 * A key hashes (XXH3-64) to one bucket, h & (index_buckets - 1).  Each of the
 * 7 entries holds a 16-bit tag from the top of the hash, 2 frequency bits
 * and the item's location.  A lookup reads one cache line of the index and,
 * for a matching tag, one item (about 1 in 9,000 tag matches is a false one,
 * settled by comparing the key).
 *
 * CONCURRENCY
 * Writers (set, add, delete, eviction) take the bucket's lock bit with a
 * CAS that also records their reader slot, change entries with single
 * 8-byte release stores, and unlock by bumping the version.  Readers never
 * look at the lock: every entry they can load is either 0 or points at a
 * complete item (the item was written, and its segment's write_off moved
 * past it, before the release store that published it).  So a writer that
 * dies holding the lock leaves the bucket consistent; the lock itself is
 * released by whoever finds the dead slot (shmc__dead_slot, via the
 * slot's lock_intent).
 *
 * Readers update only the frequency bits, with a CAS that fails harmlessly
 * if a writer changed the entry meanwhile, and only while the counter is
 * not saturated, so a hot key stops dirtying its bucket line.
 *
 * INVARIANTS
 *   - At most one entry of a bucket holds a given key (writers search the
 *     bucket under its lock before inserting).
 *   - An entry's tag is never 0, so 0 always means empty.
 *   - lock word: locked => owner field names the slot that set it.
 */
#include <sched.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"

uint64_t shmc__hash(const void *key, size_t klen)
{
	return XXH3_64bits(key, klen);
}

void shmc__bucket_lock(struct shmc *c, struct shmc__thr *t, uint64_t b,
                       bool log_locked)
{
	struct shmc__bucket *bk = shmc__bucket_at(c, b);
	/* Tell a future reclaimer which lock we may hold.  Our own slot's
	 * line; if we die, the kernel's robust-list walk happens after all
	 * our stores, so the reclaimer sees this. */
	shmc__store(&t->s->lock_intent, (uint32_t)(b + 1), __ATOMIC_RELAXED);
	uint64_t mine = 1u | ((uint64_t)t->slot << 1);
	for (unsigned spin = 1;; spin++) {
		uint64_t w = shmc__load(&bk->lock, __ATOMIC_RELAXED);
		if (!(w & 1u)) {
			/* Acquire (cmpxchg is a full barrier in liburcu): our
			 * reads of the entries come after the previous
			 * holder's release in shmc__bucket_unlock. */
			if (uatomic_cmpxchg(&bk->lock, w, w | mine) == w)
				return;
			continue;
		}
		if (spin % 1024 == 0) {
			uint32_t owner = (uint32_t)(w >> 1) & 0x7fffu;
			if (owner != t->slot && owner < c->max_readers)
				shmc__slot_probe(&c->map, owner,
				                 shmc__dead_slot, log_locked, c);
		}
		if (spin < 256)
			caa_cpu_relax();
		else
			sched_yield();
	}
}

void shmc__bucket_unlock(struct shmc *c, struct shmc__thr *t, uint64_t b)
{
	struct shmc__bucket *bk = shmc__bucket_at(c, b);
	uint64_t w = shmc__load(&bk->lock, __ATOMIC_RELAXED);
	/* Release: our entry stores are visible before the next holder's
	 * acquire.  Version bump, lock and owner cleared. */
	shmc__store(&bk->lock, ((w >> 16) + 1) << 16, __ATOMIC_RELEASE);
	shmc__store(&t->s->lock_intent, 0, __ATOMIC_RELAXED);
}

int shmc__bucket_find(struct shmc *c, struct shmc__bucket *bk, uint64_t h,
                      const void *key, size_t klen, uint64_t *out)
{
	uint16_t tag = shmc__tag(h), hc = shmc__hcheck(h);
	for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
		/* Acquire: pairs with the release store that published the
		 * entry, so the item bytes behind it are visible. */
		uint64_t e = shmc__load(&bk->e[i], __ATOMIC_ACQUIRE);
		if (!e || shmc__e_tag(e) != tag)
			continue;
		const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
		if (it && it->klen == klen && it->hcheck == hc &&
		    memcmp(it->data, key, klen) == 0) {
			*out = e;
			return (int)i;
		}
	}
	return -1;
}

/*
 * A thread died (or a slot was found in use with its mutex free): release
 * what it held, in an order that cannot deadlock with a live evictor:
 * first its bucket lock (an evictor holding log_lock may be spinning on
 * it), then its open segment (which needs log_lock).
 */
void shmc__dead_slot(struct shmc__map *m, uint32_t slot, bool log_locked,
                     void *arg)
{
	struct shmc *c = arg;
	struct shmc__slot *s = shmc__slot_at(m, slot);
	uint32_t li = shmc__load(&s->lock_intent, __ATOMIC_RELAXED);
	if (li && (uint64_t)(li - 1) <= c->index_max_mask) {
		struct shmc__bucket *bk = shmc__bucket_at(c, li - 1);
		uint64_t w = shmc__load(&bk->lock, __ATOMIC_RELAXED);
		if ((w & 1u) && ((uint32_t)(w >> 1) & 0x7fffu) == slot)
			/* Full barrier; the dead owner's entry stores are
			 * complete, each leaving the bucket consistent. */
			uatomic_cmpxchg(&bk->lock, w, ((w >> 16) + 1) << 16);
	}
	shmc__store(&s->lock_intent, 0, __ATOMIC_RELAXED);
	if (shmc__load(&s->open_seg, __ATOMIC_RELAXED)) {
		if (!log_locked)
			shmc__log_lock(c);
		shmc__log_seal_open(c, slot);
		if (!log_locked)
			shmc__log_unlock(c);
	}
}
