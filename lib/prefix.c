/*
 * prefix.c - shmc_del_prefix(): remove every key that starts with a
 * prefix, for `shmcache sync` to flush what it tracks in Redis when the
 * tracking is lost (a flush there, a lost connection, a restart).
 *
 * HOW
 * The index is walked in chunks of 256 buckets.  Inside a short read
 * section, the keys of a chunk that start with the prefix are copied out
 * (data items, cached "not found"s and leases alike); after the section,
 * each is removed as shmc_del() removes a key: under its own bucket lock,
 * found again by hash.  So writers never wait on the walk, and a key that
 * moved meanwhile is still found where it now is.
 *
 * WHAT A CONCURRENT INDEX CHANGE DOES TO THE WALK
 * Linear hashing splits bucket s into s + 2^level, above s.  The walk goes
 * up and reads the bucket count again for each chunk, so a key moved by a
 * split has either been seen already or lies ahead.  A merge moves keys
 * down, possibly behind the walk: a pass during which the bucket count
 * fell is repeated (at most PASSES times; a cache shrinking its index
 * over and over could then still hide a key, which the caller's next
 * flush finds).  Keys set during the walk may or may not be removed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CHUNK 256u
#define PASSES 4

struct keybuf {
	uint8_t *p;  /* records: 1 byte length, then the key */
	size_t len, cap;
};

static int keep(struct keybuf *kb, const uint8_t *key, size_t klen)
{
	if (kb->len + 1 + klen > kb->cap) {
		size_t cap = kb->cap ? kb->cap * 2 : 16384;
		uint8_t *p = realloc(kb->p, cap);
		if (!p)
			return -ENOMEM;
		kb->p = p;
		kb->cap = cap;
	}
	kb->p[kb->len] = (uint8_t)klen;
	memcpy(kb->p + kb->len + 1, key, klen);
	kb->len += 1 + klen;
	return 0;
}

/* Copies the matching keys of buckets [b0, b1] into kb (in a section). */
static int collect(struct shmc *c, uint64_t b0, uint64_t b1,
                   const void *prefix, size_t plen, struct keybuf *kb)
{
	for (uint64_t b = b0; b <= b1; b++) {
		struct shmc__bucket *bk = shmc__bucket_at(c, b);
		for (unsigned n = 0; bk && n <= SHMC__CHAIN_MAX; n++) {
			for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++) {
				uint64_t e = shmc__load(&bk->e[i],
				                        __ATOMIC_ACQUIRE);
				const struct shmc__item *it =
				    e ? shmc__item_at(c, shmc__e_loc(e)) : NULL;
				/* item_at bounds the lengths inside one
				 * segment; klen is checked against the key
				 * limit before anything is copied. */
				if (!it || it->klen == 0 ||
				    it->klen > SHMC_KEY_MAX || it->klen < plen ||
				    (plen && memcmp(it->data, prefix, plen)))
					continue;
				int rc = keep(kb, it->data, it->klen);
				if (rc)
					return rc;
			}
			bk = shmc__chain_next(c, bk);
		}
	}
	return 0;
}

int shmc_del_prefix(shmc_t *c, const void *prefix, size_t plen)
{
	if (!c || (!prefix && plen))
		return -EINVAL;
	if (plen > SHMC_KEY_MAX)
		return SHMC_EKEYLEN;
	int rc = 0;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	if (t->depth)
		return SHMC_EBUSY;
	struct shmc__hdr *h = c->map.hdr;
	struct keybuf kb = {0};
	uint64_t removed = 0;
	for (int pass = 0; pass < PASSES; pass++) {
		/* Relaxed: a stale count only makes the walk longer or sends
		 * it round again; bucket_at bounds every index. */
		uint64_t g = shmc__load(&h->index_geom, __ATOMIC_RELAXED);
		uint64_t last = (shmc__geom_buckets(g) - 1) & c->index_max_mask;
		bool fell = false;
		for (uint64_t b0 = 0; b0 <= last; b0 += CHUNK) {
			uint64_t b1 = b0 + CHUNK - 1 < last ? b0 + CHUNK - 1
			                                    : last;
			kb.len = 0;
			shmc__section_enter(c, t);
			rc = collect(c, b0, b1, prefix, plen, &kb);
			shmc__section_exit(t);
			if (rc)
				goto out;
			for (size_t i = 0; i < kb.len; i += 1 + kb.p[i])
				removed += shmc__del_key(
				    c, t, shmc__hash(kb.p + i + 1, kb.p[i]),
				    kb.p + i + 1, kb.p[i]) == 0;
			g = shmc__load(&h->index_geom, __ATOMIC_RELAXED);
			uint64_t now = (shmc__geom_buckets(g) - 1) &
			               c->index_max_mask;
			fell |= now < last;
			last = now;
		}
		if (!fell)
			break;
	}
out:
	free(kb.p);
	if (rc)
		return rc;
	return removed > INT32_MAX ? INT32_MAX : (int)removed;
}
