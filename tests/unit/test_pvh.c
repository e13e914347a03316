/* test_pvh: boot_load() with synthetic ELF vmlinux files carrying (or lacking) a PVH note. */
#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/boot.h"
#include "kvmini/e820.h"
#include "kvmini/gmem.h"
#include "kvmini/layout.h"
#include "kvmini/pvh.h"

#define MiB	  (1ULL << 20)
#define RAM	  (32 * MiB)
#define NOTE_OFF  0xb0 /* after the ELF header and two program headers */
#define DATA_OFF  0x100
#define DATA_LEN  0x200
#define LOAD_ADDR 0x100000ULL
#define ENTRY	  0x100010ULL

/* A valid image: PT_LOAD of DATA_LEN file bytes (memsz 0x1000) at 1 MiB and a PT_NOTE. */
struct elf_img {
	uint8_t buf[DATA_OFF + DATA_LEN];
	size_t len;
};

static Elf64_Ehdr *ehdr(struct elf_img *m)
{
	return (Elf64_Ehdr *)m->buf;
}

static Elf64_Phdr *phdr(struct elf_img *m, int i)
{
	return (Elf64_Phdr *)(m->buf + sizeof(Elf64_Ehdr)) + i;
}

static Elf64_Nhdr *nhdr(struct elf_img *m)
{
	return (Elf64_Nhdr *)(m->buf + NOTE_OFF);
}

static void elf_build(struct elf_img *m, unsigned int descsz)
{
	memset(m, 0, sizeof(*m));
	m->len = sizeof(m->buf);
	Elf64_Ehdr *eh = ehdr(m);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = 0xffffffff81000000ULL; /* virtual: must not be used */
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 2;
	*phdr(m, 0) = (Elf64_Phdr){.p_type = PT_LOAD,
				   .p_offset = DATA_OFF,
				   .p_vaddr = 0xffffffff81000000ULL,
				   .p_paddr = LOAD_ADDR,
				   .p_filesz = DATA_LEN,
				   .p_memsz = 0x1000,
				   .p_align = 0x1000};
	*phdr(m, 1) = (Elf64_Phdr){.p_type = PT_NOTE,
				   .p_offset = NOTE_OFF,
				   .p_filesz = sizeof(Elf64_Nhdr) + 4 + descsz,
				   .p_align = 4};
	*nhdr(m) = (Elf64_Nhdr){.n_namesz = 4, .n_descsz = descsz, .n_type = 18};
	memcpy(m->buf + NOTE_OFF + sizeof(Elf64_Nhdr), "Xen", 4);
	uint64_t entry = ENTRY;
	memcpy(m->buf + NOTE_OFF + sizeof(Elf64_Nhdr) + 4, &entry, descsz);
	for (size_t i = 0; i < DATA_LEN; i++)
		m->buf[DATA_OFF + i] = (uint8_t)(i * 3 + 5);
}

struct fx {
	struct gmem gm;
	struct vmerr e;
	struct boot_info bi;
	char *kernel;
	char *initrd;
	struct elf_img img;
};

static char *write_tmp(const void *data, size_t len)
{
	char *path = strdup("/tmp/kvmini-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (gmem_init(&f->gm, RAM, &f->e) < 0)
		return -1;
	elf_build(&f->img, 4);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->kernel)
		unlink(f->kernel);
	if (f->initrd)
		unlink(f->initrd);
	free(f->kernel);
	free(f->initrd);
	gmem_fini(&f->gm);
	free(f);
	return 0;
}

static int load(struct fx *f, const char *cmdline)
{
	if (f->kernel)
		unlink(f->kernel);
	free(f->kernel);
	f->kernel = write_tmp(f->img.buf, f->img.len);
	struct boot_config c = {
		.kernel_path = f->kernel, .initrd_path = f->initrd, .cmdline = cmdline, .cpus = 1};
	return boot_load(&f->gm, &c, &f->bi, &f->e);
}

static void expect_fail(struct fx *f, int ret, const char *word)
{
	assert_true(ret < 0);
	assert_int_equal(f->e.status, KVMINI_EXIT_INPUT);
	if (!strstr(f->e.msg, word))
		fail_msg("message \"%s\" lacks \"%s\"", f->e.msg, word);
}

static const uint8_t *guest(struct fx *f, gpa_t gpa, uint64_t len)
{
	const uint8_t *p = gmem_ptr(&f->gm, gpa, len);
	assert_non_null(p);
	return p;
}

/* Mirrors of the PVH ABI structures, to read back what the loader wrote. */
struct start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct modlist {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct memmap {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static void test_good(void **state)
{
	struct fx *f = *state;
	f->initrd = write_tmp("initrd-bytes", 12);
	/* Dirty the .bss area to see it zeroed. */
	memset(gmem_ptr(&f->gm, LOAD_ADDR, 0x1000), 0xaa, 0x1000);

	assert_int_equal(load(f, "console=ttyS0"), 0);
	assert_int_equal(f->bi.mode, BOOT_PVH32);
	assert_int_equal(f->bi.entry, ENTRY);
	assert_int_equal(f->bi.params, LAYOUT_PVH_START_INFO);
	assert_int_equal(f->bi.kernel_start, LOAD_ADDR);
	assert_int_equal(f->bi.kernel_end, LOAD_ADDR + 0x1000);
	assert_int_equal(f->bi.initrd_start, RAM - 4096);
	assert_int_equal(f->bi.initrd_size, 12);

	const uint8_t *k = guest(f, LOAD_ADDR, 0x1000);
	for (size_t i = 0; i < DATA_LEN; i++)
		assert_int_equal(k[i], (uint8_t)(i * 3 + 5));
	for (size_t i = DATA_LEN; i < 0x1000; i++)
		assert_int_equal(k[i], 0);
	assert_memory_equal(guest(f, RAM - 4096, 12), "initrd-bytes", 12);
	assert_memory_equal(guest(f, LAYOUT_CMDLINE, 14), "console=ttyS0", 14);

	struct start_info si;
	memcpy(&si, guest(f, LAYOUT_PVH_START_INFO, sizeof(si)), sizeof(si));
	assert_int_equal(sizeof(si), 56);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.nr_modules, 1);
	assert_int_equal(si.cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(si.rsdp_paddr, 0);
	assert_int_equal(si.memmap_entries, 3);
	/* Module list and memory map share the start_info page. */
	assert_int_equal(si.modlist_paddr, LAYOUT_PVH_START_INFO + 56);
	assert_int_equal(si.memmap_paddr, LAYOUT_PVH_START_INFO + 56 + 32);
	struct modlist mod;
	memcpy(&mod, guest(f, si.modlist_paddr, sizeof(mod)), sizeof(mod));
	assert_int_equal(mod.paddr, RAM - 4096);
	assert_int_equal(mod.size, 12);
	assert_int_equal(mod.cmdline_paddr, 0);
	struct memmap mm[3];
	memcpy(mm, guest(f, si.memmap_paddr, sizeof(mm)), sizeof(mm));
	assert_int_equal(mm[0].addr, 0);
	assert_int_equal(mm[0].size, LAYOUT_MPTABLE);
	assert_int_equal(mm[0].type, E820_RAM);
	assert_int_equal(mm[1].addr, LAYOUT_MPTABLE);
	assert_int_equal(mm[1].size, LAYOUT_EBDA_END - LAYOUT_MPTABLE);
	assert_int_equal(mm[1].type, E820_RESERVED);
	assert_int_equal(mm[2].addr, LAYOUT_HIMEM);
	assert_int_equal(mm[2].size, RAM - LAYOUT_HIMEM);
	assert_int_equal(mm[2].type, E820_RAM);

	/* 32-bit GDT, no page tables needed. */
	uint64_t gdt[4];
	memcpy(gdt, guest(f, LAYOUT_GDT, 32), 32);
	assert_int_equal(gdt[1], 0x00cf9b000000ffffULL);
	assert_int_equal(gdt[2], 0x00cf93000000ffffULL);
	assert_int_equal(gdt[3] >> 40 & 0x9f, 0x8b); /* present, busy TSS */
	assert_memory_equal(guest(f, LAYOUT_MPTABLE, 4), "_MP_", 4);
}

static void test_no_initrd(void **state)
{
	struct fx *f = *state;
	assert_int_equal(load(f, NULL), 0);
	struct start_info si;
	memcpy(&si, guest(f, LAYOUT_PVH_START_INFO, sizeof(si)), sizeof(si));
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
}

static void test_note_u64(void **state)
{
	struct fx *f = *state;
	elf_build(&f->img, 8);
	assert_int_equal(load(f, ""), 0);
	assert_int_equal(f->bi.entry, ENTRY);
}

static void test_note_bad_desc_size(void **state)
{
	struct fx *f = *state;
	elf_build(&f->img, 8);
	nhdr(&f->img)->n_descsz = 6;
	expect_fail(f, load(f, ""), "6-byte");
}

static void test_note_bogus_sizes(void **state)
{
	struct fx *f = *state;
	nhdr(&f->img)->n_namesz = 0xfffffff0;
	expect_fail(f, load(f, ""), "malformed ELF note");
	vmerr_clear(&f->e);
	elf_build(&f->img, 4);
	nhdr(&f->img)->n_descsz = 0xffffffff;
	expect_fail(f, load(f, ""), "malformed ELF note");
	vmerr_clear(&f->e);
	elf_build(&f->img, 4);
	phdr(&f->img, 1)->p_filesz = 0x1000; /* note segment past the end of the file */
	expect_fail(f, load(f, ""), "note segment");
}

static void test_no_note(void **state)
{
	struct fx *f = *state;
	nhdr(&f->img)->n_type = 2; /* some other Xen note */
	expect_fail(f, load(f, ""), "no PVH entry note; build it with CONFIG_PVH=y");
	vmerr_clear(&f->e);
	phdr(&f->img, 1)->p_type = PT_NULL;
	expect_fail(f, load(f, ""), "no PVH entry note");
}

static void test_entry_outside_segments(void **state)
{
	struct fx *f = *state;
	uint32_t entry = 0x200000;
	memcpy(f->img.buf + NOTE_OFF + sizeof(Elf64_Nhdr) + 4, &entry, 4);
	expect_fail(f, load(f, ""), "outside every loaded segment");
}

static void test_load_outside_ram(void **state)
{
	struct fx *f = *state;
	phdr(&f->img, 0)->p_paddr = RAM - 0x800; /* runs past the end of RAM */
	expect_fail(f, load(f, ""), "not inside guest RAM");
	vmerr_clear(&f->e);
	phdr(&f->img, 0)->p_paddr = 0x10000; /* below 1 MiB, where the boot tables live */
	expect_fail(f, load(f, ""), "not inside guest RAM");
	vmerr_clear(&f->e);
	phdr(&f->img, 0)->p_paddr = 0xfffffffffffff000ULL; /* wraps */
	expect_fail(f, load(f, ""), "not inside guest RAM");
}

static void test_nothing_written_on_error(void **state)
{
	struct fx *f = *state;
	phdr(&f->img, 1)->p_type = PT_NULL;
	memset(gmem_ptr(&f->gm, LOAD_ADDR, 16), 0xaa, 16);
	expect_fail(f, load(f, ""), "no PVH entry note");
	assert_int_equal(*guest(f, LOAD_ADDR, 1), 0xaa);
}

static void test_phdrs_past_eof(void **state)
{
	struct fx *f = *state;
	ehdr(&f->img)->e_phoff = f->img.len - 10;
	expect_fail(f, load(f, ""), "program headers");
	vmerr_clear(&f->e);
	ehdr(&f->img)->e_phoff = 0xffffffffffffffc0ULL; /* offset + size would wrap */
	expect_fail(f, load(f, ""), "program headers");
	vmerr_clear(&f->e);
	elf_build(&f->img, 4);
	ehdr(&f->img)->e_phentsize = 32;
	expect_fail(f, load(f, ""), "program header table");
}

static void test_segment_past_eof(void **state)
{
	struct fx *f = *state;
	phdr(&f->img, 0)->p_filesz = 0x1000;
	expect_fail(f, load(f, ""), "truncated");
	vmerr_clear(&f->e);
	phdr(&f->img, 0)->p_offset = 0xfffffffffffff000ULL;
	expect_fail(f, load(f, ""), "truncated");
}

static void test_filesz_gt_memsz(void **state)
{
	struct fx *f = *state;
	phdr(&f->img, 0)->p_memsz = 0x100;
	expect_fail(f, load(f, ""), "p_filesz 512 exceeds p_memsz 256");
}

static void test_bad_elf_headers(void **state)
{
	struct fx *f = *state;
	f->img.buf[EI_CLASS] = ELFCLASS32;
	expect_fail(f, load(f, ""), "not a 64-bit ELF");
	vmerr_clear(&f->e);
	elf_build(&f->img, 4);
	ehdr(&f->img)->e_machine = EM_386;
	expect_fail(f, load(f, ""), "another machine");
	vmerr_clear(&f->e);
	elf_build(&f->img, 4);
	ehdr(&f->img)->e_type = ET_DYN;
	expect_fail(f, load(f, ""), "not an executable");
	vmerr_clear(&f->e);
	elf_build(&f->img, 4);
	f->img.len = 40;
	expect_fail(f, load(f, ""), "truncated inside its ELF header");
}

static void test_cmdline_max(void **state)
{
	struct fx *f = *state;
	char *c = malloc(LAYOUT_CMDLINE_MAX + 1);
	memset(c, 'y', LAYOUT_CMDLINE_MAX);
	c[LAYOUT_CMDLINE_MAX] = '\0';
	expect_fail(f, load(f, c), "at most 65535");
	vmerr_clear(&f->e);
	c[LAYOUT_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(load(f, c), 0);
	free(c);
}

static void test_initrd_no_room(void **state)
{
	struct fx *f = *state;
	/* The kernel's .bss reaches 8 KiB below the end of RAM; a 16 KiB initrd cannot fit. */
	phdr(&f->img, 0)->p_memsz = RAM - 8192 - LOAD_ADDR;
	f->initrd = write_tmp("x", 1);
	int fd = open(f->initrd, O_WRONLY);
	assert_int_equal(ftruncate(fd, 16384), 0);
	close(fd);
	expect_fail(f, load(f, ""), "does not fit");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_initrd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_note_u64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_note_bad_desc_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_note_bogus_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_note, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_outside_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_outside_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_written_on_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_phdrs_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_segment_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filesz_gt_memsz, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_elf_headers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_no_room, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
