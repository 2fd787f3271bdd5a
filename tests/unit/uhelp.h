/*
 * uhelp.h - small helpers shared by the unit tests in this directory (on
 * top of tests/helpers.h): caches with chosen geometry, the path of a cache
 * file, whole-file snapshots, and a set of reference keys used to assert
 * that an operation left the cache contents exactly as they were.
 */
#ifndef SHMC_UNIT_UHELP_H
#define SHMC_UNIT_UHELP_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "shmcache.h"

/* A cache of `memory` bytes, segment size `seg`, `readers` slots and
 * `buckets` index buckets (0 = derived); fails the test on error. */
static inline shmc_t *uh_create(const char *name, uint64_t memory,
                                uint32_t seg, uint32_t readers,
                                uint64_t buckets)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = memory;
	o.segment_size = seg;
	o.max_readers = readers;
	o.index_buckets = buckets;
	shmc_t *c = NULL;
	th_private_dir();
	int rc = shmc_create(name, &o, &c);
	if (rc)
		fail_msg("shmc_create(%s): %s", name, shmc_strerror(rc));
	return c;
}

/* A 16 MiB cache with a miss-ratio curve of `keys` keys sampling one key
 * in `sample` at first (a cache of that name is destroyed first); fails
 * the test on error. */
static inline shmc_t *uh_create_mrc(const char *name, uint32_t keys,
                                    uint32_t sample)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = 16u << 20;
	o.flags = SHMC_CREATE_MRC;
	o.mrc_keys = keys;
	o.mrc_sample = sample;
	shmc_t *c = NULL;
	th_private_dir();
	shmc_destroy(name);
	int rc = shmc_create(name, &o, &c);
	if (rc)
		fail_msg("shmc_create(%s): %s", name, shmc_strerror(rc));
	return c;
}

/* SHMCACHE_DIR/shmcache.NAME */
static inline const char *uh_path(const char *name)
{
	static char p[512];
	snprintf(p, sizeof(p), "%s/shmcache.%s", th_private_dir(), name);
	return p;
}

/* The whole file at path (NULL if unreadable); *len its length. */
static inline uint8_t *uh_slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	uint8_t *b = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (b && got < (size_t)st.st_size) {
		ssize_t n = pread(fd, b + got, (size_t)st.st_size - got,
		                  (off_t)got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return b;
}

/* Writes len bytes at off of path. */
static inline void uh_poke(const char *path, off_t off, const void *b,
                           size_t len)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, b, len, off), (ssize_t)len);
	close(fd);
}

/* Removes everything in the private directory (between tests). */
static inline void uh_clear_dir(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/* '%s'/.[!.]*",
	         th_private_dir(), th_private_dir());
	if (system(cmd) != 0)
		print_message("could not clear %s\n", th_private_dir());
}

/* Number of entries (other than . and ..) in the private directory. */
static inline int uh_dir_entries(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", th_private_dir());
	FILE *f = popen(cmd, "r");
	int n = -1;
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

/* Reference keys: "ref-<i>" -> a value made by th_value. */
#define UH_NREF 32
static inline size_t uh_ref_key(char *k, int i)
{
	return (size_t)snprintf(k, 32, "ref-%03d", i);
}

static inline void uh_ref_put(shmc_t *c)
{
	for (int i = 0; i < UH_NREF; i++) {
		char k[32], v[256];
		size_t kl = uh_ref_key(k, i);
		size_t vl = th_value(v, sizeof(v), k, kl, (uint64_t)i,
		                     40 + (size_t)i * 5);
		assert_int_equal(shmc_set(c, k, kl, v, vl, 0, (uint32_t)i), 0);
	}
}

/* Every reference key is readable with its value and flags. */
static inline void uh_ref_check(shmc_t *c)
{
	for (int i = 0; i < UH_NREF; i++) {
		char k[32], v[256], want[256];
		size_t kl = uh_ref_key(k, i);
		size_t wl = th_value(want, sizeof(want), k, kl, (uint64_t)i,
		                     40 + (size_t)i * 5);
		size_t vl = sizeof(v);
		uint32_t fl = 0;
		int rc = shmc_get(c, k, kl, v, &vl, &fl);
		if (rc != 0)
			fail_msg("reference key %s: %s", k, shmc_err_name(rc));
		assert_int_equal(vl, wl);
		assert_memory_equal(v, want, wl);
		assert_int_equal(fl, (uint32_t)i);
	}
}

static inline uint64_t uh_items(shmc_t *c)
{
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	return st.items;
}

static inline void uh_report(const char *problem, void *arg)
{
	(void)arg;
	print_message("check: %s\n", problem);
}

/* shmc_check(c) must find nothing. */
static inline void uh_check_clean(shmc_t *c)
{
	assert_int_equal(shmc_check(c, uh_report, NULL), 0);
}

#endif
