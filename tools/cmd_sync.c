/*
 * cmd_sync.c - `shmcache sync NAME --redis ADDR... [--prefix P ...]`: keeps
 * the cache coherent with Redis by Redis's own client-side caching
 * protocol, so the cache can be every worker's one L1 in front of Redis.
 *
 * PROTOCOL (RESP2, two connections)
 *   sub: CLIENT ID -> id; SUBSCRIBE __redis__:invalidate
 *   cmd: CLIENT TRACKING on REDIRECT id BCAST [PREFIX P ...]
 * In broadcast mode Redis tells us of every write to a key under a
 * tracked prefix (no --prefix: every key), whoever wrote it.  Each
 * message names keys (each is shmc_del()ed, which also takes away the
 * lease of a load in progress: a value read before the write is not
 * stored) or is null: FLUSHALL / FLUSHDB, and then every tracked prefix
 * is flushed (shmc_del_prefix()).
 *
 * WHEN THE TRACKING IS LOST
 * A lost or broken connection, a Redis restart, a probe that no
 * invalidation answers: Redis has forgotten us, writes from now on are
 * not reported, so the cache may go stale.  The tracked prefixes are
 * flushed at once, the connections dropped, and made again with
 * exponential backoff (0.1 s doubling up to --backoff-max, back to 0.1 s
 * only after a session that lasted --backoff-max); once tracking
 * is on again they are flushed once more (values loaded meanwhile were
 * not covered).  The same flush runs at start, before connecting and
 * after tracking is on, so a sync that was SIGKILLed and restarted leaves
 * nothing stale behind.
 *
 * LAG PROBE
 * Every --probe seconds the sync SETs its own key
 * __shmcache_sync_probe:HOST:PID (with a 60 s expiry) on the command
 * connection and times the invalidation that comes back on the other:
 * that is the invalidation lag, Redis and both connections included.  A
 * probe unanswered after 5 timeouts counts as lost tracking.  With
 * --prefix, the probe's prefix is tracked too (unless a tracked prefix
 * covers it already).  --probe 0: no probe, a PING every second instead.
 *
 * SEVERAL NODES (a Redis Cluster)
 * Tracking is per node: a node reports writes to the keys it holds only.
 * Each --redis (at most MAX_NODES) gets its own session - both
 * connections, its own probe, its own backoff - and one poll() follows
 * every node's pub/sub connection.  An invalidation from any node deletes
 * its keys.  A node's session lost means writes to that node's keys go
 * unreported: every tracked prefix is flushed (keys are not sorted by
 * node here), that node alone is reconnected with its backoff, and the
 * prefixes are flushed again once its tracking is on; the other
 * sessions go on.  The record says "connected" only while every node
 * tracks, and which ones do.  Connecting and the probe's SET are
 * blocking calls of at most --timeout each: while one node is being
 * reconnected, the others' invalidations wait in their sockets (none is
 * lost).  In a cluster the probe key lives on one node; the others
 * answer its SET with -MOVED, and take a PING instead for 60 s before
 * trying again (after resharding the key may have come to them).
 *
 * The counters go to SHMCACHE_DIR/shmcache-sync.NAME (syncfile.c), read
 * by stats, top and the exporter; they are totals over the nodes.
 */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "redis/addr.h"
#include "tool.h"

#define PROBE_PREFIX "__shmcache_sync_probe:"
#define MAX_PREFIXES 64
#define MAX_NODES 16
#define LOST 1  /* the session ended: flush and reconnect */
#define FATAL 2 /* Redis refused what we asked: exit */

/* One Redis node and its tracking session. */
struct node {
	const char *addr_text;
	struct shmc__raddr addr;
	redisContext *sub, *cmd;       /* both NULL: no session */
	bool up;                       /* tracking on, flushed after */
	bool was_up;                   /* tracking was on once */
	double backoff;                /* next wait after a loss, s */
	uint64_t retry_at, t_on;       /* ns: next attempt; tracking on */
	uint64_t probe_t0, next_check; /* ns; probe_t0 0 = none pending */
	uint64_t no_probe_until;       /* ns: -MOVED for the probe key */
	char why[256];                 /* why the session ended */
};

struct sync {
	shmc_t *c;
	const char *name;
	struct node node[MAX_NODES];
	size_t nn;
	const char *prefix[MAX_PREFIXES];
	size_t np;
	double probe_s, backoff_max;
	unsigned timeout_ms;
	bool quiet, track_probe, probing;
	char probe_key[SHMC_KEY_MAX + 1];
	size_t probe_klen;
	struct tool_sync_writer *w;
	uint64_t lag_max; /* largest probe lag, ns */
};

static void help(void)
{
	printf("Usage: shmcache sync NAME --redis ADDR [--redis ADDR ...] "
	       "[--prefix P ...]\n       [--probe SECS] [--timeout SECS] "
	       "[--backoff-max SECS] [-q | --quiet]\n\n"
	       "Keeps cache NAME coherent with Redis (CLIENT TRACKING, "
	       "broadcast mode):\ndeletes the keys Redis invalidates; "
	       "flushes the tracked prefixes at start,\nwhen a connection "
	       "is lost and on FLUSHALL.  Runs until SIGINT or SIGTERM.\n\n"
	       "  --redis ADDR        unix:/path, /path, host:port or "
	       "[v6]:port; repeat for\n"
	       "                      every primary of a cluster (at most "
	       "%d)\n"
	       "  --prefix P          track keys starting with P (repeat; "
	       "default: all keys)\n"
	       "  --probe SECS        measure the lag every SECS (default 1; "
	       "0: off)\n"
	       "  --timeout SECS      connect and reply timeout (default 2)\n"
	       "  --backoff-max SECS  longest wait between reconnects "
	       "(default 5)\n"
	       "  -q, --quiet         no event lines on standard output\n"
	       "  -h, --help          this help\n",
	       MAX_NODES);
}

__attribute__((format(printf, 2, 3))) static void note(struct sync *y,
                                                       const char *fmt, ...)
{
	if (y->quiet)
		return;
	time_t now = time(NULL);
	struct tm tm;
	char ts[32];
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
	printf("%s %s: ", ts, y->name);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Flushes every tracked prefix; 0 or the library's error.  With several
 * nodes the reason names the node (n; NULL: none). */
static int flush(struct sync *y, const struct node *n, const char *why)
{
	uint64_t total = 0;
	for (size_t i = 0; i < (y->np ? y->np : 1); i++) {
		const char *p = y->np ? y->prefix[i] : "";
		int rc = shmc_del_prefix(y->c, p, strlen(p));
		if (rc < 0) {
			tool_fail(rc, "flush %s", y->name);
			return rc;
		}
		total += (uint64_t)rc;
	}
	tool_sync_add(y->w, TOOL_SYNC_FLUSHES, 1);
	tool_sync_add(y->w, TOOL_SYNC_FLUSHED_KEYS, total);
	if (n && y->nn > 1)
		note(y, "flushed %llu keys (%s, %s)", (unsigned long long)total,
		     why, n->addr_text);
	else
		note(y, "flushed %llu keys (%s)", (unsigned long long)total,
		     why);
	return 0;
}

/* Tells the record which nodes track; "connected" when all do. */
static void publish_state(struct sync *y)
{
	uint32_t up = 0;
	for (size_t i = 0; i < y->nn; i++)
		if (y->node[i].up)
			up |= 1u << i;
	tool_sync_nodes(y->w, (unsigned)y->nn, up);
	tool_sync_connected(y->w, up == (1u << y->nn) - 1);
}

static void session_close(struct sync *y, struct node *n)
{
	if (n->sub)
		redisFree(n->sub);
	if (n->cmd)
		redisFree(n->cmd);
	n->sub = n->cmd = NULL;
	n->probe_t0 = 0;
	if (n->up) {
		n->up = false;
		publish_state(y);
	}
}

/* A reply of the expected type, or why not in n->why. */
static redisReply *expect(struct node *n, redisContext *ctx, void *r,
                          int type, const char *what)
{
	redisReply *rep = r;
	if (!rep) {
		snprintf(n->why, sizeof(n->why), "%s: %s", what,
		         ctx->err ? ctx->errstr : "no reply");
		return NULL;
	}
	if (rep->type != type) {
		snprintf(n->why, sizeof(n->why), "%s: %.*s", what,
		         rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 16,
		         rep->type == REDIS_REPLY_ERROR ? rep->str
		                                        : "unexpected reply");
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/* Connects both, subscribes, turns tracking on: 0, LOST or FATAL. */
static int session_open(struct sync *y, struct node *n)
{
	char err[200];
	n->sub = shmc__raddr_connect(&n->addr, y->timeout_ms, err, sizeof(err));
	if (n->sub)
		n->cmd = shmc__raddr_connect(&n->addr, y->timeout_ms, err,
		                             sizeof(err));
	if (!n->sub || !n->cmd) {
		snprintf(n->why, sizeof(n->why), "connect %s: %s", n->addr_text,
		         err);
		return LOST;
	}
	redisReply *r = expect(n, n->sub, redisCommand(n->sub, "CLIENT ID"),
	                       REDIS_REPLY_INTEGER, "CLIENT ID");
	if (!r)
		return n->sub->err ? LOST : FATAL;
	long long id = r->integer;
	freeReplyObject(r);
	r = expect(n, n->sub,
	           redisCommand(n->sub, "SUBSCRIBE __redis__:invalidate"),
	           REDIS_REPLY_ARRAY, "SUBSCRIBE");
	if (!r)
		return n->sub->err ? LOST : FATAL;
	freeReplyObject(r);
	const char *argv[8 + 2 * MAX_PREFIXES];
	char ids[32];
	snprintf(ids, sizeof(ids), "%lld", id);
	int argc = 0;
	argv[argc++] = "CLIENT";
	argv[argc++] = "TRACKING";
	argv[argc++] = "on";
	argv[argc++] = "REDIRECT";
	argv[argc++] = ids;
	argv[argc++] = "BCAST";
	for (size_t i = 0; i < y->np; i++) {
		argv[argc++] = "PREFIX";
		argv[argc++] = y->prefix[i];
	}
	if (y->track_probe) {
		argv[argc++] = "PREFIX";
		argv[argc++] = PROBE_PREFIX;
	}
	r = expect(n, n->cmd, redisCommandArgv(n->cmd, argc, argv, NULL),
	           REDIS_REPLY_STATUS, "CLIENT TRACKING");
	if (!r)
		return n->cmd->err ? LOST : FATAL;
	freeReplyObject(r);
	n->next_check = 0;
	n->no_probe_until = 0;
	return 0;
}

static void on_keys(struct sync *y, struct node *n, const redisReply *keys)
{
	uint64_t deleted = 0;
	for (size_t i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		if (k->type != REDIS_REPLY_STRING || k->len == 0 ||
		    k->len > SHMC_KEY_MAX)
			continue; /* no such key can be in the cache */
		if (n->probe_t0 && (size_t)k->len == y->probe_klen &&
		    !memcmp(k->str, y->probe_key, y->probe_klen)) {
			uint64_t lag = tool_now_ns() - n->probe_t0;
			tool_sync_set(y->w, TOOL_SYNC_LAG_NS, lag);
			tool_sync_add(y->w, TOOL_SYNC_PROBES, 1);
			if (lag > y->lag_max) {
				y->lag_max = lag;
				tool_sync_set(y->w, TOOL_SYNC_PROBE_MAX_NS, lag);
			}
			n->probe_t0 = 0;
			continue;
		}
		int rc = shmc_del(y->c, k->str, (size_t)k->len);
		if (rc == 0)
			deleted++;
		else if (rc != SHMC_ENOTFOUND)
			tool_fail(rc, "del in %s", y->name);
	}
	tool_sync_add(y->w, TOOL_SYNC_KEYS_DELETED, deleted);
}

/* One message from the pub/sub connection: 0, LOST or FATAL. */
static int on_message(struct sync *y, struct node *n, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0)
		return 0; /* (un)subscribe confirmations, pongs */
	tool_sync_add(y->w, TOOL_SYNC_INVALIDATIONS, 1);
	const redisReply *keys = r->element[2];
	if (keys->type == REDIS_REPLY_ARRAY) {
		on_keys(y, n, keys);
		return 0;
	}
	/* A null key list: FLUSHALL or FLUSHDB. */
	if (!flush(y, n, "FLUSHALL or FLUSHDB in Redis"))
		return 0;
	n->why[0] = 0;
	return FATAL;
}

/* The timed checks of one node: the probe (or a PING).  0 or LOST. */
static int check(struct sync *y, struct node *n, uint64_t now)
{
	if (n->probe_t0 &&
	    now - n->probe_t0 > 5ull * y->timeout_ms * 1000000ull) {
		snprintf(n->why, sizeof(n->why),
		         "no invalidation for the probe in %u ms",
		         5 * y->timeout_ms);
		return LOST;
	}
	if (now < n->next_check)
		return 0;
	redisReply *r;
	bool probing = y->probing && now >= n->no_probe_until;
	if (probing && !n->probe_t0) {
		n->probe_t0 = now ? now : 1;
		r = redisCommand(n->cmd, "SET %b %llu PX 60000", y->probe_key,
		                 y->probe_klen, (unsigned long long)now);
		n->next_check = now + (uint64_t)(y->probe_s * 1e9);
		const redisReply *e = r;
		if (e && e->type == REDIS_REPLY_ERROR &&
		    (!strncmp(e->str, "MOVED ", 6) ||
		     !strncmp(e->str, "ASK ", 4))) {
			/* A cluster node that does not hold the probe key:
			 * PING it for a while. */
			n->probe_t0 = 0;
			n->no_probe_until = now + 60000000000ull;
			freeReplyObject(r);
			return 0;
		}
		r = expect(n, n->cmd, r, REDIS_REPLY_STATUS, "probe SET");
	} else {
		r = expect(n, n->cmd, redisCommand(n->cmd, "PING"),
		           REDIS_REPLY_STATUS, "PING");
		if (!probing)
			n->next_check = now + 1000000000ull;
	}
	if (!r)
		return LOST;
	freeReplyObject(r);
	return 0;
}

/* Handles the replies hiredis has read from n already, then the timed
 * checks: 0, LOST or FATAL. */
static int drain(struct sync *y, struct node *n)
{
	void *rep = NULL;
	int rc = 0;
	while (rc == 0 && redisGetReplyFromReader(n->sub, &rep) == REDIS_OK &&
	       rep) {
		rc = on_message(y, n, rep);
		freeReplyObject(rep);
		rep = NULL;
	}
	if (n->sub->err) {
		snprintf(n->why, sizeof(n->why), "read: %s", n->sub->errstr);
		return LOST;
	}
	if (rc)
		return rc;
	return check(y, n, tool_now_ns());
}

/* Opens n's session; once tracking is on, flushes (loads since the last
 * flush were not covered) and only then says so in the record, so whoever
 * sees "connected" knows the cache is clean.  0, LOST or FATAL. */
static int node_open(struct sync *y, struct node *n)
{
	int rc = session_open(y, n);
	if (rc)
		return rc;
	note(y, "tracking %s (%zu prefixes)", n->addr_text, y->np);
	n->t_on = tool_now_ns();
	if (flush(y, n, "tracking on")) {
		n->why[0] = 0; /* flush() said why */
		return FATAL;
	}
	if (n->was_up)
		tool_sync_add(y->w, TOOL_SYNC_RECONNECTS, 1);
	n->was_up = n->up = true;
	publish_state(y);
	return 0;
}

/* n's session ended (rc LOST): drop it, flush if its tracking was on,
 * and set the time of the next attempt.  0, or FATAL when the flush
 * fails. */
static int node_lost(struct sync *y, struct node *n)
{
	bool was_on = n->t_on != 0;
	uint64_t now = tool_now_ns();
	/* Only a session that held as long as the longest wait starts the
	 * waits afresh: one that Redis ends at once (a refused probe,
	 * -LOADING) keeps doubling them, or every 0.1 s would flush the
	 * cache twice. */
	if (was_on && (double)(now - n->t_on) >= y->backoff_max * 1e9)
		n->backoff = 0.1;
	n->t_on = 0;
	session_close(y, n);
	if (y->nn > 1 && strncmp(n->why, "connect ", 8) != 0)
		note(y, "%s: %s; reconnecting in %.1f s", n->addr_text, n->why,
		     n->backoff);
	else
		note(y, "%s; reconnecting in %.1f s", n->why, n->backoff);
	if (was_on && flush(y, n, "tracking lost")) {
		n->why[0] = 0;
		return FATAL;
	}
	n->retry_at = tool_now_ns() + (uint64_t)(n->backoff * 1e9);
	n->backoff = n->backoff * 2 < y->backoff_max ? n->backoff * 2
	                                             : y->backoff_max;
	return 0;
}

/* One turn of the loop: opens the sessions that are due, handles what
 * was read, waits (100 ms at most) for more.  0 or FATAL (why in
 * *fatal). */
static int step(struct sync *y, struct node **fatal)
{
	volatile int *stop = tool_stop_flag();
	struct pollfd pfd[MAX_NODES];
	struct node *pn[MAX_NODES];
	int np = 0, wait_ms = 100;
	for (size_t i = 0; i < y->nn && !*stop; i++) {
		struct node *n = &y->node[i];
		int rc = 0;
		if (!n->sub && tool_now_ns() >= n->retry_at)
			rc = node_open(y, n);
		if (rc == 0 && n->up)
			rc = drain(y, n);
		if (rc == LOST)
			rc = node_lost(y, n);
		if (rc) {
			*fatal = n;
			return FATAL;
		}
		if (n->up) {
			pfd[np] = (struct pollfd){.fd = n->sub->fd,
			                          .events = POLLIN};
			pn[np++] = n;
		} else {
			uint64_t now = tool_now_ns();
			int ms = n->retry_at > now
			             ? (int)((n->retry_at - now) / 1000000 + 1)
			             : 0;
			if (ms < wait_ms)
				wait_ms = ms;
		}
	}
	if (*stop)
		return 0;
	int got = poll(pfd, (nfds_t)np, wait_ms);
	if (got < 0 && errno != EINTR) {
		/* Not a node's fault: every session is suspect. */
		for (int i = 0; i < np; i++) {
			snprintf(pn[i]->why, sizeof(pn[i]->why), "poll: %s",
			         strerror(errno));
			if (node_lost(y, pn[i])) {
				*fatal = pn[i];
				return FATAL;
			}
		}
		return 0;
	}
	for (int i = 0; i < np && got > 0; i++) {
		struct node *n = pn[i];
		if (!pfd[i].revents || redisBufferRead(n->sub) == REDIS_OK)
			continue;
		snprintf(n->why, sizeof(n->why), "read: %s", n->sub->errstr);
		if (node_lost(y, n)) {
			*fatal = n;
			return FATAL;
		}
	}
	return 0;
}

static int run(struct sync *y)
{
	volatile int *stop = tool_stop_flag();
	/* Whatever the cache holds from before may be stale. */
	if (flush(y, NULL, "start"))
		return TOOL_EXIT_FAIL;
	for (size_t i = 0; i < y->nn; i++)
		y->node[i].backoff = 0.1;
	publish_state(y);
	struct node *fatal = NULL;
	int rc = 0;
	while (!*stop && rc == 0)
		rc = step(y, &fatal);
	for (size_t i = 0; i < y->nn; i++)
		session_close(y, &y->node[i]);
	if (rc) {
		if (fatal->why[0] && y->nn > 1)
			tool_msg("%s: %s", fatal->addr_text, fatal->why);
		else if (fatal->why[0])
			tool_msg("%s", fatal->why);
		return TOOL_EXIT_FAIL;
	}
	note(y, "stopped");
	return TOOL_EXIT_OK;
}

/* The probe key and whether its prefix must be tracked too. */
static void setup_probe(struct sync *y)
{
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = 0;
	int n = snprintf(y->probe_key, sizeof(y->probe_key), "%s%s:%d",
	                 PROBE_PREFIX, host, (int)getpid());
	y->probe_klen = n > 0 && (size_t)n < sizeof(y->probe_key)
	                    ? (size_t)n
	                    : 0;
	y->probing = y->probe_s > 0 && y->probe_klen;
	y->track_probe = y->probing && y->np > 0;
	for (size_t i = 0; i < y->np && y->probing; i++) {
		size_t pl = strlen(y->prefix[i]);
		if (pl <= strlen(PROBE_PREFIX) &&
		    !strncmp(y->prefix[i], PROBE_PREFIX, pl))
			y->track_probe = false; /* covered already */
		else if (!strncmp(y->prefix[i], PROBE_PREFIX,
		                  strlen(PROBE_PREFIX)))
			y->probing = y->track_probe = false; /* would overlap */
	}
}

/* The addresses for the record: as many as fit whole, then "+N more". */
static const char *addr_list(const struct sync *y, char *out, size_t len)
{
	size_t used = 0, i;
	out[0] = 0;
	for (i = 0; i < y->nn; i++) {
		const char *a = y->node[i].addr_text;
		/* room for this one and a " +16 more" after it */
		size_t need = (i ? 1 : 0) + strlen(a) + (i + 1 < y->nn ? 10 : 0);
		if (i && used + need >= len)
			break;
		int k = snprintf(out + used, len - used, "%s%s", i ? " " : "",
		                 a);
		if (k < 0 || (size_t)k >= len - used)
			break; /* the first alone is cut: the record's width */
		used += (size_t)k;
	}
	if (i < y->nn)
		snprintf(out + used, len - used, " +%zu more", y->nn - i);
	return out;
}

int cmd_sync(int argc, char **argv)
{
	enum { O_REDIS = 256, O_PREFIX, O_PROBE, O_TIMEOUT, O_BACKOFF };
	static const struct option lo[] = {
	    {"redis", required_argument, NULL, O_REDIS},
	    {"prefix", required_argument, NULL, O_PREFIX},
	    {"probe", required_argument, NULL, O_PROBE},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"backoff-max", required_argument, NULL, O_BACKOFF},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct sync y = {.probe_s = 1, .backoff_max = 5, .timeout_ms = 2000};
	double timeout = 2;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "qh", lo)) != -1) {
		switch (ch) {
		case O_REDIS:
			if (y.nn == MAX_NODES) {
				tool_msg("--redis: at most %d", MAX_NODES);
				return tool_usage_error();
			}
			y.node[y.nn].addr_text = optarg;
			if (shmc__raddr_parse(optarg, &y.node[y.nn++].addr)) {
				tool_fail(-EINVAL, "--redis: bad address '%s' "
				                   "(unix:/path or host:port)",
				          optarg);
				return tool_usage_error();
			}
			break;
		case O_PREFIX:
			if (strlen(optarg) > SHMC_KEY_MAX) {
				tool_fail(SHMC_EKEYLEN, "--prefix");
				return tool_usage_error();
			}
			if (y.np == MAX_PREFIXES) {
				tool_msg("--prefix: at most %d", MAX_PREFIXES);
				return tool_usage_error();
			}
			y.prefix[y.np++] = optarg;
			break;
		case O_PROBE:
			if ((rc = tool_opt_double("--probe", optarg,
			                          &y.probe_s)))
				return rc;
			break;
		case O_TIMEOUT:
		case O_BACKOFF: {
			double *d = ch == O_TIMEOUT ? &timeout : &y.backoff_max;
			const char *o = ch == O_TIMEOUT ? "--timeout"
			                                : "--backoff-max";
			if ((rc = tool_opt_double(o, optarg, d)))
				return rc;
			if (*d < 0.01 || *d > 3600) {
				tool_fail(-ERANGE, "%s: 0.01 to 3600 seconds",
				          o);
				return tool_usage_error();
			}
			break;
		}
		case 'q':
			y.quiet = true;
			break;
		case 'h':
			help();
			return TOOL_EXIT_OK;
		default:
			return tool_usage_error();
		}
	}
	if (optind != argc - 1) {
		tool_msg(optind >= argc ? "missing NAME" : "too many arguments");
		return tool_usage_error();
	}
	if (!y.nn) {
		tool_msg("missing --redis ADDR");
		return tool_usage_error();
	}
	y.timeout_ms = (unsigned)(timeout * 1000);
	y.name = argv[optind];
	if ((rc = tool_open(y.name, &y.c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	struct shmc_info info;
	char path[4200];
	struct stat st;
	int32_t holder = 0;
	char addrs[128];
	rc = shmc_info(y.c, &info);
	if (!rc)
		rc = tool_sync_path(info.path, y.name, path, sizeof(path));
	if (!rc && stat(info.path, &st) != 0)
		rc = -errno;
	if (!rc)
		rc = tool_sync_attach(path, st.st_mode & 0666,
		                      addr_list(&y, addrs, sizeof(addrs)), &y.w,
		                      &holder);
	if (rc == -EBUSY) {
		tool_msg("another sync runs for %s (pid %d)", y.name, holder);
		shmc_close(y.c);
		return TOOL_EXIT_FAIL;
	} else if (rc) {
		tool_fail(rc, "%s", path);
		shmc_close(y.c);
		return TOOL_EXIT_FAIL;
	}
	setup_probe(&y);
	signal(SIGPIPE, SIG_IGN); /* a dead Redis is an error, not a kill */
	tool_catch_stop();
	int status = run(&y);
	tool_sync_detach(y.w);
	shmc_close(y.c);
	return status;
}
