/*
 * instr.c - instructions per get and per set, shmcache next to the flat
 * table, counted by valgrind (this VM exposes no performance counters, and
 * a count does not move with the machine's noise):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out \
 *       build/bench/shmcache-bench-instr
 *   callgrind_annotate --inclusive=yes cg.out | grep -E 'shm_|flat_'
 *   callgrind_annotate --tree=calling --inclusive=yes cg.out
 *
 * 1,000 keys of 16 bytes with 64-byte values, all in cache: each of the
 * four loops below makes ROUNDS x KEYS calls, so a function's inclusive
 * count divided by 100,000 is its instructions per call (a get, or a set
 * that replaces a value).  The loops are kept out of line so that they
 * show up by name.  SHMCACHE_DIR as for any program; the cache "instr" is
 * created and destroyed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "flat.h"
#include "shmcache.h"

#define KEYS 1000
#define ROUNDS 100
#define KLEN 16
#define VLEN 64

static char keys[KEYS][KLEN];

__attribute__((noinline)) static long shm_gets(shmc_t *c)
{
	long hits = 0;
	char buf[VLEN];
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < KEYS; i++) {
			size_t n = sizeof(buf);
			hits += shmc_get(c, keys[i], KLEN, buf, &n, NULL) == 0;
		}
	return hits;
}

__attribute__((noinline)) static long shm_sets(shmc_t *c)
{
	static const char v[VLEN];
	long ok = 0;
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < KEYS; i++)
			ok += shmc_set(c, keys[i], KLEN, v, VLEN, 0, 0) == 0;
	return ok;
}

__attribute__((noinline)) static long flat_gets(struct flat *f)
{
	long hits = 0;
	char buf[VLEN];
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < KEYS; i++) {
			size_t n;
			hits += flat_get(f, keys[i], KLEN, buf, sizeof(buf),
			                 &n) == 0;
		}
	return hits;
}

__attribute__((noinline)) static long flat_sets(struct flat *f)
{
	static const char v[VLEN];
	long ok = 0;
	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < KEYS; i++)
			ok += flat_set(f, keys[i], KLEN, v, VLEN) == 0;
	return ok;
}

int main(void)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 64ull << 20;
	shmc_t *c;
	shmc_destroy("instr");
	int rc = shmc_create("instr", &o, &c);
	if (rc) {
		fprintf(stderr, "shmcache-bench-instr: create: %s\n",
		        shmc_strerror(rc));
		return 1;
	}
	struct flat *f = flat_new(KEYS, KLEN, VLEN);
	if (!f)
		return 1;
	for (int i = 0; i < KEYS; i++)
		snprintf(keys[i], KLEN, "key%012d", i); /* 15 chars and a NUL */
	long n = shm_sets(c) + flat_sets(f); /* fill: every later set replaces */
	n += shm_gets(c) + flat_gets(f) + shm_sets(c) + flat_sets(f);
	printf("%ld operations succeeded of %d\n", n,
	       6 * KEYS * ROUNDS);
	flat_free(f);
	shmc_close(c);
	shmc_destroy("instr");
	return n == 6L * KEYS * ROUNDS ? 0 : 1;
}
