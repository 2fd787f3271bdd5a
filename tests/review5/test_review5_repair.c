/*
 * test_review5_repair.c - a repair never hands out a segment that a live
 * writer may still be appending to (suite 'review').
 *
 * A writer has appended an item to its open segment and not yet
 * published it (both happen inside one read section).  A process that
 * was taking that segment away - it had cleared the writer's open_seg
 * under log_lock - is SIGKILLed before it finished.  The next holder of
 * log_lock repairs.  Before the segment directory the repair sealed every
 * OPEN segment whose slot did not name it: eviction could then retire it
 * and, once the writer left its section, reuse it - under an index entry
 * the writer had just published into it.  Now the repair parks it with a
 * fresh epoch: nobody touches it until that writer's section is over.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)
#define SEG (64u << 10)

static shmc_t *g_c;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_appended, g_go, g_done;
static uint32_t g_slot;

static void raise_flag(int *f)
{
	pthread_mutex_lock(&g_mu);
	*f = 1;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
}

static void wait_flag(int *f)
{
	pthread_mutex_lock(&g_mu);
	while (!*f)
		pthread_cond_wait(&g_cv, &g_mu);
	pthread_mutex_unlock(&g_mu);
}

static void problem(const char *p, void *arg)
{
	(void)arg;
	printf("  check: %s\n", p);
}

static const char KEY[] = "the-writers-key";
static char VAL[3000];

/* Appends, waits, publishes: the steps of shmc_set (lib/cache.c, put). */
static void *slow_writer(void *arg)
{
	(void)arg;
	struct shmc *c = (struct shmc *)g_c;
	assert_int_equal(shmc_set(g_c, "first", 5, "x", 1, 0, 0), 0);
	int rc = 0;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	g_slot = t->slot;
	uint64_t h = shmc__hash(KEY, sizeof(KEY) - 1), off;
	shmc__section_enter(c, t);
	rc = shmc__item_append(c, t, h, KEY, sizeof(KEY) - 1, NULL, 0, VAL,
	                       sizeof(VAL), 0, 0, 0, &off);
	assert_int_equal(rc, 0);
	raise_flag(&g_appended);
	wait_flag(&g_go);
	struct shmc__ixl x;
	shmc__ix_lock(c, t, h, false, &x);
	uint64_t e = 0;
	uint64_t *way = shmc__ix_find_locked(c, &x, h, KEY, sizeof(KEY) - 1,
	                                     false, &e);
	shmc__item_publish(c, t, &x, h, way, e, off);
	shmc__ix_unlock(c, t, &x);
	shmc__section_exit(t);
	raise_flag(&g_done);
	return NULL;
}

/* Sets for `ms` milliseconds (errors allowed: memory may be held). */
static void churn(const char *prefix, int ms)
{
	uint64_t end = shmc__now_ns() + (uint64_t)ms * 1000000u;
	char key[48], v[2000];
	memset(v, 'c', sizeof(v));
	for (uint64_t i = 0; shmc__now_ns() < end; i++) {
		snprintf(key, sizeof(key), "%s%llu", prefix,
		         (unsigned long long)i);
		shmc_set(g_c, key, strlen(key), v, sizeof(v), 0, 0);
	}
}

static void *churner(void *arg)
{
	churn(arg, 1500);
	return NULL;
}

static void repair_spares_a_live_appender(void **state)
{
	(void)state;
	th_private_dir();
	memset(VAL, 'V', sizeof(VAL));
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 4 * MiB;
	o.max_memory = 16 * MiB;
	o.segment_size = SEG;
	o.max_readers = 64;
	assert_int_equal(shmc_create("rp", &o, &g_c), 0);
	pthread_t w;
	assert_int_equal(pthread_create(&w, NULL, slow_writer, NULL), 0);
	wait_flag(&g_appended);

	/* A revoker, dead half-way: it cleared the writer's open_seg under
	 * log_lock and was killed before doing anything else. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open("rp", 0, &cc) != 0)
			_exit(2);
		struct shmc *cx = (struct shmc *)cc;
		pthread_mutex_lock(&cx->map.hdr->log_lock);
		shmc__store(&shmc__slot_at(&cx->map, g_slot)->open_seg, 0,
		            __ATOMIC_RELAXED);
		raise(SIGKILL);
		_exit(3);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

	/* Writers meet the dead lock, repair, and evict while the appender
	 * is still inside its section. */
	pthread_t e;
	assert_int_equal(pthread_create(&e, NULL, churner, "a"), 0);
	pthread_join(e, NULL);
	raise_flag(&g_go); /* it publishes, leaves its section */
	wait_flag(&g_done);
	pthread_join(w, NULL);
	churn("b", 1500); /* memory is reused now */

	char buf[4000];
	size_t n = sizeof(buf);
	int rc = shmc_get(g_c, KEY, sizeof(KEY) - 1, buf, &n, NULL);
	printf("  the appender's key after the churn: %s\n", shmc_err_name(rc));
	if (rc == 0 && (n != sizeof(VAL) || memcmp(buf, VAL, n) != 0))
		fail_msg("the appender's key reads a wrong value");
	assert_true(rc == 0 || rc == SHMC_ENOTFOUND);
	assert_int_equal(shmc_check(g_c, problem, NULL), 0);
	shmc_close(g_c);
	shmc_destroy("rp");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(repair_spares_a_live_appender),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
