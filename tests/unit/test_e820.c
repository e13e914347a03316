/* test_e820: the memory map for RAM sizes around the 32-bit MMIO hole. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kvmini/e820.h"
#include "kvmini/gmem.h"
#include "kvmini/layout.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* A gmem with the layout of `ram` bytes; e820 never touches host memory. */
static struct gmem fake(uint64_t ram)
{
	struct gmem gm = {0};
	int n = gmem_layout(ram, gm.region);
	assert_true(n > 0);
	gm.nr = (unsigned int)n;
	gm.ram_size = ram;
	return gm;
}

static void expect(const struct e820_entry *m, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(m->addr, addr);
	assert_int_equal(m->size, size);
	assert_int_equal(m->type, type);
}

/* Every map starts with base memory and the reserved legacy area. */
static void expect_low(const struct e820_entry *m, uint64_t low_end)
{
	expect(&m[0], 0, LAYOUT_MPTABLE, E820_RAM);
	expect(&m[1], LAYOUT_MPTABLE, LAYOUT_EBDA_END - LAYOUT_MPTABLE, E820_RESERVED);
	expect(&m[2], LAYOUT_HIMEM, low_end - LAYOUT_HIMEM, E820_RAM);
}

static void test_16m(void **state)
{
	(void)state;
	struct gmem gm = fake(16 * MiB);
	struct e820_entry m[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(&gm, m, E820_MAX_ENTRIES), 3);
	expect_low(m, 16 * MiB);
}

static void test_just_below_hole(void **state)
{
	(void)state;
	struct gmem gm = fake(3 * GiB - 4096);
	struct e820_entry m[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(&gm, m, E820_MAX_ENTRIES), 3);
	expect_low(m, 3 * GiB - 4096);
}

static void test_exactly_hole(void **state)
{
	(void)state;
	struct gmem gm = fake(3 * GiB);
	struct e820_entry m[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(&gm, m, E820_MAX_ENTRIES), 3);
	expect_low(m, LAYOUT_MMIO_HOLE);
}

static void test_one_page_above(void **state)
{
	(void)state;
	struct gmem gm = fake(3 * GiB + 4096);
	struct e820_entry m[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(&gm, m, E820_MAX_ENTRIES), 4);
	expect_low(m, LAYOUT_MMIO_HOLE);
	expect(&m[3], LAYOUT_HIGH_RAM, 4096, E820_RAM);
}

static void test_4g(void **state)
{
	(void)state;
	struct gmem gm = fake(4 * GiB);
	struct e820_entry m[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(&gm, m, E820_MAX_ENTRIES), 4);
	expect_low(m, LAYOUT_MMIO_HOLE);
	expect(&m[3], LAYOUT_HIGH_RAM, GiB, E820_RAM);
}

static void test_8g(void **state)
{
	(void)state;
	struct gmem gm = fake(8 * GiB);
	struct e820_entry m[E820_MAX_ENTRIES];
	assert_int_equal(e820_build(&gm, m, E820_MAX_ENTRIES), 4);
	expect_low(m, LAYOUT_MMIO_HOLE);
	expect(&m[3], LAYOUT_HIGH_RAM, 5 * GiB, E820_RAM);
	uint64_t ram = 0;
	for (int i = 0; i < 4; i++)
		if (m[i].type == E820_RAM)
			ram += m[i].size;
	assert_int_equal(ram, 8 * GiB - (LAYOUT_EBDA_END - LAYOUT_MPTABLE));
}

static void test_errors(void **state)
{
	(void)state;
	struct e820_entry m[3];
	struct gmem gm = fake(8 * GiB);
	assert_int_equal(e820_build(&gm, m, 3), -ENOSPC);
	struct gmem small = fake(LAYOUT_HIMEM);
	assert_int_equal(e820_build(&small, m, 3), -EINVAL);
	struct gmem none = {0};
	assert_int_equal(e820_build(&none, m, 3), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_16m),	     cmocka_unit_test(test_just_below_hole),
		cmocka_unit_test(test_exactly_hole), cmocka_unit_test(test_one_page_above),
		cmocka_unit_test(test_4g),	     cmocka_unit_test(test_8g),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
