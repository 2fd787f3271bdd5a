/* mp.c - see mp.h. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "mp.h"

#define MP_MAX_CHILDREN 1024

static pid_t children[MP_MAX_CHILDREN];
static int nchildren;

long mp_env_long(const char *name, long def)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		return def;
	return v;
}

double mp_stress_seconds(void)
{
	long s = mp_env_long("SHMC_STRESS_SECONDS", 5);
	return s > 0 ? (double)s : 1.0;
}

double mp_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mp_sleep_ms(double ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = {(time_t)(ms / 1000.0),
	                      (long)(fmod(ms, 1000.0) * 1e6)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void *mp_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap shared");
		abort();
	}
	return p;
}

static void forget(pid_t pid)
{
	for (int i = 0; i < nchildren; i++)
		if (children[i] == pid) {
			children[i] = children[--nchildren];
			return;
		}
}

static char self_pid[16];

/* SIGALRM in a child: an operation was stuck for the whole alarm() time.
 * With SHMC_MP_GDB=1 set, print every thread's stack first. */
static void child_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "child hung: alarm fired in pid ";
	ssize_t n = write(2, msg, sizeof(msg) - 1);
	n = write(2, self_pid, strlen(self_pid));
	n = write(2, "\n", 1);
	(void)n;
	const char *g = getenv("SHMC_MP_GDB");
	if (g && g[0] == '1') {
		pid_t p = fork();
		if (p == 0) {
			execlp("gdb", "gdb", "-p", self_pid, "-batch", "-ex",
			       "thread apply all bt", (char *)NULL);
			_exit(127);
		}
		if (p > 0)
			waitpid(p, NULL, 0);
	}
	_exit(MP_HANG);
}

void mp_gdb(pid_t pid)
{
	const char *g = getenv("SHMC_MP_GDB");
	if (!g || g[0] != '1')
		return;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", (int)pid);
	fflush(stdout);
	fflush(stderr);
	pid_t p = fork();
	if (p == 0) {
		execlp("gdb", "gdb", "-p", ps, "-batch", "-ex", "bt",
		       (char *)NULL);
		_exit(127);
	}
	if (p > 0)
		waitpid(p, NULL, 0);
}

pid_t mp_spawn(int (*fn)(void *arg), void *arg)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		abort();
	}
	if (pid == 0) {
		/* The siblings are not ours to kill. */
		nchildren = 0;
		snprintf(self_pid, sizeof(self_pid), "%d", (int)getpid());
		signal(SIGALRM, child_alarm);
		_exit(fn(arg));
	}
	if (nchildren < MP_MAX_CHILDREN)
		children[nchildren++] = pid;
	return pid;
}

int mp_wait(pid_t pid, double timeout_s, int *status)
{
	double end = mp_now() + timeout_s;
	int st = 0;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			forget(pid);
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR) {
			forget(pid);
			if (status)
				*status = 0;
			return -1;
		}
		if (mp_now() > end) {
			fprintf(stderr, "child %d did not finish within %.1f s: "
			                "killing it\n",
			        (int)pid, timeout_s);
			mp_kill(pid);
			return -1;
		}
		mp_sleep_ms(2);
	}
}

void mp_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	kill(pid, SIGCONT); /* a stopped child dies only once it runs */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	forget(pid);
}

void mp_kill_all(void)
{
	while (nchildren > 0)
		mp_kill(children[nchildren - 1]);
}

int mp_teardown(void **state)
{
	(void)state;
	mp_kill_all();
	return 0;
}

const char *mp_status_str(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "status %#x", st);
	return buf;
}

int mp_exited_ok(int st)
{
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int mp_pipe_wait(int fd, double timeout_s)
{
	double end = mp_now() + timeout_s;
	for (;;) {
		double left = end - mp_now();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return 0;
		char b;
		ssize_t n = read(fd, &b, 1);
		if (n == 1)
			return 1;
		if (n < 0 && errno == EINTR)
			continue;
		return 0;
	}
}

void mp_pipe_post(int fd)
{
	char b = 'x';
	while (write(fd, &b, 1) < 0 && errno == EINTR)
		;
}

void mp_zipf_init(struct mp_zipf *z, uint32_t n, double s)
{
	z->n = n;
	z->cdf = malloc(sizeof(double) * n);
	if (!z->cdf)
		abort();
	double sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		sum += 1.0 / pow((double)(i + 1), s);
		z->cdf[i] = sum;
	}
	for (uint32_t i = 0; i < n; i++)
		z->cdf[i] /= sum;
}

uint32_t mp_zipf_next(const struct mp_zipf *z, uint64_t *rng)
{
	double u = mp_unit(rng);
	uint32_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void mp_zipf_free(struct mp_zipf *z)
{
	free(z->cdf);
	z->cdf = NULL;
}

double mp_unit(uint64_t *rng)
{
	return (double)(th_rand(rng) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t mp_seed(uint64_t salt)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t s = ((uint64_t)getpid() << 32) ^ (uint64_t)gettid() ^
	             ((uint64_t)ts.tv_nsec << 7) ^ (salt * 0x9e3779b97f4a7c15ull);
	return s ? s : 1;
}

size_t mp_key(char *buf, size_t cap, const char *prefix, uint64_t i)
{
	int n = snprintf(buf, cap, "%s%07llu", prefix, (unsigned long long)i);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

void mp_report(const char *problem, void *arg)
{
	(void)arg;
	fprintf(stderr, "  check: %s\n", problem);
}

shmc_t *mp_create(const char *name, uint64_t memory, uint32_t seg_size,
                  uint32_t max_readers, uint32_t default_ttl)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = memory;
	if (seg_size)
		o.segment_size = seg_size;
	if (max_readers)
		o.max_readers = max_readers;
	o.default_ttl = default_ttl;
	th_private_dir();
	shmc_t *c = NULL;
	int rc = shmc_create(name, &o, &c);
	if (rc)
		fail_msg("shmc_create(%s): %s", name, shmc_strerror(rc));
	return c;
}
