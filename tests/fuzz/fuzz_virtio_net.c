/* fuzz_virtio_net: guest-written rx and tx rings and host frames against virtio-net. */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvmini/virtio_net.h"
#include "kvmini/virtq.h"
#include "fuzz_common.h"
#include "vdriver.h"

/*
 * Input: a 96-byte header, then the contents of guest RAM from gpa 0 (the rest is zero).
 *   u8   flags    features to refuse: bit 0 EVENT_IDX, 1 MRG_RXBUF, 2 GUEST_CSUM,
 *                 3 GUEST_TSO4, 4 GUEST_TSO6 (everything else offered is accepted)
 *   u8   rx qlog, tx qlog   queue sizes 1 << (qlog % 9)
 *   u8   nframes  host->guest frames, % (MAX_FRAMES + 1)
 *   le16 rx navail, tx navail   the avail->idx the driver publishes on each queue
 *   le32 rx desc, avail, used, tx desc, avail, used   ring addresses, modulo GPA_SPAN
 *   MAX_FRAMES x {le32 len, le32 src}   a frame of `len` bytes (masked to 17 bits; beyond
 *                 VNET_MAX_FRAME + 16 folded to just over it) copied from RAM at `src`
 *                 (wrapping): its vnet header comes from the input too
 * The frames go to the host end of a socketpair standing in for the tap; then both queues
 * are kicked, the harness waits (bounded) for the device, drains what it transmitted and
 * resets it through Status. RAM is two regions with canaries around, as in fuzz_virtq_blk.
 */
#define RAM_SIZE   0x40000ULL
#define RAM_SPLIT  0x20000ULL
#define GPA_SPAN   (RAM_SIZE + 0x1000) /* ring addresses land a little beyond RAM too */
#define HDR_SIZE   96
#define MAX_FRAMES 8
#define FRAME_ROOM (VNET_MAX_FRAME + 64) /* oversize frames included */
#define WAIT_MS	   50			 /* at most, per input */
#define QUIET_MS   5			 /* no progress for this long: stop waiting */

/* Feature bits (virtio 1.2 §5.1.3), spelled out independently of devices/virtio_net.c. */
#define F_GUEST_CSUM 1
#define F_GUEST_TSO4 7
#define F_GUEST_TSO6 8
#define F_MRG_RXBUF  15

enum { RXQ, TXQ, NQ };

struct head_info {
	bool valid;	     /* a well-formed chain (vdrv_expect_chain) */
	bool has_readable;   /* with a device-readable buffer */
	uint64_t rlen, wlen; /* its readable and writable bytes */
	unsigned int offers; /* times it appears among the available entries */
	unsigned int used;   /* times the device returned it */
};

struct queue {
	uint16_t qsize, navail;
	gpa_t desc, avail, used;
	uint64_t desc_bytes, avail_bytes, used_bytes;
	bool used_stable; /* nothing but the device's pushes writes this used ring */
	bool all_good;	  /* every available entry names a well-formed chain */
	struct head_info head[VIRTQ_MAX_SIZE];
};

struct harness {
	struct vdrv d; /* the RAM, the transport; its own queue bookkeeping is unused */
	struct logger lg;
	struct vnet *n;
	int peer;  /* the host end of the "tap" */
	int probe; /* a dup of the device's end: to drop frames it has not read */
	bool event_idx, mrg, csum;
	struct queue q[NQ];

	/* Transmit: the chains the device may send, in avail order, and what came out. */
	uint16_t tx_seq[VIRTQ_MAX_SIZE];
	unsigned int tx_nseq, tx_got;
	bool tx_exact; /* rings stable, tx buffers not writable: contents can be compared */
	bool rings_stable;

	/* Receive: the frames written to the peer. */
	unsigned int nframes;
	uint32_t flen[MAX_FRAMES];
	uint8_t frame[MAX_FRAMES][FRAME_ROOM];

	uint8_t before[RAM_SIZE];  /* RAM as published to the device */
	uint8_t after[RAM_SIZE];   /* RAM right after the reset */
	uint8_t allowed[RAM_SIZE]; /* the device may write this byte */
	uint8_t wcount[RAM_SIZE];  /* writable rx buffers on the byte (max 255) */
	uint8_t skip[RAM_SIZE];	   /* not loaded from the input: avail->idx and used rings */
	uint8_t usedmap[RAM_SIZE]; /* part of a used ring */
	uint8_t txread[RAM_SIZE];  /* part of a sendable tx chain */
	struct vdrv_buf bufs[VIRTQ_MAX_SIZE];
	uint8_t scratch[FRAME_ROOM + 1];
};

static struct harness *h;

static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	h = calloc(1, sizeof(*h));
	if (!h || vdrv_init(&h->d, RAM_SIZE, RAM_SPLIT) < 0)
		abort();
	log_init(&h->lg, LOG_ERROR - 1, 2); /* silent: every input is a misbehaving guest */
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("fuzz_virtio_net: socketpair");
		abort();
	}
	h->peer = sv[0];
	h->probe = dup(sv[1]);
	struct vmerr e = {0};
	if (h->probe < 0 || vnet_create(&h->n, NULL, sv[1], &h->d.gm, &h->lg, "net0", &e) < 0) {
		fprintf(stderr, "fuzz_virtio_net: vnet_create: %s\n", e.msg);
		abort();
	}
	vdrv_attach(&h->d, vnet_transport(h->n));
	return 0;
}

/*
 * The driver's initialisation (§3.1.1, §5.1.5) with both queues; vdrv_setup() does queue 0
 * only. 0, or -EINVAL if the device refused a queue (misplaced rings). Traps on anything else.
 */
static int setup(uint64_t want)
{
	struct vdrv *d = &h->d;
	uint64_t feat;
	if (vdrv_negotiate(d, 1, want, &feat) < 0)
		__builtin_trap();
	h->event_idx = feat & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	h->mrg = feat & (1ULL << F_MRG_RXBUF);
	h->csum = feat & (1ULL << F_GUEST_CSUM);
	for (unsigned int i = 0; i < NQ; i++) {
		struct queue *q = &h->q[i];
		q->desc_bytes = 16ULL * q->qsize;
		q->avail_bytes = 4 + 2ULL * q->qsize + (h->event_idx ? 2 : 0);
		q->used_bytes = 4 + 8ULL * q->qsize + (h->event_idx ? 2 : 0);
		int ret =
			vdrv_setup_queue(d, i, q->qsize, q->desc, q->avail, q->used, h->event_idx);
		if (vdrv_rd32(d, VIRTIO_MMIO_QUEUE_NUM_MAX) != VNET_QUEUE_SIZE)
			__builtin_trap();
		if (ret < 0)
			return ret; /* -EINVAL: the device refused the queue */
	}
	if (vdrv_driver_ok(d) < 0)
		__builtin_trap();
	return 0;
}

/*
 * Guest RAM from the input (zero beyond it), except both avail->idx and used rings: the
 * setup zeroed them and the device may already be looking (with EVENT_IDX it writes
 * avail_event). h->before gets the RAM as published, avail->idx included.
 */
ORACLE static void load_ram(const uint8_t *in, size_t n)
{
	memset(h->before, 0, RAM_SIZE);
	memcpy(h->before, in, n < RAM_SIZE ? n : RAM_SIZE);
	memset(h->skip, 0, RAM_SIZE);
	for (unsigned int i = 0; i < NQ; i++) {
		mark(h->skip, RAM_SIZE, h->q[i].avail + 2, 2, false);
		mark(h->skip, RAM_SIZE, h->q[i].used, h->q[i].used_bytes, false);
	}
	ram_save(&h->d, h->after);
	uint64_t lo = 0;
	while (lo < RAM_SIZE) {
		uint64_t hi = lo;
		while (hi < RAM_SIZE && h->skip[hi] == h->skip[lo])
			hi++;
		if (h->skip[lo])
			memcpy(h->before + lo, h->after + lo, hi - lo);
		else
			ram_load(&h->d, h->before, lo, hi);
		lo = hi;
	}
	for (unsigned int i = 0; i < NQ; i++) {
		uint16_t le = htole16(h->q[i].navail);
		memcpy(h->before + h->q[i].avail + 2, &le, 2);
	}
}

/*
 * Work out, before the device sees them, the chains each queue makes available, the bytes
 * the device may write (rx writable buffers, used rings), and the tx frames it may send.
 */
ORACLE static void expect_chains(void)
{
	memset(h->allowed, 0, RAM_SIZE);
	memset(h->wcount, 0, RAM_SIZE);
	memset(h->usedmap, 0, RAM_SIZE);
	memset(h->txread, 0, RAM_SIZE);
	h->tx_nseq = 0;
	for (unsigned int i = 0; i < NQ; i++) {
		struct queue *q = &h->q[i];
		bool tx_stopped = false;
		mark(h->allowed, RAM_SIZE, q->used, q->used_bytes, false);
		mark(h->usedmap, RAM_SIZE, q->used, q->used_bytes, true);
		memset(q->head, 0, sizeof(q->head));
		q->all_good = q->navail <= q->qsize;
		for (unsigned int k = 0; k < q->navail && k < q->qsize; k++) {
			uint16_t head = get16(h->before + q->avail + 4 + 2ULL * k);
			unsigned int nr;
			if (head >= q->qsize ||
			    vdrv_expect_chain(&h->d, q->desc, q->qsize, head, h->bufs, &nr) < 0) {
				q->all_good = false;
				tx_stopped = true; /* the queue breaks here */
				continue;
			}
			struct head_info *hi = &q->head[head];
			hi->offers++;
			hi->valid = true;
			hi->rlen = hi->wlen = 0;
			for (unsigned int b = 0; b < nr; b++) {
				if (h->bufs[b].writable)
					hi->wlen += h->bufs[b].len;
				else
					hi->rlen += h->bufs[b].len;
			}
			hi->has_readable = hi->rlen > 0;
			for (unsigned int b = 0; b < nr && i == RXQ; b++) {
				if (!h->bufs[b].writable)
					continue;
				mark(h->allowed, RAM_SIZE, h->bufs[b].gpa, h->bufs[b].len, false);
				mark(h->wcount, RAM_SIZE, h->bufs[b].gpa, h->bufs[b].len, true);
			}
			if (i != TXQ || tx_stopped || hi->wlen || hi->rlen < VNET_HDR_LEN ||
			    hi->rlen > VNET_MAX_FRAME)
				continue;
			h->tx_seq[h->tx_nseq++] = head;
			for (unsigned int b = 0; b < nr; b++)
				mark(h->txread, RAM_SIZE, h->bufs[b].gpa, h->bufs[b].len, false);
		}
	}
	if (h->q[TXQ].navail > h->q[TXQ].qsize)
		h->tx_nseq = 0; /* more available than the ring holds: nothing is sent */

	/*
	 * If the device may write a descriptor table or an avail ring, or publishing one queue's
	 * avail->idx changes the other's rings, the chains may differ from the ones worked out
	 * here: then only the canaries and the tx frame lengths are checked.
	 */
	h->rings_stable = true;
	for (unsigned int i = 0; i < NQ; i++) {
		const struct queue *q = &h->q[i], *o = &h->q[!i];
		if (any(h->allowed, RAM_SIZE, q->desc, q->desc_bytes) ||
		    any(h->allowed, RAM_SIZE, q->avail, q->avail_bytes) ||
		    overlap(q->avail + 2, 2, q->desc, q->desc_bytes) ||
		    overlap(q->avail + 2, 2, o->desc, o->desc_bytes) ||
		    overlap(q->avail + 2, 2, o->avail, o->avail_bytes))
			h->rings_stable = false;
	}
	h->q[RXQ].used_stable = !any(h->wcount, RAM_SIZE, h->q[RXQ].used, h->q[RXQ].used_bytes);
	h->q[TXQ].used_stable = !any(h->wcount, RAM_SIZE, h->q[TXQ].used, h->q[TXQ].used_bytes);
	if (overlap(h->q[RXQ].used, h->q[RXQ].used_bytes, h->q[TXQ].used, h->q[TXQ].used_bytes))
		h->q[RXQ].used_stable = h->q[TXQ].used_stable = false;
	bool tx_writable = false;
	for (uint64_t i = 0; i < RAM_SIZE && !tx_writable; i++)
		tx_writable = h->txread[i] && h->allowed[i];
	h->tx_exact = h->rings_stable && !tx_writable;
}

/* The bytes of tx chain `head` as published, gathered into h->scratch; their count. */
ORACLE static uint64_t gather_tx(uint16_t head)
{
	struct queue *q = &h->q[TXQ];
	unsigned int nr;
	uint64_t len = 0;
	if (vdrv_expect_chain(&h->d, q->desc, q->qsize, head, h->bufs, &nr) < 0)
		__builtin_trap(); /* stable rings: it was well-formed before */
	for (unsigned int b = 0; b < nr; b++) {
		memcpy(h->scratch + len, h->before + h->bufs[b].gpa, h->bufs[b].len);
		len += h->bufs[b].len;
	}
	return len;
}

/* Read what the device transmitted: each datagram one frame of an offered tx chain. */
ORACLE static void drain_peer(void)
{
	for (;;) {
		ssize_t r = recv(h->peer, h->scratch, sizeof(h->scratch), MSG_DONTWAIT | MSG_TRUNC);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			__builtin_trap();
		}
		if (r < VNET_HDR_LEN || r > VNET_MAX_FRAME)
			__builtin_trap(); /* no tx chain may make such a frame */
		if (h->rings_stable) {
			if (h->tx_got >= h->tx_nseq)
				__builtin_trap(); /* more frames than sendable chains */
			if (h->tx_exact) {
				static uint8_t got[FRAME_ROOM];
				memcpy(got, h->scratch, (size_t)r);
				if (gather_tx(h->tx_seq[h->tx_got]) != (uint64_t)r ||
				    memcmp(got, h->scratch, (size_t)r) != 0)
					__builtin_trap(); /* not the next sendable chain's bytes */
			}
		}
		h->tx_got++;
	}
}

/* Drop the frames the device has not read: the next input starts with an empty "tap". */
static void drain_probe(void)
{
	while (recv(h->probe, h->scratch, sizeof(h->scratch), MSG_DONTWAIT | MSG_TRUNC) >= 0) {
	}
}

/* Write the input's frames to the peer; those the socket does not take are not sent. */
ORACLE static void send_frames(const uint8_t *tab, unsigned int nframes)
{
	h->nframes = 0;
	for (unsigned int i = 0; i < nframes; i++) {
		uint32_t len = get32(tab + 8 * i) & 0x1ffff;
		uint32_t src = get32(tab + 8 * i + 4) % RAM_SIZE;
		if (len > VNET_MAX_FRAME + 16)
			len = VNET_MAX_FRAME + 1 + len % 16;
		uint8_t *f = h->frame[h->nframes];
		for (uint32_t k = 0; k < len;) {
			uint32_t chunk =
				(uint32_t)(RAM_SIZE - src) < len - k ? RAM_SIZE - src : len - k;
			memcpy(f + k, h->before + src, chunk);
			k += chunk;
			src = 0;
		}
		if (send(h->peer, f, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
			continue;
		h->flen[h->nframes++] = len;
	}
}

static uint16_t used_idx(const struct queue *q)
{
	uint16_t *p = vdrv_ptr(&h->d, q->used + 2, 2);
	return le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
}

static uint64_t progress(void)
{
	struct vnet_stats s;
	vnet_get_stats(h->n, &s);
	const uint64_t *v = (const uint64_t *)&s;
	uint64_t sum = h->tx_got + used_idx(&h->q[RXQ]) + used_idx(&h->q[TXQ]);
	for (size_t i = 0; i < sizeof(s) / sizeof(*v); i++)
		sum += v[i];
	return sum;
}

static bool probe_readable(void)
{
	struct pollfd pfd = {.fd = h->probe, .events = POLLIN};
	return poll(&pfd, 1, 0) == 1;
}

/*
 * Wait until the device is done or stuck: at most WAIT_MS, less once nothing moves for
 * QUIET_MS, or as soon as tx is answered, every frame read and one slice went by quietly.
 * Returns whether the device asked for a reset.
 */
static bool wait_device(void)
{
	int64_t start = now_ms(), last_change = start;
	uint64_t last = progress();
	struct pollfd pfd = {.fd = vnet_transport(h->n)->irq_fd, .events = POLLIN};
	for (;;) {
		drain_peer();
		if (vdrv_rd32(&h->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
			return true;
		if (poll(&pfd, 1, 1) == 1) {
			uint64_t v;
			if (read(pfd.fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				__builtin_trap();
		}
		int64_t now = now_ms();
		uint64_t p = progress();
		bool quiet = p == last;
		if (!quiet) {
			last = p;
			last_change = now;
		}
		const struct queue *tq = &h->q[TXQ];
		bool tx_done = tq->navail > tq->qsize || used_idx(tq) == tq->navail;
		if (quiet && tx_done && !probe_readable())
			return false;
		if (now - last_change >= QUIET_MS || now - start >= WAIT_MS)
			return false;
	}
}

/* The chain's first `len` writable bytes as the device left them, into h->scratch. */
ORACLE static bool gather_rx(uint16_t head, uint32_t len)
{
	struct queue *q = &h->q[RXQ];
	unsigned int nr;
	uint64_t got = 0;
	if (vdrv_expect_chain(&h->d, q->desc, q->qsize, head, h->bufs, &nr) < 0)
		__builtin_trap();
	for (unsigned int b = 0; b < nr && got < len; b++) {
		if (!h->bufs[b].writable)
			continue;
		uint64_t take = h->bufs[b].len < len - got ? h->bufs[b].len : len - got;
		for (uint64_t i = 0; i < take; i++)
			if (h->wcount[h->bufs[b].gpa + i] != 1 || h->usedmap[h->bufs[b].gpa + i])
				return false; /* shared with another chain or a used ring */
		memcpy(h->scratch + got, h->after + h->bufs[b].gpa, take);
		got += take;
	}
	return got == len;
}

/* Is the delivered frame in h->scratch frame `f` as the device must pass it on (§5.1.6.4)? */
ORACLE static bool rx_matches(unsigned int f, uint32_t len)
{
	const uint8_t *fr = h->frame[f], *s = h->scratch;
	if (h->flen[f] != len || memcmp(s + 1, fr + 1, 9) != 0 || get16(s + 10) != 1 ||
	    memcmp(s + VNET_HDR_LEN, fr + VNET_HDR_LEN, len - VNET_HDR_LEN) != 0)
		return false;
	return s[0] == (h->csum ? fr[0] & 3 : 0);
}

/* The used ring of queue `i` after the reset: only offered, answerable chains, sensibly. */
ORACLE static void check_used(unsigned int i)
{
	struct queue *q = &h->q[i];
	uint16_t nused = get16(h->after + q->used + 2);
	if (q->navail > q->qsize) {
		if (nused != 0)
			__builtin_trap(); /* more available than the ring holds: none served */
		return;
	}
	if (nused > q->navail)
		__builtin_trap(); /* more returned than made available */
	unsigned int next_frame = 0;
	for (unsigned int k = 0; k < nused; k++) {
		const uint8_t *e = h->after + q->used + 4 + 8ULL * k;
		uint32_t id = get32(e), len = get32(e + 4);
		if (id >= q->qsize)
			__builtin_trap();
		struct head_info *hi = &q->head[id];
		if (++hi->used > hi->offers || !hi->valid)
			__builtin_trap(); /* returned more often than offered, or malformed */
		if (i == TXQ) {
			if (len != 0)
				__builtin_trap(); /* the device writes nothing into tx buffers */
			continue;
		}
		if (len > hi->wlen || (len && hi->has_readable))
			__builtin_trap(); /* more than writable, or into a chain it must refuse */
		if (h->mrg || len == 0)
			continue;
		/* Without MRG_RXBUF: one whole frame, the header as the driver accepted it. */
		if (len < VNET_HDR_LEN)
			__builtin_trap();
		if (!gather_rx((uint16_t)id, len))
			continue;
		while (next_frame < h->nframes && !rx_matches(next_frame, len))
			next_frame++;
		if (next_frame == h->nframes)
			__builtin_trap(); /* not one of the frames sent, or out of order */
		next_frame++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	if (n < HDR_SIZE)
		return 0;
	/* Nothing may have come out since the last reset returned. */
	h->rings_stable = false;
	if (recv(h->peer, h->scratch, sizeof(h->scratch), MSG_DONTWAIT) >= 0)
		__builtin_trap();

	uint64_t want = ~0ULL;
	static const unsigned int refuse[] = {VIRTIO_F_RING_EVENT_IDX, F_MRG_RXBUF, F_GUEST_CSUM,
					      F_GUEST_TSO4, F_GUEST_TSO6};
	for (unsigned int i = 0; i < sizeof(refuse) / sizeof(refuse[0]); i++)
		if (in[0] & (1U << i))
			want &= ~(1ULL << refuse[i]);
	for (unsigned int i = 0; i < NQ; i++) {
		struct queue *q = &h->q[i];
		q->qsize = (uint16_t)(1U << (in[1 + i] % 9));
		q->navail = get16(in + 4 + 2 * i);
		q->desc = get32(in + 8 + 12 * i) % GPA_SPAN;
		q->avail = get32(in + 12 + 12 * i) % GPA_SPAN;
		q->used = get32(in + 16 + 12 * i) % GPA_SPAN;
	}
	unsigned int nframes = in[3] % (MAX_FRAMES + 1);

	int ret = setup(want);
	if (ret < 0) {
		if (vdrv_reset(&h->d) < 0 || !vdrv_canaries_ok(&h->d))
			__builtin_trap();
		return 0;
	}
	load_ram(in + HDR_SIZE, n - HDR_SIZE);
	expect_chains();
	h->tx_got = 0;

	for (unsigned int i = 0; i < NQ; i++) {
		uint16_t *idx = vdrv_ptr(&h->d, h->q[i].avail + 2, 2);
		__atomic_store_n(idx, htole16(h->q[i].navail), __ATOMIC_RELEASE);
	}
	send_frames(in + 32, nframes);
	vdrv_wr32(&h->d, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	vdrv_wr32(&h->d, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	bool needs_reset = wait_device();
	if (needs_reset && h->rings_stable && h->q[RXQ].all_good && h->q[TXQ].all_good)
		__builtin_trap(); /* DEVICE_NEEDS_RESET although every chain was well-formed */
	if (vdrv_reset(&h->d) < 0)
		__builtin_trap();
	drain_peer(); /* sent before the reset returned */
	drain_probe();

	if (!vdrv_canaries_ok(&h->d))
		__builtin_trap();
	ram_save(&h->d, h->after);
	if (h->rings_stable) {
		check_writes(h->before, h->after, h->allowed, RAM_SIZE);
		for (unsigned int i = 0; i < NQ; i++)
			if (h->q[i].used_stable)
				check_used(i);
	}
	/* After the reset returned nothing may touch guest memory any more. */
	ram_save(&h->d, h->before);
	if (memcmp(h->before, h->after, RAM_SIZE) != 0)
		__builtin_trap();
	return 0;
}
