/*
 * cmd_set.c - `shmcache set NAME KEY [VALUE | -] [--ttl SECS] [--flags N]`.
 *
 * The value is the argument, or stdin read to its end (binary-safe) when
 * it is "-" or absent.  The whole value is read before the cache is
 * opened, so a failed read stores nothing.  --ttl 0 stores an item that
 * never expires; without --ttl the cache's default TTL applies.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache set NAME KEY [VALUE | -] [--ttl SECS] "
	       "[--flags N] [--add]\n"
	       "                    [--quiet]\n\n"
	       "Stores VALUE under KEY; with '-' or no VALUE, reads it from "
	       "stdin.\n\n"
	       "  --ttl SECS  expire after SECS seconds (0 = never; default: "
	       "the cache's)\n"
	       "  --flags N   32 opaque bits kept with the value (get shows them "
	       "in JSON)\n"
	       "  --add       store only if KEY is absent\n"
	       "  -q, --quiet print nothing on success\n"
	       "  -h, --help  this help\n");
}

/* Largest value stored with a klen-byte key: key and value share one
 * segment, and info->max_value is the figure for a 1-byte key. */
static uint64_t value_limit(const struct shmc_info *info, size_t klen)
{
	return info->max_value + 1 > klen ? info->max_value + 1 - klen : 0;
}

int cmd_set(int argc, char **argv)
{
	enum { O_TTL = 256, O_FLAGS, O_ADD };
	static const struct option lo[] = {
	    {"ttl", required_argument, NULL, O_TTL},
	    {"flags", required_argument, NULL, O_FLAGS},
	    {"add", no_argument, NULL, O_ADD},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	uint32_t ttl = SHMC_TTL_DEFAULT, flags = 0;
	bool add = false, quiet = false;
	uint64_t v;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "hq", lo)) != -1) {
		switch (ch) {
		case 'q':
			quiet = true;
			break;
		case O_TTL:
			if ((rc = tool_opt_u64("--ttl", optarg,
			                       10ull * 365 * 86400, &v)))
				return rc;
			ttl = (uint32_t)v;
			break;
		case O_FLAGS:
			if ((rc = tool_opt_u64("--flags", optarg, UINT32_MAX,
			                       &v)))
				return rc;
			flags = (uint32_t)v;
			break;
		case O_ADD:
			add = true;
			break;
		case 'h':
			help();
			return TOOL_EXIT_OK;
		default:
			return tool_usage_error();
		}
	}
	int npos = argc - optind;
	if (npos < 2 || npos > 3) {
		tool_msg(npos < 2 ? "missing NAME or KEY" : "too many arguments");
		return tool_usage_error();
	}
	const char *name = argv[optind], *key = argv[optind + 1];
	size_t klen = strlen(key);
	if (klen == 0 || klen > SHMC_KEY_MAX) {
		tool_fail(SHMC_EKEYLEN, "key of %zu bytes", klen);
		return tool_usage_error();
	}
	if (tool_check_name(name))
		return TOOL_EXIT_USAGE;
	uint8_t *val = NULL;
	size_t vlen = 0;
	bool from_stdin = npos == 2 || strcmp(argv[optind + 2], "-") == 0;
	if (from_stdin) {
		/* REVIEW FIX: bounded read; no value exceeds one segment
		 * (SHMC_SEGMENT_MAX), so more than that is refused as
		 * SHMC_EVALLEN below instead of filling memory. */
		rc = tool_read_all(STDIN_FILENO, SHMC_SEGMENT_MAX, &val, &vlen);
		if (rc == -EFBIG) {
			shmc_t *c = NULL;
			if (tool_open(name, &c))
				return TOOL_EXIT_FAIL;
			struct shmc_info info;
			shmc_info(c, &info);
			shmc_close(c);
			tool_fail(SHMC_EVALLEN, "value of more than %u bytes on "
			          "stdin (with this %zu-byte key, %s holds values "
			          "of at most %llu bytes)",
			          (unsigned)SHMC_SEGMENT_MAX, klen, name,
			          (unsigned long long)value_limit(&info, klen));
			return TOOL_EXIT_FAIL;
		}
		if (rc) {
			tool_fail(rc, "reading the value from stdin");
			return TOOL_EXIT_FAIL;
		}
	}
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c))) {
		free(val);
		return TOOL_EXIT_FAIL;
	}
	const void *vp = from_stdin ? (const void *)val : argv[optind + 2];
	if (!from_stdin)
		vlen = strlen(argv[optind + 2]);
	rc = add ? shmc_add(c, key, klen, vp, vlen, ttl, flags)
	         : shmc_set(c, key, klen, vp, vlen, ttl, flags);
	if (rc == SHMC_EVALLEN) {
		struct shmc_info info;
		shmc_info(c, &info);
		tool_fail(rc, "value of %zu bytes (with this %zu-byte key, %s "
		              "holds values of at most %llu bytes)",
		          vlen, klen, name,
		          (unsigned long long)value_limit(&info, klen));
	} else if (rc) {
		tool_fail(rc, "set in %s", name);
	} else if (!quiet) {
		printf("stored %zu bytes under ", vlen);
		tool_write_escaped(stdout, key, klen);
		printf(" in %s\n", name);
	}
	shmc_close(c);
	free(val);
	return rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
