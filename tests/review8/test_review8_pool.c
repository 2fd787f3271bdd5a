/*
 * test_review8_pool.c - review 8: the overflow-bucket pool survives
 * writers killed at any moment (lib/index.c, OVERFLOW-BUCKET POOL).
 *
 *  - killed_writers_leak_no_bucket (FAILS before the fix): pool_grow
 *    counted a new chunk of 1,024 overflow buckets under log_lock, then
 *    pushed them onto the free stack one by one after releasing it.  A
 *    writer killed in that stretch left counted buckets neither free nor
 *    linked, for good (64 KiB each time).  Writer processes insert new
 *    keys (the index splits, the pool grows again and again; a new cache
 *    every few rounds starts it over) and are SIGKILLed at random
 *    moments; in some rounds they also kill themselves at the test-only
 *    fault points inside the pool's crash windows (shmc__ix_fault): after
 *    pool_grow's unlock, between a pop and its link, between a cut and its
 *    push.  After every round the cache is opened again and shmc_check,
 *    which now accounts for every committed pool bucket (free stack, fresh
 *    range, or one chain), must report nothing.
 *
 * Bounded: SHMC_REVIEW8_ROUNDS rounds (200) or SHMC_REVIEW8_SECONDS (20).
 * SHMC_REVIEW8_FAULTS, a mask of 1 << SHMC__IXF_*, picks the fault points
 * (all by default; 0 for plain SIGKILLs only).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"
#include "mp/mp.h"

#define MiB (1ull << 20)
#define WRITERS 3
#define ROUNDS_PER_CACHE 10

struct writer {
	const char *name;
	unsigned id;
	unsigned round;
	int faults; /* die at the fault points */
};

static uint64_t fault_rng;
static long fault_mask = -1; /* SHMC_REVIEW8_FAULTS: 1 << point, which to use */

/* In a writer: die, now and then, inside one of the pool's windows. */
static void die_sometimes(int point)
{
	/* A growth is rare: die at one in two; the chain points are met on
	 * every overflow: one in 300. */
	uint64_t r = th_rand(&fault_rng);
	if (!(fault_mask >> point & 1))
		return;
	if (point == SHMC__IXF_GROW ? r % 2 == 0 : r % 300 == 0)
		raise(SIGKILL);
}

static int writer(void *arg)
{
	struct writer *w = arg;
	shmc_t *c = NULL;
	if (shmc_open(w->name, 0, &c) != 0)
		return MP_SETUP;
	fault_rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull + w->round;
	if (w->faults)
		shmc__ix_fault = die_sometimes;
	char key[48], val[24];
	memset(val, 'v', sizeof(val));
	for (uint64_t n = 0;; n++) {
		int len = snprintf(key, sizeof(key), "r%u-w%u-%llu", w->round,
		                   w->id, (unsigned long long)n);
		shmc_set(c, key, (size_t)len, val, sizeof(val), 0, 0);
	}
	return MP_OK;
}

static void report(const char *problem, void *arg)
{
	printf("  check: %s\n", problem);
	++*(int *)arg;
}

static void killed_writers_leak_no_bucket(void **state)
{
	(void)state;
	long rounds = mp_env_long("SHMC_REVIEW8_ROUNDS", 200);
	fault_mask = mp_env_long("SHMC_REVIEW8_FAULTS", -1);
	double secs = (double)mp_env_long("SHMC_REVIEW8_SECONDS", 20);
	uint64_t rng = (uint64_t)getpid() | 1;
	double end = mp_now() + secs;
	char name[64] = "";
	int problems = 0;
	long r = 0, faulted = 0;
	uint32_t pool_max = 0;
	for (; r < rounds && mp_now() < end && !problems; r++) {
		if (r % ROUNDS_PER_CACHE == 0) {
			if (name[0])
				shmc_destroy(name);
			snprintf(name, sizeof(name), "r8-%d-%ld", (int)getpid(),
			         r);
			shmc_close(th_create(name, 16 * MiB));
		}
		struct writer ws[WRITERS];
		pid_t pids[WRITERS];
		int faults = r % 2;
		for (unsigned i = 0; i < WRITERS; i++) {
			ws[i] = (struct writer){name, i, (unsigned)r, faults};
			pids[i] = mp_spawn(writer, &ws[i]);
			assert_true(pids[i] > 0);
		}
		mp_sleep_ms(2.0 + (double)(th_rand(&rng) % 40));
		for (unsigned i = 0; i < WRITERS; i++) {
			int st = 0;
			kill(pids[i], SIGKILL);
			assert_int_equal(mp_wait(pids[i], 10, &st), 0);
			assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		}
		faulted += faults;

		shmc_t *c = NULL;
		assert_int_equal(shmc_open(name, 0, &c), 0);
		shmc_check(c, report, &problems);
		uint32_t pc = ((struct shmc *)c)->map.hdr->pool_committed;
		if (pc > pool_max)
			pool_max = pc;
		shmc_close(c);
	}
	printf("  %ld rounds (%ld with fault points), pool up to %u buckets, "
	       "%d problems\n",
	       r, faulted, pool_max, problems);
	if (name[0])
		shmc_destroy(name);
	assert_int_equal(problems, 0);
	/* It must have exercised the pool's growth. */
	assert_true(pool_max > 1024);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(killed_writers_leak_no_bucket,
	                              mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
