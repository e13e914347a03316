/* e820: the guest's physical memory map, as handed to Linux (zero page) and PVH (memmap). */
#ifndef KVMINI_E820_H
#define KVMINI_E820_H

#include <stdint.h>

#include "kvmini/gmem.h"

#define E820_RAM      1 /* usable RAM (also XEN_HVM_MEMMAP_TYPE_RAM) */
#define E820_RESERVED 2 /* present but not for the OS (also XEN_HVM_MEMMAP_TYPE_RESERVED) */

/* The zero page holds at most 128 entries (E820_MAX_ENTRIES_ZEROPAGE in bootparam.h). */
#define E820_MAX_ENTRIES 128

/* One entry in the layout of struct boot_e820_entry (20 bytes, packed). */
struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/*
 * Describe the RAM of `gm` in `map` (room for `max` entries), sorted by address: every RAM
 * region as E820_RAM except [LAYOUT_MPTABLE, LAYOUT_EBDA_END), which is E820_RESERVED (MP
 * table, EBDA, VGA and BIOS area in a PC). Returns the number of entries, -EINVAL if guest
 * RAM does not reach past LAYOUT_HIMEM, or -ENOSPC if `max` is too small.
 */
int e820_build(const struct gmem *gm, struct e820_entry *map, unsigned int max);

#endif
