/*
 * util.c - helpers shared by the subcommands: error messages, parsing of
 * sizes and numbers, opening a cache, escaping, whole-fd I/O, clocks and
 * a stop flag for the long-running views (stats --watch, top, exporter).
 *
 * Parsing is strict: the whole string must be consumed, no sign, no
 * whitespace, and overflow is an error (-ERANGE), never a silent wrap.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

const char *tool_sub = "shmcache";

void tool_fail(int rc, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "shmcache: %s: %s: %s\n", tool_sub, what,
	        shmc_strerror(rc));
}

void tool_msg(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "shmcache: %s: %s\n", tool_sub, msg);
}

int tool_usage_error(void)
{
	fprintf(stderr, "Try 'shmcache %s --help'.\n", tool_sub);
	return TOOL_EXIT_USAGE;
}

int tool_getopt(int argc, char **argv, const char *shortopts,
                const struct option *longopts)
{
	/* getopt's own messages name argv[0] ("stats: unrecognized option
	 * '--bogus'"), not the tool's form: it stays quiet (opterr 0 and a
	 * leading ':' so a missing value is told from an unknown option) and
	 * the message is printed here. */
	char so[64];
	snprintf(so, sizeof(so), ":%s", shortopts);
	opterr = 0;
	int prev = optind;
	int ch = getopt_long(argc, argv, so, longopts, NULL);
	if (ch != '?' && ch != ':')
		return ch;
	/* The word getopt stopped at: argv[optind - 1] once it moved on. */
	const char *word = optind > prev ? argv[optind - 1] : argv[optind];
	char opt[128];
	if (word && word[0] == '-' && word[1] == '-')
		snprintf(opt, sizeof(opt), "%.*s", (int)strcspn(word, "="),
		         word);
	else
		snprintf(opt, sizeof(opt), "-%c", optopt ? optopt : '?');
	if (ch == ':')
		tool_msg("%s: needs a value", opt);
	else if (optopt && word && word[0] == '-' && word[1] == '-')
		tool_msg("%s: takes no value", opt);
	else
		tool_msg("%s: unknown option", opt);
	return '?';
}

int tool_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (*s)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int tool_parse_size(const char *s, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	uint64_t v = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	unsigned shift = 0;
	switch (*s) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	case 'b': case 'B': case '\0': break; /* bytes: "100B" is 100 */
	default: return -EINVAL;
	}
	if (shift) {
		s++;
		if (*s == 'i' && (s[1] == 'B' || s[1] == 'b'))
			s += 2;
		else if (*s == 'B' || *s == 'b')
			s++;
	} else if (*s == 'B' || *s == 'b') {
		s++;
	}
	if (*s)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int tool_parse_double(const char *s, double *out)
{
	if (!s || ((*s < '0' || *s > '9') && *s != '.'))
		return -EINVAL;
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !isfinite(v) || v < 0)
		return errno == ERANGE ? -ERANGE : -EINVAL;
	*out = v;
	return 0;
}

int tool_opt_size(const char *opt, const char *s, uint64_t *out)
{
	int rc = tool_parse_size(s, out);
	if (rc) {
		tool_fail(rc, "%s: bad size '%s' (use digits with K, M, G or T)",
		          opt, s);
		return tool_usage_error();
	}
	return 0;
}

int tool_opt_u64(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	int rc = tool_parse_u64(s, max, out);
	if (rc) {
		tool_fail(rc, "%s: bad number '%s' (0 to %llu)", opt, s,
		          (unsigned long long)max);
		return tool_usage_error();
	}
	return 0;
}

int tool_opt_range(const char *opt, const char *s, uint64_t min, uint64_t max,
                   uint64_t *out)
{
	int rc = tool_parse_u64(s, max, out);
	if (!rc && *out < min)
		rc = -ERANGE;
	if (rc) {
		tool_fail(rc, "%s: bad number '%s' (%llu to %llu)", opt, s,
		          (unsigned long long)min, (unsigned long long)max);
		return tool_usage_error();
	}
	return 0;
}

int tool_opt_double(const char *opt, const char *s, double *out)
{
	int rc = tool_parse_double(s, out);
	if (rc) {
		tool_fail(rc, "%s: bad number '%s'", opt, s);
		return tool_usage_error();
	}
	return 0;
}

int tool_check_name(const char *name)
{
	size_t n = strlen(name);
	bool ok = n >= 1 && n <= SHMC_NAME_MAX && strcmp(name, ".") != 0 &&
	          strcmp(name, "..") != 0;
	for (size_t i = 0; ok && i < n; i++) {
		char ch = name[i];
		ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		     (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		     ch == '-';
	}
	if (!ok) {
		tool_fail(SHMC_ENAME, "'%s' (names are 1 to %d of A-Z a-z 0-9 "
		                      ". _ -, other than . and ..)",
		          name, SHMC_NAME_MAX);
		return SHMC_ENAME;
	}
	return 0;
}

/* 1 when the caller is a member of group gid (primary or supplementary). */
static bool in_group(gid_t gid)
{
	if (getegid() == gid)
		return true;
	gid_t g[256];
	int n = getgroups(256, g);
	for (int i = 0; i < n; i++)
		if (g[i] == gid)
			return true;
	return false;
}

static const char *cache_path(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("SHMCACHE_DIR");
	if (!dir || !*dir)
		dir = "/dev/shm";
	snprintf(buf, len, "%s/shmcache.%s", dir, name);
	return buf;
}

unsigned tool_open_flags(const char *name)
{
	/* The library refuses a file owned by another user unless told
	 * (SHMC_OPEN_ANY_OWNER): /dev/shm is shared, and anyone may plant a
	 * file there.  A cache whose mode grants its group read and write
	 * was shared with that group on purpose (create --mode 0660
	 * --group G), so a member of G opens it as the owner would. */
	char p[4200];
	struct stat st;
	if (stat(cache_path(name, p, sizeof(p)), &st) != 0 ||
	    st.st_uid == geteuid())
		return 0;
	if ((st.st_mode & 0060) == 0060 && in_group(st.st_gid))
		return SHMC_OPEN_ANY_OWNER;
	return 0;
}

const char *tool_open_reason(const char *name, int rc, char *buf, size_t len)
{
	if (rc == -ENOENT)
		return "no such cache";
	if (rc != -EACCES)
		return shmc_strerror(rc);
	char p[4200];
	struct stat st;
	if (stat(cache_path(name, p, sizeof(p)), &st) == 0 &&
	    st.st_uid != geteuid()) {
		snprintf(buf, len, "permission denied (owned by uid %u and "
		                   "not shared with a group of yours: mode "
		                   "%04o)",
		         (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return buf;
	}
	return "permission denied";
}

int tool_open(const char *name, shmc_t **out)
{
	int rc = tool_check_name(name);
	if (rc)
		return rc;
	rc = shmc_open(name, tool_open_flags(name), out);
	if (rc) {
		char why[160];
		tool_msg("open %s: %s", name,
		         tool_open_reason(name, rc, why, sizeof(why)));
	}
	return rc;
}

const char *tool_human(uint64_t bytes, char *buf, size_t len)
{
	static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)bytes;
	unsigned u = 0;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

void tool_write_escaped(FILE *f, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\')
			fputs("\\\\", f);
		else if (s[i] < 0x20 || s[i] >= 0x7f)
			fprintf(f, "\\x%02x", s[i]);
		else
			fputc(s[i], f);
	}
}

bool tool_utf8_ok(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		/* overlong, surrogates, beyond U+10FFFF */
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += k + 1;
	}
	return true;
}

int tool_read_all(int fd, size_t max, uint8_t **buf, size_t *len)
{
	/* REVIEW FIX: bounded by max.  Unbounded, `set C K < /dev/zero` (or
	 * any endless or huge stdin) grew the buffer until memory ran out
	 * although no value can exceed a segment.  The buffer never grows
	 * past max + 1 bytes: one byte more than max proves the input is
	 * too long (-EFBIG), without reading the rest. */
	size_t cap = max < 65536 ? max + 1 : 65536, n = 0;
	uint8_t *b = malloc(cap);
	if (!b)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (n > max) {
				free(b);
				return -EFBIG;
			}
			size_t nc = cap > max / 2 ? max + 1 : cap * 2;
			uint8_t *nb = realloc(b, nc);
			if (!nb) {
				free(b);
				return -ENOMEM;
			}
			b = nb;
			cap = nc;
		}
		ssize_t r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int rc = -errno;
			free(b);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(b);
		return -EFBIG;
	}
	*buf = b;
	*len = n;
	return 0;
}

int tool_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

uint64_t tool_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tool_sleep(double secs, volatile int *stop)
{
	if (secs <= 0)
		return stop && *stop;
	struct timespec ts = {.tv_sec = (time_t)secs};
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
		if (stop && *stop)
			return 1;
	}
	return stop && *stop;
}

static volatile int stop_flag;

volatile int *tool_stop_flag(void)
{
	return &stop_flag;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

void tool_catch_stop(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: sleeps and reads return EINTR so loops notice */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int tool_plain_args(int argc, char **argv, void (*help)(void), int n,
                    const char *missing, bool *quiet)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	static const struct option lo_q[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"quiet", no_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0}};
	int ch;
	while ((ch = tool_getopt(argc, argv, quiet ? "hq" : "h",
	                         quiet ? lo_q : lo)) != -1) {
		if (ch == 'h') {
			help();
			return TOOL_EXIT_OK;
		}
		if (ch == 'q') {
			*quiet = true;
			continue;
		}
		return tool_usage_error();
	}
	if (argc - optind != n) {
		tool_msg("%s", argc - optind < n ? missing : "too many arguments");
		return tool_usage_error();
	}
	return -1;
}
