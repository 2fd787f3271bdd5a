/*
 * test_redis_sync_nodes.c - `shmcache sync` following two Redis nodes at
 * once (--redis twice), as it follows every primary of a cluster.
 *
 * Tracking is per node whether or not the nodes form a cluster, so two
 * independent redis-servers on two unix sockets stand in for two
 * primaries.  Proves: (a) a write on either node deletes its key from the
 * cache within a bounded time; keys outside the prefix stay.  (b) one node
 * SIGKILLed: the tracked prefixes are flushed, the record says one node
 * of two tracks, the other node's invalidations still work; the node
 * restarted: its tracking comes back, a value loaded during its outage is
 * flushed (no stale read), its invalidations work again.  Then SIGTERM
 * stops the sync with status 0.  Also: more than 16 --redis is a usage
 * error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "rhelp.h"

static char addr1[700];

static void set_l1(shmc_t *c, const char *key, const char *val)
{
	assert_int_equal(shmc_set(c, key, strlen(key), val, strlen(val), 0, 0),
	                 0);
}

/* Waits (bounded) until the record shows `up` nodes tracking. */
static struct tool_sync wait_nodes_up(const char *name, uint32_t up,
                                      double secs)
{
	uint64_t until = rh_now_ns() + (uint64_t)(secs * 1e9);
	for (;;) {
		struct tool_sync s = rh_sync_read(name);
		if (s.running && s.nodes_up == up)
			return s;
		if (rh_now_ns() > until)
			fail_msg("sync of %s: nodes up %#x, not %#x, after %.1f s",
			         name, s.nodes_up, up, secs);
		usleep(2000);
	}
}

static void test_two_nodes(void **state)
{
	(void)state;
	shmc_t *c = th_create("nodes", 8u << 20);
	rh_redis_start_n(0);
	rh_redis_start_n(1);
	snprintf(addr1, sizeof(addr1), "unix:%s", rh_sock_n(1));
	pid_t sync = rh_sync_start("nodes", "--redis", addr1, "--prefix", "k:",
	                           "--backoff-max", "0.2", "--probe", "0.05",
	                           NULL);
	struct tool_sync s = rh_sync_wait("nodes", 0, 10);
	assert_int_equal(s.nodes, 2);
	assert_int_equal(s.nodes_up, 3);
	assert_non_null(strstr(s.addr, addr1));
	redisContext *r[2] = {rh_client_n(0), rh_client_n(1)};
	set_l1(c, "other", "stays");

	/* (a) writes on either node invalidate */
	char key[32];
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k:%d", i % 16);
		set_l1(c, key, "old");
		rh_cmd(r[i % 2], "SET %s new%d", key, i);
		rh_wait_miss(c, key, 2.0);
	}
	assert_true(rh_holds(c, "other", "stays"));
	/* both nodes answer the probe */
	uint64_t until = rh_now_ns() + 5000000000ull;
	while (rh_sync_read("nodes").v[TOOL_SYNC_PROBES] < 4 &&
	       rh_now_ns() < until)
		usleep(10000);
	assert_true(rh_sync_read("nodes").v[TOOL_SYNC_PROBES] >= 4);

	/* (b) node 1 killed: everything tracked is flushed */
	s = rh_sync_read("nodes");
	uint64_t flushes = s.v[TOOL_SYNC_FLUSHES];
	rh_cmd(r[1], "SET k:b old");
	set_l1(c, "k:a", "old"); /* a key of node 0 */
	set_l1(c, "k:b", "old"); /* a key of node 1 */
	redisFree(r[1]);
	rh_redis_stop_n(1, SIGKILL);
	rh_wait_miss(c, "k:a", 5.0);
	rh_wait_miss(c, "k:b", 5.0);
	assert_true(rh_holds(c, "other", "stays"));
	s = wait_nodes_up("nodes", 1, 5.0);
	assert_int_equal(s.connected, 0); /* not every node tracks */
	/* the keys go before the flush is counted: wait (bounded) */
	until = rh_now_ns() + 5000000000ull;
	while (s.v[TOOL_SYNC_FLUSHES] < flushes + 1 && rh_now_ns() < until) {
		usleep(2000);
		s = rh_sync_read("nodes");
	}
	assert_true(s.v[TOOL_SYNC_FLUSHES] >= flushes + 1);
	/* node 0 goes on: its writes still invalidate, probes included */
	for (int i = 0; i < 20; i++) {
		set_l1(c, "k:c", "old");
		rh_cmd(r[0], "SET k:c new%d", i);
		rh_wait_miss(c, "k:c", 2.0);
	}
	/* a worker loads the old value of node 1's key during the outage
	 * (from a replica that had not seen the write, say) */
	set_l1(c, "k:b", "old");
	s = rh_sync_read("nodes");
	flushes = s.v[TOOL_SYNC_FLUSHES];
	uint64_t reconnects = s.v[TOOL_SYNC_RECONNECTS];
	rh_redis_start_n(1);
	r[1] = rh_client_n(1);
	rh_cmd(r[1], "SET k:b new");
	s = rh_sync_wait("nodes", reconnects + 1, 10);
	assert_int_equal(s.nodes_up, 3);
	assert_true(s.v[TOOL_SYNC_FLUSHES] >= flushes + 1);
	/* tracking on again flushed it: no stale read */
	assert_false(rh_holds(c, "k:b", "old"));
	/* both nodes invalidate again */
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "k:%d", i);
		set_l1(c, key, "new");
		rh_cmd(r[i % 2], "SET %s newer", key);
		rh_wait_miss(c, key, 2.0);
	}
	assert_true(rh_holds(c, "other", "stays"));

	/* SIGTERM: status 0, the record says not running, no node up */
	int st = rh_sync_stop(sync, SIGTERM);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	s = rh_sync_read("nodes");
	assert_false(s.running);
	assert_int_equal(s.nodes_up, 0);
	redisFree(r[0]);
	redisFree(r[1]);
	rh_redis_stop_n(1, SIGTERM);
	rh_redis_stop_n(0, SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("nodes"), 0);
}

static void test_too_many_nodes(void **state)
{
	(void)state;
	/* 16 here and rh_sync_start()'s own: 17 */
#define R_ "--redis=unix:/nonexistent"
	pid_t p = rh_sync_start("none", R_, R_, R_, R_, R_, R_, R_, R_, R_, R_,
	                        R_, R_, R_, R_, R_, R_, NULL);
#undef R_
	int st = rh_sync_stop(p, 0); /* a usage error: exits at once */
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_nodes),
	    cmocka_unit_test(test_too_many_nodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
