/* virtio_vsock: a virtio socket device (virtio 1.2 §5.10) whose host side is unix sockets. */
#ifndef KVMINI_VIRTIO_VSOCK_H
#define KVMINI_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/gmem.h"
#include "kvmini/log.h"
#include "kvmini/virtio_mmio.h"
#include "kvmini/vmerr.h"

#define VSOCK_HOST_CID	       2	   /* VMADDR_CID_HOST: the only peer a guest can reach */
#define VSOCK_MIN_CID	       3	   /* 0, 1 and 2 are reserved (§5.10.4) */
#define VSOCK_MAX_CID	       0xfffffffeU /* 0xffffffff is VMADDR_CID_ANY */
#define VSOCK_QUEUE_SIZE       256
#define VSOCK_HDR_LEN	       44    /* struct virtio_vsock_hdr (§5.10.6) */
#define VSOCK_MAX_PAYLOAD      65536 /* largest packet payload taken from or given to the guest */
#define VSOCK_MAX_CONNS	       256   /* connections (and host clients in handshake) at once */
#define VSOCK_BUF_ALLOC	       (256 << 10) /* guest-to-host bytes buffered per connection */
#define VSOCK_FIRST_LOCAL_PORT (1U << 30)  /* host-initiated connections' host ports start here */

/* One --vsock option. */
struct vsock_config {
	uint64_t cid;	      /* the guest's CID, VSOCK_MIN_CID..VSOCK_MAX_CID */
	const char *uds_path; /* host clients connect here; NULL: none (vsock_connect only) */
	/* Nonzero: a guest connection to this host port is a knock, the guest saying it is ready
	 * (the agent's, docs/agent-protocol.md): answered with RST and signalled on
	 * vsock_ready_fd(); "PATH_port" is never tried for it. */
	uint32_t ready_port;
	const struct confine *confine; /* the I/O thread's seccomp filter, or NULL */
};

/* What the device did, for tests and statistics. */
struct vsock_stats {
	uint64_t host_connects;	       /* host clients whose CONNECT reached a guest listener */
	uint64_t guest_connects;       /* guest connections a host listener PATH_PORT took */
	uint64_t refused;	       /* connection attempts answered with RST (either side) */
	uint64_t closed;	       /* connections ended (RST, shutdown, host socket gone) */
	uint64_t rx_packets, rx_bytes; /* packets and payload bytes given to the guest */
	uint64_t tx_packets, tx_bytes; /* packets and payload bytes taken from the guest */
	uint64_t bad_packets;	       /* bad op, type, len or credit: answered with RST */
	uint64_t bad_cid;	       /* packets with a wrong source or destination CID: dropped */
	uint64_t bad_handshake;	       /* host clients that sent no valid CONNECT line */
	uint64_t conn_limit;	       /* connections refused because VSOCK_MAX_CONNS are open */
	uint64_t timeouts;	       /* handshakes, connects or closes the peer never finished */
	uint64_t needs_reset;	       /* times the device entered DEVICE_NEEDS_RESET */
	uint64_t ready_knocks;	       /* guest connections to cfg->ready_port */
};

struct vsock;

/*
 * Set up the device named `name`: the transport (device id 19, rx queue 0, tx queue 1, event
 * queue 2, config space = the CID) and the I/O thread "vsock-<name>". With cfg->uds_path the
 * device listens there: a stale socket file is replaced, a path some process still listens on
 * is refused (KVMINI_EXIT_RESOURCE), as is a path that exists and is not a socket. `name` and
 * `log` must outlive the device. 0, or -errno with `e` set (a CID out of range, or a path too
 * long for a unix socket: KVMINI_EXIT_USAGE).
 */
int vsock_create(struct vsock **out, const struct vsock_config *cfg, const struct gmem *mem,
		 struct logger *log, const char *name, struct vmerr *e);

/* The device's transport: the VM registers its window and binds its eventfds. */
struct virtio_mmio *vsock_transport(struct vsock *v);

/* The guest's CID. */
uint64_t vsock_cid(const struct vsock *v);

/*
 * Hand the device a connected stream socket (one end of a socketpair) as if a host client had
 * connected to uds_path: the other end writes "CONNECT <port>\n", reads "OK <hostport>\n" and
 * then talks to the guest's listener on <port>; without a listener the socket is closed. The
 * device owns `fd` from here on, even when this fails. 0, -EAGAIN (too many sockets waiting
 * to be adopted: try again) or -ENODEV (the device is gone). Any thread.
 */
int vsock_connect(struct vsock *v, int fd);

/* An eventfd that becomes readable when the guest knocks on cfg->ready_port (the reader drains
 * it: host_eventfd_drain), or -1 without a ready_port. Owned by the device. */
int vsock_ready_fd(const struct vsock *v);

/* A snapshot of the counters (each read atomically; the set need not be consistent). */
void vsock_get_stats(const struct vsock *v, struct vsock_stats *out);

/* Pause (true) or resume the I/O thread: paused, it moves no packet and reads no socket. Not
 * from the I/O thread. */
void vsock_pause(struct vsock *v, bool paused);

/* Stop the I/O thread, reset the device, close every socket (and remove uds_path), free. NULL
 * is fine. */
void vsock_destroy(struct vsock *v);

#endif
