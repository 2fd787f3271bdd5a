/*
 * test_load.c - get-or-load (suite 'load').
 *
 * What it proves:
 *   - one_loader: 8 processes x 4 threads ask for the same missing key at
 *     once; the loader runs exactly once (counted across processes) and
 *     every caller gets its value.
 *   - loader_killed: the loader is SIGKILLed mid-load; a waiting caller in
 *     another process takes over and loads; nobody waits past the timeout.
 *   - loader_error: a loader's error reaches the callers that waited for
 *     it, and is not cached.
 *   - wait_timeout / lease_overrun: a waiter gives up at wait_ms; a loader
 *     slower than lease_ms loses its lease to the next caller.
 *   - soft_ttl: through the injectable clock: fresh hits do not load; past
 *     the soft TTL one caller refreshes while another gets the stale value
 *     at once; past the hard TTL it is a miss.
 *   - negative: a "not found" is cached for negative_ttl, then asked again.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "../mp/mp.h"

struct shared {
	volatile uint64_t loads;
	volatile uint64_t ok, bad, errs;
	volatile int go;
};

struct ctx {
	struct shared *sh;
	unsigned delay_ms;
	int fail_rc;       /* the loader returns this when not 0 */
	int ready_fd;      /* the loader posts here when it starts, if >= 0 */
	bool hang;         /* the loader never returns */
	uint32_t version;
};

static int loader(const void *key, size_t klen, void *buf, size_t *vlen,
                  uint32_t *flags, void *arg)
{
	struct ctx *x = arg;
	__atomic_add_fetch(&x->sh->loads, 1, __ATOMIC_SEQ_CST);
	if (x->ready_fd >= 0)
		mp_pipe_post(x->ready_fd);
	while (x->hang)
		mp_sleep_ms(100);
	if (x->delay_ms)
		mp_sleep_ms(x->delay_ms);
	if (x->fail_rc)
		return x->fail_rc;
	char v[256];
	size_t n = th_value(v, sizeof(v), key, klen, x->version, 100);
	if (n > *vlen) {
		*vlen = n;
		return SHMC_EBUFSIZE;
	}
	memcpy(buf, v, n);
	*vlen = n;
	*flags = 7;
	return 0;
}

static shmc_t *fresh_sized(const char *name, uint64_t memory)
{
	th_private_dir();
	shmc_destroy(name);
	return th_create(name, memory);
}

static shmc_t *fresh(const char *name)
{
	return fresh_sized(name, 32ull << 20);
}

/* ---- one loader for many callers ---------------------------------------- */

struct thr_arg {
	shmc_t *c;
	struct shared *sh;
};

static void *caller_thread(void *p)
{
	struct thr_arg *a = p;
	struct ctx x = {.sh = a->sh, .delay_ms = 200, .ready_fd = -1};
	while (!a->sh->go)
		sched_yield();
	char buf[256];
	size_t n = sizeof(buf);
	uint32_t fl = 0;
	int rc = shmc_get_or_load(a->c, "hot", 3, buf, &n, &fl, loader, &x,
	                          NULL);
	if (rc == 0 && th_value_ok(buf, n, "hot", 3) && fl == 7)
		__atomic_add_fetch(&a->sh->ok, 1, __ATOMIC_RELAXED);
	else {
		fprintf(stderr, "caller: rc %s, %zu bytes, flags %u\n",
		        shmc_err_name(rc), n, fl);
		__atomic_add_fetch(&a->sh->bad, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int caller_proc(void *arg)
{
	struct shared *sh = arg;
	shmc_t *c = NULL;
	MP_CHECK(shmc_open("ld", 0, &c) == 0, MP_SETUP, "open");
	pthread_t th[4];
	struct thr_arg a = {c, sh};
	for (int i = 0; i < 4; i++)
		MP_CHECK(pthread_create(&th[i], NULL, caller_thread, &a) == 0,
		         MP_SETUP, "thread");
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	shmc_close(c);
	return MP_OK;
}

static void one_loader(void **state)
{
	(void)state;
	/* Room for every caller thread's open segment: no eviction, so the
	 * one load is the only one (eviction would legitimately cause a
	 * second; that is not what this test is about). */
	shmc_t *c = fresh_sized("ld", 128ull << 20);
	struct shared *sh = mp_shared(sizeof(*sh));
	pid_t p[8];
	for (int i = 0; i < 8; i++)
		p[i] = mp_spawn(caller_proc, sh);
	mp_sleep_ms(300); /* every process attached and spinning on go */
	sh->go = 1;
	for (int i = 0; i < 8; i++) {
		int st;
		assert_int_equal(mp_wait(p[i], 60, &st), 0);
		assert_true(mp_exited_ok(st));
	}
	assert_int_equal(sh->loads, 1);
	assert_int_equal(sh->ok, 32);
	assert_int_equal(sh->bad, 0);
	struct shmc_stats st;
	shmc_stats(c, &st);
	assert_int_equal(st.loads, 1);
	assert_true(st.load_waits >= 1);
	assert_int_equal(st.items, 1); /* the value; the lease is gone */
	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	shmc_close(c);
	shmc_destroy("ld");
}

/* ---- a killed loader ----------------------------------------------------- */

struct kill_arg {
	struct shared *sh;
	int fd;
	bool hang;
	unsigned wait_ms;
};

static int load_proc(void *arg)
{
	struct kill_arg *k = arg;
	shmc_t *c = NULL;
	MP_CHECK(shmc_open("ld", 0, &c) == 0, MP_SETUP, "open");
	struct ctx x = {.sh = k->sh, .ready_fd = k->fd, .hang = k->hang};
	struct shmc_load_opts o = {.wait_ms = k->wait_ms};
	char buf[256];
	size_t n = sizeof(buf);
	int rc = shmc_get_or_load(c, "k", 1, buf, &n, NULL, loader, &x, &o);
	MP_CHECK(rc == 0, MP_FAIL, "get_or_load: %s", shmc_err_name(rc));
	MP_CHECK(th_value_ok(buf, n, "k", 1), MP_BADREAD, "value");
	shmc_close(c);
	return MP_OK;
}

static void loader_killed(void **state)
{
	(void)state;
	shmc_t *c = fresh("ld");
	struct shared *sh = mp_shared(sizeof(*sh));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct kill_arg hang = {sh, fds[1], true, 10000};
	pid_t a = mp_spawn(load_proc, &hang);
	assert_true(mp_pipe_wait(fds[0], 10)); /* a is inside its loader */
	struct kill_arg waits = {sh, -1, false, 5000};
	pid_t b = mp_spawn(load_proc, &waits);
	mp_sleep_ms(100); /* b is waiting on a's lease */
	double t0 = mp_now();
	mp_kill(a);
	int st;
	assert_int_equal(mp_wait(b, 10, &st), 0);
	assert_true(mp_exited_ok(st));
	assert_true(mp_now() - t0 < 3.0); /* well before any timeout */
	assert_int_equal(sh->loads, 2);
	struct shmc_stats s;
	shmc_stats(c, &s);
	assert_true(s.lease_takeovers >= 1);
	assert_int_equal(shmc_check(c, mp_report, NULL), 0);
	close(fds[0]);
	close(fds[1]);
	shmc_close(c);
	shmc_destroy("ld");
}

/* ---- errors, timeouts, overruns (threads of one process) ----------------- */

struct bg {
	shmc_t *c;
	struct ctx x;
	struct shmc_load_opts o;
	int rc;
	pthread_t th;
};

static void *bg_call(void *p)
{
	struct bg *g = p;
	char buf[256];
	size_t n = sizeof(buf);
	g->rc = shmc_get_or_load(g->c, "k", 1, buf, &n, NULL, loader, &g->x,
	                         &g->o);
	return NULL;
}

static void loader_error(void **state)
{
	(void)state;
	shmc_t *c = fresh("ld");
	struct shared *sh = mp_shared(sizeof(*sh));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct bg first = {.c = c,
	                   .x = {.sh = sh, .delay_ms = 200, .fail_rc = -EIO,
	                         .ready_fd = fds[1]}};
	pthread_create(&first.th, NULL, bg_call, &first);
	assert_true(mp_pipe_wait(fds[0], 10));
	struct bg second = {.c = c, .x = {.sh = sh, .ready_fd = -1}};
	pthread_create(&second.th, NULL, bg_call, &second);
	pthread_join(first.th, NULL);
	pthread_join(second.th, NULL);
	assert_int_equal(first.rc, -EIO);
	assert_int_equal(second.rc, -EIO); /* handed on, not loaded again */
	assert_int_equal(sh->loads, 1);
	/* not cached: the next caller loads (and this time succeeds) */
	struct bg third = {.c = c, .x = {.sh = sh, .ready_fd = -1}};
	bg_call(&third);
	assert_int_equal(third.rc, 0);
	assert_int_equal(sh->loads, 2);
	close(fds[0]);
	close(fds[1]);
	shmc_close(c);
	shmc_destroy("ld");
}

static void wait_timeout(void **state)
{
	(void)state;
	shmc_t *c = fresh("ld");
	struct shared *sh = mp_shared(sizeof(*sh));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct bg slow = {.c = c,
	                  .x = {.sh = sh, .delay_ms = 600, .ready_fd = fds[1]}};
	pthread_create(&slow.th, NULL, bg_call, &slow);
	assert_true(mp_pipe_wait(fds[0], 10));
	struct bg impatient = {.c = c, .x = {.sh = sh, .ready_fd = -1},
	                       .o = {.wait_ms = 100}};
	double t0 = mp_now();
	bg_call(&impatient);
	double waited = mp_now() - t0;
	assert_int_equal(impatient.rc, -ETIMEDOUT);
	assert_true(waited >= 0.09 && waited < 0.5);
	pthread_join(slow.th, NULL);
	assert_int_equal(slow.rc, 0);
	assert_int_equal(sh->loads, 1);
	close(fds[0]);
	close(fds[1]);
	shmc_close(c);
	shmc_destroy("ld");
}

static void lease_overrun(void **state)
{
	(void)state;
	shmc_t *c = fresh("ld");
	struct shared *sh = mp_shared(sizeof(*sh));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct bg slow = {.c = c,
	                  .x = {.sh = sh, .delay_ms = 800, .ready_fd = fds[1]},
	                  .o = {.lease_ms = 100}};
	pthread_create(&slow.th, NULL, bg_call, &slow);
	assert_true(mp_pipe_wait(fds[0], 10));
	struct bg next = {.c = c, .x = {.sh = sh, .ready_fd = -1},
	                  .o = {.lease_ms = 5000}};
	bg_call(&next);
	assert_int_equal(next.rc, 0);
	assert_int_equal(sh->loads, 2);
	pthread_join(slow.th, NULL);
	assert_int_equal(slow.rc, 0);
	struct shmc_stats st;
	shmc_stats(c, &st);
	assert_int_equal(st.lease_takeovers, 1);
	close(fds[0]);
	close(fds[1]);
	shmc_close(c);
	shmc_destroy("ld");
}

/* ---- soft and hard TTL, negative caching (injected clock) ---------------- */

static int call(shmc_t *c, struct ctx *x, const struct shmc_load_opts *o)
{
	char buf[256];
	size_t n = sizeof(buf);
	int rc = shmc_get_or_load(c, "k", 1, buf, &n, NULL, loader, x, o);
	if (rc == 0 && !th_value_ok(buf, n, "k", 1))
		return -EBADMSG;
	if (rc == 0) {
		uint64_t ver;
		memcpy(&ver, buf + 8 + 2 + 1, 8);
		return (int)ver; /* which load made it */
	}
	return rc;
}

struct stale_bg {
	shmc_t *c;
	struct ctx x;
	struct shmc_load_opts o;
	int ver;
};

static void *stale_refresh(void *p)
{
	struct stale_bg *g = p;
	g->ver = call(g->c, &g->x, &g->o);
	return NULL;
}

static void soft_ttl(void **state)
{
	(void)state;
	shmc_t *c = fresh("ld");
	uint64_t clk = 1800000000;
	shmc_set_clock(c, th_clock, &clk);
	struct shared *sh = mp_shared(sizeof(*sh));
	struct shmc_load_opts o = {.ttl = 100, .soft_ttl = 10};
	struct ctx x = {.sh = sh, .ready_fd = -1, .version = 1};
	assert_int_equal(call(c, &x, &o), 1);
	assert_int_equal(sh->loads, 1);
	clk += 5; /* fresh */
	assert_int_equal(call(c, &x, &o), 1);
	assert_int_equal(sh->loads, 1);
	clk += 10; /* past soft: one refreshes (slowly), another gets stale */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct stale_bg r = {.c = c, .o = o,
	                     .x = {.sh = sh, .ready_fd = fds[1], .delay_ms = 300,
	                           .version = 2}};
	pthread_t th;
	pthread_create(&th, NULL, stale_refresh, &r);
	assert_true(mp_pipe_wait(fds[0], 10));
	x.version = 3;
	double t0 = mp_now();
	assert_int_equal(call(c, &x, &o), 1); /* the stale value, at once */
	assert_true(mp_now() - t0 < 0.2);
	pthread_join(th, NULL);
	assert_int_equal(r.ver, 2); /* the refresher got the fresh one */
	assert_int_equal(sh->loads, 2);
	assert_int_equal(call(c, &x, &o), 2); /* everyone sees it now */
	struct shmc_stats st;
	shmc_stats(c, &st);
	assert_int_equal(st.stale_served, 1);
	clk += 200; /* past hard: a miss, a load */
	x.version = 4;
	assert_int_equal(call(c, &x, &o), 4);
	assert_int_equal(sh->loads, 3);
	close(fds[0]);
	close(fds[1]);
	shmc_close(c);
	shmc_destroy("ld");
}

static void negative(void **state)
{
	(void)state;
	shmc_t *c = fresh("ld");
	uint64_t clk = 1800000000;
	shmc_set_clock(c, th_clock, &clk);
	struct shared *sh = mp_shared(sizeof(*sh));
	struct shmc_load_opts o = {.negative_ttl = 30};
	struct ctx x = {.sh = sh, .ready_fd = -1, .fail_rc = SHMC_ENOTFOUND};
	assert_int_equal(call(c, &x, &o), SHMC_ENOTFOUND);
	assert_int_equal(call(c, &x, &o), SHMC_ENOTFOUND);
	assert_int_equal(sh->loads, 1); /* cached */
	/* a plain get sees a miss, and add may fill it */
	char buf[8];
	size_t n = sizeof(buf);
	assert_int_equal(shmc_get(c, "k", 1, buf, &n, NULL), SHMC_ENOTFOUND);
	clk += 31;
	assert_int_equal(call(c, &x, &o), SHMC_ENOTFOUND);
	assert_int_equal(sh->loads, 2); /* expired, asked again */
	x.fail_rc = 0;
	x.version = 9;
	clk += 31;
	assert_int_equal(call(c, &x, &o), 9);
	assert_int_equal(shmc_add(c, "k", 1, "x", 1, 0, 0), SHMC_EEXISTS);
	shmc_close(c);
	shmc_destroy("ld");
}

static int bad_arg_loader(const void *k, size_t kl, void *b, size_t *v,
                          uint32_t *f, void *a)
{
	(void)k, (void)kl, (void)b, (void)v, (void)f, (void)a;
	return 0;
}

static void bad_input(void **state)
{
	(void)state;
	shmc_t *c = fresh("ld");
	char buf[8];
	size_t n = sizeof(buf);
	assert_int_equal(shmc_get_or_load(NULL, "k", 1, buf, &n, NULL,
	                                  bad_arg_loader, NULL, NULL),
	                 -EINVAL);
	assert_int_equal(shmc_get_or_load(c, "k", 1, buf, &n, NULL, NULL,
	                                  NULL, NULL),
	                 -EINVAL);
	assert_int_equal(shmc_get_or_load(c, "k", 0, buf, &n, NULL,
	                                  bad_arg_loader, NULL, NULL),
	                 SHMC_EKEYLEN);
	assert_int_equal(shmc_read_begin(c), 0);
	assert_int_equal(shmc_get_or_load(c, "k", 1, buf, &n, NULL,
	                                  bad_arg_loader, NULL, NULL),
	                 SHMC_EBUSY);
	assert_int_equal(shmc_read_end(c), 0);
	shmc_close(c);
	shmc_destroy("ld");
}

int main(void)
{
	th_private_dir();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(bad_input, mp_teardown),
	    cmocka_unit_test_teardown(negative, mp_teardown),
	    cmocka_unit_test_teardown(soft_ttl, mp_teardown),
	    cmocka_unit_test_teardown(loader_error, mp_teardown),
	    cmocka_unit_test_teardown(wait_timeout, mp_teardown),
	    cmocka_unit_test_teardown(lease_overrun, mp_teardown),
	    cmocka_unit_test_teardown(one_loader, mp_teardown),
	    cmocka_unit_test_teardown(loader_killed, mp_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
