/*
 * systems.c - the measured systems behind one small interface.
 *
 * Every system gets the same keys, values and operation stream; only the
 * few lines that talk to it differ:
 *   shmcache      shmc_get (copy out) / shmc_set on a cache in /dev/shm
 *   shmcache-ref  shmc_read_begin; shmc_get_ref; read the value in place
 *                 (its first and last 8 bytes are summed, so the value
 *                 is touched); shmc_read_end
 *   flat          flat.c, the reference: a private flat table per
 *                 process, keys and values inline in fixed-size slots
 *   inproc        inproc.c, the pointer table: {hash, pointer} slots, key
 *                 and value in a separate malloc'd block; private
 *   memcached     libmemcached over a unix socket, ASCII protocol, one
 *                 request per round trip
 *   redis         hiredis over a unix socket, one command per round trip
 *   redis-pipe    hiredis, cfg->pipeline commands written, then read
 *   shmcache-mget shmcache, but cfg->pipeline (16) operations at a time:
 *                 the batch's sets one by one, then its gets in one
 *                 shmc_mget (prefetches every bucket, then every item)
 * Loading (--warm) is pipelined for the servers so that it does not take
 * longer than the measurement: memcached with noreply+buffered requests,
 * Redis with batches of 1000 SETs.
 *
 * A switch on the kind costs one predicted branch per operation, the same
 * for every system.
 */
#include <errno.h>
#include <stdlib.h>

#include <shmcache.h>

#include "bench.h"
#include "flat.h"
#include "inproc.h"

#ifdef HAVE_LIBMEMCACHED
#include <libmemcached/memcached.h>
#endif
#ifdef HAVE_HIREDIS
#include <hiredis/hiredis.h>
#endif

struct sys {
	enum sys_kind kind;
	const struct cfg *cfg;
	shmc_t *c;
	/* shmcache-mget: one batch's items, keys and value buffers. */
	struct shmc_mget_item *items;
	char *mkeys, *mbufs;
	size_t mcap;
	struct inproc *t;
	struct flat *f;
#ifdef HAVE_LIBMEMCACHED
	memcached_st *mc;
#endif
#ifdef HAVE_HIREDIS
	redisContext *rc;
#endif
};

static uint64_t pow2_ceil(uint64_t x)
{
	uint64_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

static uint64_t item_bytes(unsigned ksize, double vmean)
{
	return ((uint64_t)(SHMC_ITEM_OVERHEAD + ksize + vmean) + 7) & ~7ull;
}

uint64_t shmcache_memory_for(const struct cfg *cfg)
{
	if (cfg->memory)
		return cfg->memory;
	/* Three times the live data (a SET run rewrites it and the log only
	 * reclaims whole segments), the index and a margin. */
	uint64_t live = cfg->keys * item_bytes(cfg->ksize,
	                                       value_size_mean(cfg->vsize));
	uint64_t idx = pow2_ceil(cfg->keys / 2 + 1) * 64 * 2;
	uint64_t m = 3 * live + idx + (64ull << 20);
	return m < (128ull << 20) ? (128ull << 20) : m;
}

static uint64_t index_buckets_for(const struct cfg *cfg)
{
	if (cfg->index_buckets != UINT64_MAX)
		return cfg->index_buckets; /* 0: the library's default */
	return pow2_ceil(cfg->keys / 2 + 1);
}

#ifdef HAVE_LIBMEMCACHED
static memcached_st *mc_connect(const struct cfg *cfg, int *err)
{
	memcached_st *mc = memcached_create(NULL);
	if (!mc) {
		*err = -ENOMEM;
		return NULL;
	}
	if (memcached_server_add_unix_socket(mc, cfg->mc_socket) !=
	    MEMCACHED_SUCCESS) {
		memcached_free(mc);
		*err = -ECONNREFUSED;
		return NULL;
	}
	return mc;
}
#endif

#ifdef HAVE_HIREDIS
static redisContext *redis_connect(const struct cfg *cfg, int *err)
{
	redisContext *rc = redisConnectUnix(cfg->redis_socket);
	if (!rc || rc->err) {
		if (rc) {
			fprintf(stderr, "redis: %s\n", rc->errstr);
			redisFree(rc);
		}
		*err = -ECONNREFUSED;
		return NULL;
	}
	return rc;
}

static int redis_simple(redisContext *rc, const char *cmd)
{
	redisReply *r = redisCommand(rc, cmd);
	if (!r)
		return -EIO;
	int bad = r->type == REDIS_REPLY_ERROR;
	if (bad)
		fprintf(stderr, "redis %s: %s\n", cmd, r->str);
	freeReplyObject(r);
	return bad ? -EIO : 0;
}
#endif

static int need_servers(const struct cfg *cfg)
{
	switch (cfg->sys) {
	case SYS_MEMCACHED:
#ifndef HAVE_LIBMEMCACHED
		fprintf(stderr, "built without libmemcached\n");
		return -ENOTSUP;
#else
		if (!cfg->mc_socket)
			die("--mc-socket is needed for memcached");
		return 0;
#endif
	case SYS_REDIS:
	case SYS_REDIS_PIPE:
#ifndef HAVE_HIREDIS
		fprintf(stderr, "built without hiredis\n");
		return -ENOTSUP;
#else
		if (!cfg->redis_socket)
			die("--redis-socket is needed for redis");
		return 0;
#endif
	default:
		return 0;
	}
}

int sys_prepare(const struct cfg *cfg)
{
	int rc = need_servers(cfg);
	if (rc)
		return rc;
	switch (cfg->sys) {
	case SYS_SHMCACHE:
	case SYS_SHMCACHE_REF:
	case SYS_SHMCACHE_MGET: {
		shmc_destroy(cfg->cache_name); /* a leftover of a killed run */
		struct shmc_create_opts o;
		shmc_create_opts_init(&o);
		o.memory = shmcache_memory_for(cfg);
		o.index_buckets = index_buckets_for(cfg);
		if (cfg->segment_size)
			o.segment_size = cfg->segment_size;
		/* SHMCACHE_BENCH_HUGE=1: a huge-page cache (SHMCACHE_DIR must
		 * be a tmpfs mounted huge=within_size; see bench/README.md). */
		const char *huge = getenv("SHMCACHE_BENCH_HUGE");
		if (huge && strcmp(huge, "1") == 0)
			o.flags |= SHMC_CREATE_HUGE;
		/* SHMCACHE_BENCH_MRC=1: a cache that keeps its miss-ratio
		 * curve (the cost of sampling, bench/README.md). */
		const char *mrc = getenv("SHMCACHE_BENCH_MRC");
		if (mrc && strcmp(mrc, "1") == 0)
			o.flags |= SHMC_CREATE_MRC;
		shmc_t *c;
		rc = shmc_create(cfg->cache_name, &o, &c);
		if (rc) {
			fprintf(stderr, "shmc_create %s (memory %llu): %s\n",
			        cfg->cache_name, (unsigned long long)o.memory,
			        shmc_strerror(rc));
			return rc;
		}
		shmc_close(c);
		return 0;
	}
	case SYS_INPROC:
	case SYS_FLAT:
		return 0;
	case SYS_MEMCACHED: {
#ifdef HAVE_LIBMEMCACHED
		memcached_st *mc = mc_connect(cfg, &rc);
		if (!mc)
			return rc;
		memcached_return_t r = memcached_flush(mc, 0);
		memcached_free(mc);
		if (r != MEMCACHED_SUCCESS) {
			fprintf(stderr, "memcached flush: %s\n",
			        memcached_strerror(NULL, r));
			return -EIO;
		}
#endif
		return 0;
	}
	case SYS_REDIS:
	case SYS_REDIS_PIPE: {
#ifdef HAVE_HIREDIS
		redisContext *r = redis_connect(cfg, &rc);
		if (!r)
			return rc;
		rc = redis_simple(r, "FLUSHALL");
		redisFree(r);
#endif
		return rc;
	}
	}
	return 0;
}

int sys_limit_memory(const struct cfg *cfg, uint64_t bytes)
{
	(void)bytes;
	switch (cfg->sys) {
	case SYS_REDIS:
	case SYS_REDIS_PIPE: {
#ifdef HAVE_HIREDIS
		int rc;
		redisContext *r = redis_connect(cfg, &rc);
		if (!r)
			return rc;
		char cmd[96];
		snprintf(cmd, sizeof(cmd), "CONFIG SET maxmemory %llu",
		         (unsigned long long)bytes);
		rc = redis_simple(r, cmd);
		if (!rc)
			rc = redis_simple(r, "CONFIG SET maxmemory-policy "
			                     "allkeys-lru");
		redisFree(r);
		return rc;
#else
		return -ENOTSUP;
#endif
	}
	case SYS_SHMCACHE:
	case SYS_SHMCACHE_REF:
	case SYS_SHMCACHE_MGET:
		return 0; /* the caller sets cfg->memory */
	default:
		return -ENOTSUP;
	}
}

bool sys_is_private(const struct cfg *cfg)
{
	return cfg->sys == SYS_INPROC || cfg->sys == SYS_FLAT;
}

/*
 * The flat table for the run: slots sized for its key size and largest
 * value (96 bytes for 16/64), unless that would make the array larger than
 * FLAT_MAX_BYTES (mixed sizes: slots for 8 KiB values); then the slot holds
 * what fits and longer values go in a malloc'd block.
 */
#define FLAT_MAX_BYTES (2ull << 30)
static struct flat *flat_open(const struct cfg *cfg)
{
	uint64_t slots = 16;
	while (slots < cfg->keys * 2)
		slots <<= 1;
	uint64_t vin = value_size_max(cfg->vsize);
	uint64_t room = FLAT_MAX_BYTES / slots;
	if (16 + cfg->ksize + vin > room)
		vin = room > 16 + cfg->ksize + 64 ? (room - 16 - cfg->ksize) & ~15ull
		                                  : 64;
	return flat_new(cfg->keys, cfg->ksize, (unsigned)vin);
}

/* shmcache-mget: buffers for a batch of cfg->pipeline gets. */
static int mget_alloc(struct sys *s, const struct cfg *cfg)
{
	unsigned d = cfg->pipeline > 1024 ? 1024 : cfg->pipeline;
	s->mcap = value_size_max(cfg->vsize);
	s->items = calloc(d, sizeof(*s->items));
	s->mkeys = malloc((size_t)d * (BENCH_KEY_MAX + 1));
	s->mbufs = malloc((size_t)d * s->mcap);
	if (!s->items || !s->mkeys || !s->mbufs)
		return -ENOMEM;
	for (unsigned i = 0; i < d; i++)
		key_prefix(s->mkeys + (size_t)i * (BENCH_KEY_MAX + 1),
		           cfg->ksize);
	return 0;
}

static void mget_free(struct sys *s)
{
	free(s->items);
	free(s->mkeys);
	free(s->mbufs);
}

struct sys *sys_open(const struct cfg *cfg, int *err)
{
	struct sys *s = calloc(1, sizeof(*s));
	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->kind = cfg->sys;
	s->cfg = cfg;
	int rc = 0;
	switch (cfg->sys) {
	case SYS_SHMCACHE:
	case SYS_SHMCACHE_REF:
	case SYS_SHMCACHE_MGET:
		rc = shmc_open(cfg->cache_name, 0, &s->c);
		if (!rc && cfg->sys == SYS_SHMCACHE_MGET)
			rc = mget_alloc(s, cfg);
		break;
	case SYS_INPROC:
		s->t = inproc_new(cfg->keys);
		if (!s->t)
			rc = -ENOMEM;
		break;
	case SYS_FLAT:
		s->f = flat_open(cfg);
		if (!s->f)
			rc = -ENOMEM;
		break;
	case SYS_MEMCACHED:
#ifdef HAVE_LIBMEMCACHED
		s->mc = mc_connect(cfg, &rc);
#else
		rc = -ENOTSUP;
#endif
		break;
	case SYS_REDIS:
	case SYS_REDIS_PIPE:
#ifdef HAVE_HIREDIS
		s->rc = redis_connect(cfg, &rc);
#else
		rc = -ENOTSUP;
#endif
		break;
	}
	if (rc) {
		if (s->c)
			shmc_close(s->c);
		mget_free(s);
		free(s);
		*err = rc;
		return NULL;
	}
	return s;
}

void sys_close(struct sys *s)
{
	if (!s)
		return;
	if (s->c)
		shmc_close(s->c);
	mget_free(s);
	inproc_free(s->t);
	flat_free(s->f);
#ifdef HAVE_LIBMEMCACHED
	if (s->mc)
		memcached_free(s->mc);
#endif
#ifdef HAVE_HIREDIS
	if (s->rc)
		redisFree(s->rc);
#endif
	free(s);
}

int sys_get(struct sys *s, const char *key, size_t klen, char *buf,
            size_t cap, size_t *vlen)
{
	switch (s->kind) {
	case SYS_SHMCACHE:
	case SYS_SHMCACHE_REF:
	case SYS_SHMCACHE_MGET: {
		*vlen = cap;
		int rc = shmc_get(s->c, key, klen, buf, vlen, NULL);
		return rc == 0 ? 1 : rc == SHMC_ENOTFOUND ? 0 : rc;
	}
	case SYS_INPROC:
		return inproc_get(s->t, key, klen, buf, cap, vlen);
	case SYS_FLAT:
		return flat_get(s->f, key, klen, buf, cap, vlen);
	case SYS_MEMCACHED: {
#ifdef HAVE_LIBMEMCACHED
		memcached_return_t r;
		uint32_t fl;
		char *v = memcached_get(s->mc, key, klen, vlen, &fl, &r);
		if (!v)
			return r == MEMCACHED_NOTFOUND ? 0 : -EIO;
		if (*vlen <= cap)
			memcpy(buf, v, *vlen);
		free(v);
		return 1;
#else
		return -ENOTSUP;
#endif
	}
	case SYS_REDIS:
	case SYS_REDIS_PIPE: {
#ifdef HAVE_HIREDIS
		redisReply *r = redisCommand(s->rc, "GET %b", key, klen);
		if (!r)
			return -EIO;
		int rc = 0;
		if (r->type == REDIS_REPLY_STRING) {
			*vlen = r->len;
			if (r->len <= cap)
				memcpy(buf, r->str, r->len);
			rc = 1;
		} else if (r->type != REDIS_REPLY_NIL) {
			rc = -EIO;
		}
		freeReplyObject(r);
		return rc;
#else
		return -ENOTSUP;
#endif
	}
	}
	return -EINVAL;
}

int sys_get_ref(struct sys *s, const char *key, size_t klen, uint64_t *sum)
{
	const void *v;
	size_t vlen;
	shmc_read_begin(s->c);
	int rc = shmc_get_ref(s->c, key, klen, &v, &vlen, NULL);
	if (rc == 0) {
		uint64_t a = 0, b = 0;
		if (vlen >= 8) {
			memcpy(&a, v, 8);
			memcpy(&b, (const char *)v + vlen - 8, 8);
		}
		*sum += a ^ b;
	}
	shmc_read_end(s->c);
	return rc == 0 ? 1 : rc == SHMC_ENOTFOUND ? 0 : rc;
}

int sys_set(struct sys *s, const char *key, size_t klen, const char *val,
            size_t vlen)
{
	switch (s->kind) {
	case SYS_SHMCACHE:
	case SYS_SHMCACHE_REF:
	case SYS_SHMCACHE_MGET:
		return shmc_set(s->c, key, klen, val, vlen, SHMC_TTL_NONE, 0);
	case SYS_INPROC:
		return inproc_set(s->t, key, klen, val, vlen);
	case SYS_FLAT:
		return flat_set(s->f, key, klen, val, vlen);
	case SYS_MEMCACHED:
#ifdef HAVE_LIBMEMCACHED
		return memcached_set(s->mc, key, klen, val, vlen, 0, 0) ==
		               MEMCACHED_SUCCESS
		           ? 0
		           : -EIO;
#else
		return -ENOTSUP;
#endif
	case SYS_REDIS:
	case SYS_REDIS_PIPE: {
#ifdef HAVE_HIREDIS
		redisReply *r =
		    redisCommand(s->rc, "SET %b %b", key, klen, val, vlen);
		if (!r)
			return -EIO;
		int rc = r->type == REDIS_REPLY_ERROR ? -EIO : 0;
		freeReplyObject(r);
		return rc;
#else
		return -ENOTSUP;
#endif
	}
	}
	return -EINVAL;
}

/* shmcache-mget: the batch's sets, then its gets in one shmc_mget. */
static int mget_batch(struct sys *s, const struct cfg *cfg, const uint64_t *ops,
                      unsigned n, const char *val, uint64_t *hits)
{
	unsigned m = 0;
	int rc = 0;
	if (n > 1024)
		n = 1024;
	for (unsigned i = 0; i < n; i++) {
		uint64_t id = ops[i] & ~(1ull << 63);
		char *key = s->mkeys + (size_t)i * (BENCH_KEY_MAX + 1);
		key_make(key, cfg->ksize, id);
		if (ops[i] >> 63) {
			int r = shmc_set(s->c, key, cfg->ksize, val,
			                 value_size(cfg->vsize, id),
			                 SHMC_TTL_NONE, 0);
			if (r < 0)
				rc = r;
			continue;
		}
		s->items[m++] = (struct shmc_mget_item){
		    .key = key,
		    .klen = cfg->ksize,
		    .buf = s->mbufs + (size_t)i * s->mcap,
		    .vlen = s->mcap,
		};
	}
	if (m) {
		int h = shmc_mget(s->c, s->items, m);
		if (h < 0)
			return h;
		*hits += (uint64_t)h;
	}
	return rc;
}

int sys_batch(struct sys *s, const struct cfg *cfg, const uint64_t *ops,
              unsigned n, char *keybuf, const char *val, uint64_t *hits)
{
	if (s->kind == SYS_SHMCACHE_MGET)
		return mget_batch(s, cfg, ops, n, val, hits);
#ifdef HAVE_HIREDIS
	for (unsigned i = 0; i < n; i++) {
		uint64_t id = ops[i] & ~(1ull << 63);
		key_make(keybuf, cfg->ksize, id);
		if (ops[i] >> 63)
			redisAppendCommand(s->rc, "SET %b %b", keybuf,
			                   (size_t)cfg->ksize, val,
			                   (size_t)value_size(cfg->vsize, id));
		else
			redisAppendCommand(s->rc, "GET %b", keybuf,
			                   (size_t)cfg->ksize);
	}
	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		redisReply *r;
		if (redisGetReply(s->rc, (void **)&r) != REDIS_OK || !r)
			return -EIO;
		if (r->type == REDIS_REPLY_STRING)
			(*hits)++;
		else if (r->type == REDIS_REPLY_ERROR)
			rc = -EIO;
		freeReplyObject(r);
	}
	return rc;
#else
	(void)s, (void)cfg, (void)ops, (void)n, (void)keybuf, (void)val;
	(void)hits;
	return -ENOTSUP;
#endif
}

int sys_load(struct sys *s, const struct cfg *cfg, uint64_t lo, uint64_t hi)
{
	char key[BENCH_KEY_MAX + 1];
	static char val[BENCH_VALUE_MAX];
	memset(val, 'v', value_size_max(cfg->vsize));
	key_prefix(key, cfg->ksize);
	switch (s->kind) {
#ifdef HAVE_LIBMEMCACHED
	case SYS_MEMCACHED: {
		memcached_behavior_set(s->mc, MEMCACHED_BEHAVIOR_NOREPLY, 1);
		memcached_behavior_set(s->mc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS,
		                       1);
		for (uint64_t id = lo; id < hi; id++) {
			key_make(key, cfg->ksize, id);
			memcached_return_t r = memcached_set(
			    s->mc, key, cfg->ksize, val,
			    value_size(cfg->vsize, id), 0, 0);
			if (r != MEMCACHED_SUCCESS && r != MEMCACHED_BUFFERED) {
				fprintf(stderr, "memcached load: %s\n",
				        memcached_strerror(s->mc, r));
				return -EIO;
			}
		}
		memcached_flush_buffers(s->mc);
		memcached_behavior_set(s->mc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS,
		                       0);
		memcached_behavior_set(s->mc, MEMCACHED_BEHAVIOR_NOREPLY, 0);
		/* A round trip on the same connection: everything before it
		 * has been applied. */
		char buf[64];
		size_t vlen;
		key_make(key, cfg->ksize, lo);
		return sys_get(s, key, cfg->ksize, buf, sizeof(buf), &vlen) >= 0
		           ? 0
		           : -EIO;
	}
#endif
#ifdef HAVE_HIREDIS
	case SYS_REDIS:
	case SYS_REDIS_PIPE:
		for (uint64_t id = lo; id < hi;) {
			unsigned n = 0;
			for (; n < 1000 && id < hi; n++, id++) {
				key_make(key, cfg->ksize, id);
				redisAppendCommand(s->rc, "SET %b %b", key,
				                   (size_t)cfg->ksize, val,
				                   (size_t)value_size(cfg->vsize,
				                                      id));
			}
			for (unsigned i = 0; i < n; i++) {
				redisReply *r;
				if (redisGetReply(s->rc, (void **)&r) !=
				        REDIS_OK ||
				    !r)
					return -EIO;
				freeReplyObject(r);
			}
		}
		return 0;
#endif
	default:
		for (uint64_t id = lo; id < hi; id++) {
			key_make(key, cfg->ksize, id);
			int rc = sys_set(s, key, cfg->ksize, val,
			                 value_size(cfg->vsize, id));
			if (rc) {
				fprintf(stderr, "load: set failed: %d\n", rc);
				return rc;
			}
		}
		return 0;
	}
}

/* How this program reaches the library (bench/meson.build builds both). */
#ifdef SHMC_BENCH_STATIC
#define BENCH_LINK "static"
#else
#define BENCH_LINK "shared"
#endif

/*
 * ShmemHugePages of /proc/meminfo, kB: shared memory backed by 2 MiB pages,
 * host-wide.  Right after a run on a huge-page cache it is (mostly) the
 * cache's file: the evidence that huge pages were really used.
 */
static unsigned long long shmem_huge_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	char line[128];
	unsigned long long kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "ShmemHugePages: %llu", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

void sys_finish(const struct cfg *cfg, char *js, size_t jslen, bool destroy)
{
	js[0] = 0;
	if (cfg->sys != SYS_SHMCACHE && cfg->sys != SYS_SHMCACHE_REF &&
	    cfg->sys != SYS_SHMCACHE_MGET)
		return;
	shmc_t *c;
	if (shmc_open(cfg->cache_name, 0, &c) == 0) {
		struct shmc_stats st;
		struct shmc_info in;
		shmc_stats(c, &st);
		shmc_info(c, &in);
		snprintf(js, jslen,
		         ",\"shmc_memory\":%llu,\"shmc_items\":%llu,"
		         "\"shmc_evictions\":%llu,\"shmc_index_drops\":%llu,"
		         "\"shmc_segments_evicted\":%llu,\"link\":\"%s\","
		         "\"huge\":%d,\"shmem_huge_kb\":%llu,\"mrc\":%d",
		         (unsigned long long)st.memory,
		         (unsigned long long)st.items,
		         (unsigned long long)st.evictions,
		         (unsigned long long)st.index_drops,
		         (unsigned long long)st.segments_evicted,
		         BENCH_LINK,
		         (in.flags & SHMC_CREATE_HUGE) ? 1 : 0,
		         (unsigned long long)shmem_huge_kb(),
		         shmc_mrc(c, NULL, 0, NULL) == 0 ? 1 : 0);
		shmc_close(c);
	}
	if (destroy)
		shmc_destroy(cfg->cache_name);
}
