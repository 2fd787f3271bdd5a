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
 *   - New items enter the small queue (1/20 of the sealed segments, plus
 *     the writers' open segments: SMALL QUEUE below).
 *   - A hit sets the entry's 2-bit frequency (readers, see index.c).
 *   - When the small queue is over its target, its head segment is
 *     evicted: live items read at least twice while there (frequency > 1)
 *     are copied forward into the main queue (frequency reset), the
 *     others dropped, their fingerprints put into the ghost FIFO.
 *     Otherwise the main queue's head is evicted: items with frequency > 0
 *     are copied forward with frequency - 1, like a CLOCK hand, the rest
 *     dropped.
 *   - A set whose key is in the ghost FIFO (evicted from small recently)
 *     is written with frequency 2, so it goes to main at its first
 *     eviction: the reference inserts it into main directly; doing it
 *     through the frequency keeps one open segment per writer.
 *   Two hits to leave small follow libCacheSim's S3-FIFO; measured against
 *   an exact simulator of it (bench/eviction-quality), one hit and a ghost
 *   sized by the index cost up to 0.03 of miss ratio.
 *
 * SMALL QUEUE
 * S3-FIFO's small queue is 10 % of the objects.  Here it is 1/20 of the
 * sealed segments, and the writers' open segments, which hold the newest
 * items, come on top of it (at 64 segments: about 3 sealed + 1 open).
 * Measured on the 17 cells of bench/eviction-quality (miss ratio minus
 * the S3-FIFO simulator's): 1/10 gave +0.0006..+0.0024, mean +0.0014;
 * 1/15 -0.0011..+0.0018, mean -0.0002; 1/20 -0.0022..+0.0018, mean
 * -0.0010, below the simulator on all 15 synthetic cells, at a cost of
 * 0.0007 on CloudPhysics at 489 objects (+0.0008 -> +0.0015).  It is
 * smaller than the reference's, presumably because ghost hits are written
 * into the small queue (above) and take room there that the reference
 * gives new keys.
 *   - Expired items are never copied forward; a segment at a queue's head
 *     whose newest expiry has passed is dropped whole.
 *
 * THE STATE MACHINE
 * Each segment's state is one word in the segment directory (layout.h),
 * outside the segment, so it can be read without touching the segment's
 * memory and without asking the file system where its holes are.  That
 * word is the only truth; the lists in the header (free, small, main,
 * retire, park), seg_used and unused_hint are caches of it that
 * log_repair() rebuilds.  Every transition is made by dir_set() under
 * log_lock.
 *
 *            commit_one                 take (refill)
 *   UNUSED -------------> FREE -------------------------> OPEN(w)
 *     ^                    | ^                           writer w = slot +
 *     |    punch_one       | |  settle: empty            generation
 *     +--------------------+ +---------------------+        |
 *                                                  |        | close_own (w)
 *                 adopt (refill, when safe)        |        | detach (any)
 *   OPEN(w) <------------------------------------ OPEN(-) <-+
 *                                                  |  parked: no owner,
 *                         settle: > half full      |  retire_epoch
 *   SMALL <----------------------------------------+
 *     |  evict_one: hot items copied forward into OPEN(cf), which seals
 *     v  into MAIN when full; MAIN's head is evicted the same way
 *   RETIRED --(grace period over: reclaim_retired)--> FREE
 *
 * Who makes each transition (all under log_lock):
 *   commit_one, punch_one  a writer in need, a resize, index growth
 *   take, close_own        the writer itself (refill, thread exit)
 *   detach                 anyone, for a segment whose writer is dead,
 *                          gone, or has its segment revoked
 *   adopt, settle          whoever needs a segment, once the parked
 *                          segment's grace period is over
 *   evict_one, reclaim     whoever needs a segment or memory
 *
 * OWNERSHIP: ONE MECHANISM
 * An OPEN segment's word names its writer: slot + 1 and the slot's
 * generation.  The writer is still there iff that slot is in use, at that
 * generation, and its open_seg names the segment (owner_holds()).  Any
 * OPEN segment whose writer is not there - the thread exited, its process
 * died, its slot was reclaimed and claimed again, a repair found it, or
 * memory ran short and it was revoked - goes through the same one step,
 * detach(): the slot's open_seg is cleared, a fresh epoch is stamped in
 * the segment, and the word loses its owner (parked).  Parked segments are
 * touched again only once that epoch is safe: every append that might
 * still have been in flight (every write runs in a read section) is then
 * complete.  Then the segment is adopted by a writer that needs room, or
 * settled (freed if empty, sealed if more than half full).  No path waits
 * for a grace period while holding log_lock: get_segment() returns WAIT
 * with the epoch, and its caller waits with the lock released.
 *
 * COMMITTED MEMORY
 * committed = fixed parts + seg_used segments (shmc__committed), where
 * seg_used counts directory words that are not UNUSED and is changed only
 * by dir_set.  A commit fallocates first and then sets FREE; a punch sets
 * UNUSED first and then punches.  So a kill at any instruction leaves at
 * worst an UNUSED segment that still has blocks, and the repair that the
 * kill triggers (log_lock is robust: EOWNERDEAD) punches every UNUSED
 * segment and every uncounted page of the index, pool and directory.
 * Nothing is committed or punched outside log_lock.
 *
 * REUSE
 * An evicted segment first leaves the index (every entry pointing into it
 * is removed or moved under its bucket lock), then is retired with a fresh
 * epoch, and becomes free only once every reader slot is at 0 or at a newer
 * epoch (shm/epoch.c).  Readers never wait.
 *
 * OVER BUDGET
 * When committed exceeds the budget (a shrink lowered it, and its resizer
 * was cancelled or killed), every writer that needs a segment first gives
 * one back (release_one): an interrupted shrink is finished by traffic as
 * well as by the next resize.
 *
 * INVARIANTS (checked by shmc_check)
 *   - committed <= budget, except while a shrink is under way.
 *   - SHMC__CF_RESERVE free segments are kept for copy-forward: a writer
 *     evicts before taking the last one.
 *   - Every loop over shared state is bounded; an inconsistency found in
 *     a list is repaired from the directory, a second one is
 *     SHMC_ECORRUPT.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* get_segment() and friends: wait for the epoch in *wait, lock released. */
#define WAIT 1

/* The segment this thread is evicting (evict_one), which log_repair
 * leaves off the queues. */
static __thread uint32_t evicting = UINT32_MAX;

/* The budget: stored by a resize without log_lock (resize.c), so read
 * atomically; acquire pairs with its release store. */
static uint64_t budget(const struct shmc__hdr *h)
{
	return shmc__load(&h->memory, __ATOMIC_ACQUIRE);
}

static bool over_budget(struct shmc *c, uint64_t extra)
{
	return shmc__committed(c) + extra > budget(c->map.hdr);
}

/* Segments [0, hw): the ones that may have been committed. */
static uint32_t seg_hw(struct shmc *c)
{
	uint32_t n = c->map.hdr->nseg_hw;
	return n < c->nseg_max ? n : c->nseg_max;
}

static uint32_t seg_id(struct shmc *c, uint32_t link)
{
	/* links are id + 1; anything out of range ends the list */
	return link && link <= seg_hw(c) ? link - 1 : UINT32_MAX;
}

static uint32_t dir_state(struct shmc *c, uint32_t id)
{
	return SHMC__DIR_STATE(shmc__load(&c->dir[id], __ATOMIC_ACQUIRE));
}

/* The one writer of directory words (log_lock held).  Keeps seg_used. */
static void dir_set(struct shmc *c, uint32_t id, uint32_t state,
                    uint32_t owner, uint32_t gen)
{
	struct shmc__hdr *h = c->map.hdr;
	uint64_t old = c->dir[id];
	bool was = SHMC__DIR_STATE(old) != SHMC__SEG_UNUSED;
	bool is = state != SHMC__SEG_UNUSED;
	if (was != is)
		/* Relaxed: stats read it without the lock, as a gauge. */
		shmc__store(&h->seg_used, h->seg_used + (is ? 1 : -1),
		            __ATOMIC_RELAXED);
	if (!is && id < h->unused_hint)
		h->unused_hint = id;
	/* Release: the segment header written before (write_off reset, seq,
	 * retire_epoch) is visible to whoever acquires this word. */
	shmc__store(&c->dir[id], SHMC__DIR_WORD(state, owner, gen),
	            __ATOMIC_RELEASE);
}

/* ---- lists: caches of the directory ----------------------------------- */

struct list {
	uint32_t *head, *tail, *count;
	uint32_t state; /* what the directory says of every member */
};
#define LIST(h, q, st)                                                         \
	(struct list) { &(h)->q##_head, &(h)->q##_tail, &(h)->q##_count, st }

static void list_push(struct shmc *c, struct list l, uint32_t id)
{
	shmc__seg(c, id)->next = SHMC__NONE;
	uint32_t t = seg_id(c, *l.tail);
	if (t != UINT32_MAX)
		shmc__seg(c, t)->next = id + 1;
	else
		*l.head = id + 1;
	*l.tail = id + 1;
	(*l.count)++;
}

static void log_repair(struct shmc *c);

/* Pops the head; a head the directory disagrees with means the lists are
 * damaged: rebuild them from the directory (once) and pop again. */
static uint32_t list_pop(struct shmc *c, struct list l)
{
	for (int tries = 0; tries < 2; tries++) {
		uint32_t id = seg_id(c, *l.head);
		if (id == UINT32_MAX) {
			if (!*l.count && !*l.tail)
				return UINT32_MAX;
		} else if (dir_state(c, id) == l.state) {
			*l.head = shmc__seg(c, id)->next;
			if (!*l.head)
				*l.tail = 0;
			if (*l.count)
				(*l.count)--;
			return id;
		}
		log_repair(c);
	}
	return UINT32_MAX;
}

/* Unlinks id, known to follow prev (UINT32_MAX = it is the head). */
static void list_unlink(struct shmc *c, struct list l, uint32_t prev,
                        uint32_t id)
{
	uint32_t next = shmc__seg(c, id)->next;
	if (prev == UINT32_MAX)
		*l.head = next;
	else
		shmc__seg(c, prev)->next = next;
	if (*l.tail == id + 1)
		*l.tail = prev == UINT32_MAX ? 0 : prev + 1;
	if (*l.count)
		(*l.count)--;
}

#define FREE_L(h) LIST(h, free, SHMC__SEG_FREE)
#define SMALL_L(h) LIST(h, small, SHMC__SEG_SMALL)
#define MAIN_L(h) LIST(h, main, SHMC__SEG_MAIN)
#define RETIRE_L(h) LIST(h, retire, SHMC__SEG_RETIRED)
#define PARK_L(h) LIST(h, park, SHMC__SEG_OPEN)

/* ---- transitions -------------------------------------------------------- */

static void seal_into(struct shmc *c, uint32_t id, uint32_t state)
{
	struct shmc__hdr *h = c->map.hdr;
	shmc__seg(c, id)->seq = ++h->seal_seq;
	dir_set(c, id, state, 0, 0);
	list_push(c, state == SHMC__SEG_MAIN ? MAIN_L(h) : SMALL_L(h), id);
}

static void make_free(struct shmc *c, uint32_t id)
{
	struct shmc__seghdr *sh = shmc__seg(c, id);
	sh->magic = SHMC__SEG_MAGIC;
	dir_set(c, id, SHMC__SEG_FREE, 0, 0);
	list_push(c, FREE_L(c->map.hdr), id);
}

/* A FREE segment made ready for appending: the header is reset before the
 * word says OPEN (dir_set's release), so nobody walks stale bytes. */
static void make_open(struct shmc *c, uint32_t id, uint32_t owner,
                      uint32_t gen)
{
	struct shmc__seghdr *sh = shmc__seg(c, id);
	sh->magic = SHMC__SEG_MAGIC;
	shmc__store(&sh->write_off, SHMC__SEGHDR_SIZE, __ATOMIC_RELAXED);
	sh->max_expiry = 0;
	sh->nitems = 0;
	sh->next = SHMC__NONE;
	dir_set(c, id, SHMC__SEG_OPEN, owner, gen);
}

/* write_off of an OPEN segment, bounded (it is read from shared memory). */
static uint64_t fill(struct shmc *c, uint32_t id)
{
	uint64_t w = shmc__load(&shmc__seg(c, id)->write_off, __ATOMIC_ACQUIRE);
	return w < SHMC__SEGHDR_SIZE ? SHMC__SEGHDR_SIZE
	                             : w > c->seg_size ? c->seg_size : w;
}

/* A segment nobody appends to any more (its own writer closing it, or a
 * parked one whose grace period is over): free if empty, sealed if more
 * than half full, else parked for a writer to adopt.  Not on any list. */
static void settle(struct shmc *c, uint32_t id)
{
	uint64_t w = fill(c, id);
	if (w <= SHMC__SEGHDR_SIZE) {
		make_free(c, id);
	} else if (w > c->seg_size / 2) {
		seal_into(c, id, SHMC__SEG_SMALL);
	} else {
		shmc__seg(c, id)->retire_epoch = 0; /* nothing to wait for */
		dir_set(c, id, SHMC__SEG_OPEN, 0, 0);
		list_push(c, PARK_L(c->map.hdr), id);
	}
}

/* Takes an OPEN segment from whatever writer it had (dead, gone, revoked
 * or still appending): it is parked, reusable once the epoch stamped now
 * is safe.  Not on any list. */
static uint64_t detach(struct shmc *c, uint32_t id)
{
	uint64_t w = c->dir[id];
	uint32_t o = SHMC__DIR_OWNER(w);
	if (o && o <= c->max_readers) {
		struct shmc__slot *s = shmc__slot_at(&c->map, o - 1);
		/* Relaxed: the bump below is a full barrier after it; pairs
		 * with the writer's section entry (fence or membarrier): a
		 * write that starts after the bump sees 0 here. */
		if (shmc__load(&s->open_seg, __ATOMIC_RELAXED) == id + 1)
			shmc__store(&s->open_seg, 0, __ATOMIC_RELAXED);
	}
	if (o == SHMC__OWNER_CF && c->map.hdr->cf_seg == id + 1)
		c->map.hdr->cf_seg = 0;
	uint64_t e = shmc__epoch_bump(&c->map);
	shmc__seg(c, id)->retire_epoch = e;
	dir_set(c, id, SHMC__SEG_OPEN, 0, 0);
	list_push(c, PARK_L(c->map.hdr), id);
	return e;
}

/* Whether OPEN segment id (word w) still has a writer that may append. */
static bool owner_holds(struct shmc *c, uint32_t id, uint64_t w)
{
	uint32_t o = SHMC__DIR_OWNER(w);
	if (o == SHMC__OWNER_CF)
		return c->map.hdr->cf_seg == id + 1;
	if (o == 0 || o > c->max_readers)
		return false;
	struct shmc__slot *s = shmc__slot_at(&c->map, o - 1);
	/* Acquire pairs with the release store of state in the slot's
	 * claim/release (shm/epoch.c): generation and open_seg are the
	 * current owner's.  open_seg changes only under log_lock (ours). */
	return shmc__load(&s->state, __ATOMIC_ACQUIRE) == SHMC__SLOT_USED &&
	       shmc__load(&s->generation, __ATOMIC_RELAXED) ==
	           SHMC__DIR_GEN(w) &&
	       shmc__load(&s->open_seg, __ATOMIC_RELAXED) == id + 1;
}

/* The owner of `slot` closes its own open segment (log_lock held): it is
 * not appending, so no grace period is needed. */
void shmc__log_close_own(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__slot *s = t->s;
	uint32_t id = seg_id(c, shmc__load(&s->open_seg, __ATOMIC_RELAXED));
	shmc__store(&s->open_seg, 0, __ATOMIC_RELAXED);
	if (id == UINT32_MAX)
		return;
	uint64_t w = c->dir[id];
	if (SHMC__DIR_STATE(w) == SHMC__SEG_OPEN &&
	    SHMC__DIR_OWNER(w) == t->slot + 1 &&
	    SHMC__DIR_GEN(w) == shmc__load(&s->generation, __ATOMIC_RELAXED))
		settle(c, id);
}

/* log_lock held.  The open segment of a slot whose thread is dead or is
 * not the caller: detached. */
void shmc__log_seal_open(struct shmc *c, uint32_t slot)
{
	struct shmc__slot *s = shmc__slot_at(&c->map, slot);
	uint32_t id = seg_id(c, shmc__load(&s->open_seg, __ATOMIC_RELAXED));
	if (id == UINT32_MAX) {
		shmc__store(&s->open_seg, 0, __ATOMIC_RELAXED);
		return;
	}
	uint64_t w = c->dir[id];
	if (SHMC__DIR_STATE(w) == SHMC__SEG_OPEN &&
	    SHMC__DIR_OWNER(w) == slot + 1)
		detach(c, id);
	else
		shmc__store(&s->open_seg, 0, __ATOMIC_RELAXED);
}

/* ---- repair ------------------------------------------------------------- */

struct seq_id {
	uint64_t seq;
	uint32_t id;
};

static int by_seq(const void *a, const void *b)
{
	const struct seq_id *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Punches the whole pages inside [from, to). */
static void punch_range(struct shmc *c, uint64_t from, uint64_t to)
{
	from = (from + SHMC__PAGE - 1) & ~(uint64_t)(SHMC__PAGE - 1);
	to &= ~(uint64_t)(SHMC__PAGE - 1);
	if (to > from)
		shmc__seg_punch(&c->map, from, to - from);
}

/* Gives back every page that no count covers: UNUSED segments, the index
 * beyond index_committed, the pool beyond pool_committed, the directory
 * beyond nseg_hw.  What a commit or punch killed half-way left behind. */
static void punch_uncounted(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t n = seg_hw(c);
	for (uint32_t id = 0; id < n;) {
		if (SHMC__DIR_STATE(c->dir[id]) != SHMC__SEG_UNUSED) {
			id++;
			continue;
		}
		uint32_t end = id;
		while (end < n &&
		       SHMC__DIR_STATE(c->dir[end]) == SHMC__SEG_UNUSED)
			end++;
		punch_range(c, h->data_off + ((uint64_t)id << c->seg_shift),
		            h->data_off + ((uint64_t)end << c->seg_shift));
		id = end;
	}
	punch_range(c, h->data_off + ((uint64_t)n << c->seg_shift),
	            h->data_off + ((uint64_t)c->nseg_max << c->seg_shift));
	uint64_t ix_top = (c->index_max_mask + 1) * SHMC__BUCKET_SIZE;
	uint64_t ix_low = ix_top - (uint64_t)c->pool_max * SHMC__BUCKET_SIZE;
	uint64_t ic = h->index_committed < ix_low ? h->index_committed : ix_low;
	uint64_t pc = (uint64_t)(h->pool_committed < c->pool_max
	                             ? h->pool_committed
	                             : c->pool_max) *
	              SHMC__BUCKET_SIZE;
	punch_range(c, h->index_off + ic, h->index_off + ix_low);
	punch_range(c, h->index_off + ix_low, h->index_off + ix_top - pc);
	uint64_t dir = (uint64_t)((uint8_t *)c->dir - c->map.base);
	punch_range(c, dir + shmc__dir_bytes(n, c->granule), h->data_off);
}

/*
 * Rebuilds every list and count from the directory (log_lock held): after
 * a process died holding log_lock, or when a list disagrees with the
 * directory.  Bounded by nseg_hw (itself bounded by nseg_max).
 */
static void log_repair(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t n = seg_hw(c);
	h->nseg_hw = n;
	struct seq_id *sm = calloc(n + 1, sizeof(*sm));
	struct seq_id *mn = calloc(n + 1, sizeof(*mn));
	uint32_t nsm = 0, nmn = 0, used = 0;
	h->free_head = h->free_tail = h->free_count = 0;
	h->small_head = h->small_tail = h->small_count = 0;
	h->main_head = h->main_tail = h->main_count = 0;
	h->retire_head = h->retire_tail = h->retire_count = 0;
	h->park_head = h->park_tail = h->park_count = 0;
	h->unused_hint = n;
	uint32_t cf = seg_id(c, h->cf_seg);
	if (cf == UINT32_MAX ||
	    c->dir[cf] != SHMC__DIR_WORD(SHMC__SEG_OPEN, SHMC__OWNER_CF, 0))
		h->cf_seg = 0;
	/* One fresh epoch for everything parked or retired here: whatever
	 * was in flight when the process died is over once it is safe. */
	uint64_t e = shmc__epoch_bump(&c->map);
	for (uint32_t id = 0; id < n; id++) {
		uint64_t w = c->dir[id];
		uint32_t st = SHMC__DIR_STATE(w);
		if (st == SHMC__SEG_UNUSED) {
			if (id < h->unused_hint)
				h->unused_hint = id;
			continue;
		}
		used++;
		if (id == evicting)
			continue; /* in this thread's hands: evict_one */
		struct shmc__seghdr *sh = shmc__seg(c, id);
		switch (st) {
		case SHMC__SEG_FREE:
			sh->magic = SHMC__SEG_MAGIC;
			list_push(c, FREE_L(h), id);
			break;
		case SHMC__SEG_OPEN:
			if (SHMC__DIR_OWNER(w) && owner_holds(c, id, w))
				break; /* its writer (or the evictor) goes on */
			sh->retire_epoch = e;
			shmc__store(&c->dir[id],
			            SHMC__DIR_WORD(SHMC__SEG_OPEN, 0, 0),
			            __ATOMIC_RELEASE);
			list_push(c, PARK_L(h), id);
			break;
		case SHMC__SEG_RETIRED:
			/* Its eviction may have died anywhere: memory it held
			 * is reused only after a grace period that starts now. */
			sh->retire_epoch = e;
			list_push(c, RETIRE_L(h), id);
			break;
		case SHMC__SEG_MAIN:
			if (mn)
				mn[nmn++] = (struct seq_id){sh->seq, id};
			else
				list_push(c, MAIN_L(h), id);
			break;
		default:
			/* SMALL, or a word we did not write: evictable, so
			 * anything it holds leaves the index properly. */
			if (st != SHMC__SEG_SMALL)
				shmc__store(&c->dir[id],
				            SHMC__DIR_WORD(SHMC__SEG_SMALL, 0, 0),
				            __ATOMIC_RELEASE);
			if (sm)
				sm[nsm++] = (struct seq_id){sh->seq, id};
			else
				list_push(c, SMALL_L(h), id);
		}
	}
	if (sm) {
		qsort(sm, nsm, sizeof(*sm), by_seq);
		for (uint32_t i = 0; i < nsm; i++)
			list_push(c, SMALL_L(h), sm[i].id);
	}
	if (mn) {
		qsort(mn, nmn, sizeof(*mn), by_seq);
		for (uint32_t i = 0; i < nmn; i++)
			list_push(c, MAIN_L(h), mn[i].id);
	}
	free(sm);
	free(mn);
	shmc__store(&h->seg_used, (uint64_t)used, __ATOMIC_RELAXED);
	punch_uncounted(c);
}

int shmc__log_lock(struct shmc *c)
{
	int rc = shmc__lock(&c->map.hdr->log_lock);
	if (rc == 1)
		log_repair(c);
	return rc < 0 ? rc : 0;
}

bool shmc__log_trylock(struct shmc *c)
{
	if (!shmc__mutex_ok(&c->map.hdr->log_lock))
		return false; /* garbage: not even a trylock is safe */
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

/*
 * THE GHOST FIFO.  S3-FIFO remembers the keys most recently evicted from
 * the small queue in a FIFO: a key that comes back while it is remembered
 * skips the small queue.  Here the ghosts are fingerprints in a table of
 * sets of SHMC__GHOST_WAYS entries (a set per key hash; a put replaces the
 * key's own entry, an empty one or the set's oldest), each stamped with
 * the ghost clock - the number of ghost insertions so far - in units of
 * `unit` insertions.  A fingerprint counts only while fewer insertions
 * than the cache holds items have happened since: a FIFO of that many,
 * whatever the size of the table (which follows the index, not the
 * objects: with large values it held 64 times the cache's objects, and an
 * oversized ghost promotes keys that were not hot).
 *
 * Measured against the exact simulator (bench/eviction-quality, all 17
 * cells): a direct-mapped table (one entry per hash) forgets about a
 * fifth of the ghosts early, to collisions at its 1/4 load, and cost
 * CloudPhysics at 4,897 objects +0.012; sets of 4 took that to +0.007,
 * and a FIFO of 1.0 x items rather than libCacheSim's 0.9 x to +0.001
 * (items is what the cache holds, 97-99 % of what it has room for).
 *   entry: bits 16..31 fingerprint (hash bits 48..63, never 0), bits
 *          0..15 the clock / unit when it was put; 0 is empty
 */
#define SHMC__GHOST_WAYS 4u

static uint32_t ghost_unit(uint64_t mask)
{
	return mask >= 1024 ? (uint32_t)((mask + 1) >> 10) : 1u;
}

static uint32_t ghost_fp(uint64_t h)
{
	return (uint32_t)(h >> 48) | 1u;
}

/* The first entry of h's set.  The table's size is a multiple of 4
 * buckets' worth (SHMC__GHOST_PER_BUCKET per bucket), so sets are
 * aligned and whole. */
static uint32_t *ghost_set(struct shmc *c, uint64_t h, uint64_t *mask)
{
	*mask = c->map.hdr->ghost_mask & (c->index_max_mask * 4 + 3);
	return &c->ghost[h & *mask & ~(uint64_t)(SHMC__GHOST_WAYS - 1)];
}

void shmc__ghost_put(struct shmc *c, uint64_t h)
{
	struct shmc__hdr *hd = c->map.hdr;
	uint64_t mask;
	uint32_t *set = ghost_set(c, h, &mask);
	/* log_lock held (eviction): the only writer of the clock. */
	uint32_t clk = hd->ghost_clock + 1;
	shmc__store(&hd->ghost_clock, clk, __ATOMIC_RELAXED);
	uint32_t now = (clk / ghost_unit(mask)) & 0xffffu, fp = ghost_fp(h);
	/* The key's own entry, else an empty one, else the oldest. */
	uint32_t pick = SHMC__GHOST_WAYS, empty = SHMC__GHOST_WAYS, old = 0;
	uint32_t oldest = 0;
	for (uint32_t k = 0; k < SHMC__GHOST_WAYS; k++) {
		uint32_t x = shmc__load(&set[k], __ATOMIC_RELAXED);
		uint32_t age = (now - x) & 0xffffu;
		if (x >> 16 == fp)
			pick = k;
		else if (!x && empty == SHMC__GHOST_WAYS)
			empty = k;
		else if (x && age >= oldest)
			oldest = age, old = k;
	}
	if (pick == SHMC__GHOST_WAYS)
		pick = empty < SHMC__GHOST_WAYS ? empty : old;
	/* A hint only: relaxed, and a lost or torn update costs a hit. */
	shmc__store(&set[pick], fp << 16 | now, __ATOMIC_RELAXED);
}

bool shmc__ghost_hit(struct shmc *c, uint64_t h)
{
	struct shmc__hdr *hd = c->map.hdr;
	uint64_t mask;
	const uint32_t *set = ghost_set(c, h, &mask);
	uint32_t unit = ghost_unit(mask), fp = ghost_fp(h);
	uint32_t now = shmc__load(&hd->ghost_clock, __ATOMIC_RELAXED) / unit;
	int64_t items = shmc__load(&hd->items_approx, __ATOMIC_RELAXED);
	uint64_t cap = items > 0 ? (uint64_t)items : 0;
	for (uint32_t k = 0; k < SHMC__GHOST_WAYS; k++) {
		uint32_t e = shmc__load(&set[k], __ATOMIC_RELAXED);
		if (e >> 16 == fp)
			return (uint64_t)((now - e) & 0xffffu) * unit <= cap;
	}
	return false;
}

/* ---- commit and punch --------------------------------------------------- */

/* Commits one more segment, if the budget has room for it: the lowest
 * UNUSED one.  0, SHMC_EBUDGET (no room or no id left) or -errno. */
static int commit_one(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t hw = seg_hw(c), id = h->unused_hint < hw ? h->unused_hint : hw;
	while (id < hw && dir_state(c, id) != SHMC__SEG_UNUSED)
		id++;
	h->unused_hint = id;
	if (id >= c->nseg_max)
		return SHMC_EBUDGET;
	uint64_t dir_more = id < hw ? 0
	                            : shmc__dir_bytes(id + 1, c->granule) -
	                                  shmc__dir_bytes(hw, c->granule);
	if (over_budget(c, c->seg_size + dir_more))
		return SHMC_EBUDGET;
	int rc = 0;
	if (dir_more) {
		/* The directory page first; it is counted from the moment
		 * nseg_hw covers it (a kill before that: repair punches it). */
		uint64_t dir = (uint64_t)((uint8_t *)c->dir - c->map.base);
		rc = shmc__seg_commit(&c->map, dir + shmc__dir_bytes(hw, c->granule),
		                      dir_more);
		if (rc)
			return rc;
	}
	if (id >= hw)
		h->nseg_hw = id + 1;
	rc = shmc__seg_commit(&c->map,
	                      h->data_off + ((uint64_t)id << c->seg_shift),
	                      c->seg_size);
	if (rc)
		return rc;
	make_free(c, id);
	return 0;
}

/* Punches free segment id (off every list) out of the file. */
static int punch_one(struct shmc *c, uint32_t id)
{
	struct shmc__hdr *h = c->map.hdr;
	/* UNUSED first: a kill before the punch leaves blocks that the
	 * repair punches, never a counted segment without memory. */
	dir_set(c, id, SHMC__SEG_UNUSED, 0, 0);
	int rc = shmc__seg_punch(&c->map,
	                         h->data_off + ((uint64_t)id << c->seg_shift),
	                         c->seg_size);
	if (rc)
		make_free(c, id);
	return rc;
}

/* ---- eviction ----------------------------------------------------------- */

/* A segment for copy-forward (log_lock held): never evicts, may use the
 * reserve.  0 or SHMC_ESTALLED. */
static int get_cf_segment(struct shmc *c, uint32_t *out)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t id = UINT32_MAX;
	if (h->free_count || commit_one(c) == 0)
		id = list_pop(c, FREE_L(h));
	if (id == UINT32_MAX)
		return SHMC_ESTALLED;
	*out = id;
	return 0;
}

/* Appends a copy of item it (sz bytes) to the copy-forward segment and
 * returns its location, or 0 when no segment is left for it. */
static uint64_t cf_copy(struct shmc *c, const struct shmc__item *it,
                        uint64_t sz)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t id = seg_id(c, h->cf_seg);
	if (id != UINT32_MAX && fill(c, id) + sz > c->seg_size) {
		h->cf_seg = 0;
		seal_into(c, id, SHMC__SEG_MAIN);
		id = UINT32_MAX;
	}
	if (id == UINT32_MAX) {
		if (get_cf_segment(c, &id) != 0)
			return 0;
		make_open(c, id, SHMC__OWNER_CF, 0);
		h->cf_seg = id + 1;
	}
	struct shmc__seghdr *sh = shmc__seg(c, id);
	uint64_t w = fill(c, id);
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

/*
 * Items of the segment being evicted, read a few ahead of the one being
 * decided: each one's bucket is a cache miss of its own (the items were
 * written in time order, their buckets are anywhere), and one at a time
 * they cost a miss each, in series.  The cursor hashes the next items and
 * prefetches their buckets, so that EVICT_AHEAD misses are in flight
 * together.  A hint only: the bucket is found again, under its lock.
 */
#define EVICT_AHEAD 8u

struct evict_cursor {
	struct shmc *c;
	const uint8_t *seg;
	uint64_t next, end; /* the next item to read; write_off */
	uint64_t geom;
	struct {
		uint64_t off, size, hash;
	} ring[EVICT_AHEAD];
	unsigned head, n;
};

/* Reads items until EVICT_AHEAD are queued or the segment ends (or its
 * tail is torn: nothing past a torn item was published). */
static void cursor_fill(struct evict_cursor *k)
{
	while (k->n < EVICT_AHEAD &&
	       k->next + sizeof(struct shmc__item) <= k->end) {
		const struct shmc__item *it =
		    (const struct shmc__item *)(k->seg + k->next);
		uint64_t sz = shmc__item_size(it->klen, shmc__vlen(it));
		if (sz > k->end - k->next) {
			k->end = k->next;
			break;
		}
		uint64_t h = shmc__hash(it->data, it->klen);
		__builtin_prefetch(
		    shmc__bucket_at(k->c, shmc__geom_bucket(k->c, k->geom, h)),
		    1, 3);
		unsigned i = (k->head + k->n++) % EVICT_AHEAD;
		k->ring[i].off = k->next;
		k->ring[i].size = sz;
		k->ring[i].hash = h;
		k->next += sz;
	}
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
	struct evict_cursor k = {
	    .c = c, .seg = c->data + base, .next = SHMC__SEGHDR_SIZE, .end = w,
	    /* Relaxed: only where to prefetch; ix_lock reads it properly. */
	    .geom = shmc__load(&c->map.hdr->index_geom, __ATOMIC_RELAXED)};
	for (cursor_fill(&k); k.n; cursor_fill(&k)) {
		uint64_t off = k.ring[k.head].off, sz = k.ring[k.head].size;
		uint64_t hsh = k.ring[k.head].hash;
		k.head = (k.head + 1) % EVICT_AHEAD;
		k.n--;
		const struct shmc__item *it =
		    (const struct shmc__item *)(c->data + base + off);
		uint64_t loc = (base + off) >> 3;
		struct shmc__ixl x;
		shmc__ix_lock(c, t, hsh, true, &x);
		uint64_t e = 0;
		uint64_t *way = shmc__ix_find_loc(c, &x, loc, &e);
		if (way) {
			unsigned f = shmc__e_freq(e);
			uint64_t nl = 0;
			if (shmc__expired(it, now)) {
				shmc__ctr_add(t, SHMC__C_EXPIRATIONS, 1);
			} else if (f > (from_small ? 1u : 0u) &&
			           (nl = cf_copy(c, it, sz)) != 0) {
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
	}
	if (removed)
		uatomic_add(&c->map.hdr->items_approx, -removed);
}

/* A queue's first few segments whose every item has expired. */
static bool take_expired(struct shmc *c, struct list l, uint32_t now,
                         uint32_t *out)
{
	uint32_t prev = UINT32_MAX, id = seg_id(c, *l.head);
	for (int k = 0; k < 4 && id != UINT32_MAX; k++) {
		if (dir_state(c, id) != l.state)
			return false; /* list_pop will notice and repair */
		uint32_t mx = shmc__seg(c, id)->max_expiry;
		if (mx != 0 && mx != UINT32_MAX && mx <= now) {
			list_unlink(c, l, prev, id);
			*out = id;
			return true;
		}
		prev = id;
		id = seg_id(c, shmc__seg(c, id)->next);
	}
	return false;
}

/* Evicts one segment onto the retire list.  0, or SHMC_ESTALLED when the
 * queues are empty (all memory is open or parked). */
static int evict_one(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t now = shmc__now(c), v;
	bool from_small;
	if (take_expired(c, SMALL_L(h), now, &v)) {
		from_small = true;
	} else if (take_expired(c, MAIN_L(h), now, &v)) {
		from_small = false;
	} else {
		/* The small queue's target, 1/20 of the sealed segments
		 * (see SMALL QUEUE at the top). */
		uint32_t total = h->small_count + h->main_count;
		from_small = h->small_count > 0 &&
		             (h->small_count * 20u >= total || !h->main_count);
		v = list_pop(c, from_small ? SMALL_L(h) : MAIN_L(h));
		if (v == UINT32_MAX && !from_small && h->small_count) {
			from_small = true;
			v = list_pop(c, SMALL_L(h));
		}
		if (v == UINT32_MAX)
			return SHMC_ESTALLED;
	}
	/* Off its queue, still SMALL or MAIN in the directory until it is
	 * retired: a repair that copy-forward's list_pop may run meanwhile
	 * must not put it back on its queue. */
	evicting = v;
	evict_items(c, t, v, from_small, now);
	evicting = UINT32_MAX;
	/* The epoch first, then the state: a repair trusts nothing of a
	 * RETIRED segment but stamps a fresh epoch anyway.  The bump is a
	 * full barrier after every unpublishing store above. */
	shmc__seg(c, v)->retire_epoch = shmc__epoch_bump(&c->map);
	dir_set(c, v, SHMC__SEG_RETIRED, 0, 0);
	list_push(c, RETIRE_L(h), v);
	shmc__ctr_add(t, SHMC__C_SEGS_EVICTED, 1);
	t->evicted = true;
	return 0;
}

static bool safe(struct shmc *c, struct shmc__thr *t, uint64_t e)
{
	return e == 0 ||
	       shmc__epoch_safe(&c->map, e, t->slot, shmc__dead_slot, true, c);
}

/* Moves retired segments whose grace period is over to the free list,
 * without waiting.  How many it moved. */
static uint32_t reclaim_retired(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t id = seg_id(c, h->retire_head), n = 0;
	if (id == UINT32_MAX || dir_state(c, id) != SHMC__SEG_RETIRED)
		return 0; /* (a damaged head: list_pop repairs it) */
	uint64_t e = shmc__seg(c, id)->retire_epoch;
	if (!safe(c, t, e))
		return 0;
	shmc__ctr_add(t, SHMC__C_GRACE_PERIODS, 1);
	/* Everything retired up to epoch e is now safe. */
	while ((id = seg_id(c, h->retire_head)) != UINT32_MAX &&
	       shmc__seg(c, id)->retire_epoch <= e && n <= c->nseg_max) {
		if (list_pop(c, RETIRE_L(h)) != id)
			break;
		make_free(c, id);
		n++;
	}
	return n;
}

/*
 * Parked segments whose grace period is over: the first with room for
 * `need` bytes is adopted (*out, returns 1) when adopt; the others on the
 * way are settled.  *wait gets the oldest epoch still pending, 0 if none.
 * Looks at a bounded number of them.
 */
static int scan_parked(struct shmc *c, struct shmc__thr *t, bool adopt,
                       uint64_t need, uint32_t *out, uint64_t *wait)
{
	struct shmc__hdr *h = c->map.hdr;
	uint32_t prev = UINT32_MAX, id = seg_id(c, h->park_head);
	*wait = 0;
	for (int k = 0; k < 16 && id != UINT32_MAX; k++) {
		/* The directory first: never read a header of a segment the
		 * directory does not say is committed. */
		uint64_t w = c->dir[id];
		if (w != SHMC__DIR_WORD(SHMC__SEG_OPEN, 0, 0)) {
			log_repair(c); /* a list the directory disowns */
			return 0;
		}
		uint32_t next = seg_id(c, shmc__seg(c, id)->next);
		uint64_t e = shmc__seg(c, id)->retire_epoch;
		if (!safe(c, t, e)) {
			if (!*wait || e < *wait)
				*wait = e;
			prev = id;
		} else {
			list_unlink(c, PARK_L(h), prev, id);
			uint64_t f = fill(c, id);
			if (adopt && f <= c->seg_size / 2 &&
			    need <= c->seg_size - f) {
				*out = id;
				return 1;
			}
			if (adopt || f <= SHMC__SEGHDR_SIZE ||
			    f > c->seg_size / 2)
				settle(c, id);
			else
				seal_into(c, id, SHMC__SEG_SMALL);
		}
		id = next;
	}
	return 0;
}

/*
 * Memory short: detaches OPEN segments whose writer is gone, probing the
 * liveness of the others' slots (a dead one is reclaimed by the probe).
 * How many it detached; each needs a grace period before reuse.
 */
static uint32_t reclaim_orphans(struct shmc *c)
{
	uint32_t n = seg_hw(c), found = 0;
	for (uint32_t id = 0; id < n; id++) {
		uint64_t w = c->dir[id];
		if (SHMC__DIR_STATE(w) != SHMC__SEG_OPEN || !SHMC__DIR_OWNER(w))
			continue;
		if (owner_holds(c, id, w)) {
			uint32_t o = SHMC__DIR_OWNER(w);
			if (o == SHMC__OWNER_CF)
				continue;
			/* A dead owner's slot is reclaimed here, and its
			 * segment detached by shmc__dead_slot. */
			shmc__slot_probe(&c->map, o - 1, shmc__dead_slot, true,
			                 c);
			w = c->dir[id];
			if (SHMC__DIR_STATE(w) != SHMC__SEG_OPEN ||
			    !SHMC__DIR_OWNER(w)) {
				found++;
				continue;
			}
			if (owner_holds(c, id, w))
				continue;
		}
		detach(c, id);
		found++;
	}
	return found;
}

/* Takes an open segment from another live writer (more writing threads
 * than segments): detached now, reusable after a grace period.  WAIT with
 * its epoch, or SHMC_ESTALLED when there is none to take. */
static int revoke_one(struct shmc *c, struct shmc__thr *t, uint64_t *wait)
{
	static __thread uint32_t cursor;
	uint32_t n = seg_hw(c);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t id = (cursor + k) % n;
		uint64_t w = c->dir[id];
		uint32_t o = SHMC__DIR_OWNER(w);
		if (SHMC__DIR_STATE(w) != SHMC__SEG_OPEN || !o ||
		    o == SHMC__OWNER_CF || o == t->slot + 1)
			continue;
		cursor = id + 1;
		*wait = detach(c, id);
		return WAIT;
	}
	return SHMC_ESTALLED;
}

/*
 * log_lock held.  Gives one data segment back to the system: a free one if
 * there is one, else one made free by reclaim or eviction (hot items
 * copied forward where room allows).  0 when it made progress, WAIT (with
 * *wait) when a grace period stands in the way, or an error.
 */
static int release_one(struct shmc *c, struct shmc__thr *t, uint64_t *wait)
{
	struct shmc__hdr *h = c->map.hdr;
	if (h->free_count) {
		uint32_t id = list_pop(c, FREE_L(h));
		return id == UINT32_MAX ? SHMC_ECORRUPT : punch_one(c, id);
	}
	if (reclaim_retired(c, t))
		return 0;
	uint32_t id = seg_id(c, h->retire_head);
	if (id != UINT32_MAX) {
		*wait = shmc__seg(c, id)->retire_epoch;
		return WAIT;
	}
	uint32_t parked = h->park_count;
	scan_parked(c, t, false, 0, &id, wait);
	if (h->park_count < parked)
		return 0;
	if (evict_one(c, t) == 0)
		return 0;
	if (*wait)
		return WAIT;
	if (reclaim_orphans(c))
		return 0;
	return revoke_one(c, t, wait);
}

/*
 * log_lock held.  A segment for a writer that needs `need` bytes in it: a
 * parked one with the room, else a free one (keeping the copy-forward
 * reserve), committing, reclaiming or evicting as needed.  0 with *out,
 * WAIT with *wait, or an error.
 */
static int get_segment(struct shmc *c, struct shmc__thr *t, uint64_t need,
                       uint32_t *out, uint64_t *wait)
{
	struct shmc__hdr *h = c->map.hdr;
	bool scanned = false;
	int err = 0;
	for (uint32_t round = 0; round < 4 * c->nseg_max + 64; round++) {
		*wait = 0;
		if (over_budget(c, 0)) {
			/* A shrink is under way or was interrupted: help it. */
			int rc = release_one(c, t, wait);
			if (rc)
				return rc;
			continue;
		}
		if (h->free_count > SHMC__CF_RESERVE) {
			uint32_t id = list_pop(c, FREE_L(h));
			if (id != UINT32_MAX) {
				*out = id;
				return 0;
			}
			continue;
		}
		uint64_t pwait;
		if (h->park_count && scan_parked(c, t, true, need, out, &pwait))
			return 0;
		if (!err) {
			err = commit_one(c);
			if (!err)
				continue;
		}
		if (reclaim_retired(c, t))
			continue;
		uint32_t r = seg_id(c, h->retire_head);
		if (r != UINT32_MAX) {
			*wait = shmc__seg(c, r)->retire_epoch;
			return WAIT;
		}
		if (!scanned) {
			scanned = true;
			int64_t open = (int64_t)h->seg_used - h->free_count -
			               h->small_count - h->main_count -
			               h->park_count - h->retire_count;
			if (open * 4 >= (int64_t)h->seg_used &&
			    reclaim_orphans(c))
				continue;
		}
		if (evict_one(c, t) == 0)
			continue;
		if (h->park_count) {
			if (scan_parked(c, t, true, need, out, &pwait))
				return 0;
			if (pwait) {
				*wait = pwait;
				return WAIT;
			}
			/* Safe, but none has room for this item: seal them
			 * so that eviction can have them. */
			uint32_t parked = h->park_count;
			scan_parked(c, t, false, 0, out, &pwait);
			if (h->park_count < parked)
				continue;
		}
		if (reclaim_orphans(c))
			continue;
		int rc = revoke_one(c, t, wait);
		return rc == SHMC_ESTALLED && err && err != SHMC_EBUDGET ? err
		                                                          : rc;
	}
	/* Rounds that each made progress and never got there: more writers
	 * than the budget has segments for, not a damaged cache. */
	return SHMC_ESTALLED;
}

/* Waits, log_lock released, for memory stamped with epoch e. */
static int grace_wait(struct shmc *c, struct shmc__thr *t, uint64_t e)
{
	int rc = shmc__epoch_wait(&c->map, e, t->slot, SHMC__GRACE_TIMEOUT_NS,
	                          shmc__dead_slot, false, c);
	shmc__ctr_add(t, SHMC__C_GRACE_PERIODS, 1);
	if (rc)
		shmc__ctr_add(t, SHMC__C_STALLS, 1);
	return rc;
}

/* Gives this thread a new open segment with room for `need` bytes (the
 * old one, too full for the item, closed). */
static int refill(struct shmc *c, struct shmc__thr *t, uint64_t need)
{
	struct shmc__slot *s = t->s;
	uint32_t id = UINT32_MAX;
	int rc = SHMC_ESTALLED;
	for (int attempt = 0; attempt < 64; attempt++) {
		uint64_t wait = 0;
		bool fresh = false;
		rc = shmc__log_lock(c);
		if (rc)
			return rc;
		shmc__log_close_own(c, t);
		rc = get_segment(c, t, need, &id, &wait);
		if (rc == 0) {
			uint32_t gen = shmc__load(&s->generation,
			                          __ATOMIC_RELAXED);
			fresh = dir_state(c, id) == SHMC__SEG_FREE;
			if (fresh)
				make_open(c, id, t->slot + 1, gen);
			else /* adopted: go on where its last writer stopped */
				dir_set(c, id, SHMC__SEG_OPEN, t->slot + 1, gen);
			shmc__store(&s->open_seg, id + 1, __ATOMIC_RELAXED);
		}
		/* Opportunistically free what is already safe. */
		if (c->map.hdr->retire_count)
			reclaim_retired(c, t);
		shmc__log_unlock(c);
		if (rc == WAIT) {
			rc = grace_wait(c, t, wait);
			if (rc)
				break;
			continue;
		}
		/* Map the whole segment into this process now, in one call,
		 * rather than take a page fault every 4 KiB of the next
		 * segment_size bytes of sets.  Outside log_lock; a hint. */
		if (rc == 0 && fresh) {
			/* Inside a read section, and only while the segment is
			 * still ours: a detach (clear open_seg, then a grace
			 * period) cannot let it be punched under the prefault,
			 * which would give the hole its blocks back. */
			shmc__section_enter(c, t);
			if (shmc__load(&s->open_seg, __ATOMIC_RELAXED) == id + 1)
				shmc__seg_prefault(
				    &c->map,
				    c->map.hdr->data_off +
				        ((uint64_t)id << c->seg_shift),
				    c->seg_size);
			shmc__section_exit(t);
		}
		break;
	}
	if (t->evicted) {
		t->evicted = false;
		shmc__autogrow_check(c, t);
	}
	return rc == WAIT ? SHMC_ESTALLED : rc;
}

int shmc__log_append(struct shmc *c, struct shmc__thr *t, uint64_t size,
                     uint64_t *off)
{
	struct shmc__slot *s = t->s;
	SHMC__ASSERT(t->depth > 0);
	for (;;) {
		/* Relaxed: our own field, or 0 stored by a detacher whose
		 * grace period (which waits for this section) orders it. */
		uint32_t id = shmc__load(&s->open_seg, __ATOMIC_RELAXED) - 1;
		if (SHMC__LIKELY(id < c->nseg_max)) {
			uint64_t w = shmc__seg(c, id)->write_off;
			if (SHMC__LIKELY(w <= c->seg_size &&
			                 size <= c->seg_size - w)) {
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

int shmc__log_lock_room(struct shmc *c, struct shmc__thr *t, uint64_t bytes)
{
	for (uint32_t round = 0; round < 4 * c->nseg_max + 64; round++) {
		int rc = shmc__log_lock(c);
		if (rc)
			return rc;
		uint64_t wait = 0;
		for (uint32_t n = 0; rc == 0 && over_budget(c, bytes); n++)
			rc = n < 4 * c->nseg_max + 64 ? release_one(c, t, &wait)
			                              : SHMC_ECORRUPT;
		if (rc == 0)
			return 0; /* with the lock */
		shmc__log_unlock(c);
		if (rc != WAIT)
			return rc;
		if ((rc = grace_wait(c, t, wait)) != 0)
			return rc;
	}
	return SHMC_ECORRUPT;
}

int shmc__log_shrink_step(struct shmc *c, struct shmc__thr *t, unsigned max)
{
	uint64_t wait = 0;
	int rc = shmc__log_lock(c);
	if (rc)
		return rc;
	for (unsigned n = 0; rc == 0 && n < max && over_budget(c, 0); n++)
		rc = release_one(c, t, &wait);
	bool more = over_budget(c, 0);
	shmc__log_unlock(c);
	if (rc == WAIT)
		rc = grace_wait(c, t, wait);
	return rc ? rc : more;
}

int shmc__log_grow_step(struct shmc *c, unsigned max)
{
	int rc = shmc__log_lock(c);
	if (rc)
		return rc;
	for (unsigned n = 0; rc == 0 && n < max; n++)
		rc = commit_one(c);
	shmc__log_unlock(c);
	return rc == SHMC_EBUDGET ? 0 : rc ? rc : 1;
}

void shmc__log_trim_free(struct shmc *c, uint64_t target)
{
	struct shmc__hdr *h = c->map.hdr;
	if (shmc__log_lock(c))
		return;
	while (shmc__committed(c) > target && h->free_count > SHMC__CF_RESERVE) {
		uint32_t id = list_pop(c, FREE_L(h));
		if (id == UINT32_MAX || punch_one(c, id) != 0)
			break;
	}
	shmc__log_unlock(c);
}

void shmc__log_census(struct shmc *c, uint32_t n[SHMC__CENSUS])
{
	memset(n, 0, SHMC__CENSUS * sizeof(n[0]));
	uint32_t hw = seg_hw(c);
	for (uint32_t id = 0; id < hw; id++) {
		/* Relaxed: a gauge; a word may change as we count. */
		uint64_t w = shmc__load(&c->dir[id], __ATOMIC_RELAXED);
		uint32_t st = SHMC__DIR_STATE(w), o = SHMC__DIR_OWNER(w);
		if (st == SHMC__SEG_OPEN)
			n[!o ? SHMC__CENSUS_PARKED
			     : o == SHMC__OWNER_CF ? SHMC__CENSUS_CF
			                           : SHMC__SEG_OPEN]++;
		else if (st < SHMC__SEG_NSTATES)
			n[st]++;
		else
			n[SHMC__CENSUS_BAD]++;
	}
}
