/* console: joins the guest's UART to the host terminal (stdin/stdout) without blocking vCPUs. */
#ifndef KVMINI_CONSOLE_H
#define KVMINI_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "kvmini/uart.h"

#define CONSOLE_OUT_BUF (256 * 1024)

struct console {
	int in_fd;   /* host input, or -1 */
	int out_fd;  /* host output, or -1 (output discarded) */
	int wake_fd; /* eventfd: output queued or receive FIFO has room again */
	/* Output ring: vCPUs append (uart tx), the console thread drains. */
	pthread_mutex_t lock;
	uint8_t *buf;
	size_t head, len;
	atomic_uint_fast64_t dropped; /* bytes lost because the ring was full */
	bool in_eof;
	bool escape; /* the previous input byte was Ctrl-A */
	bool quit;   /* the user typed Ctrl-A x */
	/* Terminal state to restore, when in_fd is a terminal. */
	bool raw;
	struct termios saved;
};

/* Set up the console; puts in_fd's terminal (if any) into raw mode. 0 or -errno. */
int console_init(struct console *c, int in_fd, int out_fd);

/* Restore the terminal and free everything. Safe on a zeroed or half-built console. */
void console_fini(struct console *c);

/* The uart_ops the UART needs; opaque is the struct console. */
extern const struct uart_ops console_uart_ops;

/*
 * Run the console until `stop_fd` (an eventfd) or `sig_fd` (a signalfd, or -1) is readable or
 * the user types Ctrl-A x. Moves host input into `uart` only as fast as its FIFO drains.
 * Returns 0 when stop_fd fired, the signal number when a signal arrived, -1 on Ctrl-A x.
 */
int console_loop(struct console *c, struct uart *uart, int stop_fd, int sig_fd);

/* Write out whatever output is still queued (blocking); used at teardown. */
void console_flush(struct console *c);

#endif
