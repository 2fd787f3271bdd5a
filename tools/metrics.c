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
 * Counters are read without locks (see shmc_stats) and may be a few
 * operations behind; two readings are never mixed in one rendering.
 *
 * PROMETHEUS
 * Text exposition format 0.0.4: every family has HELP and TYPE lines,
 * counters end in _total, every sample has a cache="NAME" label (names
 * are [A-Za-z0-9._-], escaped anyway), units are base units (bytes,
 * ratios 0..1).
 */
#include <string.h>

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
	return 0;
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
	fprintf(f, "segments       %u total, %u free, %u small, %u main "
	           "(%s each)\n",
	        st->segments_total, st->segments_free, st->segments_small,
	        st->segments_main, tool_human(s->info.segment_size, h1, 32));
	fprintf(f, "stalls         %llu (grace periods %llu)\n",
	        (unsigned long long)st->stalls,
	        (unsigned long long)st->grace_periods);
	fprintf(f, "readers        %u slots in use\n", st->readers);
	fprintf(f, "processes      %u attached\n", st->processes);
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
	U(segments_main); U(readers); U(processes);
#undef U
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
#undef C
#define G(field, name, help) prom_u64(f, s, name, "gauge", help, st->field)
	G(items, "items", "Items in the index (approximate).");
	G(used_bytes, "used_bytes", "Bytes of segments holding data.");
	G(committed_bytes, "committed_bytes", "Bytes committed in the file.");
	G(memory, "memory_bytes", "Memory budget in bytes.");
	G(max_memory, "max_memory_bytes", "Reservation: the largest budget.");
	G(index_buckets, "index_buckets", "Index buckets (7 entries each).");
	G(segments_total, "segments", "Log segments committed.");
	G(segments_free, "segments_free", "Log segments free for reuse.");
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
}
