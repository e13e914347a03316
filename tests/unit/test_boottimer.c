/* test_boottimer: the boot-timer device records once, on the magic value at offset 0 only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static uint64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The first KVM_RUN on CLOCK_REALTIME, recorded and logged at debug level only. */
static void test_first_run_realtime(void **state)
{
	(void)state;
	for (int level = LOG_INFO; level <= LOG_DEBUG; level++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		struct logger lg;
		log_init(&lg, level, p[1]);
		struct boottimer bt;
		boottimer_init(&bt, &lg, 0);
		uint64_t before = real_ns();
		boottimer_first_run(&bt);
		uint64_t after = real_ns();
		usleep(5000);
		write_val(&bt, 0, BOOTTIMER_MAGIC, 1);
		close(p[1]);
		char buf[1024];
		ssize_t n = read(p[0], buf, sizeof(buf) - 1);
		close(p[0]);
		assert_true(n > 0);
		buf[n] = '\0';

		struct boottimer_times t;
		assert_true(boottimer_get(&bt, &t));
		/* Derived from the monotonic clock, so allow the clocks 1 ms of drift. */
		assert_true(t.first_run_real + 1000000 >= before);
		assert_true(t.first_run_real <= after + 1000000);
		assert_non_null(strstr(buf, "guest init reached"));
		const char *dbg = strstr(buf, "boot timer: first KVM_RUN at ");
		if (level < LOG_DEBUG) {
			assert_null(dbg);
			continue;
		}
		assert_non_null(dbg);
		double s = strtod(dbg + strlen("boot timer: first KVM_RUN at "), NULL);
		assert_true(s * 1e9 + 2e6 >= (double)before && s * 1e9 <= (double)after + 2e6);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_once),
		cmocka_unit_test(test_widths),
		cmocka_unit_test(test_first_run_realtime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
