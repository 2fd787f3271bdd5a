/*
 * test_review3_pool.c - overflow links must fit the bucket lock word
 * (suite 'review').
 *
 *   links_fit_lock_word: the lock word keeps a chain's overflow link in 24
 *     bits (SHMC__LK_LINK_MAX), but the pool was an eighth of the index
 *     region with no cap: 2^24 buckets and more from 32 GiB reservations.
 *     Link 2^24 + x was stored as x, so the chain ran into pool bucket x
 *     (another chain's, or a free one) and the key appended there was lost
 *     to every reader.  The test makes a 64 GiB reservation (a sparse file:
 *     cheap), moves the pool's high-water mark to just under 2^24 (as if
 *     that many overflow buckets had been committed; the accounting is
 *     moved with it so shmc_check stays meaningful), grows the pool once
 *     and overflows one bucket.  Every key set must be found, none dropped,
 *     and shmc_check must be clean.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* shmc_check's report: counts what is not the pool's leak count. */
static void not_pool_leak(const char *problem, void *arg)
{
	if (!strstr(problem, "neither free, fresh nor linked")) {
		printf("  check: %s\n", problem);
		++*(int *)arg;
	}
}

/* Keys "pool-<n>" whose bucket under geometry g is b, nkeys of them. */
static void colliding_keys(shmc_t *c, uint64_t g, uint64_t b, char keys[][32],
                           unsigned nkeys)
{
	unsigned found = 0;
	for (uint64_t n = 0; found < nkeys; n++) {
		assert_true(n < (1ull << 32));
		char k[32];
		int len = snprintf(k, sizeof(k), "pool-%llu", (unsigned long long)n);
		if (shmc__geom_bucket(c, g, shmc__hash(k, (size_t)len)) == b)
			memcpy(keys[found++], k, (size_t)len + 1);
	}
}

static void test_links_fit_lock_word(void **state)
{
	(void)state;
	const char *name = "r3-pool";
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 64 * MiB;
	o.max_memory = 64 * GiB;
	o.max_readers = 8;
	th_private_dir();
	shmc_t *c = NULL;
	int rc = shmc_create(name, &o, &c);
	if (rc == -ENOMEM || rc == -EFBIG || rc == -ENOSPC)
		th_skip("no room for a 64 GiB sparse reservation here");
	assert_int_equal(rc, 0);
	struct shmc__hdr *h = c->map.hdr;
	/* 64 GiB of reservation: 2^28 buckets, an eighth of them is past
	 * what 24 bits of link can name. */
	assert_true(h->index_max_buckets / 8 > SHMC__LK_LINK_MAX);

	struct shmc__thr *t = shmc__thr_get(c, &rc);
	assert_non_null(t);
	/* As if 2^24 - 128 - 1 overflow buckets were committed and all of
	 * them in use: the next pool growth hands out the links around
	 * 2^24.  The budget moves with pool_committed (which committed is
	 * derived from), so the
	 * accounting shmc_check verifies still adds up. */
	uint32_t have = SHMC__LK_LINK_MAX - 128;
	uint64_t extra = (uint64_t)(have - h->pool_committed) * SHMC__BUCKET_SIZE;
	shmc__log_lock(c);
	h->memory += extra;
	h->pool_committed = have;
	h->pool_free = 0; /* empty stack: what was free is "in use" */
	h->pool_nfree = 0;
	h->pool_fresh = have + 1; /* and no fresh bucket left */
	shmc__log_unlock(c);
	shmc__ix_prepare(c, t); /* grows the pool by one chunk */
	assert_true(h->pool_committed > have);
	/* As if the chunk but its last bucket had been handed out too: the
	 * next claim takes the highest link. */
	h->pool_fresh = h->pool_committed;

	/* 7 ways fill the bucket; the 8th key goes to an overflow bucket,
	 * the last one of the chunk (the highest link). */
	uint64_t g = shmc__load(&h->index_geom, __ATOMIC_ACQUIRE);
	char keys[8][32];
	colliding_keys(c, g, 3, keys, 8);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(shmc_set(c, keys[i], strlen(keys[i]), keys[i],
		                          strlen(keys[i]), 0, i),
		                 0);
	struct shmc__bucket *bk = shmc__bucket_at(c, 3);
	uint32_t link = shmc__lk_link(shmc__load(&bk->lock, __ATOMIC_ACQUIRE));
	assert_true(link != 0);

	for (unsigned i = 0; i < 8; i++) {
		char buf[64];
		size_t vlen = sizeof(buf);
		rc = shmc_get(c, keys[i], strlen(keys[i]), buf, &vlen, NULL);
		if (rc != 0)
			fail_msg("key %u (%s) set but not found: %s (chain link "
			         "%u)",
			         i, keys[i], shmc_err_name(rc), link);
		assert_int_equal(vlen, strlen(keys[i]));
		assert_memory_equal(buf, keys[i], vlen);
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	assert_int_equal(st.index_drops, 0);
	/* The buckets faked "in use" above are in no chain: the pool's
	 * accounting reports them, and only it. */
	int other = 0;
	shmc_check(c, not_pool_leak, &other);
	assert_int_equal(other, 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_links_fit_lock_word),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
