/*
 * test_tool_ops.c - the tool as operators expect it (issue 13): errors in
 * the documented "shmcache: SUB: WHAT: REASON" form, one line on success
 * (and -q to silence it), health and top --json, resize --index below the
 * item count, the value limit for the key given, and the name grammar.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers.h"
#include "run.h"

#define RUN(...) run_v(__VA_ARGS__, NULL)

static void expect(struct run r, int status, const char *out, const char *err)
{
	if (r.status != status || (out && strcmp(r.out, out) != 0) ||
	    (err && strcmp(r.err, err) != 0))
		fail_msg("status %d (want %d)\nstdout '%s' (want '%s')\n"
		         "stderr '%s' (want '%s')",
		         r.status, status, r.out, out ? out : "*", r.err,
		         err ? err : "*");
	run_free(&r);
}

static void test_unknown_option(void **state)
{
	(void)state;
	static const char *subs[] = {"create", "destroy", "list", "stats",
	                             "get", "set", "del", "keys", "readers",
	                             "check", "health", "top", "dump",
	                             "restore", "exporter", "resize", "load"};
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want),
		         "shmcache: %s: --bogus: unknown option\n"
		         "Try 'shmcache %s --help'.\n",
		         subs[i], subs[i]);
		expect(RUN(subs[i], "--bogus"),
		       strcmp(subs[i], "health") ? 2 : 3, NULL, want);
	}
	expect(RUN("stats", "--watch"), 2, NULL,
	       "shmcache: stats: --watch: needs a value\n"
	       "Try 'shmcache stats --help'.\n");
	expect(RUN("stats", "--json=1"), 2, NULL,
	       "shmcache: stats: --json: takes no value\n"
	       "Try 'shmcache stats --help'.\n");
	expect(RUN("destroy", "-x"), 2, NULL,
	       "shmcache: destroy: -x: unknown option\n"
	       "Try 'shmcache destroy --help'.\n");
}

static void test_error_forms(void **state)
{
	(void)state;
	expect(RUN("stats", "nope"), 1, "",
	       "shmcache: stats: open nope: no such cache\n");
	expect(RUN("health", "nope"), 3,
	       "SHMCACHE UNKNOWN - nope: no such cache\n",
	       "shmcache: health: open nope: no such cache\n");
	expect(RUN("create", "r", "--memory", "8M", "--max-readers", "0"), 2,
	       "",
	       "shmcache: create: --max-readers: bad number '0' (1 to "
	       "32767): Numerical result out of range\n"
	       "Try 'shmcache create --help'.\n");
	expect(RUN("create", "r", "--memory", "8M", "--max-readers", "1",
	           "-q"),
	       0, "", "");
	expect(RUN("resize", "r", "--index", "0"), 2, "",
	       "shmcache: resize: --index: bad number '0' (1 to 4294967296): "
	       "Numerical result out of range\n"
	       "Try 'shmcache resize --help'.\n");
	/* dump names the FILE given, not its temporary file */
	struct run r = RUN("dump", "r", "/nonexistent-dir/x.dump");
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, "shmcache: dump: dump r to "
	                           "/nonexistent-dir/x.dump: No such file or "
	                           "directory\n");
	run_free(&r);
	/* . and .. are refused, and the message says so */
	expect(RUN("create", ".", "--memory", "8M"), 2, "",
	       "shmcache: create: '.' (names are 1 to 64 of A-Z a-z 0-9 . _ -, "
	       "other than . and ..): bad cache name\n");
	expect(RUN("destroy", "-q", "r"), 0, "", "");
}

static void test_success_lines(void **state)
{
	(void)state;
	char file[600], want[800];
	snprintf(file, sizeof(file), "%s/s.dump", th_private_dir());
	snprintf(want, sizeof(want),
	         "created s: 8.0 MiB budget, reservation 16.0 MiB, file "
	         "%s/shmcache.s\n",
	         th_private_dir());
	expect(RUN("create", "s", "--memory", "8M", "--max-memory", "16M"), 0,
	       want, "");
	expect(RUN("set", "s", "k1", "hello"), 0,
	       "stored 5 bytes under k1 in s\n", "");
	expect(RUN("set", "s", "k2", "x", "--quiet"), 0, "", "");
	expect(RUN("set", "-q", "s", "k3", "xyz"), 0, "", "");
	snprintf(want, sizeof(want), "dumped 3 items of s to %s\n", file);
	expect(RUN("dump", "s", file), 0, want, "");
	expect(RUN("dump", "-q", "s", file), 0, "", "");
	snprintf(want, sizeof(want), "restored 3 items into s from %s\n",
	         file);
	expect(RUN("restore", "s", file), 0, want, "");
	expect(RUN("restore", "s", file, "--quiet"), 0, "", "");
	struct run r = RUN("resize", "s", "--index", "512");
	assert_int_equal(r.status, 0);
	assert_true(strncmp(r.out, "s: index ", 9) == 0);
	assert_non_null(strstr(r.out, " -> 512 buckets (3 items"));
	run_free(&r);
	expect(RUN("resize", "s", "--index", "1024", "-q"), 0, "", "");
	expect(RUN("resize", "s", "--autogrow", "1M", "--util", "80"), 0,
	       "s: autogrow by 1.0 MiB up to 16.0 MiB when utilisation "
	       ">= 80% for 10 s and ghost hits >= 20 per mille of sets\n",
	       "");
	expect(RUN("resize", "s", "--autogrow", "off"), 0,
	       "s: autogrow off\n", "");
	expect(RUN("resize", "s", "--autogrow", "off", "-q"), 0, "", "");
	expect(RUN("resize", "s", "--memory", "+1M", "-q"), 0, "", "");
	expect(RUN("destroy", "s"), 0, "destroyed s\n", "");
	unlink(file);
}

static void test_index_below_items(void **state)
{
	(void)state;
	shmc_t *c = th_create("ix", 8 << 20);
	for (int i = 0; i < 2000; i++) {
		char k[16];
		int kl = snprintf(k, sizeof(k), "k%d", i);
		assert_int_equal(shmc_set(c, k, (size_t)kl, "v", 1, 0, 0), 0);
	}
	struct shmc_stats st;
	assert_int_equal(shmc_stats(c, &st), 0);
	uint64_t before = st.index_buckets;
	/* 256 buckets hold 1792 entries: fewer than the 2000 items */
	expect(RUN("resize", "ix", "--index", "256"), 1, "",
	       "shmcache: resize: index of ix: 256 buckets hold 1792 entries, "
	       "fewer than its 2000 items (give --index 286 or more)\n");
	assert_int_equal(shmc_stats(c, &st), 0);
	assert_int_equal(st.index_buckets, before);
	struct run r = RUN("resize", "ix", "--index", "286");
	assert_int_equal(r.status, 0);
	run_free(&r);
	shmc_close(c);
	expect(RUN("destroy", "ix", "-q"), 0, "", "");
}

static void test_value_limit_for_key(void **state)
{
	(void)state;
	shmc_t *c = th_create("vl", 8 << 20);
	struct shmc_info info;
	assert_int_equal(shmc_info(c, &info), 0);
	shmc_close(c);
	char key[101];
	memset(key, 'k', 100);
	key[100] = 0;
	uint64_t limit = info.max_value + 1 - 100;
	size_t n = (size_t)limit + 1;
	char *v = malloc(n);
	memset(v, 'x', n);
	const char *av[] = {"set", "vl", key, "-", NULL};
	struct run r = run_tool(v, n, av);
	char want[300];
	snprintf(want, sizeof(want),
	         "shmcache: set: value of %zu bytes (with this 100-byte key, vl "
	         "holds values of at most %llu bytes): value too large for one "
	         "segment\n",
	         n, (unsigned long long)limit);
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, want);
	run_free(&r);
	/* exactly the limit is stored */
	r = run_tool(v, n - 1, av);
	assert_int_equal(r.status, 0);
	run_free(&r);
	free(v);
	expect(RUN("destroy", "vl", "-q"), 0, "", "");
}

static void test_json_views(void **state)
{
	(void)state;
	expect(RUN("create", "j", "--memory", "8M", "-q"), 0, "", "");
	struct run r = RUN("health", "j", "--json");
	assert_int_equal(r.status, 0);
	assert_true(r.out[0] == '{' && r.out[r.out_len - 2] == '}');
	assert_non_null(strstr(r.out, "\"state\":\"OK\""));
	assert_non_null(strstr(r.out, "\"reason\":null"));
	assert_true(json_num(r.out, "warn") == 85);
	run_free(&r);
	r = RUN("health", "j", "--json", "--warn", "0", "--crit", "90");
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "\"state\":\"WARNING\""));
	assert_non_null(strstr(r.out, "\"reason\":\"utilisation >= 0%\""));
	run_free(&r);
	expect(RUN("health", "nope", "--json"), 3,
	       "{\"cache\":\"nope\",\"state\":\"UNKNOWN\",\"status\":3,"
	       "\"reason\":\"no such cache\"}\n",
	       "shmcache: health: open nope: no such cache\n");
	r = RUN("top", "j", "--json", "--interval", "0.05", "--iterations",
	        "2");
	assert_int_equal(r.status, 0);
	char *nl = strchr(r.out, '\n');
	assert_non_null(nl);
	assert_true(r.out[0] == '{' && nl[1] == '{');
	assert_non_null(strstr(r.out, "\"ops_per_sec\":"));
	assert_non_null(strstr(nl + 1, "\"cache\":\"j\""));
	assert_null(strchr(r.out, '\033'));
	run_free(&r);
	expect(RUN("destroy", "j", "-q"), 0, "", "");
}

int main(void)
{
	tool_path();
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unknown_option),
	    cmocka_unit_test(test_error_forms),
	    cmocka_unit_test(test_success_lines),
	    cmocka_unit_test(test_index_below_items),
	    cmocka_unit_test(test_value_limit_for_key),
	    cmocka_unit_test(test_json_views),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
