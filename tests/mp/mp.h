/*
 * mp.h - what the multi-process tests share: forking children that report
 * through their exit status, reaping them with a deadline, killing every
 * child a failed test left behind, shared anonymous memory for counters,
 * pipes to signal "I am in position", a Zipf generator, and the durations
 * and round counts that come from the environment (set by meson).
 *
 * Children never use cmocka's assertions: a failed assertion longjmps back
 * into the runner, which would go on running the rest of the suite inside
 * the child.  They print what went wrong and _exit() with a status instead.
 */
#ifndef SHMC_TEST_MP_H
#define SHMC_TEST_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "helpers.h"

/* Child exit statuses. */
#define MP_OK 0
#define MP_FAIL 1    /* a check failed: the child printed why */
#define MP_BADREAD 2 /* a get returned bytes that were never set for it */
#define MP_SETUP 3   /* open or thread creation failed */
#define MP_HANG 4    /* an alarm() bound fired: an operation hung */

/* In a child: print and leave with status st when cond is false. */
#define MP_CHECK(cond, st, ...)                                                \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "[pid %d] %s:%d: check failed: %s: ",  \
			        (int)getpid(), __FILE__, __LINE__, #cond);     \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			_exit(st);                                             \
		}                                                              \
	} while (0)

/* An integer from the environment, or def when unset or malformed. */
long mp_env_long(const char *name, long def);
/* SHMC_STRESS_SECONDS (meson option stress_seconds), default 5. */
double mp_stress_seconds(void);

/* Monotonic seconds. */
double mp_now(void);
void mp_sleep_ms(double ms);

/* Zero-filled memory shared with children forked after the call. */
void *mp_shared(size_t size);

/* Forks a child that runs fn(arg) and _exit()s with its return value.
 * The child is remembered so mp_kill_all() can end it.  In the child,
 * SIGALRM (from the child's own alarm() bounds) exits with MP_HANG after
 * printing the pid, and every thread's stack when SHMC_MP_GDB=1. */
pid_t mp_spawn(int (*fn)(void *arg), void *arg);
/* Waits up to timeout_s for pid; on timeout SIGKILLs and reaps it and
 * returns -1.  Otherwise stores the wait status and returns 0. */
int mp_wait(pid_t pid, double timeout_s, int *status);
/* With SHMC_MP_GDB=1: print pid's stack (gdb -p), for reports of hangs. */
void mp_gdb(pid_t pid);
/* SIGKILL and reap one child (no-op if already reaped). */
void mp_kill(pid_t pid);
/* SIGKILL and reap every child still remembered (test teardown). */
void mp_kill_all(void);
int mp_teardown(void **state);
/* Describes a wait status ("exit 0", "killed by signal 9", ...). */
const char *mp_status_str(int status, char *buf, size_t len);
/* 1 when status is a normal exit with code 0. */
int mp_exited_ok(int status);

/* Pipes: the child writes one byte when in position, the parent waits for
 * it with a deadline.  Returns 1 when the byte came, 0 on timeout or EOF. */
int mp_pipe_wait(int fd, double timeout_s);
void mp_pipe_post(int fd);

/* A Zipf(s) distribution over ranks [0, n): rank 0 is the most popular. */
struct mp_zipf {
	uint32_t n;
	double *cdf;
};
void mp_zipf_init(struct mp_zipf *z, uint32_t n, double s);
uint32_t mp_zipf_next(const struct mp_zipf *z, uint64_t *rng);
void mp_zipf_free(struct mp_zipf *z);

/* A uniform double in [0, 1). */
double mp_unit(uint64_t *rng);
/* A seed that differs between processes and threads. */
uint64_t mp_seed(uint64_t salt);

/* The key "prefix%07u" into buf; returns its length. */
size_t mp_key(char *buf, size_t cap, const char *prefix, uint64_t i);

/* Creates cache name (in th_private_dir()) with these options, the rest
 * default; fails the test on error. */
shmc_t *mp_create(const char *name, uint64_t memory, uint32_t seg_size,
                  uint32_t max_readers, uint32_t default_ttl);

/* Report callback for shmc_check that prints each problem. */
void mp_report(const char *problem, void *arg);

#endif
