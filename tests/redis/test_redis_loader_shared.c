/*
 * test_redis_loader_shared.c - one shmc_redis_t shared by two threads
 * (the header allows it) must not hand a value read before a write to a
 * load that began after the write was invalidated.
 *
 * Thread A's get-or-load of a value larger than its buffer stops between
 * the loader's two calls (the first kept the GET's reply for the second).
 * Meanwhile the key is written in Redis and its invalidation deletes it
 * from the cache (shmc_del, as `shmcache sync` does), which takes A's
 * lease away.  Thread B then loads the key with a buffer large enough:
 * its lease is taken after the invalidation, so what it stores must be
 * the new value, never the reply A's first call read before the write.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers.h"
#include "rhelp.h"
#include "shmcache_redis.h"

#define BIG 600

static char ADDR[700];

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int paused, resume;
	shmc_redis_t *rr;
	shmc_t *c;
	int rc;
};

/* shmc_redis_loader, stopping after a call that asked for more room. */
static int pausing_loader(const void *key, size_t klen, void *buf,
                          size_t *vlen, uint32_t *flags, void *arg)
{
	struct gate *g = arg;
	int rc = shmc_redis_loader(key, klen, buf, vlen, flags, g->rr);
	if (rc == SHMC_EBUFSIZE) {
		pthread_mutex_lock(&g->mu);
		g->paused = 1;
		pthread_cond_broadcast(&g->cv);
		while (!g->resume)
			pthread_cond_wait(&g->cv, &g->mu);
		pthread_mutex_unlock(&g->mu);
	}
	return rc;
}

static void *thread_a(void *arg)
{
	struct gate *g = arg;
	char small[16];
	size_t n = sizeof(small);
	struct shmc_load_opts lo = {.ttl = 60};
	g->rc = shmc_get_or_load(g->c, "big", 3, small, &n, NULL,
	                         pausing_loader, g, &lo);
	return NULL;
}

static void test_shared_handle_no_stale_store(void **state)
{
	(void)state;
	shmc_t *c = th_create("shared", 8u << 20);
	rh_redis_start();
	redisContext *r = rh_client();
	char oldv[BIG], newv[BIG];
	memset(oldv, 'o', sizeof(oldv));
	memset(newv, 'n', sizeof(newv));
	rh_cmd(r, "SET big %b", oldv, sizeof(oldv));
	struct gate g = {.mu = PTHREAD_MUTEX_INITIALIZER,
	                 .cv = PTHREAD_COND_INITIALIZER, .c = c};
	assert_int_equal(shmc_redis_open(ADDR, NULL, &g.rr), 0);
	pthread_t a;
	assert_int_equal(pthread_create(&a, NULL, thread_a, &g), 0);
	pthread_mutex_lock(&g.mu);
	while (!g.paused)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);

	/* The write, and its invalidation reaching the cache. */
	rh_cmd(r, "SET big %b", newv, sizeof(newv));
	int drc = shmc_del(c, "big", 3);
	assert_true(drc == 0 || drc == SHMC_ENOTFOUND);

	/* Thread B (this one) misses after the invalidation. */
	char out[BIG];
	size_t n = sizeof(out);
	struct shmc_load_opts lo = {.ttl = 60};
	assert_int_equal(shmc_get_or_load(c, "big", 3, out, &n, NULL,
	                                  shmc_redis_loader, g.rr, &lo),
	                 0);
	assert_int_equal(n, BIG);
	assert_memory_equal(out, newv, BIG);

	pthread_mutex_lock(&g.mu);
	g.resume = 1;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	assert_int_equal(pthread_join(a, NULL), 0);

	/* Whatever the cache holds now must be the written value. */
	n = sizeof(out);
	int rc = shmc_get(c, "big", 3, out, &n, NULL);
	assert_true(rc == 0 || rc == SHMC_ENOTFOUND);
	if (rc == 0) {
		assert_int_equal(n, BIG);
		assert_memory_equal(out, newv, BIG);
	}
	shmc_redis_close(g.rr);
	redisFree(r);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("shared"), 0);
}

int main(void)
{
	th_private_dir();
	snprintf(ADDR, sizeof(ADDR), "unix:%s", rh_sock());
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shared_handle_no_stale_store),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
