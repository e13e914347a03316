/* i8042: a minimal PS/2 controller: status, command byte, self-test, the CPU reset line, and a
 * keyboard that types Ctrl-Alt-Del on request. */
#include <errno.h>
#include <string.h>

#include "kvmini/i8042.h"

/* Status register bits and controller commands (IBM PC/AT technical reference). */
#define I8042_STR_OBF	     0x01 /* output buffer full: a byte waits on port 0x60 */
#define I8042_STR_SYSFLAG    0x04 /* self-test passed */
#define I8042_STR_CMD	     0x08 /* last write was to the command port */
#define I8042_STR_UNLOCKED   0x10 /* keyboard not inhibited (no keylock) */
#define I8042_CMD_READ_CTR   0x20
#define I8042_CMD_WRITE_CTR  0x60
#define I8042_CMD_AUX_OFF    0xa7
#define I8042_CMD_AUX_ON     0xa8
#define I8042_CMD_AUX_TEST   0xa9
#define I8042_CMD_SELF_TEST  0xaa
#define I8042_CMD_KBD_TEST   0xab
#define I8042_CMD_KBD_OFF    0xad
#define I8042_CMD_KBD_ON     0xae
#define I8042_CMD_READ_OUTP  0xd0
#define I8042_CMD_WRITE_OUTP 0xd1
#define I8042_CMD_RESET	     0xfe /* pulse output line 0: the CPU reset */
#define I8042_OUTP_RESET     0x01 /* output port bit 0 low = CPU held in reset */
#define I8042_CTR_KBDINT     0x01 /* command byte: interrupt on keyboard data */
#define I8042_CTR_KBDDIS     0x10 /* command byte: keyboard clock disabled */
#define I8042_CTR_XLATE	     0x40 /* command byte: translate to scan code set 1 */

/* Ctrl, Alt, Delete pressed, then released in reverse order. */
static const uint8_t i8042_cad_set1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
static const uint8_t i8042_cad_set2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
					 0x71, 0xf0, 0x11, 0xf0, 0x14};

void i8042_init(struct i8042 *k, void (*reset)(void *opaque),
		void (*set_irq)(void *opaque, int level), void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->status = I8042_STR_SYSFLAG | I8042_STR_UNLOCKED;
	k->ctr = 0x45; /* keyboard interrupt on, system flag, translation */
	k->outport = I8042_OUTP_RESET;
	k->reset = reset;
	k->set_irq = set_irq;
	k->opaque = opaque;
}

void i8042_fini(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void i8042_reply(struct i8042 *k, uint8_t byte)
{
	k->out = byte;
	k->out_kbd = false;
	k->status |= I8042_STR_OBF;
}

/* With the output buffer free, move the next keyboard byte into it. Under the lock; true if
 * that should raise IRQ 1 (the guest enabled keyboard interrupts and the keyboard). */
static bool i8042_kbd_load(struct i8042 *k)
{
	if ((k->status & I8042_STR_OBF) || !k->kbd_len || (k->ctr & I8042_CTR_KBDDIS))
		return false;
	k->out = k->kbd[k->kbd_head];
	k->kbd_head = (k->kbd_head + 1) % I8042_KBD_FIFO;
	k->kbd_len--;
	k->out_kbd = true;
	k->status |= I8042_STR_OBF;
	return (k->ctr & I8042_CTR_KBDINT) != 0;
}

/*
 * An edge on IRQ 1 (high, then low), under the lock: two threads pulsing at once (a vCPU
 * reading the previous byte, another thread typing) must not interleave into 1, 1, 0, 0,
 * which is one edge and a byte the guest never hears of.
 */
static void i8042_pulse(struct i8042 *k, bool irq)
{
	if (irq && k->set_irq) {
		k->set_irq(k->opaque, 1);
		k->set_irq(k->opaque, 0);
	}
}

int i8042_send_ctrl_alt_del(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	bool set1 = (k->ctr & I8042_CTR_XLATE) != 0;
	const uint8_t *codes = set1 ? i8042_cad_set1 : i8042_cad_set2;
	unsigned int n = set1 ? sizeof(i8042_cad_set1) : sizeof(i8042_cad_set2);
	if (k->kbd_len + n > I8042_KBD_FIFO) {
		pthread_mutex_unlock(&k->lock);
		return -EBUSY;
	}
	for (unsigned int i = 0; i < n; i++)
		k->kbd[(k->kbd_head + k->kbd_len++) % I8042_KBD_FIFO] = codes[i];
	i8042_pulse(k, i8042_kbd_load(k));
	pthread_mutex_unlock(&k->lock);
	return 0;
}

/* Returns true if the guest asked for a CPU reset; *irq: a keyboard byte became readable. */
static bool i8042_command(struct i8042 *k, uint8_t cmd, bool *irq)
{
	switch (cmd) {
	case I8042_CMD_READ_CTR:
		i8042_reply(k, k->ctr);
		break;
	case I8042_CMD_WRITE_CTR:
	case I8042_CMD_WRITE_OUTP:
		k->pending_cmd = cmd;
		break;
	case I8042_CMD_SELF_TEST:
		i8042_reply(k, 0x55);
		break;
	case I8042_CMD_KBD_TEST:
	case I8042_CMD_AUX_TEST:
		i8042_reply(k, 0x00);
		break;
	case I8042_CMD_READ_OUTP:
		i8042_reply(k, k->outport);
		break;
	case I8042_CMD_KBD_OFF:
		k->ctr |= I8042_CTR_KBDDIS;
		break;
	case I8042_CMD_KBD_ON:
		k->ctr &= (uint8_t)~I8042_CTR_KBDDIS;
		*irq = i8042_kbd_load(k);
		break;
	case I8042_CMD_AUX_OFF:
	case I8042_CMD_AUX_ON:
		break;
	default:
		/* 0xf0-0xff pulse output port lines; bit 0 is the CPU reset (0xfe, 0xfc...). */
		if (cmd >= 0xf0 && !(cmd & I8042_OUTP_RESET))
			return true;
		break;
	}
	return false;
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false, irq = false;
	(void)offset;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status |= I8042_STR_CMD;
		reset = i8042_command(k, data[0], &irq);
	} else {
		memset(data, 0, len);
		data[0] = k->status;
	}
	i8042_pulse(k, irq);
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: the callback stops the VM and kicks every vCPU. */
	if (reset && k->reset)
		k->reset(k->opaque);
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false, irq = false;
	(void)offset;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status &= (uint8_t)~I8042_STR_CMD;
		if (k->pending_cmd == I8042_CMD_WRITE_CTR) {
			k->ctr = data[0];
			irq = i8042_kbd_load(k); /* keys typed before the guest was ready */
		} else if (k->pending_cmd == I8042_CMD_WRITE_OUTP) {
			k->outport = data[0];
			reset = !(data[0] & I8042_OUTP_RESET);
		}
		/* Bytes for the keyboard itself go nowhere: there is no keyboard. */
		k->pending_cmd = 0;
	} else {
		memset(data, 0, len);
		data[0] = k->out;
		k->status &= (uint8_t)~I8042_STR_OBF;
		k->out_kbd = false;
		irq = i8042_kbd_load(k);
	}
	i8042_pulse(k, irq);
	pthread_mutex_unlock(&k->lock);
	if (reset && k->reset)
		k->reset(k->opaque);
}
