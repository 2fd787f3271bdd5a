/*
 * cmd_stats.c - `shmcache stats NAME [--json | --prometheus]
 * [--watch SECS [--count N]]`.
 *
 * One reading (metrics.c: counters, gauges, get-or-load figures, the
 * autogrow policy and the recent resizes) rendered once, or every SECS
 * seconds until interrupted or N readings were printed.  With --watch, --json prints one
 * object per line (JSON Lines) and the text view adds per-second rates
 * since the previous reading.  Reading stats takes no reader slot and no
 * lock: it never slows the cache's users.
 */
#include <errno.h>
#include <getopt.h>
#include <time.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache stats NAME [--json | --prometheus] "
	       "[--watch SECS [--count N]]\n\n"
	       "Prints the counters and gauges of cache NAME.\n\n"
	       "  --json          one JSON object (one per line with --watch)\n"
	       "  --prometheus    Prometheus text exposition format\n"
	       "  --watch SECS    repeat every SECS seconds (fractions "
	       "allowed)\n"
	       "  --count N       with --watch: stop after N readings\n"
	       "  -h, --help      this help\n");
}

int cmd_stats(int argc, char **argv)
{
	enum { O_JSON = 256, O_PROM, O_WATCH, O_COUNT };
	static const struct option lo[] = {
	    {"json", no_argument, NULL, O_JSON},
	    {"prometheus", no_argument, NULL, O_PROM},
	    {"watch", required_argument, NULL, O_WATCH},
	    {"count", required_argument, NULL, O_COUNT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	bool json = false, prom = false;
	double watch = 0;
	uint64_t count = 0;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
		switch (ch) {
		case O_JSON:
			json = true;
			break;
		case O_PROM:
			prom = true;
			break;
		case O_WATCH:
			if ((rc = tool_opt_double("--watch", optarg, &watch)))
				return rc;
			if (watch <= 0) {
				tool_fail(-EINVAL, "--watch: must be above 0");
				return tool_usage_error();
			}
			break;
		case O_COUNT:
			if ((rc = tool_opt_u64("--count", optarg, UINT32_MAX,
			                       &count)))
				return rc;
			break;
		case 'h':
			help();
			return TOOL_EXIT_OK;
		default:
			return tool_usage_error();
		}
	}
	if (json && prom) {
		tool_msg("--json and --prometheus exclude each other");
		return tool_usage_error();
	}
	if (optind != argc - 1) {
		tool_msg(optind >= argc ? "missing NAME" : "too many arguments");
		return tool_usage_error();
	}
	shmc_t *c = NULL;
	if ((rc = tool_open(argv[optind], &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	if (watch > 0)
		tool_catch_stop();
	struct tool_snap prev = {0}, cur;
	struct jw w;
	jw_init(&w, stdout);
	int status = TOOL_EXIT_OK;
	for (uint64_t i = 0;; i++) {
		rc = tool_snap_take(c, &cur);
		if (rc) {
			tool_fail(rc, "stats %s", argv[optind]);
			status = TOOL_EXIT_FAIL;
			break;
		}
		if (json) {
			tool_snap_json(&w, &cur);
			jw_end(&w);
		} else if (prom) {
			tool_snap_prom(stdout, &cur);
		} else {
			if (watch > 0) {
				time_t now = time(NULL);
				struct tm tm;
				char ts[32];
				strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S",
				         localtime_r(&now, &tm));
				printf("--- %s\n", ts);
			}
			tool_snap_text(stdout, &cur);
			if (watch > 0 && i > 0) {
				printf("rates          %.1f gets/s, %.1f sets/s, "
				       "%.1f evictions/s, %.1f loads/s\n",
				       tool_rate(prev.st.gets, cur.st.gets,
				                 prev.t_ns, cur.t_ns),
				       tool_rate(prev.st.sets, cur.st.sets,
				                 prev.t_ns, cur.t_ns),
				       tool_rate(prev.st.evictions,
				                 cur.st.evictions, prev.t_ns,
				                 cur.t_ns),
				       tool_rate(prev.st.loads, cur.st.loads,
				                 prev.t_ns, cur.t_ns));
			}
			if (watch > 0)
				printf("\n");
		}
		if (fflush(stdout) != 0) {
			status = TOOL_EXIT_FAIL;
			break;
		}
		prev = cur;
		if (watch <= 0 || (count && i + 1 >= count))
			break;
		if (tool_sleep(watch, tool_stop_flag()))
			break;
	}
	shmc_close(c);
	return status;
}
