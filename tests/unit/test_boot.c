/* test_boot: the BSP's entry registers for both boot modes, and loading real guest images. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/boot.h"
#include "kvmini/gmem.h"
#include "kvmini/layout.h"

#define MiB (1ULL << 20)

/* Pretend KVM_GET_SREGS returned the reset state with an APIC base we must keep. */
static struct kvm_sregs reset_sregs(void)
{
	struct kvm_sregs s;
	memset(&s, 0x5a, sizeof(s));
	s.apic_base = 0xfee00900;
	s.cr0 = 0x60000010;
	return s;
}

static void check_flat(const struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	assert_int_equal(s->selector, sel);
	assert_int_equal(s->base, 0);
	assert_int_equal(s->limit, 0xffffffff);
	assert_int_equal(s->type, type);
	assert_int_equal(s->present, 1);
	assert_int_equal(s->dpl, 0);
	assert_int_equal(s->s, 1);
	assert_int_equal(s->g, 1);
	assert_int_equal(s->unusable, 0);
}

static void test_state_linux64(void **state)
{
	(void)state;
	struct boot_info bi = {.mode = BOOT_LINUX64, .entry = 0x100200, .params = LAYOUT_ZERO_PAGE};
	struct kvm_regs r;
	struct kvm_sregs s = reset_sregs();
	memset(&r, 0x5a, sizeof(r));

	boot_cpu_state(&bi, &r, &s);
	assert_int_equal(r.rip, 0x100200);
	assert_int_equal(r.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(r.rbx, 0);
	assert_int_equal(r.rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(r.rbp, LAYOUT_BOOT_STACK);
	assert_int_equal(r.rflags, 2);
	assert_int_equal(r.rax, 0);

	check_flat(&s.cs, 0x8, 0xb);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.cs.db, 0); /* L and D/B both set is reserved */
	const struct kvm_segment *data[] = {&s.ds, &s.es, &s.fs, &s.gs, &s.ss};
	for (int i = 0; i < 5; i++) {
		check_flat(data[i], 0x10, 0x3);
		assert_int_equal(data[i]->db, 1);
		assert_int_equal(data[i]->l, 0);
	}
	assert_int_equal(s.tr.selector, 0x18);
	assert_int_equal(s.tr.type, 0xb); /* busy 64-bit TSS */
	assert_int_equal(s.tr.s, 0);
	assert_int_equal(s.tr.present, 1);
	assert_int_equal(s.gdt.base, LAYOUT_GDT);
	assert_int_equal(s.gdt.limit, 31);
	assert_int_equal(s.idt.base, 0);
	assert_int_equal(s.idt.limit, 0);
	assert_int_equal(s.cr0, 0x80000011); /* PG | ET | PE: caches on */
	assert_int_equal(s.cr3, LAYOUT_PML4);
	assert_int_equal(s.cr4, 0x20);
	assert_int_equal(s.efer, 0x500);
	assert_int_equal(s.apic_base, 0xfee00900); /* untouched */
}

static void test_state_pvh32(void **state)
{
	(void)state;
	struct boot_info bi = {.mode = BOOT_PVH32, .entry = 0x1000000, .params = 0x6000};
	struct kvm_regs r;
	struct kvm_sregs s = reset_sregs();

	boot_cpu_state(&bi, &r, &s);
	assert_int_equal(r.rip, 0x1000000);
	assert_int_equal(r.rbx, LAYOUT_PVH_START_INFO);
	assert_int_equal(r.rsi, 0);
	assert_int_equal(r.rflags, 2); /* IF, TF, VM clear */

	check_flat(&s.cs, 0x8, 0xb);
	assert_int_equal(s.cs.l, 0);
	assert_int_equal(s.cs.db, 1);
	check_flat(&s.ds, 0x10, 0x3);
	check_flat(&s.es, 0x10, 0x3);
	check_flat(&s.ss, 0x10, 0x3);
	assert_int_equal(s.ss.db, 1);
	/* PVH ABI: tr a 32-bit (busy) TSS, base 0, limit 0x67. */
	assert_int_equal(s.tr.type, 0xb);
	assert_int_equal(s.tr.base, 0);
	assert_int_equal(s.tr.limit, 0x67);
	assert_int_equal(s.tr.g, 0);
	assert_int_equal(s.tr.present, 1);
	assert_true(s.cr0 & 1);
	assert_int_equal(s.cr0 & ~0x10ULL, 1); /* only PE (and the read-only ET) */
	assert_int_equal(s.cr4, 0);
	assert_int_equal(s.efer, 0);
	assert_int_equal(s.apic_base, 0xfee00900);
}

/*
 * Load an image built elsewhere in the tree. When it was not built, skip and say so, unless
 * KVMINI_REQUIRE_GUESTS is set (`make check` sets it after building them): then fail.
 */
static void load_file(const char *path, const char *initrd, enum boot_mode mode, uint64_t ram)
{
	if (access(path, R_OK) != 0) {
		if (getenv("KVMINI_REQUIRE_GUESTS"))
			fail_msg("%s not built, but KVMINI_REQUIRE_GUESTS is set", path);
		printf("[     SKIP ] %s not built (run make guests / make tiny)\n", path);
		skip();
	}
	struct gmem gm;
	struct vmerr e = {0};
	struct boot_info bi;
	assert_int_equal(gmem_init(&gm, ram, &e), 0);
	if (initrd && access(initrd, R_OK) != 0)
		initrd = NULL;
	struct boot_config c = {.kernel_path = path,
				.initrd_path = initrd,
				.cmdline = "console=ttyS0 reboot=k panic=1",
				.cpus = 2};
	int ret = boot_load(&gm, &c, &bi, &e);
	if (ret)
		fail_msg("boot_load(%s): %s", path, e.msg);
	assert_int_equal(bi.mode, mode);
	assert_true(bi.entry >= bi.kernel_start && bi.entry < bi.kernel_end);
	if (initrd) {
		assert_true(bi.initrd_size > 0);
		assert_true(bi.initrd_start >= bi.kernel_end);
		assert_true(bi.initrd_start + bi.initrd_size <= gmem_low_end(&gm));
	}
	printf("           %s: entry 0x%llx, kernel [0x%llx, 0x%llx), initrd %llu bytes at "
	       "0x%llx\n",
	       path, (unsigned long long)bi.entry, (unsigned long long)bi.kernel_start,
	       (unsigned long long)bi.kernel_end, (unsigned long long)bi.initrd_size,
	       (unsigned long long)bi.initrd_start);
	gmem_fini(&gm);
}

static void test_tiny_guest(void **state)
{
	(void)state;
	load_file("build/guests/hello.elf", NULL, BOOT_PVH32, 16 * MiB);
}

static void test_real_bzimage(void **state)
{
	(void)state;
	load_file("build/guest/bzImage", "build/guest/initramfs.cpio.gz", BOOT_LINUX64, 256 * MiB);
}

static void test_real_vmlinux(void **state)
{
	(void)state;
	load_file("build/guest/vmlinux", "build/guest/initramfs.cpio.gz", BOOT_PVH32, 256 * MiB);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_linux64), cmocka_unit_test(test_state_pvh32),
		cmocka_unit_test(test_tiny_guest),    cmocka_unit_test(test_real_bzimage),
		cmocka_unit_test(test_real_vmlinux),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
