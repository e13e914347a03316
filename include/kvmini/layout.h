/* layout: the fixed guest-physical memory map of an x86-64 kvmini VM. */
#ifndef KVMINI_LAYOUT_H
#define KVMINI_LAYOUT_H

/*
 * Guest physical map (addresses as Firecracker uses them where they overlap):
 *
 *   0x0000_0500  GDT used at entry
 *   0x0000_6000  PVH hvm_start_info, module list and memory map (vmlinux boots)
 *   0x0000_7000  zero page, struct boot_params (bzImage boots)
 *   0x0000_8ff0  initial stack pointer
 *   0x0000_9000  PML4, 0xa000 PDPT, 0xb000..0xefff four page directories: 4 GiB identity map
 *   0x0002_0000  kernel command line (up to LAYOUT_CMDLINE_MAX bytes)
 *   0x0009_fc00  MP floating pointer and MP configuration table (SMP), reserved in e820
 *   0x0010_0000  kernel (bzImage protected-mode part, or the ELF's own load addresses)
 *   ...          initrd, as high as the kernel allows below the MMIO hole
 *   0xc000_0000  start of the 32-bit MMIO hole (no RAM): devices, LAPIC, IOAPIC
 *   0xd000_0000  virtio-mmio device windows
 *   0xd100_0000  boot timer (the guest's init writes 123 here; see boottimer.h)
 *   0xfec0_0000  IOAPIC, 0xfee0_0000 LAPIC (in-kernel)
 *   0xfffb_c000  KVM identity-map page and TSS (KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_TSS_ADDR)
 *   0x1_0000_0000 RAM above the hole, when the guest has more than 3 GiB
 */
#define LAYOUT_GDT	      0x500ULL
#define LAYOUT_PVH_START_INFO 0x6000ULL
#define LAYOUT_ZERO_PAGE      0x7000ULL
#define LAYOUT_BOOT_STACK     0x8ff0ULL
#define LAYOUT_PML4	      0x9000ULL
#define LAYOUT_PDPT	      0xa000ULL
#define LAYOUT_PD	      0xb000ULL /* four pages: 0xb000..0xefff */
#define LAYOUT_CMDLINE	      0x20000ULL
#define LAYOUT_CMDLINE_MAX    0x10000ULL
#define LAYOUT_MPTABLE	      0x9fc00ULL
#define LAYOUT_EBDA_END	      0x100000ULL /* [MPTABLE, 1 MiB) reserved: EBDA, VGA, BIOS */
#define LAYOUT_HIMEM	      0x100000ULL
#define LAYOUT_MMIO_HOLE      0xc0000000ULL
#define LAYOUT_MMIO_DEVICES   0xd0000000ULL
#define LAYOUT_BOOT_TIMER     0xd1000000ULL
#define LAYOUT_IOAPIC	      0xfec00000ULL
#define LAYOUT_LAPIC	      0xfee00000ULL
#define LAYOUT_IDENTITY_MAP   0xfffbc000ULL
#define LAYOUT_TSS	      0xfffbd000ULL
#define LAYOUT_HIGH_RAM	      0x100000000ULL

/* Smallest and largest guest RAM kvmini accepts. */
#define LAYOUT_MIN_RAM (16ULL << 20)
#define LAYOUT_MAX_RAM (1ULL << 40)

/* Legacy ports and lines. */
#define LAYOUT_COM1_PORT 0x3f8
#define LAYOUT_COM1_IRQ	 4

/* virtio-mmio device i: window at LAYOUT_MMIO_DEVICES + i * 4 KiB, edge interrupt on GSI 5 + i. */
#define LAYOUT_VIRTIO_STRIDE   0x1000ULL
#define LAYOUT_VIRTIO_IRQ_BASE 5
#define LAYOUT_I8042_DATA      0x60
#define LAYOUT_I8042_CMD       0x64
#define LAYOUT_I8042_IRQ       1 /* keyboard */

#endif
