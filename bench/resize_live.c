/*
 * resize_live.c - `shmcache-bench resize-live`: what a live resize costs the
 * processes that keep working through it (issue 3, "Benchmark").
 *
 * WHAT RUNS
 * A cache of --memory (default 256 MiB, reservation twice that) is loaded
 * with --factor (default 1.5) times its size of live data: 16-byte keys,
 * 64-byte values, about 3.9 million keys, so it is full and every set has
 * to evict.  --procs worker processes (default 2), pinned one per CPU as
 * `run` pins them, each open the cache themselves and run a 90/10 get/set
 * mix of Zipf(0.99) keys drawn before the clock starts (ranks scattered
 * over key ids as in `run`).  Every operation is timed with lfence;rdtsc
 * (timer cost subtracted) into the histogram of the current 100 ms
 * interval, gets and sets apart; the interval's operation counts go beside
 * it.  The parent, meanwhile:
 *
 *   --warmup 1 s   unreported: the workers fault in their page tables
 *   --steady 3 s   the steady state every interval is compared with
 *   grow           shmc_resize(memory * 2)
 *   --hold 3 s
 *   shrink         shmc_resize(memory)
 *   --hold 3 s     then the workers are told to stop
 *
 * WHAT IS REPORTED
 * Per interval: throughput as a percentage of the median of the steady
 * intervals, hit ratio, p99.9 of all operations (and of gets and of sets).
 * Then the summary: the lowest interval while growing and while
 * shrinking (an interval "is" growing when it overlaps the shmc_resize
 * call), the highest p99.9 of any reported interval, how long each resize
 * call took, and how long after the grow call began every worker saw the
 * new budget.
 *
 * VISIBILITY
 * A worker sees the budget through shmc_stats().memory.  shmc_stats sums
 * the counters of every reader slot (1024 by default: about 0.5 MiB of
 * shared memory per call), so a worker that polled it all the time would
 * measure its own polling.  Instead the parent publishes the target in
 * the shared area just before it calls shmc_resize, and only then do the
 * workers poll, once every --poll-ops (default 1024) operations, until
 * they see it.  The time reported is from the call's start to the end of
 * the first poll that saw the new budget, an upper bound; the poll period
 * (also reported) is its resolution.  Outside those few milliseconds the
 * workers never call shmc_stats.
 *
 * On a 2-CPU machine with 2 workers the resizing parent has no CPU of its
 * own: its fallocate and eviction time is taken from the workers.  Run
 * with --procs 1 to see the library's share alone.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmcache.h>

#include "bench.h"

#define RL_STREAM_BITS 23
#define RL_STREAM_LEN (1u << RL_STREAM_BITS)
#define RL_SET (1u << 31)
#define RL_MAX_PROCS 16
#define RL_SLACK_S 60 /* room for intervals beyond the planned timeline */

enum { RL_GROW = 0, RL_SHRINK = 1, RL_NRESIZE = 2 };

struct rl_opts {
	unsigned procs, ksize, vsize, ival_ms, poll_ops, cpu_base, set_pct;
	uint64_t memory, keys;
	double factor, theta, warmup, steady, hold;
	const char *chart, *json, *name;
};

/* One 100 ms interval of one worker. */
struct rl_ival {
	uint64_t gets, hits, sets, errors;
	struct hist hg, hs; /* get and set latency, TSC ticks */
};

/* Parent <-> workers, MAP_SHARED.  The interval arrays follow it. */
struct rl_shared {
	int ready, go, stop;
	uint64_t start_tsc;  /* interval 0 begins here */
	uint64_t ival_ticks;
	uint64_t nival;      /* intervals each worker has room for */
	/* The resize being watched: watch_seq is 0 (none) or RL_GROW + 1 /
	 * RL_SHRINK + 1, stored (release) after watch_target. */
	uint64_t watch_target;
	uint64_t watch_seq;
	uint64_t call_tsc[RL_NRESIZE], ret_tsc[RL_NRESIZE];
	int call_rc[RL_NRESIZE];
	struct {
		uint64_t seen_tsc[RL_NRESIZE]; /* end of the poll that saw it */
		uint64_t polls, poll_ticks;
		uint64_t done_ivals;           /* complete intervals */
		uint64_t errors;
		int failed;
		char err[120];
	} w[RL_MAX_PROCS];
};

static void rl_build_stream(const struct rl_opts *o, uint32_t *stream)
{
	struct rng r;
	rng_seed(&r, 0x7e512e);
	struct zipf z;
	struct perm p;
	zipf_init(&z, o->keys, o->theta);
	perm_init(&p, o->keys, 42);
	for (uint32_t i = 0; i < RL_STREAM_LEN; i++) {
		uint64_t id = perm_apply(&p, zipf_next(&z, &r));
		bool set = rng_below(&r, 100) < o->set_pct;
		stream[i] = (uint32_t)id | (set ? RL_SET : 0);
	}
}

/* Polls the budget once; notes when it first equals the watched target. */
static void rl_poll(shmc_t *c, struct rl_shared *sh, unsigned idx,
                    uint64_t seq)
{
	struct shmc_stats st;
	uint64_t p0 = bench_tsc();
	shmc_stats(c, &st);
	uint64_t p1 = bench_tsc();
	sh->w[idx].polls++;
	sh->w[idx].poll_ticks += p1 - p0;
	if (st.memory == __atomic_load_n(&sh->watch_target, __ATOMIC_RELAXED))
		sh->w[idx].seen_tsc[seq - 1] = p1;
}

static int rl_worker(const struct rl_opts *o, struct rl_shared *sh,
                     struct rl_ival *iv, unsigned idx, const uint32_t *stream)
{
	pin_to_cpu(o->cpu_base + idx);
	shmc_t *c = NULL;
	int rc = shmc_open(o->name, 0, &c);
	if (rc) {
		snprintf(sh->w[idx].err, sizeof(sh->w[idx].err), "open: %s",
		         shmc_strerror(rc));
		sh->w[idx].failed = 1;
		__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
		return 1;
	}
	/* Fault in our own result area before the clock starts. */
	memset(iv, 0, sh->nival * sizeof(*iv));
	char key[BENCH_KEY_MAX + 1], val[BENCH_VALUE_MAX / 64],
	    buf[BENCH_VALUE_MAX / 64];
	key_prefix(key, o->ksize);
	memset(val, 'v', sizeof(val));
	const unsigned ksize = o->ksize, vsize = o->vsize;
	const uint64_t ovh = bench_tsc_overhead, pmask = o->poll_ops - 1;
	uint64_t pos = (uint64_t)idx * (RL_STREAM_LEN / o->procs), ops = 0;
	uint64_t seen_seq = 0, errors = 0;

	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	uint64_t give_up = bench_mono_ns() + 600000000000ull;
	while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE)) {
		if (bench_mono_ns() > give_up)
			_exit(3);
		sched_yield();
	}
	const uint64_t step = sh->ival_ticks, nival = sh->nival;
	uint64_t cur = 0, end = sh->start_tsc + step;
	while (bench_tsc() < sh->start_tsc)
		;
	struct rl_ival *w = &iv[0];
	for (;;) {
		uint32_t x = stream[pos++ & (RL_STREAM_LEN - 1)];
		uint64_t id = x & ~RL_SET;
		key_make(key, ksize, id);
		uint64_t t0 = bench_tsc();
		if (x & RL_SET) {
			rc = shmc_set(c, key, ksize, val, vsize, SHMC_TTL_NONE,
			              0);
		} else {
			size_t n = sizeof(buf);
			rc = shmc_get(c, key, ksize, buf, &n, NULL);
		}
		uint64_t t1 = bench_tsc(), t = t1 - t0;
		t = t > ovh ? t - ovh : 0;
		/* The operation belongs to the interval it ended in. */
		if (t1 >= end) {
			bool stop = __atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE);
			while (t1 >= end && cur + 1 < nival) {
				cur++;
				end += step;
			}
			if (stop || cur + 1 >= nival)
				break; /* this operation is left uncounted */
			w = &iv[cur];
		}
		if (x & RL_SET) {
			w->sets++;
			hist_add(&w->hs, t);
		} else {
			w->gets++;
			w->hits += rc == 0;
			hist_add(&w->hg, t);
		}
		if (rc < 0 && rc != SHMC_ENOTFOUND) {
			w->errors++;
			if (errors++ == 0)
				snprintf(sh->w[idx].err, sizeof(sh->w[idx].err),
				         "first error: %s on %s",
				         shmc_err_name(rc),
				         (x & RL_SET) ? "set" : "get");
		}
		if ((++ops & pmask) == 0) {
			uint64_t s = __atomic_load_n(&sh->watch_seq,
			                             __ATOMIC_ACQUIRE);
			if (s != seen_seq) {
				rl_poll(c, sh, idx, s);
				if (sh->w[idx].seen_tsc[s - 1])
					seen_seq = s;
			}
		}
	}
	sh->w[idx].done_ivals = cur;
	sh->w[idx].errors = errors;
	shmc_close(c);
	return 0;
}

static void rl_sleep_until(uint64_t tsc)
{
	for (;;) {
		uint64_t now = bench_tsc();
		if (now >= tsc)
			return;
		uint64_t ns = bench_ticks_to_ns(tsc - now);
		struct timespec ts = {(time_t)(ns / 1000000000u),
		                      (long)(ns % 1000000000u)};
		nanosleep(&ts, NULL);
	}
}

static int by_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

enum rl_phase { PH_WARM, PH_STEADY, PH_GROW, PH_GROWN, PH_SHRINK, PH_AFTER };
static const char *const rl_phase_name[] = {"warm", "steady", "GROW",
                                            "grown", "SHRINK", "after"};

/* Per-interval results, all workers added up. */
struct rl_row {
	enum rl_phase ph;
	double t_s, mops, pct, hit;
	double p999_us, p999_get_us, p999_set_us;
	uint64_t gets, sets, errors;
};

static enum rl_phase rl_phase_of(const struct rl_shared *sh, double warm_s,
                                 uint64_t s, uint64_t e)
{
	const uint64_t *c = sh->call_tsc, *r = sh->ret_tsc;
	if (e <= sh->start_tsc + (uint64_t)(warm_s * 1e9 * bench_tsc_per_ns))
		return PH_WARM;
	if (s < r[RL_SHRINK] && e > c[RL_SHRINK])
		return PH_SHRINK;
	if (s < r[RL_GROW] && e > c[RL_GROW])
		return PH_GROW;
	if (e <= c[RL_GROW])
		return PH_STEADY;
	if (e <= c[RL_SHRINK])
		return PH_GROWN;
	return PH_AFTER;
}

static void rl_chart(const char *png, const struct rl_row *rows, uint64_t n,
                     const struct rl_shared *sh, double ival_s)
{
	char dat[] = "/tmp/shmcache-resize-live.XXXXXX";
	int fd = mkstemp(dat);
	if (fd < 0)
		return;
	FILE *f = fdopen(fd, "w");
	double x0 = -1, x1 = 0;
	for (uint64_t i = 0; i < n; i++)
		if (rows[i].ph != PH_WARM) {
			if (x0 < 0)
				x0 = rows[i].t_s;
			x1 = rows[i].t_s + ival_s;
			fprintf(f, "%.2f %.2f %.3f %.3f %.3f\n",
			        rows[i].t_s + ival_s / 2, rows[i].pct,
			        rows[i].p999_us, rows[i].p999_get_us,
			        rows[i].p999_set_us);
		}
	fclose(f);
	double x[RL_NRESIZE][2];
	for (int k = 0; k < RL_NRESIZE; k++) {
		x[k][0] = (double)(sh->call_tsc[k] - sh->start_tsc) /
		          bench_tsc_per_ns / 1e9;
		x[k][1] = (double)(sh->ret_tsc[k] - sh->start_tsc) /
		          bench_tsc_per_ns / 1e9;
		if (x[k][1] - x[k][0] < 0.02) /* keep a short call visible */
			x[k][1] = x[k][0] + 0.02;
	}
	char gp[] = "/tmp/shmcache-resize-live-gp.XXXXXX";
	fd = mkstemp(gp);
	if (fd < 0) {
		unlink(dat);
		return;
	}
	f = fdopen(fd, "w");
	fprintf(f,
	        "set terminal png size 1000,640\nset output '%s'\n"
	        "set multiplot layout 2,1\nset grid\n"
	        "set lmargin 10\nset rmargin 3\nset xrange [%.2f:%.2f]\n"
	        "set object 1 rect from %.3f,graph 0 to %.3f,graph 1 "
	        "fc rgb '#c8e6c9' fs solid 0.8 noborder behind\n"
	        "set object 2 rect from %.3f,graph 0 to %.3f,graph 1 "
	        "fc rgb '#ffcdd2' fs solid 0.8 noborder behind\n"
	        "set label 1 'grow x2' at %.3f,graph 0.08 front\n"
	        "set label 2 'shrink /2' at %.3f,graph 0.08 front\n"
	        "set title 'shmcache live resize: throughput per 100 ms, %% of "
	        "steady-state median'\n"
	        "set ylabel '%% of steady'\nset yrange [0:*]\n"
	        "set key bottom right\n"
	        "plot '%s' using 1:2 with linespoints pt 7 ps 0.5 "
	        "title 'throughput', 90 with lines dt 2 lc rgb 'red' "
	        "title '90%% aim'\n"
	        "set title 'p99.9 latency per 100 ms (us, log scale)'\n"
	        "set ylabel 'us'\nset xlabel 'seconds'\nset logscale y\n"
	        "set yrange [*:*]\nset key top right\n"
	        "plot '%s' using 1:3 with linespoints pt 7 ps 0.5 "
	        "title 'all ops', '%s' using 1:4 with lines title 'gets', "
	        "'%s' using 1:5 with lines title 'sets', 20 with lines dt 2 "
	        "lc rgb 'red' title '20 us aim'\n"
	        "unset multiplot\n",
	        png, x0, x1, x[0][0], x[0][1], x[1][0], x[1][1],
	        x[0][1] + 0.05,
	        x[1][1] + 0.05, dat, dat, dat, dat);
	fclose(f);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "gnuplot %s 2>&1", gp);
	if (system(cmd) != 0)
		fprintf(stderr, "resize-live: gnuplot failed; no chart\n");
	unlink(gp);
	unlink(dat);
}

static void rl_usage(void)
{
	fprintf(stderr,
	        "usage: shmcache-bench resize-live [--procs 2] [--memory 256M]\n"
	        "         [--factor 1.5 | --keys N] [--key-size 16] "
	        "[--value-size 64]\n"
	        "         [--theta 0.99] [--sets 10] [--interval-ms 100] "
	        "[--warmup 1]\n"
	        "         [--steady 3] [--hold 3] [--poll-ops 1024] "
	        "[--cpu-base 0]\n"
	        "         [--cache-name NAME] [--chart PNG] [--json FILE]\n");
	exit(2);
}

static void rl_options(int argc, char **argv, struct rl_opts *o)
{
	static const struct option lo[] = {
	    {"procs", required_argument, 0, 'p'},
	    {"memory", required_argument, 0, 'm'},
	    {"factor", required_argument, 0, 'f'},
	    {"keys", required_argument, 0, 'k'},
	    {"key-size", required_argument, 0, 'K'},
	    {"value-size", required_argument, 0, 'V'},
	    {"theta", required_argument, 0, 't'},
	    {"sets", required_argument, 0, 'x'},
	    {"interval-ms", required_argument, 0, 'i'},
	    {"warmup", required_argument, 0, 'u'},
	    {"steady", required_argument, 0, 's'},
	    {"hold", required_argument, 0, 'h'},
	    {"poll-ops", required_argument, 0, 'P'},
	    {"cpu-base", required_argument, 0, 'c'},
	    {"cache-name", required_argument, 0, 'n'},
	    {"chart", required_argument, 0, 'C'},
	    {"json", required_argument, 0, 'j'},
	    {0, 0, 0, 0}};
	int ch;
	uint64_t v;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'p': o->procs = (unsigned)atoi(optarg); break;
		case 'm':
			if (parse_size(optarg, &o->memory))
				die("bad --memory %s", optarg);
			break;
		case 'f': o->factor = atof(optarg); break;
		case 'k':
			if (parse_size(optarg, &o->keys))
				die("bad --keys %s", optarg);
			break;
		case 'K': o->ksize = (unsigned)atoi(optarg); break;
		case 'V':
			if (parse_size(optarg, &v) || v > BENCH_VALUE_MAX / 64)
				die("bad --value-size %s", optarg);
			o->vsize = (unsigned)v;
			break;
		case 't': o->theta = atof(optarg); break;
		case 'x': o->set_pct = (unsigned)atoi(optarg); break;
		case 'i': o->ival_ms = (unsigned)atoi(optarg); break;
		case 'u': o->warmup = atof(optarg); break;
		case 's': o->steady = atof(optarg); break;
		case 'h': o->hold = atof(optarg); break;
		case 'P': o->poll_ops = (unsigned)atoi(optarg); break;
		case 'c': o->cpu_base = (unsigned)atoi(optarg); break;
		case 'n': o->name = optarg; break;
		case 'C': o->chart = optarg; break;
		case 'j': o->json = optarg; break;
		default: rl_usage();
		}
	}
	if (optind != argc || o->procs < 1 || o->procs > RL_MAX_PROCS ||
	    o->ksize < 8 || o->ksize > BENCH_KEY_MAX || o->vsize < 1 ||
	    o->theta <= 0 || o->theta >= 1 || o->set_pct > 100 ||
	    o->ival_ms < 1 || o->warmup < 0 || o->steady < 0.5 ||
	    o->hold < 0.1 || o->warmup + o->steady + 2 * o->hold > 600 ||
	    o->poll_ops < 1 || (o->poll_ops & (o->poll_ops - 1)) ||
	    o->memory < (8ull << 20) || (o->keys == 0 && o->factor <= 0))
		rl_usage();
	if (o->keys == 0) {
		uint64_t item = (SHMC_ITEM_OVERHEAD + o->ksize + o->vsize + 7) &
		                ~7u;
		o->keys = (uint64_t)(o->factor * (double)o->memory /
		                     (double)item);
	}
	if (o->keys < 1 || o->keys >= (1ull << 31))
		die("resize-live: %llu keys: out of range",
		    (unsigned long long)o->keys);
}

int cmd_resize_live(int argc, char **argv)
{
	struct rl_opts o = {.procs = 2, .ksize = 16, .vsize = 64, .ival_ms = 100,
	                    .poll_ops = 1024, .set_pct = 10,
	                    .memory = 256ull << 20, .factor = 1.5,
	                    .theta = 0.99, .warmup = 1, .steady = 3, .hold = 3};
	static char name[64];
	snprintf(name, sizeof(name), "bench-resize.%d", (int)getpid());
	o.name = name;
	rl_options(argc, argv, &o);
	const uint64_t big = 2 * o.memory;
	bench_tsc_calibrate();

	/* ---- the cache, loaded ---- */
	shmc_destroy(o.name);
	struct shmc_create_opts co;
	shmc_create_opts_init(&co);
	co.memory = o.memory;
	co.max_memory = big;
	shmc_t *c = NULL;
	int rc = shmc_create(o.name, &co, &c);
	if (rc)
		die("resize-live: create %s: %s", o.name, shmc_strerror(rc));
	char key[BENCH_KEY_MAX + 1], val[BENCH_VALUE_MAX / 64];
	key_prefix(key, o.ksize);
	memset(val, 'v', sizeof(val));
	uint64_t t0 = bench_mono_ns(), load_err = 0;
	for (uint64_t id = 0; id < o.keys; id++) {
		key_make(key, o.ksize, id);
		if (shmc_set(c, key, o.ksize, val, o.vsize, SHMC_TTL_NONE, 0))
			load_err++;
	}
	double load_s = (double)(bench_mono_ns() - t0) / 1e9;
	/* What one poll of the budget costs (shmc_stats), median of 101. */
	double stats_ns[101];
	for (int i = 0; i < 101; i++) {
		struct shmc_stats st;
		uint64_t a = bench_tsc();
		shmc_stats(c, &st);
		stats_ns[i] = (double)bench_ticks_to_ns(bench_tsc() - a);
	}
	qsort(stats_ns, 101, sizeof(double), by_double);
	struct shmc_stats st0;
	shmc_stats(c, &st0);
	fprintf(stderr,
	        "resize-live: %llu keys of %u/%u loaded in %.1f s (%llu "
	        "failed); %llu items, %llu evictions; shmc_stats %.1f us\n",
	        (unsigned long long)o.keys, o.ksize, o.vsize, load_s,
	        (unsigned long long)load_err, (unsigned long long)st0.items,
	        (unsigned long long)st0.evictions, stats_ns[50] / 1e3);

	uint32_t *stream = malloc(sizeof(uint32_t) * RL_STREAM_LEN);
	if (!stream)
		die("out of memory");
	rl_build_stream(&o, stream);

	/* ---- shared area and workers ---- */
	double ival_s = o.ival_ms / 1e3;
	uint64_t nival = (uint64_t)((o.warmup + o.steady + 2 * o.hold +
	                             RL_SLACK_S) / ival_s) + 2;
	size_t shsz = sizeof(struct rl_shared) +
	              (size_t)o.procs * nival * sizeof(struct rl_ival);
	struct rl_shared *sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE,
	                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap %zu: %s", shsz, strerror(errno));
	sh->nival = nival;
	struct rl_ival *ivals = (struct rl_ival *)(sh + 1);
	pid_t pids[RL_MAX_PROCS];
	fflush(NULL);
	for (unsigned i = 0; i < o.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork: %s", strerror(errno));
		if (pids[i] == 0)
			_exit(rl_worker(&o, sh, ivals + (size_t)i * nival, i,
			                stream));
	}
	while (__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) < (int)o.procs)
		usleep(1000);
	sh->ival_ticks = (uint64_t)(ival_s * 1e9 * bench_tsc_per_ns);
	sh->start_tsc = bench_tsc() + (uint64_t)(10e6 * bench_tsc_per_ns);
	__atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);

	/* ---- the parent's timeline ---- */
	const uint64_t s_ticks = (uint64_t)(1e9 * bench_tsc_per_ns);
	uint64_t when = sh->start_tsc + (uint64_t)((o.warmup + o.steady) *
	                                           (double)s_ticks);
	const uint64_t target[RL_NRESIZE] = {big, o.memory};
	for (int k = 0; k < RL_NRESIZE; k++) {
		rl_sleep_until(when);
		__atomic_store_n(&sh->watch_target, target[k], __ATOMIC_RELAXED);
		__atomic_store_n(&sh->watch_seq, (uint64_t)k + 1,
		                 __ATOMIC_RELEASE);
		sh->call_tsc[k] = bench_tsc();
		sh->call_rc[k] = shmc_resize(c, target[k], 0, NULL, NULL);
		sh->ret_tsc[k] = bench_tsc();
		when = sh->ret_tsc[k] + (uint64_t)(o.hold * (double)s_ticks);
	}
	rl_sleep_until(when);
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	int bad = 0;
	for (unsigned i = 0; i < o.procs; i++) {
		int st;
		while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || sh->w[i].failed) {
			fprintf(stderr, "resize-live: worker %u failed (%d): %s\n",
			        i, st, sh->w[i].err);
			bad = 1;
		} else if (sh->w[i].err[0]) {
			fprintf(stderr, "resize-live: worker %u: %s\n", i,
			        sh->w[i].err);
		}
	}
	struct shmc_stats st1;
	shmc_stats(c, &st1);
	shmc_close(c);
	shmc_destroy(o.name);
	free(stream);
	if (bad) {
		munmap(sh, shsz);
		return 1;
	}

	/* ---- per interval ---- */
	uint64_t n = nival;
	for (unsigned i = 0; i < o.procs; i++)
		if (sh->w[i].done_ivals < n)
			n = sh->w[i].done_ivals;
	struct rl_row *rows = calloc(n ? n : 1, sizeof(*rows));
	struct hist *hg = malloc(sizeof(*hg)), *hs = malloc(sizeof(*hs)),
	            *ha = malloc(sizeof(*ha));
	double *steady = calloc(n ? n : 1, sizeof(double));
	if (!rows || !hg || !hs || !ha || !steady)
		die("out of memory");
	unsigned nsteady = 0;
	uint64_t errors = 0;
	for (uint64_t k = 0; k < n; k++) {
		memset(hg, 0, sizeof(*hg));
		memset(hs, 0, sizeof(*hs));
		struct rl_row *r = &rows[k];
		uint64_t hits = 0;
		for (unsigned i = 0; i < o.procs; i++) {
			const struct rl_ival *v = ivals + (size_t)i * nival + k;
			hist_merge(hg, &v->hg);
			hist_merge(hs, &v->hs);
			r->gets += v->gets;
			r->sets += v->sets;
			r->errors += v->errors;
			hits += v->hits;
		}
		*ha = *hg;
		hist_merge(ha, hs);
		uint64_t s = sh->start_tsc + k * sh->ival_ticks;
		r->ph = rl_phase_of(sh, o.warmup, s, s + sh->ival_ticks);
		r->t_s = (double)k * ival_s;
		r->mops = (double)(r->gets + r->sets) / ival_s / 1e6;
		r->hit = r->gets ? 100.0 * (double)hits / (double)r->gets : 0;
		r->p999_us = (double)bench_ticks_to_ns(hist_quantile(ha, 0.999)) /
		             1e3;
		r->p999_get_us =
		    (double)bench_ticks_to_ns(hist_quantile(hg, 0.999)) / 1e3;
		r->p999_set_us =
		    (double)bench_ticks_to_ns(hist_quantile(hs, 0.999)) / 1e3;
		if (r->ph == PH_STEADY)
			steady[nsteady++] = r->mops;
		if (r->ph != PH_WARM)
			errors += r->errors;
	}
	if (!nsteady)
		die("resize-live: no steady interval (--steady too short?)");
	qsort(steady, nsteady, sizeof(double), by_double);
	double base = steady[nsteady / 2];
	double min_pct[PH_AFTER + 1], max_p999 = 0, max_p999_get = 0,
	                              max_p999_set = 0;
	const char *max_p999_ph = "-";
	for (int p = 0; p <= PH_AFTER; p++)
		min_pct[p] = -1;
	printf("resize-live: %u procs, %llu keys %u/%u Zipf(%.2f) %u%% sets, "
	       "cache %llu MiB -> %llu -> %llu, %u ms intervals\n",
	       o.procs, (unsigned long long)o.keys, o.ksize, o.vsize, o.theta,
	       o.set_pct, (unsigned long long)(o.memory >> 20),
	       (unsigned long long)(big >> 20),
	       (unsigned long long)(o.memory >> 20), o.ival_ms);
	printf("%6s %-7s %8s %8s %6s %9s %9s %9s\n", "t s", "phase", "Mops/s",
	       "%steady", "hit%", "p99.9 us", "get us", "set us");
	for (uint64_t k = 0; k < n; k++) {
		struct rl_row *r = &rows[k];
		r->pct = 100.0 * r->mops / base;
		if (r->ph == PH_WARM)
			continue;
		if (min_pct[r->ph] < 0 || r->pct < min_pct[r->ph])
			min_pct[r->ph] = r->pct;
		if (r->p999_us > max_p999) {
			max_p999 = r->p999_us;
			max_p999_ph = rl_phase_name[r->ph];
		}
		if (r->p999_get_us > max_p999_get)
			max_p999_get = r->p999_get_us;
		if (r->p999_set_us > max_p999_set)
			max_p999_set = r->p999_set_us;
		printf("%6.1f %-7s %8.3f %8.1f %6.2f %9.2f %9.2f %9.2f\n",
		       r->t_s, rl_phase_name[r->ph], r->mops, r->pct, r->hit,
		       r->p999_us, r->p999_get_us, r->p999_set_us);
	}

	/* ---- the summary ---- */
	double vis_ms[RL_NRESIZE], call_ms[RL_NRESIZE], poll_us = 0;
	uint64_t polls = 0, poll_ticks = 0, seen_all[RL_NRESIZE] = {1, 1};
	for (int k = 0; k < RL_NRESIZE; k++) {
		vis_ms[k] = 0;
		call_ms[k] = (double)(sh->ret_tsc[k] - sh->call_tsc[k]) /
		             bench_tsc_per_ns / 1e6;
		for (unsigned i = 0; i < o.procs; i++) {
			uint64_t t = sh->w[i].seen_tsc[k];
			if (!t) {
				seen_all[k] = 0;
				continue;
			}
			double ms = t > sh->call_tsc[k]
			                ? (double)(t - sh->call_tsc[k]) /
			                      bench_tsc_per_ns / 1e6
			                : 0;
			if (ms > vis_ms[k])
				vis_ms[k] = ms;
		}
	}
	for (unsigned i = 0; i < o.procs; i++) {
		polls += sh->w[i].polls;
		poll_ticks += sh->w[i].poll_ticks;
	}
	if (polls)
		poll_us = (double)poll_ticks / bench_tsc_per_ns / 1e3 /
		          (double)polls;
	/* Resolution of the visibility time: one poll period. */
	double period_us = base > 0 ? (double)o.poll_ops * o.procs /
	                                  (base * 1e6) * 1e6
	                            : 0;
	printf("steady: %.3f M ops/s (median of %u intervals)\n", base,
	       nsteady);
	printf("grow   x2: call %8.1f ms (rc %s), lowest interval %5.1f%% of "
	       "steady, seen by all workers %s %.3f ms after the call began\n",
	       call_ms[RL_GROW], shmc_err_name(sh->call_rc[RL_GROW]),
	       min_pct[PH_GROW], seen_all[RL_GROW] ? "" : "(NOT all)",
	       vis_ms[RL_GROW]);
	printf("shrink /2: call %8.1f ms (rc %s), lowest interval %5.1f%% of "
	       "steady, seen by all workers %s %.3f ms after the call began\n",
	       call_ms[RL_SHRINK], shmc_err_name(sh->call_rc[RL_SHRINK]),
	       min_pct[PH_SHRINK], seen_all[RL_SHRINK] ? "" : "(NOT all)",
	       vis_ms[RL_SHRINK]);
	printf("holds: lowest %.1f%% after growing, %.1f%% after shrinking\n",
	       min_pct[PH_GROWN], min_pct[PH_AFTER]);
	printf("p99.9: max %.2f us (%s; gets %.2f, sets %.2f); errors %llu; "
	       "budget polls %llu of %.1f us, one every ~%.0f us per worker\n",
	       max_p999, max_p999_ph, max_p999_get, max_p999_set,
	       (unsigned long long)errors, (unsigned long long)polls, poll_us,
	       period_us);
	printf("cache after: memory %llu MiB, committed %llu MiB, %llu items, "
	       "%llu evictions\n",
	       (unsigned long long)(st1.memory >> 20),
	       (unsigned long long)(st1.committed_bytes >> 20),
	       (unsigned long long)st1.items,
	       (unsigned long long)st1.evictions);

	char js[1024];
	snprintf(js, sizeof(js),
	         "{\"bench\":\"resize-live\",\"procs\":%u,\"keys\":%llu,"
	         "\"key_size\":%u,\"value_size\":%u,\"theta\":%.2f,"
	         "\"set_pct\":%u,\"memory\":%llu,\"grown\":%llu,"
	         "\"interval_ms\":%u,\"steady_ops_per_sec\":%.0f,"
	         "\"grow_min_pct\":%.1f,\"shrink_min_pct\":%.1f,"
	         "\"grown_min_pct\":%.1f,\"after_min_pct\":%.1f,"
	         "\"max_p999_us\":%.2f,\"max_p999_phase\":\"%s\","
	         "\"max_p999_get_us\":%.2f,\"max_p999_set_us\":%.2f,"
	         "\"grow_visible_ms\":%.3f,\"shrink_visible_ms\":%.3f,"
	         "\"grow_seen_by_all\":%s,\"grow_call_ms\":%.1f,"
	         "\"shrink_call_ms\":%.1f,\"grow_rc\":%d,\"shrink_rc\":%d,"
	         "\"errors\":%llu,\"poll_us\":%.1f,\"poll_period_us\":%.0f,"
	         "\"stats_us\":%.1f}",
	         o.procs, (unsigned long long)o.keys, o.ksize, o.vsize, o.theta,
	         o.set_pct, (unsigned long long)o.memory,
	         (unsigned long long)big, o.ival_ms, base * 1e6,
	         min_pct[PH_GROW], min_pct[PH_SHRINK], min_pct[PH_GROWN],
	         min_pct[PH_AFTER], max_p999, max_p999_ph, max_p999_get,
	         max_p999_set, vis_ms[RL_GROW], vis_ms[RL_SHRINK],
	         seen_all[RL_GROW] ? "true" : "false", call_ms[RL_GROW],
	         call_ms[RL_SHRINK], sh->call_rc[RL_GROW],
	         sh->call_rc[RL_SHRINK], (unsigned long long)errors, poll_us,
	         period_us, stats_ns[50] / 1e3);
	printf("%s\n", js);
	if (o.json) {
		FILE *f = fopen(o.json, "a");
		if (!f)
			die("%s: %s", o.json, strerror(errno));
		fprintf(f, "%s\n", js);
		fclose(f);
	}
	if (o.chart)
		rl_chart(o.chart, rows, n, sh, ival_s);
	free(rows);
	free(hg);
	free(hs);
	free(ha);
	free(steady);
	munmap(sh, shsz);
	return 0;
}
