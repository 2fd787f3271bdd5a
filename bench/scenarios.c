/*
 * scenarios.c - eviction under changing popularity, in a cache smaller
 * than the key set: `shmcache-bench flash-sale` and `shmcache-bench scan`.
 *
 * Both run one cache-aside client (get; on a miss, set the key) for
 * --seconds and report, for every --interval-ms (default 100 ms), the
 * throughput and the hit ratio, so one sees how fast the cache adapts and
 * whether the hot set survives.  Popularity is Zipf(--theta) over --keys
 * ranks, scattered over key ids as in `run`; ranks are drawn before the
 * clock starts.
 *
 * flash-sale  keys 0..N-1 are hot; at half time a new hot set, keys
 *             N..2N-1 with the same Zipf shape, appears, and over a ramp of
 *             --seconds/10 the share of requests going to it grows from
 *             0 to 100% while the old set cools to nothing.  A good policy
 *             recovers its hit ratio quickly after the switch (the new
 *             set's hot keys are admitted) - the surge S3-FIFO's small
 *             queue is meant to absorb.
 * scan        keys 0..N-1 follow Zipf; during the middle third of the run,
 *             a batch job reads --scan-frac (default 0.5) of all requests
 *             from cold keys N, N+1, ... each exactly once (and, being
 *             cache-aside, inserts them).  Reported: the hit ratio of the
 *             Zipf requests alone.  LRU lets the scan flush the hot set;
 *             S3-FIFO should keep it.
 *
 * The same scenario runs against Redis (allkeys-lru with maxmemory set
 * to --memory via CONFIG SET) for comparison; memcached's limit is its
 * -m, fixed at start, so it is run against an instance started small.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>

#include <shmcache.h>

#include "bench.h"

#define RANKS (1u << 22)

struct ival {
	uint64_t ops, gets, hits, hot_gets, hot_hits;
};

int cmd_scenario(const char *which, int argc, char **argv)
{
	struct cfg cfg;
	cfg_defaults(&cfg);
	cfg.seconds = 6;
	cfg.memory = 32ull << 20;
	double theta = 0.99, scan_frac = 0.5;
	unsigned ival_ms = 100;
	bool flash = strcmp(which, "flash-sale") == 0;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", cfg_long_options, NULL)) !=
	       -1) {
		if (cfg_option(&cfg, opt, optarg))
			continue;
		switch (opt) {
		case 't':
			theta = atof(optarg);
			break;
		case 'T':
			ival_ms = (unsigned)atoi(optarg);
			if (ival_ms < 1)
				die("bad --interval-ms");
			break;
		case 'F':
			scan_frac = atof(optarg);
			if (scan_frac < 0 || scan_frac > 1)
				die("--scan-frac must be in [0, 1]");
			break;
		case 'd': case 'x': case 'N': case 'H':
			break; /* accepted, meaningless here */
		default:
			die("%s: unknown option", which);
		}
	}
	if (sys_is_private(&cfg) || cfg.sys == SYS_REDIS_PIPE)
		die("%s: use shmcache, memcached or redis", which);
	if (cfg.vsize == VSIZE_MIXED)
		cfg.index_buckets = UINT64_MAX;
	/* Index sized for what fits, not for the whole key space. */
	uint64_t fit = cfg.memory / (SHMC_ITEM_OVERHEAD + cfg.ksize +
	                             (uint64_t)value_size_mean(cfg.vsize));
	uint64_t b = 256;
	while (b * 7 < fit * 3)
		b <<= 1;
	cfg.index_buckets = b;
	bench_tsc_calibrate();
	pin_to_cpu(cfg.cpu_base);
	int rc = sys_prepare(&cfg);
	if (rc)
		die("%s: prepare: %d", cfg.sys_name, rc);
	rc = sys_limit_memory(&cfg, cfg.memory);
	if (rc)
		fprintf(stderr, "%s: the server's own memory limit applies\n",
		        cfg.sys_name);
	struct sys *s = sys_open(&cfg, &rc);
	if (!s)
		die("%s: open: %d", cfg.sys_name, rc);

	struct rng rg;
	rng_seed(&rg, cfg.seed);
	struct zipf z;
	zipf_init(&z, cfg.keys, theta);
	struct perm p;
	perm_init(&p, cfg.keys, cfg.seed);
	uint32_t *ranks = malloc(sizeof(uint32_t) * RANKS);
	unsigned nival = (unsigned)(cfg.seconds * 1000 / ival_ms) + 2;
	struct ival *iv = calloc(nival, sizeof(*iv));
	if (!ranks || !iv)
		die("out of memory");
	for (uint32_t i = 0; i < RANKS; i++)
		ranks[i] = (uint32_t)perm_apply(&p, zipf_next(&z, &rg));

	char key[BENCH_KEY_MAX + 1];
	static char val[BENCH_VALUE_MAX], buf[BENCH_VALUE_MAX];
	memset(val, 'v', value_size_max(cfg.vsize));
	key_prefix(key, cfg.ksize);
	const uint64_t ival_ticks =
	    (uint64_t)((double)ival_ms * 1e6 * bench_tsc_per_ns);
	uint64_t start = bench_tsc();
	uint64_t end = start + (uint64_t)(cfg.seconds * 1e9 * bench_tsc_per_ns);
	uint64_t half = start + (end - start) / 2;
	uint64_t ramp = (end - start) / 10;
	uint64_t third = (end - start) / 3;
	uint64_t pos = 0, scan_next = cfg.keys, errors = 0;
	uint64_t now = start;
	uint64_t scan_cut = (uint64_t)(scan_frac * 18446744073709551615.0);
	while (now < end) {
		unsigned k = (unsigned)((now - start) / ival_ticks);
		if (k >= nival)
			k = nival - 1;
		/* Share of requests for the new set (flash) / the scan. */
		uint64_t cut = 0;
		if (flash && now >= half) {
			double f = ramp ? (double)(now - half) / (double)ramp : 1;
			cut = f >= 1 ? UINT64_MAX
			             : (uint64_t)(f * 18446744073709551615.0);
		} else if (!flash && now >= start + third &&
		           now < start + 2 * third) {
			cut = scan_cut;
		}
		for (unsigned i = 0; i < 64; i++) {
			uint64_t id = ranks[pos++ & (RANKS - 1)];
			bool other = cut && rng_next(&rg) <= cut;
			bool hot = true;
			if (other && flash) {
				id += cfg.keys;
			} else if (other) {
				id = scan_next++;
				hot = false;
			}
			key_make(key, cfg.ksize, id);
			size_t vlen;
			rc = sys_get(s, key, cfg.ksize, buf, sizeof(buf), &vlen);
			iv[k].ops++;
			iv[k].gets++;
			if (hot)
				iv[k].hot_gets++;
			if (rc > 0) {
				iv[k].hits++;
				if (hot)
					iv[k].hot_hits++;
			} else {
				if (rc < 0)
					errors++;
				rc = sys_set(s, key, cfg.ksize, val,
				             value_size(cfg.vsize, id));
				iv[k].ops++;
				if (rc < 0)
					errors++;
			}
		}
		now = bench_tsc();
	}
	char fin[512];
	sys_close(s);
	sys_finish(&cfg, fin, sizeof(fin), true);
	if (cfg.sys == SYS_REDIS)
		sys_limit_memory(&cfg, 0);

	unsigned last = (unsigned)((end - start) / ival_ticks);
	if (last > nival)
		last = nival;
	printf("%s on %s: %llu keys per hot set, Zipf %.2f, memory %llu B, "
	       "%u ms intervals\n",
	       which, cfg.sys_name, (unsigned long long)cfg.keys, theta,
	       (unsigned long long)cfg.memory, ival_ms);
	printf("%8s %10s %8s %8s\n", "t_s", "Mops/s", "hit%",
	       flash ? "" : "hot_hit%");
	FILE *jf = cfg.json_path ? fopen(cfg.json_path, "a") : NULL;
	if (jf)
		fprintf(jf,
		        "{\"scenario\":\"%s\",\"system\":\"%s\",\"label\":\"%s\","
		        "\"keys\":%llu,\"memory\":%llu,\"interval_ms\":%u,"
		        "\"errors\":%llu%s,\"intervals\":[",
		        which, cfg.sys_name, cfg.label ? cfg.label : "",
		        (unsigned long long)cfg.keys,
		        (unsigned long long)cfg.memory, ival_ms,
		        (unsigned long long)errors, fin);
	uint64_t tot = 0, tg = 0, th = 0;
	for (unsigned k = 0; k < last; k++) {
		double t = (double)(k + 1) * ival_ms / 1000.0;
		double mops = (double)iv[k].ops / (ival_ms * 1e3);
		double hit = iv[k].gets ? (double)iv[k].hits / (double)iv[k].gets
		                        : 0;
		double hh = iv[k].hot_gets ? (double)iv[k].hot_hits /
		                                 (double)iv[k].hot_gets
		                           : 0;
		tot += iv[k].ops;
		tg += iv[k].gets;
		th += iv[k].hits;
		if (flash)
			printf("%8.1f %10.3f %8.2f\n", t, mops, hit * 100);
		else
			printf("%8.1f %10.3f %8.2f %8.2f\n", t, mops, hit * 100,
			       hh * 100);
		if (jf)
			fprintf(jf, "%s{\"t\":%.2f,\"ops\":%llu,\"hit\":%.4f,"
			            "\"hot_hit\":%.4f}",
			        k ? "," : "", t, (unsigned long long)iv[k].ops,
			        hit, hh);
	}
	double secs = (double)last * ival_ms / 1000.0;
	printf("total: %.3f Mops/s, hit ratio %.4f, errors %llu\n",
	       secs > 0 ? (double)tot / secs / 1e6 : 0,
	       tg ? (double)th / (double)tg : 0, (unsigned long long)errors);
	if (jf) {
		fprintf(jf, "],\"ops_per_sec\":%.0f,\"hit_ratio\":%.4f}\n",
		        secs > 0 ? (double)tot / secs : 0,
		        tg ? (double)th / (double)tg : 0);
		fclose(jf);
	}
	free(ranks);
	free(iv);
	return 0;
}

/* ---- selftest: the generators checked against exact numbers --------- */

int cmd_selftest(void)
{
	int bad = 0;
	/* Zipf: P(rank r) = r^-theta / zeta(n), exact and Gray's. */
	const uint64_t n = 1000000, draws = 20000000;
	for (int gray = 0; gray < 2; gray++) {
		struct zipf z;
		if (gray)
			zipf_init_gray(&z, n, 0.99);
		else
			zipf_init(&z, n, 0.99);
		struct rng r;
		rng_seed(&r, 7);
		uint64_t cnt[10] = {0}, tail = 0;
		for (uint64_t i = 0; i < draws; i++) {
			uint64_t k = zipf_next(&z, &r);
			if (k < 10)
				cnt[k]++;
			else if (k >= n / 2)
				tail++;
		}
		printf("zipf(0.99) %s, %llu ranks, %llu draws:\n",
		       gray ? "Gray et al." : "rejection-inversion (used)",
		       (unsigned long long)n, (unsigned long long)draws);
		for (int k = 0; k < 10; k++) {
			double want = pow((double)(k + 1), -0.99) / z.zetan;
			double got = (double)cnt[k] / (double)draws;
			double err = (got - want) / want;
			printf("  rank %2d: %.5f expected %.5f (%+.1f%%)\n",
			       k + 1, got, want, 100 * err);
			if (!gray && (err > 0.02 || err < -0.02))
				bad++;
		}
		double want_tail = 0;
		for (uint64_t k = n / 2 + 1; k <= n; k++)
			want_tail += pow((double)k, -0.99);
		want_tail /= z.zetan;
		double got_tail = (double)tail / (double)draws;
		printf("  ranks > n/2: %.5f expected %.5f\n", got_tail,
		       want_tail);
		if (!gray && (got_tail < want_tail * 0.98 ||
		              got_tail > want_tail * 1.02))
			bad++;
	}
	/* Permutation is a bijection. */
	struct perm p;
	perm_init(&p, 1000, 3);
	char seen[1000] = {0};
	for (uint64_t i = 0; i < 1000; i++)
		seen[perm_apply(&p, i)]++;
	for (int i = 0; i < 1000; i++)
		if (seen[i] != 1) {
			bad++;
			printf("  perm: %d seen %d times\n", i, seen[i]);
			break;
		}
	/* Histogram relative error. */
	struct hist *h = calloc(1, sizeof(*h));
	double worst = 0;
	for (uint64_t v = 1; v < (1ull << 30); v = v * 3 / 2 + 1) {
		unsigned i = hist_index(v);
		uint64_t lo = hist_bucket_low(i), hi = hist_bucket_low(i + 1);
		if (v < lo || v >= hi) {
			printf("  hist: %llu outside its bucket\n",
			       (unsigned long long)v);
			bad++;
		}
		double e = (double)(hi - lo) / (double)lo;
		if (lo >= HIST_SUB && e > worst)
			worst = e;
	}
	free(h);
	printf("  histogram: widest bucket %.4f of its value (bound 1/64)\n",
	       worst);
	if (worst > 1.0 / 64 + 1e-9)
		bad++;
	bench_tsc_calibrate();
	printf("  tsc: %.4f ticks/ns, timed-region overhead %llu ticks\n",
	       bench_tsc_per_ns, (unsigned long long)bench_tsc_overhead);
	printf("selftest: %s\n", bad ? "FAILED" : "ok");
	return bad ? 1 : 0;
}
