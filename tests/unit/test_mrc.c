/*
 * test_mrc.c - the miss-ratio curve (lib/mrc.c).
 *
 * Proves: sampling every key (rate 1) gives exactly the LRU curve that a
 * direct reuse-distance computation in bytes gives on a small synthetic
 * trace, at every histogram bucket boundary; the fixed-size sampler
 * (64 keys, the rate falling by itself) stays near it; fork()ed processes
 * all contribute to one curve; a process SIGKILLed while holding the
 * sampler's lock does not stop sampling; a corrupt region makes shmc_mrc
 * return SHMC_ECORRUPT and shmc_check report it, never a crash, and
 * shmc_mrc_reset brings it back; shmc_mrc_pause stops sampling (the
 * threshold 0) and keeps the curve as it was, and resuming samples again;
 * a cache without a curve says -ENOTSUP.  No timing.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "uhelp.h"
#include "../../lib/internal.h"

/* The synthetic trace: NK keys of fixed sizes, a skewed choice. */
#define NK 600
#define NOPS 20000

static size_t key_of(char *k, uint32_t i)
{
	return (size_t)snprintf(k, 32, "mrc-key-%u", i);
}

static size_t vlen_of(uint32_t i)
{
	return 10 + (i % 50) * 7;
}

static uint32_t pick(uint64_t *st)
{
	/* Two thirds of the ops on a fifth of the keys. */
	uint64_t r = th_rand(st);
	return (r % 3) ? (uint32_t)((r >> 8) % (NK / 5))
	               : (uint32_t)((r >> 8) % NK);
}

/* Runs the trace: get, and set on a miss.  With dist != NULL also the
 * exact LRU reuse distance in bytes of every get (UINT64_MAX = cold):
 * the item bytes of the other keys touched since, plus its own. */
static uint64_t run_trace(shmc_t *c, uint64_t *dist)
{
	static uint64_t last[NK], size[NK];
	memset(last, 0, sizeof(last));
	memset(size, 0, sizeof(size));
	uint64_t st = 42, now = 0, gets = 0;
	char k[32], v[512], b[512];
	memset(v, 'x', sizeof(v));
	for (int n = 0; n < NOPS; n++) {
		uint32_t i = pick(&st);
		size_t kl = key_of(k, i), vl = sizeof(b);
		int rc = shmc_get(c, k, kl, b, &vl, NULL);
		if (dist) {
			uint64_t d = UINT64_MAX;
			if (last[i]) {
				d = size[i];
				for (uint32_t j = 0; j < NK; j++)
					if (last[j] > last[i])
						d += size[j];
			}
			dist[gets] = d;
			last[i] = ++now;
		}
		gets++;
		if (rc == SHMC_ENOTFOUND) {
			assert_int_equal(shmc_set(c, k, kl, v, vlen_of(i), 0, 0),
			                 0);
			if (dist) {
				size[i] = shmc__item_size(kl, vlen_of(i));
				last[i] = ++now;
			}
		} else {
			assert_int_equal(rc, 0);
		}
	}
	return gets;
}

/* The predicted hit ratio for `bytes` of items. */
static double predict(shmc_t *c, uint64_t bytes, struct shmc_mrc_info *in)
{
	struct shmc_mrc_info info;
	struct shmc_mrc_point p = {0, bytes, 0};
	assert_int_equal(shmc_mrc(c, &p, 1, in ? in : &info), 0);
	assert_int_equal(p.bytes, bytes);
	/* A budget maps to fewer item bytes than itself. */
	struct shmc_mrc_point q = {bytes + 1, 0, 0};
	assert_int_equal(shmc_mrc(c, &q, 1, NULL), 0);
	assert_true(q.bytes < bytes + 1);
	return p.hit_ratio;
}

static double exact(const uint64_t *dist, uint64_t n, uint64_t bytes)
{
	uint64_t hits = 0;
	for (uint64_t i = 0; i < n; i++)
		hits += dist[i] < bytes;
	return (double)hits / (double)n;
}

/* The trace through c, the exact distances (freed by the caller), and
 * what the curve says about itself. */
static uint64_t *traced(shmc_t *c, uint64_t *n, struct shmc_mrc_info *info)
{
	uint64_t *dist = calloc(NOPS, sizeof(*dist));
	assert_non_null(dist);
	*n = run_trace(c, dist);
	predict(c, 0, info);
	return dist;
}

static void test_exact_at_rate_one(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrc-exact", 4096, 1);
	uint64_t n;
	struct shmc_mrc_info info;
	uint64_t *dist = traced(c, &n, &info);
	assert_int_equal(info.gets, n);
	uint64_t cold = 0;
	for (uint64_t i = 0; i < n; i++)
		cold += dist[i] == UINT64_MAX;
	assert_int_equal(info.cold, cold);
	assert_int_equal(info.skipped, 0);
	assert_true(info.rate > 0.999);
	/* At every bucket boundary from 1 KiB to 1 MiB the histogram holds
	 * the exact count of distances below it. */
	int points = 0;
	for (unsigned e = 10; e < 20; e++)
		for (unsigned s = 0; s < 16; s++) {
			uint64_t C = (uint64_t)(16 + s) << (e - 4);
			double p = predict(c, C, NULL), x = exact(dist, n, C);
			if (p < x - 1e-9 || p > x + 1e-9)
				fail_msg("at %llu bytes: predicted %.6f, exact %.6f",
				         (unsigned long long)C, p, x);
			points++;
		}
	assert_int_equal(points, 160);
	/* The trace's curve is not trivial: it climbs from nothing. */
	assert_true(exact(dist, n, 4096) < 0.3);
	assert_true(exact(dist, n, 1 << 18) > 0.9);
	uh_check_clean(c);
	free(dist);
	shmc_close(c);
}

static void test_fixed_size_close(void **state)
{
	(void)state;
	/* Room for 64 keys of 600: the rate must fall to about a tenth. */
	shmc_t *c = uh_create_mrc("mrc-fixed", 64, 1);
	uint64_t n;
	struct shmc_mrc_info info;
	uint64_t *dist = traced(c, &n, &info);
	assert_true(info.rate < 0.2);
	assert_true(info.keys <= 64);
	double worst = 0;
	for (uint64_t C = 8 << 10; C <= (256 << 10); C += 8 << 10) {
		double d = predict(c, C, NULL) - exact(dist, n, C);
		if (d < 0)
			d = -d;
		if (d > worst)
			worst = d;
	}
	print_message("fixed-size (64 keys, rate %.3f): worst error %.3f\n",
	              info.rate, worst);
	/* A sample of ~60 keys is coarse; bench/ measures the real sizes. */
	assert_true(worst < 0.15);
	uh_check_clean(c);
	free(dist);
	shmc_close(c);
}

static void test_processes_contribute(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrc-mp", 4096, 1);
	enum { NP = 4, PER = 200, ROUNDS = 10 };
	pid_t pid[NP];
	for (int p = 0; p < NP; p++) {
		pid[p] = fork();
		assert_true(pid[p] >= 0);
		if (pid[p] == 0) {
			char k[32], v[100] = {0}, b[100];
			for (int r = 0; r < ROUNDS; r++)
				for (int i = 0; i < PER; i++) {
					size_t kl = (size_t)snprintf(
					    k, sizeof(k), "p%d-%d", p, i);
					size_t vl = sizeof(b);
					if (shmc_get(c, k, kl, b, &vl, NULL) ==
					    SHMC_ENOTFOUND)
						shmc_set(c, k, kl, v, sizeof(v),
						         0, 0);
				}
			_exit(0);
		}
	}
	for (int p = 0; p < NP; p++) {
		int ws;
		assert_int_equal(waitpid(pid[p], &ws, 0), pid[p]);
		assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	}
	struct shmc_mrc_info info;
	double all = predict(c, 4u << 20, &info);
	uint64_t total = NP * PER * ROUNDS;
	/* Every get sampled, or dropped because another process held the
	 * sampler (the drop is counted). */
	assert_true(info.gets + info.skipped >= total);
	assert_true(info.gets > 0);
	assert_true(info.cold + info.skipped >= NP * PER);
	/* 800 keys of ~140 bytes fit in 4 MiB: all but the first round hit
	 * (0.9), as far as the sample saw them; how many samples were
	 * dropped depends on the scheduler, hence the margin. */
	assert_true(all > 0.5);
	uh_check_clean(c);
	shmc_close(c);
}

static void test_killed_holder(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrc-kill", 4096, 1);
	struct shmc *ci = (struct shmc *)c;
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Hold the sampler's lock, say so, and wait to be killed. */
		if (shmc__lock(&ci->mrc->lock) < 0)
			_exit(1);
		char x = 1;
		if (write(fd[1], &x, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char x;
	assert_int_equal(read(fd[0], &x, 1), 1);
	char k[32], v[64] = {0}, b[64];
	/* While it holds the lock: samples are dropped, nothing waits. */
	for (int i = 0; i < 10; i++) {
		size_t kl = (size_t)snprintf(k, sizeof(k), "k%d", i), vl = 64;
		shmc_set(c, k, kl, v, sizeof(v), 0, 0);
		assert_int_equal(shmc_get(c, k, kl, b, &vl, NULL), 0);
	}
	struct shmc_mrc_info info;
	predict(c, 0, &info);
	assert_int_equal(info.gets, 0);
	assert_int_equal(info.skipped, 20);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	/* The next sampler takes the lock from the dead, starts its keys
	 * again, and samples. */
	for (int r = 0; r < 2; r++)
		for (int i = 0; i < 10; i++) {
			size_t kl = (size_t)snprintf(k, sizeof(k), "k%d", i);
			size_t vl = sizeof(b);
			assert_int_equal(shmc_get(c, k, kl, b, &vl, NULL), 0);
		}
	predict(c, 0, &info);
	assert_int_equal(info.resets, 1);
	assert_int_equal(info.gets, 20);
	assert_int_equal(info.cold, 10); /* the keys it had to forget */
	uh_check_clean(c);
	close(fd[0]);
	close(fd[1]);
	shmc_close(c);
}

static void fill(shmc_t *c, int n)
{
	char k[32], v[200] = {0}, b[200];
	for (int i = 0; i < n; i++) {
		size_t kl = (size_t)snprintf(k, sizeof(k), "f%d", i % 300);
		size_t vl = sizeof(b);
		if (shmc_get(c, k, kl, b, &vl, NULL) == SHMC_ENOTFOUND)
			shmc_set(c, k, kl, v, (size_t)i % 200, 0, 0);
		if (i % 97 == 0)
			shmc_del(c, k, kl);
	}
}

static void count_report(const char *p, void *arg)
{
	(void)p;
	++*(int *)arg;
}

static void test_corrupt_region(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrc-bad", 256, 1);
	struct shmc *ci = (struct shmc *)c;
	fill(c, 3000);
	uh_check_clean(c);
	uint64_t off = shmc__mrc_off(ci->map.slots_off, ci->max_readers);
	const char *path = uh_path("mrc-bad");
	/* A wrong magic: an error, and the sampler leaves it alone. */
	uint32_t junk = 0xdeadbeef;
	uh_poke(path, (off_t)(off + offsetof(struct shmc__mrc, magic)), &junk,
	        4);
	struct shmc_mrc_point p = {64u << 20, 0, 0};
	assert_int_equal(shmc_mrc(c, &p, 1, NULL), SHMC_ECORRUPT);
	fill(c, 1000);
	int problems = 0;
	assert_true(shmc_check(c, count_report, &problems) > 0);
	assert_int_equal(shmc_mrc_reset(c), 0);
	assert_int_equal(shmc_mrc(c, &p, 1, NULL), 0);
	uh_check_clean(c);
	/* Garbage over the keys, stamps, tree and counters (magic kept):
	 * writers and readers go on, nothing crashes, and whatever state
	 * it leaves, reset makes it clean. */
	uint64_t st = 7;
	for (int round = 0; round < 20; round++) {
		fill(c, 500);
		uint8_t g[512];
		for (size_t i = 0; i < sizeof(g); i += 8) {
			uint64_t r = th_rand(&st);
			memcpy(g + i, &r, 8);
		}
		uint64_t span = shmc__mrc_bytes(256) -
		                offsetof(struct shmc__mrc, nkeys);
		uint64_t at = offsetof(struct shmc__mrc, nkeys) +
		              th_rand(&st) % (span - sizeof(g));
		if (round % 4 == 0)
			at = offsetof(struct shmc__mrc, nkeys); /* counters */
		uh_poke(path, (off_t)(off + at), g, round % 2 ? 16 : sizeof(g));
		fill(c, 500);
		int rc = shmc_mrc(c, &p, 1, NULL);
		assert_true(rc == 0 || rc == SHMC_ECORRUPT);
		assert_true(p.hit_ratio >= 0 && p.hit_ratio <= 1);
		(void)shmc_check(c, NULL, NULL);
	}
	assert_int_equal(shmc_mrc_reset(c), 0);
	fill(c, 2000);
	uh_check_clean(c);
	shmc_close(c);
}

static void test_pause(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrc-pause", 4096, 1);
	fill(c, 1000);
	struct shmc_mrc_info a, b;
	struct shmc_mrc_point p = {0, 1 << 20, 0};
	assert_int_equal(shmc_mrc(c, &p, 1, &a), 0);
	double before = p.hit_ratio;
	assert_int_equal(shmc_mrc_pause(c, 1), 0);
	assert_int_equal(shmc_mrc_pause(c, 1), 0); /* again: nothing */
	assert_int_equal(((struct shmc *)c)->map.hdr->mrc_thresh, 0);
	fill(c, 1000);
	/* Paused: nothing sampled, the curve as it was (the gets made
	 * meanwhile are not folded in), the region clean. */
	assert_int_equal(shmc_mrc(c, &p, 1, &b), 0);
	assert_int_equal(b.gets, a.gets);
	assert_true(p.hit_ratio == before);
	assert_true(b.rate > 0.999);
	uh_check_clean(c);
	assert_int_equal(shmc_mrc_pause(c, 0), 0);
	assert_int_equal(shmc_mrc_pause(c, 0), 0);
	assert_int_equal(shmc_mrc(c, &p, 1, &b), 0);
	assert_int_equal(b.resets, a.resets + 1);
	assert_true(p.hit_ratio == before);
	fill(c, 1000);
	assert_int_equal(shmc_mrc(c, &p, 1, &b), 0);
	assert_true(b.gets > a.gets);
	uh_check_clean(c);
	assert_int_equal(shmc_mrc_pause(NULL, 1), -EINVAL);
	shmc_close(c);
}

static void test_off_and_switch(void **state)
{
	(void)state;
	shmc_t *c = uh_create("mrc-none", 16u << 20, SHMC_SEGMENT_DEFAULT, 8,
	                      0);
	struct shmc_mrc_point p = {16u << 20, 0, 0};
	assert_int_equal(shmc_mrc(c, &p, 1, NULL), -ENOTSUP);
	assert_int_equal(shmc_mrc_reset(c), -ENOTSUP);
	assert_int_equal(shmc_mrc_pause(c, 1), -ENOTSUP);
	assert_int_equal(shmc_mrc(NULL, &p, 1, NULL), -EINVAL);
	assert_int_equal(((struct shmc *)c)->map.hdr->mrc_thresh, 0);
	fill(c, 500);
	uh_check_clean(c);
	shmc_close(c);
	/* Options out of range. */
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.flags = SHMC_CREATE_MRC;
	o.mrc_keys = 100;
	shmc_t *x = NULL;
	assert_int_equal(shmc_create("mrc-opt", &o, &x), -EINVAL);
	o.mrc_keys = 32;
	assert_int_equal(shmc_create("mrc-opt", &o, &x), -EINVAL);
	/* Default: 8192 keys, 1 in 32 at first. */
	o.mrc_keys = 0;
	assert_int_equal(shmc_create("mrc-opt", &o, &x), 0);
	struct shmc_mrc_info info;
	assert_int_equal(shmc_mrc(x, NULL, 0, &info), 0);
	assert_int_equal(info.max_keys, 8192);
	assert_true(info.rate > 0.031 && info.rate < 0.032);
	struct shmc_info in;
	assert_int_equal(shmc_info(x, &in), 0);
	assert_true(in.flags & SHMC_CREATE_MRC);
	assert_int_equal(info.gets, 0);
	shmc_close(x);
	/* Opened by another handle: the same curve. */
	assert_int_equal(shmc_open("mrc-opt", 0, &x), 0);
	assert_int_equal(shmc_mrc(x, NULL, 0, &info), 0);
	assert_int_equal(info.max_keys, 8192);
	shmc_close(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exact_at_rate_one),
	    cmocka_unit_test(test_fixed_size_close),
	    cmocka_unit_test(test_processes_contribute),
	    cmocka_unit_test(test_killed_holder),
	    cmocka_unit_test(test_corrupt_region),
	    cmocka_unit_test(test_pause),
	    cmocka_unit_test(test_off_and_switch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
