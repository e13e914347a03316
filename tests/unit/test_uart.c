/* test_uart: the 16550A model's registers, FIFO, interrupt logic, loopback and callbacks. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kvmini/uart.h"

/* Register offsets and bits, spelled out independently of devices/uart.c. */
enum { RBR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define DLL 0
#define DLM 1
#define FCR 2

#define MAX_EVENTS 64

/* What the mock ops saw. */
struct mock {
	int irq[MAX_EVENTS]; /* every level passed to set_irq, in order */
	int nirq;
	uint8_t tx[MAX_EVENTS];
	int ntx;
	int rx_room_calls;
	int fail_irq; /* nonzero: set_irq records the level and returns -EIO */
};

struct fixture {
	struct uart u;
	struct mock m;
};

static int mock_set_irq(void *opaque, int level)
{
	struct mock *m = opaque;
	assert_true(m->nirq < MAX_EVENTS);
	m->irq[m->nirq++] = level;
	return m->fail_irq ? -EIO : 0;
}

static void mock_tx(void *opaque, uint8_t byte)
{
	struct mock *m = opaque;
	assert_true(m->ntx < MAX_EVENTS);
	m->tx[m->ntx++] = byte;
}

static void mock_rx_room(void *opaque)
{
	struct mock *m = opaque;
	m->rx_room_calls++;
}

static const struct uart_ops mock_ops = {
	.set_irq = mock_set_irq,
	.tx = mock_tx,
	.rx_room = mock_rx_room,
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	uart_init(&f->u, &mock_ops, &f->m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	uart_fini(&f->u);
	free(f);
	return 0;
}

static uint8_t rd(struct fixture *f, unsigned int off)
{
	uint8_t v = 0x5a;
	uart_io(&f->u, off, &v, 1, false);
	return v;
}

static void wr(struct fixture *f, unsigned int off, uint8_t v)
{
	uart_io(&f->u, off, &v, 1, true);
}

static size_t push(struct fixture *f, const char *s)
{
	return uart_rx_push(&f->u, (const uint8_t *)s, strlen(s));
}

/* The last level sent to set_irq, or -1 if it was never called. */
static int last_irq(const struct fixture *f)
{
	return f->m.nirq ? f->m.irq[f->m.nirq - 1] : -1;
}

static void test_power_on_state(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(rd(f, RBR), 0x00);
	assert_int_equal(rd(f, IER), 0x00);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(rd(f, LCR), 0x00);
	assert_int_equal(rd(f, MCR), 0x00);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, MSR), 0xb0);
	assert_int_equal(rd(f, SCR), 0x00);
	assert_int_equal(uart_rx_room(&f->u), UART_FIFO_SIZE);
	assert_int_equal(f->m.nirq, 0);
	assert_int_equal(f->m.ntx, 0);
	assert_int_equal(f->m.rx_room_calls, 0);
}

static void test_dlab_switching(void **state)
{
	struct fixture *f = *state;
	wr(f, IER, 0x05);
	wr(f, LCR, 0x83); /* DLAB, 8 bits */
	assert_int_equal(rd(f, LCR), 0x83);
	wr(f, DLL, 0x34);
	wr(f, DLM, 0x12);
	assert_int_equal(rd(f, DLL), 0x34);
	assert_int_equal(rd(f, DLM), 0x12);
	assert_int_equal(f->m.ntx, 0); /* the DLL write was not a transmit */
	wr(f, LCR, 0x03);
	assert_int_equal(rd(f, IER), 0x05); /* the DLM write left IER alone */
	assert_int_equal(rd(f, RBR), 0x00);
	wr(f, RBR, 'A');
	assert_int_equal(f->m.ntx, 1);
	assert_int_equal(f->m.tx[0], 'A');
	wr(f, LCR, 0x80);
	assert_int_equal(rd(f, DLL), 0x34); /* the THR write left DLL alone */
	assert_int_equal(rd(f, DLM), 0x12);
	/* Offsets 2..7 do not depend on DLAB. */
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(rd(f, LSR), 0x60);
}

static void test_scratch(void **state)
{
	struct fixture *f = *state;
	wr(f, SCR, 0xa5);
	assert_int_equal(rd(f, SCR), 0xa5);
	wr(f, SCR, 0x00);
	assert_int_equal(rd(f, SCR), 0x00);
	wr(f, LCR, 0x80);
	wr(f, SCR, 0x5a);
	assert_int_equal(rd(f, SCR), 0x5a);
}

static void test_thr_transmits(void **state)
{
	struct fixture *f = *state;
	wr(f, RBR, 'h');
	wr(f, RBR, 'i');
	assert_int_equal(f->m.ntx, 2);
	assert_memory_equal(f->m.tx, "hi", 2);
	assert_int_equal(rd(f, LSR), 0x60); /* THRE|TEMT stay set */
	assert_int_equal(rd(f, IIR), 0x01); /* THRE interrupt not enabled */
	assert_int_equal(f->m.nirq, 0);
}

static void test_thre_interrupt(void **state)
{
	struct fixture *f = *state;
	wr(f, MCR, 0x08); /* OUT2 */
	wr(f, IER, 0x02); /* THR is empty: pending at once */
	assert_int_equal(f->m.nirq, 1);
	assert_int_equal(f->m.irq[0], 1);
	assert_int_equal(rd(f, IIR), 0x02); /* reported, and so acknowledged */
	assert_int_equal(f->m.nirq, 2);
	assert_int_equal(f->m.irq[1], 0);
	assert_int_equal(rd(f, IIR), 0x01);
	wr(f, RBR, 'x'); /* transmitted at once: THR empty again */
	assert_int_equal(f->m.nirq, 3);
	assert_int_equal(f->m.irq[2], 1);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(last_irq(f), 0);
	/* Rewriting IER with THRE already on does not re-raise. */
	wr(f, IER, 0x02);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(f->m.nirq, 4);
}

static void test_thre_reasserted_by_ier(void **state)
{
	struct fixture *f = *state;
	/* Linux's startup checks (UART_BUG_TXEN, UART_BUG_THRE) with OUT2 set. */
	wr(f, MCR, 0x0b);
	wr(f, IER, 0x02);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, IIR), 0x02);
	wr(f, IER, 0x00);
	wr(f, IER, 0x02);
	assert_int_equal(rd(f, IIR), 0x02);
	wr(f, IER, 0x00);
	assert_int_equal(rd(f, IIR), 0x01);
	/* Disabling drops a pending THRE interrupt. */
	wr(f, IER, 0x02);
	assert_int_equal(last_irq(f), 1);
	wr(f, IER, 0x00);
	assert_int_equal(last_irq(f), 0);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(f->m.nirq, 6);
}

static void test_rda_interrupt(void **state)
{
	struct fixture *f = *state;
	wr(f, MCR, 0x08);
	wr(f, IER, 0x01);
	assert_int_equal(f->m.nirq, 0);
	assert_int_equal(push(f, "ab"), 2);
	assert_int_equal(f->m.nirq, 1);
	assert_int_equal(f->m.irq[0], 1);
	assert_int_equal(push(f, "c"), 1);
	assert_int_equal(f->m.nirq, 1); /* level unchanged: no call */
	assert_int_equal(rd(f, IIR), 0x04);
	assert_int_equal(rd(f, IIR), 0x04); /* reading IIR does not acknowledge RDA */
	assert_int_equal(rd(f, LSR), 0x61);
	assert_int_equal(rd(f, RBR), 'a');
	assert_int_equal(rd(f, RBR), 'b');
	assert_int_equal(f->m.nirq, 1);
	assert_int_equal(rd(f, RBR), 'c');
	assert_int_equal(f->m.nirq, 2);
	assert_int_equal(f->m.irq[1], 0);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, RBR), 0x00); /* empty */
}

static void test_rda_priority_over_thre(void **state)
{
	struct fixture *f = *state;
	wr(f, MCR, 0x08);
	assert_int_equal(push(f, "z"), 1);
	wr(f, IER, 0x03);
	assert_int_equal(last_irq(f), 1);
	assert_int_equal(rd(f, IIR), 0x04);
	assert_int_equal(rd(f, IIR), 0x04); /* THRE stays pending behind RDA */
	assert_int_equal(rd(f, RBR), 'z');
	assert_int_equal(last_irq(f), 1);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(last_irq(f), 0);
	assert_int_equal(f->m.nirq, 2);
}

static void test_fifo_bits_in_iir(void **state)
{
	struct fixture *f = *state;
	wr(f, FCR, 0x01);
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, FCR, 0xc7); /* trigger 14, clear both */
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, IER, 0x02);
	assert_int_equal(rd(f, IIR), 0xc2);
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, FCR, 0x00);
	assert_int_equal(rd(f, IIR), 0x01);
	wr(f, FCR, 0x06); /* without the enable bit nothing takes effect */
	assert_int_equal(rd(f, IIR), 0x01);
}

static void test_fcr_clears_rx(void **state)
{
	struct fixture *f = *state;
	wr(f, FCR, 0x01);
	assert_int_equal(push(f, "abc"), 3);
	wr(f, FCR, 0x05); /* clear TX only */
	assert_int_equal(rd(f, LSR), 0x61);
	wr(f, FCR, 0x03);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(rd(f, RBR), 0x00);
	assert_int_equal(uart_rx_room(&f->u), UART_FIFO_SIZE);
	/* Changing the enable bit resets the FIFO too. */
	assert_int_equal(push(f, "de"), 2);
	wr(f, FCR, 0x00);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(push(f, "f"), 1);
	wr(f, FCR, 0x01);
	assert_int_equal(rd(f, LSR), 0x60);
}

static void test_fifo_full(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(push(f, "0123456789abcdefghij"), 16);
	assert_int_equal(uart_rx_room(&f->u), 0);
	assert_int_equal(push(f, "k"), 0);
	for (int i = 0; i < 16; i++)
		assert_int_equal(rd(f, RBR), "0123456789abcdef"[i]);
	assert_int_equal(rd(f, LSR), 0x60); /* no overrun: the host only gives what fits */
	assert_int_equal(uart_rx_room(&f->u), UART_FIFO_SIZE);
}

static void test_rx_room_callback(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(push(f, "0123456789abcdef"), 16);
	assert_int_equal(f->m.rx_room_calls, 0);
	assert_int_equal(rd(f, RBR), '0');
	assert_int_equal(f->m.rx_room_calls, 1);
	assert_int_equal(uart_rx_room(&f->u), 1);
	assert_int_equal(rd(f, RBR), '1'); /* was not full: no call */
	assert_int_equal(f->m.rx_room_calls, 1);
	assert_int_equal(push(f, "xyz"), 2);
	assert_int_equal(rd(f, LSR), 0x61);
	assert_int_equal(f->m.rx_room_calls, 1);
	wr(f, FCR, 0x01); /* enabling the FIFO empties it: room again */
	assert_int_equal(f->m.rx_room_calls, 2);
	assert_int_equal(uart_rx_room(&f->u), UART_FIFO_SIZE);
}

static void test_lsr(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(push(f, "q"), 1);
	assert_int_equal(rd(f, LSR), 0x61);
	assert_int_equal(rd(f, LSR), 0x61); /* reading LSR does not clear DR */
	wr(f, LSR, 0x00);		    /* ignored */
	assert_int_equal(rd(f, LSR), 0x61);
	assert_int_equal(rd(f, RBR), 'q');
	assert_int_equal(rd(f, LSR), 0x60);
}

static void test_loopback_thr(void **state)
{
	struct fixture *f = *state;
	wr(f, MCR, 0x10);
	assert_int_equal(uart_rx_room(&f->u), 0);
	assert_int_equal(push(f, "h"), 0); /* host input refused in loopback */
	wr(f, RBR, 'L');
	assert_int_equal(f->m.ntx, 0);
	assert_int_equal(rd(f, LSR), 0x61);
	assert_int_equal(rd(f, RBR), 'L');
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(f->m.rx_room_calls, 0);
	wr(f, MCR, 0x00); /* leaving loopback: the host may send again */
	assert_int_equal(f->m.rx_room_calls, 1);
	assert_int_equal(uart_rx_room(&f->u), UART_FIFO_SIZE);
	wr(f, RBR, 'T');
	assert_int_equal(f->m.ntx, 1);
	assert_int_equal(f->m.tx[0], 'T');
	assert_int_equal(rd(f, LSR), 0x60);
}

static void test_loopback_overrun(void **state)
{
	struct fixture *f = *state;
	wr(f, MCR, 0x18); /* loopback, OUT2 */
	wr(f, IER, 0x04); /* receiver line status only */
	for (int i = 0; i < UART_FIFO_SIZE; i++)
		wr(f, RBR, (uint8_t)('a' + i));
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(f->m.nirq, 0);
	wr(f, RBR, '!'); /* FIFO full: overrun, the byte is lost */
	assert_int_equal(f->m.nirq, 1);
	assert_int_equal(f->m.irq[0], 1);
	assert_int_equal(rd(f, IIR), 0x06);
	assert_int_equal(rd(f, LSR), 0x63);
	assert_int_equal(f->m.nirq, 2);
	assert_int_equal(f->m.irq[1], 0);
	assert_int_equal(rd(f, LSR), 0x61); /* OE cleared by the read */
	assert_int_equal(rd(f, IIR), 0x01);
	for (int i = 0; i < UART_FIFO_SIZE; i++)
		assert_int_equal(rd(f, RBR), 'a' + i);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(f->m.ntx, 0);
}

static void test_msr_mirrors_mcr_in_loopback(void **state)
{
	struct fixture *f = *state;
	wr(f, MCR, 0x10); /* outputs all off: CTS, DSR, DCD drop */
	assert_int_equal(rd(f, MSR), 0x0b);
	assert_int_equal(rd(f, MSR), 0x00); /* deltas cleared by the read */
	wr(f, MCR, 0x11);		    /* DTR -> DSR */
	assert_int_equal(rd(f, MSR), 0x22);
	wr(f, MCR, 0x12); /* RTS -> CTS */
	assert_int_equal(rd(f, MSR), 0x13);
	wr(f, MCR, 0x14); /* OUT1 -> RI: rising edge sets no delta */
	assert_int_equal(rd(f, MSR), 0x41);
	wr(f, MCR, 0x18); /* OUT2 -> DCD; RI falls: TERI */
	assert_int_equal(rd(f, MSR), 0x8c);
	wr(f, MCR, 0x1f);
	assert_int_equal(rd(f, MSR), 0xf3);
	wr(f, MCR, 0x1a); /* Linux's autoconfig loopback test wants 0x90 */
	assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
	wr(f, MCR, 0x0a); /* back to a connected terminal */
	assert_int_equal(rd(f, MSR), 0xb2);
	assert_int_equal(rd(f, MSR), 0xb0);
	wr(f, MCR, 0x03); /* outside loopback MCR does not reach MSR */
	assert_int_equal(rd(f, MSR), 0xb0);
	assert_int_equal(rd(f, MCR), 0x03);
	wr(f, MCR, 0xff); /* bits 7:5 read as zero */
	assert_int_equal(rd(f, MCR), 0x1f);
}

static void test_modem_status_interrupt(void **state)
{
	struct fixture *f = *state;
	wr(f, IER, 0x08);
	assert_int_equal(f->m.nirq, 0);
	wr(f, MCR, 0x18); /* loopback with OUT2: CTS and DSR drop */
	assert_int_equal(f->m.nirq, 1);
	assert_int_equal(f->m.irq[0], 1);
	assert_int_equal(rd(f, IIR), 0x00);
	assert_int_equal(rd(f, IIR), 0x00); /* only an MSR read acknowledges it */
	assert_int_equal(rd(f, MSR), 0x83);
	assert_int_equal(f->m.nirq, 2);
	assert_int_equal(f->m.irq[1], 0);
	assert_int_equal(rd(f, IIR), 0x01);
	/* Lowest priority: THRE is reported first. */
	wr(f, MCR, 0x19);
	wr(f, IER, 0x0a);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(rd(f, IIR), 0x00);
	assert_int_equal(rd(f, MSR), 0xa2);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(last_irq(f), 0);
}

static void test_out2_gates_irq(void **state)
{
	struct fixture *f = *state;
	wr(f, IER, 0x01);
	assert_int_equal(push(f, "a"), 1);
	assert_int_equal(rd(f, IIR), 0x04); /* pending inside the UART... */
	assert_int_equal(f->m.nirq, 0);	    /* ...but the line is gated off */
	wr(f, MCR, 0x08);
	assert_int_equal(f->m.nirq, 1);
	assert_int_equal(f->m.irq[0], 1);
	wr(f, MCR, 0x03); /* OUT1/DTR/RTS do not open the gate */
	assert_int_equal(f->m.nirq, 2);
	assert_int_equal(f->m.irq[1], 0);
	wr(f, MCR, 0x0b);
	assert_int_equal(f->m.nirq, 3);
	assert_int_equal(f->m.irq[2], 1);
	assert_int_equal(rd(f, RBR), 'a');
	assert_int_equal(f->m.nirq, 4);
	assert_int_equal(f->m.irq[3], 0);
}

/* A level the line did not take (KVM_IRQ_LINE failed) is counted and set again at the next
 * change, not taken as set. */
static void test_irq_line_fails(void **state)
{
	struct fixture *f = *state;
	f->m.fail_irq = 1;
	wr(f, MCR, 0x08); /* OUT2 */
	wr(f, IER, 0x02); /* THRE pending: raise, which fails */
	assert_int_equal(f->m.nirq, 1);
	assert_int_equal(f->m.irq[0], 1);
	assert_int_equal(f->u.irq_errors, 1);
	assert_int_equal(f->u.irq_level, 0);
	f->m.fail_irq = 0;
	wr(f, SCR, 0x55); /* any access updates the line: the raise is tried again */
	assert_int_equal(f->m.nirq, 2);
	assert_int_equal(f->m.irq[1], 1);
	assert_int_equal(f->u.irq_level, 1);
	assert_int_equal(f->u.irq_errors, 1);
	assert_int_equal(rd(f, IIR), 0x02); /* acknowledged: lowered */
	assert_int_equal(f->m.nirq, 3);
	assert_int_equal(f->m.irq[2], 0);
}

static void test_linux_irq_probe(void **state)
{
	struct fixture *f = *state;
	/* 8250 autoconfig_irq(): MCR 0, then DTR|RTS|OUT2, all interrupts, drain, send 0xff. */
	wr(f, MCR, 0x00);
	wr(f, MCR, 0x0b);
	wr(f, IER, 0x0f);
	rd(f, LSR);
	rd(f, RBR);
	assert_int_equal(rd(f, IIR), 0x02);
	rd(f, MSR);
	int before = f->m.nirq;
	assert_int_equal(last_irq(f), 0);
	wr(f, RBR, 0xff);
	assert_int_equal(f->m.nirq, before + 1);
	assert_int_equal(last_irq(f), 1); /* a rising edge on the line */
	assert_int_equal(f->m.ntx, 1);
	assert_int_equal(f->m.tx[0], 0xff);
	/* autoconfig's IER test: only the low nibble is implemented. */
	wr(f, IER, 0x00);
	assert_int_equal(rd(f, IER), 0x00);
	wr(f, IER, 0xff);
	assert_int_equal(rd(f, IER), 0x0f);
}

static void test_multibyte_access(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[8];
	wr(f, SCR, 0x42);
	for (uint32_t len = 1; len <= 8; len *= 2) {
		memset(buf, 0x00, sizeof(buf));
		uart_io(&f->u, SCR, buf, len, false);
		assert_int_equal(buf[0], 0x42);
		for (uint32_t i = 1; i < len; i++)
			assert_int_equal(buf[i], 0xff);
		for (uint32_t i = len; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0x00); /* nothing written past len */
	}
	uint8_t w[4] = {0x11, 0x22, 0x33, 0x44};
	uart_io(&f->u, SCR, w, 4, true);
	assert_int_equal(rd(f, SCR), 0x11);
	uart_io(&f->u, RBR, w, 4, true); /* one byte transmitted, IER untouched */
	assert_int_equal(f->m.ntx, 1);
	assert_int_equal(f->m.tx[0], 0x11);
	assert_int_equal(rd(f, IER), 0x00);
	/* A wide read pops one byte only. */
	assert_int_equal(push(f, "xy"), 2);
	uart_io(&f->u, RBR, buf, 2, false);
	assert_int_equal(buf[0], 'x');
	assert_int_equal(buf[1], 0xff);
	assert_int_equal(rd(f, RBR), 'y');
	/* len 0 and offsets past the registers are harmless. */
	uart_io(&f->u, SCR, w, 0, true);
	assert_int_equal(rd(f, SCR), 0x11);
	memset(buf, 0, sizeof(buf));
	uart_io(&f->u, 8, buf, 2, false);
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	uart_io(&f->u, 8, w, 1, true);
	uart_io(&f->u, UINT64_MAX, w, 4, true);
	assert_int_equal(f->m.ntx, 1);
}

static void test_every_offset_both_dlab(void **state)
{
	struct fixture *f = *state;
	/* DLAB 1: write every offset, then read every offset. */
	wr(f, LCR, 0x80);
	static const uint8_t w1[UART_NR_REGS] = {0x01, 0x02, 0x01, 0x83, 0x0b, 0x00, 0x00, 0x07};
	for (unsigned int off = 0; off < UART_NR_REGS; off++)
		wr(f, off, w1[off]);
	static const uint8_t r1[UART_NR_REGS] = {0x01, 0x02, 0xc1, 0x83, 0x0b, 0x60, 0xb0, 0x07};
	for (unsigned int off = 0; off < UART_NR_REGS; off++)
		assert_int_equal(rd(f, off), r1[off]);
	assert_int_equal(f->m.ntx, 0);
	assert_int_equal(f->m.nirq, 0); /* IER still 0 */
	/* DLAB 0: the same offsets reach THR/RBR and IER. */
	wr(f, LCR, 0x03);
	static const uint8_t w0[UART_NR_REGS] = {'Q', 0x0f, 0x01, 0x03, 0x0b, 0xff, 0xff, 0x70};
	for (unsigned int off = 0; off < UART_NR_REGS; off++)
		wr(f, off, w0[off]);
	assert_int_equal(f->m.ntx, 1);
	assert_int_equal(f->m.tx[0], 'Q');
	assert_int_equal(last_irq(f), 1); /* THRE enabled with OUT2 */
	static const uint8_t r0[UART_NR_REGS] = {0x00, 0x0f, 0xc2, 0x03, 0x0b, 0x60, 0xb0, 0x70};
	for (unsigned int off = 0; off < UART_NR_REGS; off++)
		assert_int_equal(rd(f, off), r0[off]);
	assert_int_equal(last_irq(f), 0);
	wr(f, LCR, 0x83);
	assert_int_equal(rd(f, DLL), 0x01);
	assert_int_equal(rd(f, DLM), 0x02);
}

static void test_null_ops(void **state)
{
	(void)state;
	struct uart u;
	uart_init(&u, NULL, NULL);
	uint8_t v = 0x0b;
	uart_io(&u, MCR, &v, 1, true);
	v = 0x0f;
	uart_io(&u, IER, &v, 1, true);
	v = 'x';
	uart_io(&u, RBR, &v, 1, true);
	assert_int_equal(uart_rx_push(&u, (const uint8_t *)"0123456789abcdef", 16), 16);
	uart_io(&u, RBR, &v, 1, false);
	assert_int_equal(v, '0');
	assert_int_equal(u.irq_level, 1);
	uart_fini(&u);
}

#define STRESS_BYTES 20000

static void *producer(void *arg)
{
	struct uart *u = arg;
	for (unsigned int i = 0; i < STRESS_BYTES;) {
		uint8_t b = (uint8_t)(i * 7);
		i += (unsigned int)uart_rx_push(u, &b, 1);
	}
	return NULL;
}

/* The console thread pushes while a vCPU thread drains: nothing lost, nothing reordered. */
static void test_concurrent_push_and_read(void **state)
{
	struct fixture *f = *state;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, producer, &f->u), 0);
	for (unsigned int i = 0; i < STRESS_BYTES;) {
		if (!(rd(f, LSR) & 0x01))
			continue;
		assert_int_equal(rd(f, RBR), (uint8_t)(i * 7));
		i++;
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(rd(f, LSR), 0x60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_power_on_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlab_switching, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scratch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thr_transmits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq_line_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thre_reasserted_by_ier, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rda_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rda_priority_over_thre, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_bits_in_iir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fcr_clears_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_room_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lsr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_thr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loopback_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msr_mirrors_mcr_in_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modem_status_interrupt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out2_gates_irq, setup, teardown),
		cmocka_unit_test_setup_teardown(test_linux_irq_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multibyte_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_offset_both_dlab, setup, teardown),
		cmocka_unit_test(test_null_ops),
		cmocka_unit_test_setup_teardown(test_concurrent_push_and_read, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
