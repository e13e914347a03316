/* virtio_net: a virtio network device (virtio 1.2 §5.1) on a Linux tap with vnet headers. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "kvmini/devctl.h"
#include "kvmini/host.h"
#include "kvmini/le.h"
#include "kvmini/ratelimit.h"
#include "kvmini/virtio_net.h"

/*
 * Design and behaviour choices:
 *
 * Threads. Each device has one I/O thread ("net-<name>"), started by vnet_create() and stopped
 * by vnet_destroy(). It owns both queues and the tap and sleeps in epoll_wait() on the rx and
 * tx kick eventfds, a control eventfd and the tap. vCPU threads never move frames: activate
 * and reset change the wanted state (include/kvmini/devctl.h), which pokes the control eventfd,
 * and (reset only) wait until the I/O thread has acted. Lock order: the transport's lock, then
 * ctl.lock; the I/O thread takes ctl.lock only, and never the transport's lock.
 *
 * Tap. Opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte vnet header, so one read
 * or write is one frame with struct virtio_net_hdr_v1 in front: the header goes to and comes
 * from the guest as it is (IFF_ONE_QUEUE is not asked for: the kernel ignores it). At
 * activate, TUNSETOFFLOAD enables TUN_F_CSUM/TSO4/TSO6 as the driver accepted GUEST_CSUM/
 * TSO4/TSO6 (TSO only together with GUEST_CSUM, §5.1.3.1), so the tap hands over only what the
 * guest takes; reset turns them off again. A frame read anyway with an offload the driver did
 * not accept (NEEDS_CSUM without GUEST_CSUM, a GSO type not negotiated, ECN) is dropped and
 * counted; without GUEST_CSUM the header flags are cleared (§5.1.6.4.1).
 *
 * Receive (§5.1.6.4). A frame is read into a local buffer of VNET_MAX_FRAME + 1 bytes: a longer
 * read means an oversize frame, dropped and counted, never truncated. Without MRG_RXBUF it
 * must fit one chain; a chain too small for it keeps its buffers for the next frame and the
 * frame is dropped (rx_no_room). With MRG_RXBUF the frame is written across as many chains as
 * it needs, each filled completely, num_buffers is set in the first and all of them are
 * pushed together; should the whole ring be in hand and still too small, the frame is dropped
 * and the chains returned empty. An rx chain with a device-readable buffer, or a first chain
 * shorter than the header, is returned at once with used length 0 and counted (rx_bad_chain):
 * answerable, so the queue goes on. When no buffer is posted the frame stays pending (nothing
 * is lost), the device stops watching the tap and asks for a notification (§2.7.10); the next
 * rx kick resumes delivery. So at most one frame waits on the host side: the rest stays queued
 * in the tap, whose own queue length bounds it, and an idle device never spins.
 *
 * Transmit (§5.1.6.2). A chain must be wholly device-readable, hold at least the 12-byte
 * header and at most VNET_MAX_FRAME bytes; it is written with one writev(): the header from a
 * copy the device checked, the frame on iovecs pointing into guest memory (no copy), and
 * returned with used length 0. The header may ask only for what the driver accepted: NEEDS_CSUM
 * with CSUM, GSO TCPV4/TCPV6 with HOST_TSO4/6, no other flag (§5.1.6.2.1); anything else
 * (UDP or ECN GSO, DATA_VALID, a GSO type the driver did not take) is dropped and counted
 * (tx_bad_offload), never passed to the tap. The copy is what the tap gets, so a guest
 * rewriting the header after the check changes nothing. A chain breaking one of these
 * rules is dropped, counted (tx_short, tx_bad_chain, tx_oversize) and returned, the queue going
 * on: a device-writable buffer in a tx chain is answerable like a short header, so it is not
 * worth a reset. A write failing with EAGAIN keeps the chain, stops the queue and resumes when
 * the tap is writable (EPOLLOUT): nothing is dropped. Other write errors drop the frame.
 *
 * Rate limit. A card may have a bandwidth and a frame-rate limit (token buckets, ratelimit.h),
 * the same rates for each direction, each with buckets of its own. Before the I/O thread takes
 * a tx chain, or reads a frame from the tap, it asks that direction's buckets, and pays with
 * the frame's bytes (header left out) and one frame. While they say wait, that queue is left
 * alone (tx: its notifications off; rx: the tap is not watched, so frames queue in the tap,
 * whose queue length bounds them), and epoll_wait's timeout brings the thread back. The vCPU
 * that kicked never waits.
 *
 * Malformed chains. What virtq_pop() refuses (loops, indexes out of range, buffers outside RAM,
 * readable after writable, INDIRECT...) stops that queue and asks the transport for
 * DEVICE_NEEDS_RESET (logged once, rate-limited). Interrupts are raised per batch of used
 * elements (§2.7.7).
 *
 * Reset. The I/O thread stops serving both queues, drops a pending rx frame (rx_reset) and a
 * tx chain waiting for the tap, and forgets every chain it held; nothing is pushed afterwards.
 * Only then does ops->reset return. The tap stays open with its queue: frames that arrived
 * meanwhile go to the next driver.
 */

/* Feature bits (§5.1.3). */
#define VNET_F_CSUM	  0
#define VNET_F_GUEST_CSUM 1
#define VNET_F_MAC	  5
#define VNET_F_GUEST_TSO4 7
#define VNET_F_GUEST_TSO6 8
#define VNET_F_HOST_TSO4  11
#define VNET_F_HOST_TSO6  12
#define VNET_F_MRG_RXBUF  15
#define VNET_F_STATUS	  16

/* struct virtio_net_hdr_v1 (§5.1.6). */
#define VNET_HDR_FLAGS	      0
#define VNET_HDR_GSO_TYPE     1
#define VNET_HDR_NUM_BUFFERS  10
#define VNET_HDR_F_NEEDS_CSUM 1
#define VNET_HDR_F_DATA_VALID 2
#define VNET_HDR_GSO_NONE     0
#define VNET_HDR_GSO_TCPV4    1
#define VNET_HDR_GSO_TCPV6    4
#define VNET_HDR_GSO_ECN      0x80

/* Config space (§5.1.4): mac, then status; max_virtqueue_pairs and later are not offered. */
#define VNET_CFG_MAC	 0
#define VNET_CFG_STATUS	 6
#define VNET_CONFIG_SIZE 8
#define VNET_S_LINK_UP	 1

#define VNET_RXQ 0
#define VNET_TXQ 1

#define VNET_RX_BATCH	   64  /* frames per rx pass before the other events get a turn */
#define VNET_MAX_RX_ERRORS 100 /* consecutive tap read errors before the tap is given up */

/* epoll tags. */
enum { VNET_EV_CTL, VNET_EV_RX_KICK, VNET_EV_TX_KICK, VNET_EV_TAP };

/* An rx chain filled for the frame being delivered, not yet pushed. */
struct vnet_held {
	uint16_t head;
	uint32_t len;
};

struct vnet {
	struct virtio_mmio t;
	const struct gmem *mem;
	struct logger *log;
	const char *name;
	int tap_fd;
	bool is_tap;	/* a real tap: offloads are set with ioctls */
	bool is_socket; /* an injected socket: sent to with MSG_NOSIGNAL */
	char tap_name[IFNAMSIZ];
	uint8_t config[VNET_CONFIG_SIZE];

	int ep_fd;
	pthread_t thread;
	bool mmio_ready, thread_started;

	struct devctl ctl; /* the wanted state, shared by vCPU threads and the I/O thread */

	/* The I/O thread's own state. */
	bool active, paused, exiting;
	bool mrg, csum, tso4, tso6;	      /* negotiated: MRG_RXBUF, GUEST_CSUM, GUEST_TSO4/6 */
	bool host_csum, host_tso4, host_tso6; /* negotiated: CSUM, HOST_TSO4/6 (transmit) */
	bool rx_pass_pending, tx_pass_pending, rx_pushed, tx_pushed;
	bool tap_watched, tap_dead;
	uint32_t tap_events;
	unsigned int rx_errors_in_row;

	bool rx_stalled;	 /* a frame waits for rx buffers: tap not watched until a kick */
	bool rx_pending;	 /* rx_buf holds a frame [0, rx_len) not yet delivered */
	bool rx_spare;		 /* no MRG_RXBUF: rx_first was popped and is unused */
	uint32_t rx_len, rx_off; /* frame length; bytes already written into held chains */
	uint16_t rx_nheld;
	struct vnet_held rx_held[VNET_QUEUE_SIZE];
	struct virtq_chain rx_first; /* the chain taking the header (num_buffers) */
	struct virtq_chain rx_chain; /* scratch for the following chains */

	bool tx_has_chain; /* tx_chain was popped and not yet sent */
	bool tx_blocked;   /* the tap said EAGAIN: wait for EPOLLOUT */
	struct virtq_chain tx_chain;
	struct iovec tx_iov[VIRTQ_MAX_SIZE + 1]; /* the header's copy, then the chain's rest */
	uint8_t tx_hdr[VNET_HDR_LEN];

	struct vnet_stats stats; /* written by the I/O thread, read with vnet_get_stats() */

	/* The rate limit, a pair of buckets per direction: while one says wait, that queue is
	 * left alone (rx: the tap is not read) until rx_until / tx_until (CLOCK_MONOTONIC ns,
	 * 0: not waiting), which the loop's epoll_wait timeout brings round. A new setting comes
	 * under ctl.lock (vnet_set_limit). */
	struct ratelimit rl_rx, rl_tx;
	uint64_t rx_until, tx_until;
	struct ratelimit_box rl_box; /* under ctl.lock */

	uint8_t rx_buf[VNET_MAX_FRAME + 1];
};

#define VNET_COUNT(n, field, v) __atomic_fetch_add(&(n)->stats.field, (v), __ATOMIC_RELAXED)

/* ---- MAC addresses ---- */

int vnet_mac_from_name(const char *name, uint8_t mac[6])
{
	if (!name)
		return -EINVAL;
	/* FNV-1a, 64 bits. */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	mac[0] = 0x52; /* locally administered (bit 1), unicast (bit 0 clear) */
	mac[1] = 0x54;
	mac[2] = 0x00;
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
	return 0;
}

static int vnet_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool vnet_mac_usable(const uint8_t mac[6])
{
	static const uint8_t zero[6];
	return !(mac[0] & 1) && memcmp(mac, zero, 6) != 0;
}

int vnet_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];
	if (!s || strlen(s) != 17)
		return -EINVAL;
	for (unsigned int i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		int hi = vnet_hex(p[0]), lo = vnet_hex(p[1]);
		if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':'))
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	if (!vnet_mac_usable(m))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

/* ---- the tap ---- */

/* Characters the kernel refuses in an interface name, plus '%' (a name template there). */
static bool vnet_ifname_ok(const char *s)
{
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ':' || *p == '%' || *p == ' ' || (*p >= '\t' && *p <= '\r'))
			return false;
	return true;
}

int vnet_open_tap(const char *ifname, struct vmerr *e)
{
	size_t len = ifname ? strlen(ifname) : 0;
	if (!len)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "no tap interface name given");
	if (len >= IFNAMSIZ)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "tap name '%s' is longer than %d bytes",
				 ifname, IFNAMSIZ - 1);
	if (!vnet_ifname_ok(ifname))
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0,
				 "tap name '%s' is not a valid interface name", ifname);

	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int err = errno;
		if (err == ENOENT || err == ENODEV || err == ENXIO)
			return vmerr_set(e, KVMINI_EXIT_RESOURCE, err,
					 "/dev/net/tun is missing (load the tun module)");
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, err, "cannot open /dev/net/tun");
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, len);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	int ret;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int err = errno;
		if (err == EPERM || err == EACCES)
			vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				  "cannot open tap %s: need CAP_NET_ADMIN or a tap owned by you "
				  "(ip tuntap add %s mode tap user <you>)",
				  ifname, ifname);
		else if (err == EBUSY)
			vmerr_set(e, KVMINI_EXIT_RESOURCE, 0, "tap %s is in use by another process",
				  ifname);
		else if (err == EINVAL)
			vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				  "interface %s exists but is not a single-queue tap", ifname);
		else
			vmerr_set(e, KVMINI_EXIT_RESOURCE, err, "cannot open tap %s", ifname);
		close(fd);
		return -err;
	}
	int hdr = VNET_HDR_LEN;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(fd, TUNSETOFFLOAD, 0UL) < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_HOST, errno, "cannot set up tap %s", ifname);
		close(fd);
		return ret;
	}
	return fd;
}

/* TUN_F_* for the driver's features: checksums, and TSO only together with them. */
static unsigned long vnet_offload_for(uint64_t features)
{
	if (!(features & (1ULL << VNET_F_GUEST_CSUM)))
		return 0;
	unsigned long off = TUN_F_CSUM;
	if (features & (1ULL << VNET_F_GUEST_TSO4))
		off |= TUN_F_TSO4;
	if (features & (1ULL << VNET_F_GUEST_TSO6))
		off |= TUN_F_TSO6;
	return off;
}

/* ---- I/O thread: helpers ---- */

/* Return a chain; 0, or -EIO when the queue broke (or, a device bug, refused the head). */
static int vnet_push(struct vnet *n, struct virtq *q, uint16_t head, uint32_t len, bool *pushed)
{
	int ret = virtq_push(q, head, len);
	if (ret == 0) {
		*pushed = true;
		return 0;
	}
	if (ret == -EINVAL) {
		log_err(n->log, "%s: internal error: push of chain %u refused", n->name, head);
		q->broken = true;
	}
	return -EIO;
}

/* Watch the tap for what the queues wait for: EPOLLIN while rx can take a frame, EPOLLOUT
 * while tx is blocked; not at all otherwise (EPOLLHUP/EPOLLERR would wake us in a loop). */
static void vnet_watch_tap(struct vnet *n)
{
	uint32_t want = 0;
	if (n->active && !n->paused && !n->tap_dead) {
		const struct virtq *rq = &n->t.vq[VNET_RXQ];
		if (!n->rx_stalled && !n->rx_pending && !n->rx_until && rq->size && !rq->broken)
			want |= EPOLLIN;
		if (n->tx_blocked)
			want |= EPOLLOUT;
	}
	if (n->tap_watched ? want == n->tap_events : !want)
		return;
	struct epoll_event ev = {.events = want, .data.u32 = VNET_EV_TAP};
	int ret = 0;
	if (!want) {
		ret = epoll_ctl(n->ep_fd, EPOLL_CTL_DEL, n->tap_fd, NULL);
		n->tap_watched = false;
	} else {
		ret = epoll_ctl(n->ep_fd, n->tap_watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, n->tap_fd,
				&ev);
		n->tap_watched = ret == 0;
		n->tap_events = want;
	}
	if (ret < 0) {
		log_err(n->log, "%s: cannot watch the tap: %s", n->name, strerror(errno));
		n->tap_dead = true;
	}
}

static void vnet_tap_gone(struct vnet *n, const char *why)
{
	if (n->tap_dead)
		return;
	n->tap_dead = true;
	log_err(n->log, "%s: tap %s %s: the device receives nothing more", n->name,
		n->tap_name[0] ? n->tap_name : "(fd)", why);
}

/* ---- I/O thread: the rate limit ---- */

static uint64_t vnet_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* May the direction of `rl` move a frame now? If not, *until is set to when it may. */
static bool vnet_limit_allows(struct vnet *n, struct ratelimit *rl, uint64_t *until,
			      uint64_t *throttled)
{
	if (!ratelimit_active(rl))
		return true;
	uint64_t now = vnet_now_ns();
	uint64_t wait = ratelimit_wait_ns(rl, now);
	if (!wait)
		return true;
	*until = now + wait;
	__atomic_fetch_add(throttled, 1, __ATOMIC_RELAXED);
	return false;
}

/* ---- I/O thread: receive ---- */

static void vnet_rx_done(struct vnet *n)
{
	n->rx_pending = false;
	n->rx_len = 0;
	n->rx_off = 0;
	n->rx_nheld = 0;
}

/*
 * Is the header of the frame in rx_buf something the driver accepted (§5.1.6.4.1)? Clears the
 * flags the driver cannot take.
 */
static bool vnet_rx_hdr_ok(struct vnet *n)
{
	uint8_t *h = n->rx_buf;
	uint8_t flags = h[VNET_HDR_FLAGS], gso = h[VNET_HDR_GSO_TYPE];
	if (!n->csum) {
		if (flags & VNET_HDR_F_NEEDS_CSUM)
			return false;
		flags = 0;
	} else {
		flags &= VNET_HDR_F_NEEDS_CSUM | VNET_HDR_F_DATA_VALID;
	}
	switch (gso) {
	case VNET_HDR_GSO_NONE:
		break;
	case VNET_HDR_GSO_TCPV4:
		if (!n->tso4)
			return false;
		break;
	case VNET_HDR_GSO_TCPV6:
		if (!n->tso6)
			return false;
		break;
	default: /* UDP, UDP_L4, ECN: never offered */
		return false;
	}
	h[VNET_HDR_FLAGS] = flags;
	return true;
}

/* Read the next frame from the tap: 1 now pending, 0 one was dropped, -1 none (drained). */
static int vnet_rx_fetch(struct vnet *n)
{
	if (n->tap_dead)
		return -1;
	ssize_t r;
	do {
		r = read(n->tap_fd, n->rx_buf, sizeof(n->rx_buf));
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		int err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK)
			return -1;
		VNET_COUNT(n, rx_errors, 1);
		log_guest(n->log, LOG_WARN, "%s: tap read failed: %s", n->name, strerror(err));
		if (++n->rx_errors_in_row >= VNET_MAX_RX_ERRORS)
			vnet_tap_gone(n, "keeps failing");
		return -1;
	}
	n->rx_errors_in_row = 0;
	if ((size_t)r > VNET_MAX_FRAME) {
		VNET_COUNT(n, rx_oversize, 1);
		log_guest(n->log, LOG_DEBUG, "%s: dropped a %zd-byte frame from the tap", n->name,
			  r);
		return 0;
	}
	if (r < VNET_HDR_LEN) {
		VNET_COUNT(n, rx_short, 1);
		return 0;
	}
	if (!vnet_rx_hdr_ok(n)) {
		VNET_COUNT(n, rx_bad_offload, 1);
		log_guest(n->log, LOG_DEBUG,
			  "%s: dropped a frame with offload 0x%x/%u the driver "
			  "did not accept",
			  n->name, n->rx_buf[0], n->rx_buf[1]);
		return 0;
	}
	n->rx_pending = true;
	n->rx_len = (uint32_t)r;
	n->rx_off = 0;
	n->rx_nheld = 0;
	return 1;
}

/*
 * Pop the next rx chain into `c`. A chain with a device-readable buffer, or (`first`) one too
 * small for the header, is returned empty and skipped. 1, 0 (none left in this pass), -EIO.
 */
static int vnet_rx_pop(struct vnet *n, struct virtq_chain *c, bool first)
{
	struct virtq *q = &n->t.vq[VNET_RXQ];
	for (;;) {
		int ret = virtq_pop(q, c);
		if (ret <= 0)
			return ret;
		if (!c->nr_readable && (!first || c->writable_len >= VNET_HDR_LEN))
			return 1;
		VNET_COUNT(n, rx_bad_chain, 1);
		log_guest(n->log, LOG_DEBUG,
			  "%s: rx chain %u has a readable buffer or is shorter than the header",
			  n->name, c->head);
		if (vnet_push(n, q, c->head, 0, &n->rx_pushed) < 0)
			return -EIO;
	}
}

/* A frame was delivered into chains starting at `head` (`nr` of them). */
static void vnet_rx_count(struct vnet *n, uint16_t head, unsigned int nr)
{
	if (trace_on(n->t.trace, TRACE_VIRTIO))
		trace_emit(n->t.trace, "virtio %s rx head %u buffers %u frame %u", n->name, head,
			   nr, n->rx_len - VNET_HDR_LEN);
	VNET_COUNT(n, rx_frames, 1);
	VNET_COUNT(n, rx_bytes, n->rx_len - VNET_HDR_LEN);
}

/* Without MRG_RXBUF: the frame goes into one chain (§5.1.6.3.1). 1 done, 0 no buffer, -EIO. */
static int vnet_rx_single(struct vnet *n)
{
	struct virtq *q = &n->t.vq[VNET_RXQ];
	struct virtq_chain *c = &n->rx_first;
	if (!n->rx_spare) {
		int ret = vnet_rx_pop(n, c, true);
		if (ret <= 0)
			return ret;
	}
	n->rx_spare = false;
	if (c->writable_len < n->rx_len) {
		/* The chain stays ours for the next frame; this one cannot be delivered. */
		VNET_COUNT(n, rx_no_room, 1);
		log_guest(n->log, LOG_DEBUG, "%s: dropped a %u-byte frame: rx buffer of %llu bytes",
			  n->name, n->rx_len, (unsigned long long)c->writable_len);
		n->rx_spare = true;
		vnet_rx_done(n);
		return 1;
	}
	le_put16(n->rx_buf + VNET_HDR_NUM_BUFFERS, 1);
	if (virtq_chain_write(q, c, 0, n->rx_buf, n->rx_len) < 0) {
		q->broken = true; /* cannot happen: virtq_pop checked every buffer */
		return -EIO;
	}
	if (vnet_push(n, q, c->head, n->rx_len, &n->rx_pushed) < 0)
		return -EIO;
	vnet_rx_count(n, c->head, 1);
	vnet_rx_done(n);
	return 1;
}

/* With MRG_RXBUF: as many chains as the frame needs (§5.1.6.4). 1 done, 0 no buffer, -EIO. */
static int vnet_rx_merge(struct vnet *n)
{
	struct virtq *q = &n->t.vq[VNET_RXQ];
	while (n->rx_off < n->rx_len) {
		if (n->rx_nheld >= q->size) {
			/* Every buffer of the ring is ours and the frame still does not fit. */
			VNET_COUNT(n, rx_no_room, 1);
			log_guest(n->log, LOG_DEBUG,
				  "%s: dropped a %u-byte frame: the rx ring cannot hold it",
				  n->name, n->rx_len);
			for (unsigned int i = 0; i < n->rx_nheld; i++)
				if (vnet_push(n, q, n->rx_held[i].head, 0, &n->rx_pushed) < 0)
					return -EIO;
			vnet_rx_done(n);
			return 1;
		}
		struct virtq_chain *c = n->rx_nheld ? &n->rx_chain : &n->rx_first;
		int ret = vnet_rx_pop(n, c, n->rx_nheld == 0);
		if (ret <= 0)
			return ret;
		uint64_t left = n->rx_len - n->rx_off;
		uint32_t chunk = (uint32_t)(c->writable_len < left ? c->writable_len : left);
		if (virtq_chain_write(q, c, 0, n->rx_buf + n->rx_off, chunk) < 0) {
			q->broken = true; /* cannot happen: virtq_pop checked every buffer */
			return -EIO;
		}
		n->rx_held[n->rx_nheld++] = (struct vnet_held){.head = c->head, .len = chunk};
		n->rx_off += chunk;
	}
	uint8_t nb[2];
	le_put16(nb, n->rx_nheld);
	if (virtq_chain_write(q, &n->rx_first, VNET_HDR_NUM_BUFFERS, nb, sizeof(nb)) < 0) {
		q->broken = true;
		return -EIO;
	}
	for (unsigned int i = 0; i < n->rx_nheld; i++)
		if (vnet_push(n, q, n->rx_held[i].head, n->rx_held[i].len, &n->rx_pushed) < 0)
			return -EIO;
	vnet_rx_count(n, n->rx_held[0].head, n->rx_nheld);
	vnet_rx_done(n);
	return 1;
}

/*
 * One pass over the receive side: deliver the pending frame and read more from the tap until
 * it is drained, the batch is done, buffers run out (then stall until an rx kick) or the
 * queue broke.
 */
static void vnet_rx_pass(struct vnet *n)
{
	struct virtq *q = &n->t.vq[VNET_RXQ];
	n->rx_pass_pending = false;
	if (!n->active || !q->size || q->broken)
		return;
	n->rx_stalled = false;
	virtq_begin_pass(q);
	for (unsigned int i = 0; i < VNET_RX_BATCH; i++) {
		if (!n->rx_pending) {
			/* The tap is not read while the limit says wait (vnet_watch_tap). */
			if (!vnet_limit_allows(n, &n->rl_rx, &n->rx_until, &n->stats.rx_throttled))
				return;
			int r = vnet_rx_fetch(n);
			if (r < 0)
				return;
			if (r == 0)
				continue;
			if (ratelimit_active(&n->rl_rx))
				ratelimit_charge(&n->rl_rx, n->rx_len - VNET_HDR_LEN);
		}
		int ret = n->mrg ? vnet_rx_merge(n) : vnet_rx_single(n);
		if (ret < 0) {
			virtio_mmio_needs_reset(&n->t,
						"malformed descriptor chain in the rx queue");
			return;
		}
		if (ret > 0)
			continue;
		/* Out of buffers, or this pass's budget is spent. */
		if (virtq_enable_notify(q)) {
			n->rx_pass_pending = true;
		} else if (q->broken) {
			virtio_mmio_needs_reset(&n->t, "rx ring not in RAM");
		} else {
			n->rx_stalled = true;
			VNET_COUNT(n, rx_stalls, 1);
		}
		return;
	}
	n->rx_pass_pending = true; /* more may wait in the tap: after the other events */
}

/* ---- I/O thread: transmit ---- */

/* Does the tx header `h` ask only for offloads the driver accepted (§5.1.6.2.1)? */
static bool vnet_tx_hdr_ok(const struct vnet *n, const uint8_t *h)
{
	uint8_t flags = h[VNET_HDR_FLAGS], gso = h[VNET_HDR_GSO_TYPE];
	if (flags & ~VNET_HDR_F_NEEDS_CSUM)
		return false;
	if ((flags & VNET_HDR_F_NEEDS_CSUM) && !n->host_csum)
		return false;
	switch (gso) {
	case VNET_HDR_GSO_NONE:
		return true;
	case VNET_HDR_GSO_TCPV4:
		return n->host_tso4;
	case VNET_HDR_GSO_TCPV6:
		return n->host_tso6;
	default: /* UDP, UDP_L4, ECN: never offered */
		return false;
	}
}

/* Send one tx chain to the tap (or drop it). true when done with it, false on EAGAIN. */
static bool vnet_tx_one(struct vnet *n, const struct virtq_chain *c)
{
	if (c->nr_readable != c->nr) {
		VNET_COUNT(n, tx_bad_chain, 1);
		log_guest(n->log, LOG_DEBUG, "%s: tx chain %u has a device-writable buffer",
			  n->name, c->head);
		return true;
	}
	if (c->readable_len < VNET_HDR_LEN) {
		VNET_COUNT(n, tx_short, 1);
		log_guest(n->log, LOG_DEBUG, "%s: tx chain %u is shorter than the header", n->name,
			  c->head);
		return true;
	}
	if (c->readable_len > VNET_MAX_FRAME) {
		VNET_COUNT(n, tx_oversize, 1);
		log_guest(n->log, LOG_DEBUG, "%s: tx chain %u of %llu bytes is too long", n->name,
			  c->head, (unsigned long long)c->readable_len);
		return true;
	}
	/* The header's copy first, then what follows it in the chain. */
	unsigned int niov = 1;
	uint32_t hdr_got = 0;
	for (unsigned int i = 0; i < c->nr; i++) {
		uint8_t *p = gmem_ptr(n->mem, c->buf[i].gpa, c->buf[i].len);
		if (!p) { /* cannot happen: virtq_pop checked every buffer */
			VNET_COUNT(n, tx_bad_chain, 1);
			return true;
		}
		uint32_t len = c->buf[i].len, take = 0;
		if (hdr_got < VNET_HDR_LEN) {
			take = VNET_HDR_LEN - hdr_got < len ? VNET_HDR_LEN - hdr_got : len;
			memcpy(n->tx_hdr + hdr_got, p, take);
			hdr_got += take;
		}
		if (take < len) {
			n->tx_iov[niov].iov_base = p + take;
			n->tx_iov[niov].iov_len = len - take;
			niov++;
		}
	}
	if (!vnet_tx_hdr_ok(n, n->tx_hdr)) {
		VNET_COUNT(n, tx_bad_offload, 1);
		log_guest(n->log, LOG_DEBUG,
			  "%s: tx chain %u asks for an offload the driver did not accept "
			  "(flags %#x, gso type %#x)",
			  n->name, c->head, n->tx_hdr[VNET_HDR_FLAGS],
			  n->tx_hdr[VNET_HDR_GSO_TYPE]);
		return true;
	}
	n->tx_iov[0].iov_base = n->tx_hdr;
	n->tx_iov[0].iov_len = VNET_HDR_LEN;
	/* A socket (tests, fuzzing) must not raise SIGPIPE when its peer has gone. */
	struct msghdr msg = {.msg_iov = n->tx_iov, .msg_iovlen = niov};
	ssize_t w;
	do {
		w = n->is_socket ? sendmsg(n->tap_fd, &msg, MSG_NOSIGNAL)
				 : writev(n->tap_fd, n->tx_iov, (int)niov);
	} while (w < 0 && errno == EINTR);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return false;
	if (w < 0 || (uint64_t)w != c->readable_len) {
		VNET_COUNT(n, tx_errors, 1);
		log_guest(n->log, LOG_WARN, "%s: tap write of %llu bytes failed: %s", n->name,
			  (unsigned long long)c->readable_len, w < 0 ? strerror(errno) : "short");
		return true;
	}
	VNET_COUNT(n, tx_frames, 1);
	VNET_COUNT(n, tx_bytes, c->readable_len - VNET_HDR_LEN);
	return true;
}

/* One pass over the transmit queue after a kick or EPOLLOUT (§2.7.13 device side). */
static void vnet_tx_pass(struct vnet *n)
{
	struct virtq *q = &n->t.vq[VNET_TXQ];
	n->tx_pass_pending = false;
	if (!n->active || !q->size || q->broken || n->tx_blocked)
		return;
	virtq_begin_pass(q);
	for (;;) {
		if (!n->tx_has_chain) {
			if (ratelimit_active(&n->rl_tx) && virtq_has_avail(q) &&
			    !vnet_limit_allows(n, &n->rl_tx, &n->tx_until, &n->stats.tx_throttled))
				return; /* notifications stay off: the timeout resumes the queue */
			int ret = virtq_pop(q, &n->tx_chain);
			if (ret < 0) {
				virtio_mmio_needs_reset(
					&n->t, "malformed descriptor chain in the tx queue");
				return;
			}
			if (ret == 0)
				break;
			n->tx_has_chain = true;
			if (ratelimit_active(&n->rl_tx))
				ratelimit_charge(&n->rl_tx,
						 n->tx_chain.readable_len > VNET_HDR_LEN
							 ? n->tx_chain.readable_len - VNET_HDR_LEN
							 : 0);
			if (trace_on(n->t.trace, TRACE_VIRTIO))
				trace_emit(n->t.trace, "virtio %s tx head %u chain %u frame %llu",
					   n->name, n->tx_chain.head, n->tx_chain.nr,
					   (unsigned long long)(n->tx_chain.readable_len >=
										VNET_HDR_LEN
									? n->tx_chain.readable_len -
										  VNET_HDR_LEN
									: 0));
		}
		if (!vnet_tx_one(n, &n->tx_chain)) {
			n->tx_blocked = true; /* resumed on EPOLLOUT */
			VNET_COUNT(n, tx_blocked, 1);
			return;
		}
		n->tx_has_chain = false;
		if (vnet_push(n, q, n->tx_chain.head, 0, &n->tx_pushed) < 0) {
			virtio_mmio_needs_reset(&n->t, "tx used ring not in RAM");
			return;
		}
	}
	if (virtq_enable_notify(q))
		n->tx_pass_pending = true;
	else if (q->broken)
		virtio_mmio_needs_reset(&n->t, "tx ring not in RAM");
}

/* After a batch: interrupt the driver if it wants one (§2.7.7). */
static void vnet_flush_irq(struct vnet *n)
{
	bool irq = false;
	if (n->rx_pushed && n->active)
		irq = virtq_need_interrupt(&n->t.vq[VNET_RXQ]);
	if (n->tx_pushed && n->active)
		irq = virtq_need_interrupt(&n->t.vq[VNET_TXQ]) || irq;
	n->rx_pushed = n->tx_pushed = false;
	if (irq)
		virtio_mmio_notify_vring(&n->t);
}

/* ---- I/O thread: control and the loop ---- */

static void vnet_deactivate(struct vnet *n)
{
	if (n->rx_pending)
		VNET_COUNT(n, rx_reset, 1);
	vnet_rx_done(n);
	n->active = false;
	n->rx_spare = false;
	n->rx_stalled = false;
	n->tx_has_chain = false;
	n->tx_blocked = false;
	n->rx_pass_pending = n->tx_pass_pending = false;
	n->rx_pushed = n->tx_pushed = false;
}

static void vnet_start(struct vnet *n, uint64_t f)
{
	n->mrg = f & (1ULL << VNET_F_MRG_RXBUF);
	n->csum = f & (1ULL << VNET_F_GUEST_CSUM);
	n->tso4 = n->csum && (f & (1ULL << VNET_F_GUEST_TSO4));
	n->tso6 = n->csum && (f & (1ULL << VNET_F_GUEST_TSO6));
	n->host_csum = f & (1ULL << VNET_F_CSUM);
	n->host_tso4 = n->host_csum && (f & (1ULL << VNET_F_HOST_TSO4));
	n->host_tso6 = n->host_csum && (f & (1ULL << VNET_F_HOST_TSO6));
	n->active = true;
	n->rx_pass_pending = n->tx_pass_pending = true; /* kicks may have come before DRIVER_OK */
}

/* The control eventfd fired: act on the wanted state and acknowledge it. */
static void vnet_control(struct vnet *n)
{
	struct devctl_state st;
	devctl_snapshot(&n->ctl, &st);
	bool run = st.run, stop = st.stop, paused = st.paused;
	uint64_t features = st.features;
	if (n->paused && !paused && n->active)
		n->rx_pass_pending = n->tx_pass_pending = true; /* what came while paused */
	n->paused = paused;
	if (!run && n->active)
		vnet_deactivate(n);
	if (run && !n->active)
		vnet_start(n, features);
	if (stop)
		n->exiting = true;
	pthread_mutex_lock(&n->ctl.lock);
	uint64_t now = vnet_now_ns();
	struct ratelimit_box tx_box = n->rl_box; /* the same setting for both directions */
	if (ratelimit_take(&n->rl_box, &n->rl_rx, now)) {
		ratelimit_take(&tx_box, &n->rl_tx, now);
		n->rx_until = n->tx_until = 0; /* asked again at the next pass */
		n->rx_pass_pending = n->tx_pass_pending = n->active;
	}
	pthread_mutex_unlock(&n->ctl.lock);
	devctl_ack(&n->ctl, st.gen);
}

/* The epoll_wait timeout: 0 with a pass pending, else until the first rate-limit wait ends
 * (a waiting direction becomes pending once its time has come), else none. */
static int vnet_timeout(struct vnet *n)
{
	if (n->paused)
		return -1;
	uint64_t now = n->rx_until || n->tx_until ? vnet_now_ns() : 0;
	if (n->rx_until && now >= n->rx_until) {
		n->rx_until = 0;
		n->rx_pass_pending = n->active;
	}
	if (n->tx_until && now >= n->tx_until) {
		n->tx_until = 0;
		n->tx_pass_pending = n->active;
	}
	if (n->rx_pass_pending || n->tx_pass_pending)
		return 0;
	uint64_t until = n->rx_until && (!n->tx_until || n->rx_until < n->tx_until) ? n->rx_until
										    : n->tx_until;
	if (!until)
		return -1;
	uint64_t ms = (until - now + 999999) / 1000000;
	return ms > 1000 ? 1000 : (int)ms;
}

static void vnet_event(struct vnet *n, const struct epoll_event *ev)
{
	switch (ev->data.u32) {
	case VNET_EV_CTL:
		devctl_drain(&n->ctl);
		vnet_control(n);
		break;
	case VNET_EV_RX_KICK:
		host_eventfd_drain(n->t.kick_fd[VNET_RXQ]);
		if (n->active)
			n->rx_pass_pending = true;
		break;
	case VNET_EV_TX_KICK:
		host_eventfd_drain(n->t.kick_fd[VNET_TXQ]);
		if (n->active)
			n->tx_pass_pending = true;
		break;
	case VNET_EV_TAP:
		if (ev->events & (EPOLLERR | EPOLLHUP)) {
			vnet_tap_gone(n, ev->events & EPOLLHUP ? "hung up" : "reports an error");
			break;
		}
		if ((ev->events & EPOLLIN) && n->active)
			n->rx_pass_pending = true;
		if ((ev->events & EPOLLOUT) && n->tx_blocked) {
			n->tx_blocked = false;
			n->tx_pass_pending = true;
		}
		break;
	}
}

static void *vnet_thread(void *arg)
{
	struct vnet *n = arg;
	while (!n->exiting) {
		if (n->tx_pass_pending && !n->paused)
			vnet_tx_pass(n);
		if (n->rx_pass_pending && !n->paused)
			vnet_rx_pass(n);
		vnet_flush_irq(n);
		vnet_watch_tap(n);
		struct epoll_event ev[8];
		int nr = epoll_wait(n->ep_fd, ev, 8, vnet_timeout(n));
		if (nr < 0 && errno != EINTR) {
			log_err(n->log, "%s: epoll_wait failed: %s", n->name, strerror(errno));
			nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
		}
		for (int i = 0; i < nr; i++)
			vnet_event(n, &ev[i]);
	}
	devctl_gone(&n->ctl);
	return NULL;
}

/* ---- vCPU side: the transport's callbacks ---- */

void vnet_pause(struct vnet *n, bool paused)
{
	devctl_pause(&n->ctl, paused);
}

static int vnet_set_offload(struct vnet *n, unsigned long off)
{
	if (!n->is_tap || ioctl(n->tap_fd, TUNSETOFFLOAD, off) == 0)
		return 0;
	int err = errno;
	log_err(n->log, "%s: cannot set offloads 0x%lx on tap %s: %s", n->name, off, n->tap_name,
		strerror(err));
	return -err;
}

static int vnet_activate(void *dev)
{
	struct vnet *n = dev;
	uint64_t f = n->t.driver_features; /* stable: the transport's lock is held */
	int ret = vnet_set_offload(n, vnet_offload_for(f));
	if (ret < 0)
		return ret;
	return devctl_want(&n->ctl, true, false, f) ? 0 : -ENODEV;
}

static void vnet_reset(void *dev)
{
	struct vnet *n = dev;
	uint64_t gen = devctl_want(&n->ctl, false, false, 0);
	if (!gen)
		return;
	devctl_wait(&n->ctl, gen);
	vnet_set_offload(n, 0);
}

static void vnet_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct vnet *n = dev;
	if (off > VNET_CONFIG_SIZE || len > VNET_CONFIG_SIZE - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, n->config + off, len);
}

static void vnet_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	/* Read-only: the driver must not write it (§5.1.4.2); no legacy interface to honour. */
}

static const struct virtio_dev_ops vnet_ops = {
	.activate = vnet_activate,
	.reset = vnet_reset,
	.config_read = vnet_config_read,
	.config_write = vnet_config_write,
};

/* ---- Set-up and teardown ---- */

/* An injected fd: non-blocking; a tap gets its header size and offloads, anything else none. */
static int vnet_adopt_fd(struct vnet *n, struct vmerr *e)
{
	int fl = fcntl(n->tap_fd, F_GETFL);
	if (fl < 0 || fcntl(n->tap_fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "%s: cannot use the tap fd", n->name);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(n->tap_fd, TUNGETIFF, &ifr) < 0) {
		if (errno == ENOTTY || errno == EINVAL || errno == EBADFD) {
			/* Not a tap: a datagram socket for tests and fuzzing. */
			int type;
			socklen_t len = sizeof(type);
			n->is_socket = getsockopt(n->tap_fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
			return 0;
		}
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "%s: cannot query the tap fd",
				 n->name);
	}
	if ((ifr.ifr_flags & (IFF_TAP | IFF_TUN)) != IFF_TAP || !(ifr.ifr_flags & IFF_VNET_HDR) ||
	    !(ifr.ifr_flags & IFF_NO_PI))
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0,
				 "%s: the tap fd needs IFF_TAP, IFF_NO_PI and IFF_VNET_HDR",
				 n->name);
	n->is_tap = true;
	memcpy(n->tap_name, ifr.ifr_name, IFNAMSIZ - 1);
	int hdr = VNET_HDR_LEN;
	if (ioctl(n->tap_fd, TUNSETVNETHDRSZ, &hdr) < 0 || ioctl(n->tap_fd, TUNSETOFFLOAD, 0UL) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "cannot set up tap %s", n->tap_name);
	return 0;
}

static uint64_t vnet_features(void)
{
	return 1ULL << VNET_F_CSUM | 1ULL << VNET_F_GUEST_CSUM | 1ULL << VNET_F_MAC |
	       1ULL << VNET_F_GUEST_TSO4 | 1ULL << VNET_F_GUEST_TSO6 | 1ULL << VNET_F_HOST_TSO4 |
	       1ULL << VNET_F_HOST_TSO6 | 1ULL << VNET_F_MRG_RXBUF | 1ULL << VNET_F_STATUS;
}

static int vnet_watch(struct vnet *n, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
	return epoll_ctl(n->ep_fd, EPOLL_CTL_ADD, fd, &ev);
}

int vnet_create(struct vnet **out, const struct vnet_config *cfg, int tap_fd,
		const struct gmem *mem, struct logger *log, const char *name, struct vmerr *e)
{
	*out = NULL;
	bool opened = tap_fd < 0;
	if (opened) {
		tap_fd = vnet_open_tap(cfg ? cfg->tap : NULL, e);
		if (tap_fd < 0)
			return tap_fd;
	}
	struct vnet *n = calloc(1, sizeof(*n));
	if (!n) {
		close(tap_fd);
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, ENOMEM, "cannot allocate %s", name);
	}
	n->tap_fd = tap_fd;
	n->ep_fd = -1;
	n->mem = mem;
	if (cfg) {
		uint64_t now = vnet_now_ns();
		ratelimit_init(&n->rl_rx, &cfg->limit, now);
		ratelimit_init(&n->rl_tx, &cfg->limit, now);
		n->rl_box.cur = cfg->limit;
	}
	n->log = log;
	n->name = name;

	int ret = devctl_init(&n->ctl, EFD_NONBLOCK);
	if (ret < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot set up %s", name);
		goto fail;
	}
	if (opened) {
		n->is_tap = true;
		snprintf(n->tap_name, sizeof(n->tap_name), "%s", cfg->tap);
	} else {
		ret = vnet_adopt_fd(n, e);
		if (ret < 0)
			goto fail;
	}

	uint8_t *mac = n->config + VNET_CFG_MAC;
	if (cfg && cfg->mac_set) {
		if (!vnet_mac_usable(cfg->mac)) {
			ret = vmerr_set(e, KVMINI_EXIT_USAGE, 0,
					"%s: the MAC must be a unicast, non-zero address", name);
			goto fail;
		}
		memcpy(mac, cfg->mac, 6);
	} else {
		vnet_mac_from_name(cfg && cfg->tap ? cfg->tap : name ? name : "", mac);
	}
	le_put16(n->config + VNET_CFG_STATUS, VNET_S_LINK_UP);

	n->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (n->ep_fd < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "cannot set up %s", name);
		goto fail;
	}
	struct virtio_dev_info info = {
		.device_id = 1, /* §5.1.1 */
		.features = vnet_features(),
		.config_size = VNET_CONFIG_SIZE,
		.nr_queues = 2, /* §5.1.2: receiveq1, transmitq1; no MQ, no control queue */
		.queue_max = VNET_QUEUE_SIZE,
	};
	ret = virtio_mmio_init(&n->t, mem, log, name, &info, &vnet_ops, n);
	if (ret < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot set up the transport of %s",
				name);
		goto fail;
	}
	n->mmio_ready = true;
	if (vnet_watch(n, n->ctl.fd, VNET_EV_CTL) < 0 ||
	    vnet_watch(n, n->t.kick_fd[VNET_RXQ], VNET_EV_RX_KICK) < 0 ||
	    vnet_watch(n, n->t.kick_fd[VNET_TXQ], VNET_EV_TX_KICK) < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "cannot set up %s", name);
		goto fail;
	}

	n->ctl.alive = true;
	char tname[16];
	snprintf(tname, sizeof(tname), "net-%s", name);
	ret = host_thread_start(&n->thread, vnet_thread, n, tname, cfg ? cfg->confine : NULL,
				CONFINE_NET);
	if (ret) {
		n->ctl.alive = false;
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot start the I/O thread of %s",
				name);
		goto fail;
	}
	n->thread_started = true;
	*out = n;
	return 0;
fail:
	vnet_destroy(n);
	return ret;
}

struct virtio_mmio *vnet_transport(struct vnet *n)
{
	return &n->t;
}

void vnet_mac(const struct vnet *n, uint8_t mac[6])
{
	memcpy(mac, n->config + VNET_CFG_MAC, 6);
}

int vnet_set_limit(struct vnet *n, const struct ratelimit_spec *s)
{
	return ratelimit_offer(&n->rl_box, &n->ctl, s);
}

void vnet_get_limit(struct vnet *n, struct ratelimit_spec *out)
{
	ratelimit_current(&n->rl_box, &n->ctl, out);
}

void vnet_get_stats(const struct vnet *n, struct vnet_stats *out)
{
	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "vnet_stats holds uint64_t only");
	const uint64_t *src = (const uint64_t *)&n->stats;
	uint64_t *dst = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	out->needs_reset = atomic_load_explicit(&n->t.needs_reset_count, memory_order_relaxed);
}

void vnet_destroy(struct vnet *n)
{
	if (!n)
		return;
	if (n->thread_started) {
		devctl_want(&n->ctl, false, true, 0);
		pthread_join(n->thread, NULL);
		n->thread_started = false;
	}
	if (n->mmio_ready)
		virtio_mmio_fini(&n->t); /* its reset finds no thread and returns at once */
	if (n->ep_fd >= 0)
		close(n->ep_fd);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
	devctl_fini(&n->ctl);
	free(n);
}
