/*
 * hist.c - the benchmark's clock and latency histogram.
 *
 * CLOCK
 * Samples are TSC ticks read with lfence;rdtsc (bench_tsc): ~10 ns, no
 * system call, ordered after the loads of the operation before it.  The
 * tick rate is calibrated once against CLOCK_MONOTONIC (vDSO) over ~50 ms
 * of busy waiting, which gives the rate to better than 0.1%.  The cost of
 * an empty timed region (two reads back to back) is measured too and
 * subtracted from every sample, so a 60 ns operation is not reported as
 * 75 ns.
 *
 * HISTOGRAM
 * HDR-style log buckets (see bench.h): exact below 64 ticks, then 64
 * sub-buckets per power of two, so any recorded value is known within a
 * relative error of 1/64.  Quantiles report the middle of the bucket the
 * q-th sample falls in.  Merging is a sum of counters, so per-process
 * histograms are added up in the parent.
 */
#include <time.h>

#include "bench.h"

double bench_tsc_per_ns = 1.0;
uint64_t bench_tsc_overhead;

uint64_t bench_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_tsc_calibrate(void)
{
	uint64_t n0 = bench_mono_ns(), t0 = bench_tsc(), n1, t1;
	do {
		n1 = bench_mono_ns();
		t1 = bench_tsc();
	} while (n1 - n0 < 50000000ull);
	bench_tsc_per_ns = (double)(t1 - t0) / (double)(n1 - n0);
	/* The cheapest of many empty timed regions. */
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 10000; i++) {
		uint64_t a = bench_tsc(), b = bench_tsc();
		if (b - a < best)
			best = b - a;
	}
	bench_tsc_overhead = best;
}

uint64_t hist_bucket_low(unsigned i)
{
	if (i < HIST_SUB)
		return i;
	unsigned e = i / HIST_SUB + HIST_SUB_BITS - 1, sub = i % HIST_SUB;
	return ((uint64_t)HIST_SUB + sub) << (e - HIST_SUB_BITS);
}

void hist_merge(struct hist *into, const struct hist *from)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	if (!h->count)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count);
	if (rank >= h->count)
		rank = h->count - 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen > rank) {
			uint64_t lo = hist_bucket_low(i);
			uint64_t hi = i + 1 < HIST_BUCKETS ? hist_bucket_low(i + 1)
			                                   : lo + 1;
			uint64_t mid = lo + (hi - lo) / 2;
			return mid < h->max ? mid : h->max;
		}
	}
	return h->max;
}
