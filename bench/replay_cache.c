/*
 * replay_cache.c - the sizing and the request of a trace replay through
 * the real cache (replay.h).
 *
 * SIZING BY OBJECT COUNT
 * shmcache evicts whole segments, so a cache of a few segments would evict
 * in huge steps no object-counting simulator makes: the value size is
 * chosen so that N objects fill nsegs segments, and the budget is the
 * cache's fixed part plus those segments.  What counts is that N objects
 * fit: the fixed part (header, slots, index, directory) is not data, and
 * is measured rather than computed, so the sizing follows the layout.
 * The index gets 7 entries per 3 objects at least (the library grows it
 * on load anyway).
 */
#include "replay.h"

static int fixed_part(const char *name, uint32_t seg, uint64_t buckets,
                      uint64_t *out)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 64ull << 20;
	o.segment_size = seg;
	o.index_buckets = buckets;
	shmc_t *c;
	shmc_destroy(name);
	int rc = shmc_create(name, &o, &c);
	if (rc)
		return rc;
	struct shmc_stats st;
	shmc_stats(c, &st);
	shmc_close(c);
	shmc_destroy(name);
	*out = st.committed_bytes;
	return 0;
}

int replay_size(uint64_t items, uint64_t nsegs, const char *probe,
                struct shmc_create_opts *o, uint64_t *vsize)
{
	if (!o->segment_size)
		o->segment_size = REPLAY_SEGMENT_SIZE;
	if (!nsegs)
		nsegs = REPLAY_SEGMENTS;
	o->index_buckets = 256;
	while (o->index_buckets * 7 < items * 3)
		o->index_buckets <<= 1;
	uint64_t per_seg = (items + nsegs - 1) / nsegs;
	uint64_t room = o->segment_size - 64; /* segment header */
	if (!*vsize) {
		uint64_t isz = (room / per_seg) & ~7ull;
		if (isz < SHMC_ITEM_OVERHEAD + 8 + 8)
			isz = SHMC_ITEM_OVERHEAD + 8 + 8;
		*vsize = isz - SHMC_ITEM_OVERHEAD - 8;
	}
	uint64_t need =
	    items * ((SHMC_ITEM_OVERHEAD + 8 + *vsize + 7) & ~7ull);
	uint64_t segs = (need + room - 1) / room;
	uint64_t fixed;
	int rc = fixed_part(probe, o->segment_size, o->index_buckets, &fixed);
	if (rc)
		return rc;
	o->memory = fixed + segs * o->segment_size;
	return 0;
}

int replay_request(shmc_t *c, uint64_t id, const void *val, size_t vlen,
                   void *buf, size_t cap, bool *miss)
{
	size_t n = cap;
	int rc = shmc_get(c, &id, sizeof(id), buf, &n, NULL);
	*miss = rc == SHMC_ENOTFOUND;
	if (*miss)
		rc = shmc_set(c, &id, sizeof(id), val, vlen, SHMC_TTL_NONE, 0);
	return rc;
}
