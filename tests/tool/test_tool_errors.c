/*
 * test_tool_errors.c - bad input for every subcommand: unknown cache, bad
 * size, bad name, bad options, permission denied (a file owned by another
 * user), a corrupt segment file, a file that is not a cache.  Each must
 * exit non-zero with a one-line "shmcache: SUB: ..." message and change
 * nothing: the private directory's listing (names, sizes, mtimes) and the
 * bytes of every cache file are compared before and after.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "../helpers.h"
#include "run.h"

/* names, sizes, mtimes and an XXH-free byte sum of the directory */
static char *fingerprint(void)
{
	const char *dir = th_private_dir();
	size_t cap = 4096, n = 0;
	char *s = calloc(1, cap);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		uint64_t sum = 0;
		int fd = open(p, O_RDONLY);
		unsigned char buf[4096];
		ssize_t k = fd >= 0 ? pread(fd, buf, sizeof(buf), 0) : -1;
		for (ssize_t i = 0; i < k; i++)
			sum = sum * 131 + buf[i];
		if (fd >= 0)
			close(fd);
		n += (size_t)snprintf(s + n, cap - n, "%s:%lld:%lld.%ld:%o:%d:%llx;",
		                      e->d_name, (long long)st.st_size,
		                      (long long)st.st_mtim.tv_sec,
		                      st.st_mtim.tv_nsec, st.st_mode,
		                      (int)st.st_uid, (unsigned long long)sum);
		assert_true(n < cap - 200);
	}
	closedir(d);
	return s;
}

/* Runs a command that must fail with `status` and a message containing
 * `msg` (and starting "shmcache: "), leaving the directory unchanged. */
static void must_fail(int status, const char *msg, const char *const *argv)
{
	char *before = fingerprint();
	struct run r = run_tool(NULL, 0, argv);
	char *after = fingerprint();
	if (r.status != status || !strstr(r.err, msg) ||
	    strncmp(r.err, "shmcache: ", 10) != 0)
		fail_msg("shmcache %s %s: status %d (want %d), stderr '%s', "
		         "stdout '%s' (want '%s')",
		         argv[0], argv[1] ? argv[1] : "", r.status, status,
		         r.err, r.out, msg);
	assert_string_equal(before, after);
	free(before);
	free(after);
	run_free(&r);
}
#define FAIL(status, msg, ...)                                                 \
	do {                                                                   \
		const char *av_[] = {__VA_ARGS__, NULL};                       \
		must_fail(status, msg, av_);                                   \
	} while (0)

static void mk(const char *name)
{
	struct run r = run_v("create", name, "--memory", "8M", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

static void test_usage(void **state)
{
	(void)state;
	struct run r = run_v(NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_v("frobnicate", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown subcommand"));
	run_free(&r);
	static const char *subs[] = {"create", "destroy", "list", "stats",
	                             "get", "set", "del", "keys", "readers",
	                             "check", "health", "top", "dump",
	                             "restore", "exporter"};
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		r = run_v(subs[i], "--help", NULL);
		assert_int_equal(r.status, 0);
		assert_non_null(strstr(r.out, "Usage: shmcache "));
		run_free(&r);
		r = run_v(subs[i], "--no-such-option", NULL);
		assert_true(r.status == 2 || (!strcmp(subs[i], "health") &&
		                              r.status == 3));
		run_free(&r);
	}
}

static void test_create_errors(void **state)
{
	(void)state;
	FAIL(2, "create: --memory: bad size '12Q'", "create", "x", "--memory",
	     "12Q");
	FAIL(2, "bad size", "create", "x", "--memory", "-1");
	FAIL(2, "bad size", "create", "x", "--memory", "");
	FAIL(2, "Numerical result out of range", "create", "x", "--memory",
	     "99999999999T");
	FAIL(2, "bad cache name", "create", "a/b", "--memory", "8M");
	FAIL(2, "bad cache name", "create", "..", "--memory", "8M");
	FAIL(2, "bad cache name", "create",
	     "a123456789012345678901234567890123456789012345678901234567890123"
	     "4",
	     "--memory", "8M");
	FAIL(2, "--memory SIZE is required", "create", "x");
	FAIL(2, "not a power of two", "create", "x", "--memory", "8M",
	     "--segment-size", "100K");
	FAIL(2, "bad octal mode", "create", "x", "--memory", "8M", "--mode",
	     "0989");
	FAIL(2, "unknown group", "create", "x", "--memory", "8M", "--group",
	     "no-such-group-here");
	FAIL(2, "--numa", "create", "x", "--memory", "8M", "--numa", "far");
	FAIL(1, "memory budget too small", "create", "x", "--memory", "64K");
	FAIL(1, "memory budget too small", "create", "x", "--memory", "64M",
	     "--max-memory", "32M");
	mk("dup");
	FAIL(1, "create dup: cache already exists", "create", "dup",
	     "--memory", "8M");
	struct run r = run_v("destroy", "dup", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

static void test_unknown_cache(void **state)
{
	(void)state;
	/* one reason, not "no such cache: No such file or directory" */
	const char *msg = "open nope: no such cache\n";
	FAIL(1, msg, "stats", "nope");
	FAIL(1, msg, "get", "nope", "k");
	FAIL(1, msg, "set", "nope", "k", "v");
	FAIL(1, msg, "del", "nope", "k");
	FAIL(1, msg, "keys", "nope");
	FAIL(1, msg, "readers", "nope");
	FAIL(2, msg, "check", "nope");
	FAIL(1, "destroy nope: no such cache\n", "destroy", "nope");
	FAIL(1, msg, "dump", "nope", "/tmp/never-written.dump");
	FAIL(1, msg, "top", "nope", "--iterations", "1");
	/* health speaks the plugin language: UNKNOWN on stdout, exit 3, with
	 * the same words as the others (and their line on stderr) */
	struct run r = run_v("health", "nope", NULL);
	assert_int_equal(r.status, 3);
	assert_string_equal(r.out, "SHMCACHE UNKNOWN - nope: no such cache\n");
	assert_string_equal(r.err, "shmcache: health: open nope: no such cache\n");
	run_free(&r);
	FAIL(2, "bad cache name", "stats", "../etc");
}

static void test_bad_values(void **state)
{
	(void)state;
	mk("v");
	FAIL(2, "key of 0 bytes", "get", "v", "");
	char longkey[300];
	memset(longkey, 'k', 260);
	longkey[260] = 0;
	FAIL(2, "key of 260 bytes", "set", "v", longkey, "x");
	FAIL(2, "--ttl: bad number", "set", "v", "k", "x", "--ttl", "soon");
	FAIL(2, "--flags: bad number", "set", "v", "k", "x", "--flags",
	     "4294967296");
	FAIL(2, "--limit", "keys", "v", "--limit", "0");
	FAIL(2, "--watch", "stats", "v", "--watch", "0");
	FAIL(2, "exclude each other", "stats", "v", "--json", "--prometheus");
	FAIL(2, "too many arguments", "get", "v", "k", "extra");
	FAIL(2, "missing NAME", "stats");
	struct run r = run_v("health", "v", "--warn", "90", "--crit", "80",
	                     NULL);
	assert_int_equal(r.status, 3);
	assert_non_null(strstr(r.err, "beyond its critical"));
	run_free(&r);
	r = run_v("health", "v", "--warn", "101", NULL);
	assert_int_equal(r.status, 3);
	run_free(&r);
	r = run_v("destroy", "v", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

static void test_permission(void **state)
{
	(void)state;
	mk("p");
	char path[600];
	snprintf(path, sizeof(path), "%s/shmcache.p", th_private_dir());
	/* a cache owned by another user is refused (-EACCES) */
	if (chown(path, 65534, 65534) != 0) {
		printf("# cannot chown (not root?): ownership test skipped\n");
	} else {
		const char *m = "open p: permission denied";
		FAIL(1, m, "stats", "p");
		FAIL(1, m, "set", "p", "k", "v");
		FAIL(1, m, "get", "p", "k");
		FAIL(1, "cannot open it", "destroy", "p");
		assert_int_equal(chown(path, getuid(), getgid()), 0);
	}
	/* a file we may not open at all (no effect when root) */
	if (geteuid() != 0) {
		assert_int_equal(chmod(path, 0), 0);
		FAIL(1, "open p: permission denied", "stats", "p");
		assert_int_equal(chmod(path, 0600), 0);
	}
	struct run r = run_v("destroy", "p", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

static void poke(const char *name, off_t off, const void *b, size_t n)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/shmcache.%s", th_private_dir(), name);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, n, off), (ssize_t)n);
	close(fd);
}

static void test_corrupt(void **state)
{
	(void)state;
	/* a checksummed header field changed: every open refuses */
	mk("bad");
	struct run r = run_v("set", "bad", "k", "v", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	poke("bad", 100, "XXXX", 4);
	const char *m = "open bad: segment corrupt or truncated";
	FAIL(1, m, "stats", "bad");
	FAIL(1, m, "get", "bad", "k");
	FAIL(2, m, "check", "bad");
	FAIL(1, "cannot open it", "destroy", "bad");
	r = run_v("list", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "segment corrupt or truncated"));
	run_free(&r);
	r = run_v("destroy", "bad", "--force", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);

	/* the mutable part scrambled: check reports, never crashes */
	mk("mut");
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		r = run_v("set", "mut", k, "some value", NULL);
		assert_int_equal(r.status, 0);
		run_free(&r);
	}
	static const unsigned char junk[48] = {
	    0xff, 0xff, 0xff, 0x7f, 0x13, 0x37, 0, 0, 0xee, 0xee, 0xee, 0xee,
	    9, 9, 9, 9, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8,
	    0xff, 0xff, 0xff, 0xff, 0xaa, 0xbb, 0xcc, 0xdd, 1, 0, 0, 0,
	    0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80};
	poke("mut", 344, junk, sizeof(junk));
	r = run_v("check", "mut", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "problem: "));
	run_free(&r);
	r = run_v("check", "mut", "--json", NULL);
	assert_int_equal(r.status, 1);
	assert_true(json_num(r.out, "problems") > 0);
	run_free(&r);
	r = run_v("destroy", "mut", "--force", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);

	/* not a cache at all */
	char path[600];
	snprintf(path, sizeof(path), "%s/shmcache.junk", th_private_dir());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not a cache\n", f);
	fclose(f);
	FAIL(1, "file is not a shmcache segment", "stats", "junk");
	FAIL(1, "file is not a shmcache segment", "restore", "junk", path);
	unlink(path);
}

static void le_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Rewrites dump p[0..n) as format version `ver` (every record's TTL
 * "unknown" when unknown_ttl, as version 1 wrote them) and makes its
 * checksum right again, so only the version can make restore refuse it.
 * Layout: tools/snapshot.h. */
static void relabel(uint8_t *p, size_t n, uint32_t ver, int unknown_ttl)
{
	le_put(p + 8, ver, 4);
	for (size_t off = 32; unknown_ttl && off < n - 24;) {
		uint64_t klen = le_get(p + off, 4), vlen = le_get(p + off + 16, 8);
		le_put(p + off + 8, UINT32_MAX, 4);
		off += 24 + klen + vlen;
	}
	le_put(p + n - 8, XXH64(p, n - 8, 0), 8);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* TTL of key in cache name, through the library. */
static uint32_t ttl_of(const char *name, const char *key)
{
	shmc_t *c = NULL;
	uint32_t ttl = 0;
	assert_int_equal(shmc_open(name, 0, &c), 0);
	assert_int_equal(shmc_ttl(c, key, strlen(key), &ttl), 0);
	shmc_close(c);
	return ttl;
}

static void test_dump_errors(void **state)
{
	(void)state;
	mk("d");
	/* through one handle: every `shmcache set` would open (and seal) a
	 * 1 MiB log segment of its own, and this 8 MiB cache would keep only
	 * the last few keys */
	shmc_t *c = NULL;
	assert_int_equal(shmc_open("d", 0, &c), 0);
	for (int i = 0; i < 50; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "key%d", i);
		/* even keys expire in 300 s, odd ones never */
		assert_int_equal(shmc_set(c, k, (size_t)kl, "value", 5,
		                          i % 2 ? SHMC_TTL_NONE : 300, 0),
		                 0);
	}
	shmc_close(c);
	char dump[600], bad[600];
	snprintf(dump, sizeof(dump), "%s/d.dump", th_private_dir());
	snprintf(bad, sizeof(bad), "%s/bad.dump", th_private_dir());
	struct run r = run_v("dump", "d", dump, NULL);
	if (r.status != 0) {
		printf("# dump not available: %s", r.err);
		run_free(&r);
		return;
	}
	run_free(&r);
	r = run_v("create", "e", "--memory", "8M", "--default-ttl", "120",
	          NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	/* each damaged copy is refused and loads nothing into e */
	struct stat st;
	assert_int_equal(stat(dump, &st), 0);
	uint8_t *b = malloc((size_t)st.st_size);
	int fd = open(dump, O_RDONLY);
	assert_int_equal(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	struct {
		off_t off;
		size_t len; /* 0: truncate to off */
		const char *msg;
	} cases[] = {
	    {0, 1, "not a shmcache dump"},
	    {8, 1, "version"},
	    {st.st_size / 2, 1, "checksum"},
	    {st.st_size - 1, 1, "checksum"},
	    {st.st_size - 3, 0, "truncated"},
	    {20, 0, "truncated"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (cases[i].len) {
			assert_int_equal(write(fd, b, (size_t)st.st_size),
			                 st.st_size);
			uint8_t x = b[cases[i].off] ^ 0x5a;
			assert_int_equal(pwrite(fd, &x, 1, cases[i].off), 1);
		} else {
			assert_int_equal(write(fd, b, (size_t)cases[i].off),
			                 cases[i].off);
		}
		close(fd);
		FAIL(1, cases[i].msg, "restore", "e", bad);
		r = run_v("stats", "e", "--json", NULL);
		assert_true(json_num(r.out, "sets") == 0);
		run_free(&r);
	}
	/* versions this tool does not know, checksum right: refused */
	uint32_t unknown[] = {0, 3, 0x01000002u};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		relabel(b, (size_t)st.st_size, unknown[i], 0);
		write_file(bad, b, (size_t)st.st_size);
		FAIL(1, "dump format version", "restore", "e", bad);
		r = run_v("stats", "e", "--json", NULL);
		assert_true(json_num(r.out, "sets") == 0);
		run_free(&r);
	}
	/* a version 1 dump (TTLs unknown) still loads: e's default TTL */
	relabel(b, (size_t)st.st_size, 1, 1);
	write_file(bad, b, (size_t)st.st_size);
	r = run_v("restore", "e", bad, NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	uint32_t t0 = ttl_of("e", "key0"), t1 = ttl_of("e", "key1");
	assert_true(t0 > 110 && t0 <= 120);
	assert_true(t1 > 110 && t1 <= 120);
	/* the real (version 2) dump: the TTLs of d, not e's default */
	r = run_v("restore", "e", dump, NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	uint32_t d0 = ttl_of("d", "key0");
	t0 = ttl_of("e", "key0");
	assert_true(d0 > 290 && d0 <= 300);
	assert_true(t0 + 1 >= d0 && t0 <= d0 + 1);
	assert_int_equal(ttl_of("e", "key1"), SHMC_TTL_NONE);
	free(b);
	FAIL(1, "No such file or directory", "restore", "e",
	     "/nonexistent/x.dump");
	FAIL(2, "missing", "dump", "d");
	unlink(bad);
	unlink(dump);
	r = run_v("destroy", "d", NULL);
	run_free(&r);
	r = run_v("destroy", "e", NULL);
	run_free(&r);
}

int main(void)
{
	tool_path();
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_usage),
	    cmocka_unit_test(test_create_errors),
	    cmocka_unit_test(test_unknown_cache),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_permission),
	    cmocka_unit_test(test_corrupt),
	    cmocka_unit_test(test_dump_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
