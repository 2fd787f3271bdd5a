/*
 * snapshot.h - the dump file format shared by `dump` and `restore`.
 *
 * A dump is a versioned, checksummed stream, all integers little-endian:
 *
 *   header   32 bytes  magic "SHMCDUMP" | u32 version (1) | u32 header
 *                      size (32) | u64 created (unix seconds) | u64 0
 *   record   24 bytes  u32 klen (1..250) | u32 flags | u32 ttl | u32 0 |
 *                      u64 vlen, then klen key bytes and vlen value bytes
 *   ...               (any number of records, no padding)
 *   trailer  24 bytes  magic "SHMCEND\0" | u64 record count |
 *                      u64 XXH64 (seed 0) of every byte before it
 *
 * ttl is the item's remaining lifetime in seconds at `created`: 0 means
 * "never expires", SNAP_TTL_UNKNOWN means "not known" (the public API does
 * not expose an item's expiry yet), and restore then applies the target
 * cache's default TTL.
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
#define SNAP_VERSION 1u
#define SNAP_HDR_SIZE 32u
#define SNAP_REC_SIZE 24u
#define SNAP_TRAILER_SIZE 24u
#define SNAP_TTL_UNKNOWN UINT32_MAX

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
