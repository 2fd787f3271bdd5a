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
 *     threshold is given, else no second reading is taken);
 *   on a cache that keeps its miss-ratio curve, a WARNING (never worse)
 *     when twice the budget is predicted to raise the hit ratio by
 *     --mrc-gain points or more (default 10): today's size is far below
 *     the knee.  Judged once the curve stands for --min-gets gets.
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
	       "[OPTIONS] [--json]\n\n"
	       "Monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 "
	       "UNKNOWN,\none status line with perfdata (or one JSON "
	       "object).\n\n"
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
	       "  --mrc-gain PTS    warn when 2x the budget would add PTS points "
	       "or more\n"
	       "                    to the hit ratio (the miss-ratio curve; "
	       "default 10,\n"
	       "                    0 = never)\n"
	       "  --json            one JSON object: state, reason, figures, "
	       "thresholds\n"
	       "  -h, --help        this help\n");
}

static void thr(FILE *f, double v)
{
	if (v >= 0)
		fprintf(f, "%g", v);
}

/* A threshold, or null when not set (< 0). */
static void jw_thr(struct jw *w, const char *k, double v)
{
	jw_key(w, k);
	if (v >= 0)
		jw_dbl(w, v);
	else
		jw_null(w);
}

/* The fields every health JSON object starts with, up to the key
 * "reason" (its value is the caller's). */
static void json_head(struct jw *w, const char *name, int state)
{
	jw_init(w, stdout);
	jw_obj(w);
	jw_key(w, "cache");
	jw_str(w, name);
	jw_key(w, "state");
	jw_str(w, state_name[state]);
	jw_key(w, "status");
	jw_u64(w, (uint64_t)state);
	jw_key(w, "reason");
}

/*
 * The JSON form: the same judgement as the status line.  hit and ev are
 * < 0 when not measured (no lookups; no interval), and then null; thr
 * holds warn, crit, hit-warn, hit-crit, evict-warn, evict-crit.  reason
 * is the status line's "(utilisation >= 85%)" without the parentheses,
 * or null when OK.
 */
static void print_json(const char *name, int state, const char *why,
                       double util, double hit, double ev, double gain,
                       const struct tool_snap *b, const double *thr,
                       double interval)
{
	struct jw w;
	json_head(&w, name, state);
	size_t n = strlen(why);
	if (n > 3)
		jw_strn(&w, why + 2, n - 3); /* " (" ... ")" */
	else
		jw_null(&w);
	jw_key(&w, "utilisation_pct");
	jw_dbl(&w, util);
	jw_thr(&w, "hit_ratio_pct", hit);
	jw_thr(&w, "evictions_per_second", ev);
	jw_thr(&w, "mrc_gain_points", gain);
	jw_key(&w, "interval");
	jw_dbl(&w, interval);
	jw_key(&w, "items");
	jw_u64(&w, b->st.items);
	jw_key(&w, "used_bytes");
	jw_u64(&w, b->st.used_bytes);
	jw_key(&w, "data_capacity");
	jw_u64(&w, b->data_capacity);
	jw_key(&w, "processes");
	jw_u64(&w, b->st.processes);
	jw_key(&w, "thresholds");
	jw_obj(&w);
	jw_thr(&w, "warn", thr[0]);
	jw_thr(&w, "crit", thr[1]);
	jw_thr(&w, "hit_warn", thr[2]);
	jw_thr(&w, "hit_crit", thr[3]);
	jw_thr(&w, "evict_warn", thr[4]);
	jw_thr(&w, "evict_crit", thr[5]);
	jw_thr(&w, "mrc_gain", thr[6]);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_end(&w);
}

int cmd_health(int argc, char **argv)
{
	enum { O_WARN = 256, O_CRIT, O_HW, O_HC, O_MING, O_EW, O_EC, O_INT,
	       O_JSON, O_GAIN };
	static const struct option lo[] = {
	    {"warn", required_argument, NULL, O_WARN},
	    {"crit", required_argument, NULL, O_CRIT},
	    {"hit-warn", required_argument, NULL, O_HW},
	    {"hit-crit", required_argument, NULL, O_HC},
	    {"min-gets", required_argument, NULL, O_MING},
	    {"evict-warn", required_argument, NULL, O_EW},
	    {"evict-crit", required_argument, NULL, O_EC},
	    {"interval", required_argument, NULL, O_INT},
	    {"json", no_argument, NULL, O_JSON},
	    {"mrc-gain", required_argument, NULL, O_GAIN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	double warn = 85, crit = 95, hw = -1, hc = -1, ew = -1, ec = -1;
	double interval = -1, mg = 10;
	uint64_t min_gets = 100;
	bool json = false;
	int ch;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
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
		case O_GAIN: dst = &mg; opt = "--mrc-gain"; break;
		case O_MING:
			if (tool_opt_u64("--min-gets", optarg, UINT64_MAX,
			                 &min_gets))
				return H_UNKNOWN;
			continue;
		case O_JSON:
			json = true;
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
	char why_open[160];
	const char *reason = NULL;
	/* tool_open() prints "shmcache: health: open NAME: REASON" on stderr;
	 * the status line on stdout gives the same REASON. */
	int rc = tool_open(name, &c);
	if (rc)
		reason = rc == SHMC_ENAME
		             ? shmc_strerror(rc)
		             : tool_open_reason(name, rc, why_open,
		                                sizeof(why_open));
	if (!rc && (rc = tool_snap_take(c, &a)) != 0) {
		tool_fail(rc, "stats of %s", name);
		reason = shmc_strerror(rc);
	}
	b = a;
	if (!rc && interval > 0) {
		tool_sleep(interval, NULL);
		if ((rc = tool_snap_take(c, &b)) != 0) {
			tool_fail(rc, "stats of %s", name);
			reason = shmc_strerror(rc);
		}
	}
	shmc_close(c);
	if (rc) {
		if (json) {
			struct jw w;
			json_head(&w, name, H_UNKNOWN);
			jw_str(&w, reason);
			jw_obj_end(&w);
			jw_end(&w);
		} else {
			printf("SHMCACHE UNKNOWN - %s: %s\n", name, reason);
		}
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

	/* The knee: what twice the budget would buy, by the curve. */
	bool curve = b.mrc_rc == 0 && b.mrc.gets > 0 && b.mrc.gets >= min_gets;
	double gain = curve ? (b.mrc_hit[2] - b.mrc_hit[1]) * 100 : -1;
	if (curve && mg > 0 && gain >= mg && state < H_WARN) {
		state = H_WARN;
		snprintf(why, sizeof(why),
		         " (2x the budget would add %.1f points of hit ratio)",
		         gain);
	}

	if (json) {
		print_json(name, state, why, util, lookups ? hit : -1,
		           interval > 0 ? ev : -1, gain, &b,
		           (double[]){warn, crit, hw, hc, ew, ec, mg},
		           interval);
		return state;
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
	if (curve)
		printf(" mrc_gain=%.2f;%g;;0;100", gain, mg);
	printf(" items=%llu;;;0; used=%lluB;;;0;%llu processes=%u;;;0;\n",
	       (unsigned long long)b.st.items,
	       (unsigned long long)b.st.used_bytes,
	       (unsigned long long)b.data_capacity, b.st.processes);
	fflush(stdout);
	return state;
}
