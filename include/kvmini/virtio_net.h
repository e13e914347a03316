/* virtio_net: a virtio network device (virtio 1.2 §5.1) on a Linux tap with vnet headers. */
#ifndef KVMINI_VIRTIO_NET_H
#define KVMINI_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/gmem.h"
#include "kvmini/log.h"
#include "kvmini/ratelimit.h"
#include "kvmini/virtio_mmio.h"
#include "kvmini/vmerr.h"

#define VNET_QUEUE_SIZE 256
#define VNET_HDR_LEN	12    /* struct virtio_net_hdr_v1, num_buffers included (§5.1.6) */
#define VNET_MAX_PACKET 65550 /* largest frame without the header: 64 KiB GSO + Ethernet */
#define VNET_MAX_FRAME	(VNET_MAX_PACKET + VNET_HDR_LEN)

/* One --net option. */
struct vnet_config {
	const char *tap; /* tap interface to open (vnet_create with tap_fd -1) */
	uint8_t mac[6];	 /* the guest's MAC when mac_set */
	bool mac_set;	 /* else derived with vnet_mac_from_name(tap, or the device name) */
	const struct confine *confine; /* the I/O thread's seccomp filter, or NULL */
	struct ratelimit_spec limit;   /* each direction: bytes and frames per second (0: none) */
};

/*
 * What the device did, for tests and statistics. Byte counts exclude the vnet header. Every
 * "dropped" frame is counted in exactly one field; a dropped tx frame still returns its chain.
 */
struct vnet_stats {
	uint64_t rx_frames, rx_bytes; /* frames delivered to the guest */
	uint64_t tx_frames, tx_bytes; /* frames written to the tap */
	uint64_t rx_oversize;	      /* tap frames longer than VNET_MAX_FRAME: dropped */
	uint64_t rx_short;	      /* tap frames shorter than the header: dropped */
	uint64_t rx_bad_offload; /* tap frames needing an offload the driver refused: dropped */
	uint64_t rx_no_room;	 /* frames no posted buffer can hold (see virtio_net.c): dropped */
	uint64_t rx_reset;	 /* frames waiting for buffers when the device was reset: dropped */
	uint64_t rx_errors;	 /* tap read errors */
	uint64_t rx_bad_chain;	 /* rx chains with a readable part or < 12 bytes: returned empty */
	uint64_t rx_stalls;	 /* times a frame had to wait for the driver to post rx buffers */
	uint64_t tx_short;	 /* tx chains shorter than the header: dropped */
	uint64_t tx_bad_chain;	 /* tx chains with a device-writable buffer: dropped */
	uint64_t tx_oversize;	 /* tx chains longer than VNET_MAX_FRAME: dropped */
	uint64_t tx_bad_offload; /* tx headers asking for an offload the driver did not accept */
	uint64_t tx_errors;	 /* tap write errors other than EAGAIN: dropped */
	uint64_t tx_blocked;  /* times a tap write hit EAGAIN and the frame waited (not dropped) */
	uint64_t needs_reset; /* times the device entered DEVICE_NEEDS_RESET (from the transport) */
	uint64_t rx_throttled, tx_throttled; /* times the rate limit held a direction back */
};

struct vnet;

/*
 * Open tap `ifname` (creating it when the caller may) with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
 * a 12-byte vnet header (TUNSETVNETHDRSZ), no offloads yet (TUNSETOFFLOAD 0) and O_NONBLOCK.
 * Returns the fd, or -errno with one line in `e`: an empty name, one longer than IFNAMSIZ-1
 * bytes or with '/', ':', '%' or white space (KVMINI_EXIT_USAGE); /dev/net/tun missing, no
 * permission (EPERM/EACCES), the tap in use by another process (EBUSY), an interface of that
 * name that is not a tap (EINVAL) (KVMINI_EXIT_RESOURCE); other failures KVMINI_EXIT_HOST.
 */
int vnet_open_tap(const char *ifname, struct vmerr *e);

/*
 * A stable MAC for `name` (e.g. the VM name): 52:54:00 (locally administered, unicast)
 * followed by three bytes of a 64-bit FNV-1a hash of the name. 0, or -EINVAL if name is NULL.
 */
int vnet_mac_from_name(const char *name, uint8_t mac[6]);

/*
 * Parse "xx:xx:xx:xx:xx:xx" (hex digits, either case). 0, or -EINVAL for bad syntax, a
 * multicast (broadcast included) or an all-zero address.
 */
int vnet_parse_mac(const char *s, uint8_t mac[6]);

/*
 * Set up the device named `name` on `tap_fd`, or on vnet_open_tap(cfg->tap) when tap_fd is -1:
 * the transport (device id 1, rx queue 0 and tx queue 1) and the I/O thread "net-<name>".
 * The device owns tap_fd from here on, even when this fails. An injected fd that is not a tap
 * (TUNGETIFF fails) gets no tap ioctls: each datagram read from or written to it is one frame
 * with the 12-byte vnet header in front (a socketpair for tests and fuzzing); an injected tap
 * must have IFF_VNET_HDR. `name` and `log` must outlive the device. 0, or -errno with `e` set.
 */
int vnet_create(struct vnet **out, const struct vnet_config *cfg, int tap_fd,
		const struct gmem *mem, struct logger *log, const char *name, struct vmerr *e);

/* The device's transport: the VM registers its window and binds its eventfds. */
struct virtio_mmio *vnet_transport(struct vnet *n);

/* The MAC in the config space. */
void vnet_mac(const struct vnet *n, uint8_t mac[6]);

/* A snapshot of the counters (each read atomically; the set need not be consistent). */
void vnet_get_stats(const struct vnet *n, struct vnet_stats *out);

/* Pause (true) or resume the I/O thread: paused, it moves no frame in either direction and
 * does not watch the tap; what arrived meanwhile is served after resume. Not from the I/O
 * thread. */
void vnet_pause(struct vnet *n, bool paused);

/* A new rate limit (each direction), taken by the I/O thread at its next wake (not waited for):
 * what is left in each bucket stays. 0, or -ENODEV once the thread is gone. */
int vnet_set_limit(struct vnet *n, const struct ratelimit_spec *s);

/* The limit last set (at create or by vnet_set_limit). */
void vnet_get_limit(struct vnet *n, struct ratelimit_spec *out);

/* Stop the I/O thread, reset the device, close the tap and free everything. NULL is fine. */
void vnet_destroy(struct vnet *n);

#endif
