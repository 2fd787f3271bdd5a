/*
 * test_budget.c - proves that a 64 MiB cache receiving 1 GiB of writes
 * from two processes stays within its budget as the system counts it (the
 * file's allocated blocks, sampled all through the load and after, not
 * only the library's own committed count), reports its evictions, and keeps
 * the Zipf-hot keys: after the load, and after a final scan of one-time
 * keys three quarters the size of the cache, the 1,000 most popular keys of
 * a Zipf(0.99) workload are found far more often than 1,000 keys drawn
 * uniformly from the same key space.
 *
 * Each writer process mixes a Zipf(0.99) get-or-set workload over 100,000
 * keys (a miss sets the key, as an application would) with one-time writes
 * of fresh keys that carry most of the bytes, then ends with the scan.
 * Every hit anywhere is checked (th_value_ok): zero bad reads.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "mp.h"

#define NAME "budget"
#define MEMORY (64ull << 20)
#define TOTAL (1ull << 30)  /* bytes (key + value) written in all */
#define SCAN (48ull << 20)  /* one-time keys written at the end, in all */
#define NWRITERS 2
#define ZKEYS 100000u
#define HOT 1000u
#define VBUF 8192

struct shared {
	struct mp_zipf zipf; /* built before fork, read-only after */
	uint64_t bytes;      /* written so far, all writers */
	uint64_t bad_reads, errors, zipf_gets, zipf_hits;
};

static void zipf_key(char *key, size_t cap, uint32_t rank)
{
	mp_key(key, cap, "z", rank);
}

static int writer(void *arg)
{
	struct shared *sh = arg;
	shmc_t *c = NULL;
	int rc = shmc_open(NAME, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_strerror(rc));
	uint64_t rng = mp_seed(1);
	char *buf = malloc(VBUF);
	MP_CHECK(buf != NULL, MP_SETUP, "malloc");
	char key[48];
	uint64_t mine = 0, fresh = 0, gets = 0, hits = 0;
	const uint64_t share = (TOTAL - SCAN) / NWRITERS;
	const uint64_t scan = SCAN / NWRITERS;
	int me = (int)getpid();
	/* 1. The mixed load. */
	while (mine < share) {
		uint32_t r = mp_zipf_next(&sh->zipf, &rng);
		zipf_key(key, sizeof(key), r);
		size_t klen = strlen(key);
		size_t vlen = VBUF;
		rc = shmc_get(c, key, klen, buf, &vlen, NULL);
		gets++;
		if (rc == 0) {
			hits++;
			MP_CHECK(th_value_ok(buf, vlen, key, klen), MP_BADREAD,
			         "bad read of %s", key);
		} else {
			MP_CHECK(rc == SHMC_ENOTFOUND, MP_FAIL, "get: %s",
			         shmc_err_name(rc));
			vlen = th_value(buf, VBUF, key, klen, r, 200 + r % 400);
			rc = shmc_set(c, key, klen, buf, vlen, 0, 0);
			MP_CHECK(rc == 0, MP_FAIL, "set %s: %s", key,
			         shmc_err_name(rc));
			mine += klen + vlen;
		}
		/* One-time keys carry most of the bytes. */
		snprintf(key, sizeof(key), "once-%d-%llu", me,
		         (unsigned long long)fresh++);
		klen = strlen(key);
		vlen = th_value(buf, VBUF, key, klen, fresh,
		                2000 + th_rand(&rng) % 4000);
		rc = shmc_set(c, key, klen, buf, vlen, 0, 0);
		MP_CHECK(rc == 0, MP_FAIL, "set %s: %s", key, shmc_err_name(rc));
		mine += klen + vlen;
	}
	/* 2. A scan: one-time keys only, no reads. */
	for (uint64_t n = 0; n < scan;) {
		snprintf(key, sizeof(key), "scan-%d-%llu", me,
		         (unsigned long long)fresh++);
		size_t klen = strlen(key);
		size_t vlen = th_value(buf, VBUF, key, klen, fresh, 4000);
		rc = shmc_set(c, key, klen, buf, vlen, 0, 0);
		MP_CHECK(rc == 0, MP_FAIL, "set %s: %s", key, shmc_err_name(rc));
		n += klen + vlen;
		mine += klen + vlen;
	}
	__atomic_fetch_add(&sh->bytes, mine, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sh->zipf_gets, gets, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sh->zipf_hits, hits, __ATOMIC_RELAXED);
	free(buf);
	shmc_close(c);
	return MP_OK;
}

/* Fraction of keys (by Zipf rank) found, every hit verified. */
static double resident(shmc_t *c, const uint32_t *ranks, unsigned n)
{
	char key[48], buf[VBUF];
	unsigned hits = 0;
	for (unsigned i = 0; i < n; i++) {
		zipf_key(key, sizeof(key), ranks[i]);
		size_t vlen = sizeof(buf);
		int rc = shmc_get(c, key, strlen(key), buf, &vlen, NULL);
		if (rc == SHMC_ENOTFOUND)
			continue;
		assert_int_equal(rc, 0);
		assert_true(th_value_ok(buf, vlen, key, strlen(key)));
		hits++;
	}
	return (double)hits / n;
}

static void test_budget_and_hot_keys(void **state)
{
	(void)state;
	shmc_t *c = th_create(NAME, MEMORY);
	struct shared *sh = mp_shared(sizeof(*sh));
	mp_zipf_init(&sh->zipf, ZKEYS, 0.99);

	uint64_t at_create = th_file_allocated(NAME);
	printf("allocated at create: %llu KiB\n",
	       (unsigned long long)(at_create >> 10));
	assert_true(at_create <= MEMORY);

	pid_t pids[NWRITERS];
	for (int i = 0; i < NWRITERS; i++)
		pids[i] = mp_spawn(writer, sh);

	/* Sample the file's blocks and the library's count during the load. */
	uint64_t max_alloc = 0, max_committed = 0, samples = 0;
	int running = NWRITERS, failed = 0;
	double end = mp_now() + 180;
	while (running > 0 && mp_now() < end) {
		uint64_t a = th_file_allocated(NAME);
		struct shmc_stats s;
		assert_int_equal(shmc_stats(c, &s), 0);
		if (a > max_alloc)
			max_alloc = a;
		if (s.committed_bytes > max_committed)
			max_committed = s.committed_bytes;
		samples++;
		if (a > MEMORY)
			fprintf(stderr, "over budget: %llu bytes allocated\n",
			        (unsigned long long)a);
		for (int i = 0; i < NWRITERS; i++) {
			int st;
			if (pids[i] <= 0 || waitpid(pids[i], &st, WNOHANG) !=
			                        pids[i])
				continue;
			char sb[64];
			if (!mp_exited_ok(st)) {
				fprintf(stderr, "writer %d: %s\n", (int)pids[i],
				        mp_status_str(st, sb, sizeof(sb)));
				failed++;
			}
			pids[i] = 0;
			running--;
		}
		mp_sleep_ms(10);
	}
	mp_kill_all(); /* only if the deadline passed */
	assert_int_equal(running, 0);
	assert_int_equal(failed, 0);

	uint64_t after = th_file_allocated(NAME);
	struct shmc_stats s;
	assert_int_equal(shmc_stats(c, &s), 0);
	printf("%llu samples during the load: at most %llu KiB allocated "
	       "(library: %llu KiB committed), %llu KiB after; budget %llu "
	       "KiB\n",
	       (unsigned long long)samples, (unsigned long long)(max_alloc >> 10),
	       (unsigned long long)(max_committed >> 10),
	       (unsigned long long)(after >> 10),
	       (unsigned long long)(MEMORY >> 10));
	printf("written %llu MiB; %llu evictions, %llu copy-forwards, %llu "
	       "segments evicted, %llu ghost hits, %llu index drops; zipf "
	       "hit ratio during the load %.3f\n",
	       (unsigned long long)(s.set_bytes >> 20),
	       (unsigned long long)s.evictions,
	       (unsigned long long)s.copy_forwards,
	       (unsigned long long)s.segments_evicted,
	       (unsigned long long)s.ghost_hits,
	       (unsigned long long)s.index_drops,
	       sh->zipf_gets ? (double)sh->zipf_hits / sh->zipf_gets : 0.0);
	assert_true(samples >= 3);
	assert_true(max_alloc <= MEMORY);
	assert_true(after <= MEMORY);
	assert_true(max_committed <= MEMORY);
	assert_true(s.committed_bytes <= s.memory);
	assert_true(s.set_bytes >= TOTAL);
	assert_true(sh->bytes >= TOTAL);
	assert_true(s.evictions > 0);
	assert_true(s.segments_evicted > 0);

	/* The hot set against a uniform set of the same size. */
	uint32_t hot[HOT], uni[HOT];
	uint64_t rng = 12345;
	for (unsigned i = 0; i < HOT; i++) {
		hot[i] = i;
		uni[i] = HOT + (uint32_t)(th_rand(&rng) % (ZKEYS - HOT));
	}
	double rh = resident(c, hot, HOT), ru = resident(c, uni, HOT);
	printf("after the scan: hottest %u keys %.3f found, %u uniform keys "
	       "%.3f found\n",
	       HOT, rh, HOT, ru);
	assert_true(rh >= ru + 0.4);

	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	mp_zipf_free(&sh->zipf);
	munmap(sh, sizeof(*sh));
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(NAME), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_budget_and_hot_keys, mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
