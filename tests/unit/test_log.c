/*
 * test_log.c - the segment log and S3-FIFO eviction (lib/log.c).
 *
 * Proves: writing many times the budget keeps committed memory (the
 * library's count and the file's allocated blocks) within the budget and
 * evicts; a hot set that is read repeatedly survives a one-pass scan of
 * many cold keys far better than the scan keys do; hot items are copied
 * forward (copy_forwards > 0); a key that comes back soon after eviction
 * is a ghost hit; shmc_check() is clean after heavy eviction; and a
 * process SIGKILLed while holding log_lock (with the lists half-changed)
 * does not break the log: the next operation repairs the lists from the
 * segment states and check is clean.  Short-lived writers (a process that
 * sets one key and exits) park their mostly empty segment for the next
 * writer instead of costing a segment each.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "helpers.h"
#include "uhelp.h"

#define SEG SHMC_SEGMENT_MIN

static size_t key_of(char *k, const char *pfx, uint64_t i)
{
	return (size_t)snprintf(k, 64, "%s-%llu", pfx, (unsigned long long)i);
}

/* 1: k's own value; 0: a miss.  Fails on a wrong value. */
static int get_ok(shmc_t *c, const char *k, size_t kl)
{
	static char v[8192];
	size_t vl = sizeof(v);
	int rc = shmc_get(c, k, kl, v, &vl, NULL);
	if (rc == SHMC_ENOTFOUND)
		return 0;
	assert_int_equal(rc, 0);
	if (!th_value_ok(v, vl, k, kl))
		fail_msg("%.*s: wrong value", (int)kl, k);
	return 1;
}

static void put(shmc_t *c, const char *pfx, uint64_t i, size_t len)
{
	static char v[8192];
	char k[64];
	size_t kl = key_of(k, pfx, i);
	size_t vl = th_value(v, sizeof(v), k, kl, i, len);
	int rc = shmc_set(c, k, kl, v, vl, 0, 0);
	if (rc)
		fail_msg("set %s: %s", k, shmc_err_name(rc));
}

static void test_budget(void **state)
{
	(void)state;
	const uint64_t mem = 2u << 20;
	shmc_t *c = uh_create("log-budget", mem, SEG, 8, 0);
	struct shmc_stats st;
	/* 40 MiB of writes into a 2 MiB cache, in values of 1..4 KiB */
	uint64_t r = 3;
	for (uint64_t i = 0; i < 16000; i++) {
		put(c, "b", i, 1024 + th_rand(&r) % 3072);
		if (i % 1000 == 999) {
			assert_int_equal(shmc_stats(c, &st), 0);
			assert_true(st.committed_bytes <= mem);
			assert_true(th_file_allocated("log-budget") <= mem);
		}
	}
	assert_int_equal(shmc_stats(c, &st), 0);
	print_message("budget: committed %llu, file %llu, budget %llu, "
	              "%llu evictions, %llu segments evicted\n",
	              (unsigned long long)st.committed_bytes,
	              (unsigned long long)th_file_allocated("log-budget"),
	              (unsigned long long)mem,
	              (unsigned long long)st.evictions,
	              (unsigned long long)st.segments_evicted);
	assert_true(st.evictions > 10000);
	assert_true(st.segments_evicted > 100);
	assert_true(st.committed_bytes <= mem);
	assert_true(th_file_allocated("log-budget") <= mem);
	/* The newest keys are there. */
	int recent = 0;
	for (uint64_t i = 15900; i < 16000; i++) {
		char k[64];
		recent += get_ok(c, k, key_of(k, "b", i));
	}
	assert_true(recent >= 90);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("log-budget");
}

static void test_s3fifo_scan(void **state)
{
	(void)state;
	enum { HOT = 300, SCAN = 30000, VAL = 1000 };
	shmc_t *c = uh_create("log-scan", 4u << 20, SEG, 8, 0);
	char k[64];
	for (uint64_t i = 0; i < HOT; i++)
		put(c, "hot", i, VAL);
	struct shmc_stats st0, st1;
	assert_int_equal(shmc_stats(c, &st0), 0);
	/* One pass over SCAN cold keys (~10x the cache); the hot set is
	 * read every 200 scan writes. */
	for (uint64_t i = 0; i < SCAN; i++) {
		put(c, "scan", i, VAL);
		if (i % 200 == 0)
			for (uint64_t j = 0; j < HOT; j++)
				(void)get_ok(c, k, key_of(k, "hot", j));
	}
	assert_int_equal(shmc_stats(c, &st1), 0);
	int hot = 0, scan = 0;
	for (uint64_t j = 0; j < HOT; j++)
		hot += get_ok(c, k, key_of(k, "hot", j));
	for (uint64_t i = 0; i < SCAN; i++)
		scan += get_ok(c, k, key_of(k, "scan", i));
	double hr = (double)hot / HOT, sr = (double)scan / SCAN;
	print_message("scan: hot %.3f kept, scan %.3f kept, %llu copied "
	              "forward, %llu evictions, small %u main %u\n",
	              hr, sr, (unsigned long long)st1.copy_forwards,
	              (unsigned long long)st1.evictions, st1.segments_small,
	              st1.segments_main);
	assert_true(hr >= 0.95);
	assert_true(sr <= 0.2);
	assert_true(hr - sr >= 0.7);
	assert_true(st1.copy_forwards > st0.copy_forwards);
	assert_true(st1.evictions > SCAN / 2);
	uh_check_clean(c);

	/* Keys evicted a short while ago come back: ghost hits. */
	uint64_t g0 = st1.ghost_hits;
	int back = 0;
	for (uint64_t i = SCAN - 6000; i < SCAN && back < 1000; i++) {
		size_t kl = key_of(k, "scan", i);
		if (get_ok(c, k, kl))
			continue;
		put(c, "scan", i, VAL);
		back++;
	}
	assert_int_equal(shmc_stats(c, &st1), 0);
	print_message("ghosts: %llu of %d returning keys\n",
	              (unsigned long long)(st1.ghost_hits - g0), back);
	assert_true(back > 0);
	assert_true(st1.ghost_hits - g0 >= (uint64_t)back / 4);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("log-scan");
}

/* A child writes, takes log_lock, half-changes the lists and dies. */
static void die_holding_log_lock(int how)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open("log-lock", 0, &cc) != 0)
			_exit(1);
		for (uint64_t i = 0; i < 40; i++) {
			char v[1024], k[64];
			size_t kl = key_of(k, "child", i);
			size_t vl = th_value(v, sizeof(v), k, kl, i, 900);
			if (shmc_set(cc, k, kl, v, vl, 0, 0) != 0)
				_exit(2);
		}
		shmc__log_lock(cc);
		struct shmc__hdr *h = cc->map.hdr;
		if (how == 1) {
			/* popped a small segment, died before pushing it */
			h->small_head = h->small_head
			                    ? shmc__seg(cc, h->small_head - 1)->next
			                    : 0;
			h->free_count += 3;
		} else if (how == 2) {
			/* garbage everywhere the lists live */
			h->free_head = h->small_tail = h->main_head = 12345;
			h->small_count = h->main_count = 999;
			h->retire_head = 7;
		}
		raise(SIGKILL);
		_exit(3);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "test_log: hung after a log_lock death\n";
	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(98);
	_exit(99);
}

static void test_log_lock_death(void **state)
{
	(void)state;
	shmc_t *c = uh_create("log-lock", 4u << 20, SEG, 8, 0);
	uh_ref_put(c);
	signal(SIGALRM, on_alarm);
	for (int how = 0; how < 3; how++) {
		/* enough data that the queues are not empty */
		for (uint64_t i = 0; i < 300; i++)
			put(c, "pre", (uint64_t)how * 1000 + i, 900);
		uh_ref_check(c);
		die_holding_log_lock(how);
		alarm(20);
		/* The next writes need segments: they take log_lock, find
		 * its owner dead and rebuild the lists. */
		for (uint64_t i = 0; i < 300; i++)
			put(c, "post", (uint64_t)how * 1000 + i, 900);
		alarm(0);
		uh_check_clean(c);
		uh_ref_check(c);
		int child = 0;
		for (uint64_t i = 0; i < 40; i++) {
			char k[64];
			child += get_ok(c, k, key_of(k, "child", i));
		}
		print_message("log_lock death %d: %d of 40 child keys kept\n",
		              how, child);
		struct shmc_stats st;
		assert_int_equal(shmc_stats(c, &st), 0);
		assert_true(st.committed_bytes <= st.memory);
		assert_int_equal(st.readers, 1);
	}
	shmc_close(c);
	shmc_destroy("log-lock");
}

/* 50 processes, each opening the cache, setting one key and exiting. */
static void test_short_lived_writers(void **state)
{
	(void)state;
	th_private_dir();
	shmc_destroy("short");
	shmc_t *c = th_create("short", 8ull << 20); /* ~6 segments of 1 MiB */
	for (int i = 0; i < 50; i++) {
		pid_t p = fork();
		if (p == 0) {
			shmc_t *w = NULL;
			char k[64];
			size_t kl = key_of(k, "short", (uint64_t)i);
			int rc = shmc_open("short", 0, &w);
			if (!rc)
				rc = shmc_set(w, k, kl, k, kl, 0, 0);
			shmc_close(w);
			_exit(rc ? 1 : 0);
		}
		int st;
		assert_int_equal(waitpid(p, &st, 0), p);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	for (int i = 0; i < 50; i++) {
		char k[64], v[64];
		size_t kl = key_of(k, "short", (uint64_t)i), n = sizeof(v);
		assert_int_equal(shmc_get(c, k, kl, v, &n, NULL), 0);
		assert_memory_equal(v, k, kl);
	}
	struct shmc_stats st;
	shmc_stats(c, &st);
	assert_int_equal(st.evictions, 0);
	assert_true(st.segments_total <= 3);
	assert_int_equal(shmc_check(c, NULL, NULL), 0);
	shmc_close(c);
	shmc_destroy("short");
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_s3fifo_scan),
	    cmocka_unit_test(test_log_lock_death),
	    cmocka_unit_test(test_short_lived_writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
