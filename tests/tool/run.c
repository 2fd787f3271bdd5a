/* run.c - see run.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../helpers.h"
#include "run.h"

const char *tool_path(void)
{
	const char *p = getenv("SHMCACHE_TOOL");
	if (!p || !*p)
		th_skip("SHMCACHE_TOOL is not set (run through meson test)");
	return p;
}

static char *slurp(int fd, size_t *len)
{
	struct stat st;
	size_t n = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
	char *b = calloc(1, n + 1);
	if (b && n && pread(fd, b, n, 0) != (ssize_t)n)
		n = 0;
	if (len)
		*len = n;
	if (b)
		b[n] = 0;
	close(fd);
	return b;
}

struct run run_tool(const char *in, size_t in_len, const char *const *argv)
{
	struct run r = {.status = -1};
	const char *tool = tool_path();
	int ofd = memfd_create("out", 0), efd = memfd_create("err", 0);
	int ifd = memfd_create("in", 0);
	assert_true(ofd >= 0 && efd >= 0 && ifd >= 0);
	if (in_len)
		assert_int_equal(write(ifd, in, in_len), (ssize_t)in_len);
	lseek(ifd, 0, SEEK_SET);
	const char *av[32] = {"shmcache"};
	int n = 1;
	for (; argv[n - 1] && n < 31; n++)
		av[n] = argv[n - 1];
	av[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ifd, 0);
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(tool, (char *const *)av);
		_exit(127);
	}
	close(ifd);
	int st = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 30) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			fail_msg("shmcache %s: timed out", av[1]);
		}
		usleep(2000);
	}
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = slurp(ofd, &r.out_len);
	r.err = slurp(efd, NULL);
	return r;
}

struct run run_v(const char *first, ...)
{
	const char *argv[16];
	int n = 0;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a && n < 15; a = va_arg(ap, const char *))
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	return run_tool(NULL, 0, argv);
}

void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

double json_num(const char *json, const char *key)
{
	char pat[128];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	if (!p)
		return -1;
	return strtod(p + strlen(pat), NULL);
}

int check_prometheus(const char *text, const char *cache)
{
	char *copy = strdup(text), *save = NULL;
	static char help[128][96], type[128][96];
	char label[128];
	int nh = 0, nt = 0, samples = 0;
	assert_non_null(copy);
	/* cache="CACHE" first; other labels (the curve's scale) may
	 * follow it */
	snprintf(label, sizeof(label), "{cache=\"%s\"", cache);
	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char name[96], kind[32];
		if (sscanf(l, "# HELP %95s", name) == 1) {
			assert_true(nh < 128);
			strcpy(help[nh++], name);
		} else if (sscanf(l, "# TYPE %95s %31s", name, kind) == 2) {
			assert_true(nt < 128);
			strcpy(type[nt++], name);
			assert_true(!strcmp(kind, "counter") ||
			            !strcmp(kind, "gauge"));
			size_t n = strlen(name);
			if (!strcmp(kind, "counter"))
				assert_true(n > 6 &&
				            !strcmp(name + n - 6, "_total"));
		} else {
			assert_true(l[0] != '#');
			size_t n = strcspn(l, "{ ");
			assert_true(n < 96);
			memcpy(name, l, n);
			name[n] = 0;
			assert_true(!strncmp(name, "shmcache_", 9));
			const char *lb = strstr(l, label);
			assert_non_null(lb);
			lb += strlen(label);
			assert_true(!strncmp(lb, "} ", 2) || *lb == ',');
			int found = 0;
			for (int i = 0; i < nt; i++)
				found |= !strcmp(type[i], name);
			for (int i = 0; i < nh && found == 1; i++)
				found |= (!strcmp(help[i], name)) << 1;
			if (found != 3)
				fail_msg("%s: no TYPE or HELP before it", name);
			samples++;
		}
	}
	assert_true(samples >= 20);
	free(copy);
	/* promtool, when installed, has the last word */
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		printf("# promtool not installed: exposition format checked "
		       "by the test's own rules only\n");
		return 0;
	}
	char path[] = "/tmp/shmcache-prom.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	int rc = system(cmd);
	unlink(path);
	if (rc != 0)
		fail_msg("promtool check metrics failed (status %d)", rc);
	return 1;
}
