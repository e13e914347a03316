/* bus: address ranges of port I/O or MMIO, each answered by one registered device. */
#ifndef KVMINI_BUS_H
#define KVMINI_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * A device's access handler. `offset` is relative to the base it registered; `data` holds
 * `len` bytes (1, 2, 4 or 8) in guest byte order: the value to store on a write, the buffer
 * to fill on a read. Handlers must not block and must accept any offset/len inside their range.
 */
typedef void (*bus_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_io_fn fn;
	void *opaque;
	const char *name;
	const char *(*reg_name)(uint64_t offset); /* for --trace, or NULL */
};

#define BUS_MAX_RANGES 32

/*
 * Ranges are registered before any vCPU runs and never change afterwards, so lookups
 * take no lock. The counters are updated by all vCPU threads.
 */
struct bus {
	const char *name;			/* "pio" or "mmio", for messages */
	struct bus_range range[BUS_MAX_RANGES]; /* sorted by base, never overlapping */
	unsigned int nr;
	atomic_uint_fast64_t unclaimed_reads;
	atomic_uint_fast64_t unclaimed_writes;
};

/* Start an empty bus. */
void bus_init(struct bus *b, const char *name);

/*
 * Register [base, base+len). Returns 0; -EINVAL for len 0 or a range wrapping 2^64;
 * -EBUSY if it overlaps a registered range; -ENOSPC when the bus is full.
 */
int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
		 const char *name);

/* Name the registers of the range registered at `base` (for --trace). 0 or -ENOENT. */
int bus_set_reg_names(struct bus *b, uint64_t base, const char *(*reg_name)(uint64_t offset));

/* The range holding all of [addr, addr+len), or NULL (also when an access straddles two). */
const struct bus_range *bus_find(const struct bus *b, uint64_t addr, uint32_t len);

/*
 * Send one access to its device. Unclaimed reads fill `data` with all-ones, unclaimed
 * writes are dropped; both are counted. Returns true if a device claimed it.
 */
bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
