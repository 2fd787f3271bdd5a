/*
 * cmd_readers.c - `shmcache readers NAME [--json]`: the reader slots in
 * use (slot, pid, tid, inside a read section and for how long).
 * shmc_readers() first reclaims the slots of dead processes and threads;
 * the number reclaimed is reported.  The tool holds no slot itself.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache readers NAME [--json]\n\n"
	       "Lists the reader slots in use; slots of dead processes are "
	       "reclaimed first.\n\n"
	       "  --json      {\"reclaimed\", \"readers\": [...]}\n"
	       "  -h, --help  this help\n");
}

struct list {
	struct shmc_reader *r;
	size_t n, cap;
	int err;
};

static int on_reader(const struct shmc_reader *r, void *arg)
{
	struct list *l = arg;
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 64;
		struct shmc_reader *nr = realloc(l->r, nc * sizeof(*nr));
		if (!nr) {
			l->err = -ENOMEM;
			return 1;
		}
		l->r = nr;
		l->cap = nc;
	}
	l->r[l->n++] = *r;
	return 0;
}

int cmd_readers(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	bool json = false;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
		switch (ch) {
		case 'j':
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
	shmc_t *c = NULL;
	if ((rc = tool_open(argv[optind], &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	struct list l = {0};
	int reclaimed = shmc_readers(c, on_reader, &l);
	shmc_close(c);
	rc = reclaimed < 0 ? reclaimed : l.err;
	if (rc) {
		tool_fail(rc, "readers of %s", argv[optind]);
		free(l.r);
		return TOOL_EXIT_FAIL;
	}
	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj(&w);
		jw_key(&w, "reclaimed");
		jw_u64(&w, (uint64_t)reclaimed);
		jw_key(&w, "readers");
		jw_arr(&w);
		for (size_t i = 0; i < l.n; i++) {
			jw_obj(&w);
			jw_key(&w, "slot");
			jw_u64(&w, l.r[i].slot);
			jw_key(&w, "pid");
			jw_i64(&w, l.r[i].pid);
			jw_key(&w, "tid");
			jw_i64(&w, l.r[i].tid);
			jw_key(&w, "in_section");
			jw_bool(&w, l.r[i].in_section != 0);
			jw_key(&w, "section_ns");
			jw_u64(&w, l.r[i].section_ns);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_end(&w);
	} else {
		printf("%6s %8s %8s %10s %14s\n", "SLOT", "PID", "TID",
		       "IN_SECTION", "SECTION_MS");
		for (size_t i = 0; i < l.n; i++)
			printf("%6u %8d %8d %10s %14.3f\n", l.r[i].slot,
			       l.r[i].pid, l.r[i].tid,
			       l.r[i].in_section ? "yes" : "no",
			       l.r[i].in_section ? (double)l.r[i].section_ns / 1e6
			                         : 0.0);
		printf("%zu slot%s in use, %d reclaimed from dead processes\n",
		       l.n, l.n == 1 ? "" : "s", reclaimed);
	}
	free(l.r);
	return fflush(stdout) == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
}
