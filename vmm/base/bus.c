/* bus: sorted, non-overlapping address ranges and the dispatch of guest accesses to them. */
#include <errno.h>
#include <string.h>

#include "kvmini/bus.h"

void bus_init(struct bus *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->name = name;
	atomic_init(&b->unclaimed_reads, 0);
	atomic_init(&b->unclaimed_writes, 0);
}

int bus_register(struct bus *b, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
		 const char *name)
{
	if (len == 0 || base + len - 1 < base || !fn)
		return -EINVAL;
	if (b->nr >= BUS_MAX_RANGES)
		return -ENOSPC;
	unsigned int i = 0;
	while (i < b->nr && b->range[i].base < base)
		i++;
	/* Compare last bytes, so a range ending at 2^64-1 is handled without overflow. */
	if (i > 0 && b->range[i - 1].base + (b->range[i - 1].len - 1) >= base)
		return -EBUSY;
	if (i < b->nr && base + (len - 1) >= b->range[i].base)
		return -EBUSY;
	memmove(&b->range[i + 1], &b->range[i], (b->nr - i) * sizeof(b->range[0]));
	b->range[i] = (struct bus_range){
		.base = base, .len = len, .fn = fn, .opaque = opaque, .name = name};
	b->nr++;
	return 0;
}

int bus_set_reg_names(struct bus *b, uint64_t base, const char *(*reg_name)(uint64_t offset))
{
	for (unsigned int i = 0; i < b->nr; i++) {
		if (b->range[i].base == base) {
			b->range[i].reg_name = reg_name;
			return 0;
		}
	}
	return -ENOENT;
}

const struct bus_range *bus_find(const struct bus *b, uint64_t addr, uint32_t len)
{
	if (len == 0)
		return NULL;
	/* Binary search for the last range with base <= addr. */
	unsigned int lo = 0, hi = b->nr;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		if (b->range[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct bus_range *r = &b->range[lo - 1];
	uint64_t off = addr - r->base;
	if (off >= r->len || len > r->len - off)
		return NULL;
	return r;
}

bool bus_access(struct bus *b, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = bus_find(b, addr, len);
	if (!r) {
		if (is_write) {
			atomic_fetch_add(&b->unclaimed_writes, 1);
		} else {
			memset(data, 0xff, len);
			atomic_fetch_add(&b->unclaimed_reads, 1);
		}
		return false;
	}
	r->fn(r->opaque, addr - r->base, data, len, is_write);
	return true;
}
