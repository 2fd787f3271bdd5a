/*
 * test_redis_sync.c - `shmcache sync` against a real redis-server.
 *
 * Proves: (a) a write through another Redis client deletes the key from
 * the cache within a bounded time, and measures the invalidation lag
 * over 1000 writes (printed: p50, p99, max); keys outside the tracked
 * prefix stay; FLUSHALL flushes the prefix.  (b) redis-server SIGKILLed
 * and restarted (empty): the sync flushes on the loss, reconnects, and
 * flushes again once tracking is on, so a value put in the cache during
 * the outage is not read afterwards; invalidations work again.  (c) the
 * sync SIGKILLed, Redis written meanwhile, the sync restarted: the key is
 * gone from the cache (flush on start).  Also: a second sync for the same
 * cache is refused; SIGTERM stops the sync with status 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "rhelp.h"

#define WRITES 1000

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void set_l1(shmc_t *c, const char *key, const char *val)
{
	assert_int_equal(shmc_set(c, key, strlen(key), val, strlen(val), 0, 0),
	                 0);
}

static void test_invalidation_lag(void **state)
{
	(void)state;
	shmc_t *c = th_create("lag", 8u << 20);
	rh_redis_start();
	pid_t sync = rh_sync_start("lag", "--prefix", "k:", "--prefix", "j:",
	                           NULL);
	rh_sync_wait("lag", 0, 10);
	redisContext *r = rh_client();
	set_l1(c, "other", "stays");
	uint64_t *lag = calloc(WRITES, sizeof(*lag));
	assert_non_null(lag);
	char key[32];
	for (int i = 0; i < WRITES; i++) {
		snprintf(key, sizeof(key), "k:%d", i % 64);
		set_l1(c, key, "old");
		uint64_t t0 = rh_now_ns();
		rh_cmd(r, "SET %s new%d", key, i);
		lag[i] = rh_wait_miss(c, key, 2.0) - t0;
	}
	qsort(lag, WRITES, sizeof(*lag), cmp_u64);
	printf("# invalidation lag over %d writes (SET sent -> key gone "
	       "from the L1): p50 %.1f us, p99 %.1f us, max %.1f us\n",
	       WRITES, lag[WRITES / 2] / 1e3, lag[WRITES * 99 / 100] / 1e3,
	       lag[WRITES - 1] / 1e3);
	assert_true(lag[WRITES * 99 / 100] < 1000000000ull);
	free(lag);
	assert_true(rh_holds(c, "other", "stays"));
	/* DEL and EXPIRE are writes too; FLUSHALL flushes the prefixes. */
	rh_cmd(r, "SET j:1 old"); /* DEL of a missing key writes nothing */
	set_l1(c, "j:1", "old");
	rh_cmd(r, "DEL j:1");
	rh_wait_miss(c, "j:1", 2.0);
	set_l1(c, "k:x", "old");
	set_l1(c, "j:y", "old");
	rh_cmd(r, "FLUSHALL");
	rh_wait_miss(c, "k:x", 2.0);
	rh_wait_miss(c, "j:y", 2.0);
	assert_true(rh_holds(c, "other", "stays"));
	/* The keys go before sync counts the flush that removed them: wait
	 * (bounded) for the count. */
	struct tool_sync s = rh_sync_read("lag");
	uint64_t counted = rh_now_ns() + 5000000000ull;
	while (s.v[TOOL_SYNC_FLUSHES] < 3 && rh_now_ns() < counted) {
		usleep(10000);
		s = rh_sync_read("lag");
	}
	assert_true(s.v[TOOL_SYNC_KEYS_DELETED] >= WRITES);
	assert_true(s.v[TOOL_SYNC_FLUSHES] >= 3); /* start, on, FLUSHALL */
	/* the probe answers: a lag is recorded */
	uint64_t until = rh_now_ns() + 5000000000ull;
	while (!rh_sync_read("lag").v[TOOL_SYNC_PROBES] && rh_now_ns() < until)
		usleep(10000);
	assert_true(rh_sync_read("lag").v[TOOL_SYNC_PROBES] > 0);
	/* a second sync for the cache is refused */
	pid_t two = rh_sync_start("lag", NULL);
	int st;
	uint64_t t = rh_now_ns() + 5000000000ull;
	while (waitpid(two, &st, WNOHANG) == 0 && rh_now_ns() < t)
		usleep(5000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	/* SIGTERM: a clean exit, status 0, the record says not running */
	kill(sync, SIGTERM);
	t = rh_now_ns() + 5000000000ull;
	while (waitpid(sync, &st, WNOHANG) == 0 && rh_now_ns() < t)
		usleep(5000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_false(rh_sync_read("lag").running);
	redisFree(r);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("lag"), 0);
}

static void test_redis_restart(void **state)
{
	(void)state;
	shmc_t *c = th_create("restart", 8u << 20);
	rh_redis_start();
	pid_t sync = rh_sync_start("restart", "--prefix", "k:",
	                           "--backoff-max", "0.2", NULL);
	struct tool_sync s = rh_sync_wait("restart", 0, 10);
	uint64_t flushes = s.v[TOOL_SYNC_FLUSHES];
	redisContext *r = rh_client();
	rh_cmd(r, "SET k:b old");
	set_l1(c, "k:b", "old");
	redisFree(r);
	rh_redis_stop(SIGKILL);
	/* the loss flushes at once */
	rh_wait_miss(c, "k:b", 5.0);
	/* a worker loads the old value during the outage (say, from a
	 * replica that had not seen the write yet) */
	set_l1(c, "k:b", "old");
	rh_redis_start();
	r = rh_client();
	rh_cmd(r, "SET k:b new");
	s = rh_sync_wait("restart", 1, 10);
	assert_true(s.v[TOOL_SYNC_FLUSHES] >= flushes + 2);
	/* tracking on again flushed it: no stale read */
	assert_false(rh_holds(c, "k:b", "old"));
	/* and invalidations work again */
	set_l1(c, "k:b", "new");
	rh_cmd(r, "SET k:b newer");
	rh_wait_miss(c, "k:b", 2.0);
	redisFree(r);
	rh_sync_stop(sync, SIGTERM);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("restart"), 0);
}

static void test_sync_killed(void **state)
{
	(void)state;
	shmc_t *c = th_create("killed", 8u << 20);
	rh_redis_start();
	pid_t sync = rh_sync_start("killed", "--prefix", "k:", NULL);
	rh_sync_wait("killed", 0, 10);
	rh_sync_stop(sync, SIGKILL);
	/* nobody follows Redis now: the write is not seen */
	set_l1(c, "k:c", "old");
	set_l1(c, "z:c", "kept");
	redisContext *r = rh_client();
	rh_cmd(r, "SET k:c new");
	usleep(100000);
	assert_true(rh_holds(c, "k:c", "old"));
	sync = rh_sync_start("killed", "--prefix", "k:", NULL);
	rh_sync_wait("killed", 0, 10);
	assert_false(rh_holds(c, "k:c", "old"));
	assert_true(rh_holds(c, "z:c", "kept")); /* not tracked: kept */
	redisFree(r);
	rh_sync_stop(sync, SIGTERM);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("killed"), 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_invalidation_lag),
	    cmocka_unit_test(test_redis_restart),
	    cmocka_unit_test(test_sync_killed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
