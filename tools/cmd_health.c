/*
 * cmd_health.c - `shmcache health NAME --warn 85 --crit 95 [...]`, a check
 * in the monitoring-plugin convention (Nagios, Icinga, Sensu):
 *
 *   exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (usage error, cache that
 *   cannot be opened), and exactly one line on stdout:
 *   SHMCACHE STATE - text | perfdata
 *   with perfdata as 'label'=value[UOM];warn;crit;min;max.
 *
 * Three signals, the worst one wins:
 *   utilisation (metrics.c) >= warn / crit percent;
 *   hit ratio <= hit-warn / hit-crit percent, judged only once at least
 *     --min-gets lookups were seen (a cold cache is not a sick one); over
 *     the sampling interval when --interval is given, else since creation;
 *   evictions per second >= evict-warn / evict-crit, which needs two
 *     readings --interval seconds apart (default 1 when an eviction
 *     threshold is given, else no second reading is taken).
 */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "tool.h"

enum { H_OK, H_WARN, H_CRIT, H_UNKNOWN };
static const char *state_name[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

static void help(void)
{
	printf("Usage: shmcache health NAME [--warn PCT] [--crit PCT] "
	       "[OPTIONS]\n\n"
	       "Monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 "
	       "UNKNOWN,\none status line with perfdata.\n\n"
	       "  --warn PCT        utilisation warning threshold (default 85)\n"
	       "  --crit PCT        utilisation critical threshold (default 95)\n"
	       "  --hit-warn PCT    warn when the hit ratio is at or below PCT\n"
	       "  --hit-crit PCT    critical when the hit ratio is at or below "
	       "PCT\n"
	       "  --min-gets N      judge the hit ratio only after N lookups "
	       "(default 100)\n"
	       "  --evict-warn N    warn at N evictions per second or more\n"
	       "  --evict-crit N    critical at N evictions per second or more\n"
	       "  --interval SECS   sampling interval for rates (default 1 with "
	       "an\n"
	       "                    eviction threshold, else 0 = no sampling)\n"
	       "  -h, --help        this help\n");
}

static void thr(FILE *f, double v)
{
	if (v >= 0)
		fprintf(f, "%g", v);
}

int cmd_health(int argc, char **argv)
{
	enum { O_WARN = 256, O_CRIT, O_HW, O_HC, O_MING, O_EW, O_EC, O_INT };
	static const struct option lo[] = {
	    {"warn", required_argument, NULL, O_WARN},
	    {"crit", required_argument, NULL, O_CRIT},
	    {"hit-warn", required_argument, NULL, O_HW},
	    {"hit-crit", required_argument, NULL, O_HC},
	    {"min-gets", required_argument, NULL, O_MING},
	    {"evict-warn", required_argument, NULL, O_EW},
	    {"evict-crit", required_argument, NULL, O_EC},
	    {"interval", required_argument, NULL, O_INT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	double warn = 85, crit = 95, hw = -1, hc = -1, ew = -1, ec = -1;
	double interval = -1;
	uint64_t min_gets = 100;
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		double *dst = NULL;
		const char *opt = NULL;
		switch (ch) {
		case O_WARN: dst = &warn; opt = "--warn"; break;
		case O_CRIT: dst = &crit; opt = "--crit"; break;
		case O_HW: dst = &hw; opt = "--hit-warn"; break;
		case O_HC: dst = &hc; opt = "--hit-crit"; break;
		case O_EW: dst = &ew; opt = "--evict-warn"; break;
		case O_EC: dst = &ec; opt = "--evict-crit"; break;
		case O_INT: dst = &interval; opt = "--interval"; break;
		case O_MING:
			if (tool_opt_u64("--min-gets", optarg, UINT64_MAX,
			                 &min_gets))
				return H_UNKNOWN;
			continue;
		case 'h':
			help();
			return H_OK;
		default:
			tool_usage_error();
			return H_UNKNOWN;
		}
		if (tool_opt_double(opt, optarg, dst))
			return H_UNKNOWN;
		if (ch != O_EW && ch != O_EC && ch != O_INT && *dst > 100) {
			tool_fail(-ERANGE, "%s: %s is not a percentage", opt,
			          optarg);
			tool_usage_error();
			return H_UNKNOWN;
		}
	}
	if (argc - optind != 1) {
		tool_msg(optind >= argc ? "missing NAME" : "too many arguments");
		tool_usage_error();
		return H_UNKNOWN;
	}
	if (warn > crit || (hw >= 0 && hc >= 0 && hw < hc) ||
	    (ew >= 0 && ec >= 0 && ew > ec)) {
		tool_msg("a warning threshold lies beyond its critical one");
		tool_usage_error();
		return H_UNKNOWN;
	}
	if (interval < 0)
		interval = (ew >= 0 || ec >= 0) ? 1 : 0;
	if (interval > 300) {
		tool_msg("--interval: at most 300 seconds");
		return H_UNKNOWN;
	}
	const char *name = argv[optind];
	shmc_t *c = NULL;
	struct tool_snap a, b;
	int rc = tool_check_name(name);
	if (!rc)
		rc = shmc_open(name, 0, &c);
	if (!rc)
		rc = tool_snap_take(c, &a);
	b = a;
	if (!rc && interval > 0) {
		tool_sleep(interval, NULL);
		rc = tool_snap_take(c, &b);
	}
	shmc_close(c);
	if (rc) {
		printf("SHMCACHE UNKNOWN - %s: %s\n", name, shmc_strerror(rc));
		return H_UNKNOWN;
	}

	int state = H_OK;
	char why[256] = "";
	double util = b.utilisation * 100;
	if (util >= crit) {
		state = H_CRIT;
		snprintf(why, sizeof(why), " (utilisation >= %g%%)", crit);
	} else if (util >= warn) {
		state = H_WARN;
		snprintf(why, sizeof(why), " (utilisation >= %g%%)", warn);
	}
	uint64_t hits = b.st.hits, lookups = b.st.hits + b.st.misses;
	if (interval > 0) {
		hits -= a.st.hits;
		lookups -= a.st.hits + a.st.misses;
	}
	bool judged = lookups > 0 && lookups >= min_gets;
	double hit = lookups ? 100.0 * (double)hits / (double)lookups : 0;
	if (judged && hc >= 0 && hit <= hc && state < H_CRIT) {
		state = H_CRIT;
		snprintf(why, sizeof(why), " (hit ratio <= %g%%)", hc);
	} else if (judged && hw >= 0 && hit <= hw && state < H_WARN) {
		state = H_WARN;
		snprintf(why, sizeof(why), " (hit ratio <= %g%%)", hw);
	}
	double ev = tool_rate(a.st.evictions, b.st.evictions, a.t_ns, b.t_ns);
	if (interval > 0 && ec >= 0 && ev >= ec && state < H_CRIT) {
		state = H_CRIT;
		snprintf(why, sizeof(why), " (evictions >= %g/s)", ec);
	} else if (interval > 0 && ew >= 0 && ev >= ew && state < H_WARN) {
		state = H_WARN;
		snprintf(why, sizeof(why), " (evictions >= %g/s)", ew);
	}

	printf("SHMCACHE %s - %s: utilisation %.1f%%, hit ratio ",
	       state_name[state], name, util);
	if (lookups)
		printf("%.1f%%", hit);
	else
		printf("n/a");
	if (interval > 0)
		printf(", evictions %.1f/s", ev);
	printf("%s | utilisation=%.2f%%;%g;%g;0;100", why, util, warn, crit);
	if (lookups) {
		printf(" hit_ratio=%.2f%%;", hit);
		thr(stdout, hw);
		putchar(';');
		thr(stdout, hc);
		printf(";0;100");
	}
	if (interval > 0) {
		printf(" evictions_per_second=%.2f;", ev);
		thr(stdout, ew);
		putchar(';');
		thr(stdout, ec);
		printf(";0;");
	}
	printf(" items=%llu;;;0; used=%lluB;;;0;%llu processes=%u;;;0;\n",
	       (unsigned long long)b.st.items,
	       (unsigned long long)b.st.used_bytes,
	       (unsigned long long)b.data_capacity, b.st.processes);
	fflush(stdout);
	return state;
}
