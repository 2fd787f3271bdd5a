/*
 * helpers.h - shared by the cmocka tests: a private SHMCACHE_DIR per test
 * program, removed with everything in it at exit; small cache factories;
 * checksummed values for multi-process tests.
 */
#ifndef SHMC_TEST_HELPERS_H
#define SHMC_TEST_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "shmcache.h"

/* Creates a fresh private directory, points SHMCACHE_DIR at it and
 * registers its removal at exit.  Returns its path.  It is made under
 * SHMC_TEST_BASE when that is set (a disk file system, for a crash test
 * run a second time there), else /dev/shm, else /tmp. */
const char *th_private_dir(void);

/* Creates cache `name` with `memory` bytes (and defaults otherwise);
 * fails the test on error. */
shmc_t *th_create(const char *name, uint64_t memory);

/* Exit code that meson and cmocka read as "skipped"; prints why. */
#define TH_SKIP 77
void th_skip(const char *why) __attribute__((noreturn));

/* A value that carries its key and a checksum: len bytes written to buf. */
size_t th_value(char *buf, size_t cap, const void *key, size_t klen,
                uint64_t version, size_t len);
/* 1 when buf[0..len) is a value made by th_value for this key. */
int th_value_ok(const void *buf, size_t len, const void *key, size_t klen);

/* Allocated blocks of the cache file, in bytes (what the system holds). */
uint64_t th_file_allocated(const char *name);

/* A deterministic xorshift generator per process. */
uint64_t th_rand(uint64_t *state);

/* A controllable clock for TTL tests: shmc_set_clock(c, th_clock, &t). */
uint64_t th_clock(void *arg);

#endif
