/* flat.h - the reference: a flat in-process hash table (flat.c). */
#ifndef SHMC_BENCH_FLAT_H
#define SHMC_BENCH_FLAT_H

#include <stddef.h>
#include <stdint.h>

struct flat;
/*
 * A table for up to `expected` keys of at most kmax bytes, values of up to
 * vinline bytes stored in the slot (longer ones in a malloc'd block the
 * slot points to).  NULL on -ENOMEM.
 */
struct flat *flat_new(uint64_t expected, unsigned kmax, unsigned vinline);
void flat_free(struct flat *t);
/* Bytes per slot (96 for 16-byte keys and 64-byte values). */
size_t flat_slot_size(const struct flat *t);
/* 1 hit (copied if it fits cap), 0 miss. */
int flat_get(struct flat *t, const void *key, size_t klen, void *buf,
             size_t cap, size_t *vlen);
/* 0, -EINVAL key longer than kmax, -ENOSPC table 7/8 full, -ENOMEM. */
int flat_set(struct flat *t, const void *key, size_t klen, const void *val,
             size_t vlen);

#endif
