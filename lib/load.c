/*
 * load.c - get-or-load: one loader per missing key across all processes,
 * stale-while-revalidate, negative caching.
 *
 * WHAT
 * When a hot key expires or is evicted, every worker misses at once and
 * they would all ask the database together.  Here the first caller to miss
 * takes a *lease* on the key and runs the loader; the others find the
 * lease and wait for it; when the value is stored they all read it.  This
 * is the lease idea of "Scaling Memcache at Facebook" (Nishtala et al.,
 * NSDI 2013), with the waiting done in shared memory instead of by retries.
 *
 * HOW
 *   - A lease is an item of kind LEASE under the same key (the index holds
 *     one data item and one lease per key).  Its value names the loader's
 *     reader slot, the slot's lease_seq while loading, and a deadline.
 *   - The slot is the lease's mutable half: a thread loads one key at a
 *     time, so lease_seq (a futex word, odd while loading) and lease_rc
 *     (the result) live in its slot.  The loader stores the value, removes
 *     the lease, writes lease_rc, bumps lease_seq to even (release) and
 *     FUTEX_WAKEs everyone waiting on it.
 *   - A waiter FUTEX_WAITs on lease_seq in slices of at most 10 ms, and
 *     between slices checks that the loader is alive (its slot's robust
 *     mutex) and within its deadline.  If not, the next caller replaces
 *     the lease with its own (a takeover) and loads.  A waiter never waits
 *     past wait_ms (-ETIMEDOUT).
 *   - Stale-while-revalidate: a value loaded with a soft TTL carries its
 *     soft expiry in front of the value.  Past it, a caller that can take
 *     the lease without waiting refreshes the value; everyone else gets the
 *     stale value at once.  Past the hard TTL it is a miss as usual.
 *   - Negative caching: a loader's SHMC_ENOTFOUND is stored as an item of
 *     kind NEG for negative_ttl seconds and returned without loading.
 *
 * LOCKS AND ORDER
 * Lease decisions are made under the key's bucket lock (so two callers
 * cannot both take it).  Items are appended before that lock is taken,
 * since appending may evict, which takes log_lock and bucket locks.  A
 * holder's liveness is probed with no bucket lock held: reclaiming a dead
 * slot may take log_lock, which must never be taken under a bucket lock.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <urcu/futex.h>

#include "internal.h"

#define DEFAULT_LEASE_MS 10000u
#define DEFAULT_WAIT_MS 10000u
#define WAIT_SLICE_MS 10u

static uint64_t now_ms(void)
{
	/* CLOCK_MONOTONIC is one clock for every process of the host. */
	return shmc__now_ns() / 1000000u;
}

enum lease_result { LEASE_OURS, LEASE_BUSY, LEASE_RETRY };

struct holder {
	struct shmc__lease l;
};

/*
 * Takes the lease for key unless a live loader holds it (then *hold says
 * who) or a fresh value appeared meanwhile (LEASE_RETRY).  `stale_ok`:
 * the caller found a stale value and refreshes it.  On LEASE_OURS, *off
 * is our lease item and lease_seq is odd.
 */
static int take_lease(struct shmc *c, struct shmc__thr *t, uint64_t h,
                      const void *key, size_t klen, uint32_t lease_ms,
                      bool stale_ok, const struct holder *dead,
                      struct holder *hold, uint64_t *off)
{
	struct shmc__slot *s = t->s;
	uint32_t seq = s->lease_seq | 1u; /* the odd value we will hold */
	struct shmc__lease mine = {.slot = t->slot, .seq = seq,
	                           .deadline = now_ms() + lease_ms};
	shmc__section_enter(c, t); /* append to publish: see put() */
	int rc = shmc__item_append(c, t, h, key, klen, NULL, 0, &mine,
	                           sizeof(mine), 0, 0, SHMC__V_LEASE, off);
	if (rc) {
		shmc__section_exit(t);
		return rc;
	}
	struct shmc__ixl x;
	shmc__ix_lock(c, t, h, false, &x);
	uint64_t e;
	/* A fresh value stored since we looked: no load needed. */
	uint64_t *dway = shmc__ix_find_locked(c, &x, h, key, klen, false, &e);
	if (dway && !stale_ok) {
		const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
		if (!shmc__expired(it, shmc__now(c))) {
			shmc__ix_unlock(c, t, &x);
			shmc__section_exit(t);
			return LEASE_RETRY;
		}
	}
	uint64_t *way = shmc__ix_find_locked(c, &x, h, key, klen, true, &e);
	if (way) {
		const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
		bool junk = shmc__uvlen(it) != sizeof(hold->l);
		if (junk)
			memset(&hold->l, 0, sizeof(hold->l));
		else
			memcpy(&hold->l, shmc__uval(it), sizeof(hold->l));
		/* Take over only the very lease found dead or overdue, never
		 * one that someone took meanwhile; an overdue one may go at
		 * once (the deadline needs no probe). */
		bool gone = junk || now_ms() >= hold->l.deadline ||
		            (dead && !memcmp(&dead->l, &hold->l, sizeof(hold->l)));
		if (!gone) {
			shmc__ix_unlock(c, t, &x);
			shmc__section_exit(t);
			return LEASE_BUSY;
		}
		shmc__ctr_add(t, SHMC__C_TAKEOVERS, 1);
	}
	/* Odd before the lease can be seen: a waiter that finds the lease
	 * finds us loading.  Release pairs with the waiter's acquire. */
	shmc__store(&s->lease_seq, seq, __ATOMIC_RELEASE);
	bool grew = shmc__item_publish(c, t, &x, h, way, e, *off);
	shmc__ix_unlock(c, t, &x);
	shmc__section_exit(t);
	if (grew)
		shmc__items_delta(c, t, 1);
	return LEASE_OURS;
}

/* Removes our lease (if it is still ours) and wakes the waiters. */
static void drop_lease(struct shmc *c, struct shmc__thr *t, uint64_t h,
                       const void *key, size_t klen, uint64_t off, int rc)
{
	struct shmc__ixl x;
	shmc__ix_lock(c, t, h, false, &x);
	uint64_t e;
	uint64_t *way = shmc__ix_find_locked(c, &x, h, key, klen, true, &e);
	bool gone = way && shmc__e_loc(e) == off >> 3;
	if (gone)
		shmc__store(way, 0, __ATOMIC_RELEASE);
	shmc__ix_unlock(c, t, &x);
	if (gone) {
		/* Undo what publishing the lease counted (item_publish). */
		shmc__ctr_add(t, SHMC__C_ITEMS, (uint64_t)-1);
		shmc__items_delta(c, t, -1);
	}
	struct shmc__slot *s = t->s;
	s->lease_rc = rc;
	/* Release: lease_rc and the stored value are visible to a waiter
	 * that sees the even sequence (acquire in wait_for). */
	shmc__store(&s->lease_seq, s->lease_seq + 1, __ATOMIC_RELEASE);
	futex_async((int32_t *)&s->lease_seq, FUTEX_WAKE, INT32_MAX, NULL,
	            NULL, 0);
}

/*
 * Waits while `hold` loads.  Returns 0 to look again (done, died, or past
 * its deadline: *takeover says which), the loader's error if it failed,
 * or -ETIMEDOUT at `until_ms`.
 */
static int wait_for(struct shmc *c, struct shmc__thr *t,
                    const struct holder *hold, uint64_t until_ms,
                    bool *takeover)
{
	*takeover = false;
	if (hold->l.slot >= c->max_readers || !(hold->l.seq & 1u)) {
		*takeover = true;
		return 0;
	}
	struct shmc__slot *s = shmc__slot_at(&c->map, hold->l.slot);
	uint64_t t0 = shmc__now_ns();
	int rc = 0;
	shmc__ctr_add(t, SHMC__C_LOAD_WAITS, 1);
	for (;;) {
		/* Acquire: pairs with the release in drop_lease. */
		uint32_t v = shmc__load(&s->lease_seq, __ATOMIC_ACQUIRE);
		if (v != hold->l.seq) {
			/* The load this lease names is over, however it
			 * ended: a lease still in the index is an orphan (its
			 * loader died and the slot was reused, or its item
			 * moved), and take_lease may replace exactly it. */
			*takeover = true;
			if (v == hold->l.seq + 1) {
				int lrc = shmc__load(&s->lease_rc,
				                     __ATOMIC_RELAXED);
				/* Trust it only if no later load of that
				 * thread overwrote it meanwhile (acquire
				 * orders the re-read after the rc load). */
				if (shmc__load(&s->lease_seq,
				               __ATOMIC_ACQUIRE) != v)
					lrc = 0; /* look in the cache again */
				/* Hand a failure on; a success (or a cached
				 * "not found") is read from the cache. */
				if (lrc && lrc != SHMC_ENOTFOUND &&
				    lrc != SHMC_EBUFSIZE)
					rc = lrc;
			}
			break;
		}
		uint64_t now = now_ms();
		if (now >= hold->l.deadline ||
		    shmc__slot_probe(&c->map, hold->l.slot, shmc__dead_slot,
		                     false, c) == 0) {
			*takeover = true;
			break;
		}
		if (now >= until_ms) {
			rc = -ETIMEDOUT;
			break;
		}
		uint64_t ms = until_ms - now;
		if (ms > WAIT_SLICE_MS)
			ms = WAIT_SLICE_MS;
		struct timespec ts = {0, (long)(ms * 1000000u)};
		futex_async((int32_t *)&s->lease_seq, FUTEX_WAIT,
		            (int32_t)hold->l.seq, &ts, NULL, 0);
	}
	shmc__ctr_add(t, SHMC__C_LOAD_WAIT_NS, shmc__now_ns() - t0);
	return rc;
}

/* Whether index entry e is our lease: the item we appended, or a copy of
 * it that eviction moved forward (same slot and sequence). */
static bool lease_is_ours(struct shmc *c, struct shmc__thr *t, uint64_t e,
                          uint64_t lease_off)
{
	if (shmc__e_loc(e) == lease_off >> 3)
		return true;
	const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
	struct shmc__lease l;
	if (!it || shmc__uvlen(it) != sizeof(l))
		return false;
	memcpy(&l, shmc__uval(it), sizeof(l));
	return l.slot == t->slot && l.seq == t->s->lease_seq;
}

/*
 * Stores a loaded value (or a "not found") for key, if our lease (item at
 * lease_off) is still in the index.  A lease that is gone was taken away
 * by shmc_del (the source changed while we loaded: what we hold may be
 * older than the change) or by a takeover (another loader stores): then
 * nothing is published, the appended bytes are left to eviction, and the
 * value still goes to our callers.
 */
static int store(struct shmc *c, struct shmc__thr *t, uint64_t h,
                 const void *key, size_t klen, const void *val, size_t vlen,
                 uint32_t flags, const struct shmc_load_opts *o, int lrc,
                 uint64_t lease_off)
{
	uint32_t soft = 0, kind = 0, ttl = o->ttl ? o->ttl : SHMC_TTL_DEFAULT;
	const void *pre = NULL;
	uint32_t prelen = 0;
	int32_t neg = lrc;
	if (lrc == SHMC_ENOTFOUND) {
		if (!o->negative_ttl)
			return 0;
		kind = SHMC__V_NEG;
		ttl = o->negative_ttl;
		val = &neg;
		vlen = sizeof(neg);
		flags = 0;
	} else if (o->soft_ttl) {
		soft = shmc__now(c) + o->soft_ttl;
		kind = SHMC__V_SOFT;
		pre = &soft;
		prelen = sizeof(soft);
	}
	if (vlen > SHMC__V_LEN_MASK - 8 ||
	    shmc__item_size(klen, prelen + vlen) >
	        c->seg_size - SHMC__SEGHDR_SIZE)
		return SHMC_EVALLEN;
	if (ttl != SHMC_TTL_DEFAULT && ttl > SHMC__TTL_MAX)
		return -EINVAL;
	uint64_t off;
	shmc__section_enter(c, t); /* append to publish: see put() */
	int rc = shmc__item_append(c, t, h, key, klen, pre, prelen, val, vlen,
	                           shmc__expiry(c, ttl), flags, kind, &off);
	if (rc) {
		shmc__section_exit(t);
		return rc;
	}
	struct shmc__ixl x;
	shmc__ix_lock(c, t, h, false, &x);
	uint64_t e;
	/* Checked under the bucket lock shmc_del takes: a delete is either
	 * before this (no publish) or after it (it removes our value). */
	uint64_t *lway = shmc__ix_find_locked(c, &x, h, key, klen, true, &e);
	if (!lway || !lease_is_ours(c, t, e, lease_off)) {
		shmc__ix_unlock(c, t, &x);
		shmc__section_exit(t);
		return 0;
	}
	uint64_t *way = shmc__ix_find_locked(c, &x, h, key, klen, false, &e);
	bool grew = shmc__item_publish(c, t, &x, h, way, e, off);
	shmc__ix_unlock(c, t, &x);
	shmc__section_exit(t);
	shmc__ctr_add(t, SHMC__C_SETS, 1);
	if (grew)
		shmc__items_delta(c, t, 1);
	return 0;
}

/* We hold the lease: load, store, drop the lease.  Returns the caller's
 * result (the stale copy in buf stands if a refresh fails). */
static int run_loader(struct shmc *c, struct shmc__thr *t, uint64_t h,
                      const void *key, size_t klen, void *buf, size_t *vlen,
                      uint32_t *flags, shmc_loader_fn loader, void *arg,
                      const struct shmc_load_opts *o, uint64_t lease_off,
                      bool refreshing)
{
	size_t cap = *vlen, n = cap, outcap = cap;
	uint32_t fl = 0;
	void *out = buf, *tmp = NULL;
	t->loading = true;
	shmc__ctr_add(t, SHMC__C_LOADS, 1);
	/* A refresh must not overwrite the stale copy it may fall back to. */
	if (refreshing && cap) {
		out = tmp = malloc(cap);
		if (!out) {
			t->loading = false;
			drop_lease(c, t, h, key, klen, lease_off, -ENOMEM);
			return 0;
		}
	}
	int lrc = loader(key, klen, out, &n, &fl, arg);
	if (lrc == SHMC_EBUFSIZE && n > cap) {
		free(tmp);
		out = tmp = malloc(n);
		outcap = n;
		lrc = out ? loader(key, klen, out, &n, &fl, arg) : -ENOMEM;
	}
	t->loading = false;
	if (lrc == 0 && n > outcap)
		lrc = -EINVAL; /* the loader claimed more than it was given */
	int src = 0;
	if (lrc == 0 || lrc == SHMC_ENOTFOUND)
		src = store(c, t, h, key, klen, out, n, fl, o, lrc,
		            lease_off);
	drop_lease(c, t, h, key, klen, lease_off, lrc);
	int rc;
	if (lrc && refreshing) {
		rc = 0; /* keep serving the stale value */
	} else if (lrc) {
		rc = lrc;
	} else if (n > cap) {
		/* SHMC_EBUFSIZE promises the value is in the cache; when the
		 * store failed it is not, and asking again would run the
		 * loader again: the store's error instead. */
		*vlen = n;
		rc = src ? src : SHMC_EBUFSIZE;
	} else {
		if (out != buf)
			memcpy(buf, out, n);
		*vlen = n;
		if (flags)
			*flags = fl;
		rc = src;
	}
	free(tmp);
	return rc;
}

int shmc_get_or_load(shmc_t *c, const void *key, size_t klen, void *buf,
                     size_t *vlen, uint32_t *flags, shmc_loader_fn loader,
                     void *arg, const struct shmc_load_opts *opts)
{
	if (!c || !key || !vlen || !loader || (!buf && *vlen))
		return -EINVAL;
	if (klen == 0 || klen > SHMC_KEY_MAX)
		return SHMC_EKEYLEN;
	int rc = 0;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	if (t->depth || t->loading)
		return SHMC_EBUSY;
	struct shmc_load_opts o = opts ? *opts : (struct shmc_load_opts){0};
	if (!o.lease_ms)
		o.lease_ms = DEFAULT_LEASE_MS;
	if (!o.wait_ms)
		o.wait_ms = DEFAULT_WAIT_MS;
	uint64_t h = shmc__hash(key, klen);
	uint64_t until = now_ms() + o.wait_ms;
	struct holder dead = {0};
	bool takeover = false;
	for (;;) {
		shmc__section_enter(c, t);
		const struct shmc__item *it = shmc__lookup(c, t, h, key, klen);
		bool stale = false;
		int vrc = SHMC_ENOTFOUND;
		if (it && (it->vword & SHMC__V_NEG)) {
			vrc = SHMC_ENOTFOUND;
		} else if (it) {
			uint32_t soft = 0;
			if (shmc__prefix(it))
				memcpy(&soft, it->data + it->klen, sizeof(soft));
			stale = soft && soft <= shmc__now(c);
			vrc = shmc__copy_out(it, buf, vlen, flags);
		}
		shmc__mrc_get(c, h, it && !(it->vword & SHMC__V_NEG) ? it : NULL);
		shmc__section_exit(t);
		shmc__ctr_add(t, it ? SHMC__C_HITS : SHMC__C_MISSES, 1);
		if (it && !stale)
			return vrc;
		/* A miss, or a stale value to refresh. */
		struct holder hold;
		uint64_t off;
		rc = take_lease(c, t, h, key, klen, o.lease_ms, stale,
		                takeover ? &dead : NULL, &hold, &off);
		if (rc == LEASE_OURS)
			return run_loader(c, t, h, key, klen, buf, vlen, flags,
			                  loader, arg, &o, off,
			                  stale && vrc == 0);
		if (rc < 0)
			return it ? vrc : rc;
		if (rc == LEASE_RETRY)
			continue;
		if (stale) {
			/* Someone refreshes it: the stale value now. */
			shmc__ctr_add(t, SHMC__C_STALE, 1);
			return vrc;
		}
		rc = wait_for(c, t, &hold, until, &takeover);
		if (rc)
			return rc;
		dead = hold;
	}
}
