/*
 * metrics.c - one reading of a cache and its three renderings (text,
 * JSON, Prometheus), shared by stats, list, health, top and exporter so
 * that every view names and derives figures the same way.
 *
 * DERIVED FIGURES
 *   hit_ratio     hits / (hits + misses); 0 when there were no gets.
 *   fixed_bytes   committed - segments_total * segment_size: the header,
 *                 reader slots, index and ghost table.
 *   data_capacity memory - fixed_bytes: what the budget leaves for data.
 *   utilisation   used_bytes / data_capacity, clamped to 0..1.  A cache
 *                 that evicts runs close to 1 by design; read it together
 *                 with the eviction rate.
 *   index_load    items / (index_buckets * 7), the share of index entries
 *                 in use (a bucket holds 7).
 *   load_wait_mean_ns  load_wait_ns / load_waits: how long a get-or-load
 *                 caller waited, on average, for another's load.
 *   ag_ceiling    the autogrow ceiling in force: the policy's, or the
 *                 reservation when the policy says 0.
 * A reading also holds the autogrow policy, the resize history (the
 * library keeps the last 16 resizes, read without a lock like the
 * counters) and, for a cache that keeps one, the miss-ratio curve's
 * predicted hit ratio at 0.5x, 1x and 2x the budget (shmc_mrc, also
 * without a lock); those are shown only for such a cache.
 * Counters are read without locks (see shmc_stats) and may be a few
 * operations behind; two readings are never mixed in one rendering.
 *
 * PROMETHEUS
 * Text exposition format 0.0.4: every family has HELP and TYPE lines,
 * counters end in _total, every sample has a cache="NAME" label (names
 * are [A-Za-z0-9._-], escaped anyway), units are base units (bytes,
 * ratios 0..1, seconds).  The get-or-load wait is a pair of counters,
 * load_waits_total and load_wait_seconds_total, so the mean wait over any
 * window is rate(seconds) / rate(waits) rather than a mean since creation.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "tool.h"

int tool_snap_take(shmc_t *c, struct tool_snap *s)
{
	memset(s, 0, sizeof(*s));
	int rc = shmc_info(c, &s->info);
	if (!rc)
		rc = shmc_stats(c, &s->st);
	if (rc)
		return rc;
	s->t_ns = tool_now_ns();
	const struct shmc_stats *st = &s->st;
	uint64_t seg_bytes = (uint64_t)st->segments_total * s->info.segment_size;
	s->fixed_bytes = st->committed_bytes > seg_bytes
	                     ? st->committed_bytes - seg_bytes
	                     : 0;
	s->data_capacity =
	    st->memory > s->fixed_bytes ? st->memory - s->fixed_bytes : 0;
	uint64_t lookups = st->hits + st->misses;
	s->hit_ratio = lookups ? (double)st->hits / (double)lookups : 0.0;
	s->utilisation = s->data_capacity
	                     ? (double)st->used_bytes / (double)s->data_capacity
	                     : 0.0;
	if (s->utilisation > 1.0)
		s->utilisation = 1.0;
	s->index_load = st->index_buckets
	                    ? (double)st->items / ((double)st->index_buckets * 7)
	                    : 0.0;
	s->load_wait_mean_ns =
	    st->load_waits ? st->load_wait_ns / st->load_waits : 0;
	rc = shmc_get_autogrow(c, &s->ag);
	if (rc)
		return rc;
	s->ag_ceiling = s->ag.ceiling ? s->ag.ceiling : s->info.max_memory;
	rc = shmc_resize_history(c, s->hist, TOOL_HIST);
	if (rc < 0)
		return rc;
	s->nhist = rc;
	/* `shmcache sync`'s record next to the cache; none is no error. */
	char sp[4200];
	if (tool_sync_path(s->info.path, s->info.name, sp, sizeof(sp)) == 0)
		(void)tool_sync_read(sp, &s->sync);
	struct shmc_mrc_point p[TOOL_MRC_N];
	for (int i = 0; i < TOOL_MRC_N; i++)
		p[i] = (struct shmc_mrc_point){
		    (uint64_t)((double)st->memory * tool_mrc_scales[i]), 0, 0};
	s->mrc_rc = shmc_mrc(c, p, TOOL_MRC_N, &s->mrc);
	for (int i = 0; i < TOOL_MRC_N; i++)
		s->mrc_hit[i] = s->mrc_rc ? 0 : p[i].hit_ratio;
	return 0;
}

const double tool_mrc_scales[TOOL_MRC_N] = {0.5, 1, 2};

const char *tool_resize_reason(uint32_t reason)
{
	switch (reason) {
	case SHMC_RESIZE_MANUAL:
		return "manual";
	case SHMC_RESIZE_AUTOGROW:
		return "autogrow";
	case SHMC_RESIZE_RESUMED:
		return "resumed";
	default:
		return "?";
	}
}

/* "850 ns", "12.3 us", "4.56 ms", "1.20 s"; buf of at least 32 bytes. */
static const char *dur(uint64_t ns, char *buf, size_t len)
{
	if (ns < 1000)
		snprintf(buf, len, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2f s", (double)ns / 1e9);
	return buf;
}

double tool_rate(uint64_t a, uint64_t b, uint64_t ta_ns, uint64_t tb_ns)
{
	if (tb_ns <= ta_ns || b < a)
		return 0.0;
	return (double)(b - a) * 1e9 / (double)(tb_ns - ta_ns);
}

void tool_snap_text(FILE *f, const struct tool_snap *s)
{
	const struct shmc_stats *st = &s->st;
	char h1[32], h2[32], h3[32], h4[32];
	fprintf(f, "cache          %s\n", s->info.name);
	fprintf(f, "path           %s\n", s->info.path);
	fprintf(f, "hit ratio      %.2f%% (%llu hits, %llu misses)\n",
	        s->hit_ratio * 100, (unsigned long long)st->hits,
	        (unsigned long long)st->misses);
	fprintf(f, "gets           %llu\n", (unsigned long long)st->gets);
	fprintf(f, "sets           %llu (adds %llu, %llu refused as existing)\n",
	        (unsigned long long)st->sets, (unsigned long long)st->adds,
	        (unsigned long long)st->add_exists);
	fprintf(f, "deletes        %llu\n", (unsigned long long)st->deletes);
	fprintf(f, "evictions      %llu (copied forward %llu, index drops %llu)\n",
	        (unsigned long long)st->evictions,
	        (unsigned long long)st->copy_forwards,
	        (unsigned long long)st->index_drops);
	fprintf(f, "expirations    %llu\n", (unsigned long long)st->expirations);
	fprintf(f, "loads          %llu (waits %llu, mean wait %s, lease "
	           "takeovers %llu, stale served %llu)\n",
	        (unsigned long long)st->loads,
	        (unsigned long long)st->load_waits,
	        dur(s->load_wait_mean_ns, h1, 32),
	        (unsigned long long)st->lease_takeovers,
	        (unsigned long long)st->stale_served);
	fprintf(f, "items          %llu\n", (unsigned long long)st->items);
	fprintf(f, "bytes used     %s (%llu)\n", tool_human(st->used_bytes, h1, 32),
	        (unsigned long long)st->used_bytes);
	fprintf(f, "committed      %s (%llu)\n",
	        tool_human(st->committed_bytes, h2, 32),
	        (unsigned long long)st->committed_bytes);
	fprintf(f, "budget         %s (%llu), reservation %s\n",
	        tool_human(st->memory, h3, 32), (unsigned long long)st->memory,
	        tool_human(st->max_memory, h4, 32));
	fprintf(f, "utilisation    %.2f%%\n", s->utilisation * 100);
	fprintf(f, "index load     %.2f%% (%llu buckets)\n", s->index_load * 100,
	        (unsigned long long)st->index_buckets);
	fprintf(f, "segments       %u total = %u free + %u small + %u main + "
	           "%u open + %u parked + %u retired (%s each)\n",
	        st->segments_total, st->segments_free, st->segments_small,
	        st->segments_main, st->segments_open, st->segments_parked,
	        st->segments_retired, tool_human(s->info.segment_size, h1, 32));
	if (s->info.flags & SHMC_CREATE_HUGE)
		fprintf(f, "huge pages     on (2 MiB); %s of the mapping "
		           "huge-mapped in this process\n",
		        tool_human(s->info.huge_bytes, h1, 32));
	fprintf(f, "stalls         %llu (grace periods %llu)\n",
	        (unsigned long long)st->stalls,
	        (unsigned long long)st->grace_periods);
	if (s->mrc_rc == 0 && s->mrc.gets)
		fprintf(f, "predicted      hit ratio %.1f%% at 0.5x budget, "
		           "%.1f%% at 1x, %.1f%% at 2x (shmcache mrc)\n",
		        s->mrc_hit[0] * 100, s->mrc_hit[1] * 100,
		        s->mrc_hit[2] * 100);
	else if (s->mrc_rc == 0)
		fprintf(f, "predicted      no sampled gets yet (shmcache mrc)\n");
	else if (s->mrc_rc != -ENOTSUP)
		fprintf(f, "predicted      curve unreadable: %s\n",
		        shmc_strerror(s->mrc_rc));
	fprintf(f, "readers        %u slots in use\n", st->readers);
	fprintf(f, "processes      %u attached\n", st->processes);
	if (s->ag.step)
		fprintf(f, "autogrow       +%s up to %s when utilisation >= "
		           "%u%% and ghost hits >= %u per mille of sets for "
		           "%u s\n",
		        tool_human(s->ag.step, h1, 32),
		        tool_human(s->ag_ceiling, h2, 32), s->ag.util_pct,
		        s->ag.ghost_pm, s->ag.window_s);
	else
		fprintf(f, "autogrow       off\n");
	if (s->ag.step && s->ag.mrc_gain_pm)
		fprintf(f, "               (the miss-ratio curve, where it can "
		           "tell, instead of ghost hits: a step must add %.1f "
		           "points)\n",
		        s->ag.mrc_gain_pm / 10.0);
	const struct tool_sync *y = &s->sync;
	if (y->present)
		fprintf(f, "redis sync     %s (pid %d) %s %s; %llu invalidations, "
		           "%llu keys deleted, %llu flushes (%llu keys), %llu "
		           "reconnects, lag %s (max %s)\n",
		        y->running ? "running" : "not running", y->pid,
		        y->connected ? "tracking" : "disconnected from", y->addr,
		        (unsigned long long)y->v[TOOL_SYNC_INVALIDATIONS],
		        (unsigned long long)y->v[TOOL_SYNC_KEYS_DELETED],
		        (unsigned long long)y->v[TOOL_SYNC_FLUSHES],
		        (unsigned long long)y->v[TOOL_SYNC_FLUSHED_KEYS],
		        (unsigned long long)y->v[TOOL_SYNC_RECONNECTS],
		        dur(y->v[TOOL_SYNC_LAG_NS], h1, 32),
		        dur(y->v[TOOL_SYNC_PROBE_MAX_NS], h2, 32));
	if (y->present && y->nodes > 1) {
		fprintf(f, "               nodes tracking %d of %u",
		        __builtin_popcount(y->nodes_up), y->nodes);
		const char *sep = " (down: node";
		for (uint32_t i = 0; i < y->nodes && y->running; i++)
			if (!(y->nodes_up >> i & 1)) {
				fprintf(f, "%s %u", sep, i + 1);
				sep = ",";
			}
		fprintf(f, "%s\n", sep[0] == ',' ? ")" : "");
	}
	if (!s->nhist) {
		fprintf(f, "resizes        none recorded\n");
		return;
	}
	int shown = s->nhist < TOOL_HIST_TEXT ? s->nhist : TOOL_HIST_TEXT;
	if (shown < s->nhist)
		fprintf(f, "resizes        last %d of %d kept, newest first "
		           "(all: shmcache resize %s --history)\n",
		        shown, s->nhist, s->info.name);
	else
		fprintf(f, "resizes        last %d, newest first\n", shown);
	for (int i = 0; i < shown; i++) {
		const struct shmc_resize_record *r = &s->hist[i];
		time_t t = (time_t)r->time;
		struct tm tm;
		char ts[32] = "?";
		if (localtime_r(&t, &tm))
			strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(f, "               %s  %s -> %s  %s  pid %d\n", ts,
		        tool_human(r->from, h1, 32), tool_human(r->to, h2, 32),
		        tool_resize_reason(r->reason), r->pid);
	}
}

void tool_snap_json(struct jw *w, const struct tool_snap *s)
{
	const struct shmc_stats *st = &s->st;
	jw_obj(w);
	jw_key(w, "cache");
	jw_str(w, s->info.name);
	jw_key(w, "path");
	jw_str(w, s->info.path);
#define U(field)                                                               \
	do {                                                                   \
		jw_key(w, #field);                                             \
		jw_u64(w, st->field);                                          \
	} while (0)
	U(gets); U(hits); U(misses); U(sets); U(adds); U(add_exists);
	U(deletes); U(evictions); U(expirations); U(copy_forwards);
	U(index_drops); U(ghost_hits); U(set_bytes); U(segments_evicted);
	U(grace_periods); U(stalls); U(items); U(used_bytes);
	U(committed_bytes); U(memory); U(max_memory); U(index_buckets);
	U(segments_total); U(segments_free); U(segments_small);
	U(segments_main); U(segments_open); U(segments_parked);
	U(segments_retired); U(readers); U(processes);
	U(loads); U(load_waits); U(load_wait_ns); U(lease_takeovers);
	U(stale_served);
#undef U
	jw_key(w, "load_wait_mean_ns");
	jw_u64(w, s->load_wait_mean_ns);
	jw_key(w, "segment_size");
	jw_u64(w, s->info.segment_size);
	jw_key(w, "default_ttl");
	jw_u64(w, s->info.default_ttl);
	jw_key(w, "max_value");
	jw_u64(w, s->info.max_value);
	jw_key(w, "created");
	jw_u64(w, s->info.created);
	jw_key(w, "hit_ratio");
	jw_dbl(w, s->hit_ratio);
	jw_key(w, "utilisation");
	jw_dbl(w, s->utilisation);
	jw_key(w, "index_load");
	jw_dbl(w, s->index_load);
	jw_key(w, "data_capacity");
	jw_u64(w, s->data_capacity);
	jw_key(w, "autogrow");
	jw_obj(w);
	jw_key(w, "enabled");
	jw_bool(w, s->ag.step != 0);
	jw_key(w, "step");
	jw_u64(w, s->ag.step);
	jw_key(w, "ceiling");
	jw_u64(w, s->ag_ceiling);
	jw_key(w, "util_pct");
	jw_u64(w, s->ag.util_pct);
	jw_key(w, "window_s");
	jw_u64(w, s->ag.window_s);
	jw_key(w, "ghost_pm");
	jw_u64(w, s->ag.ghost_pm);
	jw_key(w, "mrc_gain_pm");
	jw_u64(w, s->ag.mrc_gain_pm);
	jw_obj_end(w);
	if (s->sync.present) {
		const struct tool_sync *y = &s->sync;
		static const char *const names[TOOL_SYNC_NCTR] = {
		    "invalidations", "keys_deleted", "flushes",
		    "flushed_keys",  "reconnects",   "lag_ns",
		    "probes",        "lag_max_ns"};
		jw_key(w, "sync");
		jw_obj(w);
		jw_key(w, "running");
		jw_bool(w, y->running);
		jw_key(w, "pid");
		jw_i64(w, y->pid);
		jw_key(w, "connected");
		jw_bool(w, y->connected != 0);
		jw_key(w, "redis");
		jw_str(w, y->addr);
		jw_key(w, "nodes");
		jw_u64(w, y->nodes);
		jw_key(w, "nodes_connected");
		jw_u64(w, (uint64_t)__builtin_popcount(y->nodes_up));
		jw_key(w, "nodes_up");
		jw_arr(w);
		for (uint32_t i = 0; i < y->nodes; i++)
			jw_bool(w, y->nodes_up >> i & 1);
		jw_arr_end(w);
		jw_key(w, "started");
		jw_u64(w, y->started);
		for (int i = 0; i < TOOL_SYNC_NCTR; i++) {
			jw_key(w, names[i]);
			jw_u64(w, y->v[i]);
		}
		jw_obj_end(w);
	}
	jw_key(w, "resizes");
	jw_arr(w);
	for (int i = 0; i < s->nhist; i++) {
		const struct shmc_resize_record *r = &s->hist[i];
		jw_obj(w);
		jw_key(w, "time");
		jw_u64(w, r->time);
		jw_key(w, "from");
		jw_u64(w, r->from);
		jw_key(w, "to");
		jw_u64(w, r->to);
		jw_key(w, "reason");
		jw_str(w, tool_resize_reason(r->reason));
		jw_key(w, "pid");
		jw_i64(w, r->pid);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	if (s->mrc_rc == 0) {
		jw_key(w, "mrc");
		jw_obj(w);
		jw_key(w, "rate");
		jw_dbl(w, s->mrc.rate);
		jw_key(w, "sampled_gets");
		jw_u64(w, s->mrc.gets);
		for (int i = 0; i < TOOL_MRC_N; i++) {
			char k[32];
			snprintf(k, sizeof(k), "hit_ratio_%gx",
			         tool_mrc_scales[i]);
			jw_key(w, k);
			jw_dbl(w, s->mrc_hit[i]);
		}
		jw_obj_end(w);
	}
	jw_obj_end(w);
}

static void prom_head(FILE *f, const char *name, const char *type,
                      const char *help)
{
	fprintf(f, "# HELP shmcache_%s %s\n# TYPE shmcache_%s %s\n", name, help,
	        name, type);
}

static void prom_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void prom_u64(FILE *f, const struct tool_snap *s, const char *name,
                     const char *type, const char *help, uint64_t v)
{
	prom_head(f, name, type, help);
	fprintf(f, "shmcache_%s{cache=\"", name);
	prom_label(f, s->info.name);
	fprintf(f, "\"} %llu\n", (unsigned long long)v);
}

static void prom_dbl(FILE *f, const struct tool_snap *s, const char *name,
                     const char *help, double v)
{
	prom_head(f, name, "gauge", help);
	fprintf(f, "shmcache_%s{cache=\"", name);
	prom_label(f, s->info.name);
	fprintf(f, "\"} %.6g\n", v);
}

/* A counter of nanoseconds exposed in seconds, to the nanosecond. */
static void prom_ns(FILE *f, const struct tool_snap *s, const char *name,
                    const char *help, uint64_t ns)
{
	prom_head(f, name, "counter", help);
	fprintf(f, "shmcache_%s{cache=\"", name);
	prom_label(f, s->info.name);
	fprintf(f, "\"} %llu.%09llu\n", (unsigned long long)(ns / 1000000000),
	        (unsigned long long)(ns % 1000000000));
}

void tool_snap_prom(FILE *f, const struct tool_snap *s)
{
	const struct shmc_stats *st = &s->st;
#define C(field, help)                                                         \
	prom_u64(f, s, #field "_total", "counter", help, st->field)
	C(gets, "Lookups (get and get_ref).");
	C(hits, "Lookups that found the key.");
	C(misses, "Lookups that did not find the key.");
	C(sets, "Items stored by set.");
	C(adds, "Items stored by add.");
	C(add_exists, "Adds refused because the key was present.");
	C(deletes, "Keys removed by delete.");
	C(evictions, "Items dropped by eviction.");
	C(expirations, "Expired items found by gets or eviction.");
	C(copy_forwards, "Items kept by eviction (copied forward).");
	C(index_drops, "Items forgotten because an index bucket was full.");
	C(ghost_hits, "Sets of a key recently evicted.");
	C(set_bytes, "Key and value bytes written by set and add.");
	C(segments_evicted, "Log segments evicted.");
	C(grace_periods, "Grace periods waited for.");
	C(stalls, "Writes delayed or refused by a stalled reader.");
	C(loads, "Loader calls made by get-or-load.");
	C(load_waits, "Get-or-load callers that waited for another's load.");
	C(lease_takeovers, "Load leases taken over from a dead or slow "
	                   "loader.");
	C(stale_served, "Values served past their soft TTL while one caller "
	                "refreshed them.");
#undef C
	prom_ns(f, s, "load_wait_seconds_total",
	        "Time get-or-load callers waited for another's load.",
	        st->load_wait_ns);
#define G(field, name, help) prom_u64(f, s, name, "gauge", help, st->field)
	G(items, "items", "Items in the index (approximate).");
	G(used_bytes, "used_bytes", "Bytes of segments holding data.");
	G(committed_bytes, "committed_bytes", "Bytes committed in the file.");
	G(memory, "memory_bytes", "Memory budget in bytes.");
	G(max_memory, "max_memory_bytes", "Reservation: the largest budget.");
	G(index_buckets, "index_buckets", "Index buckets (7 entries each).");
	G(segments_total, "segments", "Log segments committed.");
	G(segments_free, "segments_free", "Log segments free for reuse.");
	G(segments_small, "segments_small", "Log segments in the small FIFO.");
	G(segments_main, "segments_main", "Log segments in the main FIFO.");
	G(segments_open, "segments_open", "Log segments being written.");
	G(segments_parked, "segments_parked",
	  "Log segments partly written, their writer gone.");
	G(segments_retired, "segments_retired",
	  "Log segments evicted, waiting for readers to leave.");
	G(readers, "readers", "Reader slots in use.");
	G(processes, "processes", "Distinct processes attached.");
#undef G
	prom_u64(f, s, "segment_size_bytes", "gauge", "Bytes per log segment.",
	         s->info.segment_size);
	prom_u64(f, s, "data_capacity_bytes", "gauge",
	         "Budget left for data segments.", s->data_capacity);
	prom_dbl(f, s, "hit_ratio", "Hits over lookups since creation (0..1).",
	         s->hit_ratio);
	prom_dbl(f, s, "utilisation_ratio",
	         "Used bytes over data capacity (0..1).", s->utilisation);
	prom_dbl(f, s, "index_load_ratio",
	         "Items over index entries (buckets times 7).", s->index_load);
	prom_u64(f, s, "autogrow_step_bytes", "gauge",
	         "Autogrow step in bytes (0 when autogrow is off).",
	         s->ag.step);
	prom_u64(f, s, "autogrow_ceiling_bytes", "gauge",
	         "Largest budget autogrow may reach.", s->ag_ceiling);
	prom_u64(f, s, "last_resize_timestamp_seconds", "gauge",
	         "Unix time of the newest recorded resize (0 when none).",
	         s->nhist ? s->hist[0].time : 0);
	if (s->mrc_rc == 0) {
		prom_head(f, "mrc_predicted_hit_ratio", "gauge",
		          "Predicted get hit ratio (0..1, LRU) at scale x the budget, "
		          "from the miss-ratio curve.");
		for (int i = 0; i < TOOL_MRC_N; i++) {
			fprintf(f, "shmcache_mrc_predicted_hit_ratio{cache=\"");
			prom_label(f, s->info.name);
			fprintf(f, "\",scale=\"%g\"} %.6g\n", tool_mrc_scales[i],
			        s->mrc_hit[i]);
		}
		prom_dbl(f, s, "mrc_sample_rate",
		         "Fraction of keys the miss-ratio curve samples now.",
		         s->mrc.rate);
		prom_u64(f, s, "mrc_sampled_gets", "gauge",
		         "Gets the miss-ratio curve stands for (estimated).",
		         s->mrc.gets);
	}
	const struct tool_sync *y = &s->sync;
	if (!y->present)
		return;
	prom_u64(f, s, "sync_up", "gauge",
	         "1 while a shmcache sync process runs for this cache.",
	         y->running);
	prom_u64(f, s, "sync_connected", "gauge",
	         "1 while shmcache sync tracks Redis invalidations (on every "
	         "node).",
	         y->connected);
	prom_u64(f, s, "sync_nodes", "gauge",
	         "Redis nodes shmcache sync follows (--redis given).",
	         y->nodes);
	prom_u64(f, s, "sync_nodes_connected", "gauge",
	         "Redis nodes whose invalidations shmcache sync tracks now.",
	         (uint64_t)__builtin_popcount(y->nodes_up));
	prom_u64(f, s, "sync_invalidations_total", "counter",
	         "Invalidation messages received from Redis.",
	         y->v[TOOL_SYNC_INVALIDATIONS]);
	prom_u64(f, s, "sync_keys_deleted_total", "counter",
	         "Keys removed from the cache by invalidations.",
	         y->v[TOOL_SYNC_KEYS_DELETED]);
	prom_u64(f, s, "sync_flushes_total", "counter",
	         "Flushes of the tracked prefixes (start, lost connection, "
	         "FLUSHALL).",
	         y->v[TOOL_SYNC_FLUSHES]);
	prom_u64(f, s, "sync_flushed_keys_total", "counter",
	         "Keys removed from the cache by flushes.",
	         y->v[TOOL_SYNC_FLUSHED_KEYS]);
	prom_u64(f, s, "sync_reconnects_total", "counter",
	         "Connections to Redis made again after a loss.",
	         y->v[TOOL_SYNC_RECONNECTS]);
	prom_dbl(f, s, "sync_lag_seconds",
	         "Last probe: from its SET to its invalidation being applied.",
	         (double)y->v[TOOL_SYNC_LAG_NS] / 1e9);
}
