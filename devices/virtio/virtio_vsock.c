/* virtio_vsock: a virtio socket device (virtio 1.2 §5.10) whose host side is unix sockets. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/devctl.h"
#include "kvmini/host.h"
#include "kvmini/le.h"
#include "kvmini/virtio_vsock.h"

/*
 * Design and behaviour choices:
 *
 * Host side (the convention of Firecracker, which Cloud Hypervisor follows). The device listens
 * on a unix socket PATH. A host client connects, writes "CONNECT <port>\n", and once the guest's
 * listener on <port> accepted (RESPONSE) it reads "OK <hostport>\n" and then has a byte stream;
 * if the guest refuses (RST), has no driver yet or does not answer within VSOCK_CONNECT_MS, the
 * client's socket is closed. A guest connecting to the host (CID 2) on port P reaches the unix
 * socket "PATH_P" if a program listens there; otherwise it gets RST. vsock_connect() adopts a
 * socketpair end as one more host client, for programs that embed the VM.
 *
 * Threads. One I/O thread ("vsock-<name>") owns the queues and every socket and sleeps in
 * epoll_wait() on the kick eventfds, a control eventfd, the listening socket and the
 * connections' sockets. vCPU threads only change the wanted state (activate, reset, pause)
 * and wait for the I/O thread to act (include/kvmini/devctl.h, as virtio_net.c does); sockets
 * from vsock_connect() wait in an inbox under the same lock. Lock order: the transport's lock,
 * then ctl.lock.
 *
 * Flow control (§5.10.6.3). Each direction is bounded. Guest to host: the device advertises
 * VSOCK_BUF_ALLOC bytes per connection and counts in fwd_cnt what it wrote to the host socket;
 * what the socket does not take at once waits in a per-connection ring of that size (allocated
 * on first need). A guest that sends beyond the credit it was given gets RST. A CREDIT_UPDATE
 * goes out when a quarter of the buffer was forwarded since the guest last heard fwd_cnt, and
 * on CREDIT_REQUEST. Host to guest: the device reads a host socket only while the guest has
 * credit for that connection (buf_alloc - (tx_cnt - fwd_cnt), computed so that values that
 * would wrap give no credit) and an rx buffer is posted; otherwise it stops watching the
 * socket, so a guest that never reads makes the host writer block in the kernel, and nothing
 * piles up here.
 *
 * Packets the device owes the guest (RESPONSE, RST, SHUTDOWN, CREDIT_UPDATE, REQUEST for host
 * clients) are flags on their connection, so they cannot pile up either; an RST for a packet
 * with no connection goes into a ring of VSOCK_ORPHAN_RSTS entries, and while that ring is full
 * the device stops taking tx packets until the guest posts rx buffers (back-pressure instead
 * of memory). Connections are served round-robin.
 *
 * Hostile guests. A tx chain that is not wholly device-readable or is shorter than the header,
 * or an rx chain that is not wholly device-writable or too short for the header, is malformed:
 * the device asks for DEVICE_NEEDS_RESET (§2.1.2). A well-formed chain with a bad packet (an
 * unknown op or type, len beyond the chain or above VSOCK_MAX_PAYLOAD, data beyond the credit,
 * a packet for a connection that does not exist) is answered with RST for that connection
 * (never for RST itself), counted, and the queue goes on. Packets whose source CID is not the
 * guest's or whose destination is not the host are dropped and counted. At most
 * VSOCK_MAX_CONNS connections exist; more attempts get RST.
 *
 * Closing. The guest's SHUTDOWN with SEND shuts the host socket's write side once the buffered
 * data went out; with both flags the connection ends (RST to the guest, socket closed) once it
 * went out. A host socket at EOF sends SHUTDOWN(SEND) to the guest; a host socket hung up
 * completely sends SHUTDOWN(both) and the connection ends at the guest's RST or after
 * VSOCK_CLOSE_MS. Device reset closes every connection. The event queue is never used (its
 * one event, TRANSPORT_RESET, is for snapshot restore).
 */

/* Header fields (§5.10.6), little-endian. */
#define HDR_SRC_CID   0
#define HDR_DST_CID   8
#define HDR_SRC_PORT  16
#define HDR_DST_PORT  20
#define HDR_LEN	      24
#define HDR_TYPE      28
#define HDR_OP	      30
#define HDR_FLAGS     32
#define HDR_BUF_ALLOC 36
#define HDR_FWD_CNT   40

#define VSOCK_TYPE_STREAM 1

enum {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SHUT_RCV	1
#define VSOCK_SHUT_SEND 2

#define VSOCK_RXQ 0
#define VSOCK_TXQ 1
#define VSOCK_EVQ 2

#define VSOCK_CONFIG_SIZE  8 /* le64 guest_cid */
#define VSOCK_ORPHAN_RSTS  64
#define VSOCK_INBOX	   16	/* sockets from vsock_connect() waiting to be adopted */
#define VSOCK_LINE_MAX	   32	/* "CONNECT 4294967295\n" fits */
#define VSOCK_HANDSHAKE_MS 5000 /* a host client must send its CONNECT line within this */
#define VSOCK_CONNECT_MS   2000 /* the guest must answer a REQUEST within this */
#define VSOCK_CLOSE_MS	   2000 /* the guest must answer SHUTDOWN(both) with RST within this */
#define VSOCK_BATCH	   64	/* packets per pass before other events get a turn */

/* epoll tags (data.u64): small constants, or a connection index + VSOCK_EV_CONN with its
 * generation in the upper 32 bits, so an event for a closed and reused slot is ignored. */
enum { VSOCK_EV_CTL, VSOCK_EV_RX_KICK, VSOCK_EV_TX_KICK, VSOCK_EV_EV_KICK, VSOCK_EV_LISTEN };
#define VSOCK_EV_CONN 16

enum vsock_state {
	VS_FREE,
	VS_HANDSHAKE,	/* a host client: waiting for its CONNECT line */
	VS_CONNECTING,	/* REQUEST owed or sent to the guest: waiting for RESPONSE */
	VS_ESTABLISHED, /* bytes flow */
	VS_CLOSING,	/* SHUTDOWN(both) owed or sent: waiting for the guest's RST */
};

/* Packets owed to the guest on a connection. */
#define OWE_REQUEST  1
#define OWE_RESPONSE 2
#define OWE_SHUTDOWN 4
#define OWE_CREDIT   8
#define OWE_RST	     16 /* last: the connection is freed once it went out */

struct vsock_conn {
	enum vsock_state state;
	uint32_t gen;
	int fd;
	uint32_t local_port; /* the host side's port */
	uint32_t peer_port;  /* the guest side's port */
	bool host_client;    /* the host connected (CONNECT line), not the guest */
	uint32_t owe;	     /* OWE_* */
	uint32_t shut_flags; /* for OWE_SHUTDOWN */
	uint64_t deadline_ns;

	/* The guest's receive side, as its last packet told us. */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt; /* payload bytes given to the guest */

	/* The guest's send side. */
	uint32_t rx_cnt;	    /* payload bytes taken from the guest */
	uint32_t fwd_cnt;	    /* of those, written to the host socket */
	uint32_t fwd_cnt_told;	    /* fwd_cnt as last sent in a header */
	uint8_t *buf;		    /* ring of VSOCK_BUF_ALLOC bytes, or NULL */
	uint32_t buf_head, buf_len; /* waiting bytes: [head, head+len) mod VSOCK_BUF_ALLOC */

	bool readable;	     /* the host socket may have bytes (or EOF) to read */
	bool host_eof;	     /* read returned 0 */
	bool host_hup;	     /* the host socket hung up both ways (EPOLLHUP) */
	bool peer_send_done; /* the guest said SHUTDOWN(SEND) */
	bool peer_rcv_done;  /* the guest said SHUTDOWN(RCV) */
	bool wr_shut;	     /* shutdown(SHUT_WR) done on the host socket */
	uint32_t events;     /* what epoll watches for fd (0 also when not registered) */
	bool registered;

	char line[VSOCK_LINE_MAX];
	unsigned int line_len;
};

struct vsock_orphan {
	uint32_t src_port, dst_port; /* as the RST carries them: host side, guest side */
};

struct vsock {
	struct virtio_mmio t;
	const struct gmem *mem;
	struct logger *log;
	const char *name;
	uint64_t cid;
	uint8_t config[VSOCK_CONFIG_SIZE];
	char *uds_path;
	int listen_fd;
	uint32_t ready_port;
	int ready_fd; /* eventfd: the guest knocked on ready_port */

	int ep_fd;
	pthread_t thread;
	bool mmio_ready, thread_started;

	/* The wanted state; the inbox of sockets from vsock_connect() is under ctl.lock too. */
	struct devctl ctl;
	int inbox[VSOCK_INBOX];
	unsigned int inbox_len;

	/* The I/O thread's own state. */
	bool active, paused, exiting;
	bool rx_pass_pending, tx_pass_pending, rx_pushed, tx_pushed;
	bool rx_stalled; /* no rx buffer: wait for a kick */
	bool rx_spare;	 /* rx_chain was popped and is unused */
	unsigned int nconns;
	unsigned int rr;    /* round-robin cursor */
	uint32_t next_port; /* next host port for a host client */
	struct vsock_orphan orphan[VSOCK_ORPHAN_RSTS];
	unsigned int orphan_head, orphan_len;
	struct vsock_conn conn[VSOCK_MAX_CONNS];
	struct virtq_chain rx_chain, tx_chain;
	uint8_t scratch[VSOCK_MAX_PAYLOAD];

	struct vsock_stats stats;
};

#define VSOCK_COUNT(v, field, n) __atomic_fetch_add(&(v)->stats.field, (n), __ATOMIC_RELAXED)

static uint64_t vsock_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- connections ---- */

/* Bytes the guest can still take on `c`: 0 when the counters would wrap (a lying guest). */
static uint32_t vsock_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static uint32_t vsock_conn_tag_gen(uint64_t tag)
{
	return (uint32_t)(tag >> 32);
}

/* Make epoll watch c->fd for what the connection waits for. */
static void vsock_conn_watch(struct vsock *v, struct vsock_conn *c)
{
	uint32_t want = 0;
	if (c->fd >= 0 && !c->host_hup && !v->paused) {
		if (c->state == VS_HANDSHAKE)
			want = EPOLLIN;
		else if (c->state == VS_ESTABLISHED) {
			if (!c->readable && !c->host_eof && !c->peer_rcv_done &&
			    vsock_peer_credit(c) > 0)
				want |= EPOLLIN;
			if (c->buf_len)
				want |= EPOLLOUT;
		}
	}
	if (c->registered && want == c->events)
		return;
	if (c->fd < 0 || (!want && !c->registered))
		return;
	struct epoll_event ev = {.events = want,
				 .data.u64 = (uint64_t)c->gen << 32 |
					     (uint64_t)(VSOCK_EV_CONN + (c - v->conn))};
	/* Registered with no events, epoll still reports EPOLLHUP: drop the fd instead. */
	int ret;
	if (!want) {
		ret = epoll_ctl(v->ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
		c->registered = false;
	} else {
		ret = epoll_ctl(v->ep_fd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd,
				&ev);
		c->registered = ret == 0;
	}
	c->events = want;
	if (ret < 0)
		log_err(v->log, "%s: cannot watch a socket: %s", v->name, strerror(errno));
}

static struct vsock_conn *vsock_conn_new(struct vsock *v, int fd, enum vsock_state state)
{
	if (v->nconns >= VSOCK_MAX_CONNS)
		return NULL;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conn[i];
		if (c->state != VS_FREE)
			continue;
		uint32_t gen = c->gen + 1;
		memset(c, 0, sizeof(*c));
		c->gen = gen;
		c->fd = fd;
		c->state = state;
		v->nconns++;
		return c;
	}
	return NULL;
}

static void vsock_conn_free(struct vsock *v, struct vsock_conn *c)
{
	if (c->state == VS_FREE)
		return;
	if (c->fd >= 0) {
		if (c->registered)
			epoll_ctl(v->ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	if (c->state != VS_HANDSHAKE)
		VSOCK_COUNT(v, closed, 1);
	free(c->buf);
	uint32_t gen = c->gen;
	memset(c, 0, sizeof(*c));
	c->gen = gen;
	c->fd = -1;
	c->state = VS_FREE;
	v->nconns--;
}

/* Owe the guest an RST on `c`: the connection ends once it went out. The host socket goes now. */
static void vsock_conn_reset(struct vsock *v, struct vsock_conn *c)
{
	if (c->fd >= 0) {
		if (c->registered)
			epoll_ctl(v->ep_fd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		c->registered = false;
	}
	c->owe = OWE_RST;
	c->readable = false;
	c->state = VS_CLOSING;
	v->rx_pass_pending = true;
}

static struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t local, uint32_t peer)
{
	if (!v->nconns)
		return NULL;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct vsock_conn *c = &v->conn[i];
		if (c->state != VS_FREE && c->state != VS_HANDSHAKE && c->local_port == local &&
		    c->peer_port == peer)
			return c;
	}
	return NULL;
}

static bool vsock_port_in_use(struct vsock *v, uint32_t port)
{
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conn[i].state > VS_HANDSHAKE && v->conn[i].local_port == port)
			return true;
	return false;
}

/* A host port for a host client: from VSOCK_FIRST_LOCAL_PORT on, skipping those in use. */
static uint32_t vsock_alloc_port(struct vsock *v)
{
	for (;;) {
		uint32_t p = v->next_port++;
		if (v->next_port < VSOCK_FIRST_LOCAL_PORT || v->next_port == UINT32_MAX)
			v->next_port = VSOCK_FIRST_LOCAL_PORT;
		if (!vsock_port_in_use(v, p))
			return p;
	}
}

/* Queue an RST for a packet without a connection; false if the ring is full. */
static bool vsock_orphan_rst(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	if (v->orphan_len == VSOCK_ORPHAN_RSTS)
		return false;
	struct vsock_orphan *o = &v->orphan[(v->orphan_head + v->orphan_len) % VSOCK_ORPHAN_RSTS];
	o->src_port = host_port;
	o->dst_port = guest_port;
	v->orphan_len++;
	v->rx_pass_pending = true;
	return true;
}

/* ---- guest to host: the ring buffer and the host socket's write side ---- */

/* Write what waits in c->buf to the host socket. 0, or -1 when the socket failed (reset). */
static int vsock_flush(struct vsock *v, struct vsock_conn *c)
{
	while (c->buf_len) {
		struct iovec iov[2];
		uint32_t first = VSOCK_BUF_ALLOC - c->buf_head;
		int n = 1;
		iov[0].iov_base = c->buf + c->buf_head;
		iov[0].iov_len = first < c->buf_len ? first : c->buf_len;
		if (first < c->buf_len) {
			iov[1].iov_base = c->buf;
			iov[1].iov_len = c->buf_len - first;
			n = 2;
		}
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->buf_head = (c->buf_head + (uint32_t)w) % VSOCK_BUF_ALLOC;
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	return 0;
}

/* Take `len` bytes from the guest for the host socket: write what it takes, buffer the rest.
 * 0, or -1 when the socket failed or the bytes exceed the credit (the caller resets). */
static int vsock_forward(struct vsock *v, struct vsock_conn *c, const uint8_t *p, uint32_t len)
{
	if (len > VSOCK_BUF_ALLOC - c->buf_len)
		return -1;
	c->rx_cnt += len;
	if (!c->buf_len) {
		while (len) {
			ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				return -1;
			}
			p += w;
			len -= (uint32_t)w;
			c->fwd_cnt += (uint32_t)w;
		}
	}
	if (!len)
		return 0;
	if (!c->buf) {
		c->buf = malloc(VSOCK_BUF_ALLOC);
		if (!c->buf) {
			log_err(v->log, "%s: out of memory for a connection buffer", v->name);
			return -1;
		}
		c->buf_head = 0;
	}
	uint32_t tail = (c->buf_head + c->buf_len) % VSOCK_BUF_ALLOC;
	uint32_t first = VSOCK_BUF_ALLOC - tail;
	if (first > len)
		first = len;
	memcpy(c->buf + tail, p, first);
	memcpy(c->buf, p + first, len - first);
	c->buf_len += len;
	return 0;
}

/* After bytes went out or arrived: owe a CREDIT_UPDATE once a quarter of the buffer was
 * forwarded unannounced; act on a SHUTDOWN once the buffer is empty. */
static void vsock_after_forward(struct vsock *v, struct vsock_conn *c)
{
	if (c->fwd_cnt - c->fwd_cnt_told >= VSOCK_BUF_ALLOC / 4)
		c->owe |= OWE_CREDIT;
	if (c->buf_len || !c->peer_send_done)
		return;
	if (c->peer_rcv_done || c->host_eof) {
		vsock_conn_reset(v, c); /* both directions are done */
		return;
	}
	if (!c->wr_shut) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
}

/* ---- host to guest: building packets in rx chains ---- */

/* Fill the 44-byte header of a packet on `c` (or an orphan RST when c is NULL). */
static void vsock_hdr(struct vsock *v, uint8_t *h, struct vsock_conn *c, uint32_t src_port,
		      uint32_t dst_port, uint16_t op, uint32_t flags, uint32_t len)
{
	memset(h, 0, VSOCK_HDR_LEN);
	le_put64(h + HDR_SRC_CID, VSOCK_HOST_CID);
	le_put64(h + HDR_DST_CID, v->cid);
	le_put32(h + HDR_SRC_PORT, src_port);
	le_put32(h + HDR_DST_PORT, dst_port);
	le_put32(h + HDR_LEN, len);
	le_put16(h + HDR_TYPE, VSOCK_TYPE_STREAM);
	le_put16(h + HDR_OP, op);
	le_put32(h + HDR_FLAGS, flags);
	if (c) {
		le_put32(h + HDR_BUF_ALLOC, VSOCK_BUF_ALLOC);
		le_put32(h + HDR_FWD_CNT, c->fwd_cnt);
		c->fwd_cnt_told = c->fwd_cnt;
	}
}

/* Get an rx chain for the next packet: 1, 0 (none: the device stalls until a kick), -EIO. */
static int vsock_rx_get(struct vsock *v)
{
	if (v->rx_spare)
		return 1;
	struct virtq *q = &v->t.vq[VSOCK_RXQ];
	int ret = virtq_pop(q, &v->rx_chain);
	if (ret < 0) {
		virtio_mmio_needs_reset(&v->t, "malformed rx chain");
		return -EIO;
	}
	if (ret == 0) {
		if (virtq_enable_notify(q))
			v->rx_pass_pending =
				true; /* buffers came meanwhile, or the budget ran out */
		else
			v->rx_stalled = true;
		return 0;
	}
	if (v->rx_chain.nr_readable || v->rx_chain.writable_len < VSOCK_HDR_LEN) {
		q->broken = true;
		virtio_mmio_needs_reset(&v->t, "rx chain readable or shorter than the header");
		return -EIO;
	}
	v->rx_spare = true;
	return 1;
}

/* Put the header in scratch-adjacent `h` and `len` payload bytes from v->scratch into the
 * chain held by vsock_rx_get(), and return it. 0, or -EIO. */
static int vsock_rx_put(struct vsock *v, const uint8_t *h, uint32_t len)
{
	struct virtq *q = &v->t.vq[VSOCK_RXQ];
	struct virtq_chain *ch = &v->rx_chain;
	if (virtq_chain_write(q, ch, 0, h, VSOCK_HDR_LEN) < 0 ||
	    (len && virtq_chain_write(q, ch, VSOCK_HDR_LEN, v->scratch, len) < 0) ||
	    virtq_push(q, ch->head, VSOCK_HDR_LEN + len) < 0) {
		q->broken = true;
		virtio_mmio_needs_reset(&v->t, "rx ring not in RAM");
		return -EIO;
	}
	v->rx_spare = false;
	v->rx_pushed = true;
	VSOCK_COUNT(v, rx_packets, 1);
	VSOCK_COUNT(v, rx_bytes, len);
	if (trace_on(v->t.trace, TRACE_VIRTIO))
		trace_emit(v->t.trace, "virtio %s rx op %u %u->%u len %u", v->name,
			   le_get16(h + HDR_OP), le_get32(h + HDR_SRC_PORT),
			   le_get32(h + HDR_DST_PORT), len);
	return 0;
}

/* The payload room of the chain held by vsock_rx_get(). */
static uint32_t vsock_rx_room(const struct vsock *v)
{
	uint64_t room = v->rx_chain.writable_len - VSOCK_HDR_LEN;
	return room > VSOCK_MAX_PAYLOAD ? VSOCK_MAX_PAYLOAD : (uint32_t)room;
}

/* Send the most urgent packet owed on `c`. 1 sent, 0 nothing owed, -1 no chain / broken. */
static int vsock_rx_owed(struct vsock *v, struct vsock_conn *c)
{
	if (!c->owe)
		return 0;
	int ret = vsock_rx_get(v);
	if (ret <= 0)
		return -1;
	uint8_t h[VSOCK_HDR_LEN];
	uint16_t op;
	uint32_t flags = 0, bit;
	if (c->owe & OWE_RST) {
		op = VSOCK_OP_RST;
		bit = OWE_RST;
	} else if (c->owe & OWE_REQUEST) {
		op = VSOCK_OP_REQUEST;
		bit = OWE_REQUEST;
	} else if (c->owe & OWE_RESPONSE) {
		op = VSOCK_OP_RESPONSE;
		bit = OWE_RESPONSE;
	} else if (c->owe & OWE_CREDIT) {
		op = VSOCK_OP_CREDIT_UPDATE;
		bit = OWE_CREDIT;
	} else {
		op = VSOCK_OP_SHUTDOWN;
		flags = c->shut_flags;
		bit = OWE_SHUTDOWN;
	}
	vsock_hdr(v, h, c, c->local_port, c->peer_port, op, flags, 0);
	if (vsock_rx_put(v, h, 0) < 0)
		return -1;
	c->owe &= ~bit;
	if (op == VSOCK_OP_RST)
		vsock_conn_free(v, c);
	else if (op == VSOCK_OP_REQUEST)
		c->deadline_ns = vsock_now_ns() + VSOCK_CONNECT_MS * 1000000ULL;
	else if (op == VSOCK_OP_SHUTDOWN && flags == (VSOCK_SHUT_RCV | VSOCK_SHUT_SEND))
		c->deadline_ns = vsock_now_ns() + VSOCK_CLOSE_MS * 1000000ULL;
	return 1;
}

/* The host socket reached EOF: tell the guest, and end the connection if both sides are done. */
static void vsock_host_eof(struct vsock *v, struct vsock_conn *c)
{
	c->host_eof = true;
	c->readable = false;
	v->rx_pass_pending = true;
	if (c->host_hup || c->peer_send_done) {
		c->owe |= OWE_SHUTDOWN;
		c->shut_flags = VSOCK_SHUT_RCV | VSOCK_SHUT_SEND;
		c->state = VS_CLOSING;
		c->deadline_ns = vsock_now_ns() + VSOCK_CLOSE_MS * 1000000ULL;
	} else {
		c->owe |= OWE_SHUTDOWN;
		c->shut_flags = VSOCK_SHUT_SEND;
	}
}

/* Read from the host socket of `c` into one packet. 1 sent, 0 nothing to send, -1 no chain. */
static int vsock_rx_data(struct vsock *v, struct vsock_conn *c)
{
	if (c->state != VS_ESTABLISHED || !c->readable || c->peer_rcv_done)
		return 0;
	uint32_t credit = vsock_peer_credit(c);
	if (!credit)
		return 0;
	int ret = vsock_rx_get(v);
	if (ret <= 0)
		return -1;
	uint32_t room = vsock_rx_room(v);
	if (room > credit)
		room = credit;
	ssize_t r;
	do {
		r = recv(c->fd, v->scratch, room, MSG_DONTWAIT);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->readable = false;
			return 0;
		}
		vsock_conn_reset(v, c);
		return 0;
	}
	if (r == 0) {
		vsock_host_eof(v, c);
		return 0;
	}
	uint8_t h[VSOCK_HDR_LEN];
	vsock_hdr(v, h, c, c->local_port, c->peer_port, VSOCK_OP_RW, 0, (uint32_t)r);
	if (vsock_rx_put(v, h, (uint32_t)r) < 0)
		return -1;
	c->tx_cnt += (uint32_t)r;
	return 1;
}

/* Give the guest what is owed and what the host sockets have, until the ring or the batch is
 * exhausted. Orphan RSTs first, then connections round-robin, one packet each per turn. */
static void vsock_rx_pass(struct vsock *v)
{
	v->rx_pass_pending = false;
	struct virtq *q = &v->t.vq[VSOCK_RXQ];
	if (!v->active || v->rx_stalled || !q->size || q->broken)
		return;
	virtq_begin_pass(q);
	unsigned int sent = 0;
	while (v->orphan_len && sent < VSOCK_BATCH) {
		if (vsock_rx_get(v) <= 0)
			return;
		struct vsock_orphan *o = &v->orphan[v->orphan_head];
		uint8_t h[VSOCK_HDR_LEN];
		vsock_hdr(v, h, NULL, o->src_port, o->dst_port, VSOCK_OP_RST, 0, 0);
		if (vsock_rx_put(v, h, 0) < 0)
			return;
		v->orphan_head = (v->orphan_head + 1) % VSOCK_ORPHAN_RSTS;
		v->orphan_len--;
		v->tx_pass_pending = true; /* tx may have waited for room in the ring */
		sent++;
	}
	bool progress = true;
	while (progress && sent < VSOCK_BATCH && v->nconns) {
		progress = false;
		for (unsigned int n = 0; n < VSOCK_MAX_CONNS && sent < VSOCK_BATCH; n++) {
			struct vsock_conn *c = &v->conn[(v->rr + n) % VSOCK_MAX_CONNS];
			if (c->state == VS_FREE || c->state == VS_HANDSHAKE)
				continue;
			int ret = vsock_rx_owed(v, c);
			if (ret == 0)
				ret = vsock_rx_data(v, c);
			if (ret < 0)
				return;
			if (ret > 0) {
				sent++;
				progress = true;
			}
		}
		v->rr = (v->rr + 1) % VSOCK_MAX_CONNS;
	}
	if (sent >= VSOCK_BATCH)
		v->rx_pass_pending = true;
}

/* ---- guest to host: tx packets ---- */

/* A guest REQUEST to host port `port`: connect to "PATH_port". */
static void vsock_guest_connect(struct vsock *v, uint32_t port, uint32_t guest_port,
				const uint8_t *h)
{
	if (v->ready_port && port == v->ready_port) {
		/* A knock: wake whoever waits for the guest, and refuse the connection. The
		 * counter only fails to grow at 2^64 - 2 knocks, still readable then. */
		uint64_t one = 1;
		ssize_t w = write(v->ready_fd, &one, sizeof(one));
		(void)w;
		VSOCK_COUNT(v, ready_knocks, 1);
		vsock_orphan_rst(v, port, guest_port);
		return;
	}
	int fd = -1;
	if (v->uds_path && v->nconns < VSOCK_MAX_CONNS) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%" PRIu32, v->uds_path,
				 port);
		if (n > 0 && (size_t)n < sizeof(sa.sun_path)) {
			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
				close(fd);
				fd = -1;
			}
		}
	} else if (v->nconns >= VSOCK_MAX_CONNS) {
		VSOCK_COUNT(v, conn_limit, 1);
	}
	struct vsock_conn *c = fd >= 0 ? vsock_conn_new(v, fd, VS_ESTABLISHED) : NULL;
	if (!c) {
		if (fd >= 0)
			close(fd);
		VSOCK_COUNT(v, refused, 1);
		vsock_orphan_rst(v, port, guest_port);
		return;
	}
	c->local_port = port;
	c->peer_port = guest_port;
	c->peer_buf_alloc = le_get32(h + HDR_BUF_ALLOC);
	c->peer_fwd_cnt = le_get32(h + HDR_FWD_CNT);
	c->owe = OWE_RESPONSE;
	c->readable = true; /* the listener may have written already */
	VSOCK_COUNT(v, guest_connects, 1);
	vsock_conn_watch(v, c);
}

/* A packet on connection `c` that breaks the rules: RST it. */
static void vsock_bad_packet(struct vsock *v, struct vsock_conn *c, uint32_t host_port,
			     uint32_t guest_port, uint16_t op, const char *why)
{
	VSOCK_COUNT(v, bad_packets, 1);
	log_guest(v->log, LOG_DEBUG, "%s: bad packet (op %u, %u->%u): %s", v->name, op, guest_port,
		  host_port, why);
	if (c)
		vsock_conn_reset(v, c);
	else if (op != VSOCK_OP_RST)
		vsock_orphan_rst(v, host_port, guest_port);
}

/* Tell a host client its connection stands: "OK <hostport>\n". 0 or -1. */
static int vsock_send_ok(struct vsock_conn *c)
{
	char ok[24];
	int n = snprintf(ok, sizeof(ok), "OK %" PRIu32 "\n", c->local_port);
	return send(c->fd, ok, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n ? 0 : -1;
}

/* The guest's packet `h` with `len` payload bytes in the tx chain, on an existing `c`. */
static void vsock_tx_conn(struct vsock *v, struct vsock_conn *c, const uint8_t *h, uint32_t len)
{
	uint16_t op = le_get16(h + HDR_OP);
	uint32_t flags = le_get32(h + HDR_FLAGS);
	c->peer_buf_alloc = le_get32(h + HDR_BUF_ALLOC);
	c->peer_fwd_cnt = le_get32(h + HDR_FWD_CNT);
	switch (op) {
	case VSOCK_OP_RST:
		vsock_conn_free(v, c);
		return;
	case VSOCK_OP_RESPONSE:
		if (c->state != VS_CONNECTING || !c->host_client || (c->owe & OWE_REQUEST))
			break;
		if (vsock_send_ok(c) < 0) {
			vsock_conn_reset(v, c);
			return;
		}
		c->state = VS_ESTABLISHED;
		c->deadline_ns = 0;
		c->readable = true;
		VSOCK_COUNT(v, host_connects, 1);
		return;
	case VSOCK_OP_SHUTDOWN:
		if (c->state != VS_ESTABLISHED && c->state != VS_CLOSING)
			break;
		if (flags & VSOCK_SHUT_SEND)
			c->peer_send_done = true;
		if (flags & VSOCK_SHUT_RCV)
			c->peer_rcv_done = true;
		if (c->peer_send_done && (c->peer_rcv_done || c->host_eof)) {
			c->peer_rcv_done = true;
			if (c->state == VS_CLOSING && !(c->owe & OWE_SHUTDOWN)) {
				vsock_conn_reset(v, c);
				return;
			}
		}
		vsock_after_forward(v, c);
		return;
	case VSOCK_OP_RW:
		if (c->state != VS_ESTABLISHED || c->peer_send_done)
			break;
		if (virtq_chain_read(&v->t.vq[VSOCK_TXQ], &v->tx_chain, VSOCK_HDR_LEN, v->scratch,
				     len) < 0 ||
		    vsock_forward(v, c, v->scratch, len) < 0) {
			if (len > VSOCK_BUF_ALLOC - c->buf_len)
				vsock_bad_packet(v, c, c->local_port, c->peer_port, op,
						 "data beyond the credit");
			else
				vsock_conn_reset(v, c);
			return;
		}
		vsock_after_forward(v, c);
		return;
	case VSOCK_OP_CREDIT_UPDATE:
		return; /* the counters above are the update */
	case VSOCK_OP_CREDIT_REQUEST:
		c->owe |= OWE_CREDIT;
		return;
	case VSOCK_OP_REQUEST: /* for a connection that exists */
	default:
		break;
	}
	vsock_bad_packet(v, c, c->local_port, c->peer_port, op, "unexpected op for the state");
}

/* Take one tx packet. 1 done, 0 cannot now (nothing available, or no room for an RST), -EIO. */
static int vsock_tx_one(struct vsock *v)
{
	struct virtq *q = &v->t.vq[VSOCK_TXQ];
	if (v->orphan_len == VSOCK_ORPHAN_RSTS)
		return 0; /* back-pressure: the guest must take its RSTs first */
	struct virtq_chain *ch = &v->tx_chain;
	int ret = virtq_pop(q, ch);
	if (ret < 0) {
		virtio_mmio_needs_reset(&v->t, "malformed tx chain");
		return -EIO;
	}
	if (ret == 0)
		return 0;
	uint8_t h[VSOCK_HDR_LEN];
	if (ch->nr_readable != ch->nr || ch->readable_len < VSOCK_HDR_LEN ||
	    virtq_chain_read(q, ch, 0, h, VSOCK_HDR_LEN) < 0) {
		q->broken = true;
		virtio_mmio_needs_reset(&v->t, "tx chain writable or shorter than the header");
		return -EIO;
	}
	uint64_t src_cid = le_get64(h + HDR_SRC_CID), dst_cid = le_get64(h + HDR_DST_CID);
	uint32_t src_port = le_get32(h + HDR_SRC_PORT), dst_port = le_get32(h + HDR_DST_PORT);
	uint32_t len = le_get32(h + HDR_LEN);
	uint16_t type = le_get16(h + HDR_TYPE), op = le_get16(h + HDR_OP);
	VSOCK_COUNT(v, tx_packets, 1);
	if (trace_on(v->t.trace, TRACE_VIRTIO))
		trace_emit(v->t.trace, "virtio %s tx op %u %u->%u len %u", v->name, op, src_port,
			   dst_port, len);
	if (src_cid != v->cid || dst_cid != VSOCK_HOST_CID) {
		VSOCK_COUNT(v, bad_cid, 1);
		log_guest(v->log, LOG_DEBUG,
			  "%s: dropped a packet from CID %" PRIu64 " to %" PRIu64, v->name, src_cid,
			  dst_cid);
	} else {
		struct vsock_conn *c = vsock_conn_find(v, dst_port, src_port);
		if (len > VSOCK_MAX_PAYLOAD || len > ch->readable_len - VSOCK_HDR_LEN)
			vsock_bad_packet(v, c, dst_port, src_port, op, "len beyond the buffer");
		else if (type != VSOCK_TYPE_STREAM)
			vsock_bad_packet(v, c, dst_port, src_port, op, "not a stream packet");
		else if (c)
			vsock_tx_conn(v, c, h, len);
		else if (op == VSOCK_OP_REQUEST)
			vsock_guest_connect(v, dst_port, src_port, h);
		else if (op != VSOCK_OP_RST)
			vsock_bad_packet(v, NULL, dst_port, src_port, op, "no such connection");
		if (op == VSOCK_OP_RW)
			VSOCK_COUNT(v, tx_bytes, len);
	}
	if (virtq_push(q, ch->head, 0) < 0) {
		q->broken = true;
		virtio_mmio_needs_reset(&v->t, "tx ring not in RAM");
		return -EIO;
	}
	v->tx_pushed = true;
	v->rx_pass_pending = true; /* a packet may have made a reply owed */
	return 1;
}

static void vsock_tx_pass(struct vsock *v)
{
	v->tx_pass_pending = false;
	struct virtq *q = &v->t.vq[VSOCK_TXQ];
	if (!v->active || !q->size || q->broken)
		return;
	virtq_begin_pass(q);
	for (unsigned int n = 0; n < VSOCK_BATCH; n++) {
		int ret = vsock_tx_one(v);
		if (ret < 0)
			return;
		if (ret == 0) {
			if (v->orphan_len < VSOCK_ORPHAN_RSTS && virtq_enable_notify(q))
				v->tx_pass_pending = true;
			return;
		}
	}
	v->tx_pass_pending = true;
}

/* ---- host clients: accept, the CONNECT line ---- */

static void vsock_adopt(struct vsock *v, int fd)
{
	struct vsock_conn *c = vsock_conn_new(v, fd, VS_HANDSHAKE);
	if (!c) {
		VSOCK_COUNT(v, conn_limit, 1);
		close(fd);
		return;
	}
	c->host_client = true;
	c->deadline_ns = vsock_now_ns() + VSOCK_HANDSHAKE_MS * 1000000ULL;
	vsock_conn_watch(v, c);
}

static void vsock_accept(struct vsock *v)
{
	for (unsigned int n = 0; n < 16; n++) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_err(v->log, "%s: accept on %s failed: %s", v->name, v->uds_path,
					strerror(errno));
			return;
		}
		vsock_adopt(v, fd);
	}
}

/* Parse "CONNECT <port>" (the newline already removed). */
static bool vsock_parse_connect(const char *s, uint32_t *port)
{
	if (strncmp(s, "CONNECT ", 8))
		return false;
	s += 8;
	if (*s < '0' || *s > '9')
		return false;
	uint64_t p = 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		p = p * 10 + (uint64_t)(*s - '0');
		if (p > UINT32_MAX)
			return false;
	}
	if (*s == '\r')
		s++;
	if (*s)
		return false;
	*port = (uint32_t)p;
	return true;
}

/* Bytes arrived from a host client in handshake: read up to and including the newline only
 * (what follows is for the guest). */
static void vsock_handshake(struct vsock *v, struct vsock_conn *c)
{
	char buf[VSOCK_LINE_MAX];
	ssize_t r = recv(c->fd, buf, sizeof(buf) - c->line_len, MSG_PEEK | MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0)
		goto bad;
	char *nl = memchr(buf, '\n', (size_t)r);
	size_t take = nl ? (size_t)(nl - buf) + 1 : (size_t)r;
	if (recv(c->fd, c->line + c->line_len, take, MSG_DONTWAIT) != (ssize_t)take)
		goto bad;
	c->line_len += (unsigned int)take;
	if (!nl) {
		if (c->line_len >= VSOCK_LINE_MAX - 1)
			goto bad;
		return;
	}
	c->line[c->line_len - 1] = '\0';
	uint32_t port;
	if (!vsock_parse_connect(c->line, &port))
		goto bad;
	if (!v->active) {
		VSOCK_COUNT(v, refused, 1);
		vsock_conn_free(v, c);
		return;
	}
	c->state = VS_CONNECTING;
	c->peer_port = port;
	c->local_port = vsock_alloc_port(v);
	c->owe = OWE_REQUEST;
	c->deadline_ns = vsock_now_ns() + VSOCK_CONNECT_MS * 1000000ULL;
	v->rx_pass_pending = true;
	vsock_conn_watch(v, c);
	return;
bad:
	VSOCK_COUNT(v, bad_handshake, 1);
	vsock_conn_free(v, c);
}

static void vsock_conn_event(struct vsock *v, uint64_t tag, uint32_t events)
{
	uint32_t idx = (uint32_t)tag - VSOCK_EV_CONN;
	if (idx >= VSOCK_MAX_CONNS)
		return;
	struct vsock_conn *c = &v->conn[idx];
	if (c->state == VS_FREE || c->gen != vsock_conn_tag_gen(tag) || c->fd < 0)
		return;
	if (c->state == VS_HANDSHAKE) {
		if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			vsock_handshake(v, c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR)) {
		c->host_hup = true;
		if (c->state == VS_CONNECTING) {
			VSOCK_COUNT(v, refused, 1);
			vsock_conn_reset(v, c);
			v->rx_pass_pending = true;
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		c->readable = true;
		v->rx_pass_pending = true;
	}
	if ((events & EPOLLOUT) && c->buf_len) {
		if (vsock_flush(v, c) < 0)
			vsock_conn_reset(v, c);
		else
			vsock_after_forward(v, c);
		v->rx_pass_pending = true;
	}
}

/* Connections whose peer is late: a handshake, a REQUEST or a SHUTDOWN(both) unanswered. */
static uint64_t vsock_check_deadlines(struct vsock *v)
{
	uint64_t now = vsock_now_ns(), next = 0;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS && v->nconns; i++) {
		struct vsock_conn *c = &v->conn[i];
		if (c->state == VS_FREE || !c->deadline_ns)
			continue;
		if (c->deadline_ns > now) {
			if (!next || c->deadline_ns < next)
				next = c->deadline_ns;
			continue;
		}
		VSOCK_COUNT(v, timeouts, 1);
		if (c->state == VS_HANDSHAKE) {
			vsock_conn_free(v, c);
		} else if (c->owe & OWE_RST) {
			vsock_conn_free(v, c); /* the guest takes no rx buffers at all */
		} else {
			vsock_conn_reset(v, c);
			c->deadline_ns = now + VSOCK_CLOSE_MS * 1000000ULL;
			v->rx_pass_pending = true;
			next = !next || c->deadline_ns < next ? c->deadline_ns : next;
		}
	}
	return next;
}

/* ---- control and the loop ---- */

static int vsock_watch_fd(struct vsock *v, int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	return epoll_ctl(v->ep_fd, EPOLL_CTL_ADD, fd, &ev);
}

static void vsock_close_all(struct vsock *v)
{
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		if (v->conn[i].state != VS_FREE)
			vsock_conn_free(v, &v->conn[i]);
	v->orphan_len = 0;
	v->orphan_head = 0;
}

static void vsock_control(struct vsock *v)
{
	int inbox[VSOCK_INBOX];
	pthread_mutex_lock(&v->ctl.lock);
	unsigned int nin = v->inbox_len;
	memcpy(inbox, v->inbox, sizeof(int) * nin);
	v->inbox_len = 0;
	pthread_mutex_unlock(&v->ctl.lock);
	struct devctl_state st;
	devctl_snapshot(&v->ctl, &st);
	bool run = st.run, stop = st.stop, paused = st.paused;

	for (unsigned int i = 0; i < nin; i++)
		vsock_adopt(v, inbox[i]);
	if (v->paused != paused) {
		v->paused = paused;
		/* Level-triggered: a paused device must not watch what it will not serve. */
		if (v->listen_fd >= 0 && paused)
			epoll_ctl(v->ep_fd, EPOLL_CTL_DEL, v->listen_fd, NULL);
		else if (v->listen_fd >= 0 && vsock_watch_fd(v, v->listen_fd, VSOCK_EV_LISTEN) < 0)
			log_err(v->log, "%s: cannot watch %s: %s", v->name, v->uds_path,
				strerror(errno));
		for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
			if (v->conn[i].state != VS_FREE)
				vsock_conn_watch(v, &v->conn[i]);
		if (!paused)
			v->rx_pass_pending = v->tx_pass_pending = true;
	}
	if (!run && v->active) {
		v->active = false;
		vsock_close_all(v);
		v->rx_spare = false;
		v->rx_stalled = false;
		v->rx_pass_pending = v->tx_pass_pending = false;
		v->rx_pushed = v->tx_pushed = false;
	}
	if (run && !v->active) {
		v->active = true;
		v->rx_pass_pending = v->tx_pass_pending = true;
	}
	if (stop)
		v->exiting = true;
	devctl_ack(&v->ctl, st.gen);
}

static void vsock_event(struct vsock *v, const struct epoll_event *ev)
{
	switch (ev->data.u64) {
	case VSOCK_EV_CTL:
		devctl_drain(&v->ctl);
		vsock_control(v);
		break;
	case VSOCK_EV_RX_KICK:
		host_eventfd_drain(v->t.kick_fd[VSOCK_RXQ]);
		v->rx_stalled = false;
		v->rx_pass_pending = v->active;
		break;
	case VSOCK_EV_TX_KICK:
		host_eventfd_drain(v->t.kick_fd[VSOCK_TXQ]);
		v->tx_pass_pending = v->active;
		break;
	case VSOCK_EV_EV_KICK:
		host_eventfd_drain(v->t.kick_fd[VSOCK_EVQ]); /* event buffers are kept for later */
		break;
	case VSOCK_EV_LISTEN:
		if (!v->paused)
			vsock_accept(v);
		break;
	default:
		if (!v->paused)
			vsock_conn_event(v, ev->data.u64, ev->events);
		break;
	}
}

static void vsock_flush_irq(struct vsock *v)
{
	bool irq = false;
	if (v->rx_pushed && v->active)
		irq = virtq_need_interrupt(&v->t.vq[VSOCK_RXQ]);
	if (v->tx_pushed && v->active)
		irq = virtq_need_interrupt(&v->t.vq[VSOCK_TXQ]) || irq;
	v->rx_pushed = v->tx_pushed = false;
	if (irq)
		virtio_mmio_notify_vring(&v->t);
}

static void *vsock_thread(void *arg)
{
	struct vsock *v = arg;
	uint64_t next_deadline = 0;
	while (!v->exiting) {
		if (!v->paused) {
			if (v->tx_pass_pending)
				vsock_tx_pass(v);
			if (v->rx_pass_pending)
				vsock_rx_pass(v);
			if (v->nconns)
				next_deadline = vsock_check_deadlines(v);
			for (unsigned int i = 0; i < VSOCK_MAX_CONNS && v->nconns; i++)
				if (v->conn[i].state != VS_FREE)
					vsock_conn_watch(v, &v->conn[i]);
		}
		vsock_flush_irq(v);
		int timeout = -1;
		if ((v->rx_pass_pending && !v->rx_stalled) || v->tx_pass_pending)
			timeout = v->paused ? -1 : 0;
		else if (next_deadline && !v->paused) {
			uint64_t now = vsock_now_ns();
			timeout = next_deadline <= now
					  ? 0
					  : (int)((next_deadline - now) / 1000000ULL) + 1;
		}
		struct epoll_event ev[16];
		int nr = epoll_wait(v->ep_fd, ev, 16, timeout);
		if (nr < 0 && errno != EINTR) {
			log_err(v->log, "%s: epoll_wait failed: %s", v->name, strerror(errno));
			nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
		}
		for (int i = 0; i < nr; i++)
			vsock_event(v, &ev[i]);
	}
	vsock_close_all(v);
	devctl_gone(&v->ctl);
	return NULL;
}

/* ---- other threads: wanted state ---- */

void vsock_pause(struct vsock *v, bool paused)
{
	devctl_pause(&v->ctl, paused);
}

int vsock_connect(struct vsock *v, int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return -EINVAL;
	}
	if (!devctl_lock(&v->ctl)) {
		close(fd);
		return -ENODEV;
	}
	if (v->ctl.want_exit || v->inbox_len == VSOCK_INBOX) {
		int err = v->ctl.want_exit ? -ENODEV : -EAGAIN;
		pthread_mutex_unlock(&v->ctl.lock);
		close(fd);
		return err;
	}
	v->inbox[v->inbox_len++] = fd;
	devctl_publish(&v->ctl);
	return 0;
}

static int vsock_activate(void *dev)
{
	struct vsock *v = dev;
	return devctl_want(&v->ctl, true, false, 0) ? 0 : -ENODEV;
}

static void vsock_reset(void *dev)
{
	struct vsock *v = dev;
	uint64_t gen = devctl_want(&v->ctl, false, false, 0);
	if (gen)
		devctl_wait(&v->ctl, gen);
}

static void vsock_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct vsock *v = dev;
	if (off > VSOCK_CONFIG_SIZE || len > VSOCK_CONFIG_SIZE - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, v->config + off, len);
}

static void vsock_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	/* guest_cid is read-only (§5.10.4). */
}

static const struct virtio_dev_ops vsock_ops = {
	.activate = vsock_activate,
	.reset = vsock_reset,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
};

/* ---- set-up and teardown ---- */

/* Listen on `path`: a stale socket file is replaced, a live one or a non-socket refused. */
static int vsock_listen(struct vsock *v, const char *path, struct vmerr *e)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	/* PATH_<port> must fit too: leave room for "_4294967295". */
	if (!*path || strlen(path) + 11 >= sizeof(sa.sun_path))
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0,
				 "--vsock uds=%s: the path must be 1 to %zu bytes long", path,
				 sizeof(sa.sun_path) - 12);
	memcpy(sa.sun_path, path, strlen(path));
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
					 "--vsock uds=%s exists and is not a socket", path);
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
					 "--vsock uds=%s is in use by another program", path);
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	v->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (v->listen_fd < 0)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "cannot create a socket");
	/* 0600 whatever the umask: only the VM's owner may reach its guest's listeners. */
	if (bind(v->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(v->listen_fd, 64) < 0) {
		int err = errno;
		close(v->listen_fd);
		v->listen_fd = -1;
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, err, "cannot listen on --vsock uds=%s",
				 path);
	}
	v->uds_path = strdup(path);
	if (!v->uds_path) {
		unlink(path);
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, ENOMEM, "cannot allocate %s", v->name);
	}
	return 0;
}

int vsock_create(struct vsock **out, const struct vsock_config *cfg, const struct gmem *mem,
		 struct logger *log, const char *name, struct vmerr *e)
{
	*out = NULL;
	if (cfg->cid < VSOCK_MIN_CID || cfg->cid > VSOCK_MAX_CID)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0,
				 "--vsock cid=%" PRIu64 ": the CID must be %u to %u", cfg->cid,
				 VSOCK_MIN_CID, VSOCK_MAX_CID);
	struct vsock *v = calloc(1, sizeof(*v));
	if (!v)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, ENOMEM, "cannot allocate %s", name);
	v->mem = mem;
	v->log = log;
	v->name = name;
	v->cid = cfg->cid;
	v->listen_fd = v->ep_fd = v->ready_fd = -1;
	v->next_port = VSOCK_FIRST_LOCAL_PORT;
	for (unsigned int i = 0; i < VSOCK_MAX_CONNS; i++)
		v->conn[i].fd = -1;
	le_put64(v->config, v->cid);

	int ret = devctl_init(&v->ctl, EFD_NONBLOCK);
	if (ret < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot set up %s", name);
		goto fail;
	}
	if (cfg->uds_path) {
		ret = vsock_listen(v, cfg->uds_path, e);
		if (ret < 0)
			goto fail;
	}
	if (cfg->ready_port) {
		v->ready_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->ready_fd < 0) {
			ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "cannot set up %s", name);
			goto fail;
		}
		v->ready_port = cfg->ready_port;
	}
	v->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (v->ep_fd < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "cannot set up %s", name);
		goto fail;
	}
	struct virtio_dev_info info = {
		.device_id = 19, /* §5.10.1 */
		.features = 0,	 /* stream sockets only (§5.10.3) */
		.config_size = VSOCK_CONFIG_SIZE,
		.nr_queues = 3, /* §5.10.2: rx, tx, event */
		.queue_max = VSOCK_QUEUE_SIZE,
	};
	ret = virtio_mmio_init(&v->t, mem, log, name, &info, &vsock_ops, v);
	if (ret < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot set up the transport of %s",
				name);
		goto fail;
	}
	v->mmio_ready = true;
	if (vsock_watch_fd(v, v->ctl.fd, VSOCK_EV_CTL) < 0 ||
	    vsock_watch_fd(v, v->t.kick_fd[VSOCK_RXQ], VSOCK_EV_RX_KICK) < 0 ||
	    vsock_watch_fd(v, v->t.kick_fd[VSOCK_TXQ], VSOCK_EV_TX_KICK) < 0 ||
	    vsock_watch_fd(v, v->t.kick_fd[VSOCK_EVQ], VSOCK_EV_EV_KICK) < 0 ||
	    (v->listen_fd >= 0 && vsock_watch_fd(v, v->listen_fd, VSOCK_EV_LISTEN) < 0)) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "cannot set up %s", name);
		goto fail;
	}
	v->ctl.alive = true;
	char tname[16];
	snprintf(tname, sizeof(tname), "vsock-%s", name);
	ret = host_thread_start(&v->thread, vsock_thread, v, tname, cfg->confine, CONFINE_VSOCK);
	if (ret) {
		v->ctl.alive = false;
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot start the I/O thread of %s",
				name);
		goto fail;
	}
	v->thread_started = true;
	*out = v;
	return 0;
fail:
	vsock_destroy(v);
	return ret;
}

struct virtio_mmio *vsock_transport(struct vsock *v)
{
	return &v->t;
}

uint64_t vsock_cid(const struct vsock *v)
{
	return v->cid;
}

int vsock_ready_fd(const struct vsock *v)
{
	return v->ready_fd;
}

void vsock_get_stats(const struct vsock *v, struct vsock_stats *out)
{
	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "vsock_stats holds uint64_t only");
	const uint64_t *src = (const uint64_t *)&v->stats;
	uint64_t *dst = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	out->needs_reset = atomic_load_explicit(&v->t.needs_reset_count, memory_order_relaxed);
}

void vsock_destroy(struct vsock *v)
{
	if (!v)
		return;
	if (v->thread_started) {
		devctl_want(&v->ctl, false, true, 0);
		pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
	if (v->mmio_ready)
		virtio_mmio_fini(&v->t);
	vsock_close_all(v);
	for (unsigned int i = 0; i < v->inbox_len; i++)
		close(v->inbox[i]);
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->uds_path) {
		unlink(v->uds_path);
		free(v->uds_path);
	}
	if (v->ep_fd >= 0)
		close(v->ep_fd);
	if (v->ready_fd >= 0)
		close(v->ready_fd);
	devctl_fini(&v->ctl);
	free(v);
}
