/*
 * test_huge.c - a cache on huge pages (suite 'tmpfs').
 *
 * Mounts a tmpfs with huge=within_size on a private directory (needs
 * root; exits 77 with the reason when mount is refused) and checks:
 *  - SHMC_CREATE_HUGE is refused, with -ENOTSUP, on a directory whose
 *    tmpfs gives no huge pages (the same tmpfs type, mounted huge=never);
 *  - on the huge tmpfs the cache's memory really is 2 MiB pages: the
 *    mapping's huge-page bytes (shmc_info().huge_bytes) grow as sets
 *    touch it;
 *  - every commit and punch is whole huge pages: through fills, a grow
 *    and a shrink the file's allocated blocks never exceed the budget,
 *    and check is clean.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#define MiB (1ull << 20)

static char huge_dir[64], plain_dir[64];
static int mounted;

static void unmount_all(void)
{
	if (mounted & 1)
		umount2(huge_dir, MNT_DETACH);
	if (mounted & 2)
		umount2(plain_dir, MNT_DETACH);
	rmdir(huge_dir);
	rmdir(plain_dir);
}

static void mount_one(char *dir, const char *opts, int bit)
{
	snprintf(dir, 64, "/tmp/shmc-huge.XXXXXX");
	if (!mkdtemp(dir))
		th_skip("mkdtemp failed");
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
		char why[256];
		snprintf(why, sizeof(why), "cannot mount a tmpfs (%s): %s "
		         "(needs root)", opts, strerror(errno));
		unmount_all();
		th_skip(why);
	}
	mounted |= bit;
}

static void problem(const char *p, void *arg)
{
	(void)arg;
	printf("  check: %s\n", p);
}


static void within(shmc_t *c, const char *name, const char *when)
{
	struct shmc_stats st;
	struct shmc_info in;
	assert_int_equal(shmc_stats(c, &st), 0);
	assert_int_equal(shmc_info(c, &in), 0);
	uint64_t a = th_file_allocated(name);
	int problems = shmc_check(c, problem, NULL);
	printf("  %s: allocated %llu MiB, committed %llu MiB, budget %llu "
	       "MiB, huge-mapped here %llu MiB, %d problem(s)\n",
	       when, (unsigned long long)(a >> 20),
	       (unsigned long long)(st.committed_bytes >> 20),
	       (unsigned long long)(st.memory >> 20),
	       (unsigned long long)(in.huge_bytes >> 20), problems);
	if (a > st.memory)
		fail_msg("%s: the file holds %llu bytes over its budget", when,
		         (unsigned long long)(a - st.memory));
	assert_int_equal(problems, 0);
}

static void fill(shmc_t *c, const char *prefix, uint64_t bytes)
{
	static char v[4000];
	char key[64];
	for (uint64_t i = 0; i * sizeof(v) < bytes; i++) {
		snprintf(key, sizeof(key), "%s%llu", prefix,
		         (unsigned long long)i);
		memset(v, (int)i, sizeof(v));
		assert_int_equal(shmc_set(c, key, strlen(key), v, sizeof(v), 0,
		                          0),
		                 0);
	}
}

static void huge_cache(void **state)
{
	(void)state;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 96 * MiB;
	o.max_memory = 512 * MiB;
	o.flags = SHMC_CREATE_HUGE;
	shmc_t *c = NULL;

	setenv("SHMCACHE_DIR", plain_dir, 1);
	assert_int_equal(shmc_create("h", &o, &c), -ENOTSUP);

	setenv("SHMCACHE_DIR", huge_dir, 1);
	int rc = shmc_create("h", &o, &c);
	if (rc)
		fail_msg("create on %s: %s", huge_dir, shmc_strerror(rc));
	struct shmc_info in;
	assert_int_equal(shmc_info(c, &in), 0);
	assert_true(in.flags & SHMC_CREATE_HUGE);
	assert_true(in.segment_size >= 2 * MiB);
	within(c, "h", "created");
	fill(c, "a", 200 * MiB);
	assert_int_equal(shmc_info(c, &in), 0);
	if (in.huge_bytes < 32 * MiB)
		fail_msg("only %llu bytes of the mapping on huge pages",
		         (unsigned long long)in.huge_bytes);
	within(c, "h", "full");
	assert_int_equal(shmc_resize(c, 256 * MiB, 0, NULL, NULL), 0);
	fill(c, "b", 300 * MiB);
	within(c, "h", "grown to 256 MiB and full");
	assert_int_equal(shmc_resize(c, 48 * MiB, 0, NULL, NULL), 0);
	within(c, "h", "shrunk to 48 MiB");
	fill(c, "c", 100 * MiB);
	within(c, "h", "full again");
	shmc_close(c);
	assert_int_equal(shmc_destroy("h"), 0);
}

int main(void)
{
	if (geteuid() != 0)
		th_skip("needs root to mount a tmpfs with huge=within_size");
	mount_one(plain_dir, "size=64m,huge=never", 2);
	mount_one(huge_dir, "size=640m,huge=within_size", 1);
	atexit(unmount_all);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(huge_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
