/* test_gmem: the RAM layout around the MMIO hole and the bounds of the checked accessors. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvmini/gmem.h"
#include "kvmini/layout.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

static void test_layout(void **state)
{
	(void)state;
	struct gmem_region r[GMEM_MAX_REGIONS];

	assert_int_equal(gmem_layout(0, r), -EINVAL);
	assert_int_equal(gmem_layout(4095, r), -EINVAL);
	assert_int_equal(gmem_layout(16 * MiB + 1, r), -EINVAL);

	assert_int_equal(gmem_layout(16 * MiB, r), 1);
	assert_int_equal(r[0].gpa, 0);
	assert_int_equal(r[0].size, 16 * MiB);
	assert_null(r[0].host);

	assert_int_equal(gmem_layout(3 * GiB - 4096, r), 1);
	assert_int_equal(r[0].size, 3 * GiB - 4096);
	assert_int_equal(gmem_layout(3 * GiB, r), 1);
	assert_int_equal(r[0].size, LAYOUT_MMIO_HOLE);

	assert_int_equal(gmem_layout(3 * GiB + 4096, r), 2);
	assert_int_equal(r[0].size, LAYOUT_MMIO_HOLE);
	assert_int_equal(r[1].gpa, LAYOUT_HIGH_RAM);
	assert_int_equal(r[1].size, 4096);

	assert_int_equal(gmem_layout(8 * GiB, r), 2);
	assert_int_equal(r[1].gpa, LAYOUT_HIGH_RAM);
	assert_int_equal(r[1].size, 5 * GiB);
}

/* Fake memory shaped like a VM with a little RAM each side of the hole. */
struct fx {
	struct gmem gm;
	uint8_t *low, *high;
};

#define LOW_SIZE  (64 * 1024)
#define HIGH_SIZE (8 * 1024)

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	f->low = calloc(1, LOW_SIZE);
	f->high = calloc(1, HIGH_SIZE);
	/* Added out of order: the regions must come out sorted. */
	assert_int_equal(gmem_add_region(&f->gm, LAYOUT_HIGH_RAM, HIGH_SIZE, f->high), 0);
	assert_int_equal(gmem_add_region(&f->gm, 0, LOW_SIZE, f->low), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	free(f->low);
	free(f->high);
	free(f);
	return 0;
}

static void test_add_region(void **state)
{
	struct fx *f = *state;
	uint8_t b[16];

	assert_int_equal(f->gm.nr, 2);
	assert_int_equal(f->gm.region[0].gpa, 0);
	assert_int_equal(f->gm.region[1].gpa, LAYOUT_HIGH_RAM);
	assert_int_equal(f->gm.ram_size, LOW_SIZE + HIGH_SIZE);
	assert_int_equal(gmem_low_end(&f->gm), LOW_SIZE);
	/* Overlaps, wraps, empty and host-less regions are refused. */
	assert_int_equal(gmem_add_region(&f->gm, LOW_SIZE - 1, 16, b), -EINVAL);
	assert_int_equal(gmem_add_region(&f->gm, LAYOUT_HIGH_RAM - 8, 16, b), -EINVAL);
	assert_int_equal(gmem_add_region(&f->gm, ~0ULL - 7, 16, b), -EINVAL);
	assert_int_equal(gmem_add_region(&f->gm, 0x100000, 0, b), -EINVAL);
	assert_int_equal(gmem_add_region(&f->gm, 0x100000, 16, NULL), -EINVAL);
	/* Adjacent is fine; a fifth region is not. */
	assert_int_equal(gmem_add_region(&f->gm, LOW_SIZE, 16, b), 0);
	assert_int_equal(gmem_add_region(&f->gm, 0x200000, 16, b), 0);
	assert_int_equal(gmem_add_region(&f->gm, 0x300000, 16, b), -ENOSPC);
	assert_int_equal(f->gm.nr, GMEM_MAX_REGIONS);
}

static void test_ptr_edges(void **state)
{
	struct fx *f = *state;
	const struct gmem *gm = &f->gm;

	assert_ptr_equal(gmem_ptr(gm, 0, LOW_SIZE), f->low);
	assert_ptr_equal(gmem_ptr(gm, LOW_SIZE - 1, 1), f->low + LOW_SIZE - 1);
	assert_ptr_equal(gmem_ptr(gm, LOW_SIZE - 16, 16), f->low + LOW_SIZE - 16);
	assert_null(gmem_ptr(gm, LOW_SIZE - 16, 17)); /* one byte past the end */
	assert_null(gmem_ptr(gm, LOW_SIZE, 1));	      /* into the hole */
	assert_null(gmem_ptr(gm, 0, LOW_SIZE + 1));
	assert_null(gmem_ptr(gm, 16, 0));    /* len 0 */
	assert_null(gmem_ptr(gm, ~0ULL, 2)); /* wraps past 2^64 */
	assert_null(gmem_ptr(gm, 16, ~0ULL));
	assert_null(gmem_ptr(gm, LAYOUT_HIGH_RAM - 1, 2)); /* hole into high RAM */
	assert_ptr_equal(gmem_ptr(gm, LAYOUT_HIGH_RAM + HIGH_SIZE - 8, 8), f->high + HIGH_SIZE - 8);
	assert_null(gmem_ptr(gm, LAYOUT_HIGH_RAM + HIGH_SIZE - 8, 9));
	assert_null(gmem_ptr(gm, LAYOUT_MMIO_HOLE, 4));
}

static void test_read_write(void **state)
{
	struct fx *f = *state;
	char buf[8];

	assert_int_equal(gmem_write(&f->gm, 100, "kvmini", 7), 0);
	assert_memory_equal(f->low + 100, "kvmini", 7);
	assert_int_equal(gmem_read(&f->gm, 100, buf, 7), 0);
	assert_string_equal(buf, "kvmini");
	assert_int_equal(gmem_write(&f->gm, LOW_SIZE - 4, "12345678", 8), -EFAULT);
	assert_int_equal(gmem_read(&f->gm, LOW_SIZE - 4, buf, 8), -EFAULT);
	assert_int_equal(f->low[LOW_SIZE - 4], 0); /* nothing written on failure */
}

static void test_init(void **state)
{
	(void)state;
	struct gmem gm;
	struct vmerr e = {0};

	assert_int_equal(gmem_init(&gm, 16 * MiB, &e), 0);
	assert_int_equal(gm.nr, 1);
	assert_int_equal(gmem_low_end(&gm), 16 * MiB);
	assert_non_null(gmem_ptr(&gm, 16 * MiB - 4096, 4096));
	/* Host address aligned like the guest physical one, so KVM can map 2 MiB pages. */
	assert_int_equal((uintptr_t)gm.region[0].host % GMEM_HUGE_ALIGN, 0);
	gmem_fini(&gm);
	assert_int_equal(gm.nr, 0);
	gmem_fini(&gm); /* twice is harmless */

	/* Not a multiple of 2 MiB: still aligned, the whole size usable. */
	assert_int_equal(gmem_init(&gm, 3 * MiB + 4096, &e), 0);
	assert_int_equal((uintptr_t)gm.region[0].host % GMEM_HUGE_ALIGN, 0);
	memset(gm.region[0].host, 0xa5, 3 * MiB + 4096);
	gmem_fini(&gm);

	assert_int_equal(gmem_init(&gm, 12345, &e), -EINVAL);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	struct gmem zero = {0};
	assert_int_equal(gmem_low_end(&zero), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test_setup_teardown(test_add_region, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ptr_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_write, setup, teardown),
		cmocka_unit_test(test_init),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
