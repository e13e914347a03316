/* i8042: the PS/2 controller: its CPU reset line (port 0x64, command 0xfe) and a keyboard that
 * can only type Ctrl-Alt-Del (the graceful shutdown request). */
#ifndef KVMINI_I8042_H
#define KVMINI_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define I8042_KBD_FIFO 16 /* keyboard bytes waiting for the output buffer */

struct i8042 {
	pthread_mutex_t lock;
	uint8_t kbd[I8042_KBD_FIFO]; /* keyboard bytes not yet in the output buffer */
	unsigned int kbd_head, kbd_len;
	bool out_kbd;				  /* the output buffer holds a keyboard byte */
	void (*set_irq)(void *opaque, int level); /* IRQ 1 (keyboard), or NULL */
	uint8_t ctr;				  /* controller command byte ("configuration") */
	uint8_t status;				  /* status register (port 0x64 read) */
	uint8_t out;		     /* output buffer (port 0x60 read), valid while status OBF */
	uint8_t pending_cmd;	     /* command awaiting a data byte on port 0x60, or 0 */
	uint8_t outport;	     /* controller output port (bit 0: CPU not in reset) */
	void (*reset)(void *opaque); /* the guest pulsed the CPU reset line */
	void *opaque;
};

/* `reset`: the guest pulsed the CPU reset line; `set_irq` (or NULL): drive IRQ 1. */
void i8042_init(struct i8042 *k, void (*reset)(void *opaque),
		void (*set_irq)(void *opaque, int level), void *opaque);
void i8042_fini(struct i8042 *k);

/*
 * Type Ctrl-Alt-Del on the keyboard (press and release): scan code set 1 when the guest left
 * the controller's translation on (Linux does), set 2 otherwise, one byte per IRQ 1. Any
 * thread. 0, or -EBUSY when earlier keys are still unread (the guest is not reading its
 * keyboard).
 */
int i8042_send_ctrl_alt_del(struct i8042 *k);

/* Bus handlers for the data port (0x60) and the command/status port (0x64). */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
