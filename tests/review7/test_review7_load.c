/*
 * test_review7_load.c - review 7 of get-or-load (lib/load.c).
 *
 *  - store_error_not_bufsize (FAILS before the fix): the loaded value is
 *    larger than the caller's buffer and storing it fails (larger than
 *    the cache's largest value).  run_loader answered SHMC_EBUFSIZE,
 *    whose contract is "the value is in the cache, ask again with a
 *    bigger buffer": it is not, and asking again runs the loader (the
 *    database) again.  The store's error must come back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

#define MiB (1ull << 20)

struct big {
	size_t len;
	int calls;
};

static int big_loader(const void *key, size_t klen, void *buf, size_t *vlen,
                      uint32_t *flags, void *arg)
{
	(void)key;
	(void)klen;
	(void)flags;
	struct big *b = arg;
	b->calls++;
	if (*vlen < b->len) {
		*vlen = b->len;
		return SHMC_EBUFSIZE;
	}
	memset(buf, 'v', b->len);
	*vlen = b->len;
	return 0;
}

static void store_error_not_bufsize(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "ld%d", (int)getpid());
	shmc_t *c = th_create(name, 16 * MiB);
	struct shmc_info in;
	assert_int_equal(shmc_info(c, &in), 0);
	/* A value the cache cannot hold. */
	struct big b = {.len = in.max_value + 100, .calls = 0};
	char small[64];
	size_t n = sizeof(small);
	int rc = shmc_get_or_load(c, "k", 1, small, &n, NULL, big_loader, &b,
	                          NULL);
	printf("  small buffer: %s (%d), vlen %zu, loader calls %d\n",
	       shmc_err_name(rc), rc, n, b.calls);
	if (rc == SHMC_EBUFSIZE) {
		/* The contract of SHMC_EBUFSIZE: the value is cached. */
		char *buf = malloc(n);
		assert_non_null(buf);
		size_t m = n;
		assert_int_equal(shmc_get(c, "k", 1, buf, &m, NULL), 0);
		free(buf);
	}
	assert_int_equal(rc, SHMC_EVALLEN);
	assert_int_equal(n, b.len); /* the size it would have needed */
	shmc_close(c);
	shmc_destroy(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(store_error_not_bufsize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
