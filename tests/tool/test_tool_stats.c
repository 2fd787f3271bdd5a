/*
 * test_tool_stats.c - what `stats` (text, JSON, Prometheus) and `top` show
 * beyond the plain counters: the resize history and autogrow policy, and
 * the get-or-load counters.
 *
 * The test process opens the cache through the library and makes every
 * event itself, so each figure the tool prints has a known value:
 *   - one resize 8M -> 12M (pid = this process) and an autogrow policy;
 *   - six loader calls: k0 (here), k1 (child A; this process waits for
 *     it), k2 (child B, SIGKILLed inside its loader; this process takes
 *     the lease over and loads), k3 twice (here, then child C refreshing
 *     it past its soft TTL while this process is served the stale value).
 * Children tell the parent they are inside their loader through a pipe;
 * every wait is bounded.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../helpers.h"
#include "run.h"

#define MIB (1024.0 * 1024.0)

struct loader_arg {
	const char *value; /* what the loader returns */
	int signal_fd;     /* -1, or a pipe to write 'L' to on entry */
	unsigned hold_ms;  /* how long it takes after signalling */
	int calls;
};

static int loader(const void *key, size_t klen, void *buf, size_t *vlen,
                  uint32_t *flags, void *arg)
{
	(void)key;
	(void)klen;
	(void)flags;
	struct loader_arg *a = arg;
	a->calls++;
	if (a->signal_fd >= 0) {
		char b = 'L';
		if (write(a->signal_fd, &b, 1) != 1)
			return -EIO;
	}
	if (a->hold_ms)
		usleep(a->hold_ms * 1000u);
	size_t n = strlen(a->value);
	if (n > *vlen) {
		*vlen = n;
		return SHMC_EBUFSIZE;
	}
	memcpy(buf, a->value, n);
	*vlen = n;
	return 0;
}

/* A loader that must not run: the value is expected from someone else. */
static int no_loader(const void *key, size_t klen, void *buf, size_t *vlen,
                     uint32_t *flags, void *arg)
{
	(void)key;
	(void)klen;
	(void)buf;
	(void)vlen;
	(void)flags;
	(void)arg;
	return -EPROTO;
}

/* Forks a child that opens `name` (with its clock `ahead` seconds in the
 * future when not 0) and runs get-or-load on key with a loader that
 * signals on a pipe and then takes hold_ms.  Returns its pid once it is
 * inside the loader. */
static pid_t child_load(const char *name, const char *key, const char *value,
                        unsigned hold_ms, uint32_t soft_ttl, uint64_t ahead)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		shmc_t *c = NULL;
		if (shmc_open(name, 0, &c))
			_exit(10);
		uint64_t now = (uint64_t)time(NULL) + ahead;
		if (ahead && shmc_set_clock(c, th_clock, &now))
			_exit(11);
		struct loader_arg a = {value, p[1], hold_ms, 0};
		struct shmc_load_opts o = {.soft_ttl = soft_ttl};
		char buf[64];
		size_t n = sizeof(buf);
		int rc = shmc_get_or_load(c, key, strlen(key), buf, &n, NULL,
		                          loader, &a, &o);
		shmc_close(c);
		_exit(rc || a.calls != 1 ? 12 : 0);
	}
	close(p[1]);
	struct pollfd pf = {.fd = p[0], .events = POLLIN};
	char b = 0;
	assert_int_equal(poll(&pf, 1, 20000), 1);
	assert_int_equal(read(p[0], &b, 1), 1);
	close(p[0]);
	return pid;
}

static void reap(pid_t pid, int want_signal)
{
	int st = 0;
	for (int i = 0; i < 2000 && waitpid(pid, &st, WNOHANG) == 0; i++)
		usleep(10000);
	if (waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("child %d did not finish", (int)pid);
	}
	if (want_signal)
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == want_signal);
	else
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* get-or-load here; `want` is the value expected back. */
static void load_here(shmc_t *c, const char *key, shmc_loader_fn fn,
                      struct loader_arg *a, uint32_t soft_ttl,
                      const char *want)
{
	struct shmc_load_opts o = {.soft_ttl = soft_ttl};
	char buf[64];
	size_t n = sizeof(buf);
	assert_int_equal(shmc_get_or_load(c, key, strlen(key), buf, &n, NULL,
	                                  fn, a, &o),
	                 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

/* The string value of "key" in json (into out), or NULL. */
static const char *json_str(const char *json, const char *key, char *out,
                            size_t len)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	const char *p = strstr(json, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	size_t n = strcspn(p, "\"");
	if (n >= len)
		return NULL;
	memcpy(out, p, n);
	out[n] = 0;
	return out;
}

static void test_stats_resizes_and_loads(void **state)
{
	(void)state;
	struct run r = run_v("create", "s1", "--memory", "8M", "--max-memory",
	                     "32M", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);

	/* before: nothing to show */
	r = run_v("stats", "s1", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"resizes\":[]"));
	assert_non_null(strstr(r.out, "\"autogrow\":{\"enabled\":false,"));
	assert_true(json_num(r.out, "loads") == 0);
	assert_true(json_num(r.out, "load_wait_mean_ns") == 0);
	run_free(&r);
	r = run_v("stats", "s1", NULL);
	assert_non_null(strstr(r.out, "\nautogrow       off\n"));
	assert_non_null(strstr(r.out, "\nresizes        none recorded\n"));
	run_free(&r);

	shmc_t *c = NULL;
	assert_int_equal(shmc_open("s1", 0, &c), 0);
	/* a resize and an autogrow policy, from this process */
	assert_int_equal(shmc_resize(c, 12u << 20, 0, NULL, NULL), 0);
	struct shmc_autogrow ag = {.step = 1u << 20,
	                           .ceiling = 24u << 20,
	                           .util_pct = 90,
	                           .window_s = 5,
	                           .ghost_pm = 30};
	assert_int_equal(shmc_set_autogrow(c, &ag), 0);

	/* k0: loaded here */
	struct loader_arg a = {"v0", -1, 0, 0};
	load_here(c, "k0", loader, &a, 0, "v0");
	assert_int_equal(a.calls, 1);
	/* k1: child A loads for 500 ms, this process waits for its value */
	pid_t pid = child_load("s1", "k1", "v1", 500, 0, 0);
	load_here(c, "k1", no_loader, NULL, 0, "v1");
	reap(pid, 0);
	/* k2: child B dies inside its loader; this process takes over */
	pid = child_load("s1", "k2", "lost", 60000, 0, 0);
	kill(pid, SIGKILL);
	reap(pid, SIGKILL);
	a = (struct loader_arg){"v2", -1, 0, 0};
	load_here(c, "k2", loader, &a, 0, "v2");
	assert_int_equal(a.calls, 1);
	/* k3: loaded here with a 5 s soft TTL; 10 s later (by both clocks)
	 * child C refreshes it and this process gets the stale value */
	a = (struct loader_arg){"old", -1, 0, 0};
	load_here(c, "k3", loader, &a, 5, "old");
	pid = child_load("s1", "k3", "new", 1000, 5, 10);
	uint64_t later = (uint64_t)time(NULL) + 10;
	assert_int_equal(shmc_set_clock(c, th_clock, &later), 0);
	load_here(c, "k3", no_loader, NULL, 5, "old");
	assert_int_equal(shmc_set_clock(c, NULL, NULL), 0);
	reap(pid, 0);

	/* JSON */
	r = run_v("stats", "s1", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_true(json_num(r.out, "loads") == 6);
	assert_true(json_num(r.out, "load_waits") >= 1);
	double wait_ns = json_num(r.out, "load_wait_ns");
	double waits = json_num(r.out, "load_waits");
	double mean = json_num(r.out, "load_wait_mean_ns");
	assert_true(wait_ns >= 300e6); /* child A's load took 500 ms */
	assert_true(mean > 0 && mean * waits <= wait_ns &&
	            mean * waits > wait_ns - waits);
	assert_true(json_num(r.out, "lease_takeovers") == 1);
	assert_true(json_num(r.out, "stale_served") == 1);
	const char *ag_json = strstr(r.out, "\"autogrow\":{");
	assert_non_null(ag_json);
	assert_non_null(strstr(ag_json, "{\"enabled\":true,"));
	assert_true(json_num(ag_json, "step") == 1 * MIB);
	assert_true(json_num(ag_json, "ceiling") == 24 * MIB);
	assert_true(json_num(ag_json, "util_pct") == 90);
	assert_true(json_num(ag_json, "window_s") == 5);
	assert_true(json_num(ag_json, "ghost_pm") == 30);
	const char *rs = strstr(r.out, "\"resizes\":[{");
	assert_non_null(rs);
	assert_true(json_num(rs, "from") == 8 * MIB);
	assert_true(json_num(rs, "to") == 12 * MIB);
	assert_true(json_num(rs, "pid") == getpid());
	double when = json_num(rs, "time"), now = (double)time(NULL);
	assert_true(when > now - 600 && when < now + 600);
	char reason[32];
	assert_non_null(json_str(rs, "reason", reason, sizeof(reason)));
	assert_string_equal(reason, "manual");
	assert_non_null(strstr(rs, "}]")); /* exactly one resize */
	assert_null(strstr(rs + strlen("\"resizes\":[{"), "{\"time\":"));
	run_free(&r);

	/* text */
	char want[160];
	r = run_v("stats", "s1", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\nloads          6 (waits "));
	assert_non_null(strstr(r.out, ", lease takeovers 1, stale served 1)\n"));
	assert_non_null(strstr(r.out, "\nautogrow       +1.0 MiB up to "
	                              "24.0 MiB when utilisation >= 90% and "
	                              "ghost hits >= 30 per mille of sets "
	                              "for 5 s\n"));
	assert_non_null(strstr(r.out, "\nresizes        last 1, newest "
	                              "first\n"));
	snprintf(want, sizeof(want), "  8.0 MiB -> 12.0 MiB  manual  pid %d\n",
	         (int)getpid());
	assert_non_null(strstr(r.out, want));
	run_free(&r);

	/* Prometheus */
	r = run_v("stats", "s1", "--prometheus", NULL);
	assert_int_equal(r.status, 0);
	check_prometheus(r.out, "s1");
	assert_non_null(strstr(r.out, "# TYPE shmcache_loads_total counter\n"
	                              "shmcache_loads_total{cache=\"s1\"} 6\n"));
	assert_non_null(strstr(r.out, "# TYPE shmcache_load_wait_seconds_total "
	                              "counter\n"));
	assert_non_null(strstr(r.out, "shmcache_lease_takeovers_total"
	                              "{cache=\"s1\"} 1\n"));
	assert_non_null(strstr(r.out, "shmcache_stale_served_total"
	                              "{cache=\"s1\"} 1\n"));
	assert_non_null(strstr(r.out, "shmcache_autogrow_step_bytes"
	                              "{cache=\"s1\"} 1048576\n"));
	assert_non_null(strstr(r.out, "shmcache_autogrow_ceiling_bytes"
	                              "{cache=\"s1\"} 25165824\n"));
	const char *w = strstr(r.out, "shmcache_load_wait_seconds_total"
	                              "{cache=\"s1\"} ");
	assert_non_null(w);
	double secs = strtod(strchr(w, '}') + 2, NULL);
	assert_true(secs * 1e9 > wait_ns - 1 && secs * 1e9 < wait_ns + 1e6);
	snprintf(want, sizeof(want),
	         "shmcache_last_resize_timestamp_seconds{cache=\"s1\"} %.0f\n",
	         when);
	assert_non_null(strstr(r.out, want));
	run_free(&r);

	/* top: the loads/s column (no loads while it watches) */
	r = run_v("top", "s1", "--iterations", "1", "--interval", "0.1", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, " loads/s=0.0 "));
	run_free(&r);

	shmc_close(c);
	r = run_v("destroy", "s1", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

int main(void)
{
	tool_path();
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stats_resizes_and_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
