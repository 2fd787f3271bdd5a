/*
 * test_review9_pool.c - review 9: the overflow pool's accounting against
 * the index's trim (lib/index.c, OVERFLOW-BUCKET POOL, ix_trim).
 *
 *  - trim_gives_back_dead_split_chain (FAILS before the fix): a split
 *    killed after its step 1 leaves the buddy bucket p + 2^L, past the
 *    geometry, a chain of overflow buckets (the tidy empties its entries,
 *    the links stay, for the next split of p to take over).  The audit at
 *    the next open finds those buckets linked from a committed head and
 *    is done.  A later shrink of the index then merges and trims: the
 *    buddy's page is punched, its lock word - the only link to its chain
 *    - with it, and the chain's buckets were neither free, fresh nor
 *    linked, for good (no death asked for another audit).  A child
 *    process splits bucket 0 of 1,024, whose chain holds 20 keys that
 *    all move to the buddy, and is SIGKILLed at the test-only fault point
 *    of its second chain_append (shmc__ix_fault); the parent opens the
 *    cache, shrinks the index to 256 buckets, and shmc_check must find
 *    every pool bucket.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)
#define KEYS 20

static void report(const char *problem, void *arg)
{
	printf("  check: %s\n", problem);
	++*(int *)arg;
}

static unsigned appends;

/* In the child: die inside the second chain_append (popped, not linked). */
static void die_at_second_append(int point)
{
	if (point == SHMC__IXF_APPEND && ++appends == 2)
		raise(SIGKILL);
}

/* Key n of those that go to bucket 0 of 1,024 and to its buddy 1,024. */
static int buddy_key(char *key, size_t size, unsigned n)
{
	unsigned found = 0;
	for (unsigned long i = 0;; i++) {
		int len = snprintf(key, size, "k%lu", i);
		uint64_t h = shmc__hash(key, (size_t)len);
		if ((h & 2047) == 1024 && found++ == n)
			return len;
	}
}

static void trim_gives_back_dead_split_chain(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "r9t-%d", (int)getpid());
	shmc_t *c = th_create(name, 16 * MiB);
	struct shmc *ci = (struct shmc *)c;
	int err = 0;
	struct shmc__thr *t = shmc__thr_get(ci, &err);
	assert_non_null(t);
	assert_int_equal(shmc__ix_resize(ci, t, 1024), 0);
	uint64_t g = shmc__load(&ci->map.hdr->index_geom, __ATOMIC_ACQUIRE);
	assert_int_equal(g, (uint64_t)10 << SHMC__GEOM_LEVEL_SHIFT);
	char key[32];
	for (unsigned n = 0; n < KEYS; n++) {
		int len = buddy_key(key, sizeof(key), n);
		assert_int_equal(shmc_set(c, key, (size_t)len, "v", 1, 0, 0), 0);
	}
	assert_int_equal(shmc_close(c), 0);

	/* A process splits bucket 0 and dies in its step 1: the buddy 1,024
	 * has a head of 7 entries linked to one overflow bucket of 7. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open(name, 0, &cc) != 0)
			_exit(2);
		struct shmc__thr *ct = shmc__thr_get((struct shmc *)cc, &err);
		if (!ct)
			_exit(3);
		shmc__ix_fault = die_at_second_append;
		shmc__ix_resize((struct shmc *)cc, ct, 1025);
		_exit(4);
	}
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

	/* The open tidies and audits: the popped bucket comes back, the
	 * buddy's chain is linked from a committed head, nothing leaks. */
	int problems = 0;
	assert_int_equal(shmc_open(name, 0, &c), 0);
	ci = (struct shmc *)c;
	t = shmc__thr_get(ci, &err);
	assert_non_null(t);
	shmc_check(c, report, &problems);
	assert_int_equal(problems, 0);
	uint64_t w = shmc__load(&shmc__bucket_at(ci, 1024)->lock,
	                        __ATOMIC_ACQUIRE);
	assert_int_not_equal(shmc__lk_link(w), 0); /* the setting */

	/* Shrink: the merges never touch 1,024, the trim punches its page. */
	assert_int_equal(shmc__ix_resize(ci, t, 256), 0);
	assert_true(ci->map.hdr->index_committed <= 1024 * SHMC__BUCKET_SIZE);
	shmc_check(c, report, &problems);
	printf("  %d problems after the shrink\n", problems);
	assert_int_equal(shmc_close(c), 0);
	shmc_destroy(name);
	assert_int_equal(problems, 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(trim_gives_back_dead_split_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
