/*
 * cmd_dump.c - `shmcache dump NAME FILE`: writes every live item of cache
 * NAME to FILE in the format of snapshot.h.
 *
 * HOW IT WORKS
 * 1. shmc_keys() collects the keys into a private arena (its callback may
 *    not call back into the cache, and must not block inside the read
 *    section: writing happens later).
 * 2. Each key is read with shmc_get() (value and flags), then shmc_ttl()
 *    (seconds left, recorded relative to the header's time, see
 *    snapshot.h); a key evicted or deleted since step 1 is skipped, so the
 *    dump is a consistent set of items each of which was in the cache, not
 *    a point-in-time image.  A key set again between its get and its
 *    shmc_ttl() is recorded with the new TTL and the old value: the pair
 *    is not atomic, and neither is the dump.
 * 3. The records stream into FILE.tmp.PID in FILE's directory while an
 *    XXH64 state hashes every byte; the trailer closes it, the file is
 *    fsync()ed and renamed over FILE, so FILE is never half-written.
 * Progress goes to stderr when stderr is a terminal.
 *
 * LIMITATION: a get-or-load value's soft TTL (stale-while-revalidate) is
 * not exposed by the library and is not kept: restored, such an item has
 * only its hard TTL.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "snapshot.h"
#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache dump NAME FILE [--quiet]\n\n"
	       "Writes every live item of cache NAME to FILE (versioned, "
	       "checksummed),\natomically (a temporary file renamed into "
	       "place), and says how many.\n\n"
	       "  -q, --quiet  print nothing on success\n"
	       "  -h, --help   this help\n");
}

struct keyset {
	uint8_t *arena;
	size_t used, cap;
	uint64_t n;
	int err;
};

static int on_key(const void *key, size_t klen, size_t vlen, void *arg)
{
	(void)vlen;
	struct keyset *k = arg;
	if (k->used + 1 + klen > k->cap) {
		size_t nc = k->cap ? k->cap * 2 : 65536;
		uint8_t *na = realloc(k->arena, nc);
		if (!na) {
			k->err = -ENOMEM;
			return 1;
		}
		k->arena = na;
		k->cap = nc;
	}
	k->arena[k->used] = (uint8_t)klen;
	memcpy(k->arena + k->used + 1, key, klen);
	k->used += 1 + klen;
	k->n++;
	return 0;
}

struct out {
	FILE *f;
	XXH64_state_t *h;
	int err;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->err || n == 0)
		return;
	if (fwrite(p, 1, n, o->f) != n)
		o->err = -EIO;
	XXH64_update(o->h, p, n);
}

/* A TTL read now as seconds left at `created` (SHMC_TTL_NONE kept). */
static uint32_t rec_ttl(uint32_t ttl, uint64_t created)
{
	if (ttl == SHMC_TTL_NONE)
		return SHMC_TTL_NONE;
	uint64_t now = (uint64_t)time(NULL);
	uint64_t at = (uint64_t)ttl + (now > created ? now - created : 0);
	return at < SNAP_TTL_UNKNOWN ? (uint32_t)at : SNAP_TTL_UNKNOWN - 1;
}

int cmd_dump(int argc, char **argv)
{
	bool quiet = false;
	int rc = tool_plain_args(argc, argv, help, 2, "missing NAME or FILE",
	                         &quiet);
	if (rc >= 0)
		return rc;
	const char *name = argv[optind], *file = argv[optind + 1];
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	struct keyset ks = {0};
	rc = shmc_keys(c, on_key, &ks);
	if (!rc)
		rc = ks.err;
	if (rc) {
		tool_fail(rc, "keys of %s", name);
		shmc_close(c);
		free(ks.arena);
		return TOOL_EXIT_FAIL;
	}

	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct out o = {.f = fd >= 0 ? fdopen(fd, "w") : NULL,
	                .h = XXH64_createState()};
	if (!o.f || !o.h) {
		rc = fd < 0 ? -errno : -ENOMEM;
		/* the temporary file is ours; the operator named FILE */
		tool_fail(rc, "dump %s to %s", name, file);
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		XXH64_freeState(o.h);
		shmc_close(c);
		free(ks.arena);
		return TOOL_EXIT_FAIL;
	}
	XXH64_reset(o.h, 0);
	uint8_t hdr[SNAP_HDR_SIZE] = {0};
	memcpy(hdr, SNAP_MAGIC, 8);
	snap_put32(hdr + 8, SNAP_VERSION);
	snap_put32(hdr + 12, SNAP_HDR_SIZE);
	uint64_t created = (uint64_t)time(NULL);
	snap_put64(hdr + 16, created);
	put(&o, hdr, sizeof(hdr));

	bool progress = isatty(STDERR_FILENO);
	size_t cap = 65536;
	uint8_t *val = malloc(cap);
	uint64_t written = 0, done = 0;
	rc = val ? 0 : -ENOMEM;
	for (size_t off = 0; !rc && !o.err && off < ks.used; done++) {
		size_t klen = ks.arena[off];
		const uint8_t *key = ks.arena + off + 1;
		off += 1 + klen;
		size_t vlen = cap;
		uint32_t flags = 0;
		int g = shmc_get(c, key, klen, val, &vlen, &flags);
		for (int t = 0; g == SHMC_EBUFSIZE && t < 8; t++) {
			uint8_t *nv = realloc(val, vlen);
			if (!nv) {
				g = -ENOMEM;
				break;
			}
			val = nv;
			cap = vlen;
			g = shmc_get(c, key, klen, val, &vlen, &flags);
		}
		uint32_t ttl = 0;
		if (!g)
			g = shmc_ttl(c, key, klen, &ttl);
		if (g == SHMC_ENOTFOUND || g == SHMC_EBUFSIZE)
			continue; /* gone (or still growing): skip it */
		if (g) {
			rc = g;
			break;
		}
		uint8_t rec[SNAP_REC_SIZE] = {0};
		snap_put32(rec, (uint32_t)klen);
		snap_put32(rec + 4, flags);
		snap_put32(rec + 8, rec_ttl(ttl, created));
		snap_put64(rec + 16, vlen);
		put(&o, rec, sizeof(rec));
		put(&o, key, klen);
		put(&o, val, vlen);
		written++;
		if (progress && (done % 4096 == 0 || done + 1 == ks.n))
			fprintf(stderr, "\rdump: %llu/%llu keys",
			        (unsigned long long)done + 1,
			        (unsigned long long)ks.n);
	}
	if (progress)
		fputc('\n', stderr);
	free(val);
	free(ks.arena);
	shmc_close(c);
	if (!rc) {
		uint8_t tr[SNAP_TRAILER_SIZE] = {0};
		memcpy(tr, SNAP_END_MAGIC, 8);
		snap_put64(tr + 8, written);
		put(&o, tr, 16);
		snap_put64(tr + 16, XXH64_digest(o.h));
		if (!o.err && fwrite(tr + 16, 1, 8, o.f) != 8)
			o.err = -EIO;
		rc = o.err;
	}
	if (!rc && fflush(o.f) != 0)
		rc = -errno;
	if (!rc && fsync(fileno(o.f)) != 0)
		rc = -errno;
	if (fclose(o.f) != 0 && !rc)
		rc = -errno;
	XXH64_freeState(o.h);
	if (!rc && rename(tmp, file) != 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		tool_fail(rc, "dump %s to %s", name, file);
		return TOOL_EXIT_FAIL;
	}
	if (!quiet)
		printf("dumped %llu item%s of %s to %s\n",
		       (unsigned long long)written, written == 1 ? "" : "s",
		       name, file);
	return TOOL_EXIT_OK;
}
