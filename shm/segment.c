/*
 * segment.c - create, open, validate, commit and punch the cache file.
 *
 * WHAT
 * A cache is one sparse file SHMCACHE_DIR/shmcache.NAME whose length is the
 * reservation (the largest size the cache may ever grow to).  Every process
 * maps all of it once, MAP_SHARED.  Memory is committed with fallocate(),
 * which fails with ENOSPC at once instead of a SIGBUS on first touch later,
 * and given back with FALLOC_FL_PUNCH_HOLE.  Growing or shrinking never
 * remaps: the mapping already covers the reservation.
 *
 * WHY A TEMPORARY NAME
 * create() builds the whole header under a temporary name and link()s it
 * into place.  link() fails with EEXIST atomically, so two creators cannot
 * both win, and no opener ever sees a half-written header.
 *
 * TRUST
 * open() reads the header with pread() and validates it (magic, format
 * version, ABI word, checksum of the immutable part, every offset against
 * the real file length) before it maps anything.  A failed open never
 * writes to the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <numa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "shmcache.h"
#include "shm.h"

static int sys_open(const char *p, int f, mode_t m) { return open(p, f, m); }

#define SYS_DEFAULT                                                            \
	{                                                                      \
		.open = sys_open, .close = close, .fstat = fstat,              \
		.fchmod = fchmod, .fchown = fchown, .ftruncate = ftruncate,    \
		.fallocate = fallocate, .pread = pread, .mmap = mmap,          \
		.munmap = munmap, .link = link, .unlink = unlink,              \
	}

struct shmc__sys shmc__sys = SYS_DEFAULT;

void shmc__sys_reset(void)
{
	shmc__sys = (struct shmc__sys)SYS_DEFAULT;
}


static uint64_t pow2_ceil(uint64_t v)
{
	uint64_t p = 1;
	while (p < v && p < (1ull << 62))
		p <<= 1;
	return p;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int shmc__name_ok(const char *name)
{
	size_t n = 0;
	if (!name)
		return SHMC_ENAME;
	for (const char *p = name; *p; p++, n++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		          ch == '-';
		if (!ok || n >= SHMC_NAME_MAX)
			return SHMC_ENAME;
	}
	/* "." and ".." are valid characters but name no file of ours. */
	if (n == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return SHMC_ENAME;
	return 0;
}

int shmc__path(const char *name, char *buf, size_t len)
{
	int rc = shmc__name_ok(name);
	if (rc)
		return rc;
	const char *dir = getenv("SHMCACHE_DIR");
	if (!dir || !*dir)
		dir = "/dev/shm";
	int n = snprintf(buf, len, "%s/shmcache.%s", dir, name);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int shmc__geometry(uint64_t memory, uint64_t max_memory, uint32_t seg_size,
                   uint32_t max_readers, uint64_t index_buckets,
                   uint32_t flags, uint32_t mrc_keys, struct shmc__geom *g)
{
	memset(g, 0, sizeof(*g));
	if (!is_pow2(seg_size) || seg_size < SHMC_SEGMENT_MIN ||
	    seg_size > SHMC_SEGMENT_MAX || (flags & ~SHMC__F_HUGE))
		return -EINVAL;
	if (mrc_keys && (!is_pow2(mrc_keys) || mrc_keys < SHMC__MRC_KEYS_MIN ||
	                 mrc_keys > SHMC__MRC_KEYS_MAX))
		return -EINVAL;
	/* Huge pages: segments of whole huge pages (see layout.h). */
	uint64_t G = shmc__granule(flags);
	if (seg_size < G)
		seg_size = (uint32_t)G;
	/* The bucket lock names its owner slot in 15 bits. */
	if (max_readers < 1 || max_readers > 32767)
		return -EINVAL;
	if (max_memory == 0)
		max_memory = memory;
	if (max_memory < memory || max_memory > (1ull << 46))
		return SHMC_EBUDGET;
	/* The largest index open() accepts is SHMC__INDEX_MAX buckets; an
	 * explicit starting size must leave it room to grow 4x. */
	if (index_buckets > SHMC__INDEX_MAX / 4)
		return -EINVAL;
	/* The index starts small and grows with the items (linear hashing,
	 * lib/index.c); the reservation holds it at its largest. */
	if (index_buckets == 0)
		index_buckets = memory / 2048;
	if (index_buckets > SHMC__INDEX_MAX / 4)
		index_buckets = SHMC__INDEX_MAX / 4;
	index_buckets = pow2_ceil(index_buckets < 256 ? 256 : index_buckets);
	uint64_t index_max = pow2_ceil(max_memory / 256);
	if (index_max < 4 * index_buckets)
		index_max = 4 * index_buckets;
	if (index_max > SHMC__INDEX_MAX)
		index_max = SHMC__INDEX_MAX;
	/* The overflow pool (an eighth of the index region, at its top) must
	 * hold whole granules. */
	if (index_max * 8 < G)
		index_max = G / 8;

	g->flags = flags;
	g->memory = memory;
	g->max_memory = max_memory;
	g->seg_size = seg_size;
	g->max_readers = max_readers;
	g->index_buckets = index_buckets;
	g->index_max_buckets = index_max;
	g->slots_off = SHMC__HDR_SIZE;
	g->mrc_keys = mrc_keys;
	g->mrc_off = shmc__mrc_off(g->slots_off, max_readers);
	g->index_off = shmc__align(g->mrc_off + shmc__mrc_bytes(mrc_keys), G);
	g->ghost_off = g->index_off + index_max * SHMC__BUCKET_SIZE;
	/* Committed from the start: the buckets in use and the ghosts (the
	 * directory is committed with the segments it describes). */
	g->index_committed = shmc__align(index_buckets * SHMC__BUCKET_SIZE, G);
	g->fixed_committed =
	    g->index_off + g->index_committed +
	    shmc__align(index_buckets * SHMC__GHOST_PER_BUCKET * 4, G);
	/* The budget must hold the fixed parts and a few segments. */
	if (memory < g->fixed_committed + 4ull * seg_size + G)
		return SHMC_EBUDGET;
	uint64_t nseg = (max_memory - g->fixed_committed) / seg_size;
	if (nseg > SHMC__NSEG_MAX)
		return SHMC_EBUDGET;
	g->nseg_max = (uint32_t)nseg;
	g->data_off = shmc__align(shmc__dir_off(g->ghost_off, index_max, G) +
	                              shmc__dir_bytes(nseg, G),
	                          G);
	g->file_size = g->data_off + nseg * seg_size;
	return 0;
}

uint64_t shmc__hdr_checksum(const struct shmc__hdr *h)
{
	return XXH64(h, SHMC__CHECKSUM_SPAN, 0x73686d63u);
}

int shmc__hdr_validate(const void *buf, size_t len, uint64_t file_size)
{
	const struct shmc__hdr *h = buf;
	if (len < sizeof(h->magic) ||
	    memcmp(h->magic, SHMC__MAGIC, sizeof(h->magic)) != 0)
		return SHMC_ENOTCACHE;
	if (len < SHMC__HDR_SIZE)
		return SHMC_ECORRUPT;
	if (h->version != SHMC__FORMAT_VERSION || h->abi != SHMC__ABI)
		return SHMC_EVERSION;
	if (h->checksum != shmc__hdr_checksum(h))
		return SHMC_ECORRUPT;
	/* Checksummed, so a mismatch below is a foreign or buggy writer, or a
	 * truncated file: refuse either way, and check every field we will
	 * use as an offset. */
	if (h->file_size != file_size)
		return SHMC_ECORRUPT;
	if (!is_pow2(h->seg_size) || h->seg_size < SHMC_SEGMENT_MIN ||
	    h->seg_size > SHMC_SEGMENT_MAX || h->max_readers < 1 ||
	    h->max_readers > 32767 || !is_pow2(h->index_max_buckets) ||
	    h->index_max_buckets < 1024 ||
	    h->index_max_buckets > SHMC__INDEX_MAX)
		return SHMC_ECORRUPT;
	if (h->flags & ~SHMC__F_HUGE)
		return SHMC_ECORRUPT;
	if (h->mrc_keys &&
	    (!is_pow2(h->mrc_keys) || h->mrc_keys < SHMC__MRC_KEYS_MIN ||
	     h->mrc_keys > SHMC__MRC_KEYS_MAX))
		return SHMC_ECORRUPT;
	uint64_t G = shmc__granule(h->flags);
	if (h->slots_off != SHMC__HDR_SIZE || h->seg_size < G ||
	    h->index_max_buckets * 8 < G ||
	    h->index_off !=
	        shmc__align(shmc__mrc_off(h->slots_off, h->max_readers) +
	                        shmc__mrc_bytes(h->mrc_keys),
	                    G) ||
	    h->ghost_off != h->index_off + h->index_max_buckets *
	                                       SHMC__BUCKET_SIZE ||
	    h->nseg_max < 1 || h->nseg_max > SHMC__NSEG_MAX ||
	    h->data_off != shmc__align(shmc__dir_off(h->ghost_off,
	                                             h->index_max_buckets, G) +
	                                   shmc__dir_bytes(h->nseg_max, G),
	                               G))
		return SHMC_ECORRUPT;
	if (
	    h->data_off + (uint64_t)h->nseg_max * h->seg_size != file_size)
		return SHMC_ECORRUPT;
	if (memchr(h->name, 0, sizeof(h->name)) == NULL)
		return SHMC_ECORRUPT;
	return 0;
}

static int apply_numa(void *base, size_t size, int numa, int node)
{
	if (numa == SHMC_NUMA_DEFAULT)
		return 0;
	if (numa_available() < 0)
		return numa == SHMC_NUMA_NODE && node != 0 ? -EINVAL : 0;
	switch (numa) {
	case SHMC_NUMA_INTERLEAVE:
		numa_interleave_memory(base, size, numa_all_nodes_ptr);
		return 0;
	case SHMC_NUMA_NODE:
		if (node < 0 || node > numa_max_node())
			return -EINVAL;
		numa_tonode_memory(base, size, node);
		return 0;
	case SHMC_NUMA_LOCAL:
		numa_setlocal_memory(base, size);
		return 0;
	default:
		return -EINVAL;
	}
}

/*
 * Whether dir is on a tmpfs that gives files huge pages: its mount (the
 * longest mount point that is a prefix of dir, from mountinfo) is tmpfs
 * with huge=within_size or always.
 */
static bool huge_dir_ok(const char *dir)
{
	char real[4096];
	if (!realpath(dir, real))
		return false;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char line[4096], best_opts[1024] = "", best_type[64] = "";
	size_t best = 0;
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts ... - type src sopts */
		char mnt[1024], type[64], sopts[1024];
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %1023s", type, sopts) != 2)
			continue;
		size_t n = strlen(mnt);
		bool prefix = strncmp(real, mnt, n) == 0 &&
		              (real[n] == '/' || real[n] == 0 || n == 1);
		if (prefix && n >= best) {
			best = n;
			snprintf(best_type, sizeof(best_type), "%s", type);
			snprintf(best_opts, sizeof(best_opts), "%s", sopts);
		}
	}
	fclose(f);
	/* (huge=advise is not enough: fallocate, which commits our memory,
	 * does not ask for huge pages, only faults can.) */
	return strcmp(best_type, "tmpfs") == 0 &&
	       (strstr(best_opts, "huge=within_size") ||
	        strstr(best_opts, "huge=always"));
}

/* A huge cache's mapping asks for huge pages (a hint). */
static void map_advise(struct shmc__map *m, uint32_t flags)
{
	if (flags & SHMC__F_HUGE)
		madvise(m->base, m->size, MADV_HUGEPAGE);
}

static int map_fd(struct shmc__map *m, int fd, uint64_t size)
{
	void *p = shmc__sys.mmap(NULL, size, PROT_READ | PROT_WRITE,
	                         MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->base = p;
	m->size = size;
	m->fd = fd;
	m->hdr = p;
	/* No readahead: a page-cache file system (ext4 and others with large
	 * folios) would otherwise fault in folios that span a committed
	 * segment and its uncommitted neighbours, and the first store into
	 * one dirties the whole folio - the holes get blocks the budget
	 * never counted (seen on ext4: 704 KiB over a 64 MiB budget after a
	 * plain grow).  Faults then bring in one page at a time.  tmpfs has
	 * no readahead; a hint, so a failure changes nothing else. */
	madvise(p, size, MADV_RANDOM);
	return 0;
}

int shmc__seg_commit(struct shmc__map *m, uint64_t off, uint64_t len)
{
	if (off > m->size || len > m->size - off)
		return -EINVAL;
	for (;;) {
		if (shmc__sys.fallocate(m->fd, 0, (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int shmc__seg_punch(struct shmc__map *m, uint64_t off, uint64_t len)
{
	if (off > m->size || len > m->size - off)
		return -EINVAL;
	int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	for (;;) {
		if (shmc__sys.fallocate(m->fd, mode, (off_t)off, (off_t)len) ==
		    0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

void shmc__seg_prefault(struct shmc__map *m, uint64_t off, uint64_t len)
{
#ifdef MADV_POPULATE_WRITE
	if (off <= m->size && len <= m->size - off)
		madvise(m->base + off, len, MADV_POPULATE_WRITE);
#else
	(void)m;
	(void)off;
	(void)len;
#endif
}

uint64_t shmc__seg_huge_bytes(struct shmc__map *m)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	char line[512];
	uint64_t kb = 0;
	bool ours = false;
	uintptr_t lo = (uintptr_t)m->base, hi = lo + m->size;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		unsigned long long v;
		char perm[8];
		/* "lo-hi perms ..." starts each mapping; "Key: value" lines
		 * never parse so (a key has a non-hex letter before '-'). */
		if (sscanf(line, "%lx-%lx %7s", &a, &b, perm) == 3) {
			ours = a >= lo && b <= hi;
		} else if (ours &&
		           (sscanf(line, "ShmemPmdMapped: %llu kB", &v) == 1 ||
		            sscanf(line, "FilePmdMapped: %llu kB", &v) == 1)) {
			kb += v;
		}
	}
	fclose(f);
	return kb << 10;
}

bool shmc__seg_has_data(struct shmc__map *m, uint64_t off, uint64_t len)
{
	/* Asked of the file system, never through the mapping: on tmpfs a
	 * read fault on a hole of a shared mapping allocates a page. */
	off_t d = lseek(m->fd, (off_t)off, SEEK_DATA);
	return d >= 0 && (uint64_t)d < off + len;
}

static void init_header(struct shmc__map *m, const char *name,
                        const struct shmc__geom *g)
{
	struct shmc__hdr *h = m->hdr;
	memcpy(h->magic, SHMC__MAGIC, sizeof(h->magic));
	h->version = SHMC__FORMAT_VERSION;
	h->abi = SHMC__ABI;
	h->file_size = g->file_size;
	h->created = (uint64_t)time(NULL);
	h->seg_size = g->seg_size;
	h->max_readers = g->max_readers;
	h->slots_off = g->slots_off;
	h->index_off = g->index_off;
	h->index_max_buckets = g->index_max_buckets;
	h->ghost_off = g->ghost_off;
	h->data_off = g->data_off;
	h->nseg_max = g->nseg_max;
	h->default_ttl = g->default_ttl;
	h->flags = g->flags;
	h->mrc_keys = g->mrc_keys;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->checksum = shmc__hdr_checksum(h);

	h->epoch = 1; /* 0 in a slot means "not reading" */
	h->memory = g->memory;
	h->max_memory = g->max_memory;
	h->index_geom = (uint64_t)__builtin_ctzll(g->index_buckets)
	                << SHMC__GEOM_LEVEL_SHIFT;
	h->index_committed = g->index_committed;
	h->ghost_mask = (uint32_t)(g->index_buckets * SHMC__GHOST_PER_BUCKET - 1);
}

int shmc__seg_create(const char *name, const struct shmc__geom *g,
                     uint32_t mode, uint32_t gid, int numa, int numa_node,
                     struct shmc__map *m)
{
	char tmp[sizeof(m->path) + 64];
	int rc = shmc__path(name, m->path, sizeof(m->path));
	if (rc)
		return rc;
	if (g->flags & SHMC__F_HUGE) {
		char dir[sizeof(m->path)];
		snprintf(dir, sizeof(dir), "%s", m->path);
		char *sl = strrchr(dir, '/');
		if (sl)
			*sl = 0;
		if (!huge_dir_ok(sl && *dir ? dir : "/"))
			return -ENOTSUP;
	}
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	const char *slash = strrchr(m->path, '/');
	snprintf(tmp, sizeof(tmp), "%.*s/.shmcache-tmp.%s.%d.%ld",
	         (int)(slash - m->path), m->path, name, (int)getpid(),
	         (long)ts.tv_nsec);

	int fd = shmc__sys.open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW |
	                                 O_CLOEXEC,
	                        mode & 07777);
	if (fd < 0)
		return -errno;
	/* The group before the mode (a chown by a non-root user clears the
	 * set-id bits), both before the file is linked in: nobody but its
	 * creator can open it under a group or mode it was not meant for.
	 * The umask must not narrow what the caller asked for. */
	if ((gid && shmc__sys.fchown(fd, (uid_t)-1, (gid_t)gid) != 0) ||
	    shmc__sys.fchmod(fd, mode & 07777) != 0 ||
	    shmc__sys.ftruncate(fd, (off_t)g->file_size) != 0) {
		rc = -errno;
		goto fail_fd;
	}
	rc = map_fd(m, fd, g->file_size);
	if (rc)
		goto fail_fd;
	rc = apply_numa(m->base, m->size, numa, numa_node);
	if (rc)
		goto fail_map;
	/* Commit the fixed part: header, slots, the index and ghost table in
	 * use.  ENOSPC here is the honest answer to a budget the file system
	 * cannot hold. */
	rc = shmc__seg_commit(m, 0, g->index_off + g->index_committed);
	if (!rc)
		rc = shmc__seg_commit(m, g->ghost_off,
		                      g->fixed_committed -
		                          (g->index_off + g->index_committed));
	if (rc)
		goto fail_map;
	init_header(m, name, g);
	m->slots_off = g->slots_off;
	m->max_readers = g->max_readers;
	map_advise(m, g->flags);
	rc = shmc__mutex_init(&m->hdr->log_lock);
	if (!rc)
		rc = shmc__mutex_init(&m->hdr->index_lock);
	if (!rc)
		rc = shmc__mutex_init(&m->hdr->resize_lock);
	for (uint32_t i = 0; !rc && i < g->max_readers; i++)
		rc = shmc__mutex_init(&shmc__slot_at(m, i)->mutex);
	if (!rc && g->mrc_keys) {
		/* The miss-ratio curve's sampler (lib/mrc.c): its lock,
		 * identity and first rate, before anyone can see the file. */
		struct shmc__mrc *r = (struct shmc__mrc *)(m->base + g->mrc_off);
		rc = shmc__mutex_init(&r->lock);
		r->magic = SHMC__MRC_MAGIC;
		r->keys = g->mrc_keys;
		r->sample0 = g->mrc_sample;
		m->hdr->mrc_thresh = shmc__mrc_first_thresh(g->mrc_sample);
	}
	if (rc)
		goto fail_map;
	if (shmc__sys.link(tmp, m->path) != 0) {
		rc = -errno;
		goto fail_map;
	}
	shmc__sys.unlink(tmp);
	return 0;

fail_map:
	shmc__sys.munmap(m->base, m->size);
	m->base = NULL;
fail_fd:
	shmc__sys.unlink(tmp);
	shmc__sys.close(fd);
	return rc;
}

int shmc__seg_open(const char *name, unsigned flags, struct shmc__map *m)
{
	int rc = shmc__path(name, m->path, sizeof(m->path));
	if (rc)
		return rc;
	int fd = shmc__sys.open(m->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == ELOOP || errno == EISDIR ? SHMC_ENOTCACHE : -errno;
	struct stat st;
	if (shmc__sys.fstat(fd, &st) != 0) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = SHMC_ENOTCACHE;
		goto fail;
	}
	if (st.st_uid != geteuid() && !(flags & SHMC_OPEN_ANY_OWNER)) {
		rc = -EACCES;
		goto fail;
	}
	uint8_t hbuf[SHMC__HDR_SIZE]; /* on the stack: no TLS (SHMC__TLS_IE) */
	ssize_t n = shmc__sys.pread(fd, hbuf, sizeof(hbuf), 0);
	if (n < 0) {
		rc = -errno;
		goto fail;
	}
	rc = shmc__hdr_validate(hbuf, (size_t)n, (uint64_t)st.st_size);
	if (rc)
		goto fail;
	rc = map_fd(m, fd, (uint64_t)st.st_size);
	if (rc)
		goto fail;
	/* Re-validate through the mapping: the file may have changed between
	 * pread and mmap, and only the mapped copy is used from here on. */
	rc = shmc__hdr_validate(m->base, SHMC__HDR_SIZE, m->size);
	if (rc) {
		shmc__sys.munmap(m->base, m->size);
		m->base = NULL;
		goto fail;
	}
	/* One read of the field the slot addresses come from, bounded
	 * again (another process may have changed it since validation). */
	uint32_t mr = shmc__load(&m->hdr->max_readers, __ATOMIC_RELAXED);
	if (mr < 1 || mr > 32767 ||
	    SHMC__HDR_SIZE + (uint64_t)mr * SHMC__SLOT_SIZE > m->size) {
		shmc__sys.munmap(m->base, m->size);
		m->base = NULL;
		rc = SHMC_ECORRUPT;
		goto fail;
	}
	m->slots_off = SHMC__HDR_SIZE; /* validated: the only value */
	m->max_readers = mr;
	map_advise(m, m->hdr->flags);
	return 0;
fail:
	shmc__sys.close(fd);
	return rc;
}

void shmc__seg_close(struct shmc__map *m)
{
	if (m->base)
		shmc__sys.munmap(m->base, m->size);
	if (m->fd >= 0)
		shmc__sys.close(m->fd);
	m->base = NULL;
	m->hdr = NULL;
	m->fd = -1;
}
