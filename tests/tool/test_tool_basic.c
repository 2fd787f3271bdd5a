/*
 * test_tool_basic.c - the shmcache tool end to end against a real cache
 * loaded by forked worker processes that stay attached:
 * create -> load -> stats (text, JSON parsed, Prometheus checked) ->
 * destroy refused while attached -> readers -> check -> keys -> get/set/del
 * -> health -> dump/restore round trip -> workers leave -> destroy.
 *
 * Workers signal "loaded" on a pipe and wait (bounded by poll timeouts)
 * until the parent closes the "go" pipe, so every step sees attached
 * processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "run.h"

#define NWORKERS 3
#define NKEYS 300

static pid_t workers[NWORKERS];
static int go_fd = -1;

static void worker(const char *name, int id, int ready, int go)
{
	shmc_t *c = NULL;
	if (shmc_open(name, 0, &c))
		_exit(10);
	char key[64], val[256];
	for (int j = 0; j < NKEYS; j++) {
		int kl = snprintf(key, sizeof(key), "w%d-k%d", id, j);
		size_t vl = th_value(val, sizeof(val), key, (size_t)kl,
		                     (uint64_t)j, 40 + (size_t)(j % 100));
		if (shmc_set(c, key, (size_t)kl, val, vl, SHMC_TTL_NONE,
		             (uint32_t)j))
			_exit(11);
	}
	/* a few gets so the hit ratio is not 0 */
	for (int j = 0; j < 50; j++) {
		int kl = snprintf(key, sizeof(key), "w%d-k%d", id, j);
		size_t vl = sizeof(val);
		shmc_get(c, key, (size_t)kl, val, &vl, NULL);
	}
	char b = 'r';
	if (write(ready, &b, 1) != 1)
		_exit(12);
	struct pollfd p = {.fd = go, .events = POLLIN};
	poll(&p, 1, 60000); /* closed by the parent, or give up after 60 s */
	shmc_close(c);
	_exit(0);
}

static void start_workers(const char *name)
{
	int rp[2], gp[2];
	assert_int_equal(pipe(rp), 0);
	assert_int_equal(pipe(gp), 0);
	for (int i = 0; i < NWORKERS; i++) {
		workers[i] = fork();
		assert_true(workers[i] >= 0);
		if (workers[i] == 0) {
			close(rp[0]);
			close(gp[1]);
			worker(name, i, rp[1], gp[0]);
		}
	}
	close(rp[1]);
	close(gp[0]);
	go_fd = gp[1];
	for (int i = 0; i < NWORKERS; i++) {
		char b;
		struct pollfd p = {.fd = rp[0], .events = POLLIN};
		assert_int_equal(poll(&p, 1, 30000), 1);
		assert_int_equal(read(rp[0], &b, 1), 1);
	}
	close(rp[0]);
}

static void stop_workers(void)
{
	close(go_fd);
	go_fd = -1;
	for (int i = 0; i < NWORKERS; i++) {
		int st;
		assert_int_equal(waitpid(workers[i], &st, 0), workers[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_lifecycle(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/shmcache.t1", th_private_dir());
	struct run r = run_v("create", "t1", "--memory", "32M", "--mode",
	                     "0640", "--default-ttl", "3600", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);

	start_workers("t1");

	/* stats: text */
	r = run_v("stats", "t1", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "hit ratio"));
	assert_non_null(strstr(r.out, "processes      3 attached"));
	assert_non_null(strstr(r.out, "utilisation"));
	run_free(&r);

	/* stats: JSON */
	r = run_v("stats", "t1", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_true(r.out[0] == '{' && r.out[r.out_len - 2] == '}');
	assert_true(json_num(r.out, "processes") == NWORKERS);
	assert_true(json_num(r.out, "sets") == NWORKERS * NKEYS);
	assert_true(json_num(r.out, "items") > NWORKERS * NKEYS / 2);
	assert_true(json_num(r.out, "memory") == 32 << 20);
	assert_true(json_num(r.out, "hits") >= NWORKERS * 50 * 0.9);
	double hr = json_num(r.out, "hit_ratio");
	assert_true(hr > 0.5 && hr <= 1.0);
	double util = json_num(r.out, "utilisation");
	assert_true(util > 0 && util <= 1.0);
	assert_true(json_num(r.out, "index_load") > 0);
	assert_true(json_num(r.out, "default_ttl") == 3600);
	run_free(&r);

	/* stats: Prometheus */
	r = run_v("stats", "t1", "--prometheus", NULL);
	assert_int_equal(r.status, 0);
	check_prometheus(r.out, "t1");
	assert_non_null(strstr(r.out, "shmcache_processes{cache=\"t1\"} 3\n"));
	run_free(&r);

	/* stats --watch bounded by --count, JSON Lines */
	r = run_v("stats", "t1", "--json", "--watch", "0.05", "--count", "3",
	          NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(count_lines(r.out), 3);
	run_free(&r);

	/* destroy is refused while the workers are attached */
	r = run_v("destroy", "t1", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "shmcache: destroy: destroy t1: 3 "
	                              "processes attached"));
	run_free(&r);
	assert_int_equal(stat(path, &st), 0);

	/* list */
	r = run_v("list", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"name\":\"t1\""));
	assert_true(json_num(r.out, "processes") == NWORKERS);
	run_free(&r);

	/* readers: one slot per worker */
	r = run_v("readers", "t1", NULL);
	assert_int_equal(r.status, 0);
	char pid[16];
	snprintf(pid, sizeof(pid), " %d ", (int)workers[1]);
	assert_non_null(strstr(r.out, pid));
	assert_non_null(strstr(r.out, "3 slots in use"));
	run_free(&r);
	r = run_v("readers", "t1", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "\"readers\":[{"));
	run_free(&r);

	/* check */
	r = run_v("check", "t1", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "t1: 0 problems"));
	run_free(&r);
	r = run_v("check", "t1", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_true(json_num(r.out, "problems") == 0);
	run_free(&r);

	/* keys */
	r = run_v("keys", "t1", "--prefix", "w1-", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(count_lines(r.out), NKEYS);
	run_free(&r);
	r = run_v("keys", "t1", "--limit", "5", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(count_lines(r.out), 5);
	run_free(&r);
	r = run_v("keys", "t1", "--prefix", "w2-k1", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "{\"key\":\"w2-k17\",\"value_length\":"));
	run_free(&r);

	/* get: the worker's checksummed value, byte for byte */
	r = run_v("get", "t1", "w0-k77", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out_len, 40 + 77);
	assert_true(th_value_ok(r.out, r.out_len, "w0-k77", 6));
	run_free(&r);
	r = run_v("get", "t1", "w0-k77", "--json", NULL);
	assert_int_equal(r.status, 0);
	assert_true(json_num(r.out, "flags") == 77);
	run_free(&r);

	/* health */
	r = run_v("health", "t1", "--warn", "85", "--crit", "95", NULL);
	assert_int_equal(r.status, 0);
	assert_true(!strncmp(r.out, "SHMCACHE OK - t1: utilisation", 29));
	assert_non_null(strstr(r.out, " | utilisation="));
	assert_int_equal(count_lines(r.out), 1);
	run_free(&r);
	r = run_v("health", "t1", "--warn", "0", "--crit", "100", NULL);
	assert_int_equal(r.status, 1);
	assert_true(!strncmp(r.out, "SHMCACHE WARNING", 16));
	run_free(&r);
	r = run_v("health", "t1", "--warn", "0", "--crit", "0", NULL);
	assert_int_equal(r.status, 2);
	assert_true(!strncmp(r.out, "SHMCACHE CRITICAL", 17));
	run_free(&r);
	r = run_v("health", "t1", "--hit-warn", "100", "--min-gets", "1",
	          NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "hit ratio <="));
	run_free(&r);
	r = run_v("health", "t1", "--evict-warn", "0", "--interval", "0.1",
	          NULL);
	assert_int_equal(r.status, 1); /* 0 evictions/s >= 0 */
	assert_non_null(strstr(r.out, "evictions_per_second="));
	run_free(&r);

	/* dump -> restore into a fresh cache: values, flags and TTLs equal.
	 * The workers' keys have no TTL; one key gets 600 s.  t2's default
	 * TTL (60 s) must not be applied to keys that had none. */
	r = run_v("set", "t1", "ttl-k", "v", "--ttl", "600", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	char dump[600];
	snprintf(dump, sizeof(dump), "%s/t1.dump", th_private_dir());
	r = run_v("dump", "t1", dump, NULL);
	if (r.status == 0) {
		run_free(&r);
		r = run_v("create", "t2", "--memory", "32M", "--default-ttl",
		          "60", NULL);
		assert_int_equal(r.status, 0);
		run_free(&r);
		r = run_v("restore", "t2", dump, NULL);
		assert_int_equal(r.status, 0);
		run_free(&r);
		shmc_t *c1 = NULL, *c2 = NULL;
		assert_int_equal(shmc_open("t1", 0, &c1), 0);
		assert_int_equal(shmc_open("t2", 0, &c2), 0);
		uint32_t t1 = 0, t2 = 0;
		assert_int_equal(shmc_ttl(c1, "ttl-k", 5, &t1), 0);
		assert_int_equal(shmc_ttl(c2, "ttl-k", 5, &t2), 0);
		assert_true(t1 > 590 && t1 <= 600);
		assert_true(t2 + 1 >= t1 && t2 <= t1 + 1);
		assert_int_equal(shmc_ttl(c1, "w1-k5", 5, &t1), 0);
		assert_int_equal(t1, SHMC_TTL_NONE);
		assert_int_equal(shmc_ttl(c2, "w1-k5", 5, &t2), 0);
		assert_int_equal(t2, SHMC_TTL_NONE);
		shmc_close(c1);
		shmc_close(c2);
		for (int i = 0; i < NWORKERS; i++) {
			for (int j = 0; j < NKEYS; j += 37) {
				char key[32];
				snprintf(key, sizeof(key), "w%d-k%d", i, j);
				struct run a = run_v("get", "t1", key, "--json",
				                     NULL);
				struct run b = run_v("get", "t2", key, "--json",
				                     NULL);
				assert_int_equal(a.status, 0);
				assert_int_equal(b.status, 0);
				assert_string_equal(a.out, b.out);
				run_free(&a);
				run_free(&b);
			}
		}
		r = run_v("stats", "t2", "--json", NULL);
		assert_true(json_num(r.out, "items") ==
		            NWORKERS * NKEYS + 1);
		run_free(&r);
		r = run_v("destroy", "t2", NULL);
		assert_int_equal(r.status, 0);
	} else {
		printf("# dump not available: %s", r.err);
	}
	run_free(&r);

	stop_workers();
	r = run_v("destroy", "t1", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	assert_int_equal(stat(path, &st), -1);
	r = run_v("list", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(count_lines(r.out), 1); /* the heading only */
	run_free(&r);
}

static void test_get_set_del(void **state)
{
	(void)state;
	struct run r = run_v("create", "g1", "--memory", "8M", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	/* binary value through stdin, with NUL and 0xff bytes */
	static const char bin[] = {'a', 0, 'b', (char)0xff, '\n', 0};
	const char *av[] = {"set", "g1", "bin", "-", "--flags", "42", NULL};
	r = run_tool(bin, sizeof(bin), av);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = run_v("get", "g1", "bin", NULL);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.out_len, sizeof(bin));
	assert_memory_equal(r.out, bin, sizeof(bin));
	run_free(&r);
	r = run_v("get", "g1", "bin", "--json", NULL);
	assert_non_null(strstr(r.out, "\"value_hex\":\"610062ff0a00\""));
	assert_true(json_num(r.out, "flags") == 42);
	run_free(&r);
	/* a value as an argument, with --ttl */
	r = run_v("set", "g1", "k", "hello \"world\"", "--ttl", "60", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = run_v("get", "g1", "k", "--json", NULL);
	assert_non_null(strstr(r.out, "\"value\":\"hello \\\"world\\\"\""));
	run_free(&r);
	/* --add refuses an existing key */
	r = run_v("set", "g1", "k", "x", "--add", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "key already present"));
	run_free(&r);
	r = run_v("del", "g1", "k", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = run_v("get", "g1", "k", NULL);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, "shmcache: get: k: no such key (a miss)\n");
	assert_int_equal(r.out_len, 0);
	run_free(&r);
	r = run_v("del", "g1", "k", NULL);
	assert_int_equal(r.status, 1);
	run_free(&r);
	r = run_v("destroy", "g1", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

int main(void)
{
	tool_path();
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lifecycle),
	    cmocka_unit_test(test_get_set_del),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
