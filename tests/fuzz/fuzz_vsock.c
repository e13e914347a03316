/* fuzz_vsock: guest-written vsock packets and rings, and host clients, against virtio-vsock. */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kvmini/virtio_vsock.h"
#include "kvmini/virtq.h"
#include "fuzz_common.h"
#include "vdriver.h"

/*
 * Input: a 4-byte header, then packets.
 *   u8 flags    bit 0 refuse EVENT_IDX, bit 1 post no rx buffers, bit 2 scribble over the tx
 *               descriptor table after posting, bit 3 host clients send their CONNECT lines
 *   u8 clients  host clients connecting to the device's socket (% 4), each to port 1024 + i
 *   u8 nrx      rx chains posted (% 64)
 *   u8 pad
 *   packets     {u8 shape, 44-byte header, le16 n, n bytes} until the input ends (at most 48)
 *               shape % 4: 0 header and payload in two buffers, 1 in one, 2 a short header,
 *               3 a device-writable buffer after the header
 * The harness posts them on the tx queue, kicks both queues, waits (bounded) for the device,
 * then resets it through Status and destroys it: it must never crash or touch RAM outside
 * the buffers (canaries), and the device must always take the reset.
 */
#define RAM_SIZE 0x80000ULL
#define QSIZE	 64
#define RX_DESC	 0x0000ULL
#define RX_AVAIL 0x1000ULL
#define RX_USED	 0x2000ULL
#define TX_DESC	 0x3000ULL
#define TX_AVAIL 0x4000ULL
#define TX_USED	 0x5000ULL
#define EV_DESC	 0x6000ULL
#define EV_AVAIL 0x7000ULL
#define EV_USED	 0x8000ULL
#define RX_BUF	 0x10000ULL /* 64 x 1 KiB */
#define TX_BUF	 0x20000ULL /* 48 x 4 KiB */
#define MAX_PKTS 48
#define WAIT_MS	 30

static int host_client(const char *path, uint32_t port, bool send_line)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	if (send_line) {
		char line[32];
		int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
		if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		}
		if (send(fd, "data from the host", 18, MSG_NOSIGNAL) < 0) {
		}
	}
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 4)
		return 0;
	uint8_t flags = data[0];
	unsigned int clients = data[1] % 4, nrx = data[2] % 64;
	data += 4;
	len -= 4;

	struct vdrv d = {0};
	if (vdrv_init(&d, RAM_SIZE, 0) < 0)
		return 0;
	struct logger lg;
	log_init(&lg, LOG_ERROR - 1, 2);
	char path[64];
	snprintf(path, sizeof(path), "/tmp/kvmini-fuzz-vsock-%d.sock", (int)getpid());
	struct vsock_config cfg = {.cid = 3, .uds_path = path};
	struct vsock *v = NULL;
	struct vmerr e = {0};
	if (vsock_create(&v, &cfg, &d.gm, &lg, "vsock0", &e) < 0) {
		vdrv_fini(&d);
		return 0;
	}
	vdrv_attach(&d, vsock_transport(v));
	uint64_t want = flags & 1 ? ~(1ULL << VIRTIO_F_RING_EVENT_IDX) : ~0ULL, feat;
	if (vdrv_negotiate(&d, 19, want, &feat) < 0)
		abort();
	bool eidx = feat & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	const uint64_t ring[3][3] = {{RX_DESC, RX_AVAIL, RX_USED},
				     {TX_DESC, TX_AVAIL, TX_USED},
				     {EV_DESC, EV_AVAIL, EV_USED}};
	for (unsigned int q = 0; q < 3; q++)
		if (vdrv_setup_queue(&d, q, QSIZE, ring[q][0], ring[q][1], ring[q][2], eidx) < 0)
			abort();
	struct vdrv rx = d, tx = d;
	vdrv_use_rings(&rx, QSIZE, RX_DESC, RX_AVAIL, RX_USED, eidx);
	vdrv_use_rings(&tx, QSIZE, TX_DESC, TX_AVAIL, TX_USED, eidx);
	if (vdrv_driver_ok(&d) < 0)
		abort();

	int cfd[4];
	for (unsigned int i = 0; i < clients; i++)
		cfd[i] = host_client(path, 1024 + i, flags & 8);

	if (!(flags & 2))
		for (unsigned int i = 0; i < nrx && i < QSIZE / 2; i++) {
			struct vdrv_buf b[2] = {{RX_BUF + 1024 * i, VSOCK_HDR_LEN, true},
						{RX_BUF + 1024 * i + 64, 960, true}};
			vdrv_add(&rx, b, 2);
		}
	vdrv_publish(&rx);

	unsigned int npkt = 0;
	while (len >= 1 + VSOCK_HDR_LEN + 2 && npkt < MAX_PKTS && npkt < QSIZE / 2) {
		uint8_t shape = data[0] % 4;
		uint64_t slot = TX_BUF + 4096ULL * npkt;
		uint8_t *h = vdrv_ptr(&d, slot, VSOCK_HDR_LEN);
		memcpy(h, data + 1, VSOCK_HDR_LEN);
		uint16_t n = get16(data + 1 + VSOCK_HDR_LEN);
		data += 1 + VSOCK_HDR_LEN + 2;
		len -= 1 + VSOCK_HDR_LEN + 2;
		if (n > len)
			n = (uint16_t)len;
		if (n > 4096 - 64)
			n = 4096 - 64;
		memcpy(vdrv_ptr(&d, slot + 64, 4096 - 64), data, n);
		data += n;
		len -= n;
		struct vdrv_buf b[2] = {{slot, VSOCK_HDR_LEN, false},
					{slot + 64, n ? n : 1, false}};
		unsigned int nb = 2;
		if (shape == 1) {
			memmove(vdrv_ptr(&d, slot + VSOCK_HDR_LEN, n ? n : 1),
				vdrv_ptr(&d, slot + 64, n ? n : 1), n ? n : 1);
			b[0].len = VSOCK_HDR_LEN + n;
			nb = 1;
		} else if (shape == 2) {
			b[0].len = 1 + n % VSOCK_HDR_LEN;
			nb = 1;
		} else if (shape == 3) {
			b[1].writable = true;
		}
		vdrv_add(&tx, b, nb);
		npkt++;
	}
	if (flags & 4) {
		uint8_t *desc = vdrv_ptr(&d, TX_DESC, 16 * QSIZE);
		for (unsigned int i = 0; i < 16 * QSIZE && i < len; i++)
			desc[i] ^= data[i];
	}
	vdrv_publish(&tx);
	vdrv_wr32(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	vdrv_wr32(&d, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	int64_t end = now_ms() + WAIT_MS;
	while (now_ms() < end && (uint16_t)(vdrv_used_idx(&tx) - tx.used_seen) < npkt &&
	       !(vdrv_rd32(&d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
		vdrv_wait_irq(&d, 2);
	for (unsigned int i = 0; i < clients; i++) {
		if (cfd[i] < 0)
			continue;
		char buf[256];
		while (recv(cfd[i], buf, sizeof(buf), MSG_DONTWAIT) > 0) {
		}
		close(cfd[i]);
	}
	if (vdrv_reset(&d) < 0)
		abort(); /* the device must always take a reset */
	vsock_destroy(v);
	if (!vdrv_canaries_ok(&d))
		abort();
	vdrv_fini(&d);
	return 0;
}
