/*
 * test_review5_log.c - crash consistency of the log and of live resize
 * (suite 'review'); each test failed before the segment directory, the
 * one ownership mechanism and phase-keeping resume (lib/log.c).
 *
 *  - a reservation at the largest the API allows creates and opens;
 *  - a shrink cancelled from its progress callback, or SIGKILLed, is
 *    finished by the next shmc_open, and by writers alone: afterwards the
 *    file's allocated blocks are within the budget;
 *  - a resizer SIGKILLed between a grow step's fallocate and its
 *    accounting leaks nothing, on tmpfs and on a disk file system;
 *  - stats after a shrink: the segment breakdown sums, and nothing counts
 *    more bytes than are committed;
 *  - a free count of the overflow pool that wrapped below zero (a process
 *    killed between the pool's CAS and its count) no longer stops the
 *    pool from growing;
 *  - garbage list heads and counts in the header: writers and a resize
 *    finish (bounded loops, lists rebuilt from the directory), and check
 *    is clean afterwards.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)
#define SEG (64u << 10)

static char g_dir[256];

/* A fresh private SHMCACHE_DIR under base (tmpfs or a disk). */
static void use_dir(const char *base)
{
	snprintf(g_dir, sizeof(g_dir), "%s/shmcache-r5.XXXXXX", base);
	if (!mkdtemp(g_dir))
		fail_msg("mkdtemp under %s: %s", base, strerror(errno));
	setenv("SHMCACHE_DIR", g_dir, 1);
}

static void drop_dir(const char *name)
{
	shmc_destroy(name);
	rmdir(g_dir);
}

static void problem(const char *p, void *arg)
{
	(void)arg;
	printf("  check: %s\n", p);
}


static shmc_t *mk(const char *name, uint64_t mem, uint64_t max)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = mem;
	o.max_memory = max;
	o.segment_size = SEG;
	o.max_readers = 64;
	shmc_t *c = NULL;
	int rc = shmc_create(name, &o, &c);
	if (rc)
		fail_msg("create %s: %s", name, shmc_strerror(rc));
	return c;
}

/* Writes `bytes` of 4 KiB values under keys prefix-i. */
static void fill(shmc_t *c, const char *prefix, uint64_t bytes)
{
	static char v[4000];
	char key[64];
	for (uint64_t i = 0; i * sizeof(v) < bytes; i++) {
		snprintf(key, sizeof(key), "%s%llu", prefix,
		         (unsigned long long)i);
		memset(v, (int)(i & 0xff), sizeof(v));
		int rc = shmc_set(c, key, strlen(key), v, sizeof(v), 0, 0);
		if (rc)
			fail_msg("set %s: %s", key, shmc_strerror(rc));
	}
}

static uint64_t budget(shmc_t *c)
{
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	return st.memory;
}

/* The file holds no more than the budget, and check is clean. */
static void assert_within(shmc_t *c, const char *name, const char *when)
{
	/* A disk file system counts its own metadata (ext4's extent tree
	 * blocks) in st_blocks too: a few blocks of slack there, none on
	 * tmpfs. */
	uint64_t slack = strncmp(g_dir, "/dev/shm", 8) ? 16u << 10 : 0;
	uint64_t a = th_file_allocated(name), b = budget(c) + slack;
	int problems = shmc_check(c, problem, NULL);
	printf("  %s: allocated %llu KiB, budget %llu KiB, %d problem(s)\n",
	       when, (unsigned long long)(a >> 10),
	       (unsigned long long)(b >> 10), problems);
	if (a > b)
		fail_msg("%s: the file holds %llu bytes, %llu over the budget",
		         when, (unsigned long long)a,
		         (unsigned long long)(a - b));
	assert_int_equal(problems, 0);
}

/* ---- bug 2: the largest reservation ----------------------------------- */

static void largest_reservation_opens(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	uint64_t sizes[] = {(1ull << 40) + SEG * 16ull, 1ull << 44, 1ull << 46};
	for (unsigned i = 0; i < 3; i++) {
		shmc_t *c = mk("big", 64 * MiB, sizes[i]);
		assert_int_equal(shmc_set(c, "k", 1, "v", 1, 0, 0), 0);
		shmc_close(c);
		int rc = shmc_open("big", 0, &c);
		if (rc)
			fail_msg("reservation %llu: created, but open says %s",
			         (unsigned long long)sizes[i], shmc_err_name(rc));
		char buf[8];
		size_t n = sizeof(buf);
		assert_int_equal(shmc_get(c, "k", 1, buf, &n, NULL), 0);
		assert_int_equal(shmc_check(c, problem, NULL), 0);
		shmc_close(c);
		shmc_destroy("big");
	}
	rmdir(g_dir);
}

/* ---- bug 4: an interrupted shrink ------------------------------------- */

static int cancel_at;
static int on_progress(const struct shmc_resize_progress *p, void *arg)
{
	(void)p;
	int *calls = arg;
	if (++*calls < cancel_at)
		return 0;
	if (getenv("R5_KILL_IN_PROGRESS"))
		raise(SIGKILL);
	return 1;
}

/* A 256 MiB cache, full, being shrunk to 32 MiB and interrupted. */
static shmc_t *shrink_interrupted(const char *name, bool kill_it)
{
	shmc_t *c = mk(name, 16 * MiB, 512 * MiB);
	assert_int_equal(shmc_resize(c, 256 * MiB, 0, NULL, NULL), 0);
	fill(c, "a", 300 * MiB);
	int calls = 0;
	cancel_at = 3;
	if (!kill_it) {
		int rc = shmc_resize(c, 32 * MiB, 0, on_progress, &calls);
		assert_int_equal(rc, -ECANCELED);
		return c;
	}
	shmc_close(c);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("R5_KILL_IN_PROGRESS", "1", 1);
		shmc_t *cc = NULL;
		if (shmc_open(name, 0, &cc) == 0)
			shmc_resize(cc, 32 * MiB, 0, on_progress, &calls);
		_exit(3); /* not reached: the callback kills us */
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	return NULL;
}

static void cancelled_shrink_finished_by_open(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = shrink_interrupted("cs", false);
	printf("  cancelled: allocated %llu KiB, budget %llu KiB\n",
	       (unsigned long long)(th_file_allocated("cs") >> 10),
	       (unsigned long long)(budget(c) >> 10));
	shmc_close(c);
	assert_int_equal(shmc_open("cs", 0, &c), 0); /* resumes */
	assert_within(c, "cs", "after open");
	assert_int_equal(budget(c), 32 * MiB);
	shmc_close(c);
	drop_dir("cs");
}

static void killed_shrink_finished_by_open(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shrink_interrupted("ks", true);
	shmc_t *c = NULL;
	assert_int_equal(shmc_open("ks", 0, &c), 0); /* resumes */
	assert_within(c, "ks", "after the resizer's death and an open");
	shmc_close(c);
	drop_dir("ks");
}

static void cancelled_shrink_finished_by_writers(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = shrink_interrupted("ws", false);
	/* No resize, no open: only traffic. */
	fill(c, "b", 64 * MiB);
	assert_within(c, "ws", "after 64 MiB of sets");
	shmc_close(c);
	drop_dir("ws");
}

/* ---- bug 5: a resizer killed in the grow step -------------------------- */

static int g_commits;
static int kill_after_commit(int fd, int mode, off_t off, off_t len)
{
	int rc = fallocate(fd, mode, off, len);
	/* The 4th data commit of the grow, done but not yet counted. */
	if (mode == 0 && len >= SEG && ++g_commits == 4)
		raise(SIGKILL);
	return rc;
}

static void killed_grower(const char *base)
{
	use_dir(base);
	shmc_t *c = mk("kg", 16 * MiB, 256 * MiB);
	fill(c, "g", 8 * MiB);
	shmc_close(c);
	for (int round = 0; round < 3; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			shmc_t *cc = NULL;
			if (shmc_open("kg", 0, &cc) != 0)
				_exit(2);
			g_commits = 0;
			shmc__sys.fallocate = kill_after_commit;
			shmc_resize(cc, (uint64_t)(64 + 32 * round) * MiB, 0,
			            NULL, NULL);
			_exit(3);
		}
		int ws;
		assert_int_equal(waitpid(pid, &ws, 0), pid);
		assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
		assert_int_equal(shmc_open("kg", 0, &c), 0); /* resumes */
		assert_within(c, "kg", "after a killed grow and an open");
		fill(c, "h", 4 * MiB);
		assert_int_equal(shmc_resize(c, 16 * MiB, 0, NULL, NULL), 0);
		assert_within(c, "kg", "after a shrink back to 16 MiB");
		shmc_close(c);
	}
	drop_dir("kg");
}

static void killed_grower_tmpfs(void **state)
{
	(void)state;
	killed_grower("/dev/shm");
}

static void killed_grower_disk(void **state)
{
	(void)state;
	killed_grower("/var/tmp");
}

/* ---- bug 7: stats after a shrink --------------------------------------- */

static void check_sums(shmc_t *c, const char *when)
{
	struct shmc_stats st;
	struct shmc_info in;
	assert_int_equal(shmc_stats(c, &st), 0);
	assert_int_equal(shmc_info(c, &in), 0);
	uint64_t segs = (uint64_t)st.segments_total * in.segment_size;
	printf("  %s: %u segments = %u free + %u small + %u main + %u open + "
	       "%u parked + %u retired; used %llu KiB, committed %llu KiB, "
	       "budget %llu KiB\n",
	       when, st.segments_total, st.segments_free, st.segments_small,
	       st.segments_main, st.segments_open, st.segments_parked,
	       st.segments_retired, (unsigned long long)(st.used_bytes >> 10),
	       (unsigned long long)(st.committed_bytes >> 10),
	       (unsigned long long)(st.memory >> 10));
	assert_int_equal(st.segments_total,
	                 st.segments_free + st.segments_small +
	                     st.segments_main + st.segments_open +
	                     st.segments_parked + st.segments_retired);
	assert_true(segs <= st.committed_bytes);
	assert_true(st.used_bytes <= segs);
	assert_true(st.committed_bytes <= st.memory);
}

static void stats_after_shrink(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = mk("st", 16 * MiB, 512 * MiB);
	check_sums(c, "fresh");
	assert_int_equal(shmc_resize(c, 256 * MiB, 0, NULL, NULL), 0);
	fill(c, "s", 300 * MiB);
	check_sums(c, "full");
	assert_int_equal(shmc_resize(c, 32 * MiB, 0, NULL, NULL), 0);
	check_sums(c, "shrunk");
	shmc_close(c);
	drop_dir("st");
}

/* ---- suspect: the overflow pool's free count wraps ---------------------- */

static void pool_count_wrapped(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = mk("pw", 16 * MiB, 64 * MiB);
	struct shmc *ci = (struct shmc *)c;
	struct shmc__hdr *h = ci->map.hdr;
	/* As a kill between pool_pop's CAS and its count would leave it,
	 * and every free bucket gone. */
	h->pool_free = 0;
	h->pool_nfree = UINT32_MAX;
	/* Ordinary sets: writers look at the pool every 32 new items. */
	for (int i = 0; i < 64; i++) {
		char k[32];
		int len = snprintf(k, sizeof(k), "plain-%d", i);
		assert_int_equal(shmc_set(c, k, (size_t)len, "v", 1, 0, 0), 0);
	}
	uint64_t g = shmc__load(&h->index_geom, __ATOMIC_ACQUIRE);
	unsigned found = 0;
	for (uint64_t n = 0; found < 40; n++) {
		char k[32];
		int len = snprintf(k, sizeof(k), "pw-%llu", (unsigned long long)n);
		if (shmc__geom_bucket(ci, g, shmc__hash(k, (size_t)len)) != 5)
			continue;
		found++;
		assert_int_equal(shmc_set(c, k, (size_t)len, "v", 1, 0, 0), 0);
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	printf("  40 keys in one bucket: %llu forgotten, pool free count %u\n",
	       (unsigned long long)st.index_drops, h->pool_nfree);
	assert_int_equal(st.index_drops, 0);
	shmc_close(c);
	drop_dir("pw");
}

/* ---- bug 9: garbage lists in the header -------------------------------- */

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "a call hung on garbage lists\n";
	(void)!write(2, m, sizeof(m) - 1);
	_exit(9);
}

static void garbage_lists(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = mk("gl", 16 * MiB, 64 * MiB);
	fill(c, "x", 24 * MiB);
	struct shmc__hdr *h = ((struct shmc *)c)->map.hdr;
	pthread_mutex_lock(&h->log_lock);
	h->free_head = 7777777;
	h->free_count = 5;
	h->retire_head = 3;
	h->retire_count = 1000000;
	h->small_tail = 123456;
	h->park_count = 99;
	pthread_mutex_unlock(&h->log_lock);
	signal(SIGALRM, on_alarm);
	alarm(60);
	fill(c, "y", 24 * MiB);
	assert_int_equal(shmc_resize(c, 32 * MiB, 0, NULL, NULL), 0);
	assert_int_equal(shmc_resize(c, 16 * MiB, 0, NULL, NULL), 0);
	alarm(0);
	assert_within(c, "gl", "after writes and resizes over garbage lists");
	shmc_close(c);
	drop_dir("gl");
}

/* ---- bug 9: a log_lock that names a thread that does not exist ---------- */

static void log_lock_owner_vanished(void **state)
{
	(void)state;
#ifndef __GLIBC__
	skip();
#else
	use_dir("/dev/shm");
	shmc_t *c = mk("lv", 16 * MiB, 64 * MiB);
	fill(c, "v", 20 * MiB);
	struct shmc__hdr *h = ((struct shmc *)c)->map.hdr;
	pid_t ghost = 4000000;
	while (kill(ghost, 0) == 0 || errno != ESRCH)
		ghost--;
	/* Locked by a thread id nobody has: no robust list will ever mark
	 * it dead. */
	h->log_lock.__data.__lock = ghost;
	h->log_lock.__data.__owner = ghost;
	signal(SIGALRM, on_alarm);
	alarm(30);
	uint64_t t0 = shmc__now_ns();
	fill(c, "w", 8 * MiB); /* needs new segments: log_lock */
	alarm(0);
	printf("  writers went on after %.1f s\n",
	       (double)(shmc__now_ns() - t0) / 1e9);
	assert_within(c, "lv", "after a vanished log_lock owner");
	shmc_close(c);
	drop_dir("lv");
#endif
}

/* ---- suspect: the repair after a killed split waits for the next one ---- */

static void killed_split_repaired_on_open(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = mk("ks2", 16 * MiB, 64 * MiB);
	fill(c, "k", 2 * MiB);
	struct shmc *ci = (struct shmc *)c;
	struct shmc__hdr *h = ci->map.hdr;
	uint64_t g = shmc__load(&h->index_geom, __ATOMIC_ACQUIRE);
	uint64_t p = g & SHMC__GEOM_SPLIT_MASK;
	shmc_close(c);
	/* A splitter of bucket p dies half-way: the entry of a key whose
	 * home is elsewhere is left in p (its twin is where it belongs), and
	 * index_lock is left to a dead owner. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open("ks2", 0, &cc) != 0)
			_exit(2);
		struct shmc *cx = (struct shmc *)cc;
		pthread_mutex_lock(&cx->map.hdr->index_lock);
		struct shmc__bucket *bp = shmc__bucket_at(cx, p);
		for (uint64_t b = 0; b < shmc__geom_buckets(g); b++) {
			if (b == p)
				continue;
			uint64_t e = shmc__bucket_at(cx, b)->e[0];
			for (unsigned i = 0; e && i < SHMC__BUCKET_WAYS; i++)
				if (!bp->e[i]) {
					bp->e[i] = e;
					raise(SIGKILL);
				}
		}
		_exit(3);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	/* No split or merge comes: the cache is steady.  Opening it, or
	 * checking it, tidies. */
	assert_int_equal(shmc_open("ks2", 0, &c), 0);
	assert_int_equal(shmc_check(c, problem, NULL), 0);
	shmc_close(c);
	drop_dir("ks2");
}

/* ---- suspect: items_approx drifts with every death ---------------------- */

static void items_count_survives_deaths(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = mk("ic", 16 * MiB, 64 * MiB);
	struct shmc__hdr *h = ((struct shmc *)c)->map.hdr;
	for (int round = 0; round < 10; round++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			shmc_t *cc = NULL;
			if (shmc_open("ic", 0, &cc) != 0)
				_exit(2);
			char k[32];
			/* 20 new keys: fewer than a flush batch (32). */
			for (int i = 0; i < 20; i++) {
				int n = snprintf(k, sizeof(k), "r%d-%d", round, i);
				if (shmc_set(cc, k, (size_t)n, "v", 1, 0, 0))
					_exit(3);
			}
			raise(SIGKILL);
		}
		int ws;
		assert_int_equal(waitpid(pid, &ws, 0), pid);
		assert_true(WIFSIGNALED(ws));
	}
	/* The dead are found (here by stats' probe of every slot). */
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	int64_t approx = shmc__load(&h->items_approx, __ATOMIC_RELAXED);
	printf("  200 items set by 10 killed processes: stats %llu, the "
	       "index's count %lld\n",
	       (unsigned long long)st.items, (long long)approx);
	assert_int_equal(st.items, 200);
	assert_true(approx >= 200 - 32 && approx <= 200 + 32);
	shmc_close(c);
	drop_dir("ic");
}

/* ---- issue 11: overflow buckets come back when their entries go --------- */

static void overflow_pool_steady(void **state)
{
	(void)state;
	use_dir("/dev/shm");
	shmc_t *c = mk("op", 8 * MiB, 8 * MiB);
	struct shmc__hdr *h = ((struct shmc *)c)->map.hdr;
	char k[32], v[40];
	memset(v, 'p', sizeof(v));
	uint32_t pool[4];
	/* Distinct keys through a full cache: eviction removes entries
	 * everywhere, overflow chains come and go. */
	for (int phase = 0; phase < 4; phase++) {
		for (int i = 0; i < 400000; i++) {
			int n = snprintf(k, sizeof(k), "p%d-%d", phase, i);
			assert_int_equal(shmc_set(c, k, (size_t)n, v, sizeof(v), 0,
			                          0),
			                 0);
		}
		pool[phase] = h->pool_committed;
	}
	/* Chains that end in an overflow bucket with no entry: each holds a
	 * pool bucket for nothing. */
	struct shmc *ci = (struct shmc *)c;
	uint64_t nb = shmc__geom_buckets(h->index_geom), idle = 0, linked = 0;
	for (uint64_t b = 0; b < nb; b++) {
		struct shmc__bucket *bk = shmc__bucket_at(ci, b), *next;
		for (unsigned n = 0; n <= SHMC__CHAIN_MAX &&
		                     (next = shmc__chain_next(ci, bk)) != NULL;
		     n++) {
			bk = next;
			linked++;
		}
		if (bk == shmc__bucket_at(ci, b))
			continue;
		bool empty = true;
		for (unsigned i = 0; i < SHMC__BUCKET_WAYS; i++)
			empty = empty && !bk->e[i];
		idle += empty;
	}
	printf("  overflow buckets committed after each 400k sets: %u %u %u "
	       "%u; %llu linked, %llu of them idle chain ends\n",
	       pool[0], pool[1], pool[2], pool[3], (unsigned long long)linked,
	       (unsigned long long)idle);
	assert_int_equal(idle, 0);
	assert_int_equal(pool[3], pool[1]);
	assert_int_equal(shmc_check(c, problem, NULL), 0);
	shmc_close(c);
	drop_dir("op");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(largest_reservation_opens),
	    cmocka_unit_test(cancelled_shrink_finished_by_open),
	    cmocka_unit_test(killed_shrink_finished_by_open),
	    cmocka_unit_test(cancelled_shrink_finished_by_writers),
	    cmocka_unit_test(killed_grower_tmpfs),
	    cmocka_unit_test(killed_grower_disk),
	    cmocka_unit_test(stats_after_shrink),
	    cmocka_unit_test(pool_count_wrapped),
	    cmocka_unit_test(garbage_lists),
	    cmocka_unit_test(killed_split_repaired_on_open),
	    cmocka_unit_test(log_lock_owner_vanished),
	    cmocka_unit_test(items_count_survives_deaths),
	    cmocka_unit_test(overflow_pool_steady),
	};
	if (getenv("R5_FILTER"))
		cmocka_set_test_filter(getenv("R5_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
