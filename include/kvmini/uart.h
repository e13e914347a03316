/* uart: a 16550A serial port (COM1), the guest's console. */
#ifndef KVMINI_UART_H
#define KVMINI_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UART_FIFO_SIZE 16
#define UART_NR_REGS   8

/* How the UART reaches the rest of the VM. Called with the UART's lock held: never block. */
struct uart_ops {
	/* Drive the interrupt line (level): 0, or -errno when the line could not be set (the
	 * UART counts it in irq_errors and sets the level again at its next change). */
	int (*set_irq)(void *opaque, int level);
	void (*tx)(void *opaque, uint8_t byte); /* one byte the guest transmitted */
	void (*rx_room)(void *opaque);		/* uart_rx_room() went from 0 to non-zero */
};

struct uart {
	pthread_mutex_t lock; /* guards everything below; vCPU threads and the console thread */
	/* registers */
	uint8_t ier, iir_fifo_bits, lcr, mcr, lsr, msr, scr, fcr;
	uint8_t dll, dlm;
	/* receive FIFO (guest reads), filled by uart_rx_push() */
	uint8_t rx[UART_FIFO_SIZE];
	unsigned int rx_head, rx_count;
	bool thr_empty_pending; /* THRE interrupt pending (cleared by reading IIR or writing THR) */
	int irq_level;		/* last level set_irq took */
	uint64_t irq_errors;	/* set_irq calls that failed */
	const struct uart_ops *ops;
	void *opaque;
};

/* Reset to power-on state. `ops` and `opaque` must outlive the UART. */
void uart_init(struct uart *u, const struct uart_ops *ops, void *opaque);
void uart_fini(struct uart *u);

/* Bus handler for the 8 ports at the UART's base (a bus_io_fn). */
void uart_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* How many bytes the receive FIFO can take now; 0 in loopback mode (host input refused). */
size_t uart_rx_room(struct uart *u);

/* Queue received bytes; returns how many were taken (never more than uart_rx_room()). */
size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t n);

#endif
