/* e820: derive the guest's memory map from the RAM regions of its gmem. */
#include <errno.h>

#include "kvmini/e820.h"
#include "kvmini/layout.h"

static int e820_add(struct e820_entry *map, unsigned int max, unsigned int *n, uint64_t addr,
		    uint64_t end, uint32_t type)
{
	if (end <= addr)
		return 0;
	if (*n >= max)
		return -ENOSPC;
	map[*n] = (struct e820_entry){.addr = addr, .size = end - addr, .type = type};
	(*n)++;
	return 0;
}

int e820_build(const struct gmem *gm, struct e820_entry *map, unsigned int max)
{
	unsigned int n = 0;
	int ret = 0;

	if (gmem_low_end(gm) <= LAYOUT_HIMEM)
		return -EINVAL;
	/* Regions are sorted and disjoint, so the map comes out sorted too. */
	for (unsigned int i = 0; i < gm->nr && !ret; i++) {
		uint64_t start = gm->region[i].gpa;
		uint64_t end = start + gm->region[i].size;

		if (start < LAYOUT_EBDA_END && end > LAYOUT_MPTABLE) {
			/*
			 * A PC has no usable RAM from the top of base memory (639 KiB, where the MP
			 * table lives) to 1 MiB: EBDA, VGA window, option and system ROMs.
			 */
			ret = e820_add(map, max, &n, start, LAYOUT_MPTABLE, E820_RAM);
			if (!ret)
				ret = e820_add(map, max, &n, LAYOUT_MPTABLE, LAYOUT_EBDA_END,
					       E820_RESERVED);
			if (!ret)
				ret = e820_add(map, max, &n, LAYOUT_EBDA_END, end, E820_RAM);
		} else {
			ret = e820_add(map, max, &n, start, end, E820_RAM);
		}
	}
	return ret ? ret : (int)n;
}
