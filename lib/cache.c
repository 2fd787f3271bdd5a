/*
 * cache.c - the public API: handles, per-thread slots, get/set/add/delete,
 * read sections, stats.
 *
 * THE DATA PATH
 *   get:  hash -> enter read section (one store to our slot, no fence with
 *         membarrier) -> one bucket line -> one item -> copy -> leave.
 *   set:  hash -> append the item to our own open segment (no lock) ->
 *         bucket lock -> one release store of the entry -> unlock.
 * Neither makes a system call in steady state: thread state comes from a
 * TLS cache, the clock from CLOCK_REALTIME_COARSE (vDSO), and only taking
 * a new segment (every segment_size bytes written) takes log_lock.
 *
 * THREADS AND FORK
 * A thread's first call on a handle claims a reader slot and remembers it
 * in a pthread key (released by the key's destructor at thread exit) and
 * in a one-entry TLS cache.  After fork() the child's TLS still names the
 * parent's slots; a fork generation bumped by pthread_atfork makes the
 * child claim its own on first use, so an inherited handle just works.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <unistd.h>

#include "internal.h"

uint64_t shmc__fork_gen = 1;
__thread struct shmc__tls shmc__tls SHMC__TLS_IE;
static uint64_t next_handle_id;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	shmc__fork_gen++;
}

static void lib_init(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

void shmc__assert_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "shmcache: assertion failed: %s (%s:%d)\n", what, file,
	        line);
	abort();
}

static uint64_t real_clock(void *arg)
{
	(void)arg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts); /* vDSO, ~ns */
	return (uint64_t)ts.tv_sec;
}

uint32_t shmc__now(struct shmc *c)
{
	return (uint32_t)c->clock(c->clock_arg);
}

static void thr_release(struct shmc *c, struct shmc__thr *t)
{
	if (t->items_local)
		uatomic_add(&c->map.hdr->items_approx, (int64_t)t->items_local);
	if (shmc__load(&t->s->open_seg, __ATOMIC_RELAXED) &&
	    shmc__log_lock(c) == 0) {
		shmc__log_close_own(c, t);
		shmc__log_unlock(c);
	}
	shmc__slot_release(&c->map, t->slot);
	pthread_mutex_lock(&c->thr_lock);
	cds_list_del(&t->node);
	pthread_mutex_unlock(&c->thr_lock);
	if (shmc__tls.t == t)
		memset(&shmc__tls, 0, sizeof(shmc__tls));
	free(t);
}

/* pthread key destructor: the thread is exiting. */
static void thr_exit(void *p)
{
	struct shmc__thr *t = p;
	if (t->fork_gen != shmc__fork_gen)
		return; /* the parent's, copied by fork: not ours to free */
	thr_release(t->c, t);
}

struct shmc__thr *shmc__thr_slow(struct shmc *c, int *err)
{
	struct shmc__thr *t = pthread_getspecific(c->key);
	if (!t || t->fork_gen != shmc__fork_gen) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			*err = -ENOMEM;
			return NULL;
		}
		int rc = shmc__slot_claim(&c->map, &t->slot, shmc__dead_slot, c);
		if (rc) {
			free(t);
			*err = rc;
			return NULL;
		}
		t->c = c;
		t->s = shmc__slot_at(&c->map, t->slot);
		/* A previous owner that died with an open segment (and whose
		 * reclaim found log_lock busy) left it named here: never go
		 * on in it, detach it (log.c) before the first append. */
		if (shmc__load(&t->s->open_seg, __ATOMIC_RELAXED) &&
		    shmc__log_lock(c) == 0) {
			shmc__log_seal_open(c, t->slot);
			shmc__log_unlock(c);
		}
		shmc__store(&t->s->open_seg, 0, __ATOMIC_RELAXED);
		t->c = c; /* for shmc__ix_recover, before the TLS names it */
		shmc__ix_recover(c, t);
		/* A previous owner that died loading left lease_seq odd: end
		 * that lease for anyone still waiting on it. */
		if (t->s->lease_seq & 1u) {
			/* "No result": its waiters look again and take the
			 * orphaned lease over.  Release orders the rc first. */
			shmc__store(&t->s->lease_rc, 0, __ATOMIC_RELAXED);
			shmc__store(&t->s->lease_seq, t->s->lease_seq + 1,
			            __ATOMIC_RELEASE);
		}
		t->fork_gen = shmc__fork_gen;
		t->tid = gettid();
		pthread_setspecific(c->key, t);
		pthread_mutex_lock(&c->thr_lock);
		cds_list_add(&t->node, &c->thrs);
		pthread_mutex_unlock(&c->thr_lock);
	}
	shmc__tls = (struct shmc__tls){c, c->id, shmc__fork_gen, t};
	return t;
}

static int handle_new(struct shmc__map *m, shmc_t **out)
{
	struct shmc *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->map = *m;
	struct shmc__hdr *h = m->hdr;
	c->index = m->base + h->index_off;
	c->ghost = (uint32_t *)(m->base + h->ghost_off);
	c->granule = shmc__granule(h->flags);
	c->dir = (uint64_t *)(m->base + shmc__dir_off(h->ghost_off,
	                                              h->index_max_buckets,
	                                              c->granule));
	c->data = m->base + h->data_off;
	c->index_max_mask = h->index_max_buckets - 1;
	c->pool_max = h->index_max_buckets / 8 > SHMC__POOL_MAX
	                  ? SHMC__POOL_MAX
	                  : (uint32_t)(h->index_max_buckets / 8);
	c->seg_size = h->seg_size;
	c->seg_shift = (uint32_t)__builtin_ctz(h->seg_size);
	c->nseg_max = h->nseg_max;
	c->data_size = (uint64_t)h->nseg_max << c->seg_shift;
	c->max_readers = m->max_readers;
	if (h->mrc_keys) {
		c->mrc = (struct shmc__mrc *)(m->base +
		                              shmc__mrc_off(m->slots_off,
		                                            m->max_readers));
		c->mrc_keys = h->mrc_keys;
	}
	c->clock = real_clock;
	CDS_INIT_LIST_HEAD(&c->thrs);
	int rc = shmc__mb_attach(m, &c->mb_fast);
	if (rc) {
		free(c);
		return rc;
	}
	pthread_mutex_init(&c->thr_lock, NULL);
	rc = pthread_key_create(&c->key, thr_exit);
	if (rc) {
		free(c);
		return -rc;
	}
	c->id = uatomic_add_return(&next_handle_id, 1);
	*out = c;
	return 0;
}

void shmc_create_opts_init(struct shmc_create_opts *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->memory = 64ull << 20;
	o->segment_size = SHMC_SEGMENT_DEFAULT;
	o->mode = 0600;
	o->max_readers = 1024;
}

int shmc_create(const char *name, const struct shmc_create_opts *opts,
                shmc_t **out)
{
	struct shmc_create_opts def;
	if (!out)
		return -EINVAL;
	if (!opts) {
		shmc_create_opts_init(&def);
		opts = &def;
	}
	int rc = shmc__name_ok(name);
	if (rc)
		return rc;
	if (opts->default_ttl > SHMC__TTL_MAX || (opts->mode & ~07777u) ||
	    opts->numa < SHMC_NUMA_DEFAULT || opts->numa > SHMC_NUMA_LOCAL ||
	    (opts->flags & ~(SHMC_CREATE_HUGE | SHMC_CREATE_MRC)))
		return -EINVAL;
	uint32_t mrc_keys = 0;
	if (opts->flags & SHMC_CREATE_MRC)
		mrc_keys = opts->mrc_keys ? opts->mrc_keys : 8192;
	pthread_once(&lib_once, lib_init);
	struct shmc__geom g;
	rc = shmc__geometry(opts->memory, opts->max_memory, opts->segment_size,
	                    opts->max_readers, opts->index_buckets,
	                    (opts->flags & SHMC_CREATE_HUGE) ? SHMC__F_HUGE : 0,
	                    mrc_keys, &g);
	if (rc)
		return rc;
	g.default_ttl = opts->default_ttl;
	g.mrc_sample = opts->mrc_sample;
	struct shmc__map m = {.fd = -1};
	rc = shmc__seg_create(name, &g, opts->mode, opts->gid, opts->numa,
	                      opts->numa_node, &m);
	if (rc)
		return rc;
	rc = handle_new(&m, out);
	if (rc) {
		/* Nothing left behind: the file was already linked in. */
		shmc__seg_close(&m);
		shmc_destroy(name);
		return rc;
	}
	/* Stock the index's overflow pool, then give the slot this took
	 * back: creating a cache is not attaching to it. */
	int trc = 0;
	struct shmc__thr *t = shmc__thr_get(*out, &trc);
	if (t) {
		shmc__ix_prepare(*out, t);
		pthread_setspecific((*out)->key, NULL);
		thr_release(*out, t);
	}
	if (opts->autogrow.step) {
		rc = shmc_set_autogrow(*out, &opts->autogrow);
		if (rc) {
			shmc_close(*out);
			*out = NULL;
			shmc_destroy(name);
		}
	}
	return rc;
}

int shmc_open(const char *name, unsigned flags, shmc_t **out)
{
	if (!out || (flags & ~SHMC_OPEN_ANY_OWNER))
		return -EINVAL;
	pthread_once(&lib_once, lib_init);
	struct shmc__map m = {.fd = -1};
	int rc = shmc__seg_open(name, flags, &m);
	if (rc)
		return rc;
	rc = handle_new(&m, out);
	if (rc) {
		shmc__seg_close(&m);
		return rc;
	}
	/* A resize whose process died is finished by the next one in. */
	shmc__resize_resume(*out);
	/* And a split or merge that died half-way is tidied now. */
	shmc__ix_recover_open(*out);
	return 0;
}

int shmc_close(shmc_t *c)
{
	if (!c)
		return 0;
	/* No destructor may run for this handle after this point. */
	pthread_key_delete(c->key);
	pid_t me = gettid();
	bool others = false;
	struct shmc__thr *t, *tmp;
	cds_list_for_each_entry_safe(t, tmp, &c->thrs, node) {
		if (t->fork_gen != shmc__fork_gen) {
			cds_list_del(&t->node); /* the parent's, via fork */
			free(t);
		} else if (t->tid == me) {
			thr_release(c, t);
		} else {
			/* Another live thread owns this slot's mutex; only it
			 * can unlock it.  Give back its segment now; the slot
			 * is reclaimed when that thread exits. */
			if (shmc__log_lock(c) == 0) {
				shmc__log_seal_open(c, t->slot);
				shmc__log_unlock(c);
			}
			cds_list_del(&t->node);
			free(t);
			others = true;
		}
	}
	if (shmc__tls.c == c)
		memset(&shmc__tls, 0, sizeof(shmc__tls));
	/* Unmapping under a robust mutex still held by a live thread would
	 * break that thread's robust list; keep the mapping then. */
	if (!others)
		shmc__seg_close(&c->map);
	pthread_mutex_destroy(&c->thr_lock);
	free(c);
	return 0;
}

int shmc_destroy(const char *name)
{
	char path[4096];
	int rc = shmc__path(name, path, sizeof(path));
	if (rc)
		return rc;
	return shmc__sys.unlink(path) == 0 ? 0 : -errno;
}

static inline int check_key(const void *key, size_t klen)
{
	if (SHMC__UNLIKELY(!key))
		return -EINVAL;
	if (SHMC__UNLIKELY(klen == 0 || klen > SHMC_KEY_MAX))
		return SHMC_EKEYLEN;
	return 0;
}

/*
 * Inside a read section: the live, unexpired data item for key (a value,
 * or a cached "not found"), or NULL.  A hit sets the S3-FIFO frequency.
 */
const struct shmc__item *shmc__lookup(struct shmc *c, struct shmc__thr *t,
                                      uint64_t h, const void *key,
                                      size_t klen)
{
	struct shmc__bucket *bk;
	uint64_t e;
	int i;
	if (!shmc__ix_find(c, h, key, klen, false, &bk, &i, &e))
		return NULL;
	const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
	if (it->expiry && shmc__expired(it, shmc__now(c))) {
		shmc__ctr_add(t, SHMC__C_EXPIRATIONS, 1);
		return NULL;
	}
	/* Bump the frequency unless saturated (so hot keys stop dirtying
	 * their line).  A failed CAS means a writer changed the entry; the
	 * bump is a hint, drop it. */
	if (shmc__e_freq(e) < SHMC__E_FREQ_MAX)
		uatomic_cmpxchg(&bk->e[i], e, e + SHMC__E_FREQ_ONE);
	return it;
}

/* shmc__lookup for the plain API: a cached "not found" is a miss. */
static inline const struct shmc__item *lookup_hashed(struct shmc *c,
                                                     struct shmc__thr *t,
                                                     uint64_t h,
                                                     const void *key,
                                                     size_t klen)
{
	const struct shmc__item *it = shmc__lookup(c, t, h, key, klen);
	if (it && (it->vword & SHMC__V_NEG))
		it = NULL;
	shmc__mrc_get(c, h, it);
	shmc__ctr_add(t, it ? SHMC__C_HITS : SHMC__C_MISSES, 1);
	return it;
}

static inline const struct shmc__item *lookup(struct shmc *c,
                                              struct shmc__thr *t,
                                              const void *key, size_t klen)
{
	return lookup_hashed(c, t, shmc__hash(key, klen), key, klen);
}

int shmc__copy_out(const struct shmc__item *it, void *buf, size_t *vlen,
                   uint32_t *flags)
{
	if (!it)
		return SHMC_ENOTFOUND;
	uint32_t n = shmc__uvlen(it);
	if (n > *vlen) {
		*vlen = n;
		return SHMC_EBUFSIZE;
	}
	if (n)
		memcpy(buf, shmc__uval(it), n); /* buf may be NULL when n is 0 */
	*vlen = n;
	if (flags)
		*flags = it->flags;
	return 0;
}

int shmc_get(shmc_t *c, const void *key, size_t klen, void *buf,
             size_t *vlen, uint32_t *flags)
{
	int rc = check_key(key, klen);
	if (SHMC__UNLIKELY(!c || !vlen || (!buf && *vlen)))
		return -EINVAL;
	if (SHMC__UNLIKELY(rc))
		return rc;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (SHMC__UNLIKELY(!t))
		return rc;
	shmc__section_enter(c, t);
	rc = shmc__copy_out(lookup(c, t, key, klen), buf, vlen, flags);
	shmc__section_exit(t);
	return rc;
}

#define MGET_BATCH 16

int shmc_mget(shmc_t *c, struct shmc_mget_item *items, size_t n)
{
	int rc = 0, hits = 0;
	if (!c || (!items && n))
		return -EINVAL;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	struct shmc__hdr *h = c->map.hdr;
	uint64_t hash[MGET_BATCH];
	shmc__section_enter(c, t);
	for (size_t base = 0; base < n; base += MGET_BATCH) {
		size_t m = n - base < MGET_BATCH ? n - base : MGET_BATCH;
		struct shmc__bucket *bk[MGET_BATCH];
		uint64_t g = shmc__load(&h->index_geom, __ATOMIC_ACQUIRE);
		/* 1. hash every key and start loading its bucket */
		for (size_t i = 0; i < m; i++) {
			struct shmc_mget_item *q = &items[base + i];
			bk[i] = NULL;
			if (!q->key || q->klen == 0 || q->klen > SHMC_KEY_MAX ||
			    (!q->buf && q->vlen))
				continue;
			hash[i] = shmc__hash(q->key, q->klen);
			bk[i] = shmc__bucket_at(c, shmc__geom_bucket(c, g, hash[i]));
			__builtin_prefetch(bk[i], 0, 3);
		}
		/* 2. start loading the items whose tags match (a hint only:
		 *    the lookup below reads everything again, properly) */
		for (size_t i = 0; i < m; i++) {
			if (!bk[i])
				continue;
			uint16_t tag = shmc__tag(hash[i]);
			for (unsigned w = 0; w < SHMC__BUCKET_WAYS; w++) {
				uint64_t e = shmc__load(&bk[i]->e[w],
				                        __ATOMIC_RELAXED);
				if (e && shmc__e_tag(e) == tag &&
				    (shmc__e_loc(e) << 3) < c->data_size)
					__builtin_prefetch(
					    c->data + (shmc__e_loc(e) << 3), 0, 3);
			}
		}
		/* 3. the real lookups, now mostly from cache */
		for (size_t i = 0; i < m; i++) {
			struct shmc_mget_item *q = &items[base + i];
			if (!bk[i]) {
				q->rc = !q->key || (!q->buf && q->vlen)
				            ? -EINVAL
				            : SHMC_EKEYLEN;
				continue;
			}
			q->rc = shmc__copy_out(lookup_hashed(c, t, hash[i], q->key,
			                               q->klen),
			                 q->buf, &q->vlen, &q->flags);
			hits += q->rc == 0;
		}
	}
	shmc__section_exit(t);
	return hits;
}

int shmc_ttl(shmc_t *c, const void *key, size_t klen, uint32_t *ttl)
{
	int rc = check_key(key, klen);
	if (!c || !ttl)
		return -EINVAL;
	if (rc)
		return rc;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	/*
	 * One reading of the clock decides both "live" and "how long": with
	 * two, a second passing between them turned 1 s left into 0, which
	 * means SHMC_TTL_NONE (a dump/restore then kept the item forever),
	 * or into a wrapped huge number.  A live item has expiry > now, so
	 * what is left is at least 1.
	 */
	uint32_t now = shmc__now(c);
	uint64_t h = shmc__hash(key, klen);
	struct shmc__bucket *bk;
	uint64_t e;
	int i;
	const struct shmc__item *it = NULL;
	shmc__section_enter(c, t);
	/* Not counted as a get: a tool's walk must not skew hit ratios. */
	if (shmc__ix_find(c, h, key, klen, false, &bk, &i, &e))
		it = shmc__item_at(c, shmc__e_loc(e));
	if (it && (it->vword & SHMC__V_NEG))
		it = NULL;
	if (it && shmc__expired(it, now)) {
		shmc__ctr_add(t, SHMC__C_EXPIRATIONS, 1);
		it = NULL;
	}
	/* The frequency bump of shmc__lookup, which this replaces.  A hint
	 * that orders nothing: a failed CAS means a writer changed the
	 * entry; drop it. */
	if (it && shmc__e_freq(e) < SHMC__E_FREQ_MAX)
		uatomic_cmpxchg(&bk->e[i], e, e + SHMC__E_FREQ_ONE);
	if (it)
		*ttl = it->expiry ? it->expiry - now : SHMC_TTL_NONE;
	shmc__section_exit(t);
	return it ? 0 : SHMC_ENOTFOUND;
}

int shmc_read_begin(shmc_t *c)
{
	int rc = 0;
	if (!c)
		return -EINVAL;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	shmc__section_enter(c, t);
	return 0;
}

int shmc_read_end(shmc_t *c)
{
	int rc = 0;
	if (!c)
		return -EINVAL;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	if (!t->depth)
		return SHMC_ENOSECTION;
	shmc__section_exit(t);
	return 0;
}

int shmc_get_ref(shmc_t *c, const void *key, size_t klen, const void **value,
                 size_t *vlen, uint32_t *flags)
{
	int rc = check_key(key, klen);
	if (!c || !value || !vlen)
		return -EINVAL;
	if (rc)
		return rc;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	if (!t->depth)
		return SHMC_ENOSECTION;
	const struct shmc__item *it = lookup(c, t, key, klen);
	if (!it)
		return SHMC_ENOTFOUND;
	*value = shmc__uval(it);
	*vlen = shmc__uvlen(it);
	if (flags)
		*flags = it->flags;
	return 0;
}

/*
 * Batches this thread's item count changes into hdr->items_approx, the
 * load figure that drives index growth: one shared atomic add per 32
 * changes instead of one per set.
 */
static void items_delta(struct shmc *c, struct shmc__thr *t, int d)
{
	t->items_local += d;
	if (t->items_local >= 32 || t->items_local <= -32) {
		uatomic_add(&c->map.hdr->items_approx, (int64_t)t->items_local);
		t->items_local = 0;
		if (d > 0)
			shmc__ix_maybe_grow(c, t);
	}
}

/* Inside a read section (see put). */
int shmc__item_append(struct shmc *c, struct shmc__thr *t, uint64_t h,
                       const void *key, size_t klen, const void *pre,
                       uint32_t prelen, const void *value, size_t vlen,
                       uint32_t expiry, uint32_t flags, uint32_t kind,
                       uint64_t *off)
{
	uint64_t size = shmc__item_size(klen, prelen + vlen);
	int rc = shmc__log_append(c, t, size, off);
	if (SHMC__UNLIKELY(rc))
		return rc;
	struct shmc__item *it = (struct shmc__item *)(c->data + *off);
	it->vword = (uint32_t)(prelen + vlen) | kind;
	it->klen = (uint16_t)klen;
	it->hcheck = shmc__hcheck(h);
	it->flags = flags;
	it->expiry = expiry;
	it->cas = ((uint64_t)t->slot << 48) |
	          (t->s->ctr[SHMC__C_CAS_SEQ] & ((1ull << 48) - 1));
	shmc__ctr_add(t, SHMC__C_CAS_SEQ, 1);
	memcpy(it->data, key, klen);
	if (prelen)
		memcpy(it->data + klen, pre, prelen);
	if (vlen)
		memcpy(it->data + klen + prelen, value, vlen);
	struct shmc__seghdr *sh =
	    shmc__seg(c, (uint32_t)(*off >> c->seg_shift));
	uint32_t ex = expiry ? expiry : UINT32_MAX;
	if (ex > sh->max_expiry)
		sh->max_expiry = ex;
	sh->nitems++;
	/* Release: the item bytes are below write_off before anyone can
	 * find them; an evictor walking this segment after it is sealed
	 * sees every item that was ever published. */
	uint64_t end = (*off & (c->seg_size - 1)) + size;
	shmc__store(&sh->write_off, end, __ATOMIC_RELEASE);
	/* Fetch, for writing, the two lines the next append will write
	 * first: the log only moves forward, so the next set's stores find
	 * their lines in cache and the bucket lock's full barrier does not
	 * wait for their ownership requests.  Inside the segment only (a
	 * prefetch never faults, but it need not walk the page tables of the
	 * next one). */
	if (SHMC__LIKELY(end + 128 <= c->seg_size)) {
		__builtin_prefetch(c->data + *off + size, 1, 3);
		__builtin_prefetch(c->data + *off + size + 64, 1, 3);
	}
	return 0;
}

bool shmc__item_publish(struct shmc *c, struct shmc__thr *t,
                        struct shmc__ixl *x, uint64_t h, uint64_t *way,
                        uint64_t e, uint64_t off)
{
	unsigned freq0;
	bool grew = false;
	if (way) {
		freq0 = shmc__e_freq(e); /* an update keeps its heat */
	} else {
		bool dropped;
		freq0 = shmc__ghost_hit(c, h) ? 2u : 0u;
		way = shmc__ix_free_way(c, x, &dropped);
		if (dropped)
			shmc__ctr_add(t, SHMC__C_INDEX_DROPS, 1);
		else
			shmc__ctr_add(t, SHMC__C_ITEMS, 1), grew = true;
		if (freq0)
			shmc__ctr_add(t, SHMC__C_GHOST_HITS, 1);
	}
	/* Release: pairs with the acquire load in shmc__bucket_find; the item
	 * written by shmc__item_append is complete before the entry can be
	 * seen. */
	shmc__store(way, shmc__e_make(shmc__tag(h), freq0, off >> 3),
	            __ATOMIC_RELEASE);
	return grew;
}

void shmc__items_delta(struct shmc *c, struct shmc__thr *t, int d)
{
	items_delta(c, t, d);
}

uint32_t shmc__expiry(struct shmc *c, uint32_t ttl)
{
	if (ttl == SHMC_TTL_DEFAULT)
		ttl = c->map.hdr->default_ttl;
	return ttl ? shmc__now(c) + ttl : 0;
}

/* A data item that makes add() fail: present, unexpired, not a cached
 * "not found". */
static bool blocks_add(struct shmc *c, uint64_t e)
{
	const struct shmc__item *it = shmc__item_at(c, shmc__e_loc(e));
	return !(it->vword & SHMC__V_NEG) && !shmc__expired(it, shmc__now(c));
}

enum put_mode { PUT_SET, PUT_ADD };

static int put(shmc_t *c, const void *key, size_t klen, const void *value,
               size_t vlen, uint32_t ttl, uint32_t flags, enum put_mode mode)
{
	int rc = check_key(key, klen);
	if (SHMC__UNLIKELY(!c || (!value && vlen)))
		return -EINVAL;
	if (SHMC__UNLIKELY(rc))
		return rc;
	if (SHMC__UNLIKELY(vlen > SHMC__V_LEN_MASK ||
	                   shmc__item_size(klen, vlen) >
	                       c->seg_size - SHMC__SEGHDR_SIZE))
		return SHMC_EVALLEN;
	if (SHMC__UNLIKELY(ttl != SHMC_TTL_DEFAULT && ttl > SHMC__TTL_MAX))
		return -EINVAL;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (SHMC__UNLIKELY(!t))
		return rc;
	uint64_t h = shmc__hash(key, klen);
	if (mode == PUT_ADD) {
		/* Settle the common "present" case without writing. */
		shmc__section_enter(c, t);
		struct shmc__bucket *bk;
		uint64_t e;
		int i;
		bool live = shmc__ix_find(c, h, key, klen, false, &bk, &i, &e) &&
		            blocks_add(c, e);
		shmc__section_exit(t);
		if (live) {
			shmc__ctr_add(t, SHMC__C_ADD_EXISTS, 1);
			return SHMC_EEXISTS;
		}
	}

	/* Start loading the bucket now: its miss overlaps the append. */
	__builtin_prefetch(shmc__bucket_at(
	                       c, shmc__geom_bucket(
	                              c,
	                              shmc__load(&c->map.hdr->index_geom,
	                                         __ATOMIC_RELAXED),
	                              h)),
	                   1, 3);

	/* 1. Append the item to our own segment; nobody else can see it.
	 *    Append and publish run in a read section, so a thread that
	 *    revokes our segment (log.c) waits until both are done. */
	uint64_t off;
	shmc__section_enter(c, t);
	rc = shmc__item_append(c, t, h, key, klen, NULL, 0, value, vlen,
	                       shmc__expiry(c, ttl), flags, 0, &off);
	if (SHMC__UNLIKELY(rc)) {
		shmc__section_exit(t);
		return rc;
	}

	/* 2. Publish it under the bucket lock (the ghost table is looked at
	 *    only for a new key, in shmc__item_publish). */
	struct shmc__ixl x;
	shmc__ix_lock(c, t, h, false, &x);
	uint64_t e;
	uint64_t *way = shmc__ix_find_locked(c, &x, h, key, klen, false, &e);
	if (way && mode == PUT_ADD && blocks_add(c, e)) {
		/* Lost a race with another add: our bytes stay as garbage
		 * in the segment until it is evicted. */
		shmc__ix_unlock(c, t, &x);
		shmc__section_exit(t);
		shmc__ctr_add(t, SHMC__C_ADD_EXISTS, 1);
		return SHMC_EEXISTS;
	}
	bool grew = shmc__item_publish(c, t, &x, h, way, e, off);
	shmc__ix_unlock(c, t, &x);
	shmc__section_exit(t);
	shmc__ctr_add(t, mode == PUT_ADD ? SHMC__C_ADDS : SHMC__C_SETS, 1);
	shmc__ctr_add(t, SHMC__C_SET_BYTES, klen + vlen);
	if (grew)
		items_delta(c, t, 1);
	if (shmc__mrc_hit(c, h))
		shmc__mrc_sample(c, h, shmc__item_size(klen, vlen),
		                 SHMC__MRC_SET);
	return 0;
}

int shmc_set(shmc_t *c, const void *key, size_t klen, const void *value,
             size_t vlen, uint32_t ttl, uint32_t flags)
{
	return put(c, key, klen, value, vlen, ttl, flags, PUT_SET);
}

int shmc_add(shmc_t *c, const void *key, size_t klen, const void *value,
             size_t vlen, uint32_t ttl, uint32_t flags)
{
	return put(c, key, klen, value, vlen, ttl, flags, PUT_ADD);
}

int shmc__del_key(struct shmc *c, struct shmc__thr *t, uint64_t h,
                  const void *key, size_t klen)
{
	struct shmc__ixl x;
	shmc__ix_lock(c, t, h, false, &x);
	uint64_t e;
	uint64_t *way = shmc__ix_find_locked(c, &x, h, key, klen, false, &e);
	bool found = way != NULL;
	int gone = 0;
	if (found) {
		/* Release: keeps every entry store of the index the same
		 * kind; nothing of ours needs ordering before it. */
		shmc__store(way, 0, __ATOMIC_RELEASE);
		shmc__ctr_add(t, SHMC__C_ITEMS, (uint64_t)-1);
		shmc__ctr_add(t, SHMC__C_DELETES, 1);
		gone++;
	}
	/* A get-or-load of this key in progress read its source before
	 * this delete, maybe an outdated value (an invalidation from
	 * `shmcache sync` is exactly that case): take its lease away, so
	 * store() in load.c does not publish what it loaded.  Its callers
	 * still get the value; the next miss loads afresh. */
	way = shmc__ix_find_locked(c, &x, h, key, klen, true, &e);
	if (way) {
		shmc__store(way, 0, __ATOMIC_RELEASE);
		shmc__ctr_add(t, SHMC__C_ITEMS, (uint64_t)-1);
		gone++;
	}
	shmc__ix_unlock(c, t, &x);
	if (gone)
		items_delta(c, t, -gone);
	return found ? 0 : SHMC_ENOTFOUND;
}

int shmc_del(shmc_t *c, const void *key, size_t klen)
{
	int rc = check_key(key, klen);
	if (!c)
		return -EINVAL;
	if (rc)
		return rc;
	struct shmc__thr *t = shmc__thr_get(c, &rc);
	if (!t)
		return rc;
	uint64_t h = shmc__hash(key, klen);
	rc = shmc__del_key(c, t, h, key, klen);
	if (rc == 0 && shmc__mrc_hit(c, h))
		shmc__mrc_sample(c, h, 0, SHMC__MRC_DEL);
	return rc;
}

int shmc_set_clock(shmc_t *c, uint64_t (*now)(void *arg), void *arg)
{
	if (!c)
		return -EINVAL;
	c->clock = now ? now : real_clock;
	c->clock_arg = now ? arg : NULL;
	return 0;
}

int shmc_stats(shmc_t *c, struct shmc_stats *st)
{
	if (!c || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	uint64_t sum[SHMC__C_COUNT] = {0};
	int32_t *pids = calloc(c->max_readers, sizeof(*pids));
	uint32_t npids = 0;
	for (uint32_t i = 0; i < c->max_readers; i++) {
		struct shmc__slot *s = shmc__slot_at(&c->map, i);
		for (int k = 0; k < SHMC__C_COUNT; k++)
			sum[k] += shmc__load(&s->ctr[k], __ATOMIC_RELAXED);
		if (shmc__load(&s->state, __ATOMIC_ACQUIRE) != SHMC__SLOT_USED)
			continue;
		/* Count only the living: a dead thread's slot is reclaimed
		 * here (a trylock, no system call when it is alive). */
		if (shmc__slot_probe(&c->map, i, shmc__dead_slot, false, c) == 0)
			continue;
		st->readers++;
		int32_t pid = s->pid;
		bool seen = false;
		for (uint32_t k = 0; k < npids && !seen; k++)
			seen = pids[k] == pid;
		if (!seen && pids)
			pids[npids++] = pid;
	}
	st->processes = npids;
	free(pids);
	st->gets = sum[SHMC__C_HITS] + sum[SHMC__C_MISSES]; /* derived */
	st->hits = sum[SHMC__C_HITS];
	st->misses = sum[SHMC__C_MISSES];
	st->sets = sum[SHMC__C_SETS];
	st->adds = sum[SHMC__C_ADDS];
	st->add_exists = sum[SHMC__C_ADD_EXISTS];
	st->deletes = sum[SHMC__C_DELETES];
	st->evictions = sum[SHMC__C_EVICTIONS];
	st->expirations = sum[SHMC__C_EXPIRATIONS];
	st->copy_forwards = sum[SHMC__C_COPY_FORWARDS];
	st->index_drops = sum[SHMC__C_INDEX_DROPS];
	st->ghost_hits = sum[SHMC__C_GHOST_HITS];
	st->set_bytes = sum[SHMC__C_SET_BYTES];
	st->segments_evicted = sum[SHMC__C_SEGS_EVICTED];
	st->grace_periods = sum[SHMC__C_GRACE_PERIODS];
	st->stalls = sum[SHMC__C_STALLS];
	st->loads = sum[SHMC__C_LOADS];
	st->load_waits = sum[SHMC__C_LOAD_WAITS];
	st->load_wait_ns = sum[SHMC__C_LOAD_WAIT_NS];
	st->lease_takeovers = sum[SHMC__C_TAKEOVERS];
	st->stale_served = sum[SHMC__C_STALE];
	st->resizes = shmc__load(&c->map.hdr->hist_next, __ATOMIC_RELAXED);
	/* A signed sum held in unsigned arithmetic; transiently "negative"
	 * when a removal is counted before the insert it undoes. */
	int64_t items = (int64_t)sum[SHMC__C_ITEMS];
	st->items = items > 0 ? (uint64_t)items : 0;

	struct shmc__hdr *h = c->map.hdr;
	st->memory = shmc__load(&h->memory, __ATOMIC_RELAXED);
	st->max_memory = h->max_memory;
	st->committed_bytes = shmc__committed(c);
	st->index_buckets = shmc__geom_buckets(
	    shmc__load(&h->index_geom, __ATOMIC_RELAXED));
	st->index_entries_used = st->items;
	/* Every committed segment in exactly one of these, so they sum. */
	uint32_t n[SHMC__CENSUS];
	shmc__log_census(c, n);
	st->segments_free = n[SHMC__SEG_FREE];
	st->segments_small = n[SHMC__SEG_SMALL];
	st->segments_main = n[SHMC__SEG_MAIN];
	st->segments_open = n[SHMC__SEG_OPEN] + n[SHMC__CENSUS_CF];
	st->segments_parked = n[SHMC__CENSUS_PARKED] + n[SHMC__CENSUS_BAD];
	st->segments_retired = n[SHMC__SEG_RETIRED];
	st->segments_total = st->segments_free + st->segments_small +
	                     st->segments_main + st->segments_open +
	                     st->segments_parked + st->segments_retired;
	uint32_t busy = st->segments_small + st->segments_main +
	                st->segments_open + st->segments_parked;
	st->used_bytes = (uint64_t)busy * c->seg_size;
	return 0;
}

int shmc_info(shmc_t *c, struct shmc_info *info)
{
	if (!c || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	struct shmc__hdr *h = c->map.hdr;
	snprintf(info->name, sizeof(info->name), "%.*s", SHMC_NAME_MAX, h->name);
	snprintf(info->path, sizeof(info->path), "%s", c->map.path);
	info->format_version = h->version;
	info->segment_size = c->seg_size;
	info->max_readers = c->max_readers;
	info->default_ttl = h->default_ttl;
	/* With a 1-byte key: 8-byte padding of the item still fits, since
	 * the segment's room (seg_size - 64) is a multiple of 8. */
	info->max_value = c->seg_size - SHMC__SEGHDR_SIZE -
	                  sizeof(struct shmc__item) - 1;
	info->created = h->created;
	info->min_memory = shmc__min_memory(c);
	info->max_memory = h->max_memory;
	if (c->mrc)
		info->flags |= SHMC_CREATE_MRC;
	if (h->flags & SHMC__F_HUGE) {
		info->flags |= SHMC_CREATE_HUGE;
		info->huge_bytes = shmc__seg_huge_bytes(&c->map);
	}
	return 0;
}

int shmc_readers(shmc_t *c, int (*fn)(const struct shmc_reader *r, void *arg),
                 void *arg)
{
	if (!c || !fn)
		return -EINVAL;
	int reclaimed = 0;
	uint64_t now = shmc__now_ns();
	for (uint32_t i = 0; i < c->max_readers; i++) {
		struct shmc__slot *s = shmc__slot_at(&c->map, i);
		if (shmc__load(&s->state, __ATOMIC_ACQUIRE) != SHMC__SLOT_USED)
			continue;
		if (shmc__slot_probe(&c->map, i, shmc__dead_slot, false, c) ==
		    0) {
			reclaimed++;
			continue;
		}
		struct shmc_reader r = {
		    .slot = i,
		    .pid = s->pid,
		    .tid = s->tid,
		    .in_section =
		        shmc__load(&s->epoch, __ATOMIC_RELAXED) != 0 ? 1u : 0u,
		};
		/* The stall is reported while the reader is still in the
		 * section it was stalled in. */
		uint64_t since = shmc__load(&s->stall_since, __ATOMIC_RELAXED);
		uint64_t e = shmc__load(&s->epoch, __ATOMIC_RELAXED);
		if (since && since < now && e &&
		    shmc__load(&s->stall_epoch, __ATOMIC_RELAXED) == e)
			r.section_ns = now - since;
		if (fn(&r, arg))
			break;
	}
	return reclaimed;
}
