/*
 * test_redis_sync_backoff.c - `shmcache sync` against a Redis whose
 * sessions fail right after tracking goes on must back off, not reconnect
 * (and flush the whole cache twice) ten times a second.
 *
 * A Redis over its maxmemory (noeviction) accepts the connections,
 * SUBSCRIBE and CLIENT TRACKING, then refuses the probe's SET with -OOM:
 * every session is lost at once.  The waits between sessions must grow
 * (0.1 s doubling): in 3 s that is at most about five sessions.  SIGTERM
 * then stops the sync with status 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "rhelp.h"

static void test_backoff_after_failing_sessions(void **state)
{
	(void)state;
	shmc_t *c = th_create("flap", 8u << 20);
	rh_redis_start();
	redisContext *r = rh_client();
	rh_cmd(r, "CONFIG SET maxmemory-policy noeviction");
	rh_cmd(r, "CONFIG SET maxmemory 1");
	pid_t sync = rh_sync_start("flap", NULL);
	usleep(3000000);
	struct tool_sync s = rh_sync_read("flap");
	printf("# 3 s against a Redis refusing the probe: %llu flushes, "
	       "%llu reconnects\n",
	       (unsigned long long)s.v[TOOL_SYNC_FLUSHES],
	       (unsigned long long)s.v[TOOL_SYNC_RECONNECTS]);
	assert_true(s.running);
	assert_true(s.v[TOOL_SYNC_RECONNECTS] <= 8);
	assert_true(s.v[TOOL_SYNC_FLUSHES] <= 20);
	int st;
	kill(sync, SIGTERM);
	uint64_t until = rh_now_ns() + 5000000000ull;
	while (waitpid(sync, &st, WNOHANG) == 0) {
		if (rh_now_ns() > until)
			fail_msg("sync did not stop within 5 s of SIGTERM");
		usleep(5000);
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	redisFree(r);
	rh_redis_stop(SIGTERM);
	shmc_close(c);
	assert_int_equal(shmc_destroy("flap"), 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_after_failing_sessions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
