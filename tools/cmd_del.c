/*
 * cmd_del.c - `shmcache del NAME KEY`: removes KEY; exit 1 if it was not
 * there (so scripts can tell), with a message.
 */
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache del NAME KEY\n\n"
	       "Removes KEY.  Exit status 1 if it was not there.\n\n"
	       "  -h, --help  this help\n");
}

int cmd_del(int argc, char **argv)
{
	int rc = tool_plain_args(argc, argv, help, 2, "missing NAME or KEY",
	                         NULL);
	if (rc >= 0)
		return rc;
	const char *name = argv[optind], *key = argv[optind + 1];
	size_t klen = strlen(key);
	if (klen == 0 || klen > SHMC_KEY_MAX) {
		tool_fail(SHMC_EKEYLEN, "key of %zu bytes", klen);
		return tool_usage_error();
	}
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	rc = shmc_del(c, key, klen);
	shmc_close(c);
	if (rc == SHMC_ENOTFOUND) {
		fprintf(stderr, "shmcache: del: ");
		tool_write_escaped(stderr, key, klen);
		fprintf(stderr, ": %s\n", shmc_strerror(rc));
	} else if (rc) {
		tool_fail(rc, "del in %s", name);
	}
	return rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
