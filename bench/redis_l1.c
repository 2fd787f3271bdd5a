/*
 * redis_l1.c - `shmcache-bench redis`: N worker processes read keys of
 * Zipf(theta) popularity that live in Redis, two ways, in the same run:
 *
 *   direct  every read is a hiredis GET to Redis (one connection each)
 *   l1      shmc_get_or_load with shmc_redis_loader: the cache is the
 *           host's one L1, Redis is asked once per missing key per host;
 *           run twice, from an empty cache and then over the filled one
 *
 * Reported per way: operations/s per worker, Redis commands/s (from INFO
 * stats total_commands_processed, everything Redis did meanwhile), and
 * the memory a near cache takes on the host: the shared L1 holds one copy
 * (its used bytes, measured), while Redis's own client-side caching keeps
 * one private copy per process (computed: procs x the distinct keys the
 * L1 loaded x (key + value + 24 bytes of item overhead), which is less
 * than any real per-process cache would use).  No sync process runs: the
 * keys are only read.  Bounded: --seconds per way (default 3).
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "shmcache.h"
#include "shmcache_redis.h"

#define MAXP 64

struct ropts {
	const char *sock, *json;
	unsigned procs, vsize;
	uint64_t keys;
	double seconds, theta;
};

struct rshared {
	uint64_t ops[MAXP];
	int failed[MAXP];
};

static redisContext *connect_to(const char *sock)
{
	struct timeval tv = {5, 0};
	redisContext *r = redisConnectUnixWithTimeout(sock, tv);
	if (!r || r->err) {
		fprintf(stderr, "shmcache-bench: redis: connect %s: %s\n", sock,
		        r ? r->errstr : "no memory");
		if (r)
			redisFree(r);
		return NULL;
	}
	return r;
}

static uint64_t commands(redisContext *r)
{
	redisReply *rep = redisCommand(r, "INFO stats");
	uint64_t n = 0;
	if (rep && rep->type == REDIS_REPLY_STRING) {
		const char *p = strstr(rep->str, "total_commands_processed:");
		if (p)
			n = strtoull(p + 25, NULL, 10);
	}
	if (rep)
		freeReplyObject(rep);
	return n;
}

static void keyname(char *k, size_t n, uint64_t id)
{
	snprintf(k, n, "bench:%010llu", (unsigned long long)id);
}

static int worker(const struct ropts *o, struct rshared *sh, unsigned id,
                  bool l1, const struct zipf *z, const struct perm *pm)
{
	struct rng rg;
	rng_seed(&rg, 0xbeef + id * 7919);
	char key[32], buf[4096];
	uint64_t ops = 0, bad = 0;
	redisContext *r = NULL;
	shmc_t *c = NULL;
	shmc_redis_t *rl = NULL;
	char addr[600];
	snprintf(addr, sizeof(addr), "unix:%s", o->sock);
	if (l1 ? shmc_open("bench-redis-l1", 0, &c) ||
	             shmc_redis_open(addr, NULL, &rl)
	       : !(r = connect_to(o->sock)))
		return 1;
	struct shmc_load_opts lo = {.ttl = 600};
	uint64_t end = bench_mono_ns() + (uint64_t)(o->seconds * 1e9);
	while (bench_mono_ns() < end) {
		for (int i = 0; i < 64; i++) {
			keyname(key, sizeof(key),
			        perm_apply(pm, zipf_next(z, &rg)));
			size_t klen = strlen(key), n = sizeof(buf);
			if (l1) {
				bad += shmc_get_or_load(c, key, klen, buf, &n,
				                        NULL, shmc_redis_loader,
				                        rl, &lo) != 0;
			} else {
				redisReply *rep =
				    redisCommand(r, "GET %b", key, klen);
				bad += !rep || rep->type != REDIS_REPLY_STRING;
				if (rep)
					freeReplyObject(rep);
			}
			ops++;
		}
	}
	sh->ops[id] = ops;
	sh->failed[id] = bad != 0;
	if (r)
		redisFree(r);
	shmc_redis_close(rl);
	shmc_close(c);
	return 0;
}

/* One way: procs workers at once; ops/s per worker and Redis cmds/s. */
static int run_way(const struct ropts *o, struct rshared *sh, bool l1,
                   const struct zipf *z, const struct perm *pm,
                   redisContext *ctl, double *per_worker, double *rcmds)
{
	memset(sh, 0, sizeof(*sh));
	uint64_t c0 = commands(ctl), t0 = bench_mono_ns();
	pid_t kids[MAXP];
	for (unsigned i = 0; i < o->procs; i++) {
		kids[i] = fork();
		if (kids[i] == 0)
			_exit(worker(o, sh, i, l1, z, pm));
	}
	int failed = 0;
	for (unsigned i = 0; i < o->procs; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		failed |= !WIFEXITED(st) || WEXITSTATUS(st) != 0 ||
		          sh->failed[i];
	}
	double secs = (double)(bench_mono_ns() - t0) / 1e9;
	uint64_t c1 = commands(ctl), ops = 0;
	for (unsigned i = 0; i < o->procs; i++)
		ops += sh->ops[i];
	*per_worker = (double)ops / o->seconds / o->procs;
	/* minus our own two INFO commands */
	*rcmds = (double)(c1 - c0 - 1) / secs;
	return failed;
}

int cmd_redis_l1(int argc, char **argv)
{
	struct ropts o = {.procs = 4, .vsize = 64, .keys = 100000,
	                  .seconds = 3, .theta = 0.99};
	static const struct option lo[] = {
	    {"redis-socket", required_argument, NULL, 's'},
	    {"procs", required_argument, NULL, 'p'},
	    {"keys", required_argument, NULL, 'k'},
	    {"value-size", required_argument, NULL, 'v'},
	    {"seconds", required_argument, NULL, 't'},
	    {"theta", required_argument, NULL, 'z'},
	    {"json", required_argument, NULL, 'j'},
	    {NULL, 0, NULL, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's': o.sock = optarg; break;
		case 'p': o.procs = (unsigned)atoi(optarg); break;
		case 'k': o.keys = strtoull(optarg, NULL, 10); break;
		case 'v': o.vsize = (unsigned)atoi(optarg); break;
		case 't': o.seconds = atof(optarg); break;
		case 'z': o.theta = atof(optarg); break;
		case 'j': o.json = optarg; break;
		default:
			fprintf(stderr, "usage: shmcache-bench redis "
			                "--redis-socket PATH [--procs N] [--keys "
			                "K] [--value-size V] [--seconds S] "
			                "[--theta T] [--json FILE]\n");
			return 2;
		}
	}
	if (!o.sock || o.procs < 1 || o.procs > MAXP || !o.keys ||
	    o.vsize < 1 || o.vsize > 4096 || o.seconds <= 0 ||
	    o.seconds > 600) {
		fprintf(stderr, "shmcache-bench: redis: --redis-socket "
		                "needed; procs 1-64, value 1-4096 bytes, "
		                "seconds up to 600\n");
		return 2;
	}
	redisContext *ctl = connect_to(o.sock);
	if (!ctl)
		return 1;
	/* The data set, pipelined. */
	char *val = malloc(o.vsize);
	memset(val, 'v', o.vsize);
	char key[32];
	for (uint64_t i = 0; i < o.keys; i++) {
		keyname(key, sizeof(key), i);
		redisAppendCommand(ctl, "SET %s %b", key, val, (size_t)o.vsize);
		if (i % 1000 == 999 || i + 1 == o.keys)
			for (uint64_t j = i - i % 1000; j <= i; j++) {
				void *rep;
				if (redisGetReply(ctl, &rep) != REDIS_OK) {
					fprintf(stderr, "shmcache-bench: redis: "
					                "SET: %s\n",
					        ctl->errstr);
					return 1;
				}
				freeReplyObject(rep);
			}
	}
	free(val);
	struct zipf z;
	zipf_init(&z, o.keys, o.theta);
	struct perm pm;
	perm_init(&pm, o.keys, 42);
	struct shmc_create_opts co;
	shmc_create_opts_init(&co);
	co.memory = o.keys * (o.vsize + 48 + 24) * 2 + (64u << 20);
	shmc_t *c = NULL;
	shmc_destroy("bench-redis-l1");
	int rc = shmc_create("bench-redis-l1", &co, &c);
	if (rc) {
		fprintf(stderr, "shmcache-bench: redis: create: %s\n",
		        shmc_strerror(rc));
		return 1;
	}
	struct rshared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	double dw, dr, lw, lr, ww, wr;
	int bad = run_way(&o, sh, false, &z, &pm, ctl, &dw, &dr);
	bad |= run_way(&o, sh, true, &z, &pm, ctl, &lw, &lr);
	struct shmc_stats st;
	shmc_stats(c, &st);
	/* Again over the filled L1: the steady state. */
	bad |= run_way(&o, sh, true, &z, &pm, ctl, &ww, &wr);
	uint64_t item = 16 + o.vsize + SHMC_ITEM_OVERHEAD;
	uint64_t per_proc = st.loads * item;
	printf("redis tier: %u processes, %llu keys (Zipf %.2f), %u-byte "
	       "values, %.1f s each way\n",
	       o.procs, (unsigned long long)o.keys, o.theta, o.vsize,
	       o.seconds);
	printf("  %-28s %14s %16s\n", "way", "ops/s/worker", "Redis cmds/s");
	printf("  %-28s %14.0f %16.0f\n", "direct hiredis GET", dw, dr);
	printf("  %-28s %14.0f %16.0f\n", "shmcache L1, empty at start",
	       lw, lr);
	printf("  %-28s %14.0f %16.0f\n", "shmcache L1, filled", ww, wr);
	printf("  L1: %llu loads (GETs) for %llu hits; memory on the host: "
	       "shared L1 %.1f MiB used (one copy) vs per-process near "
	       "caches >= %u x %.1f MiB = %.1f MiB\n",
	       (unsigned long long)st.loads, (unsigned long long)st.hits,
	       st.used_bytes / 1048576.0, o.procs, per_proc / 1048576.0,
	       (double)o.procs * per_proc / 1048576.0);
	if (o.json) {
		FILE *f = fopen(o.json, "a");
		if (f) {
			fprintf(f,
			        "{\"bench\":\"redis-l1\",\"procs\":%u,\"keys\":"
			        "%llu,\"theta\":%.2f,\"value_size\":%u,"
			        "\"direct_ops_per_worker\":%.0f,"
			        "\"direct_redis_cmds_per_s\":%.0f,"
			        "\"l1_ops_per_worker\":%.0f,"
			        "\"l1_redis_cmds_per_s\":%.0f,"
			        "\"l1_warm_ops_per_worker\":%.0f,"
			        "\"l1_warm_redis_cmds_per_s\":%.0f,\"l1_loads\":%llu,"
			        "\"l1_used_bytes\":%llu,"
			        "\"per_process_bytes\":%llu}\n",
			        o.procs, (unsigned long long)o.keys, o.theta,
			        o.vsize, dw, dr, lw, lr, ww, wr,
			        (unsigned long long)st.loads,
			        (unsigned long long)st.used_bytes,
			        (unsigned long long)per_proc);
			fclose(f);
		}
	}
	shmc_close(c);
	shmc_destroy("bench-redis-l1");
	redisFree(ctl);
	if (bad)
		fprintf(stderr, "shmcache-bench: redis: a worker failed\n");
	return bad ? 1 : 0;
}
