/* pvh: load an ELF vmlinux at its physical addresses and enter it through its PVH note. */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "kvmini/layout.h"
#include "kvmini/pvh.h"

/* include/xen/interface/hvm/start_info.h: version 1 of the start-of-day structure. */
struct hvm_start_info {
	uint32_t magic; /* PVH_START_MAGIC */
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version 1+ */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* same values as e820 */
	uint32_t reserved;
};

/* Notes larger than this are not PVH notes anyway; it bounds what we walk. */
#define PVH_NOTE_SEG_MAX (1u << 20)

int pvh_probe(const uint8_t *img, uint64_t size)
{
	return size >= SELFMAG && memcmp(img, ELFMAG, SELFMAG) == 0;
}

/* Read program header `i`, whose bounds pvh_check_ehdr() established. */
static Elf64_Phdr pvh_phdr(const uint8_t *img, const Elf64_Ehdr *eh, unsigned int i)
{
	Elf64_Phdr ph;

	memcpy(&ph, img + eh->e_phoff + (uint64_t)i * eh->e_phentsize, sizeof(ph));
	return ph;
}

static int pvh_check_ehdr(const uint8_t *img, uint64_t size, const char *path, Elf64_Ehdr *eh,
			  struct vmerr *e)
{
	const int in = KVMINI_EXIT_INPUT;

	if (size >= EI_NIDENT && img[EI_CLASS] != ELFCLASS64)
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' is not a 64-bit ELF file; kvmini loads x86-64 vmlinux "
			"files only",
			path);
	if (size < sizeof(*eh))
		return vmerr_set(e, in, 0, "vmlinux '%s' is truncated inside its ELF header", path);
	memcpy(eh, img, sizeof(*eh));
	if (img[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' is an ELF file for another machine (e_machine %u), not "
			"x86-64",
			path, eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' is not an executable ELF (e_type %u); pass the kernel's "
			"vmlinux, not an object or shared library",
			path, eh->e_type);
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM || eh->e_phentsize != sizeof(Elf64_Phdr))
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' has a bad program header table (%u entries of %u bytes)",
			path, eh->e_phnum, eh->e_phentsize);
	/* e_phnum < 2^16 and e_phentsize == 56, so the product cannot overflow. */
	uint64_t table = (uint64_t)eh->e_phnum * eh->e_phentsize;
	if (eh->e_phoff > size || table > size - eh->e_phoff)
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' is truncated: its program headers at offset 0x%llx run "
			"past the end of the file (%llu bytes)",
			path, (unsigned long long)eh->e_phoff, (unsigned long long)size);
	return 0;
}

/* Check a PT_LOAD against the file and guest RAM; boot structures live below LAYOUT_HIMEM. */
static int pvh_check_load(const struct gmem *gm, uint64_t size, const char *path,
			  const Elf64_Phdr *ph, unsigned int i, struct vmerr *e)
{
	const int in = KVMINI_EXIT_INPUT;

	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' is truncated: segment %u needs file bytes up to 0x%llx, "
			"the file has %llu",
			path, i, (unsigned long long)(ph->p_offset + ph->p_filesz),
			(unsigned long long)size);
	if (ph->p_filesz > ph->p_memsz)
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' segment %u is corrupt: p_filesz %llu exceeds p_memsz %llu",
			path, i, (unsigned long long)ph->p_filesz, (unsigned long long)ph->p_memsz);
	if (ph->p_paddr < LAYOUT_HIMEM || !gmem_ptr(gm, ph->p_paddr, ph->p_memsz))
		return vmerr_set(
			e, in, EFBIG,
			"vmlinux '%s' segment %u at [0x%llx, +0x%llx) is not inside guest RAM "
			"above 1 MiB (--mem %llu MiB); use a larger --mem or another kernel",
			path, i, (unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz,
			(unsigned long long)(gm->ram_size >> 20));
	return 0;
}

/*
 * Walk the notes of one PT_NOTE segment (ELF gABI: namesz, descsz, type, then name and desc
 * each padded to the segment's alignment) looking for Xen's PHYS32_ENTRY note. Returns 1 and
 * sets *entry when found, 0 when absent, -ENOEXEC on a malformed note.
 */
static int pvh_find_entry(const uint8_t *img, uint64_t size, const char *path, const Elf64_Phdr *ph,
			  uint64_t *entry, struct vmerr *e)
{
	const int in = KVMINI_EXIT_INPUT;
	const uint64_t align = ph->p_align == 8 ? 8 : 4;

	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset ||
	    ph->p_filesz > PVH_NOTE_SEG_MAX)
		return vmerr_set(e, in, 0,
				 "vmlinux '%s' has a note segment at offset 0x%llx (%llu bytes) "
				 "outside the file or implausibly large",
				 path, (unsigned long long)ph->p_offset,
				 (unsigned long long)ph->p_filesz);
	const uint8_t *seg = img + ph->p_offset;
	uint64_t len = ph->p_filesz;
	uint64_t off = 0;
	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, seg + off, sizeof(nh));
		/* 32-bit sizes in 64-bit arithmetic: none of these sums can wrap. */
		uint64_t name = off + sizeof(nh);
		uint64_t desc = name + ((nh.n_namesz + align - 1) & ~(align - 1));
		uint64_t next = desc + ((nh.n_descsz + align - 1) & ~(align - 1));
		if (desc + nh.n_descsz > len || next > len + align - 1)
			return vmerr_set(
				e, in, ENOEXEC,
				"vmlinux '%s' has a malformed ELF note at offset 0x%llx: its "
				"sizes (name %u, desc %u) run past its segment",
				path, (unsigned long long)(ph->p_offset + off), nh.n_namesz,
				nh.n_descsz);
		if (nh.n_namesz == 4 && memcmp(seg + name, "Xen", 4) == 0 &&
		    nh.n_type == PVH_NOTE_PHYS32_ENTRY) {
			/* head.S emits it with _ASM_PTR: 4 bytes on 32-bit, 8 on 64-bit builds. */
			if (nh.n_descsz == 4) {
				uint32_t v;
				memcpy(&v, seg + desc, 4);
				*entry = v;
			} else if (nh.n_descsz == 8) {
				memcpy(entry, seg + desc, 8);
			} else {
				return vmerr_set(e, in, 0,
						 "vmlinux '%s' has a PVH entry note with a %u-byte "
						 "value; expected 4 or 8",
						 path, nh.n_descsz);
			}
			return 1;
		}
		off = next < len ? next : len;
	}
	return 0;
}

int pvh_load(const struct gmem *gm, const uint8_t *img, uint64_t size, const char *path,
	     struct boot_info *bi, struct vmerr *e)
{
	const int in = KVMINI_EXIT_INPUT;
	Elf64_Ehdr eh;
	int ret = pvh_check_ehdr(img, size, path, &eh, e);
	if (ret)
		return ret;

	/* Pass 1: check everything, write nothing. */
	uint64_t entry = 0, lo = UINT64_MAX, hi = 0;
	int found = 0, entry_loaded = 0;
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = pvh_phdr(img, &eh, i);
		if (ph.p_type == PT_NOTE && !found) {
			found = pvh_find_entry(img, size, path, &ph, &entry, e);
			if (found < 0)
				return found;
		}
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		ret = pvh_check_load(gm, size, path, &ph, i, e);
		if (ret)
			return ret;
		if (ph.p_paddr < lo)
			lo = ph.p_paddr;
		if (ph.p_paddr + ph.p_memsz > hi)
			hi = ph.p_paddr + ph.p_memsz;
	}
	if (!found)
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' has no PVH entry note; build it with CONFIG_PVH=y or "
			"use the bzImage",
			path);
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = pvh_phdr(img, &eh, i);
		if (ph.p_type == PT_LOAD && entry >= ph.p_paddr && entry - ph.p_paddr < ph.p_memsz)
			entry_loaded = 1;
	}
	/* The entry runs in 32-bit mode with paging off, so it must be a loaded address < 4 GiB. */
	if (!entry_loaded || entry >= (1ULL << 32))
		return vmerr_set(
			e, in, ENOEXEC,
			"vmlinux '%s' has its PVH entry 0x%llx outside every loaded segment", path,
			(unsigned long long)entry);

	/* Pass 2: copy p_filesz bytes, zero the rest up to p_memsz (.bss). */
	for (unsigned int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph = pvh_phdr(img, &eh, i);
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		uint8_t *dst = gmem_ptr(gm, ph.p_paddr, ph.p_memsz);
		if (!dst)
			return -EFAULT;
		memcpy(dst, img + ph.p_offset, ph.p_filesz);
		memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	bi->mode = BOOT_PVH32;
	bi->entry = entry;
	bi->kernel_start = lo;
	bi->kernel_end = hi;
	return 0;
}

int pvh_write_start_info(const struct gmem *gm, struct boot_info *bi, const struct e820_entry *map,
			 unsigned int n)
{
	if (n > E820_MAX_ENTRIES)
		return -EINVAL;
	/* One page: start_info, then the module list, then the memory map. */
	const gpa_t si_at = LAYOUT_PVH_START_INFO;
	const gpa_t mod_at = si_at + sizeof(struct hvm_start_info);
	const gpa_t map_at = mod_at + sizeof(struct hvm_modlist_entry);
	_Static_assert(sizeof(struct hvm_start_info) + sizeof(struct hvm_modlist_entry) +
				       E820_MAX_ENTRIES * sizeof(struct hvm_memmap_table_entry) <=
			       4096,
		       "PVH boot information must fit in one page");
	uint8_t *page = gmem_ptr(gm, si_at, 4096);
	if (!page)
		return -EFAULT;
	memset(page, 0, 4096);

	struct hvm_start_info si = {
		.magic = PVH_START_MAGIC,
		.version = 1,
		.cmdline_paddr = bi->cmdline,
		.rsdp_paddr = 0, /* no ACPI: Linux finds the CPUs through the MP table */
		.memmap_paddr = map_at,
		.memmap_entries = n,
	};
	if (bi->initrd_size) {
		struct hvm_modlist_entry mod = {.paddr = bi->initrd_start, .size = bi->initrd_size};
		si.nr_modules = 1;
		si.modlist_paddr = mod_at;
		memcpy(page + (mod_at - si_at), &mod, sizeof(mod));
	}
	memcpy(page, &si, sizeof(si));
	for (unsigned int i = 0; i < n; i++) {
		struct hvm_memmap_table_entry m = {
			.addr = map[i].addr, .size = map[i].size, .type = map[i].type};
		memcpy(page + (map_at - si_at) + i * sizeof(m), &m, sizeof(m));
	}
	bi->params = si_at;
	return 0;
}
