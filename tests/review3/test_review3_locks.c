/*
 * test_review3_locks.c - a bucket lock nobody will release must not slow
 * readers or stop writers (suite 'review').  Real processes, real SIGKILL.
 *
 *   dead_owner_readers: a child takes a bucket lock (the internal
 *     shmc__ix_lock, as a set does) and is SIGKILLed holding it.  Readers
 *     of that bucket used to retry a locked miss 1,000 times with
 *     sched_yield and then report a miss anyway: about a millisecond per
 *     get, for as long as no writer touched the bucket.  10,000 gets of a
 *     present key and of a missing key of that bucket must each have a
 *     median under 5 us and a p99 under 100 us (the bug made every get
 *     cost about 1 ms; the p99 bound sits 10x above what a loaded machine
 *     under AddressSanitizer was seen to give, ~10 us: this checks
 *     progress, it is not a benchmark), and the present key must be found
 *     every time.
 *
 *   free_owner_readers: the same with a lock word that names a free slot
 *     (a stale or corrupt word: nobody owns the slot, so no reclaim will
 *     ever release it).
 *
 *   free_owner_writer: a writer of a key in such a bucket used to spin
 *     forever (the probe said "free" but nothing released the lock).  The
 *     set runs in a child bounded by alarm(); it must finish, and the value
 *     must be there.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "../mp/mp.h"
#include "internal.h"

#define MiB (1ull << 20)
#define ROUNDS 10000
#define P50_NS 5000u
#define P99_NS 100000u

static void report(const char *problem, void *arg)
{
	(void)arg;
	fprintf(stderr, "check: %s\n", problem);
}

static uint64_t ns_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t lock_word(shmc_t *c, uint64_t b)
{
	return __atomic_load_n(&shmc__bucket_at(c, b)->lock, __ATOMIC_ACQUIRE);
}

static uint64_t bucket_of(shmc_t *c, const char *key)
{
	uint64_t g = __atomic_load_n(&c->map.hdr->index_geom, __ATOMIC_ACQUIRE);
	return shmc__geom_bucket(c, g, shmc__hash(key, strlen(key)));
}

/* A key that is not in the cache and lives in bucket b. */
static void missing_key_in(shmc_t *c, uint64_t b, char *out, size_t cap)
{
	for (unsigned n = 0;; n++) {
		assert_true(n < 100000000u);
		snprintf(out, cap, "missing-%u", n);
		if (bucket_of(c, out) == b)
			return;
	}
}

static shmc_t *make(const char *name)
{
	shmc_t *c = mp_create(name, 8 * MiB, 0, 16, 0);
	/* Claims this thread's slot now, before any child's. */
	assert_int_equal(shmc_set(c, "present", 7, "value", 5, 0, 1), 0);
	return c;
}

/* 10,000 gets of each key, timed one by one; fails on a p99 over 5 us
 * or on a miss of the present key. */
static void timed_gets(shmc_t *c, const char *present, const char *missing)
{
	uint64_t *hit = calloc(ROUNDS, sizeof(*hit));
	uint64_t *miss = calloc(ROUNDS, sizeof(*miss));
	assert_non_null(hit);
	assert_non_null(miss);
	unsigned not_found = 0;
	for (unsigned i = 0; i < ROUNDS; i++) {
		char buf[16];
		size_t vlen = sizeof(buf);
		uint64_t t0 = ns_now();
		int rc = shmc_get(c, present, strlen(present), buf, &vlen, NULL);
		uint64_t t1 = ns_now();
		not_found += rc != 0;
		vlen = sizeof(buf);
		int rm = shmc_get(c, missing, strlen(missing), buf, &vlen, NULL);
		uint64_t t2 = ns_now();
		assert_int_equal(rm, SHMC_ENOTFOUND);
		hit[i] = t1 - t0;
		miss[i] = t2 - t1;
	}
	qsort(hit, ROUNDS, sizeof(*hit), by_value);
	qsort(miss, ROUNDS, sizeof(*miss), by_value);
	uint64_t p99h = hit[ROUNDS * 99 / 100], p99m = miss[ROUNDS * 99 / 100];
	uint64_t p50h = hit[ROUNDS / 2], p50m = miss[ROUNDS / 2];
	printf("get of the present key: p50 %llu ns p99 %llu ns; of the "
	       "missing key: p50 %llu ns p99 %llu ns\n",
	       (unsigned long long)p50h, (unsigned long long)p99h,
	       (unsigned long long)p50m, (unsigned long long)p99m);
	free(hit);
	free(miss);
	assert_int_equal(not_found, 0);
	assert_true(p50h < P50_NS && p50m < P50_NS);
	assert_true(p99h < P99_NS);
	assert_true(p99m < P99_NS);
}

/* ---- dead_owner_readers ------------------------------------------------- */

struct locker {
	const char *name;
	const char *key;
	int pipe_w;
	uint64_t bucket; /* written by the child (shared memory) */
	uint32_t slot;
};

static int die_holding_lock(void *arg)
{
	struct locker *lk = arg;
	alarm(60);
	shmc_t *c = NULL;
	int rc = shmc_open(lk->name, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_strerror(rc));
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	MP_CHECK(t != NULL, MP_SETUP, "thread state: %s", shmc_err_name(rc));
	struct shmc__ixl x;
	shmc__ix_lock(c, t, shmc__hash(lk->key, strlen(lk->key)), false, &x);
	lk->bucket = x.b;
	lk->slot = t->slot;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mp_pipe_post(lk->pipe_w);
	for (;;)
		pause();
}

static void test_dead_owner_readers(void **state)
{
	(void)state;
	const char *name = "r3-dead";
	shmc_t *c = make(name);
	struct locker *lk = mp_shared(sizeof(*lk));
	int p[2];
	assert_int_equal(pipe(p), 0);
	*lk = (struct locker){.name = name, .key = "present", .pipe_w = p[1]};
	pid_t pid = mp_spawn(die_holding_lock, lk);
	close(p[1]);
	assert_true(mp_pipe_wait(p[0], 30));
	close(p[0]);
	mp_kill(pid);
	uint64_t b = lk->bucket, w = lock_word(c, b);
	assert_int_equal(b, bucket_of(c, "present"));
	/* The lock is really held, by the dead child's slot. */
	assert_true(w & SHMC__LK_LOCKED);
	assert_int_equal(shmc__lk_owner(w), lk->slot);
	munmap(lk, sizeof(*lk));

	char missing[32];
	missing_key_in(c, b, missing, sizeof(missing));
	timed_gets(c, "present", missing);
	/* Whoever found the dead owner let its lock go. */
	assert_false(lock_word(c, b) & SHMC__LK_LOCKED);
	assert_int_equal(shmc_check(c, report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
}

/* ---- a lock word naming a free slot ----------------------------------- */

/* Locks bucket b in the name of slot `slot`, which nobody owns. */
static void forge_lock(shmc_t *c, uint64_t b, uint32_t slot)
{
	struct shmc__slot *s = shmc__slot_at(&c->map, slot);
	assert_int_equal(__atomic_load_n(&s->state, __ATOMIC_ACQUIRE),
	                 SHMC__SLOT_FREE);
	uint64_t *lw = &shmc__bucket_at(c, b)->lock;
	uint64_t w = __atomic_load_n(lw, __ATOMIC_ACQUIRE);
	assert_false(w & SHMC__LK_LOCKED);
	__atomic_store_n(lw, w | SHMC__LK_LOCKED |
	                         ((uint64_t)slot << SHMC__LK_OWNER_SHIFT),
	                 __ATOMIC_RELEASE);
}

static void test_free_owner_readers(void **state)
{
	(void)state;
	const char *name = "r3-free-r";
	shmc_t *c = make(name);
	uint64_t b = bucket_of(c, "present");
	forge_lock(c, b, 15);
	char missing[32];
	missing_key_in(c, b, missing, sizeof(missing));
	timed_gets(c, "present", missing);
	assert_false(lock_word(c, b) & SHMC__LK_LOCKED);
	assert_int_equal(shmc_check(c, report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
}

static int set_in_child(void *arg)
{
	const char *name = arg;
	alarm(10); /* MP_HANG when the set never gets the lock */
	shmc_t *c = NULL;
	int rc = shmc_open(name, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_strerror(rc));
	rc = shmc_set(c, "present", 7, "other", 5, 0, 2);
	MP_CHECK(rc == 0, MP_FAIL, "set: %s", shmc_err_name(rc));
	shmc_close(c);
	return MP_OK;
}

static void test_free_owner_writer(void **state)
{
	(void)state;
	const char *name = "r3-free-w";
	shmc_t *c = make(name);
	uint64_t b = bucket_of(c, "present");
	forge_lock(c, b, 15);
	pid_t pid = mp_spawn(set_in_child, (void *)name);
	int st = 0;
	char sbuf[64];
	assert_int_equal(mp_wait(pid, 30, &st), 0);
	if (!mp_exited_ok(st))
		fail_msg("the writer: %s (exit %d is a hang)",
		         mp_status_str(st, sbuf, sizeof(sbuf)), MP_HANG);
	char buf[16];
	size_t vlen = sizeof(buf);
	uint32_t fl = 0;
	assert_int_equal(shmc_get(c, "present", 7, buf, &vlen, &fl), 0);
	assert_int_equal(fl, 2);
	assert_false(lock_word(c, b) & SHMC__LK_LOCKED);
	assert_int_equal(shmc_check(c, report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_dead_owner_readers, mp_teardown),
	    cmocka_unit_test_teardown(test_free_owner_readers, mp_teardown),
	    cmocka_unit_test_teardown(test_free_owner_writer, mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
