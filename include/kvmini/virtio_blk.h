/* virtio_blk: a virtio block device (virtio 1.2 §5.2) on a raw image, its I/O on io_uring. */
#ifndef KVMINI_VIRTIO_BLK_H
#define KVMINI_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/gmem.h"
#include "kvmini/log.h"
#include "kvmini/ratelimit.h"
#include "kvmini/virtio_mmio.h"
#include "kvmini/vmerr.h"

#define VBLK_SERIAL_MAX 20 /* VIRTIO_BLK_ID_BYTES */
#define VBLK_QUEUE_SIZE 256
#define VBLK_SEG_MAX	126 /* data buffers per request: queue size minus header and status */
#define VBLK_SIZE_MAX	(1U << 20)
/* The most bytes one read or write may move: what a driver that follows SEG_MAX and SIZE_MAX
 * can build (126 MiB). A longer request is answered IOERR. */
#define VBLK_REQ_MAX ((uint64_t)VBLK_SEG_MAX * VBLK_SIZE_MAX)
/* io_uring kernel workers that may block on one disk's file at once (bounded: file I/O,
 * fsync, fallocate; unbounded: anything that may wait for ever). */
#define VBLK_IOWQ_BOUNDED   8
#define VBLK_IOWQ_UNBOUNDED 2

enum vblk_cache {
	VBLK_CACHE_WRITEBACK, /* FLUSH advertised; each flush is an fdatasync */
	VBLK_CACHE_UNSAFE,    /* FLUSH advertised but answered at once without syncing */
};

/* One --disk option. */
struct vblk_config {
	const char *path;
	bool readonly;
	const char *serial; /* GET_ID answer (<= VBLK_SERIAL_MAX bytes), or NULL */
	enum vblk_cache cache;
	const struct confine *confine; /* the I/O thread's seccomp filter, or NULL */
	struct ratelimit_spec limit;   /* bytes and requests per second (0: none) */
};

struct vblk;

/*
 * Open the image and lock it with flock(): read-write disks take LOCK_EX, read-only disks
 * (opened O_RDONLY) LOCK_SH, so read-only users may share an image but a writer and any
 * other user refuse each other. Set up the transport named `name` and the device's io_uring
 * and I/O thread. Refuses a missing file, a directory, an unreadable file
 * (KVMINI_EXIT_INPUT) and a locked image (KVMINI_EXIT_RESOURCE) with one clear line in `e`.
 * Raw images only: the contents are never probed. 0 or -errno.
 */
int vblk_create(struct vblk **out, const struct vblk_config *cfg, const struct gmem *mem,
		struct logger *log, const char *name, struct vmerr *e);

/* The device's transport: the VM registers its window and binds its eventfds. */
struct virtio_mmio *vblk_transport(struct vblk *b);

/* What the device did, for statistics: requests by type as taken from the queue (answered OK
 * or not), bytes moved by the reads and writes that succeeded. */
struct vblk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
	uint64_t read_bytes, write_bytes;
	uint64_t errors;	/* requests answered IOERR or UNSUPP */
	uint64_t inflight_peak; /* most requests on the io_uring at once */
	uint64_t needs_reset;	/* times the device entered DEVICE_NEEDS_RESET */
	/* The io_uring worker limits the kernel took (VBLK_IOWQ_*; 0: it refused them). */
	uint64_t iowq_bounded, iowq_unbounded;
	uint64_t ring_restricted; /* 1: the ring runs only the device's opcodes (uring.h) */
	uint64_t throttled;	  /* times the rate limit held the queue back */
};

/* A snapshot of the counters (each read atomically; the set need not be consistent). */
void vblk_get_stats(const struct vblk *b, struct vblk_stats *out);

/* Capacity in 512-byte sectors (the image size rounded down). */
uint64_t vblk_capacity(const struct vblk *b);

/*
 * Pause (true) or resume the I/O thread: paused, it takes no new request from the queue and
 * returns once every request in flight has completed and been answered; kicks that arrive
 * meanwhile are served after resume. Not from the I/O thread.
 */
void vblk_pause(struct vblk *b, bool paused);

/* A new rate limit, taken by the I/O thread at its next wake (not waited for): what is left in
 * each bucket stays. 0, or -ENODEV once the thread is gone. Any thread but the I/O thread. */
int vblk_set_limit(struct vblk *b, const struct ratelimit_spec *s);

/* The limit last set (at create or by vblk_set_limit). */
void vblk_get_limit(struct vblk *b, struct ratelimit_spec *out);

/* Stop the I/O thread, reset the device, close the image and free everything. NULL is fine. */
void vblk_destroy(struct vblk *b);

#endif
