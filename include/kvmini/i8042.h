/* i8042: the PS/2 controller, kept only for its CPU reset line (port 0x64, command 0xfe). */
#ifndef KVMINI_I8042_H
#define KVMINI_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct i8042 {
	pthread_mutex_t lock;
	uint8_t ctr;		     /* controller command byte ("configuration") */
	uint8_t status;		     /* status register (port 0x64 read) */
	uint8_t out;		     /* output buffer (port 0x60 read), valid while status OBF */
	uint8_t pending_cmd;	     /* command awaiting a data byte on port 0x60, or 0 */
	uint8_t outport;	     /* controller output port (bit 0: CPU not in reset) */
	void (*reset)(void *opaque); /* the guest pulsed the CPU reset line */
	void *opaque;
};

void i8042_init(struct i8042 *k, void (*reset)(void *opaque), void *opaque);
void i8042_fini(struct i8042 *k);

/* Bus handlers for the data port (0x60) and the command/status port (0x64). */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
