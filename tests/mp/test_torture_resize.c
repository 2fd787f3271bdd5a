/*
 * test_torture_resize.c - SIGKILL torture with live resizes and killed
 * resizers, run twice: with SHMCACHE_DIR on tmpfs (a private directory
 * under /dev/shm) and on a disk file system (a private directory under
 * /var/tmp), because giving memory back (FALLOC_FL_PUNCH_HOLE) and taking
 * it (fallocate) behave differently on the two.
 *
 * Public API only (shmcache.h), plus fork, kill, waitpid and stat: the
 * test must outlive any rewrite of the library's insides.
 *
 * Each round (SHMC_TORTURE_ROUNDS, default 40) forks
 *   - 2 or 3 writers: sets (and a few deletes and checked gets) of
 *     checksummed values over a fixed key space, each value made from its
 *     key and a version (th_value);
 *   - 1 reader: gets and read sections with references, every value it
 *     sees checked (th_value_ok) and every reference checked again before
 *     its section ends;
 *   - 1 resizer: one or two shmc_resize() calls between 8 and 24 MiB
 *     (SHMC_TORTURE_MIB_LO / _HI; wider ranges only make rounds slower),
 *     growing and shrinking to random targets, some with a progress
 *     callback that cancels part way;
 * and SIGKILLs the resizer (half the rounds, 0-20 ms after everyone has
 * started) and most writers (each at a random moment of the first 30 ms).
 * The others are told to stop.  Then, with every child dead, the parent
 * does what any new user of the cache would: shmc_open(), and one
 * shmc_resize(c, target, 0, NULL, NULL) to the budget this round ends at.
 * That alone must leave
 *   (a) the file's allocated blocks (st_blocks * 512) within the budget
 *       (shmc_stats().memory, which must equal the target) plus one
 *       segment;
 *   (b) shmc_check() clean;
 *   (c) every key of the key space either missing or correct;
 * and no child may ever have read a wrong or torn value, hung, or had a
 * call fail with an error the contract does not allow.
 *
 * Failures are counted over all rounds (a bad read stops the run at once)
 * and printed, per round, only when they happen; each test then fails with
 * a summary.  Every wait is bounded: children by alarm() and mp_wait()
 * deadlines, the parent by an alarm() per round that kills the children,
 * removes the directory and fails.
 *
 * SHMC_MP_FILTER=*tmpfs* (or *disk*) runs one of the two.
 */
#include <errno.h>
#include <ftw.h>
#include <linux/magic.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "mp.h"

#define NAME "torture-rz"
#define SEG SHMC_SEGMENT_MIN /* 64 KiB segments: many, and fast rounds */
#define MiB (1ull << 20)
#define VMIN 500
#define VMAX 8000
#define VBUF 8192
#define ROUND_ALARM 120     /* seconds a whole round may take */
#define MAX_REPORTS 25      /* failed rounds described in full */

/* ---- directories: made per test, removed even on failure ---------------- */

static char dir[256];   /* the current test's SHMCACHE_DIR, "" when none */
static char cpath[512]; /* dir/shmcache.NAME */
static pid_t owner;
static const char *label = "";
static int cur_round = -1;

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void remove_dir(void)
{
	if (dir[0] && getpid() == owner) {
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		dir[0] = 0;
	}
}

/* The parent's watchdog: a round that takes ROUND_ALARM seconds hung. */
static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "test_torture_resize: a round hung (alarm): "
	                          "killing the children, removing the "
	                          "directory\n";
	ssize_t n = write(2, msg, sizeof(msg) - 1);
	(void)n;
	fprintf(stderr, "  (%s, round %d)\n", label, cur_round);
	mp_kill_all();
	if (dir[0]) { /* unlink/rmdir only: we are in a signal handler */
		unlink(cpath);
		rmdir(dir);
	}
	_exit(1);
}

/* Makes a private directory under base and points SHMCACHE_DIR at it.
 * 0, or -1 when base cannot be used (the reason is printed). */
static int make_dir(const char *base)
{
	snprintf(dir, sizeof(dir), "%s/shmcache-torture.XXXXXX", base);
	if (!mkdtemp(dir)) {
		printf("cannot make a directory under %s: %s\n", base,
		       strerror(errno));
		dir[0] = 0;
		return -1;
	}
	owner = getpid();
	snprintf(cpath, sizeof(cpath), "%s/shmcache.%s", dir, NAME);
	setenv("SHMCACHE_DIR", dir, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	mp_kill_all();
	if (dir[0])
		shmc_destroy(NAME);
	remove_dir();
	unsetenv("SHMCACHE_DIR");
	return 0;
}

static uint64_t allocated(void)
{
	struct stat st;
	if (stat(cpath, &st) != 0)
		return 0;
	return (uint64_t)st.st_blocks * 512u;
}

/* ---- what the children share with the parent ----------------------------- */

struct shared {
	int stop;    /* writers and reader: finish and exit */
	int started; /* children that have opened the cache */
	uint64_t lo, hi; /* budgets the resizer may pick */
	uint32_t nkeys;  /* the key space: "t0000000" .. */
	uint64_t reader_ops, writer_ops, bad_reads, errors, stalled;
	int msg_taken;
	char msg[256]; /* the first bad read or error */
	/* the resizer, for the parent's diagnostics */
	int rz_calls;            /* shmc_resize calls begun */
	int rz_in_call;          /* 1 while inside one */
	uint64_t rz_from, rz_target;
	int rz_cancel_after;     /* -1: no cancelling callback */
	uint32_t rz_progress;    /* progress calls seen in this call */
	uint64_t rz_committed;   /* committed bytes at the last progress */
	int rz_rc;               /* rc of the last call that returned */
	struct {
		uint64_t from, to;
		int cancel_after, rc; /* rc 1: did not return */
	} rz_log[2];
	uint64_t rz_cancelled, rz_completed, rz_estalled;
};

/* The first bad read or error of any child is kept in sh->msg. */
static void note(struct shared *sh, uint64_t *counter, const char *what,
                 const char *key, int rc)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
	if (__atomic_exchange_n(&sh->msg_taken, 1, __ATOMIC_ACQ_REL) == 0)
		snprintf(sh->msg, sizeof(sh->msg), "%s %s in pid %d%s%s", what,
		         key, (int)getpid(), rc ? ": " : "",
		         rc ? shmc_err_name(rc) : "");
}

static void bad_read(struct shared *sh, const char *what, const char *key)
{
	note(sh, &sh->bad_reads, what, key, 0);
}

static void child_error(struct shared *sh, const char *what, const char *key, int rc)
{
	note(sh, &sh->errors, what, key, rc);
}

static int set_value(shmc_t *c, const char *key, uint64_t ver, size_t len)
{
	char buf[VBUF];
	size_t klen = strlen(key);
	len = th_value(buf, sizeof(buf), key, klen, ver, len);
	return shmc_set(c, key, klen, buf, len, SHMC_TTL_NONE, (uint32_t)len);
}

/* 1 hit (intact), 0 miss, -1 a bad read, else the error code (< -1). */
static int get_checked(shmc_t *c, const char *key)
{
	char buf[VBUF];
	size_t vlen = sizeof(buf), klen = strlen(key);
	uint32_t fl = 0;
	int rc = shmc_get(c, key, klen, buf, &vlen, &fl);
	if (rc == SHMC_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc == -1 ? -EPERM : rc;
	return th_value_ok(buf, vlen, key, klen) && fl == vlen ? 1 : -1;
}

/* ---- the children --------------------------------------------------------- */

static int writer(void *arg)
{
	struct shared *sh = arg;
	alarm(30);
	shmc_t *c = NULL;
	int rc = shmc_open(NAME, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_err_name(rc));
	uint64_t rng = mp_seed(41);
	uint64_t me = (uint64_t)getpid() << 32;
	char key[32];
	__atomic_fetch_add(&sh->started, 1, __ATOMIC_RELEASE);
	for (uint64_t i = 0; !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE);
	     i++) {
		if (i % 64 == 0)
			alarm(30); /* 64 operations this long: a hang */
		unsigned r = (unsigned)(th_rand(&rng) % 100);
		mp_key(key, sizeof(key), "t", th_rand(&rng) % sh->nkeys);
		if (r < 85) {
			rc = set_value(c, key, me | i,
			               VMIN + th_rand(&rng) % (VMAX - VMIN));
			if (rc == SHMC_ESTALLED)
				__atomic_fetch_add(&sh->stalled, 1,
				                   __ATOMIC_RELAXED);
			else if (rc)
				child_error(sh, "set", key, rc);
		} else if (r < 90) {
			rc = shmc_del(c, key, strlen(key));
			if (rc && rc != SHMC_ENOTFOUND)
				child_error(sh, "del", key, rc);
		} else {
			rc = get_checked(c, key);
			if (rc == -1)
				bad_read(sh, "bad read of", key);
			else if (rc < -1)
				child_error(sh, "get", key, rc);
		}
		__atomic_fetch_add(&sh->writer_ops, 1, __ATOMIC_RELAXED);
	}
	alarm(0);
	shmc_close(c);
	return MP_OK;
}

/* A read section holding two references, checked again before its end. */
static void reader_section(shmc_t *c, struct shared *sh, uint64_t *rng)
{
	char k[2][32];
	const void *v[2];
	size_t vl[2];
	uint32_t fl[2];
	int ok[2];
	int rc = shmc_read_begin(c);
	if (rc) {
		child_error(sh, "read_begin", "", rc);
		return;
	}
	for (int i = 0; i < 2; i++) {
		size_t kl = mp_key(k[i], sizeof(k[i]), "t", th_rand(rng) % sh->nkeys);
		rc = shmc_get_ref(c, k[i], kl, &v[i], &vl[i], &fl[i]);
		ok[i] = rc == 0;
		if (rc && rc != SHMC_ENOTFOUND)
			child_error(sh, "get_ref", k[i], rc);
		if (ok[i] && !(th_value_ok(v[i], vl[i], k[i], kl) &&
		               fl[i] == vl[i]))
			bad_read(sh, "bad reference to", k[i]);
	}
	for (int i = 0; i < 2; i++)
		if (ok[i] && !th_value_ok(v[i], vl[i], k[i], strlen(k[i])))
			bad_read(sh, "reference changed inside its section:",
			         k[i]);
	shmc_read_end(c);
}

static int reader(void *arg)
{
	struct shared *sh = arg;
	alarm(30);
	shmc_t *c = NULL;
	int rc = shmc_open(NAME, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_err_name(rc));
	uint64_t rng = mp_seed(43);
	char key[32];
	__atomic_fetch_add(&sh->started, 1, __ATOMIC_RELEASE);
	for (uint64_t i = 0; !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE);
	     i++) {
		if (i % 64 == 0)
			alarm(10); /* gets never wait: 64 in 10 s or it hung */
		if (i % 8 == 7) {
			reader_section(c, sh, &rng);
		} else {
			mp_key(key, sizeof(key), "t", th_rand(&rng) % sh->nkeys);
			rc = get_checked(c, key);
			if (rc == -1)
				bad_read(sh, "bad read of", key);
			else if (rc < -1)
				child_error(sh, "get", key, rc);
		}
		__atomic_fetch_add(&sh->reader_ops, 1, __ATOMIC_RELAXED);
	}
	alarm(0);
	shmc_close(c);
	return MP_OK;
}

struct cancel {
	struct shared *sh;
	uint32_t calls;
	uint32_t after;
};

static int cancelling(const struct shmc_resize_progress *p, void *arg)
{
	struct cancel *cn = arg;
	__atomic_store_n(&cn->sh->rz_progress, ++cn->calls, __ATOMIC_RELAXED);
	__atomic_store_n(&cn->sh->rz_committed, p->committed,
	                 __ATOMIC_RELAXED);
	return cn->calls > cn->after;
}

static uint64_t pick(uint64_t lo, uint64_t hi, uint64_t *rng)
{
	return lo + (th_rand(rng) % ((hi - lo) / SEG + 1)) * SEG;
}

static int resizer(void *arg)
{
	struct shared *sh = arg;
	alarm(60); /* the whole resizer; a hang shows as MP_HANG */
	shmc_t *c = NULL;
	int rc = shmc_open(NAME, 0, &c);
	MP_CHECK(rc == 0, MP_SETUP, "open: %s", shmc_err_name(rc));
	uint64_t rng = mp_seed(47);
	__atomic_fetch_add(&sh->started, 1, __ATOMIC_RELEASE);
	int n = 1 + (int)(th_rand(&rng) % 2);
	for (int k = 0; k < n; k++) {
		struct shmc_stats st;
		MP_CHECK(shmc_stats(c, &st) == 0, MP_FAIL, "stats");
		/* Mostly to the other half of the range, so every call
		 * moves a lot of memory; a quarter anywhere. */
		uint64_t mid = sh->lo + (sh->hi - sh->lo) / 2, to;
		if (th_rand(&rng) % 4 == 0)
			to = pick(sh->lo, sh->hi, &rng);
		else if (st.memory > mid)
			to = pick(sh->lo, mid, &rng);
		else
			to = pick(mid, sh->hi, &rng);
		struct cancel cn = {.sh = sh, .after = UINT32_MAX};
		bool cancels = th_rand(&rng) % 3 == 0;
		if (cancels)
			cn.after = (uint32_t)(th_rand(&rng) % 6);
		sh->rz_from = st.memory;
		sh->rz_target = to;
		sh->rz_cancel_after = cancels ? (int)cn.after : -1;
		sh->rz_log[k].from = st.memory;
		sh->rz_log[k].to = to;
		sh->rz_log[k].cancel_after = sh->rz_cancel_after;
		sh->rz_log[k].rc = 1;
		sh->rz_progress = 0;
		sh->rz_committed = 0;
		__atomic_fetch_add(&sh->rz_calls, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&sh->rz_in_call, 1, __ATOMIC_RELEASE);
		rc = shmc_resize(c, to, 0, cancels ? cancelling : NULL, &cn);
		__atomic_store_n(&sh->rz_in_call, 0, __ATOMIC_RELEASE);
		sh->rz_rc = rc;
		sh->rz_log[k].rc = rc;
		if (rc == 0)
			sh->rz_completed++;
		else if (rc == -ECANCELED && cancels)
			sh->rz_cancelled++;
		else if (rc == SHMC_ESTALLED)
			sh->rz_estalled++; /* allowed: the shrink is pending */
		else {
			struct shmc_info in = {0};
			shmc_info(c, &in);
			shmc_stats(c, &st);
			MP_CHECK(0, MP_FAIL,
			         "resize %llu -> %llu KiB (cancel after %d): "
			         "%s (min_memory %llu KiB, max_memory %llu KiB; "
			         "now budget %llu KiB, committed %llu KiB)",
			         (unsigned long long)(sh->rz_from >> 10),
			         (unsigned long long)(to >> 10),
			         sh->rz_cancel_after, shmc_err_name(rc),
			         (unsigned long long)(in.min_memory >> 10),
			         (unsigned long long)(in.max_memory >> 10),
			         (unsigned long long)(st.memory >> 10),
			         (unsigned long long)(st.committed_bytes >> 10));
		}
	}
	alarm(0);
	shmc_close(c);
	return MP_OK;
}

/* ---- the parent ------------------------------------------------------------ */

struct tally {
	int rounds, failed_rounds, reported, recreated;
	int over_budget, memory_wrong, resize_failed, open_failed;
	int check_dirty, keys_bad, child_failed;
	uint64_t worst_excess;
	int worst_round;
	uint64_t killed_resizers, killed_in_call, killed_writers;
	uint64_t hits, reader_ops, writer_ops;
};

struct check_ctx {
	int lines, quiet;
};

/* shmc_check's lines, the first 8 of a round (while rounds are still
 * described in full). */
static void check_report(const char *problem, void *arg)
{
	struct check_ctx *cc = arg;
	if (!cc->quiet && cc->lines++ < 8)
		fprintf(stderr, "    check: %s\n", problem);
}

/* Sleeps until the monotonic time t. */
static void sleep_until(double t)
{
	double now = mp_now();
	if (t > now)
		mp_sleep_ms((t - now) * 1000.0);
}

/* Describes one failed round: what happened to whom, and the numbers. */
static void describe(struct tally *ty, int r, const char *what,
                     const char *story)
{
	if (ty->reported++ < MAX_REPORTS)
		fprintf(stderr, "[%s round %d] %s\n  round: %s\n", label, r, what,
		        story);
}

/* (Re)creates the cache at the middle of the range, full of values.
 * -EOPNOTSUPP when the file system cannot take it. */
static int make_cache(struct shared *sh)
{
	shmc_destroy(NAME);
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = (sh->lo + sh->hi) / 2 / SEG * SEG;
	o.max_memory = sh->hi;
	o.segment_size = SEG;
	o.max_readers = 128;
	shmc_t *c = NULL;
	int rc = shmc_create(NAME, &o, &c);
	if (rc == -EOPNOTSUPP)
		return rc;
	if (rc)
		fail_msg("%s: shmc_create in %s: %s", label, dir,
		         shmc_err_name(rc));
	struct shmc_info info;
	assert_int_equal(shmc_info(c, &info), 0);
	assert_int_equal(info.segment_size, SEG);
	assert_true(info.min_memory <= sh->lo);
	assert_true(info.max_memory >= sh->hi);
	char key[32];
	for (uint32_t i = 0; i < sh->nkeys; i++) {
		mp_key(key, sizeof(key), "t", i);
		rc = set_value(c, key, i, VMIN + (i * 7919u) % (VMAX - VMIN));
		if (rc)
			fail_msg("%s: prefill %s: %s", label, key,
			         shmc_err_name(rc));
	}
	assert_int_equal(shmc_close(c), 0);
	return 0;
}

static void run_torture(const char *base, const char *fs_label)
{
	label = fs_label;
	cur_round = -1;
	struct statfs sfs;
	if (statfs(base, &sfs) != 0) {
		printf("SKIP %s: statfs %s: %s\n", label, base, strerror(errno));
		skip();
	}
	bool on_tmpfs = sfs.f_type == TMPFS_MAGIC;
	if (on_tmpfs != (strcmp(fs_label, "tmpfs") == 0)) {
		printf("SKIP %s: %s is %son tmpfs here\n", label, base,
		       on_tmpfs ? "" : "not ");
		skip();
	}
	if (make_dir(base) != 0)
		skip();
	signal(SIGALRM, on_alarm);
	alarm(ROUND_ALARM);

	struct shared *sh = mp_shared(sizeof(*sh));
	sh->lo = (uint64_t)mp_env_long("SHMC_TORTURE_MIB_LO", 8) * MiB;
	sh->hi = (uint64_t)mp_env_long("SHMC_TORTURE_MIB_HI", 24) * MiB;
	assert_true(sh->lo < sh->hi);
	/* Live values of about two thirds of the largest budget: shrinks
	 * must evict, grows are filled again. */
	sh->nkeys = (uint32_t)(sh->hi / MiB * 160);
	if (make_cache(sh) == -EOPNOTSUPP) {
		printf("SKIP %s: fallocate not supported under %s\n", label,
		       dir);
		skip();
	}

	int rounds = (int)mp_env_long("SHMC_TORTURE_ROUNDS", 40);
	uint64_t seed = mp_seed(53), rng = seed;
	struct tally ty = {0};
	double t_start = mp_now();
	for (int r = 0; r < rounds; r++) {
		cur_round = r;
		alarm(ROUND_ALARM);
		/* ---- the round ---- */
		int nw = 2 + (int)(th_rand(&rng) % 2);
		bool kill_rz = th_rand(&rng) % 2;
		double rz_kill_ms = (double)(th_rand(&rng) % 20001) / 1000.0;
		double w_kill_ms[3];
		bool w_kill[3];
		for (int i = 0; i < nw; i++) {
			w_kill[i] = th_rand(&rng) % 3 != 0;
			w_kill_ms[i] = (double)(th_rand(&rng) % 30001) / 1000.0;
		}
		__atomic_store_n(&sh->stop, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&sh->started, 0, __ATOMIC_RELEASE);
		sh->rz_calls = 0;
		memset(sh->rz_log, 0, sizeof(sh->rz_log));
		sh->rz_in_call = 0;
		sh->rz_rc = 1;
		sh->rz_target = 0;
		pid_t w[3], rd, rz;
		for (int i = 0; i < nw; i++)
			w[i] = mp_spawn(writer, sh);
		rd = mp_spawn(reader, sh);
		rz = mp_spawn(resizer, sh);
		double until = mp_now() + 20;
		while (__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) < nw + 2 &&
		       mp_now() < until)
			mp_sleep_ms(0.1);
		if (__atomic_load_n(&sh->started, __ATOMIC_ACQUIRE) < nw + 2)
			fail_msg("%s round %d: only %d of %d children opened the "
			         "cache within 20 s",
			         label, r, sh->started, nw + 2);
		double t0 = mp_now();
		/* Kills in time order: the resizer and the writers. */
		bool done[4] = {false, false, false, false};
		char story[768];
		int sl = snprintf(story, sizeof(story), "%d writers;", nw);
		for (;;) {
			int next = -1;
			double tn = 0;
			for (int i = 0; i <= nw; i++) {
				bool want = i < nw ? w_kill[i] : kill_rz;
				double t = i < nw ? w_kill_ms[i] : rz_kill_ms;
				if (want && !done[i] && (next < 0 || t < tn)) {
					next = i;
					tn = t;
				}
			}
			if (next < 0)
				break;
			sleep_until(t0 + tn / 1000.0);
			done[next] = true;
			if (next < nw) {
				mp_kill(w[next]);
				ty.killed_writers++;
				sl += snprintf(story + sl, sizeof(story) - (size_t)sl,
				               " writer %d killed at %.1f ms;", next,
				               tn);
			} else {
				int in_call = __atomic_load_n(&sh->rz_in_call,
				                              __ATOMIC_ACQUIRE);
				mp_kill(rz);
				ty.killed_resizers++;
				ty.killed_in_call += in_call;
				sl += snprintf(story + sl, sizeof(story) - (size_t)sl,
				               " resizer killed at %.1f ms %s call %d "
				               "(%llu -> %llu KiB, cancel after %d, "
				               "%u progress calls);",
				               tn, in_call ? "inside" : "after",
				               sh->rz_calls,
				               (unsigned long long)(sh->rz_from >> 10),
				               (unsigned long long)(sh->rz_target >>
				                                    10),
				               sh->rz_cancel_after, sh->rz_progress);
			}
		}
		bool child_bad = false;
		int st;
		char sb[64];
		if (!kill_rz) {
			if (mp_wait(rz, 60, &st) != 0 || !mp_exited_ok(st)) {
				fprintf(stderr, "[%s round %d] resizer: %s\n", label,
				        r, mp_status_str(st, sb, sizeof(sb)));
				child_bad = true;
			}
		}
		for (int k = 0; k < sh->rz_calls && k < 2; k++)
			sl += snprintf(story + sl, sizeof(story) - (size_t)sl,
			               " resize call %d: %llu -> %llu KiB, cancel "
			               "after %d: %s;",
			               k + 1,
			               (unsigned long long)(sh->rz_log[k].from >> 10),
			               (unsigned long long)(sh->rz_log[k].to >> 10),
			               sh->rz_log[k].cancel_after,
			               sh->rz_log[k].rc == 1
			                   ? "killed inside"
			                   : shmc_err_name(sh->rz_log[k].rc));
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
		for (int i = 0; i < nw; i++)
			if (!w_kill[i] && (mp_wait(w[i], 30, &st) != 0 ||
			                   !mp_exited_ok(st))) {
				fprintf(stderr, "[%s round %d] writer %d: %s\n",
				        label, r, i, mp_status_str(st, sb, sizeof(sb)));
				child_bad = true;
			}
		if (mp_wait(rd, 30, &st) != 0 || !mp_exited_ok(st)) {
			fprintf(stderr, "[%s round %d] reader: %s\n", label, r,
			        mp_status_str(st, sb, sizeof(sb)));
			child_bad = true;
		}
		mp_kill_all(); /* nothing should be left; be sure */

		/* ---- every child is dead: open, one resize, check ---- */
		uint64_t last_target = sh->rz_target;
		uint64_t to = last_target && th_rand(&rng) % 2
		                  ? last_target
		                  : pick(sh->lo, sh->hi, &rng);
		uint64_t before = allocated();
		sl += snprintf(story + sl, sizeof(story) - (size_t)sl,
		               " then open and resize to %llu KiB (%s)",
		               (unsigned long long)(to >> 10),
		               to == last_target ? "the resizer's last target"
		                                 : "a fresh target");
		bool failed = child_bad;
		char what[1024];
		int wl = 0;
		what[0] = 0;
		if (child_bad) {
			ty.child_failed++;
			wl += snprintf(what + wl, sizeof(what) - (size_t)wl,
			               "a child failed (above); ");
		}
		shmc_t *c = NULL;
		int rc = shmc_open(NAME, 0, &c);
		if (rc) {
			ty.open_failed++;
			ty.failed_rounds++;
			snprintf(what + wl, sizeof(what) - (size_t)wl,
			         "shmc_open after the kills: %s", shmc_err_name(rc));
			describe(&ty, r, what, story);
			break; /* nothing more to test on this cache */
		}
		struct shmc_stats s0, s1;
		shmc_stats(c, &s0);
		uint64_t after_open = allocated();
		rc = shmc_resize(c, to, 0, NULL, NULL);
		shmc_stats(c, &s1);
		uint64_t alloc = allocated();
		if (rc) {
			ty.resize_failed++;
			failed = true;
			wl += snprintf(what + wl, sizeof(what) - (size_t)wl,
			               "(resize) shmc_resize(%llu KiB): %s; ",
			               (unsigned long long)(to >> 10),
			               shmc_err_name(rc));
		}
		if (rc == 0 && s1.memory != to) {
			ty.memory_wrong++;
			failed = true;
			wl += snprintf(what + wl, sizeof(what) - (size_t)wl,
			               "(memory) budget %llu after a resize to "
			               "%llu; ",
			               (unsigned long long)s1.memory,
			               (unsigned long long)to);
		}
		if (alloc > s1.memory + SEG) {
			uint64_t ex = alloc - s1.memory;
			ty.over_budget++;
			failed = true;
			if (ex > ty.worst_excess) {
				ty.worst_excess = ex;
				ty.worst_round = r;
			}
			wl += snprintf(
			    what + wl, sizeof(what) - (size_t)wl,
			    "(a) allocated %llu KiB > budget %llu KiB + one "
			    "segment: %llu KiB (%llu segments) over; library "
			    "committed %llu KiB (%s the budget); allocated "
			    "before open %llu KiB, after open %llu KiB "
			    "(budget then %llu KiB, committed %llu KiB); "
			    "segments total %u free %u; ",
			    (unsigned long long)(alloc >> 10),
			    (unsigned long long)(s1.memory >> 10),
			    (unsigned long long)(ex >> 10),
			    (unsigned long long)(ex / SEG),
			    (unsigned long long)(s1.committed_bytes >> 10),
			    s1.committed_bytes > s1.memory ? "above" : "within",
			    (unsigned long long)(before >> 10),
			    (unsigned long long)(after_open >> 10),
			    (unsigned long long)(s0.memory >> 10),
			    (unsigned long long)(s0.committed_bytes >> 10),
			    s1.segments_total, s1.segments_free);
		}
		struct check_ctx cc = {.quiet = ty.reported >= MAX_REPORTS};
		int problems = shmc_check(c, check_report, &cc);
		if (problems) {
			ty.check_dirty++;
			failed = true;
			wl += snprintf(what + wl, sizeof(what) - (size_t)wl,
			               "(b) shmc_check: %d problems (the first "
			               "printed above); ",
			               problems);
		}
		uint32_t bad = 0, errs = 0, hits = 0;
		int first_err = 0;
		char first_bad[32] = "";
		char key[32];
		for (uint32_t i = 0; i < sh->nkeys; i++) {
			mp_key(key, sizeof(key), "t", i);
			int g = get_checked(c, key);
			if (g == 1)
				hits++;
			else if (g == -1) {
				if (!bad++)
					snprintf(first_bad, sizeof(first_bad), "%s",
					         key);
			} else if (g < -1) {
				if (!errs++)
					first_err = g;
			}
		}
		ty.hits += hits;
		if (bad || errs) {
			ty.keys_bad++;
			failed = true;
			wl += snprintf(what + wl, sizeof(what) - (size_t)wl,
			               "(c) keys read back: %u wrong (first %s), "
			               "%u errors (first %s), %u correct; ",
			               bad, first_bad, errs,
			               errs ? shmc_err_name(first_err) : "-", hits);
		}
		assert_int_equal(shmc_close(c), 0);
		ty.rounds++;
		if (sh->bad_reads || bad) {
			ty.failed_rounds++;
			describe(&ty, r, what, story);
			break; /* a wrong value: the rest would only repeat it */
		}
		if (failed) {
			ty.failed_rounds++;
			describe(&ty, r, what, story);
			/* A fresh cache, so that each failure counted is one
			 * round's own, not the last one's left over. */
			make_cache(sh);
			ty.recreated++;
		}
	}
	alarm(0);
	double secs = mp_now() - t_start;
	printf("%s: %d rounds in %.1f s (%.0f ms each; seed %#llx): %llu "
	       "writers and %llu resizers killed (%llu inside a resize call); "
	       "resizer calls completed %llu, cancelled %llu, stalled %llu; "
	       "%llu writer ops, %llu reader ops, %llu stalled sets; "
	       "%llu keys read back intact\n",
	       label, ty.rounds, secs, ty.rounds ? secs * 1000 / ty.rounds : 0.0,
	       (unsigned long long)seed,
	       (unsigned long long)ty.killed_writers,
	       (unsigned long long)ty.killed_resizers,
	       (unsigned long long)ty.killed_in_call,
	       (unsigned long long)sh->rz_completed,
	       (unsigned long long)sh->rz_cancelled,
	       (unsigned long long)sh->rz_estalled,
	       (unsigned long long)sh->writer_ops,
	       (unsigned long long)sh->reader_ops,
	       (unsigned long long)sh->stalled, (unsigned long long)ty.hits);
	if (ty.failed_rounds)
		printf("%s: %d of %d rounds FAILED: (a) over budget %d (worst "
		       "%llu KiB over, round %d); budget not the target %d; "
		       "final resize failed %d; open failed %d; (b) check "
		       "dirty %d; (c) keys wrong %d; a child failed %d (the "
		       "cache was made afresh after each failed round)\n",
		       label, ty.failed_rounds, ty.rounds, ty.over_budget,
		       (unsigned long long)(ty.worst_excess >> 10),
		       ty.worst_round, ty.memory_wrong, ty.resize_failed,
		       ty.open_failed, ty.check_dirty, ty.keys_bad,
		       ty.child_failed);
	if (sh->bad_reads || sh->errors)
		printf("%s: children saw %llu bad reads and %llu errors; the "
		       "first: %s\n",
		       label, (unsigned long long)sh->bad_reads,
		       (unsigned long long)sh->errors, sh->msg);
	uint64_t bad_reads = sh->bad_reads, errors = sh->errors;
	int failed_rounds = ty.failed_rounds;
	munmap(sh, sizeof(*sh));
	assert_int_equal(bad_reads, 0);
	assert_int_equal(errors, 0);
	assert_int_equal(failed_rounds, 0);
}

static void test_torture_resize_tmpfs(void **state)
{
	(void)state;
	run_torture("/dev/shm", "tmpfs");
}

static void test_torture_resize_disk(void **state)
{
	(void)state;
	run_torture("/var/tmp", "disk");
}

int main(void)
{
	atexit(remove_dir);
	/* SHMC_MP_FILTER=*disk* runs only the matching test. */
	if (getenv("SHMC_MP_FILTER"))
		cmocka_set_test_filter(getenv("SHMC_MP_FILTER"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_torture_resize_tmpfs, teardown),
	    cmocka_unit_test_teardown(test_torture_resize_disk, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
