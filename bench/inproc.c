/*
 * inproc.c - the reference point: a plain in-process hash table.
 *
 * What an application would write if it needed no sharing, no eviction and
 * no crash safety: open addressing with linear probing over a power-of-two
 * array of 16-byte slots {hash, pointer}, kept at most half full, each
 * pointer to one malloc'd (jemalloc) block {klen, vlen, capacity, key,
 * value}.  A lookup touches one slot line and one block - the same two
 * cache misses as a shmcache lookup (bucket line, item) - and hashes with
 * the same XXH3-64.  A set of a present key overwrites its value in place
 * when it fits.  The table never shrinks, deletes or evicts: it only serves
 * as the "how fast could this be" line of the benchmark.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "inproc.h"

struct blob {
	uint32_t klen, vlen, cap;
	char data[];
};

struct slot {
	uint64_t hash; /* 0 = empty (a real hash of 0 is stored as 1) */
	struct blob *b;
};

struct inproc {
	struct slot *s;
	uint64_t mask, used;
};

struct inproc *inproc_new(uint64_t expected)
{
	struct inproc *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	uint64_t cap = 16;
	while (cap < expected * 2)
		cap <<= 1;
	t->s = calloc(cap, sizeof(*t->s));
	if (!t->s) {
		free(t);
		return NULL;
	}
	t->mask = cap - 1;
	return t;
}

void inproc_free(struct inproc *t)
{
	if (!t)
		return;
	for (uint64_t i = 0; i <= t->mask; i++)
		free(t->s[i].b);
	free(t->s);
	free(t);
}

static inline uint64_t hash_of(const void *key, size_t klen)
{
	uint64_t h = XXH3_64bits(key, klen);
	return h ? h : 1;
}

/* The slot holding key, or the empty slot where it would go. */
static inline struct slot *find(struct inproc *t, uint64_t h, const void *key,
                                size_t klen)
{
	for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct slot *s = &t->s[i];
		if (!s->hash)
			return s;
		if (s->hash == h && s->b->klen == klen &&
		    memcmp(s->b->data, key, klen) == 0)
			return s;
	}
}

static int grow(struct inproc *t)
{
	uint64_t ncap = (t->mask + 1) * 2;
	struct slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	for (uint64_t i = 0; i <= t->mask; i++) {
		if (!t->s[i].hash)
			continue;
		uint64_t j = t->s[i].hash & (ncap - 1);
		while (ns[j].hash)
			j = (j + 1) & (ncap - 1);
		ns[j] = t->s[i];
	}
	free(t->s);
	t->s = ns;
	t->mask = ncap - 1;
	return 0;
}

int inproc_get(struct inproc *t, const void *key, size_t klen, void *buf,
               size_t cap, size_t *vlen)
{
	struct slot *s = find(t, hash_of(key, klen), key, klen);
	if (!s->hash)
		return 0;
	*vlen = s->b->vlen;
	if (s->b->vlen <= cap)
		memcpy(buf, s->b->data + klen, s->b->vlen);
	return 1;
}

int inproc_set(struct inproc *t, const void *key, size_t klen,
               const void *val, size_t vlen)
{
	uint64_t h = hash_of(key, klen);
	struct slot *s = find(t, h, key, klen);
	if (s->hash && s->b->cap >= vlen) {
		memcpy(s->b->data + klen, val, vlen);
		s->b->vlen = (uint32_t)vlen;
		return 0;
	}
	struct blob *b = malloc(sizeof(*b) + klen + vlen);
	if (!b)
		return -ENOMEM;
	b->klen = (uint32_t)klen;
	b->vlen = b->cap = (uint32_t)vlen;
	memcpy(b->data, key, klen);
	memcpy(b->data + klen, val, vlen);
	if (s->hash) {
		free(s->b);
		s->b = b;
		return 0;
	}
	s->hash = h;
	s->b = b;
	if (++t->used * 2 > t->mask + 1)
		return grow(t);
	return 0;
}
