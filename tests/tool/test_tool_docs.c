/*
 * test_tool_docs.c - the man pages and the tool cannot drift apart: for
 * every subcommand, --help works; every option of its man page SYNOPSIS is
 * in --help and is accepted by the tool; every option of --help is in the
 * man page and in the usage line (unless that says [OPTIONS]); every
 * entry of its ERRORS section is produced by a run below (or listed in
 * `untestable` with the reason); shmcache(1) names every page; every page
 * renders with `man -l` from the source tree.  Pages from
 * $SHMCACHE_MAN_DIR.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers.h"
#include "run.h"

/* "sync" is last: built only with hiredis (SHMCACHE_SYNC=1). */
static const char *subs[] = {"create", "destroy", "list", "stats", "get",
                             "set", "del", "keys", "readers", "check",
                             "health", "top", "dump", "restore",
                             "exporter", "resize", "load", "mrc", "sync"};
static size_t NSUBS = sizeof(subs) / sizeof(subs[0]);

/* The man page, "\-" made "-". */
static char *page(const char *name)
{
	const char *dir = getenv("SHMCACHE_MAN_DIR");
	if (!dir)
		th_skip("SHMCACHE_MAN_DIR is not set");
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	char *s = calloc(1, 1 << 16);
	size_t n = fread(s, 1, (1 << 16) - 1, f);
	fclose(f);
	s[n] = 0;
	char *o = s;
	for (char *i = s; *i; i++) {
		if (i[0] == '\\' && i[1] == '-')
			i++;
		*o++ = *i;
	}
	*o = 0;
	return s;
}

/* The text of section SH (up to the next .SH), in a new string. */
static char *section(const char *s, const char *sh)
{
	char h[64];
	snprintf(h, sizeof(h), ".SH %s\n", sh);
	const char *a = strstr(s, h);
	if (!a)
		return strdup("");
	a += strlen(h);
	const char *b = strstr(a, "\n.SH ");
	return strndup(a, b ? (size_t)(b - a + 1) : strlen(a));
}

/* Calls fn for every "--word" in s. */
static void each_opt(const char *s, void (*fn)(const char *, void *),
                     void *arg)
{
	for (const char *p = s; (p = strstr(p, "--")); p += 2) {
		if (!islower((unsigned char)p[2]))
			continue;
		char o[48];
		size_t n = 2;
		while (n < 47 && (islower((unsigned char)p[n]) || p[n] == '-'))
			n++;
		memcpy(o, p, n);
		o[n] = 0;
		fn(o, arg);
	}
}

struct ctx {
	const char *sub, *text, *what;
};

static void must_contain(const char *opt, void *arg)
{
	struct ctx *c = arg;
	if (!strcmp(opt, "--help"))
		return; /* every subcommand's, said once in shmcache(1) */
	char w[64];
	snprintf(w, sizeof(w), "%s", opt);
	/* whole word: followed by neither a letter nor '-' */
	for (const char *p = c->text; (p = strstr(p, w)); p++) {
		char n = p[strlen(w)];
		if (!islower((unsigned char)n) && n != '-')
			return;
	}
	fail_msg("%s: %s is in one but not in %s", c->sub, opt, c->what);
}

static void accepted(const char *opt, void *arg)
{
	struct ctx *c = arg;
	struct run r = run_v(c->sub, opt, NULL);
	if (strstr(r.err, "unknown option") || strstr(r.err, "takes no"))
		fail_msg("%s %s (in its man page): %s", c->sub, opt, r.err);
	run_free(&r);
}

static void test_help_and_options(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSUBS; i++) {
		struct run r = run_v(subs[i], "--help", NULL);
		char want[64];
		snprintf(want, sizeof(want), "Usage: shmcache %s ", subs[i]);
		assert_int_equal(r.status, 0);
		if (strncmp(r.out, want, strlen(want)) != 0)
			fail_msg("%s --help: '%s'", subs[i], r.out);
		char name[64];
		snprintf(name, sizeof(name), "shmcache-%s.1", subs[i]);
		char *man = page(name), *syn = section(man, "SYNOPSIS");
		/* the usage lines: up to the first empty line */
		char *usage = strndup(r.out, (size_t)(strstr(r.out, "\n\n") -
		                                      r.out));
		struct ctx c = {subs[i], man, name};
		each_opt(r.out, must_contain, &c);
		c = (struct ctx){subs[i], r.out, "--help"};
		each_opt(syn, must_contain, &c);
		if (!strstr(usage, "[OPTIONS]")) {
			c = (struct ctx){subs[i], usage, "the usage line"};
			each_opt(r.out + strlen(usage), must_contain, &c);
		}
		c = (struct ctx){subs[i], NULL, NULL};
		each_opt(syn, accepted, &c);
		free(usage);
		free(syn);
		free(man);
		run_free(&r);
	}
}

/* Entries of ERRORS no test here can bring about, and why. */
static const char *untestable[] = {
    "segment of another format version or ABI", /* needs another build */
    "No space left on device",                  /* needs a full tmpfs */
    "another operation of this kind is in progress", /* a racing resize */
    "no memory can be reused: a reader is stalled",  /* a stalled reader */
    "listen on ADDR:PORT: Address already in use",   /* a taken port */
    "directory: REASON",                        /* an unreadable dir */
    "value too large for one segment", /* test_tool_ops, test_tool_review */
    "N processes attached (use --force to remove anyway)", /* live users */
    "fewer than its N items", /* test_tool_ops: test_index_below_items */
    "record N truncated", "dump format version", /* test_tool_errors */
    "truncated", "checksum mismatch", "a warning threshold lies beyond its critical one",
    "another sync runs for NAME (pid N)", /* tests/redis: test_redis_sync */
    "CLIENT TRACKING: REASON", /* needs a Redis older than 6 */
    NULL};

static void mkfile(const char *name, const char *text)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", th_private_dir(), name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Runs argv and appends what it printed on stderr to *all. */
static void collect(char **all, const char *const *argv)
{
	struct run r = run_tool(NULL, 0, argv);
	/* every line is "shmcache: SUB: ..." or the --help hint */
	char *save = NULL, *copy = strdup(r.err);
	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char p[64];
		snprintf(p, sizeof(p), "shmcache: %s: ", argv[0]);
		if (strncmp(l, p, strlen(p)) != 0 &&
		    strncmp(l, "Try 'shmcache ", 14) != 0)
			fail_msg("%s: stderr line '%s' is not in the form", argv[0],
			         l);
	}
	free(copy);
	size_t n = strlen(*all);
	*all = realloc(*all, n + strlen(r.err) + strlen(r.out) + 1);
	strcpy(*all + n, r.err);
	strcat(*all, r.out);
	run_free(&r);
}
#define C(...)                                                                 \
	do {                                                                   \
		const char *av_[] = {__VA_ARGS__, NULL};                       \
		collect(&all, av_);                                            \
	} while (0)

static void test_error_entries(void **state)
{
	(void)state;
	char dump[600], cpath[600];
	snprintf(dump, sizeof(dump), "%s/x.dump", th_private_dir());
	snprintf(cpath, sizeof(cpath), "%s/shmcache.foreign", th_private_dir());
	mkfile("shmcache.junk", "not a cache\n");
	mkfile("x.dump", "not a dump either, but long enough to be read.....");
	struct run r = run_v("create", "live", "--memory", "8M", "-q", NULL);
	assert_int_equal(r.status, 0);
	run_free(&r);
	r = run_v("create", "foreign", "--memory", "8M", "-q", NULL);
	run_free(&r);
	bool foreign = geteuid() == 0 && chown(cpath, 65534, 65534) == 0;
	/* a checksummed header field changed: every open refuses it */
	r = run_v("create", "bad", "--memory", "8M", "-q", NULL);
	run_free(&r);
	char bpath[600];
	snprintf(bpath, sizeof(bpath), "%s/shmcache.bad", th_private_dir());
	FILE *bf = fopen(bpath, "r+");
	assert_non_null(bf);
	fseek(bf, 100, SEEK_SET);
	fputs("XXXX", bf);
	fclose(bf);
	for (size_t i = 0; i < NSUBS; i++) {
		const char *s = subs[i];
		char *all = strdup("");
		/* the open errors every NAME subcommand shares */
		const char *names[] = {"nope", "a/b", "junk", "foreign", "bad"};
		for (int k = 0; k < 5 && strcmp(s, "list"); k++) {
			if (!strcmp(s, "set"))
				C(s, names[k], "k", "v");
			else if (!strcmp(s, "get") || !strcmp(s, "del"))
				C(s, names[k], "k");
			else if (!strcmp(s, "dump") || !strcmp(s, "restore"))
				C(s, names[k], dump);
			else if (!strcmp(s, "top"))
				C(s, names[k], "--iterations", "1");
			else if (!strcmp(s, "load"))
				C(s, names[k], "--seconds", "0.1");
			else if (!strcmp(s, "resize"))
				C(s, names[k], "--history");
			else if (!strcmp(s, "sync"))
				C(s, names[k], "--redis", "unix:/nonexistent");
			else
				C(s, names[k]);
		}
		/* the errors of one subcommand */
		if (!strcmp(s, "create")) {
			C(s, "live", "--memory", "8M");
			C(s, "x", "--memory", "64K");
			C(s, "x", "--memory", "256M", "--huge");
			C(s, "x", "--memory", "12Q");
			C(s, "x", "--memory", "8M", "--max-readers", "0");
			C(s, "x", "--memory", "8M", "--segment-size", "100K");
			C(s, "x", "--memory", "8M", "--mode", "9");
			C(s, "x", "--memory", "8M", "--group", "no-such-group");
		} else if (!strcmp(s, "get") || !strcmp(s, "del")) {
			C(s, "live", "absent");
			C(s, "live", "");
		} else if (!strcmp(s, "set")) {
			C(s, "live", "k", "v", "-q");
			C(s, "live", "k", "v", "--add");
		} else if (!strcmp(s, "destroy")) {
			C(s, "junk");
		} else if (!strcmp(s, "mrc")) {
			C(s, "live");
		} else if (!strcmp(s, "restore")) {
			C(s, "live", dump);
		} else if (!strcmp(s, "sync")) {
			C(s, "live");
			C(s, "live", "--redis", "nonsense");
#define R_ "--redis=unix:/nonexistent" /* one word: argv holds 31 */
			C(s, "live", R_, R_, R_, R_, R_, R_, R_, R_, R_, R_, R_,
			  R_, R_, R_, R_, R_, R_); /* 17 nodes: one too many */
#undef R_
		} else if (!strcmp(s, "resize")) {
			C(s, "live", "--memory", "1T");
			C(s, "live", "--memory", "64K");
			C(s, "live", "--index", "0");
			C(s, "live", "--index", "1");
		}
		char name[64];
		snprintf(name, sizeof(name), "shmcache-%s.1", s);
		char *man = page(name), *err = section(man, "ERRORS");
		/* entries: the bold words after each .TP */
		char *save = NULL;
		bool tp = false;
		for (char *l = strtok_r(err, "\n", &save); l;
		     l = strtok_r(NULL, "\n", &save)) {
			bool entry = tp;
			tp = !strcmp(l, ".TP");
			if (!entry)
				continue;
			/* .B text, or .BR "a" ", " "b" */
			char *e[8];
			int ne = 0;
			if (!strncmp(l, ".B ", 3) || !strncmp(l, ".I ", 3)) {
				e[ne++] = l + 3;
			} else if (!strncmp(l, ".BR ", 4)) {
				for (char *q = strtok(l + 4, "\""); q && ne < 8;
				     q = strtok(NULL, "\""))
					if (strcmp(q, ", ") && strcmp(q, " "))
						e[ne++] = q;
			}
			for (int k = 0; k < ne; k++) {
				bool skip = false;
				for (int u = 0; untestable[u]; u++)
					skip |= !strcmp(e[k], untestable[u]);
				if (skip || strstr(all, e[k]))
					continue;
				if (!foreign &&
				    !strncmp(e[k], "permission denied", 17))
					continue;
				fail_msg("%s(1) documents the error '%s'; no run "
				         "printed it:\n%s",
				         s, e[k], all);
			}
		}
		free(err);
		free(man);
		free(all);
	}
	r = run_v("destroy", "live", "-q", NULL);
	run_free(&r);
}

static void test_main_page(void **state)
{
	(void)state;
	char *man = page("shmcache.1"), *see = section(man, "SEE ALSO");
	char *subsec = section(man, "SUBCOMMANDS");
	struct run r = run_v("--help", NULL);
	for (size_t i = 0; i < NSUBS; i++) {
		char w[64];
		snprintf(w, sizeof(w), ".BR shmcache-%s (1)", subs[i]);
		if (!strstr(see, w))
			fail_msg("shmcache(1) SEE ALSO misses shmcache-%s(1)",
			         subs[i]);
		snprintf(w, sizeof(w), "shmcache-%s(1)", subs[i]);
		if (!strstr(subsec, w))
			fail_msg("shmcache(1) SUBCOMMANDS misses %s", w);
		snprintf(w, sizeof(w), "\n  %s ", subs[i]);
		assert_non_null(strstr(r.out, w));
	}
	/* "every subcommand that prints data accepts --json": those named */
	const char *json[] = {"list", "stats", "get", "keys", "readers",
	                      "check", "health", "top", "load", "resize",
	                      "mrc"};
	for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
		struct run h = run_v(json[i], "--help", NULL);
		if (!strstr(h.out, "--json"))
			fail_msg("%s --help has no --json", json[i]);
		run_free(&h);
	}
	run_free(&r);
	free(subsec);
	free(see);
	free(man);
}

static void test_pages_render(void **state)
{
	(void)state;
	if (system("command -v man >/dev/null 2>&1") != 0) {
		printf("# man not installed: rendering not checked\n");
		return;
	}
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	         "cd / && for f in '%s'/*.[13]; do "
	         "e=$(MANWIDTH=80 man -l \"$f\" 2>&1 >/dev/null); "
	         "o=$(MANWIDTH=80 man -l \"$f\" 2>/dev/null | wc -c); "
	         "if [ -n \"$e\" ] || [ \"$o\" -lt 200 ]; then "
	         "echo \"$f: $e\"; exit 1; fi; done",
	         getenv("SHMCACHE_MAN_DIR"));
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	tool_path();
	th_private_dir();
	const char *sync = getenv("SHMCACHE_SYNC");
	if (!sync || strcmp(sync, "1") != 0)
		NSUBS--; /* no sync subcommand in this build */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_help_and_options),
	    cmocka_unit_test(test_error_entries),
	    cmocka_unit_test(test_main_page),
	    cmocka_unit_test(test_pages_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
