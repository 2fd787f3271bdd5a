/*
 * fuzz_libfuzzer.c - libFuzzer entry points for fuzz_cache.c.  Proves
 * nothing by itself: run it (clang -fsanitize=fuzzer,address) to search
 * for inputs that crash open/check/get on a corrupted cache file.
 */
#include "fuzz_cache.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	shmc_fuzz_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return shmc_fuzz_one(data, size);
}
