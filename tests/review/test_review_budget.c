/*
 * test_review_budget.c - a live grow overshoots the budget (suite 'review').
 *
 * shmc__log_grow_step() reserves k segments as holes and drops log_lock
 * for the fallocate, without counting them in hdr->committed.  Meanwhile
 * anything else that commits under log_lock (ix_commit when the index
 * splits, pool_grow) sees the reserved room as free and takes it; then the
 * grow step adds all k segments anyway.  The cache ends up above its
 * budget ("committed bytes never exceed the budget", log.c), and
 * shmc_check reports it.
 *
 * The fallocate of the grow batch is intercepted (shmc__sys) so the index
 * growth that writers trigger under live load lands in that window every
 * time.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)

static shmc_t *g_c;
static uint64_t g_batch_len;
static int g_fired;

static void *grow_index(void *p)
{
	(void)p;
	/* What items_delta -> shmc__ix_maybe_grow does for writers. */
	int rc = shmc_resize_index(g_c, 8192);
	return (void *)(intptr_t)rc;
}

static int hook_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (!g_fired && mode == 0 && (uint64_t)len == g_batch_len) {
		g_fired = 1;
		pthread_t th;
		void *rc;
		if (pthread_create(&th, NULL, grow_index, NULL) == 0)
			pthread_join(th, &rc);
	}
	return fallocate(fd, mode, off, len);
}

static void problem(const char *p, void *arg)
{
	(void)arg;
	printf("  check: %s\n", p);
}

static void grow_window_overcommits(void **state)
{
	(void)state;
	th_private_dir();
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 16 * MiB;
	o.max_memory = 64 * MiB;
	o.index_buckets = 256;
	shmc_t *c = NULL;
	assert_int_equal(shmc_create("ovc", &o, &c), 0);
	struct shmc *ci = (struct shmc *)c;
	struct shmc__hdr *h = ci->map.hdr;
	g_c = c;
	g_batch_len = 16ull * ci->seg_size;

	/* Grow so that exactly one batch of 16 segments fits, plus 4 KiB. */
	uint64_t to = h->committed + g_batch_len + 4096;
	assert_true(to > h->memory && to <= h->max_memory);
	shmc__sys.fallocate = hook_fallocate;
	int rc = shmc_resize(c, to, 0, NULL, NULL);
	shmc__sys_reset();
	assert_int_equal(rc, 0);
	assert_true(g_fired);
	printf("  budget %llu, committed %llu\n", (unsigned long long)h->memory,
	       (unsigned long long)h->committed);
	int problems = shmc_check(c, problem, NULL);
	if (h->committed > h->memory || problems)
		fail_msg("after the grow: committed %llu > budget %llu by %llu "
		         "bytes; shmc_check: %d problem(s)",
		         (unsigned long long)h->committed,
		         (unsigned long long)h->memory,
		         (unsigned long long)(h->committed - h->memory), problems);
	shmc_close(c);
	shmc_destroy("ovc");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(grow_window_overcommits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
