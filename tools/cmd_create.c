/*
 * cmd_create.c - `shmcache create NAME --memory SIZE [options]`.
 *
 * Every option is parsed and checked before shmc_create() is called, so a
 * bad argument leaves nothing behind.  --group is handed to the library,
 * which gives the file its group (and then its mode) before linking it
 * into place, so no one outside that group can open it at any moment.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache create NAME --memory SIZE [OPTIONS]\n\n"
	       "Creates the cache NAME (file $SHMCACHE_DIR/shmcache.NAME).\n\n"
	       "  --memory SIZE        memory budget, e.g. 512M or 1G (required)\n"
	       "  --max-memory SIZE    reservation: largest budget a resize may "
	       "reach\n"
	       "  --segment-size SIZE  log segment size, a power of two from "
	       "64K to 64M\n"
	       "  --default-ttl SECS   TTL of items stored without one (0 = "
	       "none)\n"
	       "  --mode MODE          file mode in octal (default 0600)\n"
	       "  --group GROUP        group of the file (name or number)\n"
	       "  --numa POLICY        interleave, node=N or local\n"
	       "  --max-readers N      reader slots (threads attached at once), "
	       "1 to 32767\n"
	       "                       (default 1024)\n"
	       "  --huge               2 MiB pages: $SHMCACHE_DIR must be a "
	       "tmpfs mounted\n"
	       "                       huge=within_size (segments >= 2M; for "
	       "caches of 256M+)\n"
	       "  --mrc                keep the miss-ratio curve (shmcache mrc): "
	       "one compare\n"
	       "                       per get for unsampled keys\n"
	       "  --mrc-keys N         with --mrc: sampled keys kept, a power "
	       "of two from 64\n"
	       "                       to 1048576 (default 8192; 56 bytes "
	       "each)\n"
	       "  --mrc-sample N       with --mrc: sample 1 key in N at first "
	       "(default 32;\n"
	       "                       more is cheaper, fewer keys tracked "
	       "on small caches)\n"
	       "  -q, --quiet          print nothing on success\n"
	       "  -h, --help           this help\n\n"
	       "Sizes take K, M, G, T suffixes (powers of 1024).\n");
}

static int parse_group(const char *s, gid_t *gid)
{
	uint64_t v;
	if (tool_parse_u64(s, UINT32_MAX - 1, &v) == 0) {
		*gid = (gid_t)v;
		return 0;
	}
	struct group gr, *res = NULL;
	char buf[4096];
	int rc = getgrnam_r(s, &gr, buf, sizeof(buf), &res);
	if (rc)
		return -rc;
	if (!res)
		return -ENOENT;
	*gid = gr.gr_gid;
	return 0;
}

static int parse_numa(const char *s, struct shmc_create_opts *o)
{
	if (!strcmp(s, "interleave")) {
		o->numa = SHMC_NUMA_INTERLEAVE;
	} else if (!strcmp(s, "local")) {
		o->numa = SHMC_NUMA_LOCAL;
	} else if (!strcmp(s, "default")) {
		o->numa = SHMC_NUMA_DEFAULT;
	} else if (!strncmp(s, "node=", 5)) {
		uint64_t n;
		int rc = tool_parse_u64(s + 5, 4095, &n);
		if (rc)
			return rc;
		o->numa = SHMC_NUMA_NODE;
		o->numa_node = (int)n;
	} else {
		return -EINVAL;
	}
	return 0;
}

int cmd_create(int argc, char **argv)
{
	enum { O_MEM = 256, O_MAXMEM, O_SEG, O_TTL, O_MODE, O_GROUP, O_NUMA,
	       O_READERS, O_HUGE, O_MRC, O_MRC_KEYS, O_MRC_SAMPLE };
	static const struct option lo[] = {
	    {"memory", required_argument, NULL, O_MEM},
	    {"max-memory", required_argument, NULL, O_MAXMEM},
	    {"segment-size", required_argument, NULL, O_SEG},
	    {"default-ttl", required_argument, NULL, O_TTL},
	    {"mode", required_argument, NULL, O_MODE},
	    {"group", required_argument, NULL, O_GROUP},
	    {"numa", required_argument, NULL, O_NUMA},
	    {"max-readers", required_argument, NULL, O_READERS},
	    {"huge", no_argument, NULL, O_HUGE},
	    {"mrc", no_argument, NULL, O_MRC},
	    {"mrc-keys", required_argument, NULL, O_MRC_KEYS},
	    {"mrc-sample", required_argument, NULL, O_MRC_SAMPLE},
	    {"quiet", no_argument, NULL, 'q'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	struct shmc_create_opts o;
	shmc_create_opts_init(&o);
	bool have_mem = false, have_group = false, quiet = false;
	gid_t gid = 0;
	uint64_t v;
	int ch, rc;
	while ((ch = tool_getopt(argc, argv, "hq", lo)) != -1) {
		switch (ch) {
		case 'h':
			help();
			return TOOL_EXIT_OK;
		case 'q':
			quiet = true;
			break;
		case O_MEM:
			if ((rc = tool_opt_size("--memory", optarg, &o.memory)))
				return rc;
			have_mem = true;
			break;
		case O_MAXMEM:
			if ((rc = tool_opt_size("--max-memory", optarg,
			                        &o.max_memory)))
				return rc;
			break;
		case O_SEG:
			if ((rc = tool_opt_size("--segment-size", optarg, &v)))
				return rc;
			if (v < SHMC_SEGMENT_MIN || v > SHMC_SEGMENT_MAX ||
			    (v & (v - 1))) {
				tool_fail(-EINVAL,
				          "--segment-size: %s is not a power of "
				          "two from 64K to 64M",
				          optarg);
				return tool_usage_error();
			}
			o.segment_size = (uint32_t)v;
			break;
		case O_TTL:
			if ((rc = tool_opt_u64("--default-ttl", optarg,
			                       10ull * 366 * 86400, &v)))
				return rc;
			o.default_ttl = (uint32_t)v;
			break;
		case O_MODE: {
			char *end = NULL;
			errno = 0;
			unsigned long m = strtoul(optarg, &end, 8);
			if (!*optarg || *end || errno || m > 07777 ||
			    *optarg == '-' || *optarg == '+') {
				tool_fail(-EINVAL, "--mode: bad octal mode '%s'",
				          optarg);
				return tool_usage_error();
			}
			o.mode = (uint32_t)m;
			break;
		}
		case O_GROUP:
			rc = parse_group(optarg, &gid);
			if (rc) {
				tool_fail(rc, "--group: unknown group '%s'",
				          optarg);
				return tool_usage_error();
			}
			have_group = true;
			break;
		case O_NUMA:
			if (parse_numa(optarg, &o)) {
				tool_fail(-EINVAL,
				          "--numa: '%s' is not interleave, "
				          "node=N or local",
				          optarg);
				return tool_usage_error();
			}
			break;
		case O_READERS:
			if ((rc = tool_opt_range("--max-readers", optarg, 1,
			                         32767, &v)))
				return rc;
			o.max_readers = (uint32_t)v;
			break;
		case O_HUGE:
			o.flags |= SHMC_CREATE_HUGE;
			break;
		case O_MRC:
			o.flags |= SHMC_CREATE_MRC;
			break;
		case O_MRC_KEYS:
			if ((rc = tool_opt_range("--mrc-keys", optarg, 64,
			                         1u << 20, &v)))
				return rc;
			if (v & (v - 1)) {
				tool_fail(-EINVAL,
				          "--mrc-keys: %s is not a power of two",
				          optarg);
				return tool_usage_error();
			}
			o.flags |= SHMC_CREATE_MRC;
			o.mrc_keys = (uint32_t)v;
			break;
		case O_MRC_SAMPLE:
			if ((rc = tool_opt_range("--mrc-sample", optarg, 1,
			                         UINT32_MAX, &v)))
				return rc;
			o.flags |= SHMC_CREATE_MRC;
			o.mrc_sample = (uint32_t)v;
			break;
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
	if (!have_mem) {
		tool_msg("--memory SIZE is required");
		return tool_usage_error();
	}
	/* The library sets the group before the file is visible. */
	if (have_group && gid == 0) {
		tool_msg("--group: group 0 cannot be given at create; chown "
		         "the file afterwards");
		return tool_usage_error();
	}
	if (have_group)
		o.gid = (uint32_t)gid;
	shmc_t *c = NULL;
	rc = shmc_create(name, &o, &c);
	if (rc == SHMC_EBUDGET) {
		tool_fail(rc, "create %s: --memory must hold the index and "
		              "slots plus 4 segments, and not exceed "
		              "--max-memory",
		          name);
		return TOOL_EXIT_FAIL;
	}
	if (rc == -ENOTSUP && (o.flags & SHMC_CREATE_HUGE)) {
		tool_fail(rc, "create %s: --huge needs SHMCACHE_DIR on a tmpfs "
		              "mounted with huge=within_size (mount -t tmpfs -o "
		              "huge=within_size,size=SIZE shmcache DIR)",
		          name);
		return TOOL_EXIT_FAIL;
	}
	if (rc) {
		tool_fail(rc, "create %s%s", name,
		          rc == -EEXIST ? ": cache already exists"
		          : rc == -EPERM && have_group ? ": cannot give it that group"
		                                       : "");
		return TOOL_EXIT_FAIL;
	}
	if (!quiet) {
		struct shmc_info info;
		char a[32], b[32];
		shmc_info(c, &info);
		printf("created %s: %s budget, reservation %s, file %s\n", name,
		       tool_human(o.memory, a, sizeof(a)),
		       tool_human(info.max_memory, b, sizeof(b)), info.path);
	}
	shmc_close(c);
	return TOOL_EXIT_OK;
}
