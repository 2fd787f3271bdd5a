/*
 * loader.c - libshmcache-redis: shmc_redis_loader(), a loader for
 * shmc_get_or_load() that reads the key from Redis with GET.
 *
 * One hiredis connection per handle, made lazily and made again after any
 * failure (hiredis contexts are unusable after an error); a mutex for the
 * threads of a process; a pid check so a forked child never talks on its
 * parent's socket.  A value too big for the caller's buffer is kept with
 * its key for the thread that read it, so get-or-load's second call (with
 * a buffer that large, same thread, same lease) costs no second GET.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis/addr.h"
#include "shmcache_redis.h"

struct shmc_redis {
	pthread_mutex_t mu;
	struct shmc__raddr addr;
	unsigned timeout_ms;
	redisContext *ctx;
	pid_t pid;         /* process that made ctx */
	redisReply *kept;  /* a value too big for the last buffer */
	pthread_t kept_by; /* the thread whose load it belongs to */
	char kept_key[SHMC_KEY_MAX];
	size_t kept_klen;
};

int shmc_redis_open(const char *addr, const struct shmc_redis_opts *opts,
                    shmc_redis_t **out)
{
	if (!out || !addr)
		return -EINVAL;
	struct shmc_redis_opts o = opts ? *opts : (struct shmc_redis_opts){0};
	for (size_t i = 0; i < sizeof(o.reserved) / sizeof(o.reserved[0]); i++)
		if (o.reserved[i])
			return -EINVAL;
	struct shmc_redis *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (shmc__raddr_parse(addr, &r->addr)) {
		free(r);
		return -EINVAL;
	}
	r->timeout_ms = o.timeout_ms ? o.timeout_ms : 2000;
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return 0;
}

static void drop(struct shmc_redis *r)
{
	if (r->kept)
		freeReplyObject(r->kept);
	r->kept = NULL;
	if (r->ctx)
		redisFree(r->ctx);
	r->ctx = NULL;
}

int shmc_redis_close(shmc_redis_t *r)
{
	if (!r)
		return 0;
	drop(r);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return 0;
}

/* The value of a GET reply into buf; the reply is consumed or kept. */
static int give(struct shmc_redis *r, redisReply *rep, const void *key,
                size_t klen, void *buf, size_t *vlen)
{
	if (rep->type == REDIS_REPLY_NIL) {
		freeReplyObject(rep);
		return SHMC_ENOTFOUND;
	}
	if (rep->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		return -EPROTO; /* an error reply (WRONGTYPE, ...) */
	}
	size_t n = (size_t)rep->len;
	if (n > *vlen) {
		*vlen = n;
		r->kept = rep;
		r->kept_by = pthread_self();
		memcpy(r->kept_key, key, klen);
		r->kept_klen = klen;
		return SHMC_EBUFSIZE;
	}
	if (n) /* buf may be NULL for an empty value: no memcpy then */
		memcpy(buf, rep->str, n);
	*vlen = n;
	freeReplyObject(rep);
	return 0;
}

static int load(struct shmc_redis *r, const void *key, size_t klen,
                void *buf, size_t *vlen)
{
	if (r->ctx && r->pid != getpid()) {
		/* Inherited over fork: the socket is the parent's. */
		r->kept = NULL; /* the parent's memory, ours to leak */
		redisFree(r->ctx);
		r->ctx = NULL;
	}
	if (r->kept) {
		/* Only the thread that read it may have it: its get-or-load
		 * asks again under the same lease.  Another thread's load of
		 * the key may have begun after a write this reply predates
		 * (the first load's lease taken away by the invalidation):
		 * it reads Redis anew. */
		redisReply *k = r->kept;
		r->kept = NULL;
		if (pthread_equal(r->kept_by, pthread_self()) &&
		    klen == r->kept_klen && !memcmp(key, r->kept_key, klen))
			return give(r, k, key, klen, buf, vlen);
		freeReplyObject(k);
	}
	if (!r->ctx) {
		char err[200];
		r->ctx = shmc__raddr_connect(&r->addr, r->timeout_ms, err,
		                             sizeof(err));
		if (!r->ctx)
			return -ECONNREFUSED;
		r->pid = getpid();
	}
	redisReply *rep = redisCommand(r->ctx, "GET %b", key, klen);
	if (!rep) {
		int rc = r->ctx->err == REDIS_ERR_IO &&
		                 (errno == EAGAIN || errno == ETIMEDOUT)
		             ? -ETIMEDOUT
		         : r->ctx->err == REDIS_ERR_OOM ? -ENOMEM
		                                        : -EIO;
		drop(r);
		return rc;
	}
	return give(r, rep, key, klen, buf, vlen);
}

int shmc_redis_loader(const void *key, size_t klen, void *buf, size_t *vlen,
                      uint32_t *flags, void *arg)
{
	(void)flags;
	struct shmc_redis *r = arg;
	if (!r || !key || !vlen || klen > SHMC_KEY_MAX)
		return -EINVAL;
	/* hiredis write()s: a Redis that died would raise SIGPIPE, whose
	 * default kills the caller.  Block it for this thread and take back
	 * one we caused (the usual way for a library; the process's own
	 * disposition is left alone). */
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigset_t pending;
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	pthread_mutex_lock(&r->mu);
	int rc = load(r, key, klen, buf, vlen);
	pthread_mutex_unlock(&r->mu);
	if (!sigismember(&old, SIGPIPE)) {
		sigpending(&pending);
		if (!was_pending && sigismember(&pending, SIGPIPE)) {
			struct timespec zero = {0, 0};
			while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
			       errno == EINTR)
				;
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return rc;
}
