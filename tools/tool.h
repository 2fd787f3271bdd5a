/*
 * tool.h - shared by the subcommands of the shmcache tool.
 *
 * The tool is a dispatcher (main.c) plus one file per subcommand
 * (cmd_NAME.c, each exporting `int cmd_NAME(int argc, char **argv)` that
 * returns the process exit status).  Everything here is process-private
 * (memory comes from jemalloc, linked in place of the libc allocator) and
 * uses only the public API of libshmcache.
 *
 * EXIT STATUS CONVENTION (every subcommand unless its man page says
 * otherwise): 0 success, 1 the operation failed (unknown cache, miss,
 * library error), 2 usage error (bad option, bad size, bad name).
 *
 * ERROR MESSAGES: always one line on stderr,
 *   shmcache: SUBCOMMAND: WHAT: shmc_strerror(rc)
 * printed by tool_fail(); nothing is changed when an argument is bad,
 * because every argument is parsed and checked before the cache is
 * touched.
 */
#ifndef SHMC_TOOL_H
#define SHMC_TOOL_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shmcache.h"

#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAIL 1
#define TOOL_EXIT_USAGE 2

/* The subcommand being run, for messages ("create", ...). */
extern const char *tool_sub;

/* Prints "shmcache: SUB: WHAT: shmc_strerror(rc)" to stderr. */
__attribute__((format(printf, 2, 3))) void tool_fail(int rc, const char *fmt,
                                                     ...);
/* Prints "shmcache: SUB: MESSAGE" to stderr. */
__attribute__((format(printf, 1, 2))) void tool_msg(const char *fmt, ...);
/* getopt_long() that prints its complaints in the tool's form
 * ("shmcache: SUB: --bogus: unknown option", "...: --memory: needs a
 * value") instead of getopt's; returns '?' for both (then print the hint
 * with tool_usage_error()). */
int tool_getopt(int argc, char **argv, const char *shortopts,
                const struct option *longopts);
/* Prints the "try --help" hint after a usage error and returns 2. */
int tool_usage_error(void);
/* For a subcommand that takes only --help (and -q/--quiet when quiet is
 * not NULL) and exactly n arguments: returns -1 to go on (they start at
 * argv[optind]), or the exit status to return now (help shown, or a
 * usage error saying `missing` when there are too few). */
int tool_plain_args(int argc, char **argv, void (*help)(void), int n,
                    const char *missing, bool *quiet);

/*
 * Parses a size: decimal digits with an optional binary suffix K, M, G, T
 * (case-insensitive, optionally followed by "B" or "iB").
 * Returns 0, -EINVAL (malformed) or -ERANGE (overflow).
 */
int tool_parse_size(const char *s, uint64_t *out);
/* Parses a plain decimal unsigned number <= max.  0, -EINVAL, -ERANGE. */
int tool_parse_u64(const char *s, uint64_t max, uint64_t *out);
/* Parses a non-negative decimal number with an optional fraction. */
int tool_parse_double(const char *s, double *out);

/* Option value helpers: parse, or print the usage error and return 2. */
int tool_opt_size(const char *opt, const char *s, uint64_t *out);
int tool_opt_u64(const char *opt, const char *s, uint64_t max, uint64_t *out);
/* As tool_opt_u64, for a number from min to max. */
int tool_opt_range(const char *opt, const char *s, uint64_t min, uint64_t max,
                   uint64_t *out);
int tool_opt_double(const char *opt, const char *s, double *out);

/* Opens cache name (with tool_open_flags()); on error prints
 * "open NAME: REASON" (tool_open_reason()) and returns rc. */
int tool_open(const char *name, shmc_t **out);
/* SHMC_OPEN_ANY_OWNER when the file belongs to another user but its mode
 * grants its group read and write and the caller is in that group (a
 * cache shared with `create --mode 0660 --group G`), else 0. */
unsigned tool_open_flags(const char *name);
/* Why opening name failed with rc, in one phrase: "no such cache",
 * "permission denied (owned by uid N and not shared ...)", or
 * shmc_strerror(rc).  buf (>= 160 bytes) may hold the text. */
const char *tool_open_reason(const char *name, int rc, char *buf, size_t len);
/* Checks a cache name without touching anything; prints on error. */
int tool_check_name(const char *name);

/* "1.5 GiB" style; buf of at least 32 bytes. */
const char *tool_human(uint64_t bytes, char *buf, size_t len);

/* Writes bytes with non-printables escaped as \xNN and '\\' as "\\\\". */
void tool_write_escaped(FILE *f, const void *p, size_t n);
/* 1 when p[0..n) is valid UTF-8 without NUL. */
bool tool_utf8_ok(const void *p, size_t n);

/* Reads all of fd into a new buffer (free()d by the caller); -EFBIG
 * (nothing returned) when fd holds more than max bytes. */
int tool_read_all(int fd, size_t max, uint8_t **buf, size_t *len);
/* Writes all of buf to fd, retrying short writes and EINTR. */
int tool_write_all(int fd, const void *buf, size_t len);

/* Monotonic and wall clocks. */
uint64_t tool_now_ns(void);
/* Sleeps for secs (fractions allowed); returns early (1) on a signal
 * that set *stop, else 0. */
int tool_sleep(double secs, volatile int *stop);

/* SIGINT/SIGTERM set *tool_stop_flag(); installed by tool_catch_stop(). */
volatile int *tool_stop_flag(void);
void tool_catch_stop(void);

/* ---- JSON writer (json.c) --------------------------------------------- */

/* A small streaming JSON writer: commas and nesting are tracked for you.
 * Output is compact, one document per line when jw_end() is called. */
struct jw {
	FILE *f;
	int depth;
	bool need_comma[32];
	bool after_key;
};
void jw_init(struct jw *w, FILE *f);
void jw_obj(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s);
void jw_strn(struct jw *w, const void *s, size_t n);
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_dbl(struct jw *w, double v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* Ends the document: a newline, then flush. */
void jw_end(struct jw *w);

/* ---- the record of `shmcache sync` (syncfile.c) ------------------------ */

enum tool_sync_ctr {
	TOOL_SYNC_INVALIDATIONS, /* invalidation messages from Redis */
	TOOL_SYNC_KEYS_DELETED,  /* keys they removed from the cache */
	TOOL_SYNC_FLUSHES,       /* prefix flushes (start, loss, FLUSHALL) */
	TOOL_SYNC_FLUSHED_KEYS,  /* keys removed by flushes */
	TOOL_SYNC_RECONNECTS,    /* connections to Redis made again */
	TOOL_SYNC_LAG_NS,        /* last probe: SET to its invalidation */
	TOOL_SYNC_PROBES,        /* probes answered */
	TOOL_SYNC_PROBE_MAX_NS,  /* largest probe lag seen */
	TOOL_SYNC_NCTR
};

/* A reading of the record (all zero when no sync ever ran). */
struct tool_sync {
	bool present;      /* a valid record exists */
	bool running;      /* its sync process is alive (holds the lock) */
	int32_t pid;
	uint32_t connected; /* tracking on right now, on every node */
	uint32_t nodes;     /* Redis nodes followed (--redis given) */
	uint32_t nodes_up;  /* bit i: the i-th node is tracking */
	uint64_t started, last_connected; /* unix s */
	uint64_t v[TOOL_SYNC_NCTR];
	char addr[128];
};
struct tool_sync_writer;
/* SHMCACHE_DIR/shmcache-sync.NAME, next to the cache file cache_path. */
int tool_sync_path(const char *cache_path, const char *name, char *out,
                   size_t len);
/* The sync's side: creates or reuses the record and locks it; -EBUSY
 * (with the holder's pid in *holder) when another sync holds it. */
int tool_sync_attach(const char *path, unsigned mode, const char *addr,
                     struct tool_sync_writer **out, int32_t *holder);
void tool_sync_add(struct tool_sync_writer *w, enum tool_sync_ctr i,
                   uint64_t n);
void tool_sync_set(struct tool_sync_writer *w, enum tool_sync_ctr i,
                   uint64_t v);
void tool_sync_connected(struct tool_sync_writer *w, bool up);
/* How many nodes are followed and which are tracking (bit i: i-th). */
void tool_sync_nodes(struct tool_sync_writer *w, unsigned nodes,
                     uint32_t up);
void tool_sync_detach(struct tool_sync_writer *w);
/* Reads the record at path: 0, -ENOENT (no sync ever ran), or
 * SHMC_ECORRUPT (not a record of this version: ignore it). */
int tool_sync_read(const char *path, struct tool_sync *s);

/* ---- metrics (metrics.c) ---------------------------------------------- */

/* Resizes a reading keeps (all the library records); text shows fewer. */
#define TOOL_HIST 16
#define TOOL_HIST_TEXT 5

/* Budgets at which a reading predicts the hit ratio: 0.5x, 1x, 2x. */
#define TOOL_MRC_N 3
extern const double tool_mrc_scales[TOOL_MRC_N];

/* One reading of a cache, with the derived figures every view shows. */
struct tool_snap {
	struct shmc_stats st;
	struct shmc_info info;
	struct shmc_autogrow ag;    /* the autogrow policy (step 0 = off) */
	struct shmc_resize_record hist[TOOL_HIST]; /* newest first */
	int nhist;                  /* entries of hist in use */
	uint64_t t_ns;          /* monotonic time of the reading */
	uint64_t fixed_bytes;   /* committed outside data segments */
	uint64_t data_capacity; /* budget left for data segments */
	double hit_ratio;       /* hits / (hits + misses); 0 when no gets */
	double utilisation;     /* used_bytes / data_capacity, 0..1 */
	double index_load;      /* items / (index_buckets * 7) */
	uint64_t load_wait_mean_ns; /* load_wait_ns / load_waits; 0 if none */
	uint64_t ag_ceiling;    /* autogrow ceiling in force (0 = reservation
	                         * resolved to max_memory) */
	struct tool_sync sync;  /* `shmcache sync`'s record, if any */
	/* The miss-ratio curve (shmc_mrc): mrc_rc 0 when read, -ENOTSUP
	 * when the cache keeps none, else the error (not a failed reading). */
	int mrc_rc;
	struct shmc_mrc_info mrc;
	double mrc_hit[TOOL_MRC_N]; /* predicted at tool_mrc_scales[] */
};
int tool_snap_take(shmc_t *c, struct tool_snap *s);
void tool_snap_text(FILE *f, const struct tool_snap *s);
void tool_snap_json(struct jw *w, const struct tool_snap *s);
/* Prometheus text exposition format (0.0.4), HELP and TYPE lines. */
void tool_snap_prom(FILE *f, const struct tool_snap *s);

/* "manual", "autogrow", "resumed" (enum shmc_resize_reason), or "?". */
const char *tool_resize_reason(uint32_t reason);

/* Per-second rate of a counter between two readings (0 if no time). */
double tool_rate(uint64_t a, uint64_t b, uint64_t ta_ns, uint64_t tb_ns);

/* ---- subcommands ------------------------------------------------------ */

int cmd_create(int argc, char **argv);
int cmd_destroy(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_del(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_readers(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_health(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_resize(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_exporter(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_mrc(int argc, char **argv);

#endif
