/*
 * test_review5_revoke.c - a revoked open segment is never orphaned
 * (suite 'review').
 *
 * Every segment of a tiny cache is some thread's open segment, so the
 * next writer has to take one away (revoke).  A reader stalls in its read
 * section, so the grace period of that revocation times out.  Meanwhile
 * the writers whose segments were open exit, and a new thread claims the
 * slot the revoked one had.  Before the segment directory the revoker
 * then gave the segment back to nobody: OPEN, on no list, owned by no
 * one, lost for good ("segment N: state open but on no list and not
 * owned").  Now the revocation detaches the segment first and waits with
 * log_lock released; whatever happens to its old writer, the segment is
 * parked until its grace period is over and then used again.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define SEG (64u << 10)
#define MAXW 64

static shmc_t *g_c;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_go_exit, g_r_end, g_n_end;
static int g_ready;

static void wait_for(int *flag)
{
	pthread_mutex_lock(&g_mu);
	while (!*flag)
		pthread_cond_wait(&g_cv, &g_mu);
	pthread_mutex_unlock(&g_mu);
}

static void raise_flag(int *flag)
{
	pthread_mutex_lock(&g_mu);
	(*flag)++;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static void problem(const char *p, void *arg)
{
	(void)arg;
	printf("  check: %s\n", p);
}

/* A writer: one set (which takes it an open segment), then it waits. */
static void *writer(void *arg)
{
	char key[32];
	snprintf(key, sizeof(key), "w%d", (int)(intptr_t)arg);
	int rc = shmc_set(g_c, key, strlen(key), "value", 5, 0, 0);
	raise_flag(&g_ready);
	wait_for(&g_go_exit);
	return (void *)(intptr_t)rc;
}

static void *stalled_reader(void *arg)
{
	(void)arg;
	shmc_read_begin(g_c);
	raise_flag(&g_ready);
	wait_for(&g_r_end);
	shmc_read_end(g_c);
	return NULL;
}

static void *revoker(void *arg)
{
	(void)arg;
	int rc = shmc_set(g_c, "revoker", 7, "value", 5, 0, 0);
	return (void *)(intptr_t)rc;
}

/* Claims a slot (a get does) and keeps it until told. */
static void *newcomer(void *arg)
{
	(void)arg;
	char buf[8];
	size_t n = sizeof(buf);
	shmc_get(g_c, "nothing", 7, buf, &n, NULL);
	raise_flag(&g_ready);
	wait_for(&g_n_end);
	return NULL;
}

static struct shmc_stats stats(void)
{
	struct shmc_stats st;
	assert_int_equal(shmc_stats(g_c, &st), 0);
	return st;
}

static void revoked_segment_not_orphaned(void **state)
{
	(void)state;
	th_private_dir();
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.segment_size = SEG;
	o.max_readers = 128;
	o.max_memory = 4u << 20;
	/* The smallest budget the geometry accepts, plus a little: a
	 * handful of segments. */
	int rc = SHMC_EBUDGET;
	for (o.memory = 256u << 10; rc == SHMC_EBUDGET && o.memory < (8u << 20);
	     o.memory += 4096)
		rc = shmc_create("rv", &o, &g_c);
	assert_int_equal(rc, 0);
	shmc_close(g_c);
	shmc_destroy("rv");
	o.memory += 5 * SEG;
	assert_int_equal(shmc_create("rv", &o, &g_c), 0);

	/* Writers until every segment is open (at most one kept free). */
	pthread_t w[MAXW];
	int nw = 0;
	for (; nw < MAXW; nw++) {
		struct shmc_stats st = stats();
		if (st.committed_bytes + SEG > st.memory &&
		    st.segments_free <= 1 && st.segments_small == 0 && nw > 0)
			break;
		int before = g_ready;
		assert_int_equal(pthread_create(&w[nw], NULL, writer,
		                                 (void *)(intptr_t)nw),
		                 0);
		pthread_mutex_lock(&g_mu);
		while (g_ready == before)
			pthread_cond_wait(&g_cv, &g_mu);
		pthread_mutex_unlock(&g_mu);
	}
	printf("  %d writers hold every segment open\n", nw);
	assert_true(nw < MAXW);

	pthread_t r, m, n;
	int before = g_ready;
	assert_int_equal(pthread_create(&r, NULL, stalled_reader, NULL), 0);
	while (g_ready == before)
		sleep_ms(1);
	/* The revoker needs a segment: it must take one from a writer, and
	 * its grace period cannot end while the reader stalls. */
	assert_int_equal(pthread_create(&m, NULL, revoker, NULL), 0);
	sleep_ms(200);
	/* The writers leave meanwhile (the revoked one at once: it has no
	 * segment left to close), and a newcomer takes the lowest free
	 * slot, the revoked writer's, while the revoker still waits. */
	raise_flag(&g_go_exit);
	sleep_ms(100);
	before = g_ready;
	assert_int_equal(pthread_create(&n, NULL, newcomer, NULL), 0);
	while (g_ready == before)
		sleep_ms(1);
	void *mrc;
	pthread_join(m, &mrc);
	for (int i = 0; i < nw; i++) {
		void *wrc;
		pthread_join(w[i], &wrc);
	}
	printf("  the revoker's set: %s\n", shmc_err_name((int)(intptr_t)mrc));
	raise_flag(&g_r_end);
	pthread_join(r, NULL);

	int problems = shmc_check(g_c, problem, NULL);
	assert_int_equal(problems, 0);
	/* And the memory is there to use: a round of sets all succeed. */
	for (int i = 0; i < 200; i++) {
		char key[32];
		snprintf(key, sizeof(key), "after%d", i);
		rc = shmc_set(g_c, key, strlen(key), "v", 1, 0, 0);
		if (rc)
			fail_msg("set %s after the revocation: %s", key,
			         shmc_err_name(rc));
	}
	assert_int_equal(shmc_check(g_c, problem, NULL), 0);
	raise_flag(&g_n_end);
	pthread_join(n, NULL);
	shmc_close(g_c);
	shmc_destroy("rv");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(revoked_segment_not_orphaned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
