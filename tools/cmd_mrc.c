/*
 * cmd_mrc.c - `shmcache mrc NAME [--json] [--reset]`: the predicted get
 * hit ratio at 0.25x to 8x the current budget (shmc_mrc), as a table
 * and a bar chart, or one JSON object.  Takes no reader slot and no lock.
 */
#include <errno.h>
#include <getopt.h>

#include "tool.h"

/* Budgets shown, as multiples of the current one. */
static const double scales[] = {0.25, 0.5, 0.75, 1, 1.25, 1.5,
                                2,    3,   4,    6, 8};
#define NSCALES (sizeof(scales) / sizeof(scales[0]))
#define BAR 50 /* characters for a hit ratio of 1 */

static void help(void)
{
	printf("Usage: shmcache mrc NAME [--json] [--reset]\n\n"
	       "Predicts the get hit ratio of cache NAME at 0.25x to 8x its "
	       "budget, from\nthe reuse distances of a sample of its keys "
	       "(of a cache created so: see shmcache-create(1)).\n\n"
	       "  --json          one JSON object\n"
	       "  --reset         forget the curve and start again\n"
	       "  -h, --help      this help\n");
}

static void text(const char *name, const struct shmc_mrc_point *p,
                 const struct shmc_mrc_info *in, uint64_t memory,
                 double hit_now)
{
	char a[32], b[32];
	printf("miss-ratio curve of %s (budget %s, LRU prediction)\n", name,
	       tool_human(memory, a, sizeof(a)));
	printf("sampled        %llu keys of at most %llu, rate %.4f%%\n",
	       (unsigned long long)in->keys,
	       (unsigned long long)in->max_keys, in->rate * 100);
	printf("gets           %llu estimated, %llu first-time (%.1f%%), "
	       "%llu samples skipped\n",
	       (unsigned long long)in->gets, (unsigned long long)in->cold,
	       in->gets ? 100.0 * (double)in->cold / (double)in->gets : 0,
	       (unsigned long long)in->skipped);
	printf("hit ratio now  %.1f%% (measured since creation)\n\n",
	       hit_now * 100);
	printf("%7s %11s %11s %7s\n", "scale", "budget", "items", "hit %");
	for (size_t i = 0; i < NSCALES; i++) {
		printf("%6.2fx %11s %11s %6.1f%% |", scales[i],
		       tool_human(p[i].memory, a, sizeof(a)),
		       tool_human(p[i].bytes, b, sizeof(b)),
		       p[i].hit_ratio * 100);
		int n = (int)(p[i].hit_ratio * BAR + 0.5);
		for (int k = 0; k < n; k++)
			putchar(scales[i] == 1 ? '#' : '=');
		putchar('\n');
	}
	printf("%40s0%%%*s100%%\n", "", BAR - 4, "");
}

static void json(const char *name, const struct shmc_mrc_point *p,
                 const struct shmc_mrc_info *in, uint64_t memory)
{
	struct jw w;
	jw_init(&w, stdout);
	jw_obj(&w);
	jw_key(&w, "name");
	jw_str(&w, name);
	jw_key(&w, "memory");
	jw_u64(&w, memory);
	jw_key(&w, "rate");
	jw_dbl(&w, in->rate);
	jw_key(&w, "sampled_keys");
	jw_u64(&w, in->keys);
	jw_key(&w, "max_keys");
	jw_u64(&w, in->max_keys);
	jw_key(&w, "gets");
	jw_u64(&w, in->gets);
	jw_key(&w, "cold_gets");
	jw_u64(&w, in->cold);
	jw_key(&w, "skipped");
	jw_u64(&w, in->skipped);
	jw_key(&w, "fixed_bytes");
	jw_u64(&w, in->fixed_bytes);
	jw_key(&w, "points");
	jw_arr(&w);
	for (size_t i = 0; i < NSCALES; i++) {
		jw_obj(&w);
		jw_key(&w, "scale");
		jw_dbl(&w, scales[i]);
		jw_key(&w, "memory");
		jw_u64(&w, p[i].memory);
		jw_key(&w, "item_bytes");
		jw_u64(&w, p[i].bytes);
		jw_key(&w, "hit_ratio");
		jw_dbl(&w, p[i].hit_ratio);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_end(&w);
}

int cmd_mrc(int argc, char **argv)
{
	enum { O_JSON = 256, O_RESET };
	static const struct option lo[] = {
	    {"json", no_argument, NULL, O_JSON},
	    {"reset", no_argument, NULL, O_RESET},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	bool as_json = false, reset = false;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
		switch (ch) {
		case O_JSON:
			as_json = true;
			break;
		case O_RESET:
			reset = true;
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
	const char *name = argv[optind];
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	struct shmc_stats st;
	struct shmc_mrc_point p[NSCALES];
	struct shmc_mrc_info in;
	rc = shmc_stats(c, &st);
	for (size_t i = 0; i < NSCALES; i++)
		p[i].memory = (uint64_t)((double)st.memory * scales[i]);
	if (!rc && reset)
		rc = shmc_mrc_reset(c);
	if (!rc)
		rc = shmc_mrc(c, p, NSCALES, &in);
	if (rc == -ENOTSUP)
		tool_fail(rc, "%s keeps no miss-ratio curve (create it with "
		              "--mrc)",
		          name);
	else if (rc)
		tool_fail(rc, "mrc %s", name);
	if (rc) {
		shmc_close(c);
		return TOOL_EXIT_FAIL;
	}
	if (as_json) {
		json(name, p, &in, st.memory);
	} else if (reset) {
		printf("%s: curve reset\n", name);
	} else {
		uint64_t n = st.hits + st.misses;
		text(name, p, &in, st.memory,
		     n ? (double)st.hits / (double)n : 0);
		if (!in.gets)
			printf("(no sampled gets yet: every ratio is 0)\n");
	}
	shmc_close(c);
	return fflush(stdout) == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
}
