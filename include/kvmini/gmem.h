/* gmem: guest physical memory, reached only through bounds-checked accessors. */
#ifndef KVMINI_GMEM_H
#define KVMINI_GMEM_H

#include <stddef.h>
#include <stdint.h>

#include "kvmini/vmerr.h"

/* A guest physical address: an integer, never a host pointer. */
typedef uint64_t gpa_t;

#define GMEM_MAX_REGIONS 4

/* Alignment of the host mapping of guest RAM: the x86 huge page size, 2 MiB. */
#define GMEM_HUGE_ALIGN (2ULL << 20)

/* One contiguous run of guest RAM backed by host memory. */
struct gmem_region {
	gpa_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct gmem {
	struct gmem_region region[GMEM_MAX_REGIONS]; /* sorted by gpa, never overlapping */
	unsigned int nr;
	uint64_t ram_size; /* sum of region sizes */
	void *map;	   /* the one mmap backing every region (NULL for fake memory) */
	size_t map_size;
};

/*
 * Split `ram_size` bytes of RAM around the 32-bit MMIO hole (see layout.h): RAM below the
 * hole starts at 0, the rest continues at 4 GiB. Fills `out` (GMEM_MAX_REGIONS entries) with
 * host pointers left NULL and returns the number of regions, or -EINVAL if ram_size is 0 or
 * not a multiple of 4 KiB.
 */
int gmem_layout(uint64_t ram_size, struct gmem_region *out);

/*
 * Reserve `ram_size` bytes of anonymous memory (MAP_NORESERVE) and lay them out with
 * gmem_layout(). Returns 0 or -errno with the reason in `e`.
 */
int gmem_init(struct gmem *gm, uint64_t ram_size, struct vmerr *e);

/* Bytes of guest RAM resident on the host now (mincore over the mapping; 0 for fake memory).
 * 0 or -errno. */
int gmem_resident(const struct gmem *gm, uint64_t *bytes);

/* Release the mapping made by gmem_init(). Safe on a zeroed or half-built gmem. */
void gmem_fini(struct gmem *gm);

/*
 * Add a region backed by caller-owned memory (used by tests for a fake guest memory).
 * Returns 0, -EINVAL on overlap or wrap, -ENOSPC when full.
 */
int gmem_add_region(struct gmem *gm, gpa_t gpa, uint64_t size, void *host);

/*
 * Host pointer for [gpa, gpa+len) if the whole range lies inside one RAM region without
 * wrapping past 2^64; NULL otherwise. len 0 is refused (NULL).
 */
void *gmem_ptr(const struct gmem *gm, gpa_t gpa, uint64_t len);

/* Copy from/to guest memory; 0 or -EFAULT if the range is not wholly in one RAM region. */
int gmem_read(const struct gmem *gm, gpa_t gpa, void *dst, size_t len);
int gmem_write(const struct gmem *gm, gpa_t gpa, const void *src, size_t len);

/* End (exclusive) of the RAM region that starts at 0: the usable "low" memory. */
uint64_t gmem_low_end(const struct gmem *gm);

#endif
