/*
 * internal.h - what the files of lib/ share: the handle, per-thread state,
 * the item and bucket formats, and small inline helpers.
 */
#ifndef SHMC_INTERNAL_H
#define SHMC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <urcu/list.h>

#include "shmcache.h"
#include "../shm/shm.h"

#define SHMC__STR2(x) #x
#define SHMC__STR(x) SHMC__STR2(x)
#define SHMC__LIKELY(x) __builtin_expect(!!(x), 1)
#define SHMC__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Always-on cheap assertion: a broken invariant stops the process rather
 * than let it write through a bad offset.  Expensive checks live in
 * shmc_check(). */
#define SHMC__ASSERT(x)                                                        \
	do {                                                                   \
		if (SHMC__UNLIKELY(!(x)))                                      \
			shmc__assert_fail(#x, __FILE__, __LINE__);             \
	} while (0)
void shmc__assert_fail(const char *what, const char *file, int line)
    __attribute__((noreturn, cold));

/* How long a writer waits for a reader before giving up with
 * SHMC_ESTALLED: long enough for any honest read section, including one
 * whose process the scheduler has preempted on a crowded machine.  A
 * reader found stalled this long is not waited for again (epoch.c). */
#define SHMC__GRACE_TIMEOUT_NS (1000u * 1000u * 1000u)
#define SHMC__TTL_MAX SHMC_TTL_MAX
/* Free segments kept back for copy-forward during eviction. */
#define SHMC__CF_RESERVE 1u

/*
 * ITEM: 24 bytes of header, the key, the value; 8-byte aligned; written
 * once by its writer before it is published and never modified after.
 */
struct shmc__item {
	uint32_t vword;  /* value length (low 28 bits) | SHMC__V_* kind bits */
	uint16_t klen;
	uint16_t hcheck; /* bits 32..47 of the key's hash */
	uint32_t flags;
	uint32_t expiry; /* unix seconds, 0 = never */
	uint64_t cas;
	uint8_t data[];
};
_Static_assert(sizeof(struct shmc__item) == SHMC_ITEM_OVERHEAD, "item");

/*
 * Kind bits in the top of vword.  A key may have one data item (plain,
 * SOFT or NEG) and, while it is being loaded, one LEASE item: the index
 * holds at most one entry per (key, lease or not).
 *   LEASE  a get-or-load in progress: the value is a struct shmc__lease
 *   SOFT   the value starts with a u32 soft expiry (stale-while-revalidate)
 *   NEG    a cached "not found": the value is the loader's i32 result
 */
#define SHMC__V_LEN_MASK 0x0fffffffu
#define SHMC__V_LEASE (1u << 31)
#define SHMC__V_SOFT (1u << 30)
#define SHMC__V_NEG (1u << 29)

static inline uint32_t shmc__vlen(const struct shmc__item *it)
{
	return it->vword & SHMC__V_LEN_MASK;
}

static inline bool shmc__is_lease(const struct shmc__item *it)
{
	return (it->vword & SHMC__V_LEASE) != 0;
}

/* The value as the caller sees it: past the soft-expiry prefix. */
static inline uint32_t shmc__prefix(const struct shmc__item *it)
{
	return (it->vword & SHMC__V_SOFT) && shmc__vlen(it) >= 4 ? 4u : 0u;
}

static inline const uint8_t *shmc__uval(const struct shmc__item *it)
{
	return it->data + it->klen + shmc__prefix(it);
}

static inline uint32_t shmc__uvlen(const struct shmc__item *it)
{
	return shmc__vlen(it) - shmc__prefix(it);
}

/* The value of a LEASE item: who loads, and until when. */
struct shmc__lease {
	uint32_t slot;     /* the loader's reader slot */
	uint32_t seq;      /* its lease_seq while loading (odd) */
	uint64_t deadline; /* unix ms after which anyone may take over */
};

/*
 * BUCKET: 64 bytes, one cache line.
 *   lock   bit 0 locked; bits 1..15 owner slot; bits 16..39 overflow
 *          link (pool bucket + 1, 0 = none); bits 40..63 version
 *   e[i]   bits 0..45 item location in 8-byte units from data_off,
 *          bits 46..47 frequency (S3-FIFO), bits 48..63 tag (never 0);
 *          0 = empty
 */
struct shmc__bucket {
	uint64_t lock;
	uint64_t e[SHMC__BUCKET_WAYS];
};
_Static_assert(sizeof(struct shmc__bucket) == SHMC__BUCKET_SIZE, "bucket");

#define SHMC__E_LOC_MASK ((1ull << 46) - 1)
#define SHMC__E_FREQ_SHIFT 46
#define SHMC__E_FREQ_ONE (1ull << SHMC__E_FREQ_SHIFT)
#define SHMC__E_FREQ_MAX 3u
#define SHMC__E_TAG_SHIFT 48

static inline uint64_t shmc__e_loc(uint64_t e) { return e & SHMC__E_LOC_MASK; }
static inline unsigned shmc__e_freq(uint64_t e)
{
	return (unsigned)(e >> SHMC__E_FREQ_SHIFT) & 3u;
}
static inline uint16_t shmc__e_tag(uint64_t e)
{
	return (uint16_t)(e >> SHMC__E_TAG_SHIFT);
}
static inline uint64_t shmc__e_make(uint16_t tag, unsigned freq, uint64_t loc)
{
	return ((uint64_t)tag << SHMC__E_TAG_SHIFT) |
	       ((uint64_t)(freq & 3u) << SHMC__E_FREQ_SHIFT) | loc;
}
static inline uint16_t shmc__tag(uint64_t h)
{
	uint16_t t = (uint16_t)(h >> 48);
	return t ? t : 1;
}
static inline uint16_t shmc__hcheck(uint64_t h)
{
	return (uint16_t)(h >> 32);
}

/* Per-thread, per-handle state (process-private). */
struct shmc__thr {
	struct shmc *c;
	struct shmc__slot *s;
	uint32_t slot;
	uint32_t depth;      /* read-section nesting */
	int32_t items_local; /* not yet added to hdr->items_approx */
	bool evicted;        /* this call evicted: autogrow may look */
	bool loading;        /* inside a get-or-load loader */
	uint64_t fork_gen;
	pid_t tid;
	struct cds_list_head node;
};

struct shmc {
	struct shmc__map map;
	uint64_t id;        /* unique in this process */
	pthread_key_t key;
	pthread_mutex_t thr_lock;
	struct cds_list_head thrs;
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	/* Derived from the validated immutable header at open. */
	uint8_t *index;
	uint32_t *ghost;
	uint64_t *dir;      /* segment directory (layout.h) */
	uint64_t granule;   /* commit unit: a page, or a huge page */
	uint8_t *data;
	uint64_t index_max_mask;
	uint32_t pool_max;  /* overflow buckets the region may hold (at most
	                     * SHMC__POOL_MAX) */
	uint64_t data_size;
	uint32_t seg_size;
	uint32_t seg_shift;
	uint32_t nseg_max;
	uint32_t max_readers;
	bool mb_fast;       /* read sections skip the fence (shmc__mb_attach) */
	/* index_lock as this process's failed trylocks saw it: growth and
	 * tidy only try it, so they reap a vanished holder (index.c). */
	struct shmc__owner_watch ix_watch;
	/* Miss-ratio curve (mrc.c): its region, NULL when the cache has
	 * none, and its key count, both from the validated header. */
	struct shmc__mrc *mrc;
	uint32_t mrc_keys;
	/* The region's lock as this process's failed tries saw it: the
	 * samplers only try it, so they reap a vanished holder (mrc.c). */
	struct shmc__owner_watch mrc_watch;
};

extern uint64_t shmc__fork_gen;

/* Process-private TLS cache of the last (handle, thread state) pair. */
struct shmc__tls {
	struct shmc *c;
	uint64_t id, fork_gen;
	struct shmc__thr *t;
};
/* Initial-exec: the shared library reaches it at a fixed offset from the
 * thread pointer, with no __tls_get_addr call on every get (the default
 * general-dynamic model makes one).  It marks the whole library
 * STATIC_TLS: a program that loads it later (dlopen, a Python extension)
 * must find all of the library's thread-local storage in the small
 * surplus glibc keeps (about 2 KiB), so the library keeps only a few
 * dozen bytes there: this cache and two counters in log.c.  Scratch
 * buffers live on the stack or the heap. */
#define SHMC__TLS_IE __attribute__((tls_model("initial-exec")))
extern __thread struct shmc__tls shmc__tls SHMC__TLS_IE;
struct shmc__thr *shmc__thr_slow(struct shmc *c, int *err);

static inline struct shmc__thr *shmc__thr_get(struct shmc *c, int *err)
{
	struct shmc__tls *l = &shmc__tls;
	if (SHMC__LIKELY(l->c == c && l->id == c->id &&
	                 l->fork_gen == shmc__fork_gen))
		return l->t;
	return shmc__thr_slow(c, err);
}

static inline void shmc__ctr_add(struct shmc__thr *t, enum shmc__ctr i,
                                 uint64_t n)
{
	/* Owner-only counter: a relaxed load and store, no locked op.
	 * Readers of stats use relaxed loads; nothing is ordered by it. */
	uint64_t *p = &t->s->ctr[i];
	shmc__store(p, shmc__load(p, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void shmc__section_enter(struct shmc *c, struct shmc__thr *t)
{
	if (t->depth++ == 0)
		shmc__read_enter(c->map.hdr, t->s, c->mb_fast);
}

static inline void shmc__section_exit(struct shmc__thr *t)
{
	if (--t->depth == 0)
		shmc__read_exit(t->s);
}

static inline struct shmc__bucket *shmc__bucket_at(struct shmc *c, uint64_t b)
{
	return (struct shmc__bucket *)(c->index + b * SHMC__BUCKET_SIZE);
}

/* Bucket lock word (see index.c). */
#define SHMC__LK_LOCKED 1ull
#define SHMC__LK_OWNER_SHIFT 1
#define SHMC__LK_OWNER_MASK 0x7fffu
#define SHMC__LK_LINK_SHIFT 16
#define SHMC__LK_LINK_MAX 0xffffffu
#define SHMC__LK_VER_SHIFT 40
/*
 * The largest overflow pool: its links run 1..SHMC__POOL_MAX and must fit
 * the lock word's link field whole, or link 2^24 + x would be stored as x
 * and one chain would run into another's bucket.  The pool is an eighth of
 * the index region, capped here (from 2^27 buckets, 32 GiB reservations).
 */
#define SHMC__POOL_MAX SHMC__LK_LINK_MAX
_Static_assert(SHMC__LK_LINK_MAX ==
                   (1ull << (SHMC__LK_VER_SHIFT - SHMC__LK_LINK_SHIFT)) - 1,
               "the link field is bits 16..39 of the lock word");
_Static_assert(SHMC__POOL_MAX <= SHMC__LK_LINK_MAX,
               "every pool link fits the lock word");

/* The slot named as owner by lock word w (meaningful while w is locked). */
static inline uint32_t shmc__lk_owner(uint64_t w)
{
	return (uint32_t)(w >> SHMC__LK_OWNER_SHIFT) & SHMC__LK_OWNER_MASK;
}
/* Items per bucket in use above which writers split buckets. */
#define SHMC__IX_LOAD 3u

/*
 * The bucket of hash h under index geometry g (level << 40 | split
 * pointer).  Every result is masked by the reservation's largest index, so
 * a corrupt geometry cannot send anyone out of bounds.
 */
static inline uint64_t shmc__geom_bucket(struct shmc *c, uint64_t g, uint64_t h)
{
	unsigned L = (unsigned)(g >> SHMC__GEOM_LEVEL_SHIFT) & 63u;
	uint64_t nb = 1ull << L, b = h & (nb - 1);
	if (b < (g & SHMC__GEOM_SPLIT_MASK))
		b = h & (2 * nb - 1);
	return b & c->index_max_mask;
}

uint64_t shmc__geom_buckets(uint64_t g);

static inline uint32_t shmc__lk_link(uint64_t w)
{
	return (uint32_t)(w >> SHMC__LK_LINK_SHIFT) & SHMC__LK_LINK_MAX;
}

/* The pool bucket a link names, or NULL when the link is out of range. */
static inline struct shmc__bucket *shmc__pool_at(struct shmc *c,
                                                 uint32_t link)
{
	if (!link || link > c->pool_max)
		return NULL;
	return shmc__bucket_at(c, c->index_max_mask - (link - 1));
}

/* The next bucket of a chain (acquire: its entries are visible). */
static inline struct shmc__bucket *shmc__chain_next(struct shmc *c,
                                                    struct shmc__bucket *bk)
{
	return shmc__pool_at(
	    c, shmc__lk_link(shmc__load(&bk->lock, __ATOMIC_ACQUIRE)));
}
#define SHMC__CHAIN_MAX 64u

/* A writer's locked view of the chain a key can be in. */
struct shmc__ixl {
	uint64_t b;
	struct shmc__bucket *bk;
};

static inline struct shmc__seghdr *shmc__seg(struct shmc *c, uint32_t id)
{
	return (struct shmc__seghdr *)(c->data + ((uint64_t)id << c->seg_shift));
}

/* Whether segment id is punched out (a hole).  A system call: only for
 * the rare paths (commit, repair, check); never touches the hole. */
static inline bool shmc__seg_is_hole(struct shmc *c, uint32_t id)
{
	return !shmc__seg_has_data(&c->map,
	                           c->map.hdr->data_off +
	                               ((uint64_t)id << c->seg_shift),
	                           c->seg_size);
}

static inline uint64_t shmc__item_size(size_t klen, size_t vlen)
{
	return (sizeof(struct shmc__item) + klen + vlen + 7u) & ~(uint64_t)7u;
}

/*
 * The item at location loc (8-byte units), or NULL when the location or
 * the lengths stored there do not fit inside one segment.
 */
static inline struct shmc__item *shmc__item_at(struct shmc *c, uint64_t loc)
{
	uint64_t off = loc << 3;
	if (SHMC__UNLIKELY(off >= c->data_size))
		return NULL;
	uint64_t in = off & (c->seg_size - 1);
	if (SHMC__UNLIKELY(in < SHMC__SEGHDR_SIZE ||
	                   in + sizeof(struct shmc__item) > c->seg_size))
		return NULL;
	struct shmc__item *it = (struct shmc__item *)(c->data + off);
	if (SHMC__UNLIKELY(in + sizeof(*it) + it->klen + (uint64_t)shmc__vlen(it) >
	                   c->seg_size))
		return NULL;
	return it;
}

uint64_t shmc__hash(const void *key, size_t klen);

/* Bytes committed outside the data segments: header, slots, index in use,
 * overflow pool, ghost table, directory up to nseg_hw. */
static inline uint64_t shmc__fixed_committed(struct shmc *c)
{
	struct shmc__hdr *h = c->map.hdr;
	uint64_t ghost =
	    ((uint64_t)(h->ghost_mask & (c->index_max_mask * 4 + 3)) + 1) * 4;
	ghost = shmc__align(ghost, c->granule);
	uint32_t hw = shmc__load(&h->nseg_hw, __ATOMIC_RELAXED);
	return h->index_off +
	       shmc__load(&h->index_committed, __ATOMIC_RELAXED) +
	       (uint64_t)shmc__load(&h->pool_committed, __ATOMIC_RELAXED) *
	           SHMC__BUCKET_SIZE +
	       ghost +
	       shmc__dir_bytes(hw < c->nseg_max ? hw : c->nseg_max, c->granule);
}

/* Bytes committed in the file, derived (layout.h): exact under log_lock,
 * a gauge without it. */
static inline uint64_t shmc__committed(struct shmc *c)
{
	uint64_t used = shmc__load(&c->map.hdr->seg_used, __ATOMIC_RELAXED);
	if (used > c->nseg_max)
		used = c->nseg_max;
	return shmc__fixed_committed(c) + (used << c->seg_shift);
}

/* shmc__log_census: segments by state, from the directory. */
enum {
	SHMC__CENSUS_PARKED = SHMC__SEG_NSTATES, /* OPEN, no owner */
	SHMC__CENSUS_CF,                          /* OPEN, copy-forward */
	SHMC__CENSUS_BAD,                         /* a word we never write */
	SHMC__CENSUS
};

uint32_t shmc__now(struct shmc *c);

static inline bool shmc__expired(const struct shmc__item *it, uint32_t now)
{
	return it->expiry != 0 && it->expiry <= now;
}

/* index.c */
void shmc__bucket_lock(struct shmc *c, struct shmc__thr *t, uint64_t b,
                       int which, bool log_locked);
void shmc__bucket_unlock(struct shmc *c, struct shmc__thr *t, uint64_t b,
                         int which);
int shmc__bucket_find(struct shmc *c, struct shmc__bucket *bk, uint64_t h,
                      const void *key, size_t klen, bool lease, uint64_t *e);
/* Lock-free lookup (inside a read section); misses are validated.  lease
 * says which kind of item to find for the key. */
bool shmc__ix_find(struct shmc *c, uint64_t h, const void *key, size_t klen,
                   bool lease, struct shmc__bucket **bk, int *i, uint64_t *e);
void shmc__ix_lock(struct shmc *c, struct shmc__thr *t, uint64_t h,
                   bool log_locked, struct shmc__ixl *x);
void shmc__ix_unlock(struct shmc *c, struct shmc__thr *t, struct shmc__ixl *x);
uint64_t *shmc__ix_find_locked(struct shmc *c, struct shmc__ixl *x,
                               uint64_t h, const void *key, size_t klen,
                               bool lease, uint64_t *e);
uint64_t *shmc__ix_find_loc(struct shmc *c, struct shmc__ixl *x, uint64_t loc,
                            uint64_t *e);
uint64_t *shmc__ix_free_way(struct shmc *c, struct shmc__ixl *x,
                            bool *dropped);
void shmc__ix_maybe_grow(struct shmc *c, struct shmc__thr *t);
void shmc__ix_prepare(struct shmc *c, struct shmc__thr *t);
void shmc__ix_recover(struct shmc *c, struct shmc__thr *t);
void shmc__ix_recover_open(struct shmc *c);
int shmc__ix_resize(struct shmc *c, struct shmc__thr *t, uint64_t buckets);
void shmc__dead_slot(struct shmc__map *m, uint32_t slot, bool log_locked,
                     void *arg);

/* The overflow pool's accounting (index.c, OVERFLOW-BUCKET POOL): every
 * committed pool bucket is on the free stack, in the fresh range, or
 * linked from exactly one chain. */
struct shmc__pool_acct {
	uint32_t committed;       /* buckets accounted for */
	uint32_t free, fresh, linked;
	uint32_t leaked;          /* none of the three */
	uint32_t twice;           /* claimed twice (two chains, or a chain and
	                           * the free stack) */
	uint32_t first_leaked, first_twice; /* links (bucket + 1) of one each */
	uint32_t reclaimed;       /* leaked ones given back to the free stack */
	const char *bad;          /* a free stack or fresh range that is not one */
};
/* Takes the accounting with index_lock tried (never waited for) and while
 * no bucket is locked and the pool does not move; with reclaim, gives the
 * leaked buckets back (only then is it safe).  0, SHMC_EBUSY (not quiet:
 * nothing concluded), -ENOMEM, or what trying index_lock returned. */
int shmc__pool_audit(struct shmc *c, struct shmc__thr *t, bool reclaim,
                     struct shmc__pool_acct *a);
/* Test-only fault points in the pool's crash windows (tests/review8):
 * NULL, except in a test that installs one. */
enum {
	SHMC__IXF_GROW,   /* pool_grow: log_lock released */
	SHMC__IXF_APPEND, /* chain_append: a bucket popped, not yet linked */
	SHMC__IXF_SHRINK, /* chain_shrink: a bucket cut, not yet pushed */
	SHMC__IXF_WRITE,  /* chain_write: buckets cut, not yet pushed */
	SHMC__IXF_AUDIT,  /* pool_walk: a head with a link read, its chain
	                   * not yet (tests/review9) */
};
extern void (*shmc__ix_fault)(int point);

/* log.c */
int shmc__log_append(struct shmc *c, struct shmc__thr *t, uint64_t size,
                     uint64_t *off);
void shmc__log_seal_open(struct shmc *c, uint32_t slot);
void shmc__log_close_own(struct shmc *c, struct shmc__thr *t);
int shmc__log_lock(struct shmc *c);
bool shmc__log_trylock(struct shmc *c);
void shmc__log_unlock(struct shmc *c);
/* Takes log_lock with room in the budget for `bytes` more (segments given
 * back as needed, grace periods waited for with the lock released).  0
 * with the lock held, or an error without it. */
int shmc__log_lock_room(struct shmc *c, struct shmc__thr *t, uint64_t bytes);
void shmc__log_census(struct shmc *c, uint32_t n[SHMC__CENSUS]);
int shmc__log_shrink_step(struct shmc *c, struct shmc__thr *t, unsigned max);
int shmc__log_grow_step(struct shmc *c, unsigned max);
void shmc__log_trim_free(struct shmc *c, uint64_t target);

/* cache.c: the steps every write is made of, for load.c */
const struct shmc__item *shmc__lookup(struct shmc *c, struct shmc__thr *t,
                                      uint64_t h, const void *key,
                                      size_t klen);
int shmc__copy_out(const struct shmc__item *it, void *buf, size_t *vlen,
                   uint32_t *flags);
int shmc__item_append(struct shmc *c, struct shmc__thr *t, uint64_t h,
                      const void *key, size_t klen, const void *pre,
                      uint32_t prelen, const void *value, size_t vlen,
                      uint32_t expiry, uint32_t flags, uint32_t kind,
                      uint64_t *off);
bool shmc__item_publish(struct shmc *c, struct shmc__thr *t,
                        struct shmc__ixl *x, uint64_t h, uint64_t *way,
                        uint64_t e, uint64_t off);
void shmc__items_delta(struct shmc *c, struct shmc__thr *t, int d);
/* Removes key's value (or "not found") and its lease under the bucket
 * lock; 0, or SHMC_ENOTFOUND when no value was there. */
int shmc__del_key(struct shmc *c, struct shmc__thr *t, uint64_t h,
                  const void *key, size_t klen);
uint32_t shmc__expiry(struct shmc *c, uint32_t ttl);

/* mrc.c: the miss-ratio curve's sampler.  The data path's whole cost
 * is the compare in shmc__mrc_hit: one relaxed load of a header line the
 * read section has just loaded, and a branch that is not taken for 99 %
 * of keys (and always, on a cache without a curve: threshold 0). */
enum shmc__mrc_op { SHMC__MRC_GET, SHMC__MRC_SET, SHMC__MRC_DEL };
void shmc__mrc_sample(struct shmc *c, uint64_t h, uint64_t size,
                      enum shmc__mrc_op op) __attribute__((cold));
static inline bool shmc__mrc_hit(struct shmc *c, uint64_t h)
{
	/* Relaxed: a stale threshold only sends a key the sampler then
	 * drops (it re-reads it under its lock), or misses one sample. */
	return SHMC__UNLIKELY(
	    h < shmc__load(&c->map.hdr->mrc_thresh, __ATOMIC_RELAXED));
}
/* A get of key hash h that found it (a data item, inside the read
 * section) or not. */
static inline void shmc__mrc_get(struct shmc *c, uint64_t h,
                                 const struct shmc__item *it)
{
	if (shmc__mrc_hit(c, h))
		shmc__mrc_sample(c, h,
		                 it ? shmc__item_size(it->klen, shmc__vlen(it))
		                    : 0,
		                 SHMC__MRC_GET);
}
/* What growing the budget from `from` to `to` bytes adds to the hit
 * ratio by the curve, in per mille (*pm); false when there is no curve
 * or it stands for fewer than 10,000 gets. */
bool shmc__mrc_gain(struct shmc *c, uint64_t from, uint64_t to,
                    uint32_t *pm);
void shmc__mrc_check(struct shmc *c,
                     void (*report)(void *k, const char *problem), void *k);

/* resize.c */
void shmc__autogrow_check(struct shmc *c, struct shmc__thr *t);
void shmc__resize_resume(struct shmc *c);
uint64_t shmc__min_memory(struct shmc *c);
void shmc__ghost_put(struct shmc *c, uint64_t h);
bool shmc__ghost_hit(struct shmc *c, uint64_t h);

#endif /* SHMC_INTERNAL_H */
