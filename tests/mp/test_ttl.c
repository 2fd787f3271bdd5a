/*
 * test_ttl.c - proves the TTL contract through the injectable clock, with
 * no sleeps: an item is live up to the second before its expiry and gone at
 * its expiry second; SHMC_TTL_DEFAULT means the cache's default_ttl;
 * SHMC_TTL_NONE never expires, also in a cache with a default; add()
 * succeeds over an expired key and fails over a live one; ttl beyond 10
 * years is refused; eviction drops expired items instead of copying them
 * forward (and counts them as expirations), both item by item in a segment
 * of mixed items and for a segment whose every item has expired; expiry is
 * a property of the shared item, so another process with its own clock
 * sees the same expiry second.
 *
 * "Not copied forward" is observed from outside by turning the clock back
 * after eviction: an expired item that eviction had copied forward would
 * be found again under the earlier clock; a dropped one is not.
 */
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "mp.h"

#define T0 1700000000ull
#define VBUF 8192

static uint64_t now_s; /* th_clock reads this */

static shmc_t *make(const char *name, uint32_t default_ttl)
{
	shmc_t *c = mp_create(name, 2u << 20, 64u << 10, 16, default_ttl);
	now_s = T0;
	assert_int_equal(shmc_set_clock(c, th_clock, &now_s), 0);
	return c;
}

static void done(shmc_t *c, const char *name)
{
	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
}

static int put(shmc_t *c, const char *key, uint32_t ttl, uint64_t ver,
               size_t len)
{
	char buf[VBUF];
	len = th_value(buf, sizeof(buf), key, strlen(key), ver, len);
	return shmc_set(c, key, strlen(key), buf, len, ttl, (uint32_t)ver);
}

static int add(shmc_t *c, const char *key, uint32_t ttl, uint64_t ver)
{
	char buf[VBUF];
	size_t len = th_value(buf, sizeof(buf), key, strlen(key), ver, 64);
	return shmc_add(c, key, strlen(key), buf, len, ttl, (uint32_t)ver);
}

/* 1 hit (value intact; its version in *ver when not NULL), 0 miss. */
static int look(shmc_t *c, const char *key, uint64_t *ver)
{
	char buf[VBUF];
	size_t vlen = sizeof(buf);
	uint32_t fl;
	int rc = shmc_get(c, key, strlen(key), buf, &vlen, &fl);
	if (rc == SHMC_ENOTFOUND)
		return 0;
	assert_int_equal(rc, 0);
	assert_true(th_value_ok(buf, vlen, key, strlen(key)));
	if (ver)
		*ver = fl;
	return 1;
}

static struct shmc_stats stats(shmc_t *c)
{
	struct shmc_stats s;
	assert_int_equal(shmc_stats(c, &s), 0);
	return s;
}

static void test_expires_at_its_second(void **state)
{
	(void)state;
	shmc_t *c = make("ttl-exact", 0);
	assert_int_equal(put(c, "k10", 10, 1, 64), 0);
	assert_int_equal(put(c, "k1", 1, 1, 64), 0);
	now_s = T0 + 9;
	assert_int_equal(look(c, "k10", NULL), 1);
	assert_int_equal(look(c, "k1", NULL), 0);
	now_s = T0 + 10;
	assert_int_equal(look(c, "k10", NULL), 0);
	now_s = T0 + 5; /* the clock is the caller's: back before expiry */
	assert_int_equal(look(c, "k10", NULL), 1);
	now_s = T0 + 1000;
	assert_int_equal(look(c, "k10", NULL), 0);
	/* A set refreshes the expiry from the current clock. */
	assert_int_equal(put(c, "k10", 10, 2, 64), 0);
	now_s = T0 + 1009;
	uint64_t v = 0;
	assert_int_equal(look(c, "k10", &v), 1);
	assert_int_equal(v, 2);
	now_s = T0 + 1010;
	assert_int_equal(look(c, "k10", NULL), 0);
	done(c, "ttl-exact");
}

static void test_default_ttl(void **state)
{
	(void)state;
	shmc_t *c = make("ttl-default", 30);
	struct shmc_info info;
	assert_int_equal(shmc_info(c, &info), 0);
	assert_int_equal(info.default_ttl, 30);
	assert_int_equal(put(c, "dflt", SHMC_TTL_DEFAULT, 1, 64), 0);
	assert_int_equal(put(c, "own", 5, 1, 64), 0);
	assert_int_equal(put(c, "never", SHMC_TTL_NONE, 1, 64), 0);
	assert_int_equal(add(c, "added", SHMC_TTL_DEFAULT, 1), 0);
	now_s = T0 + 4;
	assert_int_equal(look(c, "own", NULL), 1);
	now_s = T0 + 5;
	assert_int_equal(look(c, "own", NULL), 0);
	now_s = T0 + 29;
	assert_int_equal(look(c, "dflt", NULL), 1);
	assert_int_equal(look(c, "added", NULL), 1);
	now_s = T0 + 30;
	assert_int_equal(look(c, "dflt", NULL), 0);
	assert_int_equal(look(c, "added", NULL), 0);
	/* SHMC_TTL_NONE is not "the default": it never expires. */
	now_s = T0 + 10ull * 365 * 86400;
	assert_int_equal(look(c, "never", NULL), 1);
	done(c, "ttl-default");
}

static void test_ttl_none_never_expires(void **state)
{
	(void)state;
	shmc_t *c = make("ttl-none", 0);
	assert_int_equal(put(c, "forever", SHMC_TTL_NONE, 7, 64), 0);
	/* default_ttl 0: SHMC_TTL_DEFAULT means no expiry either. */
	assert_int_equal(put(c, "dflt0", SHMC_TTL_DEFAULT, 7, 64), 0);
	const uint64_t later[] = {1, 86400, 365ull * 86400,
	                          20ull * 365 * 86400, UINT32_MAX - T0};
	for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
		now_s = T0 + later[i];
		assert_int_equal(look(c, "forever", NULL), 1);
		assert_int_equal(look(c, "dflt0", NULL), 1);
	}
	done(c, "ttl-none");
}

static void test_ttl_bounds(void **state)
{
	(void)state;
	shmc_t *c = make("ttl-bounds", 0);
	const uint32_t ten_years = 10u * 365u * 86400u;
	assert_int_equal(put(c, "max", ten_years, 1, 64), 0);
	assert_int_equal(put(c, "over", ten_years + 1, 1, 64), -EINVAL);
	assert_int_equal(look(c, "over", NULL), 0);
	now_s = T0 + ten_years - 1;
	assert_int_equal(look(c, "max", NULL), 1);
	now_s = T0 + ten_years;
	assert_int_equal(look(c, "max", NULL), 0);
	done(c, "ttl-bounds");
}

static void test_add_over_expired(void **state)
{
	(void)state;
	shmc_t *c = make("ttl-add", 0);
	assert_int_equal(add(c, "a", 5, 1), 0);
	now_s = T0 + 4;
	assert_int_equal(add(c, "a", 5, 2), SHMC_EEXISTS);
	uint64_t v = 0;
	assert_int_equal(look(c, "a", &v), 1);
	assert_int_equal(v, 1);
	now_s = T0 + 5; /* expired: add succeeds and replaces it */
	assert_int_equal(add(c, "a", 5, 3), 0);
	assert_int_equal(look(c, "a", &v), 1);
	assert_int_equal(v, 3);
	/* ... and the new item is live again: a second add fails. */
	assert_int_equal(add(c, "a", SHMC_TTL_NONE, 4), SHMC_EEXISTS);
	now_s = T0 + 9;
	assert_int_equal(look(c, "a", &v), 1);
	assert_int_equal(v, 3);
	now_s = T0 + 10;
	assert_int_equal(look(c, "a", NULL), 0);
	assert_int_equal(add(c, "a", SHMC_TTL_NONE, 5), 0);
	now_s = UINT32_MAX - 1;
	assert_int_equal(look(c, "a", &v), 1);
	assert_int_equal(v, 5);
	struct shmc_stats s = stats(c);
	assert_int_equal(s.adds, 3);
	assert_int_equal(s.add_exists, 2);
	done(c, "ttl-add");
}

/* shmc.h: "expirations: expired items found by gets or eviction". */
static void test_expired_get_counts_expiration(void **state)
{
	(void)state;
	shmc_t *c = make("ttl-count", 0);
	assert_int_equal(put(c, "e", 3, 1, 64), 0);
	uint64_t before = stats(c).expirations;
	now_s = T0 + 3;
	assert_int_equal(look(c, "e", NULL), 0);
	struct shmc_stats s = stats(c);
	assert_int_equal(s.gets, s.hits + s.misses);
	assert_true(s.expirations > before);
	done(c, "ttl-count");
}

/* Writes about `bytes` of never-expiring, never-read filler. */
static void fill(shmc_t *c, const char *prefix, uint64_t bytes)
{
	char key[32];
	for (uint64_t i = 0, n = 0; n < bytes; i++) {
		mp_key(key, sizeof(key), prefix, i);
		assert_int_equal(put(c, key, SHMC_TTL_NONE, i, 1000), 0);
		n += 1000;
	}
}

/*
 * Mixed segments: hot items with a TTL (A) and hot items without (B),
 * interleaved, so the segment as a whole never expires and eviction
 * decides item by item.
 */
static void test_eviction_drops_expired_items(void **state)
{
	(void)state;
	enum { N = 150 };
	shmc_t *c = make("ttl-evict", 0);
	char key[32];
	for (unsigned i = 0; i < N; i++) {
		mp_key(key, sizeof(key), "A", i);
		assert_int_equal(put(c, key, 5, i, 300), 0);
		mp_key(key, sizeof(key), "B", i);
		assert_int_equal(put(c, key, SHMC_TTL_NONE, i, 300), 0);
	}
	/* Make every one of them hot (frequency > 0). */
	for (int round = 0; round < 2; round++)
		for (unsigned i = 0; i < N; i++) {
			mp_key(key, sizeof(key), "A", i);
			assert_int_equal(look(c, key, NULL), 1);
			mp_key(key, sizeof(key), "B", i);
			assert_int_equal(look(c, key, NULL), 1);
		}
	struct shmc_stats s0 = stats(c);
	now_s = T0 + 10; /* every A has expired */
	fill(c, "fillA", 3u << 20); /* more than the cache: evicts all */
	struct shmc_stats s1 = stats(c);
	now_s = T0; /* back to before the expiry */
	unsigned a_hits = 0, b_hits = 0;
	for (unsigned i = 0; i < N; i++) {
		mp_key(key, sizeof(key), "A", i);
		a_hits += (unsigned)look(c, key, NULL);
		mp_key(key, sizeof(key), "B", i);
		b_hits += (unsigned)look(c, key, NULL);
	}
	uint64_t exp = s1.expirations - s0.expirations;
	uint64_t cf = s1.copy_forwards - s0.copy_forwards;
	uint64_t drops = s1.index_drops;
	printf("mixed: %u/%u expired A found again, %u/%u hot B kept; "
	       "%llu expirations, %llu copy-forwards, %llu index drops\n",
	       a_hits, N, b_hits, N, (unsigned long long)exp,
	       (unsigned long long)cf, (unsigned long long)drops);
	assert_true(s1.segments_evicted > s0.segments_evicted);
	/* No expired item was copied forward ... */
	assert_int_equal(a_hits, 0);
	/* ... each was found by eviction and counted ... */
	assert_true(exp + drops >= N);
	/* ... while the hot live ones were copied forward. */
	assert_true(cf > 0);
	assert_true(b_hits > 0);
	done(c, "ttl-evict");
}

/* Segments whose every item has expired: dropped whole, each item counted. */
static void test_expired_segments_dropped_whole(void **state)
{
	(void)state;
	enum { N = 400 };
	shmc_t *c = make("ttl-seg", 0);
	char key[32];
	for (unsigned i = 0; i < N; i++) {
		mp_key(key, sizeof(key), "C", i);
		assert_int_equal(put(c, key, 5 + i % 3, i, 1000), 0);
	}
	for (unsigned i = 0; i < N; i++) { /* hot, yet expired later */
		mp_key(key, sizeof(key), "C", i);
		assert_int_equal(look(c, key, NULL), 1);
	}
	struct shmc_stats s0 = stats(c);
	now_s = T0 + 8;
	fill(c, "fillC", 3u << 20);
	struct shmc_stats s1 = stats(c);
	now_s = T0;
	unsigned hits = 0;
	for (unsigned i = 0; i < N; i++) {
		mp_key(key, sizeof(key), "C", i);
		hits += (unsigned)look(c, key, NULL);
	}
	uint64_t exp = s1.expirations - s0.expirations;
	printf("whole segments: %u/%u found again; %llu expirations, "
	       "%llu copy-forwards\n",
	       hits, N, (unsigned long long)exp,
	       (unsigned long long)(s1.copy_forwards - s0.copy_forwards));
	assert_int_equal(hits, 0);
	assert_true(exp + s1.index_drops >= N);
	assert_int_equal(s1.copy_forwards, s0.copy_forwards);
	done(c, "ttl-seg");
}

struct xproc {
	const char *name;
	int fail_line;
};

/* Another process, its own clock, the same items. */
static int other_process(void *arg)
{
	const struct xproc *x = arg;
	shmc_t *c = NULL;
	int rc = shmc_open(x->name, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_strerror(rc));
	uint64_t mine = T0 + 2;
	MP_CHECK(shmc_set_clock(c, th_clock, &mine) == 0, MP_FAIL, "clock");
	char buf[256];
	size_t vlen = sizeof(buf);
	rc = shmc_get(c, "x", 1, buf, &vlen, NULL);
	MP_CHECK(rc == 0 && th_value_ok(buf, vlen, "x", 1), MP_FAIL,
	         "x at T0+2: %s", shmc_err_name(rc));
	mine = T0 + 3;
	vlen = sizeof(buf);
	rc = shmc_get(c, "x", 1, buf, &vlen, NULL);
	MP_CHECK(rc == SHMC_ENOTFOUND, MP_FAIL, "x at T0+3: %s",
	         shmc_err_name(rc));
	/* Set y with ttl 1 at T0 + 100 of this clock. */
	mine = T0 + 100;
	size_t len = th_value(buf, sizeof(buf), "y", 1, 1, 64);
	rc = shmc_set(c, "y", 1, buf, len, 1, 0);
	MP_CHECK(rc == 0, MP_FAIL, "set y: %s", shmc_err_name(rc));
	shmc_close(c);
	return MP_OK;
}

static void test_expiry_is_shared(void **state)
{
	(void)state;
	shmc_t *c = make("ttl-xproc", 0);
	assert_int_equal(put(c, "x", 3, 1, 64), 0);
	struct xproc x = {.name = "ttl-xproc"};
	pid_t pid = mp_spawn(other_process, &x);
	int st;
	assert_int_equal(mp_wait(pid, 30, &st), 0);
	assert_true(mp_exited_ok(st));
	now_s = T0 + 100;
	assert_int_equal(look(c, "y", NULL), 1);
	now_s = T0 + 101;
	assert_int_equal(look(c, "y", NULL), 0);
	done(c, "ttl-xproc");
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_expires_at_its_second),
	    cmocka_unit_test(test_default_ttl),
	    cmocka_unit_test(test_ttl_none_never_expires),
	    cmocka_unit_test(test_ttl_bounds),
	    cmocka_unit_test(test_add_over_expired),
	    cmocka_unit_test(test_expired_get_counts_expiration),
	    cmocka_unit_test(test_eviction_drops_expired_items),
	    cmocka_unit_test(test_expired_segments_dropped_whole),
	    cmocka_unit_test_teardown(test_expiry_is_shared, mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
