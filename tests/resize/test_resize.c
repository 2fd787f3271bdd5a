/*
 * test_resize.c - live resize while traffic runs (suite 'resize').
 *
 * What it proves, with real fork()ed processes:
 *   - under_load: two processes run a 90/10 get/set mix over keys with
 *     checksummed values while a third resizes in a loop
 *     (64M -> 512M -> 32M -> 256M -> ...): zero bad reads, zero failed
 *     operations, and after every step the file's allocated blocks follow
 *     the target (never above it; a grow commits it).
 *   - killed_resizer: a resizing process SIGKILLed at random points, many
 *     rounds, while a worker verifies values: the cache stays consistent
 *     (shmc_check clean) and the resize completes when retried.
 *   - index_growth: from 1 thousand to 1 million keys with readers running
 *     and no eviction possible: every key written is found, during and
 *     after the growth, and nothing is dropped from the index.
 *   - autogrow_by_curve: with a miss-ratio curve and mrc_gain_pm, the
 *     curve, not the ghost hits, decides whether a step is worth it;
 *   - autogrow_fires / autogrow_ignores_scan: the autogrow policy grows a
 *     cache whose working set is larger than it, and does not grow one fed
 *     a scan of keys that never come back (time from an injected clock).
 *   - refusals: beyond the reservation, below the smallest budget, and
 *     ENOSPC from the file system each leave the cache as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "../mp/mp.h"
#include "internal.h"

#define MiB (1ull << 20)

struct shared {
	volatile int stop;
	volatile uint64_t bad, failed, ops, written;
};

static uint64_t alloc_now(const char *name)
{
	return th_file_allocated(name);
}

/* 90% gets, 10% sets of checksummed values, until sh->stop. */
static int worker(void *arg)
{
	struct shared *sh = arg;
	shmc_t *c = NULL;
	MP_CHECK(shmc_open("rz", 0, &c) == 0, MP_SETUP, "open");
	uint64_t rng = mp_seed(7);
	char key[32], val[600], buf[600];
	uint64_t ops = 0, bad = 0, failed = 0;
	while (!sh->stop) {
		uint64_t k = th_rand(&rng) % 200000;
		size_t kl = mp_key(key, sizeof(key), "k", k);
		if (th_rand(&rng) % 10 == 0) {
			size_t vl = th_value(val, sizeof(val), key, kl, ops,
			                     64 + th_rand(&rng) % 400);
			int rc = shmc_set(c, key, kl, val, vl, 0, 0);
			if (rc) {
				fprintf(stderr, "set: %s\n", shmc_err_name(rc));
				failed++;
			}
		} else {
			size_t n = sizeof(buf);
			int rc = shmc_get(c, key, kl, buf, &n, NULL);
			if (rc == 0 && !th_value_ok(buf, n, key, kl))
				bad++;
			else if (rc && rc != SHMC_ENOTFOUND)
				failed++;
		}
		ops++;
	}
	__atomic_add_fetch(&sh->ops, ops, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->bad, bad, __ATOMIC_RELAXED);
	__atomic_add_fetch(&sh->failed, failed, __ATOMIC_RELAXED);
	shmc_close(c);
	return MP_OK;
}

static void under_load(void **state)
{
	(void)state;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 64 * MiB;
	o.max_memory = 1024 * MiB;
	th_private_dir();
	shmc_destroy("rz"); /* a failed test before may have left it */
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("rz", &o, &c), 0);
	struct shared *sh = mp_shared(sizeof(*sh));
	pid_t w[2];
	for (int i = 0; i < 2; i++)
		w[i] = mp_spawn(worker, sh);
	static const uint64_t sizes[] = {512, 32, 256, 48, 128, 64};
	double end = mp_now() + mp_stress_seconds();
	unsigned steps = 0;
	for (unsigned i = 0; mp_now() < end || steps < 6; i++) {
		uint64_t to = sizes[i % 6] * MiB;
		int rc = shmc_resize(c, to, 0, NULL, NULL);
		assert_int_equal(rc, 0);
		uint64_t a = alloc_now("rz");
		struct shmc_stats st;
		shmc_stats(c, &st);
		/* The system never holds more than the budget ... */
		assert_true(a <= to);
		/* ... and a grow has committed it (all but the index's share
		 * of the budget that segments cannot fill). */
		assert_true(a + 2 * o.segment_size + (to >> 4) >= st.memory ||
		            to < 100 * MiB);
		assert_int_equal(st.memory, to);
		steps++;
		mp_sleep_ms(50);
	}
	sh->stop = 1;
	for (int i = 0; i < 2; i++) {
		int status;
		assert_int_equal(mp_wait(w[i], 30, &status), 0);
		assert_true(mp_exited_ok(status));
	}
	printf("resize steps %u, worker ops %llu\n", steps,
	       (unsigned long long)sh->ops);
	assert_int_equal(sh->bad, 0);
	assert_int_equal(sh->failed, 0);
	assert_true(sh->ops > 0);
	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	struct shmc_resize_record r[16];
	assert_true(shmc_resize_history(c, r, 16) >= 6);
	assert_int_equal(r[0].reason, SHMC_RESIZE_MANUAL);
	shmc_close(c);
	assert_int_equal(shmc_destroy("rz"), 0);
}

struct resizer_arg {
	uint64_t to;
};

static int resizer(void *arg)
{
	struct resizer_arg *ra = arg;
	shmc_t *c = NULL;
	MP_CHECK(shmc_open("rz", 0, &c) == 0, MP_SETUP, "open");
	int rc = shmc_resize(c, ra->to, 0, NULL, NULL);
	MP_CHECK(rc == 0, MP_FAIL, "resize: %s", shmc_err_name(rc));
	shmc_close(c);
	return MP_OK;
}

static void killed_resizer(void **state)
{
	(void)state;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 64 * MiB;
	o.max_memory = 512 * MiB;
	th_private_dir();
	shmc_destroy("rz"); /* a failed test before may have left it */
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("rz", &o, &c), 0);
	/* Fill it, so shrinks must evict. */
	char key[32], val[600];
	for (uint64_t i = 0; i < 150000; i++) {
		size_t kl = mp_key(key, sizeof(key), "k", i);
		size_t vl = th_value(val, sizeof(val), key, kl, i, 300);
		assert_int_equal(shmc_set(c, key, kl, val, vl, 0, 0), 0);
	}
	struct shared *sh = mp_shared(sizeof(*sh));
	pid_t w = mp_spawn(worker, sh);
	uint64_t rng = mp_seed(11);
	long rounds = mp_env_long("SHMC_RESIZE_ROUNDS", 30);
	static const uint64_t sizes[] = {32, 256, 40, 384, 64, 128};
	for (long r = 0; r < rounds; r++) {
		struct resizer_arg ra = {sizes[r % 6] * MiB};
		pid_t p = mp_spawn(resizer, &ra);
		mp_sleep_ms((double)(th_rand(&rng) % 30000) / 1000.0);
		mp_kill(p);
		/* The next resize finishes the interrupted one first, then
		 * goes to its own target. */
		uint64_t to = sizes[(r + 3) % 6] * MiB;
		assert_int_equal(shmc_resize(c, to, 0, NULL, NULL), 0);
		struct shmc_stats st;
		shmc_stats(c, &st);
		assert_int_equal(st.memory, to);
		assert_true(alloc_now("rz") <= to);
		int problems = shmc_check(c, mp_report, NULL);
		assert_int_equal(problems, 0);
	}
	sh->stop = 1;
	int status;
	assert_int_equal(mp_wait(w, 30, &status), 0);
	assert_true(mp_exited_ok(status));
	assert_int_equal(sh->bad, 0);
	assert_int_equal(sh->failed, 0);
	shmc_close(c);
	assert_int_equal(shmc_destroy("rz"), 0);
}

/* Reads back random keys below the writer's published count. */
static int growth_reader(void *arg)
{
	struct shared *sh = arg;
	shmc_t *c = NULL;
	MP_CHECK(shmc_open("ix", 0, &c) == 0, MP_SETUP, "open");
	uint64_t rng = mp_seed(3);
	char key[32], buf[64];
	uint64_t n = 0;
	while (!sh->stop) {
		uint64_t have = __atomic_load_n(&sh->written, __ATOMIC_ACQUIRE);
		if (!have)
			continue;
		uint64_t k = th_rand(&rng) % have;
		size_t kl = mp_key(key, sizeof(key), "g", k);
		size_t len = sizeof(buf);
		int rc = shmc_get(c, key, kl, buf, &len, NULL);
		MP_CHECK(rc == 0, MP_FAIL, "key %llu of %llu: %s",
		         (unsigned long long)k, (unsigned long long)have,
		         shmc_err_name(rc));
		MP_CHECK(th_value_ok(buf, len, key, kl), MP_BADREAD, "bad");
		n++;
	}
	__atomic_add_fetch(&sh->ops, n, __ATOMIC_RELAXED);
	shmc_close(c);
	return MP_OK;
}

static void index_growth(void **state)
{
	(void)state;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 512 * MiB; /* 1M items of ~70 bytes: no eviction */
	o.index_buckets = 256;
	th_private_dir();
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("ix", &o, &c), 0);
	struct shared *sh = mp_shared(sizeof(*sh));
	char key[32], val[64];
	for (uint64_t i = 0; i < 1000; i++) {
		size_t kl = mp_key(key, sizeof(key), "g", i);
		size_t vl = th_value(val, sizeof(val), key, kl, i, 32);
		assert_int_equal(shmc_set(c, key, kl, val, vl, 0, 0), 0);
	}
	__atomic_store_n(&sh->written, 1000, __ATOMIC_RELEASE);
	pid_t r[2];
	for (int i = 0; i < 2; i++)
		r[i] = mp_spawn(growth_reader, sh);
	struct shmc_stats st0;
	shmc_stats(c, &st0);
	for (uint64_t i = 1000; i < 1000000; i++) {
		size_t kl = mp_key(key, sizeof(key), "g", i);
		size_t vl = th_value(val, sizeof(val), key, kl, i, 32);
		assert_int_equal(shmc_set(c, key, kl, val, vl, 0, 0), 0);
		if (i % 64 == 0)
			__atomic_store_n(&sh->written, i + 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&sh->written, 1000000, __ATOMIC_RELEASE);
	mp_sleep_ms(200);
	sh->stop = 1;
	for (int i = 0; i < 2; i++) {
		int status;
		char why[64];
		assert_int_equal(mp_wait(r[i], 60, &status), 0);
		if (!mp_exited_ok(status))
			fail_msg("reader: %s", mp_status_str(status, why,
			                                     sizeof(why)));
	}
	assert_true(sh->ops > 0);
	for (uint64_t i = 0; i < 1000000; i++) {
		char buf[64];
		size_t kl = mp_key(key, sizeof(key), "g", i), n = sizeof(buf);
		assert_int_equal(shmc_get(c, key, kl, buf, &n, NULL), 0);
		assert_true(th_value_ok(buf, n, key, kl));
	}
	struct shmc_stats st;
	shmc_stats(c, &st);
	printf("index %llu -> %llu buckets, %llu reads during growth\n",
	       (unsigned long long)st0.index_buckets,
	       (unsigned long long)st.index_buckets,
	       (unsigned long long)sh->ops);
	assert_true(st.index_buckets > 100 * st0.index_buckets);
	assert_int_equal(st.index_drops, 0);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	shmc_close(c);
	assert_int_equal(shmc_destroy("ix"), 0);
}

/* Runs `rounds` passes over keys [0, nkeys) (or fresh keys when scan),
 * advancing the injected clock one second per 20000 operations. */
static void autogrow_load(shmc_t *c, uint64_t *clk, uint64_t nkeys,
                          bool scan, unsigned rounds)
{
	char key[32], val[600], buf[600];
	uint64_t fresh = 0, ops = 0, rng = 5;
	for (unsigned r = 0; r < rounds; r++) {
		for (uint64_t i = 0; i < nkeys; i++) {
			uint64_t k = scan ? fresh++ : th_rand(&rng) % nkeys;
			size_t kl = mp_key(key, sizeof(key), "a", k), n = sizeof(buf);
			if (shmc_get(c, key, kl, buf, &n, NULL) != 0) {
				size_t vl = th_value(val, sizeof(val), key, kl, k, 500);
				assert_int_equal(shmc_set(c, key, kl, val, vl, 0, 0), 0);
			}
			if (++ops % 20000 == 0)
				(*clk)++;
		}
	}
}

/* The autogrow cache, keeping a miss-ratio curve when mrc_gain_pm is
 * not 0 (and then growing by it). */
static shmc_t *autogrow_cache_mrc(uint64_t *clk, uint32_t mrc_gain_pm)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 16 * MiB;
	o.max_memory = 256 * MiB;
	o.autogrow = (struct shmc_autogrow){.step = 16 * MiB,
	                                    .ceiling = 64 * MiB,
	                                    .window_s = 2,
	                                    .mrc_gain_pm = mrc_gain_pm};
	if (mrc_gain_pm)
		o.flags = SHMC_CREATE_MRC;
	th_private_dir();
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("ag", &o, &c), 0);
	*clk = 1800000000;
	shmc_set_clock(c, th_clock, clk);
	return c;
}

static shmc_t *autogrow_cache(uint64_t *clk)
{
	return autogrow_cache_mrc(clk, 0);
}

static void autogrow_fires(void **state)
{
	(void)state;
	uint64_t clk;
	shmc_t *c = autogrow_cache(&clk);
	/* ~40k items of ~560 bytes = 22 MiB of working set, re-read. */
	autogrow_load(c, &clk, 40000, false, 8);
	struct shmc_resize_record r[16];
	int n = shmc_resize_history(c, r, 16);
	struct shmc_stats st;
	shmc_stats(c, &st);
	printf("budget now %llu MiB, %d resizes, ghost hits %llu\n",
	       (unsigned long long)(st.memory >> 20), n,
	       (unsigned long long)st.ghost_hits);
	assert_true(n >= 1);
	assert_int_equal(r[0].reason, SHMC_RESIZE_AUTOGROW);
	assert_true(st.memory > 16 * MiB && st.memory <= 64 * MiB);
	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	shmc_close(c);
	assert_int_equal(shmc_destroy("ag"), 0);
}

static void autogrow_ignores_scan(void **state)
{
	(void)state;
	uint64_t clk;
	shmc_t *c = autogrow_cache(&clk);
	autogrow_load(c, &clk, 40000, true, 8);
	struct shmc_stats st;
	shmc_stats(c, &st);
	assert_true(st.evictions > 0);
	struct shmc_resize_record r[1];
	assert_int_equal(shmc_resize_history(c, r, 1), 0);
	assert_int_equal(st.memory, 16 * MiB);
	shmc_close(c);
	assert_int_equal(shmc_destroy("ag"), 0);
}

/* With a curve and mrc_gain_pm, the curve decides: 20 per mille is
 * bought by the step on this load (it grows, as the ghost rule would);
 * 1000 per mille never is, and the ghost hits that grow the cache in
 * autogrow_fires are not consulted. */
static void autogrow_by_curve(void **state)
{
	(void)state;
	uint32_t gains[] = {20, 1000};
	for (int g = 0; g < 2; g++) {
		uint64_t clk;
		shmc_t *c = autogrow_cache_mrc(&clk, gains[g]);
		struct shmc_autogrow ag;
		assert_int_equal(shmc_get_autogrow(c, &ag), 0);
		assert_int_equal(ag.mrc_gain_pm, gains[g]);
		autogrow_load(c, &clk, 40000, false, 8);
		struct shmc_resize_record r[16];
		int n = shmc_resize_history(c, r, 16);
		struct shmc_stats st;
		shmc_stats(c, &st);
		printf("gain %u per mille: budget now %llu MiB, %d resizes, "
		       "ghost hits %llu\n",
		       gains[g], (unsigned long long)(st.memory >> 20), n,
		       (unsigned long long)st.ghost_hits);
		if (g == 0) {
			assert_true(n >= 1);
			assert_int_equal(r[0].reason, SHMC_RESIZE_AUTOGROW);
		} else {
			assert_int_equal(n, 0);
			assert_true(st.ghost_hits > 0);
		}
		assert_int_equal(shmc_check(c, mp_report, NULL), 0);
		shmc_close(c);
		assert_int_equal(shmc_destroy("ag"), 0);
	}
}

static int fail_fallocate(int fd, int mode, off_t off, off_t len)
{
	(void)fd;
	(void)off;
	(void)len;
	if (mode != 0)
		return fallocate(fd, mode, off, len);
	errno = ENOSPC;
	return -1;
}

static void refusals(void **state)
{
	(void)state;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 32 * MiB;
	o.max_memory = 128 * MiB;
	th_private_dir();
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("rf", &o, &c), 0);
	char key[32], val[200], buf[200];
	for (uint64_t i = 0; i < 1000; i++) {
		size_t kl = mp_key(key, sizeof(key), "r", i);
		size_t vl = th_value(val, sizeof(val), key, kl, i, 100);
		assert_int_equal(shmc_set(c, key, kl, val, vl, 0, 0), 0);
	}
	uint64_t before = alloc_now("rf");
	struct shmc_info info;
	shmc_info(c, &info);
	assert_int_equal(shmc_resize(c, info.max_memory + 1, 0, NULL, NULL),
	                 SHMC_EBUDGET);
	assert_int_equal(shmc_resize(c, info.min_memory - 1, 0, NULL, NULL),
	                 SHMC_EBUDGET);
	shmc__sys.fallocate = fail_fallocate;
	assert_int_equal(shmc_resize(c, 96 * MiB, 0, NULL, NULL), -ENOSPC);
	shmc__sys_reset();
	struct shmc_stats st;
	shmc_stats(c, &st);
	assert_int_equal(st.memory, 32 * MiB);
	assert_int_equal(alloc_now("rf"), before);
	struct shmc_resize_record r[1];
	assert_int_equal(shmc_resize_history(c, r, 1), 0);
	for (uint64_t i = 0; i < 1000; i++) {
		size_t kl = mp_key(key, sizeof(key), "r", i), n = sizeof(buf);
		assert_int_equal(shmc_get(c, key, kl, buf, &n, NULL), 0);
		assert_true(th_value_ok(buf, n, key, kl));
	}
	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	shmc_close(c);
	assert_int_equal(shmc_destroy("rf"), 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(refusals, mp_teardown),
	    cmocka_unit_test_teardown(under_load, mp_teardown),
	    cmocka_unit_test_teardown(killed_resizer, mp_teardown),
	    cmocka_unit_test_teardown(index_growth, mp_teardown),
	    cmocka_unit_test_teardown(autogrow_fires, mp_teardown),
	    cmocka_unit_test_teardown(autogrow_ignores_scan, mp_teardown),
	    cmocka_unit_test_teardown(autogrow_by_curve, mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
