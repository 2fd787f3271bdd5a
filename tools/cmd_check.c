/*
 * cmd_check.c - `shmcache check NAME [--json]`: runs shmc_check(), which
 * walks every invariant of the segment and never crashes on a corrupt
 * one, and prints one line per problem.
 *
 * Exit status: 0 clean, 1 problems found, 2 usage error or the cache could
 * not be opened (the open's reason is printed; a segment whose header is
 * corrupt is refused by shmc_open itself).  A check runs against a moving
 * cache and may name a transient state: run it twice before acting.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache check NAME [--json]\n\n"
	       "Walks every invariant of cache NAME.  Exit status 0 when "
	       "clean,\n1 when problems were found, 2 on usage or open "
	       "errors.\n\n"
	       "  --json      {\"cache\", \"problems\", \"reports\": [...]}\n"
	       "  -h, --help  this help\n");
}

struct reports {
	bool json;
	char **lines;
	size_t n, cap;
};

static void on_problem(const char *problem, void *arg)
{
	struct reports *r = arg;
	if (!r->json) {
		printf("problem: %s\n", problem);
		return;
	}
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 16;
		char **nl = realloc(r->lines, nc * sizeof(*nl));
		if (!nl)
			return;
		r->lines = nl;
		r->cap = nc;
	}
	r->lines[r->n] = strdup(problem);
	if (r->lines[r->n])
		r->n++;
}

int cmd_check(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	struct reports r = {0};
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
		switch (ch) {
		case 'j':
			r.json = true;
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
		return TOOL_EXIT_USAGE;
	int problems = shmc_check(c, on_problem, &r);
	shmc_close(c);
	if (problems < 0) {
		tool_fail(problems, "check %s", name);
		return TOOL_EXIT_USAGE;
	}
	if (r.json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj(&w);
		jw_key(&w, "cache");
		jw_str(&w, name);
		jw_key(&w, "problems");
		jw_u64(&w, (uint64_t)problems);
		jw_key(&w, "reports");
		jw_arr(&w);
		for (size_t i = 0; i < r.n; i++) {
			jw_str(&w, r.lines[i]);
			free(r.lines[i]);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_end(&w);
		free(r.lines);
	} else {
		printf("%s: %d problem%s\n", name, problems,
		       problems == 1 ? "" : "s");
	}
	fflush(stdout);
	return problems ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
