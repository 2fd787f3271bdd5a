/*
 * epoch.c - reader slots, liveness and grace periods across processes.
 *
 * WHAT
 * An epoch-based RCU that lives in the segment, because liburcu's grace
 * periods only see the threads of one process.  Each thread that touches
 * the cache owns a reader slot.  Entering a read section stores the global
 * epoch in the slot; leaving stores 0.  A writer that has unpublished some
 * memory bumps the global epoch to T and waits until every slot reads 0 or
 * an epoch >= T: then no reader can still hold a reference to that memory.
 *
 * WHY MEMBARRIER
 * The reader's store to its slot must be ordered before its loads of the
 * index (store->load, which x86 reorders).  A full fence costs ~20-30 ns on
 * every read.  With MEMBARRIER_CMD_GLOBAL_EXPEDITED the writer, on its rare
 * slow path, makes every running thread of every registered process execute
 * a full barrier; readers in registered processes then need only a compiler
 * barrier.  (Same argument as liburcu's urcu-memb flavour and the kernel's
 * Documentation of membarrier(2).)  That only holds if every *writer* can
 * issue the membarrier.  So each segment records, in mb_mode, whether
 * fence-free readers ever used it and whether a process that cannot issue
 * GLOBAL_EXPEDITED (old kernel, seccomp) attached; the first to attach
 * decides with a CAS: after a fence-free reader, a process without
 * membarrier is refused (-ENOTSUP); after such a process, every reader
 * fences.  SHMCACHE_MEMBARRIER=0 makes a process's readers fence.
 *
 * LIVENESS
 * A slot's robust mutex is held by its owner thread for the slot's whole
 * life.  When the thread or its process dies, the kernel walks the robust
 * list and marks the mutex owner-dead; the next trylock by anyone returns
 * EOWNERDEAD and that caller reclaims the slot: clears its epoch first (so
 * a grace period waiting on it can finish), lets lib/ release the dead
 * thread's bucket lock and open segment, and frees it.  No pid is guessed
 * and no pid reuse can fool it.
 *
 * INVARIANTS
 *   - slot.epoch != 0 only while its owner is inside a read section, or
 *     between the owner's death and the reclaim.
 *   - The global epoch only grows and is never 0.
 *   - state == USED iff the slot's mutex is held (or its holder died).
 *
 * PROGRESS
 * Readers never wait.  A grace period waits for readers that are alive and
 * inside a section, for at most its timeout; then it returns SHMC_ESTALLED
 * and records the stall in the slot for shmc_readers() to show.
 */
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shmcache.h"
#include "shm.h"

static bool mb_fast;   /* registered: our readers may skip the fence */
static bool mb_global; /* this process can issue GLOBAL_EXPEDITED */
static pthread_once_t mb_once = PTHREAD_ONCE_INIT;

static int membarrier(int cmd, unsigned flags)
{
	return (int)syscall(__NR_membarrier, cmd, flags, 0);
}

static void mb_setup(void)
{
	int cmds = membarrier(MEMBARRIER_CMD_QUERY, 0);
	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
		return;
	mb_global = true;
	const char *env = getenv("SHMCACHE_MEMBARRIER");
	if (env && strcmp(env, "0") == 0)
		return;
	if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0) == 0)
		mb_fast = true;
}

int shmc__mb_attach(struct shmc__map *m, bool *fast)
{
	pthread_once(&mb_once, mb_setup);
	uint32_t *w = &m->hdr->mb_mode;
	*fast = false;
	for (;;) {
		uint32_t old = shmc__load(w, __ATOMIC_ACQUIRE), want;
		if (mb_global) {
			/* We can make fence-free readers safe as a writer. */
			if ((old & SHMC__MB_NOMB) || !mb_fast)
				return 0; /* fence */
			if (old & SHMC__MB_FENCEFREE) {
				*fast = true;
				return 0;
			}
			want = old | SHMC__MB_FENCEFREE;
		} else {
			if (old & SHMC__MB_FENCEFREE)
				return -ENOTSUP;
			if (old & SHMC__MB_NOMB)
				return 0;
			want = old | SHMC__MB_NOMB;
		}
		/* Full barrier: the mode is settled before any of our
		 * reads or writes of the cache. */
		if (uatomic_cmpxchg(w, old, want) == old) {
			*fast = mb_global;
			return 0;
		}
	}
}

uint64_t shmc__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int shmc__mutex_init(pthread_mutex_t *mu)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (!rc)
		rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutex_init(mu, &a);
	pthread_mutexattr_destroy(&a);
	return -rc;
}

#ifdef __GLIBC__
static pthread_mutex_t mutex_ref; /* made as shmc__mutex_init makes them */
static int mutex_ref_kind;
static pthread_once_t mutex_ref_once = PTHREAD_ONCE_INIT;

static void mutex_ref_init(void)
{
	if (shmc__mutex_init(&mutex_ref) == 0)
		mutex_ref_kind = mutex_ref.__data.__kind;
	else
		mutex_ref_kind = -1;
}
#endif

bool shmc__mutex_ok(pthread_mutex_t *mu)
{
#ifdef __GLIBC__
	/*
	 * glibc reads the kind field to pick a code path before checking
	 * anything, and one path is not safe on garbage: with a lock-elision
	 * bit set it runs Intel TSX instructions (XBEGIN), which raise SIGILL
	 * on a CPU without them.  Every mutex we share was made by
	 * shmc__mutex_init, so its kind is the one a reference mutex made the
	 * same way has; anything else is garbage.  (Read once: another
	 * process may be writing it, and then the lock fails anyway.)
	 */
	pthread_once(&mutex_ref_once, mutex_ref_init);
	int kind = __atomic_load_n(&mu->__data.__kind, __ATOMIC_RELAXED);
	return mutex_ref_kind == -1 || kind == mutex_ref_kind;
#else
	(void)mu;
	return true;
#endif
}

/*
 * One timed wait of at most slice_ns.  Classifies the outcome: 0 taken,
 * 1 taken from a dead owner (made consistent), -ETIMEDOUT, or
 * SHMC_ECORRUPT for anything else: EINVAL (a type or kind no mutex we
 * made can have), ENOTRECOVERABLE (a dead owner's lock released without
 * being made consistent), EDEADLK or EAGAIN (an owner or count field that
 * names us).  The mutex memory is then garbage; it is never "fixed" here,
 * since another process may be using it in a way we cannot see.
 */
static int lock_slice(pthread_mutex_t *mu, uint64_t slice_ns)
{
	if (!shmc__mutex_ok(mu))
		return SHMC_ECORRUPT;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + slice_ns;
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec = (long)(ns % 1000000000u);
	int rc = pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &ts);
	if (rc == 0)
		return 0;
	if (rc == ETIMEDOUT)
		return -ETIMEDOUT;
	if (rc == EOWNERDEAD) {
		/* Fails only if we do not hold it, which EOWNERDEAD says we
		 * do; on failure the next locker gets ENOTRECOVERABLE, which
		 * is reported as corrupt. */
		if (pthread_mutex_consistent(mu) != 0) {
			pthread_mutex_unlock(mu);
			return SHMC_ECORRUPT;
		}
		return 1;
	}
	return SHMC_ECORRUPT;
}

/*
 * A lock whose owner thread no longer exists and was never marked dead by
 * the kernel (its robust list was lost, or the lock word is garbage that
 * names a thread id): every locker would wait forever.  After the same
 * locked word has been seen for SHMC__OWNER_GONE_NS, and only if no
 * thread has that id (kill(tid, 0) says ESRCH), do what the kernel does
 * for a thread that dies holding a robust futex (handle_futex_death in
 * kernel/futex/core.c): replace the word, by CAS from the exact value
 * seen, with FUTEX_OWNER_DIED (keeping FUTEX_WAITERS).  The next locker
 * then gets EOWNERDEAD and repairs, as after any death.  A live holder,
 * even a stopped one, is never touched: its thread exists.  (Threads in
 * another pid namespace are not visible here: attach such processes only
 * if their lock holds stay under the 2 s.)
 */
#define SHMC__OWNER_GONE_NS (2ull * 1000 * 1000 * 1000)

void shmc__reap_vanished(pthread_mutex_t *mu, struct shmc__owner_watch *w)
{
#ifdef __GLIBC__
	unsigned v = (unsigned)__atomic_load_n(&mu->__data.__lock,
	                                       __ATOMIC_RELAXED);
	uint64_t now = shmc__now_ns();
	/* The watch's fields are relaxed atomics: a handle's watch is
	 * shared by its threads (shmc__reap_vanished in shm.h).  A race
	 * between two of them only restarts the 2 s. */
	uint64_t since = __atomic_load_n(&w->since, __ATOMIC_RELAXED);
	if (v != __atomic_load_n(&w->word, __ATOMIC_RELAXED) || !since) {
		__atomic_store_n(&w->word, v, __ATOMIC_RELAXED);
		__atomic_store_n(&w->since, now, __ATOMIC_RELAXED);
		return;
	}
	pid_t tid = (pid_t)(v & FUTEX_TID_MASK);
	if (now - since < SHMC__OWNER_GONE_NS || tid <= 0 ||
	    (v & FUTEX_OWNER_DIED))
		return;
	if (kill(tid, 0) == 0 || errno != ESRCH)
		return;
	unsigned nv = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
	/* Full barrier (a locked CAS), pairs with the lock's own CAS in
	 * glibc: only the exact word that named the vanished thread goes. */
	__atomic_compare_exchange_n((unsigned *)&mu->__data.__lock, &v, nv,
	                            false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
	__atomic_store_n(&w->since, 0, __ATOMIC_RELAXED);
#else
	(void)mu;
	(void)w;
#endif
}

int shmc__lock(pthread_mutex_t *mu)
{
	/*
	 * A timed wait in 5 ms slices, not pthread_mutex_lock: with robust
	 * process-shared mutexes a wake-up can be lost for good.  The waiter
	 * woken by an unlock is SIGKILLed before it takes the lock; the next
	 * locker takes it on the fast path and clears the waiters bit; the
	 * other sleepers are never woken (seen with glibc 2.36 on Linux 6.18
	 * with a 40-line program, no shmcache involved).  Timing out makes
	 * every sleeper look again.
	 */
	int rc;
	struct shmc__owner_watch w = {0, 0};
	while ((rc = lock_slice(mu, 5 * 1000 * 1000)) == -ETIMEDOUT)
		shmc__reap_vanished(mu, &w);
	return rc;
}

int shmc__lock_timed(pthread_mutex_t *mu, uint64_t timeout_ns)
{
	/* The same 5 ms slices as shmc__lock, for the same lost wake-ups,
	 * until the deadline; one try even when timeout_ns is 0. */
	uint64_t end = shmc__now_ns() + timeout_ns;
	for (;;) {
		uint64_t now = shmc__now_ns();
		uint64_t left = end > now ? end - now : 0;
		int rc = lock_slice(mu, left < 5000000u ? left : 5000000u);
		if (rc != -ETIMEDOUT || shmc__now_ns() >= end)
			return rc;
	}
}

void shmc__unlock(pthread_mutex_t *mu)
{
	pthread_mutex_unlock(mu);
}

/* Caller holds s->mutex, which a dead owner left behind. */
static void reclaim(struct shmc__map *m, uint32_t i, shmc__dead_fn dead,
                    bool log_locked, void *arg)
{
	struct shmc__slot *s = shmc__slot_at(m, i);
	/* First let grace periods go on: the dead hold no references.
	 * Release pairs with the acquire load in shmc__synchronize. */
	shmc__store(&s->epoch, 0, __ATOMIC_RELEASE);
	if (dead)
		dead(m, i, log_locked, arg);
	s->pid = 0;
	s->tid = 0;
	s->lock_intent = 0;
	s->stall_since = 0;
	shmc__store(&s->state, SHMC__SLOT_FREE, __ATOMIC_RELEASE);
	pthread_mutex_consistent(&s->mutex);
}

static void take(struct shmc__map *m, uint32_t i)
{
	struct shmc__slot *s = shmc__slot_at(m, i);
	s->pid = (int32_t)getpid();
	s->tid = (int32_t)gettid();
	s->generation++;
	s->lock_intent = 0;
	s->stall_since = 0;
	shmc__store(&s->epoch, 0, __ATOMIC_RELAXED);
	/* Release: identity is visible to whoever sees the slot in use. */
	shmc__store(&s->state, SHMC__SLOT_USED, __ATOMIC_RELEASE);
}

int shmc__slot_claim(struct shmc__map *m, uint32_t *slot, shmc__dead_fn dead,
                     void *arg)
{
	uint32_t n = m->max_readers;
	for (uint32_t i = 0; i < n; i++) {
		struct shmc__slot *s = shmc__slot_at(m, i);
		if (!shmc__mutex_ok(&s->mutex))
			continue; /* a garbage slot is never claimed */
		int rc = pthread_mutex_trylock(&s->mutex);
		if (rc == EOWNERDEAD ||
		    (rc == 0 && shmc__load(&s->state, __ATOMIC_ACQUIRE) !=
		                    SHMC__SLOT_FREE))
			reclaim(m, i, dead, false, arg);
		else if (rc != 0)
			continue;
		take(m, i);
		*slot = i;
		return 0;
	}
	return SHMC_ENOSLOT;
}

void shmc__slot_release(struct shmc__map *m, uint32_t i)
{
	struct shmc__slot *s = shmc__slot_at(m, i);
	shmc__store(&s->epoch, 0, __ATOMIC_RELEASE);
	s->pid = 0;
	s->tid = 0;
	s->lock_intent = 0;
	shmc__store(&s->state, SHMC__SLOT_FREE, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->mutex);
}

int shmc__slot_probe(struct shmc__map *m, uint32_t i, shmc__dead_fn dead,
                     bool log_locked, void *arg)
{
	struct shmc__slot *s = shmc__slot_at(m, i);
	/* A garbage mutex: treated as alive (a grace period then waits for
	 * it only up to its timeout; check reports it). */
	if (!shmc__mutex_ok(&s->mutex))
		return 1;
	int rc = pthread_mutex_trylock(&s->mutex);
	if (rc == EBUSY)
		return 1;
	if (rc == EOWNERDEAD ||
	    (rc == 0 &&
	     shmc__load(&s->state, __ATOMIC_ACQUIRE) != SHMC__SLOT_FREE))
		reclaim(m, i, dead, log_locked, arg);
	if (rc == 0 || rc == EOWNERDEAD)
		pthread_mutex_unlock(&s->mutex);
	return 0;
}

uint64_t shmc__epoch_bump(struct shmc__map *m)
{
	/* uatomic_add_return is a full barrier: the caller's unpublishing
	 * stores are ordered before our later loads of slot epochs.  Pairs
	 * with the fence (or membarrier) in shmc__read_enter. */
	uint64_t t = uatomic_add_return(&m->hdr->epoch, 1);
	if (mb_global)
		membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0);
	return t;
}

/* 1 when slot i holds memory of epoch t back. */
static bool holds(struct shmc__map *m, uint32_t i, uint64_t t)
{
	/* Acquire: pairs with the release in shmc__read_exit, so the reader's
	 * loads of what we are about to reuse are complete. */
	uint64_t e = shmc__load(&shmc__slot_at(m, i)->epoch, __ATOMIC_ACQUIRE);
	return e != 0 && e < t;
}

int shmc__epoch_safe(struct shmc__map *m, uint64_t t, uint32_t self,
                     shmc__dead_fn dead, bool log_locked, void *arg)
{
	uint32_t n = m->max_readers;
	for (uint32_t i = 0; i < n; i++) {
		if (!holds(m, i, t))
			continue;
		if (i == self ||
		    shmc__slot_probe(m, i, dead, log_locked, arg) != 0)
			return 0;
	}
	return 1;
}

int shmc__synchronize(struct shmc__map *m, uint32_t self, uint64_t timeout_ns,
                      shmc__dead_fn dead, bool log_locked, void *arg)
{
	return shmc__epoch_wait(m, shmc__epoch_bump(m), self, timeout_ns, dead,
	                        log_locked, arg);
}

int shmc__epoch_wait(struct shmc__map *m, uint64_t t, uint32_t self,
                     uint64_t timeout_ns, shmc__dead_fn dead, bool log_locked,
                     void *arg)
{
	uint64_t start = 0;
	uint32_t n = m->max_readers;
	for (uint32_t i = 0; i < n; i++) {
		for (unsigned spin = 0; holds(m, i, t); spin++) {
			if (i == self)
				return SHMC_EBUSY;
			if (spin < 64) {
				caa_cpu_relax();
				continue;
			}
			if (shmc__slot_probe(m, i, dead, log_locked, arg) == 0)
				break; /* it was dead, now reclaimed */
			uint64_t now = shmc__now_ns();
			if (!start)
				start = now;
			/* A reader already known to be stalled in this very
			 * section (same epoch) for longer than the timeout is
			 * not waited for again by every writer; one merely
			 * preempted gets the whole timeout. */
			struct shmc__slot *s = shmc__slot_at(m, i);
			uint64_t e = shmc__load(&s->epoch, __ATOMIC_RELAXED);
			uint64_t since = shmc__load(&s->stall_since,
			                            __ATOMIC_RELAXED);
			if (since && now - since > timeout_ns &&
			    shmc__load(&s->stall_epoch, __ATOMIC_RELAXED) == e)
				return SHMC_ESTALLED;
			if (now - start > timeout_ns) {
				/* Hints for shmc_readers and later writers: a
				 * race between two recorders costs nothing. */
				shmc__store(&s->stall_epoch, e, __ATOMIC_RELAXED);
				shmc__store(&s->stall_since, now,
				            __ATOMIC_RELAXED);
				return SHMC_ESTALLED;
			}
			if (spin < 256)
				sched_yield();
			else
				nanosleep(&(struct timespec){0, 20000}, NULL);
		}
		/* This slot no longer holds us back: forget an old stall. */
		struct shmc__slot *s = shmc__slot_at(m, i);
		if (shmc__load(&s->stall_since, __ATOMIC_RELAXED))
			shmc__store(&s->stall_since, 0, __ATOMIC_RELAXED);
	}
	return 0;
}
