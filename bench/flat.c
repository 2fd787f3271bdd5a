/*
 * flat.c - the reference point: a flat in-process hash table.
 *
 * What a careful programmer writes for one process when the keys and values
 * are small and of known size, and nothing has to be shared, evicted or
 * survived: open addressing with linear probing over a power-of-two array
 * of fixed-size slots, keys and values inline,
 *
 *   slot = { u64 hash (0 = empty); u32 klen; u32 vlen; key[kmax];
 *            value[vinline] }              rounded up to 16 bytes
 *
 * 96 bytes for the bench's default 16-byte keys and 64-byte values.  The
 * array has at least twice as many slots as keys (a power of two: 2^21
 * slots for 1M keys, 48 % full), so a hit reads one slot - one or two
 * adjacent cache lines, one TLB entry - and a miss stops at the first empty
 * slot, usually the next one.  Hash: XXH3-64, as shmcache.  A get copies
 * the value out, as shmc_get does.
 *
 * The array is one anonymous private mapping, not advised (MADV_HUGEPAGE
 * is not asked for): with transparent huge pages in `madvise` mode, as on
 * the bench machine, it is mapped with 4 KiB pages, as a malloc'd array of
 * an ordinary program would be.  Values longer than vinline (bench runs
 * whose slots would make the array too large: mixed sizes) go in a
 * malloc'd block whose pointer the slot's value area holds.
 *
 * The table never grows, deletes or evicts; a set into a table 7/8 full
 * fails with -ENOSPC.  It is only the "how fast could a lookup be" line of
 * the benchmark; inproc.c, the pointer table, is kept next to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "flat.h"

struct fslot {
	uint64_t hash;
	uint32_t klen, vlen;
	char data[]; /* key[kmax], then value[vinline] or a pointer */
};

struct flat {
	char *s;         /* the slots */
	size_t slot;     /* bytes per slot */
	size_t map_len;
	uint64_t mask, used, limit;
	unsigned kmax, vinline;
};

struct flat *flat_new(uint64_t expected, unsigned kmax, unsigned vinline)
{
	struct flat *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	uint64_t cap = 16;
	while (cap < expected * 2)
		cap <<= 1;
	if (vinline < sizeof(void *))
		vinline = sizeof(void *);
	t->kmax = kmax;
	t->vinline = vinline;
	t->slot = (sizeof(struct fslot) + kmax + vinline + 15) & ~(size_t)15;
	t->map_len = t->slot * cap;
	t->s = mmap(NULL, t->map_len, PROT_READ | PROT_WRITE,
	            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t->s == MAP_FAILED) {
		free(t);
		return NULL;
	}
	t->mask = cap - 1;
	t->limit = cap - cap / 8;
	return t;
}

static inline struct fslot *slot_at(const struct flat *t, uint64_t i)
{
	return (struct fslot *)(t->s + i * t->slot);
}

static inline char *value_of(const struct flat *t, struct fslot *s)
{
	char *v = s->data + t->kmax;
	if (s->vlen > t->vinline) {
		char *p;
		memcpy(&p, v, sizeof(p));
		return p;
	}
	return v;
}

void flat_free(struct flat *t)
{
	if (!t)
		return;
	for (uint64_t i = 0; i <= t->mask; i++) {
		struct fslot *s = slot_at(t, i);
		if (s->hash && s->vlen > t->vinline)
			free(value_of(t, s));
	}
	munmap(t->s, t->map_len);
	free(t);
}

size_t flat_slot_size(const struct flat *t)
{
	return t->slot;
}

static inline uint64_t hash_of(const void *key, size_t klen)
{
	uint64_t h = XXH3_64bits(key, klen);
	return h ? h : 1;
}

/* The slot holding key, or the empty slot where it would go. */
static inline struct fslot *find(const struct flat *t, uint64_t h,
                                 const void *key, size_t klen)
{
	for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct fslot *s = slot_at(t, i);
		if (!s->hash)
			return s;
		if (s->hash == h && s->klen == klen &&
		    memcmp(s->data, key, klen) == 0)
			return s;
	}
}

int flat_get(struct flat *t, const void *key, size_t klen, void *buf,
             size_t cap, size_t *vlen)
{
	struct fslot *s = find(t, hash_of(key, klen), key, klen);
	if (!s->hash)
		return 0;
	*vlen = s->vlen;
	if (s->vlen <= cap)
		memcpy(buf, value_of(t, s), s->vlen);
	return 1;
}

int flat_set(struct flat *t, const void *key, size_t klen, const void *val,
             size_t vlen)
{
	if (klen > t->kmax || vlen > UINT32_MAX)
		return -EINVAL;
	uint64_t h = hash_of(key, klen);
	struct fslot *s = find(t, h, key, klen);
	char *v = s->data + t->kmax;
	if (!s->hash) {
		if (t->used >= t->limit)
			return -ENOSPC;
		t->used++;
		s->hash = h;
		s->klen = (uint32_t)klen;
		memcpy(s->data, key, klen);
	} else if (s->vlen > t->vinline) {
		free(value_of(t, s));
	}
	if (vlen > t->vinline) {
		char *p = malloc(vlen);
		if (!p) {
			s->vlen = 0;
			return -ENOMEM;
		}
		memcpy(p, val, vlen);
		memcpy(v, &p, sizeof(p));
	} else {
		memcpy(v, val, vlen);
	}
	s->vlen = (uint32_t)vlen;
	return 0;
}
