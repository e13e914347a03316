/* pvh: check and load an ELF vmlinux through its PVH entry (Xen PVH boot ABI, hvm_start_info). */
#ifndef KVMINI_PVH_H
#define KVMINI_PVH_H

#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/e820.h"
#include "kvmini/gmem.h"
#include "kvmini/vmerr.h"

/* Xen's note type for the 32-bit physical entry point (xen/interface/elfnote.h). */
#define PVH_NOTE_PHYS32_ENTRY 18
#define PVH_START_MAGIC	      0x336ec578u

/* Nonzero if `img` starts with the ELF magic. */
int pvh_probe(const uint8_t *img, uint64_t size);

/*
 * Validate the ELF `img` (ELF64, little-endian, x86-64, ET_EXEC; program headers, every
 * PT_LOAD and every note bounds-checked), find its PVH entry note, then copy each PT_LOAD to
 * its physical address and zero its tail. Nothing is written to `gm` unless all checks pass.
 * Sets bi->mode, entry, kernel_start and kernel_end. Returns 0 or -EINVAL with a message
 * naming `path` in `e`.
 */
int pvh_load(const struct gmem *gm, const uint8_t *img, uint64_t size, const char *path,
	     struct boot_info *bi, struct vmerr *e);

/*
 * Write hvm_start_info (version 1) at LAYOUT_PVH_START_INFO, followed in the same page by
 * the module list (the initrd, if bi->initrd_size) and the memory map `map` of `n` entries;
 * set bi->params. Returns 0, -EINVAL if `n` exceeds E820_MAX_ENTRIES, or -EFAULT.
 */
int pvh_write_start_info(const struct gmem *gm, struct boot_info *bi, const struct e820_entry *map,
			 unsigned int n);

#endif
