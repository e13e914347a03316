/* test_virtio_net: the virtio-net device driven through its registers, a socketpair as tap. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/virtio_net.h"
#include "require.h"
#include "vdriver.h"

/* Spec values (virtio 1.2 §5.1), spelled out independently of devices/virtio_net.c. */
#define F_CSUM	     0
#define F_GUEST_CSUM 1
#define F_MAC	     5
#define F_GUEST_TSO4 7
#define F_GUEST_TSO6 8
#define F_GUEST_ECN  9
#define F_GUEST_UFO  10
#define F_HOST_TSO4  11
#define F_HOST_TSO6  12
#define F_HOST_ECN   13
#define F_HOST_UFO   14
#define F_MRG_RXBUF  15
#define F_STATUS     16
#define F_CTRL_VQ    17
#define F_MQ	     22
#define HDR	     12 /* struct virtio_net_hdr_v1 */
#define NEEDS_CSUM   1
#define DATA_VALID   2
#define GSO_TCPV4    1
#define GSO_UDP	     3
#define GSO_TCPV6    4
#define GSO_ECN	     0x80
#define MAX_FRAME    (65550 + HDR)

#define ALL_FEATURES (~0ULL)
#define NO_MRG	     (~(1ULL << F_MRG_RXBUF))
#define NO_CSUM	     (~(1ULL << F_GUEST_CSUM | 1ULL << F_GUEST_TSO4 | 1ULL << F_GUEST_TSO6))

/* Fake guest memory layout. */
#define MEM_SIZE   (16ULL << 20)
#define QSIZE	   VNET_QUEUE_SIZE
#define RX_DESC	   0x0000ULL
#define RX_AVAIL   0x1000ULL
#define RX_USED	   0x2000ULL
#define TX_DESC	   0x4000ULL
#define TX_AVAIL   0x5000ULL
#define TX_USED	   0x6000ULL
#define TX_BUF	   0x100000ULL /* 128 KiB per slot, 16 slots */
#define RX_BUF	   0x300000ULL /* 128 KiB per slot, 64 slots */
#define BUF_SLOT   0x20000ULL
#define TX_SMALL   0x4000ULL /* 16 KiB per frame for many small frames at once */
#define TIMEOUT_MS 5000
#define QUIET_MS   50

struct fx {
	struct vdrv rx; /* fake guest RAM, and the driver's view of queue 0 (receiveq1) */
	struct vdrv tx; /* queue 1 (transmitq1): a copy of rx re-pointed, sharing its RAM */
	struct logger lg;
	struct vnet *n;
	struct virtio_mmio *t;
	int peer;      /* the host end of the "tap" */
	int probe;     /* a dup of the device's end: to look at what it has not read */
	uint64_t feat; /* what the driver accepted */
};

/* ---- helpers ---- */

static uint8_t pat(unsigned int seed, size_t i)
{
	return (uint8_t)(seed * 31 + i * 13 + i / 251);
}

static void *gp(struct fx *f, uint64_t gpa, uint64_t len)
{
	void *p = vdrv_ptr(&f->rx, gpa, len);
	assert_non_null(p);
	return p;
}

static uint64_t tx_buf(unsigned int slot)
{
	return TX_BUF + BUF_SLOT * slot;
}

static uint64_t rx_buf(unsigned int slot)
{
	return RX_BUF + BUF_SLOT * slot;
}

static uint16_t get_le16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

/* Fail the test with the step vdriver stopped at unless `ret` is 0. */
static void init_ok(const struct vdrv *d, int ret)
{
	if (ret != 0)
		fail_msg("driver init: %s (%d)", d->why, ret);
}

/*
 * The driver's initialisation (§3.1.1, §5.1.5) with both queues of `qsize` entries; vdriver's
 * bookkeeping covers queue 0 only, so f->tx is a copy pointed at queue 1. Accepts the offered
 * features that `want` names.
 */
static void driver_init_q(struct fx *f, uint64_t want, uint16_t qsize)
{
	struct vdrv *d = &f->rx;
	uint64_t feat;
	init_ok(d, vdrv_negotiate(d, 1, want, &feat));
	bool event_idx = feat & (1ULL << VIRTIO_F_RING_EVENT_IDX);

	const uint64_t ring[2][3] = {{RX_DESC, RX_AVAIL, RX_USED}, {TX_DESC, TX_AVAIL, TX_USED}};
	for (unsigned int q = 0; q < 2; q++) {
		init_ok(d, vdrv_setup_queue(d, q, qsize, ring[q][0], ring[q][1], ring[q][2],
					    event_idx));
		assert_int_equal(vdrv_rd32(d, VIRTIO_MMIO_QUEUE_NUM_MAX), QSIZE);
	}
	vdrv_use_rings(d, qsize, RX_DESC, RX_AVAIL, RX_USED, event_idx);
	f->tx = f->rx;
	vdrv_use_rings(&f->tx, qsize, TX_DESC, TX_AVAIL, TX_USED, event_idx);
	f->feat = feat;
	init_ok(d, vdrv_driver_ok(d));
}

static void driver_init(struct fx *f, uint64_t want)
{
	driver_init_q(f, want, QSIZE);
}

static void kick_rx(struct fx *f)
{
	vdrv_wr32(&f->rx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void kick_tx(struct fx *f)
{
	vdrv_wr32(&f->rx, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
}

static bool wait_used(struct vdrv *d, unsigned int n)
{
	vdrv_arm_irq(d);
	return vdrv_wait_used(d, n, TIMEOUT_MS) == 0;
}

/* The next used element must be (head, len). */
static void expect_used(struct vdrv *d, uint16_t head, uint32_t len)
{
	assert_true(wait_used(d, 1));
	struct vdrv_used u = vdrv_take_used(d);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, len);
}

/* Nothing more comes back on this queue for a while. */
static void expect_quiet(struct vdrv *d)
{
	usleep(QUIET_MS * 1000);
	assert_int_equal(vdrv_used_idx(d), d->used_seen);
}

static struct vnet_stats stats(struct fx *f)
{
	struct vnet_stats s;
	vnet_get_stats(f->n, &s);
	return s;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until counter `off` of struct vnet_stats reaches `val`. */
static bool wait_stat(struct fx *f, size_t off, uint64_t val)
{
	int64_t end = now_ms() + TIMEOUT_MS;
	for (;;) {
		struct vnet_stats s = stats(f);
		uint64_t v;
		memcpy(&v, (const uint8_t *)&s + off, sizeof(v));
		if (v >= val)
			return true;
		if (now_ms() > end)
			return false;
		usleep(1000);
	}
}

#define WAIT_STAT(f, field, val) assert_true(wait_stat(f, offsetof(struct vnet_stats, field), val))

/* A frame: header (num_buffers 0xeeee: the device must overwrite it) and a payload. */
static uint8_t *make_frame(uint8_t flags, uint8_t gso, size_t payload, unsigned int seed)
{
	uint8_t *b = calloc(1, HDR + payload);
	assert_non_null(b);
	b[0] = flags;
	b[1] = gso;
	b[10] = b[11] = 0xee;
	for (size_t i = 0; i < payload; i++)
		b[HDR + i] = pat(seed, i);
	return b;
}

/* The host sends one frame into the device. */
static void send_frame(struct fx *f, uint8_t flags, uint8_t gso, size_t payload, unsigned int seed)
{
	uint8_t *b = make_frame(flags, gso, payload, seed);
	assert_int_equal(send(f->peer, b, HDR + payload, 0), (ssize_t)(HDR + payload));
	free(b);
}

/* The host receives one frame from the device: its length, or -1 if none came in time. */
static ssize_t recv_frame(struct fx *f, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = {.fd = f->peer, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	return recv(f->peer, buf, cap, MSG_DONTWAIT);
}

static void expect_no_frame(struct fx *f)
{
	uint8_t b[64];
	assert_int_equal(recv_frame(f, b, sizeof(b), QUIET_MS), -1);
}

/* Post an rx chain of writable buffers of the given lengths from slot `slot` on. */
static uint16_t post_rx(struct fx *f, unsigned int slot, const uint32_t *lens, unsigned int nr)
{
	struct vdrv_buf d[16];
	assert_true(nr <= 16);
	for (unsigned int i = 0; i < nr; i++) {
		d[i] = (struct vdrv_buf){rx_buf(slot + i), lens[i], true};
		memset(gp(f, rx_buf(slot + i), lens[i]), 0xcc, lens[i]);
	}
	return vdrv_post(&f->rx, d, nr);
}

static uint16_t post_rx1(struct fx *f, unsigned int slot, uint32_t len)
{
	return post_rx(f, slot, &len, 1);
}

/* Gather `len` bytes of the rx buffers of chain slots [slot, slot+nr) of `lens`. */
static uint8_t *gather_rx(struct fx *f, unsigned int slot, const uint32_t *lens, unsigned int nr,
			  size_t len)
{
	uint8_t *out = malloc(len);
	assert_non_null(out);
	size_t off = 0;
	for (unsigned int i = 0; i < nr && off < len; i++) {
		size_t n = lens[i] < len - off ? lens[i] : len - off;
		memcpy(out + off, gp(f, rx_buf(slot + i), n), n);
		off += n;
	}
	assert_int_equal(off, len);
	return out;
}

/* The frame as the guest must see it: num_buffers set, flags as the device leaves them. */
static void expect_frame(const uint8_t *got, uint8_t flags, uint8_t gso, size_t payload,
			 unsigned int seed, uint16_t num_buffers)
{
	uint8_t *want = make_frame(flags, gso, payload, seed);
	want[10] = (uint8_t)num_buffers;
	want[11] = (uint8_t)(num_buffers >> 8);
	assert_memory_equal(got, want, HDR + payload);
	free(want);
}

/* A tx chain at `gpa`: header and payload in the given pieces, all device-readable. */
static uint16_t post_tx_at(struct fx *f, uint64_t gpa, uint8_t flags, size_t payload,
			   unsigned int seed, const uint32_t *pieces, unsigned int nr)
{
	uint8_t *b = make_frame(flags, 0, payload, seed);
	memcpy(gp(f, gpa, HDR + payload), b, HDR + payload);
	free(b);
	struct vdrv_buf d[16];
	uint64_t off = 0;
	assert_true(nr <= 16);
	for (unsigned int i = 0; i < nr; i++) {
		d[i] = (struct vdrv_buf){gpa + off, pieces[i], false};
		off += pieces[i];
	}
	assert_int_equal(off, HDR + payload);
	return vdrv_post(&f->tx, d, nr);
}

static uint16_t post_tx(struct fx *f, unsigned int slot, uint8_t flags, size_t payload,
			unsigned int seed, const uint32_t *pieces, unsigned int nr)
{
	return post_tx_at(f, tx_buf(slot), flags, payload, seed, pieces, nr);
}

static uint16_t post_tx1(struct fx *f, unsigned int slot, size_t payload, unsigned int seed)
{
	uint32_t whole = (uint32_t)(HDR + payload);
	return post_tx(f, slot, 0, payload, seed, &whole, 1);
}

/* Frame `i` of a batch of small ones (< 16 KiB), each in its own buffer. */
static uint16_t post_tx_small(struct fx *f, unsigned int i, size_t payload, unsigned int seed)
{
	uint32_t whole = (uint32_t)(HDR + payload);
	assert_true(whole <= TX_SMALL && i < 128);
	return post_tx_at(f, TX_BUF + TX_SMALL * i, 0, payload, seed, &whole, 1);
}

/* A tx chain in one buffer whose header has `flags` and GSO type `gso`. */
static uint16_t post_tx_gso(struct fx *f, unsigned int slot, uint8_t flags, uint8_t gso,
			    size_t payload, unsigned int seed)
{
	uint8_t *b = make_frame(flags, gso, payload, seed);
	memcpy(gp(f, tx_buf(slot), HDR + payload), b, HDR + payload);
	free(b);
	struct vdrv_buf d = {tx_buf(slot), (uint32_t)(HDR + payload), false};
	return vdrv_post(&f->tx, &d, 1);
}

static void expect_sent_gso(struct fx *f, uint8_t flags, uint8_t gso, size_t payload,
			    unsigned int seed)
{
	uint8_t *got = malloc(MAX_FRAME + 16);
	assert_non_null(got);
	ssize_t n = recv_frame(f, got, MAX_FRAME + 16, TIMEOUT_MS);
	assert_int_equal(n, (ssize_t)(HDR + payload));
	uint8_t *want = make_frame(flags, gso, payload, seed);
	assert_memory_equal(got, want, HDR + payload);
	free(want);
	free(got);
}

static void expect_sent(struct fx *f, uint8_t flags, size_t payload, unsigned int seed)
{
	uint8_t *got = malloc(MAX_FRAME + 16);
	assert_non_null(got);
	ssize_t n = recv_frame(f, got, MAX_FRAME + 16, TIMEOUT_MS);
	assert_int_equal(n, (ssize_t)(HDR + payload));
	uint8_t *want = make_frame(flags, 0, payload, seed);
	assert_memory_equal(got, want, HDR + payload);
	free(want);
	free(got);
}

static bool needs_reset(struct fx *f)
{
	return vdrv_rd32(&f->rx, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

/* ---- fixtures ---- */

static int fx_setup_limit(void **state, int type, uint64_t want, const struct ratelimit_spec *limit)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	f->peer = f->probe = -1;
	assert_int_equal(vdrv_init(&f->rx, MEM_SIZE, 0), 0);
	log_init(&f->lg, LOG_ERROR - 1, 2); /* silent: the tests provoke guest errors on purpose */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	f->peer = sv[1];
	f->probe = dup(sv[0]);
	assert_true(f->probe >= 0);
	struct vnet_config cfg = {.mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, .mac_set = true};
	if (limit)
		cfg.limit = *limit;
	struct vmerr e = {0};
	if (vnet_create(&f->n, &cfg, sv[0], &f->rx.gm, &f->lg, "net0", &e) < 0) {
		print_error("vnet_create: %s\n", e.msg);
		return -1;
	}
	f->t = vnet_transport(f->n);
	vdrv_attach(&f->rx, f->t);
	driver_init(f, want);
	return 0;
}

static int fx_setup(void **state, int type, uint64_t want)
{
	return fx_setup_limit(state, type, want, NULL);
}

static int setup(void **state)
{
	return fx_setup(state, SOCK_SEQPACKET, ALL_FEATURES);
}

/* 20 frames a second each way (a bucket of 2). */
static int setup_pps(void **state)
{
	return fx_setup_limit(state, SOCK_SEQPACKET, ALL_FEATURES,
			      &(struct ratelimit_spec){.ops_per_s = 20});
}

static int setup_dgram(void **state)
{
	return fx_setup(state, SOCK_DGRAM, ALL_FEATURES);
}

static int setup_no_mrg(void **state)
{
	return fx_setup(state, SOCK_SEQPACKET, NO_MRG);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	vnet_destroy(f->n);
	if (f->peer >= 0)
		close(f->peer);
	if (f->probe >= 0)
		close(f->probe);
	if (f->rx.host)
		assert_true(vdrv_canaries_ok(&f->rx));
	vdrv_fini(&f->rx);
	free(f);
	return 0;
}

/* ---- features and config space ---- */

static void test_features_and_config(void **state)
{
	struct fx *f = *state;
	uint64_t feat = vdrv_device_features(&f->rx);
	uint64_t want = 1ULL << F_CSUM | 1ULL << F_GUEST_CSUM | 1ULL << F_MAC |
			1ULL << F_GUEST_TSO4 | 1ULL << F_GUEST_TSO6 | 1ULL << F_HOST_TSO4 |
			1ULL << F_HOST_TSO6 | 1ULL << F_MRG_RXBUF | 1ULL << F_STATUS |
			1ULL << VIRTIO_F_RING_EVENT_IDX | 1ULL << VIRTIO_F_VERSION_1;
	assert_int_equal(feat, want);
	assert_int_equal(f->feat, want);
	uint64_t never = 1ULL << F_GUEST_ECN | 1ULL << F_GUEST_UFO | 1ULL << F_HOST_ECN |
			 1ULL << F_HOST_UFO | 1ULL << F_CTRL_VQ | 1ULL << F_MQ;
	assert_false(feat & never);

	/* Two queues of 256; no third. */
	for (unsigned int q = 0; q < 3; q++) {
		vdrv_wr32(&f->rx, VIRTIO_MMIO_QUEUE_SEL, q);
		assert_int_equal(vdrv_rd32(&f->rx, VIRTIO_MMIO_QUEUE_NUM_MAX), q < 2 ? QSIZE : 0);
	}

	/* mac[6] byte by byte, status le16 = LINK_UP, nothing past 8 bytes. */
	const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	uint8_t cfg[8];
	for (unsigned int i = 0; i < sizeof(cfg); i++)
		virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + i, &cfg[i], 1, false);
	assert_memory_equal(cfg, mac, 6);
	assert_int_equal(get_le16(cfg + 6), 1);
	uint8_t got[6];
	vnet_mac(f->n, got);
	assert_memory_equal(got, mac, 6);
	uint8_t st[2];
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 6, st, 2, false);
	assert_int_equal(get_le16(st), 1);
	uint8_t past[4] = {1, 1, 1, 1};
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 8, past, 4, false);
	assert_memory_equal(past, "\0\0\0\0", 4);

	/* Writes are ignored (no CTRL_MAC_ADDR; the modern interface has no mac writes). */
	uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG, junk, 4, true);
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 4, junk, 4, true);
	uint8_t d8[8];
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG, d8, 8, false);
	assert_memory_equal(d8, cfg, 8);
}

/* Without mac_set, the MAC comes from the device name (no tap name given). */
static void test_default_mac(void **state)
{
	struct fx *f = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	struct vnet *n = NULL;
	struct vmerr e = {0};
	assert_int_equal(vnet_create(&n, NULL, sv[0], &f->rx.gm, &f->lg, "net7", &e), 0);
	uint8_t got[6], want[6];
	vnet_mac(n, got);
	assert_int_equal(vnet_mac_from_name("net7", want), 0);
	assert_memory_equal(got, want, 6);
	vnet_destroy(n);
	close(sv[1]);
}

/* ---- transmit ---- */

static void test_tx_basic(void **state)
{
	struct fx *f = *state;
	/* Header alone in the first buffer, the payload in two more. */
	uint32_t pieces[3] = {HDR, 600, 400};
	uint16_t head = post_tx(f, 0, 0, 1000, 1, pieces, 3);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 1000, 1);
	/* The header split across buffers and glued to the payload: no framing assumed. */
	uint32_t odd[3] = {5, 20, 87};
	head = post_tx(f, 1, NEEDS_CSUM, 100, 2, odd, 3);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, NEEDS_CSUM, 100, 2);
	struct vnet_stats s = stats(f);
	assert_int_equal(s.tx_frames, 2);
	assert_int_equal(s.tx_bytes, 1100);
	assert_int_equal(s.tx_short + s.tx_bad_chain + s.tx_oversize + s.tx_errors, 0);
	assert_true(vdrv_wait_irq(&f->rx, TIMEOUT_MS));
	expect_quiet(&f->tx);
	expect_no_frame(f);
}

/* Many frames in one kick and over several: all sent, in order, each returned. */
static void test_tx_many(void **state)
{
	struct fx *f = *state;
	unsigned int seq = 0;
	for (unsigned int round = 0; round < 4; round++) {
		for (unsigned int i = 0; i < 100; i++)
			post_tx_small(f, i, 64 + (i * 37) % 1400, seq + i);
		kick_tx(f);
		for (unsigned int i = 0; i < 100; i++)
			expect_sent(f, 0, 64 + (i * 37) % 1400, seq + i);
		assert_true(wait_used(&f->tx, 100));
		for (unsigned int i = 0; i < 100; i++)
			assert_int_equal(vdrv_take_used(&f->tx).len, 0);
		seq += 100;
	}
	assert_int_equal(stats(f).tx_frames, 400);
}

/* A tx header asking for an offload the driver did not accept (§5.1.6.2.1): dropped, counted,
 * the chain returned, never sent; the accepted ones pass as they are. */
static void test_tx_offload_filter(void **state)
{
	struct fx *f = *state;
	/* No CSUM, so no HOST_TSO4/6 either. */
	driver_init(f, ~(1ULL << F_CSUM));
	const uint8_t bad1[][2] = {
		{NEEDS_CSUM, 0}, {0, GSO_TCPV4}, {NEEDS_CSUM, GSO_TCPV6}, {DATA_VALID, 0}, {4, 0}};
	for (unsigned int i = 0; i < sizeof(bad1) / sizeof(bad1[0]); i++) {
		uint16_t head = post_tx_gso(f, 0, bad1[i][0], bad1[i][1], 200, 80 + i);
		kick_tx(f);
		expect_used(&f->tx, head, 0);
	}
	expect_no_frame(f);
	uint16_t head = post_tx_gso(f, 0, 0, 0, 200, 90);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent_gso(f, 0, 0, 200, 90);
	struct vnet_stats s = stats(f);
	assert_int_equal(s.tx_bad_offload, 5);
	assert_int_equal(s.tx_frames, 1);

	/* CSUM and HOST_TSO4, not HOST_TSO6. */
	driver_init(f, ~(1ULL << F_HOST_TSO6));
	const uint8_t bad2[][2] = {{NEEDS_CSUM, GSO_TCPV6},
				   {NEEDS_CSUM, GSO_UDP},
				   {NEEDS_CSUM, GSO_TCPV4 | GSO_ECN},
				   {NEEDS_CSUM | DATA_VALID, 0}};
	for (unsigned int i = 0; i < sizeof(bad2) / sizeof(bad2[0]); i++) {
		head = post_tx_gso(f, 0, bad2[i][0], bad2[i][1], 200, 100 + i);
		kick_tx(f);
		expect_used(&f->tx, head, 0);
	}
	expect_no_frame(f);
	head = post_tx_gso(f, 0, NEEDS_CSUM, GSO_TCPV4, 300, 110);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent_gso(f, NEEDS_CSUM, GSO_TCPV4, 300, 110);
	head = post_tx_gso(f, 0, NEEDS_CSUM, 0, 300, 111);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent_gso(f, NEEDS_CSUM, 0, 300, 111);
	s = stats(f);
	assert_int_equal(s.tx_bad_offload, 9);
	assert_int_equal(s.tx_frames, 3);
	assert_false(needs_reset(f));
}

/* A header shorter than 12 bytes: dropped, counted, the chain returned; the queue goes on. */
static void test_tx_short_header(void **state)
{
	struct fx *f = *state;
	memset(gp(f, tx_buf(0), 64), 0x11, 64);
	struct vdrv_buf d[2] = {{tx_buf(0), 8, false}};
	uint16_t head = vdrv_post(&f->tx, d, 1);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	/* 11 bytes in two buffers. */
	d[0] = (struct vdrv_buf){tx_buf(0), 6, false};
	d[1] = (struct vdrv_buf){tx_buf(0) + 6, 5, false};
	head = vdrv_post(&f->tx, d, 2);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	struct vnet_stats s = stats(f);
	assert_int_equal(s.tx_short, 2);
	assert_int_equal(s.tx_frames, 0);
	expect_no_frame(f);
	assert_false(needs_reset(f));
	/* Exactly a header is a (zero-length) frame, passed on; then a normal one. */
	head = post_tx1(f, 1, 0, 3);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 0, 3);
	head = post_tx1(f, 2, 300, 4);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 300, 4);
}

/* Decided outcome: a tx chain with a device-writable buffer is dropped, counted and returned
 * with length 0; nothing is written into it and the queue goes on (no reset). */
static void test_tx_writable_buffer(void **state)
{
	struct fx *f = *state;
	uint8_t *frame = make_frame(0, 0, 100, 5);
	memcpy(gp(f, tx_buf(0), HDR + 100), frame, HDR + 100);
	free(frame);
	memset(gp(f, tx_buf(1), 256), 0x77, 256);
	struct vdrv_buf d[2] = {{tx_buf(0), HDR + 100, false}, {tx_buf(1), 256, true}};
	uint16_t head = vdrv_post(&f->tx, d, 2);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	/* All writable. */
	d[0] = (struct vdrv_buf){tx_buf(1), 256, true};
	head = vdrv_post(&f->tx, d, 1);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	uint8_t *w = gp(f, tx_buf(1), 256);
	for (unsigned int i = 0; i < 256; i++)
		assert_int_equal(w[i], 0x77);
	struct vnet_stats s = stats(f);
	assert_int_equal(s.tx_bad_chain, 2);
	assert_int_equal(s.tx_frames, 0);
	expect_no_frame(f);
	assert_false(needs_reset(f));
	head = post_tx1(f, 2, 60, 6);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 60, 6);
}

/* Longer than 65550 + 12 bytes: dropped and counted; exactly that long: sent. */
static void test_tx_oversize(void **state)
{
	struct fx *f = *state;
	uint16_t head = post_tx1(f, 0, MAX_FRAME - HDR + 1, 7);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	assert_int_equal(stats(f).tx_oversize, 1);
	expect_no_frame(f);
	head = post_tx1(f, 1, MAX_FRAME - HDR, 8);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, MAX_FRAME - HDR, 8);
	assert_int_equal(stats(f).tx_frames, 1);
}

/* The "tap" will not take more (EAGAIN): frames wait, none is lost, order is kept. */
static void test_tx_eagain(void **state)
{
	struct fx *f = *state;
	int sndbuf = 8192; /* the kernel doubles it: a handful of 3000-byte frames */
	assert_int_equal(setsockopt(f->probe, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	enum { N = 60, LEN = 3000 };
	for (unsigned int i = 0; i < N; i++)
		post_tx_small(f, i, LEN, 100 + i);
	kick_tx(f);
	WAIT_STAT(f, tx_blocked, 1);
	usleep(QUIET_MS * 1000);
	uint16_t used = vdrv_used_idx(&f->tx);
	assert_true(used < N);
	/* Reading from the host side frees room; the device resumes on EPOLLOUT by itself. */
	for (unsigned int i = 0; i < N; i++)
		expect_sent(f, 0, LEN, 100 + i);
	assert_true(wait_used(&f->tx, N));
	struct vnet_stats s = stats(f);
	assert_int_equal(s.tx_frames, N);
	assert_int_equal(s.tx_errors, 0);
	expect_no_frame(f);
}

/* A malformed tx chain (what virtq_pop refuses): DEVICE_NEEDS_RESET; a reset recovers. */
static void test_tx_malformed(void **state)
{
	struct fx *f = *state;
	struct vdrv_buf d[1] = {{MEM_SIZE - 8, 64, false}}; /* past the end of RAM */
	vdrv_post(&f->tx, d, 1);
	kick_tx(f);
	assert_true(vdrv_wait_needs_reset(&f->rx, TIMEOUT_MS));
	assert_int_equal(vdrv_used_idx(&f->tx), 0);
	expect_no_frame(f);
	driver_init(f, ALL_FEATURES);
	assert_false(needs_reset(f));
	uint16_t head = post_tx1(f, 0, 40, 9);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 40, 9);
}

/* ---- receive ---- */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 10 frames each way at 20 a second (a bucket of 2): the 8 past the bucket take 50 ms each
 * (a limiter only slows down, so the lower bound holds on a loaded machine); lifted at run
 * time, the next 10 pass unthrottled. */
static void test_frame_rate_limit(void **state)
{
	struct fx *f = *state;
	uint64_t t0 = mono_ms();
	for (unsigned int i = 0; i < 10; i++)
		post_tx_small(f, i, 100, 300 + i);
	kick_tx(f);
	for (unsigned int i = 0; i < 10; i++)
		expect_sent(f, 0, 100, 300 + i);
	assert_true(mono_ms() - t0 >= 8 * 50 * 9 / 10);
	assert_true(wait_used(&f->tx, 10));
	for (unsigned int i = 0; i < 10; i++)
		vdrv_take_used(&f->tx);

	t0 = mono_ms();
	for (unsigned int i = 0; i < 10; i++)
		post_rx1(f, i, 2048);
	kick_rx(f);
	for (unsigned int i = 0; i < 10; i++)
		send_frame(f, 0, 0, 100, 400 + i);
	assert_true(wait_used(&f->rx, 10));
	assert_true(mono_ms() - t0 >= 8 * 50 * 9 / 10);
	for (unsigned int i = 0; i < 10; i++)
		vdrv_take_used(&f->rx);
	struct vnet_stats s = stats(f);
	assert_true(s.tx_throttled >= 1 && s.rx_throttled >= 1);
	assert_int_equal(s.tx_frames, 10);
	assert_int_equal(s.rx_frames, 10);

	assert_int_equal(vnet_set_limit(f->n, &(struct ratelimit_spec){0}), 0);
	usleep(20000);
	for (unsigned int i = 0; i < 10; i++)
		post_tx_small(f, i, 100, 500 + i);
	kick_tx(f);
	for (unsigned int i = 0; i < 10; i++)
		expect_sent(f, 0, 100, 500 + i);
	assert_int_equal(stats(f).tx_throttled, s.tx_throttled);
	struct ratelimit_spec l;
	vnet_get_limit(f->n, &l);
	assert_int_equal(l.ops_per_s, 0);
}

static void test_rx_basic(void **state)
{
	struct fx *f = *state;
	uint16_t head = post_rx1(f, 0, 2048);
	kick_rx(f);
	vdrv_arm_irq(&f->rx);
	send_frame(f, DATA_VALID, 0, 100, 11);
	expect_used(&f->rx, head, HDR + 100);
	expect_frame(gp(f, rx_buf(0), HDR + 100), DATA_VALID, 0, 100, 11, 1);
	assert_int_equal(*(uint8_t *)gp(f, rx_buf(0) + HDR + 100, 1), 0xcc); /* no more */
	assert_true(vdrv_wait_irq(&f->rx, TIMEOUT_MS));
	struct vnet_stats s = stats(f);
	assert_int_equal(s.rx_frames, 1);
	assert_int_equal(s.rx_bytes, 100);
	/* Frames arriving before their buffers are posted wait, then arrive in order. */
	send_frame(f, 0, 0, 60, 12);
	send_frame(f, 0, 0, 70, 13);
	WAIT_STAT(f, rx_stalls, 1);
	uint16_t h1 = post_rx1(f, 1, 2048);
	uint16_t h2 = post_rx1(f, 2, 2048);
	kick_rx(f);
	expect_used(&f->rx, h1, HDR + 60);
	expect_used(&f->rx, h2, HDR + 70);
	expect_frame(gp(f, rx_buf(1), HDR + 60), 0, 0, 60, 12, 1);
	expect_frame(gp(f, rx_buf(2), HDR + 70), 0, 0, 70, 13, 1);
}

/* Same with SOCK_DGRAM on the host side. */
static void test_rx_tx_dgram(void **state)
{
	struct fx *f = *state;
	uint16_t head = post_rx1(f, 0, 4096);
	kick_rx(f);
	send_frame(f, 0, 0, 3000, 14);
	expect_used(&f->rx, head, HDR + 3000);
	expect_frame(gp(f, rx_buf(0), HDR + 3000), 0, 0, 3000, 14, 1);
	head = post_tx1(f, 0, 2000, 15);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 2000, 15);
	/* Oversize over DGRAM too. */
	uint8_t *big = make_frame(0, 0, 70000, 16);
	assert_int_equal(send(f->peer, big, HDR + 70000, 0), HDR + 70000);
	free(big);
	WAIT_STAT(f, rx_oversize, 1);
	head = post_rx1(f, 1, 4096);
	kick_rx(f);
	send_frame(f, 0, 0, 10, 17);
	expect_used(&f->rx, head, HDR + 10);
	expect_frame(gp(f, rx_buf(1), HDR + 10), 0, 0, 10, 17, 1);
}

/* rx chains too small for the header or with a readable part: returned empty, skipped. */
static void rx_bad_chains(struct fx *f)
{
	uint16_t h0 = post_rx1(f, 0, 8);
	struct vdrv_buf d[2] = {{rx_buf(1), 64, false}, {rx_buf(2), 2048, true}};
	memset(gp(f, rx_buf(1), 64), 0x5a, 64);
	uint16_t h1 = vdrv_post(&f->rx, d, 2);
	uint16_t h2 = post_rx1(f, 3, 2048);
	kick_rx(f);
	send_frame(f, 0, 0, 100, 21);
	expect_used(&f->rx, h0, 0);
	expect_used(&f->rx, h1, 0);
	expect_used(&f->rx, h2, HDR + 100);
	expect_frame(gp(f, rx_buf(3), HDR + 100), 0, 0, 100, 21, 1);
	uint8_t *p = gp(f, rx_buf(0), 8);
	for (unsigned int i = 0; i < 8; i++)
		assert_int_equal(p[i], 0xcc);
	p = gp(f, rx_buf(1), 64);
	for (unsigned int i = 0; i < 64; i++)
		assert_int_equal(p[i], 0x5a);
	struct vnet_stats s = stats(f);
	assert_int_equal(s.rx_bad_chain, 2);
	assert_int_equal(s.rx_frames, 1);
	assert_false(needs_reset(f));
}

static void test_rx_chain_too_small_for_header(void **state)
{
	struct fx *f = *state;
	rx_bad_chains(f);
	/* A header split over two buffers of one chain is fine (no framing assumed). */
	uint32_t lens[2] = {7, 500};
	uint16_t head = post_rx(f, 4, lens, 2);
	kick_rx(f);
	send_frame(f, 0, 0, 200, 22);
	expect_used(&f->rx, head, HDR + 200);
	uint8_t *got = gather_rx(f, 4, lens, 2, HDR + 200);
	expect_frame(got, 0, 0, 200, 22, 1);
	free(got);
}

static void test_rx_chain_too_small_for_header_no_mrg(void **state)
{
	rx_bad_chains(*state);
}

/* MRG_RXBUF: a frame over several chains, each filled, num_buffers in the first. */
static void test_rx_mrg_spanning(void **state)
{
	struct fx *f = *state;
	uint16_t h0 = post_rx1(f, 0, 1000);
	uint32_t split[2] = {300, 700}; /* a chain of two buffers */
	uint16_t h1 = post_rx(f, 1, split, 2);
	uint16_t h2 = post_rx1(f, 3, 1000);
	uint16_t h3 = post_rx1(f, 4, 1000);
	kick_rx(f);
	send_frame(f, 0, 0, 2500, 31);
	expect_used(&f->rx, h0, 1000);
	expect_used(&f->rx, h1, 1000);
	expect_used(&f->rx, h2, HDR + 2500 - 2000);
	uint32_t lens[4] = {1000, 300, 700, 1000};
	uint8_t *got = gather_rx(f, 0, lens, 4, HDR + 2500);
	expect_frame(got, 0, 0, 2500, 31, 3);
	free(got);
	/* The fourth chain takes the next frame alone. */
	send_frame(f, 0, 0, 50, 32);
	expect_used(&f->rx, h3, HDR + 50);
	expect_frame(gp(f, rx_buf(4), HDR + 50), 0, 0, 50, 32, 1);
	assert_int_equal(stats(f).rx_frames, 2);
}

/* MRG_RXBUF: the frame needs more chains than are posted: it waits, half written, unpublished. */
static void test_rx_mrg_waits_for_more(void **state)
{
	struct fx *f = *state;
	uint16_t h0 = post_rx1(f, 0, 1000);
	kick_rx(f);
	send_frame(f, 0, 0, 2500, 33);
	WAIT_STAT(f, rx_stalls, 1);
	expect_quiet(&f->rx);
	uint16_t h1 = post_rx1(f, 1, 1000);
	kick_rx(f);
	WAIT_STAT(f, rx_stalls, 2);
	expect_quiet(&f->rx);
	uint16_t h2 = post_rx1(f, 2, 1000);
	kick_rx(f);
	expect_used(&f->rx, h0, 1000);
	expect_used(&f->rx, h1, 1000);
	expect_used(&f->rx, h2, HDR + 500);
	uint32_t lens[3] = {1000, 1000, 1000};
	uint8_t *got = gather_rx(f, 0, lens, 3, HDR + 2500);
	expect_frame(got, 0, 0, 2500, 33, 3);
	free(got);
}

/* MRG_RXBUF with a ring too small for the frame: dropped, every chain returned empty. */
static void test_rx_mrg_ring_too_small(void **state)
{
	struct fx *f = *state;
	driver_init_q(f, ALL_FEATURES, 4);
	uint16_t h[4];
	for (unsigned int i = 0; i < 4; i++)
		h[i] = post_rx1(f, i, 100);
	kick_rx(f);
	send_frame(f, 0, 0, 1000, 34);
	for (unsigned int i = 0; i < 4; i++)
		expect_used(&f->rx, h[i], 0);
	assert_int_equal(stats(f).rx_no_room, 1);
	assert_int_equal(stats(f).rx_frames, 0);
	for (unsigned int i = 0; i < 4; i++)
		h[i] = post_rx1(f, 4 + i, 2048);
	kick_rx(f);
	send_frame(f, 0, 0, 1000, 35);
	expect_used(&f->rx, h[0], HDR + 1000);
	expect_frame(gp(f, rx_buf(4), HDR + 1000), 0, 0, 1000, 35, 1);
}

/* Without MRG_RXBUF: one chain per frame; a chain too small drops the frame, keeps the chain. */
static void test_rx_no_mrg_too_small(void **state)
{
	struct fx *f = *state;
	assert_false(f->feat & (1ULL << F_MRG_RXBUF));
	uint16_t head = post_rx1(f, 0, 500);
	kick_rx(f);
	send_frame(f, 0, 0, 1000, 41);
	WAIT_STAT(f, rx_no_room, 1);
	expect_quiet(&f->rx);
	send_frame(f, 0, 0, 400, 42);
	expect_used(&f->rx, head, HDR + 400);
	expect_frame(gp(f, rx_buf(0), HDR + 400), 0, 0, 400, 42, 1);
	/* A frame spanning the buffers of one chain; exactly the chain's size. */
	uint32_t lens[3] = {HDR, 600, 400};
	head = post_rx(f, 1, lens, 3);
	kick_rx(f);
	send_frame(f, 0, 0, 1000, 43);
	expect_used(&f->rx, head, HDR + 1000);
	uint8_t *got = gather_rx(f, 1, lens, 3, HDR + 1000);
	expect_frame(got, 0, 0, 1000, 43, 1);
	free(got);
	struct vnet_stats s = stats(f);
	assert_int_equal(s.rx_frames, 2);
	assert_int_equal(s.rx_no_room, 1);
}

/* Longer than 65550 + 12 bytes: dropped and counted, never truncated; the largest fits. */
static void test_rx_oversize(void **state)
{
	struct fx *f = *state;
	uint16_t head = post_rx1(f, 0, MAX_FRAME);
	kick_rx(f);
	uint8_t *big = make_frame(0, 0, 70000, 51);
	assert_int_equal(send(f->peer, big, HDR + 70000, 0), HDR + 70000);
	free(big);
	big = make_frame(0, 0, MAX_FRAME - HDR + 1, 52);
	assert_int_equal(send(f->peer, big, MAX_FRAME + 1, 0), MAX_FRAME + 1);
	free(big);
	WAIT_STAT(f, rx_oversize, 2);
	expect_quiet(&f->rx);
	send_frame(f, 0, 0, MAX_FRAME - HDR, 53);
	expect_used(&f->rx, head, MAX_FRAME);
	expect_frame(gp(f, rx_buf(0), MAX_FRAME), 0, 0, MAX_FRAME - HDR, 53, 1);
	/* Shorter than a header: dropped too. */
	assert_int_equal(send(f->peer, "short", 5, 0), 5);
	WAIT_STAT(f, rx_short, 1);
	head = post_rx1(f, 1, 2048);
	kick_rx(f);
	send_frame(f, 0, 0, 1, 54);
	expect_used(&f->rx, head, HDR + 1);
	struct vnet_stats s = stats(f);
	assert_int_equal(s.rx_oversize, 2);
	assert_int_equal(s.rx_short, 1);
	assert_int_equal(s.rx_frames, 2);
}

/* CPU time (clock ticks) the device's I/O thread used so far. */
static long io_thread_ticks(void)
{
	DIR *dir = opendir("/proc/self/task");
	assert_non_null(dir);
	long ticks = -1;
	struct dirent *de;
	while ((de = readdir(dir)) && ticks < 0) {
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		FILE *fp = fopen(path, "r");
		if (!fp)
			continue;
		if (!fgets(comm, sizeof(comm), fp))
			comm[0] = '\0';
		fclose(fp);
		if (strcmp(comm, "net-net0\n"))
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		fp = fopen(path, "r");
		assert_non_null(fp);
		char line[1024];
		assert_non_null(fgets(line, sizeof(line), fp));
		fclose(fp);
		/* Fields after "(comm)": state is field 3; utime 14, stime 15. */
		const char *p = strrchr(line, ')');
		assert_non_null(p);
		unsigned long ut, st;
		assert_int_equal(sscanf(p + 2,
					"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
					&st),
				 2);
		ticks = (long)(ut + st);
	}
	closedir(dir);
	assert_true(ticks >= 0);
	return ticks;
}

/* No rx buffers: one frame waits in the device, the rest in the "tap"; no spinning, nothing lost.
 */
static void test_rx_no_buffers(void **state)
{
	struct fx *f = *state;
	for (unsigned int i = 0; i < 5; i++)
		send_frame(f, 0, 0, 100 + i, 60 + i);
	WAIT_STAT(f, rx_stalls, 1);
	usleep(QUIET_MS * 1000);
	/* The device took one frame and stopped reading: the next is still in the socket. */
	int inq = 0;
	assert_int_equal(ioctl(f->probe, FIONREAD, &inq), 0);
	assert_int_equal(inq, 4 * HDR + 101 + 102 + 103 + 104); /* SEQPACKET: all queued bytes */
	long t0 = io_thread_ticks();
	usleep(300 * 1000);
	assert_true(io_thread_ticks() - t0 <= 5); /* a busy loop would take ~30 */
	struct vnet_stats s = stats(f);
	assert_int_equal(s.rx_stalls, 1);
	assert_int_equal(s.rx_frames, 0);
	assert_int_equal(vdrv_used_idx(&f->rx), 0);
	/* Spurious kicks with nothing posted change nothing. */
	kick_rx(f);
	kick_rx(f);
	usleep(QUIET_MS * 1000);
	assert_int_equal(stats(f).rx_frames, 0);
	uint16_t h[5];
	for (unsigned int i = 0; i < 5; i++)
		h[i] = post_rx1(f, i, 2048);
	kick_rx(f);
	for (unsigned int i = 0; i < 5; i++) {
		expect_used(&f->rx, h[i], HDR + 100 + i);
		expect_frame(gp(f, rx_buf(i), HDR + 100 + i), 0, 0, 100 + i, 60 + i, 1);
	}
	s = stats(f);
	assert_int_equal(s.rx_frames, 5);
	assert_int_equal(s.rx_no_room + s.rx_oversize + s.rx_short + s.rx_bad_offload, 0);
}

/* A burst larger than the ring: every frame arrives once the driver keeps refilling. */
static void test_rx_burst(void **state)
{
	struct fx *f = *state;
	enum { N = 600 };
	unsigned int sent = 0, got = 0, posted = 0;
	while (got < N) {
		while (posted < got + 32 && posted < N) {
			post_rx1(f, posted % 32, 1600);
			posted++;
		}
		kick_rx(f);
		while (sent < N && sent < got + 40) {
			send_frame(f, 0, 0, 1000 + sent % 500, sent);
			sent++;
		}
		assert_true(wait_used(&f->rx, 1));
		while (vdrv_used_idx(&f->rx) != f->rx.used_seen) {
			struct vdrv_used u = vdrv_take_used(&f->rx);
			assert_int_equal(u.len, HDR + 1000 + got % 500);
			expect_frame(gp(f, rx_buf(got % 32), u.len), 0, 0, 1000 + got % 500, got,
				     1);
			got++;
		}
	}
	assert_int_equal(stats(f).rx_frames, N);
}

/* Offloads the driver did not accept never reach it (§5.1.6.4.1). */
static void test_rx_offload_filter(void **state)
{
	struct fx *f = *state;
	driver_init(f, NO_CSUM);
	uint16_t head = post_rx1(f, 0, 2048);
	kick_rx(f);
	send_frame(f, NEEDS_CSUM, 0, 100, 71);
	send_frame(f, NEEDS_CSUM, GSO_TCPV4, 100, 72);
	send_frame(f, DATA_VALID | 4, 0, 100, 73); /* flags cleared without GUEST_CSUM */
	expect_used(&f->rx, head, HDR + 100);
	expect_frame(gp(f, rx_buf(0), HDR + 100), 0, 0, 100, 73, 1);
	assert_int_equal(stats(f).rx_bad_offload, 2);

	/* GUEST_CSUM and TSO4, not TSO6. */
	driver_init(f, ~(1ULL << F_GUEST_TSO6));
	head = post_rx1(f, 1, 2048);
	uint16_t h2 = post_rx1(f, 2, 2048);
	kick_rx(f);
	send_frame(f, NEEDS_CSUM, GSO_TCPV6, 100, 74);
	send_frame(f, NEEDS_CSUM, GSO_UDP, 100, 75);
	send_frame(f, NEEDS_CSUM, GSO_TCPV4 | GSO_ECN, 100, 76);
	send_frame(f, NEEDS_CSUM, GSO_TCPV4, 100, 77);
	send_frame(f, NEEDS_CSUM | DATA_VALID | 4, 0, 100, 78);
	expect_used(&f->rx, head, HDR + 100);
	expect_frame(gp(f, rx_buf(1), HDR + 100), NEEDS_CSUM, GSO_TCPV4, 100, 77, 1);
	expect_used(&f->rx, h2, HDR + 100);
	expect_frame(gp(f, rx_buf(2), HDR + 100), NEEDS_CSUM | DATA_VALID, 0, 100, 78, 1);
	assert_int_equal(stats(f).rx_bad_offload, 5);
}

/* A malformed rx chain: DEVICE_NEEDS_RESET when a frame needs it; a reset recovers. */
static void test_rx_malformed(void **state)
{
	struct fx *f = *state;
	struct vdrv_buf d[1] = {{rx_buf(0), 0, true}}; /* an empty buffer */
	vdrv_post(&f->rx, d, 1);
	kick_rx(f);
	send_frame(f, 0, 0, 100, 81);
	assert_true(vdrv_wait_needs_reset(&f->rx, TIMEOUT_MS));
	assert_int_equal(vdrv_used_idx(&f->rx), 0);
	/* The other queue is not concerned until the driver resets. */
	driver_init(f, ALL_FEATURES);
	assert_false(needs_reset(f));
	uint16_t head = post_rx1(f, 1, 2048);
	kick_rx(f);
	send_frame(f, 0, 0, 50, 82);
	expect_used(&f->rx, head, HDR + 50);
	expect_frame(gp(f, rx_buf(1), HDR + 50), 0, 0, 50, 82, 1);
	assert_int_equal(stats(f).rx_reset, 1); /* the frame that met the bad chain */
}

/* ---- reset ---- */

static void test_reset_with_pending_frame(void **state)
{
	struct fx *f = *state;
	send_frame(f, 0, 0, 100, 91);
	WAIT_STAT(f, rx_stalls, 1);
	assert_int_equal(vdrv_reset(&f->rx), 0);
	assert_int_equal(stats(f).rx_reset, 1);
	driver_init(f, ALL_FEATURES);
	uint16_t head = post_rx1(f, 0, 2048);
	kick_rx(f);
	expect_quiet(&f->rx); /* the old frame is gone */
	send_frame(f, 0, 0, 200, 92);
	expect_used(&f->rx, head, HDR + 200);
	expect_frame(gp(f, rx_buf(0), HDR + 200), 0, 0, 200, 92, 1);

	/* MRG: a frame half written into held chains; after the reset nothing is published. */
	post_rx1(f, 1, 1000);
	kick_rx(f);
	send_frame(f, 0, 0, 2500, 93);
	WAIT_STAT(f, rx_stalls, 2);
	assert_int_equal(vdrv_reset(&f->rx), 0);
	uint8_t used[4 + 8 * QSIZE];
	memcpy(used, gp(f, RX_USED, sizeof(used)), sizeof(used));
	usleep(QUIET_MS * 1000);
	assert_memory_equal(used, gp(f, RX_USED, sizeof(used)), sizeof(used));
	assert_int_equal(stats(f).rx_reset, 2);

	/* Several resets and re-initialisations in a row; then traffic both ways. */
	for (unsigned int i = 0; i < 20; i++)
		driver_init(f, i % 2 ? NO_MRG : ALL_FEATURES);
	head = post_rx1(f, 2, 2048);
	kick_rx(f);
	send_frame(f, 0, 0, 300, 94);
	expect_used(&f->rx, head, HDR + 300);
	expect_frame(gp(f, rx_buf(2), HDR + 300), 0, 0, 300, 94, 1);
	head = post_tx1(f, 0, 300, 95);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 300, 95);
}

/* A reset while tx waits for the tap: the waiting chain is never returned afterwards. */
static void test_reset_with_blocked_tx(void **state)
{
	struct fx *f = *state;
	int sndbuf = 4096;
	assert_int_equal(setsockopt(f->probe, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	for (unsigned int i = 0; i < 30; i++)
		post_tx_small(f, i, 3000, 200 + i);
	kick_tx(f);
	WAIT_STAT(f, tx_blocked, 1);
	assert_int_equal(vdrv_reset(&f->rx), 0);
	uint8_t used[4 + 8 * QSIZE];
	memcpy(used, gp(f, TX_USED, sizeof(used)), sizeof(used));
	/* Drain what was sent: EPOLLOUT must not wake the reset device. */
	uint8_t *buf = malloc(8192);
	assert_non_null(buf);
	unsigned int got = 0;
	while (recv_frame(f, buf, 8192, QUIET_MS) > 0)
		got++;
	assert_true(got > 0 && got < 30);
	assert_memory_equal(used, gp(f, TX_USED, sizeof(used)), sizeof(used));
	free(buf);
	driver_init(f, ALL_FEATURES);
	uint16_t head = post_tx1(f, 0, 500, 250);
	kick_tx(f);
	expect_used(&f->tx, head, 0);
	expect_sent(f, 0, 500, 250);
}

/* Without EVENT_IDX the flags path is used for notifications and interrupts. */
static void test_no_event_idx(void **state)
{
	struct fx *f = *state;
	driver_init(f, ~(1ULL << VIRTIO_F_RING_EVENT_IDX));
	assert_false(f->rx.event_idx);
	for (unsigned int i = 0; i < 3; i++) {
		uint16_t head = post_tx1(f, i, 100, 300 + i);
		kick_tx(f);
		expect_used(&f->tx, head, 0);
		expect_sent(f, 0, 100, 300 + i);
		send_frame(f, 0, 0, 80, 310 + i);
		WAIT_STAT(f, rx_stalls, i + 1);
		head = post_rx1(f, i, 2048);
		kick_rx(f);
		expect_used(&f->rx, head, HDR + 80);
		expect_frame(gp(f, rx_buf(i), HDR + 80), 0, 0, 80, 310 + i, 1);
	}
	assert_true(vdrv_wait_irq(&f->rx, TIMEOUT_MS));
}

/* The VM goes away with frames pending both ways. */
static void test_destroy_while_running(void **state)
{
	struct fx *f = *state;
	for (unsigned int i = 0; i < 8; i++)
		send_frame(f, 0, 0, 500, i);
	for (unsigned int i = 0; i < 16; i++)
		post_tx1(f, i, 500, i);
	post_rx1(f, 0, 100);
	kick_tx(f);
	kick_rx(f);
	vnet_destroy(f->n);
	f->n = NULL;
}

/* ---- MAC addresses ---- */

static void test_mac_from_name(void **state)
{
	(void)state;
	uint8_t a[6], b[6], c[6];
	assert_int_equal(vnet_mac_from_name("vm0", a), 0);
	assert_int_equal(vnet_mac_from_name("vm0", b), 0);
	assert_memory_equal(a, b, 6);
	assert_int_equal(a[0], 0x52);
	assert_int_equal(a[1], 0x54);
	assert_int_equal(a[2], 0x00);
	assert_true(a[0] & 2);	/* locally administered */
	assert_false(a[0] & 1); /* unicast */
	assert_int_equal(vnet_mac_from_name("vm1", c), 0);
	assert_memory_not_equal(a, c, 6);
	/* Pinned: a MAC must not change between kvmini versions (DHCP leases, firewall rules). */
	const uint8_t pinned[6] = {0x52, 0x54, 0x00, 0xc5, 0x96, 0xd4};
	assert_memory_equal(a, pinned, 6);
	assert_int_equal(vnet_mac_from_name("", c), 0);
	assert_int_equal(c[0], 0x52);
	assert_int_equal(vnet_mac_from_name(NULL, c), -EINVAL);
}

static void test_parse_mac(void **state)
{
	(void)state;
	uint8_t m[6];
	assert_int_equal(vnet_parse_mac("52:54:00:ab:CD:ef", m), 0);
	const uint8_t want[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
	assert_memory_equal(m, want, 6);
	assert_int_equal(vnet_parse_mac("02:00:00:00:00:01", m), 0);
	const char *bad[] = {
		"",
		"52:54:00:ab:cd",
		"52:54:00:ab:cd:ef:01",
		"52:54:00:ab:cd:e",
		"52-54-00-ab-cd-ef",
		"52:54:00:ab:cd:eg",
		"5254.00ab.cdef.0",
		" 52:54:00:ab:cd:e",
		"52:54:00:ab:cd:ef ",
		"01:00:5e:00:00:01", /* multicast */
		"ff:ff:ff:ff:ff:ff", /* broadcast */
		"00:00:00:00:00:00",
		"+2:54:00:ab:cd:ef",
	};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(m, 0x99, 6);
		if (vnet_parse_mac(bad[i], m) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		for (unsigned int j = 0; j < 6; j++)
			assert_int_equal(m[j], 0x99);
	}
	assert_int_equal(vnet_parse_mac(NULL, m), -EINVAL);
}

/* ---- taps and vnet_create errors ---- */

static bool tun_usable(const char **why)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		*why = errno == ENOENT ? "/dev/net/tun does not exist here"
				       : "/dev/net/tun cannot be opened here";
		return false;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "kvmnp%d", (int)getpid() % 100000);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	bool ok = ioctl(fd, TUNSETIFF, &ifr) == 0;
	close(fd);
	if (!ok)
		*why = "no CAP_NET_ADMIN: cannot create taps";
	return ok;
}

static void tap_name(char *buf, size_t size, const char *tag)
{
	snprintf(buf, size, "kvm%s%d", tag, (int)getpid() % 100000);
}

static void test_open_tap_usage_errors(void **state)
{
	(void)state;
	struct vmerr e = {0};
	assert_int_equal(vnet_open_tap("0123456789abcdef", &e), -EINVAL); /* 16 > IFNAMSIZ-1 */
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	assert_string_equal(e.msg, "tap name '0123456789abcdef' is longer than 15 bytes");
	const char *bad[] = {"", "a/b", "tap:0", "tap%d", "a b", ".", ".."};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vmerr_clear(&e);
		assert_int_equal(vnet_open_tap(bad[i], &e), -EINVAL);
		assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	}
	vmerr_clear(&e);
	assert_int_equal(vnet_open_tap(NULL, &e), -EINVAL);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	/* vnet_create without a tap name or fd. */
	struct vdrv d;
	assert_int_equal(vdrv_init(&d, 1 << 20, 0), 0);
	struct logger lg;
	log_init(&lg, LOG_ERROR - 1, 2);
	struct vnet *n = (struct vnet *)&d; /* must be cleared */
	vmerr_clear(&e);
	struct vnet_config cfg = {0};
	assert_int_equal(vnet_create(&n, &cfg, -1, &d.gm, &lg, "net0", &e), -EINVAL);
	assert_null(n);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	/* A multicast MAC; the injected fd is closed on failure. */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	cfg = (struct vnet_config){.mac = {0x01, 0, 0x5e, 0, 0, 1}, .mac_set = true};
	vmerr_clear(&e);
	assert_true(vnet_create(&n, &cfg, sv[0], &d.gm, &lg, "net0", &e) < 0);
	assert_null(n);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	assert_int_equal(fcntl(sv[0], F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	close(sv[1]);
	vdrv_fini(&d);
}

/* Drop CAP_NET_ADMIN (this thread only). */
static int drop_net_admin(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	data[0].effective &= ~(1U << CAP_NET_ADMIN);
	return syscall(SYS_capset, &hdr, data) < 0 ? -1 : 0;
}

static void test_open_tap_errors(void **state)
{
	(void)state;
	const char *why = NULL;
	if (!tun_usable(&why))
		REQUIRE_OR_SKIP(why);
	char name[IFNAMSIZ];
	tap_name(name, sizeof(name), "t");
	struct vmerr e = {0};
	int fd = vnet_open_tap(name, &e);
	if (fd < 0)
		fail_msg("vnet_open_tap(%s): %s", name, e.msg);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
	assert_string_equal(ifr.ifr_name, name);
	assert_int_equal(ifr.ifr_flags & (IFF_TAP | IFF_TUN | IFF_NO_PI | IFF_VNET_HDR),
			 IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	int hdr = 0;
	assert_int_equal(ioctl(fd, TUNGETVNETHDRSZ, &hdr), 0);
	assert_int_equal(hdr, HDR);

	/* In use. */
	assert_int_equal(vnet_open_tap(name, &e), -EBUSY);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	char want[128];
	snprintf(want, sizeof(want), "tap %s is in use by another process", name);
	assert_string_equal(e.msg, want);
	close(fd);

	/* An interface that is not a tap. */
	vmerr_clear(&e);
	assert_int_equal(vnet_open_tap("lo", &e), -EINVAL);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	assert_string_equal(e.msg, "interface lo exists but is not a single-queue tap");

	/* No CAP_NET_ADMIN: a child drops it and may not create a tap. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (drop_net_admin() < 0)
			_exit(77);
		struct vmerr ce = {0};
		char cname[IFNAMSIZ];
		tap_name(cname, sizeof(cname), "p");
		int r = vnet_open_tap(cname, &ce);
		if (r != -EPERM)
			_exit(1);
		if (ce.status != KVMINI_EXIT_RESOURCE || !strstr(ce.msg, "need CAP_NET_ADMIN") ||
		    !strstr(ce.msg, cname))
			_exit(2);
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		REQUIRE_OR_SKIP("cannot drop CAP_NET_ADMIN in a child");
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* ioctl(SIOCETHTOOL) on interface `ifname` with `data`. */
static void ethtool(const char *ifname, void *data)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = data;
	int ret = ioctl(s, SIOCETHTOOL, &ifr);
	close(s);
	assert_int_equal(ret, 0);
}

/* Is the netdev feature called `feature` (as `ethtool -k` names it) active on `ifname`? */
static bool tap_feature(const char *ifname, const char *feature)
{
	struct ethtool_sset_info *info = calloc(1, sizeof(*info) + sizeof(uint32_t));
	assert_non_null(info);
	info->cmd = ETHTOOL_GSSET_INFO;
	info->sset_mask = 1ULL << ETH_SS_FEATURES;
	ethtool(ifname, info);
	uint32_t n = info->data[0];
	free(info);
	assert_true(n > 0 && n < 4096);
	struct ethtool_gstrings *str = calloc(1, sizeof(*str) + (size_t)n * ETH_GSTRING_LEN);
	assert_non_null(str);
	str->cmd = ETHTOOL_GSTRINGS;
	str->string_set = ETH_SS_FEATURES;
	str->len = n;
	ethtool(ifname, str);
	int idx = -1;
	for (uint32_t i = 0; i < n && idx < 0; i++)
		if (!strncmp((const char *)str->data + (size_t)i * ETH_GSTRING_LEN, feature,
			     ETH_GSTRING_LEN))
			idx = (int)i;
	free(str);
	assert_true(idx >= 0);
	uint32_t words = (n + 31) / 32;
	struct ethtool_gfeatures *gf =
		calloc(1, sizeof(*gf) + words * sizeof(struct ethtool_get_features_block));
	assert_non_null(gf);
	gf->cmd = ETHTOOL_GFEATURES;
	gf->size = words;
	ethtool(ifname, gf);
	bool on = gf->features[idx / 32].active & (1U << (idx % 32));
	free(gf);
	return on;
}

/* The tap's offloads (its "tx" is towards its fd, i.e. the guest) follow GUEST_CSUM/TSO4/TSO6. */
static void expect_offloads(const char *ifname, bool csum, bool tso4, bool tso6)
{
	assert_int_equal(tap_feature(ifname, "tx-checksum-ip-generic"), csum);
	assert_int_equal(tap_feature(ifname, "tx-tcp-segmentation"), tso4);
	assert_int_equal(tap_feature(ifname, "tx-tcp6-segmentation"), tso6);
}

/* /dev/net/tun missing: hidden by an empty tmpfs in a private mount namespace (a child). */
static void test_open_tap_no_tun(void **state)
{
	(void)state;
	struct stat st;
	if (stat("/dev/net/tun", &st) < 0 && errno == ENOENT) {
		struct vmerr e = {0};
		assert_int_equal(vnet_open_tap("kvmx0", &e), -ENOENT);
		assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
		assert_non_null(strstr(e.msg, "/dev/net/tun is missing"));
		return;
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", "/dev/net", "tmpfs", 0, NULL) < 0)
			_exit(77);
		struct vmerr e = {0};
		if (vnet_open_tap("kvmx0", &e) != -ENOENT)
			_exit(1);
		if (e.status != KVMINI_EXIT_RESOURCE || !strstr(e.msg, "/dev/net/tun is missing"))
			_exit(2);
		_exit(0);
	}
	int wst = 0;
	assert_int_equal(waitpid(pid, &wst, 0), pid);
	assert_true(WIFEXITED(wst));
	if (WEXITSTATUS(wst) == 77)
		REQUIRE_OR_SKIP("cannot hide /dev/net/tun (no mount namespace)");
	assert_int_equal(WEXITSTATUS(wst), 0);
}

/* A real tap: offloads follow the driver's features (TUNSETOFFLOAD); tx works. */
static void test_real_tap(void **state)
{
	(void)state;
	const char *why = NULL;
	if (!tun_usable(&why))
		REQUIRE_OR_SKIP(why);
	struct fx fl = {0};
	struct fx *f = &fl;
	f->peer = f->probe = -1;
	assert_int_equal(vdrv_init(&f->rx, MEM_SIZE, 0), 0);
	log_init(&f->lg, LOG_ERROR - 1, 2);
	char name[IFNAMSIZ];
	tap_name(name, sizeof(name), "r");
	struct vnet_config cfg = {.tap = name};
	struct vmerr e = {0};
	if (vnet_create(&f->n, &cfg, -1, &f->rx.gm, &f->lg, "net0", &e) < 0)
		fail_msg("vnet_create: %s", e.msg);
	f->t = vnet_transport(f->n);
	vdrv_attach(&f->rx, f->t);
	uint8_t mac[6], want[6];
	vnet_mac(f->n, mac);
	vnet_mac_from_name(name, want);
	assert_memory_equal(mac, want, 6); /* derived from the tap name */
	expect_offloads(name, false, false, false);
	const uint64_t variants[] = {ALL_FEATURES, NO_CSUM, ~(1ULL << F_GUEST_TSO6),
				     ~(1ULL << F_GUEST_TSO4), NO_MRG,
				     /* TSO without GUEST_CSUM (§5.1.3.1 forbids it): no offload */
				     ~(1ULL << F_GUEST_CSUM)};
	const bool csum[] = {true, false, true, true, true, false};
	const bool tso4[] = {true, false, true, false, true, false};
	const bool tso6[] = {true, false, false, true, true, false};
	for (unsigned int i = 0; i < 6; i++) {
		driver_init(f, variants[i]);
		assert_false(needs_reset(f));
		expect_offloads(name, csum[i], tso4[i], tso6[i]);
		/* The interface is down: the kernel drops the frame; the chain comes back. */
		uint16_t head = post_tx1(f, 0, 100, 400 + i);
		kick_tx(f);
		expect_used(&f->tx, head, 0);
	}
	driver_init(f, ALL_FEATURES);
	expect_offloads(name, true, true, true);
	assert_int_equal(vdrv_reset(&f->rx), 0);
	expect_offloads(name, false, false, false); /* off again after a reset */
	vnet_destroy(f->n);

	/* An injected tap fd works; one without IFF_VNET_HDR is refused. */
	int fd = vnet_open_tap(name, &e);
	assert_true(fd >= 0);
	assert_int_equal(vnet_create(&f->n, NULL, fd, &f->rx.gm, &f->lg, "net0", &e), 0);
	f->t = vnet_transport(f->n);
	vdrv_attach(&f->rx, f->t);
	driver_init(f, ALL_FEATURES);
	assert_false(needs_reset(f));
	vnet_destroy(f->n);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
	assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
	vmerr_clear(&e);
	f->n = NULL;
	assert_true(vnet_create(&f->n, NULL, fd, &f->rx.gm, &f->lg, "net0", &e) < 0);
	assert_null(f->n);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	assert_true(vdrv_canaries_ok(&f->rx));
	vdrv_fini(&f->rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_mac, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_offload_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_short_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_writable_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_eagain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_rate_limit, setup_pps, teardown),
		cmocka_unit_test_setup_teardown(test_rx_tx_dgram, setup_dgram, teardown),
		cmocka_unit_test_setup_teardown(test_rx_chain_too_small_for_header, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rx_chain_too_small_for_header_no_mrg,
						setup_no_mrg, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mrg_spanning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mrg_waits_for_more, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_mrg_ring_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_no_mrg_too_small, setup_no_mrg, teardown),
		cmocka_unit_test_setup_teardown(test_rx_oversize, setup_no_mrg, teardown),
		cmocka_unit_test_setup_teardown(test_rx_no_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_offload_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_with_pending_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_with_blocked_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_event_idx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_while_running, setup, teardown),
		cmocka_unit_test(test_mac_from_name),
		cmocka_unit_test(test_parse_mac),
		cmocka_unit_test(test_open_tap_usage_errors),
		cmocka_unit_test(test_open_tap_errors),
		cmocka_unit_test(test_open_tap_no_tun),
		cmocka_unit_test(test_real_tap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
