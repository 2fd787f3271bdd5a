/*
 * rhelp.h - a real redis-server and `shmcache sync` for the redis suite.
 *
 * rh_redis_start() runs redis-server (no persistence) on a unix socket in
 * the test's private SHMCACHE_DIR; the program is skipped (77, reason
 * printed) when redis-server is not installed.  Every wait is bounded:
 * a condition not met in time fails the test.  Processes started here
 * are SIGKILLed at exit if still running.
 */
#ifndef SHMC_RHELP_H
#define SHMC_RHELP_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "tool.h"

/* Up to RH_SERVERS independent servers, numbered from 0; the functions
 * without _n are those of server 0 (the one rh_sync_start() names). */
#define RH_SERVERS 4
/* The socket path ("unix:" + it is the --redis address). */
const char *rh_sock(void);
const char *rh_sock_n(int i);
/* Starts redis-server and waits until it answers (5 s at most). */
pid_t rh_redis_start(void);
pid_t rh_redis_start_n(int i);
/* Sends sig to redis-server and reaps it (5 s at most). */
void rh_redis_stop(int sig);
void rh_redis_stop_n(int i, int sig);
/* A new client connection; fails the test if none. */
redisContext *rh_client(void);
redisContext *rh_client_n(int i);
/* A command's reply must be a status, integer or string: fails if not. */
void rh_cmd(redisContext *r, const char *fmt, ...);
/* Calls of `cmd` so far (INFO commandstats). */
uint64_t rh_calls(redisContext *r, const char *cmd);

/* Starts `shmcache sync NAME --redis unix:SOCK -q ARGS...` (NULL-ended). */
pid_t rh_sync_start(const char *name, ...);
/* Sends sig (0: none) and waits (5 s at most): the wait status. */
int rh_sync_stop(pid_t pid, int sig);
/* The sync's record (zeros when none yet). */
struct tool_sync rh_sync_read(const char *name);
/* Waits until the sync of name is tracking and has made more than
 * `reconnects` reconnects; returns the record. */
struct tool_sync rh_sync_wait(const char *name, uint64_t reconnects,
                              double secs);

uint64_t rh_now_ns(void);
/* Waits until shmc_get(key) misses; returns rh_now_ns() then, or fails. */
uint64_t rh_wait_miss(shmc_t *c, const char *key, double secs);
/* 1 when key holds exactly val in the cache. */
int rh_holds(shmc_t *c, const char *key, const char *val);

#endif
