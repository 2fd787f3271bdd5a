/*
 * main.c - the shmcache tool's dispatcher: `shmcache SUBCOMMAND ARGS...`.
 *
 * Looks the subcommand up in a table and hands it argv shifted by one, so
 * each cmd_NAME() sees its own name as argv[0] and parses its options with
 * getopt_long from a fresh state.  The subcommand's return value is the
 * exit status (see tool.h for the convention).
 */
#include <stdio.h>
#include <string.h>

#include "tool.h"

struct tool_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct tool_cmd cmds[] = {
    {"create", cmd_create, "create a cache"},
    {"destroy", cmd_destroy, "remove a cache (refused while attached)"},
    {"list", cmd_list, "list the caches on this host"},
    {"stats", cmd_stats, "counters and gauges (text, JSON, Prometheus)"},
    {"get", cmd_get, "print the value of a key"},
    {"set", cmd_set, "store a value (from the argument or stdin)"},
    {"del", cmd_del, "remove a key"},
    {"keys", cmd_keys, "list keys"},
    {"readers", cmd_readers, "reader slots in use"},
    {"check", cmd_check, "walk every invariant of a cache"},
    {"health", cmd_health, "monitoring-plugin style health check"},
    {"top", cmd_top, "live view of a cache"},
    {"dump", cmd_dump, "write a checksummed snapshot to a file"},
    {"restore", cmd_restore, "load a snapshot into a cache"},
    {"exporter", cmd_exporter, "serve Prometheus /metrics over HTTP"},
    {"resize", cmd_resize, "change the memory budget of a live cache"},
    {"load", cmd_load, "run worker processes against a cache (verifying)"},
    {"mrc", cmd_mrc, "predicted hit ratio at other budgets"},
#ifdef SHMC_TOOL_SYNC
    {"sync", cmd_sync, "keep a cache coherent with Redis (invalidations)"},
#endif
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: shmcache SUBCOMMAND [OPTIONS] [ARGS]\n"
	           "       shmcache SUBCOMMAND --help\n\n"
	           "Subcommands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nCaches live in $SHMCACHE_DIR (default /dev/shm) as "
	           "shmcache.NAME.\nSee shmcache(1) and shmcache-SUBCOMMAND(1).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") ||
	    !strcmp(sub, "help")) {
		usage(stdout);
		return TOOL_EXIT_OK;
	}
	if (!strcmp(sub, "--version")) {
		printf("shmcache %s\n", shmc_version());
		return TOOL_EXIT_OK;
	}
	for (size_t i = 0; i < NCMDS; i++) {
		if (strcmp(sub, cmds[i].name) == 0) {
			tool_sub = cmds[i].name;
			return cmds[i].run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "shmcache: unknown subcommand '%s'\n", sub);
	usage(stderr);
	return TOOL_EXIT_USAGE;
}
