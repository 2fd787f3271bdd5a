/*
 * shmcache-bench - throughput and latency of shmcache next to an in-process
 * hash table, memcached and Redis; trace replay; eviction scenarios.
 *
 *   shmcache-bench run --system S [--keys N] [--key-size K]
 *       [--value-size V|mixed] [--dist uniform,zipf] [--mix get,90/10,set]
 *       [--procs 1,2] [--seconds S] [--warm] ...
 *   shmcache-bench replay TRACE (--memory SIZE | --items N) [--interval N]
 *   shmcache-bench sim TRACE --policy s3fifo|lru|belady --objects N
 *   shmcache-bench tracegen zipf|surge|scan [options] -o FILE
 *   shmcache-bench che --objects N --alpha A --cache C
 *   shmcache-bench flash-sale|scan [options]
 *   shmcache-bench selftest
 *   shmcache-bench chase [--mb N]    (what one dependent miss costs)
 *
 * HOW A RUN IS MEASURED
 * The parent prepares the system (creates the cache / flushes the server)
 * and, with --warm, loads every key once.  For each (mix, dist, procs)
 * combination it forks the workers - real processes, each pinned to its own
 * core with sched_setaffinity - which open the system themselves, draw
 * their whole operation stream in advance (key ids and get/set choices, so
 * neither pow() nor the random generator is measured), report ready, and
 * spin until the parent releases them all at once with a common TSC
 * deadline.  Each worker first runs --warmup seconds (default 0.3) of the
 * same loop unmeasured - a fresh process must fault in its page tables of
 * the mapping and warm its TLB and caches - then runs operations until the deadline, checking
 * the clock every 256 operations, and times one operation in --sample
 * (default 8) with lfence;rdtsc into its private log histogram (1/64
 * relative error).  Results go to a MAP_SHARED area; the parent sums them.
 *
 *   ops/s      sum over workers of ops / own elapsed wall time
 *   latency    p50/p99/p99.9 of the sampled operations, ns, timer cost
 *              subtracted (the cheapest empty timed region); for the
 *              batched systems (redis-pipe, shmcache-mget) every
 *              operation of a batch is given the whole batch's time
 *   cpu/op     worker CPU time (CLOCK_PROCESS_CPUTIME_ID) plus the CPU
 *              time of the --server-pid processes (from /proc, 10 ms
 *              ticks) over the run, divided by operations
 *
 * The operation stream is 2^22 entries per worker, replayed cyclically;
 * it is drawn from the same seed for every system, so all systems see the
 * same keys in the same order.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmcache.h>

#include "bench.h"

#define STREAM_BITS 22
#define STREAM_LEN (1u << STREAM_BITS)
#define OP_SET (1u << 31)
#define MAX_PROCS 64

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("shmcache-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

unsigned ncpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

/* Pins the caller to the cpu-th CPU of its allowed set. */
int pin_to_cpu(unsigned cpu)
{
	cpu_set_t set, one;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -errno;
	unsigned n = (unsigned)CPU_COUNT(&set), k = cpu % (n ? n : 1);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &set))
			continue;
		if (k-- == 0) {
			CPU_ZERO(&one);
			CPU_SET(c, &one);
			return sched_setaffinity(0, sizeof(one), &one) ? -errno
			                                               : 0;
		}
	}
	return -EINVAL;
}

/* utime + stime of a process, in clock ticks, or 0. */
uint64_t proc_cpu_ticks(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p)
		return 0;
	unsigned long long ut = 0, st = 0;
	/* fields after comm: state(3) ... utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	           &ut, &st) != 2)
		return 0;
	return ut + st;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v *= 1024; end++; break;
	case 'm': case 'M': v *= 1024 * 1024; end++; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

static const char *const sys_names[] = {
    [SYS_SHMCACHE] = "shmcache",   [SYS_SHMCACHE_REF] = "shmcache-ref",
    [SYS_INPROC] = "inproc",       [SYS_MEMCACHED] = "memcached",
    [SYS_REDIS] = "redis",         [SYS_REDIS_PIPE] = "redis-pipe",
    [SYS_SHMCACHE_MGET] = "shmcache-mget", [SYS_FLAT] = "flat",
};

int parse_sys(const char *s, struct cfg *cfg)
{
	for (unsigned i = 0; i < sizeof(sys_names) / sizeof(sys_names[0]); i++)
		if (strcmp(s, sys_names[i]) == 0) {
			cfg->sys = (enum sys_kind)i;
			cfg->sys_name = sys_names[i];
			return 0;
		}
	return -EINVAL;
}

/*
 * Gives the server processes (every thread) as many CPUs as there are
 * workers: the ones after the workers' if the machine has them, else the
 * workers' own.  On 2 CPUs: 1 worker on CPU 0, the server on CPU 1;
 * 2 workers on CPUs 0-1, the server on CPUs 0-1.
 */
static void pin_servers(const struct cfg *cfg, unsigned procs)
{
	cpu_set_t all, set;
	if (sched_getaffinity(0, sizeof(all), &all) != 0)
		return;
	int list[CPU_SETSIZE], n = 0;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all))
			list[n++] = c;
	CPU_ZERO(&set);
	unsigned first = cfg->cpu_base + procs;
	if (first + procs > (unsigned)n)
		first = cfg->cpu_base;
	for (unsigned i = 0; i < procs; i++)
		CPU_SET(list[(first + i) % (unsigned)n], &set);
	for (int i = 0; i < cfg->nserver_pids; i++) {
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/%d/task", cfg->server_pids[i]);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				sched_setaffinity(atoi(e->d_name), sizeof(set),
				                  &set);
		closedir(d);
	}
}

/* ---- one measured run ------------------------------------------------- */

struct wres {
	uint64_t ops, gets, hits, sets, errors;
	uint64_t elapsed_ns, cpu_ns;
	uint64_t sink;
	int failed;
	char err[120];
	struct hist h;
};

struct shared {
	int ready;
	int go;
	uint64_t warm_tsc;     /* end of the unmeasured warm-up */
	uint64_t deadline_tsc; /* end of the measurement */
	struct wres r[];
};

struct spec {
	int zipf;
	double theta;
	double set_frac;
	const char *mix;
	unsigned procs;
};

static uint64_t cpu_ns_self(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void build_stream(const struct cfg *cfg, const struct spec *sp,
                         uint32_t *stream)
{
	struct rng r;
	rng_seed(&r, cfg->seed * 1000003u);
	struct zipf z;
	struct perm p;
	if (sp->zipf) {
		zipf_init(&z, cfg->keys, sp->theta);
		perm_init(&p, cfg->keys, cfg->seed);
	}
	uint64_t set_cut = (uint64_t)(sp->set_frac * 18446744073709551615.0);
	if (sp->set_frac >= 1.0)
		set_cut = UINT64_MAX;
	for (uint32_t i = 0; i < STREAM_LEN; i++) {
		uint64_t id = sp->zipf ? perm_apply(&p, zipf_next(&z, &r))
		                       : rng_below(&r, cfg->keys);
		bool set = sp->set_frac > 0 && rng_next(&r) <= set_cut;
		stream[i] = (uint32_t)id | (set ? OP_SET : 0);
	}
}

static void worker_loop(struct sys *s, const struct cfg *cfg,
                        const uint32_t *stream, struct wres *w,
                        uint64_t deadline, uint64_t *posp)
{
	char key[BENCH_KEY_MAX + 1];
	static char val[BENCH_VALUE_MAX];
	static char buf[BENCH_VALUE_MAX];
	memset(val, 'v', value_size_max(cfg->vsize));
	key_prefix(key, cfg->ksize);
	const unsigned ksize = cfg->ksize, vsize = cfg->vsize;
	const uint64_t smask = cfg->sample - 1, ovh = bench_tsc_overhead;
	const bool ref = cfg->sys == SYS_SHMCACHE_REF;
	uint64_t pos = *posp, ops = 0, gets = 0, hits = 0, sets = 0;
	uint64_t errors = 0, sink = 0;
	for (;;) {
		for (unsigned i = 0; i < 256; i++, ops++) {
			uint32_t x = stream[pos++ & (STREAM_LEN - 1)];
			uint64_t id = x & ~OP_SET;
			key_make(key, ksize, id);
			bool timed = (ops & smask) == 0;
			uint64_t t0 = timed ? bench_tsc() : 0;
			int rc;
			if (x & OP_SET) {
				rc = sys_set(s, key, ksize, val,
				             value_size(vsize, id));
				sets++;
			} else {
				size_t vlen;
				rc = ref ? sys_get_ref(s, key, ksize, &sink)
				         : sys_get(s, key, ksize, buf,
				                   sizeof(buf), &vlen);
				gets++;
				if (rc > 0)
					hits++;
			}
			if (timed) {
				uint64_t t = bench_tsc() - t0;
				hist_add(&w->h, t > ovh ? t - ovh : 0);
			}
			if (rc < 0 && errors++ == 0)
				snprintf(w->err, sizeof(w->err),
				         "first error %d (%s)", rc,
				         shmc_strerror(rc));
		}
		if (bench_tsc() >= deadline)
			break;
	}
	*posp = pos;
	w->ops = ops;
	w->gets = gets;
	w->hits = hits;
	w->sets = sets;
	w->errors = errors;
	w->sink = sink + (uint64_t)buf[0];
}

/* redis-pipe: cfg->pipeline operations per round trip; shmcache-mget:
 * cfg->pipeline operations per shmc_mget (the batch's sets go first). */
static void worker_loop_pipe(struct sys *s, const struct cfg *cfg,
                             const uint32_t *stream, struct wres *w,
                             uint64_t deadline, uint64_t *posp)
{
	char key[BENCH_KEY_MAX + 1];
	static char val[BENCH_VALUE_MAX];
	uint64_t ops[1024];
	unsigned d = cfg->pipeline > 1024 ? 1024 : cfg->pipeline;
	memset(val, 'v', value_size_max(cfg->vsize));
	key_prefix(key, cfg->ksize);
	uint64_t pos = *posp, hits = 0;
	while (bench_tsc() < deadline) {
		for (unsigned i = 0; i < d; i++) {
			uint32_t x = stream[pos++ & (STREAM_LEN - 1)];
			ops[i] = (x & ~OP_SET) | ((x & OP_SET) ? 1ull << 63 : 0);
			if (x & OP_SET)
				w->sets++;
			else
				w->gets++;
		}
		uint64_t t0 = bench_tsc();
		int rc = sys_batch(s, cfg, ops, d, key, val, &hits);
		uint64_t t = bench_tsc() - t0;
		/* Every op of the batch waited for the whole batch. */
		unsigned idx = hist_index(t);
		w->h.b[idx] += d;
		w->h.count += d;
		if (t > w->h.max)
			w->h.max = t;
		w->ops += d;
		if (rc < 0) {
			if (w->errors++ == 0)
				snprintf(w->err, sizeof(w->err), "batch: %d", rc);
			break;
		}
	}
	w->hits = hits;
	*posp = pos;
}

/* Systems measured a batch at a time (worker_loop_pipe). */
static bool batched(const struct cfg *cfg)
{
	return cfg->sys == SYS_REDIS_PIPE || cfg->sys == SYS_SHMCACHE_MGET;
}

static int child_main(const struct cfg *cfg, const struct spec *sp,
                      unsigned idx, struct shared *sh, const uint32_t *stream)
{
	struct wres *w = &sh->r[idx];
	pin_to_cpu(cfg->cpu_base + idx);
	int rc;
	struct sys *s = sys_open(cfg, &rc);
	if (!s) {
		snprintf(w->err, sizeof(w->err), "open: %d (%s)", rc,
		         shmc_strerror(rc));
		w->failed = 1;
		__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
		return 1;
	}
	if (sys_is_private(cfg) && cfg->warm &&
	    (rc = sys_load(s, cfg, 0, cfg->keys)) != 0) {
		snprintf(w->err, sizeof(w->err), "load: %d", rc);
		w->failed = 1;
	}
	/* Workers share the parent's stream, each from its own offset. */
	uint64_t pos = (uint64_t)idx * (STREAM_LEN / sp->procs);
	/* Touch our own result area before the clock starts. */
	memset(&w->h, 0, sizeof(w->h));
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	uint64_t give_up = bench_mono_ns() + 600000000000ull;
	while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE)) {
		if (bench_mono_ns() > give_up)
			_exit(3);
		sched_yield();
	}
	uint64_t deadline = sh->deadline_tsc;
	if (!w->failed && sh->warm_tsc) {
		/* Warm-up: same loop, results thrown away.  Faults in this
		 * process's page tables and the TLB/caches, so the numbers
		 * are the steady state, not the first touch of a mapping. */
		static struct wres scratch;
		if (batched(cfg))
			worker_loop_pipe(s, cfg, stream, &scratch, sh->warm_tsc,
			                 &pos);
		else
			worker_loop(s, cfg, stream, &scratch, sh->warm_tsc,
			            &pos);
	}
	uint64_t c0 = cpu_ns_self(), t0 = bench_mono_ns();
	if (!w->failed) {
		if (batched(cfg))
			worker_loop_pipe(s, cfg, stream, w, deadline, &pos);
		else
			worker_loop(s, cfg, stream, w, deadline, &pos);
	}
	w->elapsed_ns = bench_mono_ns() - t0;
	w->cpu_ns = cpu_ns_self() - c0;
	sys_close(s);
	return 0;
}

static double ticks_ns(uint64_t t)
{
	return (double)t / bench_tsc_per_ns;
}

static void print_header(void)
{
	printf("%-13s %-8s %-7s %-5s %5s %10s %8s %8s %8s %9s %8s\n",
	       "system", "kv", "dist", "mix", "procs", "Mops/s", "p50ns",
	       "p99ns", "p99.9ns", "cpu-ns/op", "hit%");
	fflush(stdout);
}

static void run_spec(const struct cfg *cfg, const struct spec *sp)
{
	char finish_js[512];
	size_t shsz = sizeof(struct shared) + sp->procs * sizeof(struct wres);
	struct shared *sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE,
	                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	uint32_t *stream = malloc(sizeof(uint32_t) * STREAM_LEN);
	if (!stream)
		die("out of memory");
	build_stream(cfg, sp, stream);
	if (cfg->pin_servers)
		pin_servers(cfg, sp->procs);
	fflush(stdout);
	fflush(stderr);
	pid_t pids[MAX_PROCS];
	for (unsigned i = 0; i < sp->procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0)
			_exit(child_main(cfg, sp, i, sh, stream));
	}
	uint64_t give_up = bench_mono_ns() + 300000000000ull;
	while (__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) < (int)sp->procs) {
		if (bench_mono_ns() > give_up)
			die("workers did not get ready");
		int st;
		if (waitpid(-1, &st, WNOHANG) > 0)
			die("a worker exited before the start");
		usleep(1000);
	}
	uint64_t srv0 = 0, srv1 = 0;
	uint64_t now = bench_tsc();
	uint64_t wt = (uint64_t)(cfg->warmup * 1e9 * bench_tsc_per_ns);
	sh->warm_tsc = wt ? now + wt : 0;
	sh->deadline_tsc = now + wt + (uint64_t)(cfg->seconds * 1e9 *
	                                         bench_tsc_per_ns);
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
	while (sh->warm_tsc && bench_tsc() < sh->warm_tsc)
		usleep(1000);
	for (int i = 0; i < cfg->nserver_pids; i++)
		srv0 += proc_cpu_ticks(cfg->server_pids[i]);
	for (unsigned i = 0; i < sp->procs; i++) {
		int st;
		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fprintf(stderr, "worker %u failed (status %d)\n", i, st);
	}
	for (int i = 0; i < cfg->nserver_pids; i++)
		srv1 += proc_cpu_ticks(cfg->server_pids[i]);
	/* Cumulative cache counters (evictions, index drops) so far. */
	sys_finish(cfg, finish_js, sizeof(finish_js), false);

	struct hist *h = calloc(1, sizeof(*h));
	uint64_t ops = 0, gets = 0, hits = 0, sets = 0, errors = 0, cpu = 0;
	double rate = 0;
	char per[256] = "";
	size_t pl = 0;
	for (unsigned i = 0; i < sp->procs; i++) {
		struct wres *w = &sh->r[i];
		if (w->failed || w->err[0])
			fprintf(stderr, "worker %u: %s\n", i, w->err);
		hist_merge(h, &w->h);
		ops += w->ops;
		gets += w->gets;
		hits += w->hits;
		sets += w->sets;
		errors += w->errors;
		cpu += w->cpu_ns;
		double r = w->elapsed_ns ? (double)w->ops * 1e9 /
		                               (double)w->elapsed_ns
		                         : 0;
		rate += r;
		pl += (size_t)snprintf(per + pl, sizeof(per) - pl, "%s%.0f",
		                       i ? "," : "", r);
	}
	double srv_ns = (double)(srv1 - srv0) * 1e9 /
	                (double)sysconf(_SC_CLK_TCK);
	double cpu_op = ops ? ((double)cpu + srv_ns) / (double)ops : 0;
	double p50 = ticks_ns(hist_quantile(h, 0.50));
	double p99 = ticks_ns(hist_quantile(h, 0.99));
	double p999 = ticks_ns(hist_quantile(h, 0.999));
	double hitp = gets ? 100.0 * (double)hits / (double)gets : 0;
	char kv[32];
	if (cfg->vsize == VSIZE_MIXED)
		snprintf(kv, sizeof(kv), "%u/mixed", cfg->ksize);
	else
		snprintf(kv, sizeof(kv), "%u/%u", cfg->ksize, cfg->vsize);
	printf("%-13s %-8s %-7s %-5s %5u %10.3f %8.0f %8.0f %8.0f %9.0f %8.2f\n",
	       cfg->sys_name, kv, sp->zipf ? "zipf" : "uniform", sp->mix,
	       sp->procs, rate / 1e6, p50, p99, p999, cpu_op, hitp);
	if (errors)
		printf("  (%llu errors)\n", (unsigned long long)errors);
	fflush(stdout);

	char js[2048];
	snprintf(js, sizeof(js),
	         "{\"label\":\"%s\",\"system\":\"%s\",\"keys\":%llu,"
	         "\"key_size\":%u,\"value_size\":\"%s\",\"dist\":\"%s\","
	         "\"theta\":%.2f,\"mix\":\"%s\",\"set_frac\":%.3f,\"procs\":%u,"
	         "\"seconds\":%.2f,\"warmup\":%.2f,\"sample_every\":%u,\"ops\":%llu,"
	         "\"ops_per_sec\":%.0f,\"per_proc_ops_per_sec\":[%s],"
	         "\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"p999_ns\":%.0f,"
	         "\"max_ns\":%.0f,\"cpu_ns_per_op\":%.1f,"
	         "\"client_cpu_ns_per_op\":%.1f,\"server_cpu_ns_per_op\":%.1f,"
	         "\"gets\":%llu,\"hits\":%llu,\"hit_ratio\":%.5f,\"sets\":%llu,"
	         "\"errors\":%llu,\"timer_overhead_ns\":%.1f,"
	         "\"pipeline\":%u%s}",
	         cfg->label ? cfg->label : "", cfg->sys_name,
	         (unsigned long long)cfg->keys, cfg->ksize,
	         strchr(kv, '/') + 1, sp->zipf ? "zipf" : "uniform",
	         sp->zipf ? sp->theta : 0.0, sp->mix, sp->set_frac, sp->procs,
	         cfg->seconds, cfg->warmup,
	         batched(cfg) ? 1u : cfg->sample,
	         (unsigned long long)ops, rate, per, p50, p99, p999,
	         ticks_ns(h->max), cpu_op,
	         ops ? (double)cpu / (double)ops : 0,
	         ops ? srv_ns / (double)ops : 0, (unsigned long long)gets,
	         (unsigned long long)hits,
	         gets ? (double)hits / (double)gets : 0,
	         (unsigned long long)sets, (unsigned long long)errors,
	         ticks_ns(bench_tsc_overhead),
	         batched(cfg) ? cfg->pipeline : 1, finish_js);
	if (cfg->json_path) {
		FILE *f = fopen(cfg->json_path, "a");
		if (!f)
			die("%s: %s", cfg->json_path, strerror(errno));
		fprintf(f, "%s\n", js);
		fclose(f);
	} else {
		printf("%s\n", js);
	}
	free(h);
	free(stream);
	munmap(sh, shsz);
}

/* "get" "set" "90/10" "50/50" -> fraction of sets. */
static int parse_mix(const char *m, double *set_frac)
{
	if (strcmp(m, "get") == 0)
		*set_frac = 0;
	else if (strcmp(m, "set") == 0)
		*set_frac = 1;
	else {
		unsigned a, b;
		if (sscanf(m, "%u/%u", &a, &b) != 2 || a + b == 0)
			return -EINVAL;
		*set_frac = (double)b / (double)(a + b);
	}
	return 0;
}

static void split(char *s, char **out, unsigned *n, unsigned max)
{
	*n = 0;
	for (char *tok = strtok(s, ","); tok && *n < max;
	     tok = strtok(NULL, ","))
		out[(*n)++] = tok;
}

void cfg_defaults(struct cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->sys = SYS_SHMCACHE;
	cfg->sys_name = "shmcache";
	cfg->keys = 1000000;
	cfg->ksize = 16;
	cfg->vsize = 64;
	cfg->index_buckets = UINT64_MAX;
	cfg->pipeline = 16;
	cfg->sample = 8;
	cfg->seconds = 2;
	cfg->warmup = 0.3;
	cfg->seed = 42;
	static char name[64];
	snprintf(name, sizeof(name), "bench.%d", (int)getpid());
	cfg->cache_name = name;
}

/* Options shared by run and the scenarios; returns 1 if handled. */
int cfg_option(struct cfg *cfg, int opt, const char *arg)
{
	uint64_t v;
	switch (opt) {
	case 's':
		if (parse_sys(arg, cfg))
			die("unknown system %s", arg);
		return 1;
	case 'k':
		if (parse_size(arg, &v) || v == 0 || v >= (1ull << 31))
			die("bad --keys %s", arg);
		cfg->keys = v;
		return 1;
	case 'K':
		cfg->ksize = (unsigned)atoi(arg);
		if (cfg->ksize < 8 || cfg->ksize > BENCH_KEY_MAX)
			die("--key-size must be 8..%d", BENCH_KEY_MAX);
		return 1;
	case 'V':
		if (strcmp(arg, "mixed") == 0) {
			cfg->vsize = VSIZE_MIXED;
		} else {
			if (parse_size(arg, &v) || v < 1 || v > BENCH_VALUE_MAX / 2)
				die("bad --value-size %s", arg);
			cfg->vsize = (unsigned)v;
		}
		return 1;
	case 'S':
		cfg->seconds = atof(arg);
		if (cfg->seconds <= 0 || cfg->seconds > 3600)
			die("--seconds must be in (0, 3600]");
		return 1;
	case 'w':
		cfg->warm = true;
		return 1;
	case 'm':
		if (parse_size(arg, &cfg->memory))
			die("bad --memory %s", arg);
		return 1;
	case 'I':
		cfg->index_buckets = strtoull(arg, NULL, 0);
		return 1;
	case 'G':
		if (parse_size(arg, &v))
			die("bad --segment-size %s", arg);
		cfg->segment_size = (uint32_t)v;
		return 1;
	case 'n':
		cfg->cache_name = arg;
		return 1;
	case 'M':
		cfg->mc_socket = arg;
		return 1;
	case 'R':
		cfg->redis_socket = arg;
		return 1;
	case 'P':
		cfg->pipeline = (unsigned)atoi(arg);
		if (cfg->pipeline < 1)
			die("bad --pipeline");
		return 1;
	case 'a':
		cfg->sample = (unsigned)atoi(arg);
		if (cfg->sample < 1 || (cfg->sample & (cfg->sample - 1)))
			die("--sample must be a power of two");
		return 1;
	case 'e':
		cfg->seed = strtoull(arg, NULL, 0);
		return 1;
	case 'p':
		if (cfg->nserver_pids < 4)
			cfg->server_pids[cfg->nserver_pids++] = atoi(arg);
		return 1;
	case 'j':
		cfg->json_path = arg;
		return 1;
	case 'l':
		cfg->label = arg;
		return 1;
	case 'c':
		cfg->cpu_base = (unsigned)atoi(arg);
		return 1;
	case 'Y':
		cfg->pin_servers = true;
		return 1;
	case 'u':
		cfg->warmup = atof(arg);
		if (cfg->warmup < 0 || cfg->warmup > 60)
			die("--warmup must be in [0, 60]");
		return 1;
	}
	return 0;
}

const struct option cfg_long_options[] = {
    {"system", required_argument, 0, 's'},
    {"keys", required_argument, 0, 'k'},
    {"key-size", required_argument, 0, 'K'},
    {"value-size", required_argument, 0, 'V'},
    {"seconds", required_argument, 0, 'S'},
    {"warm", no_argument, 0, 'w'},
    {"memory", required_argument, 0, 'm'},
    {"index-buckets", required_argument, 0, 'I'},
    {"segment-size", required_argument, 0, 'G'},
    {"cache-name", required_argument, 0, 'n'},
    {"mc-socket", required_argument, 0, 'M'},
    {"redis-socket", required_argument, 0, 'R'},
    {"pipeline", required_argument, 0, 'P'},
    {"sample", required_argument, 0, 'a'},
    {"seed", required_argument, 0, 'e'},
    {"server-pid", required_argument, 0, 'p'},
    {"json", required_argument, 0, 'j'},
    {"label", required_argument, 0, 'l'},
    {"cpu-base", required_argument, 0, 'c'},
    {"warmup", required_argument, 0, 'u'},
    /* run only */
    {"dist", required_argument, 0, 'd'},
    {"mix", required_argument, 0, 'x'},
    {"procs", required_argument, 0, 'N'},
    {"theta", required_argument, 0, 't'},
    {"no-header", no_argument, 0, 'H'},
    {"spec", required_argument, 0, 'Z'},
    {"pin-servers", no_argument, 0, 'Y'},
    /* scenarios and replay */
    {"items", required_argument, 0, 'i'},
    {"ignore-size", no_argument, 0, 'g'},
    {"interval-ms", required_argument, 0, 'T'},
    {"scan-frac", required_argument, 0, 'F'},
    {"segments", required_argument, 0, 'X'},
    {"interval", required_argument, 0, 'v'},
    {0, 0, 0, 0},
};

static int cmd_run(int argc, char **argv)
{
	struct cfg cfg;
	cfg_defaults(&cfg);
	char dists[256] = "uniform", mixes[256] = "get", procs[64] = "1";
	double theta = 0.99;
	bool header = true;
	char specs[1024] = "";
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", cfg_long_options, NULL)) !=
	       -1) {
		if (cfg_option(&cfg, opt, optarg))
			continue;
		switch (opt) {
		case 'd':
			snprintf(dists, sizeof(dists), "%s", optarg);
			break;
		case 'x':
			snprintf(mixes, sizeof(mixes), "%s", optarg);
			break;
		case 'N':
			snprintf(procs, sizeof(procs), "%s", optarg);
			break;
		case 't':
			theta = atof(optarg);
			if (theta <= 0 || theta >= 1)
				die("--theta must be in (0, 1)");
			break;
		case 'H':
			header = false;
			break;
		case 'Z':
			snprintf(specs, sizeof(specs), "%s", optarg);
			break;
		default:
			die("run: unknown option (see the top of "
			    "bench/shmcache-bench.c)");
		}
	}
	char *dl[8], *ml[8], *pl[8];
	unsigned nd, nm, np;
	split(dists, dl, &nd, 8);
	split(mixes, ml, &nm, 8);
	split(procs, pl, &np, 8);
	for (unsigned i = 0; i < nd; i++)
		if (strcmp(dl[i], "uniform") && strcmp(dl[i], "zipf"))
			die("bad --dist %s", dl[i]);
	for (unsigned i = 0; i < np; i++)
		if (atoi(pl[i]) < 1 || atoi(pl[i]) > MAX_PROCS)
			die("bad --procs %s", pl[i]);

	bench_tsc_calibrate();
	int rc = sys_prepare(&cfg);
	if (rc)
		die("%s: prepare failed: %d", cfg.sys_name, rc);
	if (cfg.warm && !sys_is_private(&cfg)) {
		struct sys *s = sys_open(&cfg, &rc);
		if (!s)
			die("%s: open failed: %d (%s)", cfg.sys_name, rc,
			    shmc_strerror(rc));
		uint64_t t0 = bench_mono_ns();
		rc = sys_load(s, &cfg, 0, cfg.keys);
		if (rc)
			die("%s: load failed: %d", cfg.sys_name, rc);
		fprintf(stderr, "%s: loaded %llu keys in %.2f s\n",
		        cfg.sys_name, (unsigned long long)cfg.keys,
		        (double)(bench_mono_ns() - t0) / 1e9);
		sys_close(s);
	}
	if (header)
		print_header();
	if (specs[0]) {
		/* --spec MIX:DIST:PROCS,... in the order given. */
		char *sl[32];
		unsigned ns;
		split(specs, sl, &ns, 32);
		for (unsigned i = 0; i < ns; i++) {
			char mix[32], dist[16];
			unsigned np1;
			if (sscanf(sl[i], "%31[^:]:%15[^:]:%u", mix, dist, &np1) !=
			        3 ||
			    np1 < 1 || np1 > MAX_PROCS ||
			    (strcmp(dist, "zipf") && strcmp(dist, "uniform")))
				die("bad --spec %s (MIX:DIST:PROCS)", sl[i]);
			struct spec sp = {.theta = theta, .mix = mix,
			                  .procs = np1,
			                  .zipf = strcmp(dist, "zipf") == 0};
			if (parse_mix(mix, &sp.set_frac))
				die("bad mix in --spec %s", sl[i]);
			run_spec(&cfg, &sp);
		}
		nm = 0;
	}
	for (unsigned m = 0; m < nm; m++) {
		struct spec sp = {.theta = theta, .mix = ml[m]};
		if (parse_mix(ml[m], &sp.set_frac))
			die("bad --mix %s", ml[m]);
		for (unsigned d = 0; d < nd; d++) {
			sp.zipf = strcmp(dl[d], "zipf") == 0;
			for (unsigned p = 0; p < np; p++) {
				sp.procs = (unsigned)atoi(pl[p]);
				run_spec(&cfg, &sp);
			}
		}
	}
	char fin[512];
	sys_finish(&cfg, fin, sizeof(fin), true);
	if (fin[0])
		fprintf(stderr, "%s: cache at the end: {%s}\n", cfg.sys_name,
		        fin + 1);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: shmcache-bench run --system S [options]\n"
	        "       shmcache-bench replay TRACE (--memory SIZE | --items N)"
	        " [--ignore-size] [--interval N] [--json FILE]\n"
	        "       shmcache-bench sim TRACE --policy s3fifo|lru|belady"
	        " --objects N [--interval N] [--json FILE]\n"
	        "       shmcache-bench tracegen zipf|surge|scan [--objects N]"
	        " [--requests N] [--alpha A] [--seed S] -o FILE\n"
	        "       shmcache-bench che --objects N --alpha A --cache C\n"
	        "       shmcache-bench mrc-check TRACE... [--memory SIZE]"
	        " [--mrc-keys N] [--mrc-sample N] [--json FILE]\n"
	        "       shmcache-bench mrc-cost [--keys N] [--rounds R]"
	        " [--batch B] [--alpha A | --uniform] [--mrc-sample N]\n"
	        "       shmcache-bench flash-sale|scan [options]\n"
	        "       shmcache-bench stampede [--procs N] [--chart PNG]\n"
	        "       shmcache-bench resize-live [--procs 2] [--memory 256M]"
	        " [--chart PNG]\n"
#ifdef HAVE_REDIS_L1
	        "       shmcache-bench redis --redis-socket PATH [--procs N]"
	        " [--keys K] [--seconds S] [--json FILE]\n"
#endif
	        "       shmcache-bench selftest\n"
	        "       shmcache-bench chase [--mb N] [--steps N]\n"
	        "systems: shmcache shmcache-ref shmcache-mget inproc memcached "
	        "redis redis-pipe\n");
	exit(2);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "replay") == 0)
		return cmd_replay(argc - 1, argv + 1);
	if (strcmp(argv[1], "sim") == 0)
		return cmd_sim(argc - 1, argv + 1);
	if (strcmp(argv[1], "tracegen") == 0)
		return cmd_tracegen(argc - 1, argv + 1);
	if (strcmp(argv[1], "che") == 0)
		return cmd_che(argc - 1, argv + 1);
	if (strcmp(argv[1], "mrc-check") == 0)
		return cmd_mrc_check(argc - 1, argv + 1);
	if (strcmp(argv[1], "mrc-cost") == 0)
		return cmd_mrc_cost(argc - 1, argv + 1);
	if (strcmp(argv[1], "flash-sale") == 0 || strcmp(argv[1], "scan") == 0)
		return cmd_scenario(argv[1], argc - 1, argv + 1);
	if (strcmp(argv[1], "selftest") == 0)
		return cmd_selftest();
	if (strcmp(argv[1], "stampede") == 0)
		return cmd_stampede(argc - 1, argv + 1);
	if (strcmp(argv[1], "resize-live") == 0)
		return cmd_resize_live(argc - 1, argv + 1);
	if (strcmp(argv[1], "chase") == 0)
		return cmd_chase(argc - 1, argv + 1);
#ifdef HAVE_REDIS_L1
	if (strcmp(argv[1], "redis") == 0)
		return cmd_redis_l1(argc - 1, argv + 1);
#endif
	usage();
}
