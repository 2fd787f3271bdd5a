/*
 * cmd_keys.c - `shmcache keys NAME [--prefix P] [--limit N] [--json]`.
 *
 * shmc_keys() walks the index in short read sections and calls us inside
 * them, so the callback only copies the key into a private arena and
 * returns; printing (which may block on a slow pipe) happens after the
 * walk, so a stalled consumer of our stdout can never hold a read section
 * open and stall the cache's writers.  Keys are printed one per line with
 * non-printable bytes escaped as \xNN (and '\' as '\\').
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache keys NAME [--prefix P] [--limit N] [--long] "
	       "[--json]\n\n"
	       "Lists live keys, one per line (non-printable bytes as \\xNN).\n\n"
	       "  --prefix P  only keys starting with P\n"
	       "  --limit N   at most N keys\n"
	       "  --long      also print each value's length\n"
	       "  --json      an array of {\"key\", \"value_length\"}\n"
	       "  -h, --help  this help\n");
}

struct walk {
	const char *prefix;
	size_t plen;
	uint64_t limit, count;
	uint8_t *arena;
	size_t used, cap;
	int err;
};

/* Arena record: u64 vlen | u8 klen | key. */
static int on_key(const void *key, size_t klen, size_t vlen, void *arg)
{
	struct walk *w = arg;
	if (klen < w->plen || memcmp(key, w->prefix, w->plen) != 0)
		return 0;
	size_t need = 9 + klen;
	if (w->used + need > w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 65536;
		while (ncap < w->used + need)
			ncap *= 2;
		uint8_t *na = realloc(w->arena, ncap);
		if (!na) {
			w->err = -ENOMEM;
			return 1;
		}
		w->arena = na;
		w->cap = ncap;
	}
	uint64_t v = vlen;
	memcpy(w->arena + w->used, &v, 8);
	w->arena[w->used + 8] = (uint8_t)klen;
	memcpy(w->arena + w->used + 9, key, klen);
	w->used += need;
	w->count++;
	return w->limit && w->count >= w->limit;
}

int cmd_keys(int argc, char **argv)
{
	enum { O_PREFIX = 256, O_LIMIT, O_JSON, O_LONG };
	static const struct option lo[] = {
	    {"prefix", required_argument, NULL, O_PREFIX},
	    {"limit", required_argument, NULL, O_LIMIT},
	    {"json", no_argument, NULL, O_JSON},
	    {"long", no_argument, NULL, O_LONG},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct walk w = {.prefix = ""};
	bool json = false, lng = false;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "h", lo)) != -1) {
		switch (ch) {
		case O_PREFIX:
			w.prefix = optarg;
			break;
		case O_LIMIT:
			if ((rc = tool_opt_u64("--limit", optarg, UINT64_MAX,
			                       &w.limit)))
				return rc;
			if (w.limit == 0) {
				tool_fail(-EINVAL, "--limit: must be at least 1");
				return tool_usage_error();
			}
			break;
		case O_JSON:
			json = true;
			break;
		case O_LONG:
			lng = true;
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
	w.plen = strlen(w.prefix);
	shmc_t *c = NULL;
	if ((rc = tool_open(argv[optind], &c)))
		return rc == SHMC_ENAME ? TOOL_EXIT_USAGE : TOOL_EXIT_FAIL;
	rc = shmc_keys(c, on_key, &w);
	shmc_close(c);
	if (!rc)
		rc = w.err;
	if (rc) {
		tool_fail(rc, "keys of %s", argv[optind]);
		free(w.arena);
		return TOOL_EXIT_FAIL;
	}
	struct jw j;
	jw_init(&j, stdout);
	if (json)
		jw_arr(&j);
	for (size_t off = 0; off < w.used;) {
		uint64_t vlen;
		memcpy(&vlen, w.arena + off, 8);
		size_t klen = w.arena[off + 8];
		const uint8_t *key = w.arena + off + 9;
		off += 9 + klen;
		if (json) {
			jw_obj(&j);
			bool utf8 = tool_utf8_ok(key, klen);
			jw_key(&j, utf8 ? "key" : "key_hex");
			if (utf8) {
				jw_strn(&j, key, klen);
			} else {
				char hex[2 * SHMC_KEY_MAX + 1];
				for (size_t i = 0; i < klen; i++)
					snprintf(hex + 2 * i, 3, "%02x", key[i]);
				jw_strn(&j, hex, 2 * klen);
			}
			jw_key(&j, "value_length");
			jw_u64(&j, vlen);
			jw_obj_end(&j);
		} else {
			tool_write_escaped(stdout, key, klen);
			if (lng)
				printf("\t%llu", (unsigned long long)vlen);
			putchar('\n');
		}
	}
	if (json) {
		jw_arr_end(&j);
		jw_end(&j);
	}
	free(w.arena);
	return fflush(stdout) == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
}
