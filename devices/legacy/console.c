/* console: guest UART output to a host fd through a bounded ring; host input as the FIFO drains. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/console.h"

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A, as in QEMU */

static void console_wake(struct console *c)
{
	uint64_t one = 1;
	if (write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the console thread is awake anyway. */
	}
}

/* uart tx: called on a vCPU thread with the UART lock held. Never blocks, never waits. */
static void console_tx(void *opaque, uint8_t byte)
{
	struct console *c = opaque;
	if (c->out.fd < 0 && !c->sink)
		return;
	pthread_mutex_lock(&c->lock);
	bool was_empty = c->len == 0;
	if (c->len == CONSOLE_OUT_BUF) {
		atomic_fetch_add(&c->dropped, 1);
		was_empty = false;
	} else {
		c->buf[(c->head + c->len) % CONSOLE_OUT_BUF] = byte;
		c->len++;
	}
	pthread_mutex_unlock(&c->lock);
	if (was_empty)
		console_wake(c);
}

static void console_rx_room(void *opaque)
{
	console_wake(opaque);
}

const struct uart_ops console_uart_ops = {
	.set_irq = NULL,
	.tx = console_tx,
	.rx_room = console_rx_room,
};

int console_init(struct console *c, int in_fd, int out_fd)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = in_fd;
	c->out.fd = -1;
	c->wake_fd = -1;
	atomic_init(&c->dropped, 0);
	atomic_init(&c->hold, false);
	c->buf = malloc(CONSOLE_OUT_BUF);
	if (!c->buf)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0) {
		int err = errno;
		free(c->buf);
		c->buf = NULL;
		return -err;
	}
	nbout_open(&c->out, out_fd, true);
	return 0;
}

void console_raw(struct console *c)
{
	int in_fd = c->in_fd;
	if (!c->raw && in_fd >= 0 && isatty(in_fd) && tcgetattr(in_fd, &c->saved) == 0) {
		struct termios t = c->saved;
		/* Raw input (no line editing, no echo, no signals from ^C); output processing
		 * stays on so host log lines still start at column 0. */
		t.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
		t.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
		t.c_cflag |= CS8;
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(in_fd, TCSANOW, &t) == 0)
			c->raw = true;
	}
}

void console_restore(struct console *c)
{
	if (c->raw) {
		tcsetattr(c->in_fd, TCSANOW, &c->saved);
		c->raw = false;
	}
}

void console_set_sink(struct console *c, void (*fn)(void *, const uint8_t *, size_t), void *opaque)
{
	c->sink = fn;
	c->sink_opaque = opaque;
}

void console_hold_input(struct console *c, bool hold)
{
	atomic_store(&c->hold, hold);
	console_wake(c); /* the loop re-evaluates what it polls */
}

void console_fini(struct console *c)
{
	console_restore(c);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	c->wake_fd = -1;
	nbout_close(&c->out);
	if (c->buf) {
		pthread_mutex_destroy(&c->lock);
		free(c->buf);
		c->buf = NULL;
	}
}

/* Drop everything still queued; with `count`, as bytes dropped (not when output is gone). */
static void console_discard(struct console *c, bool count)
{
	pthread_mutex_lock(&c->lock);
	if (count)
		atomic_fetch_add(&c->dropped, c->len);
	c->head = 0;
	c->len = 0;
	pthread_mutex_unlock(&c->lock);
}

/* Write queued output until the ring is empty or out_fd has no room; never blocks.
 * Returns true while bytes remain queued (poll out_fd for POLLOUT, then call again). */
static bool console_drain(struct console *c)
{
	for (;;) {
		pthread_mutex_lock(&c->lock);
		size_t n = c->len;
		size_t first = CONSOLE_OUT_BUF - c->head;
		if (n > first)
			n = first;
		const uint8_t *p = c->buf + c->head;
		pthread_mutex_unlock(&c->lock);
		if (n == 0)
			return false;
		/* Only this thread removes bytes, so [head, head+n) stays valid unlocked. */
		ssize_t w = (ssize_t)n;
		if (c->sink)
			c->sink(c->sink_opaque, p, n);
		else
			w = nbout_write(&c->out, p, n);
		if (w == -EAGAIN)
			return true;
		if (w < 0) {
			/* Output is gone (closed pipe...): discard, the guest must not stall. */
			console_discard(c, false);
			return false;
		}
		pthread_mutex_lock(&c->lock);
		c->head = (c->head + (size_t)w) % CONSOLE_OUT_BUF;
		c->len -= (size_t)w;
		pthread_mutex_unlock(&c->lock);
	}
}

static int64_t console_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void console_flush(struct console *c)
{
	if (!c->buf || (c->out.fd < 0 && !c->sink))
		return;
	int64_t start = console_now_ms();
	int64_t end = start + CONSOLE_FLUSH_MS;
	int64_t idle_end = start + CONSOLE_FLUSH_IDLE_MS;
	size_t left = c->len;
	while (console_drain(c)) {
		int64_t now = console_now_ms();
		if (c->len < left) {
			left = c->len;
			idle_end = now + CONSOLE_FLUSH_IDLE_MS;
		}
		int64_t wait = (idle_end < end ? idle_end : end) - now;
		if (wait <= 0 || nbout_wait(&c->out, (int)wait) <= 0)
			break;
	}
	/* A reader that takes nothing for CONSOLE_FLUSH_IDLE_MS loses the rest. */
	console_discard(c, true);
}

/*
 * Read at most as much host input as the FIFO can take and push it, handling the Ctrl-A
 * escape: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, anything else after Ctrl-A is dropped.
 */
static void console_read_input(struct console *c, struct uart *uart)
{
	uint8_t in[UART_FIFO_SIZE], out[UART_FIFO_SIZE];
	size_t room = uart_rx_room(uart);
	if (room == 0)
		return;
	if (room > sizeof(in))
		room = sizeof(in);
	ssize_t n = read(c->in_fd, in, room);
	if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
		c->in_eof = true;
		return;
	}
	size_t k = 0;
	for (ssize_t i = 0; i < n; i++) {
		uint8_t ch = in[i];
		if (c->escape) {
			c->escape = false;
			if (ch == 'x' || ch == 'X') {
				c->quit = true;
				break; /* what came before still reaches the guest */
			}
			if (ch == CONSOLE_ESCAPE)
				out[k++] = ch;
			continue;
		}
		if (ch == CONSOLE_ESCAPE) {
			c->escape = true;
			continue;
		}
		out[k++] = ch;
	}
	if (k)
		uart_rx_push(uart, out, k);
}

int console_loop(struct console *c, struct uart *uart, int stop_fd, int sig_fd)
{
	bool pending = false; /* output queued that out_fd had no room for */
	for (;;) {
		struct pollfd p[5];
		int np = 0;
		p[np++] = (struct pollfd){.fd = stop_fd, .events = POLLIN};
		p[np++] = (struct pollfd){.fd = c->wake_fd, .events = POLLIN};
		int sig_i = -1, in_i = -1, out_i = -1;
		if (sig_fd >= 0) {
			sig_i = np;
			p[np++] = (struct pollfd){.fd = sig_fd, .events = POLLIN};
		}
		/* Host input is read only while the guest's receive FIFO has room. */
		if (c->in_fd >= 0 && !c->in_eof && !atomic_load(&c->hold) &&
		    uart_rx_room(uart) > 0) {
			in_i = np;
			p[np++] = (struct pollfd){.fd = c->in_fd, .events = POLLIN};
		}
		if (pending) {
			out_i = np;
			p[np++] = (struct pollfd){.fd = c->out.fd, .events = POLLOUT};
		}
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* A closed stop, wake or signal fd would make every poll return at once. */
		for (int i = 0; i < np; i++)
			if ((p[i].revents & POLLNVAL) && i != in_i && i != out_i)
				return -EBADF;
		if (p[1].revents & POLLIN) {
			uint64_t v;
			if (read(c->wake_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another wake already consumed */
			}
		}
		if (c->out.fd >= 0 || c->sink)
			pending = console_drain(c);
		if (p[0].revents & POLLIN)
			return CONSOLE_STOP;
		if (sig_i >= 0 && (p[sig_i].revents & POLLIN)) {
			struct signalfd_siginfo si;
			if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				return (int)si.ssi_signo;
		}
		if (in_i >= 0 && !atomic_load(&c->hold) &&
		    (p[in_i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) {
			console_read_input(c, uart);
			if (c->quit)
				return CONSOLE_QUIT;
		}
	}
}
