/*
 * tracegen.c - `shmcache-bench tracegen KIND [options] -o FILE`: synthetic
 * request traces in libCacheSim's oracleGeneral format (sim.h), for
 * measuring eviction quality (issue 11).
 *
 * KINDS (N = --objects, R = --requests, A = --alpha)
 *   zipf    R requests, independent, Zipf(A) over N objects (P(rank i)
 *           proportional to i^-A), the exact rejection-inversion sampler of
 *           dist.c; ranks are scattered over ids 0..N-1 by dist.c's
 *           bijection.
 *   surge   the first R/2 requests Zipf(A) over ids 0..N/2-1, the last R/2
 *           Zipf(A) over ids N/2..N-1: at the midpoint a new hot set of the
 *           same shape replaces the old one, which is never asked for again.
 *   scan    a Zipf(A) stream over N objects; in the middle third of the
 *           trace each request is, with probability --scan-frac (default
 *           0.25), instead a key never seen before nor after (ids N, N+1,
 *           ...): one-off keys interleaved with the Zipf stream.
 *
 * FIELDS
 * time = request index / 1000 (seconds, if a request takes 1 ms: only so
 * the field is plausible; nothing here reads it), size = --value-size
 * (default 64), next = 1-based index of the id's next request or -1,
 * filled by a backward pass over the whole trace (trace_fill_next).
 *
 * DETERMINISM
 * Everything is drawn from xoshiro256** seeded from --seed (default 42)
 * and the kind, so the same command writes the same bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "bench.h"
#include "sim.h"

enum { K_ZIPF, K_SURGE, K_SCAN };

int cmd_tracegen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"objects", required_argument, 0, 'n'},
	    {"requests", required_argument, 0, 'r'},
	    {"alpha", required_argument, 0, 'a'},
	    {"seed", required_argument, 0, 'e'},
	    {"scan-frac", required_argument, 0, 'f'},
	    {"value-size", required_argument, 0, 'V'},
	    {"output", required_argument, 0, 'o'},
	    {0, 0, 0, 0},
	};
	uint64_t nobj = 100000, nreq = 2000000, seed = 42, vsize = 64;
	double alpha = 1.0, scan_frac = 0.25;
	const char *out = NULL;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (parse_size(optarg, &nobj) || nobj < 2 ||
			    nobj > (1ull << 32))
				die("bad --objects");
			break;
		case 'r':
			if (parse_size(optarg, &nreq) || !nreq ||
			    nreq > (1ull << 31))
				die("bad --requests");
			break;
		case 'a':
			alpha = atof(optarg);
			if (!(alpha > 0 && alpha < 10))
				die("--alpha must be in (0, 10)");
			break;
		case 'e':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			scan_frac = atof(optarg);
			if (!(scan_frac >= 0 && scan_frac <= 1))
				die("--scan-frac must be in [0, 1]");
			break;
		case 'V':
			if (parse_size(optarg, &vsize) || !vsize ||
			    vsize > UINT32_MAX)
				die("bad --value-size");
			break;
		case 'o':
			out = optarg;
			break;
		default:
			die("tracegen: unknown option");
		}
	}
	if (optind >= argc || !out)
		die("usage: tracegen zipf|surge|scan [--objects N] "
		    "[--requests N] [--alpha A] [--seed S] [--scan-frac F] "
		    "-o FILE");
	int kind;
	if (strcmp(argv[optind], "zipf") == 0)
		kind = K_ZIPF;
	else if (strcmp(argv[optind], "surge") == 0)
		kind = K_SURGE;
	else if (strcmp(argv[optind], "scan") == 0)
		kind = K_SCAN;
	else
		die("tracegen: unknown kind %s", argv[optind]);

	struct og_req *r = malloc(nreq * sizeof(*r));
	if (!r)
		die("out of memory");
	struct rng g;
	rng_seed(&g, seed * 1000003u + (uint64_t)kind);
	uint64_t half = nobj / 2, oneoff = nobj;
	struct zipf z, zh;
	struct perm p, pa, pb;
	zipf_init(&z, nobj, alpha);
	perm_init(&p, nobj, seed);
	zipf_init(&zh, half, alpha);
	perm_init(&pa, half, seed + 1);
	perm_init(&pb, half, seed + 2);
	uint64_t scan_lo = nreq / 3, scan_hi = 2 * nreq / 3;
	for (uint64_t i = 0; i < nreq; i++) {
		uint64_t id;
		switch (kind) {
		case K_SURGE:
			id = i < nreq / 2
			         ? perm_apply(&pa, zipf_next(&zh, &g))
			         : half + perm_apply(&pb, zipf_next(&zh, &g));
			break;
		case K_SCAN:
			if (i >= scan_lo && i < scan_hi &&
			    rng_double(&g) < scan_frac) {
				id = oneoff++;
				break;
			}
			/* fall through */
		default:
			id = perm_apply(&p, zipf_next(&z, &g));
		}
		r[i] = (struct og_req){.time = (uint32_t)(i / 1000),
		                       .id = id,
		                       .size = (uint32_t)vsize};
	}
	uint64_t distinct = trace_fill_next(r, nreq);
	if (!distinct)
		die("out of memory");
	FILE *f = fopen(out, "wb");
	if (!f)
		die("%s: %s", out, strerror(errno));
	if (fwrite(r, sizeof(*r), nreq, f) != nreq || fclose(f) != 0)
		die("%s: write failed", out);
	printf("%s: %s, %llu requests, %llu distinct objects\n", out,
	       argv[optind], (unsigned long long)nreq,
	       (unsigned long long)distinct);
	free(r);
	return 0;
}

/*
 * `shmcache-bench che --objects N --alpha A --cache C`: Che's approximation
 * of LRU's miss ratio for a Zipf(A) stream over N objects (sim.c), to hold
 * the LRU simulator against on a tracegen zipf trace.
 */
int cmd_che(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"objects", required_argument, 0, 'n'},
	    {"alpha", required_argument, 0, 'a'},
	    {"cache", required_argument, 0, 'c'},
	    {0, 0, 0, 0},
	};
	uint64_t nobj = 100000, cache = 0;
	double alpha = 1.0;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'n' && !parse_size(optarg, &nobj) && nobj)
			continue;
		if (opt == 'c' && !parse_size(optarg, &cache) && cache)
			continue;
		if (opt == 'a' && (alpha = atof(optarg)) > 0)
			continue;
		die("usage: che --objects N --alpha A --cache C");
	}
	if (!cache)
		die("usage: che --objects N --alpha A --cache C");
	printf("che lru: %llu objects, alpha %.2f, cache %llu: miss ratio "
	       "%.4f\n",
	       (unsigned long long)nobj, alpha, (unsigned long long)cache,
	       che_lru_miss_ratio(nobj, alpha, cache));
	return 0;
}
