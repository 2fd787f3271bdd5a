/*
 * test_tool_owner.c - a cache shared with a group (create --mode 0660
 * --group G) is usable by another user in G: the tool passes
 * SHMC_OPEN_ANY_OWNER for it, and only for it.  Needs root to make the
 * group and the second user (groupadd/useradd, removed at exit); skipped
 * (77) otherwise.
 */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../helpers.h"
#include "run.h"

static char user[32], group[32];
static uid_t uid;
static gid_t gid;

static void cleanup(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "userdel %s >/dev/null 2>&1", user);
	if (system(cmd) != 0)
		fprintf(stderr, "# userdel %s failed\n", user);
	snprintf(cmd, sizeof(cmd), "groupdel %s >/dev/null 2>&1", group);
	if (system(cmd) != 0)
		fprintf(stderr, "# groupdel %s failed\n", group);
}

/* Runs the tool as the second user (member of the group only). */
static struct run run_as(const char *const *argv)
{
	struct run r = {.status = -1};
	int ofd = memfd_create("out", 0), efd = memfd_create("err", 0);
	assert_true(ofd >= 0 && efd >= 0);
	const char *av[16] = {"shmcache"};
	int n = 1;
	for (; argv[n - 1] && n < 15; n++)
		av[n] = argv[n - 1];
	av[n] = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		if (setgroups(1, &gid) || setgid(gid) || setuid(uid))
			_exit(126);
		execv(tool_path(), (char *const *)av);
		_exit(127);
	}
	int st;
	waitpid(pid, &st, 0);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	struct stat s;
	fstat(ofd, &s);
	r.out = calloc(1, (size_t)s.st_size + 1);
	if (pread(ofd, r.out, (size_t)s.st_size, 0) < 0)
		r.out[0] = 0;
	fstat(efd, &s);
	r.err = calloc(1, (size_t)s.st_size + 1);
	if (pread(efd, r.err, (size_t)s.st_size, 0) < 0)
		r.err[0] = 0;
	close(ofd);
	close(efd);
	return r;
}
#define AS(...)                                                                \
	({                                                                     \
		const char *av_[] = {__VA_ARGS__, NULL};                       \
		run_as(av_);                                                   \
	})

static void test_group_shared(void **state)
{
	(void)state;
	/* root creates it, shared with the group */
	struct run r = run_v("create", "shared", "--memory", "8M", "--mode",
	                     "0660", "--group", group, "-q", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = run_v("set", "shared", "k", "from-root", "-q", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	/* the member reads, writes and watches it */
	r = AS("get", "shared", "k");
	if (r.status != 0)
		fail_msg("get as %s: status %d, stderr '%s'", user, r.status,
		         r.err);
	assert_string_equal(r.out, "from-root");
	run_free(&r);
	r = AS("set", "shared", "k2", "from-member");
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = AS("stats", "shared", "--json");
	assert_int_equal(r.status, 0);
	assert_true(json_num(r.out, "items") == 2);
	run_free(&r);
	r = AS("health", "shared");
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = AS("list");
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, " ok\n"));
	run_free(&r);

	/* a cache of root's not shared with the group stays refused */
	r = run_v("create", "private", "--memory", "8M", "-q", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = AS("get", "private", "k");
	assert_int_equal(r.status, 1);
	assert_string_equal(r.err, "shmcache: get: open private: permission "
	                           "denied (owned by uid 0 and not shared "
	                           "with a group of yours: mode 0600)\n");
	run_free(&r);
	r = run_v("destroy", "private", "-q", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = run_v("destroy", "shared", "-q", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
}

int main(void)
{
	tool_path();
	const char *dir = th_private_dir();
	if (geteuid() != 0)
		th_skip("needs root to add a second user and a group");
	if (system("command -v useradd >/dev/null && command -v groupadd "
	           ">/dev/null") != 0)
		th_skip("useradd or groupadd not installed");
	snprintf(user, sizeof(user), "shmcu%d", (int)getpid() % 100000);
	snprintf(group, sizeof(group), "shmcg%d", (int)getpid() % 100000);
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
	         "groupadd %s && useradd -M -N -g %s -s /usr/sbin/nologin %s",
	         group, group, user);
	atexit(cleanup);
	if (system(cmd) != 0)
		th_skip("groupadd/useradd failed");
	struct passwd *pw = getpwnam(user);
	struct group *gr = getgrnam(group);
	if (!pw || !gr)
		th_skip("the new user or group cannot be looked up");
	uid = pw->pw_uid;
	gid = gr->gr_gid;
	/* the second user must reach the private directory */
	if (chmod(dir, 0755) != 0)
		th_skip("cannot open the private directory to others");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_group_shared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
