/*
 * layout.h - the shape of a shmcache segment, byte by byte.
 *
 * The segment is one sparse file mapped whole, MAP_SHARED, by every process
 * at whatever address it gets; everything inside is addressed by offsets.
 *
 *   +--------------------+ 0
 *   | header (4 KiB)     |  struct shmc__hdr, table below
 *   +--------------------+ slots_off
 *   | reader slots       |  max_readers x struct shmc__slot (512 B)
 *   +--------------------+ mrc_off (page aligned, derived: shmc__mrc_off)
 *   | miss-ratio curve   |  shmc__mrc_bytes(mrc_keys): the sampler's
 *   |                    |  state (lib/mrc.c); absent when mrc_keys is 0
 *   +--------------------+ index_off
 *   | index              |  index_max_buckets x 64 B: linear hashing
 *   |                    |  grows up from the bottom (index_committed
 *   |                    |  bytes), the overflow-bucket pool down from
 *   |                    |  the top (pool_committed buckets)
 *   +--------------------+ ghost_off
 *   | ghost fingerprints |  index_max_buckets x 4 x u32
 *   +--------------------+ dir_off (page aligned, derived: SHMC__DIR_OFF)
 *   | segment directory  |  nseg_max x u64: each data segment's state word,
 *   |                    |  committed a page at a time up to nseg_hw
 *   +--------------------+ data_off (page aligned)
 *   | data segments      |  nseg_max x segment_size, committed on demand
 *   +--------------------+ file_size (the reservation)
 *
 * HEADER (struct shmc__hdr)
 *
 *   off  size  field             written by / under
 *   ---  ----  ----------------  ------------------------------------------
 *     0     8  magic             create, never after ("SHMCACH\0")
 *     8     4  version           create (SHMC__FORMAT_VERSION)
 *    12     4  abi               create (cache line, mutex size, slot size)
 *    16     8  file_size         create (the reservation, = file length)
 *    24     8  created           create (unix seconds)
 *    32     4  seg_size          create
 *    36     4  max_readers       create
 *    40     8  slots_off         create
 *    48     8  index_off         create
 *    56     8  index_max_buckets create (power of two)
 *    64     8  ghost_off         create
 *    72     8  data_off          create
 *    80     4  nseg_max          create
 *    84     4  default_ttl       create
 *    88    68  name              create (NUL padded)
 *   156     4  flags             create: SHMC__F_HUGE = huge pages, every
 *                                region and commit 2 MiB aligned
 *   160     4  mrc_keys          create: sampled keys the miss-ratio curve
 *                                tracks at most (a power of two), 0 = none
 *   168     8  checksum          create: XXH64 of bytes [0, 168)
 *   192    40  log_lock          robust process-shared mutex guarding every
 *                                field from 320 on, the segment lists and
 *                                segment state changes
 *   256     8  epoch             grace periods: atomic fetch-add by a writer
 *                                retiring memory, read by readers entering
 *   264     4  mb_mode           SHMC__MB_FENCEFREE once a process read
 *                                without fences, SHMC__MB_NOMB once one
 *                                that cannot membarrier attached; sticky,
 *                                CAS at attach (shm/epoch.c)
 *   272     8  mrc_thresh        miss-ratio curve: a key whose hash is below
 *                                it is sampled; create, then lowered by the
 *                                sampler under the region's lock (atomic,
 *                                relaxed); read relaxed on every get/set.
 *                                Here because the line is read anyway
 *   320     8  memory            budget; log_lock (a resize stores it
 *                                without: atomic, release)
 *   328     8  seg_used          segments whose directory state is not
 *                                UNUSED; changed only by dir_set (log.c)
 *                                under log_lock, recounted by repair.
 *                                Committed bytes are derived from it
 *                                (shmc__committed)
 *   336     8  index_geom        linear-hashing state: level << 40 | split
 *                                pointer; index_lock to change, atomic to read
 *   344     4  nseg_hw           high-water mark: segments [0, n) may have
 *                                been committed, and directory entries
 *                                [0, n) are committed memory; only grows;
 *                                log_lock
 *   348    12  free head/tail/n  free segments; log_lock
 *   360    24  small/main head, tail, count: the S3-FIFO queues; log_lock
 *   384    12  retire head/tail/n: evicted, waiting a grace period; log_lock
 *   396     4  cf_seg            copy-forward destination (segment + 1)
 *   400     4  ghost_mask        ghost table size - 1 (create)
 *   404     4  unused_hint       no UNUSED segment below it (a hint for
 *                                commit; never trusted, repair resets it)
 *   408     8  seal_seq          order of sealed segments in the queues;
 *                                log_lock (lets a repair rebuild them)
 *   416     8  index_committed   bytes of the index region committed;
 *                                index_lock and log_lock to change
 *   424     8  items_approx      items, batched by writers (atomic add)
 *   432     8  pool_free         free overflow buckets, a Treiber stack with
 *                                an ABA tag; CAS by writers under a bucket
 *                                lock
 *   440     4  pool_committed    overflow buckets committed; index_lock
 *                                and log_lock to change
 *   444     4  pool_nfree        buckets on the free stack (atomic,
 *                                approximate; the fresh ones not counted)
 *   448    40  index_lock        robust mutex: index splits and merges
 *   488     8  pool_fresh        bits 0..31: the first fresh overflow bucket
 *                                + 1 (0: none yet); buckets [that,
 *                                pool_committed) were never handed out.
 *                                CAS + 1 by a writer claiming one; set
 *                                from 0 by pool_grow (index_lock and
 *                                log_lock).  Bit 32: a pool audit is due
 *                                (atomic or by the reclaim of a writer
 *                                that died holding a bucket lock; cleared
 *                                by the audit).  Was padding: 0 in caches
 *                                made before it, which reads as "none"
 *   512    40  resize_lock       robust mutex: held for a whole resize
 *   576    40  resize_*          target, from, start, phase, pid, reason of
 *                                the resize in progress; resize_lock
 *   616     8  max_memory        the largest budget (create)
 *   624    12  park head/tail/n  unowned OPEN segments (log.c); log_lock
 *   636     4  ghost_clock       ghost insertions so far; log_lock to add
 *   640    60  ag_*              autogrow policy and pressure window;
 *                                policy under resize_lock, window atomic;
 *                                ag_mrc_pm (696): the curve's rule
 *   704   512  hist[16]          ring of the last resizes; resize_lock
 *
 * Lock order: resize_lock -> index_lock -> log_lock -> a bucket lock
 * (-> its buddy).  Readers never take log_lock: they read the index and the items only.
 * The miss-ratio curve's lock (its region) is a leaf: taken with a
 * trylock by gets (inside their read section) and by sets and deletes
 * (after their bucket lock is released); nothing is taken under it.
 *
 * INVARIANTS
 *   - Every offset and length read from the segment is bounds-checked
 *     against file_size (or the segment it belongs to) before use.
 *   - The directory entry of a segment is the truth about it (log.c draws
 *     the state machine); the lists and seg_used are caches of it that a
 *     repair rebuilds.  Every segment whose entry is UNUSED holds no
 *     blocks of the file; every other one is committed.
 *   - committed bytes = the fixed parts (header, slots, index in use,
 *     overflow pool, ghosts, directory up to nseg_hw) + seg_used segments;
 *     a commit happens only when the result stays within the budget.
 *   - A published index entry points at a complete item that lies below
 *     its segment's write_off.
 *   - Memory referenced by an index entry is reused only after the entry
 *     is gone and a grace period has passed.
 */
#ifndef SHMC_LAYOUT_H
#define SHMC_LAYOUT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SHMC__MAGIC "SHMCACH"
/* 3: the overflow pool's fresh range (pool_fresh): a process of format 2
 * would push buckets that format 3 hands out as fresh, twice; and the
 * miss-ratio curve's region and header fields (mrc_keys, mrc_thresh). */
#define SHMC__FORMAT_VERSION 3u
#define SHMC__CACHELINE 64u
#define SHMC__PAGE 4096u
#define SHMC__HDR_SIZE 4096u
#define SHMC__SLOT_SIZE 512u
#define SHMC__BUCKET_SIZE 64u
#define SHMC__BUCKET_WAYS 7u
#define SHMC__GHOST_PER_BUCKET 4u
#define SHMC__SEGHDR_SIZE 64u
#define SHMC__CHECKSUM_SPAN 168u
#define SHMC__NONE 0u /* list terminator: links store segment id + 1 */
/* The largest geometry create() makes and open() accepts: one rule for
 * both (create caps, open refuses beyond). */
#define SHMC__INDEX_MAX (1ull << 32)  /* index buckets */
#define SHMC__NSEG_MAX (1u << 30)     /* data segments */

/* abi word: what must be the same in every process that shares a segment. */
#define SHMC__ABI                                                              \
	((uint32_t)(SHMC__CACHELINE << 24) |                                   \
	 (uint32_t)(sizeof(pthread_mutex_t) << 16) |                           \
	 (uint32_t)(SHMC__SLOT_SIZE / 8u))

struct shmc__hdr {
	/* immutable after create; covered by checksum */
	char magic[8];
	uint32_t version;
	uint32_t abi;
	uint64_t file_size;
	uint64_t created;
	uint32_t seg_size;
	uint32_t max_readers;
	uint64_t slots_off;
	uint64_t index_off;
	uint64_t index_max_buckets;
	uint64_t ghost_off;
	uint64_t data_off;
	uint32_t nseg_max;
	uint32_t default_ttl;
	char name[68];
	uint32_t flags;       /* SHMC__F_* (create) */
	uint32_t mrc_keys;    /* miss-ratio curve keys, 0 = none (create) */
	uint32_t pad0a;
	uint64_t checksum;
	uint8_t pad0[16];

	/* 192: the log lock, alone on its line */
	pthread_mutex_t log_lock;
	uint8_t pad1[64 - sizeof(pthread_mutex_t)];

	/* 256: grace-period epoch, alone on its line (read on every read) */
	uint64_t epoch;
	uint32_t mb_mode;  /* SHMC__MB_*: who reads without fences (attach) */
	uint32_t pad2a;
	uint64_t mrc_thresh; /* sample a key whose hash is below (lib/mrc.c) */
	uint8_t pad2[40];

	/* 320: log state, all under log_lock */
	uint64_t memory;
	uint64_t seg_used;
	uint64_t index_geom;
	uint32_t nseg_hw;
	uint32_t free_head, free_tail, free_count;
	uint32_t small_head, small_tail, small_count;
	uint32_t main_head, main_tail, main_count;
	uint32_t retire_head, retire_tail, retire_count;
	uint32_t cf_seg;
	uint32_t ghost_mask;
	uint32_t unused_hint;
	uint64_t seal_seq;
	uint64_t index_committed;
	int64_t items_approx;
	uint64_t pool_free;      /* overflow-bucket free stack: tag<<32 | id+1 */
	uint32_t pool_committed; /* overflow buckets committed (from the top) */
	uint32_t pool_nfree;

	/* 448: index_lock, serialises index splits and merges */
	pthread_mutex_t index_lock;
	uint64_t pool_fresh; /* fresh overflow buckets: see the table above */
	uint8_t pad4[64 - sizeof(pthread_mutex_t) - 8];

	/* 512: resize_lock, held for a whole memory resize */
	pthread_mutex_t resize_lock;
	uint8_t pad5[64 - sizeof(pthread_mutex_t)];

	/* 576: the resize in progress (resize_lock) */
	uint64_t resize_target;
	uint64_t resize_from;
	uint64_t resize_started;
	uint32_t resize_phase;
	int32_t resize_pid;
	uint32_t resize_reason;
	uint32_t hist_next;
	uint64_t max_memory;   /* largest budget (create; read-only after) */
	uint32_t park_head, park_tail, park_count; /* log_lock: see log.c */
	uint32_t ghost_clock; /* ghost insertions so far; log_lock to add,
	                       * read relaxed (log.c, the ghost FIFO) */

	/* 640: autogrow policy (resize_lock to change) and its state */
	uint64_t ag_step;      /* bytes to grow by; 0 = autogrow off */
	uint64_t ag_ceiling;   /* never grow past this */
	uint32_t ag_util_pct;  /* utilisation threshold */
	uint32_t ag_window_s;  /* for this long */
	uint32_t ag_ghost_pm;  /* and ghost hits per mille of sets above */
	uint32_t ag_checked;   /* unix s of the last check (atomic) */
	uint64_t ag_since;     /* unix s pressure began, 0 = none (atomic) */
	uint64_t ag_last_sets, ag_last_ghosts; /* counters at ag_since */
	uint32_t ag_mrc_pm;    /* grow by the curve: gain per mille, 0 = off */
	uint8_t pad7[4];

	/* 704: the last SHMC__HIST resizes, a ring (resize_lock) */
	struct shmc__hist {
		uint64_t time, from, to;
		int32_t pid;
		uint32_t reason;
	} hist[16];
};

_Static_assert(offsetof(struct shmc__hdr, checksum) == SHMC__CHECKSUM_SPAN,
               "checksum ends the immutable part");
_Static_assert(offsetof(struct shmc__hdr, log_lock) == 192, "layout");
_Static_assert(offsetof(struct shmc__hdr, epoch) == 256, "layout");
_Static_assert(offsetof(struct shmc__hdr, mrc_thresh) == 272, "layout");
_Static_assert(offsetof(struct shmc__hdr, memory) == 320, "layout");
_Static_assert(offsetof(struct shmc__hdr, cf_seg) == 396, "layout");
_Static_assert(offsetof(struct shmc__hdr, seal_seq) == 408, "layout");
_Static_assert(offsetof(struct shmc__hdr, index_lock) == 448, "layout");
_Static_assert(sizeof(pthread_mutex_t) <= 56, "pool_fresh fits index_lock's line");
_Static_assert(offsetof(struct shmc__hdr, resize_lock) == 512, "layout");
_Static_assert(offsetof(struct shmc__hdr, resize_target) == 576, "layout");
_Static_assert(offsetof(struct shmc__hdr, ag_step) == 640, "layout");
_Static_assert(offsetof(struct shmc__hdr, hist) == 704, "layout");
#define SHMC__HIST 16
#define SHMC__GEOM_LEVEL_SHIFT 40
#define SHMC__GEOM_SPLIT_MASK ((1ull << SHMC__GEOM_LEVEL_SHIFT) - 1)
_Static_assert(sizeof(struct shmc__hdr) <= SHMC__HDR_SIZE, "header page");

/*
 * Per-slot counters.  Each is written only by the thread that owns the slot
 * (plain relaxed stores: no locked instruction, no shared line) and read by
 * stats with relaxed loads.  They survive the slot's owner: the next owner
 * goes on adding, so sums never go backwards.
 */
enum shmc__ctr {
	SHMC__C_GETS_UNUSED, /* gets = hits + misses: derived, not kept */
	SHMC__C_HITS, SHMC__C_MISSES, SHMC__C_SETS, SHMC__C_ADDS,
	SHMC__C_ADD_EXISTS, SHMC__C_DELETES, SHMC__C_EVICTIONS,
	SHMC__C_EXPIRATIONS, SHMC__C_COPY_FORWARDS, SHMC__C_INDEX_DROPS,
	SHMC__C_GHOST_HITS, SHMC__C_SET_BYTES, SHMC__C_SEGS_EVICTED,
	SHMC__C_GRACE_PERIODS, SHMC__C_STALLS,
	SHMC__C_LOADS, SHMC__C_LOAD_WAITS, SHMC__C_LOAD_WAIT_NS,
	SHMC__C_TAKEOVERS, SHMC__C_STALE,
	SHMC__C_ITEMS,      /* signed delta: inserts - removals */
	SHMC__C_CAS_SEQ,    /* per-slot sequence for item CAS values */
	SHMC__C_COUNT
};

/*
 * READER SLOT (512 bytes).  One per thread attached to the cache.
 *
 *   line 0  epoch          the owner: global epoch on entering a read
 *                          section, 0 on leaving.  Read by grace periods.
 *   line 1  identity       pid, tid, state: written by the owner when it
 *                          claims the slot, cleared by whoever releases or
 *                          reclaims it (holding mutex).
 *           lock_intent    bucket + 1 the owner is locking or holds, 0 when
 *                          none: lets a reclaimer release a dead owner's lock
 *           lock_intent2   the same for a second (buddy) bucket
 *           lease_seq      get-or-load: odd while the owner runs a loader;
 *                          the owner bumps it (release) and FUTEX_WAKEs
 *                          when done; waiters FUTEX_WAIT on it
 *           lease_rc       the owner's last load result, written before
 *                          lease_seq goes even
 *           open_seg       the owner's open log segment + 1 (log_lock)
 *           stall_since    ns timestamp set by a grace period that found this
 *           stall_epoch    slot holding it back in the section of epoch
 *                          stall_epoch; valid only while the slot's epoch
 *                          is still that one (the same section)
 *   line 2  mutex          robust, process-shared; held by the owner thread
 *                          for the slot's whole life.  trylock by another
 *                          process returning EOWNERDEAD means it died.
 *   line 3+ counters       enum shmc__ctr, owner-written
 */
struct shmc__slot {
	uint64_t epoch;
	uint8_t pad0[56];

	int32_t pid;
	int32_t tid;
	uint32_t state;
	uint32_t lock_intent;
	uint32_t open_seg;
	uint32_t generation;
	uint64_t stall_since;
	uint32_t lock_intent2; /* a buddy bucket + 1 held with lock_intent */
	uint32_t lease_seq;    /* futex: odd while this thread loads a key */
	int32_t lease_rc;      /* the last load's result, for its waiters */
	uint32_t pad1a;
	uint64_t stall_epoch;  /* the section epoch stall_since is about */
	uint8_t pad1[8];

	pthread_mutex_t mutex;
	uint8_t pad2[64 - sizeof(pthread_mutex_t)];

	uint64_t ctr[SHMC__C_COUNT];
};

#define SHMC__MB_FENCEFREE 1u
#define SHMC__MB_NOMB 2u

#define SHMC__SLOT_FREE 0u
#define SHMC__SLOT_USED 1u

_Static_assert(sizeof(pthread_mutex_t) <= 64, "mutex fits a line");
_Static_assert(sizeof(struct shmc__slot) <= SHMC__SLOT_SIZE, "slot size");
_Static_assert(offsetof(struct shmc__slot, mutex) == 128, "layout");

/*
 * SEGMENT DIRECTORY: one u64 per data segment, outside the segments, so a
 * segment's state can be read without touching its memory (a read of a
 * punched segment would allocate a page on tmpfs) and without asking the
 * file system where its holes are.  Written only under log_lock, by
 * dir_set() in log.c; read without it (stats, check) as a hint.
 *
 *   bits  0..7   state (enum shmc__seg_state)
 *   bits  8..23  owner of an OPEN segment: writer slot + 1, 0 = none
 *                (parked: waiting for its grace period or a writer to
 *                adopt it), SHMC__OWNER_CF = the evictor's copy-forward
 *                destination (hdr->cf_seg)
 *   bits 32..63  the writer slot's generation when it took the segment
 */
#define SHMC__DIR_STATE(w) ((uint32_t)(w) & 0xffu)
#define SHMC__DIR_OWNER(w) ((uint32_t)((w) >> 8) & 0xffffu)
#define SHMC__DIR_GEN(w) ((uint32_t)((w) >> 32))
#define SHMC__DIR_WORD(state, owner, gen)                                      \
	((uint64_t)(state) | ((uint64_t)(owner) << 8) | ((uint64_t)(gen) << 32))
#define SHMC__OWNER_CF 0xffffu

/*
 * HUGE PAGES.  A cache created with SHMC__F_HUGE lives on a tmpfs that
 * backs files with 2 MiB pages (mounted huge=within_size, always or
 * advise) and is mapped with MADV_HUGEPAGE.  Such a tmpfs allocates a
 * whole 2 MiB page for any byte of it that is committed, so every region
 * starts on a 2 MiB boundary and every commit and punch is whole 2 MiB
 * granules: what is counted is what the file holds, and a punch never
 * splits a huge page.  Otherwise the granule is the 4 KiB page.
 */
#define SHMC__F_HUGE 1u
#define SHMC__HUGE (2u << 20)

static inline uint64_t shmc__granule(uint32_t flags)
{
	return (flags & SHMC__F_HUGE) ? SHMC__HUGE : SHMC__PAGE;
}

static inline uint64_t shmc__align(uint64_t x, uint64_t g)
{
	return (x + g - 1) & ~(g - 1);
}

/* The directory follows the ghost table, granule aligned. */
static inline uint64_t shmc__dir_off(uint64_t ghost_off,
                                     uint64_t index_max_buckets, uint64_t g)
{
	return shmc__align(ghost_off + index_max_buckets *
	                                   SHMC__GHOST_PER_BUCKET * 4,
	                   g);
}

/* Bytes of directory that cover segments [0, n): whole granules. */
static inline uint64_t shmc__dir_bytes(uint64_t n, uint64_t g)
{
	return shmc__align(n * 8, g);
}

/*
 * SEGMENT HEADER: the first 64 bytes of every committed data segment (the
 * state lives in the directory).
 *
 *   next                      list link (segment + 1); log_lock
 *   write_off                 the appender only: the owning writer of an
 *                             OPEN segment (release store after the item
 *                             bytes, before the item is published), or the
 *                             evictor for the copy-forward segment under
 *                             log_lock; frozen once the segment is sealed
 *   max_expiry                the appender: newest expiry of any item,
 *                             UINT32_MAX if one never expires
 *   retire_epoch              log_lock: the epoch after which no reader
 *                             (RETIRED) or appender (parked OPEN) can still
 *                             be using it
 *   seq                       log_lock, hdr->seal_seq when it is sealed
 */
struct shmc__seghdr {
	uint32_t magic;
	uint32_t pad0;
	uint32_t next;
	uint32_t nitems;
	uint64_t write_off;
	uint64_t retire_epoch;
	uint32_t max_expiry;
	uint32_t pad1;
	uint64_t seq;
	uint8_t pad[16];
};
_Static_assert(sizeof(struct shmc__seghdr) == SHMC__SEGHDR_SIZE, "seghdr");

#define SHMC__SEG_MAGIC 0x53454732u /* "SEG2" */

enum shmc__seg_state {
	SHMC__SEG_UNUSED = 0, /* no memory: never committed, or punched */
	SHMC__SEG_FREE,       /* committed, empty, on the free list */
	SHMC__SEG_OPEN,       /* being appended to (see the owner bits) */
	SHMC__SEG_SMALL,      /* sealed, in the small FIFO */
	SHMC__SEG_MAIN,       /* sealed, in the main FIFO */
	SHMC__SEG_RETIRED,    /* evicted, waiting for its grace period */
	SHMC__SEG_NSTATES
};

/*
 * MISS-RATIO CURVE REGION (lib/mrc.c has the design): at mrc_off, present
 * when hdr->mrc_keys (K) is not 0.  Every field is under its lock but
 * skipped (atomic add) and hist (read relaxed by shmc_mrc, no lock).
 *
 *   off        size     field
 *   0          40       lock     robust process-shared mutex (trylock)
 *   64         4        magic    create (SHMC__MRC_MAGIC)
 *   68         4        keys     create: K again (check compares)
 *   72         4        nkeys    sampled keys in the table, <= K
 *   76         4        clock    next logical time stamp, <= 2K
 *   80         8        bytes    sum of the tracked keys' item sizes
 *   88         8        cold     gets of keys not seen before (weighted)
 *   96         8        skipped  samples dropped, the lock being busy
 *   104        8        resets   state rebuilt (a dead holder, a reset)
 *   112        4        sample0  create: the first rate is 1 in sample0
 *   120        8        gets_base  the slots' get counters at the reset
 *   128        8 x 656  hist     weighted gets by reuse distance (bytes)
 *   5376       8        skipped_w  weight of the skipped gets (atomic add)
 *   5384       8        paused_thr the threshold while paused (shmc_mrc_pause)
 *   5392       8        pause_gets the slots' get counters when paused
 *   8192       16 x 2K  table    sampled keys: open addressing by hash
 *   +32K       8 x 2K   tree     Fenwick tree over time stamps: item size
 *   +48K       4 x 2K   own      time stamp -> table slot + 1, 0 = none
 *
 * Weights are in units of 1/256 of an estimated reference: a sample
 * taken at rate R adds 256/R, so a later change of R needs no rescaling.
 */
#define SHMC__MRC_MAGIC 0x3143524du /* "MRC1" */
#define SHMC__MRC_KEYS_MIN 64u
#define SHMC__MRC_KEYS_MAX (1u << 20)
#define SHMC__MRC_HIST 656u  /* buckets: [0, 1 KiB), then 16 a doubling */
#define SHMC__MRC_SUB 16u
#define SHMC__MRC_BASE 1024u
#define SHMC__MRC_HDR 8192u  /* the table starts here */
#define SHMC__MRC_UNIT 256.0 /* weight of one reference */

struct shmc__mrc {
	pthread_mutex_t lock;
	uint8_t pad0[64 - sizeof(pthread_mutex_t)];
	uint32_t magic;
	uint32_t keys;
	uint32_t nkeys;
	uint32_t clock;
	uint64_t bytes;
	uint64_t cold;
	uint64_t skipped;
	uint64_t resets;
	uint32_t sample0;   /* create: 1 in this many keys at first */
	uint32_t pad1a;
	uint64_t gets_base; /* the slots' get counters summed at the reset */
	uint64_t hist[SHMC__MRC_HIST];
	uint64_t skipped_w; /* weight of the gets among skipped samples */
	uint64_t paused_thr; /* the threshold while paused, 0 = running */
	uint64_t pause_gets; /* the slots' get counters when paused */
};

_Static_assert(offsetof(struct shmc__mrc, hist) == 128, "mrc layout");
_Static_assert(sizeof(struct shmc__mrc) <= SHMC__MRC_HDR, "mrc header");

/* A sampled key: its hash, time stamp + 1 (0 = empty slot), item size. */
struct shmc__mrc_key {
	uint64_t hash;
	uint32_t ts1;
	uint32_t size;
};

/* The first threshold: one key in `sample` (0: the default, 32). */
static inline uint64_t shmc__mrc_first_thresh(uint32_t sample)
{
	return UINT64_MAX / (sample ? sample : 32u);
}

/* Where the region starts: after the slots, page aligned. */
static inline uint64_t shmc__mrc_off(uint64_t slots_off, uint32_t max_readers)
{
	return shmc__align(slots_off + (uint64_t)max_readers * SHMC__SLOT_SIZE,
	                   SHMC__PAGE);
}

/* Its bytes for K keys (0 for none): table 2K x 16, tree 2K x 8, own
 * 2K x 4, after the fixed part. */
static inline uint64_t shmc__mrc_bytes(uint32_t keys)
{
	return keys ? shmc__align(SHMC__MRC_HDR + (uint64_t)keys * 56u,
	                          SHMC__PAGE)
	            : 0;
}

#endif /* SHMC_LAYOUT_H */
