/*
 * test_tmpfs.c - SHMCACHE_DIR on a small tmpfs (suite 'tmpfs').
 *
 * The cache file is sparse and sized to the reservation; memory is
 * committed with fallocate.  On a tmpfs smaller than the reservation that
 * must mean a clean -ENOSPC where memory cannot be had, never a SIGBUS on a
 * store into a page the file system cannot back.
 *
 * Needs root: mounts a 24 MiB tmpfs on a private directory (unmounted at
 * exit).  When mount fails (not root, no CAP_SYS_ADMIN, in a container
 * without it) the program exits 77 with the reason.
 *
 *  - resize_enospc: a cache of 8 MiB reserving 256 MiB, with data in it,
 *    is grown to 64 MiB: shmc_resize returns -ENOSPC; the budget, the
 *    committed bytes and every key are as before, shmc_check is clean, and
 *    the cache keeps working (sets and gets).
 *  - no_sigbus: a worker process writes four times the budget of a 16 MiB
 *    cache while the parent fills the rest of the tmpfs with another file:
 *    the worker ends normally (no SIGBUS), every set returns 0 or -ENOSPC,
 *    every value read back is intact, shmc_check is clean.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#define TMPFS_SIZE "24m"
#define MiB (1ull << 20)

static char dir[64];
static int mounted;

static void unmount(void)
{
	if (mounted)
		umount2(dir, MNT_DETACH);
	mounted = 0;
	rmdir(dir);
}

static void report(const char *problem, void *arg)
{
	(void)arg;
	fprintf(stderr, "check: %s\n", problem);
}

static size_t key_of(char *k, const char *prefix, unsigned i)
{
	return (size_t)snprintf(k, 48, "%s:%u", prefix, i);
}

static shmc_t *create(const char *name, uint64_t memory, uint64_t max)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = memory;
	o.max_memory = max;
	o.segment_size = 256u << 10;
	shmc_t *c = NULL;
	int rc = shmc_create(name, &o, &c);
	if (rc)
		fail_msg("create %s: %s", name, shmc_err_name(rc));
	return c;
}

static int set_v(shmc_t *c, const char *k, size_t kl, unsigned ver,
                 size_t len)
{
	char v[4096];
	len = th_value(v, sizeof(v), k, kl, ver, len);
	return shmc_set(c, k, kl, v, len, 0, (uint32_t)len);
}

/* 1 intact, 0 miss, -1 bad, -2 error. */
static int get_v(shmc_t *c, const char *k, size_t kl)
{
	char v[4096];
	size_t vl = sizeof(v);
	uint32_t fl;
	int rc = shmc_get(c, k, kl, v, &vl, &fl);
	if (rc == SHMC_ENOTFOUND)
		return 0;
	if (rc)
		return -2;
	return fl == vl && th_value_ok(v, vl, k, kl) ? 1 : -1;
}

static void test_resize_enospc(void **state)
{
	(void)state;
	shmc_t *c = create("grow", 8 * MiB, 256 * MiB);
	char k[48];
	enum { N = 1000 };
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(set_v(c, k, key_of(k, "k", i), i, 1000), 0);
	int before_hits = 0;
	bool hit[N];
	for (unsigned i = 0; i < N; i++) {
		int r = get_v(c, k, key_of(k, "k", i));
		assert_true(r >= 0);
		hit[i] = r == 1;
		before_hits += r;
	}
	struct shmc_stats a, b;
	assert_int_equal(shmc_stats(c, &a), 0);

	int rc = shmc_resize(c, 64 * MiB, 0, NULL, NULL);
	printf("grow 8 MiB -> 64 MiB on a %s tmpfs: %s\n", TMPFS_SIZE,
	       shmc_err_name(rc));
	assert_int_equal(rc, -ENOSPC);

	assert_int_equal(shmc_stats(c, &b), 0);
	assert_int_equal(b.memory, a.memory);
	/* The failed grow gives back what it committed: the cache holds
	 * what it held before. */
	printf("committed: %llu KiB before the grow, %llu KiB after\n",
	       (unsigned long long)(a.committed_bytes >> 10),
	       (unsigned long long)(b.committed_bytes >> 10));
	assert_int_equal(b.committed_bytes, a.committed_bytes);
	assert_int_equal(b.evictions, a.evictions);
	assert_true(b.committed_bytes <= b.memory);
	int after_hits = 0;
	for (unsigned i = 0; i < N; i++) {
		int r = get_v(c, k, key_of(k, "k", i));
		assert_true(r >= 0);
		if (hit[i])
			assert_int_equal(r, 1);
		after_hits += r;
	}
	printf("keys readable: %d of %d before, %d after\n", before_hits, N,
	       after_hits);
	assert_int_equal(after_hits, before_hits);
	assert_int_equal(shmc_check(c, report, NULL), 0);

	/* Still a working cache, of the old budget. */
	for (unsigned i = 0; i < 4 * N; i++)
		assert_int_equal(set_v(c, k, key_of(k, "after", i), i, 2000),
		                 0);
	assert_int_equal(shmc_stats(c, &b), 0);
	assert_int_equal(b.memory, 8 * MiB);
	assert_true(b.committed_bytes <= b.memory);
	assert_int_equal(shmc_check(c, report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy("grow"), 0);
}

/* The worker: sets of 500..3000 bytes, 4x the budget, each read back. */
static int worker(const char *name, uint64_t bytes, int pipe_w)
{
	alarm(120);
	shmc_t *c = NULL;
	if (shmc_open(name, 0, &c) != 0)
		return 2;
	char k[48];
	uint64_t ok = 0, nospc = 0, other = 0, bad = 0, n = 0;
	int first_other = 0;
	for (unsigned i = 0; n < bytes; i++) {
		size_t kl = key_of(k, "w", i);
		size_t len = 500 + (i * 7919u) % 2500;
		int rc = set_v(c, k, kl, i, len);
		if (rc == 0) {
			ok++;
			if (get_v(c, k, kl) < 0)
				bad++;
		} else if (rc == -ENOSPC) {
			nospc++;
		} else {
			other++;
			if (!first_other)
				first_other = rc;
		}
		n += len;
		if (i == 200 && write(pipe_w, "x", 1) != 1)
			return 2;
	}
	printf("worker: %llu sets ok, %llu -ENOSPC, %llu other (%s), %llu "
	       "bad reads\n", (unsigned long long)ok,
	       (unsigned long long)nospc, (unsigned long long)other,
	       first_other ? shmc_err_name(first_other) : "-",
	       (unsigned long long)bad);
	fflush(stdout);
	shmc_close(c);
	return bad || other || !ok ? 1 : 0;
}

static void test_no_sigbus(void **state)
{
	(void)state;
	shmc_t *c = create("load", 16 * MiB, 256 * MiB);
	int p[2];
	assert_int_equal(pipe(p), 0);
	fflush(stdout);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		_exit(worker("load", 64 * MiB, p[1]));
	}
	close(p[1]);
	char x;
	assert_int_equal(read(p[0], &x, 1), 1); /* the worker has started */
	close(p[0]);

	/* Take every byte the tmpfs has left while the worker writes. */
	char path[128];
	snprintf(path, sizeof(path), "%s/filler", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	static char chunk[64 << 10];
	memset(chunk, 'f', sizeof(chunk));
	uint64_t filled = 0;
	for (;;) {
		ssize_t w = write(fd, chunk, sizeof(chunk));
		if (w <= 0)
			break;
		filled += (uint64_t)w;
	}
	close(fd);
	printf("filler took %llu KiB of the tmpfs\n",
	       (unsigned long long)(filled >> 10));

	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (WIFSIGNALED(st))
		fail_msg("worker killed by signal %d%s", WTERMSIG(st),
		         WTERMSIG(st) == SIGBUS ? " (SIGBUS)" : "");
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	struct shmc_stats s;
	assert_int_equal(shmc_stats(c, &s), 0);
	assert_true(s.committed_bytes <= s.memory);
	assert_int_equal(shmc_check(c, report, NULL), 0);
	/* With the filler gone, growing works again. */
	unlink(path);
	int rc = shmc_resize(c, 20 * MiB, 0, NULL, NULL);
	printf("committed %llu KiB of a %llu KiB budget; grow to 20 MiB "
	       "with the filler gone: %s\n",
	       (unsigned long long)(s.committed_bytes >> 10),
	       (unsigned long long)(s.memory >> 10), shmc_err_name(rc));
	assert_int_equal(rc, 0);
	assert_int_equal(shmc_check(c, report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy("load"), 0);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/shmcache-tmpfs.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	if (mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV,
	          "size=" TMPFS_SIZE ",mode=0700") != 0) {
		char why[160];
		snprintf(why, sizeof(why),
		         "cannot mount a tmpfs on %s: %s (needs root)", dir,
		         strerror(errno));
		rmdir(dir);
		th_skip(why);
	}
	mounted = 1;
	atexit(unmount);
	setenv("SHMCACHE_DIR", dir, 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resize_enospc),
	    cmocka_unit_test(test_no_sigbus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
