/*
 * log.c - memory as a log of fixed-size segments, evicted with S3-FIFO.
 *
 * WHAT
 * Data lives in segments (1 MiB by default).  Each writer thread appends
 * to its own open segment with no lock at all; only taking a new segment
 * takes log_lock, about once per segment_size bytes written.  A full
 * segment is sealed onto the tail of the small FIFO.
 *
 * EVICTION (S3-FIFO, Yang et al., "FIFO queues are all you need for cache
 * eviction", SOSP 2023), applied to whole segments as Segcache does
 * (Yang et al., NSDI 2021):
 *   - New items enter the small queue (~10% of the segments).
 *   - A hit sets the entry's 2-bit frequency (readers, see index.c).
 *   - When the small queue is over 10%, its head segment is evicted: live
 *     items with frequency > 0 are copied forward into the main queue
 *     (frequency reset), the others dropped, their fingerprints put into
 *     a ghost table.  Otherwise the main queue's head is evicted: items
 *     with frequency > 0 are copied forward with frequency - 1, like a
 *     CLOCK hand, the rest dropped.
 *   - A set whose key is in the ghost table (evicted from small recently)
 *     is written with frequency 1, so it goes to main at its first
 *     eviction.  The paper inserts such keys straight into main; doing it
 *     through the frequency bit keeps one open segment per writer instead
 *     of two, and the item still skips the small queue's filter.
 *   - Expired items are never copied forward; a segment at a queue's head
 *     whose newest expiry has passed is dropped whole.
 * A one-pass scan fills the small queue with frequency-0 items that leave
 * it without touching main, which is why the hot set survives scans and
 * surges of new keys.
 *
 * REUSE
 * An evicted segment first leaves the index (every entry pointing into it
 * is removed or moved under its bucket lock), then is retired with a fresh
 * epoch, and becomes free only once every reader slot is at 0 or at a newer
 * epoch (shm/epoch.c).  Readers never wait; the evicting writer waits at
 * most SHMC__GRACE_TIMEOUT_NS for a reader that is alive and inside.
 *
 * CRASH SAFETY
 * The state word in each segment header is the truth; the lists in the
 * header are derived from it.  If a process dies holding log_lock, the
 * next locker gets EOWNERDEAD and rebuilds every list from the states
 * (log_repair), ordering the queues by each segment's seal sequence.  A
 * segment evicted half-way is still in its queue and is evicted again:
 * eviction is idempotent because it only touches entries that point into
 * the victim.
 *
 * INVARIANTS (checked by shmc_check)
 *   - committed bytes never exceed the budget: a segment is committed only
 *     when committed + segment_size <= memory.
 *   - SHMC__CF_RESERVE free segments are kept for copy-forward: a writer
 *     evicts before taking the last one, so one victim's hot items always
 *     have somewhere to go.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* The budget: stored by a resize without log_lock (resize.c), so read
 * atomically; acquire pairs with its release store. */
static uint64_t budget(const struct shmc__hdr *h)
{
	return shmc__load(&h->memory, __ATOMIC_ACQUIRE);
}

static uint32_t seg_id(struct shmc *c, uint32_t link)
{
	/* links are id + 1; anything out of range ends the list */
	return link && link <= c->nseg_max ? link - 1 : UINT32_MAX;
}

static void list_push(struct shmc *c, uint32_t *head, uint32_t *tail,
                      uint32_t *count, uint32_t id)
{
	shmc__seg(c, id)->next = SHMC__NONE;
	if (*tail && seg_id(c, *tail) != UINT32_MAX)
		shmc__seg(c, seg_id(c, *tail))->next = id + 1;
	else
		*head = id + 1;
	*tail = id + 1;
	(*count)++;
}

static uint32_t list_pop(struct shmc *c, uint32_t *head, uint32_t *tail,
                         uint32_t *count)
{
	uint32_t id = seg_id(c, *head);
	if (id == UINT32_MAX) {
		*head = *tail = 0;
		*count = 0;
		return UINT32_MAX;
	}
	*head = shmc__seg(c, id)->next;
	if (!*head)
		*tail = 0;
	if (*count)
		(*count)--;
	return id;
}

/* Unlinks id, known to follow prev (UINT32_MAX = it is the head). */
static void list_unlink(struct shmc *c, uint32_t *head, uint32_t *tail,
                        uint32_t *count, uint32_t prev, uint32_t id)
{
	uint32_t next = shmc__seg(c, id)->next;
	if (prev == UINT32_MAX)
		*head = next;
	else
		shmc__seg(c, prev)->next = next;
	if (*tail == id + 1)
		*tail = prev == UINT32_MAX ? 0 : prev + 1;
	if (*count)
		(*count)--;
}

#define HDR_LIST(h, q) &(h)->q##_head, &(h)->q##_tail, &(h)->q##_count

static void seal_into(struct shmc *c, uint32_t id, uint32_t state)
{
	struct shmc__hdr *h = c->map.hdr;
	struct shmc__seghdr *sh = shmc__seg(c, id);
	sh->owner = 0;
	sh->seq = ++h->seal_seq;
	sh->state = state;
	if (state == SHMC__SEG_MAIN)
		list_push(c, HDR_LIST(h, main), id);
	else
		list_push(c, HDR_LIST(h, small), id);
}

static void make_free(struct shmc *c, uint32_t id)
{
	struct shmc__hdr *h = c->map.hdr;
	struct shmc__seghdr *sh = shmc__seg(c, id);
	sh->magic = SHMC__SEG_MAGIC;
	sh->state = SHMC__SEG_FREE;
	sh->owner = 0;
	list_push(c, HDR_LIST(h, free), id);
}

/* Prepares a segment taken from the free list for appending.  The header
 * is reset before the state says OPEN, so a repair never walks stale
 * bytes as if they were this life's items. */
static void make_open(struct shmc *c, uint32_t id, uint32_t state,
                      uint32_t owner)
{
	struct shmc__seghdr *sh = shmc__seg(c, id);
	sh->magic = SHMC__SEG_MAGIC;
	shmc__store(&sh->write_off, SHMC__SEGHDR_SIZE, __ATOMIC_RELEASE);
	sh->max_expiry = 0;
	sh->nitems = 0;
	sh->owner = owner;
	sh->next = SHMC__NONE;
	shmc__store(&sh->state, state, __ATOMIC_RELEASE);
}

/* log_lock held.  Takes the slot's open segment away from it: free if
 * empty, parked if mostly empty and may_park (its writer is leaving),
 * else sealed into the small queue. */
static void log_close_open(struct shmc *c, uint32_t slot, bool may_park)
{
	struct shmc__slot *s = shmc__slot_at(&c->map, slot);
	uint32_t id = seg_id(c, s->open_seg);
	shmc__store(&s->open_seg, 0, __ATOMIC_RELAXED);
	if (id == UINT32_MAX || id >= c->map.hdr->nseg_committed)
		return;
	struct shmc__seghdr *sh = shmc__seg(c, id);
	if (sh->state != SHMC__SEG_OPEN || sh->owner != slot + 1)
		return;
	uint64_t w = shmc__load(&sh->write_off, __ATOMIC_RELAXED);
	if (w <= SHMC__SEGHDR_SIZE) {
		make_free(c, id);
	} else if (may_park && w <= c->seg_size / 2) {
		/* Mostly empty: park it for the next writer rather than
		 * spend a whole segment on a short-lived one (a process that
		 * sets a few keys and exits).  Its items stay live. */
		sh->owner = 0;
		sh->state = SHMC__SEG_PARKED;
		list_push(c, HDR_LIST(c->map.hdr, park), id);
	} else {
		seal_into(c, id, SHMC__SEG_SMALL);
	}
}

void shmc__log_seal_open(struct shmc *c, uint32_t slot)
{
	log_close_open(c, slot, true);
}

struct seq_id {
	uint64_t seq;
	uint32_t id;
};

static int by_seq(const void *a, const void *b)
{
	const struct seq_id *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Rebuilds every list from the segment states after a process died
 * holding log_lock.  Bounded by nseg_committed (itself bounded).
 */
static void log_repair(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t n = h->nseg_committed;
	if (n > c->nseg_max)
		n = h->nseg_committed = c->nseg_max;
	struct seq_id *sm = calloc(n + 1, sizeof(*sm));
	struct seq_id *mn = calloc(n + 1, sizeof(*mn));
	uint32_t nsm = 0, nmn = 0, holes = 0;
	h->free_head = h->free_tail = h->free_count = 0;
	h->small_head = h->small_tail = h->small_count = 0;
	h->main_head = h->main_tail = h->main_count = 0;
	h->retire_head = h->retire_tail = h->retire_count = 0;
	h->park_head = h->park_tail = h->park_count = 0;
	uint32_t cf = seg_id(c, h->cf_seg);
	if (cf >= n || shmc__seg(c, cf)->state != SHMC__SEG_CF)
		h->cf_seg = 0;
	for (uint32_t id = 0; id < n; id++) {
		struct shmc__seghdr *sh = shmc__seg(c, id);
		if (shmc__seg_is_hole(c, id)) {
			holes++;
			continue;
		}
		uint32_t owner = sh->owner;
		switch (sh->state) {
		case SHMC__SEG_OPEN:
			if (owner && owner <= c->max_readers &&
			    shmc__slot_at(&c->map, owner - 1)->open_seg ==
			        id + 1)
				continue;
			sh->seq = ++h->seal_seq;
			sh->state = SHMC__SEG_SMALL;
			/* fall through */
		case SHMC__SEG_SMALL:
			if (sm)
				sm[nsm++] = (struct seq_id){sh->seq, id};
			break;
		case SHMC__SEG_CF:
			if (h->cf_seg == id + 1)
				continue;
			sh->seq = ++h->seal_seq;
			sh->state = SHMC__SEG_MAIN;
			/* fall through */
		case SHMC__SEG_MAIN:
			if (mn)
				mn[nmn++] = (struct seq_id){sh->seq, id};
			break;
		case SHMC__SEG_PARKED:
			list_push(c, HDR_LIST(h, park), id);
			break;
		case SHMC__SEG_RETIRED:
			/* Its eviction may have died anywhere: memory it held
			 * is reused only after a grace period that starts now. */
			sh->retire_epoch = shmc__epoch_bump(&c->map);
			list_push(c, HDR_LIST(h, retire), id);
			break;
		case SHMC__SEG_FREE:
			make_free(c, id);
			break;
		case SHMC__SEG_UNUSED:
			/* A commit that died before its state was written,
			 * or a punch cut short: make it a whole hole, so
			 * the file's blocks match what is counted. */
			holes++;
			shmc__seg_punch(&c->map,
			                h->data_off +
			                    ((uint64_t)id << c->seg_shift),
			                c->seg_size);
			break;
		default:
			/* Unknown state: keep it out of use but evictable,
			 * so anything it holds leaves the index properly. */
			sh->state = SHMC__SEG_SMALL;
			if (sm)
				sm[nsm++] = (struct seq_id){sh->seq, id};
		}
	}
	if (sm) {
		qsort(sm, nsm, sizeof(*sm), by_seq);
		for (uint32_t i = 0; i < nsm; i++)
			list_push(c, HDR_LIST(h, small), sm[i].id);
	}
	if (mn) {
		qsort(mn, nmn, sizeof(*mn), by_seq);
		for (uint32_t i = 0; i < nmn; i++)
			list_push(c, HDR_LIST(h, main), mn[i].id);
	}
	free(sm);
	free(mn);
	h->holes = holes;
	h->committed = shmc__fixed_committed(c) +
	               ((uint64_t)(n - holes) << c->seg_shift);
}

int shmc__log_lock(struct shmc *c)
{
	if (shmc__lock(&c->map.hdr->log_lock) == 1)
		log_repair(c);
	return 0;
}

bool shmc__log_trylock(struct shmc *c)
{
	int rc = pthread_mutex_trylock(&c->map.hdr->log_lock);
	if (rc == EOWNERDEAD) {
		pthread_mutex_consistent(&c->map.hdr->log_lock);
		log_repair(c);
		return true;
	}
	return rc == 0;
}

void shmc__log_unlock(struct shmc *c)
{
	shmc__unlock(&c->map.hdr->log_lock);
}

void shmc__ghost_put(struct shmc *c, uint64_t h)
{
	uint64_t mask = c->map.hdr->ghost_mask & (c->index_max_mask * 4 + 3);
	/* A hint only: relaxed, and a lost or torn update costs a hit. */
	shmc__store(&c->ghost[h & mask], (uint32_t)(h >> 32) | 1u,
	              __ATOMIC_RELAXED);
}

bool shmc__ghost_hit(struct shmc *c, uint64_t h)
{
	uint64_t mask = c->map.hdr->ghost_mask & (c->index_max_mask * 4 + 3);
	return shmc__load(&c->ghost[h & mask], __ATOMIC_RELAXED) ==
	       ((uint32_t)(h >> 32) | 1u);
}

static int get_segment(struct shmc *c, struct shmc__thr *t, bool cf,
                       uint64_t need, uint32_t *out);
static int refill(struct shmc *c, struct shmc__thr *t, uint64_t need);
static void log_close_open(struct shmc *c, uint32_t slot, bool may_park);

/* Appends a copy of item it (sz bytes) to the copy-forward segment and
 * returns its location, or 0 when no segment is left for it. */
static uint64_t cf_copy(struct shmc *c, struct shmc__thr *t,
                        const struct shmc__item *it, uint64_t sz)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t id = seg_id(c, h->cf_seg);
	if (id != UINT32_MAX &&
	    shmc__seg(c, id)->write_off + sz > c->seg_size) {
		seal_into(c, id, SHMC__SEG_MAIN);
		h->cf_seg = 0;
		id = UINT32_MAX;
	}
	if (id == UINT32_MAX) {
		if (get_segment(c, t, true, 0, &id) != 0)
			return 0;
		make_open(c, id, SHMC__SEG_CF, 0);
		h->cf_seg = id + 1;
	}
	struct shmc__seghdr *sh = shmc__seg(c, id);
	uint64_t w = sh->write_off;
	uint64_t off = ((uint64_t)id << c->seg_shift) + w;
	memcpy(c->data + off, it, sz);
	uint32_t ex = it->expiry ? it->expiry : UINT32_MAX;
	if (ex > sh->max_expiry)
		sh->max_expiry = ex;
	sh->nitems++;
	/* Release: the copy is complete below write_off before the caller
	 * publishes it (and before check() reads write_off). */
	shmc__store(&sh->write_off, w + sz, __ATOMIC_RELEASE);
	return off >> 3;
}

/* Takes every live item out of segment v (already off its queue). */
static void evict_items(struct shmc *c, struct shmc__thr *t, uint32_t v,
                        bool from_small, uint32_t now)
{
	struct shmc__seghdr *sh = shmc__seg(c, v);
	uint64_t w = sh->write_off;
	if (w > c->seg_size)
		w = c->seg_size;
	uint64_t base = (uint64_t)v << c->seg_shift;
	int64_t removed = 0;
	for (uint64_t off = SHMC__SEGHDR_SIZE;
	     off + sizeof(struct shmc__item) <= w;) {
		const struct shmc__item *it =
		    (const struct shmc__item *)(c->data + base + off);
		uint64_t sz = shmc__item_size(it->klen, shmc__vlen(it));
		if (sz > w - off)
			break; /* a torn tail: nothing past it was published */
		uint64_t loc = (base + off) >> 3;
		uint64_t hsh = shmc__hash(it->data, it->klen);
		struct shmc__ixl x;
		shmc__ix_lock(c, t, hsh, true, &x);
		uint64_t e = 0;
		uint64_t *way = shmc__ix_find_loc(c, &x, loc, &e);
		if (way) {
			unsigned f = shmc__e_freq(e);
			uint64_t nl = 0;
			if (shmc__expired(it, now)) {
				shmc__ctr_add(t, SHMC__C_EXPIRATIONS, 1);
			} else if (f > 0 && (nl = cf_copy(c, t, it, sz)) != 0) {
				shmc__ctr_add(t, SHMC__C_COPY_FORWARDS, 1);
			} else {
				shmc__ctr_add(t, SHMC__C_EVICTIONS, 1);
				if (from_small)
					shmc__ghost_put(c, hsh);
			}
			uint64_t ne =
			    nl ? shmc__e_make(shmc__e_tag(e),
			                      from_small ? 0 : f - 1, nl)
			       : 0;
			/* Release: a moved item's copy is complete before
			 * the entry points at it.  Pairs with the acquire in
			 * shmc__bucket_find. */
			shmc__store(way, ne, __ATOMIC_RELEASE);
			if (!ne) {
				shmc__ctr_add(t, SHMC__C_ITEMS, (uint64_t)-1);
				removed++;
			}
		}
		shmc__ix_unlock(c, t, &x);
		off += sz;
	}
	if (removed)
		uatomic_add(&c->map.hdr->items_approx, -removed);
}

/* A queue's first few segments whose every item has expired. */
static bool take_expired(struct shmc *c, uint32_t *head, uint32_t *tail,
                         uint32_t *count, uint32_t now, uint32_t *out)
{
	uint32_t prev = UINT32_MAX, id = seg_id(c, *head);
	for (int k = 0; k < 4 && id != UINT32_MAX; k++) {
		uint32_t mx = shmc__seg(c, id)->max_expiry;
		if (mx != 0 && mx != UINT32_MAX && mx <= now) {
			list_unlink(c, head, tail, count, prev, id);
			*out = id;
			return true;
		}
		prev = id;
		id = seg_id(c, shmc__seg(c, id)->next);
	}
	return false;
}

/* Evicts one segment onto the retire list.  0 or SHMC_ESTALLED when there
 * is nothing left to evict (all memory is in open segments). */
static int evict_one(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t now = shmc__now(c), v;
	bool from_small;
	if (take_expired(c, HDR_LIST(h, small), now, &v))
		from_small = true;
	else if (take_expired(c, HDR_LIST(h, main), now, &v))
		from_small = false;
	else {
		/* Parked segments hold live items: evictable like the rest
		 * once there is nothing else. */
		if (!h->small_count && !h->main_count && h->park_count) {
			uint32_t p = list_pop(c, HDR_LIST(h, park));
			if (p != UINT32_MAX)
				seal_into(c, p, SHMC__SEG_SMALL);
		}
		uint32_t total = h->small_count + h->main_count;
		from_small = h->small_count > 0 &&
		             (h->small_count * 10u >= total || !h->main_count);
		v = from_small ? list_pop(c, HDR_LIST(h, small))
		               : list_pop(c, HDR_LIST(h, main));
		if (v == UINT32_MAX)
			return SHMC_ESTALLED;
	}
	evict_items(c, t, v, from_small, now);
	struct shmc__seghdr *sh = shmc__seg(c, v);
	/* The epoch first, then the state: a repair trusts the epoch of any
	 * segment it finds RETIRED (and stamps a fresh one anyway).  The
	 * bump is a full barrier after every unpublishing store above. */
	sh->retire_epoch = shmc__epoch_bump(&c->map);
	shmc__store(&sh->state, SHMC__SEG_RETIRED, __ATOMIC_RELEASE);
	list_push(c, HDR_LIST(h, retire), v);
	shmc__ctr_add(t, SHMC__C_SEGS_EVICTED, 1);
	t->evicted = true;
	return 0;
}

/* Moves retired segments whose grace period is over to the free list;
 * waits for the oldest one if wait.  0, SHMC_EBUSY or SHMC_ESTALLED. */
static int reclaim_retired(struct shmc *c, struct shmc__thr *t, bool wait)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t id = seg_id(c, h->retire_head);
	if (id == UINT32_MAX)
		return 0;
	uint64_t e = shmc__seg(c, id)->retire_epoch;
	if (wait) {
		int rc = shmc__epoch_wait(&c->map, e, t->slot,
		                          SHMC__GRACE_TIMEOUT_NS,
		                          shmc__dead_slot, true, c);
		shmc__ctr_add(t, SHMC__C_GRACE_PERIODS, 1);
		if (rc) {
			shmc__ctr_add(t, SHMC__C_STALLS, 1);
			return rc;
		}
	} else if (!shmc__epoch_safe(&c->map, e, t->slot, shmc__dead_slot,
	                             true, c)) {
		return 0;
	}
	/* Everything retired up to epoch e is now safe. */
	while ((id = seg_id(c, h->retire_head)) != UINT32_MAX &&
	       shmc__seg(c, id)->retire_epoch <= e) {
		list_pop(c, HDR_LIST(h, retire));
		make_free(c, id);
	}
	return 0;
}

/* The first segment punched out by a shrink, or nseg_committed. */
static uint32_t next_uncommitted(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t n = h->nseg_committed < c->nseg_max ? h->nseg_committed
	                                             : c->nseg_max;
	if (h->holes)
		for (uint32_t id = 0; id < n; id++)
			if (shmc__seg_is_hole(c, id))
				return id;
	return n;
}

static int commit_one(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t id = next_uncommitted(c);
	if (id >= c->nseg_max)
		return SHMC_EBUDGET;
	int rc = shmc__seg_commit(&c->map,
	                          h->data_off + ((uint64_t)id << c->seg_shift),
	                          c->seg_size);
	if (rc)
		return rc;
	if (id == h->nseg_committed)
		h->nseg_committed = id + 1;
	else
		h->holes--;
	h->committed += c->seg_size;
	make_free(c, id);
	return 0;
}

/* Punches free segment id out of the file: it becomes a hole. */
static int punch_one(struct shmc *c, uint32_t id)
{
	struct shmc__hdr *h = c->map.hdr;
	int rc = shmc__seg_punch(&c->map,
	                         h->data_off + ((uint64_t)id << c->seg_shift),
	                         c->seg_size);
	if (rc) {
		make_free(c, id);
		return rc;
	}
	/* The punched range reads as zeros: state UNUSED, the mark of a
	 * hole (a repair recognises it as one). */
	h->holes++;
	h->committed -= c->seg_size;
	return 0;
}

/*
 * log_lock held.  When open segments hold a large share of memory, looks
 * for dead threads among their owners: a dead slot is reclaimed by the
 * probe, which seals its segment (shmc__dead_slot).  Otherwise memory held
 * by killed writers would come back only when something else probed them.
 */
static void reap_dead_writers(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t parked = h->free_count + h->small_count + h->main_count +
	                  h->retire_count + h->park_count + h->holes +
	                  (h->cf_seg != 0);
	uint32_t open = h->nseg_committed > parked ? h->nseg_committed - parked
	                                           : 0;
	if (open * 4 < h->nseg_committed)
		return;
	for (uint32_t i = 0; i < c->max_readers; i++) {
		struct shmc__slot *s = shmc__slot_at(&c->map, i);
		if (!shmc__load(&s->open_seg, __ATOMIC_RELAXED))
			continue;
		shmc__slot_probe(&c->map, i, shmc__dead_slot, true, c);
		/* A free slot may still hold a dead thread's segment (a
		 * reclaim that found log_lock busy leaves it there).  With
		 * the slot's mutex held nobody can claim it meanwhile. */
		if (shmc__load(&s->state, __ATOMIC_ACQUIRE) == SHMC__SLOT_FREE &&
		    shmc__load(&s->open_seg, __ATOMIC_RELAXED) &&
		    pthread_mutex_trylock(&s->mutex) == 0) {
			if (shmc__load(&s->state, __ATOMIC_ACQUIRE) ==
			    SHMC__SLOT_FREE)
				log_close_open(c, i, true);
			pthread_mutex_unlock(&s->mutex);
		}
	}
}

/*
 * log_lock held.  When every segment is some thread's open segment (more
 * writing threads than segments), takes one away from another thread:
 * clear its slot's open_seg, wait a grace period - every write runs in a
 * read section, so after it no append or publish into that segment is in
 * flight and the owner's next write sees 0 and takes the slow path - then
 * seal it into the small queue, where eviction can have it.
 */
static int revoke_one(struct shmc *c, struct shmc__thr *t)
{
	static __thread uint32_t cursor;
	for (uint32_t k = 0; k < c->max_readers; k++) {
		uint32_t i = (cursor + k) % c->max_readers;
		struct shmc__slot *s = shmc__slot_at(&c->map, i);
		uint32_t os = shmc__load(&s->open_seg, __ATOMIC_RELAXED);
		uint32_t id = seg_id(c, os);
		if (i == t->slot || id >= c->map.hdr->nseg_committed)
			continue;
		struct shmc__seghdr *sh = shmc__seg(c, id);
		if (sh->state != SHMC__SEG_OPEN || sh->owner != i + 1)
			continue;
		cursor = i + 1;
		uint32_t gen = shmc__load(&s->generation, __ATOMIC_RELAXED);
		shmc__store(&s->open_seg, 0, __ATOMIC_RELAXED);
		/* The bump inside is a full barrier after the store above;
		 * pairs with the owner's section entry (fence or membarrier). */
		int rc = shmc__synchronize(&c->map, t->slot,
		                           SHMC__GRACE_TIMEOUT_NS, shmc__dead_slot,
		                           true, c);
		shmc__ctr_add(t, SHMC__C_GRACE_PERIODS, 1);
		if (rc) {
			/* Still in use: give it back to its owner, if that
			 * thread is still there; one that left meanwhile saw
			 * 0 and sealed nothing, so seal it here. */
			if (shmc__load(&s->state, __ATOMIC_ACQUIRE) ==
			        SHMC__SLOT_USED &&
			    shmc__load(&s->generation, __ATOMIC_RELAXED) == gen)
				shmc__store(&s->open_seg, os, __ATOMIC_RELAXED);
			else if (shmc__load(&s->state, __ATOMIC_ACQUIRE) ==
			             SHMC__SLOT_FREE &&
			         sh->state == SHMC__SEG_OPEN &&
			         sh->owner == i + 1)
				seal_into(c, id, SHMC__SEG_SMALL);
			return rc;
		}
		if (sh->state == SHMC__SEG_OPEN && sh->owner == i + 1)
			seal_into(c, id, SHMC__SEG_SMALL);
		return 0;
	}
	return SHMC_ESTALLED;
}

/* log_lock held.  A segment for a writer that needs `need` bytes in it (a
 * parked one if it has the room, else a free one, keeping the
 * copy-forward reserve), or for copy-forward (cf: never evicts, may use
 * the reserve, never a parked one). */
static int get_segment(struct shmc *c, struct shmc__thr *t, bool cf,
                       uint64_t need, uint32_t *out)
{
	struct shmc__hdr *h = c->map.hdr;
	int err = 0;
	if (!cf && h->park_count) {
		uint32_t id = list_pop(c, HDR_LIST(h, park));
		if (id != UINT32_MAX && id < h->nseg_committed &&
		    shmc__seg(c, id)->state == SHMC__SEG_PARKED) {
			if (shmc__seg(c, id)->write_off + need <= c->seg_size) {
				*out = id;
				return 0;
			}
			/* No room for this item: it goes to eviction's care. */
			seal_into(c, id, SHMC__SEG_SMALL);
		}
	}
	for (uint32_t round = 0; round < 2 * c->nseg_max + 8; round++) {
		uint32_t reserve = cf ? 0 : SHMC__CF_RESERVE;
		if (h->free_count > reserve) {
			uint32_t id = list_pop(c, HDR_LIST(h, free));
			if (id != UINT32_MAX && id < h->nseg_committed) {
				*out = id;
				return 0;
			}
			continue;
		}
		if (!err && h->committed + c->seg_size <= budget(h) &&
		    (h->holes || h->nseg_committed < c->nseg_max)) {
			err = commit_one(c);
			if (!err)
				continue;
		}
		if (cf)
			return SHMC_ESTALLED;
		if (h->retire_count) {
			int rc = reclaim_retired(c, t, true);
			if (rc)
				return rc;
			continue;
		}
		if (round == 0)
			reap_dead_writers(c);
		if (h->free_count > reserve)
			continue;
		int rc = evict_one(c, t);
		if (rc == SHMC_ESTALLED)
			rc = revoke_one(c, t);
		if (rc)
			return err ? err : rc;
	}
	return SHMC_ESTALLED;
}

/* Gives this thread a new open segment with room for `need` bytes (the
 * old one, too full for the item, sealed). */
static int refill(struct shmc *c, struct shmc__thr *t, uint64_t need)
{
	struct shmc__slot *s = t->s;
	uint32_t id;
	shmc__log_lock(c);
	if (s->open_seg)
		log_close_open(c, t->slot, false);
	int rc = get_segment(c, t, false, need, &id);
	if (rc == 0) {
		struct shmc__seghdr *sh = shmc__seg(c, id);
		if (sh->state == SHMC__SEG_PARKED) {
			/* Go on where its last writer stopped. */
			sh->owner = t->slot + 1;
			shmc__store(&sh->state, SHMC__SEG_OPEN,
			            __ATOMIC_RELEASE);
		} else {
			make_open(c, id, SHMC__SEG_OPEN, t->slot + 1);
		}
		shmc__store(&s->open_seg, id + 1, __ATOMIC_RELAXED);
	}
	/* Opportunistically free what is already safe, without waiting. */
	if (c->map.hdr->retire_count)
		reclaim_retired(c, t, false);
	shmc__log_unlock(c);
	/* Map the whole segment into this process now, in one call, rather
	 * than take a page fault every 4 KiB of the next segment_size bytes
	 * of sets.  Outside log_lock; a hint, so errors are ignored. */
	if (rc == 0)
		shmc__seg_prefault(&c->map,
		                   c->map.hdr->data_off +
		                       ((uint64_t)id << c->seg_shift),
		                   c->seg_size);
	if (t->evicted) {
		t->evicted = false;
		shmc__autogrow_check(c, t);
	}
	return rc;
}

int shmc__log_append(struct shmc *c, struct shmc__thr *t, uint64_t size,
                     uint64_t *off)
{
	struct shmc__slot *s = t->s;
	SHMC__ASSERT(t->depth > 0);
	for (;;) {
		/* Relaxed: our own field, or 0 stored by a revoker whose grace
		 * period (which waits for this section) orders it for us. */
		uint32_t id = seg_id(c, shmc__load(&s->open_seg,
		                                   __ATOMIC_RELAXED));
		if (SHMC__LIKELY(id != UINT32_MAX)) {
			uint64_t w = shmc__seg(c, id)->write_off;
			if (SHMC__LIKELY(w + size <= c->seg_size)) {
				*off = ((uint64_t)id << c->seg_shift) + w;
				return 0;
			}
		}
		/* The slow path may wait for grace periods: leave the read
		 * section for it (unless the caller holds one open). */
		shmc__section_exit(t);
		int rc = refill(c, t, size);
		shmc__section_enter(c, t);
		if (rc)
			return rc;
	}
}

/* log_lock held.  Gives one data segment back to the system: a free one
 * if there is one, else one made free by eviction (hot items copied
 * forward where room allows). */
static int release_one(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t id;
	int rc;
	if (h->free_count > 0) {
		id = list_pop(c, HDR_LIST(h, free));
		if (id == UINT32_MAX)
			return 0;
	} else if (get_segment(c, t, true, 0, &id) != 0) {
		/* the copy-forward reserve is used up too: evict into it */
		if (h->retire_count)
			return reclaim_retired(c, t, true);
		return evict_one(c, t);
	}
	rc = punch_one(c, id);
	return rc;
}

/* log_lock held.  Gives segments back until `bytes` more fit the budget. */
int shmc__log_make_room(struct shmc *c, struct shmc__thr *t, uint64_t bytes)
{
	struct shmc__hdr *h = c->map.hdr;
	while (h->committed + bytes > budget(h)) {
		int rc = release_one(c, t);
		if (rc)
			return rc;
	}
	return 0;
}

/* log_lock held.  At most `max` steps towards committed <= memory.
 * 0 when there, 1 when there is more to do, or an error. */
int shmc__log_shrink_step(struct shmc *c, struct shmc__thr *t, unsigned max)
{
	struct shmc__hdr *h = c->map.hdr;
	for (unsigned n = 0; n < max; n++) {
		if (h->committed <= budget(h))
			return 0;
		int rc = release_one(c, t);
		if (rc)
			return rc;
	}
	return h->committed > budget(h);
}

/*
 * Commits up to `max` new segments towards the budget, the fallocate done
 * with log_lock released (it zeroes memory: ~0.5 ms a MiB), so writers
 * that need a segment meanwhile are not held up.  The ids are reserved
 * first as holes (state UNUSED below nseg_committed, which is what a hole
 * is), so nobody else extends into them and a repair counts them right.
 * A writer's commit_one may still pick one up as a hole; whoever makes it
 * FREE first owns it.  1 when there is more to do, 0 when no more fit,
 * or -errno (ENOSPC): the reserved ids then stay holes, as they are.
 */
int shmc__log_grow_step(struct shmc *c, unsigned max)
{
	struct shmc__hdr *h = c->map.hdr;
	shmc__log_lock(c);
	uint64_t mem = budget(h);
	if (h->holes) {
		/* Refill what a shrink punched, one at a time, under the
		 * lock (holes are found with a system call each). */
		int rc = 0;
		bool more = h->committed + c->seg_size <= mem;
		if (more)
			rc = commit_one(c);
		shmc__log_unlock(c);
		return rc ? rc : more;
	}
	uint64_t room = mem > h->committed ? mem - h->committed : 0;
	uint64_t k = room >> c->seg_shift;
	if (k > max)
		k = max;
	if (k > c->nseg_max - h->nseg_committed)
		k = c->nseg_max - h->nseg_committed;
	if (k == 0) {
		shmc__log_unlock(c);
		return 0;
	}
	uint32_t id0 = h->nseg_committed;
	h->nseg_committed += (uint32_t)k;
	h->holes += (uint32_t)k;
	shmc__log_unlock(c);

	int rc = shmc__seg_commit(&c->map,
	                          h->data_off + ((uint64_t)id0 << c->seg_shift),
	                          k << c->seg_shift);

	shmc__log_lock(c);
	for (uint32_t id = id0; rc == 0 && id < id0 + k; id++) {
		if (shmc__seg(c, id)->state != SHMC__SEG_UNUSED)
			continue; /* a writer committed this hole itself */
		if (h->committed + c->seg_size > budget(h)) {
			/* Meanwhile index growth took budget (ix_commit,
			 * pool_grow): give this one back, it stays a hole. */
			shmc__seg_punch(&c->map,
			                h->data_off + ((uint64_t)id << c->seg_shift),
			                c->seg_size);
			continue;
		}
		make_free(c, id);
		h->holes--;
		h->committed += c->seg_size;
	}
	shmc__log_unlock(c);
	return rc ? rc : 1;
}

/* Gives back free segments (never evicting) until committed <= target:
 * a failed grow returns what it committed, leaving the cache as it was. */
void shmc__log_trim_free(struct shmc *c, uint64_t target)
{
	struct shmc__hdr *h = c->map.hdr;
	shmc__log_lock(c);
	while (h->committed > target && h->free_count > SHMC__CF_RESERVE) {
		uint32_t id = list_pop(c, HDR_LIST(h, free));
		if (id == UINT32_MAX || punch_one(c, id) != 0)
			break;
	}
	shmc__log_unlock(c);
}
