/* console: joins the guest's UART to the host terminal (stdin/stdout) without blocking vCPUs. */
#ifndef KVMINI_CONSOLE_H
#define KVMINI_CONSOLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "kvmini/nbout.h"
#include "kvmini/uart.h"

#define CONSOLE_OUT_BUF (256 * 1024)
/* At teardown, output still queued is written for at most CONSOLE_FLUSH_MS, and dropped
 * (counted) once the reader has taken nothing for CONSOLE_FLUSH_IDLE_MS. */
#define CONSOLE_FLUSH_MS      5000
#define CONSOLE_FLUSH_IDLE_MS 500

struct console {
	int in_fd;	  /* host input, or -1 */
	struct nbout out; /* host output (fd -1: output discarded), written without blocking */
	void (*sink)(void *opaque, const uint8_t *buf, size_t len); /* instead of out, or NULL */
	void *sink_opaque;
	int wake_fd; /* eventfd: output queued or receive FIFO has room again */
	/* Output ring: vCPUs append (uart tx), the console thread drains. */
	pthread_mutex_t lock;
	uint8_t *buf;
	size_t head, len;
	atomic_uint_fast64_t dropped; /* bytes lost because the ring was full */
	atomic_bool hold;	      /* paused VM: host input is not moved into the UART */
	bool in_eof;
	bool escape; /* the previous input byte was Ctrl-A */
	bool quit;   /* the user typed Ctrl-A x */
	/* Terminal state to restore, when in_fd is a terminal. */
	bool raw;
	struct termios saved;
};

/* Set up the console. 0 or -errno. */
int console_init(struct console *c, int in_fd, int out_fd);

/* Put in_fd's terminal (if it is one) into raw mode, and back. Idempotent. */
void console_raw(struct console *c);
void console_restore(struct console *c);

/* Send output to `fn` (on the console thread) instead of out_fd. Before the console runs. */
void console_set_sink(struct console *c, void (*fn)(void *, const uint8_t *, size_t), void *opaque);

/* Hold (true) or release host input: held, nothing reaches the UART's FIFO, so a paused VM's
 * devices do not change. Any thread. */
void console_hold_input(struct console *c, bool hold);

/* Restore the terminal (console_restore) and free everything. Safe on a zeroed or half-built
 * console. */
void console_fini(struct console *c);

/* The uart_ops the UART needs; opaque is the struct console. */
extern const struct uart_ops console_uart_ops;

/* console_loop's results besides a signal number (1..64) and -errno. */
#define CONSOLE_STOP 0
#define CONSOLE_QUIT 1000

/*
 * Run the console until `stop_fd` (an eventfd) or `sig_fd` (a signalfd, or -1) is readable or
 * the user types Ctrl-A x. Moves host input into `uart` only as fast as its FIFO drains, and
 * guest output to out_fd without ever blocking on it: a stalled reader costs dropped bytes
 * (counted in `dropped`), never a missed stop or signal.
 * Returns CONSOLE_STOP when stop_fd fired, the signal number when a signal arrived,
 * CONSOLE_QUIT on Ctrl-A x, or -errno when it cannot go on (poll failed, a closed fd).
 */
int console_loop(struct console *c, struct uart *uart, int stop_fd, int sig_fd);

/* Write out what is still queued, for at most CONSOLE_FLUSH_MS (see above); what does not
 * get out is dropped and counted. Used at teardown. */
void console_flush(struct console *c);

#endif
