/*
 * test_segment.c - the segment layer (shm/segment.c) and the create/open
 * paths of the API built on it.
 *
 * Proves: cache names are validated ([A-Za-z0-9._-]{1,64}, not "." or "..");
 * create/open/close/destroy work and report -EEXIST / -ENOENT; a file that
 * is not a cache (random bytes, empty, symlink, directory, FIFO) is refused
 * with SHMC_ENOTCACHE; another format version or ABI word is SHMC_EVERSION;
 * a bad checksum, inconsistent layout or truncated/extended file is
 * SHMC_ECORRUPT; a failed open never changes a byte of the file; a cache
 * owned by another user is refused (-EACCES) unless SHMC_OPEN_ANY_OWNER;
 * the file mode asked for is the one the file gets; and failures injected
 * through shmc__sys (ENOSPC from fallocate, mmap, link, ftruncate, open)
 * leave nothing behind, while an ENOSPC when a later segment is committed
 * is a clean error or an eviction, never a SIGBUS, with the cache intact.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "helpers.h"
#include "uhelp.h"

#define MEM (1u << 20)
#define SEG SHMC_SEGMENT_MIN

static shmc_t *mk(const char *name)
{
	shmc_t *c = uh_create(name, MEM, SEG, 16, 0);
	uh_ref_put(c);
	return c;
}

static int teardown(void **state)
{
	(void)state;
	shmc__sys_reset();
	uh_clear_dir();
	return 0;
}

/* ---- names ---------------------------------------------------------- */

static void test_names(void **state)
{
	(void)state;
	char n64[65], n65[66];
	memset(n64, 'a', 64);
	n64[64] = 0;
	memset(n65, 'b', 65);
	n65[65] = 0;
	const char *good[] = {"a", "Z", "0", "a.b", "a_b-c.9", "...", ".x",
	                      "x..", n64};
	const char *bad[] = {"",     n65,   ".",    "..",   "a/b", "/a",
	                     "../a", "a b", " a",   "a\n",  "a\t", "a*",
	                     "a:b",  "\xc3\xa9", "a\\b"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(shmc__name_ok(good[i]), 0);
	assert_int_equal(shmc__name_ok(NULL), SHMC_ENAME);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		shmc_t *c = NULL;
		assert_int_equal(shmc__name_ok(bad[i]), SHMC_ENAME);
		assert_int_equal(shmc_create(bad[i], NULL, &c), SHMC_ENAME);
		assert_null(c);
		assert_int_equal(shmc_open(bad[i], 0, &c), SHMC_ENAME);
		assert_int_equal(shmc_destroy(bad[i]), SHMC_ENAME);
	}
	shmc_t *c = NULL;
	assert_int_equal(shmc_create(NULL, NULL, &c), SHMC_ENAME);
	assert_int_equal(shmc_open(NULL, 0, &c), SHMC_ENAME);
	assert_int_equal(shmc_destroy(NULL), SHMC_ENAME);
	/* Nothing was created by any refused name. */
	assert_int_equal(uh_dir_entries(), 0);

	/* The longest good name works end to end. */
	c = uh_create(n64, MEM, SEG, 4, 0);
	struct shmc_info info;
	assert_int_equal(shmc_info(c, &info), 0);
	assert_string_equal(info.name, n64);
	assert_string_equal(info.path, uh_path(n64));
	shmc_close(c);
	assert_int_equal(shmc_destroy(n64), 0);
}

/* ---- lifecycle ------------------------------------------------------ */

static void test_lifecycle(void **state)
{
	(void)state;
	shmc_t *c = mk("life");
	struct stat st;
	assert_int_equal(stat(uh_path("life"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_close(NULL), 0);

	/* Reopen: the data is still there. */
	assert_int_equal(shmc_open("life", 0, &c), 0);
	uh_ref_check(c);
	struct shmc_info info;
	assert_int_equal(shmc_info(c, &info), 0);
	assert_int_equal(info.segment_size, SEG);
	assert_int_equal(info.max_readers, 16);
	assert_int_equal(info.format_version, SHMC__FORMAT_VERSION);

	/* Two handles in one process see the same data. */
	shmc_t *c2 = NULL;
	assert_int_equal(shmc_open("life", 0, &c2), 0);
	assert_int_equal(shmc_set(c2, "x", 1, "yz", 2, 0, 0), 0);
	char buf[8];
	size_t vl = sizeof(buf);
	assert_int_equal(shmc_get(c, "x", 1, buf, &vl, NULL), 0);
	assert_int_equal(vl, 2);
	shmc_close(c2);

	/* Destroy unlinks; the open handle keeps working on its mapping. */
	assert_int_equal(shmc_destroy("life"), 0);
	assert_int_equal(stat(uh_path("life"), &st), -1);
	uh_ref_check(c);
	shmc_close(c);
	assert_int_equal(shmc_open("life", 0, &c), -ENOENT);
	assert_int_equal(shmc_destroy("life"), -ENOENT);
	assert_int_equal(shmc_open("never-made", 0, &c), -ENOENT);
	assert_int_equal(uh_dir_entries(), 0);
}

static void test_create_existing(void **state)
{
	(void)state;
	shmc_t *c = mk("dup");
	size_t len0, len1;
	uint8_t *before = uh_slurp(uh_path("dup"), &len0);
	assert_non_null(before);

	shmc_t *c2 = NULL;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = MEM;
	o.segment_size = SEG;
	o.max_readers = 16;
	assert_int_equal(shmc_create("dup", &o, &c2), -EEXIST);
	assert_null(c2);
	/* Another geometry gets the same answer. */
	o.memory = 2 * MEM;
	assert_int_equal(shmc_create("dup", &o, &c2), -EEXIST);
	assert_int_equal(shmc_create("dup", NULL, &c2), -EEXIST);

	/* The existing cache is untouched: same bytes, items readable from
	 * the old handle and from a new one; no temporary file is left. */
	uint8_t *after = uh_slurp(uh_path("dup"), &len1);
	assert_int_equal(len0, len1);
	assert_memory_equal(before, after, len0);
	uh_ref_check(c);
	assert_int_equal(shmc_open("dup", 0, &c2), 0);
	uh_ref_check(c2);
	uh_check_clean(c2);
	shmc_close(c2);
	assert_int_equal(uh_dir_entries(), 1);
	free(before);
	free(after);
	shmc_close(c);
	shmc_destroy("dup");
}

/* ---- refused files -------------------------------------------------- */

/* Opens name, expects err, and checks the file's bytes did not change. */
static void open_refused(const char *name, unsigned flags, int err)
{
	size_t l0 = 0, l1 = 0;
	uint8_t *b0 = uh_slurp(uh_path(name), &l0);
	shmc_t *c = (shmc_t *)0x1;
	int rc = shmc_open(name, flags, &c);
	if (rc != err)
		fail_msg("open(%s): got %s (%d), want %s (%d)", name,
		         shmc_err_name(rc), rc, shmc_err_name(err), err);
	uint8_t *b1 = uh_slurp(uh_path(name), &l1);
	assert_int_equal(l0, l1);
	if (b0 && b1)
		assert_memory_equal(b0, b1, l0);
	free(b0);
	free(b1);
}

static void write_file(const char *name, const void *b, size_t len)
{
	int fd = open(uh_path(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, b, len), (ssize_t)len);
	close(fd);
}

static void test_not_a_cache(void **state)
{
	(void)state;
	uint8_t junk[8192];
	uint64_t r = 12345;
	for (size_t i = 0; i < sizeof(junk); i += 8) {
		uint64_t x = th_rand(&r);
		memcpy(junk + i, &x, 8);
	}
	write_file("junk", junk, sizeof(junk));
	open_refused("junk", 0, SHMC_ENOTCACHE);
	write_file("empty", "", 0);
	open_refused("empty", 0, SHMC_ENOTCACHE);
	write_file("short", "SHM", 3);
	open_refused("short", 0, SHMC_ENOTCACHE);
	/* The magic alone is a cache cut short, not a stranger. */
	write_file("magic", SHMC__MAGIC, 8);
	open_refused("magic", 0, SHMC_ECORRUPT);

	/* A symlink, even to a valid cache, is refused (O_NOFOLLOW). */
	shmc_t *c = mk("real");
	shmc_close(c);
	char target[512];
	snprintf(target, sizeof(target), "%s", uh_path("real"));
	assert_int_equal(symlink(target, uh_path("link")), 0);
	open_refused("link", 0, SHMC_ENOTCACHE);
	open_refused("link", SHMC_OPEN_ANY_OWNER, SHMC_ENOTCACHE);
	assert_int_equal(unlink(uh_path("link")), 0);
	/* A dangling symlink too. */
	assert_int_equal(symlink("/nonexistent/x", uh_path("dangle")), 0);
	open_refused("dangle", 0, SHMC_ENOTCACHE);
	unlink(uh_path("dangle"));

	/* A FIFO is not a regular file. */
	assert_int_equal(mkfifo(uh_path("fifo"), 0600), 0);
	open_refused("fifo", 0, SHMC_ENOTCACHE);
	unlink(uh_path("fifo"));

	unlink(uh_path("junk"));
	unlink(uh_path("empty"));
	unlink(uh_path("short"));
	unlink(uh_path("magic"));
	shmc_destroy("real");
}

static void test_directory(void **state)
{
	(void)state;
	/* shmc_open documents SHMC_ENOTCACHE for "not a regular file". */
	assert_int_equal(mkdir(uh_path("dir"), 0700), 0);
	open_refused("dir", 0, SHMC_ENOTCACHE);
	rmdir(uh_path("dir"));
}

/* Rewrites the header of cache name through fn, then fixes the checksum
 * if fix. */
static void patch_hdr(const char *name, void (*fn)(struct shmc__hdr *h),
                      bool fix)
{
	struct shmc__hdr h;
	int fd = open(uh_path(name), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	fn(&h);
	if (fix)
		h.checksum = shmc__hdr_checksum(&h);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
}

static void p_version(struct shmc__hdr *h) { h->version = SHMC__FORMAT_VERSION + 1; }
static void p_version1(struct shmc__hdr *h) { h->version = 1; }
static void p_version0(struct shmc__hdr *h) { h->version = 0; }
static void p_abi_line(struct shmc__hdr *h) { h->abi ^= 128u << 24; }
static void p_abi_mutex(struct shmc__hdr *h) { h->abi += 1u << 16; }
static void p_abi_slot(struct shmc__hdr *h) { h->abi += 1; }
static void p_checksum(struct shmc__hdr *h) { h->checksum ^= 1; }
static void p_segsize(struct shmc__hdr *h) { h->seg_size *= 2; }
static void p_created(struct shmc__hdr *h) { h->created += 1; }
static void p_data_off(struct shmc__hdr *h) { h->data_off += 4096; }
static void p_nseg(struct shmc__hdr *h) { h->nseg_max += 1; }
static void p_readers(struct shmc__hdr *h) { h->max_readers = 0; }
static void p_fsize(struct shmc__hdr *h) { h->file_size += 4096; }
static void p_name(struct shmc__hdr *h) { memset(h->name, 'n', sizeof(h->name)); }
static void p_magic(struct shmc__hdr *h) { h->magic[0] = 'X'; }

static void test_version_and_corrupt(void **state)
{
	(void)state;
	struct {
		void (*fn)(struct shmc__hdr *h);
		bool fix;
		int err;
	} rows[] = {
	    {p_version, true, SHMC_EVERSION},
	    {p_version0, true, SHMC_EVERSION},
	    {p_version1, true, SHMC_EVERSION}, /* before the directory */
	    {p_abi_line, true, SHMC_EVERSION},
	    {p_abi_mutex, true, SHMC_EVERSION},
	    {p_abi_slot, true, SHMC_EVERSION},
	    /* another version is named as such even with a stale checksum */
	    {p_version, false, SHMC_EVERSION},
	    {p_checksum, false, SHMC_ECORRUPT},
	    {p_created, false, SHMC_ECORRUPT},
	    {p_segsize, false, SHMC_ECORRUPT},
	    {p_segsize, true, SHMC_ECORRUPT},
	    {p_data_off, true, SHMC_ECORRUPT},
	    {p_nseg, true, SHMC_ECORRUPT},
	    {p_readers, true, SHMC_ECORRUPT},
	    {p_fsize, true, SHMC_ECORRUPT},
	    {p_name, true, SHMC_ECORRUPT},
	    {p_magic, false, SHMC_ENOTCACHE},
	    {p_magic, true, SHMC_ENOTCACHE},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		shmc_t *c = mk("ver");
		shmc_close(c);
		patch_hdr("ver", rows[i].fn, rows[i].fix);
		print_message("row %zu\n", i);
		open_refused("ver", 0, rows[i].err);
		open_refused("ver", SHMC_OPEN_ANY_OWNER, rows[i].err);
		shmc_destroy("ver");
	}

	/* The validator on its own: short images. */
	struct shmc__hdr h;
	memset(&h, 0, sizeof(h));
	assert_int_equal(shmc__hdr_validate(&h, 0, 0), SHMC_ENOTCACHE);
	memcpy(h.magic, SHMC__MAGIC, 8);
	assert_int_equal(shmc__hdr_validate(&h, 8, 8), SHMC_ECORRUPT);
}

static void test_truncated(void **state)
{
	(void)state;
	off_t sizes[] = {8, 100, 159, 4095, 4096, 8192, -1 /* one seg less */,
	                 -2 /* one byte less */, -3 /* one page more */};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		shmc_t *c = mk("trunc");
		shmc_close(c);
		struct stat st;
		assert_int_equal(stat(uh_path("trunc"), &st), 0);
		off_t len = sizes[i];
		if (len == -1)
			len = st.st_size - SEG;
		else if (len == -2)
			len = st.st_size - 1;
		else if (len == -3)
			len = st.st_size + 4096;
		assert_int_equal(truncate(uh_path("trunc"), len), 0);
		print_message("length %lld\n", (long long)len);
		open_refused("trunc", 0, SHMC_ECORRUPT);
		shmc_destroy("trunc");
	}
}

/* ---- owner and mode ------------------------------------------------- */

static void test_owner(void **state)
{
	(void)state;
	shmc_t *c = mk("owned");
	shmc_close(c);
	if (chown(uh_path("owned"), 4242, 4242) != 0) {
		shmc_destroy("owned");
		skip(); /* not root, no CAP_CHOWN */
	}
	open_refused("owned", 0, -EACCES);
	assert_int_equal(shmc_open("owned", SHMC_OPEN_ANY_OWNER, &c), 0);
	uh_ref_check(c);
	uh_check_clean(c);
	shmc_close(c);
	/* Unknown flags are refused before anything is looked at. */
	assert_int_equal(shmc_open("owned", 0x100, &c), -EINVAL);
	assert_int_equal(shmc_destroy("owned"), 0);
}

static void test_mode(void **state)
{
	(void)state;
	mode_t old = umask(077);
	struct stat st;
	shmc_t *c = uh_create("mode-def", MEM, SEG, 4, 0);
	assert_int_equal(stat(uh_path("mode-def"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	shmc_close(c);
	shmc_destroy("mode-def");

	uint32_t modes[] = {0660, 0640, 0644, 0400};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct shmc_create_opts o;
		shmc_create_opts_init(&o);
		o.memory = MEM;
		o.segment_size = SEG;
		o.max_readers = 4;
		o.mode = modes[i];
		assert_int_equal(shmc_create("mode", &o, &c), 0);
		assert_int_equal(stat(uh_path("mode"), &st), 0);
		assert_int_equal(st.st_mode & 07777, modes[i]);
		shmc_close(c);
		shmc_destroy("mode");
	}
	umask(old);
}

/* ---- fault injection ------------------------------------------------ */

static int fail_errno;
static int fail_after; /* calls that succeed before failures start */

static int fake_fallocate(int fd, int mode, off_t off, off_t len)
{
	if (mode == 0 && fail_after-- <= 0) {
		errno = fail_errno;
		return -1;
	}
	return fallocate(fd, mode, off, len);
}

static void *fake_mmap(void *a, size_t l, int p, int f, int fd, off_t o)
{
	(void)a; (void)l; (void)p; (void)f; (void)fd; (void)o;
	errno = ENOMEM;
	return MAP_FAILED;
}

static int fake_link(const char *a, const char *b)
{
	(void)a; (void)b;
	errno = EEXIST;
	return -1;
}

static int fake_ftruncate(int fd, off_t len)
{
	(void)fd; (void)len;
	errno = EFBIG;
	return -1;
}

static int fake_open(const char *p, int f, mode_t m)
{
	(void)p; (void)f; (void)m;
	errno = EACCES;
	return -1;
}

static void create_fails(int want)
{
	shmc_t *c = NULL;
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = MEM;
	o.segment_size = SEG;
	o.max_readers = 16;
	int rc = shmc_create("inj", &o, &c);
	if (rc != want)
		fail_msg("create: got %s, want %s", shmc_err_name(rc),
		         shmc_err_name(want));
	assert_null(c);
	shmc__sys_reset();
	/* Nothing left behind: no cache, no temporary file. */
	assert_int_equal(uh_dir_entries(), 0);
	assert_int_equal(shmc_open("inj", 0, &c), -ENOENT);
}

static void test_inject_create(void **state)
{
	(void)state;
	th_private_dir();
	assert_int_equal(uh_dir_entries(), 0);

	fail_errno = ENOSPC;
	fail_after = 0;
	shmc__sys.fallocate = fake_fallocate;
	create_fails(-ENOSPC);
	/* The second commit of create (the ghost table) failing too. */
	fail_after = 1;
	shmc__sys.fallocate = fake_fallocate;
	create_fails(-ENOSPC);

	shmc__sys.mmap = fake_mmap;
	create_fails(-ENOMEM);

	shmc__sys.link = fake_link;
	create_fails(-EEXIST);

	shmc__sys.ftruncate = fake_ftruncate;
	create_fails(-EFBIG);

	shmc__sys.open = fake_open;
	create_fails(-EACCES);

	/* With the table restored, create works again. */
	shmc_t *c = mk("inj");
	uh_ref_check(c);
	shmc_close(c);
	shmc_destroy("inj");
}

static void test_inject_open(void **state)
{
	(void)state;
	shmc_t *c = mk("injo");
	shmc_close(c);
	shmc__sys.mmap = fake_mmap;
	open_refused("injo", 0, -ENOMEM);
	shmc__sys_reset();
	shmc__sys.open = fake_open;
	open_refused("injo", 0, -EACCES);
	shmc__sys_reset();
	assert_int_equal(shmc_open("injo", 0, &c), 0);
	uh_ref_check(c);
	shmc_close(c);
	shmc_destroy("injo");
}

/*
 * ENOSPC when the log commits another segment: sets go on by evicting
 * (or fail cleanly), committed memory does not grow, nothing crashes, and
 * the hot reference items are still there.
 */
static void test_inject_commit(void **state)
{
	(void)state;
	shmc_t *c = uh_create("grow", 4 * MEM, SEG, 16, 0);
	uh_ref_put(c);
	char v[2048];
	memset(v, 'v', sizeof(v));
	/* Fill about four segments, and make the references hot. */
	for (int i = 0; i < 120; i++) {
		char k[32];
		int kl = snprintf(k, sizeof(k), "fill-%d", i);
		assert_int_equal(shmc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0),
		                 0);
	}
	uh_ref_check(c);
	struct shmc_stats st0, st1;
	assert_int_equal(shmc_stats(c, &st0), 0);
	assert_true(st0.segments_total >= 3);
	assert_true(st0.committed_bytes < st0.memory - 4 * SEG);

	fail_errno = ENOSPC;
	fail_after = 0;
	shmc__sys.fallocate = fake_fallocate;
	int ok = 0, nospc = 0;
	for (int i = 0; i < 400; i++) {
		char k[32];
		int kl = snprintf(k, sizeof(k), "more-%d", i);
		int rc = shmc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0);
		if (rc == 0)
			ok++;
		else if (rc == -ENOSPC)
			nospc++;
		else
			fail_msg("set under ENOSPC: %s", shmc_err_name(rc));
		if (i % 50 == 0)
			uh_ref_check(c); /* keeps them hot, too */
	}
	assert_int_equal(shmc_stats(c, &st1), 0);
	print_message("under ENOSPC: %d stored, %d ENOSPC, %llu evictions\n",
	              ok, nospc, (unsigned long long)st1.evictions);
	/* Nothing new was committed; eviction made the room. */
	assert_int_equal(st1.segments_total, st0.segments_total);
	assert_int_equal(st1.committed_bytes, st0.committed_bytes);
	assert_true(st1.evictions > st0.evictions);
	assert_true(ok > 0);
	uh_ref_check(c);
	shmc__sys_reset();
	uh_check_clean(c);
	/* With space back, the cache grows again. */
	for (int i = 0; i < 200; i++) {
		char k[32];
		int kl = snprintf(k, sizeof(k), "again-%d", i);
		assert_int_equal(shmc_set(c, k, (size_t)kl, v, sizeof(v), 0, 0),
		                 0);
	}
	assert_int_equal(shmc_stats(c, &st1), 0);
	assert_true(st1.segments_total > st0.segments_total);
	assert_true(st1.committed_bytes <= st1.memory);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("grow");
}

/* The first segment of a fresh cache cannot be committed: a clean error. */
static void test_inject_first_commit(void **state)
{
	(void)state;
	shmc_t *c = uh_create("first", MEM, SEG, 16, 0);
	fail_errno = ENOSPC;
	fail_after = 0;
	shmc__sys.fallocate = fake_fallocate;
	assert_int_equal(shmc_set(c, "k", 1, "v", 1, 0, 0), -ENOSPC);
	size_t vl = 0;
	assert_int_equal(shmc_get(c, "k", 1, NULL, &vl, NULL), SHMC_ENOTFOUND);
	assert_int_equal(uh_items(c), 0);
	shmc__sys_reset();
	uh_check_clean(c);
	assert_int_equal(shmc_set(c, "k", 1, "v", 1, 0, 0), 0);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("first");
}

/* The group and the mode are the file's before it has its name: a spy on
 * link() looks at the temporary file at the moment it is linked in. */
static gid_t link_gid;
static mode_t link_mode;

static int link_spy(const char *from, const char *to)
{
	struct stat st;
	if (stat(from, &st) == 0) {
		link_gid = st.st_gid;
		link_mode = st.st_mode & 07777;
	}
	return link(from, to);
}

static void test_group_before_link(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		printf("skipped: giving a file another group needs root here\n");
		return;
	}
	th_private_dir();
	shmc_destroy("grp");
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 32ull << 20;
	o.mode = 0660;
	o.gid = 1;
	shmc__sys.link = link_spy;
	shmc_t *c = NULL;
	int rc = shmc_create("grp", &o, &c);
	shmc__sys_reset();
	assert_int_equal(rc, 0);
	assert_int_equal(link_gid, 1);
	assert_int_equal(link_mode, 0660);
	shmc_close(c);
	assert_int_equal(shmc_destroy("grp"), 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_names, teardown),
	    cmocka_unit_test_teardown(test_lifecycle, teardown),
	    cmocka_unit_test_teardown(test_create_existing, teardown),
	    cmocka_unit_test_teardown(test_not_a_cache, teardown),
	    cmocka_unit_test_teardown(test_directory, teardown),
	    cmocka_unit_test_teardown(test_version_and_corrupt, teardown),
	    cmocka_unit_test_teardown(test_truncated, teardown),
	    cmocka_unit_test_teardown(test_owner, teardown),
	    cmocka_unit_test_teardown(test_mode, teardown),
	    cmocka_unit_test_teardown(test_inject_create, teardown),
	    cmocka_unit_test_teardown(test_inject_open, teardown),
	    cmocka_unit_test_teardown(test_inject_commit, teardown),
	    cmocka_unit_test_teardown(test_inject_first_commit, teardown),
	    cmocka_unit_test_teardown(test_group_before_link, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
