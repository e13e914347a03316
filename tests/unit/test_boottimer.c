/* test_boottimer: the boot-timer device records once, on the magic value at offset 0 only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/boottimer.h"

static void write_val(struct boottimer *bt, uint64_t off, uint64_t v, uint32_t len)
{
	uint8_t data[8];
	memcpy(data, &v, sizeof(data));
	boottimer_io(bt, off, data, len, true);
}

static void test_records_once(void **state)
{
	(void)state;
	struct logger lg;
	log_init(&lg, LOG_ERROR, STDERR_FILENO);
	struct boottimer bt;
	uint64_t start = boottimer_now_ns();
	boottimer_init(&bt, &lg, start);
	struct boottimer_times t;
	assert_false(boottimer_get(&bt, &t));

	usleep(2000);
	boottimer_first_run(&bt);
	uint64_t first = atomic_load(&bt.first_run_ns);
	assert_true(first >= start + 2000000);
	usleep(1000);
	boottimer_first_run(&bt); /* a later vCPU: the earliest call counts */
	assert_int_equal(atomic_load(&bt.first_run_ns), first);

	/* Not the magic value, or not at offset 0: ignored. */
	write_val(&bt, 0, BOOTTIMER_MAGIC + 1, 1);
	write_val(&bt, 4, BOOTTIMER_MAGIC, 1);
	assert_false(boottimer_get(&bt, &t));

	usleep(3000);
	write_val(&bt, 0, BOOTTIMER_MAGIC, 1); /* devmem ADDR 8 123 */
	assert_true(boottimer_get(&bt, &t));
	assert_int_equal(t.vmm_start_wall, first - start);
	assert_true(t.init_since_run >= 3000000);
	assert_int_equal(t.init_wall, t.vmm_start_wall + t.init_since_run);
	assert_true(t.init_cpu >= t.vmm_start_cpu);

	/* Only the first write counts. */
	struct boottimer_times again;
	usleep(2000);
	write_val(&bt, 0, BOOTTIMER_MAGIC, 4);
	assert_true(boottimer_get(&bt, &again));
	assert_memory_equal(&t, &again, sizeof(t));

	/* Reads return 0. */
	uint8_t data[8];
	memset(data, 0xaa, sizeof(data));
	boottimer_io(&bt, 0, data, 8, false);
	static const uint8_t zero[8];
	assert_memory_equal(data, zero, 8);
}

/* Any width carries the value; the guest may write 8, 16, 32 or 64 bits. */
static void test_widths(void **state)
{
	(void)state;
	struct logger lg;
	log_init(&lg, LOG_ERROR, STDERR_FILENO);
	for (uint32_t len = 1; len <= 8; len *= 2) {
		struct boottimer bt;
		boottimer_init(&bt, &lg, 0);
		write_val(&bt, 0, BOOTTIMER_MAGIC, len);
		struct boottimer_times t;
		assert_true(boottimer_get(&bt, &t));
		/* No KVM_RUN recorded: the figures relative to it are 0. */
		assert_int_equal(t.init_since_run, 0);
		assert_int_equal(t.vmm_start_wall, 0);
	}
	/* Garbage in the upper bytes of a wide write is not the magic value. */
	struct boottimer bt;
	boottimer_init(&bt, &lg, 0);
	write_val(&bt, 0, 0x100000000ULL | BOOTTIMER_MAGIC, 8);
	struct boottimer_times t;
	assert_false(boottimer_get(&bt, &t));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_once),
		cmocka_unit_test(test_widths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
