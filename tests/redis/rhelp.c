/*
 * rhelp.c - see rhelp.h.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../helpers.h"
#include "rhelp.h"

static char sock[RH_SERVERS][600];
static pid_t redis_pid[RH_SERVERS];
static pid_t kids[16];

static void reap_all(void)
{
	for (int i = 0; i < RH_SERVERS; i++)
		if (redis_pid[i] > 0)
			kill(redis_pid[i], SIGKILL);
	for (int i = 0; i < 16; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
}

static void remember(pid_t p)
{
	static bool once;
	if (!once) {
		atexit(reap_all);
		once = true;
	}
	for (int i = 0; i < 16; i++)
		if (kids[i] <= 0) {
			kids[i] = p;
			return;
		}
}

static void forget(pid_t p)
{
	for (int i = 0; i < 16; i++)
		if (kids[i] == p)
			kids[i] = 0;
}

uint64_t rh_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *rh_sock_n(int i)
{
	assert_true(i >= 0 && i < RH_SERVERS);
	if (!sock[i][0] && i == 0)
		snprintf(sock[0], sizeof(sock[0]), "%s/redis.sock",
		         th_private_dir());
	else if (!sock[i][0])
		snprintf(sock[i], sizeof(sock[i]), "%s/redis%d.sock",
		         th_private_dir(), i);
	return sock[i];
}

const char *rh_sock(void)
{
	return rh_sock_n(0);
}

static void redis_try(void)
{
	if (system("command -v redis-server >/dev/null 2>&1") != 0)
		th_skip("redis-server is not installed (Debian: redis-server)");
}

pid_t rh_redis_start_n(int i)
{
	redis_try();
	if (redis_pid[i] > 0) /* a failed test left it running */
		rh_redis_stop_n(i, SIGKILL);
	const char *dir = th_private_dir();
	const char *sk = rh_sock_n(i);
	unlink(sk);
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		char log[700];
		snprintf(log, sizeof(log), "%s/redis%.0d.log", dir, i);
		execlp("redis-server", "redis-server", "--port", "0",
		       "--unixsocket", sk, "--unixsocketperm", "700",
		       "--save", "", "--appendonly", "no", "--dir", dir,
		       "--logfile", log, (char *)NULL);
		_exit(127);
	}
	redis_pid[i] = p;
	remember(p);
	uint64_t until = rh_now_ns() + 5000000000ull;
	while (rh_now_ns() < until) {
		redisContext *r = redisConnectUnix(sk);
		if (r && !r->err) {
			redisReply *rep = redisCommand(r, "PING");
			bool ok = rep && rep->type == REDIS_REPLY_STATUS;
			if (rep)
				freeReplyObject(rep);
			redisFree(r);
			if (ok)
				return p;
		} else if (r) {
			redisFree(r);
		}
		usleep(10000);
	}
	fail_msg("redis-server did not answer on %s within 5 s", sk);
	return -1;
}

pid_t rh_redis_start(void)
{
	return rh_redis_start_n(0);
}

/* sig 0: sends none, only waits. */
static int reap(pid_t p, int sig)
{
	if (sig)
		kill(p, sig);
	uint64_t until = rh_now_ns() + 5000000000ull;
	int st = 0;
	while (waitpid(p, &st, WNOHANG) == 0) {
		if (rh_now_ns() > until) {
			kill(p, SIGKILL);
			waitpid(p, &st, 0);
			fail_msg("process %d did not stop within 5 s", (int)p);
		}
		usleep(5000);
	}
	return st;
}

void rh_redis_stop_n(int i, int sig)
{
	if (redis_pid[i] <= 0)
		return;
	reap(redis_pid[i], sig);
	forget(redis_pid[i]);
	redis_pid[i] = 0;
}

void rh_redis_stop(int sig)
{
	rh_redis_stop_n(0, sig);
}

redisContext *rh_client_n(int i)
{
	struct timeval tv = {5, 0};
	redisContext *r = redisConnectUnixWithTimeout(rh_sock_n(i), tv);
	if (!r || r->err)
		fail_msg("connect %s: %s", rh_sock_n(i),
		         r ? r->errstr : "no memory");
	return r;
}

redisContext *rh_client(void)
{
	return rh_client_n(0);
}

void rh_cmd(redisContext *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(r, fmt, ap);
	va_end(ap);
	if (!rep || rep->type == REDIS_REPLY_ERROR)
		fail_msg("redis %s: %s", fmt,
		         rep ? rep->str : r->errstr);
	freeReplyObject(rep);
}

uint64_t rh_calls(redisContext *r, const char *cmd)
{
	redisReply *rep = redisCommand(r, "INFO commandstats");
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_STRING);
	char w[64];
	snprintf(w, sizeof(w), "cmdstat_%s:calls=", cmd);
	const char *p = strstr(rep->str, w);
	uint64_t n = p ? strtoull(p + strlen(w), NULL, 10) : 0;
	freeReplyObject(rep);
	return n;
}

pid_t rh_sync_start(const char *name, ...)
{
	const char *tool = getenv("SHMCACHE_TOOL");
	if (!tool)
		th_skip("SHMCACHE_TOOL is not set");
	char addr[700];
	snprintf(addr, sizeof(addr), "unix:%s", rh_sock());
	const char *argv[32] = {tool, "sync", name, "--redis", addr, "-q"};
	int n = 6;
	va_list ap;
	va_start(ap, name);
	for (const char *a; n < 31 && (a = va_arg(ap, const char *));)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	pid_t p = fork();
	assert_true(p >= 0);
	if (p == 0) {
		execv(tool, (char *const *)argv);
		_exit(127);
	}
	remember(p);
	return p;
}

int rh_sync_stop(pid_t pid, int sig)
{
	int st = reap(pid, sig);
	forget(pid);
	return st;
}

struct tool_sync rh_sync_read(const char *name)
{
	char cpath[700], path[800];
	struct tool_sync s;
	snprintf(cpath, sizeof(cpath), "%s/shmcache.%s", th_private_dir(),
	         name);
	assert_int_equal(tool_sync_path(cpath, name, path, sizeof(path)), 0);
	if (tool_sync_read(path, &s) != 0)
		memset(&s, 0, sizeof(s));
	return s;
}

struct tool_sync rh_sync_wait(const char *name, uint64_t reconnects,
                              double secs)
{
	uint64_t until = rh_now_ns() + (uint64_t)(secs * 1e9);
	for (;;) {
		struct tool_sync s = rh_sync_read(name);
		if (s.running && s.connected &&
		    s.v[TOOL_SYNC_RECONNECTS] >= reconnects)
			return s;
		if (rh_now_ns() > until)
			fail_msg("sync of %s not tracking (reconnects >= %llu) "
			         "within %.1f s",
			         name, (unsigned long long)reconnects, secs);
		usleep(2000);
	}
}

uint64_t rh_wait_miss(shmc_t *c, const char *key, double secs)
{
	uint64_t t0 = rh_now_ns(), until = t0 + (uint64_t)(secs * 1e9);
	for (;;) {
		size_t n = 0;
		int rc = shmc_get(c, key, strlen(key), NULL, &n, NULL);
		if (rc == SHMC_ENOTFOUND)
			return rh_now_ns();
		if (rh_now_ns() > until)
			fail_msg("%s still in the cache after %.1f s (rc %d)",
			         key, secs, rc);
		sched_yield(); /* the sync needs a CPU of the two */
	}
}

int rh_holds(shmc_t *c, const char *key, const char *val)
{
	char buf[256];
	size_t n = sizeof(buf);
	return shmc_get(c, key, strlen(key), buf, &n, NULL) == 0 &&
	       n == strlen(val) && !memcmp(buf, val, n);
}
