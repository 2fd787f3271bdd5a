/*
 * replay.c - the trace commands.  `shmcache-bench replay TRACE (--memory
 * SIZE | --items N)`: a libCacheSim oracleGeneral trace against a real
 * shmcache; `shmcache-bench sim TRACE --policy P --objects N`: the same
 * trace through one of the exact simulators of sim.c, reported the same
 * way; `shmcache-bench tracegen` writes a synthetic trace (tracegen.c);
 * `shmcache-bench che`, Che's approximation of LRU (sim.c).
 *
 * TRACE FORMAT
 * 24 bytes a request, little endian: u32 clock_time, u64 obj_id,
 * u32 obj_size, i64 next_access_vtime (sim.h).  The replay uses obj_id
 * and obj_size; Belady also the next access.
 *
 * WHAT IS REPLAYED
 * Cache-aside, one process: get(obj_id as an 8-byte key); on a miss, set
 * it with a value of obj_size bytes (capped at the cache's max_value), or
 * with a fixed value size under --ignore-size.  The miss ratio is
 * misses / requests; the byte miss ratio weights each request by its size.
 *
 * SIZING
 *   --memory SIZE   the cache's whole budget (index, slots, segments).
 *   --items N       a cache that holds about N objects, to compare with
 *                   simulators that count objects (the trace README's
 *                   reference numbers).  Implies --ignore-size.  shmcache
 *                   evicts whole segments, so a cache of a few segments
 *                   would evict in huge steps no object-counting simulator
 *                   makes: the value size is chosen so that N objects fill
 *                   --segments (default 64) segments of --segment-size
 *                   (default 64 KiB), and the budget is the cache's fixed
 *                   part (measured on a probe cache) plus those segments.
 *                   What counts is that N objects fit: the fixed part is
 *                   not data.  (replay_cache.c: the test of eviction
 *                   quality sizes its cache with the same code.)
 *
 * WHAT IS REPORTED (replay and sim alike)
 *   miss ratio              over the whole trace, and over its second half
 *                           (the first half includes the cold start);
 *   objects held            the mean, over the second half of the trace,
 *                           of the objects the cache holds, sampled 1,024
 *                           times at even steps (the real cache: the
 *                           library's `items` gauge from shmc_stats, which
 *                           costs tens of microseconds, hence sampling;
 *                           every set here is of a missing key, so items
 *                           are live objects);
 *   --interval N            the miss ratio of each run of N requests, and
 *                           the objects held at its end;
 *   --json FILE             the same as one JSON line appended to FILE
 *                           ("-": standard output).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <shmcache.h>

#include "bench.h"
#include "replay.h"
#include "sim.h"

/* ---- what replay and sim report --------------------------------------- */

#define HELD_SAMPLES 1024

struct report {
	uint64_t n, interval, step;
	uint64_t misses, misses2;   /* all, second half */
	double held_sum;
	uint64_t held_samples;
	uint64_t *iv_misses, *iv_objects, niv;
};

static void report_init(struct report *rp, uint64_t n, uint64_t interval)
{
	memset(rp, 0, sizeof(*rp));
	rp->n = n;
	rp->interval = interval;
	rp->step = (n - n / 2) / HELD_SAMPLES;
	if (!rp->step)
		rp->step = 1;
	if (interval) {
		rp->niv = (n + interval - 1) / interval;
		rp->iv_misses = calloc(rp->niv, sizeof(uint64_t));
		rp->iv_objects = calloc(rp->niv, sizeof(uint64_t));
		if (!rp->iv_misses || !rp->iv_objects)
			die("out of memory");
	}
}

/* Request i (0-based) missed or not; true if the objects held are wanted. */
static bool report_req(struct report *rp, uint64_t i, bool miss)
{
	bool want = false;
	if (miss) {
		rp->misses++;
		if (i >= rp->n / 2)
			rp->misses2++;
		if (rp->interval)
			rp->iv_misses[i / rp->interval]++;
	}
	if (i >= rp->n / 2 && (i - rp->n / 2) % rp->step == 0)
		want = true;
	if (rp->interval && ((i + 1) % rp->interval == 0 || i + 1 == rp->n))
		want = true;
	return want;
}

static void report_objects(struct report *rp, uint64_t i, uint64_t objects)
{
	if (i >= rp->n / 2 && (i - rp->n / 2) % rp->step == 0) {
		rp->held_sum += (double)objects;
		rp->held_samples++;
	}
	if (rp->interval && ((i + 1) % rp->interval == 0 || i + 1 == rp->n))
		rp->iv_objects[i / rp->interval] = objects;
}

static double report_held(const struct report *rp)
{
	return rp->held_samples ? rp->held_sum / (double)rp->held_samples : 0;
}

static double report_mr2(const struct report *rp)
{
	return (double)rp->misses2 / (double)(rp->n - rp->n / 2);
}

static uint64_t iv_len(const struct report *rp, uint64_t k)
{
	uint64_t end = (k + 1) * rp->interval;
	return (end > rp->n ? rp->n : end) - k * rp->interval;
}

static void report_text(const struct report *rp, uint64_t sized_for)
{
	printf("miss ratio over the second half %.4f; objects held there "
	       "(mean) %.0f",
	       report_mr2(rp), report_held(rp));
	if (sized_for)
		printf(" = %.4f of %llu", report_held(rp) / (double)sized_for,
		       (unsigned long long)sized_for);
	printf("\n");
	for (uint64_t k = 0; k < rp->niv; k++)
		printf("interval %llu (requests %llu..%llu): miss ratio %.4f, "
		       "objects %llu\n",
		       (unsigned long long)k,
		       (unsigned long long)(k * rp->interval),
		       (unsigned long long)(k * rp->interval + iv_len(rp, k)),
		       (double)rp->iv_misses[k] / (double)iv_len(rp, k),
		       (unsigned long long)rp->iv_objects[k]);
}

/* JSON members (leading comma) after the caller's own. */
static void report_json(const struct report *rp, FILE *f)
{
	fprintf(f,
	        ",\"miss_ratio_second_half\":%.5f,\"objects_held_mean\":%.1f,"
	        "\"interval\":%llu,\"intervals\":[",
	        report_mr2(rp), report_held(rp),
	        (unsigned long long)rp->interval);
	for (uint64_t k = 0; k < rp->niv; k++)
		fprintf(f, "%s{\"end\":%llu,\"miss_ratio\":%.5f,\"objects\":%llu}",
		        k ? "," : "",
		        (unsigned long long)(k * rp->interval + iv_len(rp, k)),
		        (double)rp->iv_misses[k] / (double)iv_len(rp, k),
		        (unsigned long long)rp->iv_objects[k]);
	fprintf(f, "]");
}

static void report_free(struct report *rp)
{
	free(rp->iv_misses);
	free(rp->iv_objects);
}

static FILE *json_open(const char *path)
{
	if (strcmp(path, "-") == 0)
		return stdout;
	FILE *f = fopen(path, "a");
	if (!f)
		die("%s: %s", path, strerror(errno));
	return f;
}

static void json_close(FILE *f)
{
	if (f != stdout)
		fclose(f);
	else
		fflush(f);
}

/* ---- the real cache ----------------------------------------------------- */

int cmd_replay(int argc, char **argv)
{
	struct cfg cfg;
	cfg_defaults(&cfg);
	uint64_t items = 0, nsegs = REPLAY_SEGMENTS, interval = 0;
	bool ignore = false;
	int opt, rc;
	optind = 1;
	cfg.vsize = 0;
	while ((opt = getopt_long(argc, argv, "", cfg_long_options, NULL)) !=
	       -1) {
		if (opt == 'i') {
			if (parse_size(optarg, &items) || !items)
				die("bad --items");
		} else if (opt == 'g') {
			ignore = true;
		} else if (opt == 'X') {
			nsegs = strtoull(optarg, NULL, 0); /* --segments */
		} else if (opt == 'v') {
			if (parse_size(optarg, &interval) || !interval)
				die("bad --interval");
		} else if (opt == 'V') {
			cfg.vsize = (unsigned)atoi(optarg);
		} else if (!cfg_option(&cfg, opt, optarg)) {
			die("replay: unknown option");
		}
	}
	if (optind >= argc)
		die("replay: no trace given");
	const char *path = argv[optind];
	if (!items && !cfg.memory)
		die("replay: give --memory SIZE or --items N");

	uint64_t n;
	const struct og_req *r = trace_map(path, &n);
	if (!r)
		die("%s: %s", path, strerror(errno));

	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.segment_size = cfg.segment_size ? cfg.segment_size : REPLAY_SEGMENT_SIZE;
	uint64_t vfixed = cfg.vsize;
	if (items) {
		ignore = true;
		rc = replay_size(items, nsegs, cfg.cache_name, &o, &vfixed);
		if (rc)
			die("probe create: %s", shmc_strerror(rc));
	} else {
		o.memory = cfg.memory;
		if (!vfixed)
			vfixed = 8;
	}
	shmc_destroy(cfg.cache_name);
	shmc_t *c;
	rc = shmc_create(cfg.cache_name, &o, &c);
	if (rc)
		die("create (memory %llu): %s", (unsigned long long)o.memory,
		    shmc_strerror(rc));
	struct shmc_info info;
	shmc_info(c, &info);
	char *val = calloc(1, info.max_value + 1);
	char *buf = malloc(info.max_value + 1);
	if (!val || !buf)
		die("out of memory");
	bench_tsc_calibrate();
	struct report rp;
	report_init(&rp, n, interval);
	uint64_t misses = 0, bytes = 0, miss_bytes = 0, errs = 0, capped = 0;
	uint64_t t0 = bench_mono_ns();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t id = r[i].id;
		uint64_t sz = ignore ? vfixed : r[i].size;
		if (sz > info.max_value) {
			sz = info.max_value;
			capped++;
		}
		bytes += sz;
		bool miss;
		if (replay_request(c, id, val, sz, buf, info.max_value, &miss))
			errs++;
		if (miss) {
			misses++;
			miss_bytes += sz;
		}
		if (report_req(&rp, i, miss)) {
			struct shmc_stats st1;
			shmc_stats(c, &st1);
			report_objects(&rp, i, st1.items);
		}
	}
	double secs = (double)(bench_mono_ns() - t0) / 1e9;
	struct shmc_stats st;
	shmc_stats(c, &st);
	printf("trace %s: %llu requests\n", path, (unsigned long long)n);
	printf("cache: memory %llu B, segment %u B, %s%llu-byte values",
	       (unsigned long long)o.memory, o.segment_size,
	       ignore ? "fixed " : "object-size (capped) ",
	       (unsigned long long)(ignore ? vfixed : info.max_value));
	if (items)
		printf(", sized for %llu objects", (unsigned long long)items);
	printf("\nmiss ratio %.4f  byte miss ratio %.4f  (%.2f M req/s)\n",
	       (double)misses / (double)n,
	       bytes ? (double)miss_bytes / (double)bytes : 0,
	       (double)n / secs / 1e6);
	printf("items at end %llu, evictions %llu, copy-forwards %llu, "
	       "ghost hits %llu, index drops %llu, errors %llu\n",
	       (unsigned long long)st.items, (unsigned long long)st.evictions,
	       (unsigned long long)st.copy_forwards,
	       (unsigned long long)st.ghost_hits,
	       (unsigned long long)st.index_drops, (unsigned long long)errs);
	report_text(&rp, items);
	if (cfg.json_path) {
		FILE *f = json_open(cfg.json_path);
		{
			fprintf(f,
			        "{\"replay\":\"%s\",\"requests\":%llu,"
			        "\"items\":%llu,\"memory\":%llu,"
			        "\"segment_size\":%u,\"value_size\":%llu,"
			        "\"ignore_size\":%s,\"miss_ratio\":%.5f,"
			        "\"byte_miss_ratio\":%.5f,\"evictions\":%llu,"
			        "\"copy_forwards\":%llu,\"capped\":%llu,"
			        "\"errors\":%llu,\"items_at_end\":%llu",
			        path, (unsigned long long)n,
			        (unsigned long long)items,
			        (unsigned long long)o.memory, o.segment_size,
			        (unsigned long long)(ignore ? vfixed : 0),
			        ignore ? "true" : "false",
			        (double)misses / (double)n,
			        bytes ? (double)miss_bytes / (double)bytes : 0,
			        (unsigned long long)st.evictions,
			        (unsigned long long)st.copy_forwards,
			        (unsigned long long)capped,
			        (unsigned long long)errs,
			        (unsigned long long)st.items);
			report_json(&rp, f);
			fprintf(f, "}\n");
			json_close(f);
		}
	}
	report_free(&rp);
	trace_unmap(r, n);
	shmc_close(c);
	shmc_destroy(cfg.cache_name);
	free(val);
	free(buf);
	return errs ? 1 : 0;
}

/* ---- the simulators ----------------------------------------------------- */

int cmd_sim(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"policy", required_argument, 0, 'p'},
	    {"objects", required_argument, 0, 'n'},
	    {"interval", required_argument, 0, 'v'},
	    {"json", required_argument, 0, 'j'},
	    {0, 0, 0, 0},
	};
	enum sim_policy pol = SIM_S3FIFO;
	uint64_t objects = 0, interval = 0;
	const char *json = NULL;
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (sim_policy_parse(optarg, &pol))
				die("unknown --policy %s (s3fifo, lru, belady)",
				    optarg);
			break;
		case 'n':
			if (parse_size(optarg, &objects) || !objects)
				die("bad --objects");
			break;
		case 'v':
			if (parse_size(optarg, &interval) || !interval)
				die("bad --interval");
			break;
		case 'j':
			json = optarg;
			break;
		default:
			die("sim: unknown option");
		}
	}
	if (optind >= argc || !objects)
		die("usage: sim TRACE --policy s3fifo|lru|belady --objects N "
		    "[--interval N] [--json FILE]");
	const char *path = argv[optind];
	uint64_t n;
	const struct og_req *r = trace_map(path, &n);
	if (!r)
		die("%s: %s", path, strerror(errno));
	struct sim *s = sim_new(pol, objects);
	if (!s)
		die("sim: cannot make a cache of %llu objects",
		    (unsigned long long)objects);
	struct report rp;
	report_init(&rp, n, interval);
	uint64_t t0 = bench_mono_ns();
	for (uint64_t i = 0; i < n; i++) {
		bool miss = !sim_access(s, r[i].id, r[i].next);
		if (report_req(&rp, i, miss))
			report_objects(&rp, i, sim_objects(s));
	}
	double secs = (double)(bench_mono_ns() - t0) / 1e9;
	printf("trace %s: %llu requests\n", path, (unsigned long long)n);
	printf("%s, %llu objects: miss ratio %.4f  (%.2f M req/s)\n",
	       sim_policy_name(pol), (unsigned long long)objects,
	       (double)rp.misses / (double)n, (double)n / secs / 1e6);
	report_text(&rp, objects);
	if (json) {
		FILE *f = json_open(json);
		fprintf(f,
		        "{\"sim\":\"%s\",\"trace\":\"%s\",\"requests\":%llu,"
		        "\"objects\":%llu,\"miss_ratio\":%.5f",
		        sim_policy_name(pol), path, (unsigned long long)n,
		        (unsigned long long)objects,
		        (double)rp.misses / (double)n);
		report_json(&rp, f);
		fprintf(f, "}\n");
		json_close(f);
	}
	report_free(&rp);
	sim_free(s);
	trace_unmap(r, n);
	return 0;
}

/* ---- tracegen and che ----------------------------------------------- */

/* `shmcache-bench tracegen KIND [options] -o FILE`: tracegen.c's trace,
 * written to FILE. */
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
	struct trace_gen tg;
	trace_gen_defaults(&tg);
	uint64_t nobj = tg.objects, nreq = tg.requests, vsize = tg.value_size;
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
			tg.alpha = atof(optarg);
			if (!(tg.alpha > 0 && tg.alpha < 10))
				die("--alpha must be in (0, 10)");
			break;
		case 'e':
			tg.seed = strtoull(optarg, NULL, 0);
			break;
		case 'f':
			tg.scan_frac = atof(optarg);
			if (!(tg.scan_frac >= 0 && tg.scan_frac <= 1))
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
	tg.objects = nobj;
	tg.requests = nreq;
	tg.value_size = (uint32_t)vsize;
	if (trace_kind_parse(argv[optind], &tg.kind))
		die("tracegen: unknown kind %s", argv[optind]);
	uint64_t distinct;
	struct og_req *r = trace_generate(&tg, &distinct);
	if (!r)
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
