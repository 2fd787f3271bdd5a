/*
 * test_evict_quality.c - the eviction policy's hit ratio, against the
 * exact S3-FIFO simulator (issue 11).
 *
 * Proves: on small generated traces (bench/tracegen.c, made in memory),
 * replayed through a real cache sized for N objects exactly as
 * `shmcache-bench replay --items N` sizes it (bench/replay_cache.c: 64
 * segments of 64 KiB, the value size chosen so that N objects fill them),
 * the cache's miss ratio is at most the in-tree S3-FIFO simulator's
 * (bench/sim.c) at N objects plus 0.01, on every cell; and the cache
 * holds at least 95 % of the objects it was sized for over the trace's
 * second half.  Not timed: it counts hits, whatever the machine's speed.
 *
 * bench/eviction-quality measures the same thing on 2,000,000-request
 * traces and wants +0.003; the traces here are short (150,000 requests
 * over 20,000 objects, caches of 1,000-2,000 objects: about 4 s, 6 s under
 * AddressSanitizer), so the bound is looser.  It still fails on a broken
 * policy: with every item of the small queue copied forward (promotion
 * without a hit) every cell is 0.032-0.060 above S3-FIFO; with a ghost
 * that never hits, 0.026-0.062 (the cells pass at -0.0011..-0.0007,
 * holding 98 %).  The 95 % bound on objects held caught the replay's
 * sizing leaving out a segment (96.6 % then, 98.2 % since).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"
#include "replay.h"
#include "sim.h"

#define NAME "evictq"
#define SLACK 0.01

struct cell {
	const char *label;
	enum trace_kind kind;
	double alpha;
	uint64_t objects, requests, size;
};

struct result {
	double real, s3fifo, held;
};

static double sim_run(const struct og_req *r, uint64_t n, uint64_t size)
{
	struct sim *s = sim_new(SIM_S3FIFO, size);
	assert_non_null(s);
	uint64_t misses = 0;
	for (uint64_t i = 0; i < n; i++)
		misses += !sim_access(s, r[i].id, r[i].next);
	sim_free(s);
	return (double)misses / (double)n;
}

/* The trace through a real cache sized for `size` objects; the mean of
 * the items gauge over the second half, per object sized for, in *held. */
static double real_run(const struct og_req *r, uint64_t n, uint64_t size,
                       double *held)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	uint64_t vsize = 0;
	int rc = replay_size(size, REPLAY_SEGMENTS, NAME ".probe", &o, &vsize);
	if (rc)
		fail_msg("replay_size: %s", shmc_strerror(rc));
	shmc_t *c;
	shmc_destroy(NAME);
	rc = shmc_create(NAME, &o, &c);
	if (rc)
		fail_msg("shmc_create: %s", shmc_strerror(rc));
	struct shmc_info info;
	shmc_info(c, &info);
	assert_true(vsize <= info.max_value);
	char *val = calloc(1, vsize), *buf = malloc(info.max_value);
	assert_non_null(val);
	assert_non_null(buf);
	uint64_t misses = 0, samples = 0, step = (n - n / 2) / 256 + 1;
	double sum = 0;
	for (uint64_t i = 0; i < n; i++) {
		bool miss;
		rc = replay_request(c, r[i].id, val, vsize, buf, info.max_value,
		                    &miss);
		if (rc)
			fail_msg("request %llu: %s", (unsigned long long)i,
			         shmc_strerror(rc));
		misses += miss;
		if (i >= n / 2 && (i - n / 2) % step == 0) {
			struct shmc_stats st;
			shmc_stats(c, &st);
			sum += (double)st.items;
			samples++;
		}
	}
	free(val);
	free(buf);
	shmc_close(c);
	shmc_destroy(NAME);
	*held = sum / (double)samples / (double)size;
	return (double)misses / (double)n;
}

static struct result run_cell(const struct cell *cl)
{
	struct trace_gen g;
	trace_gen_defaults(&g);
	g.kind = cl->kind;
	g.alpha = cl->alpha;
	g.objects = cl->objects;
	g.requests = cl->requests;
	uint64_t distinct;
	struct og_req *r = trace_generate(&g, &distinct);
	assert_non_null(r);
	struct result res;
	res.s3fifo = sim_run(r, g.requests, cl->size);
	res.real = real_run(r, g.requests, cl->size, &res.held);
	free(r);
	printf("%-10s %6llu objects: shmcache %.4f  S3-FIFO %.4f  (%+.4f)  "
	       "held %.3f\n",
	       cl->label, (unsigned long long)cl->size, res.real, res.s3fifo,
	       res.real - res.s3fifo, res.held);
	return res;
}

static const struct cell cells[] = {
    {"Zipf 1.0", TRACE_ZIPF, 1.0, 20000, 150000, 1000},
    {"Zipf 0.8", TRACE_ZIPF, 0.8, 20000, 150000, 2000},
    {"surge", TRACE_SURGE, 1.0, 20000, 150000, 1000},
    {"scan", TRACE_SCAN, 1.0, 20000, 150000, 1000},
};

static void test_within_s3fifo(void **state)
{
	(void)state;
	th_private_dir();
	int bad = 0;
	for (size_t k = 0; k < sizeof(cells) / sizeof(cells[0]); k++) {
		struct result res = run_cell(&cells[k]);
		if (res.real > res.s3fifo + SLACK) {
			printf("  ^ more than S3-FIFO + %.2f\n", SLACK);
			bad++;
		}
		if (res.held < 0.95) {
			printf("  ^ holds under 95 %% of its objects\n");
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_within_s3fifo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
