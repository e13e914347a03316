/* test_bus: registration edges, lookups and dispatch of the port I/O and MMIO bus. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kvmini/bus.h"

struct dev {
	uint64_t last_offset;
	uint32_t last_len;
	bool last_write;
	unsigned int calls;
};

static void dev_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct dev *d = opaque;
	d->last_offset = offset;
	d->last_len = len;
	d->last_write = is_write;
	d->calls++;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void test_register_refuses_overlap(void **state)
{
	(void)state;
	struct bus b;
	struct dev d = {0};
	bus_init(&b, "pio");
	assert_int_equal(bus_register(&b, 0x100, 0x10, dev_io, &d, "a"), 0);
	assert_int_equal(bus_register(&b, 0x10f, 1, dev_io, &d, "b"), -EBUSY);	  /* last byte */
	assert_int_equal(bus_register(&b, 0xf8, 9, dev_io, &d, "c"), -EBUSY);	  /* first byte */
	assert_int_equal(bus_register(&b, 0x0, 0x1000, dev_io, &d, "d"), -EBUSY); /* around */
	assert_int_equal(bus_register(&b, 0x104, 2, dev_io, &d, "e"), -EBUSY);	  /* inside */
	assert_int_equal(bus_register(&b, 0x110, 1, dev_io, &d, "f"), 0); /* adjacent after */
	assert_int_equal(bus_register(&b, 0xff, 1, dev_io, &d, "g"), 0);  /* adjacent before */
	assert_int_equal(b.nr, 3);
	/* Sorted by base whatever the registration order. */
	assert_int_equal(b.range[0].base, 0xff);
	assert_int_equal(b.range[1].base, 0x100);
	assert_int_equal(b.range[2].base, 0x110);
}

static void test_register_bad_ranges(void **state)
{
	(void)state;
	struct bus b;
	struct dev d = {0};
	bus_init(&b, "mmio");
	assert_int_equal(bus_register(&b, 0x1000, 0, dev_io, &d, "zero"), -EINVAL);
	assert_int_equal(bus_register(&b, UINT64_MAX - 1, 4, dev_io, &d, "wrap"), -EINVAL);
	assert_int_equal(bus_register(&b, 0x1000, 4, NULL, &d, "nofn"), -EINVAL);
	/* A range ending exactly at 2^64-1 is fine. */
	assert_int_equal(bus_register(&b, UINT64_MAX - 3, 4, dev_io, &d, "top"), 0);
	assert_non_null(bus_find(&b, UINT64_MAX, 1));
	assert_null(bus_find(&b, UINT64_MAX, 2));
}

static void test_register_full(void **state)
{
	(void)state;
	struct bus b;
	struct dev d = {0};
	bus_init(&b, "pio");
	for (unsigned int i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&b, i * 0x10, 0x10, dev_io, &d, "x"), 0);
	assert_int_equal(bus_register(&b, 0x10000, 1, dev_io, &d, "one too many"), -ENOSPC);
}

static void test_find_edges(void **state)
{
	(void)state;
	struct bus b;
	struct dev d = {0};
	bus_init(&b, "pio");
	bus_register(&b, 0x3f8, 8, dev_io, &d, "com1");
	bus_register(&b, 0x400, 8, dev_io, &d, "next");
	assert_null(bus_find(&b, 0x3f7, 1));
	assert_ptr_equal(bus_find(&b, 0x3f8, 1), &b.range[0]);
	assert_ptr_equal(bus_find(&b, 0x3ff, 1), &b.range[0]);
	assert_ptr_equal(bus_find(&b, 0x3fc, 4), &b.range[0]);
	assert_null(bus_find(&b, 0x3fe, 4)); /* straddles the end */
	assert_ptr_equal(bus_find(&b, 0x400, 4), &b.range[1]);
	assert_null(bus_find(&b, 0x408, 1));
	assert_null(bus_find(&b, 0x3f8, 0));
	assert_null(bus_find(&b, 0, 1));
}

static void test_access_dispatch_and_unclaimed(void **state)
{
	(void)state;
	struct bus b;
	struct dev d = {0};
	uint8_t data[8];
	bus_init(&b, "mmio");
	bus_register(&b, 0xd0000000, 0x200, dev_io, &d, "dev");

	memset(data, 0, sizeof(data));
	assert_true(bus_access(&b, 0xd0000010, data, 4, false));
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.last_offset, 0x10);
	assert_int_equal(d.last_len, 4);
	assert_false(d.last_write);
	assert_int_equal(data[0], 0x5a);

	assert_true(bus_access(&b, 0xd00001f8, data, 8, true));
	assert_int_equal(d.last_offset, 0x1f8);
	assert_true(d.last_write);

	memset(data, 0, sizeof(data));
	assert_false(bus_access(&b, 0xe0000000, data, 8, false));
	for (int i = 0; i < 8; i++)
		assert_int_equal(data[i], 0xff);
	assert_false(bus_access(&b, 0xe0000000, data, 2, true));
	assert_false(bus_access(&b, 0xd00001fc, data, 8, false)); /* straddles the end */
	assert_int_equal(atomic_load(&b.unclaimed_reads), 2);
	assert_int_equal(atomic_load(&b.unclaimed_writes), 1);
	assert_int_equal(d.calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_refuses_overlap),
		cmocka_unit_test(test_register_bad_ranges),
		cmocka_unit_test(test_register_full),
		cmocka_unit_test(test_find_edges),
		cmocka_unit_test(test_access_dispatch_and_unclaimed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
