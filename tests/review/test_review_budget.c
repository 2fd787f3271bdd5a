/*
 * test_review_budget.c - a live grow overshoots the budget (suite 'review').
 *
 * The grow step used to reserve k segments as holes and drop log_lock for
 * the fallocate, without counting them.  Meanwhile anything else that
 * commits under log_lock (ix_commit when the index splits, pool_grow) saw
 * the reserved room as free and took it; then the grow step added all k
 * segments anyway, and the cache ended above its budget.  Now every
 * commit happens under log_lock and is counted by the directory (log.c).
 *
 * The grow step's first fallocate is intercepted (shmc__sys) to start the
 * index growth that writers trigger under live load right in the middle
 * of it, every time.
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
static pthread_t g_th;

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
		/* Not joined here: it may need log_lock, which a commit
		 * now holds around its fallocate. */
		if (pthread_create(&g_th, NULL, grow_index, NULL) == 0)
			g_fired = 1;
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
	g_batch_len = ci->seg_size;

	/* Grow so that exactly 16 segments fit, plus 4 KiB. */
	uint64_t to = shmc__committed(ci) + 16 * g_batch_len + 4096;
	assert_true(to > h->memory && to <= h->max_memory);
	shmc__sys.fallocate = hook_fallocate;
	int rc = shmc_resize(c, to, 0, NULL, NULL);
	shmc__sys_reset();
	assert_int_equal(rc, 0);
	assert_true(g_fired);
	void *trc;
	pthread_join(g_th, &trc);
	uint64_t committed = shmc__committed(ci);
	printf("  budget %llu, committed %llu\n", (unsigned long long)h->memory,
	       (unsigned long long)committed);
	int problems = shmc_check(c, problem, NULL);
	if (committed > h->memory || problems)
		fail_msg("after the grow: committed %llu > budget %llu by %llu "
		         "bytes; shmc_check: %d problem(s)",
		         (unsigned long long)committed,
		         (unsigned long long)h->memory,
		         (unsigned long long)(committed - h->memory), problems);
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
