/*
 * cmd_top.c - `shmcache top NAME [--interval SECS] [--iterations N]`: a
 * live view of one cache.
 *
 * Every interval it takes a reading (metrics.c) and derives rates from
 * the previous one: ops/s (gets + sets + deletes), gets/s, sets/s,
 * evictions/s, loads/s (get-or-load loader calls, the backend's load),
 * the hit ratio over the interval.  The last 60 ops/s values
 * feed a sparkline (a minute at the default 1 s interval).
 *
 * On a terminal it draws a full screen with plain ANSI escapes (alternate
 * screen, cursor home, clear to end of line) and reads 'q' from a
 * non-canonical stdin to quit; the terminal is restored on exit, also
 * after SIGINT/SIGTERM.  When stdout is not a terminal it prints one plain
 * line per reading instead, and with --json one JSON object per reading
 * (JSON Lines: the same rates, for a script to follow a cache over time;
 * the sparkline is left out).  --iterations bounds the number of readings.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

#define HIST 60

static void help(void)
{
	printf("Usage: shmcache top NAME [--interval SECS] [--iterations N] "
	       "[--json]\n\n"
	       "Live view of cache NAME, refreshed every second: ops/s, hit "
	       "ratio,\nmemory bar, evictions/s and a sparkline of the last "
	       "minute.  Press q to\nquit.  Plain lines when stdout is not a "
	       "terminal.\n\n"
	       "  --interval SECS   refresh interval (default 1)\n"
	       "  --iterations N    stop after N refreshes\n"
	       "  --json            one JSON object per reading (JSON Lines)\n"
	       "  -h, --help        this help\n");
}

static void bar(double frac, int width)
{
	int full = (int)(frac * width + 0.5);
	if (full > width)
		full = width;
	putchar('[');
	for (int i = 0; i < width; i++)
		putchar(i < full ? '#' : '.');
	putchar(']');
}

static void sparkline(const double *h, int n, int next)
{
	static const char *ticks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
	                              "\u2585", "\u2586", "\u2587", "\u2588"};
	double max = 0;
	for (int i = 0; i < n; i++)
		if (h[i] > max)
			max = h[i];
	for (int i = 0; i < HIST - n; i++)
		putchar(' ');
	for (int i = 0; i < n; i++) {
		double v = h[(next - n + i + HIST) % HIST];
		int t = max > 0 ? (int)(v / max * 7 + 0.5) : 0;
		fputs(ticks[t < 0 ? 0 : t > 7 ? 7 : t], stdout);
	}
}

int cmd_top(int argc, char **argv)
{
	enum { O_INT = 256, O_ITER, O_JSON };
	static const struct option lo[] = {
	    {"interval", required_argument, NULL, O_INT},
	    {"iterations", required_argument, NULL, O_ITER},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	double interval = 1;
	uint64_t iterations = 0;
	bool json = false;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
		switch (ch) {
		case O_INT:
			if ((rc = tool_opt_double("--interval", optarg,
			                          &interval)))
				return rc;
			if (interval < 0.05 || interval > 3600) {
				tool_fail(-ERANGE,
				          "--interval: 0.05 to 3600 seconds");
				return tool_usage_error();
			}
			break;
		case O_ITER:
			if ((rc = tool_opt_u64("--iterations", optarg,
			                       UINT32_MAX, &iterations)))
				return rc;
			break;
		case O_JSON:
			json = true;
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
	const char *name = argv[optind];
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	bool tty = !json && isatty(STDOUT_FILENO);
	bool keys = tty && isatty(STDIN_FILENO);
	struct termios saved;
	if (keys && tcgetattr(STDIN_FILENO, &saved) == 0) {
		struct termios raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		keys = false;
	}
	tool_catch_stop();
	if (tty)
		fputs("\033[?1049h\033[?25l", stdout); /* alt screen, no cursor */

	double hist[HIST] = {0};
	int nhist = 0, next = 0;
	struct tool_snap prev, cur;
	rc = tool_snap_take(c, &prev);
	for (uint64_t it = 0; !rc && (!iterations || it < iterations); it++) {
		/* wait one interval, or until q / a signal */
		bool quit = false;
		uint64_t until = tool_now_ns() + (uint64_t)(interval * 1e9);
		while (!quit && !*tool_stop_flag()) {
			uint64_t now = tool_now_ns();
			if (now >= until)
				break;
			int ms = (int)((until - now) / 1000000) + 1;
			if (keys) {
				struct pollfd p = {.fd = STDIN_FILENO,
				                   .events = POLLIN};
				char k;
				if (poll(&p, 1, ms) == 1 &&
				    read(STDIN_FILENO, &k, 1) == 1 &&
				    (k == 'q' || k == 'Q'))
					quit = true;
			} else {
				tool_sleep((double)ms / 1000, tool_stop_flag());
			}
		}
		if (quit || *tool_stop_flag())
			break;
		if ((rc = tool_snap_take(c, &cur)))
			break;
		uint64_t ops0 = prev.st.gets + prev.st.sets + prev.st.adds +
		                prev.st.deletes;
		uint64_t ops1 = cur.st.gets + cur.st.sets + cur.st.adds +
		                cur.st.deletes;
		double ops = tool_rate(ops0, ops1, prev.t_ns, cur.t_ns);
		double gets = tool_rate(prev.st.gets, cur.st.gets, prev.t_ns,
		                        cur.t_ns);
		double sets = tool_rate(prev.st.sets, cur.st.sets, prev.t_ns,
		                        cur.t_ns);
		double ev = tool_rate(prev.st.evictions, cur.st.evictions,
		                      prev.t_ns, cur.t_ns);
		double loads = tool_rate(prev.st.loads, cur.st.loads, prev.t_ns,
		                         cur.t_ns);
		uint64_t dh = cur.st.hits - prev.st.hits;
		uint64_t dl = dh + cur.st.misses - prev.st.misses;
		double hr = dl ? (double)dh / (double)dl : cur.hit_ratio;
		hist[next] = ops;
		next = (next + 1) % HIST;
		if (nhist < HIST)
			nhist++;
		char h1[32], h2[32], h3[32];
		if (json) {
			struct jw w;
			jw_init(&w, stdout);
			jw_obj(&w);
			jw_key(&w, "time");
			jw_u64(&w, (uint64_t)time(NULL));
			jw_key(&w, "cache");
			jw_str(&w, name);
			jw_key(&w, "seconds");
			jw_dbl(&w, (double)(cur.t_ns - prev.t_ns) / 1e9);
			jw_key(&w, "ops_per_sec");
			jw_dbl(&w, ops);
			jw_key(&w, "gets_per_sec");
			jw_dbl(&w, gets);
			jw_key(&w, "sets_per_sec");
			jw_dbl(&w, sets);
			jw_key(&w, "evictions_per_sec");
			jw_dbl(&w, ev);
			jw_key(&w, "loads_per_sec");
			jw_dbl(&w, loads);
			jw_key(&w, "hit_ratio");
			jw_dbl(&w, hr);
			jw_key(&w, "hit_ratio_total");
			jw_dbl(&w, cur.hit_ratio);
			jw_key(&w, "utilisation");
			jw_dbl(&w, cur.utilisation);
			jw_key(&w, "index_load");
			jw_dbl(&w, cur.index_load);
			jw_key(&w, "items");
			jw_u64(&w, cur.st.items);
			jw_key(&w, "used_bytes");
			jw_u64(&w, cur.st.used_bytes);
			jw_key(&w, "processes");
			jw_u64(&w, cur.st.processes);
			jw_obj_end(&w);
			jw_end(&w);
		} else if (!tty) {
			time_t t = time(NULL);
			struct tm tm;
			char ts[16];
			strftime(ts, sizeof(ts), "%H:%M:%S",
			         localtime_r(&t, &tm));
			printf("%s %s ops/s=%.1f gets/s=%.1f sets/s=%.1f "
			       "hit_ratio=%.2f%% evictions/s=%.1f loads/s=%.1f "
			       "utilisation=%.2f%% items=%llu processes=%u\n",
			       ts, name, ops, gets, sets, hr * 100, ev, loads,
			       cur.utilisation * 100,
			       (unsigned long long)cur.st.items,
			       cur.st.processes);
		} else {
			fputs("\033[H", stdout);
			printf("shmcache top - %s   (q to quit)\033[K\n\033[K\n",
			       name);
			printf("ops/s      %12.1f   gets/s %10.1f   sets/s "
			       "%10.1f\033[K\n",
			       ops, gets, sets);
			printf("hit ratio  %11.2f%%   (since creation "
			       "%.2f%%)\033[K\n",
			       hr * 100, cur.hit_ratio * 100);
			printf("evictions/s%12.1f   expirations %llu\033[K\n",
			       ev, (unsigned long long)cur.st.expirations);
			printf("loads/s    %12.1f   load waits %llu, stale "
			       "served %llu\033[K\n",
			       loads, (unsigned long long)cur.st.load_waits,
			       (unsigned long long)cur.st.stale_served);
			printf("items      %12llu   index load %.1f%%\033[K\n",
			       (unsigned long long)cur.st.items,
			       cur.index_load * 100);
			printf("memory     ");
			bar(cur.utilisation, 40);
			printf(" %.1f%%\033[K\n", cur.utilisation * 100);
			printf("           %s used of %s (budget %s)\033[K\n",
			       tool_human(cur.st.used_bytes, h1, 32),
			       tool_human(cur.data_capacity, h2, 32),
			       tool_human(cur.st.memory, h3, 32));
			printf("processes  %12u   reader slots %u\033[K\n",
			       cur.st.processes, cur.st.readers);
			printf("\033[K\nops/s, last %d readings:\033[K\n", HIST);
			sparkline(hist, nhist, next);
			printf("\033[K\n\033[J");
		}
		fflush(stdout);
		prev = cur;
	}
	if (tty)
		fputs("\033[?25h\033[?1049l", stdout);
	if (keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	fflush(stdout);
	shmc_close(c);
	if (rc) {
		tool_fail(rc, "top %s", name);
		return TOOL_EXIT_FAIL;
	}
	return TOOL_EXIT_OK;
}
