/* gmem: guest RAM allocation, its layout around the MMIO hole, and checked access to it. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmini/gmem.h"
#include "kvmini/layout.h"

int gmem_layout(uint64_t ram_size, struct gmem_region *out)
{
	if (ram_size == 0 || (ram_size & 0xfff))
		return -EINVAL;
	memset(out, 0, sizeof(*out) * GMEM_MAX_REGIONS);
	uint64_t low = ram_size < LAYOUT_MMIO_HOLE ? ram_size : LAYOUT_MMIO_HOLE;
	out[0].gpa = 0;
	out[0].size = low;
	if (ram_size == low)
		return 1;
	out[1].gpa = LAYOUT_HIGH_RAM;
	out[1].size = ram_size - low;
	return 2;
}

int gmem_add_region(struct gmem *gm, gpa_t gpa, uint64_t size, void *host)
{
	if (size == 0 || gpa + size < gpa || !host)
		return -EINVAL;
	if (gm->nr >= GMEM_MAX_REGIONS)
		return -ENOSPC;
	unsigned int i = 0;
	while (i < gm->nr && gm->region[i].gpa < gpa)
		i++;
	/* Neighbours must not overlap [gpa, gpa+size). */
	if (i > 0 && gm->region[i - 1].gpa + gm->region[i - 1].size > gpa)
		return -EINVAL;
	if (i < gm->nr && gpa + size > gm->region[i].gpa)
		return -EINVAL;
	memmove(&gm->region[i + 1], &gm->region[i], (gm->nr - i) * sizeof(gm->region[0]));
	gm->region[i] = (struct gmem_region){.gpa = gpa, .size = size, .host = host};
	gm->nr++;
	gm->ram_size += size;
	return 0;
}

int gmem_init(struct gmem *gm, uint64_t ram_size, struct vmerr *e)
{
	struct gmem_region lay[GMEM_MAX_REGIONS];

	memset(gm, 0, sizeof(*gm));
	int n = gmem_layout(ram_size, lay);
	if (n < 0)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0,
				 "guest memory size %llu is not a positive multiple of 4 KiB",
				 (unsigned long long)ram_size);
	/*
	 * Reserve GMEM_HUGE_ALIGN more than needed and trim, so that the host address is
	 * huge-page aligned like the guest physical address of every region: only then can
	 * KVM back guest memory with 2 MiB pages in the EPT/NPT (a host huge page must map
	 * a guest-physically aligned 2 MiB range). mmap alone aligns only to 4 KiB.
	 */
	size_t len = ram_size + GMEM_HUGE_ALIGN;
	uint8_t *raw = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno,
				 "cannot reserve %llu MiB of guest memory; use a smaller --mem",
				 (unsigned long long)(ram_size >> 20));
	uint8_t *map = (uint8_t *)(((uintptr_t)raw + GMEM_HUGE_ALIGN - 1) &
				   ~(uintptr_t)(GMEM_HUGE_ALIGN - 1));
	if (map > raw)
		munmap(raw, (size_t)(map - raw));
	if (raw + len > map + ram_size)
		munmap(map + ram_size, (size_t)(raw + len - (map + ram_size)));
	/* Transparent huge pages even where the host's THP policy is "madvise". */
	madvise(map, ram_size, MADV_HUGEPAGE);
	/* Guest RAM is never worth a core dump: it can be gigabytes of guest secrets. */
	madvise(map, ram_size, MADV_DONTDUMP);
	gm->map = map;
	gm->map_size = ram_size;
	uint8_t *host = map;
	for (int i = 0; i < n; i++) {
		gmem_add_region(gm, lay[i].gpa, lay[i].size, host);
		host += lay[i].size;
	}
	return 0;
}

int gmem_resident(const struct gmem *gm, uint64_t *bytes)
{
	unsigned char vec[4096]; /* one chunk of pages per mincore() */
	long page = sysconf(_SC_PAGESIZE);
	uint64_t n = 0;
	if (page <= 0)
		return -EINVAL;
	for (size_t off = 0; gm->map && off < gm->map_size;) {
		size_t len = gm->map_size - off;
		if (len > sizeof(vec) * (size_t)page)
			len = sizeof(vec) * (size_t)page;
		if (mincore((uint8_t *)gm->map + off, len, vec) < 0)
			return -errno;
		size_t pages = (len + (size_t)page - 1) / (size_t)page;
		for (size_t i = 0; i < pages; i++)
			n += vec[i] & 1;
		off += len;
	}
	*bytes = n * (uint64_t)page;
	return 0;
}

void gmem_fini(struct gmem *gm)
{
	if (gm->map)
		munmap(gm->map, gm->map_size);
	memset(gm, 0, sizeof(*gm));
}

void *gmem_ptr(const struct gmem *gm, gpa_t gpa, uint64_t len)
{
	if (len == 0 || gpa + len < gpa)
		return NULL;
	for (unsigned int i = 0; i < gm->nr; i++) {
		const struct gmem_region *r = &gm->region[i];
		/* Written so that no sum can overflow: gpa >= r->gpa, then offsets. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gmem_read(const struct gmem *gm, gpa_t gpa, void *dst, size_t len)
{
	const void *src = gmem_ptr(gm, gpa, len);
	if (!src)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

int gmem_write(const struct gmem *gm, gpa_t gpa, const void *src, size_t len)
{
	void *dst = gmem_ptr(gm, gpa, len);
	if (!dst)
		return -EFAULT;
	memcpy(dst, src, len);
	return 0;
}

uint64_t gmem_low_end(const struct gmem *gm)
{
	if (gm->nr == 0 || gm->region[0].gpa != 0)
		return 0;
	return gm->region[0].size;
}
