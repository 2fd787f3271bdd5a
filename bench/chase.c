/*
 * chase.c - what one dependent cache miss costs on this machine.
 *
 *   shmcache-bench chase [--mb N] [--steps N]
 *
 * WHY
 * A get from a hash table whose keys and values sit inline in its slots
 * (bench/flat.c) is one cache miss on a large, uniformly read key set: the
 * slot's address comes from the hash alone.  A shmcache get is two
 * dependent misses: the bucket line, then the item it points at (the item
 * lives in a log segment, so its address is known only once the bucket
 * has arrived).  No code on the get path can overlap them for a single
 * key; only a batch (shmc_mget) can, across keys.  This mode measures the
 * parts of that argument, so that the ratio to the flat table can be set
 * against what the hardware allows:
 *
 *   dep        ns per load of a chain of dependent loads through a random
 *              cyclic permutation of the buffer's cache lines (each load's
 *              address comes from the previous load: pure miss latency);
 *   dep x2     ns per step of a chain whose every step is two dependent
 *              loads from two buffers (the shape of a shmcache get);
 *   2 chains   ns per load of two independent chains walked in the same
 *              loop (the misses overlap: what a batch can win).
 *
 * Each with 4 KiB pages (MADV_NOHUGEPAGE) and with transparent huge pages
 * (MADV_HUGEPAGE, when the kernel grants them: "thp" says how much of the
 * buffer was huge-page backed, from /proc/self/smaps).  Bounded: --steps
 * loads per figure, median of 5 runs.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

#define LINE 64u

struct buf {
	uint64_t *p; /* one pointer-sized slot at the start of each line */
	size_t lines;
	size_t bytes;
};

static uint64_t rnd_next(uint64_t *s)
{
	/* splitmix64: deterministic, good enough to shuffle */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A buffer whose lines form one random cycle (Sattolo's shuffle). */
static int buf_make(struct buf *b, size_t bytes, bool huge, uint64_t seed)
{
	b->bytes = bytes;
	b->lines = bytes / LINE;
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	madvise(m, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	b->p = m;
	uint32_t *perm = malloc(b->lines * sizeof(*perm));
	if (!perm) {
		munmap(m, bytes);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->lines; i++)
		perm[i] = (uint32_t)i;
	for (size_t i = b->lines - 1; i > 0; i--) {
		size_t j = rnd_next(&seed) % i;
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	/* perm is a single cycle: line perm[i] points at perm[i + 1] */
	for (size_t i = 0; i < b->lines; i++)
		b->p[(size_t)perm[i] * (LINE / 8)] =
		    (uint64_t)perm[(i + 1) % b->lines] * (LINE / 8);
	free(perm);
	return 0;
}

static void buf_free(struct buf *b)
{
	munmap(b->p, b->bytes);
}

/* Per cent of the mapping that holds p which is backed by huge pages, from
 * /proc/self/smaps (the kernel may merge a and b into one mapping: the
 * share is the same). */
static double thp_share(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	char line[256];
	bool in = false;
	unsigned long size = 0, huge = 0, v;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char c;
		if (sscanf(line, "%lx-%lx %c", &lo, &hi, &c) == 3) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (in && sscanf(line, "Size: %lu kB", &v) == 1)
			size = v;
		if (in && sscanf(line, "AnonHugePages: %lu kB", &v) == 1)
			huge = v;
	}
	fclose(f);
	return size ? 100.0 * (double)huge / (double)size : 0;
}

static volatile uint64_t sink;

static double run_dep(struct buf *a, uint64_t steps)
{
	uint64_t i = 0, t0 = bench_tsc();
	for (uint64_t n = 0; n < steps; n++)
		i = a->p[i];
	uint64_t t = bench_tsc() - t0;
	sink = i;
	return (double)bench_ticks_to_ns(t) / (double)steps;
}

/* Each step: a load from a (the bucket), whose value picks the line of b
 * to load (the item), whose value the next load of a waits for.  The
 * walk follows a's single cycle: b's value is masked with a zero the
 * compiler cannot see, which keeps the dependency for the CPU. */
static volatile uint64_t zero;

static double run_dep2(struct buf *a, struct buf *b, uint64_t steps)
{
	uint64_t i = 0, z = zero, t0 = bench_tsc();
	for (uint64_t n = 0; n < steps; n++) {
		uint64_t v = a->p[i];
		i = v + (b->p[v % (b->lines * (LINE / 8))] & z);
	}
	uint64_t t = bench_tsc() - t0;
	sink = i;
	return (double)bench_ticks_to_ns(t) / (double)steps;
}

static double run_two(struct buf *a, struct buf *b, uint64_t steps)
{
	uint64_t i = 0, j = 0, t0 = bench_tsc();
	for (uint64_t n = 0; n < steps; n++) {
		i = a->p[i];
		j = b->p[j];
	}
	uint64_t t = bench_tsc() - t0;
	sink = i + j;
	return (double)bench_ticks_to_ns(t) / (double)(2 * steps);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

int cmd_chase(int argc, char **argv)
{
	uint64_t mb = 256, steps = 2000000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc)
			mb = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc)
			steps = strtoull(argv[++i], NULL, 10);
		else
			die("chase: unknown option %s", argv[i]);
	}
	if (mb < 4 || mb > 8192 || steps == 0 || steps > 1000000000)
		die("chase: --mb 4..8192, --steps 1..1e9");
	bench_tsc_calibrate();
	printf("%-6s %8s %10s %10s %12s\n", "pages", "thp%", "dep ns", "dep x2 ns",
	       "2 chains ns");
	for (int huge = 0; huge <= 1; huge++) {
		struct buf a, b;
		if (buf_make(&a, mb << 20, huge, 1) ||
		    buf_make(&b, mb << 20, huge, 2))
			die("chase: cannot map 2 x %llu MiB",
			    (unsigned long long)mb);
		double r[3][5];
		for (int k = 0; k < 5; k++) {
			r[0][k] = run_dep(&a, steps);
			r[1][k] = run_dep2(&a, &b, steps / 2);
			r[2][k] = run_two(&a, &b, steps / 2);
		}
		for (int m = 0; m < 3; m++)
			qsort(r[m], 5, sizeof(double), cmp_double);
		double thp = thp_share(a.p);
		printf("%-6s %7.0f%% %10.1f %10.1f %12.1f\n", huge ? "2M" : "4K",
		       thp, r[0][2], r[1][2], r[2][2]);
		buf_free(&a);
		buf_free(&b);
	}
	return 0;
}
