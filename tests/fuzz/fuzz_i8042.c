/*
 * fuzz_i8042: the PS/2 controller as a guest drives it, with the host typing Ctrl-Alt-Del in
 * between. Input: 2-byte operations {op, value}: op % 5 writes value to the command port
 * (0x64) or the data port (0x60), reads one of them, or types Ctrl-Alt-Del. Oracles: the
 * reset line is pulsed only by a command that pulses it (0xf0-0xff with bit 0 clear) or by
 * writing the output port (0xd1, then a data byte with bit 0 clear, whatever commands came
 * between but 0x60); the interrupt line is only ever set to 0 or 1.
 */
#include <stdint.h>
#include <stdlib.h>

#include "kvmini/i8042.h"

struct host {
	unsigned int resets;
	int bad_level;
};

static void h_reset(void *o)
{
	((struct host *)o)->resets++;
}

static void h_set_irq(void *o, int level)
{
	if (level != 0 && level != 1)
		((struct host *)o)->bad_level = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct host h = {0};
	struct i8042 k;
	i8042_init(&k, h_reset, h_set_irq, &h);
	unsigned int may_reset = 0;
	uint8_t pending = 0; /* the command that waits for a data byte (0x60, 0xd1) */
	for (size_t i = 0; i + 2 <= size; i += 2) {
		uint8_t op = data[i] % 5, v = data[i + 1];
		switch (op) {
		case 0:
			may_reset += v >= 0xf0 && !(v & 1);
			if (v == 0x60 || v == 0xd1)
				pending = v;
			i8042_cmd_io(&k, 0, &v, 1, true);
			break;
		case 1:
			may_reset += pending == 0xd1 && !(v & 1);
			pending = 0;
			i8042_data_io(&k, 0, &v, 1, true);
			break;
		case 2:
			i8042_cmd_io(&k, 0, &v, 1, false);
			break;
		case 3:
			i8042_data_io(&k, 0, &v, 1, false);
			break;
		default:
			i8042_send_ctrl_alt_del(&k);
			break;
		}
		if (h.resets > may_reset || h.bad_level)
			abort();
	}
	i8042_fini(&k);
	return 0;
}
