/*
 * addr.h - Redis addresses and connections, shared by the Redis loader
 * (lib/redis/loader.c) and `shmcache sync` (tools/cmd_sync.c): one parser,
 * so both accept the same --redis / shmc_redis_open() spelling.
 *
 *   unix:/path/to/socket   a unix socket (also a bare /path)
 *   host:port              IPv4 literal or name, e.g. 127.0.0.1:6379
 *   [v6]:port              IPv6 literal, e.g. [::1]:6379
 *
 * Private: static inline, never exported.
 */
#ifndef SHMC_REDIS_ADDR_H
#define SHMC_REDIS_ADDR_H

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct shmc__raddr {
	char host[256]; /* host, or the socket path when port is 0 */
	int port;       /* 0: unix socket */
};

/* 0, or -EINVAL when addr is none of the forms above. */
static inline int shmc__raddr_parse(const char *addr, struct shmc__raddr *a)
{
	memset(a, 0, sizeof(*a));
	if (!addr || !*addr)
		return -EINVAL;
	const char *path = !strncmp(addr, "unix:", 5) ? addr + 5
	                   : addr[0] == '/'           ? addr
	                                              : NULL;
	if (path) {
		if (path[0] != '/' || strlen(path) >= sizeof(a->host))
			return -EINVAL;
		strcpy(a->host, path);
		return 0;
	}
	const char *colon = strrchr(addr, ':'), *h = addr;
	if (!colon || colon == addr)
		return -EINVAL;
	size_t hl = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hl < 3 || addr[hl - 1] != ']')
			return -EINVAL;
		h = addr + 1;
		hl -= 2;
	} else if (memchr(addr, ':', hl)) {
		return -EINVAL; /* a bare IPv6 literal: brackets needed */
	}
	if (hl >= sizeof(a->host))
		return -EINVAL;
	char *end = NULL;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
		return -EINVAL;
	memcpy(a->host, h, hl);
	a->port = (int)port;
	return 0;
}

/* Connects with a timeout (also set as the I/O timeout); NULL with the
 * reason in err when it fails. */
static inline redisContext *shmc__raddr_connect(const struct shmc__raddr *a,
                                                unsigned timeout_ms,
                                                char *err, size_t errlen)
{
	struct timeval tv = {(time_t)(timeout_ms / 1000),
	                     (suseconds_t)(timeout_ms % 1000) * 1000};
	redisContext *rc = a->port
	                       ? redisConnectWithTimeout(a->host, a->port, tv)
	                       : redisConnectUnixWithTimeout(a->host, tv);
	if (!rc) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (rc->err || redisSetTimeout(rc, tv) != REDIS_OK) {
		snprintf(err, errlen, "%s", rc->err ? rc->errstr : "timeout");
		redisFree(rc);
		return NULL;
	}
	return rc;
}

#endif
