/* uart: a 16550A serial port (COM1): registers, receive FIFO, interrupts and loopback. */
#include <string.h>

#include "kvmini/uart.h"

/*
 * Behaviour choices (the 16550A data sheet leaves some open, a VMM has to pick):
 *  - Transmit never backs up: a THR write hands the byte to ops->tx at once, so LSR THRE and
 *    TEMT are always set and a THRE interrupt (if enabled) is pending again right after.
 *  - RDA is raised whenever the receive FIFO holds data; the FCR trigger level is stored but
 *    not modelled and no character-timeout indication (IIR 0x0c) is reported. Linux handles
 *    IIR 0x04 and 0x0c the same way.
 *  - The receive FIFO is 16 bytes deep even with FIFOs disabled (16450 mode), so host input
 *    is not lost to overruns while a guest polls without FIFOs.
 *  - The IRQ output is gated by MCR OUT2, as on PC hardware (the board's IRQ driver is enabled
 *    by OUT2). Linux's 8250 driver raises OUT2 when it opens a port and for its IRQ probe, so
 *    it works unchanged; gating keeps the line quiet while firmware/probes poke IER with OUT2
 *    off. Only the MCR bit gates: unlike a real PC, loopback mode does not force OUT2 off.
 *  - In loopback mode host input is refused (uart_rx_room() is 0): the FIFO belongs to the
 *    guest's own THR writes. Leaving loopback with room reports ops->rx_room.
 *  - ops->rx_room is called whenever uart_rx_room() goes from 0 to non-zero.
 *  - Accesses wider than one byte act on the register at `offset` only; a write uses data[0],
 *    a read puts the register in data[0] and 0xff (an undriven bus) in the other bytes.
 *  - Reading an empty RBR gives 0; writes to LSR and MSR are ignored.
 */

/* Register offsets (DLAB = 0 unless noted). */
#define UART_RBR 0 /* read: receive buffer; write: THR; DLAB = 1: DLL */
#define UART_IER 1 /* DLAB = 1: DLM */
#define UART_IIR 2 /* read: IIR; write: FCR */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDA  0x01 /* received data available */
#define UART_IER_THRE 0x02 /* transmitter holding register empty */
#define UART_IER_RLS  0x04 /* receiver line status */
#define UART_IER_MS   0x08 /* modem status */
#define UART_IER_MASK 0x0f

#define UART_IIR_NONE	   0x01
#define UART_IIR_MS	   0x00
#define UART_IIR_THRE	   0x02
#define UART_IIR_RDA	   0x04
#define UART_IIR_RLS	   0x06
#define UART_IIR_FIFO_BITS 0xc0

#define UART_FCR_ENABLE	  0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_FCR_CLEAR_TX 0x04
#define UART_FCR_KEEP	  0xc9 /* trigger level, DMA mode and enable are remembered */

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

#define UART_LSR_DR	0x01
#define UART_LSR_OE	0x02
#define UART_LSR_ERRORS 0x1e /* OE, PE, FE, BI: the receiver line status sources */
#define UART_LSR_THRE	0x20
#define UART_LSR_TEMT	0x40

#define UART_MSR_DELTAS 0x0f
#define UART_MSR_TERI	0x04
#define UART_MSR_CTS	0x10
#define UART_MSR_DSR	0x20
#define UART_MSR_RI	0x40
#define UART_MSR_DCD	0x80
#define UART_MSR_IDLE	(UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS) /* a terminal is connected */

/* Free space for host input: none while in loopback. Lock held. */
static size_t uart_room_locked(const struct uart *u)
{
	if (u->mcr & UART_MCR_LOOP)
		return 0;
	return UART_FIFO_SIZE - u->rx_count;
}

/* The highest-priority pending interrupt as an IIR identification (0x01 when none). */
static uint8_t uart_iir_id(const struct uart *u)
{
	if ((u->ier & UART_IER_RLS) && (u->lsr & UART_LSR_ERRORS))
		return UART_IIR_RLS;
	if ((u->ier & UART_IER_RDA) && u->rx_count > 0)
		return UART_IIR_RDA;
	if ((u->ier & UART_IER_THRE) && u->thr_empty_pending)
		return UART_IIR_THRE;
	if ((u->ier & UART_IER_MS) && (u->msr & UART_MSR_DELTAS))
		return UART_IIR_MS;
	return UART_IIR_NONE;
}

/* Drive the IRQ line from the pending state, gated by OUT2; only level changes are reported.
 * A level set_irq failed to set is not taken as set: the next update tries it again. */
static void uart_update_irq(struct uart *u)
{
	int level = uart_iir_id(u) != UART_IIR_NONE && (u->mcr & UART_MCR_OUT2);
	if (level == u->irq_level)
		return;
	if (u->ops && u->ops->set_irq && u->ops->set_irq(u->opaque, level) < 0) {
		u->irq_errors++;
		return;
	}
	u->irq_level = level;
}

static void uart_rx_clear(struct uart *u)
{
	u->rx_head = 0;
	u->rx_count = 0;
}

/* Append one byte if the FIFO has room; returns false (caller decides on overrun) if full. */
static bool uart_fifo_put(struct uart *u, uint8_t byte)
{
	if (u->rx_count == UART_FIFO_SIZE)
		return false;
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = byte;
	u->rx_count++;
	return true;
}

static uint8_t uart_fifo_get(struct uart *u)
{
	if (u->rx_count == 0)
		return 0;
	uint8_t byte = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
	u->rx_count--;
	return byte;
}

/* MSR's status nibble: MCR's outputs in loopback, a connected terminal otherwise. */
static uint8_t uart_msr_status(const struct uart *u)
{
	if (!(u->mcr & UART_MCR_LOOP))
		return UART_MSR_IDLE;
	uint8_t s = 0;
	if (u->mcr & UART_MCR_RTS)
		s |= UART_MSR_CTS;
	if (u->mcr & UART_MCR_DTR)
		s |= UART_MSR_DSR;
	if (u->mcr & UART_MCR_OUT1)
		s |= UART_MSR_RI;
	if (u->mcr & UART_MCR_OUT2)
		s |= UART_MSR_DCD;
	return s;
}

/* Recompute MSR after MCR changed: deltas for CTS/DSR/DCD changes and RI's trailing edge. */
static void uart_msr_update(struct uart *u)
{
	uint8_t old = u->msr & 0xf0;
	uint8_t now = uart_msr_status(u);
	uint8_t changed = old ^ now;
	uint8_t delta = (changed >> 4) & (uint8_t)~UART_MSR_TERI;
	if ((old & UART_MSR_RI) && !(now & UART_MSR_RI))
		delta |= UART_MSR_TERI;
	u->msr = (uint8_t)(now | (u->msr & UART_MSR_DELTAS) | delta);
}

/* The guest wrote THR: transmit (or loop back), then THR is empty again at once. */
static void uart_write_thr(struct uart *u, uint8_t byte)
{
	if (u->mcr & UART_MCR_LOOP) {
		if (!uart_fifo_put(u, byte))
			u->lsr |= UART_LSR_OE;
	} else if (u->ops && u->ops->tx) {
		u->ops->tx(u->opaque, byte);
	}
	u->thr_empty_pending = (u->ier & UART_IER_THRE) != 0;
}

static void uart_write_ier(struct uart *u, uint8_t val)
{
	uint8_t old = u->ier;
	u->ier = val & UART_IER_MASK;
	/* THR is always empty: enabling the THRE interrupt makes it pending (Linux tests this). */
	if ((u->ier & UART_IER_THRE) && !(old & UART_IER_THRE))
		u->thr_empty_pending = true;
	else if (!(u->ier & UART_IER_THRE))
		u->thr_empty_pending = false;
}

static void uart_write_fcr(struct uart *u, uint8_t val)
{
	/* Changing the enable bit resets the FIFOs; other bits only take effect with it set. */
	if ((val ^ u->fcr) & UART_FCR_ENABLE)
		uart_rx_clear(u);
	if (!(val & UART_FCR_ENABLE)) {
		u->fcr = 0;
		u->iir_fifo_bits = 0;
		return;
	}
	if (val & UART_FCR_CLEAR_RX)
		uart_rx_clear(u);
	/* UART_FCR_CLEAR_TX: the transmitter never holds anything. */
	u->fcr = val & UART_FCR_KEEP;
	u->iir_fifo_bits = UART_IIR_FIFO_BITS;
}

static void uart_write(struct uart *u, unsigned int reg, uint8_t val)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	switch (reg) {
	case UART_RBR:
		if (dlab)
			u->dll = val;
		else
			uart_write_thr(u, val);
		break;
	case UART_IER:
		if (dlab)
			u->dlm = val;
		else
			uart_write_ier(u, val);
		break;
	case UART_IIR:
		uart_write_fcr(u, val);
		break;
	case UART_LCR:
		u->lcr = val;
		break;
	case UART_MCR:
		u->mcr = val & UART_MCR_MASK;
		uart_msr_update(u);
		break;
	case UART_SCR:
		u->scr = val;
		break;
	default: /* LSR, MSR: read-only here */
		break;
	}
}

static uint8_t uart_read(struct uart *u, unsigned int reg)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	uint8_t v = 0;
	switch (reg) {
	case UART_RBR:
		v = dlab ? u->dll : uart_fifo_get(u);
		break;
	case UART_IER:
		v = dlab ? u->dlm : u->ier;
		break;
	case UART_IIR: {
		uint8_t id = uart_iir_id(u);
		/* Reading IIR acknowledges a THRE interrupt when it is the one reported. */
		if (id == UART_IIR_THRE)
			u->thr_empty_pending = false;
		v = id | u->iir_fifo_bits;
		break;
	}
	case UART_LCR:
		v = u->lcr;
		break;
	case UART_MCR:
		v = u->mcr;
		break;
	case UART_LSR:
		v = u->lsr | UART_LSR_THRE | UART_LSR_TEMT;
		if (u->rx_count > 0)
			v |= UART_LSR_DR;
		u->lsr &= (uint8_t)~UART_LSR_ERRORS;
		break;
	case UART_MSR:
		v = u->msr;
		u->msr &= (uint8_t)~UART_MSR_DELTAS;
		break;
	case UART_SCR:
		v = u->scr;
		break;
	}
	return v;
}

void uart_init(struct uart *u, const struct uart_ops *ops, void *opaque)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	u->lsr = UART_LSR_THRE | UART_LSR_TEMT;
	u->msr = UART_MSR_IDLE;
	u->ops = ops;
	u->opaque = opaque;
}

void uart_fini(struct uart *u)
{
	pthread_mutex_destroy(&u->lock);
}

void uart_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = opaque;
	if (len == 0)
		return;
	if (offset >= UART_NR_REGS) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&u->lock);
	size_t room_before = uart_room_locked(u);
	if (is_write) {
		uart_write(u, (unsigned int)offset, data[0]);
	} else {
		memset(data, 0xff, len);
		data[0] = uart_read(u, (unsigned int)offset);
	}
	uart_update_irq(u);
	if (room_before == 0 && uart_room_locked(u) > 0 && u->ops && u->ops->rx_room)
		u->ops->rx_room(u->opaque);
	pthread_mutex_unlock(&u->lock);
}

size_t uart_rx_room(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	size_t room = uart_room_locked(u);
	pthread_mutex_unlock(&u->lock);
	return room;
}

size_t uart_rx_push(struct uart *u, const uint8_t *buf, size_t n)
{
	pthread_mutex_lock(&u->lock);
	size_t room = uart_room_locked(u);
	size_t taken = n < room ? n : room;
	for (size_t i = 0; i < taken; i++)
		uart_fifo_put(u, buf[i]);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return taken;
}
