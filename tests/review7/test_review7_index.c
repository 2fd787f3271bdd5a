/*
 * test_review7_index.c - review 7 of the index's recent mechanisms
 * (lib/index.c): the tidy after a dead index_lock owner, and the trim of
 * index pages after a merge.
 *
 *  - tidy_stays_committed (FAILS before the fix): a process SIGKILLed
 *    holding index_lock; the next open tidies buckets p, p + 2^L, ...;
 *    bucket p + 2^L is past the index in use and, at a chunk boundary,
 *    past index_committed: locking it wrote an index page no count
 *    covers (a block the budget does not see; SIGBUS on a full tmpfs).
 *  - trim_waits_for_readers (FAILS before the fix): a reader process
 *    inside its read section may still hold the old geometry and read
 *    the buckets a merge gave up; ix_trim punched their pages at once
 *    (a read of the hole allocates it again on tmpfs, uncounted).
 *  - index_lock_owner_vanished (FAILS before the fix): index_lock names a
 *    thread that does not exist (no robust list will mark it dead).
 *    shmc__lock reaps such an owner after 2 s, but the index's own
 *    growth and tidy only ever trylock index_lock: the index never grew
 *    again and a growing cache forgot keys.
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

static int seq;

static const char *uname_(const char *base)
{
	static char n[64];
	snprintf(n, sizeof(n), "%s%d-%d", base, (int)getpid(), seq++);
	return n;
}

static bool ix_has_data(shmc_t *c, uint64_t from, uint64_t to)
{
	struct shmc *ci = (struct shmc *)c;
	return shmc__seg_has_data(&ci->map, ci->map.hdr->index_off + from,
	                          to - from);
}

/* ---- 1: the tidy after a dead index_lock owner -------------------------- */

static void tidy_stays_committed(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "%s", uname_("ts"));
	shmc_t *c = th_create(name, 16 * MiB);
	struct shmc *ci = (struct shmc *)c;
	struct shmc__hdr *h = ci->map.hdr;
	uint64_t g = shmc__load(&h->index_geom, __ATOMIC_ACQUIRE);
	uint64_t nb = 1ull << (g >> SHMC__GEOM_LEVEL_SHIFT);
	uint64_t p = g & SHMC__GEOM_SPLIT_MASK;
	uint64_t ic = h->index_committed;
	printf("  geometry 2^%u + %llu, index_committed %llu\n",
	       (unsigned)(g >> SHMC__GEOM_LEVEL_SHIFT), (unsigned long long)p,
	       (unsigned long long)ic);
	/* The setting this test is about: the tidy's bucket p + 2^L lies
	 * past what is committed. */
	assert_true((p + nb) * SHMC__BUCKET_SIZE >= ic);
	assert_false(ix_has_data(c, ic, ic + 64 * 1024));
	assert_int_equal(shmc_close(c), 0);

	/* A process dies holding index_lock (a split or growth in it). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		shmc_t *cc = NULL;
		if (shmc_open(name, 0, &cc) != 0)
			_exit(2);
		if (shmc__lock(&((struct shmc *)cc)->map.hdr->index_lock) != 0)
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);

	/* The next open tidies (shmc__ix_recover_open). */
	assert_int_equal(shmc_open(name, 0, &c), 0);
	ci = (struct shmc *)c;
	h = ci->map.hdr;
	assert_int_equal(h->index_committed, ic);
	bool leaked = ix_has_data(c, ic, ic + 64 * 1024);
	printf("  index past index_committed after the tidy: %s\n",
	       leaked ? "written (no count covers it)" : "a hole");
	assert_false(leaked);
	assert_int_equal(shmc_check(c, NULL, NULL), 0);
	shmc_close(c);
	shmc_destroy(name);
}

/* ---- 2: index pages punched under a reader ------------------------------ */

static void trim_waits_for_readers(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "%s", uname_("tr"));
	shmc_t *c = th_create(name, 16 * MiB);
	struct shmc__hdr *h = ((struct shmc *)c)->map.hdr;
	uint64_t small = shmc__geom_buckets(h->index_geom);
	assert_int_equal(shmc_resize_index(c, 4 * small), 0);
	uint64_t lo = small * SHMC__BUCKET_SIZE;
	uint64_t hi = h->index_committed;
	assert_true(hi > lo);
	assert_true(ix_has_data(c, lo, hi));

	int go[2], back[2];
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(back), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A reader that entered its section under the big geometry:
		 * it may read any bucket of it until it leaves. */
		shmc_t *cc = NULL;
		char b = 0;
		if (shmc_open(name, 0, &cc) != 0 || shmc_read_begin(cc) != 0)
			_exit(2);
		if (write(back[1], &b, 1) != 1 || read(go[0], &b, 1) != 1)
			_exit(3);
		shmc_read_end(cc);
		shmc_close(cc);
		_exit(0);
	}
	char b = 0;
	assert_int_equal(read(back[0], &b, 1), 1);

	/* Merge back down while the reader is inside. */
	assert_int_equal(shmc_resize_index(c, small), 0);
	assert_int_equal(shmc__geom_buckets(h->index_geom), small);
	bool kept = ix_has_data(c, lo, hi);
	printf("  index pages past the merged geometry, reader inside: %s\n",
	       kept ? "kept" : "punched");

	assert_int_equal(write(go[1], &b, 1), 1);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	assert_true(kept);

	/* The reader is gone: the next trim gives the pages back. */
	assert_int_equal(shmc_resize_index(c, small), 0);
	assert_false(ix_has_data(c, lo + 64 * 1024 * 4, hi));
	assert_int_equal(h->index_committed <= lo + 64 * 1024, 1);
	assert_int_equal(shmc_check(c, NULL, NULL), 0);
	close(go[0]);
	close(go[1]);
	close(back[0]);
	close(back[1]);
	shmc_close(c);
	shmc_destroy(name);
}

/* ---- 3: index_lock held by a thread that does not exist ---------------- */

static void index_lock_owner_vanished(void **state)
{
	(void)state;
#ifndef __GLIBC__
	skip();
#else
	char name[64];
	snprintf(name, sizeof(name), "%s", uname_("iv"));
	shmc_t *c = th_create(name, 16 * MiB);
	struct shmc__hdr *h = ((struct shmc *)c)->map.hdr;
	uint64_t nb0 = shmc__geom_buckets(h->index_geom);
	pid_t ghost = 4000000;
	while (kill(ghost, 0) == 0 || errno != ESRCH)
		ghost--;
	/* Locked by a thread id nobody has: no robust list will ever mark
	 * it dead. */
	h->index_lock.__data.__lock = ghost;
	h->index_lock.__data.__owner = ghost;
	/* New keys, beyond 3 per bucket (the cache evicts as it fills),
	 * for up to 20 s: long past the 2 s after which shmc__lock would
	 * reap such an owner. */
	uint64_t t0 = shmc__now_ns(), n = 0;
	char key[32], v[16] = "v";
	while (shmc__geom_buckets(h->index_geom) == nb0 &&
	       shmc__now_ns() - t0 < 20ull * 1000 * 1000 * 1000) {
		for (int i = 0; i < 1000; i++, n++) {
			int kl = snprintf(key, sizeof(key), "k%llu",
			                  (unsigned long long)n);
			assert_int_equal(shmc_set(c, key, (size_t)kl, v,
			                          sizeof(v), 0, 0), 0);
		}
	}
	uint64_t nb = shmc__geom_buckets(h->index_geom);
	printf("  index %llu -> %llu buckets after %.1f s of sets\n",
	       (unsigned long long)nb0, (unsigned long long)nb,
	       (double)(shmc__now_ns() - t0) / 1e9);
	assert_true(nb > nb0);
	assert_int_equal(shmc_check(c, NULL, NULL), 0);
	shmc_close(c);
	shmc_destroy(name);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tidy_stays_committed),
	    cmocka_unit_test(trim_waits_for_readers),
	    cmocka_unit_test(index_lock_owner_vanished),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
