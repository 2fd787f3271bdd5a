/*
 * test_review2_lease.c - a dead loader's lease after its slot is reused
 * (suite 'review').
 *
 * A loader in slot i holds lease seq S (odd) and is SIGKILLed.  The next
 * thread to claim slot i ends that lease in shmc__thr_slow(): lease_seq
 * becomes S + 1.  The lease item itself stays in the index.
 *
 * A caller of shmc_get_or_load() then finds the lease (take_lease:
 * not junk, deadline not reached, dead == NULL -> LEASE_BUSY) and waits:
 * wait_for() sees lease_seq == S + 1, takes it for "done", returns 0 with
 * *takeover = false.  The caller loops: misses again, appends another
 * lease item, finds the same dead lease, LEASE_BUSY, wait_for returns at
 * once ... a busy loop that appends a lease item to the log on every turn
 * (evicting the cache) until the dead lease's deadline (lease_ms), and
 * ignores wait_ms, since wait_for returns before it ever checks until_ms.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)

static int pipefd[2];

static int loader_hang(const void *key, size_t klen, void *buf, size_t *vlen,
                       uint32_t *flags, void *arg)
{
	(void)key, (void)klen, (void)buf, (void)vlen, (void)flags, (void)arg;
	char b = 'x';
	if (write(pipefd[1], &b, 1) != 1)
		_exit(3);
	for (;;)
		pause();
}

static int loads;

static int loader_ok(const void *key, size_t klen, void *buf, size_t *vlen,
                     uint32_t *flags, void *arg)
{
	(void)key, (void)klen, (void)flags, (void)arg;
	loads++;
	if (*vlen < 5) {
		*vlen = 5;
		return SHMC_EBUFSIZE;
	}
	memcpy(buf, "fresh", 5);
	*vlen = 5;
	return 0;
}

static void *touch(void *p)
{
	/* Claims the lowest free slot: the dead loader's. */
	char buf[8];
	size_t n = sizeof(buf);
	shmc_get(p, "unrelated", 9, buf, &n, NULL);
	return NULL;
}

static uint64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void dead_lease_on_reused_slot_spins(void **state)
{
	(void)state;
	shmc_t *c = th_create("lease2", 128 * MiB);
	char buf[64];
	size_t n = sizeof(buf);
	/* This thread takes slot 0. */
	assert_int_equal(shmc_get(c, "warm", 4, buf, &n, NULL), SHMC_ENOTFOUND);
	/* Some data the spinning would evict. */
	for (int i = 0; i < 2000; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "d%d", i);
		assert_int_equal(shmc_set(c, k, (size_t)kl, "v", 1, 0, 0), 0);
	}

	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Slot 1: takes the lease for "K" for 4 s and hangs. */
		struct shmc_load_opts lo = {.lease_ms = 4000};
		size_t m = sizeof(buf);
		shmc_get_or_load(c, "K", 1, buf, &m, NULL, loader_hang, NULL,
		                 &lo);
		_exit(2);
	}
	char b;
	assert_int_equal(read(pipefd[0], &b, 1), 1);
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);

	/* A new thread of ours reuses slot 1 (and ends the dead lease). */
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, touch, c), 0);
	pthread_join(th, NULL);

	struct shmc_stats s0, s1;
	assert_int_equal(shmc_stats(c, &s0), 0);
	struct shmc_load_opts lo = {.lease_ms = 4000, .wait_ms = 300};
	n = sizeof(buf);
	uint64_t t0 = ms_now();
	int rc = shmc_get_or_load(c, "K", 1, buf, &n, NULL, loader_ok, NULL,
	                          &lo);
	uint64_t dt = ms_now() - t0;
	assert_int_equal(shmc_stats(c, &s1), 0);
	printf("get_or_load rc %d after %llu ms (wait_ms 300), loads %d, "
	       "segments evicted meanwhile %llu, lease takeovers %llu\n",
	       rc, (unsigned long long)dt, loads,
	       (unsigned long long)(s1.segments_evicted - s0.segments_evicted),
	       (unsigned long long)(s1.lease_takeovers - s0.lease_takeovers));
	/* The holder is gone: a takeover at once, or at worst -ETIMEDOUT
	 * at wait_ms.  Never seconds of spinning. */
	int lost = 0;
	for (int i = 0; i < 2000; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "d%d", i);
		size_t m = sizeof(buf);
		lost += shmc_get(c, k, (size_t)kl, buf, &m, NULL) != 0;
	}
	printf("free segments %llu -> %llu; data keys lost: %d of 2000\n",
	       (unsigned long long)s0.segments_free,
	       (unsigned long long)s1.segments_free, lost);
	assert_true(dt < 1500);
	/* One lease item and one value were all this call had to write. */
	assert_true(s0.segments_free - s1.segments_free <= 2);
	assert_int_equal(lost, 0);
	shmc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dead_lease_on_reused_slot_spins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
