/*
 * stampede.c - `shmcache-bench stampede`: what get-or-load saves a backend.
 *
 * A simulated backend takes --backend-us (default 1000 us) per load and
 * counts its loads in shared memory.  --procs worker processes read keys
 * of Zipf(theta) popularity from a cache whose values live --ttl seconds
 * (default 1), so hot keys expire every second and every worker misses
 * them at once.  Two ways of using the cache run in turn, --reps times:
 *
 *   plain  get; on a miss, ask the backend and set (what most code does)
 *   gol    shmc_get_or_load: one loader per missing key across processes
 *
 * Reported per way: operations/s, backend loads/s, and p50/p99/p99.9 of
 * the per-request latency (rdtsc, every request timed), medians over the
 * repetitions; with --chart, a PNG of both drawn by gnuplot.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "shmcache.h"

struct sopts {
	unsigned procs, reps, backend_us, ttl;
	uint64_t keys;
	double seconds, theta;
	const char *chart;
};

struct sshared {
	uint64_t loads;
	struct {
		uint64_t ops;
		struct hist h;
	} w[64];
};

struct loader_ctx {
	struct sshared *sh;
	unsigned backend_us;
};

static void backend(struct loader_ctx *lx)
{
	__atomic_add_fetch(&lx->sh->loads, 1, __ATOMIC_RELAXED);
	struct timespec ts = {0, (long)lx->backend_us * 1000};
	nanosleep(&ts, NULL);
}

static int bload(const void *key, size_t klen, void *buf, size_t *vlen,
                 uint32_t *flags, void *arg)
{
	(void)key;
	(void)klen;
	(void)flags;
	backend(arg);
	size_t n = *vlen < 64 ? *vlen : 64;
	memset(buf, 'v', n);
	*vlen = n;
	return 0;
}

static int worker(const struct sopts *o, struct sshared *sh, unsigned id,
                  bool gol, const struct zipf *z)
{
	shmc_t *c = NULL;
	if (shmc_open("bench-stampede", 0, &c))
		return 1;
	struct rng r;
	rng_seed(&r, 0x5eed + id * 7919 + (gol ? 1 : 0));
	struct loader_ctx lx = {sh, o->backend_us};
	struct shmc_load_opts lo = {.ttl = o->ttl};
	char key[32], buf[64];
	uint64_t end = bench_mono_ns() + (uint64_t)(o->seconds * 1e9), ops = 0;
	struct hist *h = &sh->w[id].h;
	while (bench_mono_ns() < end) {
		uint64_t k = zipf_next(z, &r);
		size_t kl = (size_t)snprintf(key, sizeof(key), "st:%llu",
		                             (unsigned long long)k);
		size_t n = sizeof(buf);
		uint64_t t0 = bench_tsc();
		if (gol) {
			shmc_get_or_load(c, key, kl, buf, &n, NULL, bload, &lx,
			                 &lo);
		} else if (shmc_get(c, key, kl, buf, &n, NULL) ==
		           SHMC_ENOTFOUND) {
			backend(&lx);
			memset(buf, 'v', 64);
			shmc_set(c, key, kl, buf, 64, o->ttl, 0);
		}
		hist_add(h, bench_ticks_to_ns(bench_tsc() - t0));
		ops++;
	}
	sh->w[id].ops = ops;
	shmc_close(c);
	return 0;
}

struct result {
	double ops_s, loads_s;
	uint64_t p50, p99, p999;
};

static int run_once(const struct sopts *o, bool gol, const struct zipf *z,
                    struct result *res)
{
	shmc_destroy("bench-stampede");
	struct shmc_create_opts co;
	shmc_create_opts_init(&co);
	co.memory = 64ull << 20;
	shmc_t *c = NULL;
	int rc = shmc_create("bench-stampede", &co, &c);
	if (rc) {
		fprintf(stderr, "stampede: create: %s\n", shmc_strerror(rc));
		return 1;
	}
	struct sshared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	memset(sh, 0, sizeof(*sh));
	pid_t pid[64];
	fflush(NULL);
	for (unsigned i = 0; i < o->procs; i++) {
		pid[i] = fork();
		if (pid[i] == 0)
			_exit(worker(o, sh, i, gol, z));
	}
	int bad = 0;
	for (unsigned i = 0; i < o->procs; i++) {
		int st;
		waitpid(pid[i], &st, 0);
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	}
	struct hist all;
	memset(&all, 0, sizeof(all));
	uint64_t ops = 0;
	for (unsigned i = 0; i < o->procs; i++) {
		hist_merge(&all, &sh->w[i].h);
		ops += sh->w[i].ops;
	}
	res->ops_s = (double)ops / o->seconds;
	res->loads_s = (double)sh->loads / o->seconds;
	res->p50 = hist_quantile(&all, 0.5);
	res->p99 = hist_quantile(&all, 0.99);
	res->p999 = hist_quantile(&all, 0.999);
	munmap(sh, sizeof(*sh));
	shmc_close(c);
	shmc_destroy("bench-stampede");
	return bad;
}

static int by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), by_double);
	return v[n / 2];
}

static void chart(const char *png, const struct result *r)
{
	char dat[] = "/tmp/shmcache-stampede.XXXXXX";
	int fd = mkstemp(dat);
	if (fd < 0)
		return;
	FILE *f = fdopen(fd, "w");
	fprintf(f, "\"get+set\" %.0f %.1f\n\"get-or-load\" %.0f %.1f\n",
	        r[0].loads_s, (double)r[0].p99 / 1000.0, r[1].loads_s,
	        (double)r[1].p99 / 1000.0);
	fclose(f);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "gnuplot -e \"set terminal png size 800,400; set output '%s';"
	         " set multiplot layout 1,2; set style fill solid; set boxwidth 0.5;"
	         " set yrange [0:*]; set title 'backend loads/s';"
	         " plot '%s' using 0:2:xtic(1) with boxes notitle;"
	         " set title 'p99 latency (us)';"
	         " plot '%s' using 0:3:xtic(1) with boxes notitle\" 2>/dev/null",
	         png, dat, dat);
	if (system(cmd) != 0)
		fprintf(stderr, "stampede: gnuplot failed; no chart\n");
	unlink(dat);
}

int cmd_stampede(int argc, char **argv)
{
	struct sopts o = {.procs = 4, .reps = 3, .backend_us = 1000, .ttl = 1,
	                  .keys = 10000, .seconds = 3, .theta = 0.99};
	static const struct option lo[] = {
	    {"procs", required_argument, 0, 'p'},
	    {"reps", required_argument, 0, 'r'},
	    {"backend-us", required_argument, 0, 'b'},
	    {"ttl", required_argument, 0, 't'},
	    {"keys", required_argument, 0, 'k'},
	    {"seconds", required_argument, 0, 's'},
	    {"theta", required_argument, 0, 'z'},
	    {"chart", required_argument, 0, 'c'},
	    {0, 0, 0, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "p:r:b:t:k:s:z:c:", lo, NULL)) !=
	       -1) {
		switch (ch) {
		case 'p': o.procs = (unsigned)atoi(optarg); break;
		case 'r': o.reps = (unsigned)atoi(optarg); break;
		case 'b': o.backend_us = (unsigned)atoi(optarg); break;
		case 't': o.ttl = (unsigned)atoi(optarg); break;
		case 'k': o.keys = strtoull(optarg, NULL, 10); break;
		case 's': o.seconds = atof(optarg); break;
		case 'z': o.theta = atof(optarg); break;
		case 'c': o.chart = optarg; break;
		default:
			fprintf(stderr, "usage: shmcache-bench stampede [--procs N] "
			                "[--reps N] [--backend-us US] [--ttl S] "
			                "[--keys N] [--seconds S] [--theta T] "
			                "[--chart PNG]\n");
			return 2;
		}
	}
	if (o.procs < 1 || o.procs > 64 || o.reps < 1 || o.reps > 20 ||
	    o.keys < 1 || o.seconds <= 0 || o.seconds > 60 || o.ttl < 1) {
		fprintf(stderr, "stampede: option out of range\n");
		return 2;
	}
	bench_tsc_calibrate();
	struct zipf z;
	zipf_init(&z, o.keys, o.theta);
	double v[2][5][20];
	struct result med[2];
	for (unsigned r = 0; r < o.reps; r++) {
		for (int m = 0; m < 2; m++) { /* interleaved */
			struct result x;
			if (run_once(&o, m == 1, &z, &x))
				return 1;
			v[m][0][r] = x.ops_s;
			v[m][1][r] = x.loads_s;
			v[m][2][r] = (double)x.p50;
			v[m][3][r] = (double)x.p99;
			v[m][4][r] = (double)x.p999;
		}
	}
	printf("stampede: %u procs, %llu keys Zipf(%.2f), TTL %u s, backend "
	       "%u us/load, %.0f s x %u reps (medians)\n",
	       o.procs, (unsigned long long)o.keys, o.theta, o.ttl,
	       o.backend_us, o.seconds, o.reps);
	printf("%-12s %12s %14s %10s %10s %10s\n", "way", "ops/s",
	       "backend/s", "p50 us", "p99 us", "p99.9 us");
	static const char *names[] = {"get+set", "get-or-load"};
	for (int m = 0; m < 2; m++) {
		med[m] = (struct result){
		    .ops_s = median(v[m][0], o.reps),
		    .loads_s = median(v[m][1], o.reps),
		    .p50 = (uint64_t)median(v[m][2], o.reps),
		    .p99 = (uint64_t)median(v[m][3], o.reps),
		    .p999 = (uint64_t)median(v[m][4], o.reps)};
		printf("%-12s %12.0f %14.1f %10.2f %10.2f %10.2f\n", names[m],
		       med[m].ops_s, med[m].loads_s, (double)med[m].p50 / 1e3,
		       (double)med[m].p99 / 1e3, (double)med[m].p999 / 1e3);
	}
	printf("{\"bench\":\"stampede\",\"procs\":%u,\"keys\":%llu,"
	       "\"plain_loads_per_s\":%.1f,\"gol_loads_per_s\":%.1f,"
	       "\"plain_p99_ns\":%llu,\"gol_p99_ns\":%llu,"
	       "\"load_ratio\":%.3f}\n",
	       o.procs, (unsigned long long)o.keys, med[0].loads_s,
	       med[1].loads_s, (unsigned long long)med[0].p99,
	       (unsigned long long)med[1].p99,
	       med[0].loads_s > 0 ? med[1].loads_s / med[0].loads_s : 0.0);
	if (o.chart)
		chart(o.chart, med);
	return 0;
}
