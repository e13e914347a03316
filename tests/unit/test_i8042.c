/* test_i8042: controller status, command byte, self-test, the CPU reset line, Ctrl-Alt-Del. */
#include <errno.h>
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
	i8042_init(&k, on_reset, NULL, &resets);
	/* Linux's reboot path waits for bit 1 (input buffer full) to clear. */
	assert_int_equal(rd(&k, true) & 0x02, 0);
	assert_int_equal(rd(&k, true) & 0x01, 0);
	/* No keylock: Linux warns "Keylock active" when bit 4 is clear. */
	assert_int_equal(rd(&k, true) & 0x10, 0x10);
	i8042_fini(&k);
}

static void test_reset_command(void **state)
{
	(void)state;
	struct i8042 k;
	int resets = 0;
	i8042_init(&k, on_reset, NULL, &resets);
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
	i8042_init(&k, on_reset, NULL, &resets);
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
	i8042_init(&k, on_reset, NULL, &resets);
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

struct kbd_ctx {
	int resets; /* first: on_reset counts it */
	int rises, falls, level;
	struct i8042 *k;
	int unlocked; /* edges driven without the controller's lock held */
};

static void on_irq(void *opaque, int level)
{
	struct kbd_ctx *c = opaque;
	/* Edges from two threads must not interleave: the line is driven under the lock. */
	if (c->k && pthread_mutex_trylock(&c->k->lock) == 0) {
		c->unlocked++;
		pthread_mutex_unlock(&c->k->lock);
	}
	if (level && !c->level)
		c->rises++;
	if (!level && c->level)
		c->falls++;
	c->level = level;
}

/* Read every byte the keyboard offers. */
static unsigned int drain(struct i8042 *k, struct kbd_ctx *c, uint8_t *out, unsigned int max)
{
	unsigned int n = 0;
	(void)c;
	while (n < max && (rd(k, true) & 0x01))
		out[n++] = rd(k, false);
	return n;
}

static void test_ctrl_alt_del_set1_with_irqs(void **state)
{
	(void)state;
	struct i8042 k;
	struct kbd_ctx c = {.k = &k};
	i8042_init(&k, on_reset, on_irq, &c);
	/* Linux's default: translation on, keyboard interrupt on (0x45 from init). */
	assert_int_equal(i8042_send_ctrl_alt_del(&k), 0);
	assert_int_equal(c.rises, 1); /* first byte loaded and announced */
	assert_int_equal(c.level, 0); /* an edge, not a stuck line */
	uint8_t got[16];
	unsigned int n = drain(&k, &c, got, sizeof(got));
	static const uint8_t want[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(got, want, sizeof(want));
	assert_int_equal(c.rises, (int)sizeof(want)); /* one interrupt per byte */
	assert_int_equal(c.unlocked, 0);
	assert_int_equal(c.resets, 0);
	i8042_fini(&k);
}

static void test_ctrl_alt_del_set2_without_translation(void **state)
{
	(void)state;
	struct i8042 k;
	struct kbd_ctx c = {0};
	i8042_init(&k, on_reset, on_irq, &c);
	wr(&k, true, 0x60);
	wr(&k, false, 0x05); /* interrupt on, no translation */
	assert_int_equal(i8042_send_ctrl_alt_del(&k), 0);
	uint8_t got[16];
	unsigned int n = drain(&k, &c, got, sizeof(got));
	static const uint8_t want[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(got, want, sizeof(want));
	i8042_fini(&k);
}

static void test_keys_wait_for_an_enabled_keyboard(void **state)
{
	(void)state;
	struct i8042 k;
	struct kbd_ctx c = {0};
	i8042_init(&k, on_reset, on_irq, &c);
	wr(&k, true, 0xad); /* keyboard off: bytes stay queued */
	assert_int_equal(i8042_send_ctrl_alt_del(&k), 0);
	assert_int_equal(rd(&k, true) & 0x01, 0);
	assert_int_equal(c.rises, 0);
	wr(&k, true, 0xae); /* on again: the first byte arrives with its interrupt */
	assert_int_equal(c.rises, 1);
	assert_int_equal(rd(&k, false), 0x1d);
	/* Interrupts off in the command byte: bytes still arrive (polled), no IRQ. */
	wr(&k, true, 0x60);
	wr(&k, false, 0x44);
	int rises = c.rises;
	assert_int_equal(rd(&k, false), 0x38);
	assert_int_equal(c.rises, rises);
	i8042_fini(&k);
}

static void test_unread_keys_refuse_more(void **state)
{
	(void)state;
	struct i8042 k;
	struct kbd_ctx c = {0};
	i8042_init(&k, on_reset, on_irq, &c);
	/* A guest that never reads its keyboard: the queue fills, then -EBUSY, no overflow. */
	assert_int_equal(i8042_send_ctrl_alt_del(&k), 0);
	assert_int_equal(i8042_send_ctrl_alt_del(&k), 0); /* 7 queued + 8 fit in 16 */
	assert_int_equal(i8042_send_ctrl_alt_del(&k), -EBUSY);
	uint8_t got[32];
	assert_int_equal(drain(&k, &c, got, sizeof(got)), 16);
	assert_int_equal(i8042_send_ctrl_alt_del(&k), 0); /* read: room again */
	i8042_fini(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_ready_for_commands),
		cmocka_unit_test(test_reset_command),
		cmocka_unit_test(test_reset_through_output_port),
		cmocka_unit_test(test_command_byte_and_self_test),
		cmocka_unit_test(test_ctrl_alt_del_set1_with_irqs),
		cmocka_unit_test(test_ctrl_alt_del_set2_without_translation),
		cmocka_unit_test(test_keys_wait_for_an_enabled_keyboard),
		cmocka_unit_test(test_unread_keys_refuse_more),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
