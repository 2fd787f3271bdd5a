/* fuzz_cache.h - the fuzz target shared by libFuzzer and the replayer. */
#ifndef SHMC_FUZZ_CACHE_H
#define SHMC_FUZZ_CACHE_H
#include <stddef.h>
#include <stdint.h>
void shmc_fuzz_init(void);
int shmc_fuzz_one(const uint8_t *data, size_t size);
/* Removes the private directory (also done at exit). */
void shmc_fuzz_cleanup(void);
#endif
