/*
 * errors.c - names and descriptions of error codes: the library's own,
 * generated from SHMC_ERRNO_MAP, and -errno via glibc.
 */
#include <string.h>

#include "internal.h"

const char *shmc_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define SHMC__ERR_TEXT(name, val, text)                                        \
	case SHMC_E##name:                                                     \
		return text;
		SHMC_ERRNO_MAP(SHMC__ERR_TEXT)
#undef SHMC__ERR_TEXT
	}
	const char *s = err < 0 && err > -4096 ? strerrordesc_np(-err) : NULL;
	return s ? s : "unknown error";
}

const char *shmc_err_name(int err)
{
	switch (err) {
	case 0:
		return "OK";
#define SHMC__ERR_NAME(name, val, text)                                        \
	case SHMC_E##name:                                                     \
		return "SHMC_E" #name;
		SHMC_ERRNO_MAP(SHMC__ERR_NAME)
#undef SHMC__ERR_NAME
	}
	const char *s = err < 0 && err > -4096 ? strerrorname_np(-err) : NULL;
	return s ? s : "UNKNOWN";
}

const char *shmc_version(void)
{
	return SHMC__STR(SHMC_VERSION_MAJOR) "." SHMC__STR(
	    SHMC_VERSION_MINOR) "." SHMC__STR(SHMC_VERSION_PATCH);
}
