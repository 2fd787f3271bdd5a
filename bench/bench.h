/*
 * bench.h - shared pieces of shmcache-bench: configuration, the cheap
 * clock, the latency histogram, random numbers, key and value shapes, and
 * the interface every measured system implements.
 *
 * Everything on a measured path is a static inline here (the clock, the
 * random generator, key formatting), so it costs the same few nanoseconds
 * whichever system is being measured.
 */
#ifndef SHMC_BENCH_H
#define SHMC_BENCH_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BENCH_KEY_MAX 250
#define BENCH_VALUE_MAX (1u << 20)

/* ---- the cheap clock (hist.c) ------------------------------------------ */

/*
 * rdtsc, ordered after earlier loads (lfence).  The TSC is invariant on
 * this machine class (constant_tsc, nonstop_tsc) and is calibrated once
 * against CLOCK_MONOTONIC; no system call is ever made per sample.
 */
static inline uint64_t bench_tsc(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi)::"memory");
	return ((uint64_t)hi << 32) | lo;
}

extern double bench_tsc_per_ns;     /* ticks per nanosecond */
extern uint64_t bench_tsc_overhead; /* ticks of an empty timed region */
void bench_tsc_calibrate(void);
uint64_t bench_mono_ns(void);
static inline uint64_t bench_ticks_to_ns(uint64_t t)
{
	return (uint64_t)((double)t / bench_tsc_per_ns);
}

/* ---- latency histogram (hist.c) ---------------------------------------- */

/*
 * Log-bucketed: values below 2^HIST_SUB_BITS are exact; above, each power
 * of two is split into 2^HIST_SUB_BITS sub-buckets, so a value is known to
 * within 1/64 (1.6%) of itself.  Values are TSC ticks.
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 44
#define HIST_BUCKETS ((HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

static inline unsigned hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB_BITS */
	if (e > HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	unsigned sub = (unsigned)(v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1);
	return (e - HIST_SUB_BITS + 1) * HIST_SUB + sub;
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

void hist_merge(struct hist *into, const struct hist *from);
/* The q-quantile (0..1) in ticks: the middle of its bucket. */
uint64_t hist_quantile(const struct hist *h, double q);
uint64_t hist_bucket_low(unsigned i);

/* ---- random numbers and distributions (dist.c) -------------------------- */

static inline uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xoshiro256** (Blackman and Vigna). */
struct rng {
	uint64_t s[4];
};

static inline uint64_t rng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rng_rotl(s[3], 45);
	return out;
}

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = seed = splitmix64(seed);
}

/* Uniform double in [0, 1). */
static inline double rng_double(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), Lemire's multiply-shift (bias < n/2^64). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/*
 * Zipf(theta) over ranks 0..n-1 (rank 0 the most popular), by Gray et al.,
 * "Quickly generating billion-record synthetic databases", SIGMOD 1994:
 * zeta(n) is summed once; each draw costs one pow().
 */
struct zipf {
	uint64_t n;
	double theta, alpha, zetan, eta, half_pow_theta;
	bool exact;            /* rejection-inversion (default) */
	double h_x1, h_n, s;   /* its constants */
};
/* The exact generator (rejection-inversion), see dist.c. */
void zipf_init(struct zipf *z, uint64_t n, double theta);
/* Gray et al.'s generator (ranks 1-2 exact, the tail approximate). */
void zipf_init_gray(struct zipf *z, uint64_t n, double theta);
uint64_t zipf_next(const struct zipf *z, struct rng *r);
double zipf_zeta(uint64_t n, double theta);

/*
 * A bijection of [0, n) that scatters ranks over key ids, so the hottest
 * keys are not neighbours: x -> (x * mul + add) mod n with mul coprime to n.
 */
struct perm {
	uint64_t n, mul, add;
};
void perm_init(struct perm *p, uint64_t n, uint64_t seed);
static inline uint64_t perm_apply(const struct perm *p, uint64_t x)
{
	return (uint64_t)(((unsigned __int128)x * p->mul + p->add) % p->n);
}

/* ---- keys and values ----------------------------------------------------- */

/*
 * Key id -> key bytes: ksize-8 bytes of 'k' then the id as 8 hex digits
 * (ids < 2^32).  Only the last 8 bytes change per key, so the formatting
 * costs a few nanoseconds.  ksize >= 8.
 */
void key_prefix(char *key, unsigned ksize);
static inline void key_make(char *key, unsigned ksize, uint64_t id)
{
	static const char hex[16] = "0123456789abcdef";
	char *p = key + ksize - 8;
	for (int i = 7; i >= 0; i--) {
		p[i] = hex[id & 15];
		id >>= 4;
	}
}

/*
 * Value sizes: fixed, or "mixed" - a per-key size (the same every time a
 * key is written): 70% 32..128 bytes, 25% 256..1024, 5% 2048..8192.
 */
#define VSIZE_MIXED 0u
static inline unsigned value_size(unsigned vsize, uint64_t id)
{
	if (vsize != VSIZE_MIXED)
		return vsize;
	uint64_t h = splitmix64(id ^ 0x5eedull);
	unsigned c = (unsigned)(h % 100), r = (unsigned)(h >> 32);
	if (c < 70)
		return 32 + r % 97;
	if (c < 95)
		return 256 + r % 769;
	return 2048 + r % 6145;
}
double value_size_mean(unsigned vsize);
unsigned value_size_max(unsigned vsize);

/* ---- systems (systems.c) -------------------------------------------------- */

enum sys_kind {
	SYS_SHMCACHE,
	SYS_SHMCACHE_REF,
	SYS_INPROC,
	SYS_MEMCACHED,
	SYS_REDIS,
	SYS_REDIS_PIPE,
	SYS_SHMCACHE_MGET, /* gets in batches of cfg->pipeline via shmc_mget */
	SYS_FLAT,          /* flat.c: the reference, private per process */
};

struct cfg {
	enum sys_kind sys;
	const char *sys_name;
	uint64_t keys;
	unsigned ksize, vsize; /* vsize VSIZE_MIXED = mixed */
	uint64_t memory;       /* shmcache budget; 0 = derived */
	uint64_t index_buckets; /* UINT64_MAX = keys/2 (auto) */
	uint32_t segment_size;  /* 0 = library default */
	const char *cache_name;
	const char *mc_socket, *redis_socket;
	unsigned pipeline;     /* redis-pipe depth, shmcache-mget batch */
	unsigned sample;       /* time 1 op in sample (power of two) */
	double seconds;
	double warmup;         /* unmeasured seconds before each run */
	bool warm;
	uint64_t seed;
	int server_pids[4];
	int nserver_pids;
	const char *json_path;
	const char *label;
	unsigned cpu_base; /* worker i runs on allowed CPU cpu_base + i */
	bool pin_servers;  /* re-pin --server-pid threads per run */
};

/* One process's connection to / view of a system. */
struct sys;

/* Opens the system in the calling process (after fork). */
struct sys *sys_open(const struct cfg *cfg, int *err);
void sys_close(struct sys *s);
/* 1 hit (value copied, *vlen set), 0 miss, < 0 error. */
int sys_get(struct sys *s, const char *key, size_t klen, char *buf,
            size_t cap, size_t *vlen);
/* shmcache-ref: a zero-copy read section around one lookup. */
int sys_get_ref(struct sys *s, const char *key, size_t klen, uint64_t *sum);
int sys_set(struct sys *s, const char *key, size_t klen, const char *val,
            size_t vlen);
/*
 * Pipelined batch (redis-pipe), or shmcache-mget: the batch's sets one by
 * one, then its gets in one shmc_mget.  ops[i] is the key id with bit 63 =
 * set.
 */
int sys_batch(struct sys *s, const struct cfg *cfg, const uint64_t *ops,
              unsigned n, char *keybuf, const char *val, uint64_t *hits);
/*
 * Loads keys [lo, hi) with their values as fast as the system allows
 * (pipelined for servers).  Returns 0 or < 0.
 */
int sys_load(struct sys *s, const struct cfg *cfg, uint64_t lo, uint64_t hi);
/* A private table per process (flat, inproc): each worker loads its own. */
bool sys_is_private(const struct cfg *cfg);
/* Global preparation in the parent: create the cache, flush servers. */
int sys_prepare(const struct cfg *cfg);
/* Cache statistics as JSON members (",\"k\":v...") into js; with
 * destroy, the cache is removed afterwards.  Empty for servers. */
void sys_finish(const struct cfg *cfg, char *js, size_t jslen, bool destroy);
/* Cache-aside with a memory limit (scenarios, replay). */
int sys_limit_memory(const struct cfg *cfg, uint64_t bytes);

/* shmcache budget for the configuration (when cfg->memory is 0). */
uint64_t shmcache_memory_for(const struct cfg *cfg);

/* ---- subcommands ------------------------------------------------------- */

int cmd_replay(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_tracegen(int argc, char **argv);
int cmd_che(int argc, char **argv);
int cmd_mrc_check(int argc, char **argv);
int cmd_mrc_cost(int argc, char **argv);
int cmd_scenario(const char *which, int argc, char **argv);
int cmd_stampede(int argc, char **argv);
int cmd_redis_l1(int argc, char **argv);
int cmd_resize_live(int argc, char **argv);
int cmd_selftest(void);
int cmd_chase(int argc, char **argv);

extern const struct option cfg_long_options[];
void cfg_defaults(struct cfg *cfg);
int cfg_option(struct cfg *cfg, int opt, const char *arg);

/* Shared helpers of the command line (shmcache-bench.c). */
int parse_size(const char *s, uint64_t *out);
int parse_sys(const char *s, struct cfg *cfg);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int pin_to_cpu(unsigned cpu);
unsigned ncpus(void);
uint64_t proc_cpu_ticks(int pid);

#endif /* SHMC_BENCH_H */
