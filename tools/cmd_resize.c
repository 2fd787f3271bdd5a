/*
 * cmd_resize.c - `shmcache resize NAME --memory SIZE`: change the memory
 * budget of a live cache, or its index size, or its autogrow policy.
 *
 * SIZE is absolute (64G) or relative to the current budget (+50%, -25%,
 * +1G, -512M).  The work is done by shmc_resize() in this process; its
 * progress callback draws a bar on a terminal or writes JSON lines with
 * --json.  --no-wait forks a detached child that does the resize and
 * returns at once: the cache records the resize in progress, and if that
 * child dies the next process to open the cache finishes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache resize NAME --memory SIZE [--json] [--no-wait] "
	       "[--try] [--quiet]\n"
	       "       shmcache resize NAME --index BUCKETS\n"
	       "       shmcache resize NAME --autogrow STEP [--ceiling SIZE]\n"
	       "                            [--util PCT] [--window SECS] "
	       "[--ghost PERMILLE]\n"
	       "                            [--mrc-gain PTS]\n"
	       "       shmcache resize NAME --autogrow off\n"
	       "       shmcache resize NAME --history [--json]\n\n"
	       "Changes the budget of a live cache; every attached process "
	       "keeps working.\n"
	       "SIZE: 64G, 512M, or relative: +50%%, -25%%, +1G, -512M.\n\n"
	       "  -m, --memory SIZE    new memory budget\n"
	       "  -i, --index N        set the index to N buckets of 7 entries "
	       "(at least 256;\n"
	       "                       refused when N * 7 is below the items "
	       "held)\n"
	       "  -a, --autogrow STEP  grow by STEP under pressure ('off' to "
	       "stop)\n"
	       "      --ceiling SIZE   autogrow never past this (default: the "
	       "reservation)\n"
	       "      --util PCT       utilisation threshold (default 85)\n"
	       "      --window SECS    pressure must last this long (default "
	       "10)\n"
	       "      --ghost PM       ghost hits per mille of sets (default "
	       "20)\n"
	       "      --mrc-gain PTS   with a miss-ratio curve: grow when it "
	       "predicts STEP\n"
	       "                       adds PTS points of hit ratio (instead "
	       "of --ghost)\n"
	       "      --history        show the last resizes\n"
	       "  -j, --json           progress (or history) as JSON lines\n"
	       "  -n, --no-wait        return at once; the work goes on\n"
	       "  -t, --try            fail if another resize is running\n"
	       "  -q, --quiet          print nothing on success\n"
	       "  -h, --help           this help\n");
}

struct prog {
	bool json, tty;
	uint64_t t0;
};

static int on_progress(const struct shmc_resize_progress *p, void *arg)
{
	struct prog *g = arg;
	double secs = (double)(tool_now_ns() - g->t0) / 1e9;
	if (g->json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj(&w);
		jw_key(&w, "from");
		jw_u64(&w, p->from);
		jw_key(&w, "to");
		jw_u64(&w, p->to);
		jw_key(&w, "committed");
		jw_u64(&w, p->committed);
		jw_key(&w, "done");
		jw_bool(&w, p->done != 0);
		jw_key(&w, "seconds");
		jw_dbl(&w, secs);
		jw_obj_end(&w);
		jw_end(&w);
		fflush(stdout);
		return 0;
	}
	if (!g->tty)
		return 0;
	/* How far committed has moved from `from` towards `to`. */
	double span = (double)p->to - (double)p->from;
	double f = span == 0 ? 1.0
	                     : ((double)p->committed - (double)p->from) / span;
	if (f < 0)
		f = 0;
	if (f > 1 || p->done)
		f = 1;
	char a[32], b[32];
	int n = (int)(f * 40);
	fprintf(stderr, "\r[%.*s%*s] %3.0f%%  committed %s of %s  %.1fs",
	        n, "########################################", 40 - n, "",
	        f * 100, tool_human(p->committed, a, sizeof(a)),
	        tool_human(p->to, b, sizeof(b)), secs);
	if (p->done)
		fputc('\n', stderr);
	return 0;
}

/* "+50%", "-25%", "+1G", "-512M" or an absolute size. */
static int parse_target(const char *s, uint64_t cur, uint64_t *out)
{
	if (*s != '+' && *s != '-')
		return tool_parse_size(s, out);
	bool up = *s == '+';
	size_t n = strlen(s);
	uint64_t d;
	if (n > 2 && s[n - 1] == '%') {
		char num[32];
		if (n - 2 >= sizeof(num))
			return -EINVAL;
		memcpy(num, s + 1, n - 2);
		num[n - 2] = 0;
		double pct;
		if (tool_parse_double(num, &pct) || pct < 0 || pct > 10000)
			return -EINVAL;
		d = (uint64_t)((double)cur * pct / 100.0);
	} else if (tool_parse_size(s + 1, &d)) {
		return -EINVAL;
	}
	if (!up && d >= cur)
		return -EINVAL;
	/* REVIEW FIX: cur + d wrapped past 2^64 ("+17179869183G"), turning a
	 * grow into a shrink; refuse it like any other out-of-range size. */
	if (up && d > UINT64_MAX - cur)
		return -ERANGE;
	*out = up ? cur + d : cur - d;
	return 0;
}

static int show_history(shmc_t *c, bool json)
{
	struct shmc_resize_record r[16];
	int n = shmc_resize_history(c, r, 16);
	for (int i = 0; i < n; i++) {
		const char *reason = tool_resize_reason(r[i].reason);
		if (json) {
			struct jw w;
			jw_init(&w, stdout);
			jw_obj(&w);
			jw_key(&w, "time");
			jw_u64(&w, r[i].time);
			jw_key(&w, "from");
			jw_u64(&w, r[i].from);
			jw_key(&w, "to");
			jw_u64(&w, r[i].to);
			jw_key(&w, "pid");
			jw_i64(&w, r[i].pid);
			jw_key(&w, "reason");
			jw_str(&w, reason);
			jw_obj_end(&w);
			jw_end(&w);
		} else {
			char a[32], b[32], when[32];
			time_t tt = (time_t)r[i].time;
			struct tm tm;
			if (!localtime_r(&tt, &tm) ||
			    !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S",
			              &tm))
				snprintf(when, sizeof(when), "%llu",
				         (unsigned long long)r[i].time);
			printf("%s  %10s -> %-10s  %-8s pid %d\n", when,
			       tool_human(r[i].from, a, sizeof(a)),
			       tool_human(r[i].to, b, sizeof(b)), reason,
			       r[i].pid);
		}
	}
	if (!n && !json)
		printf("no resizes recorded\n");
	return TOOL_EXIT_OK;
}

/*
 * --index N.  The library keeps N between 256 buckets and the
 * reservation's largest index, silently; each bucket
 * holds 7 entries and more items than entries overflow into chains (an
 * index load above 100 %: every lookup walks them).  So N below what the
 * items need is refused, naming the smallest N that holds them; the line
 * printed on success gives the index as it is after the call.
 */
static int resize_index(shmc_t *c, const char *name, uint64_t want,
                        bool quiet)
{
	struct shmc_stats st;
	int rc = shmc_stats(c, &st);
	if (rc) {
		tool_fail(rc, "stats of %s", name);
		return TOOL_EXIT_FAIL;
	}
	if (want * 7 < st.items) {
		uint64_t need = (st.items + 6) / 7;
		uint64_t p2 = need < 256 ? 256 : need;
		tool_msg("index of %s: %llu buckets hold %llu entries, fewer "
		         "than its %llu items (give --index %llu or more)",
		         name, (unsigned long long)want,
		         (unsigned long long)want * 7,
		         (unsigned long long)st.items, (unsigned long long)p2);
		return TOOL_EXIT_FAIL;
	}
	uint64_t from = st.index_buckets;
	rc = shmc_resize_index(c, want);
	if (rc) {
		tool_fail(rc, "index of %s", name);
		return TOOL_EXIT_FAIL;
	}
	if (!quiet && shmc_stats(c, &st) == 0)
		printf("%s: index %llu -> %llu buckets (%llu items, index load "
		       "%.1f%%)\n",
		       name, (unsigned long long)from,
		       (unsigned long long)st.index_buckets,
		       (unsigned long long)st.items,
		       st.index_buckets ? 100.0 * (double)st.items /
		                              ((double)st.index_buckets * 7)
		                        : 0.0);
	return TOOL_EXIT_OK;
}

/* The policy in force after --autogrow, in one line. */
static void show_autogrow(shmc_t *c, const char *name)
{
	struct shmc_autogrow ag;
	char a[32], b[32];
	if (shmc_get_autogrow(c, &ag) != 0)
		return;
	if (!ag.step) {
		printf("%s: autogrow off\n", name);
		return;
	}
	if (ag.ceiling)
		tool_human(ag.ceiling, b, sizeof(b));
	else
		snprintf(b, sizeof(b), "the reservation");
	/* zero fields stand for the defaults */
	printf("%s: autogrow by %s up to %s when utilisation >= %u%% for %u s "
	       "and ghost hits >= %u per mille of sets\n",
	       name, tool_human(ag.step, a, sizeof(a)), b,
	       ag.util_pct ? ag.util_pct : 85, ag.window_s ? ag.window_s : 10,
	       ag.ghost_pm ? ag.ghost_pm : 20);
	if (ag.mrc_gain_pm)
		printf("%s: where the miss-ratio curve can tell, autogrow "
		       "when it predicts a step adds %.1f points of hit "
		       "ratio\n",
		       name, ag.mrc_gain_pm / 10.0);
}

enum { O_CEIL = 1000, O_UTIL, O_WINDOW, O_GHOST, O_HIST, O_GAIN };

int cmd_resize(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"memory", required_argument, NULL, 'm'},
	    {"index", required_argument, NULL, 'i'},
	    {"autogrow", required_argument, NULL, 'a'},
	    {"ceiling", required_argument, NULL, O_CEIL},
	    {"util", required_argument, NULL, O_UTIL},
	    {"window", required_argument, NULL, O_WINDOW},
	    {"ghost", required_argument, NULL, O_GHOST},
	    {"mrc-gain", required_argument, NULL, O_GAIN},
	    {"history", no_argument, NULL, O_HIST},
	    {"json", no_argument, NULL, 'j'},
	    {"no-wait", no_argument, NULL, 'n'},
	    {"try", no_argument, NULL, 't'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	const char *mem = NULL, *ag = NULL;
	uint64_t index = 0, u = 0;
	struct shmc_autogrow pol = {0};
	bool json = false, nowait = false, try = false, hist = false;
	bool have_index = false, quiet = false;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "m:i:a:jntqh", lo)) != -1) {
		switch (ch) {
		case 'm': mem = optarg; break;
		case 'i':
			if (tool_opt_range("--index", optarg, 1, 1ull << 32,
			                   &index))
				return TOOL_EXIT_USAGE;
			have_index = true;
			break;
		case 'a': ag = optarg; break;
		case O_CEIL:
			if (tool_opt_size("--ceiling", optarg, &pol.ceiling))
				return TOOL_EXIT_USAGE;
			break;
		case O_UTIL:
			if (tool_opt_u64("--util", optarg, 100, &u))
				return TOOL_EXIT_USAGE;
			pol.util_pct = (uint32_t)u;
			break;
		case O_WINDOW:
			if (tool_opt_u64("--window", optarg, 86400, &u))
				return TOOL_EXIT_USAGE;
			pol.window_s = (uint32_t)u;
			break;
		case O_GHOST:
			if (tool_opt_u64("--ghost", optarg, 1000, &u))
				return TOOL_EXIT_USAGE;
			pol.ghost_pm = (uint32_t)u;
			break;
		case O_GAIN: {
			double g;
			if (tool_opt_double("--mrc-gain", optarg, &g))
				return TOOL_EXIT_USAGE;
			if (g > 100) {
				tool_fail(-ERANGE, "--mrc-gain: %s is not a "
				                   "percentage",
				          optarg);
				return tool_usage_error();
			}
			pol.mrc_gain_pm = (uint32_t)(g * 10 + 0.5);
			break;
		}
		case O_HIST: hist = true; break;
		case 'j': json = true; break;
		case 'n': nowait = true; break;
		case 't': try = true; break;
		case 'q': quiet = true; break;
		case 'h': help(); return TOOL_EXIT_OK;
		default: return tool_usage_error();
		}
	}
	if (argc - optind != 1) {
		tool_msg(argc - optind < 1 ? "missing NAME" : "too many arguments");
		return tool_usage_error();
	}
	if ((mem != NULL) + have_index + (ag != NULL) + hist != 1) {
		tool_msg("give one of --memory, --index, --autogrow, --history");
		return tool_usage_error();
	}
	const char *name = argv[optind];
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	if (hist) {
		rc = show_history(c, json);
		shmc_close(c);
		return rc;
	}
	if (have_index) {
		rc = resize_index(c, name, index, quiet);
		shmc_close(c);
		return rc;
	}
	if (ag) {
		if (strcmp(ag, "off") != 0 && tool_parse_size(ag, &pol.step)) {
			shmc_close(c);
			tool_msg("bad --autogrow step '%s'", ag);
			return tool_usage_error();
		}
		rc = shmc_set_autogrow(c, &pol);
		if (rc)
			tool_fail(rc, "autogrow of %s", name);
		else if (!quiet)
			show_autogrow(c, name);
		shmc_close(c);
		return rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
	}
	struct shmc_stats st;
	struct shmc_info info;
	shmc_stats(c, &st);
	shmc_info(c, &info);
	uint64_t to;
	if (parse_target(mem, st.memory, &to)) {
		shmc_close(c);
		tool_msg("bad --memory '%s'", mem);
		return tool_usage_error();
	}
	char a[32], b[32];
	if (to > info.max_memory) {
		tool_fail(SHMC_EBUDGET, "%s is above the reservation of %s (%s)",
		          tool_human(to, a, sizeof(a)), name,
		          tool_human(info.max_memory, b, sizeof(b)));
		shmc_close(c);
		return TOOL_EXIT_FAIL;
	}
	if (to < info.min_memory) {
		tool_fail(SHMC_EBUDGET, "%s is below the smallest workable "
		          "budget of %s (%s)",
		          tool_human(to, a, sizeof(a)), name,
		          tool_human(info.min_memory, b, sizeof(b)));
		shmc_close(c);
		return TOOL_EXIT_FAIL;
	}
	if (nowait) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			tool_fail(-errno, "fork");
			shmc_close(c);
			return TOOL_EXIT_FAIL;
		}
		if (pid > 0) {
			if (!quiet)
				printf("resizing %s to %s in the background (pid %d)\n",
			       name, tool_human(to, a, sizeof(a)), (int)pid);
			shmc_close(c);
			return TOOL_EXIT_OK;
		}
		setsid();
		signal(SIGHUP, SIG_IGN);
		/* Let go of the caller's terminal or pipe: `resize --no-wait |
		 * cat` must not wait for the resize. */
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		rc = shmc_resize(c, to, try ? SHMC_RESIZE_TRY : 0, NULL, NULL);
		shmc_close(c);
		_exit(rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK);
	}
	struct prog g = {.json = json, .tty = isatty(2), .t0 = tool_now_ns()};
	rc = shmc_resize(c, to, try ? SHMC_RESIZE_TRY : 0, on_progress, &g);
	if (rc)
		tool_fail(rc, "resize of %s to %s", name,
		          tool_human(to, a, sizeof(a)));
	else if (!json && !quiet)
		printf("%s: %s -> %s\n", name, tool_human(st.memory, a, sizeof(a)),
		       tool_human(to, b, sizeof(b)));
	shmc_close(c);
	return rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
