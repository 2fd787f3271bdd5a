/*
 * test_tool_live.c - the long-running subcommands: `exporter` scraped with
 * curl on 127.0.0.1 (a free port chosen by the kernel, and a port already
 * in use; the scrape checked like `stats --prometheus`, by promtool when
 * it is installed), `top` as plain lines when stdout is not a terminal, and `top`
 * full screen inside tmux (send-keys q / capture-pane) when tmux exists.
 * Every wait is bounded.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../helpers.h"
#include "run.h"

static int has(const char *prog)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

static void mk(const char *name)
{
	struct run r = run_v("create", name, "--memory", "8M", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = run_v("set", name, "a", "1", NULL);
	run_free(&r);
	r = run_v("get", name, "a", NULL);
	run_free(&r);
}

/* Starts `shmcache exporter NAME --listen 127.0.0.1:0`; returns its pid
 * and the port it printed. */
static pid_t start_exporter(const char *name, unsigned *port)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execl(tool_path(), "shmcache", "exporter", name, "--listen",
		      "127.0.0.1:0", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	char line[256] = "";
	alarm(20); /* a hung exporter must not hang the test */
	assert_non_null(fgets(line, sizeof(line), f));
	alarm(0);
	fclose(f);
	assert_int_equal(sscanf(line, "listening on http://127.0.0.1:%u/metrics",
	                        port),
	                 1);
	return pid;
}

static void stop(pid_t pid)
{
	int st;
	kill(pid, SIGTERM);
	for (int i = 0; i < 500 && waitpid(pid, &st, WNOHANG) == 0; i++)
		usleep(10000);
	if (waitpid(pid, &st, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("exporter did not stop on SIGTERM");
	}
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_exporter(void **state)
{
	(void)state;
	if (!has("curl")) {
		printf("# curl not installed: exporter test skipped\n");
		return;
	}
	mk("ex");
	unsigned port;
	pid_t pid = start_exporter("ex", &port);
	char cmd[1200], path[512];
	snprintf(path, sizeof(path), "%s/scrape.txt", th_private_dir());
	snprintf(cmd, sizeof(cmd),
	         "curl -fsS -m 10 -o %s http://127.0.0.1:%u/metrics", path,
	         port);
	/* scrape twice, with load in between: the counter moves */
	assert_int_equal(system(cmd), 0);
	struct run r = run_v("get", "ex", "a", NULL);
	run_free(&r);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(path, "r");
	char buf[16384];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	assert_true(n < sizeof(buf) - 1); /* all of it */
	buf[n] = 0;
	assert_non_null(strstr(buf, "# TYPE shmcache_gets_total counter\n"));
	assert_non_null(strstr(buf, "shmcache_gets_total{cache=\"ex\"} 2\n"));
	assert_non_null(strstr(buf, "shmcache_utilisation_ratio{cache=\"ex\"}"));
	assert_non_null(strstr(buf, "# TYPE shmcache_loads_total counter\n"));
	check_prometheus(buf, "ex"); /* promtool too, when installed */
	/* anything but /metrics is a 404 */
	snprintf(cmd, sizeof(cmd),
	         "curl -s -m 10 -o /dev/null -w '%%{http_code}' "
	         "http://127.0.0.1:%u/nope > %s",
	         port, path);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	assert_string_equal(buf, "404");

	/* a second exporter on the same port: a clear error, exit 1 */
	char listen_at[64];
	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%u", port);
	r = run_v("exporter", "ex", "--listen", listen_at, NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "shmcache: exporter: listen on "));
	assert_non_null(strstr(r.err, "Address already in use"));
	run_free(&r);
	stop(pid);
	r = run_v("exporter", "ex", "--listen", "localhost", NULL);
	assert_int_equal(r.status, 2);
	run_free(&r);
	r = run_v("destroy", "ex", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

static void test_top_plain(void **state)
{
	(void)state;
	mk("tp");
	struct run r = run_v("top", "tp", "--iterations", "2", "--interval",
	                     "0.1", NULL);
	assert_int_equal(r.status, 0);
	assert_null(strchr(r.out, '\033')); /* no escapes off a terminal */
	char *second = strchr(r.out, '\n');
	assert_non_null(second);
	assert_non_null(strstr(second + 1, "hit_ratio="));
	assert_non_null(strstr(r.out, "ops/s="));
	assert_non_null(strstr(r.out, " loads/s="));
	run_free(&r);
	r = run_v("destroy", "tp", NULL);
	run_free(&r);
}

static void test_top_tmux(void **state)
{
	(void)state;
	if (!has("tmux")) {
		printf("# tmux not installed: full-screen top test skipped\n");
		return;
	}
	mk("tt");
	char sock[600], cmd[2400], cap[600];
	snprintf(sock, sizeof(sock), "%s/tmux.sock", th_private_dir());
	snprintf(cap, sizeof(cap), "%s/pane.txt", th_private_dir());
	snprintf(cmd, sizeof(cmd),
	         "tmux -S %s new-session -d -x 100 -y 30 "
	         "'SHMCACHE_DIR=%s %s top tt --interval 0.2 "
	         "--iterations 300; echo EXITED $?; sleep 30'",
	         sock, th_private_dir(), tool_path());
	assert_int_equal(system(cmd), 0);
	int seen = 0;
	for (int i = 0; i < 50 && !seen; i++) {
		usleep(100000);
		snprintf(cmd, sizeof(cmd), "tmux -S %s capture-pane -p > %s",
		         sock, cap);
		if (system(cmd) != 0)
			continue;
		snprintf(cmd, sizeof(cmd), "grep -q 'memory     \\[' %s", cap);
		seen = system(cmd) == 0;
	}
	assert_true(seen);
	snprintf(cmd, sizeof(cmd), "grep -q 'hit ratio' %s && grep -q "
	                           "'shmcache top - tt' %s && grep -q "
	                           "'^loads/s ' %s",
	         cap, cap, cap);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "tmux -S %s send-keys q", sock);
	assert_int_equal(system(cmd), 0);
	int exited = 0;
	for (int i = 0; i < 50 && !exited; i++) {
		usleep(100000);
		snprintf(cmd, sizeof(cmd),
		         "tmux -S %s capture-pane -p | grep -q 'EXITED 0'",
		         sock);
		exited = system(cmd) == 0;
	}
	snprintf(cmd, sizeof(cmd), "tmux -S %s kill-server", sock);
	assert_int_equal(system(cmd), 0);
	assert_true(exited);
	struct run r = run_v("destroy", "tt", NULL);
	run_free(&r);
}

int main(void)
{
	tool_path();
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exporter),
	    cmocka_unit_test(test_top_plain),
	    cmocka_unit_test(test_top_tmux),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
