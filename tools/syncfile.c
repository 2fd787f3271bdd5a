/*
 * syncfile.c - the record `shmcache sync` keeps of its work, and its
 * reading by stats, top, health and the exporter (metrics.c).
 *
 * WHERE
 * A small file next to the cache, SHMCACHE_DIR/shmcache-sync.NAME, not a
 * field of the cache segment: the segment's format stays as it is, and a
 * cache without a sync carries nothing for it.  The name does not start
 * with "shmcache." so `shmcache list` does not take it for a cache.
 *
 * WHO WRITES
 * Only the sync process, which holds flock(LOCK_EX) on the file for its
 * whole life: a second sync for the same cache is refused, and a reader
 * that can take LOCK_SH knows that no sync runs (the record then shows
 * the last one's counters).  Fields are 8-byte words stored with relaxed
 * atomic stores and read with relaxed loads: each is a counter or a gauge
 * of its own, nothing orders one against another.
 *
 * TRUST
 * Readers check the magic, the version, the record size and the file
 * size before using anything, and copy the address text with its length
 * bounded; a damaged file reads as "no sync".
 *
 * LAYOUT (struct sync_rec, 512 bytes; the file is one page)
 *   0   magic "shmcsync"          8   version (1)    12  size (512)
 *   16  pid of the sync           20  connected (1 while tracking is on)
 *   24  started, unix s
 *   32  counters, enum tool_sync_ctr order: invalidations, keys deleted
 *       by them, flushes, keys removed by flushes, reconnects, last
 *       probe lag (ns), probes answered, largest probe lag (ns)
 *   96  last time tracking went on (on every node), unix s
 *   104 address, 128 bytes NUL-padded (several: the first ones, then
 *       "+N more")
 *   232 nodes followed (--redis given; 0 in a record of a sync before
 *       there could be several: read as 1)
 *   236 nodes tracking, bit i for the i-th --redis
 *   240 reserved
 * "connected" at 20 is 1 only while every node is tracking: only then
 * is every write reported.  The two node words are later fields in what
 * was reserved (zero), so the version stays 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

#define SYNC_MAGIC 0x636e7973636d6873ull /* "shmcsync" little-endian */
#define SYNC_VERSION 1u
#define SYNC_FILE_SIZE 4096u

struct sync_rec {
	uint64_t magic;
	uint32_t version, size;
	int32_t pid;
	uint32_t connected;
	uint64_t started;
	uint64_t v[TOOL_SYNC_NCTR];
	uint64_t last_connected;
	char addr[128];
	uint32_t nodes, nodes_up;
	uint64_t reserved[34];
};
_Static_assert(sizeof(struct sync_rec) == 512, "sync record layout");
_Static_assert(TOOL_SYNC_NCTR == 8, "sync record layout");

int tool_sync_path(const char *cache_path, const char *name, char *out,
                   size_t len)
{
	const char *slash = strrchr(cache_path, '/');
	int dl = slash ? (int)(slash - cache_path) : 1;
	int n = snprintf(out, len, "%.*s/shmcache-sync.%s", dl,
	                 slash ? cache_path : ".", name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct tool_sync_writer {
	int fd;
	struct sync_rec *r;
};

int tool_sync_attach(const char *path, unsigned mode, const char *addr,
                     struct tool_sync_writer **out, int32_t *holder)
{
	*holder = 0;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	              mode & 0666);
	if (fd < 0)
		return -errno;
	/* A reader holds LOCK_SH for an instant: try a few times. */
	int lk = -1;
	for (int i = 0; i < 20 && (lk = flock(fd, LOCK_EX | LOCK_NB)) != 0 &&
	                errno == EWOULDBLOCK;
	     i++)
		usleep(5000);
	if (lk != 0) {
		int e = errno;
		struct tool_sync s;
		if (e == EWOULDBLOCK && tool_sync_read(path, &s) == 0)
			*holder = s.pid;
		close(fd);
		return e == EWOULDBLOCK ? -EBUSY : -e;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    ((uint64_t)st.st_size < SYNC_FILE_SIZE &&
	     ftruncate(fd, SYNC_FILE_SIZE) != 0)) {
		int e = errno ? errno : EINVAL;
		close(fd);
		return -e;
	}
	void *p = mmap(NULL, SYNC_FILE_SIZE, PROT_READ | PROT_WRITE,
	               MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		return -e;
	}
	struct tool_sync_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		munmap(p, SYNC_FILE_SIZE);
		close(fd);
		return -ENOMEM;
	}
	w->fd = fd;
	w->r = p;
	struct sync_rec *r = w->r;
	/* Counters survive a restart of the sync when the record is ours;
	 * anything else is started afresh.  We hold the lock: no one else
	 * writes. */
	if (r->magic != SYNC_MAGIC || r->version != SYNC_VERSION ||
	    r->size != sizeof(*r))
		memset(r, 0, sizeof(*r));
	r->version = SYNC_VERSION;
	r->size = sizeof(*r);
	/* A sync that was SIGKILLed left "connected" set.  Cleared before
	 * our pid is stored, with release: a reader that sees our pid sees
	 * them cleared; one that sees the dead pid ignores them (read). */
	__atomic_store_n(&r->connected, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->nodes, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->nodes_up, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&r->pid, (int32_t)getpid(), __ATOMIC_RELEASE);
	__atomic_store_n(&r->started, (uint64_t)time(NULL), __ATOMIC_RELAXED);
	memset(r->addr, 0, sizeof(r->addr));
	snprintf(r->addr, sizeof(r->addr), "%s", addr);
	/* Release: a reader that sees the magic sees the fields above. */
	__atomic_store_n(&r->magic, SYNC_MAGIC, __ATOMIC_RELEASE);
	*out = w;
	return 0;
}

void tool_sync_add(struct tool_sync_writer *w, enum tool_sync_ctr i,
                   uint64_t n)
{
	/* One writer: a relaxed load and store make a counter. */
	uint64_t v = __atomic_load_n(&w->r->v[i], __ATOMIC_RELAXED);
	__atomic_store_n(&w->r->v[i], v + n, __ATOMIC_RELAXED);
}

void tool_sync_set(struct tool_sync_writer *w, enum tool_sync_ctr i,
                   uint64_t v)
{
	__atomic_store_n(&w->r->v[i], v, __ATOMIC_RELAXED);
}

void tool_sync_connected(struct tool_sync_writer *w, bool up)
{
	__atomic_store_n(&w->r->connected, up ? 1u : 0u, __ATOMIC_RELAXED);
	if (up)
		__atomic_store_n(&w->r->last_connected, (uint64_t)time(NULL),
		                 __ATOMIC_RELAXED);
}

void tool_sync_nodes(struct tool_sync_writer *w, unsigned nodes,
                     uint32_t up)
{
	__atomic_store_n(&w->r->nodes, (uint32_t)nodes, __ATOMIC_RELAXED);
	__atomic_store_n(&w->r->nodes_up, up, __ATOMIC_RELAXED);
}

void tool_sync_detach(struct tool_sync_writer *w)
{
	if (!w)
		return;
	tool_sync_connected(w, false);
	__atomic_store_n(&w->r->nodes_up, 0, __ATOMIC_RELAXED);
	munmap(w->r, SYNC_FILE_SIZE);
	close(w->fd); /* drops the lock */
	free(w);
}

int tool_sync_read(const char *path, struct tool_sync *s)
{
	memset(s, 0, sizeof(*s));
	/* O_NONBLOCK: a FIFO put in the directory in its place would
	 * otherwise hold stats (or the exporter) in open() for good. */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < SYNC_FILE_SIZE) {
		close(fd);
		return SHMC_ECORRUPT;
	}
	const struct sync_rec *r =
	    mmap(NULL, SYNC_FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED) {
		int e = errno;
		close(fd);
		return -e;
	}
	int rc = 0;
	/* Acquire: pairs with the release store of the magic. */
	if (__atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != SYNC_MAGIC ||
	    r->version != SYNC_VERSION || r->size != sizeof(*r)) {
		rc = SHMC_ECORRUPT;
	} else {
		s->present = true;
		/* Acquire: pairs with the release store of the pid. */
		s->pid = __atomic_load_n(&r->pid, __ATOMIC_ACQUIRE);
		s->connected = __atomic_load_n(&r->connected, __ATOMIC_RELAXED);
		s->started = __atomic_load_n(&r->started, __ATOMIC_RELAXED);
		s->last_connected =
		    __atomic_load_n(&r->last_connected, __ATOMIC_RELAXED);
		for (int i = 0; i < TOOL_SYNC_NCTR; i++)
			s->v[i] = __atomic_load_n(&r->v[i], __ATOMIC_RELAXED);
		s->nodes = __atomic_load_n(&r->nodes, __ATOMIC_RELAXED);
		s->nodes_up = __atomic_load_n(&r->nodes_up, __ATOMIC_RELAXED);
		if (s->nodes == 0) { /* written by a one-node sync */
			s->nodes = 1;
			s->nodes_up = s->connected ? 1 : 0;
		}
		if (s->nodes > 32)
			s->nodes = 32; /* no more bits to tell of them */
		if (s->nodes < 32)
			s->nodes_up &= (1u << s->nodes) - 1;
		memcpy(s->addr, r->addr, sizeof(s->addr) - 1);
		s->addr[sizeof(s->addr) - 1] = 0;
		/* Running: the sync holds LOCK_EX for its life. */
		if (flock(fd, LOCK_SH | LOCK_NB) == 0)
			flock(fd, LOCK_UN);
		else
			s->running = errno == EWOULDBLOCK;
		/* The lock may be a new sync's that has not stored its pid
		 * yet: what we read is then a dead one's. */
		if (s->running && s->pid > 0 && kill(s->pid, 0) != 0 &&
		    errno == ESRCH)
			s->connected = s->nodes_up = 0;
		if (!s->running)
			s->connected = s->nodes_up = 0;
	}
	munmap((void *)r, SYNC_FILE_SIZE);
	close(fd);
	return rc;
}
