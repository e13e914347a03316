/* i8042: a minimal PS/2 controller: status, command byte, self-test, and the CPU reset line. */
#include <string.h>

#include "kvmini/i8042.h"

/* Status register bits and controller commands (IBM PC/AT technical reference). */
#define I8042_STR_OBF	     0x01 /* output buffer full: a byte waits on port 0x60 */
#define I8042_STR_SYSFLAG    0x04 /* self-test passed */
#define I8042_STR_CMD	     0x08 /* last write was to the command port */
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

void i8042_init(struct i8042 *k, void (*reset)(void *opaque), void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->status = I8042_STR_SYSFLAG;
	k->ctr = 0x45; /* keyboard interrupt on, system flag, translation */
	k->outport = I8042_OUTP_RESET;
	k->reset = reset;
	k->opaque = opaque;
}

void i8042_fini(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void i8042_reply(struct i8042 *k, uint8_t byte)
{
	k->out = byte;
	k->status |= I8042_STR_OBF;
}

/* Returns true if the guest asked for a CPU reset. */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
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
	case I8042_CMD_AUX_OFF:
	case I8042_CMD_AUX_ON:
	case I8042_CMD_KBD_OFF:
	case I8042_CMD_KBD_ON:
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
	bool reset = false;
	(void)offset;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status |= I8042_STR_CMD;
		reset = i8042_command(k, data[0]);
	} else {
		memset(data, 0, len);
		data[0] = k->status;
	}
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: the callback stops the VM and kicks every vCPU. */
	if (reset && k->reset)
		k->reset(k->opaque);
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;
	(void)offset;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status &= (uint8_t)~I8042_STR_CMD;
		if (k->pending_cmd == I8042_CMD_WRITE_CTR) {
			k->ctr = data[0];
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
	}
	pthread_mutex_unlock(&k->lock);
	if (reset && k->reset)
		k->reset(k->opaque);
}
