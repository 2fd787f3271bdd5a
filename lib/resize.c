/*
 * resize.c - live resize of the memory budget, its history, and autogrow.
 *
 * WHAT
 * The file is a sparse reservation mapped whole by every process, so a
 * resize never remaps and never moves data.  Growing raises the budget in
 * the header and commits the new segments with fallocate(), a batch at a
 * time under log_lock; every process sees the new budget at its next
 * segment allocation.  If the system cannot give the memory (ENOSPC), the
 * batches already committed are given back and the budget restored: the
 * cache is as it was.  Shrinking lowers the budget first (no new commits),
 * then gives segments back a few at a time, each under a short hold of
 * log_lock: free ones first, then evicted ones, whose hot items are copied
 * forward into what stays, exactly as normal eviction does.  Punching them
 * out (FALLOC_FL_PUNCH_HOLE) returns the memory to the system.  The index
 * then merges buckets down if the cache now holds far fewer items.
 *
 * CRASH SAFETY
 * resize_lock is a robust mutex held for the whole resize; target, origin,
 * phase and pid live in the header beside it.  If the resizing process
 * dies, the next one to lock it gets EOWNERDEAD and finishes the recorded
 * target (shmc_open() does this for a pending resize, and so does any
 * later shmc_resize(), which then goes on to its own target).  Each step
 * of the work is itself crash safe: it is ordinary segment commit,
 * eviction or punching under log_lock (see log.c).
 *
 * AUTOGROW
 * A writer that had to evict checks, at most once a second, whether the
 * cache has been under pressure for the policy's window: utilisation at
 * the threshold and ghost hits (keys evicted from the small queue coming
 * back) at the given share of sets.  If so, it grows the budget by a step,
 * up to the ceiling, and records it.  The check takes resize_lock with a
 * trylock, so it never waits on a resize in progress.
 */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define STEP_SEGMENTS 16u /* segments per hold of log_lock */

/*
 * Pacing: after each step, rest seven times as long as it took (at most
 * 20 ms), so a resize takes about an eighth of one CPU from the workers.
 * Growing's budget is visible to everyone before the first step (writers
 * that need a segment meanwhile commit it themselves), and a shrink has
 * already stopped new commits, so going slower costs nothing but time.
 */
static void pace(uint64_t step_ns)
{
	uint64_t rest = 7 * step_ns;
	if (rest > 20000000u)
		rest = 20000000u;
	struct timespec ts = {0, (long)rest};
	nanosleep(&ts, NULL);
}

enum { PHASE_NONE = 0, PHASE_GROW = 1, PHASE_SHRINK = 2 };

uint64_t shmc__min_memory(struct shmc *c)
{
	uint32_t open = 0;
	for (uint32_t i = 0; i < c->max_readers; i++)
		open += shmc__load(&shmc__slot_at(&c->map, i)->open_seg,
		                   __ATOMIC_RELAXED) != 0;
	/* The fixed parts, every open segment, the copy-forward segment and
	 * its reserve, and room for the queues to turn over. */
	return shmc__fixed_committed(c) +
	       (uint64_t)(open + SHMC__CF_RESERVE + 1 + 6) * c->seg_size;
}

static uint64_t sum_ctr(struct shmc *c, enum shmc__ctr k)
{
	uint64_t s = 0;
	for (uint32_t i = 0; i < c->max_readers; i++)
		s += shmc__load(&shmc__slot_at(&c->map, i)->ctr[k],
		                __ATOMIC_RELAXED);
	return s;
}

static void record(struct shmc *c, uint64_t from, uint64_t to,
                   uint32_t reason)
{
	struct shmc__hdr *h = c->map.hdr;
	struct shmc__hist *r = &h->hist[h->hist_next % SHMC__HIST];
	/* A record is read without resize_lock (shmc_resize_history): time
	 * 0 marks it as being written.  Release on each store of time: the
	 * fields are written after the first and before the second, as the
	 * reader's acquire loads see them. */
	shmc__store(&r->time, 0, __ATOMIC_RELEASE);
	cmm_smp_wmb(); /* time = 0 before the fields */
	r->from = from;
	r->to = to;
	r->pid = (int32_t)getpid();
	r->reason = reason;
	uint64_t now = shmc__now(c);
	shmc__store(&r->time, now ? now : 1, __ATOMIC_RELEASE);
	/* Release: the record is complete before the count names it. */
	shmc__store(&h->hist_next, h->hist_next + 1, __ATOMIC_RELEASE);
}

static int report(struct shmc *c, uint64_t from, uint64_t to, uint32_t done,
                  int (*fn)(const struct shmc_resize_progress *, void *),
                  void *arg)
{
	if (!fn)
		return 0;
	struct shmc_resize_progress p = {
	    .from = from,
	    .to = to,
	    .committed = shmc__committed(c),
	    .done = done,
	};
	return fn(&p, arg) ? -ECANCELED : 0;
}

/* Gives segments back until committed <= the budget, in short holds. */
static int shrink_to_budget(struct shmc *c, struct shmc__thr *t,
                            uint64_t from, uint64_t to,
                            int (*fn)(const struct shmc_resize_progress *,
                                      void *),
                            void *arg)
{
	uint64_t last = UINT64_MAX;
	unsigned idle = 0;
	for (;;) {
		uint64_t t0 = shmc__now_ns();
		int rc = shmc__log_shrink_step(c, t, STEP_SEGMENTS);
		uint64_t now = shmc__committed(c);
		if (rc <= 0)
			return rc;
		pace(shmc__now_ns() - t0);
		/* Each step gives back memory, evicts or waits for readers; a
		 * long run of steps that change nothing means nothing more
		 * can be had. */
		idle = now < last ? 0 : idle + 1;
		last = now < last ? now : last;
		if (idle > 64)
			return SHMC_ESTALLED;
		rc = report(c, from, to, 0, fn, arg);
		if (rc)
			return rc;
	}
}

/* The resize state a resume would act on, against the immutable header:
 * a corrupt segment is left for shmc_check to report, not acted on. */
static bool resumable(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	return (h->resize_phase == PHASE_GROW ||
	        h->resize_phase == PHASE_SHRINK) &&
	       h->resize_target <= h->max_memory &&
	       h->resize_from <= h->max_memory &&
	       h->max_memory <= h->file_size;
}

/* The index size this budget and item count call for. */
static void index_follow(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	int64_t items = shmc__load(&h->items_approx, __ATOMIC_RELAXED);
	uint64_t want = items > 0 ? (uint64_t)items / SHMC__IX_LOAD : 0;
	uint64_t floor = shmc__load(&h->memory, __ATOMIC_ACQUIRE) / 2048;
	if (want < floor)
		want = floor;
	if (want < 256)
		want = 256;
	/* Only shrink when clearly oversized: merging is not free. */
	if (shmc__geom_buckets(h->index_geom) > 2 * want)
		shmc__ix_resize(c, t, want);
}

/*
 * resize_lock held.  Moves the budget from `from` to `to` and does the
 * work.  The phase is recorded first and cleared only when the work is
 * done, so a resizer that dies, is cancelled or is stopped by a stalled
 * reader leaves a resize that the next holder of resize_lock resumes
 * with the same phase: a shrink is finished, never mistaken for a grow
 * because the budget already says the target.
 */
static int run_resize(struct shmc *c, struct shmc__thr *t, uint64_t from,
                      uint64_t to, uint32_t phase, uint32_t reason,
                      int (*fn)(const struct shmc_resize_progress *, void *),
                      void *arg)
{
	struct shmc__hdr *h = c->map.hdr;
	h->resize_target = to;
	h->resize_from = from;
	h->resize_started = shmc__now(c);
	h->resize_pid = (int32_t)getpid();
	h->resize_reason = reason;
	/* Release: the fields above are complete before a reader of the
	 * phase (shmc__resize_resume, stats) acts on them. */
	shmc__store(&h->resize_phase, phase, __ATOMIC_RELEASE);
	int rc = 0;
	if (phase == PHASE_GROW) {
		uint64_t committed0 = shmc__committed(c);
		/* Visible to every process at once (no lock to wait for):
		 * from here a writer in need commits a segment itself. */
		shmc__store(&h->memory, to, __ATOMIC_RELEASE);
		for (;;) {
			uint64_t t0 = shmc__now_ns();
			rc = shmc__log_grow_step(c, STEP_SEGMENTS);
			if (rc <= 0)
				break;
			pace(shmc__now_ns() - t0);
			if ((rc = report(c, from, to, 0, fn, arg)) != 0)
				break;
		}
		if (rc < 0 && rc != -ECANCELED) {
			/* The system said no: put everything back, the budget
			 * and what this grow committed. */
			shmc__store(&h->memory, from, __ATOMIC_RELEASE);
			shmc__log_trim_free(c, committed0);
			if (shrink_to_budget(c, t, from, from, NULL, NULL) == 0)
				shmc__store(&h->resize_phase, PHASE_NONE,
				            __ATOMIC_RELEASE);
			return rc;
		}
		/* A cancelled grow is complete as far as it went: the budget
		 * is the target, and writers commit the rest on demand. */
		rc = rc == -ECANCELED ? rc : 0;
	} else {
		/* No new commits past this from now on, in every process;
		 * and from now on writers in need give memory back too. */
		shmc__store(&h->memory, to, __ATOMIC_RELEASE);
		rc = shrink_to_budget(c, t, from, to, fn, arg);
		if (rc == 0)
			index_follow(c, t);
	}
	if (rc == 0 || phase == PHASE_GROW) {
		if (from != to)
			record(c, from, to, reason);
		shmc__store(&h->resize_phase, PHASE_NONE, __ATOMIC_RELEASE);
	}
	if (rc == 0)
		report(c, from, to, 1, fn, arg);
	return rc;
}

static int do_resize(struct shmc *c, struct shmc__thr *t, uint64_t to,
                     uint32_t reason,
                     int (*fn)(const struct shmc_resize_progress *, void *),
                     void *arg)
{
	uint64_t from = shmc__load(&c->map.hdr->memory, __ATOMIC_RELAXED);
	return run_resize(c, t, from, to, to >= from ? PHASE_GROW : PHASE_SHRINK,
	                  reason, fn, arg);
}

/* Locks resize_lock; on a dead holder, finishes its resize first. */
static int resize_lock(struct shmc *c, struct shmc__thr *t, bool try)
{
	struct shmc__hdr *h = c->map.hdr;
	int rc;
	if (!try) {
		rc = shmc__lock(&h->resize_lock); /* 0, 1 (recovered), error */
		if (rc < 0)
			return rc;
	} else {
		if (!shmc__mutex_ok(&h->resize_lock))
			return SHMC_ECORRUPT;
		rc = pthread_mutex_trylock(&h->resize_lock);
		if (rc == EBUSY)
			return SHMC_EBUSY;
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(&h->resize_lock);
		else if (rc)
			return -rc;
	}
	if (h->resize_phase != PHASE_NONE) {
		/* Finish what was recorded, in its own direction. */
		uint64_t to = h->resize_target, floor = shmc__min_memory(c);
		if (resumable(c))
			run_resize(c, t, h->resize_from, to > floor ? to : floor,
			           h->resize_phase, SHMC_RESIZE_RESUMED, NULL,
			           NULL);
		else
			h->resize_phase = PHASE_NONE;
	}
	return 0;
}

void shmc__resize_resume(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	if (shmc__load(&h->resize_phase, __ATOMIC_RELAXED) == PHASE_NONE)
		return;
	int err = 0;
	struct shmc__thr *t = shmc__thr_get(c, &err);
	if (t && resize_lock(c, t, true) == 0)
		pthread_mutex_unlock(&h->resize_lock);
}

int shmc_resize(shmc_t *c, uint64_t memory, unsigned flags,
                int (*progress)(const struct shmc_resize_progress *p,
                                void *arg),
                void *arg)
{
	if (!c || (flags & ~SHMC_RESIZE_TRY))
		return -EINVAL;
	int rc = 0;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	if (t->depth)
		return SHMC_EBUSY;
	struct shmc__hdr *h = c->map.hdr;
	if (memory > h->max_memory)
		return SHMC_EBUDGET;
	rc = resize_lock(c, t, flags & SHMC_RESIZE_TRY);
	if (rc)
		return rc;
	if (memory < shmc__min_memory(c))
		rc = SHMC_EBUDGET;
	else
		rc = do_resize(c, t, memory, SHMC_RESIZE_MANUAL, progress, arg);
	pthread_mutex_unlock(&h->resize_lock);
	return rc;
}

int shmc_resize_index(shmc_t *c, uint64_t buckets)
{
	if (!c || buckets == 0)
		return -EINVAL;
	int rc = 0;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	if (t->depth)
		return SHMC_EBUSY;
	return shmc__ix_resize(c, t, buckets);
}

int shmc_resize_history(shmc_t *c, struct shmc_resize_record *out,
                        unsigned n)
{
	if (!c || (!out && n))
		return -EINVAL;
	struct shmc__hdr *h = c->map.hdr;
	uint32_t next = shmc__load(&h->hist_next, __ATOMIC_ACQUIRE);
	unsigned have = next < SHMC__HIST ? next : SHMC__HIST;
	unsigned k = 0;
	for (; k < n && k < have; k++) {
		const struct shmc__hist *r = &h->hist[(next - 1 - k) % SHMC__HIST];
		/* Seqlock-style: the record's time is 0 while it is written
		 * and is stored last; a copy whose time moved is torn. */
		uint64_t t0 = shmc__load(&r->time, __ATOMIC_ACQUIRE);
		out[k] = (struct shmc_resize_record){
		    .time = t0,
		    .from = r->from,
		    .to = r->to,
		    .pid = r->pid,
		    .reason = r->reason,
		};
		cmm_smp_rmb(); /* the copy before the second look at time */
		if (!t0 || shmc__load(&r->time, __ATOMIC_RELAXED) != t0)
			break;
	}
	/* Records overwritten while we copied (the ring moved on by d) are
	 * the oldest d: drop them. */
	uint32_t d = shmc__load(&h->hist_next, __ATOMIC_ACQUIRE) - next;
	if (d >= SHMC__HIST)
		return 0;
	if (k + d > SHMC__HIST)
		k = SHMC__HIST - d;
	return (int)k;
}

int shmc_set_autogrow(shmc_t *c, const struct shmc_autogrow *ag)
{
	if (!c || !ag || ag->util_pct > 100)
		return -EINVAL;
	struct shmc__hdr *h = c->map.hdr;
	if (ag->ceiling > h->max_memory)
		return -EINVAL;
	int rc = 0;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	rc = resize_lock(c, t, false);
	if (rc)
		return rc;
	h->ag_ceiling = ag->ceiling ? ag->ceiling : h->max_memory;
	h->ag_util_pct = ag->util_pct ? ag->util_pct : 85;
	h->ag_window_s = ag->window_s ? ag->window_s : 10;
	h->ag_ghost_pm = ag->ghost_pm ? ag->ghost_pm : 20;
	h->ag_mrc_pm = ag->mrc_gain_pm;
	h->ag_since = 0;
	shmc__store(&h->ag_step, ag->step, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&h->resize_lock);
	return 0;
}

int shmc_get_autogrow(shmc_t *c, struct shmc_autogrow *ag)
{
	if (!c || !ag)
		return -EINVAL;
	struct shmc__hdr *h = c->map.hdr;
	*ag = (struct shmc_autogrow){
	    .step = h->ag_step,
	    .ceiling = h->ag_ceiling,
	    .util_pct = h->ag_util_pct,
	    .window_s = h->ag_window_s,
	    .ghost_pm = h->ag_ghost_pm,
	    .mrc_gain_pm = h->ag_mrc_pm,
	};
	return 0;
}

void shmc__autogrow_check(struct shmc *c, struct shmc__thr *t)
{
	struct shmc__hdr *h = c->map.hdr;
	if (!shmc__load(&h->ag_step, __ATOMIC_ACQUIRE))
		return;
	uint32_t now = shmc__now(c);
	/* At most one look a second, by whoever gets there first. */
	uint32_t last = shmc__load(&h->ag_checked, __ATOMIC_RELAXED);
	if (last == now || uatomic_cmpxchg(&h->ag_checked, last, now) != last)
		return;
	/* Never wait here; but a trylock that meets a dead owner has taken
	 * the lock, and resize_lock() then finishes the dead resize. */
	if (resize_lock(c, t, true) != 0)
		return;
	uint64_t mem = shmc__load(&h->memory, __ATOMIC_ACQUIRE), free_b =
	    (uint64_t)(h->free_count + h->retire_count) * c->seg_size;
	uint64_t committed = shmc__committed(c);
	uint64_t used = committed > free_b ? committed - free_b : 0;
	uint64_t sets = sum_ctr(c, SHMC__C_SETS) + sum_ctr(c, SHMC__C_ADDS);
	uint64_t ghosts = sum_ctr(c, SHMC__C_GHOST_HITS);
	if (used * 100 < mem * h->ag_util_pct || mem >= h->ag_ceiling) {
		h->ag_since = 0;
	} else if (!h->ag_since || now - h->ag_since > 4 * h->ag_window_s) {
		h->ag_since = now; /* pressure starts (or restarts) here */
		h->ag_last_sets = sets;
		h->ag_last_ghosts = ghosts;
	} else if (now - h->ag_since >= h->ag_window_s) {
		uint64_t ds = sets - h->ag_last_sets;
		uint64_t dg = ghosts - h->ag_last_ghosts;
		uint64_t to = mem + h->ag_step;
		if (to > h->ag_ceiling)
			to = h->ag_ceiling;
		/* The miss-ratio curve, when asked for and usable, says
		 * whether the step buys enough; else the ghost hits do. */
		uint32_t gain;
		bool grow = h->ag_mrc_pm && shmc__mrc_gain(c, mem, to, &gain)
		                ? gain >= h->ag_mrc_pm
		                : ds && dg * 1000 >= (uint64_t)h->ag_ghost_pm * ds;
		if (grow)
			do_resize(c, t, to, SHMC_RESIZE_AUTOGROW, NULL, NULL);
		h->ag_since = 0;
	}
	pthread_mutex_unlock(&h->resize_lock);
}
