/*
 * test_index.c - the hash index (lib/index.c).
 *
 * Proves: set/get/delete round trips for keys of every length (binary
 * keys, empty values, flags); replacing a key keeps exactly one entry;
 * keys whose hashes collide in one bucket (and keys equal in bucket, tag
 * and hash check, told apart only by the key bytes) are all findable with
 * their own values; a bucket that overflows far past its 7 ways keeps
 * every key findable or counts it in index_drops, and a get never returns
 * another key's value; a hit sets the entry's frequency bits and saturates
 * them; a bucket lock left by a SIGKILLed writer is released by
 * shmc__dead_slot (via a probe, and by the next writer on that bucket).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "helpers.h"
#include "uhelp.h"

#define SEG SHMC_SEGMENT_MIN

static size_t key_of(char *k, const char *pfx, uint64_t i)
{
	return (size_t)snprintf(k, 64, "%s-%llu", pfx, (unsigned long long)i);
}

static size_t val_of(char *v, size_t cap, const char *k, size_t kl,
                     uint64_t ver)
{
	return th_value(v, cap, k, kl, ver, 24 + (ver % 40));
}

/* A get of k is a miss or k's own value (never another key's). */
static int get_ok(shmc_t *c, const char *k, size_t kl)
{
	char v[256];
	size_t vl = sizeof(v);
	int rc = shmc_get(c, k, kl, v, &vl, NULL);
	if (rc == SHMC_ENOTFOUND)
		return 0;
	assert_int_equal(rc, 0);
	if (!th_value_ok(v, vl, k, kl))
		fail_msg("get(%.*s) returned a value that is not its own",
		         (int)kl, k);
	return 1;
}

static void test_round_trip(void **state)
{
	(void)state;
	shmc_t *c = uh_create("ix-rt", 4u << 20, SEG, 8, 0);
	static char key[SHMC_KEY_MAX], val[4096], buf[4096];
	uint64_t r = 7;
	for (size_t kl = 1; kl <= SHMC_KEY_MAX; kl += (kl < 20 ? 1 : 13)) {
		for (size_t i = 0; i < kl; i++)
			key[i] = (char)th_rand(&r); /* binary, NULs too */
		size_t vl = (size_t)(th_rand(&r) % sizeof(val));
		if (kl % 5 == 0)
			vl = 0;
		for (size_t i = 0; i < vl; i++)
			val[i] = (char)th_rand(&r);
		uint32_t fl = (uint32_t)th_rand(&r);
		assert_int_equal(shmc_set(c, key, kl, val, vl, 0, fl), 0);
		size_t got = sizeof(buf);
		uint32_t gf = 0;
		assert_int_equal(shmc_get(c, key, kl, buf, &got, &gf), 0);
		assert_int_equal(got, vl);
		assert_int_equal(gf, fl);
		if (vl)
			assert_memory_equal(buf, val, vl);
		/* a prefix or an extension of the key is another key */
		got = sizeof(buf);
		if (kl > 1)
			assert_int_equal(shmc_get(c, key, kl - 1, buf, &got,
			                          NULL),
			                 SHMC_ENOTFOUND);
		assert_int_equal(shmc_del(c, key, kl), 0);
		got = sizeof(buf);
		assert_int_equal(shmc_get(c, key, kl, buf, &got, NULL),
		                 SHMC_ENOTFOUND);
		assert_int_equal(shmc_del(c, key, kl), SHMC_ENOTFOUND);
	}
	assert_int_equal(uh_items(c), 0);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("ix-rt");
}

static int count_key(const void *k, size_t kl, size_t vl, void *arg)
{
	(void)vl;
	int *n = arg;
	if (kl == 3 && memcmp(k, "dup", 3) == 0)
		(*n)++;
	return 0;
}

static void test_replace(void **state)
{
	(void)state;
	shmc_t *c = uh_create("ix-rep", 4u << 20, SEG, 8, 0);
	char v[64];
	for (int i = 0; i < 50; i++) {
		size_t vl = (size_t)snprintf(v, sizeof(v), "value %d", i);
		assert_int_equal(shmc_set(c, "dup", 3, v, vl, 0, (uint32_t)i),
		                 0);
	}
	char buf[64];
	size_t vl = sizeof(buf);
	uint32_t fl;
	assert_int_equal(shmc_get(c, "dup", 3, buf, &vl, &fl), 0);
	assert_int_equal(vl, strlen("value 49"));
	assert_memory_equal(buf, "value 49", vl);
	assert_int_equal(fl, 49);
	assert_int_equal(uh_items(c), 1);
	int n = 0;
	assert_int_equal(shmc_keys(c, count_key, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(shmc_del(c, "dup", 3), 0);
	assert_int_equal(shmc_del(c, "dup", 3), SHMC_ENOTFOUND);
	assert_int_equal(uh_items(c), 0);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("ix-rep");
}

/* Keys "pfx-i" whose hash falls in bucket b of a 2^level index. */
static void same_bucket(const char *pfx, unsigned level, uint64_t b,
                        unsigned n, uint64_t *ids)
{
	char k[64];
	unsigned got = 0;
	for (uint64_t i = 0; got < n && i < 100000000ull; i++) {
		size_t kl = key_of(k, pfx, i);
		if ((shmc__hash(k, kl) & ((1ull << level) - 1)) == b)
			ids[got++] = i;
	}
	assert_int_equal(got, n);
}

/*
 * Many keys in one bucket (a small index, 256 buckets, that does not
 * split for so few items): the first 7 fill the bucket and are all
 * findable; the next ones go to overflow buckets (or, while the overflow
 * pool is still empty, replace the least-used entry).  Every key must be
 * findable, or be counted in index_drops; the item count must match what
 * is findable.
 */
static void test_one_bucket(void **state)
{
	(void)state;
	enum { N = 500 };
	shmc_t *c = uh_create("ix-one", 8u << 20, SEG, 8, 256);
	static uint64_t ids[N];
	same_bucket("col", 8, 77, N, ids);
	char k[64], v[256];
	/* Some other keys first, so the overflow pool has been filled. */
	for (unsigned i = 0; i < 100; i++) {
		size_t kl = key_of(k, "other", i);
		size_t vl = val_of(v, sizeof(v), k, kl, i);
		assert_int_equal(shmc_set(c, k, kl, v, vl, 0, 0), 0);
	}
	for (unsigned i = 0; i < 100; i++) {
		size_t kl = key_of(k, "other", i);
		assert_int_equal(shmc_del(c, k, kl), 0);
	}
	for (unsigned i = 0; i < N; i++) {
		size_t kl = key_of(k, "col", ids[i]);
		size_t vl = val_of(v, sizeof(v), k, kl, i);
		assert_int_equal(shmc_set(c, k, kl, v, vl, 0, 0), 0);
		if (i < 7) {
			/* everything so far is still there */
			for (unsigned j = 0; j <= i; j++) {
				size_t jl = key_of(k, "col", ids[j]);
				if (!get_ok(c, k, jl))
					fail_msg("after %u sets, key %u of the "
					         "bucket is gone",
					         i + 1, j);
			}
		}
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	unsigned found = 0;
	for (unsigned i = 0; i < N; i++) {
		size_t kl = key_of(k, "col", ids[i]);
		found += (unsigned)get_ok(c, k, kl);
	}
	print_message("one bucket: %u of %d findable, %llu dropped, %llu "
	              "items\n",
	              found, N, (unsigned long long)st.index_drops,
	              (unsigned long long)st.items);
	/* No key may vanish silently. */
	assert_int_equal(found + st.index_drops, N);
	assert_int_equal(st.items, found);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("ix-one");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Keys that agree in bucket, tag and hash check: only the key bytes tell
 * them apart. */
static void test_full_collision(void **state)
{
	(void)state;
	shmc_t *c = uh_create("ix-tag", 4u << 20, SEG, 8, 256);
	/* 40 bits (8 bucket + 16 tag + 16 check) collide after ~2^20 keys:
	 * sort (bits, id) pairs and take the first equal neighbours. */
	enum { N = 1u << 21 };
	static uint64_t v[N];
	char k[64];
	for (uint64_t i = 0; i < N; i++) {
		uint64_t h = shmc__hash(k, key_of(k, "tag", i));
		uint64_t bits = ((h >> 32) << 8) | (h & 0xff); /* 40 bits */
		v[i] = bits << 24 | i;                         /* i < 2^21 */
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	uint64_t a = UINT64_MAX, b = UINT64_MAX;
	for (uint64_t i = 1; i < N; i++)
		if (v[i] >> 24 == v[i - 1] >> 24) {
			a = v[i - 1] & 0xffffff;
			b = v[i] & 0xffffff;
			break;
		}
	assert_true(a != UINT64_MAX);
	char ka[64], kb[64], va[256], vb[256];
	size_t kal = key_of(ka, "tag", a), kbl = key_of(kb, "tag", b);
	uint64_t ha = shmc__hash(ka, kal), hb = shmc__hash(kb, kbl);
	assert_true(shmc__tag(ha) == shmc__tag(hb));
	assert_true(shmc__hcheck(ha) == shmc__hcheck(hb));
	assert_true((ha & 255) == (hb & 255));
	size_t val = val_of(va, sizeof(va), ka, kal, 1);
	size_t vbl = val_of(vb, sizeof(vb), kb, kbl, 2);
	assert_int_equal(shmc_set(c, ka, kal, va, val, 0, 1), 0);
	assert_true(get_ok(c, ka, kal));
	assert_false(get_ok(c, kb, kbl));
	assert_int_equal(shmc_add(c, kb, kbl, vb, vbl, 0, 2), 0);
	assert_true(get_ok(c, ka, kal));
	assert_true(get_ok(c, kb, kbl));
	assert_int_equal(uh_items(c), 2);
	assert_int_equal(shmc_del(c, ka, kal), 0);
	assert_false(get_ok(c, ka, kal));
	assert_true(get_ok(c, kb, kbl));
	assert_int_equal(shmc_set(c, ka, kal, va, val, 0, 1), 0);
	assert_int_equal(shmc_set(c, kb, kbl, vb, vbl, 0, 2), 0);
	assert_true(get_ok(c, ka, kal));
	assert_true(get_ok(c, kb, kbl));
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("ix-tag");
}

/* Many more keys than a small index holds: never a wrong value, and
 * every key is findable, evicted or counted. */
static void test_many_keys(void **state)
{
	(void)state;
	enum { N = 20000 };
	shmc_t *c = uh_create("ix-many", 16u << 20, SEG, 8, 256);
	char k[64], v[256];
	for (unsigned i = 0; i < N; i++) {
		size_t kl = key_of(k, "many", i);
		size_t vl = val_of(v, sizeof(v), k, kl, i);
		assert_int_equal(shmc_set(c, k, kl, v, vl, 0, 0), 0);
	}
	unsigned found = 0;
	for (unsigned i = 0; i < N; i++) {
		size_t kl = key_of(k, "many", i);
		found += (unsigned)get_ok(c, k, kl);
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	print_message("many: %u of %d found, %llu drops, %llu evictions, "
	              "%llu buckets\n",
	              found, N, (unsigned long long)st.index_drops,
	              (unsigned long long)st.evictions,
	              (unsigned long long)st.index_buckets);
	assert_true(st.index_buckets > 256); /* it grew */
	assert_int_equal(found + st.index_drops + st.evictions, N);
	assert_int_equal(st.items, found);
	uh_check_clean(c);
	shmc_close(c);
	shmc_destroy("ix-many");
}

/* Frequency bits: set on hits, saturating at 3, kept on update. */
static void test_frequency(void **state)
{
	(void)state;
	shmc_t *c = uh_create("ix-freq", 4u << 20, SEG, 8, 0);
	assert_int_equal(shmc_set(c, "f", 1, "v", 1, 0, 0), 0);
	uint64_t h = shmc__hash("f", 1);
	unsigned want[] = {0, 1, 2, 3, 3, 3};
	for (unsigned n = 0; n < 6; n++) {
		assert_int_equal(shmc_read_begin(c), 0);
		struct shmc__bucket *bk;
		int i;
		uint64_t e;
		assert_true(shmc__ix_find(c, h, "f", 1, false, &bk, &i, &e));
		assert_int_equal(shmc_read_end(c), 0);
		assert_int_equal(shmc__e_freq(e), want[n]);
		size_t vl = 0;
		assert_int_equal(shmc_get(c, "f", 1, NULL, &vl, NULL),
		                 SHMC_EBUFSIZE);
	}
	assert_int_equal(shmc_set(c, "f", 1, "w", 1, 0, 0), 0);
	assert_int_equal(shmc_read_begin(c), 0);
	struct shmc__bucket *bk;
	int i;
	uint64_t e;
	assert_true(shmc__ix_find(c, h, "f", 1, false, &bk, &i, &e));
	assert_int_equal(shmc_read_end(c), 0);
	assert_int_equal(shmc__e_freq(e), 3);
	shmc_close(c);
	shmc_destroy("ix-freq");
}

/* A child locks the bucket of key "victim" through the internal API and
 * is SIGKILLed holding it.  Returns the bucket. */
static uint64_t die_holding_lock(shmc_t *c, const char *key)
{
	uint64_t h = shmc__hash(key, strlen(key));
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		shmc_t *cc = NULL;
		int err = 0;
		if (shmc_open("ix-lock", 0, &cc) != 0)
			_exit(1);
		struct shmc__thr *t = shmc__thr_get(cc, &err);
		if (!t)
			_exit(2);
		struct shmc__ixl x;
		shmc__ix_lock(cc, t, h, false, &x);
		if (write(p[1], &x.b, sizeof(x.b)) != sizeof(x.b))
			_exit(3);
		raise(SIGKILL);
		_exit(4);
	}
	close(p[1]);
	uint64_t b = UINT64_MAX;
	assert_int_equal(read(p[0], &b, sizeof(b)), sizeof(b));
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	uint64_t w = shmc__bucket_at(c, b)->lock;
	assert_true(w & SHMC__LK_LOCKED);
	(void)c;
	return b;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "test_index: hung on a dead bucket lock\n";
	if (write(2, m, sizeof(m) - 1) < 0)
		_exit(98);
	_exit(99);
}

static void test_dead_lock(void **state)
{
	(void)state;
	shmc_t *c = uh_create("ix-lock", 4u << 20, SEG, 8, 0);
	uh_ref_put(c);
	/* 1. released by a probe of the dead slot */
	uint64_t b = die_holding_lock(c, "victim");
	struct shmc__bucket *bk = shmc__bucket_at(c, b);
	uint32_t owner = (uint32_t)(bk->lock >> 1) & 0x7fffu;
	uint64_t ver = bk->lock >> SHMC__LK_VER_SHIFT;
	assert_int_equal(shmc__slot_probe(&c->map, owner, shmc__dead_slot,
	                                  false, c),
	                 0);
	assert_false(bk->lock & SHMC__LK_LOCKED);
	assert_true((bk->lock >> SHMC__LK_VER_SHIFT) == ver + 1);
	uh_check_clean(c);

	/* 2. released by the next writer on that bucket, which goes on */
	b = die_holding_lock(c, "victim");
	signal(SIGALRM, on_alarm);
	alarm(20);
	assert_int_equal(shmc_set(c, "victim", 6, "v", 1, 0, 0), 0);
	assert_int_equal(shmc_del(c, "victim", 6), 0);
	alarm(0);
	assert_false(shmc__bucket_at(c, b)->lock & SHMC__LK_LOCKED);

	/* 3. found by check, which releases it and reports nothing */
	b = die_holding_lock(c, "victim");
	uh_check_clean(c);
	assert_false(shmc__bucket_at(c, b)->lock & SHMC__LK_LOCKED);
	uh_ref_check(c);
	shmc_close(c);
	shmc_destroy("ix-lock");
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_replace),
	    cmocka_unit_test(test_one_bucket),
	    cmocka_unit_test(test_full_collision),
	    cmocka_unit_test(test_many_keys),
	    cmocka_unit_test(test_frequency),
	    cmocka_unit_test(test_dead_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
