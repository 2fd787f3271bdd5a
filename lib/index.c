/*
 * index.c - the hash index: 64-byte buckets of 7 tagged entries that grow
 * and shrink in place by linear hashing, with overflow chains.
 *
 * WHAT
 * A key hashes (XXH3-64) to one bucket.  Each of the 7 entries holds a
 * 16-bit tag from the top of the hash, 2 frequency bits and the item's
 * location.  A lookup reads one cache line of the index and, for a
 * matching tag, one item (a false tag match, about 1 in 9,000 per way, is
 * settled by comparing the key).
 *
 * GROWTH: LINEAR HASHING IN PLACE (Litwin, VLDB 1980)
 * index_geom holds a level L and a split pointer p; nb = 2^L.  A key goes
 * to b = h mod nb, or, if b < p (already split), to h mod 2nb.  Splitting
 * bucket p moves the entries whose hash has bit L set into p + nb and
 * advances p; when p reaches nb the level goes up.  The whole index region
 * is reserved in the segment, so nothing is ever moved or remapped: only
 * the next buckets' pages are committed as p advances.  Merging is the
 * exact inverse and shrinks the index.  Writers split a few buckets at a
 * time whenever the items outnumber 3 per bucket.
 *
 * OVERFLOW CHAINS
 * Linear hashing splits buckets in order, not the one that is full, and
 * the buckets not yet split carry up to twice the average load.  With 7
 * fixed ways a growing cache would forget keys.  So a full bucket links an
 * overflow bucket taken from a pool at the top of the index region (the
 * link lives in its lock word, so readers get it with the version they
 * validate against).  At 3 items per bucket most chains are empty; a
 * lookup that needs one reads one more line.  A split or merge rewrites
 * the chains of the buckets it touches.  Only when the pool is empty is
 * the least-used entry forgotten (index_drops).
 *
 * CONCURRENCY
 *   lock word: bit 0 locked, bits 1..15 owner slot, bits 16..39 overflow
 *              link (pool bucket + 1), bits 40..63 version.
 * Writers lock the head bucket (its chain is covered by that lock) with a
 * CAS that names their slot, change entries with single 8-byte release
 * stores and unlock with a release store of the next version.  Readers
 * never wait: every entry they can load is 0 or points at a complete item,
 * so a hit is always right.  A miss is validated like a seqlock: if the
 * head was locked, its version moved, or the geometry changed while we
 * looked, look again (a split may have been moving the key).  An overflow
 * bucket freed to the pool may be reused at once: a reader that follows a
 * stale link reads other keys' entries, finds no match, sees the version
 * moved and retries; chain walks are bounded, so a cycle cannot trap it.
 * Splits and merges hold index_lock, the bucket and its buddy, and
 * publish the new geometry with a release store between filling the
 * receiving bucket and clearing the giving one, so under either geometry a
 * key is where a reader will look.
 *
 * A writer that dies holding bucket locks leaves every bucket consistent
 * (each store is one whole entry or link); the locks are released by
 * whoever finds the dead slot (shmc__dead_slot, via lock_intent and
 * lock_intent2).  Nobody waits for that to happen by chance: a reader
 * that sees the same locked word on several retries, and a writer that
 * spins on it, probe the owner's slot (lk_unstick).  A dead owner is
 * reclaimed on the spot, which releases what its intents name; a lock
 * whose owner slot is free (or dead and the lock not named, or a slot
 * that does not exist: a stale or corrupt word) can never be released by
 * its owner, so the prober releases it itself, with a CAS from the exact
 * word it saw.  A slot found free was released by its owner after any
 * unlock of its own, so that CAS fails if the owner did unlock.  Only a
 * live owner is waited for: a reader then reports a miss after a bounded
 * number of retries (a hit never waits), a writer waits for the unlock.
 *
 * OVERFLOW LINKS
 * A link is 24 bits of the lock word (bits 16..39), so the pool holds at
 * most SHMC__POOL_MAX = 2^24 - 1 buckets: an eighth of the index region,
 * capped from 32 GiB reservations on (lib/cache.c, at open).  A link out
 * of 1..pool_max (only a corrupt segment has one) ends the chain, and the
 * pool treats a free-stack head out of range as an empty pool.
 *
 * THE OVERFLOW-BUCKET POOL
 * pool_committed buckets at the top of the index region, each in exactly
 * one of three places: on the free stack (pool_free, a Treiber stack whose
 * head word carries an ABA tag), in the fresh range [pool_fresh - 1,
 * pool_committed) of buckets never handed out, or linked from one chain.
 * A new chunk only raises pool_committed (pool_grow, under index_lock and
 * log_lock, one store after the fallocate): its buckets are fresh at once,
 * with nothing to do after the lock.  (They used to be pushed one by one
 * after it: a kill in that stretch lost the rest of the chunk for good.)
 * pool_pop takes from the stack, else claims the first fresh bucket with
 * one CAS of pool_fresh.  pool_nfree counts the stack only; "low" is the
 * stack and the fresh range together.
 *
 * Two windows remain where a bucket is in none of the three places: a
 * chain_append between its pop and its link, and a chain_shrink or
 * chain_write between cutting a link and pushing the bucket.  Both are
 * under a head bucket lock named by the writer's lock intent, so only a
 * writer that dies with an intent can leak: its reclaim (shmc__dead_slot)
 * sets the audit bit of pool_fresh, and so does the tidy after a dead
 * index_lock owner.  The audit (shmc__pool_audit; tried when a process
 * opens the cache, when a thread first touches it, and by check) walks
 * the stack, the fresh range and the chain of every committed head bucket
 * holding index_lock, and gives back what it did not find, but only if
 * the walk was quiet: no head bucket locked when it was read, nor its
 * word changed by the end of the walk of its chain, and pool_free (its
 * tag moves on every push and pop) and pool_fresh the same at the end as
 * at the start.  Then no live writer was inside a window (a pop or push
 * during the walk moves a pool word, a window open when its head was read
 * keeps that head locked, and a cut while its chain was walked moves the
 * head's word), so what is unfound is unreachable for good.  Otherwise the bit stays set for a later try.  A head past the
 * geometry may keep the chain a dead split or merge left it (the next
 * split of it takes the chain over); a trim gives such chains back before
 * it punches their heads' pages (ix_unchain), which would cut the only
 * link to them after their audit.
 *
 * GEOMETRY FROM THE SEGMENT
 * index_geom is shared memory and is never trusted: lookups mask the
 * level (shmc__geom_bucket), and everything that shifts by the level or
 * acts on the split pointer (split, merge, the owner-died tidy-up, trim)
 * first checks it with geom_valid (level <= 40, split pointer below 2^L,
 * every bucket in use below the pool).  A geometry that fails is left
 * alone for shmc_check to report; the index keeps working under the
 * masked one, it only stops growing and shrinking.
 *
 * INVARIANTS (checked by shmc_check)
 *   - Each entry's item hashes to the head bucket of the chain it is in.
 *   - An entry's tag is never 0, so 0 always means empty.
 *   - A key has at most one entry in its chain.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"

/* Index bytes committed at a time: 64 KiB, or a whole huge page. */
#define IX_CHUNK (c->granule > (64u << 10) ? c->granule : (64u << 10))
#define POOL_LOW 64u         /* keep at least this many free in the pool */
#define STUCK_SPINS 64u      /* a writer probes a lock unchanged this long */
#define STUCK_RETRIES 8u     /* a reader probes after this many retries */
#define POOL_AUDIT (1ull << 32) /* pool_fresh: an audit is due */

void (*shmc__ix_fault)(int point);

/* A test's fault point (shmc__ix_fault); one predictable branch else. */
static inline void ix_fault(int point)
{
	if (__builtin_expect(shmc__ix_fault != NULL, 0))
		shmc__ix_fault(point);
}

uint64_t shmc__hash(const void *key, size_t klen)
{
	return XXH3_64bits(key, klen);
}

static inline uint64_t lk_with_link(uint64_t w, uint32_t link)
{
	return (w & ~((uint64_t)SHMC__LK_LINK_MAX << SHMC__LK_LINK_SHIFT)) |
	       ((uint64_t)link << SHMC__LK_LINK_SHIFT);
}

static inline uint64_t lk_next_version(uint64_t w)
{
	/* unlocked, no owner, same link, version + 1 */
	return ((((w >> SHMC__LK_VER_SHIFT) + 1) << SHMC__LK_VER_SHIFT) |
	        ((uint64_t)shmc__lk_link(w) << SHMC__LK_LINK_SHIFT));
}

/*
 * Whether index geometry g (from shared memory) is one a split or merge
 * could have written, checked before anything shifts by its level: level
 * at most 40, split pointer below 2^level, every bucket in use (2^L + p)
 * below the overflow pool.
 */
static bool geom_valid(struct shmc *c, uint64_t g)
{
	uint64_t L = g >> SHMC__GEOM_LEVEL_SHIFT;
	uint64_t p = g & SHMC__GEOM_SPLIT_MASK;
	if (L > 40)
		return false;
	uint64_t nb = 1ull << L;
	return nb <= c->index_max_mask && p < nb &&
	       nb + p <= c->index_max_mask + 1 - c->pool_max;
}

/*
 * Bucket bk's lock has stayed at the locked word w while we waited.
 * Probes the slot w names (self: the caller's own slot, which holds no
 * bucket lock while it waits for one, or UINT32_MAX for a reader).  A
 * dead owner is reclaimed now: shmc__dead_slot releases the locks its
 * intents name.  A lock still at w whose owner is free, dead, ours or not
 * a slot at all is released here.  Returns true when the lock is no
 * longer w (released by someone or by us).
 */
static bool lk_unstick(struct shmc *c, struct shmc__bucket *bk, uint64_t w,
                       uint32_t self, bool log_locked)
{
	uint32_t owner = shmc__lk_owner(w);
	if (owner != self && owner < c->max_readers &&
	    shmc__slot_probe(&c->map, owner, shmc__dead_slot, log_locked, c))
		return false; /* alive: it will unlock */
	/*
	 * Nobody will unlock w.  Full barrier (liburcu cmpxchg); it succeeds
	 * only from the very word we saw.  If the owner unlocked before
	 * freeing its slot, its release store of the next version came
	 * before the release store of SLOT_FREE that our probe read with
	 * acquire, so the CAS sees the newer word and fails; the same when
	 * shmc__dead_slot released it.  Pairs with the locking cmpxchg of
	 * shmc__bucket_lock, which then takes the bucket from the new word.
	 */
	return uatomic_cmpxchg(&bk->lock, w, lk_next_version(w)) == w ||
	       shmc__load(&bk->lock, __ATOMIC_RELAXED) != w;
}

/*
 * Fresh buckets left, from pool_fresh word f and pool_committed pc (both
 * shared memory: a start of 0, or at or past pc or the pool's room, is an
 * empty range, so no claim can go beyond the committed pool).
 */
static uint32_t fresh_left(struct shmc *c, uint64_t f, uint32_t pc)
{
	uint32_t first = (uint32_t)f; /* bucket + 1 */
	uint32_t top = pc < c->pool_max ? pc : c->pool_max;
	if (!first || first - 1 >= top)
		return 0;
	return top - (first - 1);
}

/* Claims the first fresh bucket: its link, or 0 when there is none. */
static uint32_t pool_claim_fresh(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	/* Acquire: pairs with pool_grow's release store of the count, made
	 * after its fallocate and its setting of a start from 0. */
	uint32_t pc = shmc__load(&h->pool_committed, __ATOMIC_ACQUIRE);
	uint64_t f = shmc__load(&h->pool_fresh, __ATOMIC_RELAXED);
	while (fresh_left(c, f, pc)) {
		/* Full barrier (liburcu cmpxchg): each fresh bucket goes to the
		 * one CAS that moves the start past it; pairs with the other
		 * claims and with the audit's re-read.  The audit bit (above
		 * the start's 25 bits, which never carry into it) goes along. */
		uint64_t seen = uatomic_cmpxchg(&h->pool_fresh, f, f + 1);
		if (seen == f)
			return (uint32_t)f;
		f = seen;
	}
	return 0;
}

/* A bucket from the free stack, else a fresh one; 0 when the pool is dry. */
static uint32_t pool_pop(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint64_t old = shmc__load(&h->pool_free, __ATOMIC_ACQUIRE);
	for (;;) {
		uint32_t link = (uint32_t)old;
		struct shmc__bucket *ob = shmc__pool_at(c, link);
		if (!ob)
			return pool_claim_fresh(c);
		/* A racing pop may reuse ob meanwhile; the tag makes our CAS
		 * fail then, whatever we read here. */
		uint64_t next = shmc__load(&ob->e[0], __ATOMIC_RELAXED) &
		                0xffffffffu;
		uint64_t nw = ((old >> 32) + 1) << 32 | next;
		/* Full barrier (liburcu cmpxchg): pairs with pool_push. */
		uint64_t seen = uatomic_cmpxchg(&h->pool_free, old, nw);
		if (seen == old) {
			uatomic_add(&h->pool_nfree, -1);
			return link;
		}
		old = seen;
	}
}

static void pool_push(struct shmc *c, uint32_t link)
{
	struct shmc__hdr *h = c->map.hdr;
	struct shmc__bucket *ob = shmc__pool_at(c, link);
	if (!ob)
		return;
	shmc__store(&ob->lock, 0, __ATOMIC_RELAXED);
	for (unsigned i = 1; i < SHMC__BUCKET_WAYS; i++)
		shmc__store(&ob->e[i], 0, __ATOMIC_RELAXED);
	uint64_t old = shmc__load(&h->pool_free, __ATOMIC_RELAXED);
	for (;;) {
		shmc__store(&ob->e[0], old & 0xffffffffu, __ATOMIC_RELAXED);
		uint64_t nw = ((old >> 32) + 1) << 32 | link;
		/* Full barrier: the bucket's link to the old head is visible
		 * before the bucket is. */
		uint64_t seen = uatomic_cmpxchg(&h->pool_free, old, nw);
		if (seen == old)
			break;
		old = seen;
	}
	uatomic_add(&h->pool_nfree, 1);
}

static uint32_t *intent(struct shmc__thr *t, int which)
{
	return which == 2 ? &t->s->lock_intent2 : &t->s->lock_intent;
}

void shmc__bucket_lock(struct shmc *c, struct shmc__thr *t, uint64_t b,
                       int which, bool log_locked)
{
	struct shmc__bucket *bk = shmc__bucket_at(c, b);
	/* Tell a future reclaimer which lock we may hold.  Our own slot's
	 * line; if we die, the kernel's robust-list walk happens after all
	 * our stores, so the reclaimer sees this. */
	shmc__store(intent(t, which), (uint32_t)(b + 1), __ATOMIC_RELAXED);
	uint64_t mine = SHMC__LK_LOCKED |
	                ((uint64_t)t->slot << SHMC__LK_OWNER_SHIFT);
	/*
	 * Bounded against everything but a live owner: after STUCK_SPINS
	 * spins on one locked word (then every 1024) we probe its owner, and
	 * a dead, free or stale owner's lock is released (lk_unstick), so
	 * the next round takes it.  A live owner is waited for: spinning,
	 * then yielding, then sleeping 20 us at a time.
	 */
	uint64_t last = 0;
	unsigned same = 0;
	for (unsigned spin = 1;; spin++) {
		uint64_t w = shmc__load(&bk->lock, __ATOMIC_RELAXED);
		if (!(w & SHMC__LK_LOCKED)) {
			/* liburcu's cmpxchg is a full barrier: our reads of
			 * the entries come after the previous holder's
			 * release in shmc__bucket_unlock. */
			if (uatomic_cmpxchg(&bk->lock, w, w | mine) == w)
				return;
			continue;
		}
		same = w == last ? same + 1 : 0;
		last = w;
		if (same == STUCK_SPINS || (same && same % 1024 == 0)) {
			/* Our own slot names it only if it is stale: we never
			 * wait for a bucket we hold (lock order). */
			if (lk_unstick(c, bk, w, t->slot, log_locked))
				continue;
		}
		if (spin < 256)
			caa_cpu_relax();
		else if (spin < 4096)
			sched_yield();
		else
			nanosleep(&(struct timespec){0, 20000}, NULL);
	}
}

void shmc__bucket_unlock(struct shmc *c, struct shmc__thr *t, uint64_t b,
                         int which)
{
	struct shmc__bucket *bk = shmc__bucket_at(c, b);
	uint64_t w = shmc__load(&bk->lock, __ATOMIC_RELAXED);
	/* Release: our entry and link stores are visible before the next
	 * holder's acquire and before a reader's version check sees the
	 * new version. */
	shmc__store(&bk->lock, lk_next_version(w), __ATOMIC_RELEASE);
	shmc__store(intent(t, which), 0, __ATOMIC_RELAXED);
}

int shmc__bucket_find(struct shmc *c, struct shmc__bucket *bk, uint64_t h,
                      const void *key, size_t klen, bool lease, uint64_t *out)
{
	uint16_t tag = shmc__tag(h), hc = shmc__hcheck(h);
	for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
		/* Acquire: pairs with the release store that published the
		 * entry, so the item bytes behind it are visible. */
		uint64_t e = shmc__load(&bk->e[i], __ATOMIC_ACQUIRE);
		if (!e || shmc__e_tag(e) != tag)
			continue;
		/* An item of a 16-byte key and a 64-byte value is 104 bytes:
		 * it spans two lines, and the copy-out would wait for the
		 * second one after the header's.  Start loading it now, so
		 * that the two misses overlap (a prefetch never faults). */
		__builtin_prefetch(c->data + (shmc__e_loc(e) << 3) + 64, 0, 3);
		const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
		if (it && it->klen == klen && it->hcheck == hc &&
		    shmc__is_lease(it) == lease &&
		    memcmp(it->data, key, klen) == 0) {
			*out = e;
			return (int)i;
		}
	}
	return -1;
}

bool shmc__ix_find(struct shmc *c, uint64_t h, const void *key, size_t klen,
                   bool lease, struct shmc__bucket **bkp, int *ip, uint64_t *e)
{
	struct shmc__hdr *hd = c->map.hdr;
	uint64_t last = 0;
	unsigned same = 0;
	for (unsigned retry = 0;; retry++) {
		/* Acquire: pairs with the release store of a new geometry,
		 * so the buckets it sends us to are already filled. */
		uint64_t g = shmc__load(&hd->index_geom, __ATOMIC_ACQUIRE);
		struct shmc__bucket *head =
		    shmc__bucket_at(c, shmc__geom_bucket(c, g, h));
		/* Acquire: the chain link and entries we read next are at
		 * least as new as this version. */
		uint64_t w = shmc__load(&head->lock, __ATOMIC_ACQUIRE);
		struct shmc__bucket *bk = head;
		for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
			int i = shmc__bucket_find(c, bk, h, key, klen, lease, e);
			if (i >= 0) {
				*bkp = bk;
				*ip = i;
				return true;
			}
			bk = n ? shmc__chain_next(c, bk) : shmc__pool_at(c, shmc__lk_link(w));
		}
		/* Seqlock-style validation of the miss: the loads above are
		 * ordered before these (read barrier); pairs with the locking
		 * cmpxchg and release unlock of writers. */
		cmm_smp_rmb();
		uint64_t now = shmc__load(&head->lock, __ATOMIC_RELAXED);
		if ((now == w && !(w & SHMC__LK_LOCKED) &&
		     shmc__load(&hd->index_geom, __ATOMIC_RELAXED) == g) ||
		    retry >= 1000)
			return false;
		/* The same locked word retry after retry: its owner may be
		 * dead or gone (lk_unstick).  A writer's normal hold is far
		 * shorter than STUCK_RETRIES retries. */
		if ((w & SHMC__LK_LOCKED) && now == w) {
			same = w == last ? same + 1 : 1;
			last = w;
			if ((same == STUCK_RETRIES || same % 64 == 0) &&
			    lk_unstick(c, head, w, UINT32_MAX, false))
				continue;
		}
		if (retry > 16)
			sched_yield();
		else
			caa_cpu_relax();
	}
}

void shmc__ix_lock(struct shmc *c, struct shmc__thr *t, uint64_t h,
                   bool log_locked, struct shmc__ixl *x)
{
	struct shmc__hdr *hd = c->map.hdr;
	for (;;) {
		uint64_t g = shmc__load(&hd->index_geom, __ATOMIC_ACQUIRE);
		x->b = shmc__geom_bucket(c, g, h);
		shmc__bucket_lock(c, t, x->b, 1, log_locked);
		/* The geometry for our bucket cannot change while we hold
		 * it (a split or merge of it needs its lock); recheck that
		 * none happened before we got it. */
		g = shmc__load(&hd->index_geom, __ATOMIC_ACQUIRE);
		if (shmc__geom_bucket(c, g, h) == x->b) {
			x->bk = shmc__bucket_at(c, x->b);
			return;
		}
		shmc__bucket_unlock(c, t, x->b, 1);
	}
}

/*
 * Head bucket locked: gives the chain's trailing overflow buckets that
 * hold no entry back to the pool.  Without this a bucket came back only
 * when a split or merge rewrote its chain, so at steady state the pool
 * drained and its refills punched data segments: the cache held fewer
 * objects than its memory was sized for.  A reader still inside a bucket
 * given back meanwhile is covered as for any reuse of a pool bucket (see
 * OVERFLOW CHAINS): the head's version moves at our unlock, its miss is
 * looked at again.
 */
static void chain_shrink(struct shmc *c, struct shmc__bucket *head)
{
	for (unsigned round = 0; round < SHMC__CHAIN_MAX; round++) {
		struct shmc__bucket *prev = NULL, *bk = head, *next;
		for (unsigned n = 0; n <= SHMC__CHAIN_MAX &&
		                     (next = shmc__chain_next(c, bk)) != NULL;
		     n++) {
			prev = bk;
			bk = next;
		}
		if (!prev)
			return;
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++)
			if (shmc__load(&bk->e[i], __ATOMIC_RELAXED))
				return;
		uint64_t w = shmc__load(&prev->lock, __ATOMIC_RELAXED);
		uint32_t link = shmc__lk_link(w);
		/* Release: pairs with the acquire in shmc__chain_next. */
		shmc__store(&prev->lock, lk_with_link(w, 0), __ATOMIC_RELEASE);
		ix_fault(SHMC__IXF_SHRINK);
		pool_push(c, link);
	}
}

void shmc__ix_unlock(struct shmc *c, struct shmc__thr *t, struct shmc__ixl *x)
{
	if (shmc__lk_link(shmc__load(&x->bk->lock, __ATOMIC_RELAXED)))
		chain_shrink(c, x->bk);
	shmc__bucket_unlock(c, t, x->b, 1);
}

uint64_t *shmc__ix_find_locked(struct shmc *c, struct shmc__ixl *x,
                               uint64_t h, const void *key, size_t klen,
                               bool lease, uint64_t *e)
{
	struct shmc__bucket *bk = x->bk;
	for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
		int i = shmc__bucket_find(c, bk, h, key, klen, lease, e);
		if (i >= 0)
			return &bk->e[i];
		bk = shmc__chain_next(c, bk);
	}
	return NULL;
}

uint64_t *shmc__ix_find_loc(struct shmc *c, struct shmc__ixl *x, uint64_t loc,
                            uint64_t *e)
{
	struct shmc__bucket *bk = x->bk;
	for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
			uint64_t v = shmc__load(&bk->e[i], __ATOMIC_RELAXED);
			if (v && shmc__e_loc(v) == loc) {
				*e = v;
				return &bk->e[i];
			}
		}
		bk = shmc__chain_next(c, bk);
	}
	return NULL;
}

/* Links a fresh overflow bucket after `tail` (whose lock word we may
 * write: the head we hold, or a chain bucket under it). */
static struct shmc__bucket *chain_append(struct shmc *c,
                                         struct shmc__bucket *tail)
{
	uint32_t link = pool_pop(c);
	struct shmc__bucket *ob = shmc__pool_at(c, link);
	if (!ob)
		return NULL;
	ix_fault(SHMC__IXF_APPEND);
	for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++)
		shmc__store(&ob->e[i], 0, __ATOMIC_RELAXED);
	shmc__store(&ob->lock, 0, __ATOMIC_RELAXED);
	uint64_t w = shmc__load(&tail->lock, __ATOMIC_RELAXED);
	/* Release: the emptied bucket is visible before the link to it. */
	shmc__store(&tail->lock, lk_with_link(w, link), __ATOMIC_RELEASE);
	return ob;
}

uint64_t *shmc__ix_free_way(struct shmc *c, struct shmc__ixl *x,
                            bool *dropped)
{
	uint64_t *best = NULL;
	unsigned bestf = SHMC__E_FREQ_MAX + 1;
	struct shmc__bucket *bk = x->bk, *tail = bk;
	unsigned n = 0;
	for (; bk && n <= SHMC__CHAIN_MAX; n++) {
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
			uint64_t v = shmc__load(&bk->e[i], __ATOMIC_RELAXED);
			if (!v) {
				*dropped = false;
				return &bk->e[i];
			}
			if (shmc__e_freq(v) < bestf) {
				bestf = shmc__e_freq(v);
				best = &bk->e[i];
			}
		}
		tail = bk;
		bk = shmc__chain_next(c, bk);
	}
	/* Append only at the true end of a chain that readers walk whole
	 * (positions 0..SHMC__CHAIN_MAX); past that, forget the least used. */
	struct shmc__bucket *ob = !bk && n <= SHMC__CHAIN_MAX
	                              ? chain_append(c, tail)
	                              : NULL;
	if (ob) {
		*dropped = false;
		return &ob->e[0];
	}
	*dropped = true;
	return best;
}

/*
 * A thread died (or a slot was found in use with its mutex free): release
 * what it held, in an order that cannot deadlock with a live evictor:
 * first its bucket locks (an evictor holding log_lock may be spinning on
 * them), then its open segment (which needs log_lock).
 */
static void release_dead_lock(struct shmc *c, uint32_t slot, uint32_t li)
{
	if (!li || (uint64_t)(li - 1) > c->index_max_mask)
		return;
	struct shmc__bucket *bk = shmc__bucket_at(c, li - 1);
	uint64_t w = shmc__load(&bk->lock, __ATOMIC_RELAXED);
	if ((w & SHMC__LK_LOCKED) && shmc__lk_owner(w) == slot)
		/* Full barrier; the dead owner's entry and link stores are
		 * complete, each leaving the chain consistent. */
		uatomic_cmpxchg(&bk->lock, w, lk_next_version(w));
}

/*
 * items_approx is what each thread has flushed of its item count (in
 * batches of 32, cache.c); a thread that dies takes its unflushed part
 * with it, and over many deaths the figure - which drives index growth
 * and the ghost's size - would drift without bound.  The per-slot
 * SHMC__C_ITEMS counters are exact (one store per insert or removal,
 * kept across owners), so on each death the figure is set to their sum:
 * off by at most the live threads' unflushed batches, never more.
 */
static void resync_items(struct shmc *c)
{
	uint64_t sum = 0; /* a signed sum in unsigned (wrapping) arithmetic */
	for (uint32_t i = 0; i < c->max_readers; i++)
		sum += shmc__load(&shmc__slot_at(&c->map, i)->ctr[SHMC__C_ITEMS],
		                  __ATOMIC_RELAXED);
	/* Relaxed: a gauge, raced by flushes (atomic adds) either way. */
	shmc__store(&c->map.hdr->items_approx, (int64_t)sum, __ATOMIC_RELAXED);
}

void shmc__dead_slot(struct shmc__map *m, uint32_t slot, bool log_locked,
                     void *arg)
{
	struct shmc *c = arg;
	struct shmc__slot *s = shmc__slot_at(m, slot);
	uint32_t li2 = shmc__load(&s->lock_intent2, __ATOMIC_RELAXED);
	uint32_t li = shmc__load(&s->lock_intent, __ATOMIC_RELAXED);
	/* It may have died inside a pool window (OVERFLOW-BUCKET POOL): an
	 * audit is due.  A full barrier (liburcu's or), before the locks
	 * that kept the audit from concluding are released. */
	if (li || li2)
		uatomic_or(&c->map.hdr->pool_fresh, POOL_AUDIT);
	release_dead_lock(c, slot, li2);
	release_dead_lock(c, slot, li);
	shmc__store(&s->lock_intent, 0, __ATOMIC_RELAXED);
	shmc__store(&s->lock_intent2, 0, __ATOMIC_RELAXED);
	resync_items(c);
	if (!shmc__load(&s->open_seg, __ATOMIC_RELAXED))
		return;
	/*
	 * Its open segment.  A reclaim may run while the caller holds bucket
	 * locks (a probe from shmc__bucket_lock), and log_lock comes before
	 * bucket locks, so this never waits for log_lock: if it is busy the
	 * segment stays named by the slot, and its next owner or a reclaim
	 * when memory runs short detaches it (log.c).
	 */
	if (log_locked) {
		shmc__log_seal_open(c, slot);
	} else if (shmc__log_trylock(c)) {
		shmc__log_seal_open(c, slot);
		shmc__log_unlock(c);
	}
}

/* ---- splits and merges (index_lock held) ------------------------------ */

static uint64_t ix_hash_of(struct shmc *c, uint64_t e)
{
	const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
	if (!it || it->klen == 0 || it->klen > SHMC_KEY_MAX)
		return UINT64_MAX;
	return shmc__hash(it->data, it->klen);
}

/* Every entry of a chain, and the chain's overflow buckets. */
struct gather {
	uint64_t e[(SHMC__CHAIN_MAX + 1) * SHMC__BUCKET_WAYS];
	uint32_t links[SHMC__CHAIN_MAX];
	unsigned n, nlinks;
};

static void gather(struct shmc *c, struct shmc__bucket *head, struct gather *g)
{
	g->n = g->nlinks = 0;
	struct shmc__bucket *bk = head;
	for (unsigned k = 0; bk && k <= SHMC__CHAIN_MAX; k++) {
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
			uint64_t v = shmc__load(&bk->e[i], __ATOMIC_RELAXED);
			if (v)
				g->e[g->n++] = v;
		}
		uint32_t link = shmc__lk_link(shmc__load(&bk->lock, __ATOMIC_RELAXED));
		if (!shmc__pool_at(c, link) || k == SHMC__CHAIN_MAX)
			break;
		g->links[g->nlinks++] = link;
		bk = shmc__pool_at(c, link);
	}
}

/*
 * Writes entries e[0..n) into the chain headed by `head`, reusing the
 * overflow buckets links[0..nlinks) in order and taking more from the pool
 * when they run out; unused old buckets are cut off and returned.  Returns
 * how many entries had nowhere to go.
 */
static unsigned chain_write(struct shmc *c, struct shmc__bucket *head,
                            const uint64_t *e, unsigned n,
                            const uint32_t *links, unsigned nlinks)
{
	struct shmc__bucket *bk = head;
	unsigned used = 0, k = 0, lost = 0;
	for (;;) {
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++)
			/* Release: an entry moved here is visible with the
			 * item it points at. */
			shmc__store(&bk->e[i], k < n ? e[k++] : 0,
			            __ATOMIC_RELEASE);
		if (k >= n)
			break;
		struct shmc__bucket *next = NULL;
		if (used < nlinks) {
			next = shmc__pool_at(c, links[used++]);
		} else {
			next = chain_append(c, bk);
			if (next)
				links = NULL, nlinks = used; /* old list done */
		}
		if (!next) {
			lost = n - k;
			break;
		}
		bk = next;
	}
	/* Cut the chain after bk and give back what is left of the old. */
	uint64_t w = shmc__load(&bk->lock, __ATOMIC_RELAXED);
	shmc__store(&bk->lock, lk_with_link(w, 0), __ATOMIC_RELEASE);
	if (links && used < nlinks)
		ix_fault(SHMC__IXF_WRITE);
	for (unsigned i = used; links && i < nlinks; i++)
		pool_push(c, links[i]);
	return lost;
}

/* Commits index pages so the first `need` bytes are usable, taking memory
 * from the data segments if the budget is used up. */
static int ix_commit(struct shmc *c, struct shmc__thr *t, uint64_t need)
{
	struct shmc__hdr *h = c->map.hdr;
	uint64_t max = (c->index_max_mask + 1 - c->pool_max) * SHMC__BUCKET_SIZE;
	need = (need + IX_CHUNK - 1) & ~(uint64_t)(IX_CHUNK - 1);
	if (need > max)
		need = max;
	if (need <= h->index_committed)
		return 0;
	uint64_t delta = need - h->index_committed;
	int rc = shmc__log_lock_room(c, t, delta);
	if (rc)
		return rc;
	/* fallocate, then count it (both under log_lock): a kill between
	 * leaves uncounted pages that the repair punches (log.c). */
	rc = shmc__seg_commit(&c->map, h->index_off + h->index_committed,
	                      delta);
	if (!rc)
		shmc__store(&h->index_committed, need, __ATOMIC_RELAXED);
	shmc__log_unlock(c);
	return rc;
}

/* Commits and frees one more chunk of overflow buckets. */
static int pool_grow(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t have = h->pool_committed;
	uint32_t per = IX_CHUNK / SHMC__BUCKET_SIZE;
	/* pool_max <= SHMC__POOL_MAX: every link pushed here, up to
	 * have + per, fits the lock word.  A pool_committed past it (not
	 * ours) gets no more. */
	if (have >= c->pool_max)
		return SHMC_EBUDGET;
	if (per > c->pool_max - have)
		per = (c->pool_max - have) &
		      ~(uint32_t)(c->granule / SHMC__BUCKET_SIZE - 1);
		/* whole granules (pages, or huge pages) */
	if (per == 0)
		return SHMC_EBUDGET;
	uint64_t top = h->index_off + (c->index_max_mask + 1) * SHMC__BUCKET_SIZE;
	uint64_t off = top - (uint64_t)(have + per) * SHMC__BUCKET_SIZE;
	uint64_t bytes = (uint64_t)per * SHMC__BUCKET_SIZE;
	int rc = shmc__log_lock_room(c, t, bytes);
	if (rc)
		return rc;
	/* Counted after the fallocate, as in ix_commit.  The count is the
	 * whole of it: the new buckets extend the fresh range, whose start
	 * is set here only when there is none yet (a new cache, or one made
	 * before pool_fresh): claims never move a start of 0, and we hold
	 * index_lock, so no one else sets it (an add keeps the audit bit).
	 * Before the count: a kill between leaves [have, have), empty. */
	rc = shmc__seg_commit(&c->map, off, bytes);
	if (!rc) {
		if (!(uint32_t)shmc__load(&h->pool_fresh, __ATOMIC_RELAXED))
			uatomic_add(&h->pool_fresh, (uint64_t)have + 1);
		/* Release: pairs with the acquire in pool_claim_fresh. */
		shmc__store(&h->pool_committed, have + per, __ATOMIC_RELEASE);
	}
	shmc__log_unlock(c);
	ix_fault(SHMC__IXF_GROW);
	return rc;
}

/*
 * Whether the pool is running low: the free stack and the fresh range
 * together.  pool_nfree is a count kept beside the free stack, not under
 * one atomic with it: a process killed between its CAS and its count
 * leaves it off by one either way, and one below zero wraps.  A count
 * above what was ever committed is such a wrap: taken as none.
 */
static bool pool_low(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t pc = shmc__load(&h->pool_committed, __ATOMIC_RELAXED);
	uint32_t n = shmc__load(&h->pool_nfree, __ATOMIC_RELAXED);
	if (n > pc)
		n = 0;
	return (uint64_t)n + fresh_left(c, shmc__load(&h->pool_fresh,
	                                              __ATOMIC_RELAXED),
	                                pc) < POOL_LOW;
}

static void pool_ensure(struct shmc *c, struct shmc__thr *t)
{
	if (pool_low(c))
		pool_grow(c, t);
}

static void count_lost(struct shmc__thr *t, unsigned lost)
{
	if (!lost)
		return;
	shmc__ctr_add(t, SHMC__C_INDEX_DROPS, lost);
	shmc__ctr_add(t, SHMC__C_ITEMS, (uint64_t)-(int64_t)lost);
}

/* Splits bucket p of the current geometry. */
static int ix_split_one(struct shmc *c, struct shmc__thr *t,
                        struct gather *ga, struct gather *gb)
{
	struct shmc__hdr *h = c->map.hdr;
	uint64_t g = h->index_geom;
	/* Never trust the geometry from the segment: a level past the
	 * reservation would shift out of range and send us off the map.
	 * Checked before the first shift by its level. */
	if (!geom_valid(c, g))
		return SHMC_EBUDGET;
	unsigned L = (unsigned)(g >> SHMC__GEOM_LEVEL_SHIFT);
	uint64_t p = g & SHMC__GEOM_SPLIT_MASK, nb = 1ull << L;
	uint64_t buddy = p + nb;
	if (buddy >= c->index_max_mask + 1 - c->pool_max)
		return SHMC_EBUDGET; /* the reservation is full */
	int rc = ix_commit(c, t, (buddy + 1) * SHMC__BUCKET_SIZE);
	if (rc)
		return rc;
	pool_ensure(c, t);
	shmc__bucket_lock(c, t, p, 1, false);
	shmc__bucket_lock(c, t, buddy, 2, false);
	struct shmc__bucket *bp = shmc__bucket_at(c, p);
	struct shmc__bucket *bb = shmc__bucket_at(c, buddy);
	gather(c, bp, ga);
	/* The buddy is not in use, but a split that died after its step 1,
	 * or a merge before its step 3, left it a chain (its entries the
	 * tidy removed): rewritten below with those buckets, not over them,
	 * which would lose them.  Only gb's links are kept: its entries are
	 * overwritten by the ones that move. */
	gather(c, bb, gb);
	unsigned na = 0, nbd = 0, lost = 0;
	for (unsigned i = 0; i < ga->n; i++) {
		uint64_t hh = ix_hash_of(c, ga->e[i]);
		if (hh == UINT64_MAX)
			lost++;
		else if (hh & nb)
			gb->e[nbd++] = ga->e[i];
		else
			ga->e[na++] = ga->e[i];
	}
	/* 1. the buddy gets its keys: readers still look in p's chain,
	 *    which holds every key until step 3 */
	lost += chain_write(c, bb, gb->e, nbd, gb->links, gb->nlinks);
	/* 2. publish the new geometry.  Release: step 1 is visible to any
	 *    reader whose acquire load sees it (shmc__ix_find). */
	uint64_t ng = p + 1 == nb ? (uint64_t)(L + 1) << SHMC__GEOM_LEVEL_SHIFT
	                          : g + 1;
	shmc__store(&h->index_geom, ng, __ATOMIC_RELEASE);
	/* 3. p keeps only its own, in its own chain (never more buckets
	 *    than it had).  A reader that misses meanwhile sees p locked
	 *    or its version moved, and looks again. */
	lost += chain_write(c, bp, ga->e, na, ga->links, ga->nlinks);
	shmc__bucket_unlock(c, t, buddy, 2);
	shmc__bucket_unlock(c, t, p, 1);
	count_lost(t, lost);
	return 0;
}

/* Merges the last split bucket back with its buddy. */
static int ix_merge_one(struct shmc *c, struct shmc__thr *t,
                        struct gather *ga, struct gather *gb)
{
	struct shmc__hdr *h = c->map.hdr;
	uint64_t g = h->index_geom;
	if (!geom_valid(c, g))
		return SHMC_EBUDGET; /* a geometry we did not write */
	unsigned L = (unsigned)(g >> SHMC__GEOM_LEVEL_SHIFT);
	uint64_t p = g & SHMC__GEOM_SPLIT_MASK;
	uint64_t ng, q, nb;
	if (p > 0) {
		ng = g - 1;
		q = p - 1;
		nb = 1ull << L;
	} else {
		if (L <= 8) /* 256 buckets is the floor */
			return SHMC_EBUDGET;
		nb = 1ull << (L - 1);
		q = nb - 1;
		ng = ((uint64_t)(L - 1) << SHMC__GEOM_LEVEL_SHIFT) | q;
	}
	uint64_t buddy = q + nb;
	pool_ensure(c, t);
	shmc__bucket_lock(c, t, q, 1, false);
	shmc__bucket_lock(c, t, buddy, 2, false);
	struct shmc__bucket *bq = shmc__bucket_at(c, q);
	struct shmc__bucket *bb = shmc__bucket_at(c, buddy);
	gather(c, bq, ga);
	gather(c, bb, gb);
	unsigned lost = 0;
	for (unsigned i = 0; i < gb->n; i++) {
		if (ga->n < sizeof(ga->e) / sizeof(ga->e[0]))
			ga->e[ga->n++] = gb->e[i];
		else
			lost++;
	}
	/* 1. q's chain gets everything (old-geometry readers of the buddy
	 *    still find theirs there) */
	lost += chain_write(c, bq, ga->e, ga->n, ga->links, ga->nlinks);
	/* 2. publish.  Release: pairs with the acquire in shmc__ix_find. */
	shmc__store(&h->index_geom, ng, __ATOMIC_RELEASE);
	/* 3. empty the buddy and give its chain back */
	chain_write(c, bb, NULL, 0, gb->links, gb->nlinks);
	shmc__bucket_unlock(c, t, buddy, 2);
	shmc__bucket_unlock(c, t, q, 1);
	count_lost(t, lost);
	return 0;
}

/*
 * Removes from the chain of bucket b the entries that do not belong there
 * under the current geometry (left by a splitter or merger that died
 * between its steps: each such entry has a twin where it belongs).
 */
static void ix_sanitize(struct shmc *c, struct shmc__thr *t, uint64_t b)
{
	struct shmc__hdr *h = c->map.hdr;
	if (b > c->index_max_mask)
		return;
	uint64_t g = h->index_geom;
	uint64_t seen[(SHMC__CHAIN_MAX + 1) * SHMC__BUCKET_WAYS]; /* 3.6 KiB */
	unsigned nseen = 0;
	shmc__bucket_lock(c, t, b, 1, false);
	struct shmc__bucket *bk = shmc__bucket_at(c, b);
	for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
			uint64_t e = shmc__load(&bk->e[i], __ATOMIC_RELAXED);
			if (!e)
				continue;
			uint64_t hh = ix_hash_of(c, e);
			/* A rewrite cut short (chain_write) can leave an entry
			 * in two ways of the chain: keep the first. */
			bool dup = false;
			for (unsigned k = 0; k < nseen && !dup; k++)
				dup = seen[k] == shmc__e_loc(e);
			if (dup || hh == UINT64_MAX ||
			    shmc__geom_bucket(c, g, hh) != b)
				shmc__store(&bk->e[i], 0, __ATOMIC_RELEASE);
			else
				seen[nseen++] = shmc__e_loc(e);
		}
		bk = shmc__chain_next(c, bk);
	}
	shmc__bucket_unlock(c, t, b, 1);
}

/* index_lock held, taken from a dead owner: a split or merge may have
 * died half-way; tidy the buckets it could have been working on.  Not
 * under a geometry no split wrote (nothing to tidy, and its level must
 * not be shifted by): shmc_check reports it. */
static void ix_tidy(struct shmc *c, struct shmc__thr *t)
{
	/* Its chain_write may have died between a cut and its pushes. */
	uatomic_or(&c->map.hdr->pool_fresh, POOL_AUDIT);
	uint64_t g = c->map.hdr->index_geom;
	if (!geom_valid(c, g))
		return;
	unsigned L = (unsigned)(g >> SHMC__GEOM_LEVEL_SHIFT);
	uint64_t p = g & SHMC__GEOM_SPLIT_MASK, nb = 1ull << L;
	uint64_t around[] = {p, p + nb, p ? p - 1 : nb / 2 - 1,
	                     p ? p - 1 + nb : nb - 1};
	/* index_committed changes only under index_lock, which we hold.
	 * p + nb is not in use yet: past index_committed (a split that died
	 * before its ix_commit) its page is a hole, and locking the bucket
	 * would write it, a block no count covers.  Nothing there needs
	 * tidying: the split that takes it into use rewrites it whole. */
	uint64_t ic = c->map.hdr->index_committed;
	for (unsigned i = 0; i < 4; i++)
		if ((around[i] + 1) * SHMC__BUCKET_SIZE <= ic)
			ix_sanitize(c, t, around[i]);
}

/* ---- the pool's accounting (OVERFLOW-BUCKET POOL) --------------------- */

enum { PM_NONE, PM_FREE, PM_FRESH, PM_LINKED };

static void pool_twice(struct shmc__pool_acct *a, uint32_t link)
{
	if (!a->twice++)
		a->first_twice = link;
}

/*
 * index_lock held (pool_committed and index_committed cannot change).
 * Marks every committed pool bucket by where it was found; true when the
 * walk was quiet (see the essay), so that a->leaked is the truth.  Never
 * follows a link past pool_committed, and reads only committed buckets.
 */
static bool pool_walk(struct shmc *c, struct shmc__pool_acct *a,
                      uint8_t *mark)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t pc = a->committed;
	/* Acquire: the bucket words read below are at least as new as these
	 * two; pairs with the full barriers of the pushes, pops and claims
	 * that last moved them. */
	uint64_t top0 = shmc__load(&h->pool_free, __ATOMIC_ACQUIRE);
	uint32_t fr0 = (uint32_t)shmc__load(&h->pool_fresh, __ATOMIC_ACQUIRE);
	/* 1. the free stack, a bucket's next in its e[0] */
	for (uint32_t link = (uint32_t)top0; link;) {
		if (link > pc) {
			a->bad = "the free stack links a bucket beyond the "
			         "committed ones";
			break;
		}
		if (mark[link - 1]) {
			a->bad = "the free stack has a cycle";
			break;
		}
		mark[link - 1] = PM_FREE;
		a->free++;
		link = (uint32_t)shmc__load(&shmc__pool_at(c, link)->e[0],
		                            __ATOMIC_RELAXED);
	}
	/* 2. the fresh range */
	if (fr0 && fr0 - 1 > pc) {
		a->bad = "the fresh range starts beyond the committed buckets";
	} else if (fr0) {
		for (uint32_t id = fr0 - 1; id < pc; id++) {
			if (mark[id]) {
				a->bad = "a fresh bucket is on the free stack";
				continue;
			}
			mark[id] = PM_FRESH;
			a->fresh++;
		}
	}
	/* 3. the chain of every committed head bucket: the ones in use, and
	 * a buddy past them that a dead split or merge left one (the next
	 * split of it takes it over) */
	uint64_t heads = h->index_committed / SHMC__BUCKET_SIZE;
	if (heads > c->index_max_mask + 1 - c->pool_max)
		heads = c->index_max_mask + 1 - c->pool_max;
	bool quiet = true;
	for (uint64_t b = 0; b < heads && quiet; b++) {
		uint64_t w = shmc__load(&shmc__bucket_at(c, b)->lock,
		                        __ATOMIC_ACQUIRE);
		if (w & SHMC__LK_LOCKED) {
			quiet = false; /* a writer may be inside a window */
			break;
		}
		uint32_t link = shmc__lk_link(w);
		if (link)
			ix_fault(SHMC__IXF_AUDIT);
		for (unsigned n = 0; link && n < SHMC__CHAIN_MAX; n++) {
			if (link > pc) {
				a->bad = "a chain links a bucket beyond the "
				         "committed ones";
				break;
			}
			if (mark[link - 1]) {
				pool_twice(a, link);
				break; /* and never loop on a cycle */
			}
			mark[link - 1] = PM_LINKED;
			a->linked++;
			/* Acquire: as shmc__chain_next. */
			link = shmc__lk_link(shmc__load(
			    &shmc__pool_at(c, link)->lock, __ATOMIC_ACQUIRE));
		}
		/*
		 * The head was unlocked when we read it, not necessarily
		 * while we walked its chain: a writer that locked it since
		 * may have cut the chain's tail (chain_shrink) and not pushed
		 * it yet; we missed it, the pool words have not moved, and
		 * giving it back would put it on the stack twice.  So the
		 * head's word again, seqlock-style: the chain loads above are
		 * ordered before it (read barrier), and pair with the locking
		 * cmpxchg (a full barrier) of shmc__bucket_lock that comes
		 * before any cut or link under the head: a walk that saw one
		 * sees the head locked or its version moved here.  A head
		 * without a link needs no walk: a link added since is a pop,
		 * which moves a pool word.
		 */
		if (shmc__lk_link(w)) {
			cmm_smp_rmb();
			if (shmc__load(&shmc__bucket_at(c, b)->lock,
			               __ATOMIC_RELAXED) != w)
				quiet = false;
		}
	}
	/* The walk's loads before these re-reads (read barrier), as in the
	 * seqlock of shmc__ix_find: an unchanged tagged stack word and fresh
	 * start mean no push, pop or claim since the first loads.  The audit
	 * bit may have moved meanwhile; it says nothing of the buckets. */
	cmm_smp_rmb();
	if (shmc__load(&h->pool_free, __ATOMIC_RELAXED) != top0 ||
	    (uint32_t)shmc__load(&h->pool_fresh, __ATOMIC_RELAXED) != fr0)
		quiet = false;
	for (uint32_t id = 0; id < pc; id++)
		if (mark[id] == PM_NONE && !a->leaked++)
			a->first_leaked = id + 1;
	return quiet;
}

/* index_lock held: the accounting, and the reclaim of what leaked. */
static int pool_account(struct shmc *c, bool reclaim,
                        struct shmc__pool_acct *a)
{
	struct shmc__hdr *h = c->map.hdr;
	memset(a, 0, sizeof(*a));
	uint32_t pc = h->pool_committed;
	a->committed = pc < c->pool_max ? pc : c->pool_max; /* check reports
	                                                     * the excess */
	uint8_t *mark = calloc((size_t)a->committed + 1, 1);
	if (!mark)
		return -ENOMEM;
	bool quiet = pool_walk(c, a, mark);
	/* Only from a quiet walk of a pool that is otherwise sound: what it
	 * did not find no live writer holds, and no dead one will link. */
	if (quiet && reclaim && !a->bad && !a->twice)
		for (uint32_t id = 0; id < a->committed; id++)
			if (mark[id] == PM_NONE) {
				pool_push(c, id + 1);
				a->reclaimed++;
			}
	free(mark);
	return quiet ? 0 : SHMC_EBUSY;
}

/* index_lock held: the audit, if a death asked for one (POOL_AUDIT). */
static void pool_audit_due(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	if (!(shmc__load(&h->pool_fresh, __ATOMIC_RELAXED) & POOL_AUDIT))
		return;
	/* Cleared first (a full barrier): a death during the walk sets it
	 * again.  Set again ourselves when the walk could not conclude. */
	uatomic_and(&h->pool_fresh, ~POOL_AUDIT);
	struct shmc__pool_acct a;
	if (pool_account(c, true, &a) != 0)
		uatomic_or(&h->pool_fresh, POOL_AUDIT);
}

static int ix_lock(struct shmc *c, struct shmc__thr *t, bool wait)
{
	pthread_mutex_t *mu = &c->map.hdr->index_lock;
	int rc;
	if (wait) {
		rc = shmc__lock(mu); /* 0, 1 (owner died), or an error */
		if (rc < 0)
			return rc;
		rc = rc == 1 ? EOWNERDEAD : 0;
	} else if (!shmc__mutex_ok(mu)) {
		return SHMC_ECORRUPT;
	} else if ((rc = pthread_mutex_trylock(mu)) == EOWNERDEAD) {
		pthread_mutex_consistent(mu);
	} else if (rc == EBUSY) {
		/* Only shmc__ix_resize waits for index_lock; growth and the
		 * tidy only try it, so a holder that vanished without the
		 * kernel marking it dead would stop both for good.  Reaped
		 * here as shmc__lock reaps it (its CAS is the ordering). */
		shmc__reap_vanished(mu, &c->ix_watch);
	}
	if (rc == EOWNERDEAD) {
		ix_tidy(c, t);
		return 0;
	}
	return rc ? -rc : 0;
}

int shmc__pool_audit(struct shmc *c, struct shmc__thr *t, bool reclaim,
                     struct shmc__pool_acct *a)
{
	if (t->depth)
		return SHMC_EBUSY; /* a read section: no bucket lock, no tidy */
	int rc = ix_lock(c, t, false);
	if (rc == -EBUSY)
		return SHMC_EBUSY;
	if (rc)
		return rc;
	rc = pool_account(c, reclaim, a);
	pthread_mutex_unlock(&c->map.hdr->index_lock);
	return rc;
}

/*
 * Tidies after a split or merge that died holding index_lock, if one did:
 * otherwise that repair would wait for the next split or merge, which a
 * cache in a steady state may never make.  Called when a process opens
 * the cache, when a thread first touches it, and by check.  Never waits.
 */
void shmc__ix_recover(struct shmc *c, struct shmc__thr *t)
{
	if (t->depth == 0 && ix_lock(c, t, false) == 0) {
		pool_audit_due(c);
		pthread_mutex_unlock(&c->map.hdr->index_lock);
	}
}

void shmc__ix_recover_open(struct shmc *c)
{
	pthread_mutex_t *mu = &c->map.hdr->index_lock;
	if (!shmc__mutex_ok(mu))
		return;
	int rc = pthread_mutex_trylock(mu);
	if (rc == EOWNERDEAD) {
		/* Only now does opening take a reader slot: to tidy. */
		pthread_mutex_consistent(mu);
		int err = 0;
		struct shmc__thr *t = shmc__thr_get(c, &err);
		if (t && t->depth == 0)
			ix_tidy(c, t);
	}
	if (rc == 0 || rc == EOWNERDEAD) {
		pool_audit_due(c);
		pthread_mutex_unlock(mu);
	}
}

/* Buckets in use under geometry g. */
uint64_t shmc__geom_buckets(uint64_t g)
{
	unsigned L = (unsigned)(g >> SHMC__GEOM_LEVEL_SHIFT) & 63u;
	return (1ull << L) + (g & SHMC__GEOM_SPLIT_MASK);
}

static bool overloaded(struct shmc__hdr *h, uint64_t g)
{
	int64_t items = shmc__load(&h->items_approx, __ATOMIC_RELAXED);
	return items > (int64_t)(shmc__geom_buckets(g) * SHMC__IX_LOAD);
}

void shmc__ix_maybe_grow(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	bool low = pool_low(c);
	if (!low && !overloaded(h, shmc__load(&h->index_geom, __ATOMIC_RELAXED)))
		return;
	if (t->depth || ix_lock(c, t, false) != 0)
		return; /* inside a read section, or someone else is at it */
	/* Scratch for the chains being split: on the heap, not in thread-
	 * local storage, which an initial-exec TLS library must keep small
	 * (see SHMC__TLS_IE). */
	struct gather *g = malloc(2 * sizeof(*g));
	pool_ensure(c, t);
	/* Catch up, a bounded number of splits per call (each ~100 ns). */
	for (int i = 0; g && i < 64 && overloaded(h, h->index_geom); i++)
		if (ix_split_one(c, t, &g[0], &g[1]) != 0)
			break;
	free(g);
	pthread_mutex_unlock(&h->index_lock);
}

void shmc__ix_prepare(struct shmc *c, struct shmc__thr *t)
{
	/* Stock the overflow pool before the first collision needs it. */
	if (ix_lock(c, t, true) == 0) {
		pool_ensure(c, t);
		pthread_mutex_unlock(&c->map.hdr->index_lock);
	}
}

/*
 * index_lock held: gives back the overflow chains of the committed head
 * buckets [from, to), all past geometry g's buckets, before their pages
 * are punched.  A split that died after its step 1, or a merge before its
 * step 3, left its buddy a chain (kept for the next split of it): the
 * punch would zero the buddy's lock word, the chain's only link, and its
 * buckets would be in none of the pool's three places, found by no later
 * audit unless a death asked for one.  No writer links anything to these
 * heads (shmc__ix_lock sends none of them here, and splits need
 * index_lock), so a head without a link is skipped unlocked.
 */
static void ix_unchain(struct shmc *c, struct shmc__thr *t, uint64_t from,
                       uint64_t to, struct gather *ga)
{
	/* to is from index_committed, shared memory: never into the pool */
	uint64_t heads = c->index_max_mask + 1 - c->pool_max;
	for (uint64_t b = from; b < to && b < heads; b++) {
		struct shmc__bucket *bk = shmc__bucket_at(c, b);
		if (!shmc__lk_link(shmc__load(&bk->lock, __ATOMIC_RELAXED)))
			continue;
		/* Locked, with an intent: a kill between the cut and the
		 * pushes of chain_write is a pool window its reclaim audits. */
		shmc__bucket_lock(c, t, b, 1, false);
		gather(c, bk, ga);
		chain_write(c, bk, NULL, 0, ga->links, ga->nlinks);
		shmc__bucket_unlock(c, t, b, 1);
	}
}

/* Releases index pages beyond what geometry g can reach (index_lock
 * held, so g stays the geometry); ga is scratch for ix_unchain. */
static void ix_trim(struct shmc *c, struct shmc__thr *t, uint64_t g,
                    struct gather *ga)
{
	struct shmc__hdr *h = c->map.hdr;
	if (!geom_valid(c, g))
		return; /* it cannot say what is in use: punch nothing */
	uint64_t keep = shmc__geom_buckets(g) * SHMC__BUCKET_SIZE;
	keep = (keep + IX_CHUNK - 1) & ~(uint64_t)(IX_CHUNK - 1);
	if (keep >= h->index_committed)
		return;
	/* Before the grace period: if the trim gives up there, the heads
	 * stay committed without chains, which a split rewrites anyway. */
	ix_unchain(c, t, keep / SHMC__BUCKET_SIZE,
	           h->index_committed / SHMC__BUCKET_SIZE, ga);
	/*
	 * A reader that loaded an older, larger geometry may still read the
	 * buckets the merges gave up, until it leaves its section: a grace
	 * period first (log_lock not held, as for every grace wait).  The
	 * epoch bump in shmc__synchronize is a full barrier after the
	 * merges' release stores of index_geom, and pairs with the fence
	 * (or membarrier) of shmc__read_enter: a reader that enters after it
	 * loads g or a newer geometry.  A reader that stalls it past the
	 * timeout (or our own section: SHMC_EBUSY) keeps the pages
	 * committed; a later resize trims them.
	 */
	if (shmc__synchronize(&c->map, t->slot, SHMC__GRACE_TIMEOUT_NS,
	                      shmc__dead_slot, false, c) != 0 ||
	    shmc__log_lock(c) != 0)
		return;
	/* Uncounted first, then punched (both under log_lock): a kill
	 * between leaves pages that the repair punches (log.c). */
	uint64_t was = h->index_committed;
	shmc__store(&h->index_committed, keep, __ATOMIC_RELAXED);
	shmc__seg_punch(&c->map, h->index_off + keep, was - keep);
	shmc__log_unlock(c);
}

int shmc__ix_resize(struct shmc *c, struct shmc__thr *t, uint64_t buckets)
{
	struct gather *g = malloc(2 * sizeof(*g)); /* see shmc__ix_maybe_grow */
	if (!g)
		return -ENOMEM;
	int rc = ix_lock(c, t, true);
	if (rc) {
		free(g);
		return rc;
	}
	struct shmc__hdr *h = c->map.hdr;
	while (rc == 0) {
		uint64_t now = shmc__geom_buckets(h->index_geom);
		if (now < buckets)
			rc = ix_split_one(c, t, &g[0], &g[1]);
		else if (now > buckets)
			rc = ix_merge_one(c, t, &g[0], &g[1]);
		else
			break;
	}
	ix_trim(c, t, h->index_geom, &g[0]);
	pthread_mutex_unlock(&h->index_lock);
	free(g);
	return rc == SHMC_EBUDGET ? 0 : rc;
}
