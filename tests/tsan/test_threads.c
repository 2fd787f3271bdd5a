/*
 * test_threads.c - the multi-threaded workload of tests/mp/test_stress.c,
 * in ONE process, for ThreadSanitizer (suite 'tsan').
 *
 * Why one process: TSan sees only the accesses and the synchronisation of
 * the process it runs in.  When several processes share the cache, a
 * segment is often reused after a grace period that *another* process ran
 * (it saw our reader leave its section, then freed the segment under
 * log_lock): the chain that orders our old read before our thread's new
 * write goes through that process, and TSan reports a race it cannot see
 * is not one.  With every thread in this process, every grace period,
 * every lock and every publication is one TSan observes, so any report is
 * a real race between threads sharing the mapping.
 *
 * What it proves: NTHREAD threads doing set / add / get / zero-copy
 * get_ref sections / del over NKEYS keys in a cache small enough to evict,
 * copy forward and reuse segments all the time, never read a value that
 * was not written for its key (checksummed values, length in the flags),
 * a reference stays intact for its whole section, and TSan finds no race.
 * Afterwards shmc_check() is clean.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"

#define NTHREAD 4
#define NKEYS 20000u
#define VBUF 4096
#define REFS 4

struct worker {
	shmc_t *c;
	uint64_t rng;
	uint64_t ops, hits, refs, bad, errors, stalled;
	int first_err;
};

static volatile int stop;

static size_t key_of(char *k, uint64_t i)
{
	return (size_t)snprintf(k, 32, "key:%llu", (unsigned long long)i);
}

static int good(const void *v, size_t vl, uint32_t fl, const char *k,
                size_t kl)
{
	return fl == vl && th_value_ok(v, vl, k, kl);
}

static void err(struct worker *w, int rc)
{
	w->errors++;
	if (!w->first_err)
		w->first_err = rc;
}

static void section(struct worker *w)
{
	char keys[REFS][32];
	size_t kls[REFS], vls[REFS];
	const void *vs[REFS];
	uint32_t fls[REFS];
	int n = 0, rc = shmc_read_begin(w->c);
	if (rc) {
		err(w, rc);
		return;
	}
	for (int i = 0; i < REFS; i++) {
		kls[n] = key_of(keys[n], th_rand(&w->rng) % NKEYS);
		rc = shmc_get_ref(w->c, keys[n], kls[n], &vs[n], &vls[n],
		                  &fls[n]);
		if (rc == 0) {
			w->refs++;
			if (good(vs[n], vls[n], fls[n], keys[n], kls[n]))
				n++;
			else
				w->bad++;
		} else if (rc != SHMC_ENOTFOUND) {
			err(w, rc);
		}
	}
	/* Still intact at the end of the section. */
	for (int i = 0; i < n; i++)
		if (!good(vs[i], vls[i], fls[i], keys[i], kls[i]))
			w->bad++;
	shmc_read_end(w->c);
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char k[32], v[VBUF];
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		uint64_t r = th_rand(&w->rng);
		size_t kl = key_of(k, r % NKEYS);
		unsigned op = (unsigned)(r >> 32) % 16;
		int rc;
		w->ops++;
		if (op < 6) { /* set or add, 100..2000 bytes */
			size_t len = th_value(v, sizeof(v), k, kl, r,
			                      100 + (r >> 40) % 1901);
			rc = op == 5 ? shmc_add(w->c, k, kl, v, len, 0,
			                        (uint32_t)len)
			             : shmc_set(w->c, k, kl, v, len, 0,
			                        (uint32_t)len);
			if (rc == SHMC_ESTALLED)
				w->stalled++;
			else if (rc && rc != SHMC_EEXISTS)
				err(w, rc);
		} else if (op < 12) {
			size_t vl = sizeof(v);
			uint32_t fl = 0;
			rc = shmc_get(w->c, k, kl, v, &vl, &fl);
			if (rc == 0) {
				w->hits++;
				if (!good(v, vl, fl, k, kl))
					w->bad++;
			} else if (rc != SHMC_ENOTFOUND) {
				err(w, rc);
			}
		} else if (op < 15) {
			section(w);
		} else {
			rc = shmc_del(w->c, k, kl);
			if (rc && rc != SHMC_ENOTFOUND)
				err(w, rc);
		}
	}
	return NULL;
}

static void report(const char *problem, void *arg)
{
	(void)arg;
	fprintf(stderr, "check: %s\n", problem);
}

static void test_threads_evicting(void **state)
{
	(void)state;
	th_private_dir();
	shmc_t *c = th_create("tsan-threads", 16ull << 20);
	const char *s = getenv("SHMC_STRESS_SECONDS");
	int seconds = s ? atoi(s) : 5;
	struct worker w[NTHREAD];
	pthread_t th[NTHREAD];
	memset(w, 0, sizeof(w));
	for (int i = 0; i < NTHREAD; i++) {
		w[i].c = c;
		w[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		assert_int_equal(pthread_create(&th[i], NULL, run, &w[i]), 0);
	}
	struct timespec ts = {seconds > 0 ? seconds : 1, 0};
	nanosleep(&ts, NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	uint64_t ops = 0, hits = 0, refs = 0, bad = 0, errors = 0, stalled = 0;
	for (int i = 0; i < NTHREAD; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		ops += w[i].ops;
		hits += w[i].hits;
		refs += w[i].refs;
		bad += w[i].bad;
		errors += w[i].errors;
		stalled += w[i].stalled;
		if (w[i].first_err)
			fprintf(stderr, "thread %d: first error %s\n", i,
			        shmc_err_name(w[i].first_err));
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	printf("%d threads, %d s: %llu ops, %llu hits, %llu references, "
	       "%llu stalled sets; cache: %llu segments evicted, %llu "
	       "copy-forwards, %llu grace periods\n",
	       NTHREAD, seconds, (unsigned long long)ops,
	       (unsigned long long)hits, (unsigned long long)refs,
	       (unsigned long long)stalled,
	       (unsigned long long)st.segments_evicted,
	       (unsigned long long)st.copy_forwards,
	       (unsigned long long)st.grace_periods);
	assert_int_equal(bad, 0);
	assert_int_equal(errors, 0);
	assert_true(st.segments_evicted > 0);
	assert_int_equal(shmc_check(c, report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy("tsan-threads"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads_evicting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
