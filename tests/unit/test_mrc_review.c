/*
 * test_mrc_review.c - the miss-ratio curve's sampler (lib/mrc.c) against
 * holders that vanish and keys that crowd the bottom of the hash range.
 *
 * Proves:
 *  - vanished_holder: a process that holds the sampler's lock and dies
 *    without the kernel marking the lock owner-dead (its robust list was
 *    lost: here a real fork()ed child that empties its list, then a real
 *    SIGKILL) stops sampling only for a while: the samplers, which only
 *    ever try the lock, reap it as the index's tries do, and the next
 *    one restarts the keys and samples again; shmc_mrc_reset works again.
 *  - vanished_holder_paused: the same while the cache is paused, when no
 *    sampler tries the lock: shmc_mrc_pause(c, 0), retried, resumes.
 *  - crowded_keys: keys whose hashes all lie in the lowest 64th of the
 *    threshold, so that lowering it drops none of them, do not push the
 *    table past its K keys (shmc_mrc and shmc_check would call that
 *    corrupt, and the next sampler would throw the keys away).
 *  - dead_pauser: a process SIGKILLed inside shmc_mrc_pause after it
 *    recorded the pause but before it stored the threshold 0 left a
 *    cache that samples on with a pause on record: the curve then takes
 *    the true get count from the record, frozen, and bends further with
 *    every get.  A pause counts only once the threshold is 0.
 *  - corrupt_histogram: buckets that sum to more gets than a uint64_t
 *    holds give a count that saturates, not an out-of-range conversion
 *    of a double (undefined behaviour).
 * The first two wait up to 20 s for a recovery the library does after 2 s;
 * nothing asserts how long anything took.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "uhelp.h"
#include "../../lib/internal.h"

static struct shmc_mrc_info info_of(shmc_t *c)
{
	struct shmc_mrc_info info;
	assert_int_equal(shmc_mrc(c, NULL, 0, &info), 0);
	return info;
}

/* A fork()ed child takes the sampler's lock, loses the robust list that
 * would tell the kernel to mark it owner-dead at exit (an empty list in
 * its place), and is SIGKILLed: the lock word names a thread that is no
 * more, and no one was told. */
static void vanish_holding(struct shmc__mrc *r)
{
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static struct robust_list_head empty;
		empty.list.next = &empty.list;
		if (shmc__lock(&r->lock) != 0 ||
		    syscall(SYS_set_robust_list, &empty, sizeof(empty)) != 0)
			_exit(1);
		char x = 1;
		if (write(fd[1], &x, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char x;
	assert_int_equal(read(fd[0], &x, 1), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws));
	close(fd[0]);
	close(fd[1]);
}

static void vanished_holder(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrcr-vanish", 4096, 1); /* every key sampled */
	struct shmc *ci = (struct shmc *)c;
	vanish_holding(ci->mrc);

	char k[32], v[64] = {0}, b[64];
	for (int i = 0; i < 10; i++) {
		size_t kl = (size_t)snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(shmc_set(c, k, kl, v, sizeof(v), 0, 0), 0);
	}
	assert_int_equal(info_of(c).gets, 0);
	/* Gets, each one sampled, until one is counted; for up to 20 s. */
	uint64_t t0 = shmc__now_ns();
	struct shmc_mrc_info in = info_of(c);
	while (in.gets == 0 && shmc__now_ns() - t0 < 20ull * 1000 * 1000 * 1000) {
		for (int i = 0; i < 10; i++) {
			size_t kl = (size_t)snprintf(k, sizeof(k), "k%d", i);
			size_t vl = sizeof(b);
			assert_int_equal(shmc_get(c, k, kl, b, &vl, NULL), 0);
		}
		usleep(1000);
		in = info_of(c);
	}
	printf("  %llu gets sampled, %llu skipped, %llu resets after %.1f s\n",
	       (unsigned long long)in.gets, (unsigned long long)in.skipped,
	       (unsigned long long)in.resets,
	       (double)(shmc__now_ns() - t0) / 1e9);
	assert_true(in.gets > 0);
	assert_int_equal(in.resets, 1); /* the keys of the dead, forgotten */
	assert_int_equal(shmc_mrc_reset(c), 0);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("mrcr-vanish");
}

static void vanished_holder_paused(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrcr-vanish-p", 4096, 1);
	assert_int_equal(shmc_mrc_pause(c, 1), 0);
	vanish_holding(((struct shmc *)c)->mrc);
	/* Paused, no get tries the lock: resuming must take it itself.
	 * Each try waits a second; for up to 20 s. */
	uint64_t t0 = shmc__now_ns();
	int rc, tries = 0;
	do {
		rc = shmc_mrc_pause(c, 0);
		tries++;
	} while (rc == -ETIMEDOUT &&
	         shmc__now_ns() - t0 < 20ull * 1000 * 1000 * 1000);
	printf("  resumed: %s after %d tries\n", shmc_err_name(rc), tries);
	assert_int_equal(rc, 0);
	char k[32], v[64] = {0}, b[64];
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 10; i++) {
			size_t kl = (size_t)snprintf(k, sizeof(k), "k%d", i);
			size_t vl = sizeof(b);
			if (!round)
				assert_int_equal(shmc_set(c, k, kl, v,
				                          sizeof(v), 0, 0), 0);
			assert_int_equal(shmc_get(c, k, kl, b, &vl, NULL), 0);
		}
	struct shmc_mrc_info info = info_of(c);
	assert_int_equal(info.gets, 20);
	assert_int_equal(info.skipped, 0);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("mrcr-vanish-p");
}

static void crowded_keys(void **state)
{
	(void)state;
	/* Rate 1: T = 2^64 - 1, and lower() cuts it in 64 steps of T / 64. */
	shmc_t *c = uh_create_mrc("mrcr-crowd", SHMC__MRC_KEYS_MIN, 1);
	uint64_t step = UINT64_MAX / 64;
	char k[32], b[64];
	uint32_t n = 0;
	for (uint32_t i = 0; n < SHMC__MRC_KEYS_MIN + 8; i++) {
		size_t kl = (size_t)snprintf(k, sizeof(k), "crowd-%u", i);
		if (shmc__hash(k, kl) >= step)
			continue;
		size_t vl = sizeof(b);
		assert_int_equal(shmc_get(c, k, kl, b, &vl, NULL),
		                 SHMC_ENOTFOUND);
		n++;
		struct shmc_mrc_info in = info_of(c);
		assert_true(in.keys <= SHMC__MRC_KEYS_MIN);
		assert_int_equal(in.resets, 0);
	}
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("mrcr-crowd");
}

static void dead_pauser(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrcr-pause", 4096, 1); /* every key sampled */
	struct shmc *ci = (struct shmc *)c;
	struct shmc__mrc *r = ci->mrc;
	char k[32], v[64] = {0}, b[64];
	for (int i = 0; i < 10; i++) {
		size_t kl = (size_t)snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(shmc_set(c, k, kl, v, sizeof(v), 0, 0), 0);
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	int fd[2];
	assert_int_equal(pipe(fd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* shmc_mrc_pause(c, 1), killed after its first two stores,
		 * before the threshold's: the cache still samples. */
		if (shmc__lock(&r->lock) != 0)
			_exit(1);
		r->pause_gets = st.gets;
		r->paused_thr = ci->map.hdr->mrc_thresh;
		char x = 1;
		if (write(fd[1], &x, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char x;
	assert_int_equal(read(fd[0], &x, 1), 1);
	assert_int_equal(kill(pid, SIGKILL), 0);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	/* Two rounds over the 10 keys: the first is cold (the dead
	 * holder's keys are forgotten), the second all hits.  Every key is
	 * sampled at weight 1 and none skipped: the curve is exact, half
	 * its gets hit at any size. */
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 10; i++) {
			size_t kl = (size_t)snprintf(k, sizeof(k), "k%d", i);
			size_t vl = sizeof(b);
			assert_int_equal(shmc_get(c, k, kl, b, &vl, NULL), 0);
		}
	struct shmc_mrc_info info;
	struct shmc_mrc_point p = {0, 1u << 20, 0};
	assert_int_equal(shmc_mrc(c, &p, 1, &info), 0);
	printf("  %llu gets, %llu cold, hit ratio %.3f\n",
	       (unsigned long long)info.gets, (unsigned long long)info.cold,
	       p.hit_ratio);
	assert_int_equal(info.resets, 1);
	assert_int_equal(info.gets, 20);
	assert_int_equal(info.skipped, 0);
	assert_true(p.hit_ratio > 0.499 && p.hit_ratio < 0.501);
	/* It was never paused: resuming changes nothing, pausing pauses. */
	assert_int_equal(shmc_mrc_pause(c, 0), 0);
	assert_int_equal(shmc_mrc(c, &p, 1, &info), 0);
	assert_true(p.hit_ratio > 0.499 && p.hit_ratio < 0.501);
	assert_int_equal(info.resets, 1);
	assert_int_equal(shmc_mrc_pause(c, 1), 0);
	assert_int_equal(shmc_mrc_pause(c, 0), 0);
	uh_check_clean(c);
	close(fd[0]);
	close(fd[1]);
	shmc_close(c);
	shmc_destroy("mrcr-pause");
}

static void corrupt_histogram(void **state)
{
	(void)state;
	shmc_t *c = uh_create_mrc("mrcr-hist", SHMC__MRC_KEYS_MIN, 1);
	struct shmc__mrc *r = ((struct shmc *)c)->mrc;
	/* Every bucket at its largest: 656 x 2^64 / 256 gets, more than a
	 * uint64_t holds. */
	for (uint32_t i = 0; i < SHMC__MRC_HIST; i++)
		r->hist[i] = UINT64_MAX;
	struct shmc_mrc_info info;
	struct shmc_mrc_point p = {0, 1u << 20, 0};
	assert_int_equal(shmc_mrc(c, &p, 1, &info), 0);
	assert_true(p.hit_ratio >= 0 && p.hit_ratio <= 1);
	assert_true(info.gets == UINT64_MAX);
	shmc_close(c);
	shmc_destroy("mrcr-hist");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(vanished_holder),
	    cmocka_unit_test(vanished_holder_paused),
	    cmocka_unit_test(crowded_keys),
	    cmocka_unit_test(dead_pauser),
	    cmocka_unit_test(corrupt_histogram),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
