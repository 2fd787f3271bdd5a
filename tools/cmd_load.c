/*
 * cmd_load.c - `shmcache load NAME`: put a cache under load from several
 * worker processes, the way an application would use it.
 *
 * Each worker is a fork()ed process that opens the cache by name and runs
 * the cache-aside pattern for a fixed time: get a key drawn from a Zipf
 * (or uniform) popularity; on a miss, "load" the value and set it.  A
 * share of the operations are plain sets (updates) and deletes.  Every
 * value carries its key and a checksum, and every hit is verified, so a
 * load run doubles as a smoke test of a live cache: any bad read makes the
 * exit status 1.  Workers report through a pipe; the parent prints one
 * line per worker and a total.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

struct load_opts {
	uint64_t keys, value_size;
	unsigned procs;
	double seconds, zipf, set_pct, del_pct;
};

struct load_result {
	uint64_t gets, hits, sets, dels, bad, errors;
	double secs;
};

static void help(void)
{
	printf("Usage: shmcache load NAME [--procs N] [--seconds S] [--keys N]\n"
	       "                          [--value-size BYTES] [--zipf THETA | "
	       "--uniform]\n"
	       "                          [--set-pct P] [--del-pct P] [--json]\n\n"
	       "Runs N worker processes against the cache for S seconds, the "
	       "cache-aside way:\n"
	       "get a key (Zipf popularity by default); on a miss, set it.  "
	       "Every hit is\n"
	       "verified (values carry their key and a checksum).  Exit 1 on "
	       "any bad read.\n\n"
	       "  -p, --procs N        worker processes (default 4)\n"
	       "  -s, --seconds S      how long (default 5)\n"
	       "  -k, --keys N         key space (default 100000)\n"
	       "  -v, --value-size B   value bytes (default 100)\n"
	       "  -z, --zipf THETA     popularity skew (default 0.99)\n"
	       "  -u, --uniform        uniform popularity\n"
	       "      --set-pct P      extra sets, percent of operations "
	       "(default 5)\n"
	       "      --del-pct P      deletes, percent of operations "
	       "(default 1)\n"
	       "  -j, --json           one JSON object with the totals\n"
	       "  -h, --help           this help\n");
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Zipf by inverse transform over a precomputed CDF (keys <= a few M). */
struct zipf {
	uint64_t n;
	double *cdf;
};

static int zipf_init(struct zipf *z, uint64_t n, double theta)
{
	z->n = n;
	z->cdf = malloc(n * sizeof(double));
	if (!z->cdf)
		return -ENOMEM;
	double sum = 0;
	for (uint64_t i = 0; i < n; i++)
		z->cdf[i] = sum += theta > 0 ? 1.0 / pow((double)(i + 1), theta)
		                             : 1.0;
	for (uint64_t i = 0; i < n; i++)
		z->cdf[i] /= sum;
	return 0;
}

static uint64_t zipf_next(const struct zipf *z, uint64_t *rng)
{
	double u = (double)(xorshift(rng) >> 11) / (double)(1ull << 53);
	uint64_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		uint64_t mid = (lo + hi) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Scatter ranks over the key space so hot keys are not neighbours. */
	return (lo * 0x9e3779b97f4a7c15ull) % z->n;
}

/* value: u64 checksum | u32 version | key bytes | filler */
static size_t make_value(char *v, size_t len, const char *key, size_t kl,
                         uint32_t version)
{
	memcpy(v + 8, &version, 4);
	memcpy(v + 12, key, kl);
	for (size_t i = 12 + kl; i < len; i++)
		v[i] = (char)(version + i);
	uint64_t sum = 1469598103934665603ull;
	for (size_t i = 8; i < len; i++)
		sum = (sum ^ (uint8_t)v[i]) * 1099511628211ull;
	memcpy(v, &sum, 8);
	return len;
}

static bool value_ok(const char *v, size_t len, const char *key, size_t kl)
{
	if (len < 12 + kl || memcmp(v + 12, key, kl) != 0)
		return false;
	uint64_t sum = 1469598103934665603ull, have;
	for (size_t i = 8; i < len; i++)
		sum = (sum ^ (uint8_t)v[i]) * 1099511628211ull;
	memcpy(&have, v, 8);
	return sum == have;
}

static double now_s(void)
{
	return (double)tool_now_ns() / 1e9;
}

static int worker(const char *name, const struct load_opts *o,
                  const struct zipf *z, unsigned id, struct load_result *r)
{
	shmc_t *c = NULL;
	int rc = shmc_open(name, tool_open_flags(name), &c);
	if (rc) {
		tool_fail(rc, "worker %u: open %s", id, name);
		return rc;
	}
	uint64_t rng = 0x9e3779b97f4a7c15ull * (id + 1) ^ (uint64_t)getpid();
	size_t vsz = o->value_size < 40 ? 40 : o->value_size;
	char *val = malloc(vsz), *buf = malloc(vsz);
	char key[32];
	double t0 = now_s(), end = t0 + o->seconds;
	memset(r, 0, sizeof(*r));
	for (uint64_t n = 0;; n++) {
		if ((n & 1023) == 0 && now_s() >= end)
			break;
		uint64_t k = o->zipf > 0 ? zipf_next(z, &rng)
		                         : xorshift(&rng) % o->keys;
		size_t kl = (size_t)snprintf(key, sizeof(key), "load:%llu",
		                             (unsigned long long)k);
		double dice = (double)(xorshift(&rng) % 10000) / 100.0;
		if (dice < o->del_pct) {
			rc = shmc_del(c, key, kl);
			r->dels++;
			if (rc && rc != SHMC_ENOTFOUND)
				r->errors++;
			continue;
		}
		if (dice < o->del_pct + o->set_pct) {
			make_value(val, vsz, key, kl, (uint32_t)n);
			r->errors += shmc_set(c, key, kl, val, vsz, 0, 0) != 0;
			r->sets++;
			continue;
		}
		size_t len = vsz;
		rc = shmc_get(c, key, kl, buf, &len, NULL);
		r->gets++;
		if (rc == 0) {
			r->hits++;
			r->bad += !value_ok(buf, len, key, kl);
		} else if (rc == SHMC_ENOTFOUND) {
			/* cache-aside: load it (here, make it) and set it */
			make_value(val, vsz, key, kl, (uint32_t)n);
			r->errors += shmc_set(c, key, kl, val, vsz, 0, 0) != 0;
			r->sets++;
		} else {
			r->errors++;
		}
	}
	r->secs = now_s() - t0;
	free(val);
	free(buf);
	shmc_close(c);
	return 0;
}

static int parse(int argc, char **argv, struct load_opts *o, bool *json)
{
	static const struct option lo[] = {
	    {"procs", required_argument, NULL, 'p'},
	    {"seconds", required_argument, NULL, 's'},
	    {"keys", required_argument, NULL, 'k'},
	    {"value-size", required_argument, NULL, 'v'},
	    {"zipf", required_argument, NULL, 'z'},
	    {"uniform", no_argument, NULL, 'u'},
	    {"set-pct", required_argument, NULL, 'S'},
	    {"del-pct", required_argument, NULL, 'D'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	uint64_t u;
	int ch;
	while ((ch = tool_getopt(argc, argv, "p:s:k:v:z:ujh", lo)) != -1) {
		switch (ch) {
		case 'p':
			if (tool_opt_u64("--procs", optarg, 256, &u) || !u)
				return TOOL_EXIT_USAGE;
			o->procs = (unsigned)u;
			break;
		case 's':
			if (tool_opt_double("--seconds", optarg, &o->seconds) ||
			    o->seconds <= 0 || o->seconds > 86400)
				return TOOL_EXIT_USAGE;
			break;
		case 'k':
			if (tool_opt_u64("--keys", optarg, 50000000, &o->keys) ||
			    !o->keys)
				return TOOL_EXIT_USAGE;
			break;
		case 'v':
			if (tool_opt_size("--value-size", optarg,
			                  &o->value_size) ||
			    o->value_size > (16u << 20))
				return TOOL_EXIT_USAGE;
			break;
		case 'z':
			if (tool_opt_double("--zipf", optarg, &o->zipf) ||
			    o->zipf < 0 || o->zipf > 5)
				return TOOL_EXIT_USAGE;
			break;
		case 'u': o->zipf = 0; break;
		case 'S':
			if (tool_opt_double("--set-pct", optarg, &o->set_pct) ||
			    o->set_pct < 0 || o->set_pct > 100)
				return TOOL_EXIT_USAGE;
			break;
		case 'D':
			if (tool_opt_double("--del-pct", optarg, &o->del_pct) ||
			    o->del_pct < 0 || o->del_pct > 100)
				return TOOL_EXIT_USAGE;
			break;
		case 'j': *json = true; break;
		case 'h': help(); return -1;
		default: return tool_usage_error();
		}
	}
	if (o->set_pct + o->del_pct > 100) {
		tool_msg("--set-pct and --del-pct add up to more than 100");
		return tool_usage_error();
	}
	if (argc - optind != 1) {
		tool_msg(argc - optind < 1 ? "missing NAME" : "too many arguments");
		return tool_usage_error();
	}
	return 0;
}

int cmd_load(int argc, char **argv)
{
	struct load_opts o = {.keys = 100000, .value_size = 100, .procs = 4,
	                      .seconds = 5, .zipf = 0.99, .set_pct = 5,
	                      .del_pct = 1};
	bool json = false;
	int rc = parse(argc, argv, &o, &json);
	if (rc)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	const char *name = argv[optind];
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	struct shmc_info info;
	shmc_info(c, &info);
	shmc_close(c);
	if (o.value_size + 32 > info.max_value) {
		tool_fail(SHMC_EVALLEN, "--value-size %llu",
		          (unsigned long long)o.value_size);
		return TOOL_EXIT_USAGE;
	}
	struct zipf z = {0};
	if (o.zipf > 0 && zipf_init(&z, o.keys, o.zipf)) {
		tool_fail(-ENOMEM, "Zipf table of %llu keys",
		          (unsigned long long)o.keys);
		return TOOL_EXIT_FAIL;
	}
	int fds[2];
	if (pipe(fds)) {
		tool_fail(-errno, "pipe");
		free(z.cdf);
		return TOOL_EXIT_FAIL;
	}
	pid_t *pids = calloc(o.procs, sizeof(*pids));
	fflush(NULL);
	for (unsigned i = 0; i < o.procs; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(fds[0]);
			struct load_result r;
			int wrc = worker(name, &o, &z, i, &r);
			if (!wrc)
				tool_write_all(fds[1], &r, sizeof(r));
			_exit(wrc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK);
		}
		if (pids[i] < 0)
			tool_fail(-errno, "fork worker %u", i);
	}
	close(fds[1]);
	struct load_result tot = {0}, r;
	unsigned got = 0;
	while (read(fds[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
		if (!json)
			printf("worker %2u: %9.0f ops/s  hit ratio %6.2f%%  "
			       "bad reads %llu\n",
			       got,
			       (double)(r.gets + r.sets + r.dels) / r.secs,
			       r.gets ? 100.0 * (double)r.hits / (double)r.gets
			              : 0.0,
			       (unsigned long long)r.bad);
		tot.gets += r.gets;
		tot.hits += r.hits;
		tot.sets += r.sets;
		tot.dels += r.dels;
		tot.bad += r.bad;
		tot.errors += r.errors;
		if (r.secs > tot.secs)
			tot.secs = r.secs;
		got++;
	}
	close(fds[0]);
	bool all_ok = got == o.procs;
	for (unsigned i = 0; i < o.procs; i++) {
		int st;
		if (pids[i] > 0 && waitpid(pids[i], &st, 0) == pids[i])
			all_ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	free(pids);
	free(z.cdf);
	uint64_t ops = tot.gets + tot.sets + tot.dels;
	double rate = tot.secs > 0 ? (double)ops / tot.secs : 0;
	double hr = tot.gets ? (double)tot.hits / (double)tot.gets : 0;
	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj(&w);
		jw_key(&w, "procs"); jw_u64(&w, got);
		jw_key(&w, "ops"); jw_u64(&w, ops);
		jw_key(&w, "ops_per_sec"); jw_dbl(&w, rate);
		jw_key(&w, "gets"); jw_u64(&w, tot.gets);
		jw_key(&w, "hit_ratio"); jw_dbl(&w, hr);
		jw_key(&w, "sets"); jw_u64(&w, tot.sets);
		jw_key(&w, "deletes"); jw_u64(&w, tot.dels);
		jw_key(&w, "bad_reads"); jw_u64(&w, tot.bad);
		jw_key(&w, "errors"); jw_u64(&w, tot.errors);
		jw_obj_end(&w);
		jw_end(&w);
	} else {
		printf("total    : %9.0f ops/s  hit ratio %6.2f%%  bad reads %llu"
		       "  errors %llu  (%u processes, %.1f s)\n",
		       rate, 100 * hr, (unsigned long long)tot.bad,
		       (unsigned long long)tot.errors, got, tot.secs);
	}
	if (!all_ok)
		tool_msg("a worker failed");
	return all_ok && !tot.bad && !tot.errors ? TOOL_EXIT_OK
	                                         : TOOL_EXIT_FAIL;
}
