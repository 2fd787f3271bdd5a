/*
 * tracegen.c - synthetic request traces in libCacheSim's oracleGeneral
 * format (sim.h), for measuring eviction quality (issue 11).  The command
 * that writes them to a file (`shmcache-bench tracegen`) is in replay.c;
 * the generator is here, on its own, so that a test can make the same
 * trace in memory (tests/unit/test_evict_quality.c).
 *
 * KINDS (N = objects, R = requests, A = alpha)
 *   zipf    R requests, independent, Zipf(A) over N objects (P(rank i)
 *           proportional to i^-A), the exact rejection-inversion sampler of
 *           dist.c; ranks are scattered over ids 0..N-1 by dist.c's
 *           bijection.
 *   surge   the first R/2 requests Zipf(A) over ids 0..N/2-1, the last R/2
 *           Zipf(A) over ids N/2..N-1: at the midpoint a new hot set of the
 *           same shape replaces the old one, which is never asked for again.
 *   scan    a Zipf(A) stream over N objects; in the middle third of the
 *           trace each request is, with probability scan_frac (0.25 by
 *           default), instead a key never seen before nor after (ids N,
 *           N+1, ...): one-off keys interleaved with the Zipf stream.
 *
 * FIELDS
 * time = request index / 1000 (seconds, if a request takes 1 ms: only so
 * the field is plausible; nothing here reads it), size = value_size,
 * next = 1-based index of the id's next request or -1, filled by a
 * backward pass over the whole trace (trace_fill_next).
 *
 * DETERMINISM
 * Everything is drawn from xoshiro256** seeded from the seed and the kind,
 * so the same arguments give the same bytes.
 */
#include <stdlib.h>

#include "bench.h"
#include "sim.h"

int trace_kind_parse(const char *name, enum trace_kind *out)
{
	if (strcmp(name, "zipf") == 0)
		*out = TRACE_ZIPF;
	else if (strcmp(name, "surge") == 0)
		*out = TRACE_SURGE;
	else if (strcmp(name, "scan") == 0)
		*out = TRACE_SCAN;
	else
		return -1;
	return 0;
}

void trace_gen_defaults(struct trace_gen *g)
{
	*g = (struct trace_gen){.kind = TRACE_ZIPF,
	                        .objects = 100000,
	                        .requests = 2000000,
	                        .alpha = 1.0,
	                        .seed = 42,
	                        .scan_frac = 0.25,
	                        .value_size = 64};
}

struct og_req *trace_generate(const struct trace_gen *tg, uint64_t *distinct)
{
	uint64_t nobj = tg->objects, nreq = tg->requests;
	if (nobj < 2 || !nreq)
		return NULL;
	struct og_req *r = malloc(nreq * sizeof(*r));
	if (!r)
		return NULL;
	struct rng g;
	rng_seed(&g, tg->seed * 1000003u + (uint64_t)tg->kind);
	uint64_t half = nobj / 2, oneoff = nobj;
	struct zipf z, zh;
	struct perm p, pa, pb;
	zipf_init(&z, nobj, tg->alpha);
	perm_init(&p, nobj, tg->seed);
	zipf_init(&zh, half, tg->alpha);
	perm_init(&pa, half, tg->seed + 1);
	perm_init(&pb, half, tg->seed + 2);
	uint64_t scan_lo = nreq / 3, scan_hi = 2 * nreq / 3;
	for (uint64_t i = 0; i < nreq; i++) {
		uint64_t id;
		switch (tg->kind) {
		case TRACE_SURGE:
			id = i < nreq / 2
			         ? perm_apply(&pa, zipf_next(&zh, &g))
			         : half + perm_apply(&pb, zipf_next(&zh, &g));
			break;
		case TRACE_SCAN:
			if (i >= scan_lo && i < scan_hi &&
			    rng_double(&g) < tg->scan_frac) {
				id = oneoff++;
				break;
			}
			/* fall through */
		default:
			id = perm_apply(&p, zipf_next(&z, &g));
		}
		r[i] = (struct og_req){.time = (uint32_t)(i / 1000),
		                       .id = id,
		                       .size = tg->value_size};
	}
	uint64_t d = trace_fill_next(r, nreq);
	if (!d) {
		free(r);
		return NULL;
	}
	*distinct = d;
	return r;
}
