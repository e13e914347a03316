/* bzimage: validate a bzImage's setup header, load its payload and build the zero page. */
#include <errno.h>
#include <string.h>

#include "kvmini/bzimage.h"
#include "kvmini/layout.h"

/*
 * Offsets in the image and in struct boot_params (the zero page): the setup header sits at
 * 0x1f1 in both (boot.rst "The Real-Mode Kernel Header"; asm/bootparam.h).
 */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES	     0x1e8
#define BP_HDR		     0x1f1 /* start of struct setup_header */
#define HDR_SETUP_SECTS	     0x1f1
#define HDR_SYSSIZE	     0x1f4
#define HDR_VID_MODE	     0x1fa
#define HDR_BOOT_FLAG	     0x1fe
#define HDR_JUMP	     0x200 /* byte 0x201: header length - 2, see HDR_END */
#define HDR_HEADER	     0x202
#define HDR_VERSION	     0x206
#define HDR_TYPE_OF_LOADER   0x210
#define HDR_LOADFLAGS	     0x211
#define HDR_RAMDISK_IMAGE    0x218
#define HDR_RAMDISK_SIZE     0x21c
#define HDR_HEAP_END_PTR     0x224
#define HDR_CMD_LINE_PTR     0x228
#define HDR_INITRD_ADDR_MAX  0x22c
#define HDR_KERNEL_ALIGNMENT 0x230
#define HDR_RELOCATABLE	     0x234
#define HDR_XLOADFLAGS	     0x236
#define HDR_CMDLINE_SIZE     0x238
#define HDR_SETUP_DATA	     0x250
#define HDR_PREF_ADDRESS     0x258
#define HDR_INIT_SIZE	     0x260
#define HDR_MIN_END	     0x264 /* we read fields up to init_size (protocol 2.10+) */
#define BP_HDR_LIMIT	     0x290 /* edd_mbr_sig_buffer follows the header area */
#define BP_E820_TABLE	     0x2d0
#define BP_SIZE		     0x1000

#define BOOT_FLAG	 0xaa55
#define HDRS_MAGIC	 0x53726448u /* "HdrS" */
#define MIN_PROTOCOL	 0x020c	     /* 2.12: xloadflags and the 64-bit entry */
#define LOADED_HIGH	 0x01
#define CAN_USE_HEAP	 0x80
#define XLF_KERNEL_64	 0x0001
#define ENTRY_64_OFFSET	 0x200 /* boot.rst "64-bit Boot Protocol": load address + 0x200 */
#define LOADER_UNDEFINED 0xff  /* type_of_loader: "undefined" boot loader id */
#define VID_MODE_NORMAL	 0xffff
#define HEAP_END	 0xfe00

static uint16_t get16(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	return (uint32_t)get16(p, off) | (uint32_t)get16(p, off + 2) << 16;
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	return (uint64_t)get32(p, off) | (uint64_t)get32(p, off + 4) << 32;
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	put16(p, off, (uint16_t)v);
	put16(p, off + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	put32(p, off, (uint32_t)v);
	put32(p, off + 4, (uint32_t)(v >> 32));
}

int bzimage_probe(const uint8_t *img, uint64_t size)
{
	if (size >= HDR_BOOT_FLAG + 2 && get16(img, HDR_BOOT_FLAG) == BOOT_FLAG)
		return 1;
	return size >= HDR_HEADER + 4 && get32(img, HDR_HEADER) == HDRS_MAGIC;
}

int bzimage_parse(const uint8_t *img, uint64_t size, uint64_t low_end, uint64_t ram_size,
		  const char *path, struct bzimage *bz, struct vmerr *e)
{
	const int in = KVMINI_EXIT_INPUT;

	memset(bz, 0, sizeof(*bz));
	/* Every field below is read only once the file is known to hold it. */
	if (size < HDR_MIN_END)
		return vmerr_set(e, in, 0,
				 "kernel '%s' is truncated: %llu bytes cannot hold a bzImage setup "
				 "header (0x%x bytes)",
				 path, (unsigned long long)size, HDR_MIN_END);
	uint16_t flag = get16(img, HDR_BOOT_FLAG);
	if (flag != BOOT_FLAG)
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' has boot flag 0x%04x at 0x1fe instead of 0xaa55: not a "
			"bzImage, or a corrupted one",
			path, flag);
	if (get32(img, HDR_HEADER) != HDRS_MAGIC)
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' has no \"HdrS\" signature at 0x202: not a bzImage (or "
			"one older than boot protocol 2.00)",
			path);
	bz->version = get16(img, HDR_VERSION);
	if (bz->version < MIN_PROTOCOL)
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' uses boot protocol %u.%02u, too old: kvmini needs 2.12+ "
			"(Linux 3.8 or newer)",
			path, bz->version >> 8, bz->version & 0xff);
	/* boot.rst, "64-bit Boot Protocol": the header ends at 0x0202 + the byte at 0x0201. */
	bz->hdr_end = HDR_HEADER + img[HDR_JUMP + 1];
	if (bz->hdr_end < HDR_MIN_END)
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' declares a setup header ending at 0x%llx, too short for "
			"protocol %u.%02u",
			path, (unsigned long long)bz->hdr_end, bz->version >> 8,
			bz->version & 0xff);
	if (bz->hdr_end > size)
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' is truncated: its setup header ends at 0x%llx but the "
			"file has %llu bytes",
			path, (unsigned long long)bz->hdr_end, (unsigned long long)size);
	if (!(get16(img, HDR_XLOADFLAGS) & XLF_KERNEL_64))
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' is not 64-bit capable (xloadflags lacks XLF_KERNEL_64); "
			"kvmini enters the kernel in 64-bit mode: build an x86_64 kernel",
			path);
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH))
		return vmerr_set(e, in, 0,
				 "kernel '%s' is a zImage (loadflags lacks LOADED_HIGH); only "
				 "bzImages are supported",
				 path);

	/* boot.rst, "Loading the Rest of the Kernel": setup_sects 0 means 4. */
	unsigned int sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	bz->setup_size = (uint64_t)(sects + 1) * 512;
	if (bz->setup_size > size)
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' is truncated: its real-mode setup (setup_sects %u) needs "
			"%llu bytes, the file has %llu",
			path, sects, (unsigned long long)bz->setup_size, (unsigned long long)size);
	bz->payload_size = (uint64_t)get32(img, HDR_SYSSIZE) * 16;
	if (bz->payload_size == 0)
		return vmerr_set(e, in, 0, "kernel '%s' has no protected-mode payload (syssize 0)",
				 path);
	if (bz->payload_size > size - bz->setup_size)
		return vmerr_set(
			e, in, ENOEXEC,
			"kernel '%s' is truncated: its payload (syssize) needs %llu bytes after "
			"the %llu-byte setup, the file has only %llu",
			path, (unsigned long long)bz->payload_size,
			(unsigned long long)bz->setup_size,
			(unsigned long long)(size - bz->setup_size));

	/*
	 * Where the kernel decompresses itself (arch/x86/boot/compressed/head_64.S): the load
	 * address rounded up to kernel_alignment if relocatable, but never below pref_address
	 * (LOAD_PHYSICAL_ADDR); it then needs init_size bytes from there.
	 */
	uint64_t base = LAYOUT_HIMEM;
	uint32_t align = get32(img, HDR_KERNEL_ALIGNMENT);
	if (img[HDR_RELOCATABLE] && align >= 4096 && align <= (1u << 30) && !(align & (align - 1)))
		base = (base + align - 1) & ~(uint64_t)(align - 1);
	uint64_t pref = get64(img, HDR_PREF_ADDRESS);
	if (pref > base)
		base = pref;
	uint32_t init_size = get32(img, HDR_INIT_SIZE);
	uint64_t end = base <= UINT64_MAX - init_size ? base + init_size : UINT64_MAX;
	if (end < LAYOUT_HIMEM + bz->payload_size)
		end = LAYOUT_HIMEM + bz->payload_size;
	if (end > low_end)
		return vmerr_set(
			e, in, 0,
			"kernel '%s' needs RAM up to 0x%llx (init_size %u KiB from 0x%llx) "
			"but --mem %llu MiB has RAM below the MMIO hole only up to 0x%llx; use "
			"a larger --mem",
			path, (unsigned long long)end, init_size >> 10, (unsigned long long)base,
			(unsigned long long)(ram_size >> 20), (unsigned long long)low_end);
	bz->kernel_end = end;

	/* initrd_addr_max is the highest byte the initrd may occupy (boot.rst, 2.03+). */
	bz->initrd_top = (uint64_t)get32(img, HDR_INITRD_ADDR_MAX) + 1;
	if (bz->initrd_top > low_end)
		bz->initrd_top = low_end;
	/* cmdline_size counts the characters without the terminating NUL (2.06+). */
	bz->cmdline_max = get32(img, HDR_CMDLINE_SIZE);
	if (bz->cmdline_max > LAYOUT_CMDLINE_MAX - 1)
		bz->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	return 0;
}

int bzimage_load(const struct gmem *gm, const uint8_t *img, const struct bzimage *bz,
		 struct boot_info *bi)
{
	uint8_t *dst = gmem_ptr(gm, LAYOUT_HIMEM, bz->payload_size);

	if (!dst)
		return -EFAULT;
	/* boot.rst: the protected-mode kernel starts right after the setup sectors. */
	memcpy(dst, img + bz->setup_size, bz->payload_size);
	bi->mode = BOOT_LINUX64;
	bi->entry = LAYOUT_HIMEM + ENTRY_64_OFFSET;
	bi->kernel_start = LAYOUT_HIMEM;
	bi->kernel_end = bz->kernel_end;
	return 0;
}

int bzimage_write_params(const struct gmem *gm, const uint8_t *img, const struct bzimage *bz,
			 struct boot_info *bi, const struct e820_entry *map, unsigned int n)
{
	if (n > E820_MAX_ENTRIES)
		return -EINVAL;
	uint8_t *bp = gmem_ptr(gm, LAYOUT_ZERO_PAGE, BP_SIZE);
	if (!bp)
		return -EFAULT;

	/*
	 * boot.rst, "64-bit Boot Protocol": start from an all-zero boot_params, copy the image's
	 * setup header into it, then fill in what the loader decides.
	 */
	memset(bp, 0, BP_SIZE);
	uint64_t hdr_end = bz->hdr_end < BP_HDR_LIMIT ? bz->hdr_end : BP_HDR_LIMIT;
	memcpy(bp + BP_HDR, img + BP_HDR, hdr_end - BP_HDR);

	put16(bp, HDR_VID_MODE, VID_MODE_NORMAL);
	bp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
	put16(bp, HDR_HEAP_END_PTR, HEAP_END);
	put32(bp, HDR_CMD_LINE_PTR, (uint32_t)bi->cmdline);
	put32(bp, BP_EXT_CMD_LINE_PTR, (uint32_t)(bi->cmdline >> 32));
	put32(bp, HDR_RAMDISK_IMAGE, (uint32_t)bi->initrd_start);
	put32(bp, HDR_RAMDISK_SIZE, (uint32_t)bi->initrd_size);
	put32(bp, BP_EXT_RAMDISK_IMAGE, (uint32_t)(bi->initrd_start >> 32));
	put32(bp, BP_EXT_RAMDISK_SIZE, (uint32_t)(bi->initrd_size >> 32));
	put64(bp, HDR_SETUP_DATA, 0); /* no setup_data list */

	bp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(bp + BP_E820_TABLE, map, n * sizeof(*map));
	bi->params = LAYOUT_ZERO_PAGE;
	return 0;
}
