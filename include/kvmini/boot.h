/* boot: load a Linux kernel (bzImage or PVH vmlinux), initrd and command line into a guest. */
#ifndef KVMINI_BOOT_H
#define KVMINI_BOOT_H

#include <linux/kvm.h>
#include <stdint.h>

#include "kvmini/gmem.h"
#include "kvmini/vmerr.h"

enum boot_mode {
	BOOT_LINUX64 = 1, /* bzImage: 64-bit entry, paging on, RSI = zero page */
	BOOT_PVH32 =
		2, /* ELF with a PVH note: 32-bit protected mode, paging off, RBX = start_info */
};

struct boot_config {
	const char *kernel_path;
	const char *initrd_path; /* NULL: no initrd */
	const char *cmdline;	 /* the complete command line, already assembled */
	unsigned int cpus;	 /* for the MP table */
};

/* Where things landed; everything the vCPU set-up and the log need. */
struct boot_info {
	enum boot_mode mode;
	gpa_t entry;  /* first instruction the BSP runs */
	gpa_t params; /* zero page (BOOT_LINUX64) or hvm_start_info (BOOT_PVH32) */
	gpa_t kernel_start;
	gpa_t kernel_end; /* exclusive; includes the kernel's own working space (init_size) */
	gpa_t initrd_start;
	uint64_t initrd_size;
	gpa_t cmdline;
	uint64_t cmdline_len; /* without the NUL */
};

/*
 * Read the kernel (and initrd), check them, and write into guest memory: the kernel, the
 * initrd, the command line, the boot parameters (zero page with e820, or PVH start_info with
 * its memory map), the MP table for `cpus` CPUs, the GDT and (BOOT_LINUX64) identity page
 * tables. Each problem gets its own message in `e` with KVMINI_EXIT_INPUT. Returns 0 or -errno.
 */
int boot_load(const struct gmem *gm, const struct boot_config *cfg, struct boot_info *bi,
	      struct vmerr *e);

/*
 * Fill the bootstrap processor's registers for entering the loaded kernel. `sregs` must hold
 * what KVM_GET_SREGS returned (only the fields boot cares about are changed). Pure function.
 */
void boot_cpu_state(const struct boot_info *bi, struct kvm_regs *regs, struct kvm_sregs *sregs);

#endif
