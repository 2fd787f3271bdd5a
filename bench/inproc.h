/* inproc.h - the reference: a plain in-process hash table (inproc.c). */
#ifndef SHMC_BENCH_INPROC_H
#define SHMC_BENCH_INPROC_H

#include <stddef.h>
#include <stdint.h>

struct inproc;
struct inproc *inproc_new(uint64_t expected);
void inproc_free(struct inproc *t);
/* 1 hit (copied if it fits cap), 0 miss. */
int inproc_get(struct inproc *t, const void *key, size_t klen, void *buf,
               size_t cap, size_t *vlen);
/* 0, or -ENOMEM. */
int inproc_set(struct inproc *t, const void *key, size_t klen,
               const void *val, size_t vlen);

#endif
