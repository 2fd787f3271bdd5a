/*
 * cmd_get.c - `shmcache get NAME KEY [--json]`: the value of KEY, raw and
 * binary-safe on stdout (no newline added).
 *
 * The value's length is not known in advance: a first get into a 64 KiB
 * buffer either succeeds or reports the needed size (SHMC_EBUFSIZE); the
 * buffer then grows and the get is retried, a bounded number of times
 * because another process may grow the value in between.  With --json the
 * value is a JSON string when it is valid UTF-8, else hex in "value_hex".
 * A miss exits 1 with a message.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache get NAME KEY [--json]\n\n"
	       "Writes the value of KEY to stdout, byte for byte.  "
	       "Exit status 1 on a miss.\n\n"
	       "  --json      {\"key\", \"value\" or \"value_hex\", \"flags\", "
	       "\"length\"}\n"
	       "  -h, --help  this help\n");
}

int cmd_get(int argc, char **argv)
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
	if (argc - optind != 2) {
		tool_msg(argc - optind < 2 ? "missing NAME or KEY"
		                           : "too many arguments");
		return tool_usage_error();
	}
	const char *name = argv[optind], *key = argv[optind + 1];
	size_t klen = strlen(key);
	if (klen == 0 || klen > SHMC_KEY_MAX) {
		tool_fail(SHMC_EKEYLEN, "key of %zu bytes", klen);
		return tool_usage_error();
	}
	shmc_t *c = NULL;
	if ((rc = tool_open(name, &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	size_t cap = 65536, vlen = 0;
	uint8_t *buf = NULL;
	uint32_t flags = 0;
	for (int tries = 0; tries < 8; tries++) {
		uint8_t *nb = realloc(buf, cap ? cap : 1);
		if (!nb) {
			rc = -ENOMEM;
			break;
		}
		buf = nb;
		vlen = cap;
		rc = shmc_get(c, key, klen, buf, &vlen, &flags);
		if (rc != SHMC_EBUFSIZE)
			break;
		cap = vlen;
	}
	shmc_close(c);
	int status = TOOL_EXIT_OK;
	if (rc == SHMC_ENOTFOUND) {
		fprintf(stderr, "shmcache: get: ");
		tool_write_escaped(stderr, key, klen);
		fprintf(stderr, ": %s\n", shmc_strerror(rc));
		status = TOOL_EXIT_FAIL;
	} else if (rc) {
		tool_fail(rc, "get from %s", name);
		status = TOOL_EXIT_FAIL;
	} else if (json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj(&w);
		jw_key(&w, "key");
		jw_strn(&w, key, klen);
		if (tool_utf8_ok(buf, vlen)) {
			jw_key(&w, "value");
			jw_strn(&w, buf, vlen);
		} else {
			jw_key(&w, "value_hex");
			char *hex = malloc(vlen * 2 + 1);
			if (hex) {
				for (size_t i = 0; i < vlen; i++)
					snprintf(hex + 2 * i, 3, "%02x", buf[i]);
				jw_strn(&w, hex, vlen * 2);
				free(hex);
			} else {
				jw_null(&w);
			}
		}
		jw_key(&w, "flags");
		jw_u64(&w, flags);
		jw_key(&w, "length");
		jw_u64(&w, vlen);
		jw_obj_end(&w);
		jw_end(&w);
	} else if ((rc = tool_write_all(STDOUT_FILENO, buf, vlen))) {
		tool_fail(rc, "writing the value");
		status = TOOL_EXIT_FAIL;
	}
	free(buf);
	return status;
}
