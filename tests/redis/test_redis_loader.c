/*
 * test_redis_loader.c - shmc_redis_loader (libshmcache-redis) with
 * shmc_get_or_load against a real redis-server.
 *
 * Proves: (d) PROCS forked processes that miss the same key at once make
 * Redis see exactly one GET (INFO commandstats), and all get the value;
 * for KEYS keys, KEYS GETs.  A missing key is SHMC_ENOTFOUND (cached with
 * negative_ttl: no second GET); a value larger than the buffer is
 * SHMC_EBUFSIZE with the size, from one GET; a key holding a list is
 * -EPROTO; Redis down is -ECONNREFUSED, and the loader works again once
 * it is back; a bad address is -EINVAL.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "rhelp.h"
#include "shmcache_redis.h"

#define PROCS 8
#define KEYS 20

static char ADDR[700];

/* A slow source: every caller that arrives meanwhile must wait. */
static int slow_loader(const void *key, size_t klen, void *buf, size_t *vlen,
                       uint32_t *flags, void *arg)
{
	usleep(50000);
	return shmc_redis_loader(key, klen, buf, vlen, flags, arg);
}

static void test_one_get_per_key(void **state)
{
	(void)state;
	shmc_t *c = th_create("loader", 8u << 20);
	rh_redis_start();
	redisContext *r = rh_client();
	for (int k = 0; k < KEYS; k++)
		rh_cmd(r, "SET hot:%d value-of-%d", k, k);
	uint64_t gets0 = rh_calls(r, "get");
	int go[2];
	assert_int_equal(pipe(go), 0);
	pid_t kids[PROCS];
	for (int i = 0; i < PROCS; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			close(go[1]);
			char b;
			if (read(go[0], &b, 1) != 0)
				_exit(3);
			shmc_redis_t *rr;
			if (shmc_redis_open(ADDR, NULL, &rr))
				_exit(4);
			int bad = 0;
			for (int k = 0; k < KEYS; k++) {
				char key[32], want[32], buf[64];
				snprintf(key, sizeof(key), "hot:%d", k);
				snprintf(want, sizeof(want), "value-of-%d", k);
				size_t n = sizeof(buf);
				struct shmc_load_opts lo = {.ttl = 60};
				int rc = shmc_get_or_load(c, key, strlen(key),
				                          buf, &n, NULL,
				                          slow_loader, rr, &lo);
				bad += rc != 0 || n != strlen(want) ||
				       memcmp(buf, want, n) != 0;
			}
			shmc_redis_close(rr);
			_exit(bad ? 1 : 0);
		}
	}
	close(go[0]);
	close(go[1]); /* all start at once */
	for (int i = 0; i < PROCS; i++) {
		int st;
		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	uint64_t gets = rh_calls(r, "get") - gets0;
	printf("# %d processes x %d keys: %llu GETs reached Redis\n", PROCS,
	       KEYS, (unsigned long long)gets);
	assert_int_equal(gets, KEYS);
	redisFree(r);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("loader"), 0);
}

static void test_errors(void **state)
{
	(void)state;
	shmc_t *c = th_create("lerr", 8u << 20);
	rh_redis_start();
	redisContext *r = rh_client();
	shmc_redis_t *rr;
	assert_int_equal(shmc_redis_open("nonsense", NULL, &rr), -EINVAL);
	assert_int_equal(shmc_redis_open("host:0", NULL, &rr), -EINVAL);
	assert_int_equal(shmc_redis_open(ADDR, NULL, NULL), -EINVAL);
	assert_int_equal(shmc_redis_open(ADDR, NULL, &rr), 0);
	char buf[16];
	size_t n = sizeof(buf);
	struct shmc_load_opts lo = {.ttl = 60, .negative_ttl = 60};
	uint64_t g0 = rh_calls(r, "get");
	/* a missing key, cached as such */
	for (int i = 0; i < 2; i++) {
		n = sizeof(buf);
		assert_int_equal(shmc_get_or_load(c, "absent", 6, buf, &n,
		                                  NULL, shmc_redis_loader, rr,
		                                  &lo),
		                 SHMC_ENOTFOUND);
	}
	assert_int_equal(rh_calls(r, "get") - g0, 1);
	/* too big for the buffer: the size, from one GET */
	char big[1000];
	memset(big, 'v', sizeof(big));
	rh_cmd(r, "SET big %b", big, sizeof(big));
	g0 = rh_calls(r, "get");
	n = sizeof(buf);
	assert_int_equal(shmc_get_or_load(c, "big", 3, buf, &n, NULL,
	                                  shmc_redis_loader, rr, &lo),
	                 SHMC_EBUFSIZE);
	assert_int_equal(n, sizeof(big));
	assert_int_equal(rh_calls(r, "get") - g0, 1);
	char out[1000];
	n = sizeof(out);
	assert_int_equal(shmc_get(c, "big", 3, out, &n, NULL), 0);
	assert_memory_equal(out, big, sizeof(big));
	/* not a string */
	rh_cmd(r, "RPUSH alist x");
	n = sizeof(buf);
	assert_int_equal(shmc_get_or_load(c, "alist", 5, buf, &n, NULL,
	                                  shmc_redis_loader, rr, &lo),
	                 -EPROTO);
	/* Redis down, then back */
	redisFree(r);
	rh_redis_stop(SIGKILL);
	n = sizeof(buf);
	int rc = shmc_get_or_load(c, "k1", 2, buf, &n, NULL,
	                          shmc_redis_loader, rr, &lo);
	assert_true(rc == -EIO || rc == -ECONNREFUSED);
	n = sizeof(buf);
	assert_int_equal(shmc_get_or_load(c, "k1", 2, buf, &n, NULL,
	                                  shmc_redis_loader, rr, &lo),
	                 -ECONNREFUSED);
	rh_redis_start();
	r = rh_client();
	rh_cmd(r, "SET k1 v1");
	n = sizeof(buf);
	assert_int_equal(shmc_get_or_load(c, "k1", 2, buf, &n, NULL,
	                                  shmc_redis_loader, rr, &lo),
	                 0);
	assert_int_equal(n, 2);
	assert_int_equal(shmc_redis_close(rr), 0);
	assert_int_equal(shmc_redis_close(NULL), 0);
	redisFree(r);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("lerr"), 0);
}

int main(void)
{
	th_private_dir();
	snprintf(ADDR, sizeof(ADDR), "unix:%s", rh_sock());
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_get_per_key),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
