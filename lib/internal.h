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
 * SHMC_ESTALLED: long enough for any honest read section. */
#define SHMC__GRACE_TIMEOUT_NS (50u * 1000u * 1000u)
#define SHMC__TTL_MAX (10u * 365u * 86400u)
/* Free segments kept back for copy-forward during eviction. */
#define SHMC__CF_RESERVE 1u

/*
 * ITEM: 24 bytes of header, the key, the value; 8-byte aligned; written
 * once by its writer before it is published and never modified after.
 */
struct shmc__item {
	uint32_t vlen;
	uint16_t klen;
	uint16_t hcheck; /* bits 32..47 of the key's hash */
	uint32_t flags;
	uint32_t expiry; /* unix seconds, 0 = never */
	uint64_t cas;
	uint8_t data[];
};
_Static_assert(sizeof(struct shmc__item) == SHMC_ITEM_OVERHEAD, "item");

/*
 * BUCKET: 64 bytes, one cache line.
 *   lock   bit 0 locked; bits 1..15 owner slot; bits 16..63 version
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
	uint8_t *data;
	uint64_t index_max_mask;
	uint64_t data_size;
	uint32_t seg_size;
	uint32_t seg_shift;
	uint32_t nseg_max;
	uint32_t max_readers;
};

extern uint64_t shmc__fork_gen;

/* Process-private TLS cache of the last (handle, thread state) pair. */
struct shmc__tls {
	struct shmc *c;
	uint64_t id, fork_gen;
	struct shmc__thr *t;
};
extern __thread struct shmc__tls shmc__tls;
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

static inline struct shmc__bucket *shmc__bucket_at(struct shmc *c, uint64_t b)
{
	return (struct shmc__bucket *)(c->index + b * SHMC__BUCKET_SIZE);
}

/* The bucket index for hash h.  Masked by the reservation's largest index
 * too, so a corrupt index_buckets cannot send us out of bounds. */
static inline uint64_t shmc__bucket_of(struct shmc *c, uint64_t h)
{
	uint64_t nb = shmc__load(&c->map.hdr->index_buckets, __ATOMIC_RELAXED);
	return h & (nb - 1) & c->index_max_mask;
}

static inline struct shmc__seghdr *shmc__seg(struct shmc *c, uint32_t id)
{
	return (struct shmc__seghdr *)(c->data + ((uint64_t)id << c->seg_shift));
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
	if (SHMC__UNLIKELY(in + sizeof(*it) + it->klen + (uint64_t)it->vlen >
	                   c->seg_size))
		return NULL;
	return it;
}

uint64_t shmc__hash(const void *key, size_t klen);
uint32_t shmc__now(struct shmc *c);

static inline bool shmc__expired(const struct shmc__item *it, uint32_t now)
{
	return it->expiry != 0 && it->expiry <= now;
}

/* index.c */
void shmc__bucket_lock(struct shmc *c, struct shmc__thr *t, uint64_t b,
                       bool log_locked);
void shmc__bucket_unlock(struct shmc *c, struct shmc__thr *t, uint64_t b);
int shmc__bucket_find(struct shmc *c, struct shmc__bucket *bk, uint64_t h,
                      const void *key, size_t klen, uint64_t *e);
void shmc__dead_slot(struct shmc__map *m, uint32_t slot, bool log_locked,
                     void *arg);

/* log.c */
int shmc__log_append(struct shmc *c, struct shmc__thr *t, uint64_t size,
                     uint64_t *off);
void shmc__log_seal_open(struct shmc *c, uint32_t slot);
int shmc__log_lock(struct shmc *c);
void shmc__log_unlock(struct shmc *c);
void shmc__ghost_put(struct shmc *c, uint64_t h);
bool shmc__ghost_hit(struct shmc *c, uint64_t h);

#endif /* SHMC_INTERNAL_H */
