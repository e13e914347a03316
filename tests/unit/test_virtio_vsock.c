/* test_virtio_vsock: the virtio-vsock device driven through its registers, unix sockets as host. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/virtio_vsock.h"
#include "vdriver.h"

/* Spec values (virtio 1.2 §5.10), spelled out independently of devices/virtio_vsock.c. */
#define HDR	       44
#define OP_REQUEST     1
#define OP_RESPONSE    2
#define OP_RST	       3
#define OP_SHUTDOWN    4
#define OP_RW	       5
#define OP_CREDIT_UPD  6
#define OP_CREDIT_REQ  7
#define TYPE_STREAM    1
#define TYPE_SEQPACKET 2
#define SHUT_BOTH      3
#define GUEST_CID      3
#define HOST_CID       2

#define MEM_SIZE   (24ULL << 20)
#define QSIZE	   VSOCK_QUEUE_SIZE
#define RX_DESC	   0x0000ULL
#define RX_AVAIL   0x1000ULL
#define RX_USED	   0x2000ULL
#define TX_DESC	   0x4000ULL
#define TX_AVAIL   0x5000ULL
#define TX_USED	   0x6000ULL
#define EV_DESC	   0x8000ULL
#define EV_AVAIL   0x9000ULL
#define EV_USED	   0xa000ULL
#define RX_BUF	   0x100000ULL /* 8 KiB per slot: header at +0, payload at +64 */
#define RX_SLOT	   0x2000ULL
#define RX_SLOTS   128
#define RX_PAYLOAD 4096
#define TX_BUF	   0x400000ULL /* 80 KiB per slot */
#define TX_SLOT	   0x14000ULL
#define TX_SLOTS   128
#define READY_PORT 1024 /* the knock port the fixture's device is given */
#define TIMEOUT_MS 5000
#define QUIET_MS   100

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len, flags, buf_alloc, fwd_cnt;
	uint16_t type, op;
	uint8_t data[RX_PAYLOAD];
};

struct fx {
	struct vdrv rx, tx; /* queue 0 (rx) and, sharing its RAM, queue 1 (tx) */
	struct logger lg;
	struct vsock *v;
	struct virtio_mmio *t;
	char dir[64], path[96];
	uint16_t rx_slot_of[QSIZE]; /* rx chain head -> buffer slot */
	unsigned int rx_next, tx_next;
	uint32_t fwd_cnt; /* what the fake guest says it consumed */
};

/* ---- helpers ---- */

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static void wr32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static void wr16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void *gp(struct fx *f, uint64_t gpa, uint64_t len)
{
	void *p = vdrv_ptr(&f->rx, gpa, len);
	assert_non_null(p);
	return p;
}

static void init_ok(const struct vdrv *d, int ret)
{
	if (ret != 0)
		fail_msg("driver init: %s (%d)", d->why, ret);
}

/* Post `n` rx chains: a 44-byte header buffer and a 4 KiB payload buffer (as Linux 6.1 does). */
static void post_rx(struct fx *f, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t slot = RX_BUF + RX_SLOT * (f->rx_next % RX_SLOTS);
		struct vdrv_buf b[2] = {{slot, HDR, true}, {slot + 64, RX_PAYLOAD, true}};
		uint16_t head = vdrv_add(&f->rx, b, 2);
		f->rx_slot_of[head] = (uint16_t)(f->rx_next % RX_SLOTS);
		f->rx_next++;
	}
	vdrv_publish(&f->rx);
	vdrv_wr32(&f->rx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* Keep between 32 and 96 rx chains posted (the ring has room for 128 two-buffer chains). */
static void refill_rx(struct fx *f)
{
	if ((uint16_t)(f->rx_next - f->rx.used_seen) < 32)
		post_rx(f, 64);
}

/* Take the next packet the device gave the guest; false if none within `ms`. */
static bool recv_pkt_ms(struct fx *f, struct pkt *p, int ms)
{
	if (vdrv_wait_used(&f->rx, 1, ms) != 0)
		return false;
	struct vdrv_used u = vdrv_take_used(&f->rx);
	assert_true(u.id < QSIZE);
	assert_true(u.len >= HDR && u.len <= HDR + RX_PAYLOAD);
	uint64_t slot = RX_BUF + RX_SLOT * f->rx_slot_of[u.id];
	const uint8_t *h = gp(f, slot, HDR);
	p->src_cid = rd64(h);
	p->dst_cid = rd64(h + 8);
	p->src_port = rd32(h + 16);
	p->dst_port = rd32(h + 20);
	p->len = rd32(h + 24);
	p->type = rd16(h + 28);
	p->op = rd16(h + 30);
	p->flags = rd32(h + 32);
	p->buf_alloc = rd32(h + 36);
	p->fwd_cnt = rd32(h + 40);
	assert_int_equal(p->len, u.len - HDR);
	memcpy(p->data, gp(f, slot + 64, RX_PAYLOAD), p->len);
	return true;
}

static void recv_pkt(struct fx *f, struct pkt *p)
{
	if (!recv_pkt_ms(f, p, TIMEOUT_MS))
		fail_msg("no packet from the device");
	assert_int_equal(p->src_cid, HOST_CID);
	assert_int_equal(p->dst_cid, GUEST_CID);
	assert_int_equal(p->type, TYPE_STREAM);
}

/* Fill a header in guest memory at `gpa`. */
static void put_hdr(struct fx *f, uint64_t gpa, uint64_t src_cid, uint32_t src_port,
		    uint32_t dst_port, uint16_t type, uint16_t op, uint32_t flags, uint32_t len,
		    uint32_t buf_alloc, uint32_t fwd_cnt)
{
	uint8_t *h = gp(f, gpa, HDR);
	memset(h, 0, HDR);
	wr64(h, src_cid);
	wr64(h + 8, HOST_CID);
	wr32(h + 16, src_port);
	wr32(h + 20, dst_port);
	wr32(h + 24, len);
	wr16(h + 28, type);
	wr16(h + 30, op);
	wr32(h + 32, flags);
	wr32(h + 36, buf_alloc);
	wr32(h + 40, fwd_cnt);
}

/* Queue a tx packet (header and payload in two buffers) without kicking. `chain_len` is how
 * many payload bytes the chain really has (may differ from `len` to test the device). */
static void add_tx_raw(struct fx *f, uint64_t src_cid, uint32_t src_port, uint32_t dst_port,
		       uint16_t type, uint16_t op, uint32_t flags, const void *data, uint32_t len,
		       uint32_t chain_len, uint32_t buf_alloc)
{
	uint64_t slot = TX_BUF + TX_SLOT * (f->tx_next++ % TX_SLOTS);
	put_hdr(f, slot, src_cid, src_port, dst_port, type, op, flags, len, buf_alloc, f->fwd_cnt);
	struct vdrv_buf b[2] = {{slot, HDR, false}, {slot + 64, chain_len, false}};
	if (chain_len && data)
		memcpy(gp(f, slot + 64, chain_len), data, chain_len < len ? chain_len : len);
	vdrv_add(&f->tx, b, chain_len ? 2 : 1);
}

static void kick_tx(struct fx *f)
{
	vdrv_publish(&f->tx);
	vdrv_wr32(&f->rx, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
}

/* Send one well-formed packet from the guest and wait until the device took it. */
static void send_pkt(struct fx *f, uint32_t src_port, uint32_t dst_port, uint16_t op,
		     uint32_t flags, const void *data, uint32_t len)
{
	add_tx_raw(f, GUEST_CID, src_port, dst_port, TYPE_STREAM, op, flags, data, len, len,
		   256 << 10);
	kick_tx(f);
	assert_int_equal(vdrv_wait_used(&f->tx, 1, TIMEOUT_MS), 0);
	struct vdrv_used u = vdrv_take_used(&f->tx);
	assert_int_equal(u.len, 0);
}

static int uds_connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int uds_listen(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* Read exactly `len` bytes (within TIMEOUT_MS) from a host socket. */
static void read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
		ssize_t r = read(fd, (uint8_t *)buf + got, len - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* Does the host socket reach EOF (or a reset) within TIMEOUT_MS? */
static bool host_sees_eof(int fd)
{
	uint8_t b[256];
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, TIMEOUT_MS) != 1)
			return false;
		ssize_t r = read(fd, b, sizeof(b));
		if (r <= 0)
			return true;
	}
}

/* Is nothing readable on `fd` for QUIET_MS? */
static bool host_quiet(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, QUIET_MS) == 0;
}

static void stats(struct fx *f, struct vsock_stats *s)
{
	vsock_get_stats(f->v, s);
}

/* ---- fixture ---- */

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	assert_int_equal(vdrv_init(&f->rx, MEM_SIZE, 0), 0);
	log_init(&f->lg, LOG_ERROR - 1, 2);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kvmini-vsock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	struct vsock_config cfg = {.cid = GUEST_CID, .uds_path = f->path, .ready_port = READY_PORT};
	struct vmerr e = {0};
	if (vsock_create(&f->v, &cfg, &f->rx.gm, &f->lg, "vsock0", &e) < 0) {
		print_error("vsock_create: %s\n", e.msg);
		return -1;
	}
	f->t = vsock_transport(f->v);
	vdrv_attach(&f->rx, f->t);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600); /* whatever the umask */
	struct vdrv *d = &f->rx;
	uint64_t feat;
	init_ok(d, vdrv_negotiate(d, 19, ~0ULL, &feat));
	bool eidx = feat & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	const uint64_t ring[3][3] = {{RX_DESC, RX_AVAIL, RX_USED},
				     {TX_DESC, TX_AVAIL, TX_USED},
				     {EV_DESC, EV_AVAIL, EV_USED}};
	for (unsigned int q = 0; q < 3; q++)
		init_ok(d, vdrv_setup_queue(d, q, QSIZE, ring[q][0], ring[q][1], ring[q][2], eidx));
	vdrv_use_rings(d, QSIZE, RX_DESC, RX_AVAIL, RX_USED, eidx);
	f->tx = f->rx;
	vdrv_use_rings(&f->tx, QSIZE, TX_DESC, TX_AVAIL, TX_USED, eidx);
	init_ok(d, vdrv_driver_ok(d));
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	vsock_destroy(f->v);
	struct stat st;
	assert_int_not_equal(stat(f->path, &st), 0); /* the device removed its socket */
	assert_true(vdrv_canaries_ok(&f->rx));
	vdrv_fini(&f->rx);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A host client connects to guest port `port`; the guest accepts. Returns the host socket and
 * the host-side port in *hport. */
static int host_connect(struct fx *f, uint32_t port, uint32_t guest_buf, uint32_t *hport)
{
	int fd = uds_connect(f->path);
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	assert_int_equal(write(fd, line, (size_t)n), n);
	struct pkt p;
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_REQUEST);
	assert_int_equal(p.dst_port, port);
	assert_true(p.src_port >= VSOCK_FIRST_LOCAL_PORT);
	assert_int_equal(p.buf_alloc, VSOCK_BUF_ALLOC);
	add_tx_raw(f, GUEST_CID, port, p.src_port, TYPE_STREAM, OP_RESPONSE, 0, NULL, 0, 0,
		   guest_buf);
	kick_tx(f);
	assert_int_equal(vdrv_wait_used(&f->tx, 1, TIMEOUT_MS), 0);
	vdrv_take_used(&f->tx);
	char ok[32];
	n = snprintf(ok, sizeof(ok), "OK %u\n", p.src_port);
	char got[32] = {0};
	read_exact(fd, got, (size_t)n);
	assert_string_equal(got, ok);
	*hport = p.src_port;
	return fd;
}

/* ---- tests ---- */

static void test_identity(void **state)
{
	struct fx *f = *state;
	assert_int_equal(vdrv_rd32(&f->rx, VIRTIO_MMIO_DEVICE_ID), 19);
	assert_int_equal(vdrv_rd32(&f->rx, VIRTIO_MMIO_CONFIG), GUEST_CID);
	assert_int_equal(vdrv_rd32(&f->rx, VIRTIO_MMIO_CONFIG + 4), 0);
	assert_int_equal(vsock_cid(f->v), GUEST_CID);
	/* Only VERSION_1 and EVENT_IDX: stream sockets, no SEQPACKET. */
	assert_int_equal(vdrv_device_features(&f->rx) & 0xffffffffULL,
			 1ULL << VIRTIO_F_RING_EVENT_IDX);
}

static void test_host_to_guest_listener(void **state)
{
	struct fx *f = *state;
	post_rx(f, 16);
	uint32_t hport;
	int fd = host_connect(f, 1234, 256 << 10, &hport);
	/* host -> guest */
	assert_int_equal(write(fd, "hello", 5), 5);
	struct pkt p;
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RW);
	assert_int_equal(p.src_port, hport);
	assert_int_equal(p.dst_port, 1234);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "hello", 5);
	/* guest -> host */
	send_pkt(f, 1234, hport, OP_RW, 0, "world!", 6);
	char buf[8];
	read_exact(fd, buf, 6);
	assert_memory_equal(buf, "world!", 6);
	/* The guest closes: the host sees EOF, the guest gets RST. */
	send_pkt(f, 1234, hport, OP_SHUTDOWN, SHUT_BOTH, NULL, 0);
	assert_true(host_sees_eof(fd));
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST);
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.host_connects, 1);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.bad_packets, 0);
	close(fd);
}

static void test_guest_to_host_listener(void **state)
{
	struct fx *f = *state;
	post_rx(f, 16);
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_5000", f->path);
	int lfd = uds_listen(lpath);
	send_pkt(f, 40000, 5000, OP_REQUEST, 0, NULL, 0);
	struct pkt p;
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RESPONSE);
	assert_int_equal(p.src_port, 5000);
	assert_int_equal(p.dst_port, 40000);
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	send_pkt(f, 40000, 5000, OP_RW, 0, "ping", 4);
	char buf[4];
	read_exact(fd, buf, 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(write(fd, "pong", 4), 4);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RW);
	assert_memory_equal(p.data, "pong", 4);
	/* The host program hangs up: SHUTDOWN(both), the guest answers RST. */
	close(fd);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_SHUTDOWN);
	assert_int_equal(p.flags, SHUT_BOTH);
	send_pkt(f, 40000, 5000, OP_RST, 0, NULL, 0);
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.guest_connects, 1);
	assert_int_equal(s.closed, 1);
	/* No listener on another port: RST. */
	send_pkt(f, 40001, 5001, OP_REQUEST, 0, NULL, 0);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST);
	assert_int_equal(p.src_port, 5001);
	assert_int_equal(p.dst_port, 40001);
	close(lfd);
	unlink(lpath);
}

/* The guest connecting to the ready port is a knock: RST, the ready eventfd, the counter; the
 * listener at "PATH_1024" is never tried. */
static void test_ready_knock(void **state)
{
	struct fx *f = *state;
	post_rx(f, 16);
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_%u", f->path, READY_PORT);
	int lfd = uds_listen(lpath);
	assert_int_equal(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
	int rfd = vsock_ready_fd(f->v);
	assert_true(rfd >= 0);
	struct pollfd p = {.fd = rfd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0); /* no knock yet */
	for (unsigned int i = 0; i < 2; i++) {
		send_pkt(f, 40000 + i, READY_PORT, OP_REQUEST, 0, NULL, 0);
		struct pkt r;
		recv_pkt(f, &r);
		assert_int_equal(r.op, OP_RST);
		assert_int_equal(r.src_port, READY_PORT);
		assert_int_equal(r.dst_port, 40000 + i);
	}
	assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
	uint64_t n = 0;
	assert_int_equal(read(rfd, &n, sizeof(n)), (ssize_t)sizeof(n));
	assert_int_equal(n, 2);
	assert_int_equal(poll(&p, 1, 0), 0); /* drained */
	assert_true(accept(lfd, NULL, NULL) < 0 && errno == EAGAIN);
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.ready_knocks, 2);
	assert_int_equal(s.guest_connects, 0);
	assert_int_equal(s.bad_packets, 0);
	close(lfd);
	unlink(lpath);
}

static void test_embedded_connect(void **state)
{
	struct fx *f = *state;
	post_rx(f, 8);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(vsock_connect(f->v, sv[0]), 0);
	assert_int_equal(write(sv[1], "CONNECT 77\n", 11), 11);
	struct pkt p;
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_REQUEST);
	assert_int_equal(p.dst_port, 77);
	/* The guest has no listener: RST, and the host end is closed. */
	send_pkt(f, 77, p.src_port, OP_RST, 0, NULL, 0);
	assert_true(host_sees_eof(sv[1]));
	close(sv[1]);
}

static void test_bad_handshake(void **state)
{
	struct fx *f = *state;
	post_rx(f, 8);
	const char *bad[] = {"HELLO 1\n", "CONNECT\n", "CONNECT 99999999999\n", "CONNECT 12x\n",
			     "CONNECT 1234567890123456789012345678901234567890"};
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = uds_connect(f->path);
		assert_int_equal(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		assert_true(host_sees_eof(fd));
		close(fd);
	}
	struct pkt p;
	assert_false(recv_pkt_ms(f, &p, QUIET_MS));
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.bad_handshake, 5);
	/* A line split over writes, with data after it, still works. */
	int fd = uds_connect(f->path);
	assert_int_equal(write(fd, "CONN", 4), 4);
	usleep(20000);
	assert_int_equal(write(fd, "ECT 9\nearly", 11), 11);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_REQUEST);
	assert_int_equal(p.dst_port, 9);
	add_tx_raw(f, GUEST_CID, 9, p.src_port, TYPE_STREAM, OP_RESPONSE, 0, NULL, 0, 0, 4096);
	kick_tx(f);
	char ok[32] = {0};
	int n = snprintf(ok, sizeof(ok), "OK %u\n", p.src_port);
	char got[32] = {0};
	read_exact(fd, got, (size_t)n);
	assert_string_equal(got, ok);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RW);
	assert_int_equal(p.len, 5);
	assert_memory_equal(p.data, "early", 5);
	close(fd);
}

static void test_bad_packets_reset(void **state)
{
	struct fx *f = *state;
	post_rx(f, 32);
	struct pkt p;
	uint32_t hport;
	/* An unknown op on a live connection: RST, host socket closed. */
	int fd = host_connect(f, 10, 4096, &hport);
	send_pkt(f, 10, hport, 99, 0, NULL, 0);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST);
	assert_int_equal(p.src_port, hport);
	assert_true(host_sees_eof(fd));
	close(fd);
	/* len beyond the chain's buffer. */
	fd = host_connect(f, 11, 4096, &hport);
	add_tx_raw(f, GUEST_CID, 11, hport, TYPE_STREAM, OP_RW, 0, "abc", 4000, 3, 4096);
	kick_tx(f);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST);
	assert_true(host_sees_eof(fd));
	close(fd);
	/* len above the largest payload, with a chain that big. */
	fd = host_connect(f, 12, 4096, &hport);
	add_tx_raw(f, GUEST_CID, 12, hport, TYPE_STREAM, OP_RW, 0, NULL, 70000, 70000, 4096);
	kick_tx(f);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST);
	assert_true(host_sees_eof(fd));
	close(fd);
	/* SEQPACKET was not offered. */
	add_tx_raw(f, GUEST_CID, 13, 500, TYPE_SEQPACKET, OP_REQUEST, 0, NULL, 0, 0, 4096);
	kick_tx(f);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST);
	/* Data for a connection that does not exist: RST with its ports. */
	send_pkt(f, 600, 700, OP_RW, 0, "x", 1);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST);
	assert_int_equal(p.src_port, 700);
	assert_int_equal(p.dst_port, 600);
	/* An RST for nothing is not answered; a wrong CID is dropped silently. */
	send_pkt(f, 600, 700, OP_RST, 0, NULL, 0);
	add_tx_raw(f, 9, 1, 2, TYPE_STREAM, OP_REQUEST, 0, NULL, 0, 0, 4096);
	kick_tx(f);
	assert_false(recv_pkt_ms(f, &p, QUIET_MS));
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.bad_packets, 5);
	assert_int_equal(s.bad_cid, 1);
	assert_int_equal(vdrv_rd32(&f->rx, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET,
			 0);
}

static void test_malformed_tx_chain(void **state)
{
	struct fx *f = *state;
	/* A chain shorter than the header. */
	uint64_t slot = TX_BUF;
	struct vdrv_buf b = {slot, 20, false};
	vdrv_add(&f->tx, &b, 1);
	kick_tx(f);
	assert_true(vdrv_wait_needs_reset(&f->rx, TIMEOUT_MS));
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.needs_reset, 1);
}

static void test_malformed_tx_writable(void **state)
{
	struct fx *f = *state;
	put_hdr(f, TX_BUF, GUEST_CID, 1, 2, TYPE_STREAM, OP_REQUEST, 0, 0, 4096, 0);
	struct vdrv_buf b[2] = {{TX_BUF, HDR, false}, {TX_BUF + 64, 64, true}};
	vdrv_add(&f->tx, b, 2);
	kick_tx(f);
	assert_true(vdrv_wait_needs_reset(&f->rx, TIMEOUT_MS));
}

static void test_malformed_rx_chain(void **state)
{
	struct fx *f = *state;
	struct vdrv_buf b[2] = {{RX_BUF, HDR, false}, {RX_BUF + 64, 64, true}};
	vdrv_add(&f->rx, b, 2);
	vdrv_publish(&f->rx);
	vdrv_wr32(&f->rx, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	/* The device looks at rx chains only when it has something to send. */
	send_pkt(f, 1, 2, OP_REQUEST, 0, NULL, 0);
	assert_true(vdrv_wait_needs_reset(&f->rx, TIMEOUT_MS));
}

/* The guest gives little credit: the device sends no more than that, then stops reading the
 * host socket (the host writer blocks), and resumes on CREDIT_UPDATE. */
static void test_host_to_guest_credit(void **state)
{
	struct fx *f = *state;
	post_rx(f, 64);
	uint32_t hport;
	int fd = host_connect(f, 20, 10000, &hport);
	static uint8_t big[100000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + i / 300);
	int fl = fcntl(fd, F_GETFL);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
	ssize_t wrote = write(fd, big, sizeof(big));
	assert_true(wrote > 10000);
	uint32_t got = 0;
	struct pkt p;
	static uint8_t seen[100000];
	while (got < 10000) {
		recv_pkt(f, &p);
		assert_int_equal(p.op, OP_RW);
		memcpy(seen + got, p.data, p.len);
		got += p.len;
	}
	assert_int_equal(got, 10000);
	assert_false(recv_pkt_ms(f, &p, QUIET_MS)); /* no credit: nothing more */
	/* Credit values that would wrap: a fwd_cnt ahead of what was sent gives no credit. */
	f->fwd_cnt = 50000;
	send_pkt(f, 20, hport, OP_CREDIT_UPD, 0, NULL, 0);
	assert_false(recv_pkt_ms(f, &p, QUIET_MS));
	/* A true update: the rest flows. */
	f->fwd_cnt = 10000;
	add_tx_raw(f, GUEST_CID, 20, hport, TYPE_STREAM, OP_CREDIT_UPD, 0, NULL, 0, 0, 1 << 20);
	kick_tx(f);
	while (got < (uint32_t)wrote) {
		recv_pkt(f, &p);
		assert_int_equal(p.op, OP_RW);
		memcpy(seen + got, p.data, p.len);
		got += p.len;
		refill_rx(f);
	}
	assert_memory_equal(seen, big, (size_t)wrote);
	/* CREDIT_REQUEST is answered with CREDIT_UPDATE carrying the counters. */
	send_pkt(f, 20, hport, OP_RW, 0, "abcd", 4);
	send_pkt(f, 20, hport, OP_CREDIT_REQ, 0, NULL, 0);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_CREDIT_UPD);
	assert_int_equal(p.buf_alloc, VSOCK_BUF_ALLOC);
	assert_int_equal(p.fwd_cnt, 4);
	close(fd);
}

/* The host never reads: the device buffers at most VSOCK_BUF_ALLOC, and a guest that ignores
 * the credit gets RST instead of more memory. */
static void test_guest_to_host_bounded(void **state)
{
	struct fx *f = *state;
	post_rx(f, 64);
	uint32_t hport;
	int fd = host_connect(f, 30, 4096, &hport);
	static uint8_t chunk[65536];
	memset(chunk, 0x5a, sizeof(chunk));
	struct pkt p;
	bool reset = false;
	unsigned int sent;
	for (sent = 0; sent < 200 && !reset; sent++) {
		send_pkt(f, 30, hport, OP_RW, 0, chunk, sizeof(chunk));
		while (recv_pkt_ms(f, &p, 0)) {
			if (p.op == OP_RST)
				reset = true;
		}
	}
	if (!reset && recv_pkt_ms(f, &p, TIMEOUT_MS))
		reset = p.op == OP_RST;
	assert_true(reset);
	/* The kernel socket buffer plus VSOCK_BUF_ALLOC, then RST: a few MiB at most. */
	assert_true(sent < 100);
	struct vsock_stats s;
	stats(f, &s);
	assert_true(s.bad_packets >= 1);
	close(fd);
}

/* 10,000 connection attempts to a port nobody listens on, with rx buffers posted in batches,
 * and then without any: the device stops taking tx packets instead of queueing RSTs. */
static void test_connection_flood(void **state)
{
	struct fx *f = *state;
	struct pkt p;
	unsigned int answered = 0;
	for (unsigned int i = 0; i < 10000; i += 100) {
		post_rx(f, 100);
		for (unsigned int j = 0; j < 100; j++)
			add_tx_raw(f, GUEST_CID, 10000 + i + j, 9999, TYPE_STREAM, OP_REQUEST, 0,
				   NULL, 0, 0, 4096);
		kick_tx(f);
		assert_int_equal(vdrv_wait_used(&f->tx, 100, TIMEOUT_MS), 0);
		for (unsigned int j = 0; j < 100; j++)
			vdrv_take_used(&f->tx);
		for (unsigned int j = 0; j < 100; j++) {
			recv_pkt(f, &p);
			assert_int_equal(p.op, OP_RST);
			assert_int_equal(p.dst_port, 10000 + i + j);
			answered++;
		}
	}
	assert_int_equal(answered, 10000);
	/* No rx buffers: 200 more requests; the device takes a bounded number. */
	for (unsigned int j = 0; j < 200; j++)
		add_tx_raw(f, GUEST_CID, 30000 + j, 9999, TYPE_STREAM, OP_REQUEST, 0, NULL, 0, 0,
			   4096);
	kick_tx(f);
	usleep(QUIET_MS * 1000);
	uint16_t taken = (uint16_t)(vdrv_used_idx(&f->tx) - f->tx.used_seen);
	assert_true(taken >= 1 && taken <= 64 + 1);
	/* Buffers again: everything is answered. */
	for (unsigned int k = 0; k < 200; k++) {
		if (k % 50 == 0)
			post_rx(f, 50);
		recv_pkt(f, &p);
		assert_int_equal(p.op, OP_RST);
	}
	assert_int_equal(vdrv_wait_used(&f->tx, 200, TIMEOUT_MS), 0);
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.refused, 10200);
}

/* More connections than VSOCK_MAX_CONNS: the rest get RST, and the device keeps working. */
static void test_connection_limit(void **state)
{
	struct fx *f = *state;
	char lpath[128];
	snprintf(lpath, sizeof(lpath), "%s_6000", f->path);
	int lfd = uds_listen(lpath);
	assert_int_equal(fcntl(lfd, F_SETFL, O_NONBLOCK), 0);
	struct pkt p;
	unsigned int ok = 0, rst = 0;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS + 20; i++) {
		refill_rx(f);
		send_pkt(f, 20000 + i, 6000, OP_REQUEST, 0, NULL, 0);
		recv_pkt(f, &p);
		if (p.op == OP_RESPONSE)
			ok++;
		else if (p.op == OP_RST)
			rst++;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (fd >= 0)
			close(fd); /* the host side hangs up at once */
		while (recv_pkt_ms(f, &p, 0))
			;
	}
	assert_true(ok >= 20);
	assert_true(rst >= 20); /* the host side's closes wait for the guest's RST: slots stay */
	assert_int_equal(ok + rst, VSOCK_MAX_CONNS + 20);
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.conn_limit, rst);
	close(lfd);
	unlink(lpath);
}

/* The driver rewrites a live descriptor table with garbage: the device never crashes or writes
 * outside guest RAM; a malformed chain stops it with NEEDS_RESET. */
static void test_live_queue_rewrite(void **state)
{
	struct fx *f = *state;
	post_rx(f, 32);
	uint32_t hport;
	int fd = host_connect(f, 40, 1 << 20, &hport);
	uint8_t *desc = gp(f, TX_DESC, 16 * QSIZE);
	unsigned int seed = 12345;
	for (unsigned int round = 0; round < 50; round++) {
		add_tx_raw(f, GUEST_CID, 40, hport, TYPE_STREAM, OP_RW, 0, "data", 4, 4, 1 << 20);
		for (unsigned int i = 0; i < 16 * QSIZE; i++) {
			seed = seed * 1103515245 + 12345;
			if ((seed >> 16) % 7 == 0)
				desc[i] = (uint8_t)(seed >> 8);
		}
		kick_tx(f);
		if (write(fd, "x", 1) != 1)
			break;
		usleep(1000);
	}
	usleep(QUIET_MS * 1000);
	assert_true(vdrv_canaries_ok(&f->rx));
	close(fd);
}

static void test_reset_closes_connections(void **state)
{
	struct fx *f = *state;
	post_rx(f, 8);
	uint32_t hport;
	int fd = host_connect(f, 50, 4096, &hport);
	assert_int_equal(vdrv_reset(&f->rx), 0);
	assert_true(host_sees_eof(fd));
	close(fd);
	/* A host client while no driver runs is closed at once. */
	fd = uds_connect(f->path);
	assert_int_equal(write(fd, "CONNECT 50\n", 11), 11);
	assert_true(host_sees_eof(fd));
	close(fd);
}

static void test_pause(void **state)
{
	struct fx *f = *state;
	post_rx(f, 8);
	uint32_t hport;
	int fd = host_connect(f, 60, 4096, &hport);
	vsock_pause(f->v, true);
	assert_int_equal(write(fd, "later", 5), 5);
	struct pkt p;
	assert_false(recv_pkt_ms(f, &p, QUIET_MS));
	vsock_pause(f->v, false);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RW);
	assert_memory_equal(p.data, "later", 5);
	assert_true(host_quiet(fd));
	close(fd);
}

static void test_timeouts(void **state)
{
	struct fx *f = *state;
	post_rx(f, 8);
	/* The guest never answers a REQUEST: the client is closed after VSOCK_CONNECT_MS. */
	int fd = uds_connect(f->path);
	assert_int_equal(write(fd, "CONNECT 70\n", 11), 11);
	struct pkt p;
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_REQUEST);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_true(host_sees_eof(fd));
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true(b.tv_sec - a.tv_sec >= 1);
	recv_pkt(f, &p);
	assert_int_equal(p.op, OP_RST); /* the guest learns the attempt is over */
	close(fd);
	struct vsock_stats s;
	stats(f, &s);
	assert_int_equal(s.timeouts, 1);
}

/* ---- set-up errors ---- */

static void test_create_errors(void **state)
{
	struct vdrv d = {0};
	assert_int_equal(vdrv_init(&d, 1 << 20, 0), 0);
	struct logger lg;
	log_init(&lg, LOG_ERROR - 1, 2);
	struct vsock *v;
	struct vmerr e = {0};
	struct vsock_config cfg = {.cid = 2};
	assert_true(vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "CID"));
	cfg.cid = 0xffffffffULL;
	assert_true(vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e) < 0);
	/* Without a ready port there is no ready eventfd. */
	cfg.cid = 3;
	assert_int_equal(vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e), 0);
	assert_int_equal(vsock_ready_fd(v), -1);
	vsock_destroy(v);

	char dir[] = "/tmp/kvmini-vsock-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128];
	snprintf(path, sizeof(path), "%s/file", dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	cfg.cid = 3;
	cfg.uds_path = path;
	memset(&e, 0, sizeof(e));
	assert_true(vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	assert_non_null(strstr(e.msg, "not a socket"));
	unlink(path);
	/* A live socket is in use; a stale one is replaced. */
	int lfd = uds_listen(path);
	memset(&e, 0, sizeof(e));
	assert_true(vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e) < 0);
	assert_non_null(strstr(e.msg, "in use"));
	close(lfd);
	assert_int_equal(vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e), 0);
	vsock_destroy(v);
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	cfg.uds_path = longp;
	memset(&e, 0, sizeof(e));
	assert_true(vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	rmdir(dir);
	vdrv_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_host_to_guest_listener, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_guest_to_host_listener, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ready_knock, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_embedded_connect, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_handshake, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_packets_reset, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_tx_chain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_tx_writable, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_rx_chain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_host_to_guest_credit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_guest_to_host_bounded, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_connection_flood, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_live_queue_rewrite, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reset_closes_connections, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_pause, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_timeouts, fx_setup, fx_teardown),
		cmocka_unit_test(test_create_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
