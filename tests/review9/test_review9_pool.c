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
 *  - audit_rereads_each_head (FAILS before the fix): the audit took a
 *    chain as quiet when its head was unlocked as it read the head's
 *    word, then walked the chain.  A writer that locks the head after
 *    that read and cuts the chain's empty tail (chain_shrink) makes the
 *    walk miss the tail; if the writer has not pushed it by the end of
 *    the walk, the pool words are unchanged, the walk counts as quiet,
 *    the audit gives the tail back, and the writer then pushes it again:
 *    one bucket twice on the free stack, handed out twice.  A child
 *    process deletes the only key of a chain's tail when the parent's
 *    audit has read the head (test-only fault point SHMC__IXF_AUDIT), and
 *    waits in its window (SHMC__IXF_SHRINK) until the audit is over; the
 *    audit must give nothing back and shmc_check must find no problem.
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

/* Key n of those whose hash h has h & mask == want. */
static int key_with(char *key, size_t size, unsigned n, uint64_t mask,
                    uint64_t want)
{
	unsigned found = 0;
	for (unsigned long i = 0;; i++) {
		int len = snprintf(key, size, "k%lu", i);
		uint64_t h = shmc__hash(key, (size_t)len);
		if ((h & mask) == want && found++ == n)
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
		/* bucket 0 of 1,024, and its buddy 1,024 */
		int len = key_with(key, sizeof(key), n, 2047, 1024);
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

/* ---- 2: the audit against a writer inside its chain -------------------- */

static int to_child[2], to_parent[2];

static void pipe_send(int fd)
{
	char b = 1;
	if (write(fd, &b, 1) != 1)
		_exit(5);
}

static void pipe_wait(int fd)
{
	char b;
	if (read(fd, &b, 1) != 1)
		_exit(6);
}

/* In the child: the tail is cut; let the parent's audit finish first. */
static void hold_in_shrink(int point)
{
	if (point == SHMC__IXF_SHRINK) {
		pipe_send(to_parent[1]);
		pipe_wait(to_child[0]);
	}
}

static int audit_hits;

/* In the parent: the audit has read the head's word; the child now
 * locks the head and cuts the tail, before the audit walks the chain. */
static void writer_after_head_read(int point)
{
	if (point != SHMC__IXF_AUDIT || audit_hits++)
		return;
	pipe_send(to_child[1]);
	pipe_wait(to_parent[0]);
}

static void audit_rereads_each_head(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "r9a-%d", (int)getpid());
	shmc_t *c = th_create(name, 16 * MiB);
	struct shmc *ci = (struct shmc *)c;
	int err = 0;
	struct shmc__thr *t = shmc__thr_get(ci, &err);
	assert_non_null(t);
	assert_int_equal(shmc__ix_resize(ci, t, 1024), 0);
	/* Bucket 5's chain: the head's 7 entries, 7 in the first overflow
	 * bucket, the 15th key alone in the second. */
	char key[32];
	int len = 0;
	for (unsigned n = 0; n < 15; n++) {
		len = key_with(key, sizeof(key), n, 1023, 5);
		assert_int_equal(shmc_set(c, key, (size_t)len, "v", 1, 0, 0), 0);
	}
	struct shmc__bucket *p1 = shmc__chain_next(ci, shmc__bucket_at(ci, 5));
	assert_non_null(p1);
	assert_non_null(shmc__chain_next(ci, p1)); /* the setting */
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(to_parent), 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open(name, 0, &cc) != 0)
			_exit(2);
		pipe_wait(to_child[0]);
		shmc__ix_fault = hold_in_shrink;
		shmc_del(cc, key, (size_t)len); /* the tail's only key */
		_exit(0);
	}
	struct shmc__pool_acct a;
	shmc__ix_fault = writer_after_head_read;
	int rc = shmc__pool_audit(ci, t, true, &a);
	shmc__ix_fault = NULL;
	if (audit_hits)
		pipe_send(to_child[1]); /* the writer pushes its tail */
	else
		kill(pid, SIGKILL); /* never started: no wait for it below */
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_int_equal(audit_hits, 1);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	printf("  audit: %s, %u given back\n", rc ? shmc_strerror(rc) : "quiet",
	       rc ? 0 : a.reclaimed);
	int problems = 0;
	shmc_check(c, report, &problems);
	assert_int_equal(shmc_close(c), 0);
	shmc_destroy(name);
	assert_true(rc != 0 || a.reclaimed == 0);
	assert_int_equal(problems, 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(trim_gives_back_dead_split_chain),
	    cmocka_unit_test(audit_rereads_each_head),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
