/*
 * shmcache.h - the one public header of libshmcache.
 *
 * OVERVIEW
 *
 * A shmcache is a key/value cache that lives in one shared-memory segment
 * (a file SHMCACHE_DIR/shmcache.NAME, SHMCACHE_DIR defaulting to /dev/shm).
 * Every process that opens it maps the whole segment once and reads and
 * writes it directly: no server, no socket, no system call on the data path.
 * The cache has a fixed memory budget; when it is full, writes evict older,
 * colder data (S3-FIFO over segments of the log), and items may carry a TTL.
 *
 * HANDLES AND THREADS
 *
 * shmc_create() and shmc_open() return a handle (shmc_t *) private to the
 * calling process.  A handle may be used by any number of threads of that
 * process at once.  Each thread takes a "reader slot" in the segment on its
 * first call and keeps it until it exits or the handle is closed; a process
 * that dies gives its slots back (robust mutexes), so nothing waits on it.
 * A handle inherited across fork() works in the child, which takes reader
 * slots of its own on first use; the child must not close it while the
 * parent's threads are inside calls (closing only releases the child's).
 *
 * ERRORS
 *
 * Every function that can fail returns 0 (or a non-negative count where
 * documented) on success and a negative error code on failure.  Codes are
 * either -errno (system errors: -ENOENT, -EEXIST, -EACCES, -ENOSPC, ...) or
 * one of the SHMC_E* codes below, which lie outside the errno range.  errno
 * is never the way an error is reported.  shmc_strerror() describes a code,
 * shmc_err_name() names it.
 *
 * SYNCHRONISATION TABLE (same cache, any processes)
 *
 *   operation          may run at the same time as
 *   get / get_ref      everything; never waits for a lock
 *   set / add / del    everything; waits only for the bucket lock of its own
 *                      key (held for a few stores) and, when the cache is
 *                      full, for the log lock while a segment is evicted
 *   stats / readers    everything; counters are read without locks and may
 *                      be a few operations behind
 *   check              everything; a report against a moving cache may name
 *                      a transient state, run it twice before acting
 *   close              everything in other threads except use of the same
 *                      handle; all threads of the process must be done with
 *                      the handle
 *   destroy            everything: it unlinks the file, attached processes
 *                      keep their mapping until they close
 *   resize             everything; a second resize waits for the first, or
 *                      fails with SHMC_EBUSY under SHMC_RESIZE_TRY
 *   mrc                everything; never waits (reads without a lock)
 *   mrc_reset / pause  everything; waits up to 1 s for a thread inside
 *                      the sampler (gets and sets of sampled keys skip
 *                      their sample meanwhile)
 *
 * CAVEATS
 *
 * - A zero-copy reference (shmc_get_ref) points into shared memory and is
 *   valid only until the read section that produced it ends.  Holding a
 *   read section open for long stops memory from being reused: writers keep
 *   going while they can, and the stall is shown by shmc_readers().
 * - The cache may forget: a set can be evicted at any time to make room.
 *   It never lies: a get returns a value that was set for that key or a miss.
 * - Every process that attaches can read and write every item and the
 *   segment's metadata: attach only processes you trust (file mode 0600 by
 *   default; see the README's trust model).
 */
#ifndef SHMCACHE_H
#define SHMCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHMC_BUILDING) && defined(__GNUC__)
#define SHMC_API __attribute__((visibility("default")))
#else
#define SHMC_API
#endif

#define SHMC_VERSION_MAJOR 0
#define SHMC_VERSION_MINOR 1
#define SHMC_VERSION_PATCH 0

/* Limits. */
#define SHMC_NAME_MAX 64 /* cache name: [A-Za-z0-9._-]{1,64}, not . or .. */
#define SHMC_KEY_MAX 250            /* bytes in a key; keys are never empty */
#define SHMC_ITEM_OVERHEAD 24       /* bytes of header stored with each item */
#define SHMC_SEGMENT_MIN (64u << 10) /* smallest segment size: 64 KiB */
#define SHMC_SEGMENT_MAX (64u << 20) /* largest segment size: 64 MiB */
#define SHMC_SEGMENT_DEFAULT (1u << 20)

/*
 * The library's own error codes, as an X-macro list: NAME, value, text.
 * Values are negative and below -4095, so they never collide with -errno.
 */
#define SHMC_ERRNO_MAP(X)                                                      \
	X(NOTFOUND, -20001, "no such key (a miss)")                            \
	X(EXISTS, -20002, "key already present")                               \
	X(KEYLEN, -20003, "key empty or longer than SHMC_KEY_MAX")             \
	X(VALLEN, -20004, "value too large for one segment")                   \
	X(BUFSIZE, -20005, "buffer too small for the value")                   \
	X(NAME, -20006, "bad cache name")                                      \
	X(NOTCACHE, -20007, "file is not a shmcache segment")                  \
	X(VERSION, -20008, "segment of another format version or ABI")         \
	X(CORRUPT, -20009, "segment corrupt or truncated")                     \
	X(NOSLOT, -20010, "no free reader slot")                               \
	X(STALLED, -20011, "no memory can be reused: a reader is stalled")     \
	X(NOSECTION, -20012, "call needs an open read section")                \
	X(BUSY, -20013, "another operation of this kind is in progress")       \
	X(BUDGET, -20014, "memory budget too small or above the reservation")

enum shmc_err {
#define SHMC__ERR_ENUM(name, val, text) SHMC_E##name = (val),
	SHMC_ERRNO_MAP(SHMC__ERR_ENUM)
#undef SHMC__ERR_ENUM
};

typedef struct shmc shmc_t;

/* NUMA placement of the segment's memory. */
enum shmc_numa {
	SHMC_NUMA_DEFAULT = 0,    /* the kernel's default (first touch) */
	SHMC_NUMA_INTERLEAVE = 1, /* interleave over all allowed nodes */
	SHMC_NUMA_NODE = 2,       /* bind to numa_node */
	SHMC_NUMA_LOCAL = 3,      /* prefer the creating thread's node */
};

/*
 * Autogrow policy: grow by `step` bytes, never past `ceiling`, when the
 * cache has been under pressure for `window_s` seconds: utilisation at or
 * above `util_pct` percent *and* ghost hits (sets of keys evicted a short
 * while ago) at or above `ghost_pm` per mille of sets, which shows that
 * more memory would raise the hit ratio.  A scan of keys that never come
 * back produces no ghost hits and so never grows the cache.
 * With mrc_gain_pm set, on a cache that keeps its miss-ratio curve
 * (SHMC_CREATE_MRC) once the curve stands for 10,000 gets, the curve
 * decides instead of the ghost hits: grow when it predicts that `step`
 * more bytes raise the hit ratio by mrc_gain_pm per mille or more.
 * Without a usable curve the ghost rule stays in force.
 * step == 0 turns autogrow off.
 */
struct shmc_autogrow {
	uint64_t step;
	uint64_t ceiling;   /* 0 = the reservation */
	uint32_t util_pct;  /* default 85 */
	uint32_t window_s;  /* default 10 */
	uint32_t ghost_pm;  /* default 20 (2% of sets) */
	uint32_t mrc_gain_pm; /* 0 = off; see below */
};

/* Options of shmc_create(); fill with shmc_create_opts_init() first. */
/*
 * shmc_create_opts.flags.  SHMC_CREATE_HUGE: back the cache with 2 MiB
 * pages, so a get misses the TLB far less often on a large cache.  The
 * cache's directory (SHMCACHE_DIR) must be a tmpfs mounted with
 * huge=within_size (or always), e.g.
 *   mount -t tmpfs -o huge=within_size,size=64G,mode=1777 shmcache /dev/hugeshm
 * Segments are then at least 2 MiB and every commit is whole 2 MiB pages
 * (the fixed parts take about 10 MiB: for caches of 256 MiB and up).
 */
#define SHMC_CREATE_HUGE 0x1u
/*
 * SHMC_CREATE_MRC: keep the cache's miss-ratio curve (shmc_mrc()) from
 * its live traffic: a spatially sampled fraction of the keys (SHARDS)
 * is followed by every get, set and delete of every process.  Costs one
 * compare on each get and set of an unsampled key; takes
 * shmc_create_opts.mrc_keys x 56 bytes + 8 KiB of the budget.
 */
#define SHMC_CREATE_MRC 0x2u

struct shmc_create_opts {
	uint64_t memory;        /* budget in bytes: everything committed
	                         * (header, slots, index, segments) */
	uint64_t max_memory;    /* reservation: largest budget the cache may
	                         * ever be resized to; 0 = memory */
	uint32_t segment_size;  /* bytes per log segment, a power of two in
	                         * [SHMC_SEGMENT_MIN, SHMC_SEGMENT_MAX] */
	uint32_t default_ttl;   /* seconds applied when set() passes
	                         * SHMC_TTL_DEFAULT; 0 = no expiry */
	uint32_t mode;          /* file mode, default 0600 */
	uint32_t max_readers;   /* reader slots (threads attached at once),
	                         * default 1024 */
	uint64_t index_buckets; /* 64-byte index buckets (7 entries each),
	                         * rounded up to a power of two; 0 = derived
	                         * from memory */
	int numa;               /* enum shmc_numa */
	int numa_node;          /* node for SHMC_NUMA_NODE */
	struct shmc_autogrow autogrow; /* off by default */
	uint32_t gid;           /* group of the file, set before the file is
	                         * visible; 0 = the creator's (to give a cache
	                         * to group 0, chown it afterwards) */
	uint32_t flags;         /* SHMC_CREATE_* */
	uint32_t mrc_keys;      /* SHMC_CREATE_MRC: the most sampled keys it
	                         * tracks, a power of two in [64, 2^20];
	                         * 0 = 8192 */
	uint32_t mrc_sample;    /* SHMC_CREATE_MRC: sample one key in this
	                         * many at first (1 = every key); the rate
	                         * falls by itself to keep mrc_keys keys;
	                         * 0 = 32 */
	uint64_t reserved[2];   /* zero */
};

/* Sets every option to its default; memory becomes 64 MiB. */
SHMC_API void shmc_create_opts_init(struct shmc_create_opts *opts);

/*
 * Creates the cache NAME and returns a handle to it in *out.
 * The file is created O_EXCL|O_NOFOLLOW with opts->mode, fully initialised
 * under a temporary name and then linked into place, so no process can see
 * a half-made cache.  opts may be NULL for the defaults.
 *
 * Errors: SHMC_ENAME bad name; -EEXIST the cache exists; -EINVAL out NULL,
 * or an option out of range (segment size, max_readers, index size,
 * default_ttl above SHMC_TTL_MAX, mode bits beyond 07777, numa or
 * numa_node, the autogrow policy, flags other than SHMC_CREATE_HUGE and
 * SHMC_CREATE_MRC, mrc_keys not a power of two in [64, 2^20]);
 * -ENOTSUP SHMC_CREATE_HUGE and SHMCACHE_DIR is not a tmpfs mounted with
 * huge=within_size or huge=always; SHMC_EBUDGET memory too small for the
 * fixed parts plus a few segments, above max_memory, or max_memory above
 * 64 TiB; -ENAMETOOLONG the path; -EAGAIN no pthread key left; -EPERM
 * the group cannot be given (not a member of opts->gid);
 * -ENOSPC the file system cannot commit the budget's fixed part; -EACCES,
 * -ENOENT (SHMCACHE_DIR missing), -ENOMEM, other -errno from the system.
 * On error nothing is left behind.
 */
SHMC_API int shmc_create(const char *name, const struct shmc_create_opts *opts,
                         shmc_t **out);

/*
 * Opens the existing cache NAME.  flags: 0, or SHMC_OPEN_ANY_OWNER to accept
 * a segment owned by another user (refused by default).
 *
 * Errors: -EINVAL out NULL or unknown flags; SHMC_ENAME bad name;
 * -ENAMETOOLONG the path; -EAGAIN no pthread key left (one per handle);
 * -ENOENT no such cache; -EACCES no permission,
 * or the file belongs to another user (without SHMC_OPEN_ANY_OWNER);
 * SHMC_ENOTCACHE not a cache (bad magic, or not a regular file);
 * SHMC_EVERSION another format version or ABI (cache-line size, lock sizes);
 * SHMC_ECORRUPT checksum mismatch, truncated file or inconsistent layout;
 * -ENOTSUP this process cannot use membarrier(2) (old kernel, seccomp)
 * while processes reading without fences have used the cache (to avoid it,
 * every process that uses the cache, its creator included, must run with
 * SHMCACHE_MEMBARRIER=0 from the cache's creation on);
 * -ENOMEM and other -errno from mmap/open.  The file is never modified by a
 * failed open.
 */
#define SHMC_OPEN_ANY_OWNER 0x1u
SHMC_API int shmc_open(const char *name, unsigned flags, shmc_t **out);

/*
 * Releases the calling thread's reader slot of this handle, gives back the
 * open log segments of the process's threads and unmaps the segment.  A
 * slot of another thread that is still running is released when that
 * thread exits, and then the mapping stays until the process exits (it
 * cannot be unmapped under a robust mutex that thread holds).  c may be
 * NULL.  Always 0.  No thread may use c during or after the call.
 */
SHMC_API int shmc_close(shmc_t *c);

/*
 * Removes the cache file NAME.  Processes that have it open keep working on
 * their mapping; the memory is freed when the last mapping goes (see
 * shmc_close for when a process keeps it).
 * Errors: SHMC_ENAME, -ENOENT, -EACCES, other -errno from unlink.
 */
SHMC_API int shmc_destroy(const char *name);

/* ttl values for set/add. */
#define SHMC_TTL_DEFAULT UINT32_MAX /* the cache's default_ttl */
#define SHMC_TTL_NONE 0u            /* never expires */
#define SHMC_TTL_MAX (10u * 365u * 86400u) /* the longest, 10 years */

/*
 * Stores key -> value, replacing any previous value.  ttl is in seconds
 * (SHMC_TTL_NONE, SHMC_TTL_DEFAULT, or 1 .. SHMC_TTL_MAX); flags are 32 opaque
 * user bits returned by get.  May evict other items to make room.
 *
 * Errors: -EINVAL c or key NULL, value NULL with vlen > 0, or ttl above
 * SHMC_TTL_MAX; -ENOMEM a thread's first call could not allocate its state;
 * -ENOSPC (or another -errno of fallocate) memory could not be committed
 * and nothing could be evicted;
 * SHMC_EKEYLEN klen 0 or > SHMC_KEY_MAX; SHMC_EVALLEN the item does not fit
 * one segment (see shmc_info().max_value); SHMC_ENOSLOT no reader slot for
 * this thread; SHMC_ESTALLED the cache is full and no memory can be reused
 * because a reader has been inside a read section too long (the item was
 * not stored; other items may have been evicted trying to make room);
 * SHMC_EBUSY called inside a read section of the same thread when the
 * cache must evict (end the section first).
 */
SHMC_API int shmc_set(shmc_t *c, const void *key, size_t klen,
                      const void *value, size_t vlen, uint32_t ttl,
                      uint32_t flags);

/*
 * As shmc_set(), but only if the key is absent (or expired).
 * Errors: those of shmc_set(), and SHMC_EEXISTS when the key is present
 * (the cache is unchanged).
 */
SHMC_API int shmc_add(shmc_t *c, const void *key, size_t klen,
                      const void *value, size_t vlen, uint32_t ttl,
                      uint32_t flags);

/*
 * Copies the value of key into buf.  On entry *vlen is the size of buf; on
 * return it is the value's length, also when buf was too small.  flags may
 * be NULL.  buf may be NULL when *vlen is 0 (a length query).
 *
 * Errors: -EINVAL c, key or vlen NULL, or buf NULL with *vlen > 0;
 * SHMC_EKEYLEN; SHMC_ENOTFOUND a miss (absent or expired);
 * SHMC_EBUFSIZE buf too small: *vlen holds the needed size, buf untouched;
 * SHMC_ENOSLOT.
 */
SHMC_API int shmc_get(shmc_t *c, const void *key, size_t klen, void *buf,
                      size_t *vlen, uint32_t *flags);

/* One key of a shmc_mget() batch: key, klen, buf and vlen (the size of
 * buf) in; vlen, flags and rc (as shmc_get() would return) out. */
struct shmc_mget_item {
	const void *key;
	size_t klen;
	void *buf;
	size_t vlen;
	uint32_t flags;
	int rc;
};

/*
 * Looks up n keys at once, as n shmc_get() calls would, but overlaps their
 * memory accesses: every key's bucket is prefetched, then every candidate
 * item, before any is read.  Worth it from about 4 keys; much faster than
 * single gets when the keys are spread over more memory than the CPU
 * caches hold.  The whole batch runs in one read section.  Each item's rc
 * is 0, SHMC_ENOTFOUND, SHMC_EBUFSIZE (vlen then holds the needed size),
 * SHMC_EKEYLEN, or -EINVAL (key NULL, or buf NULL with vlen > 0).
 * Returns the number of hits (>= 0).
 * Errors: -EINVAL c NULL, or items NULL with n > 0; SHMC_ENOSLOT.
 */
SHMC_API int shmc_mget(shmc_t *c, struct shmc_mget_item *items, size_t n);

/*
 * GET-OR-LOAD: one loader per missing key across all processes.
 *
 * The loader is called with the key and a buffer (buf, capacity *vlen) to
 * fill: it sets *vlen (and may set *flags) and returns 0; or returns
 * SHMC_EBUFSIZE with *vlen set to the size it needs (it is called again
 * with a buffer that large); or SHMC_ENOTFOUND when the thing does not
 * exist (cached for negative_ttl seconds if that is not 0); or any other
 * negative code, which is handed to every caller waiting for this load
 * and not cached.  The loader may use the cache, but not get-or-load.
 */
typedef int (*shmc_loader_fn)(const void *key, size_t klen, void *buf,
                              size_t *vlen, uint32_t *flags, void *arg);

struct shmc_load_opts {
	uint32_t ttl;          /* of a loaded value, seconds; SHMC_TTL_DEFAULT
	                        * (the cache's default) when 0 */
	uint32_t soft_ttl;     /* stale-while-revalidate: after this many
	                        * seconds one caller refreshes while the
	                        * others get the stale value; 0 = off */
	uint32_t negative_ttl; /* cache SHMC_ENOTFOUND for this long; 0 = no */
	uint32_t lease_ms;     /* a loader slower than this loses its lease to
	                        * the next caller (default 10000) */
	uint32_t wait_ms;      /* the longest a caller waits for another
	                        * process's load (default 10000) */
	uint32_t reserved[3];
};

/*
 * Gets key like shmc_get(); on a miss exactly one caller, in any process,
 * runs loader while the others wait (a futex in the segment) and then
 * receive its value.  If the loader's process dies or overruns lease_ms,
 * the next caller takes over.  With soft_ttl, a value past its soft TTL
 * is returned at once to every caller but one, which refreshes it (and
 * gets the fresh value; if its loader fails, the stale value).  opts may
 * be NULL for the defaults.
 *
 * Returns 0 with the value in buf; or SHMC_EBUFSIZE (*vlen = needed; the
 * value is in the cache, ask again with a bigger buffer); SHMC_ENOTFOUND
 * (the loader said so, now or cached; without negative_ttl, each waiting
 * caller then runs the loader in turn); the loader's own error code or
 * positive return, passed on as it is; -EINVAL the loader claimed more
 * bytes than its buffer, or ttl above SHMC_TTL_MAX;
 * -ETIMEDOUT waited wait_ms for another loader; -EINVAL (c, key, vlen or
 * loader NULL, buf NULL with *vlen > 0); SHMC_EKEYLEN; SHMC_EBUSY called
 * inside a read section or from a loader; and the errors of shmc_set()
 * when storing the value fails (the value is still returned in buf if it
 * fits; if not, *vlen = its size, and the store's error, not
 * SHMC_EBUFSIZE, is returned).
 */
SHMC_API int shmc_get_or_load(shmc_t *c, const void *key, size_t klen,
                              void *buf, size_t *vlen, uint32_t *flags,
                              shmc_loader_fn loader, void *arg,
                              const struct shmc_load_opts *opts);

/*
 * The seconds key has left to live in *ttl (SHMC_TTL_NONE when it never
 * expires), for tools that copy items with their TTL (dump/restore).
 * Errors: -EINVAL c, key or ttl NULL; SHMC_EKEYLEN; SHMC_ENOTFOUND;
 * SHMC_ENOSLOT.
 */
SHMC_API int shmc_ttl(shmc_t *c, const void *key, size_t klen, uint32_t *ttl);

/*
 * Removes key.  An expired item not yet reclaimed, or a cached "not found"
 * of shmc_get_or_load, is removed too (0).  A shmc_get_or_load of key in
 * progress in any process loses its lease: its callers get what it loads,
 * but that is not stored (it may have been read from the source before
 * the change this delete stands for); the next miss loads again.
 * Errors: -EINVAL, SHMC_EKEYLEN, SHMC_ENOTFOUND (no value or "not found"
 * was there; a lease may still have been taken away), SHMC_ENOSLOT.
 */
SHMC_API int shmc_del(shmc_t *c, const void *key, size_t klen);

/*
 * Removes every key that starts with the plen bytes at prefix (plen 0:
 * every key), as shmc_del() would remove each (leases of loads in
 * progress included).  For flushing a key space whose source changed in
 * ways not known key by key (`shmcache sync` after losing Redis).  The
 * walk takes short read sections and each key's bucket lock on its own:
 * other processes keep working; a key set while it runs may or may not
 * be removed; a key present when it began and left alone is removed
 * (while the index shrinks over and over, one may be missed: run it
 * again).  Returns the number of values and "not found"s removed (>= 0,
 * at most INT32_MAX).
 * Errors: -EINVAL c NULL, or prefix NULL with plen > 0; SHMC_EKEYLEN
 * plen > SHMC_KEY_MAX; SHMC_EBUSY called inside a read section;
 * SHMC_ENOSLOT; -ENOMEM (some keys may have been removed).
 */
SHMC_API int shmc_del_prefix(shmc_t *c, const void *prefix, size_t plen);

/*
 * Read sections for zero-copy reads.  Between shmc_read_begin() and
 * shmc_read_end() in the same thread, shmc_get_ref() returns pointers into
 * the shared segment that stay valid (and unchanged) until the section ends.
 * Sections nest; the outermost end closes it.  Keep them short: memory is
 * not reused while a section that began before its release is open.
 *
 * Errors: -EINVAL c NULL; SHMC_ENOSLOT (begin); SHMC_ENOSECTION (end without
 * begin).
 */
SHMC_API int shmc_read_begin(shmc_t *c);
SHMC_API int shmc_read_end(shmc_t *c);

/*
 * Looks key up inside a read section and points *value at the value in
 * shared memory (read-only) and *vlen at its length.  flags may be NULL.
 * Errors: -EINVAL, SHMC_EKEYLEN, SHMC_ENOTFOUND, SHMC_ENOSECTION (no read
 * section open in this thread).
 */
SHMC_API int shmc_get_ref(shmc_t *c, const void *key, size_t klen,
                          const void **value, size_t *vlen, uint32_t *flags);

/* Counters (summed over all reader slots, monotonic) and gauges. */
struct shmc_stats {
	uint64_t gets, hits, misses, sets, adds, add_exists, deletes;
	uint64_t evictions;     /* items dropped by eviction */
	uint64_t expirations;   /* expired items found by gets or eviction */
	uint64_t copy_forwards; /* items kept by eviction (copied forward) */
	uint64_t index_drops;   /* items forgotten because a bucket was full */
	uint64_t ghost_hits;    /* sets of a key recently evicted */
	uint64_t set_bytes;     /* key+value bytes written by set/add */
	uint64_t segments_evicted, grace_periods, stalls;
	/* get-or-load */
	uint64_t loads;          /* loader calls */
	uint64_t load_waits;     /* callers that waited for another's load */
	uint64_t load_wait_ns;   /* total time they waited */
	uint64_t lease_takeovers;/* leases taken from a dead or slow loader */
	uint64_t stale_served;   /* values served past their soft TTL */
	uint64_t resizes;        /* resizes done, manual and automatic */
	/* gauges */
	uint64_t items;          /* items in the index (approximate) */
	uint64_t used_bytes;     /* bytes of segments holding data (small,
	                          * main, open, parked) */
	uint64_t committed_bytes;/* bytes committed in the file */
	uint64_t memory;         /* the budget */
	uint64_t max_memory;     /* the reservation */
	uint64_t index_buckets, index_entries_used;
	/* Committed segments by state; total is their sum. */
	uint32_t segments_total, segments_free, segments_small, segments_main;
	uint32_t readers;        /* reader slots in use */
	uint32_t processes;      /* distinct attached processes */
	uint32_t segments_open;    /* being written (writers, copy-forward) */
	uint32_t segments_parked;  /* partly written, their writer gone */
	uint32_t segments_retired; /* evicted, waiting for readers to leave */
	uint32_t pad_;
	uint64_t reserved[6];
};

/* Errors: -EINVAL c or st NULL. */
SHMC_API int shmc_stats(shmc_t *c, struct shmc_stats *st);

/* Fixed properties of an open cache. */
struct shmc_info {
	char name[SHMC_NAME_MAX + 1];
	char path[4096];
	uint32_t format_version;
	uint32_t segment_size;
	uint32_t max_readers;
	uint32_t default_ttl;
	uint64_t max_value;      /* largest value with a 1-byte key */
	uint64_t created;        /* unix seconds */
	uint64_t min_memory;     /* smallest budget shmc_resize accepts now */
	uint64_t max_memory;     /* the reservation: largest budget possible */
	uint32_t flags;          /* SHMC_CREATE_* it was created with
	                          * (HUGE, MRC) */
	uint32_t pad_;
	uint64_t huge_bytes;     /* bytes of the mapping this process maps
	                          * with 2 MiB pages now (/proc/self/smaps;
	                          * huge caches only, else 0) */
	uint64_t reserved[2];
};

/* Errors: -EINVAL c or info NULL. */
SHMC_API int shmc_info(shmc_t *c, struct shmc_info *info);

/* Progress of a resize, passed to its callback. */
struct shmc_resize_progress {
	uint64_t from;       /* budget when the resize began */
	uint64_t to;         /* target budget */
	uint64_t committed;  /* bytes committed in the file now */
	uint32_t done;       /* 1 on the last call */
	uint32_t reserved;
};

/* Why a resize happened (struct shmc_resize_record.reason). */
enum shmc_resize_reason {
	SHMC_RESIZE_MANUAL = 1,   /* shmc_resize() */
	SHMC_RESIZE_AUTOGROW = 2, /* the autogrow policy */
	SHMC_RESIZE_RESUMED = 3,  /* finishing one whose process died */
};

#define SHMC_RESIZE_TRY 0x1u  /* SHMC_EBUSY instead of waiting for another */

/*
 * Sets the memory budget to `memory` bytes while every process goes on
 * working.  Growing commits the new memory (so ENOSPC shows now, not as a
 * SIGBUS later) and is visible to every process at once.  Shrinking stops
 * new commits, then evicts segments (keeping hot items where room allows)
 * and gives them back to the system (the file's allocated blocks drop),
 * a few at a time so writers are never held up for long.  The index
 * follows: it shrinks when the cache shrinks.  progress (may be NULL) is
 * called as the work goes on; returning non-zero from it stops the resize
 * where it is (the budget is already the target; a later shmc_resize or
 * shmc_open finishes it).  The resize is recorded in the history.
 *
 * Resize state lives in the segment under a robust lock: if the resizing
 * process dies, the next shmc_open() or shmc_resize() finishes it.
 *
 * Errors: -EINVAL c NULL or flags unknown; SHMC_EBUDGET memory above the
 * reservation (shmc_info().max_memory) or below the smallest workable
 * budget (shmc_info().min_memory); SHMC_EBUSY another resize is running
 * (with SHMC_RESIZE_TRY) or called inside a read section; -ENOSPC (or
 * another -errno from fallocate) the system cannot give the memory: the
 * cache is left as it was; SHMC_ESTALLED a stalled reader keeps memory
 * from being freed: the shrink stays pending; -ECANCELED progress asked
 * to stop.
 */
SHMC_API int shmc_resize(shmc_t *c, uint64_t memory, unsigned flags,
                         int (*progress)(const struct shmc_resize_progress *p,
                                         void *arg),
                         void *arg);

/*
 * Splits or merges the index to `buckets` 64-byte buckets, stopping
 * silently at the floor of 256 or at the reservation's largest index; the
 * index also grows by itself with the items.  Errors: -EINVAL c NULL or
 * buckets 0; SHMC_EBUSY inside a read section; SHMC_ENOSLOT;
 * SHMC_ESTALLED or -ENOSPC when index pages cannot be committed.
 */
SHMC_API int shmc_resize_index(shmc_t *c, uint64_t buckets);

/* One past resize, newest first from shmc_resize_history(). */
struct shmc_resize_record {
	uint64_t time;   /* unix seconds */
	uint64_t from, to;
	int32_t pid;
	uint32_t reason; /* enum shmc_resize_reason */
};

/*
 * Copies up to n of the most recent resizes (at most 16 are kept), newest
 * first.  Returns how many were copied (>= 0).  Errors: -EINVAL.
 */
SHMC_API int shmc_resize_history(shmc_t *c, struct shmc_resize_record *out,
                                 unsigned n);

/* Sets the autogrow policy (zero fields take the documented defaults).
 * Errors: -EINVAL (c or ag NULL, ceiling above the reservation,
 * util_pct > 100).  Reading it fails only on NULL; a cache whose policy
 * was never set reads as all zeros (off). */
SHMC_API int shmc_set_autogrow(shmc_t *c, const struct shmc_autogrow *ag);
SHMC_API int shmc_get_autogrow(shmc_t *c, struct shmc_autogrow *ag);

/* One reader slot in use, as reported by shmc_readers(). */
struct shmc_reader {
	uint32_t slot;
	int32_t pid, tid;
	uint32_t in_section;    /* 1 when inside a read section */
	uint64_t section_ns;    /* how long this reader, in its current
	                         * section, has held back a writer that had
	                         * to reuse memory (0 if none has timed out
	                         * waiting for it): the stall to look at */
};

/*
 * Calls fn for every reader slot in use, after reclaiming slots whose
 * process or thread has died.  fn returns 0 to go on, non-zero to stop.
 * Returns the number of slots reclaimed (>= 0).
 * Errors: -EINVAL c or fn NULL.
 */
SHMC_API int shmc_readers(shmc_t *c,
                          int (*fn)(const struct shmc_reader *r, void *arg),
                          void *arg);

/*
 * Walks every invariant of the segment (header, offsets in bounds, items
 * hash to their bucket, segment lists and accounting, slots) and calls
 * report (if not NULL) with one line per problem found.  Never crashes on a
 * corrupt segment.  Returns the number of problems (0 = clean).  Called
 * inside a read section it cannot walk the index, and counts that as a
 * problem.
 * Errors: -EINVAL c NULL.
 */
SHMC_API int shmc_check(shmc_t *c,
                        void (*report)(const char *problem, void *arg),
                        void *arg);

/*
 * Calls fn for every live, unexpired key (in no particular order), inside
 * short read sections: writers are never stalled; a key changed during the
 * walk may be reported or not, and an index split or merge meanwhile may
 * report an unchanged key twice or not at all.  fn must not call back into the cache.  It
 * returns 0 to go on, non-zero to stop.  Returns 0.
 * Errors: -EINVAL c or fn NULL; SHMC_ENOSLOT.
 */
SHMC_API int shmc_keys(shmc_t *c,
                       int (*fn)(const void *key, size_t klen, size_t vlen,
                                 void *arg),
                       void *arg);

/*
 * MISS-RATIO CURVE: how the get hit ratio would change with the budget.
 *
 * A cache created with SHMC_CREATE_MRC follows a sample of its keys
 * (those whose hash falls under a threshold: SHARDS, Waldspurger et al.,
 * FAST '15) through every get, set and delete of every process, and
 * keeps a histogram of the reuse distances of the gets in bytes: the
 * bytes of other items touched between two touches of a key.  An LRU
 * cache holding that many bytes of items would have hit.  The curve
 * therefore predicts an LRU cache; this cache's S3-FIFO usually does as
 * well or better (bench/README.md measures by how much).  It covers the
 * traffic since the cache was created or since shmc_mrc_reset().
 */
struct shmc_mrc_point {
	uint64_t memory;  /* in: a budget, bytes; or 0 to give bytes */
	uint64_t bytes;   /* out: the item bytes that budget holds: memory
	                   * less the cache's fixed part, whose index share
	                   * is taken to grow with the budget (0 if below
	                   * it).  In, when memory is 0. */
	double hit_ratio; /* out: predicted get hit ratio, 0 to 1 */
};

struct shmc_mrc_info {
	double rate;          /* fraction of keys sampled now, 0 to 1 */
	uint64_t keys;        /* sampled keys followed now */
	uint64_t max_keys;    /* the most it follows (mrc_keys) */
	uint64_t gets;        /* gets the curve stands for (estimated from
	                       * the sample; all keys) */
	uint64_t cold;        /* of which of keys not seen before: misses at
	                       * any size */
	uint64_t skipped;     /* samples dropped because another thread held
	                       * the sampler */
	uint64_t resets;      /* times the sampler started again (reset, or
	                       * a process died inside it) */
	uint64_t fixed_bytes; /* budget bytes outside the data segments */
	uint64_t reserved[4];
};

/*
 * Predicts the get hit ratio at each of n budgets: fills pts[i].bytes and
 * pts[i].hit_ratio for the pts[i].memory given (or, when that is 0, the
 * hit ratio for pts[i].bytes of items).  info (may be NULL)
 * receives how the curve was made; with info->gets 0 there is no data
 * yet and every hit_ratio is 0.  Reads the shared histogram without a
 * lock, so it never waits; a curve read while processes sample may be a
 * few samples behind.  Returns 0.
 * Errors: -EINVAL c NULL, or pts NULL with n > 0; -ENOTSUP the cache was
 * created without SHMC_CREATE_MRC; SHMC_ECORRUPT the curve's region in
 * the segment is corrupt (shmc_check() says what; shmc_mrc_reset()
 * starts it again).
 */
SHMC_API int shmc_mrc(shmc_t *c, struct shmc_mrc_point *pts, size_t n,
                      struct shmc_mrc_info *info);

/*
 * Forgets the curve and the sampled keys and starts again at the
 * sampling rate the cache was created with, e.g. after the traffic
 * changed.  Waits up to a second for a thread inside the sampler.
 * Errors: -EINVAL c NULL; -ENOTSUP no curve (see shmc_mrc);
 * -ETIMEDOUT the sampler stayed busy (if its holder vanished without
 * the system marking the lock, a call 2 s after one that timed out
 * takes it over); SHMC_ECORRUPT its lock is garbage.
 */
SHMC_API int shmc_mrc_reset(shmc_t *c);

/*
 * Stops (pause != 0) or restarts (0) sampling for every process: while
 * paused, gets and sets pay the one compare and nothing else, and the
 * curve stays as it was.  Restarting forgets the sampled keys (their
 * next gets count as first-time ones) and leaves the gets made meanwhile
 * out of the curve.  Pausing a paused cache, or restarting a running
 * one, does nothing.  Waits up to a second for a thread inside the
 * sampler.  Errors: those of shmc_mrc_reset().
 */
SHMC_API int shmc_mrc_pause(shmc_t *c, int pause);

/*
 * Test hook: replace this handle's clock (unix seconds) used for TTLs.
 * now == NULL restores the real clock.  Errors: -EINVAL c NULL.
 */
SHMC_API int shmc_set_clock(shmc_t *c, uint64_t (*now)(void *arg), void *arg);

/* A static description of code err ("unknown error" if unknown).  Never NULL. */
SHMC_API const char *shmc_strerror(int err);
/* The name of err ("SHMC_ENOTFOUND", "ENOENT", ...).  Never NULL. */
SHMC_API const char *shmc_err_name(int err);
/* "MAJOR.MINOR.PATCH" of the library in use.  Never NULL. */
SHMC_API const char *shmc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SHMCACHE_H */
