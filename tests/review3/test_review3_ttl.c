/*
 * test_review3_ttl.c - shmc_ttl reads the clock once (suite 'review').
 *
 *   ttl_never_zero_for_live_item: shmc_ttl found the item live with one
 *     reading of the clock and computed what was left with another.  When
 *     the second came after the expiry second the answer was 0 (which
 *     means SHMC_TTL_NONE, "never expires": a dump/restore then made the
 *     item permanent) or, a second later still, a huge wrapped number.
 *     The injected clock here moves one second every time it is read; an
 *     item found live must report between 1 and what was set.
 */
#include <stdio.h>
#include <string.h>

#include "../mp/mp.h"

#define T0 1700000000ull

struct tick {
	uint64_t now;
	unsigned step; /* added after each reading */
	unsigned reads;
};

static uint64_t ticking_clock(void *arg)
{
	struct tick *k = arg;
	uint64_t v = k->now;
	k->now += k->step;
	k->reads++;
	return v;
}

static void test_ttl_never_zero_for_live_item(void **state)
{
	(void)state;
	const char *name = "r3-ttl";
	shmc_t *c = mp_create(name, 2u << 20, 64u << 10, 16, 0);
	struct tick k = {.now = T0};
	assert_int_equal(shmc_set_clock(c, ticking_clock, &k), 0);
	for (uint32_t ttl = 1; ttl <= 3; ttl++) {
		for (unsigned step = 1; step <= 2; step++) {
			char key[32];
			snprintf(key, sizeof(key), "k-%u-%u", ttl, step);
			k.step = 0;
			k.now = T0;
			/* expiry = T0 + ttl */
			assert_int_equal(
			    shmc_set(c, key, strlen(key), "v", 1, ttl, 0), 0);
			k.step = step;
			k.reads = 0;
			uint32_t left = 12345;
			int rc = shmc_ttl(c, key, strlen(key), &left);
			if (rc == SHMC_ENOTFOUND)
				continue; /* expired by the clock it read: fine */
			assert_int_equal(rc, 0);
			printf("ttl %u, clock +%u per read: %u left (%u "
			       "readings)\n",
			       ttl, step, left, k.reads);
			if (left == SHMC_TTL_NONE || left > ttl)
				fail_msg("an item set with ttl %u, found live, "
				         "reports %u s left",
				         ttl, left);
		}
	}
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ttl_never_zero_for_live_item),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
