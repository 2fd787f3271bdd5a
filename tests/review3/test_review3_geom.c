/*
 * test_review3_geom.c - a corrupt index_geom is never shifted by blindly
 * (suite 'review'; meant for the ASan+UBSan build with
 * UBSAN_OPTIONS=halt_on_error=1, where a shift by 64 or more traps).
 *
 *   garbage_geometry: the level in index_geom comes from shared memory.
 *     The split step shifted by it before checking it, and so did the
 *     index_lock owner-died path (which tidies the buckets around the
 *     split pointer).  For each of several garbage geometries (level 200,
 *     63, 41, all ones, a level the reservation cannot hold, a split
 *     pointer past its level) in a fresh cache: a process dies holding
 *     index_lock; then sets, gets, shmc_resize_index up and down (the
 *     first lock of index_lock takes the owner-died path), all of it
 *     again, and shmc_check, which must report the geometry.  Each call
 *     must return an error or work.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../mp/mp.h"
#include "internal.h"

#define MiB (1ull << 20)

static void report(const char *problem, void *arg)
{
	(void)arg;
	printf("check: %s\n", problem);
}

static int die_holding_index_lock(void *arg)
{
	const char *name = arg;
	shmc_t *c = NULL;
	int rc = shmc_open(name, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_strerror(rc));
	shmc__lock(&c->map.hdr->index_lock);
	_exit(MP_OK); /* holding it: the next locker gets EOWNERDEAD */
}

static void exercise(shmc_t *c, const char *tag)
{
	char key[48], buf[64];
	for (unsigned i = 0; i < 200; i++) {
		int n = snprintf(key, sizeof(key), "%s-%u", tag, i);
		int rc = shmc_set(c, key, (size_t)n, key, (size_t)n, 0, i);
		assert_true(rc == 0 || rc < 0);
	}
	for (unsigned i = 0; i < 200; i++) {
		int n = snprintf(key, sizeof(key), "%s-%u", tag, i);
		size_t vlen = sizeof(buf);
		int rc = shmc_get(c, key, (size_t)n, buf, &vlen, NULL);
		if (rc == 0)
			assert_memory_equal(buf, key, (size_t)n);
	}
	printf("  resize_index 65536: %d\n", shmc_resize_index(c, 65536));
	printf("  resize_index 256: %d\n", shmc_resize_index(c, 256));
	printf("  resize_index 4096: %d\n", shmc_resize_index(c, 4096));
}

static void one(uint64_t geom, unsigned i)
{
	char name[32];
	snprintf(name, sizeof(name), "r3-geom-%u", i);
	shmc_t *c = mp_create(name, 4 * MiB, 64u << 10, 16, 0);
	printf("index_geom %#llx (level %llu, split %llu), %llu buckets "
	       "reserved\n",
	       (unsigned long long)geom,
	       (unsigned long long)(geom >> SHMC__GEOM_LEVEL_SHIFT),
	       (unsigned long long)(geom & SHMC__GEOM_SPLIT_MASK),
	       (unsigned long long)c->map.hdr->index_max_buckets);
	__atomic_store_n(&c->map.hdr->index_geom, geom, __ATOMIC_RELEASE);

	/* First the owner-died path of index_lock (it tidies the buckets
	 * around the split pointer), then the plain one. */
	pid_t pid = mp_spawn(die_holding_index_lock, name);
	int st = 0;
	assert_int_equal(mp_wait(pid, 30, &st), 0);
	assert_true(mp_exited_ok(st));
	printf("  after a death holding index_lock:\n");
	exercise(c, "a");
	printf("  again:\n");
	exercise(c, "b");

	struct shmc_stats s;
	assert_int_equal(shmc_stats(c, &s), 0);
	int problems = shmc_check(c, report, NULL);
	printf("  shmc_check: %d problem(s)\n", problems);
	if (__atomic_load_n(&c->map.hdr->index_geom, __ATOMIC_ACQUIRE) == geom)
		assert_true(problems > 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
}

static void test_garbage_geometry(void **state)
{
	(void)state;
	const uint64_t lv = 1ull << SHMC__GEOM_LEVEL_SHIFT;
	const uint64_t geoms[] = {
	    200 * lv + 5,       /* level 200 */
	    63 * lv,            /* level 63: shifts fine, 2^63 buckets */
	    41 * lv + 1,        /* just past the largest level */
	    UINT64_MAX,         /* all ones: level 2^24 - 1 */
	    30 * lv,            /* a level this reservation cannot hold */
	    10 * lv + (1ull << 39), /* split pointer past its level */
	};
	for (unsigned i = 0; i < sizeof(geoms) / sizeof(geoms[0]); i++)
		one(geoms[i], i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_garbage_geometry, mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
