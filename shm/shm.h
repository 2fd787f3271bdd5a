/*
 * shm.h - the segment layer: files, mappings, memory commit, robust locks,
 * reader slots and cross-process epochs.  It knows nothing of keys and
 * values; lib/ builds the cache on top and never calls mmap or open itself.
 */
#ifndef SHMC_SHM_H
#define SHMC_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <urcu/arch.h>
#include <urcu/compiler.h>
#include <urcu/uatomic.h>

#include "layout.h"

/*
 * Ordered loads and stores.  liburcu (0.13, as in Debian 12) gives us the
 * barriers, cmpxchg and add_return; its memory-order loads and stores came
 * later, so these two wrap the compiler's __atomic builtins.  Every use
 * names its order and what it pairs with.
 */
#define shmc__load(p, order) __atomic_load_n((p), (order))
#define shmc__store(p, v, order) __atomic_store_n((p), (v), (order))

/*
 * System calls of the segment layer go through this table so tests can
 * inject failures (ENOSPC from fallocate, EACCES from open, ...).
 */
struct shmc__sys {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	int (*fstat)(int fd, struct stat *st);
	int (*fchmod)(int fd, mode_t mode);
	int (*fchown)(int fd, uid_t uid, gid_t gid);
	int (*ftruncate)(int fd, off_t len);
	int (*fallocate)(int fd, int mode, off_t off, off_t len);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
	              off_t off);
	int (*munmap)(void *addr, size_t len);
	int (*link)(const char *from, const char *to);
	int (*unlink)(const char *path);
};
extern struct shmc__sys shmc__sys;
void shmc__sys_reset(void);

/* A process's view of one segment. */
struct shmc__map {
	uint8_t *base;
	uint64_t size;
	int fd;
	struct shmc__hdr *hdr;
	/* Copies of validated immutable header fields: what addresses are
	 * computed from is never re-read from the shared header, which any
	 * attached process could scribble on. */
	uint64_t slots_off;
	uint32_t max_readers;
	char path[4096];
};

/* Geometry chosen at create time (see shmc__geometry()). */
struct shmc__geom {
	uint64_t memory, max_memory, file_size;
	uint32_t seg_size, max_readers, nseg_max, default_ttl;
	uint64_t index_buckets, index_max_buckets;
	uint64_t slots_off, index_off, ghost_off, data_off;
	uint64_t index_committed;
	uint64_t fixed_committed; /* header+slots+index+ghost in use */
	uint32_t flags;           /* SHMC__F_* */
	uint32_t mrc_keys;        /* miss-ratio curve keys, 0 = none */
	uint32_t mrc_sample;      /* its first rate: 1 key in this many */
	uint64_t mrc_off;         /* its region (before the index) */
};

int shmc__name_ok(const char *name);
int shmc__path(const char *name, char *buf, size_t len);
int shmc__geometry(uint64_t memory, uint64_t max_memory, uint32_t seg_size,
                   uint32_t max_readers, uint64_t index_buckets,
                   uint32_t flags, uint32_t mrc_keys, struct shmc__geom *g);
int shmc__seg_create(const char *name, const struct shmc__geom *g,
                     uint32_t mode, uint32_t gid, int numa, int numa_node,
                     struct shmc__map *m);
int shmc__seg_open(const char *name, unsigned flags, struct shmc__map *m);
void shmc__seg_close(struct shmc__map *m);
int shmc__seg_commit(struct shmc__map *m, uint64_t off, uint64_t len);
int shmc__seg_punch(struct shmc__map *m, uint64_t off, uint64_t len);
/* Maps committed memory into this process ahead of use (a hint). */
void shmc__seg_prefault(struct shmc__map *m, uint64_t off, uint64_t len);
/* Bytes of this process's mapping of the segment mapped with 2 MiB
 * pages (ShmemPmdMapped + FilePmdMapped in /proc/self/smaps); 0 if
 * unknown. */
uint64_t shmc__seg_huge_bytes(struct shmc__map *m);
/* Whether any byte of [off, off+len) is allocated in the file. */
bool shmc__seg_has_data(struct shmc__map *m, uint64_t off, uint64_t len);

/*
 * Checks a header image of len bytes against the file it came from.
 * Returns 0, SHMC_ENOTCACHE, SHMC_EVERSION or SHMC_ECORRUPT.  Reads only
 * the len bytes given.
 */
int shmc__hdr_validate(const void *buf, size_t len, uint64_t file_size);
uint64_t shmc__hdr_checksum(const struct shmc__hdr *h);

/* Robust process-shared mutexes. */
int shmc__mutex_init(pthread_mutex_t *mu);
/*
 * Waits for mu however long it takes.  Returns 0 (held), 1 (held; the
 * previous owner died and the mutex was made consistent: the caller
 * repairs what it guards), or SHMC_ECORRUPT: the mutex memory is garbage
 * (a type no mutex we made has, a dead owner's lock left unrecoverable,
 * an owner field naming the caller).  The mutex is then NOT held and
 * must not be unlocked; callers turn this into an error of their own.
 * Never aborts.  A garbage owner naming a thread that does not exist
 * looks like a live holder: shmc__lock waits for it forever, so code that
 * must finish (shmc_check) uses shmc__lock_timed.
 */
int shmc__lock(pthread_mutex_t *mu);
/*
 * Like shmc__lock, but gives up after timeout_ns (one attempt if 0):
 * returns 0, 1, SHMC_ECORRUPT as shmc__lock does, or -ETIMEDOUT (not
 * held) when another holder kept it that long.
 */
int shmc__lock_timed(pthread_mutex_t *mu, uint64_t timeout_ns);
/*
 * Whether mu's type field is the one shmc__mutex_init gives (glibc; true
 * elsewhere).  Call it before any pthread_mutex_trylock on a shared mutex:
 * glibc runs TSX instructions for a type with the elision bit, which is
 * SIGILL on CPUs without them.  shmc__lock and shmc__lock_timed call it.
 */
bool shmc__mutex_ok(pthread_mutex_t *mu);
void shmc__unlock(pthread_mutex_t *mu);
/*
 * What shmc__lock does for a holder that vanished (epoch.c), for a lock
 * that is only ever tried: call it after each failed trylock with a watch
 * kept between tries (zeroed at first).  Once mu's word has named the same
 * thread for 2 s and no thread has that id, the word is marked owner-dead,
 * so the next trylock gets EOWNERDEAD and repairs.
 */
struct shmc__owner_watch {
	unsigned word;
	uint64_t since;
};
void shmc__reap_vanished(pthread_mutex_t *mu, struct shmc__owner_watch *w);

/* Address helpers; callers bounds-check indices first. */
static inline struct shmc__slot *shmc__slot_at(const struct shmc__map *m,
                                               uint32_t i)
{
	return (struct shmc__slot *)(m->base + m->slots_off +
	                             (uint64_t)i * SHMC__SLOT_SIZE);
}

/*
 * Called on a dead thread's slot while the caller holds the slot's mutex,
 * before the slot is freed: lib/ releases its bucket lock and seals its open
 * segment.  log_locked tells whether the caller holds log_lock.
 */
typedef void (*shmc__dead_fn)(struct shmc__map *m, uint32_t slot,
                              bool log_locked, void *arg);

/*
 * Claims a free reader slot for the calling thread (reclaiming dead ones on
 * the way) and holds its mutex.  Returns 0 or SHMC_ENOSLOT.
 */
int shmc__slot_claim(struct shmc__map *m, uint32_t *slot, shmc__dead_fn dead,
                     void *arg);
/* Releases a slot the calling thread owns. */
void shmc__slot_release(struct shmc__map *m, uint32_t slot);
/*
 * Liveness of slot i: 1 owned by a live thread, 0 free (or just reclaimed
 * because its owner died).  Safe to call from any process.
 */
int shmc__slot_probe(struct shmc__map *m, uint32_t i, shmc__dead_fn dead,
                     bool log_locked, void *arg);

/*
 * Decides, for this process and this segment, whether readers may skip
 * the fence (*fast).  Returns 0, or -ENOTSUP when this process cannot
 * issue MEMBARRIER_CMD_GLOBAL_EXPEDITED and fence-free readers have used
 * the segment (it could not make them safe as a writer).
 */
int shmc__mb_attach(struct shmc__map *m, bool *fast);

/*
 * READ SIDE.  Enter: publish the global epoch in the slot, then order that
 * store before every later load of the index or items.  With membarrier
 * the fence is a compiler barrier: a writer's MEMBARRIER_CMD_GLOBAL_EXPEDITED
 * runs a full barrier on this CPU for us (pairs with shmc__synchronize()).
 * Without it, a full fence (smp_mb) does the job itself.
 */
static inline void shmc__read_enter(struct shmc__hdr *h, struct shmc__slot *s,
                                    bool fast)
{
	/* Acquire: later loads stay after it on weakly ordered CPUs (free on
	 * x86); a stale (smaller) epoch only makes writers wait longer. */
	uint64_t e = shmc__load(&h->epoch, __ATOMIC_ACQUIRE);
	shmc__store(&s->epoch, e, __ATOMIC_RELAXED);
	if (caa_likely(fast))
		cmm_barrier(); /* pairs with membarrier in shmc__synchronize */
	else
		cmm_smp_mb(); /* store slot -> load index; pairs with the
		               * fetch-add + scan in shmc__synchronize */
}

static inline void shmc__read_exit(struct shmc__slot *s)
{
	/* Release: our loads of items complete before the writer, seeing 0
	 * with its acquire load in shmc__synchronize, reuses that memory. */
	shmc__store(&s->epoch, 0, __ATOMIC_RELEASE);
}

/*
 * WRITE SIDE.  After unpublishing memory, wait until every reader that
 * might still see it has left its section.  self is the caller's slot (or
 * UINT32_MAX).  Returns 0, SHMC_EBUSY if the caller's own read section holds
 * the grace period back, SHMC_ESTALLED if another live reader does for
 * longer than timeout_ns.
 */
int shmc__synchronize(struct shmc__map *m, uint32_t self, uint64_t timeout_ns,
                      shmc__dead_fn dead, bool log_locked, void *arg);

/*
 * Non-blocking form: the epoch to stamp retired memory with (bumps the
 * global epoch; a full barrier), and whether memory stamped with epoch e is
 * now safe to reuse.
 */
uint64_t shmc__epoch_bump(struct shmc__map *m);
int shmc__epoch_safe(struct shmc__map *m, uint64_t e, uint32_t self,
                     shmc__dead_fn dead, bool log_locked, void *arg);
/* shmc__synchronize without the bump: wait for memory stamped with t. */
int shmc__epoch_wait(struct shmc__map *m, uint64_t t, uint32_t self,
                     uint64_t timeout_ns, shmc__dead_fn dead, bool log_locked,
                     void *arg);

uint64_t shmc__now_ns(void);

#endif /* SHMC_SHM_H */
