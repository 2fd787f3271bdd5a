/*
 * replay.c - runs every file of a fuzz corpus directory (argv[1]) through
 * the fuzz target, as a plain unit test: proves that none of the
 * committed inputs (hostile headers, index buckets, slots and segments)
 * crashes or hangs (5 s per input) shmc_open, shmc_check or a lookup.
 * Each input runs in its own child process, so one failure does not hide
 * the others; every failing input is named.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_cache.h"

static int run_one(const char *path, const char *name)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static uint8_t buf[1 << 16];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		alarm(5); /* SIGALRM kills the child: reported as a hang */
		shmc_fuzz_one(buf, len);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		printf("ok    %s (%zu bytes)\n", name, len);
		return 0;
	}
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		printf("HANG  %s: did not finish in 5 s\n", name);
	else if (WIFSIGNALED(st))
		printf("CRASH %s: signal %d\n", name, WTERMSIG(st));
	else
		printf("FAIL  %s: exit %d\n", name, WEXITSTATUS(st));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	DIR *d = opendir(argv[1]);
	if (!d) {
		perror(argv[1]);
		return 1;
	}
	shmc_fuzz_init(); /* the template, made once, before any fork */
	int n = 0, bad = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", argv[1], e->d_name);
		bad += run_one(p, e->d_name);
		n++;
	}
	closedir(d);
	printf("%d inputs replayed, %d failed\n", n, bad);
	return n > 0 && bad == 0 ? 0 : 1;
}
