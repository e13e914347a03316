/* fuzz_common: helpers shared by the fuzz targets (header-only, included by each target). */
#ifndef KVMINI_TESTS_FUZZ_COMMON_H
#define KVMINI_TESTS_FUZZ_COMMON_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "vdriver.h"

/*
 * The harness's own bookkeeping loops over all of RAM: left uninstrumented, so that they stay
 * fast and libFuzzer's coverage feedback is about the device, not about the checks.
 */
#define ORACLE __attribute__((no_sanitize("coverage"), noinline))

/* Little-endian loads from the input (or from a copy of RAM). */
static inline uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Where RAM region 0 ends: the split, or all of RAM for one region. */
static inline uint64_t ram_mid(const struct vdrv *d)
{
	return d->split ? d->split : d->ram_size;
}

/* Copy the fake RAM [0, d->ram_size) of `d` to a flat buffer. */
ORACLE static inline void ram_save(const struct vdrv *d, uint8_t *dst)
{
	uint64_t mid = ram_mid(d);
	memcpy(dst, vdrv_ptr(d, 0, mid), mid);
	if (mid < d->ram_size)
		memcpy(dst + mid, vdrv_ptr(d, mid, d->ram_size - mid), d->ram_size - mid);
}

/* Copy src[lo, hi) into the RAM of `d` at the same addresses (clipped to RAM). */
ORACLE static inline void ram_load(const struct vdrv *d, const uint8_t *src, uint64_t lo,
				   uint64_t hi)
{
	uint64_t mid = ram_mid(d);
	if (hi > d->ram_size)
		hi = d->ram_size;
	while (lo < hi) {
		uint64_t end = lo < mid && hi > mid ? mid : hi;
		memcpy(vdrv_ptr(d, lo, end - lo), src + lo, end - lo);
		lo = end;
	}
}

/*
 * Byte maps over RAM, `size` bytes each. Mark [gpa, gpa+len) (clipped to the map): set to 1,
 * or counted (up to 255) when `count`.
 */
ORACLE static inline void mark(uint8_t *map, uint64_t size, uint64_t gpa, uint64_t len,
			       bool count)
{
	for (uint64_t i = gpa; i < size && i - gpa < len; i++)
		map[i] = count ? (uint8_t)(map[i] < 255 ? map[i] + 1 : 255) : 1;
}

/* Is any byte of [gpa, gpa+len) (clipped to the map) set? */
ORACLE static inline bool any(const uint8_t *map, uint64_t size, uint64_t gpa, uint64_t len)
{
	for (uint64_t i = gpa; i < size && i - gpa < len; i++)
		if (map[i])
			return true;
	return false;
}

/*
 * Every byte that differs between `before` and `after` (`size` bytes, a multiple of 256) is
 * set in `allowed`; traps otherwise.
 */
ORACLE static inline void check_writes(const uint8_t *before, const uint8_t *after,
					       const uint8_t *allowed, uint64_t size)
{
	enum { BLOCK = 256 };
	for (uint64_t b = 0; b < size; b += BLOCK) {
		if (memcmp(after + b, before + b, BLOCK) == 0)
			continue;
		for (uint64_t i = b; i < b + BLOCK; i++)
			if (after[i] != before[i] && !allowed[i])
				__builtin_trap(); /* written where the device may not write */
	}
}

#endif
