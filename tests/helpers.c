/* helpers.c - see helpers.h. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "helpers.h"

static char dir[256];
static pid_t owner;

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void cleanup(void)
{
	/* Only the process that made it removes it, not forked children. */
	if (dir[0] && getpid() == owner)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *th_private_dir(void)
{
	if (dir[0])
		return dir;
	const char *base = getenv("SHMC_TEST_BASE");
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/shmcache-test.XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	owner = getpid();
	setenv("SHMCACHE_DIR", dir, 1);
	atexit(cleanup);
	return dir;
}

shmc_t *th_create(const char *name, uint64_t memory)
{
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	o.memory = memory;
	shmc_t *c = NULL;
	th_private_dir();
	int rc = shmc_create(name, &o, &c);
	if (rc)
		fail_msg("shmc_create(%s): %s", name, shmc_strerror(rc));
	return c;
}

void th_skip(const char *why)
{
	printf("SKIP: %s\n", why);
	exit(TH_SKIP);
}

size_t th_value(char *buf, size_t cap, const void *key, size_t klen,
                uint64_t version, size_t len)
{
	/* layout: u64 checksum | u16 klen | key | u64 version | filler */
	size_t need = 8 + 2 + klen + 8;
	if (len < need)
		len = need;
	if (len > cap)
		len = cap;
	uint16_t kl = (uint16_t)klen;
	memcpy(buf + 8, &kl, 2);
	memcpy(buf + 10, key, klen);
	memcpy(buf + 10 + klen, &version, 8);
	for (size_t i = need; i < len; i++)
		buf[i] = (char)(version * 31 + i);
	uint64_t sum = XXH64(buf + 8, len - 8, 0);
	memcpy(buf, &sum, 8);
	return len;
}

int th_value_ok(const void *buf, size_t len, const void *key, size_t klen)
{
	const char *b = buf;
	if (len < 8 + 2 + klen + 8)
		return 0;
	uint16_t kl;
	memcpy(&kl, b + 8, 2);
	if (kl != klen || memcmp(b + 10, key, klen) != 0)
		return 0;
	uint64_t sum;
	memcpy(&sum, b, 8);
	return sum == XXH64(b + 8, len - 8, 0);
}

uint64_t th_file_allocated(const char *name)
{
	/* The directory the caches are in now: a test may point
	 * SHMCACHE_DIR elsewhere (a disk file system, a huge-page tmpfs). */
	const char *d = getenv("SHMCACHE_DIR");
	char p[512];
	snprintf(p, sizeof(p), "%s/shmcache.%s", d ? d : th_private_dir(), name);
	struct stat st;
	if (stat(p, &st) != 0)
		fail_msg("stat %s: %s", p, strerror(errno));
	return (uint64_t)st.st_blocks * 512u;
}

uint64_t th_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 88172645463325252ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

uint64_t th_clock(void *arg)
{
	return *(uint64_t *)arg;
}
