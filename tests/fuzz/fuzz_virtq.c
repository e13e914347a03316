/* fuzz_virtq: the split virtqueue alone on guest-written rings, checked against a model. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/virtq.h"
#include "fuzz_common.h"
#include "vdriver.h"

/*
 * Input: a 16-byte header, 16 operations of 4 bytes, then guest RAM from gpa 0 (rest zero).
 *   header: u8 flags (bit 0 EVENT_IDX), u8 qsize (n < 9: 1 << n, else n itself, which is
 *           mostly refused), le16 avail->idx to start with, le32 desc, avail, used (mod GPA_SPAN)
 *   op:     u8 kind, u8 a, le16 b (see run_op)
 * The queue runs single-threaded against a model written from the spec (§2.7): after every
 * operation the model's RAM, indices and results must equal what devices/virtq.c did, so any
 * write outside what the spec allows, or any chain accepted or refused wrongly, is a finding.
 * RAM is two regions with adjacent guest addresses and canaries between them on the host.
 */
#define RAM_SIZE  0x8000ULL
#define RAM_SPLIT 0x4000ULL
#define GPA_SPAN  (RAM_SIZE + 0x1000)
#define HDR_SIZE  16
#define NOPS	  16
#define OPS_SIZE  (4 * NOPS)
#define IO_MAX	  1024

enum op_kind {
	OP_POP,
	OP_PUSH,
	OP_READ,
	OP_WRITE,
	OP_NEED_IRQ,
	OP_ENABLE_NOTIFY,
	OP_PUBLISH,
	OP_BEGIN_PASS,
	OP_POKE,
	OP_KINDS,
};

/* What the device side must look like: independent bookkeeping and a copy of RAM. */
struct model {
	uint8_t ram[RAM_SIZE];
	uint16_t size;
	gpa_t desc, avail, used;
	bool event_idx, broken, signalled_valid;
	uint16_t last_avail, used_idx, signalled_used, budget;
	uint16_t out[VIRTQ_MAX_SIZE]; /* popped, not yet pushed, oldest first */
	unsigned int nout;
	bool have_chain; /* the last pop filled `chain` (and the real one) */
	struct vdrv_buf chain[VIRTQ_MAX_SIZE];
	unsigned int nr;
	uint64_t rlen, wlen;
};

struct harness {
	struct vdrv d;
	struct virtq q;
	struct virtq_chain c;
	struct model m;
	uint8_t io[IO_MAX], ref[IO_MAX];
	uint8_t snap[RAM_SIZE];
};

static struct harness *h;

/* Model RAM accessors; every address used is inside RAM (checked by the validation). */
static uint16_t m16(gpa_t gpa)
{
	return get16(h->m.ram + gpa);
}

static void m_put16(gpa_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(h->m.ram + gpa, &v, 2);
}

static void m_put32(gpa_t gpa, uint32_t v)
{
	v = htole32(v);
	memcpy(h->m.ram + gpa, &v, 4);
}

/* Store into both the real RAM and the model (the driver writing guest memory). */
static void drv_put(gpa_t gpa, const void *src, uint64_t len)
{
	void *p = vdrv_ptr(&h->d, gpa, len);
	if (!p)
		__builtin_trap();
	memcpy(p, src, len);
	memcpy(h->m.ram + gpa, src, len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	h = calloc(1, sizeof(*h));
	if (!h || vdrv_init(&h->d, RAM_SIZE, RAM_SPLIT) < 0)
		abort();
	return 0;
}

/* §2.7 and §4.2.2: where a queue of `size` entries may be placed. */
static bool ref_validate(uint16_t size, gpa_t desc, gpa_t avail, gpa_t used, bool ev)
{
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return false;
	if (desc % 16 || avail % 2 || used % 4)
		return false;
	return vdrv_in_ram(&h->d, desc, 16ULL * size) &&
	       vdrv_in_ram(&h->d, avail, 4 + 2ULL * size + (ev ? 2 : 0)) &&
	       vdrv_in_ram(&h->d, used, 4 + 8ULL * size + (ev ? 2 : 0));
}

static int model_break(void)
{
	h->m.broken = true;
	h->m.have_chain = false;
	return -EIO;
}

/* §2.7.13: what taking the next available chain must give. */
static int model_pop(void)
{
	struct model *m = &h->m;
	if (m->broken)
		return -EIO;
	if (m->budget == 0)
		return 0;
	uint16_t pending = (uint16_t)(m16(m->avail + 2) - m->last_avail);
	if (pending == 0)
		return 0;
	if (pending > m->size)
		return model_break();
	uint16_t head = m16(m->avail + 4 + 2ULL * (m->last_avail & (m->size - 1)));
	if (vdrv_expect_chain(&h->d, m->desc, m->size, head, m->chain, &m->nr) < 0)
		return model_break();
	m->rlen = m->wlen = 0;
	for (unsigned int i = 0; i < m->nr; i++) {
		if (m->chain[i].writable)
			m->wlen += m->chain[i].len;
		else
			m->rlen += m->chain[i].len;
	}
	m->out[m->nout++] = head;
	m->last_avail++;
	m->budget--;
	m->have_chain = true;
	return 1;
}

static void op_pop(void)
{
	int want = model_pop();
	int got = virtq_pop(&h->q, &h->c);
	if (got != want)
		__builtin_trap();
	if (got < 0)
		h->m.have_chain = false;
	if (got != 1)
		return;
	const struct model *m = &h->m;
	const struct virtq_chain *c = &h->c;
	if (c->head != m->out[m->nout - 1] || c->nr != m->nr || c->readable_len != m->rlen ||
	    c->writable_len != m->wlen)
		__builtin_trap();
	for (unsigned int i = 0; i < c->nr; i++) {
		const struct virtq_buf *b = &c->buf[i];
		bool w = m->chain[i].writable;
		if (b->gpa != m->chain[i].gpa || b->len != m->chain[i].len ||
		    b->dev_writable != w || w != (i >= c->nr_readable))
			__builtin_trap();
	}
}

/* §2.7.8: return a chain; a head never taken, or none outstanding, is refused. */
static void op_push(uint8_t a, uint16_t written)
{
	struct model *m = &h->m;
	uint16_t head;
	if (a & 0x80)
		head = (uint16_t)(m->size + (a & 0x7f)); /* out of range */
	else if (m->nout)
		head = m->out[0];
	else
		head = (uint16_t)(a % m->size);
	int want;
	if (m->broken)
		want = -EIO;
	else if (head >= m->size || m->used_idx == m->last_avail)
		want = -EINVAL;
	else
		want = 0;
	if (virtq_push(&h->q, head, written) != want)
		__builtin_trap();
	if (want < 0)
		return;
	gpa_t elem = m->used + 4 + 8ULL * (m->used_idx & (m->size - 1));
	m_put32(elem, head);
	m_put32(elem + 4, written);
	m->used_idx++;
	m_put16(m->used + 2, m->used_idx);
	m->nout--;
	memmove(m->out, m->out + 1, m->nout * sizeof(m->out[0]));
}

/* Copy the chain's readable (or into its writable) bytes [off, off+len) by the model. */
static int model_chain_io(bool write, uint64_t off, uint8_t *buf, uint64_t len)
{
	const struct model *m = &h->m;
	if (off + len > (write ? m->wlen : m->rlen))
		return -EFAULT;
	for (unsigned int i = 0; i < m->nr && len; i++) {
		const struct vdrv_buf *b = &m->chain[i];
		if (b->writable != write)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint64_t n = b->len - off < len ? b->len - off : len;
		if (write)
			memcpy(h->m.ram + b->gpa + off, buf, n);
		else
			memcpy(buf, h->m.ram + b->gpa + off, n);
		buf += n;
		len -= n;
		off = 0;
	}
	return 0;
}

static void op_read(uint8_t a, uint16_t b)
{
	if (!h->m.have_chain)
		return;
	uint64_t off = a, len = b % IO_MAX;
	int want = model_chain_io(false, off, h->ref, len);
	if (virtq_chain_read(&h->q, &h->c, off, h->io, len) != want)
		__builtin_trap();
	if (want == 0 && memcmp(h->io, h->ref, len) != 0)
		__builtin_trap();
}

static void op_write(uint8_t a, uint16_t b)
{
	if (!h->m.have_chain)
		return;
	uint64_t off = a, len = b % IO_MAX;
	for (uint64_t i = 0; i < len; i++)
		h->io[i] = (uint8_t)(i * 13 + a + 1);
	memcpy(h->ref, h->io, len);
	int want = model_chain_io(true, off, h->ref, len);
	if (virtq_chain_write(&h->q, &h->c, off, h->io, len) != want)
		__builtin_trap();
}

/* §2.7.7 (and §2.7.10 for EVENT_IDX): must the driver be interrupted? */
static void op_need_irq(void)
{
	struct model *m = &h->m;
	bool want;
	if (!m->event_idx) {
		want = !(m16(m->avail) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	} else {
		uint16_t old = m->signalled_used, now = m->used_idx;
		bool valid = m->signalled_valid;
		m->signalled_used = now;
		m->signalled_valid = true;
		uint16_t ev = m16(m->avail + 4 + 2ULL * m->size);
		/* Interrupt when used_event is among the slots filled since the last interrupt. */
		want = !valid || (uint16_t)(now - ev - 1) < (uint16_t)(now - old);
	}
	if (virtq_need_interrupt(&h->q) != want)
		__builtin_trap();
}

/* §2.7.10: ask for notifications; true if buffers are already waiting. */
static void op_enable_notify(void)
{
	struct model *m = &h->m;
	bool want = false;
	if (!m->broken) {
		if (m->event_idx)
			m_put16(m->used + 4 + 8ULL * m->size, m->last_avail);
		else
			m_put16(m->used, 0);
		want = m16(m->avail + 2) != m->last_avail;
	}
	if (virtq_enable_notify(&h->q) != want)
		__builtin_trap();
}

static void run_op(const uint8_t *op)
{
	uint8_t a = op[1];
	uint16_t b = get16(op + 2);
	switch (op[0] % OP_KINDS) {
	case OP_POP:
		op_pop();
		break;
	case OP_PUSH:
		op_push(a, b);
		break;
	case OP_READ:
		op_read(a, b);
		break;
	case OP_WRITE:
		op_write(a, b);
		break;
	case OP_NEED_IRQ:
		op_need_irq();
		break;
	case OP_ENABLE_NOTIFY:
		op_enable_notify();
		break;
	case OP_PUBLISH: { /* the driver makes more chains available, or any index at all */
		uint16_t idx = (a & 0x80) ? b : (uint16_t)(m16(h->m.avail + 2) + (a & 0x3f));
		idx = htole16(idx);
		drv_put(h->m.avail + 2, &idx, 2);
		break;
	}
	case OP_BEGIN_PASS:
		virtq_begin_pass(&h->q);
		h->m.budget = h->m.size;
		break;
	case OP_POKE: /* the driver rewrites any byte: descriptors under the device's feet */
		drv_put(b % RAM_SIZE, &a, 1);
		break;
	}
}

static void check_state(void)
{
	const struct model *m = &h->m;
	const struct virtq *q = &h->q;
	if (q->last_avail != m->last_avail || q->used_idx != m->used_idx ||
	    q->broken != m->broken || q->budget != m->budget)
		__builtin_trap();
	if (!vdrv_canaries_ok(&h->d))
		__builtin_trap();
	ram_save(&h->d, h->snap);
	if (memcmp(h->snap, m->ram, RAM_SIZE) != 0)
		__builtin_trap(); /* guest memory differs from what the spec allows */
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	if (n < HDR_SIZE + OPS_SIZE)
		return 0;
	struct model *m = &h->m;
	memset(m, 0, sizeof(*m));
	m->event_idx = in[0] & 1;
	m->size = in[1] < 9 ? (uint16_t)(1U << in[1]) : in[1];
	m->desc = get32(in + 4) % GPA_SPAN;
	m->avail = get32(in + 8) % GPA_SPAN;
	m->used = get32(in + 12) % GPA_SPAN;
	size_t ram_len = n - HDR_SIZE - OPS_SIZE < RAM_SIZE ? n - HDR_SIZE - OPS_SIZE : RAM_SIZE;
	memcpy(m->ram, in + HDR_SIZE + OPS_SIZE, ram_len);
	memcpy(vdrv_ptr(&h->d, 0, RAM_SPLIT), m->ram, RAM_SPLIT);
	memcpy(vdrv_ptr(&h->d, RAM_SPLIT, RAM_SIZE - RAM_SPLIT), m->ram + RAM_SPLIT,
	       RAM_SIZE - RAM_SPLIT);

	bool ok = ref_validate(m->size, m->desc, m->avail, m->used, m->event_idx);
	if ((virtq_validate(&h->d.gm, m->size, m->desc, m->avail, m->used, m->event_idx) == 0) !=
	    ok)
		__builtin_trap();
	if (!ok)
		return 0;
	virtq_start(&h->q, &h->d.gm, m->size, m->desc, m->avail, m->used, m->event_idx);
	m->budget = m->size;
	uint16_t idx = htole16(get16(in + 2));
	drv_put(m->avail + 2, &idx, 2);
	check_state();
	for (unsigned int i = 0; i < NOPS; i++) {
		run_op(in + HDR_SIZE + 4 * i);
		check_state();
	}
	virtq_reset(&h->q);
	if (h->q.size != 0 || virtq_pop(&h->q, &h->c) != 0)
		__builtin_trap();
	return 0;
}
