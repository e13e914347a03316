/* bzimage: check and load a Linux bzImage for the 64-bit boot protocol (boot.rst). */
#ifndef KVMINI_BZIMAGE_H
#define KVMINI_BZIMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/e820.h"
#include "kvmini/gmem.h"
#include "kvmini/vmerr.h"

/* What bzimage_parse() learned from a validated setup header. */
struct bzimage {
	uint16_t version;      /* boot protocol, e.g. 0x020f for 2.15 */
	uint64_t setup_size;   /* real-mode part, (setup_sects + 1) * 512 bytes */
	uint64_t payload_size; /* protected-mode part, syssize * 16 bytes after the setup */
	uint64_t hdr_end;      /* the setup header is [0x1f1, hdr_end) of the file */
	gpa_t kernel_end;      /* exclusive end of the memory the kernel uses while booting */
	gpa_t initrd_top;      /* exclusive upper bound for the initrd (initrd_addr_max + 1) */
	uint64_t cmdline_max;  /* longest command line the kernel accepts, without the NUL */
};

/* Nonzero if `img` carries either bzImage magic (boot flag 0xAA55 at 0x1fe or "HdrS"). */
int bzimage_probe(const uint8_t *img, uint64_t size);

/*
 * Validate the bzImage `img` of `size` bytes against boot.rst and the guest RAM below
 * `low_end`, and fill `bz`. Reads every field only after checking it lies inside the file.
 * Returns 0 or -EINVAL with a message naming `path` in `e`.
 */
int bzimage_parse(const uint8_t *img, uint64_t size, uint64_t low_end, uint64_t ram_size,
		  const char *path, struct bzimage *bz, struct vmerr *e);

/*
 * Copy the protected-mode payload of a parsed image to LAYOUT_HIMEM and set bi->mode,
 * entry (LAYOUT_HIMEM + 0x200), kernel_start and kernel_end. Returns 0 or -EFAULT.
 */
int bzimage_load(const struct gmem *gm, const uint8_t *img, const struct bzimage *bz,
		 struct boot_info *bi);

/*
 * Build the zero page at LAYOUT_ZERO_PAGE from the image's setup header, the command line,
 * initrd and memory map recorded in `bi` and `map`, and set bi->params. Returns 0 or -EFAULT
 * (-EINVAL if `n` exceeds E820_MAX_ENTRIES).
 */
int bzimage_write_params(const struct gmem *gm, const uint8_t *img, const struct bzimage *bz,
			 struct boot_info *bi, const struct e820_entry *map, unsigned int n);

#endif
