/*
 * test_review_locks.c - review findings about lock handling (suite 'review').
 *
 *   autogrow_after_dead_resizer: shmc__autogrow_check() takes resize_lock
 *     with pthread_mutex_trylock() and treats every nonzero result as "not
 *     taken".  After a resizer died holding the lock, trylock returns
 *     EOWNERDEAD *with the lock held*; the autogrowing worker keeps it for
 *     the rest of its life and every shmc_resize() waits forever.
 *
 *   merge_vs_evictor_deadlock: a merge holds bucket q and spins on its
 *     buddy, whose lock a dead writer holds.  Its probe reclaims the dead
 *     slot with log_locked=false, so shmc__dead_slot takes log_lock while
 *     the merge still holds bucket q.  An evictor holding log_lock and
 *     waiting for bucket q (evict_items) then never gets it: deadlock.
 *
 * Each test bounds its wait and fails (instead of hanging) on the bug.
 */
#include <errno.h>
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

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Waits up to timeout_s for *flag to become nonzero. */
static int wait_flag(volatile int *flag, double timeout_s)
{
	double t0 = now_s();
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (now_s() - t0 > timeout_s)
			return 0;
		sleep_ms(5);
	}
	return 1;
}

/* ---- autogrow_after_dead_resizer --------------------------------------- */

struct ag_worker {
	shmc_t *c;
	volatile int evicted, release, done;
	int set_errors;
};

static void *ag_worker_main(void *p)
{
	struct ag_worker *w = p;
	char key[32], val[2000];
	memset(val, 'v', sizeof(val));
	struct shmc_stats st;
	/* Fill the cache until a set had to evict: refill() then runs
	 * shmc__autogrow_check() in this thread. */
	for (unsigned i = 0; i < 200000; i++) {
		int kl = snprintf(key, sizeof(key), "k%u", i);
		if (shmc_set(w->c, key, (size_t)kl, val, sizeof(val), 0, 0))
			w->set_errors++;
		if (i % 256 == 0 && shmc_stats(w->c, &st) == 0 &&
		    st.segments_evicted > 0)
			break;
	}
	__atomic_store_n(&w->evicted, 1, __ATOMIC_RELEASE);
	/* Stay alive (a long-lived worker) until told to go. */
	while (!__atomic_load_n(&w->release, __ATOMIC_ACQUIRE))
		sleep_ms(5);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct rz {
	shmc_t *c;
	uint64_t to;
	volatile int done;
	int rc;
};

static void *resize_main(void *p)
{
	struct rz *r = p;
	r->rc = shmc_resize(r->c, r->to, 0, NULL, NULL);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void autogrow_after_dead_resizer(void **state)
{
	(void)state;
	th_private_dir();
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 8 * MiB;
	o.max_memory = 64 * MiB;
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("agdead", &o, &c), 0);
	struct shmc_autogrow ag = {.step = 4 * MiB, .ceiling = 32 * MiB};
	assert_int_equal(shmc_set_autogrow(c, &ag), 0);

	/* A resizing process is SIGKILLed while it holds resize_lock (what
	 * the crash-safe resume is designed for). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open("agdead", 0, &cc) != 0)
			_exit(3);
		shmc__lock(&((struct shmc *)cc)->map.hdr->resize_lock);
		raise(SIGKILL);
		_exit(4);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));

	/* A worker thread evicts; its autogrow check meets the dead lock. */
	struct ag_worker w = {.c = c};
	pthread_t wt;
	assert_int_equal(pthread_create(&wt, NULL, ag_worker_main, &w), 0);
	assert_true(wait_flag(&w.evicted, 30));

	/* No resize is running.  A resize must be able to go ahead while
	 * the worker lives on. */
	struct rz r = {.c = c, .to = 16 * MiB};
	pthread_t rt;
	assert_int_equal(pthread_create(&rt, NULL, resize_main, &r), 0);
	int finished = wait_flag(&r.done, 5);
	__atomic_store_n(&w.release, 1, __ATOMIC_RELEASE);
	if (!finished) {
		/* The worker exiting hands the lock on as EOWNERDEAD; let the
		 * stuck resize finish before reporting. */
		pthread_join(wt, NULL);
		wait_flag(&r.done, 10);
		fail_msg("shmc_resize blocked for 5 s with no resize running: "
		         "resize_lock is held by the live worker thread whose "
		         "autogrow check trylocked it and got EOWNERDEAD "
		         "(lib/resize.c shmc__autogrow_check)");
	}
	pthread_join(wt, NULL);
	pthread_join(rt, NULL);
	assert_int_equal(r.rc, 0);
	shmc_close(c);
	shmc_destroy("agdead");
}

/* ---- merge_vs_evictor_deadlock ----------------------------------------- */

struct mg {
	shmc_t *c;
	volatile int ready, go, done;
	int rc;
};

static void *merge_main(void *p)
{
	struct mg *m = p;
	/* Claim a reader slot before the writer below dies, so no claim
	 * reclaims the dead slot on the way. */
	int err = 0;
	shmc__thr_get((struct shmc *)m->c, &err);
	__atomic_store_n(&m->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&m->go, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	/* 512 -> 256 buckets: the first merge locks q = 255, then its
	 * buddy 511. */
	m->rc = shmc_resize_index(m->c, 256);
	__atomic_store_n(&m->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct ev {
	shmc_t *c;
	volatile int ready, start, have_log, go, done;
};

/* What evict_items() does: under log_lock, lock the bucket of an item of
 * the victim segment.  Here the item's hash lands in bucket 255. */
static void *evictor_main(void *p)
{
	struct ev *e = p;
	struct shmc *c = (struct shmc *)e->c;
	int err = 0;
	struct shmc__thr *t = shmc__thr_get(c, &err);
	if (!t)
		return NULL;
	__atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&e->start, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	shmc__log_lock(c);
	__atomic_store_n(&e->have_log, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&e->go, __ATOMIC_ACQUIRE))
		sleep_ms(1);
	struct shmc__ixl x;
	shmc__ix_lock(c, t, 255, true, &x);
	shmc__ix_unlock(c, t, &x);
	shmc__log_unlock(c);
	__atomic_store_n(&e->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void merge_vs_evictor_deadlock(void **state)
{
	(void)state;
	th_private_dir();
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 16 * MiB;
	o.index_buckets = 512;
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("mgdl", &o, &c), 0);
	struct shmc *ci = (struct shmc *)c;
	assert_int_equal(shmc__geom_buckets(ci->map.hdr->index_geom), 512);

	/* The evictor and the merger attach first (slots 0 and 1). */
	struct ev e = {.c = c};
	pthread_t et;
	assert_int_equal(pthread_create(&et, NULL, evictor_main, &e), 0);
	assert_true(wait_flag(&e.ready, 5));
	struct mg m = {.c = c};
	pthread_t mt;
	assert_int_equal(pthread_create(&mt, NULL, merge_main, &m), 0);
	assert_true(wait_flag(&m.ready, 5));

	/* A writer is SIGKILLed inside a set, holding the lock of bucket
	 * 511 (its item appended, its open segment set). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open("mgdl", 0, &cc) != 0)
			_exit(3);
		if (shmc_set(cc, "x", 1, "y", 1, 0, 0) != 0)
			_exit(5);
		int err = 0;
		struct shmc *cci = (struct shmc *)cc;
		struct shmc__thr *t = shmc__thr_get(cci, &err);
		struct shmc__ixl x;
		shmc__ix_lock(cci, t, 511, false, &x);
		raise(SIGKILL);
		_exit(4);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));

	/* An evictor holds log_lock ... */
	__atomic_store_n(&e.start, 1, __ATOMIC_RELEASE);
	assert_true(wait_flag(&e.have_log, 5));
	/* ... while a merge locks bucket 255 and spins on 511 ... */
	__atomic_store_n(&m.go, 1, __ATOMIC_RELEASE);
	sleep_ms(300);
	/* ... and then the evictor needs bucket 255. */
	__atomic_store_n(&e.go, 1, __ATOMIC_RELEASE);
	int ok = wait_flag(&e.done, 5) && wait_flag(&m.done, 5);
	if (!ok)
		fail_msg("deadlock: the merge holds bucket 255 and waits for "
		         "log_lock (taken by shmc__dead_slot from its probe of "
		         "the dead owner of bucket 511), the evictor holds "
		         "log_lock and waits for bucket 255 (evictor done=%d, "
		         "merge done=%d)",
		         e.done, m.done);
	pthread_join(et, NULL);
	pthread_join(mt, NULL);
	assert_int_equal(m.rc, 0);
	assert_int_equal(shmc_check(c, NULL, NULL), 0);
	shmc_close(c);
	shmc_destroy("mgdl");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(autogrow_after_dead_resizer),
	    cmocka_unit_test(merge_vs_evictor_deadlock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
