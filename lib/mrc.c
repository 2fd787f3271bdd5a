/*
 * mrc.c - the miss-ratio curve of the live cache, from sampled reuse
 * distances kept in the segment by every process.
 *
 * WHAT
 * "How much memory would this cache need for a 95 % hit ratio?"  An LRU
 * cache of C bytes hits a get exactly when the bytes of the other items
 * touched since the key's previous touch, plus the item itself, fit in
 * C: the get's reuse (stack) distance in bytes (Mattson et al., 1970).
 * A histogram of those distances over all gets is therefore the LRU hit
 * ratio at every size at once.  Following every key would cost a lock
 * and a tree update per get; SHARDS (Waldspurger et al., "Efficient MRC
 * Construction with SHARDS", FAST '15) follows only the keys whose hash
 * falls below a threshold T, a fraction R = T / 2^64 of them, measures
 * distances among those alone and scales them by 1/R.  Because the
 * sample is of keys, not of references, each sampled key is seen on
 * every touch and its distances are exact within the sample.
 *
 * Fixed-size SHARDS: the table holds at most K keys (mrc_keys).  When a
 * new key finds it full, T is lowered until at least an eighth of the
 * keys fall above it, and those are dropped: R adapts to the working
 * set, memory stays bounded.  A sample taken at rate R adds 256/R to its
 * bucket, its estimate of the references it stands for, so lowering R
 * never rescales what was counted before (the paper's rescaling by R'/R
 * of the old counts, done once at record time instead).
 *
 * WHAT COUNTS
 *   get     a reference: a key the table knows adds its distance (bytes
 *           of later-stamped keys + its own size) to the histogram, an
 *           unknown key counts as cold (a miss at any size).  Then the
 *           key is stamped now.  A miss has no item to size: the key
 *           keeps the size its last set gave it (0 if none yet).
 *   set     not a reference (a set after a miss would otherwise count
 *           as a hit at distance 0): it stamps the key now with the new
 *           item's size, as an LRU cache moves a written item to the
 *           front.
 *   delete  forgets the key: its next get is cold, as it misses at any
 *           size.
 * Sizes are shmc__item_size(): the bytes an item takes in a segment.
 *
 * HOW
 * Logical time stamps 0 .. 2K-1.  A Fenwick tree over them holds, at
 * each live stamp, the size of the key stamped then, so "bytes touched
 * since stamp p" is total - prefix(p), O(log K).  own[] maps a stamp to
 * its key's table slot.  When the clock reaches 2K the live stamps (at
 * most K) are renumbered in order and the tree rebuilt in O(K): once per
 * K samples at least, so O(1) amortised.  The table is open addressing
 * with linear probing on the hash's low bits and backward-shift deletion.
 *
 * THE DATA PATH
 * Sampling uses bits of the hash the index never uses to pick a bucket
 * (the index takes at most the low 32 bits; "h < T" with T < 2^64 looks
 * at the high ones first), so sampled keys spread evenly over buckets.
 * An unsampled get or set pays one relaxed load of hdr->mrc_thresh, on
 * the header line every read section loads anyway, and one compare; a
 * cache without a curve has T = 0 and never samples.  A sampled one
 * (about 1 % of keys at steady state) takes the region's robust mutex
 * with a trylock: when another thread holds it the sample is dropped
 * (counted in `skipped`) rather than waited for.
 *
 * INVARIANTS (under the lock; shmc_check verifies them)
 *   - nkeys = occupied table slots <= K; clock <= 2K.
 *   - an occupied slot i has hash < T, ts1 - 1 < clock, own[ts1 - 1] =
 *     i + 1; own[t] for t >= clock is 0.
 *   - bytes = the tree's total = sum of the occupied slots' sizes.
 *   - T only falls, except at shmc_mrc_reset.
 * Every index taken from the region is masked by 2K - 1 (K comes from
 * the validated header, never from the region), every probe and walk is
 * bounded by 2K steps: a corrupt region gives a wrong curve or
 * SHMC_ECORRUPT from shmc_mrc, never a stray access.
 *
 * DEATH
 * A process killed inside the sampler leaves the robust mutex to be
 * taken with EOWNERDEAD by the next sampler, which cannot know how far
 * the dead one got: it forgets the sampled keys and stamps (the
 * histogram, a set of counters each updated by one store, is kept) and
 * sampling goes on.  The cost is a few cold misses too many.  A holder
 * gone without the kernel marking the lock (its robust list lost) would
 * make every try fail for ever: a sampler that finds the lock busy keeps
 * a watch on its word (shmc__reap_vanished), and once the word has named
 * a thread that no longer exists for 2 s, marks it owner-dead itself;
 * so do shmc_mrc_reset and shmc_mrc_pause, which a paused cache needs
 * (no sampler tries the lock then), when called again after 2 s.
 *
 * READING (SHARDS-adj)
 * shmc_mrc reads the histogram without the lock.  The sample's estimate
 * of the number of gets (its weights, with those of skipped samples) is
 * compared with the true number, the slots' get counters since the
 * reset: a hot key that happens to be sampled counts 1/R times its
 * share, nearly all at tiny distances, and one that happens not to be
 * counts nothing.  As in the paper (section 4.2), the difference is
 * added to, or taken off, the smallest distances.  On Zipf traffic this
 * is most of the accuracy (bench/README.md).
 *
 * PAUSE AND RESET
 * shmc_mrc_pause stores T = 0 (the data path then never samples) and
 * keeps T and the slots' get count in the region; resuming restores T,
 * forgets the sampled keys (their stamps missed the pause) and moves the
 * get count's base past the paused gets.  shmc_mrc_reset clears
 * everything and goes back to the first rate, sample0.  The cache is
 * paused when T is 0 and a pause is on record: a pause or reset killed
 * half-way leaves at worst a record with T set, which counts as running
 * (resuming it only drops the record).  A resume killed after it moved
 * the base leaves the cache paused; resuming again moves it twice, and
 * the curve then corrects fewer gets than it should.
 *
 * LIMITS
 * It predicts LRU, and this cache evicts with S3-FIFO: bench/README.md
 * measures how far apart they are.  TTLs are not modelled (an expired
 * key counts as a reuse).  Values stored by shmc_get_or_load's loaders
 * are not stamped as sets (their gets are sampled).  The curve covers
 * all traffic since creation or the last shmc_mrc_reset.
 *
 * Lock order: the region's lock is a leaf; nothing else is taken while
 * holding it, and it may be taken inside a read section (it never waits
 * for a grace period).
 */
#include <errno.h>
#include <stdio.h>

#include "internal.h"

#define TWO64 18446744073709551616.0

/* The region as this process addresses it; sizes from the validated
 * header (hdr->mrc_keys, copied into the handle at open). */
struct view {
	struct shmc__mrc *r;
	struct shmc__mrc_key *tab;
	uint64_t *tree;
	uint32_t *own;
	uint32_t K, N, m; /* keys, stamps and table slots (2K), N - 1 */
};

static struct view view_of(struct shmc *c)
{
	struct view v;
	uint8_t *b = (uint8_t *)c->mrc;
	v.r = c->mrc;
	v.K = c->mrc_keys;
	v.N = 2 * v.K;
	v.m = v.N - 1;
	v.tab = (struct shmc__mrc_key *)(b + SHMC__MRC_HDR);
	v.tree = (uint64_t *)(b + SHMC__MRC_HDR + 16ull * v.N);
	v.own = (uint32_t *)(b + SHMC__MRC_HDR + 24ull * v.N);
	return v;
}

/* Fields shmc_mrc reads without the lock are written with relaxed
 * stores (one writer: the lock holder); they order nothing. */
#define PUT(p, x) shmc__store((p), (x), __ATOMIC_RELAXED)
#define GET(p) shmc__load((p), __ATOMIC_RELAXED)

/* Fenwick tree, 0-based: node i covers [i & (i + 1), i]. */
static void tree_add(const struct view *v, uint32_t i, uint64_t d)
{
	for (i &= v->m; i < v->N; i |= i + 1)
		v->tree[i] += d; /* mod 2^64: d may be a negated size */
}

/* Sum of stamps [0, n). */
static uint64_t tree_sum(const struct view *v, uint32_t n)
{
	uint64_t s = 0;
	if (n > v->N)
		n = v->N;
	for (int64_t i = (int64_t)n - 1; i >= 0; i = (i & (i + 1)) - 1)
		s += v->tree[i];
	return s;
}

/* Forgets every sampled key and stamp; keeps the histogram. */
static void restart(const struct view *v)
{
	memset(v->tab, 0, sizeof(*v->tab) * v->N);
	memset(v->tree, 0, sizeof(*v->tree) * v->N);
	memset(v->own, 0, sizeof(*v->own) * v->N);
	PUT(&v->r->nkeys, 0);
	v->r->clock = 0;
	v->r->bytes = 0;
	PUT(&v->r->resets, v->r->resets + 1);
}

/* The slot of hash h (*found), or the empty slot where it would go;
 * UINT32_MAX when the table has no empty slot (only if corrupt). */
static uint32_t tab_find(const struct view *v, uint64_t h, bool *found)
{
	uint32_t i = (uint32_t)h & v->m;
	*found = false;
	for (uint32_t n = 0; n < v->N; n++, i = (i + 1) & v->m) {
		if (!v->tab[i].ts1)
			return i;
		if (v->tab[i].hash == h) {
			*found = true;
			return i;
		}
	}
	return UINT32_MAX;
}

/* Takes slot i's key off the tree (its stamp becomes free). */
static void unstamp(const struct view *v, uint32_t i)
{
	struct shmc__mrc_key *e = &v->tab[i];
	if (!e->ts1)
		return;
	uint32_t ts = (e->ts1 - 1) & v->m;
	tree_add(v, ts, -(uint64_t)e->size);
	if (v->own[ts] == i + 1)
		v->own[ts] = 0;
	v->r->bytes -= e->size;
}

/* Removes slot i, closing the gap by backward shifting (Knuth 6.4 R). */
static void tab_remove(const struct view *v, uint32_t i)
{
	unstamp(v, i);
	uint32_t n = GET(&v->r->nkeys);
	PUT(&v->r->nkeys, n ? n - 1 : 0);
	uint32_t j = i;
	for (uint32_t step = 0; step < v->N; step++) {
		j = (j + 1) & v->m;
		struct shmc__mrc_key *f = &v->tab[j];
		if (!f->ts1)
			break;
		/* f may move into the hole unless its home slot lies
		 * cyclically in (i, j]: then a lookup would not find it. */
		uint32_t home = (uint32_t)f->hash & v->m;
		if (((j - home) & v->m) < ((j - i) & v->m))
			continue;
		v->tab[i] = *f;
		v->own[(f->ts1 - 1) & v->m] = i + 1;
		i = j;
	}
	v->tab[i] = (struct shmc__mrc_key){0, 0, 0};
}

/* Renumbers the live stamps 0.. in order and rebuilds the tree. */
static void compact(const struct view *v)
{
	uint32_t n = 0, end = v->r->clock < v->N ? v->r->clock : v->N;
	for (uint32_t t = 0; t < end; t++) {
		uint32_t o = v->own[t];
		if (!o || o > v->N || v->tab[o - 1].ts1 != t + 1)
			continue; /* free (or a stale link) */
		v->tab[o - 1].ts1 = n + 1;
		v->own[n++] = o; /* n <= t: a slot already read */
	}
	memset(v->own + n, 0, sizeof(*v->own) * (v->N - n));
	uint64_t bytes = 0;
	for (uint32_t t = 0; t < v->N; t++) {
		v->tree[t] = t < n ? v->tab[v->own[t] - 1].size : 0;
		bytes += v->tree[t];
	}
	for (uint32_t t = 0; t < v->N; t++) { /* linear Fenwick build */
		uint32_t p = t | (t + 1);
		if (p < v->N)
			v->tree[p] += v->tree[t];
	}
	v->r->clock = n;
	v->r->bytes = bytes;
}

/* Stamps slot i's key now with size.  False when the state had to be
 * restarted (a corrupt clock) and the key is gone. */
static bool stamp(const struct view *v, uint32_t i, uint64_t size)
{
	struct shmc__mrc_key *e = &v->tab[i];
	unstamp(v, i);
	e->ts1 = 0; /* out of own[]: the compaction below skips it */
	if (v->r->clock >= v->N)
		compact(v);
	if (v->r->clock >= v->N) { /* 2K live stamps: only if corrupt */
		restart(v);
		return false;
	}
	uint32_t t = v->r->clock++;
	if (size > UINT32_MAX)
		size = UINT32_MAX;
	e->ts1 = t + 1;
	e->size = (uint32_t)size;
	v->own[t] = i + 1;
	tree_add(v, t, size);
	v->r->bytes += size;
	return true;
}

/* Fixed-size SHARDS: lowers T until at least an eighth of the keys lie
 * above it and drops them.  Returns whether h is still sampled and the
 * table has room for it: when every key lies below T / 64 (keys chosen
 * for their hashes can), T falls 64 times and nothing is dropped. */
static bool lower(struct shmc *c, const struct view *v, uint64_t h)
{
	uint64_t thr = GET(&c->map.hdr->mrc_thresh);
	uint64_t step = thr / 64;
	if (!step)
		return false;
	uint32_t cnt[64] = {0}, keys = 0;
	for (uint32_t i = 0; i < v->N; i++) {
		if (!v->tab[i].ts1)
			continue;
		uint64_t b = v->tab[i].hash / step;
		cnt[b < 63 ? b : 63]++;
		keys++;
	}
	uint32_t want = keys / 8 + 1, got = 0, b = 64;
	while (b > 1 && got < want)
		got += cnt[--b];
	uint64_t nt = (uint64_t)b * step;
	/* Relaxed: the data path's compare may see the old T a while and
	 * send keys that are dropped below, under the lock. */
	shmc__store(&c->map.hdr->mrc_thresh, nt, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < v->N;) {
		if (v->tab[i].ts1 && v->tab[i].hash >= nt)
			tab_remove(v, i); /* i again: an entry moved in */
		else
			i++;
	}
	return h < nt && GET(&v->r->nkeys) < v->K;
}

static void insert(struct shmc *c, const struct view *v, uint64_t h,
                   uint64_t size)
{
	if (GET(&v->r->nkeys) >= v->K && !lower(c, v, h))
		return;
	bool found;
	uint32_t i = tab_find(v, h, &found);
	if (i == UINT32_MAX || found)
		return;
	v->tab[i] = (struct shmc__mrc_key){h, 0, 0};
	PUT(&v->r->nkeys, GET(&v->r->nkeys) + 1);
	stamp(v, i, size);
}

/* Histogram bucket of a distance d in bytes: 0 below SHMC__MRC_BASE,
 * then SHMC__MRC_SUB equal parts of each doubling; the last bucket is
 * "beyond any size" (bucket_lo). */
static uint32_t bucket_of(uint64_t d)
{
	if (d < SHMC__MRC_BASE)
		return 0;
	unsigned e = 63u - (unsigned)__builtin_clzll(d); /* >= 10 */
	uint64_t k = (uint64_t)(e - 10) * SHMC__MRC_SUB +
	             ((d >> (e - 4)) & (SHMC__MRC_SUB - 1));
	return k + 1 < SHMC__MRC_HIST - 1 ? (uint32_t)k + 1 : SHMC__MRC_HIST - 1;
}

/* Bounds [lo, hi) of bucket i < SHMC__MRC_HIST - 1. */
static void bucket_lo(uint32_t i, double *lo, double *hi)
{
	if (i == 0) {
		*lo = 0;
		*hi = SHMC__MRC_BASE;
		return;
	}
	uint32_t k = i - 1, e = 10 + k / SHMC__MRC_SUB, s = k % SHMC__MRC_SUB;
	*lo = (double)((uint64_t)(SHMC__MRC_SUB + s) << (e - 4));
	*hi = *lo + (double)(1ull << (e - 4));
}

static uint64_t weight(uint64_t thr)
{
	double w = SHMC__MRC_UNIT * TWO64 / (double)thr; /* thr > 0 */
	return w < 0x1p50 ? (uint64_t)(w + 0.5) : (1ull << 50);
}

static bool state_sane(const struct view *v)
{
	return v->r->nkeys <= v->K && v->r->clock <= v->N;
}

void shmc__mrc_sample(struct shmc *c, uint64_t h, uint64_t size,
                      enum shmc__mrc_op op)
{
	if (!c->mrc)
		return;
	struct view v = view_of(c);
	struct shmc__mrc *r = v.r;
	if (!shmc__mutex_ok(&r->lock))
		return; /* garbage: not even a trylock is safe (epoch.c) */
	int rc = pthread_mutex_trylock(&r->lock);
	if (rc == EBUSY) {
		/* Only tried, never waited for: a holder that vanished
		 * without the kernel marking it dead (its robust list lost)
		 * would stop sampling, reset and pause for good.  Reaped as
		 * shmc__lock reaps it; its CAS is the ordering (epoch.c). */
		shmc__reap_vanished(&r->lock, &c->mrc_watch);
		/* Atomic adds that order nothing: counters for shmc_mrc. */
		uatomic_inc(&r->skipped);
		/* (T is 0 when a pause holds the lock: then no weight.) */
		uint64_t thr = GET(&c->map.hdr->mrc_thresh);
		if (op == SHMC__MRC_GET && thr)
			uatomic_add(&r->skipped_w, weight(thr));
		return;
	}
	if (rc == EOWNERDEAD) {
		/* Its holder died half-way: start the keys again. */
		if (pthread_mutex_consistent(&r->lock) != 0) {
			pthread_mutex_unlock(&r->lock);
			return;
		}
		restart(&v);
	} else if (rc) {
		return;
	}
	if (r->magic != SHMC__MRC_MAGIC || r->keys != v.K)
		goto out; /* not ours to touch: check reports it */
	if (!state_sane(&v))
		restart(&v);
	/* Again under the lock: a lower T may have dropped this key. */
	uint64_t thr = GET(&c->map.hdr->mrc_thresh);
	if (h >= thr)
		goto out;
	bool found;
	uint32_t i = tab_find(&v, h, &found);
	if (i == UINT32_MAX)
		restart(&v), found = false;
	switch (op) {
	case SHMC__MRC_GET:
		if (found) {
			struct shmc__mrc_key *e = &v.tab[i];
			uint64_t sz = size ? size : e->size;
			uint64_t after = 0;
			if (e->ts1)
				after = v.r->bytes -
				        tree_sum(&v, ((e->ts1 - 1) & v.m) + 1);
			double d = (double)(after + sz) * (TWO64 / (double)thr);
			uint32_t b = bucket_of(d < 0x1p62 ? (uint64_t)d
			                                  : (1ull << 62));
			PUT(&r->hist[b], r->hist[b] + weight(thr));
			stamp(&v, i, sz);
		} else {
			PUT(&r->cold, r->cold + weight(thr));
			insert(c, &v, h, size);
		}
		break;
	case SHMC__MRC_SET:
		if (found)
			stamp(&v, i, size);
		else
			insert(c, &v, h, size);
		break;
	case SHMC__MRC_DEL:
		if (found)
			tab_remove(&v, i);
		break;
	}
out:
	pthread_mutex_unlock(&r->lock);
}

/* Gets of every process so far: the slots' counters, which never go
 * back (a slot's next owner adds to them). */
static uint64_t slot_gets(struct shmc *c)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < c->max_readers; i++) {
		/* gets = hits + misses (the counters keep no gets of their
		 * own) */
		const uint64_t *ctr = shmc__slot_at(&c->map, i)->ctr;
		n += GET(&ctr[SHMC__C_HITS]) + GET(&ctr[SHMC__C_MISSES]);
	}
	return n;
}

/*
 * shmc_mrc_reset and shmc_mrc_pause: the region's lock, waited for up to
 * a second.  While the cache is paused no sampler tries it, so a holder
 * that vanished unmarked (see DEATH) is reaped here too, with the
 * handle's watch: a call at least 2 s after one that timed out on the
 * same word takes the lock as owner-dead (1).
 */
static int lock_region(struct shmc *c, struct shmc__mrc *r)
{
	int rc = shmc__lock_timed(&r->lock, 1000ull * 1000 * 1000);
	if (rc != -ETIMEDOUT)
		return rc;
	/* Its CAS is the ordering (epoch.c); then one more try. */
	shmc__reap_vanished(&r->lock, &c->mrc_watch);
	return shmc__lock_timed(&r->lock, 0);
}

int shmc_mrc_reset(shmc_t *c)
{
	if (!c)
		return -EINVAL;
	if (!c->mrc)
		return -ENOTSUP;
	struct view v = view_of(c);
	int rc = lock_region(c, v.r);
	if (rc < 0)
		return rc;
	restart(&v);
	for (uint32_t i = 0; i < SHMC__MRC_HIST; i++)
		PUT(&v.r->hist[i], 0);
	PUT(&v.r->cold, 0);
	PUT(&v.r->skipped, 0);
	PUT(&v.r->skipped_w, 0);
	PUT(&v.r->gets_base, slot_gets(c));
	v.r->magic = SHMC__MRC_MAGIC;
	v.r->keys = v.K;
	/* Relaxed, as every store of T: it orders nothing; a data path
	 * that still sees the old T is sorted out under the lock. */
	shmc__store(&c->map.hdr->mrc_thresh,
	            shmc__mrc_first_thresh(v.r->sample0), __ATOMIC_RELAXED);
	/* After T: killed between the two, a paused cache is left
	 * sampling with a stale pause on record (which nothing counts
	 * while T is not 0), not with T = 0 and no pause (the curve off
	 * until the next reset). */
	PUT(&v.r->paused_thr, 0);
	shmc__unlock(&v.r->lock);
	return 0;
}

int shmc_mrc_pause(shmc_t *c, int pause)
{
	if (!c)
		return -EINVAL;
	if (!c->mrc)
		return -ENOTSUP;
	struct view v = view_of(c);
	struct shmc__mrc *r = v.r;
	int rc = lock_region(c, r);
	if (rc < 0)
		return rc;
	if (rc == 1)
		restart(&v);
	uint64_t *thr = &c->map.hdr->mrc_thresh;
	uint64_t now = slot_gets(c), t = GET(thr);
	if (pause && t) {
		PUT(&r->pause_gets, now);
		PUT(&r->paused_thr, t);
		/* Relaxed, as every store of T: the data path stops sampling
		 * when it sees 0; one that saw T a moment ago is the last. */
		shmc__store(thr, 0, __ATOMIC_RELAXED);
	} else if (!pause && GET(&r->paused_thr) && t) {
		/* A pause whose caller died before it stored T = 0: it never
		 * took effect, nothing to resume. */
		PUT(&r->paused_thr, 0);
	} else if (!pause && GET(&r->paused_thr)) {
		/* The sampled keys' stamps missed the pause: forget them.
		 * The gets made meanwhile are not the curve's. */
		restart(&v);
		uint64_t missed = now - GET(&r->pause_gets);
		PUT(&r->gets_base, GET(&r->gets_base) + missed);
		shmc__store(thr, GET(&r->paused_thr), __ATOMIC_RELAXED);
		PUT(&r->paused_thr, 0);
	}
	shmc__unlock(&r->lock);
	return 0;
}

int shmc_mrc(shmc_t *c, struct shmc_mrc_point *pts, size_t n,
             struct shmc_mrc_info *info)
{
	if (!c || (!pts && n))
		return -EINVAL;
	if (!c->mrc)
		return -ENOTSUP;
	struct shmc__mrc *r = c->mrc;
	uint64_t thr = GET(&c->map.hdr->mrc_thresh);
	/* Paused only when T is 0: a pause on record with T set is one
	 * whose caller died before it stored T = 0 (sampling went on). */
	uint64_t paused = thr ? 0 : GET(&r->paused_thr);
	if (!thr)
		thr = paused;
	uint32_t nkeys = GET(&r->nkeys);
	if (GET(&r->magic) != SHMC__MRC_MAGIC ||
	    GET(&r->keys) != c->mrc_keys || nkeys > c->mrc_keys || !thr)
		return SHMC_ECORRUPT;
	/* A snapshot, without the lock: each bucket is one relaxed load of
	 * a word its single writer stores relaxed; the set of them may be a
	 * few samples apart. */
	double hist[SHMC__MRC_HIST], total = (double)GET(&r->cold);
	for (uint32_t i = 0; i < SHMC__MRC_HIST; i++)
		total += hist[i] = (double)GET(&r->hist[i]);
	double sampled = total;
	/*
	 * SHARDS-adj (the paper's section 4.2): the sample's estimate of the
	 * gets (with the skipped ones) against the true count from the
	 * slots' counters.  A hot key that happens to be sampled counts
	 * 1/R times its share, all at tiny distances; so does one that
	 * happens not to be, in the other direction.  The difference goes
	 * to (or comes off) the smallest distances.
	 */
	uint64_t now = paused ? GET(&r->pause_gets) : slot_gets(c);
	uint64_t base = GET(&r->gets_base);
	if (now >= base && total > 0) {
		double d = (double)(now - base) * SHMC__MRC_UNIT -
		           (total + (double)GET(&r->skipped_w));
		if (d > 0) {
			hist[0] += d;
			total += d;
		}
		for (uint32_t i = 0; d < 0 && i + 1 < SHMC__MRC_HIST; i++) {
			double take = -d < hist[i] ? -d : hist[i];
			hist[i] -= take;
			total -= take;
			d += take;
		}
	}
	/* Budget -> item bytes: less the fixed part, whose index, ghost
	 * table and directory (past index_off) are taken to scale with the
	 * budget, as the index grows with the items; what lies before the
	 * index (header, slots, this region) stays. */
	struct shmc__hdr *hd = c->map.hdr;
	uint64_t fixed = shmc__fixed_committed(c), lead = hd->index_off;
	uint64_t cur = GET(&hd->memory);
	double var = fixed > lead && cur ? (double)(fixed - lead) / (double)cur
	                                 : 0;
	for (size_t p = 0; p < n; p++) {
		uint64_t mem = pts[p].memory;
		if (mem) {
			double b = (double)mem * (1 - var) - (double)lead;
			pts[p].bytes = b > 0 ? (uint64_t)b : 0;
		}
		double C = (double)pts[p].bytes, hits = 0;
		for (uint32_t i = 0; i + 1 < SHMC__MRC_HIST; i++) {
			double lo, hi;
			bucket_lo(i, &lo, &hi);
			if (C >= hi)
				hits += hist[i];
			else if (C > lo) /* spread evenly over the bucket */
				hits += hist[i] * (C - lo) / (hi - lo);
		}
		double hr = total > 0 ? hits / total : 0;
		pts[p].hit_ratio = hr < 0 ? 0 : hr > 1 ? 1 : hr;
	}
	if (info) {
		memset(info, 0, sizeof(*info));
		info->rate = (double)thr / TWO64;
		info->keys = nkeys;
		info->max_keys = c->mrc_keys;
		/* Corrupt buckets can sum past 2^64 gets; a double out of
		 * range converts to no defined value: saturate. */
		double g = sampled / SHMC__MRC_UNIT;
		info->gets = g < 0x1p64 ? (uint64_t)g : UINT64_MAX;
		info->cold = (uint64_t)((double)GET(&r->cold) / SHMC__MRC_UNIT);
		info->skipped = GET(&r->skipped);
		info->resets = GET(&r->resets);
		info->fixed_bytes = fixed;
	}
	return 0;
}

bool shmc__mrc_gain(struct shmc *c, uint64_t from, uint64_t to,
                    uint32_t *pm)
{
	struct shmc_mrc_point p[2] = {{from, 0, 0}, {to, 0, 0}};
	struct shmc_mrc_info info;
	if (!c->mrc || shmc_mrc(c, p, 2, &info) != 0 || info.gets < 10000)
		return false;
	double d = (p[1].hit_ratio - p[0].hit_ratio) * 1000;
	*pm = d > 0 ? (uint32_t)d : 0;
	return true;
}

/* check.c: how long shmc_check waits for a lock (the fuzz target
 * shortens it); the sampler's lock is waited for at most 100 ms of it. */
extern uint64_t shmc__check_lock_wait_ns;

/* Up to this many problems of the region are reported one by one. */
#define CHECK_MAX 8

void shmc__mrc_check(struct shmc *c,
                     void (*report)(void *k, const char *problem), void *k)
{
	if (!c->mrc) {
		if (GET(&c->map.hdr->mrc_thresh))
			report(k, "mrc: sampling threshold set on a cache "
			          "without a curve");
		return;
	}
	struct view v = view_of(c);
	struct shmc__mrc *r = v.r;
	char buf[160];
	if (GET(&r->magic) != SHMC__MRC_MAGIC || GET(&r->keys) != v.K) {
		snprintf(buf, sizeof(buf),
		         "mrc: region magic %#x keys %u (want %#x, %u)",
		         GET(&r->magic), GET(&r->keys), SHMC__MRC_MAGIC, v.K);
		report(k, buf);
		return;
	}
	if (!GET(&c->map.hdr->mrc_thresh) && !GET(&r->paused_thr))
		report(k, "mrc: sampling threshold is 0, not paused");
	/* The deep walk under the lock, if it comes at once: check must
	 * not wait on a sampler (or a garbage lock word). */
	uint64_t wait = shmc__check_lock_wait_ns < 100ull * 1000 * 1000
	                    ? shmc__check_lock_wait_ns
	                    : 100ull * 1000 * 1000;
	int rc = shmc__lock_timed(&r->lock, wait);
	if (rc == SHMC_ECORRUPT) {
		report(k, "mrc: the sampler's lock is not a mutex");
		return;
	}
	if (rc < 0)
		return; /* busy: nothing known to be wrong */
	if (rc == 1)
		restart(&v); /* its holder died: what a sampler would do */
	int bad = 0;
#define BAD(...)                                                               \
	do {                                                                   \
		if (bad++ < CHECK_MAX) {                                       \
			snprintf(buf, sizeof(buf), __VA_ARGS__);               \
			report(k, buf);                                        \
		}                                                              \
	} while (0)
	uint64_t thr = GET(&c->map.hdr->mrc_thresh);
	if (!thr)
		thr = GET(&r->paused_thr);
	if (r->nkeys > v.K || r->clock > v.N)
		BAD("mrc: %u keys, clock %u beyond %u, %u", r->nkeys,
		    r->clock, v.K, v.N);
	uint32_t used = 0;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < v.N; i++) {
		struct shmc__mrc_key *e = &v.tab[i];
		if (!e->ts1)
			continue;
		used++;
		bytes += e->size;
		if (e->hash >= thr)
			BAD("mrc: slot %u: key above the threshold", i);
		if (e->ts1 - 1 >= r->clock || e->ts1 > v.N ||
		    v.own[e->ts1 - 1] != i + 1)
			BAD("mrc: slot %u: stamp %u not linked back", i,
			    e->ts1 - 1);
	}
	for (uint32_t t = r->clock < v.N ? r->clock : v.N; t < v.N; t++)
		if (v.own[t])
			BAD("mrc: stamp %u beyond the clock is in use", t);
	if (used != r->nkeys)
		BAD("mrc: %u keys in the table, %u counted", used, r->nkeys);
	if (bytes != r->bytes || tree_sum(&v, v.N) != r->bytes)
		BAD("mrc: sizes sum to %llu, tree to %llu, counted %llu",
		    (unsigned long long)bytes,
		    (unsigned long long)tree_sum(&v, v.N),
		    (unsigned long long)r->bytes);
#undef BAD
	shmc__unlock(&r->lock);
}
