/*
 * cmd_list.c - `shmcache list [--json]`: every shmcache.NAME file in
 * $SHMCACHE_DIR (default /dev/shm), sorted by name, with its budget,
 * items and attached processes.  A file that cannot be opened (corrupt,
 * another user's, another version) is listed with the reason instead of
 * figures; listing never changes anything (open takes no reader slot).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

static void help(void)
{
	printf("Usage: shmcache list [--json]\n\n"
	       "Lists the caches in $SHMCACHE_DIR (default /dev/shm).\n\n"
	       "  --json      one JSON array\n"
	       "  -h, --help  this help\n");
}

/* REVIEW FIX: the directory is shared (/dev/shm is world-writable), so a
 * file name is hostile input: printed raw it could carry terminal escape
 * sequences to the operator's terminal, and bytes >= 0x80 made --json
 * output invalid UTF-8.  Names are shown escaped like keys are (\xNN for
 * control and non-ASCII bytes, '\' as "\\"); a real cache name
 * ([A-Za-z0-9._-]) is unchanged.  out holds 4 * 255 + 1 bytes. */
static const char *shown(const char *name, char *out, size_t len)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)name;
	     *p && o + 5 <= len; p++) {
		if (*p == '\\')
			o += (size_t)snprintf(out + o, len - o, "\\\\");
		else if (*p < 0x20 || *p >= 0x7f)
			o += (size_t)snprintf(out + o, len - o, "\\x%02x", *p);
		else
			out[o++] = (char)*p;
	}
	out[o] = 0;
	return out;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cmd_list(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
	                                   {"help", no_argument, NULL, 'h'},
	                                   {NULL, 0, NULL, 0}};
	bool json = false;
	int ch;
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
	if (optind != argc) {
		tool_msg("too many arguments");
		return tool_usage_error();
	}
	const char *dir = getenv("SHMCACHE_DIR");
	if (!dir || !*dir)
		dir = "/dev/shm";
	DIR *d = opendir(dir);
	if (!d) {
		tool_fail(-errno, "%s", dir);
		return TOOL_EXIT_FAIL;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "shmcache.", 9) != 0 || !e->d_name[9])
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(e->d_name + 9);
		if (names[n])
			n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);

	struct jw w;
	jw_init(&w, stdout);
	if (json)
		jw_arr(&w);
	else
		printf("%-24s %10s %10s %12s %9s  %s\n", "NAME", "MEMORY", "USED",
		       "ITEMS", "PROCESSES", "STATUS");
	for (size_t i = 0; i < n; i++) {
		shmc_t *c = NULL;
		struct tool_snap s;
		char esc[4 * 256 + 1];
		const char *show = shown(names[i], esc, sizeof(esc));
		int rc = shmc_open(names[i], tool_open_flags(names[i]), &c);
		if (!rc) {
			rc = tool_snap_take(c, &s);
			shmc_close(c);
		}
		if (json) {
			jw_obj(&w);
			jw_key(&w, "name");
			jw_str(&w, show);
			if (!rc) {
				jw_key(&w, "memory");
				jw_u64(&w, s.st.memory);
				jw_key(&w, "used_bytes");
				jw_u64(&w, s.st.used_bytes);
				jw_key(&w, "items");
				jw_u64(&w, s.st.items);
				jw_key(&w, "processes");
				jw_u64(&w, s.st.processes);
				jw_key(&w, "utilisation");
				jw_dbl(&w, s.utilisation);
			}
			jw_key(&w, "error");
			if (rc)
				jw_str(&w, shmc_strerror(rc));
			else
				jw_null(&w);
			jw_obj_end(&w);
		} else if (rc) {
			printf("%-24s %10s %10s %12s %9s  %s\n", show, "-", "-",
			       "-", "-", shmc_strerror(rc));
		} else {
			char h1[32], h2[32];
			printf("%-24s %10s %10s %12llu %9u  ok\n", show,
			       tool_human(s.st.memory, h1, 32),
			       tool_human(s.st.used_bytes, h2, 32),
			       (unsigned long long)s.st.items, s.st.processes);
		}
		free(names[i]);
	}
	free(names);
	if (json) {
		jw_arr_end(&w);
		jw_end(&w);
	}
	return fflush(stdout) == 0 ? TOOL_EXIT_OK : TOOL_EXIT_FAIL;
}
