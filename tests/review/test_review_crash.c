/*
 * test_review_crash.c - a split killed inside its step 3 (suite 'review').
 *
 * ix_split_one() step 3 rewrites bucket p's chain in place with
 * chain_write(): slot 0 gets p's first own entry, slot 1 its second, ...
 * An entry that moves down (slot i -> slot j < i) exists in both slots until
 * slot i is overwritten later in the same pass.  A SIGKILL between those
 * stores leaves the key twice in p's chain.  The repair run by the next
 * index_lock owner (ix_sanitize) drops only entries that belong to another
 * bucket, so the duplicate stays: shmc_del() removes the first copy and
 * the key is still there (and once its segment is evicted, the second copy
 * points into reused memory: evict_items moves or clears one entry per
 * item).
 *
 * The test builds exactly the state such a kill leaves - a real split of
 * bucket 0, then bucket 0's slots 2 and 3 as they were before chain_write
 * reached them, and index_lock owned by a dead thread - and runs the real
 * repair.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)

static void *die_holding_index_lock(void *p)
{
	struct shmc *c = p;
	shmc__lock(&c->map.hdr->index_lock);
	return NULL; /* exits holding it: the next locker gets EOWNERDEAD */
}

static void split_killed_in_step3_leaves_duplicate(void **state)
{
	(void)state;
	th_private_dir();
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 16 * MiB;
	o.index_buckets = 256;
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("split3", &o, &c), 0);
	struct shmc *ci = (struct shmc *)c;
	struct shmc__hdr *h = ci->map.hdr;
	assert_int_equal(shmc__geom_buckets(h->index_geom), 256);

	/* Keys of bucket 0: P stay in 0 after its split, B go to 256. */
	char pk[2][16], bk[2][16];
	int np = 0, nb = 0;
	for (unsigned i = 0; (np < 2 || nb < 2) && i < 1000000; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "k%u", i);
		uint64_t hh = shmc__hash(k, (size_t)kl);
		if ((hh & 255) != 0)
			continue;
		if ((hh & 256) && nb < 2)
			strcpy(bk[nb++], k);
		else if (!(hh & 256) && np < 2)
			strcpy(pk[np++], k);
	}
	assert_int_equal(np, 2);
	assert_int_equal(nb, 2);
	/* Bucket 0 = [B1, P1, B2, P2]. */
	const char *order[4] = {bk[0], pk[0], bk[1], pk[1]};
	for (int i = 0; i < 4; i++)
		assert_int_equal(shmc_set(c, order[i], strlen(order[i]), "val",
		                          3, 0, 0),
		                 0);
	struct shmc__bucket *b0 = shmc__bucket_at(ci, 0);
	uint64_t eB2 = b0->e[2], eP2 = b0->e[3];
	assert_true(eB2 && eP2);

	/* A real split of bucket 0: 256 = [B1, B2], 0 = [P1, P2]. */
	assert_int_equal(shmc_resize_index(c, 257), 0);
	struct shmc__bucket *b256 = shmc__bucket_at(ci, 256);
	assert_int_equal(b256->e[1], eB2);
	assert_int_equal(b0->e[1], eP2);
	assert_int_equal(b0->e[2], 0);
	assert_int_equal(b0->e[3], 0);

	/* The kill: step 3 had stored slots 0 and 1 of bucket 0, not yet
	 * slots 2 and 3, which still hold what they held before. */
	b0->e[2] = eB2;
	b0->e[3] = eP2;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, die_holding_index_lock, ci),
	                 0);
	pthread_join(th, NULL);

	/* The next index_lock owner repairs (ix_sanitize around p). */
	assert_int_equal(shmc_resize_index(c, 257), 0);

	/* Delete P2: it must be gone. */
	assert_int_equal(shmc_del(c, pk[1], strlen(pk[1])), 0);
	char buf[16];
	size_t n = sizeof(buf);
	int rc = shmc_get(c, pk[1], strlen(pk[1]), buf, &n, NULL);
	if (rc != SHMC_ENOTFOUND) {
		int problems = shmc_check(c, NULL, NULL);
		fail_msg("key %s still found after shmc_del (get -> %s); "
		         "bucket 0 = %#llx %#llx %#llx %#llx; shmc_check "
		         "reports %d problem(s)",
		         pk[1], shmc_err_name(rc), (unsigned long long)b0->e[0],
		         (unsigned long long)b0->e[1],
		         (unsigned long long)b0->e[2],
		         (unsigned long long)b0->e[3], problems);
	}
	shmc_close(c);
	shmc_destroy("split3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(split_killed_in_step3_leaves_duplicate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
