/*
 * replay.h - a trace through the real cache, as `shmcache-bench replay`
 * does it (replay.c), in pieces a test can use too
 * (tests/unit/test_evict_quality.c): the sizing by object count and one
 * cache-aside request.  Public API only; no exits, no output.
 */
#ifndef SHMC_BENCH_REPLAY_H
#define SHMC_BENCH_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include <shmcache.h>

/* Segments a cache sized by object count spreads them over, and their
 * size: `replay --segments` and `--segment-size` default to these. */
#define REPLAY_SEGMENTS 64
#define REPLAY_SEGMENT_SIZE (64u << 10)

/*
 * Sizes a cache that holds about `items` objects, to compare with
 * simulators that count objects: *o (initialised by the caller; its
 * segment_size used, REPLAY_SEGMENT_SIZE if 0) gets index_buckets and
 * memory.  The value size is chosen so that `items` objects of 8-byte
 * keys fill `nsegs` segments (or is *vsize if that is not 0; it is set
 * either way), and the budget is the cache's fixed part, measured on a
 * probe cache named `probe` (created and destroyed here), plus the
 * segments those objects need.  0, or the probe's shmc_create error.
 */
int replay_size(uint64_t items, uint64_t nsegs, const char *probe,
                struct shmc_create_opts *o, uint64_t *vsize);

/*
 * One request, cache-aside: get the 8-byte key `id` (into buf, cap
 * bytes); on a miss set it to val[0..vlen).  *miss says which.  0, or the
 * get's or the set's error.
 */
int replay_request(shmc_t *c, uint64_t id, const void *val, size_t vlen,
                   void *buf, size_t cap, bool *miss);

#endif /* SHMC_BENCH_REPLAY_H */
