/* test_bzimage: boot_load() with synthetic bzImage files, good and broken in every way. */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/boot.h"
#include "kvmini/e820.h"
#include "kvmini/gmem.h"
#include "kvmini/layout.h"

#define MiB (1ULL << 20)
#define RAM (64 * MiB)

/* The knobs of a synthetic bzImage; bz_default() gives a valid one. */
struct bz_opts {
	uint16_t boot_flag;
	uint32_t magic;
	uint16_t version;
	uint8_t hdr_len; /* byte at 0x201: header ends at 0x202 + hdr_len */
	uint16_t xloadflags;
	uint8_t loadflags;
	uint8_t setup_sects;
	uint32_t syssize;
	uint32_t init_size;
	uint64_t pref_address;
	uint32_t kernel_alignment;
	uint8_t relocatable;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	size_t payload_len;
	size_t cut; /* bytes removed from the end of the file */
};

static struct bz_opts bz_default(void)
{
	return (struct bz_opts){
		.boot_flag = 0xaa55,
		.magic = 0x53726448,
		.version = 0x020f,
		.hdr_len = 0x6e,
		.xloadflags = 0x3,
		.loadflags = 0x1,
		.setup_sects = 1,
		.syssize = 8192 / 16,
		.init_size = 4 * MiB,
		.pref_address = 16 * MiB,
		.kernel_alignment = 2 * MiB,
		.relocatable = 1,
		.cmdline_size = 2047,
		.initrd_addr_max = 0x7fffffff,
		.payload_len = 8192,
	};
}

static void put(uint8_t *p, size_t off, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get(const uint8_t *p, size_t off, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[off + i];
	return v;
}

static char *write_tmp(const void *data, size_t len)
{
	char *path = strdup("/tmp/kvmini-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Build the image in memory: setup (setup_sects + 1 sectors), then the payload pattern. */
static uint8_t *bz_build(const struct bz_opts *o, size_t *len)
{
	unsigned int sects = o->setup_sects ? o->setup_sects : 4;
	size_t setup = (size_t)(sects + 1) * 512;
	size_t total = setup + o->payload_len;
	uint8_t *img = calloc(1, total < 0x400 ? 0x400 : total);

	put(img, 0x1f1, o->setup_sects, 1);
	put(img, 0x1f4, o->syssize, 4);
	put(img, 0x1fe, o->boot_flag, 2);
	put(img, 0x200, 0xeb, 1);
	put(img, 0x201, o->hdr_len, 1);
	put(img, 0x202, o->magic, 4);
	put(img, 0x206, o->version, 2);
	put(img, 0x211, o->loadflags, 1);
	put(img, 0x214, 0x100000, 4);
	put(img, 0x22c, o->initrd_addr_max, 4);
	put(img, 0x230, o->kernel_alignment, 4);
	put(img, 0x234, o->relocatable, 1);
	put(img, 0x236, o->xloadflags, 2);
	put(img, 0x238, o->cmdline_size, 4);
	put(img, 0x258, o->pref_address, 8);
	put(img, 0x260, o->init_size, 4);
	put(img, 0x1ef, 0xff, 1); /* the sentinel: must not reach the zero page */
	for (size_t i = 0; i < o->payload_len && setup + i < total; i++)
		img[setup + i] = (uint8_t)(i * 7 + 1);
	*len = total - o->cut;
	return img;
}

struct fx {
	struct gmem gm;
	struct vmerr e;
	struct boot_info bi;
	char *kernel;
	char *initrd;
};

static int fx_setup_ram(void **state, uint64_t ram)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (gmem_init(&f->gm, ram, &f->e) < 0)
		return -1;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_setup_ram(state, RAM);
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

static void make_kernel(struct fx *f, const struct bz_opts *o)
{
	size_t len;
	uint8_t *img = bz_build(o, &len);
	f->kernel = write_tmp(img, len);
	free(img);
}

/* A sparse initrd of `size` bytes whose first and last bytes are marked. */
static void make_initrd(struct fx *f, uint64_t size)
{
	f->initrd = write_tmp("INITRD", 6);
	int fd = open(f->initrd, O_WRONLY);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(pwrite(fd, "E", 1, (off_t)size - 1), 1);
	close(fd);
}

static int load(struct fx *f, const char *cmdline, unsigned int cpus)
{
	struct boot_config c = {.kernel_path = f->kernel,
				.initrd_path = f->initrd,
				.cmdline = cmdline,
				.cpus = cpus};
	return boot_load(&f->gm, &c, &f->bi, &f->e);
}

static void expect_fail(struct fx *f, int ret, int status, const char *word)
{
	assert_true(ret < 0);
	assert_int_equal(f->e.status, status);
	if (!strstr(f->e.msg, word))
		fail_msg("message \"%s\" lacks \"%s\"", f->e.msg, word);
	assert_null(strchr(f->e.msg, '\n'));
}

static const uint8_t *guest(struct fx *f, gpa_t gpa, uint64_t len)
{
	const uint8_t *p = gmem_ptr(&f->gm, gpa, len);
	assert_non_null(p);
	return p;
}

static void test_good_image(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	make_kernel(f, &o);
	make_initrd(f, MiB + 123);

	assert_int_equal(load(f, "console=ttyS0 quiet", 2), 0);
	assert_int_equal(f->e.status, 0);
	assert_int_equal(f->bi.mode, BOOT_LINUX64);
	assert_int_equal(f->bi.entry, 0x100200);
	assert_int_equal(f->bi.params, LAYOUT_ZERO_PAGE);
	assert_int_equal(f->bi.kernel_start, LAYOUT_HIMEM);
	assert_int_equal(f->bi.kernel_end, 16 * MiB + 4 * MiB);
	assert_int_equal(f->bi.cmdline, LAYOUT_CMDLINE);
	assert_int_equal(f->bi.cmdline_len, 19);
	/* Initrd: page aligned, as high as possible in RAM. */
	assert_int_equal(f->bi.initrd_size, MiB + 123);
	assert_int_equal(f->bi.initrd_start, (RAM - (MiB + 123)) & ~0xfffULL);
	assert_memory_equal(guest(f, f->bi.initrd_start, 6), "INITRD", 6);
	assert_int_equal(*guest(f, f->bi.initrd_start + MiB + 122, 1), 'E');

	/* Payload at 1 MiB, the command line with its NUL. */
	const uint8_t *k = guest(f, LAYOUT_HIMEM, 8192);
	for (size_t i = 0; i < 8192; i++)
		assert_int_equal(k[i], (uint8_t)(i * 7 + 1));
	assert_memory_equal(guest(f, LAYOUT_CMDLINE, 20), "console=ttyS0 quiet", 20);

	/* Zero page: header copied, loader fields set, nothing before the header but e820. */
	const uint8_t *bp = guest(f, LAYOUT_ZERO_PAGE, 4096);
	assert_int_equal(get(bp, 0x1fe, 2), 0xaa55);
	assert_int_equal(get(bp, 0x202, 4), 0x53726448);
	assert_int_equal(get(bp, 0x206, 2), 0x020f);
	assert_int_equal(get(bp, 0x236, 2), 0x3);
	assert_int_equal(get(bp, 0x260, 4), 4 * MiB);
	assert_int_equal(get(bp, 0x258, 8), 16 * MiB);
	assert_int_equal(bp[0x1ef], 0); /* sentinel not copied */
	assert_int_equal(bp[0x210], 0xff);
	assert_int_equal(bp[0x211], 0x81);
	assert_int_equal(get(bp, 0x1fa, 2), 0xffff);
	assert_int_equal(get(bp, 0x224, 2), 0xfe00);
	assert_int_equal(get(bp, 0x228, 4), LAYOUT_CMDLINE);
	assert_int_equal(get(bp, 0x0c8, 4), 0);
	assert_int_equal(get(bp, 0x218, 4), f->bi.initrd_start);
	assert_int_equal(get(bp, 0x21c, 4), MiB + 123);
	assert_int_equal(get(bp, 0x0c0, 4), 0);
	assert_int_equal(get(bp, 0x0c4, 4), 0);
	for (size_t i = 0; i < 0x1e8; i++)
		assert_int_equal(bp[i], 0);
	assert_int_equal(bp[0x1e8], 3);
	struct e820_entry m[3];
	memcpy(m, bp + 0x2d0, sizeof(m));
	assert_int_equal(m[0].addr, 0);
	assert_int_equal(m[0].size, LAYOUT_MPTABLE);
	assert_int_equal(m[0].type, E820_RAM);
	assert_int_equal(m[1].addr, LAYOUT_MPTABLE);
	assert_int_equal(m[1].type, E820_RESERVED);
	assert_int_equal(m[2].addr, LAYOUT_HIMEM);
	assert_int_equal(m[2].size, RAM - LAYOUT_HIMEM);
	assert_int_equal(m[2].type, E820_RAM);

	/* Identity map: PML4 -> PDPT -> 4 PDs of 2 MiB pages. */
	uint64_t pml4, pdpt[4], pd0[2], pd3;
	memcpy(&pml4, guest(f, LAYOUT_PML4, 8), 8);
	memcpy(pdpt, guest(f, LAYOUT_PDPT, 32), 32);
	memcpy(pd0, guest(f, LAYOUT_PD, 16), 16);
	memcpy(&pd3, guest(f, LAYOUT_PD + 4 * 4096 - 8, 8), 8);
	assert_int_equal(pml4, LAYOUT_PDPT | 3);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pdpt[i], (LAYOUT_PD + i * 4096ULL) | 3);
	assert_int_equal(pd0[0], 0x83);
	assert_int_equal(pd0[1], 0x200000 | 0x83);
	assert_int_equal(pd3, 0xffe00000ULL | 0x83);

	/* GDT: null, 64-bit code, data, TSS. */
	uint64_t gdt[4];
	memcpy(gdt, guest(f, LAYOUT_GDT, 32), 32);
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[1], 0x00af9b000000ffffULL);
	assert_int_equal(gdt[2], 0x00cf93000000ffffULL);
	assert_int_equal(gdt[3], 0x008f8b000000ffffULL);

	/* The MP floating pointer is where Linux scans for it. */
	assert_memory_equal(guest(f, LAYOUT_MPTABLE, 4), "_MP_", 4);
}

static void test_no_initrd_setup_sects_zero(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.setup_sects = 0; /* boot.rst: means 4 */
	make_kernel(f, &o);
	assert_int_equal(load(f, NULL, 1), 0);
	const uint8_t *k = guest(f, LAYOUT_HIMEM, 16);
	for (size_t i = 0; i < 16; i++)
		assert_int_equal(k[i], (uint8_t)(i * 7 + 1));
	const uint8_t *bp = guest(f, LAYOUT_ZERO_PAGE, 4096);
	assert_int_equal(get(bp, 0x218, 4), 0);
	assert_int_equal(get(bp, 0x21c, 4), 0);
	assert_int_equal(f->bi.initrd_size, 0);
	assert_int_equal(f->bi.cmdline_len, 0);
	assert_int_equal(*guest(f, LAYOUT_CMDLINE, 1), 0);
}

static void test_relocatable_alignment(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.pref_address = 0x100000; /* rounded up to kernel_alignment by the decompressor */
	make_kernel(f, &o);
	assert_int_equal(load(f, "", 1), 0);
	assert_int_equal(f->bi.kernel_end, 2 * MiB + 4 * MiB);
}

static void test_initrd_addr_max(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.initrd_addr_max = 32 * MiB - 1;
	make_kernel(f, &o);
	make_initrd(f, 3 * MiB);
	assert_int_equal(load(f, "", 1), 0);
	assert_int_equal(f->bi.initrd_start, 29 * MiB);
}

static void test_truncated_header(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	size_t len;
	uint8_t *img = bz_build(&o, &len);
	f->kernel = write_tmp(img, 0x220);
	free(img);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "truncated");
}

static void test_payload_cut(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.cut = 100;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "truncated");
	assert_non_null(strstr(f->e.msg, "payload"));
}

static void test_bad_boot_flag(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.boot_flag = 0x1234;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "boot flag");
}

static void test_bad_hdrs(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.magic = 0x53726447;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "HdrS");
}

static void test_old_protocol(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.version = 0x020b;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "2.11, too old");
}

static void test_short_header_length(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.hdr_len = 0x20; /* header would end at 0x222, before init_size */
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "too short");
}

static void test_not_64bit(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.xloadflags = 0x2;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "not 64-bit capable");
}

static void test_not_loaded_high(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.loadflags = 0;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "LOADED_HIGH");
}

static void test_setup_past_eof(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	size_t len;
	uint8_t *img = bz_build(&o, &len);
	img[0x1f1] = 200; /* 201 sectors: far past the end of the 9 KiB file */
	f->kernel = write_tmp(img, len);
	free(img);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "setup_sects 200");
	assert_non_null(strstr(f->e.msg, "truncated"));
}

static void test_syssize_zero(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.syssize = 0;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "syssize 0");
}

static void test_cmdline_limits(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.cmdline_size = 16;
	make_kernel(f, &o);
	assert_int_equal(load(f, "0123456789abcdef", 1), 0);
	expect_fail(f, load(f, "0123456789abcdefg", 1), KVMINI_EXIT_INPUT,
		    "command line is 17 bytes");
	assert_non_null(strstr(f->e.msg, "at most 16"));
}

static void test_cmdline_layout_max(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.cmdline_size = 0xffffffff; /* the kernel's limit is larger than kvmini's buffer */
	make_kernel(f, &o);
	char *c = malloc(LAYOUT_CMDLINE_MAX + 1);
	memset(c, 'x', LAYOUT_CMDLINE_MAX);
	c[LAYOUT_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(load(f, c, 1), 0);
	assert_int_equal(*guest(f, LAYOUT_CMDLINE + LAYOUT_CMDLINE_MAX - 1, 1), 0);
	c[LAYOUT_CMDLINE_MAX - 1] = 'x';
	c[LAYOUT_CMDLINE_MAX] = '\0';
	expect_fail(f, load(f, c, 1), KVMINI_EXIT_INPUT, "at most 65535");
	free(c);
}

static void test_initrd_larger_than_ram(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	make_kernel(f, &o);
	make_initrd(f, 2 * RAM);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "does not fit");
	assert_non_null(strstr(f->e.msg, "128 MiB"));
	assert_non_null(strstr(f->e.msg, "--mem 64 MiB"));
}

static void test_initrd_overlaps_kernel(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.init_size =
		(uint32_t)(RAM - 16 * MiB - 512 * 1024); /* kernel ends 512 KiB below the top */
	make_kernel(f, &o);
	make_initrd(f, MiB);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "does not fit");
	assert_non_null(strstr(f->e.msg, "use a larger --mem"));
}

static void test_kernel_larger_than_ram(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.init_size = 100 * MiB;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "larger --mem");
}

static void test_pref_address_beyond_ram(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.pref_address = 0xffffffffffff0000ULL;
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "larger --mem");
}

static void test_empty_file(void **state)
{
	struct fx *f = *state;
	f->kernel = write_tmp("", 0);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "empty");
}

static void test_directory(void **state)
{
	struct fx *f = *state;
	struct boot_config c = {.kernel_path = "/tmp", .cmdline = "", .cpus = 1};
	expect_fail(f, boot_load(&f->gm, &c, &f->bi, &f->e), KVMINI_EXIT_INPUT, "directory");
}

static void test_missing_file(void **state)
{
	struct fx *f = *state;
	struct boot_config c = {.kernel_path = "/nonexistent/bzImage", .cmdline = "", .cpus = 1};
	expect_fail(f, boot_load(&f->gm, &c, &f->bi, &f->e), KVMINI_EXIT_INPUT,
		    "cannot open kernel '/nonexistent/bzImage': No such file");
}

static void test_missing_initrd(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	make_kernel(f, &o);
	struct boot_config c = {
		.kernel_path = f->kernel, .initrd_path = "/nonexistent/initrd", .cpus = 1};
	expect_fail(f, boot_load(&f->gm, &c, &f->bi, &f->e), KVMINI_EXIT_INPUT,
		    "cannot open initrd");
}

static void test_garbage_file(void **state)
{
	struct fx *f = *state;
	char junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)('a' + i % 26);
	f->kernel = write_tmp(junk, sizeof(junk));
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "neither a bzImage");
}

static void test_tiny_file(void **state)
{
	struct fx *f = *state;
	f->kernel = write_tmp("MZ", 2);
	expect_fail(f, load(f, "", 1), KVMINI_EXIT_INPUT, "neither a bzImage");
}

static void test_bad_cpu_count(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	make_kernel(f, &o);
	expect_fail(f, load(f, "", 0), KVMINI_EXIT_USAGE, "1 to 64");
	vmerr_clear(&f->e);
	expect_fail(f, load(f, "", 65), KVMINI_EXIT_USAGE, "1 to 64");
	vmerr_clear(&f->e);
	assert_int_equal(load(f, "", 64), 0);
}

/* With RAM above the hole the kernel and initrd still stay below it. */
static int setup_5g(void **state)
{
	return fx_setup_ram(state, 5ULL << 30);
}

static void test_ram_above_hole(void **state)
{
	struct fx *f = *state;
	struct bz_opts o = bz_default();
	o.initrd_addr_max = 0xffffffff; /* only the hole limits the initrd now */
	make_kernel(f, &o);
	make_initrd(f, 2 * MiB);
	assert_int_equal(load(f, "", 4), 0);
	assert_int_equal(f->bi.initrd_start, LAYOUT_MMIO_HOLE - 2 * MiB);
	const uint8_t *bp = guest(f, LAYOUT_ZERO_PAGE, 4096);
	assert_int_equal(bp[0x1e8], 4);
	struct e820_entry m;
	memcpy(&m, bp + 0x2d0 + 3 * sizeof(m), sizeof(m));
	assert_int_equal(m.addr, LAYOUT_HIGH_RAM);
	assert_int_equal(m.size, 2ULL << 30);
	assert_int_equal(m.type, E820_RAM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_initrd_setup_sects_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relocatable_alignment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_addr_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_payload_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_boot_flag, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_hdrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_protocol, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_header_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_64bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_loaded_high, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setup_past_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syssize_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_layout_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_larger_than_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_initrd_overlaps_kernel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_larger_than_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pref_address_beyond_ram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_initrd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiny_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_cpu_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ram_above_hole, setup_5g, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
