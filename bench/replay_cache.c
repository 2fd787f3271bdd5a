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
 * is measured rather than computed, so the sizing follows the layout.  It
 * is measured on a full cache: measured on an empty one it left out the
 * directory's page, and the cache got one segment fewer than sized for.
 * The index gets 7 entries per 3 objects at least (the library grows it
 * on load anyway).
 */
#include "replay.h"

/*
 * The committed bytes that are not data segments, with `segs` segments
 * committed: a probe cache of that budget is filled (the directory of
 * segment states grows a page at a time as segments are committed, so an
 * empty cache under-counts it) and its committed bytes less its segments
 * are taken.
 */
static int fixed_part(const char *name, uint32_t seg, uint64_t buckets,
                      uint64_t segs, uint64_t *out)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 64ull << 20;
	o.segment_size = seg;
	o.index_buckets = buckets;
	shmc_t *c;
	struct shmc_stats st;
	for (int pass = 0; pass < 2; pass++) {
		shmc_destroy(name);
		int rc = shmc_create(name, &o, &c);
		if (rc)
			return rc;
		/* Values of a quarter segment: the segments fill, and a
		 * few keys more than fit make it evict. */
		static char val[16 << 10];
		size_t vlen = seg / 4 < sizeof(val) ? seg / 4 : sizeof(val);
		for (uint64_t k = 0; pass && k < (segs + 4) * (seg / vlen);
		     k++)
			if ((rc = shmc_set(c, &k, sizeof(k), val, vlen,
			                   SHMC_TTL_NONE, 0)) != 0)
				break;
		shmc_stats(c, &st);
		shmc_close(c);
		shmc_destroy(name);
		if (rc)
			return rc;
		uint64_t data = (uint64_t)st.segments_total * seg;
		*out = st.committed_bytes - data;
		/* Pass 0, empty: a first estimate; pass 1, full. */
		o.memory = *out + segs * seg;
	}
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
	int rc = fixed_part(probe, o->segment_size, o->index_buckets, segs,
	                    &fixed);
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
