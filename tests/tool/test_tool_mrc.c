/*
 * test_tool_mrc.c - `shmcache create --mrc`, `shmcache mrc`, the curve in
 * stats (text, JSON, Prometheus) and the knee warning of health.
 *
 * Proves: a cache created with --mrc that has seen traffic prints the
 * table and chart at 0.25x to 8x, a JSON object with its points, and
 * --reset starts it again; stats shows the predicted line, an mrc object
 * and the shmcache_mrc_* gauges (valid exposition, promtool when
 * installed); a cache too small for a uniform key space (2x the budget
 * buys far more than 10 points) makes health warn, --mrc-gain 0 keeps it
 * quiet; a cache without a curve says so (exit 1) and its stats have no
 * such line.  No timing: the curve is read after the traffic ended.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../helpers.h"
#include "run.h"

static void ok(struct run *r)
{
	if (r->status != 0)
		fail_msg("status %d, stderr: %s", r->status, r->err);
}

static void traffic(const char *name)
{
	/* 100k keys of ~130 bytes uniformly: ~13 MiB of items for a cache
	 * of 6 MiB, so twice the budget would hit about twice as often. */
	struct run r = run_v("load", name, "--procs", "1", "--seconds", "1",
	                     "--keys", "100000", "--uniform", "--set-pct", "0",
	                     "--del-pct", "0", NULL);
	ok(&r);
	run_free(&r);
}

static void test_mrc_views(void **state)
{
	(void)state;
	struct run r = run_v("create", "m", "--memory", "6M", "--mrc",
	                     "--segment-size", "64K", "--max-readers", "16",
	                     "-q", NULL);
	ok(&r);
	run_free(&r);
	r = run_v("mrc", "m", NULL);
	ok(&r);
	assert_non_null(strstr(r.out, "no sampled gets yet"));
	run_free(&r);
	traffic("m");

	r = run_v("mrc", "m", NULL);
	ok(&r);
	for (const char *s = "0.25x\0" "1.00x\0" "8.00x\0" "|##\0"; *s;
	     s += strlen(s) + 1)
		if (!strstr(r.out, s))
			fail_msg("mrc output lacks '%s':\n%s", s, r.out);
	run_free(&r);

	r = run_v("mrc", "m", "--json", NULL);
	ok(&r);
	assert_non_null(strstr(r.out, "\"points\":["));
	assert_true(json_num(r.out, "gets") > 0);
	assert_true(json_num(r.out, "rate") > 0);
	run_free(&r);

	r = run_v("stats", "m", NULL);
	ok(&r);
	assert_non_null(strstr(r.out, "predicted      hit ratio"));
	run_free(&r);
	r = run_v("stats", "m", "--json", NULL);
	ok(&r);
	assert_non_null(strstr(r.out, "\"mrc\":{"));
	assert_true(json_num(r.out, "hit_ratio_2x") >= 0);
	run_free(&r);
	r = run_v("stats", "m", "--prometheus", NULL);
	ok(&r);
	assert_non_null(strstr(r.out, "shmcache_mrc_predicted_hit_ratio{cache="
	                              "\"m\",scale=\"2\"}"));
	check_prometheus(r.out, "m");
	run_free(&r);

	/* Far below the knee: health warns (utilisation judged out). */
	r = run_v("health", "m", "--warn", "100", "--crit", "100", NULL);
	if (r.status != 1 || !strstr(r.out, "2x the budget would add"))
		fail_msg("health: status %d: %s", r.status, r.out);
	assert_non_null(strstr(r.out, "mrc_gain="));
	run_free(&r);
	r = run_v("health", "m", "--warn", "100", "--crit", "100",
	          "--mrc-gain", "0", NULL);
	ok(&r);
	run_free(&r);
	r = run_v("health", "m", "--warn", "100", "--crit", "100", "--json",
	          NULL);
	assert_true(json_num(r.out, "mrc_gain_points") >= 10);
	run_free(&r);

	r = run_v("mrc", "m", "--reset", NULL);
	ok(&r);
	run_free(&r);
	r = run_v("mrc", "m", "--json", NULL);
	ok(&r);
	assert_true(json_num(r.out, "gets") == 0);
	run_free(&r);
	r = run_v("check", "m", NULL);
	ok(&r);
	run_free(&r);
	r = run_v("destroy", "m", "-q", NULL);
	run_free(&r);
}

static void test_without_curve(void **state)
{
	(void)state;
	struct run r = run_v("create", "p", "--memory", "8M", "-q", NULL);
	ok(&r);
	run_free(&r);
	r = run_v("mrc", "p", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "keeps no miss-ratio curve"));
	run_free(&r);
	r = run_v("stats", "p", NULL);
	ok(&r);
	assert_null(strstr(r.out, "predicted"));
	run_free(&r);
	r = run_v("create", "q", "--memory", "8M", "--mrc-keys", "100", NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_v("destroy", "p", "-q", NULL);
	run_free(&r);
}

int main(void)
{
	tool_path();
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mrc_views),
	    cmocka_unit_test(test_without_curve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
