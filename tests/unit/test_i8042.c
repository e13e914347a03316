/* test_i8042: controller status, command byte, self-test and the CPU reset line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kvmini/i8042.h"

static void on_reset(void *opaque)
{
	(*(int *)opaque)++;
}

static uint8_t rd(struct i8042 *k, bool cmd_port)
{
	uint8_t v = 0;
	(cmd_port ? i8042_cmd_io : i8042_data_io)(k, 0, &v, 1, false);
	return v;
}

static void wr(struct i8042 *k, bool cmd_port, uint8_t v)
{
	(cmd_port ? i8042_cmd_io : i8042_data_io)(k, 0, &v, 1, true);
}

static void test_status_ready_for_commands(void **state)
{
	(void)state;
	struct i8042 k;
	int resets = 0;
	i8042_init(&k, on_reset, &resets);
	/* Linux's reboot path waits for bit 1 (input buffer full) to clear. */
	assert_int_equal(rd(&k, true) & 0x02, 0);
	assert_int_equal(rd(&k, true) & 0x01, 0);
	i8042_fini(&k);
}

static void test_reset_command(void **state)
{
	(void)state;
	struct i8042 k;
	int resets = 0;
	i8042_init(&k, on_reset, &resets);
	wr(&k, true, 0xfe);
	assert_int_equal(resets, 1);
	wr(&k, true, 0xff); /* pulses no line: not a reset */
	assert_int_equal(resets, 1);
	i8042_fini(&k);
}

static void test_reset_through_output_port(void **state)
{
	(void)state;
	struct i8042 k;
	int resets = 0;
	i8042_init(&k, on_reset, &resets);
	wr(&k, true, 0xd1);
	wr(&k, false, 0x01); /* reset line stays high */
	assert_int_equal(resets, 0);
	wr(&k, true, 0xd1);
	wr(&k, false, 0x00);
	assert_int_equal(resets, 1);
	i8042_fini(&k);
}

static void test_command_byte_and_self_test(void **state)
{
	(void)state;
	struct i8042 k;
	int resets = 0;
	i8042_init(&k, on_reset, &resets);
	wr(&k, true, 0x60);
	wr(&k, false, 0x65);
	wr(&k, true, 0x20);
	assert_int_equal(rd(&k, true) & 0x01, 0x01); /* output buffer full */
	assert_int_equal(rd(&k, false), 0x65);
	assert_int_equal(rd(&k, true) & 0x01, 0);
	wr(&k, true, 0xaa);
	assert_int_equal(rd(&k, false), 0x55);
	wr(&k, true, 0xab);
	assert_int_equal(rd(&k, false), 0x00);
	assert_int_equal(resets, 0);
	/* Wider accesses do not crash and read the register in byte 0. */
	uint8_t wide[4] = {9, 9, 9, 9};
	i8042_cmd_io(&k, 0, wide, 4, false);
	assert_int_equal(wide[1], 0);
	i8042_fini(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_ready_for_commands),
		cmocka_unit_test(test_reset_command),
		cmocka_unit_test(test_reset_through_output_port),
		cmocka_unit_test(test_command_byte_and_self_test),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
