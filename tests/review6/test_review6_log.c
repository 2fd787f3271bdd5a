/*
 * test_review6_log.c - review 6 of the segment directory and the one
 * ownership mechanism (lib/log.c).
 *
 *  - parked_big_item (FAILS): every segment parked under half full, the
 *    queues empty: a set of the largest value gets SHMC_ECORRUPT;
 *  - prefault_after_punch (FAILS): refill()'s MADV_POPULATE_WRITE after
 *    log_lock is released refills a segment that was revoked, freed and
 *    punched meanwhile: blocks no count covers, the file over the budget;
 *  - thrash (passes): twice as many writers as segments, every set works.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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

static int seq;

static const char *uname_(const char *base)
{
	static char n[64];
	snprintf(n, sizeof(n), "%s%d-%d", base, (int)getpid(), seq++);
	return n;
}

static shmc_t *mk(const char *name, uint64_t mem, uint32_t readers)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = mem;
	o.segment_size = SEG;
	o.max_readers = readers;
	shmc_t *c = NULL;
	th_private_dir();
	int rc = shmc_create(name, &o, &c);
	if (rc)
		fail_msg("create %s: %s", name, shmc_strerror(rc));
	return c;
}

static void show(shmc_t *c, const char *when)
{
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	printf("  %s: total %u free %u small %u main %u open %u parked %u "
	       "retired %u\n",
	       when, st.segments_total, st.segments_free, st.segments_small,
	       st.segments_main, st.segments_open, st.segments_parked,
	       st.segments_retired);
}

/* ---- 1: every segment parked less than half full ----------------------- */

struct small_writer {
	shmc_t *c;
	pthread_barrier_t *bar;
	int i;
};

static void *small_writer(void *p)
{
	struct small_writer *w = p;
	char key[32], v[100];
	memset(v, 'x', sizeof(v));
	snprintf(key, sizeof(key), "sw%d", w->i);
	int rc = shmc_set(w->c, key, strlen(key), v, sizeof(v), 0, 0);
	if (rc)
		printf("  writer %d: %s\n", w->i, shmc_strerror(rc));
	pthread_barrier_wait(w->bar); /* everyone holds a segment at once */
	return NULL;                  /* exit: the segment is parked */
}

/*
 * Threads each write one small item and exit together: every committed
 * segment but the copy-forward reserve ends up parked (OPEN, no owner),
 * a few hundred bytes full.  A set of the largest item (or any item
 * larger than the room left in each) cannot adopt any of them (scan_parked), settle() keeps them parked
 * (not empty, not more than half full), the queues are empty so
 * evict_one() stalls, nothing is retired and no epoch is pending:
 * get_segment() goes round 4 * nseg_max + 64 times and says
 * SHMC_ECORRUPT.  Nothing is corrupt; the parked segments should be
 * sealed (made evictable) when nothing else gives room.
 */
static void test_parked_big_item(void **state)
{
	(void)state;
	const char *name = uname_("r6pb");
	shmc_t *c = mk(name, 1 * MiB, 64);
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	int n = 40;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n);
	pthread_t th[64];
	struct small_writer w[64];
	for (int i = 0; i < n; i++) {
		w[i] = (struct small_writer){c, &bar, i};
		pthread_create(&th[i], NULL, small_writer, &w[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	show(c, "after the small writers");
	struct shmc_info info;
	assert_int_equal(shmc_info(c, &info), 0);
	static char big[SEG];
	memset(big, 'b', sizeof(big));
	/* The largest value: more than the room left in any parked one. */
	int rc = shmc_set(c, "b", 1, big, info.max_value, 0, 0);
	show(c, "after the big set");
	if (rc)
		fail_msg("a set of the largest value with every segment parked: %s (%d)",
		         shmc_strerror(rc), rc);
	shmc_close(c);
	shmc_destroy(name);
}


/* ---- 2: the prefault of a fresh segment, outside log_lock -------------- */

/*
 * madvise interposed (the library is linked statically into this test):
 * while hook_armed, the first MADV_POPULATE_WRITE stops until released,
 * as a writer preempted between refill()'s unlock and its prefault.
 */
static volatile int hook_armed;
static sem_t hook_in, hook_go;
static void *hook_addr;

int madvise(void *addr, size_t len, int advice)
{
#ifdef MADV_POPULATE_WRITE
	if (advice == MADV_POPULATE_WRITE && hook_armed) {
		hook_armed = 0;
		hook_addr = addr;
		sem_post(&hook_in);
		sem_wait(&hook_go);
	}
#endif
	return (int)syscall(SYS_madvise, addr, len, advice);
}

static void *prefault_writer(void *p)
{
	shmc_t *c = p;
	char v[100];
	memset(v, 'w', sizeof(v));
	int rc = shmc_set(c, "pw", 2, v, sizeof(v), 0, 0);
	if (rc)
		printf("  writer: %s\n", shmc_strerror(rc));
	return NULL;
}

static const char *g_name;

static void problem(const char *p, void *arg)
{
	(void)arg;
	printf("  check: %s\n", p);
}

static uint64_t file_blocks(void)
{
	return th_file_allocated(g_name);
}

/*
 * refill() unlocks log_lock, then prefaults the fresh segment with
 * MADV_POPULATE_WRITE.  The writer is in no read section then, so
 * another thread can revoke that segment (revoke_one), find its grace
 * period over at once, free it (settle: empty) and punch it (a shrink).
 * The prefault then allocates every page of a segment the directory says
 * is UNUSED: blocks no count covers, the file over the budget until the
 * next repair.
 */
static void test_prefault_after_punch(void **state)
{
	(void)state;
#ifndef MADV_POPULATE_WRITE
	skip();
#else
	const char *name = uname_("r6pf");
	g_name = name;
	shmc_t *c = mk(name, 2 * MiB, 64);
	sem_init(&hook_in, 0, 0);
	sem_init(&hook_go, 0, 0);
	hook_armed = 1;
	pthread_t th;
	pthread_create(&th, NULL, prefault_writer, c);
	sem_wait(&hook_in); /* the writer is between unlock and prefault */
	/* A shrink whose floor (shmc__min_memory) was computed before this
	 * writer opened its segment, as when writers start while a shrink
	 * runs or after one was interrupted: the budget is below what the
	 * open segments need.  Writers and resumes then help it with
	 * release_one; here the same step shmc_resize takes. */
	struct shmc *ci = (struct shmc *)c;
	show(c, "the writer held before its prefault");
	shmc__store(&ci->map.hdr->memory, shmc__fixed_committed(ci),
	            __ATOMIC_RELEASE);
	int err = 0;
	struct shmc__thr *t = shmc__thr_get(ci, &err);
	assert_non_null(t);
	int rc;
	for (int i = 0; i < 16 && (rc = shmc__log_shrink_step(ci, t, 16)) > 0;
	     i++)
		;
	printf("  shrink steps: %s\n", shmc_strerror(rc));
	show(c, "shrunk");
	uint64_t before = file_blocks();
	sem_post(&hook_go);
	pthread_join(th, NULL);
	uint64_t after = file_blocks();
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	show(c, "after the prefault");
	printf("  budget %llu, committed %llu, file %llu before the "
	       "prefault, %llu after\n",
	       (unsigned long long)st.memory,
	       (unsigned long long)st.committed_bytes,
	       (unsigned long long)before, (unsigned long long)after);
	int problems = shmc_check(c, problem, NULL);
	printf("  check: %d problem(s)\n", problems);
	if (after > st.memory)
		fail_msg("the file holds %llu bytes over the budget: the "
		         "prefault refilled a punched segment",
		         (unsigned long long)(after - st.memory));
	shmc_close(c);
	shmc_destroy(name);
#endif
}

/* ---- 3: more writers than segments ------------------------------------ */

struct thrash {
	shmc_t *c;
	int i;
	volatile int *stop;
	long ok, err;
	int last;
};

static void *thrash_writer(void *p)
{
	struct thrash *w = p;
	char key[32], v[30000];
	memset(v, 'x', sizeof(v));
	for (long n = 0; !*w->stop; n++) {
		snprintf(key, sizeof(key), "t%d-%ld", w->i, n % 500);
		int rc = shmc_set(w->c, key, strlen(key), v, sizeof(v), 0, 0);
		if (rc) {
			w->err++;
			w->last = rc;
		} else {
			w->ok++;
		}
	}
	return NULL;
}

/*
 * Twice as many writing threads as segments: each refill that finds
 * nothing free revokes another writer's segment (revoke_one), whose owner
 * then revokes another.  Every set should still succeed (a set needs one
 * segment for a moment); a failure here is a livelock that ends in
 * refill's 64 attempts as SHMC_ESTALLED ("a reader is stalled") though no
 * reader is.
 */
static void test_thrash(void **state)
{
	(void)state;
	const char *name = uname_("r6th");
	shmc_t *c = mk(name, 1 * MiB, 64);
	enum { N = 28 };
	pthread_t th[N];
	struct thrash w[N];
	volatile int stop = 0;
	for (int i = 0; i < N; i++) {
		w[i] = (struct thrash){c, i, &stop, 0, 0, 0};
		pthread_create(&th[i], NULL, thrash_writer, &w[i]);
	}
	sleep(3);
	stop = 1;
	long ok = 0, err = 0;
	int last = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += w[i].ok;
		err += w[i].err;
		if (w[i].last)
			last = w[i].last;
	}
	show(c, "after the writers");
	int problems = shmc_check(c, NULL, NULL);
	printf("  %ld sets ok, %ld failed (last: %s), check: %d problem(s)\n",
	       ok, err, last ? shmc_strerror(last) : "-", problems);
	assert_int_equal(problems, 0);
	if (err)
		fail_msg("%ld of %ld sets failed: %s", err, ok + err,
		         shmc_strerror(last));
	shmc_close(c);
	shmc_destroy(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parked_big_item),
	    cmocka_unit_test(test_prefault_after_punch),
	    cmocka_unit_test(test_thrash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
