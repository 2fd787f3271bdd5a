/*
 * test_stress.c - proves that concurrent processes and threads never read
 * a value that was not written for the key they asked for.
 *
 * 4 forked processes x 2 threads do random set / add / get / delete over
 * 100,000 keys for stress_seconds (SHMC_STRESS_SECONDS).  Every value
 * carries its key and a checksum (th_value) and the item's 32-bit flags
 * carry the value's length, so a get that returns bytes of another key, a
 * torn value, or a header of one item with the data of another is caught.
 * One thread of every process reads zero-copy (read_begin / get_ref /
 * read_end), holding several references at once and checking each again
 * just before the section ends: a reference must stay intact for the whole
 * section even while the other processes evict and reuse memory.
 *
 * Two variants: a 32 MiB cache with 100-2000 byte values (eviction and
 * grace periods all the time) and a 128 MiB one where the live data fits.
 * Afterwards shmc_check() finds no problem and the counters agree exactly
 * with what the workers counted themselves: gets == hits + misses, and
 * sets, adds, deletes and gets equal the workers' own totals.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "mp.h"

#define NPROC 4
#define NTHREAD 2
#define NKEYS 100000u
#define VBUF 4096
#define REFS_PER_SECTION 4

/* Totals every worker adds to at the end (shared with the parent). */
struct totals {
	uint64_t gets, hits, misses, sets, adds, add_exists, deletes;
	uint64_t del_missing, refs, stalled, bad_reads, errors;
};

struct cfg {
	const char *name;
	uint64_t memory;
	uint32_t vmin, vmax;
	double seconds;
	struct totals *tot; /* shared */
};

struct worker {
	const struct cfg *cfg;
	shmc_t *c;
	int index;
	bool zero_copy;
	struct totals t;
	char err[256];
};

static void add_totals(struct totals *dst, const struct totals *src)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)dst;
	for (size_t i = 0; i < sizeof(*src) / sizeof(uint64_t); i++)
		__atomic_fetch_add(&d[i], s[i], __ATOMIC_RELAXED);
}

/* One checked read of a value of length vlen with flags fl. */
static bool value_good(struct worker *w, const void *v, size_t vlen,
                       uint32_t fl, const char *key, size_t klen)
{
	if (th_value_ok(v, vlen, key, klen) && fl == (uint32_t)vlen)
		return true;
	w->t.bad_reads++;
	if (!w->err[0])
		snprintf(w->err, sizeof(w->err),
		         "bad read of %.*s: %zu bytes, flags %u, checksum %s",
		         (int)klen, key, vlen, fl,
		         th_value_ok(v, vlen, key, klen) ? "ok" : "wrong");
	return false;
}

static void error(struct worker *w, const char *op, int rc)
{
	w->t.errors++;
	if (!w->err[0])
		snprintf(w->err, sizeof(w->err), "%s: %s (%d)", op,
		         shmc_err_name(rc), rc);
}

static void do_set(struct worker *w, uint64_t *rng, char *buf,
                   const char *key, size_t klen, uint64_t *ver, bool add)
{
	const struct cfg *cfg = w->cfg;
	size_t len = cfg->vmin + th_rand(rng) % (cfg->vmax - cfg->vmin + 1);
	len = th_value(buf, VBUF, key, klen, (*ver)++, len);
	int rc = add ? shmc_add(w->c, key, klen, buf, len, SHMC_TTL_NONE,
	                        (uint32_t)len)
	             : shmc_set(w->c, key, klen, buf, len, SHMC_TTL_NONE,
	                        (uint32_t)len);
	if (rc == 0)
		add ? w->t.adds++ : w->t.sets++;
	else if (rc == SHMC_EEXISTS && add)
		w->t.add_exists++;
	else if (rc == SHMC_ESTALLED)
		/* A reader thread preempted inside its section for longer
		 * than the grace timeout: allowed, counted, not a failure. */
		w->t.stalled++;
	else
		error(w, add ? "add" : "set", rc);
}

static void do_get(struct worker *w, char *buf, const char *key, size_t klen)
{
	size_t vlen = VBUF;
	uint32_t fl = 0;
	int rc = shmc_get(w->c, key, klen, buf, &vlen, &fl);
	w->t.gets++;
	if (rc == 0) {
		w->t.hits++;
		value_good(w, buf, vlen, fl, key, klen);
	} else if (rc == SHMC_ENOTFOUND) {
		w->t.misses++;
	} else {
		error(w, "get", rc);
	}
}

/* A read section with several references held at once, each verified
 * when taken and again just before the section ends. */
static void do_section(struct worker *w, uint64_t *rng)
{
	char keys[REFS_PER_SECTION][32];
	size_t klens[REFS_PER_SECTION];
	const void *vals[REFS_PER_SECTION];
	size_t vlens[REFS_PER_SECTION];
	uint32_t fls[REFS_PER_SECTION];
	int n = 0;
	int rc = shmc_read_begin(w->c);
	if (rc) {
		error(w, "read_begin", rc);
		return;
	}
	for (int i = 0; i < REFS_PER_SECTION; i++) {
		klens[n] = mp_key(keys[n], sizeof(keys[n]), "key:",
		                  th_rand(rng) % NKEYS);
		rc = shmc_get_ref(w->c, keys[n], klens[n], &vals[n], &vlens[n],
		                  &fls[n]);
		w->t.gets++;
		if (rc == 0) {
			w->t.hits++;
			w->t.refs++;
			if (value_good(w, vals[n], vlens[n], fls[n], keys[n],
			               klens[n]))
				n++;
		} else if (rc == SHMC_ENOTFOUND) {
			w->t.misses++;
		} else {
			error(w, "get_ref", rc);
		}
	}
	/* Still intact: nobody may have reused this memory meanwhile. */
	for (int i = 0; i < n; i++)
		value_good(w, vals[i], vlens[i], fls[i], keys[i], klens[i]);
	rc = shmc_read_end(w->c);
	if (rc)
		error(w, "read_end", rc);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct cfg *cfg = w->cfg;
	uint64_t rng = mp_seed((uint64_t)w->index + 1);
	uint64_t ver = rng;
	char *buf = malloc(VBUF);
	char key[32];
	double end = mp_now() + cfg->seconds;
	for (uint64_t op = 0; buf; op++) {
		if ((op & 255) == 0 && mp_now() >= end)
			break;
		if (w->t.bad_reads || w->t.errors > 100)
			break;
		size_t klen = mp_key(key, sizeof(key), "key:",
		                     th_rand(&rng) % NKEYS);
		unsigned r = (unsigned)(th_rand(&rng) % 100);
		if (r < 30) {
			do_set(w, &rng, buf, key, klen, &ver, false);
		} else if (r < 34) {
			do_set(w, &rng, buf, key, klen, &ver, true);
		} else if (r < 38) {
			int rc = shmc_del(w->c, key, klen);
			if (rc == 0)
				w->t.deletes++;
			else if (rc == SHMC_ENOTFOUND)
				w->t.del_missing++;
			else
				error(w, "del", rc);
		} else if (w->zero_copy && r < 70) {
			do_section(w, &rng);
		} else {
			do_get(w, buf, key, klen);
		}
	}
	free(buf);
	return NULL;
}

static int child_main(void *arg)
{
	const struct cfg *cfg = arg;
	shmc_t *c = NULL;
	int rc = shmc_open(cfg->name, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_strerror(rc));
	struct worker w[NTHREAD];
	pthread_t th[NTHREAD];
	for (int i = 0; i < NTHREAD; i++) {
		w[i] = (struct worker){.cfg = cfg, .c = c,
		                       .index = i, .zero_copy = i == 1};
		rc = pthread_create(&th[i], NULL, worker_main, &w[i]);
		MP_CHECK(rc == 0, MP_SETUP, "pthread_create: %s", strerror(rc));
	}
	int st = MP_OK;
	for (int i = 0; i < NTHREAD; i++) {
		pthread_join(th[i], NULL);
		add_totals(cfg->tot, &w[i].t);
		if (w[i].err[0])
			fprintf(stderr, "[pid %d thread %d] %s\n", (int)getpid(),
			        i, w[i].err);
		if (w[i].t.bad_reads)
			st = MP_BADREAD;
		else if (w[i].t.errors && st == MP_OK)
			st = MP_FAIL;
	}
	shmc_close(c);
	return st;
}

static void run(const char *name, uint64_t memory, uint32_t vmin,
                uint32_t vmax, bool must_evict)
{
	th_private_dir();
	struct cfg cfg = {
	    .name = name, .memory = memory, .vmin = vmin, .vmax = vmax,
	    .seconds = mp_stress_seconds(),
	    .tot = mp_shared(sizeof(struct totals)),
	};
	shmc_t *c = th_create(name, memory);
	pid_t pids[NPROC];
	for (int i = 0; i < NPROC; i++)
		pids[i] = mp_spawn(child_main, &cfg);
	int failed = 0;
	for (int i = 0; i < NPROC; i++) {
		int st;
		char sb[64];
		if (mp_wait(pids[i], cfg.seconds + 60, &st) != 0) {
			fprintf(stderr, "worker %d hung\n", (int)pids[i]);
			failed++;
		} else if (!mp_exited_ok(st)) {
			fprintf(stderr, "worker %d: %s\n", (int)pids[i],
			        mp_status_str(st, sb, sizeof(sb)));
			failed++;
		}
	}
	struct totals *t = cfg.tot;
	struct shmc_stats s;
	assert_int_equal(shmc_stats(c, &s), 0);
	printf("%s: %llu gets (%llu hits, %llu zero-copy), %llu sets, "
	       "%llu adds (%llu existed), %llu deletes; %llu stalled sets; "
	       "cache: %llu evictions, %llu copy-forwards, %llu segments "
	       "evicted, %llu grace periods, %llu index drops\n",
	       name, (unsigned long long)t->gets, (unsigned long long)t->hits,
	       (unsigned long long)t->refs, (unsigned long long)t->sets,
	       (unsigned long long)t->adds, (unsigned long long)t->add_exists,
	       (unsigned long long)t->deletes, (unsigned long long)t->stalled,
	       (unsigned long long)s.evictions,
	       (unsigned long long)s.copy_forwards,
	       (unsigned long long)s.segments_evicted,
	       (unsigned long long)s.grace_periods,
	       (unsigned long long)s.index_drops);
	assert_int_equal(t->bad_reads, 0);
	assert_int_equal(t->errors, 0);
	assert_int_equal(failed, 0);
	assert_true(t->gets > 0 && t->hits > 0 && t->sets > 0 && t->refs > 0);

	/* Every worker has exited: the counters must be exact. */
	assert_int_equal(s.gets, s.hits + s.misses);
	assert_int_equal(s.gets, t->gets);
	assert_int_equal(s.hits, t->hits);
	assert_int_equal(s.misses, t->misses);
	assert_int_equal(s.sets, t->sets);
	assert_int_equal(s.adds, t->adds);
	assert_int_equal(s.add_exists, t->add_exists);
	assert_int_equal(s.deletes, t->deletes);
	assert_true(s.committed_bytes <= s.memory);
	if (must_evict)
		assert_true(s.evictions > 0 && s.segments_evicted > 0);
	/* The workers' slots were given back when their threads ended. */
	assert_int_equal(s.readers, 0);

	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	assert_int_equal(shmc_close(c), 0);
	assert_int_equal(shmc_destroy(name), 0);
	munmap(cfg.tot, sizeof(struct totals));
}

/* 32 MiB, values up to 2000 bytes over 100,000 keys: ~100 MB of live
 * data, so eviction, copy-forward and grace periods run all the time. */
static void test_stress_evicting(void **state)
{
	(void)state;
	run("stress-evict", 32ull << 20, 100, 2000, true);
}

/* 128 MiB with values of 100-600 bytes: the live data fits. */
static void test_stress_fitting(void **state)
{
	(void)state;
	run("stress-fit", 128ull << 20, 100, 600, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_stress_evicting, mp_teardown),
	    cmocka_unit_test_teardown(test_stress_fitting, mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
