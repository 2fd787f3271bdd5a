/*
 * cmd_destroy.c - `shmcache destroy NAME [--force]`.
 *
 * Refuses while processes are attached.  The count comes from
 * shmc_stats().processes, after shmc_readers() has reclaimed the slots of
 * dead processes; the tool's own handle holds no slot because it calls
 * neither get nor set before reading the stats.  A cache that cannot be
 * opened (corrupt, foreign version) cannot be asked, so it is removed only
 * with --force.  Attached processes keep their mapping until they close.
 */
#include <errno.h>
#include <getopt.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache destroy NAME [--force] [--quiet]\n\n"
	       "Removes the cache NAME.  Refused while processes are attached\n"
	       "or when the cache cannot be opened, unless --force is given.\n\n"
	       "  -f, --force  remove anyway\n"
	       "  -q, --quiet  print nothing on success\n"
	       "  -h, --help   this help\n");
}

static int ignore_reader(const struct shmc_reader *r, void *arg)
{
	(void)r;
	(void)arg;
	return 0;
}

int cmd_destroy(int argc, char **argv)
{
	static const struct option lo[] = {{"force", no_argument, NULL, 'f'},
	                                   {"quiet", no_argument, NULL, 'q'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	bool force = false, quiet = false;
	int ch;
	while ((ch = tool_getopt(argc, argv, "fhq", lo)) != -1) {
		switch (ch) {
		case 'q':
			quiet = true;
			break;
		case 'f':
			force = true;
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
	if (tool_check_name(name))
		return TOOL_EXIT_USAGE;
	shmc_t *c = NULL;
	int rc = shmc_open(name, tool_open_flags(name), &c);
	if (rc == -ENOENT) {
		tool_msg("destroy %s: no such cache", name);
		return TOOL_EXIT_FAIL;
	}
	if (rc && !force) {
		char why[160];
		tool_msg("destroy %s: cannot open it to count attached "
		         "processes (use --force to remove anyway): %s",
		         name, tool_open_reason(name, rc, why, sizeof(why)));
		return TOOL_EXIT_FAIL;
	}
	if (!rc) {
		struct shmc_stats st;
		shmc_readers(c, ignore_reader, NULL);
		rc = shmc_stats(c, &st);
		shmc_close(c);
		if (rc) {
			tool_fail(rc, "destroy %s: stats", name);
			return TOOL_EXIT_FAIL;
		}
		if (st.processes > 0 && !force) {
			tool_fail(-EBUSY, "destroy %s: %u process%s attached "
			                  "(use --force to remove anyway)",
			          name, st.processes,
			          st.processes == 1 ? "" : "es");
			return TOOL_EXIT_FAIL;
		}
	}
	rc = shmc_destroy(name);
	if (rc) {
		tool_fail(rc, "destroy %s", name);
		return TOOL_EXIT_FAIL;
	}
	if (!quiet)
		printf("destroyed %s\n", name);
	return TOOL_EXIT_OK;
}
