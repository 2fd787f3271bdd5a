/*
 * test_epoch.c - reader slots, liveness and grace periods (shm/epoch.c).
 *
 * Proves: a slot is claimed with the caller's pid/tid and released free;
 * max_readers slots can be held at once and the next claim is
 * SHMC_ENOSLOT (also through the API, one slot per thread); read sections
 * nest and shmc_read_end without a begin is SHMC_ENOSECTION; a forked
 * child that holds a slot (even inside a read section) and is SIGKILLed
 * has its slot reclaimed by shmc__slot_probe and by shmc_readers, and no
 * longer holds grace periods back; shmc__synchronize returns SHMC_EBUSY
 * when the caller's own section blocks it and SHMC_ESTALLED (within a
 * short timeout) when a live reader in another process does, recording
 * the stall for shmc_readers.
 */
#include <errno.h>
#include <pthread.h>
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

#define MEM (1u << 20)
#define SEG SHMC_SEGMENT_MIN
#define NREAD 4u

static struct shmc__map M;

/* A bare segment (no cache on top) with NREAD reader slots. */
static int setup(void **state)
{
	(void)state;
	th_private_dir();
	struct shmc__geom g;
	assert_int_equal(shmc__geometry(MEM, 0, SEG, NREAD, 0, 0, 0, &g), 0);
	memset(&M, 0, sizeof(M));
	M.fd = -1;
	assert_int_equal(shmc__seg_create("ep", &g, 0600, 0, 0, 0, &M), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	shmc__seg_close(&M);
	shmc_destroy("ep");
	return 0;
}

static void test_claim_release(void **state)
{
	(void)state;
	uint32_t s = 99;
	assert_int_equal(shmc__slot_claim(&M, &s, NULL, NULL), 0);
	assert_int_equal(s, 0);
	struct shmc__slot *sl = shmc__slot_at(&M, s);
	assert_int_equal(sl->state, SHMC__SLOT_USED);
	assert_int_equal(sl->pid, getpid());
	assert_int_equal(sl->tid, gettid());
	assert_int_equal(sl->epoch, 0);
	uint32_t gen = sl->generation;
	/* Our own slot is alive to a probe. */
	assert_int_equal(shmc__slot_probe(&M, s, NULL, false, NULL), 1);
	shmc__slot_release(&M, s);
	assert_int_equal(sl->state, SHMC__SLOT_FREE);
	assert_int_equal(sl->pid, 0);
	/* A free slot probes as free and stays free. */
	assert_int_equal(shmc__slot_probe(&M, s, NULL, false, NULL), 0);
	assert_int_equal(sl->state, SHMC__SLOT_FREE);
	assert_int_equal(shmc__slot_claim(&M, &s, NULL, NULL), 0);
	assert_int_equal(s, 0);
	assert_int_equal(sl->generation, gen + 1);
	shmc__slot_release(&M, s);
}

static void test_exhaust(void **state)
{
	(void)state;
	uint32_t s[NREAD], extra;
	for (uint32_t i = 0; i < NREAD; i++) {
		assert_int_equal(shmc__slot_claim(&M, &s[i], NULL, NULL), 0);
		assert_int_equal(s[i], i);
	}
	assert_int_equal(shmc__slot_claim(&M, &extra, NULL, NULL),
	                 SHMC_ENOSLOT);
	shmc__slot_release(&M, s[2]);
	assert_int_equal(shmc__slot_claim(&M, &extra, NULL, NULL), 0);
	assert_int_equal(extra, 2);
	for (uint32_t i = 0; i < NREAD; i++)
		shmc__slot_release(&M, s[i]);
}

/* ---- the same through the API: one slot per thread ------------------ */

struct holder {
	shmc_t *c;
	pthread_barrier_t *got, *go;
	int rc;
};

static void *hold_slot(void *p)
{
	struct holder *h = p;
	size_t vl = 0;
	h->rc = shmc_get(h->c, "k", 1, NULL, &vl, NULL);
	pthread_barrier_wait(h->got);
	pthread_barrier_wait(h->go);
	return NULL;
}

static void *try_slot(void *p)
{
	struct holder *h = p;
	size_t vl = 0;
	h->rc = shmc_get(h->c, "k", 1, NULL, &vl, NULL);
	return NULL;
}

static void test_exhaust_api(void **state)
{
	(void)state;
	shmc_t *c = uh_create("ep-api", MEM, SEG, 2, 0);
	assert_int_equal(shmc_set(c, "k", 1, "v", 1, 0, 0), 0); /* slot 0 */
	pthread_barrier_t got, go;
	pthread_barrier_init(&got, NULL, 2);
	pthread_barrier_init(&go, NULL, 2);
	struct holder h1 = {c, &got, &go, 1}, h2 = {c, NULL, NULL, 1};
	pthread_t t1, t2;
	assert_int_equal(pthread_create(&t1, NULL, hold_slot, &h1), 0);
	pthread_barrier_wait(&got);
	assert_int_equal(h1.rc, SHMC_EBUFSIZE); /* slot 1, a hit */
	assert_int_equal(pthread_create(&t2, NULL, try_slot, &h2), 0);
	pthread_join(t2, NULL);
	assert_int_equal(h2.rc, SHMC_ENOSLOT);
	pthread_barrier_wait(&go);
	pthread_join(t1, NULL);
	/* t1 exited: its slot came back. */
	h2.rc = 1;
	assert_int_equal(pthread_create(&t2, NULL, try_slot, &h2), 0);
	pthread_join(t2, NULL);
	assert_int_equal(h2.rc, SHMC_EBUFSIZE);
	pthread_barrier_destroy(&got);
	pthread_barrier_destroy(&go);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("ep-api");
}

/* ---- read sections -------------------------------------------------- */

struct seen {
	int n, in_section;
	pid_t pid;
	uint64_t section_ns;
};

static int count_reader(const struct shmc_reader *r, void *arg)
{
	struct seen *s = arg;
	s->n++;
	if (s->pid == 0 || r->pid == s->pid) {
		s->in_section += (int)r->in_section;
		s->section_ns = r->section_ns;
	}
	return 0;
}

static void test_sections(void **state)
{
	(void)state;
	shmc_t *c = uh_create("ep-sec", MEM, SEG, 4, 0);
	assert_int_equal(shmc_read_end(c), SHMC_ENOSECTION);
	assert_int_equal(shmc_set(c, "k", 1, "value", 5, 0, 0), 0);
	const void *v;
	size_t vl;
	assert_int_equal(shmc_get_ref(c, "k", 1, &v, &vl, NULL),
	                 SHMC_ENOSECTION);
	assert_int_equal(shmc_read_begin(c), 0);
	assert_int_equal(shmc_read_begin(c), 0);
	assert_int_equal(shmc_read_begin(c), 0);
	struct seen s = {0};
	shmc_readers(c, count_reader, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.in_section, 1);
	assert_int_equal(shmc_get_ref(c, "k", 1, &v, &vl, NULL), 0);
	assert_int_equal(vl, 5);
	assert_memory_equal(v, "value", 5);
	assert_int_equal(shmc_read_end(c), 0);
	assert_int_equal(shmc_read_end(c), 0);
	/* still inside: the outermost end closes it */
	assert_int_equal(shmc_get_ref(c, "k", 1, &v, &vl, NULL), 0);
	assert_memory_equal(v, "value", 5);
	memset(&s, 0, sizeof(s));
	shmc_readers(c, count_reader, &s);
	assert_int_equal(s.in_section, 1);
	assert_int_equal(shmc_read_end(c), 0);
	memset(&s, 0, sizeof(s));
	shmc_readers(c, count_reader, &s);
	assert_int_equal(s.in_section, 0);
	assert_int_equal(shmc_get_ref(c, "k", 1, &v, &vl, NULL),
	                 SHMC_ENOSECTION);
	assert_int_equal(shmc_read_end(c), SHMC_ENOSECTION);
	/* Balanced again: a new section works. */
	assert_int_equal(shmc_read_begin(c), 0);
	assert_int_equal(shmc_read_end(c), 0);
	shmc_close(c);
	shmc_destroy("ep-sec");
}

/* ---- grace periods -------------------------------------------------- */

static void test_sync_self(void **state)
{
	(void)state;
	uint32_t s;
	assert_int_equal(shmc__slot_claim(&M, &s, NULL, NULL), 0);
	struct shmc__slot *sl = shmc__slot_at(&M, s);
	/* Nobody inside: a grace period is immediate. */
	assert_int_equal(shmc__synchronize(&M, s, 1000000, NULL, false, NULL),
	                 0);
	uint64_t e0 = M.hdr->epoch;
	shmc__read_enter(M.hdr, sl, false);
	assert_int_equal(sl->epoch, e0);
	assert_int_equal(shmc__synchronize(&M, s, 1000000, NULL, false, NULL),
	                 SHMC_EBUSY);
	assert_true(M.hdr->epoch > e0);
	/* Memory stamped before we entered is not held back by us. */
	assert_int_equal(shmc__epoch_safe(&M, e0, s, NULL, false, NULL), 1);
	assert_int_equal(shmc__epoch_safe(&M, M.hdr->epoch, s, NULL, false,
	                                  NULL),
	                 0);
	shmc__read_exit(sl);
	assert_int_equal(sl->epoch, 0);
	assert_int_equal(shmc__synchronize(&M, s, 1000000, NULL, false, NULL),
	                 0);
	shmc__slot_release(&M, s);
}

/* A child attaches to "ep", claims a slot, optionally enters a read
 * section, reports its slot on the pipe and waits to be killed. */
static pid_t child_reader(bool in_section, uint32_t *slot)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		struct shmc__map m = {.fd = -1};
		uint32_t s = UINT32_MAX;
		if (shmc__seg_open("ep", 0, &m) == 0 &&
		    shmc__slot_claim(&m, &s, NULL, NULL) == 0 && in_section)
			shmc__read_enter(m.hdr, shmc__slot_at(&m, s), false);
		if (write(p[1], &s, sizeof(s)) != sizeof(s))
			_exit(1);
		for (int i = 0; i < 3000; i++) /* bounded: 30 s */
			usleep(10000);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], slot, sizeof(*slot)), sizeof(*slot));
	close(p[0]);
	assert_true(*slot < NREAD);
	return pid;
}

static void kill_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
}

static void test_dead_child_probe(void **state)
{
	(void)state;
	uint32_t cs;
	pid_t pid = child_reader(false, &cs);
	struct shmc__slot *sl = shmc__slot_at(&M, cs);
	assert_int_equal(sl->state, SHMC__SLOT_USED);
	assert_int_equal(sl->pid, pid);
	/* Alive: the probe leaves it alone. */
	assert_int_equal(shmc__slot_probe(&M, cs, NULL, false, NULL), 1);
	assert_int_equal(sl->state, SHMC__SLOT_USED);
	kill_wait(pid);
	assert_int_equal(shmc__slot_probe(&M, cs, NULL, false, NULL), 0);
	assert_int_equal(sl->state, SHMC__SLOT_FREE);
	assert_int_equal(sl->pid, 0);
	/* and it can be claimed again, by us */
	uint32_t s;
	assert_int_equal(shmc__slot_claim(&M, &s, NULL, NULL), 0);
	assert_int_equal(s, cs);
	shmc__slot_release(&M, s);
}

static void test_dead_child_in_section(void **state)
{
	(void)state;
	uint32_t cs;
	pid_t pid = child_reader(true, &cs);
	struct shmc__slot *sl = shmc__slot_at(&M, cs);
	assert_int_not_equal(sl->epoch, 0);
	/* Alive and inside: a grace period stalls, and says so quickly. */
	uint64_t t0 = shmc__now_ns();
	assert_int_equal(shmc__synchronize(&M, UINT32_MAX, 20000000, NULL,
	                                   false, NULL),
	                 SHMC_ESTALLED);
	uint64_t took = shmc__now_ns() - t0;
	assert_true(took >= 20000000);
	assert_true(took < 2000000000ull);
	assert_int_not_equal(sl->stall_since, 0);
	kill_wait(pid);
	/* Dead: reclaimed by the grace period itself, which completes. */
	assert_int_equal(shmc__synchronize(&M, UINT32_MAX, 20000000, NULL,
	                                   false, NULL),
	                 0);
	assert_int_equal(sl->state, SHMC__SLOT_FREE);
	assert_int_equal(sl->epoch, 0);
}

/* The same story through the API: shmc_readers sees, then reclaims. */
static void test_readers_api(void **state)
{
	(void)state;
	shmc_t *c = NULL;
	assert_int_equal(shmc_open("ep", 0, &c), 0);
	assert_int_equal(shmc_read_begin(c), 0); /* our own slot, in section */
	assert_int_equal(shmc_read_end(c), 0);
	uint32_t cs;
	pid_t pid = child_reader(true, &cs);
	struct seen s = {.pid = pid};
	assert_int_equal(shmc_readers(c, count_reader, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.in_section, 1);
	/* A stalled grace period is shown with its duration. */
	assert_int_equal(shmc__synchronize(&M, UINT32_MAX, 5000000, NULL,
	                                   false, NULL),
	                 SHMC_ESTALLED);
	usleep(2000);
	memset(&s, 0, sizeof(s));
	s.pid = pid;
	assert_int_equal(shmc_readers(c, count_reader, &s), 0);
	assert_true(s.section_ns > 0);
	kill_wait(pid);
	memset(&s, 0, sizeof(s));
	assert_int_equal(shmc_readers(c, count_reader, &s), 1);
	assert_int_equal(s.n, 1);
	assert_int_equal(shmc_readers(c, count_reader, &s), 0);
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	assert_int_equal(st.readers, 1);
	assert_int_equal(st.processes, 1);
	shmc_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_claim_release, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exhaust, setup, teardown),
	    cmocka_unit_test(test_exhaust_api),
	    cmocka_unit_test(test_sections),
	    cmocka_unit_test_setup_teardown(test_sync_self, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dead_child_probe, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_dead_child_in_section, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_readers_api, setup, teardown),
	};
	th_private_dir();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
