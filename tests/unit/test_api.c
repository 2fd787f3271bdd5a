/*
 * test_api.c - every documented error of the public API, table-driven.
 *
 * Proves: NULL handles, keys and buffers, empty and oversized keys,
 * oversized values (> shmc_info().max_value), a too-small buffer (with the
 * needed length reported and the buffer untouched), add on a present key,
 * a TTL out of range, bad create options, bad open flags, a missing cache
 * and a missing SHMCACHE_DIR each return their documented code; and after
 * EVERY error the cache holds exactly what it held before (all reference
 * keys readable with their values and flags, the item count unchanged).
 * Also: shmc_strerror/shmc_err_name for every code of SHMC_ERRNO_MAP and for
 * -errno, and shmc_version.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "helpers.h"
#include "uhelp.h"

#define MEM (2u << 20)
#define SEG SHMC_SEGMENT_MIN

static shmc_t *C;             /* the cache every row runs against */
static struct shmc_info INFO; /* its fixed properties */
static char BIG[SHMC_SEGMENT_MIN + 64];
static char KEY251[SHMC_KEY_MAX + 1];

/* ---- one row per error ---------------------------------------------- */

struct row {
	const char *what;
	int (*op)(void);
	int want;
};

static char rbuf[64];
static size_t rlen;

static int set_null_c(void) { return shmc_set(NULL, "k", 1, "v", 1, 0, 0); }
static int set_null_key(void) { return shmc_set(C, NULL, 1, "v", 1, 0, 0); }
static int set_null_val(void) { return shmc_set(C, "k", 1, NULL, 1, 0, 0); }
static int set_klen0(void) { return shmc_set(C, "k", 0, "v", 1, 0, 0); }
static int set_klen_max1(void)
{
	return shmc_set(C, KEY251, SHMC_KEY_MAX + 1, "v", 1, 0, 0);
}
static int set_klen_huge(void)
{
	return shmc_set(C, KEY251, SIZE_MAX, "v", 1, 0, 0);
}
static int set_vlen_max1(void)
{
	return shmc_set(C, "k", 1, BIG, INFO.max_value + 1, 0, 0);
}
static int set_vlen_seg(void)
{
	return shmc_set(C, "k", 1, BIG, INFO.segment_size, 0, 0);
}
static int set_vlen_4g(void)
{
	return shmc_set(C, "k", 1, BIG, (size_t)UINT32_MAX + 1, 0, 0);
}
static int set_vlen_huge(void)
{
	return shmc_set(C, "k", 1, BIG, SIZE_MAX, 0, 0);
}
static int set_ttl_big(void)
{
	return shmc_set(C, "k", 1, "v", 1, SHMC__TTL_MAX + 1, 0);
}
static int set_ttl_max1(void)
{
	return shmc_set(C, "k", 1, "v", 1, UINT32_MAX - 1, 0);
}
/* Each error of set on an existing reference key must keep its value. */
static int set_ref_vlen(void)
{
	return shmc_set(C, "ref-000", 7, BIG, INFO.max_value + 1, 0, 0);
}
static int set_ref_ttl(void)
{
	return shmc_set(C, "ref-001", 7, "v", 1, SHMC__TTL_MAX + 1, 0);
}
static int set_ref_nullval(void)
{
	return shmc_set(C, "ref-002", 7, NULL, 5, 0, 0);
}
static int add_present(void) { return shmc_add(C, "ref-003", 7, "v", 1, 0, 9); }
static int add_present_big(void)
{
	return shmc_add(C, "ref-004", 7, BIG, 1000, 0, 9);
}
static int add_null_c(void) { return shmc_add(NULL, "k", 1, "v", 1, 0, 0); }
static int add_klen0(void) { return shmc_add(C, "k", 0, "v", 1, 0, 0); }
static int add_vlen(void)
{
	return shmc_add(C, "k", 1, BIG, INFO.max_value + 1, 0, 0);
}
static int add_ttl(void) { return shmc_add(C, "k", 1, "v", 1, UINT32_MAX - 1, 0); }

static int get_null_c(void)
{
	rlen = sizeof(rbuf);
	return shmc_get(NULL, "ref-000", 7, rbuf, &rlen, NULL);
}
static int get_null_key(void)
{
	rlen = sizeof(rbuf);
	return shmc_get(C, NULL, 7, rbuf, &rlen, NULL);
}
static int get_null_vlen(void)
{
	return shmc_get(C, "ref-000", 7, rbuf, NULL, NULL);
}
static int get_null_buf(void)
{
	rlen = 8;
	return shmc_get(C, "ref-000", 7, NULL, &rlen, NULL);
}
static int get_klen0(void)
{
	rlen = sizeof(rbuf);
	return shmc_get(C, "ref-000", 0, rbuf, &rlen, NULL);
}
static int get_klen_max1(void)
{
	rlen = sizeof(rbuf);
	return shmc_get(C, KEY251, SHMC_KEY_MAX + 1, rbuf, &rlen, NULL);
}
static int get_missing(void)
{
	rlen = sizeof(rbuf);
	return shmc_get(C, "nope", 4, rbuf, &rlen, NULL);
}
static int del_null_c(void) { return shmc_del(NULL, "ref-000", 7); }
static int del_null_key(void) { return shmc_del(C, NULL, 7); }
static int del_klen0(void) { return shmc_del(C, "ref-000", 0); }
static int del_klen_max1(void) { return shmc_del(C, KEY251, SHMC_KEY_MAX + 1); }
static int del_missing(void) { return shmc_del(C, "nope", 4); }
static int ref_no_section(void)
{
	const void *v;
	size_t vl;
	return shmc_get_ref(C, "ref-000", 7, &v, &vl, NULL);
}
static int ref_null_value(void)
{
	size_t vl;
	return shmc_get_ref(C, "ref-000", 7, NULL, &vl, NULL);
}
static int ref_null_vlen(void)
{
	const void *v;
	return shmc_get_ref(C, "ref-000", 7, &v, NULL, NULL);
}
static int ref_klen0(void)
{
	const void *v;
	size_t vl;
	return shmc_get_ref(C, "ref-000", 0, &v, &vl, NULL);
}
static int ref_missing_in_section(void)
{
	const void *v;
	size_t vl;
	assert_int_equal(shmc_read_begin(C), 0);
	int rc = shmc_get_ref(C, "nope", 4, &v, &vl, NULL);
	assert_int_equal(shmc_read_end(C), 0);
	return rc;
}
static int begin_null(void) { return shmc_read_begin(NULL); }
static int end_null(void) { return shmc_read_end(NULL); }
static int end_no_section(void) { return shmc_read_end(C); }
static int stats_null_c(void)
{
	struct shmc_stats st;
	return shmc_stats(NULL, &st);
}
static int stats_null_st(void) { return shmc_stats(C, NULL); }
static int info_null_c(void)
{
	struct shmc_info i;
	return shmc_info(NULL, &i);
}
static int info_null_i(void) { return shmc_info(C, NULL); }
static int readers_null_fn(void) { return shmc_readers(C, NULL, NULL); }
static int one_reader(const struct shmc_reader *r, void *a)
{
	(void)r;
	(void)a;
	return 0;
}
static int readers_null_c(void) { return shmc_readers(NULL, one_reader, NULL); }
static int check_null(void) { return shmc_check(NULL, NULL, NULL); }
static int one_key(const void *k, size_t kl, size_t vl, void *a)
{
	(void)k;
	(void)kl;
	(void)vl;
	(void)a;
	return 0;
}
static int keys_null_c(void) { return shmc_keys(NULL, one_key, NULL); }
static int keys_null_fn(void) { return shmc_keys(C, NULL, NULL); }
static int clock_null(void) { return shmc_set_clock(NULL, NULL, NULL); }
static int open_bad_flags(void)
{
	shmc_t *c2 = NULL;
	return shmc_open("api", 0x80, &c2);
}
static int open_null_out(void) { return shmc_open("api", 0, NULL); }
static int open_missing(void)
{
	shmc_t *c2 = NULL;
	return shmc_open("api-missing", 0, &c2);
}
static int open_bad_name(void)
{
	shmc_t *c2 = NULL;
	return shmc_open("a/b", 0, &c2);
}
static int destroy_missing(void) { return shmc_destroy("api-missing"); }
static int destroy_bad_name(void) { return shmc_destroy(".."); }

/* create: each with the default options but one */
static int create_with(void (*fn)(struct shmc_create_opts *o))
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = MEM;
	o.segment_size = SEG;
	o.max_readers = 16;
	fn(&o);
	shmc_t *c2 = NULL;
	int rc = shmc_create("api-new", &o, &c2);
	if (rc == 0) {
		shmc_close(c2);
		shmc_destroy("api-new");
	}
	assert_null(c2 == NULL ? NULL : (void *)1);
	return rc;
}
static void o_seg_npow2(struct shmc_create_opts *o) { o->segment_size = 3u << 16; }
static void o_seg_small(struct shmc_create_opts *o) { o->segment_size = SHMC_SEGMENT_MIN / 2; }
static void o_seg_big(struct shmc_create_opts *o) { o->segment_size = SHMC_SEGMENT_MAX * 2u; }
static void o_seg_zero(struct shmc_create_opts *o) { o->segment_size = 0; }
static void o_mem_small(struct shmc_create_opts *o) { o->memory = 64u << 10; }
static void o_mem_zero(struct shmc_create_opts *o) { o->memory = 0; }
static void o_max_below(struct shmc_create_opts *o) { o->max_memory = o->memory - 4096; }
static void o_readers0(struct shmc_create_opts *o) { o->max_readers = 0; }
static void o_readers_big(struct shmc_create_opts *o) { o->max_readers = 32768; }
static void o_buckets(struct shmc_create_opts *o) { o->index_buckets = (1ull << 32) + 1; }
static void o_ttl(struct shmc_create_opts *o) { o->default_ttl = SHMC__TTL_MAX + 1; }
static void o_mode(struct shmc_create_opts *o) { o->mode = 010000; }
static void o_numa(struct shmc_create_opts *o) { o->numa = 7; }
static void o_numa_neg(struct shmc_create_opts *o) { o->numa = -1; }
static int cr_seg_npow2(void) { return create_with(o_seg_npow2); }
static int cr_seg_small(void) { return create_with(o_seg_small); }
static int cr_seg_big(void) { return create_with(o_seg_big); }
static int cr_seg_zero(void) { return create_with(o_seg_zero); }
static int cr_mem_small(void) { return create_with(o_mem_small); }
static int cr_mem_zero(void) { return create_with(o_mem_zero); }
static int cr_max_below(void) { return create_with(o_max_below); }
static int cr_readers0(void) { return create_with(o_readers0); }
static int cr_readers_big(void) { return create_with(o_readers_big); }
static int cr_buckets(void) { return create_with(o_buckets); }
static int cr_ttl(void) { return create_with(o_ttl); }
static int cr_mode(void) { return create_with(o_mode); }
static int cr_numa(void) { return create_with(o_numa); }
static int cr_numa_neg(void) { return create_with(o_numa_neg); }
static int cr_existing(void)
{
	shmc_t *c2 = NULL;
	return shmc_create("api", NULL, &c2);
}
static int cr_null_out(void) { return shmc_create("api-new", NULL, NULL); }
static int cr_bad_name(void)
{
	shmc_t *c2 = NULL;
	return shmc_create("x y", NULL, &c2);
}

static const struct row rows[] = {
    {"set NULL handle", set_null_c, -EINVAL},
    {"set NULL key", set_null_key, -EINVAL},
    {"set NULL value, vlen 1", set_null_val, -EINVAL},
    {"set klen 0", set_klen0, SHMC_EKEYLEN},
    {"set klen KEY_MAX+1", set_klen_max1, SHMC_EKEYLEN},
    {"set klen SIZE_MAX", set_klen_huge, SHMC_EKEYLEN},
    {"set vlen max_value+1", set_vlen_max1, SHMC_EVALLEN},
    {"set vlen segment size", set_vlen_seg, SHMC_EVALLEN},
    {"set vlen 4 GiB", set_vlen_4g, SHMC_EVALLEN},
    {"set vlen SIZE_MAX", set_vlen_huge, SHMC_EVALLEN},
    {"set ttl 10 years + 1", set_ttl_big, -EINVAL},
    {"set ttl UINT32_MAX-1", set_ttl_max1, -EINVAL},
    {"set ref, vlen too big", set_ref_vlen, SHMC_EVALLEN},
    {"set ref, ttl too big", set_ref_ttl, -EINVAL},
    {"set ref, NULL value", set_ref_nullval, -EINVAL},
    {"add present", add_present, SHMC_EEXISTS},
    {"add present, big value", add_present_big, SHMC_EEXISTS},
    {"add NULL handle", add_null_c, -EINVAL},
    {"add klen 0", add_klen0, SHMC_EKEYLEN},
    {"add vlen max_value+1", add_vlen, SHMC_EVALLEN},
    {"add ttl too big", add_ttl, -EINVAL},
    {"get NULL handle", get_null_c, -EINVAL},
    {"get NULL key", get_null_key, -EINVAL},
    {"get NULL vlen", get_null_vlen, -EINVAL},
    {"get NULL buf, vlen 8", get_null_buf, -EINVAL},
    {"get klen 0", get_klen0, SHMC_EKEYLEN},
    {"get klen KEY_MAX+1", get_klen_max1, SHMC_EKEYLEN},
    {"get missing", get_missing, SHMC_ENOTFOUND},
    {"del NULL handle", del_null_c, -EINVAL},
    {"del NULL key", del_null_key, -EINVAL},
    {"del klen 0", del_klen0, SHMC_EKEYLEN},
    {"del klen KEY_MAX+1", del_klen_max1, SHMC_EKEYLEN},
    {"del missing", del_missing, SHMC_ENOTFOUND},
    {"get_ref outside a section", ref_no_section, SHMC_ENOSECTION},
    {"get_ref NULL value", ref_null_value, -EINVAL},
    {"get_ref NULL vlen", ref_null_vlen, -EINVAL},
    {"get_ref klen 0", ref_klen0, SHMC_EKEYLEN},
    {"get_ref missing", ref_missing_in_section, SHMC_ENOTFOUND},
    {"read_begin NULL", begin_null, -EINVAL},
    {"read_end NULL", end_null, -EINVAL},
    {"read_end without begin", end_no_section, SHMC_ENOSECTION},
    {"stats NULL handle", stats_null_c, -EINVAL},
    {"stats NULL out", stats_null_st, -EINVAL},
    {"info NULL handle", info_null_c, -EINVAL},
    {"info NULL out", info_null_i, -EINVAL},
    {"readers NULL fn", readers_null_fn, -EINVAL},
    {"readers NULL handle", readers_null_c, -EINVAL},
    {"check NULL handle", check_null, -EINVAL},
    {"keys NULL handle", keys_null_c, -EINVAL},
    {"keys NULL fn", keys_null_fn, -EINVAL},
    {"set_clock NULL handle", clock_null, -EINVAL},
    {"open unknown flags", open_bad_flags, -EINVAL},
    {"open NULL out", open_null_out, -EINVAL},
    {"open missing", open_missing, -ENOENT},
    {"open bad name", open_bad_name, SHMC_ENAME},
    {"destroy missing", destroy_missing, -ENOENT},
    {"destroy bad name", destroy_bad_name, SHMC_ENAME},
    {"create existing", cr_existing, -EEXIST},
    {"create NULL out", cr_null_out, -EINVAL},
    {"create bad name", cr_bad_name, SHMC_ENAME},
    {"create segment not a power of two", cr_seg_npow2, -EINVAL},
    {"create segment below min", cr_seg_small, -EINVAL},
    {"create segment above max", cr_seg_big, -EINVAL},
    {"create segment 0", cr_seg_zero, -EINVAL},
    {"create budget too small", cr_mem_small, SHMC_EBUDGET},
    {"create budget 0", cr_mem_zero, SHMC_EBUDGET},
    {"create max_memory below memory", cr_max_below, SHMC_EBUDGET},
    {"create max_readers 0", cr_readers0, -EINVAL},
    {"create max_readers 32768", cr_readers_big, -EINVAL},
    {"create index_buckets 2^32+1", cr_buckets, -EINVAL},
    {"create default_ttl too big", cr_ttl, -EINVAL},
    {"create mode 010000", cr_mode, -EINVAL},
    {"create numa 7", cr_numa, -EINVAL},
    {"create numa -1", cr_numa_neg, -EINVAL},
};

static int setup(void **state)
{
	(void)state;
	th_private_dir();
	memset(BIG, 'B', sizeof(BIG));
	memset(KEY251, 'K', sizeof(KEY251));
	C = uh_create("api", MEM, SEG, 16, 0);
	uh_ref_put(C);
	assert_int_equal(shmc_info(C, &INFO), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	shmc_close(C);
	shmc_destroy("api");
	C = NULL;
	return 0;
}

static void test_error_table(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		uint64_t items = uh_items(C);
		int files = uh_dir_entries();
		int rc = rows[i].op();
		if (rc != rows[i].want) {
			print_error("%s: got %s (%d), want %s (%d)\n",
			            rows[i].what, shmc_err_name(rc), rc,
			            shmc_err_name(rows[i].want), rows[i].want);
			failures++;
			if (rc == 0) {
				/* it stored something: put the cache back */
				shmc_del(C, "k", 1);
				uh_ref_put(C);
			}
			continue;
		}
		/* The cache is exactly as it was. */
		uh_ref_check(C);
		if (uh_items(C) != items) {
			print_error("%s: items %llu -> %llu\n", rows[i].what,
			            (unsigned long long)items,
			            (unsigned long long)uh_items(C));
			failures++;
		}
		size_t vl = 0;
		assert_int_equal(shmc_get(C, "k", 1, NULL, &vl, NULL),
		                 SHMC_ENOTFOUND);
		assert_int_equal(uh_dir_entries(), files);
	}
	uh_check_clean(C);
	assert_int_equal(failures, 0);
}

/* The value limit is exact: max_value fits with a 1-byte key. */
static void test_max_value(void **state)
{
	(void)state;
	assert_int_equal(shmc_set(C, "m", 1, BIG, INFO.max_value, 0, 7), 0);
	size_t vl = 0;
	assert_int_equal(shmc_get(C, "m", 1, NULL, &vl, NULL), SHMC_EBUFSIZE);
	assert_int_equal(vl, INFO.max_value);
	assert_int_equal(shmc_del(C, "m", 1), 0);
	/* The longest key still stores a smaller value. */
	assert_int_equal(shmc_set(C, KEY251, SHMC_KEY_MAX, "v", 1, 0, 0), 0);
	assert_int_equal(shmc_del(C, KEY251, SHMC_KEY_MAX), 0);
	/* The largest value that fits is max_value: one byte more is
	 * SHMC_EVALLEN (documented: "largest value with a 1-byte key"). */
	int rc = shmc_set(C, "m", 1, BIG, INFO.max_value + 1, 0, 0);
	if (rc == 0)
		shmc_del(C, "m", 1);
	assert_int_equal(rc, SHMC_EVALLEN);
	uh_ref_check(C);
}

/* SHMC_EBUFSIZE: needed length reported, buffer untouched; length query. */
static void test_bufsize(void **state)
{
	(void)state;
	char k[32], want[256], buf[256];
	size_t kl = uh_ref_key(k, 20);
	size_t wl = th_value(want, sizeof(want), k, kl, 20, 40 + 20 * 5);
	for (size_t cap = 0; cap < wl; cap += 7) {
		memset(buf, 0x5a, sizeof(buf));
		size_t vl = cap;
		uint32_t fl = 0xdead;
		assert_int_equal(shmc_get(C, k, kl, cap ? buf : NULL, &vl, &fl),
		                 SHMC_EBUFSIZE);
		assert_int_equal(vl, wl);
		assert_int_equal(fl, 0xdead);
		for (size_t j = 0; j < sizeof(buf); j++)
			assert_int_equal((unsigned char)buf[j], 0x5a);
	}
	size_t vl = wl;
	assert_int_equal(shmc_get(C, k, kl, buf, &vl, NULL), 0);
	assert_memory_equal(buf, want, wl);
	/* An empty value: a length query (buf NULL, *vlen 0) is a hit.  In
	 * a child, so that a sanitizer stopping it (UBSan halt_on_error)
	 * fails this test without leaving the cache files behind. */
	assert_int_equal(shmc_set(C, "empty", 5, NULL, 0, 0, 3), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		vl = 0;
		uint32_t fl = 0;
		int rc = shmc_get(C, "empty", 5, NULL, &vl, &fl);
		_exit(rc == 0 && vl == 0 && fl == 3 ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("length query of an empty value failed (status %#x)",
		         st);
	assert_int_equal(shmc_del(C, "empty", 5), 0);
	uh_ref_check(C);
}

/* A missing SHMCACHE_DIR: create and open say -ENOENT, nothing made. */
static void test_missing_dir(void **state)
{
	(void)state;
	char dir[600];
	snprintf(dir, sizeof(dir), "%s/no/such/dir", th_private_dir());
	const char *old = getenv("SHMCACHE_DIR");
	char saved[512];
	snprintf(saved, sizeof(saved), "%s", old);
	setenv("SHMCACHE_DIR", dir, 1);
	shmc_t *c2 = NULL;
	int rc_create = shmc_create("api2", NULL, &c2);
	int rc_open = shmc_open("api", 0, &c2);
	int rc_destroy = shmc_destroy("api");
	setenv("SHMCACHE_DIR", saved, 1);
	assert_int_equal(rc_create, -ENOENT);
	assert_int_equal(rc_open, -ENOENT);
	assert_int_equal(rc_destroy, -ENOENT);
	assert_int_equal(uh_dir_entries(), 1);
	uh_ref_check(C);
}

/* TTL boundaries that are accepted. */
static void test_ttl_ok(void **state)
{
	(void)state;
	uint64_t now = 1000000;
	shmc_set_clock(C, th_clock, &now);
	assert_int_equal(shmc_set(C, "t", 1, "v", 1, SHMC__TTL_MAX, 0), 0);
	assert_int_equal(shmc_set(C, "t", 1, "v", 1, 1, 0), 0);
	assert_int_equal(shmc_set(C, "t", 1, "v", 1, SHMC_TTL_DEFAULT, 0), 0);
	assert_int_equal(shmc_set(C, "u", 1, "v", 1, 5, 0), 0);
	now += 5;
	size_t vl = 0;
	assert_int_equal(shmc_get(C, "u", 1, NULL, &vl, NULL), SHMC_ENOTFOUND);
	/* an expired key may be added again */
	assert_int_equal(shmc_add(C, "u", 1, "w", 1, 0, 0), 0);
	assert_int_equal(shmc_del(C, "u", 1), 0);
	assert_int_equal(shmc_del(C, "t", 1), 0);
	shmc_set_clock(C, NULL, NULL);
	uh_ref_check(C);
}

static void test_errors_named(void **state)
{
	(void)state;
	int n = 0;
#define CHECK_ONE(name, val, text)                                             \
	do {                                                                   \
		assert_int_equal(SHMC_E##name, val);                           \
		assert_true(val < -4095);                                      \
		assert_string_equal(shmc_err_name(val), "SHMC_E" #name);      \
		assert_string_equal(shmc_strerror(val), text);                 \
		n++;                                                           \
	} while (0);
	SHMC_ERRNO_MAP(CHECK_ONE)
#undef CHECK_ONE
	assert_int_equal(n, 14);
	assert_string_equal(shmc_err_name(-ENOENT), "ENOENT");
	assert_string_equal(shmc_strerror(-ENOENT), "No such file or directory");
	assert_string_equal(shmc_err_name(-EEXIST), "EEXIST");
	assert_string_equal(shmc_err_name(-ENOSPC), "ENOSPC");
	assert_string_equal(shmc_err_name(-EACCES), "EACCES");
	assert_string_equal(shmc_err_name(-EINVAL), "EINVAL");
	int odd[] = {1, 4242, -4096, -5000, -20000, -20100, INT32_MIN, INT32_MAX};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		assert_non_null(shmc_strerror(odd[i]));
		assert_non_null(shmc_err_name(odd[i]));
	}
	assert_string_equal(shmc_strerror(-20100), "unknown error");
	assert_string_equal(shmc_err_name(-20100), "UNKNOWN");
	assert_non_null(shmc_strerror(0));
	assert_non_null(shmc_err_name(0));
	char v[32];
	snprintf(v, sizeof(v), "%d.%d.%d", SHMC_VERSION_MAJOR,
	         SHMC_VERSION_MINOR, SHMC_VERSION_PATCH);
	assert_string_equal(shmc_version(), v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_error_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_value, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bufsize, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl_ok, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors_named, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
