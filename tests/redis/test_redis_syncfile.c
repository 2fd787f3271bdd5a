/*
 * test_redis_syncfile.c - `shmcache stats` reading the record of `shmcache
 * sync` (SHMCACHE_DIR/shmcache-sync.NAME) that is not what the sync
 * wrote: anyone who can write the directory (/dev/shm by default) can
 * put something there.  Whatever it is, stats must finish (within 5 s)
 * with status 0 and not crash: a FIFO (whose open would wait for a
 * writer), a directory, a short file, a page of noise, a record with a
 * valid header and an address with no NUL.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "rhelp.h"

static char path[800];

/* Runs `shmcache stats NAME` (output dropped); its wait status. */
static int stats(const char *name)
{
	const char *tool = getenv("SHMCACHE_TOOL");
	if (!tool)
		th_skip("SHMCACHE_TOOL is not set");
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execl(tool, tool, "stats", name, (char *)NULL);
		_exit(127);
	}
	uint64_t until = rh_now_ns() + 5000000000ull;
	int st;
	while (waitpid(p, &st, WNOHANG) == 0) {
		if (rh_now_ns() > until) {
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
			fail_msg("shmcache stats did not finish within 5 s");
		}
		usleep(5000);
	}
	return st;
}

static void expect_ok(const char *name)
{
	int st = stats(name);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("shmcache stats: %s %d",
		         WIFSIGNALED(st) ? "signal" : "status",
		         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static void put(const void *p, size_t n)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static void test_stats_survives_any_record(void **state)
{
	(void)state;
	shmc_t *c = th_create("rec", 8u << 20);
	snprintf(path, sizeof(path), "%s/shmcache-sync.rec", th_private_dir());

	assert_int_equal(mkfifo(path, 0600), 0);
	expect_ok("rec");
	unlink(path);

	assert_int_equal(mkdir(path, 0700), 0);
	expect_ok("rec");
	rmdir(path);

	static unsigned char page[4096];
	put("shmcsync", 8);
	expect_ok("rec");

	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (unsigned char)(th_rand(&x) >> 24);
	put(page, sizeof(page));
	expect_ok("rec");

	/* A valid header; every other byte, the address included, 0xff. */
	memset(page, 0xff, sizeof(page));
	uint64_t magic = 0x636e7973636d6873ull;
	uint32_t version = 1, size = 512;
	memcpy(page, &magic, 8);
	memcpy(page + 8, &version, 4);
	memcpy(page + 12, &size, 4);
	put(page, sizeof(page));
	expect_ok("rec");

	unlink(path);
	shmc_close(c);
	assert_int_equal(shmc_destroy("rec"), 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stats_survives_any_record),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
