/* boot: load a kernel, initrd and command line, build the boot tables, and set the BSP state. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/boot.h"
#include "kvmini/bzimage.h"
#include "kvmini/e820.h"
#include "kvmini/layout.h"
#include "kvmini/mptable.h"
#include "kvmini/pvh.h"

/*
 * GDT used at entry (selectors are index * 8). Descriptors follow the SDM, vol. 3, 3.4.5.
 * boot.rst's 64-bit protocol names __BOOT_CS 0x10 / __BOOT_DS 0x18, but startup_64 loads its
 * own GDT before using any selector, so kvmini keeps Firecracker's 0x08 / 0x10 / 0x18 layout.
 */
#define GDT_CODE64  0x00af9b000000ffffULL /* G, L, P, DPL 0, execute/read accessed */
#define GDT_CODE32  0x00cf9b000000ffffULL /* G, D/B, P, DPL 0, execute/read accessed */
#define GDT_DATA    0x00cf93000000ffffULL /* G, D/B, P, DPL 0, read/write accessed */
#define GDT_TSS64   0x008f8b000000ffffULL /* G, P, busy TSS, limit 0xfffff pages */
#define GDT_TSS32   0x00008b0000000067ULL /* P, busy 32-bit TSS, limit 0x67 (PVH ABI) */
#define GDT_ENTRIES 4
#define SEL_CODE    0x08
#define SEL_DATA    0x10
#define SEL_TSS	    0x18

#define PTE_PRESENT 0x1ULL
#define PTE_RW	    0x2ULL
#define PTE_PS	    0x80ULL /* 2 MiB page in a page directory entry */

#define CR0_PE	    0x1ULL
#define CR0_ET	    0x10ULL
#define CR0_PG	    0x80000000ULL
#define CR4_PAE	    0x20ULL
#define EFER_LME    0x100ULL
#define EFER_LMA    0x400ULL
#define RFLAGS_RSVD 0x2ULL /* bit 1 is always set; IF stays clear */

#define PAGE_SIZE 4096ULL

/* Open `path` read-only and map it; a directory, an empty or a special file is refused. */
static int boot_map_file(const char *what, const char *path, const uint8_t **img, uint64_t *size,
			 struct vmerr *e)
{
	const int in = KVMINI_EXIT_INPUT;
	struct stat st;

	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vmerr_set(e, errno == EMFILE || errno == ENFILE ? KVMINI_EXIT_RESOURCE : in,
				 errno, "cannot open %s '%s'", what, path);
	int ret = 0;
	if (fstat(fd, &st) < 0) {
		ret = vmerr_set(e, in, errno, "cannot stat %s '%s'", what, path);
	} else if (S_ISDIR(st.st_mode)) {
		ret = vmerr_set(e, in, 0, "%s '%s' is a directory; pass the image file", what,
				path);
	} else if (!S_ISREG(st.st_mode)) {
		ret = vmerr_set(e, in, 0, "%s '%s' is not a regular file", what, path);
	} else if (st.st_size == 0) {
		ret = vmerr_set(e, in, 0, "%s '%s' is empty", what, path);
	} else {
		/* Read-only private mapping: the file is never copied as a whole into the heap. */
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "cannot map %s '%s'", what,
					path);
		else {
			*img = p;
			*size = (uint64_t)st.st_size;
		}
	}
	close(fd);
	return ret;
}

/*
 * Put the initrd as high as possible below `top`, page aligned, above the kernel (boot.rst
 * "Details of Header Fields", ramdisk_image: "as high as possible"), and read it into place.
 */
static int boot_load_initrd(const struct gmem *gm, const char *path, gpa_t top,
			    struct boot_info *bi, struct vmerr *e)
{
	const uint8_t *img = NULL;
	uint64_t size = 0;
	int ret = boot_map_file("initrd", path, &img, &size, e);
	if (ret)
		return ret;
	gpa_t floor = (bi->kernel_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	gpa_t start = size <= top ? (top - size) & ~(PAGE_SIZE - 1) : 0;
	if (size > top || start < floor) {
		ret = vmerr_set(
			e, KVMINI_EXIT_INPUT, EFBIG,
			"initrd '%s' (%llu MiB) does not fit between the kernel's end 0x%llx "
			"and 0x%llx with --mem %llu MiB; use a larger --mem",
			path, (unsigned long long)((size + (1 << 20) - 1) >> 20),
			(unsigned long long)floor, (unsigned long long)top,
			(unsigned long long)(gm->ram_size >> 20));
		goto out;
	}
	uint8_t *dst = gmem_ptr(gm, start, size);
	if (!dst) {
		ret = vmerr_set(e, KVMINI_EXIT_INPUT, 0,
				"initrd '%s' does not fit in guest RAM at 0x%llx", path,
				(unsigned long long)start);
		goto out;
	}
	memcpy(dst, img, size);
	bi->initrd_start = start;
	bi->initrd_size = size;
out:
	munmap((void *)img, size);
	return ret;
}

/* Identity-map the first 4 GiB with 2 MiB pages: one PML4 entry, 4 PDPT entries, 4 PDs. */
static int boot_write_page_tables(const struct gmem *gm)
{
	uint64_t *pml4 = gmem_ptr(gm, LAYOUT_PML4, PAGE_SIZE);
	uint64_t *pdpt = gmem_ptr(gm, LAYOUT_PDPT, PAGE_SIZE);
	uint64_t *pd = gmem_ptr(gm, LAYOUT_PD, 4 * PAGE_SIZE);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	memset(pml4, 0, PAGE_SIZE);
	memset(pdpt, 0, PAGE_SIZE);
	pml4[0] = LAYOUT_PDPT | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * PAGE_SIZE) | PTE_PRESENT | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | PTE_PRESENT | PTE_RW | PTE_PS;
	return 0;
}

static int boot_write_gdt(const struct gmem *gm, enum boot_mode mode)
{
	const uint64_t gdt[GDT_ENTRIES] = {
		0,
		mode == BOOT_PVH32 ? GDT_CODE32 : GDT_CODE64,
		GDT_DATA,
		mode == BOOT_PVH32 ? GDT_TSS32 : GDT_TSS64,
	};
	return gmem_write(gm, LAYOUT_GDT, gdt, sizeof(gdt));
}

/* Write the command line with its NUL; its length was checked against the kernel's limit. */
static int boot_write_cmdline(const struct gmem *gm, const char *cmdline, uint64_t len,
			      struct boot_info *bi)
{
	int ret = gmem_write(gm, LAYOUT_CMDLINE, cmdline, len + 1);
	if (ret)
		return ret;
	bi->cmdline = LAYOUT_CMDLINE;
	bi->cmdline_len = len;
	return 0;
}

/* Load the kernel image and fill the mode-specific parts of `bi`. */
static int boot_load_kernel(const struct gmem *gm, const struct boot_config *cfg,
			    const uint8_t *img, uint64_t size, struct bzimage *bz,
			    uint64_t *cmdline_max, gpa_t *initrd_top, struct boot_info *bi,
			    struct vmerr *e)
{
	const char *path = cfg->kernel_path;
	uint64_t low_end = gmem_low_end(gm);
	int ret;

	if (pvh_probe(img, size)) {
		ret = pvh_load(gm, img, size, path, bi, e);
		*cmdline_max = LAYOUT_CMDLINE_MAX - 1; /* the PVH ABI has no limit of its own */
		*initrd_top = low_end;
	} else if (bzimage_probe(img, size)) {
		ret = bzimage_parse(img, size, low_end, gm->ram_size, path, bz, e);
		if (!ret)
			ret = bzimage_load(gm, img, bz, bi);
		*cmdline_max = bz->cmdline_max;
		*initrd_top = bz->initrd_top;
	} else {
		return vmerr_set(
			e, KVMINI_EXIT_INPUT, 0,
			"kernel '%s' is neither a bzImage (no HdrS header) nor an ELF vmlinux",
			path);
	}
	/* The loader's own message wins; this covers a failure that recorded none. */
	if (ret)
		vmerr_set(e, KVMINI_EXIT_INPUT, 0, "kernel '%s' does not fit in guest RAM", path);
	return ret;
}

int boot_load(const struct gmem *gm, const struct boot_config *cfg, struct boot_info *bi,
	      struct vmerr *e)
{
	const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
	struct e820_entry map[E820_MAX_ENTRIES];
	struct bzimage bz;
	uint64_t cmdline_max = 0;
	gpa_t initrd_top = 0;
	const uint8_t *img = NULL;
	uint64_t size = 0;

	memset(bi, 0, sizeof(*bi));
	if (cfg->cpus < 1 || cfg->cpus > MPTABLE_MAX_CPUS)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0,
				 "%u CPUs requested; kvmini supports 1 to %d", cfg->cpus,
				 MPTABLE_MAX_CPUS);
	if (gmem_low_end(gm) <= LAYOUT_HIMEM)
		return vmerr_set(
			e, KVMINI_EXIT_USAGE, 0,
			"guest RAM of %llu KiB is too small to boot Linux; use a larger --mem",
			(unsigned long long)(gm->ram_size >> 10));
	if (!cfg->kernel_path)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "no kernel given; pass --kernel FILE");

	int ret = boot_map_file("kernel", cfg->kernel_path, &img, &size, e);
	if (ret)
		return ret;
	ret = boot_load_kernel(gm, cfg, img, size, &bz, &cmdline_max, &initrd_top, bi, e);
	if (ret)
		goto out;

	uint64_t len = strlen(cmdline);
	if (len > cmdline_max) {
		ret = vmerr_set(e, KVMINI_EXIT_INPUT, 0,
				"command line is %llu bytes, kernel '%s' accepts at most %llu",
				(unsigned long long)len, cfg->kernel_path,
				(unsigned long long)cmdline_max);
		goto out;
	}
	ret = boot_write_cmdline(gm, cmdline, len, bi);
	if (!ret && cfg->initrd_path)
		ret = boot_load_initrd(gm, cfg->initrd_path, initrd_top, bi, e);
	if (ret)
		goto out;

	int n = e820_build(gm, map, E820_MAX_ENTRIES);
	ret = n < 0 ? n : 0;
	if (!ret && bi->mode == BOOT_LINUX64)
		ret = bzimage_write_params(gm, img, &bz, bi, map, (unsigned int)n);
	else if (!ret)
		ret = pvh_write_start_info(gm, bi, map, (unsigned int)n);
	if (!ret)
		ret = mptable_write(gm, LAYOUT_MPTABLE, cfg->cpus);
	if (!ret)
		ret = boot_write_gdt(gm, bi->mode);
	if (!ret && bi->mode == BOOT_LINUX64)
		ret = boot_write_page_tables(gm);
	if (ret)
		vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot write the boot tables into guest RAM");
out:
	munmap((void *)img, size);
	return ret;
}

/* Unpack a GDT descriptor into the form KVM_SET_SREGS takes (limit in bytes when G=1). */
static struct kvm_segment boot_segment(uint64_t desc, uint16_t selector)
{
	uint32_t limit = (uint32_t)((desc & 0xffff) | ((desc >> 32) & 0xf0000));
	uint8_t g = (desc >> 55) & 1;

	return (struct kvm_segment){
		.base = ((desc >> 16) & 0xffffff) | (((desc >> 56) & 0xff) << 24),
		.limit = g ? (limit << 12) | 0xfff : limit,
		.selector = selector,
		.type = (desc >> 40) & 0xf,
		.s = (desc >> 44) & 1,
		.dpl = (desc >> 45) & 3,
		.present = (desc >> 47) & 1,
		.avl = (desc >> 52) & 1,
		.l = (desc >> 53) & 1,
		.db = (desc >> 54) & 1,
		.g = g,
	};
}

void boot_cpu_state(const struct boot_info *bi, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	const int pvh = bi->mode == BOOT_PVH32;
	struct kvm_segment code = boot_segment(pvh ? GDT_CODE32 : GDT_CODE64, SEL_CODE);
	struct kvm_segment data = boot_segment(GDT_DATA, SEL_DATA);

	memset(regs, 0, sizeof(*regs));
	regs->rip = bi->entry;
	regs->rflags = RFLAGS_RSVD;
	regs->rsp = LAYOUT_BOOT_STACK;
	regs->rbp = LAYOUT_BOOT_STACK;
	if (pvh)
		regs->rbx = bi->params; /* PVH ABI: ebx = hvm_start_info */
	else
		regs->rsi = bi->params; /* boot.rst: %rsi = struct boot_params */

	sregs->cs = code;
	sregs->ds = data;
	sregs->es = data;
	sregs->fs = data;
	sregs->gs = data;
	sregs->ss = data;
	sregs->tr = boot_segment(pvh ? GDT_TSS32 : GDT_TSS64, SEL_TSS);
	sregs->gdt.base = LAYOUT_GDT;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	if (pvh) {
		/* PVH ABI: protected mode, paging off, cr4 clear (ET is read-only and set). */
		sregs->cr0 = CR0_PE | CR0_ET;
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
	} else {
		/* boot.rst "64-bit Boot Protocol": long mode, identity paging from LAYOUT_PML4. */
		sregs->cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs->cr3 = LAYOUT_PML4;
		sregs->cr4 = CR4_PAE;
		sregs->efer = EFER_LME | EFER_LMA;
	}
}
