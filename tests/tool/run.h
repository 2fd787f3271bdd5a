/*
 * run.h - runs the built shmcache tool from the tool tests.
 *
 * The tool's path comes from $SHMCACHE_TOOL (set by tests/tool/meson.build).
 * A run captures stdout and stderr in memfds (no pipe can fill and block
 * the child), feeds optional stdin from a memfd, and is bounded in time:
 * a child still running after `timeout_s` seconds is killed and the run
 * fails the test.
 */
#ifndef SHMC_TOOL_RUN_H
#define SHMC_TOOL_RUN_H

#include <stddef.h>

struct run {
	int status;  /* exit code, or 128 + signal */
	char *out;   /* NUL-terminated (binary-safe length in out_len) */
	size_t out_len;
	char *err;
};

/* Runs `shmcache argv...` (argv NULL-terminated, without "shmcache"). */
struct run run_tool(const char *in, size_t in_len, const char *const *argv);
/* Convenience: run_tool with no stdin and up to 15 arguments. */
struct run run_v(const char *first, ...);
void run_free(struct run *r);

/* Path of the tool; skips the program (exit 77) when unset. */
const char *tool_path(void);

/* Minimal JSON lookup: the number after "\"key\":" in json, or -1. */
double json_num(const char *json, const char *key);

/*
 * Checks Prometheus text exposition: every sample a shmcache_* family
 * with HELP and TYPE lines before it, counters ending in _total, every
 * sample labelled cache="CACHE" (first, other labels may follow); then, when promtool is installed,
 * `promtool check metrics` must pass (parse errors and lint problems).
 * Returns 1 when promtool ran, 0 when it is not installed.
 */
int check_prometheus(const char *text, const char *cache);

#endif
