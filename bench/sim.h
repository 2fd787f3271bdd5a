/*
 * sim.h - exact, object-counting cache simulators (S3-FIFO, LRU, Belady)
 * and the oracleGeneral trace format they read; the reference the real
 * cache's miss ratio is measured against (`shmcache-bench sim`, issue 11).
 * The design and the sources each policy follows are at the top of sim.c.
 *
 * Nothing here depends on the rest of shmcache-bench or on the library:
 * sim.c compiles on its own, and tracegen.c with dist.c's Zipf sampler, so
 * the tests build them in (tests/unit/test_sim.c, test_evict_quality.c).
 */
#ifndef SHMC_BENCH_SIM_H
#define SHMC_BENCH_SIM_H

#include <stdbool.h>
#include <stdint.h>

/*
 * One request of a libCacheSim "oracleGeneral" trace: 24 bytes, little
 * endian, no padding.  next is the 1-based index of the next request for
 * the same object, -1 if there is none (checked against the CloudPhysics
 * sample in ../shared/traces: its request 7, index 6, says 19 and the
 * object comes back at index 18).
 */
struct og_req {
	uint32_t time;
	uint64_t id;
	uint32_t size;
	int64_t next;
} __attribute__((packed));

_Static_assert(sizeof(struct og_req) == 24, "oracleGeneral is 24 bytes");

enum sim_policy { SIM_LRU, SIM_S3FIFO, SIM_BELADY };

struct sim;

/* "lru" "s3fifo" "belady" -> *out; 0, or -1 for an unknown name. */
int sim_policy_parse(const char *name, enum sim_policy *out);
const char *sim_policy_name(enum sim_policy p);

/*
 * A cache of `objects` objects (sizes are ignored).  NULL if objects is 0
 * or memory runs out.
 */
struct sim *sim_new(enum sim_policy p, uint64_t objects);
void sim_free(struct sim *s);
/*
 * One request: true on a hit.  A miss admits the object (evicting first if
 * the cache is full).  next is the request's next-access field as in the
 * trace (-1: never again); only Belady reads it.
 */
bool sim_access(struct sim *s, uint64_t id, int64_t next);
/* Objects the cache holds now (S3-FIFO: small + main, not the ghost). */
uint64_t sim_objects(const struct sim *s);

/*
 * Maps a trace file read-only.  Returns the requests and sets *n, or NULL
 * with errno set (EINVAL: empty, or not a multiple of 24 bytes).
 * trace_unmap releases it.
 */
const struct og_req *trace_map(const char *path, uint64_t *n);
void trace_unmap(const struct og_req *r, uint64_t n);

/*
 * Fills r[i].next for every request with a backward pass (1-based index of
 * the next request for the same id, -1 if none).  Returns the number of
 * distinct ids, or 0 if memory runs out.
 */
uint64_t trace_fill_next(struct og_req *r, uint64_t n);

/*
 * Che's approximation of LRU's miss ratio under independent requests with
 * Zipf(alpha) popularity over n objects (p_i ~ i^-alpha), cache of c < n
 * objects.
 */
double che_lru_miss_ratio(uint64_t n, double alpha, uint64_t c);

/* ---- synthetic traces (tracegen.c) ---------------------------------------- */

enum trace_kind { TRACE_ZIPF, TRACE_SURGE, TRACE_SCAN };

/* What trace_generate makes; the kinds are described in tracegen.c. */
struct trace_gen {
	enum trace_kind kind;
	uint64_t objects;  /* >= 2: the Zipf universe (surge: both halves) */
	uint64_t requests; /* >= 1 */
	double alpha;      /* Zipf skew, in (0, 10) */
	uint64_t seed;
	double scan_frac;  /* scan: share of the middle third that is one-off */
	uint32_t value_size; /* the size field of every request */
};

/* "zipf" "surge" "scan" -> *out; 0, or -1 for an unknown name. */
int trace_kind_parse(const char *name, enum trace_kind *out);
/* objects 100,000, requests 2,000,000, alpha 1.0, seed 42, scan_frac 0.25,
 * value_size 64, kind zipf: `shmcache-bench tracegen`'s defaults. */
void trace_gen_defaults(struct trace_gen *g);
/*
 * Makes the trace (malloc'd, g->requests long, next fields filled) and
 * sets *distinct to the number of distinct ids.  The same arguments give
 * the same bytes.  NULL if memory runs out or the arguments are out of
 * range.
 */
struct og_req *trace_generate(const struct trace_gen *g, uint64_t *distinct);

#endif /* SHMC_BENCH_SIM_H */
