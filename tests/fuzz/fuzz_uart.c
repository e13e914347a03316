/*
 * fuzz_uart: the 16550A as a guest drives it, with host input arriving in between. Input: a
 * sequence of 3-byte operations {op, port, value}: op % 4 is a port write, a port read, host
 * input of `value % 24` bytes, or a failing interrupt line from here on (op 3 toggles it).
 * Oracles: the receive FIFO never holds more than its 16 bytes nor takes more than
 * uart_rx_room() allowed; every byte the guest sends with DLAB clear and loopback off
 * reaches tx, no other; the line level the UART last set is the one it remembers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/uart.h"

struct host {
	unsigned int tx, irq_calls;
	int level, fail;
};

static int h_set_irq(void *o, int level)
{
	struct host *h = o;
	h->irq_calls++;
	if (h->fail)
		return -5;
	h->level = level;
	return 0;
}

static void h_tx(void *o, uint8_t byte)
{
	(void)byte;
	((struct host *)o)->tx++;
}

static void h_rx_room(void *o)
{
	(void)o;
}

static const struct uart_ops ops = {h_set_irq, h_tx, h_rx_room};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct host h = {0};
	struct uart u;
	uart_init(&u, &ops, &h);
	unsigned int sent = 0;
	for (size_t i = 0; i + 3 <= size; i += 3) {
		uint8_t op = data[i] % 4, port = data[i + 1] % UART_NR_REGS, v = data[i + 2];
		if (op == 0) {
			bool thr = port == 0 && !(u.lcr & 0x80) && !(u.mcr & 0x10);
			uart_io(&u, port, &v, 1, true);
			sent += thr;
		} else if (op == 1) {
			uart_io(&u, port, &v, 1, false);
		} else if (op == 2) {
			uint8_t in[24];
			size_t n = v % sizeof(in);
			memset(in, v, n);
			size_t room = uart_rx_room(&u);
			size_t took = uart_rx_push(&u, in, n);
			if (took > room || took > n)
				abort();
		} else {
			h.fail = !h.fail;
		}
		if (u.rx_count > UART_FIFO_SIZE || u.rx_head >= UART_FIFO_SIZE)
			abort();
		if (!h.fail && h.irq_calls && u.irq_level != h.level)
			abort();
	}
	if (h.tx != sent)
		abort();
	uart_fini(&u);
	return 0;
}
