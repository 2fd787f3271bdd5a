/*
 * shmcache_redis.h - a ready loader for shmc_get_or_load() that reads keys
 * from Redis, in the companion library libshmcache-redis
 * (pkg-config --cflags --libs shmcache-redis).
 *
 * WHY A COMPANION LIBRARY
 * libshmcache itself needs no Redis client: only programs that load from
 * Redis link libhiredis, through this library.  It is built when meson
 * finds hiredis (option -Dredis).
 *
 * USE
 * With `shmcache sync NAME --redis ADDR` running on the host, the cache is
 * every worker's one L1 in front of Redis: a miss is loaded with GET by
 * exactly one caller across all processes (the others wait for it, see
 * shmc_get_or_load), and writes to Redis by anyone delete the key from
 * the cache within the invalidation lag.
 *
 *   shmc_redis_t *r;
 *   shmc_redis_open("unix:/run/redis/redis.sock", NULL, &r);
 *   struct shmc_load_opts lo = {.ttl = 300};
 *   rc = shmc_get_or_load(c, key, klen, buf, &n, NULL,
 *                         shmc_redis_loader, r, &lo);
 *
 * The cache key is the Redis key.  A value loaded while the key is being
 * written is not stored if its invalidation arrives before the load ends
 * (shmc_del takes the load's lease away); keep a ttl as the last bound on
 * anything the tracking cannot see (see README, consistency model).
 *
 * SIGNALS
 * A load never raises SIGPIPE (it is blocked in the calling thread while
 * the load talks to Redis, and one it caused is taken back).
 *
 * THREADS AND FORK
 * A handle holds one connection, made on the first load and made again
 * after an error.  Threads of a process may share a handle: loads are
 * serialised on a mutex (give each thread its own handle for parallel
 * loads).  A child of fork() may use an inherited handle (it connects
 * anew; fork while no thread of the parent is inside a load).
 */
#ifndef SHMCACHE_REDIS_H
#define SHMCACHE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "shmcache.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shmc_redis shmc_redis_t;

struct shmc_redis_opts {
	uint32_t timeout_ms;   /* connect and reply timeout, default 2000 */
	uint32_t reserved[7];  /* zero */
};

/*
 * Makes a handle for Redis at addr: "unix:/path" (or "/path"),
 * "host:port", or "[v6]:port".  Does not connect yet: a Redis that is
 * down shows as an error of the first load.  opts may be NULL.
 * Errors: -EINVAL out or addr NULL, addr malformed, or a reserved field
 * not zero; -ENOMEM.
 */
SHMC_API int shmc_redis_open(const char *addr,
                             const struct shmc_redis_opts *opts,
                             shmc_redis_t **out);

/* Closes the connection and frees r (may be NULL).  Always 0.  No load may
 * be running on r. */
SHMC_API int shmc_redis_close(shmc_redis_t *r);

/*
 * A shmc_loader_fn: `arg` is a shmc_redis_t *.  Sends GET key and copies
 * the value into buf.
 * Returns 0 (*vlen = the value's length; *flags untouched);
 * SHMC_ENOTFOUND the key does not exist in Redis; SHMC_EBUFSIZE buf is
 * smaller than the value (*vlen = needed; the value is kept, and the call
 * get-or-load makes again with a buffer that large, in the same thread,
 * sends no second GET; a load of another thread reads Redis anew);
 * -EINVAL arg, key or vlen NULL, or klen above SHMC_KEY_MAX;
 * -ECONNREFUSED no connection could be made (Redis down, wrong address);
 * -ETIMEDOUT no reply within timeout_ms; -EIO the connection failed
 * during the command (it is made again on the next call); -EPROTO Redis answered with an error (e.g.
 * WRONGTYPE: the key holds no string); -ENOMEM.
 * Every error but SHMC_ENOTFOUND and SHMC_EBUFSIZE is handed by
 * shmc_get_or_load to its caller and every waiter, and not cached.
 */
SHMC_API int shmc_redis_loader(const void *key, size_t klen, void *buf,
                               size_t *vlen, uint32_t *flags, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* SHMCACHE_REDIS_H */
