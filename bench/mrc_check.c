/*
 * mrc_check.c - `shmcache-bench mrc-check TRACE... [--memory SIZE]
 * [--mrc-keys N] [--json FILE]`: is the miss-ratio curve right?
 *
 * For each trace (oracleGeneral, e.g. from `tracegen`): replay it
 * cache-aside (get; on a miss, set a value of the request's size) through
 * a real cache of --memory (default 8M) created with SHMC_CREATE_MRC,
 * read its predicted curve at 0.25x, 0.5x, 1x, 2x and 4x that budget,
 * then replay the same trace through a cache of each of those budgets
 * (without a curve) and measure its miss ratio.  For each budget it also
 * runs the in-tree exact LRU and S3-FIFO simulators (sim.c) with as many
 * objects as that budget holds item bytes (the curve's own mapping,
 * shmc_mrc's `bytes`, over the trace's item size; traces from tracegen
 * have one size), since the curve predicts LRU and the cache is
 * S3-FIFO-like.  Misses are over the whole trace, cold start included,
 * as the curve counts them.
 *
 * Caches here have 64 KiB segments and 8 reader slots, so that a small
 * budget is mostly data; values are the trace's sizes.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>

#include <shmcache.h>

#include "bench.h"
#include "sim.h"

static const double scales[] = {0.25, 0.5, 1, 2, 4};
#define NS (sizeof(scales) / sizeof(scales[0]))

/* Replays r[0..n) through a new cache; returns the miss ratio.  With
 * pts, the cache keeps a curve, read into pts afterwards. */
static uint32_t mrc_sample; /* --mrc-sample: 0 = the library's default */

static double replay(const char *name, uint64_t memory, uint32_t keys,
                     const struct og_req *r, uint64_t n,
                     struct shmc_mrc_point *pts, size_t npts,
                     struct shmc_mrc_info *info)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = memory;
	o.segment_size = 64u << 10;
	o.max_readers = 8;
	if (pts) {
		o.flags = SHMC_CREATE_MRC;
		o.mrc_keys = keys;
		o.mrc_sample = mrc_sample;
	}
	shmc_destroy(name);
	shmc_t *c;
	int rc = shmc_create(name, &o, &c);
	if (rc)
		die("create %s (memory %llu): %s", name,
		    (unsigned long long)memory, shmc_strerror(rc));
	struct shmc_info in;
	shmc_info(c, &in);
	char *val = calloc(1, in.max_value + 1), *buf = malloc(in.max_value);
	if (!val || !buf)
		die("out of memory");
	uint64_t misses = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = r[i].id;
		size_t sz = r[i].size < in.max_value ? r[i].size : in.max_value;
		size_t vl = in.max_value;
		rc = shmc_get(c, &id, sizeof(id), buf, &vl, NULL);
		if (rc == SHMC_ENOTFOUND) {
			misses++;
			rc = shmc_set(c, &id, sizeof(id), val, sz, 0, 0);
		}
		if (rc)
			die("replay: %s", shmc_strerror(rc));
	}
	if (pts && (rc = shmc_mrc(c, pts, npts, info)))
		die("shmc_mrc: %s", shmc_strerror(rc));
	shmc_close(c);
	shmc_destroy(name);
	free(val);
	free(buf);
	return (double)misses / (double)n;
}

static double simulate(enum sim_policy p, uint64_t objects,
                       const struct og_req *r, uint64_t n)
{
	struct sim *s = sim_new(p, objects ? objects : 1);
	if (!s)
		die("sim: out of memory");
	uint64_t misses = 0;
	for (uint64_t i = 0; i < n; i++)
		misses += !sim_access(s, r[i].id, r[i].next);
	sim_free(s);
	return (double)misses / (double)n;
}

int cmd_mrc_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"memory", required_argument, 0, 'm'},
	    {"mrc-keys", required_argument, 0, 'k'},
	    {"mrc-sample", required_argument, 0, 's'},
	    {"json", required_argument, 0, 'j'},
	    {0, 0, 0, 0},
	};
	uint64_t memory = 8u << 20, keys = 0;
	const char *json = NULL;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'm' && !parse_size(optarg, &memory) && memory)
			continue;
		if (opt == 'k' && !parse_size(optarg, &keys) && keys)
			continue;
		if (opt == 's' && (mrc_sample = (uint32_t)atoi(optarg)) > 0)
			continue;
		if (opt == 'j') {
			json = optarg;
			continue;
		}
		die("usage: mrc-check TRACE... [--memory SIZE] [--mrc-keys N] "
		    "[--mrc-sample N] [--json FILE]");
	}
	if (optind >= argc)
		die("mrc-check: no trace given");
	FILE *jf = NULL;
	if (json && !(jf = strcmp(json, "-") ? fopen(json, "a") : stdout))
		die("%s: %s", json, strerror(errno));
	printf("%-22s %6s %9s %9s %9s %6s %9s %6s %9s\n", "trace", "scale",
	       "budget", "predicted", "shmcache", "diff", "lru-sim", "diff",
	       "s3f-sim");
	double worst = 0, worst_lru = 0;
	for (int a = optind; a < argc; a++) {
		uint64_t n;
		const struct og_req *r = trace_map(argv[a], &n);
		if (!r)
			die("%s: %s", argv[a], strerror(errno));
		const char *base = strrchr(argv[a], '/');
		base = base ? base + 1 : argv[a];
		/* One item's bytes in a segment: the header, the 8-byte
		 * key, the value, 8-byte aligned. */
		uint64_t isz = (SHMC_ITEM_OVERHEAD + 8 + r[0].size + 7) & ~7ull;
		struct shmc_mrc_point pts[NS];
		struct shmc_mrc_info info;
		for (size_t s = 0; s < NS; s++)
			pts[s] = (struct shmc_mrc_point){
			    (uint64_t)((double)memory * scales[s]), 0, 0};
		double at1 = replay("mrc-check", memory, (uint32_t)keys, r, n,
		                    pts, NS, &info);
		for (size_t s = 0; s < NS; s++) {
			double meas = scales[s] == 1
			                  ? at1
			                  : replay("mrc-check", pts[s].memory,
			                           0, r, n, NULL, 0, NULL);
			double pred = 1 - pts[s].hit_ratio;
			uint64_t objs = pts[s].bytes / isz;
			double lru = simulate(SIM_LRU, objs, r, n);
			double s3f = simulate(SIM_S3FIFO, objs, r, n);
			double d = pred - meas, dl = pred - lru;
			if (fabs(d) > worst)
				worst = fabs(d);
			if (fabs(dl) > worst_lru)
				worst_lru = fabs(dl);
			char mem[32];
			snprintf(mem, sizeof(mem), "%.1fM",
			         (double)pts[s].memory / 1048576.0);
			printf("%-22s %5.2fx %9s %9.4f %9.4f %+6.3f %9.4f %+6.3f "
			       "%9.4f\n",
			       base, scales[s], mem, pred, meas, d, lru, dl, s3f);
			if (jf)
				fprintf(jf,
				        "{\"mrc_check\":\"%s\",\"scale\":%g,"
				        "\"memory\":%llu,\"item_bytes\":%llu,"
				        "\"objects\":%llu,\"predicted_miss\":%.5f,"
				        "\"shmcache_miss\":%.5f,\"lru_miss\":%.5f,"
				        "\"s3fifo_miss\":%.5f,\"rate\":%.5f,"
				        "\"sampled_keys\":%llu,\"skipped\":%llu}\n",
				        base, scales[s],
				        (unsigned long long)pts[s].memory,
				        (unsigned long long)pts[s].bytes,
				        (unsigned long long)objs, pred, meas, lru,
				        s3f, info.rate,
				        (unsigned long long)info.keys,
				        (unsigned long long)info.skipped);
		}
		printf("%-22s sampled %llu keys at rate %.4f, %llu requests\n",
		       base, (unsigned long long)info.keys, info.rate,
		       (unsigned long long)n);
		trace_unmap(r, n);
	}
	printf("worst |predicted - shmcache| %.4f, |predicted - lru-sim| "
	       "%.4f\n",
	       worst, worst_lru);
	if (jf && jf != stdout)
		fclose(jf);
	return 0;
}

/*
 * `shmcache-bench mrc-cost [--keys N] [--rounds R] [--batch B]
 * [--alpha A | --uniform] [--mrc-sample N]`: what keeping the curve
 * costs a get, measured
 * so that a shared, noisy machine still shows a few per cent.  One cache
 * created with SHMC_CREATE_MRC (default sample size), filled with N keys
 * (16-byte keys, 64-byte values); then R rounds, each timing B gets of
 * one precomputed key stream with sampling paused (shmc_mrc_pause: the
 * data path then pays its one compare and nothing else, as on a cache
 * created without a curve) and B with it running, the order alternating,
 * each after 10,000 untimed gets, in this thread's CPU time (preemption
 * is not counted).  The same cache both ways, so its placement in memory
 * cannot favour either.  Reports the median per-round ns/get of each and
 * the median and quartiles of the per-round ratios.
 */
#include <time.h>

static uint64_t thread_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double quantile(double *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_dbl);
	return v[(size_t)(q * (double)(n - 1) + 0.5)];
}

static shmc_t *cost_cache(const char *name, uint64_t keys, bool mrc)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = keys * 160 + (64u << 20);
	o.flags = mrc ? SHMC_CREATE_MRC : 0;
	o.mrc_sample = mrc_sample;
	shmc_destroy(name);
	shmc_t *c;
	int rc = shmc_create(name, &o, &c);
	if (rc)
		die("create %s: %s", name, shmc_strerror(rc));
	char k[32], v[64];
	memset(v, 'v', sizeof(v));
	for (uint64_t i = 0; i < keys; i++) {
		snprintf(k, sizeof(k), "key:%012llu", (unsigned long long)i);
		if ((rc = shmc_set(c, k, 16, v, sizeof(v), 0, 0)))
			die("fill: %s", shmc_strerror(rc));
	}
	return c;
}

static uint64_t cost_round(shmc_t *c, char (*keys)[32], uint32_t n)
{
	char buf[64];
	uint64_t t0 = thread_ns();
	for (uint32_t i = 0; i < n; i++) {
		size_t vl = sizeof(buf);
		if (shmc_get(c, keys[i], 16, buf, &vl, NULL))
			die("get missed");
	}
	return thread_ns() - t0;
}

int cmd_mrc_cost(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"keys", required_argument, 0, 'k'},
	    {"rounds", required_argument, 0, 'r'},
	    {"batch", required_argument, 0, 'b'},
	    {"alpha", required_argument, 0, 'a'},
	    {"uniform", no_argument, 0, 'u'},
	    {"mrc-sample", required_argument, 0, 's'},
	    {0, 0, 0, 0},
	};
	uint64_t keys = 1000000, rounds = 200, batch = 100000;
	double alpha = 0.99;
	bool uniform = false;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'k' && !parse_size(optarg, &keys) && keys)
			continue;
		if (opt == 'r' && !parse_size(optarg, &rounds) && rounds)
			continue;
		if (opt == 'b' && !parse_size(optarg, &batch) && batch &&
		    batch <= (1u << 24))
			continue;
		if (opt == 'a' && (alpha = atof(optarg)) > 0)
			continue;
		if (opt == 'u') {
			uniform = true;
			continue;
		}
		if (opt == 's' && (mrc_sample = (uint32_t)atoi(optarg)) > 0)
			continue;
		die("usage: mrc-cost [--keys N] [--rounds R] [--batch B] "
		    "[--alpha A | --uniform] [--mrc-sample N]");
	}
	shmc_t *curve = cost_cache("mrc-cost", keys, true);
	char(*ks)[32] = malloc(batch * sizeof(*ks));
	if (!ks)
		die("out of memory");
	struct rng g;
	rng_seed(&g, 42);
	struct zipf z;
	if (!uniform)
		zipf_init(&z, keys, alpha);
	for (uint64_t i = 0; i < batch; i++) {
		uint64_t id = uniform ? rng_below(&g, keys) : zipf_next(&z, &g);
		snprintf(ks[i], sizeof(ks[i]), "key:%012llu",
		         (unsigned long long)(id % keys));
	}
	double *np = malloc(rounds * sizeof(double));
	double *nc = malloc(rounds * sizeof(double));
	double *ratio = malloc(rounds * sizeof(double));
	if (!np || !nc || !ratio)
		die("out of memory");
	uint32_t warm = batch < 10000 ? (uint32_t)batch : 10000;
	for (uint64_t r = 0; r < rounds; r++) {
		uint64_t t[2];
		for (int k = 0; k < 2; k++) {
			int paused = (int)((r + (uint64_t)k) & 1);
			int rc = shmc_mrc_pause(curve, paused);
			if (rc)
				die("shmc_mrc_pause: %s", shmc_strerror(rc));
			cost_round(curve, ks, warm);
			t[paused] = cost_round(curve, ks, (uint32_t)batch);
		}
		np[r] = (double)t[1] / (double)batch;
		nc[r] = (double)t[0] / (double)batch;
		ratio[r] = (double)t[0] / (double)t[1];
	}
	shmc_mrc_pause(curve, 0);
	struct shmc_mrc_info info;
	shmc_mrc(curve, NULL, 0, &info);
	printf("mrc-cost: %llu keys 16/64, %s, %llu rounds of %llu gets, "
	       "sample rate %.4f (%llu keys)\n",
	       (unsigned long long)keys, uniform ? "uniform" : "zipf",
	       (unsigned long long)rounds, (unsigned long long)batch,
	       info.rate, (unsigned long long)info.keys);
	printf("ns/get (thread CPU time, median of rounds): paused %.1f, "
	       "sampling %.1f\n",
	       quantile(np, rounds, 0.5), quantile(nc, rounds, 0.5));
	printf("per-round ratio sampling/paused: median %.4f, quartiles "
	       "%.4f-%.4f\n",
	       quantile(ratio, rounds, 0.5), quantile(ratio, rounds, 0.25),
	       quantile(ratio, rounds, 0.75));
	shmc_close(curve);
	shmc_destroy("mrc-cost");
	free(ks);
	free(np);
	free(nc);
	free(ratio);
	return 0;
}
