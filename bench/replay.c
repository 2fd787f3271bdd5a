/*
 * replay.c - `shmcache-bench replay TRACE (--memory SIZE | --items N)`:
 * a libCacheSim oracleGeneral trace against a real shmcache.
 *
 * TRACE FORMAT
 * 24 bytes a request, little endian: u32 clock_time, u64 obj_id,
 * u32 obj_size, i64 next_access_vtime.  Only obj_id and obj_size are used.
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
 *                   not data.
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

struct req {
	uint32_t time;
	uint64_t id;
	uint32_t size;
	int64_t next;
} __attribute__((packed));

_Static_assert(sizeof(struct req) == 24, "oracleGeneral is 24 bytes");

static uint64_t fixed_part(const char *name, uint32_t seg, uint64_t buckets)
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
		die("probe create: %s", shmc_strerror(rc));
	struct shmc_stats st;
	shmc_stats(c, &st);
	shmc_close(c);
	shmc_destroy(name);
	return st.committed_bytes;
}

int cmd_replay(int argc, char **argv)
{
	struct cfg cfg;
	cfg_defaults(&cfg);
	uint64_t items = 0, nsegs = 64;
	bool ignore = false;
	int opt;
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

	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	struct stat sb;
	fstat(fd, &sb);
	uint64_t n = (uint64_t)sb.st_size / sizeof(struct req);
	if (!n)
		die("%s: empty", path);
	const struct req *r =
	    mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (r == MAP_FAILED)
		die("mmap %s: %s", path, strerror(errno));
	close(fd);

	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.segment_size = cfg.segment_size ? cfg.segment_size : (64u << 10);
	uint64_t vfixed = cfg.vsize ? cfg.vsize : 8;
	if (items) {
		ignore = true;
		o.index_buckets = 256;
		while (o.index_buckets * 7 < items * 3)
			o.index_buckets <<= 1;
		uint64_t per_seg = (items + nsegs - 1) / nsegs;
		uint64_t room = o.segment_size - 64; /* segment header */
		uint64_t isz = (room / per_seg) & ~7ull;
		if (!cfg.vsize) {
			if (isz < SHMC_ITEM_OVERHEAD + 8 + 8)
				isz = SHMC_ITEM_OVERHEAD + 8 + 8;
			vfixed = isz - SHMC_ITEM_OVERHEAD - 8;
		}
		uint64_t need = items * ((SHMC_ITEM_OVERHEAD + 8 + vfixed + 7) &
		                         ~7ull);
		uint64_t segs = (need + room - 1) / room;
		o.memory = fixed_part(cfg.cache_name, o.segment_size,
		                      o.index_buckets) +
		           segs * o.segment_size;
	} else {
		o.memory = cfg.memory;
	}
	shmc_destroy(cfg.cache_name);
	shmc_t *c;
	int rc = shmc_create(cfg.cache_name, &o, &c);
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
		size_t vlen = info.max_value;
		rc = shmc_get(c, &id, sizeof(id), buf, &vlen, NULL);
		if (rc == 0)
			continue;
		if (rc != SHMC_ENOTFOUND) {
			errs++;
			continue;
		}
		misses++;
		miss_bytes += sz;
		rc = shmc_set(c, &id, sizeof(id), val, sz, SHMC_TTL_NONE, 0);
		if (rc)
			errs++;
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
	if (cfg.json_path) {
		FILE *f = fopen(cfg.json_path, "a");
		if (f) {
			fprintf(f,
			        "{\"replay\":\"%s\",\"requests\":%llu,"
			        "\"items\":%llu,\"memory\":%llu,"
			        "\"segment_size\":%u,\"value_size\":%llu,"
			        "\"ignore_size\":%s,\"miss_ratio\":%.5f,"
			        "\"byte_miss_ratio\":%.5f,\"evictions\":%llu,"
			        "\"copy_forwards\":%llu,\"capped\":%llu,"
			        "\"errors\":%llu,\"items_at_end\":%llu}\n",
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
			fclose(f);
		}
	}
	shmc_close(c);
	shmc_destroy(cfg.cache_name);
	free(val);
	free(buf);
	return errs ? 1 : 0;
}
