/*
 * test_redis_loader_empty.c - an empty string in Redis, asked for with no
 * buffer (buf NULL, *vlen 0, as shmc_get_or_load allows): 0 with length
 * 0, cached, and no copy through the NULL buffer (the ASan + UBSan build
 * reports one: memcpy's arguments must not be NULL, even for 0 bytes).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../helpers.h"
#include "rhelp.h"
#include "shmcache_redis.h"

static void test_empty_value_no_buffer(void **state)
{
	(void)state;
	char addr[700];
	snprintf(addr, sizeof(addr), "unix:%s", rh_sock());
	shmc_t *c = th_create("empty", 8u << 20);
	rh_redis_start();
	redisContext *r = rh_client();
	rh_cmd(r, "SET e %b", "", (size_t)0);
	shmc_redis_t *rr;
	assert_int_equal(shmc_redis_open(addr, NULL, &rr), 0);
	size_t n = 0;
	struct shmc_load_opts lo = {.ttl = 60};
	assert_int_equal(shmc_get_or_load(c, "e", 1, NULL, &n, NULL,
	                                  shmc_redis_loader, rr, &lo),
	                 0);
	assert_int_equal(n, 0);
	n = 0;
	assert_int_equal(shmc_get(c, "e", 1, NULL, &n, NULL), 0);
	assert_int_equal(n, 0);
	shmc_redis_close(rr);
	redisFree(r);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("empty"), 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_value_no_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
