/*
 * cmd_sync.c - `shmcache sync NAME --redis ADDR [--prefix P ...]`: keeps
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
 * The counters go to SHMCACHE_DIR/shmcache-sync.NAME (syncfile.c), read
 * by stats, top and the exporter.
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
#define LOST 1  /* the session ended: flush and reconnect */
#define FATAL 2 /* Redis refused what we asked: exit */

struct sync {
	shmc_t *c;
	const char *name, *addr_text;
	struct shmc__raddr addr;
	const char *prefix[MAX_PREFIXES];
	size_t np;
	double probe_s, backoff_max;
	unsigned timeout_ms;
	bool quiet, track_probe, probing;
	char probe_key[SHMC_KEY_MAX + 1];
	size_t probe_klen;
	struct tool_sync_writer *w;
	redisContext *sub, *cmd;
	uint64_t probe_t0, next_check; /* ns; probe_t0 0 = none pending */
	uint64_t lag_max;              /* largest probe lag, ns */
	char why[256];                 /* why the session ended */
};

static void help(void)
{
	printf("Usage: shmcache sync NAME --redis ADDR [--prefix P ...] "
	       "[--probe SECS] [--timeout SECS] [--backoff-max SECS] "
	       "[-q | --quiet]\n\n"
	       "Keeps cache NAME coherent with Redis (CLIENT TRACKING, "
	       "broadcast mode):\ndeletes the keys Redis invalidates; "
	       "flushes the tracked prefixes at start,\nwhen the connection "
	       "is lost and on FLUSHALL.  Runs until SIGINT or SIGTERM.\n\n"
	       "  --redis ADDR        unix:/path, /path, host:port or "
	       "[v6]:port\n"
	       "  --prefix P          track keys starting with P (repeat; "
	       "default: all keys)\n"
	       "  --probe SECS        measure the lag every SECS (default 1; "
	       "0: off)\n"
	       "  --timeout SECS      connect and reply timeout (default 2)\n"
	       "  --backoff-max SECS  longest wait between reconnects "
	       "(default 5)\n"
	       "  -q, --quiet         no event lines on standard output\n"
	       "  -h, --help          this help\n");
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

/* Flushes every tracked prefix; 0 or the library's error. */
static int flush(struct sync *y, const char *why)
{
	uint64_t total = 0;
	for (size_t i = 0; i < (y->np ? y->np : 1); i++) {
		const char *p = y->np ? y->prefix[i] : "";
		int n = shmc_del_prefix(y->c, p, strlen(p));
		if (n < 0) {
			tool_fail(n, "flush %s", y->name);
			return n;
		}
		total += (uint64_t)n;
	}
	tool_sync_add(y->w, TOOL_SYNC_FLUSHES, 1);
	tool_sync_add(y->w, TOOL_SYNC_FLUSHED_KEYS, total);
	note(y, "flushed %llu keys (%s)", (unsigned long long)total, why);
	return 0;
}

static void session_close(struct sync *y)
{
	if (y->sub)
		redisFree(y->sub);
	if (y->cmd)
		redisFree(y->cmd);
	y->sub = y->cmd = NULL;
	y->probe_t0 = 0;
	tool_sync_connected(y->w, false);
}

/* A reply of the expected type, or why not in y->why. */
static redisReply *expect(struct sync *y, redisContext *ctx, void *r,
                          int type, const char *what)
{
	redisReply *rep = r;
	if (!rep) {
		snprintf(y->why, sizeof(y->why), "%s: %s", what,
		         ctx->err ? ctx->errstr : "no reply");
		return NULL;
	}
	if (rep->type != type) {
		snprintf(y->why, sizeof(y->why), "%s: %.*s", what,
		         rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 16,
		         rep->type == REDIS_REPLY_ERROR ? rep->str
		                                        : "unexpected reply");
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/* Connects both, subscribes, turns tracking on: 0, LOST or FATAL. */
static int session_open(struct sync *y)
{
	char err[200];
	y->sub = shmc__raddr_connect(&y->addr, y->timeout_ms, err, sizeof(err));
	if (y->sub)
		y->cmd = shmc__raddr_connect(&y->addr, y->timeout_ms, err,
		                             sizeof(err));
	if (!y->sub || !y->cmd) {
		snprintf(y->why, sizeof(y->why), "connect %s: %s", y->addr_text,
		         err);
		return LOST;
	}
	redisReply *r = expect(y, y->sub, redisCommand(y->sub, "CLIENT ID"),
	                       REDIS_REPLY_INTEGER, "CLIENT ID");
	if (!r)
		return y->sub->err ? LOST : FATAL;
	long long id = r->integer;
	freeReplyObject(r);
	r = expect(y, y->sub,
	           redisCommand(y->sub, "SUBSCRIBE __redis__:invalidate"),
	           REDIS_REPLY_ARRAY, "SUBSCRIBE");
	if (!r)
		return y->sub->err ? LOST : FATAL;
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
	r = expect(y, y->cmd, redisCommandArgv(y->cmd, argc, argv, NULL),
	           REDIS_REPLY_STATUS, "CLIENT TRACKING");
	if (!r)
		return y->cmd->err ? LOST : FATAL;
	freeReplyObject(r);
	y->next_check = 0;
	return 0;
}

static void on_keys(struct sync *y, const redisReply *keys)
{
	uint64_t deleted = 0;
	for (size_t i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		if (k->type != REDIS_REPLY_STRING || k->len == 0 ||
		    k->len > SHMC_KEY_MAX)
			continue; /* no such key can be in the cache */
		if (y->probe_t0 && (size_t)k->len == y->probe_klen &&
		    !memcmp(k->str, y->probe_key, y->probe_klen)) {
			uint64_t lag = tool_now_ns() - y->probe_t0;
			tool_sync_set(y->w, TOOL_SYNC_LAG_NS, lag);
			tool_sync_add(y->w, TOOL_SYNC_PROBES, 1);
			if (lag > y->lag_max) {
				y->lag_max = lag;
				tool_sync_set(y->w, TOOL_SYNC_PROBE_MAX_NS, lag);
			}
			y->probe_t0 = 0;
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
static int on_message(struct sync *y, const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0)
		return 0; /* (un)subscribe confirmations, pongs */
	tool_sync_add(y->w, TOOL_SYNC_INVALIDATIONS, 1);
	const redisReply *keys = r->element[2];
	if (keys->type == REDIS_REPLY_ARRAY) {
		on_keys(y, keys);
		return 0;
	}
	/* A null key list: FLUSHALL or FLUSHDB. */
	return flush(y, "FLUSHALL or FLUSHDB in Redis") ? FATAL : 0;
}

/* The timed checks: the probe (or a PING).  0 or LOST. */
static int check(struct sync *y, uint64_t now)
{
	if (y->probe_t0 &&
	    now - y->probe_t0 > 5ull * y->timeout_ms * 1000000ull) {
		snprintf(y->why, sizeof(y->why),
		         "no invalidation for the probe in %u ms",
		         5 * y->timeout_ms);
		return LOST;
	}
	if (now < y->next_check)
		return 0;
	redisReply *r;
	if (y->probing && !y->probe_t0) {
		y->probe_t0 = now ? now : 1;
		r = expect(y, y->cmd,
		           redisCommand(y->cmd, "SET %b %llu PX 60000",
		                        y->probe_key, y->probe_klen,
		                        (unsigned long long)now),
		           REDIS_REPLY_STATUS, "probe SET");
		y->next_check = now + (uint64_t)(y->probe_s * 1e9);
	} else {
		r = expect(y, y->cmd, redisCommand(y->cmd, "PING"),
		           REDIS_REPLY_STATUS, "PING");
		if (!y->probing)
			y->next_check = now + 1000000000ull;
	}
	if (!r)
		return LOST;
	freeReplyObject(r);
	return 0;
}

/* Follows invalidations until the session ends: LOST, FATAL, or 0 on a
 * stop signal. */
static int session_run(struct sync *y)
{
	volatile int *stop = tool_stop_flag();
	while (!*stop) {
		/* Replies hiredis has read already come first. */
		void *rep = NULL;
		int rc = 0;
		while (rc == 0 &&
		       redisGetReplyFromReader(y->sub, &rep) == REDIS_OK &&
		       rep) {
			rc = on_message(y, rep);
			freeReplyObject(rep);
			rep = NULL;
		}
		if (y->sub->err) {
			snprintf(y->why, sizeof(y->why), "read: %s",
			         y->sub->errstr);
			return LOST;
		}
		if (rc)
			return rc;
		if ((rc = check(y, tool_now_ns())))
			return rc;
		struct pollfd pfd = {.fd = y->sub->fd, .events = POLLIN};
		int n = poll(&pfd, 1, 100);
		if (n < 0 && errno != EINTR) {
			snprintf(y->why, sizeof(y->why), "poll: %s",
			         strerror(errno));
			return LOST;
		}
		if (n > 0 && redisBufferRead(y->sub) != REDIS_OK) {
			snprintf(y->why, sizeof(y->why), "read: %s",
			         y->sub->errstr);
			return LOST;
		}
	}
	return 0;
}

static int run(struct sync *y)
{
	volatile int *stop = tool_stop_flag();
	double backoff = 0.1;
	bool was_up = false;
	/* Whatever the cache holds from before may be stale. */
	if (flush(y, "start"))
		return TOOL_EXIT_FAIL;
	while (!*stop) {
		int rc = session_open(y);
		bool lost = rc == 0; /* tracking was on until now */
		if (rc == 0) {
			note(y, "tracking %s (%zu prefixes)", y->addr_text,
			     y->np);
			/* Loads since the last flush were not covered.  The
			 * record says "connected" only after it, so whoever
			 * sees that knows the cache is clean. */
			uint64_t t0 = tool_now_ns();
			if (flush(y, "tracking on")) {
				rc = FATAL;
			} else {
				if (was_up)
					tool_sync_add(y->w,
					              TOOL_SYNC_RECONNECTS, 1);
				tool_sync_connected(y->w, true);
				rc = session_run(y);
			}
			was_up = true;
			/* Only a session that held as long as the longest
			 * wait starts the waits afresh: one that Redis ends
			 * at once (a refused probe, -LOADING) keeps doubling
			 * them, or every 0.1 s would flush the cache twice. */
			if ((double)(tool_now_ns() - t0) >= y->backoff_max * 1e9)
				backoff = 0.1;
		}
		session_close(y);
		if (rc == FATAL) {
			tool_msg("%s", y->why);
			return TOOL_EXIT_FAIL;
		}
		if (*stop)
			break;
		note(y, "%s; reconnecting in %.1f s", y->why, backoff);
		if (lost && flush(y, "tracking lost"))
			return TOOL_EXIT_FAIL;
		tool_sleep(backoff, stop);
		backoff = backoff * 2 < y->backoff_max ? backoff * 2
		                                       : y->backoff_max;
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
			y.addr_text = optarg;
			if (shmc__raddr_parse(optarg, &y.addr)) {
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
	if (!y.addr_text) {
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
	rc = shmc_info(y.c, &info);
	if (!rc)
		rc = tool_sync_path(info.path, y.name, path, sizeof(path));
	if (!rc && stat(info.path, &st) != 0)
		rc = -errno;
	if (!rc)
		rc = tool_sync_attach(path, st.st_mode & 0666, y.addr_text,
		                      &y.w, &holder);
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
