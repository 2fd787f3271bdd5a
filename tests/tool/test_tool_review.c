/*
 * test_tool_review.c - regression tests for tool bugs found in review.
 * Each test fails on the bug it names and passes once it is fixed:
 *
 *   restore_key_plus_value   a record whose key + value does not fit one
 *                            segment (each alone within max_value) passed
 *                            validation, so the records before it were
 *                            stored and then the load stopped: a partial
 *                            load of a file that cannot load.
 *   resize_relative_overflow "+HUGE" wrapped cur + d around 2^64 and so
 *                            shrank the cache instead of refusing.
 *   set_stdin_unbounded      `set` read stdin to its end with no bound,
 *                            so `set C K < /dev/zero` ate all memory
 *                            (here: it swallows 256 MiB instead of
 *                            stopping past the largest possible value).
 *   list_hostile_names       `list` printed file names from the shared
 *                            (world-writable) directory raw: terminal
 *                            escapes on a tty, invalid UTF-8 in --json.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "../helpers.h"
#include "run.h"

static void ok(struct run r)
{
	if (r.status != 0)
		fail_msg("status %d, stderr '%s'", r.status, r.err);
	run_free(&r);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A valid dump (snapshot.h, version 2) of n records into path. */
struct rec {
	const char *key;
	size_t klen;
	const uint8_t *val;
	uint64_t vlen;
};

static void write_dump(const char *path, const struct rec *r, size_t n)
{
	size_t total = 32 + 24;
	for (size_t i = 0; i < n; i++)
		total += 24 + r[i].klen + r[i].vlen;
	uint8_t *b = calloc(1, total), *p = b;
	assert_non_null(b);
	memcpy(p, "SHMCDUMP", 8);
	put32(p + 8, 2);
	put32(p + 12, 32);
	put64(p + 16, (uint64_t)time(NULL));
	p += 32;
	for (size_t i = 0; i < n; i++) {
		put32(p, (uint32_t)r[i].klen);
		put32(p + 4, 0);
		put32(p + 8, 0); /* never expires */
		put32(p + 12, 0);
		put64(p + 16, r[i].vlen);
		memcpy(p + 24, r[i].key, r[i].klen);
		if (r[i].vlen)
			memcpy(p + 24 + r[i].klen, r[i].val, r[i].vlen);
		p += 24 + r[i].klen + r[i].vlen;
	}
	memcpy(p, "SHMCEND\0", 8);
	put64(p + 8, n);
	put64(p + 16, XXH64(b, total - 8, 0));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, total), (ssize_t)total);
	close(fd);
	free(b);
}

static void test_restore_key_plus_value(void **state)
{
	(void)state;
	ok(run_v("create", "rkv", "--memory", "8M", "--segment-size", "64K",
	         NULL));
	shmc_t *c = NULL;
	assert_int_equal(shmc_open("rkv", 0, &c), 0);
	struct shmc_info info;
	assert_int_equal(shmc_info(c, &info), 0);
	shmc_close(c);
	/* record 0 fits; record 1 has vlen == max_value (accepted alone)
	 * but a 200-byte key, so key + value overflow the segment */
	uint8_t *big = calloc(1, info.max_value);
	assert_non_null(big);
	char key[200];
	memset(key, 'k', sizeof(key));
	struct rec recs[] = {{"first", 5, (const uint8_t *)"v", 1},
	                     {key, sizeof(key), big, info.max_value}};
	char path[600];
	snprintf(path, sizeof(path), "%s/kv.dump", th_private_dir());
	write_dump(path, recs, 2);
	free(big);
	struct run r = run_v("restore", "rkv", path, NULL);
	assert_int_not_equal(r.status, 0);
	run_free(&r);
	/* a file that cannot load loads nothing */
	r = run_v("get", "rkv", "first", NULL);
	if (r.status != 1)
		fail_msg("restore refused the file but stored record 0 "
		         "(get status %d, value '%s')",
		         r.status, r.out);
	run_free(&r);
	/* the same file minus the oversized record loads */
	write_dump(path, recs, 1);
	ok(run_v("restore", "rkv", path, NULL));
	r = run_v("get", "rkv", "first", NULL);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.out, "v");
	run_free(&r);
	unlink(path);
	ok(run_v("destroy", "rkv", NULL));
}

static uint64_t memory_of(const char *name)
{
	struct run r = run_v("stats", name, "--json", NULL);
	assert_int_equal(r.status, 0);
	double m = json_num(r.out, "memory");
	run_free(&r);
	return (uint64_t)m;
}

static void test_resize_relative_overflow(void **state)
{
	(void)state;
	ok(run_v("create", "rro", "--memory", "64M", "--max-memory", "256M",
	         NULL));
	uint64_t before = memory_of("rro");
	/* 2^64 - 1 MiB: "grow by that" wraps to "shrink by 1 MiB" */
	struct run r = run_v("resize", "rro", "--memory",
	                     "+18446744073708503040", NULL);
	int st = r.status;
	run_free(&r);
	uint64_t after = memory_of("rro");
	if (after != before || st != 2)
		fail_msg("resize --memory +2^64-1M: status %d (want 2), "
		         "memory %llu -> %llu",
		         st, (unsigned long long)before,
		         (unsigned long long)after);
	/* same with a suffix: (2^44 - 1) MiB = 2^64 - 1 MiB */
	r = run_v("resize", "rro", "--memory", "+17592186044415M", NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	assert_int_equal(memory_of("rro"), before);
	/* an honest relative grow still works */
	ok(run_v("resize", "rro", "--memory", "+1M", NULL));
	assert_int_equal(memory_of("rro"), before + (1u << 20));
	ok(run_v("destroy", "rro", NULL));
}

static void test_set_stdin_unbounded(void **state)
{
	(void)state;
	ok(run_v("create", "ssu", "--memory", "8M", NULL));
	int efd = memfd_create("err", 0), pfd[2];
	assert_true(efd >= 0);
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		dup2(pfd[0], 0);
		dup2(nul, 1);
		dup2(efd, 2);
		close(pfd[1]);
		execl(tool_path(), "shmcache", "set", "ssu", "k", (char *)NULL);
		_exit(127);
	}
	close(pfd[0]);
	/* Feed up to 256 MiB (4 times the largest segment, so far more
	 * than any value).  A tool that bounds its read stops reading and
	 * exits; our write then fails with EPIPE.  One that reads all of
	 * stdin takes the lot (and would take /dev/zero until memory ran
	 * out). */
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	sigaction(SIGPIPE, &ign, &old);
	static char chunk[1 << 20];
	uint64_t fed = 0, limit = 256ull << 20;
	while (fed < limit) {
		ssize_t w = write(pfd[1], chunk, sizeof(chunk));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		fed += (uint64_t)w;
	}
	close(pfd[1]);
	sigaction(SIGPIPE, &old, NULL);
	int st = 0;
	for (int i = 0; i < 3000; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		if (i == 2999) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("set from a huge stdin did not stop in 30 s");
		}
		usleep(10000);
	}
	char err[1024] = "";
	ssize_t n = pread(efd, err, sizeof(err) - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(efd);
	if (fed >= limit)
		fail_msg("set read all %llu bytes of stdin (no bound); "
		         "stderr '%s'",
		         (unsigned long long)fed, err);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	if (!strstr(err, "holds values of at most"))
		fail_msg("set from a huge stdin: stderr '%s'", err);
	struct run r = run_v("get", "ssu", "k", NULL);
	assert_int_equal(r.status, 1);
	run_free(&r);
	ok(run_v("destroy", "ssu", NULL));
}

static void test_list_hostile_names(void **state)
{
	(void)state;
	ok(run_v("create", "good", "--memory", "8M", NULL));
	char p1[600], p2[600];
	/* anyone may create files in /dev/shm */
	snprintf(p1, sizeof(p1), "%s/shmcache.x\033]0;pwned\007\033[2Jy",
	         th_private_dir());
	snprintf(p2, sizeof(p2), "%s/shmcache.bad\xff\xfe", th_private_dir());
	int fd = open(p1, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	fd = open(p2, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	struct run r = run_v("list", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "good"));
	if (memchr(r.out, '\033', r.out_len) || memchr(r.out, '\007', r.out_len))
		fail_msg("list printed a control character from a file name");
	run_free(&r);
	r = run_v("list", "--json", NULL);
	assert_int_equal(r.status, 0);
	for (size_t i = 0; i < r.out_len; i++)
		if ((unsigned char)r.out[i] >= 0x80)
			fail_msg("list --json: byte 0x%02x at %zu is not UTF-8 "
			         "from a valid JSON string",
			         (unsigned char)r.out[i], i);
	assert_non_null(strstr(r.out, "\"good\""));
	run_free(&r);
	unlink(p1);
	unlink(p2);
	ok(run_v("destroy", "good", NULL));
}

int main(void)
{
	tool_path();
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_restore_key_plus_value),
	    cmocka_unit_test(test_resize_relative_overflow),
	    cmocka_unit_test(test_set_stdin_unbounded),
	    cmocka_unit_test(test_list_hostile_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
