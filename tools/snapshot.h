/*
 * snapshot.h - the dump file format shared by `dump` and `restore`.
 *
 * A dump is a versioned, checksummed stream, all integers little-endian:
 *
 *   header   32 bytes  magic "SHMCDUMP" | u32 version (2) | u32 header
 *                      size (32) | u64 created (unix seconds) | u64 0
 *   record   24 bytes  u32 klen (1..250) | u32 flags | u32 ttl | u32 0 |
 *                      u64 vlen, then klen key bytes and vlen value bytes
 *   ...               (any number of records, no padding)
 *   trailer  24 bytes  magic "SHMCEND\0" | u64 record count |
 *                      u64 XXH64 (seed 0) of every byte before it
 *
 * ttl is the item's remaining lifetime in seconds at `created`: 0 means
 * "never expires", SNAP_TTL_UNKNOWN means "not known", and restore then
 * applies the target cache's default TTL.  dump reads each TTL with
 * shmc_ttl() just after the value and adds the seconds elapsed since
 * `created`, so a slow dump does not shorten lifetimes; restore subtracts
 * the seconds elapsed since `created` and skips what has expired.
 *
 * VERSIONS
 *   1  ttl always SNAP_TTL_UNKNOWN (the library had no shmc_ttl yet).
 *   2  ttl recorded.  Same layout as 1.
 * restore reads 1 and 2 (SNAP_VERSION_MIN .. SNAP_VERSION) and refuses any
 * other version before it looks further; dump writes SNAP_VERSION.  A
 * change of layout or meaning takes a new version: an older tool then
 * refuses the file instead of misreading it.
 *
 * restore validates the whole file (size, magic, version, trailer,
 * checksum, every record's bounds and lengths, the count) before it stores
 * a single item, so a damaged file loads nothing.
 */
#ifndef SHMC_TOOL_SNAPSHOT_H
#define SHMC_TOOL_SNAPSHOT_H

#include <stdint.h>
#include <string.h>

#define SNAP_MAGIC "SHMCDUMP"
#define SNAP_END_MAGIC "SHMCEND"
#define SNAP_VERSION 2u
#define SNAP_VERSION_MIN 1u
#define SNAP_HDR_SIZE 32u
#define SNAP_REC_SIZE 24u
#define SNAP_TRAILER_SIZE 24u
#define SNAP_TTL_UNKNOWN UINT32_MAX
/* The longest TTL shmc_set() takes ("1 .. 10 years", shmcache.h, which
 * names no constant for it); restore clamps longer ones to it. */
#define SNAP_TTL_MAX (10u * 365u * 86400u)

static inline void snap_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void snap_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t snap_get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline uint64_t snap_get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif
