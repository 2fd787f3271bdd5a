/*
 * test_sim.c - the eviction simulators and trace helpers of bench/sim.c.
 *
 * Proves: on short hand-made traces whose outcome was worked out by hand,
 * LRU, Belady and S3-FIFO hit and miss where they should (Belady evicts
 * the object asked for farthest ahead, never-again first; S3-FIFO admits
 * into small, sends an object hit only once in small to the ghost and one
 * hit twice to main, and inserts a ghost hit into main); on 20,000-request
 * Zipf streams, each simulator makes the same hit/miss decision on every
 * request as a plain array implementation of the same policy written here
 * from its description (so the hash table, lists and heap of sim.c are
 * checked, not only the policy); trace_fill_next agrees with a quadratic
 * scan and counts distinct ids; trace_map reads back what was written and
 * refuses a file that is not a whole number of 24-byte requests; the LRU
 * simulator is within 0.01 of Che's approximation on Zipf streams.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bench.h"
#include "sim.h"

/* Runs ids through a fresh simulator; next fields from trace_fill_next. */
static uint64_t run_misses(enum sim_policy p, uint64_t cap,
                           const uint64_t *ids, uint64_t n)
{
	struct og_req *r = calloc(n, sizeof(*r));
	assert_non_null(r);
	for (uint64_t i = 0; i < n; i++)
		r[i].id = ids[i];
	assert_true(trace_fill_next(r, n) > 0);
	struct sim *s = sim_new(p, cap);
	assert_non_null(s);
	uint64_t miss = 0;
	for (uint64_t i = 0; i < n; i++)
		miss += !sim_access(s, r[i].id, r[i].next);
	sim_free(s);
	free(r);
	return miss;
}

#define RUN(p, cap, ...)                                                     \
	run_misses(p, cap, (const uint64_t[]){__VA_ARGS__},                  \
	           sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t))

static void test_lru_by_hand(void **state)
{
	(void)state;
	/* [A] [B A] A:hit [A B] C evicts B, B evicts A, A evicts C */
	assert_int_equal(RUN(SIM_LRU, 2, 1, 2, 1, 3, 2, 1), 5);
	assert_int_equal(RUN(SIM_LRU, 3, 1, 2, 3, 1, 2, 3), 3);
}

static void test_belady_by_hand(void **state)
{
	(void)state;
	/* C evicts B (next at 5) rather than A (next at 4); A hits */
	assert_int_equal(RUN(SIM_BELADY, 2, 1, 2, 3, 1, 2), 4);
	/* C evicts B (never again) rather than A; LRU would evict A */
	assert_int_equal(RUN(SIM_BELADY, 2, 1, 2, 3, 1), 3);
	assert_int_equal(RUN(SIM_LRU, 2, 1, 2, 3, 1), 4);
}

static void test_s3fifo_by_hand(void **state)
{
	(void)state;
	/* C = 10: small 1, main 9, ghost 9.  1..10 fill the cache (all in
	 * small: nothing is evicted before the whole cache is full). */
	/* 11 evicts 1 (never hit) to the ghost; 1 is then a miss that goes
	 * to main (evicting 2), so the next 1 hits; 2 is a ghost miss. */
	assert_int_equal(RUN(SIM_S3FIFO, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
	                     11, 1, 1, 2),
	                 13);
	/* 1 hit once, 2 hit twice while in small.  11 evicts 1 to the ghost
	 * (one hit is not enough); 12 moves 2 to main and evicts 3; so 2
	 * hits, 1 misses. */
	assert_int_equal(RUN(SIM_S3FIFO, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1,
	                     2, 2, 11, 12, 2, 1),
	                 13);
	/* Under 10 objects small has no room and nothing is admitted
	 * (libCacheSim's behaviour). */
	assert_int_equal(RUN(SIM_S3FIFO, 9, 1, 1, 1), 3);
}

/* ---- plain array implementations ---------------------------------------- */

struct arr {
	uint64_t id[64];
	int64_t key[64]; /* freq, or Belady's next access */
	unsigned n;
};

static int arr_find(const struct arr *a, uint64_t id)
{
	for (unsigned i = 0; i < a->n; i++)
		if (a->id[i] == id)
			return (int)i;
	return -1;
}

/* index 0 is the head (newest) */
static void arr_push_head(struct arr *a, uint64_t id, int64_t key)
{
	memmove(a->id + 1, a->id, a->n * sizeof(a->id[0]));
	memmove(a->key + 1, a->key, a->n * sizeof(a->key[0]));
	a->id[0] = id;
	a->key[0] = key;
	a->n++;
}

static void arr_del(struct arr *a, unsigned i)
{
	memmove(a->id + i, a->id + i + 1, (a->n - i - 1) * sizeof(a->id[0]));
	memmove(a->key + i, a->key + i + 1,
	        (a->n - i - 1) * sizeof(a->key[0]));
	a->n--;
}

struct ref {
	unsigned cap, scap, mcap, gcap;
	struct arr lru, small, main, ghost;
};

static bool ref_lru(struct ref *r, uint64_t id)
{
	int i = arr_find(&r->lru, id);
	if (i >= 0) {
		arr_del(&r->lru, (unsigned)i);
		arr_push_head(&r->lru, id, 0);
		return true;
	}
	if (r->lru.n == r->cap)
		arr_del(&r->lru, r->lru.n - 1);
	arr_push_head(&r->lru, id, 0);
	return false;
}

static bool ref_belady(struct ref *r, uint64_t id, int64_t next)
{
	int64_t k = next < 0 ? INT64_MAX : next;
	int i = arr_find(&r->lru, id);
	if (i >= 0) {
		r->lru.key[i] = k;
		return true;
	}
	if (r->lru.n == r->cap) {
		unsigned far = 0;
		for (unsigned j = 1; j < r->lru.n; j++)
			if (r->lru.key[j] > r->lru.key[far])
				far = j;
		arr_del(&r->lru, far);
	}
	arr_push_head(&r->lru, id, k);
	return false;
}

static bool ref_s3(struct ref *r, uint64_t id)
{
	int i = arr_find(&r->small, id);
	if (i >= 0) {
		r->small.key[i]++;
		return true;
	}
	i = arr_find(&r->main, id);
	if (i >= 0) {
		r->main.key[i]++;
		return true;
	}
	i = arr_find(&r->ghost, id);
	bool ghost = i >= 0;
	if (ghost)
		arr_del(&r->ghost, (unsigned)i);
	if (r->scap == 0)
		return false;
	while (r->small.n + r->main.n + 1 > r->cap) {
		if (r->main.n > r->mcap || r->small.n == 0) {
			while (r->main.n) {
				unsigned t = r->main.n - 1;
				uint64_t v = r->main.id[t];
				int64_t f = r->main.key[t];
				arr_del(&r->main, t);
				if (f == 0)
					break;
				arr_push_head(&r->main, v, (f < 3 ? f : 3) - 1);
			}
		} else {
			while (r->small.n) { /* it may empty into main */
				unsigned t = r->small.n - 1;
				uint64_t v = r->small.id[t];
				int64_t f = r->small.key[t];
				arr_del(&r->small, t);
				if (f >= 2) {
					arr_push_head(&r->main, v, 0);
					continue;
				}
				if (r->gcap) {
					if (r->ghost.n == r->gcap)
						arr_del(&r->ghost, r->ghost.n - 1);
					arr_push_head(&r->ghost, v, 0);
				}
				break;
			}
		}
	}
	arr_push_head(ghost ? &r->main : &r->small, id, 0);
	return false;
}

static void test_against_arrays(void **state)
{
	(void)state;
	const uint64_t n = 20000;
	struct og_req *tr = calloc(n, sizeof(*tr));
	assert_non_null(tr);
	const unsigned caps[] = {2, 9, 10, 13, 30};
	const double alphas[] = {0.6, 1.0};
	for (unsigned a = 0; a < 2; a++) {
		struct zipf z;
		struct rng g;
		zipf_init(&z, 200, alphas[a]);
		rng_seed(&g, 7 + a);
		for (uint64_t i = 0; i < n; i++)
			tr[i].id = zipf_next(&z, &g);
		trace_fill_next(tr, n);
		for (unsigned c = 0; c < 5; c++)
			for (int p = SIM_LRU; p <= SIM_BELADY; p++) {
				struct ref *r = calloc(1, sizeof(*r));
				assert_non_null(r);
				r->cap = caps[c];
				r->scap = caps[c] / 10;
				r->mcap = caps[c] - r->scap;
				r->gcap = caps[c] * 9 / 10;
				struct sim *s = sim_new((enum sim_policy)p, caps[c]);
				assert_non_null(s);
				uint64_t hits = 0;
				for (uint64_t i = 0; i < n; i++) {
					bool h = sim_access(s, tr[i].id, tr[i].next);
					bool want =
					    p == SIM_LRU ? ref_lru(r, tr[i].id)
					    : p == SIM_S3FIFO
					        ? ref_s3(r, tr[i].id)
					        : ref_belady(r, tr[i].id, tr[i].next);
					if (h != want)
						fail_msg("%s cap %u alpha %.1f: request "
						         "%llu differs",
						         sim_policy_name(p), caps[c],
						         alphas[a],
						         (unsigned long long)i);
					hits += h;
				}
				/* S3-FIFO under 10 objects admits nothing */
				assert_true(hits > 0 ||
				            (p == SIM_S3FIFO && caps[c] < 10));
				uint64_t held = p == SIM_LRU || p == SIM_BELADY
				                    ? r->lru.n
				                    : r->small.n + r->main.n;
				assert_int_equal(sim_objects(s), held);
				sim_free(s);
				free(r);
			}
	}
	free(tr);
}

static void test_fill_next_and_map(void **state)
{
	(void)state;
	const uint64_t n = 3000;
	struct og_req *r = calloc(n, sizeof(*r));
	assert_non_null(r);
	struct rng g;
	rng_seed(&g, 3);
	for (uint64_t i = 0; i < n; i++)
		r[i] = (struct og_req){.time = (uint32_t)i,
		                       .id = rng_below(&g, 500) * 1000003u,
		                       .size = 64};
	uint64_t distinct = trace_fill_next(r, n), want_distinct = 0;
	for (uint64_t i = 0; i < n; i++) {
		int64_t want = -1;
		for (uint64_t j = i + 1; j < n; j++)
			if (r[j].id == r[i].id) {
				want = (int64_t)j + 1;
				break;
			}
		assert_int_equal(r[i].next, want);
		bool first = true;
		for (uint64_t j = 0; j < i; j++)
			if (r[j].id == r[i].id)
				first = false;
		want_distinct += first;
	}
	assert_int_equal(distinct, want_distinct);

	char path[] = "/tmp/test_sim.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r, n * sizeof(*r)),
	                 (ssize_t)(n * sizeof(*r)));
	uint64_t m = 0;
	const struct og_req *back = trace_map(path, &m);
	assert_non_null(back);
	assert_int_equal(m, n);
	assert_memory_equal(back, r, n * sizeof(*r));
	trace_unmap(back, m);
	assert_int_equal(write(fd, r, 5), 5); /* no longer whole requests */
	errno = 0;
	assert_null(trace_map(path, &m));
	assert_int_equal(errno, EINVAL);
	close(fd);
	unlink(path);
	free(r);
}

static void test_lru_near_che(void **state)
{
	(void)state;
	const uint64_t n = 400000, nobj = 10000;
	const double alphas[] = {0.8, 1.2};
	const uint64_t caps[] = {100, 1000};
	for (unsigned a = 0; a < 2; a++)
		for (unsigned c = 0; c < 2; c++) {
			struct zipf z;
			struct rng g;
			zipf_init(&z, nobj, alphas[a]);
			rng_seed(&g, 11);
			struct sim *s = sim_new(SIM_LRU, caps[c]);
			assert_non_null(s);
			uint64_t miss = 0;
			for (uint64_t i = 0; i < n; i++) {
				bool h = sim_access(s, zipf_next(&z, &g), -1);
				if (i >= n / 2) /* past the cold start */
					miss += !h;
			}
			sim_free(s);
			double mr = (double)miss / (double)(n - n / 2);
			double che = che_lru_miss_ratio(nobj, alphas[a], caps[c]);
			print_message("alpha %.1f cache %llu: lru %.4f che %.4f\n",
			              alphas[a], (unsigned long long)caps[c], mr,
			              che);
			assert_true(fabs(mr - che) < 0.01);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lru_by_hand),
	    cmocka_unit_test(test_belady_by_hand),
	    cmocka_unit_test(test_s3fifo_by_hand),
	    cmocka_unit_test(test_against_arrays),
	    cmocka_unit_test(test_fill_next_and_map),
	    cmocka_unit_test(test_lru_near_che),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
