/*
 * sim.c - exact object-counting simulators of S3-FIFO, LRU and Belady, the
 * oracleGeneral trace reader, the next-access backward pass and Che's
 * approximation.  What the real cache is measured against (issue 11).
 *
 * WHAT "EXACT" MEANS HERE
 * Each simulator is meant to make, request by request, the same hit or
 * miss as the libCacheSim simulator of the same name with sizes ignored
 * (every object counts 1, cache size in objects), because libCacheSim is
 * where the reference figures in ../shared/traces/README.md and in issue 11
 * come from.  The code was written from libCacheSim's sources (repository
 * 1a1a11a/libCacheSim, commit aa0fc40, files
 * libCacheSim/cache/eviction/{S3FIFO,LRU,Belady}.c and cache/cache.c's
 * cache_get_base), not copied; `shmcache-bench sim` on the CloudPhysics
 * sample reproduces that README's LRU, S3-FIFO and Belady columns (see
 * bench/README.md, "Eviction quality").
 *
 * S3-FIFO
 * Yang, Zhang, Qiu, Yue, Vinayak, "FIFO queues are all you need for cache
 * eviction", SOSP 2023.  Three FIFO queues:
 *   small   floor(0.1 * C) objects; new objects enter here;
 *   main    C - small objects;
 *   ghost   floor(0.9 * C) ids (no data) of objects evicted from small.
 * A hit adds 1 to the object's counter (in small or main).  A miss that
 * finds the id in the ghost removes it there and inserts the object into
 * main, else into small; either way with counter 0.  Before inserting, while
 * small + main + 1 > C, evict once:
 *   if main holds more than its share, or small is empty: from main's
 *     tail: an object with counter >= 1 goes back to main's head with
 *     counter min(counter, 3) - 1 (a 2-bit CLOCK), else it leaves and
 *     the step is done;
 *   else from small's tail: an object with counter >= 2 (libCacheSim's
 *     move-to-main-threshold; hit at least twice while in small) moves
 *     to main's head with counter 0 and the loop goes on; else its id goes
 *     to the ghost's head (the ghost's tail dropped when the ghost is
 *     full) and the step is done.
 * These are libCacheSim's defaults ("fifo-size-ratio=0.10,
 * ghost-size-ratio=0.90, move-to-main-threshold=2").  Their consequences,
 * kept on purpose: with C < 10 small has no room and nothing is ever
 * admitted (libCacheSim's can_insert refuses objects larger than small);
 * a move from small to main may leave main over its share for a while.
 * An id is never in two queues: it enters the ghost only when it leaves
 * small, and leaves the ghost when it is requested.
 *
 * LRU
 * A list, hit -> head, miss -> head after evicting the tail when full.
 *
 * BELADY
 * Belady, "A study of replacement algorithms for a virtual-storage
 * computer", IBM Systems Journal 5(2), 1966.  As libCacheSim does it:
 * every miss is admitted, and when full the cached object whose next
 * request is farthest (never again counts as infinitely far) is evicted
 * before the insertion, so the newcomer is never the victim.  (A MIN that
 * may refuse the newcomer does a little better; the reference numbers are
 * for this one.)  A max-heap on the next-access field, with each object's
 * heap position kept for the update on a hit.
 *
 * DATA STRUCTURES
 * One node per object (or ghost id) in a pool sized for C + ghost; queues
 * are doubly linked lists of node indices; an open-addressing table (linear
 * probing, backward-shift deletion, at most half full) maps id -> node.
 * Every operation is O(1) except Belady's O(log C): 8-26 M requests/s on
 * this machine (CloudPhysics sample and the Zipf traces, 100 to 10,000
 * objects).
 *
 * CHE'S APPROXIMATION
 * Che, Tung, Wang, "Hierarchical Web caching systems: modeling, design and
 * experimental results", IEEE JSAC 20(7), 2002; why it is accurate:
 * Fricker, Robert, Roberts, "A versatile and accurate approximation for LRU
 * cache performance", ITC 2012.  Under independent requests with
 * probabilities p_i, an LRU cache of C objects keeps an object about T
 * requests after its last use, where sum_i (1 - exp(-p_i T)) = C; the hit
 * ratio is sum_i p_i (1 - exp(-p_i T)).  T is found by bisection.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"

#define NIL UINT32_MAX

enum { Q_NONE, Q_SMALL, Q_MAIN, Q_GHOST, Q_LRU, Q_NQ };

struct node {
	uint64_t id;
	uint32_t prev, next; /* towards the tail, towards the head */
	uint32_t heap;       /* Belady: position in the heap */
	uint8_t q;
	uint8_t freq;
	int64_t next_access; /* Belady */
};

struct list {
	uint32_t head, tail, n;
};

struct sim {
	enum sim_policy policy;
	uint64_t cap, small_cap, main_cap, ghost_cap;
	struct node *nodes;
	uint32_t nnodes, free_head;
	struct list q[Q_NQ];
	/* id -> node table */
	uint64_t *keys;
	uint32_t *vals;
	uint64_t mask;
	/* Belady */
	uint32_t *heap;
	uint32_t nheap;
};

/* ---- id -> node ------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint32_t map_get(const struct sim *s, uint64_t id)
{
	for (uint64_t i = mix(id) & s->mask;; i = (i + 1) & s->mask) {
		if (s->vals[i] == NIL)
			return NIL;
		if (s->keys[i] == id)
			return s->vals[i];
	}
}

static void map_put(struct sim *s, uint64_t id, uint32_t v)
{
	uint64_t i = mix(id) & s->mask;
	while (s->vals[i] != NIL)
		i = (i + 1) & s->mask;
	s->keys[i] = id;
	s->vals[i] = v;
}

/* Deletes id (present) and shifts later entries of its run back. */
static void map_del(struct sim *s, uint64_t id)
{
	uint64_t i = mix(id) & s->mask;
	while (s->keys[i] != id || s->vals[i] == NIL)
		i = (i + 1) & s->mask;
	for (uint64_t j = (i + 1) & s->mask;; j = (j + 1) & s->mask) {
		if (s->vals[j] == NIL)
			break;
		uint64_t home = mix(s->keys[j]) & s->mask;
		/* j's entry may move to i if home is not in (i, j]. */
		if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
			s->keys[i] = s->keys[j];
			s->vals[i] = s->vals[j];
			i = j;
		}
	}
	s->vals[i] = NIL;
}

/* ---- lists ------------------------------------------------------------ */

static void list_push_head(struct sim *s, int q, uint32_t x)
{
	struct list *l = &s->q[q];
	struct node *n = &s->nodes[x];
	n->q = (uint8_t)q;
	n->next = NIL;
	n->prev = l->head;
	if (l->head != NIL)
		s->nodes[l->head].next = x;
	else
		l->tail = x;
	l->head = x;
	l->n++;
}

static void list_unlink(struct sim *s, uint32_t x)
{
	struct node *n = &s->nodes[x];
	struct list *l = &s->q[n->q];
	if (n->prev != NIL)
		s->nodes[n->prev].next = n->next;
	else
		l->tail = n->next;
	if (n->next != NIL)
		s->nodes[n->next].prev = n->prev;
	else
		l->head = n->prev;
	l->n--;
	n->q = Q_NONE;
}

static uint32_t node_new(struct sim *s, uint64_t id)
{
	uint32_t x = s->free_head;
	s->free_head = s->nodes[x].next;
	memset(&s->nodes[x], 0, sizeof(s->nodes[x]));
	s->nodes[x].id = id;
	map_put(s, id, x);
	return x;
}

static void node_drop(struct sim *s, uint32_t x)
{
	map_del(s, s->nodes[x].id);
	s->nodes[x].next = s->free_head;
	s->free_head = x;
}

/* ---- Belady's heap (largest next access on top) ------------------------ */

static void heap_set(struct sim *s, uint32_t pos, uint32_t x)
{
	s->heap[pos] = x;
	s->nodes[x].heap = pos;
}

static void heap_up(struct sim *s, uint32_t pos)
{
	uint32_t x = s->heap[pos];
	int64_t k = s->nodes[x].next_access;
	while (pos > 0) {
		uint32_t p = (pos - 1) / 2;
		if (s->nodes[s->heap[p]].next_access >= k)
			break;
		heap_set(s, pos, s->heap[p]);
		pos = p;
	}
	heap_set(s, pos, x);
}

static void heap_down(struct sim *s, uint32_t pos)
{
	uint32_t x = s->heap[pos];
	int64_t k = s->nodes[x].next_access;
	for (;;) {
		uint32_t c = 2 * pos + 1;
		if (c >= s->nheap)
			break;
		if (c + 1 < s->nheap && s->nodes[s->heap[c + 1]].next_access >
		                            s->nodes[s->heap[c]].next_access)
			c++;
		if (s->nodes[s->heap[c]].next_access <= k)
			break;
		heap_set(s, pos, s->heap[c]);
		pos = c;
	}
	heap_set(s, pos, x);
}

/* ---- the policies ------------------------------------------------------ */

static bool lru_access(struct sim *s, uint64_t id)
{
	uint32_t x = map_get(s, id);
	if (x != NIL) {
		list_unlink(s, x);
		list_push_head(s, Q_LRU, x);
		return true;
	}
	if (s->q[Q_LRU].n >= s->cap) {
		uint32_t v = s->q[Q_LRU].tail;
		list_unlink(s, v);
		node_drop(s, v);
	}
	list_push_head(s, Q_LRU, node_new(s, id));
	return false;
}

static void s3_ghost_add(struct sim *s, uint64_t id)
{
	if (!s->ghost_cap)
		return;
	if (s->q[Q_GHOST].n >= s->ghost_cap) {
		uint32_t v = s->q[Q_GHOST].tail;
		list_unlink(s, v);
		node_drop(s, v);
	}
	list_push_head(s, Q_GHOST, node_new(s, id));
}

/* One eviction step (libCacheSim's S3FIFO_evict). */
static void s3_evict(struct sim *s)
{
	if (s->q[Q_MAIN].n > s->main_cap || s->q[Q_SMALL].n == 0) {
		while (s->q[Q_MAIN].n) {
			uint32_t v = s->q[Q_MAIN].tail;
			struct node *n = &s->nodes[v];
			list_unlink(s, v);
			if (n->freq >= 1) {
				n->freq = (uint8_t)((n->freq < 3 ? n->freq : 3) - 1);
				list_push_head(s, Q_MAIN, v);
			} else {
				node_drop(s, v);
				return;
			}
		}
		return;
	}
	while (s->q[Q_SMALL].n) {
		uint32_t v = s->q[Q_SMALL].tail;
		struct node *n = &s->nodes[v];
		list_unlink(s, v);
		if (n->freq >= 2) {
			n->freq = 0;
			list_push_head(s, Q_MAIN, v);
		} else {
			uint64_t id = n->id;
			node_drop(s, v);
			s3_ghost_add(s, id);
			return;
		}
	}
}

static bool s3_access(struct sim *s, uint64_t id)
{
	uint32_t x = map_get(s, id);
	bool ghost = false;
	if (x != NIL) {
		struct node *n = &s->nodes[x];
		if (n->q != Q_GHOST) {
			if (n->freq < 3) /* only 0, 1, 2, >= 3 are told apart */
				n->freq++;
			return true;
		}
		list_unlink(s, x);
		node_drop(s, x);
		ghost = true;
	}
	if (s->small_cap == 0) /* libCacheSim: larger than small, refused */
		return false;
	while (s->q[Q_SMALL].n + s->q[Q_MAIN].n + 1 > s->cap)
		s3_evict(s);
	list_push_head(s, ghost ? Q_MAIN : Q_SMALL, node_new(s, id));
	return false;
}

static bool belady_access(struct sim *s, uint64_t id, int64_t next)
{
	int64_t k = next < 0 ? INT64_MAX : next;
	uint32_t x = map_get(s, id);
	if (x != NIL) {
		s->nodes[x].next_access = k;
		heap_up(s, s->nodes[x].heap);
		heap_down(s, s->nodes[x].heap);
		return true;
	}
	if (s->nheap >= s->cap) {
		uint32_t v = s->heap[0];
		s->nheap--;
		if (s->nheap) {
			heap_set(s, 0, s->heap[s->nheap]);
			heap_down(s, 0);
		}
		node_drop(s, v);
	}
	x = node_new(s, id);
	s->nodes[x].next_access = k;
	heap_set(s, s->nheap++, x);
	heap_up(s, s->nheap - 1);
	return false;
}

bool sim_access(struct sim *s, uint64_t id, int64_t next)
{
	switch (s->policy) {
	case SIM_LRU:
		return lru_access(s, id);
	case SIM_S3FIFO:
		return s3_access(s, id);
	case SIM_BELADY:
		return belady_access(s, id, next);
	}
	return false;
}

uint64_t sim_objects(const struct sim *s)
{
	switch (s->policy) {
	case SIM_LRU:
		return s->q[Q_LRU].n;
	case SIM_S3FIFO:
		return (uint64_t)s->q[Q_SMALL].n + s->q[Q_MAIN].n;
	case SIM_BELADY:
		return s->nheap;
	}
	return 0;
}

struct sim *sim_new(enum sim_policy p, uint64_t objects)
{
	if (!objects || objects > (1u << 30))
		return NULL;
	struct sim *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->policy = p;
	s->cap = objects;
	if (p == SIM_S3FIFO) {
		/* libCacheSim: (int64_t)(size * ratio), truncation */
		s->small_cap = (uint64_t)((double)objects * 0.10);
		s->main_cap = objects - s->small_cap;
		s->ghost_cap = (uint64_t)((double)objects * 0.90);
	}
	/* +1: S3-FIFO inserts into the ghost after a node left small */
	uint64_t nn = objects + s->ghost_cap + 2;
	uint64_t slots = 16;
	while (slots < 2 * nn)
		slots <<= 1;
	s->mask = slots - 1;
	s->nnodes = (uint32_t)nn;
	s->nodes = calloc(nn, sizeof(*s->nodes));
	s->keys = calloc(slots, sizeof(*s->keys));
	s->vals = malloc(slots * sizeof(*s->vals));
	if (p == SIM_BELADY)
		s->heap = calloc(objects, sizeof(*s->heap));
	if (!s->nodes || !s->keys || !s->vals ||
	    (p == SIM_BELADY && !s->heap)) {
		sim_free(s);
		return NULL;
	}
	memset(s->vals, 0xff, slots * sizeof(*s->vals));
	for (uint32_t i = 0; i < nn; i++)
		s->nodes[i].next = i + 1 < nn ? i + 1 : NIL;
	s->free_head = 0;
	for (int q = 0; q < Q_NQ; q++)
		s->q[q] = (struct list){NIL, NIL, 0};
	return s;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	free(s->nodes);
	free(s->keys);
	free(s->vals);
	free(s->heap);
	free(s);
}

int sim_policy_parse(const char *name, enum sim_policy *out)
{
	if (strcmp(name, "lru") == 0)
		*out = SIM_LRU;
	else if (strcmp(name, "s3fifo") == 0)
		*out = SIM_S3FIFO;
	else if (strcmp(name, "belady") == 0)
		*out = SIM_BELADY;
	else
		return -1;
	return 0;
}

const char *sim_policy_name(enum sim_policy p)
{
	return p == SIM_LRU ? "lru" : p == SIM_S3FIFO ? "s3fifo" : "belady";
}

/* ---- traces ------------------------------------------------------------ */

const struct og_req *trace_map(const char *path, uint64_t *n)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if (sb.st_size <= 0 || sb.st_size % (off_t)sizeof(struct og_req)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED) {
		errno = e;
		return NULL;
	}
	*n = (uint64_t)sb.st_size / sizeof(struct og_req);
	return p;
}

void trace_unmap(const struct og_req *r, uint64_t n)
{
	munmap((void *)(uintptr_t)r, n * sizeof(*r));
}

uint64_t trace_fill_next(struct og_req *r, uint64_t n)
{
	/* id -> index of its latest request seen so far, walking backwards */
	uint64_t slots = 16;
	while (slots < 2 * n)
		slots <<= 1;
	uint64_t mask = slots - 1, distinct = 0;
	uint64_t *keys = malloc(slots * sizeof(*keys));
	int64_t *at = malloc(slots * sizeof(*at));
	if (!keys || !at) {
		free(keys);
		free(at);
		return 0;
	}
	memset(at, 0xff, slots * sizeof(*at)); /* -1: empty */
	for (uint64_t i = n; i-- > 0;) {
		uint64_t h = mix(r[i].id) & mask;
		while (at[h] >= 0 && keys[h] != r[i].id)
			h = (h + 1) & mask;
		if (at[h] >= 0) {
			r[i].next = at[h] + 1; /* 1-based */
		} else {
			r[i].next = -1;
			keys[h] = r[i].id;
			distinct++;
		}
		at[h] = (int64_t)i;
	}
	free(keys);
	free(at);
	return distinct;
}

/* ---- Che's approximation ----------------------------------------------- */

double che_lru_miss_ratio(uint64_t n, double alpha, uint64_t c)
{
	if (c >= n)
		return 0;
	double *p = malloc(n * sizeof(*p)), z = 0;
	if (!p)
		return NAN;
	for (uint64_t i = n; i >= 1; i--) /* small terms first */
		z += (p[i - 1] = pow((double)i, -alpha));
	for (uint64_t i = 0; i < n; i++)
		p[i] /= z;
	double lo = 0, hi = 1;
	for (;;) { /* grow hi until it holds more than c objects */
		double occ = 0;
		for (uint64_t i = 0; i < n; i++)
			occ += -expm1(-p[i] * hi);
		if (occ > (double)c)
			break;
		lo = hi;
		hi *= 2;
	}
	for (int it = 0; it < 100; it++) {
		double t = (lo + hi) / 2, occ = 0;
		for (uint64_t i = 0; i < n; i++)
			occ += -expm1(-p[i] * t);
		if (occ > (double)c)
			hi = t;
		else
			lo = t;
	}
	double t = (lo + hi) / 2, hit = 0;
	for (uint64_t i = 0; i < n; i++)
		hit += p[i] * -expm1(-p[i] * t);
	free(p);
	return 1 - hit;
}
