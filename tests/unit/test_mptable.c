/* test_mptable: the MP floating pointer and configuration table for 1..64 CPUs. */
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
#include "kvmini/mptable.h"

#define LOW (2ULL << 20) /* fake RAM [0, 2 MiB) */

static int setup(void **state)
{
	struct gmem *gm = calloc(1, sizeof(*gm));
	void *ram = calloc(1, LOW);
	assert_int_equal(gmem_add_region(gm, 0, LOW, ram), 0);
	*state = gm;
	return 0;
}

static int teardown(void **state)
{
	struct gmem *gm = *state;
	free(gm->region[0].host);
	free(gm);
	return 0;
}

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;
	for (size_t i = 0; i < len; i++)
		s += p[i];
	return s;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* Parse what mptable_write() left in guest memory, checking it the way Linux's mpparse.c does. */
static void check_tables(struct gmem *gm, unsigned int cpus)
{
	const uint8_t *mpf = gmem_ptr(gm, LAYOUT_MPTABLE, 16);
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(mpf[8], 1); /* length in paragraphs */
	assert_int_equal(mpf[9], 4); /* spec 1.4 */
	assert_int_equal(sum(mpf, 16), 0);
	assert_int_equal(mpf[11], 0); /* feature1: a configuration table follows */
	uint32_t physptr = get32(mpf + 4);
	assert_int_equal(physptr, LAYOUT_MPTABLE + 16);

	const uint8_t *mpc = gmem_ptr(gm, physptr, 44);
	assert_memory_equal(mpc, "PCMP", 4);
	uint16_t len = get16(mpc + 4);
	assert_int_equal(mpc[6], 4);
	assert_memory_equal(mpc + 8, "KVMINI", 6);
	assert_int_equal(get32(mpc + 36), LAYOUT_LAPIC);
	assert_int_equal(16 + len, mptable_size(cpus));
	mpc = gmem_ptr(gm, physptr, len);
	assert_non_null(mpc);
	assert_int_equal(sum(mpc, len), 0);
	uint16_t count = get16(mpc + 34);
	assert_int_equal(count, cpus + 1 + 1 + 16 + 2);

	unsigned int seen[5] = {0}, bsp = 0;
	size_t off = 44;
	for (unsigned int i = 0; i < count; i++) {
		const uint8_t *en = mpc + off;
		assert_true(en[0] <= 4);
		seen[en[0]]++;
		switch (en[0]) {
		case 0:					      /* processor */
			assert_int_equal(en[1], seen[0] - 1); /* apic id = index */
			assert_int_equal(en[2], 0x14);
			assert_true(en[3] & 1);
			if (en[3] & 2) {
				bsp++;
				assert_int_equal(en[1], 0);
			}
			off += 20;
			break;
		case 1:
			assert_memory_equal(en + 2, "ISA   ", 6);
			off += 8;
			break;
		case 2:
			assert_int_equal(en[1], cpus);
			assert_int_equal(en[2], 0x11);
			assert_int_equal(en[3], 1);
			assert_int_equal(get32(en + 4), LAYOUT_IOAPIC);
			off += 8;
			break;
		case 3: /* ISA irq n -> IOAPIC pin n */
			assert_int_equal(en[1], 0);
			assert_int_equal(en[5], seen[3] - 1);
			assert_int_equal(en[6], cpus);
			assert_int_equal(en[7], en[5]);
			off += 8;
			break;
		case 4:
			assert_int_equal(en[7], seen[4] - 1); /* LINT0 then LINT1 */
			assert_int_equal(en[1], seen[4] == 1 ? 3 : 1);
			off += 8;
			break;
		}
	}
	assert_int_equal(off, len);
	assert_int_equal(seen[0], cpus);
	assert_int_equal(seen[1], 1);
	assert_int_equal(seen[2], 1);
	assert_int_equal(seen[3], 16);
	assert_int_equal(seen[4], 2);
	assert_int_equal(bsp, 1);
}

static void test_one_cpu(void **state)
{
	assert_int_equal(mptable_write(*state, LAYOUT_MPTABLE, 1), 0);
	check_tables(*state, 1);
}

static void test_four_cpus(void **state)
{
	assert_int_equal(mptable_write(*state, LAYOUT_MPTABLE, 4), 0);
	check_tables(*state, 4);
}

static void test_max_cpus(void **state)
{
	assert_true(LAYOUT_MPTABLE + mptable_size(MPTABLE_MAX_CPUS) <= LAYOUT_EBDA_END);
	assert_int_equal(mptable_write(*state, LAYOUT_MPTABLE, 64), 0);
	check_tables(*state, 64);
}

static void test_bad_cpu_counts(void **state)
{
	assert_int_equal(mptable_write(*state, LAYOUT_MPTABLE, 0), -EINVAL);
	assert_int_equal(mptable_write(*state, LAYOUT_MPTABLE, 65), -EINVAL);
}

static void test_placement(void **state)
{
	/* Too close to 1 MiB: the tables would spill out of the reserved area. */
	assert_int_equal(mptable_write(*state, LAYOUT_EBDA_END - 64, 1), -ENOSPC);
	struct gmem empty = {0};
	assert_int_equal(mptable_write(&empty, LAYOUT_MPTABLE, 1), -EFAULT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_cpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_four_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_cpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_cpu_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_placement, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
