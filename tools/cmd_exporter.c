/*
 * cmd_exporter.c - `shmcache exporter NAME [--listen ADDR:PORT]`: serves
 * GET /metrics (Prometheus text format, the same rendering as
 * `stats --prometheus`) over HTTP with libmicrohttpd.
 *
 * The listening socket is created and bound here, before libmicrohttpd is
 * started, so a port in use or a bad address is reported with its errno
 * ("Address already in use") and the exporter exits 1; the bound socket
 * is then handed to libmicrohttpd (MHD_OPTION_LISTEN_SOCKET), which runs
 * one internal polling thread.  Each scrape takes a fresh reading: stats
 * take no reader slot and no lock, so a scrape never slows the cache.  The
 * handle is shared between that thread and the main one, which only waits
 * for SIGINT/SIGTERM.  Port 0 picks a free port; the address actually
 * bound is printed on stdout ("listening on http://ADDR:PORT/metrics").
 * Only IPv4 and [IPv6] literal addresses are accepted (default
 * 127.0.0.1:9632): exposing it beyond loopback is a deliberate choice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache exporter NAME [--listen ADDR:PORT]\n\n"
	       "Serves Prometheus metrics of cache NAME at "
	       "http://ADDR:PORT/metrics.\n\n"
	       "  --listen ADDR:PORT  IPv4 or [IPv6] address and port "
	       "(default\n"
	       "                      127.0.0.1:9632; port 0 picks a free "
	       "one)\n"
	       "  -h, --help          this help\n");
}

static int parse_listen(const char *s, struct sockaddr_storage *ss,
                        socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host) || colon == s)
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	uint64_t port;
	if (tool_parse_u64(colon + 1, 65535, &port))
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		host[hl - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -EINVAL;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -EINVAL;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	*len = sizeof(*a);
	return 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code,
                             const char *type, char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **ctx)
{
	(void)version;
	(void)upload;
	(void)upload_size;
	(void)ctx;
	shmc_t *c = cls;
	char *body = NULL;
	size_t len = 0;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		body = strdup("method not allowed\n");
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
		             body, body ? strlen(body) : 0);
	}
	if (strcmp(url, "/metrics") != 0) {
		body = strdup("shmcache exporter: metrics at /metrics\n");
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", body,
		             body ? strlen(body) : 0);
	}
	FILE *f = open_memstream(&body, &len);
	if (!f)
		return MHD_NO;
	struct tool_snap s;
	int rc = tool_snap_take(c, &s);
	if (!rc)
		tool_snap_prom(f, &s);
	else
		fprintf(f, "stats: %s\n", shmc_strerror(rc));
	fclose(f);
	return reply(conn, rc ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_OK,
	             "text/plain; version=0.0.4; charset=utf-8", body, len);
}

int cmd_exporter(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *listen_at = "127.0.0.1:9632";
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
		switch (ch) {
		case 'l':
			listen_at = optarg;
			break;
		case 'h':
			help();
			return TOOL_EXIT_OK;
		default:
			return tool_usage_error();
		}
	}
	if (argc - optind != 1) {
		tool_msg(optind >= argc ? "missing NAME" : "too many arguments");
		return tool_usage_error();
	}
	struct sockaddr_storage ss;
	socklen_t sl = 0;
	if (parse_listen(listen_at, &ss, &sl)) {
		tool_fail(-EINVAL, "--listen: '%s' is not ADDR:PORT (e.g. "
		                   "127.0.0.1:9632)",
		          listen_at);
		return tool_usage_error();
	}
	const char *name = argv[optind];
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		tool_fail(-errno, "listen on %s", listen_at);
		if (fd >= 0)
			close(fd);
		shmc_close(c);
		return TOOL_EXIT_FAIL;
	}
	/* signals: handled by sigwait in this thread only */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, c,
	    MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)10, MHD_OPTION_END);
	if (!d) {
		tool_fail(-EIO, "starting the HTTP server on %s", listen_at);
		close(fd);
		shmc_close(c);
		return TOOL_EXIT_FAIL;
	}
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		printf("listening on http://[%s]:%u/metrics\n", host, port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		printf("listening on http://%s:%u/metrics\n", host, port);
	}
	fflush(stdout);
	int sig = 0;
	sigwait(&set, &sig);
	MHD_stop_daemon(d); /* closes the listening socket it was given */
	shmc_close(c);
	return TOOL_EXIT_OK;
}
