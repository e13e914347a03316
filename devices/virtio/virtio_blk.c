/* virtio_blk: a virtio block device (virtio 1.2 §5.2) on a raw image, its I/O on io_uring. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "kvmini/devctl.h"
#include "kvmini/host.h"
#include "kvmini/le.h"
#include "kvmini/ratelimit.h"
#include "kvmini/uring.h"
#include "kvmini/virtio_blk.h"

/*
 * Design and behaviour choices:
 *
 * Threads. Each device has one I/O thread ("blk-<name>"), started by vblk_create() and
 * stopped by vblk_destroy(). It owns the request queue and the io_uring: it waits in
 * io_uring_submit_and_wait() for (a) an 8-byte read of the queue's kick eventfd, (b) an
 * 8-byte read of the device's control eventfd and (c) the completions of the requests it
 * submitted. vCPU threads never do I/O: activate and reset only change the wanted state
 * (include/kvmini/devctl.h), which pokes the control eventfd, and (reset only) wait until the
 * I/O thread has acknowledged. Lock order: the transport's lock, then ctl.lock; the I/O thread
 * takes ctl.lock only, and never the transport's lock (virtio_mmio_notify_vring and
 * virtio_mmio_needs_reset take none).
 *
 * Reset. The I/O thread stops popping, sends IORING_OP_ASYNC_CANCEL for every request in
 * flight and marks them dropped; it acknowledges the reset only when the last of them has
 * completed (cancelled or not). A dropped request writes no status, pushes no used element
 * and is never resubmitted, so after ops->reset returns nothing touches guest memory: a read
 * still running in the kernel is waited for, since it writes into guest buffers. The driver's
 * reset does not wait (reset_start): the vCPU returns at once and the transport keeps Status
 * non-zero until the acknowledgement, which the driver sees as the reset not done yet.
 *
 * Rate limit. A disk may have a bandwidth and an operations limit (token buckets, ratelimit.h,
 * with a one-time burst each). The I/O thread asks the buckets before it takes each request
 * off the queue and pays for it after (the request's data bytes, one operation): while they
 * say wait, it leaves the queue alone, its notifications off, and an IORING_OP_TIMEOUT brings
 * it back. The driver's requests wait in the ring; the vCPU that kicked never waits.
 *
 * Malformed requests (§5.2.6). A chain with no device-writable byte has nowhere to put the
 * status: the device cannot answer it, so it marks the queue broken, asks the transport for
 * DEVICE_NEEDS_RESET and stops serving the queue until the driver resets the device. Every
 * other bad request has a status byte and is answered there, the queue going on:
 *  - header shorter than 16 bytes, or a bad data direction for IN/OUT, a length that is not a
 *    multiple of 512, a sector range past the capacity (checked arithmetic, so sector + count
 *    wrapping past 2^64 is caught), more than VBLK_SEG_MAX data segments, a write (OUT,
 *    DISCARD, WRITE_ZEROES) to a read-only disk, GET_ID with no writable data: IOERR;
 *  - an unknown type, DISCARD/WRITE_ZEROES with an unknown flag (or DISCARD with unmap) or
 *    with more than one segment (max_discard_seg and max_write_zeroes_seg are 1): UNSUPP.
 * SIZE_MAX is advertised to shape the driver's requests but a bigger segment is served: it
 * is as safe as several small ones. A read or write moves at most VBLK_REQ_MAX bytes
 * (SEG_MAX x SIZE_MAX, the most a driver that follows both can build); a longer one is IOERR,
 * so one request never holds the host to more than 126 MiB of I/O. DISCARD and WRITE_ZEROES
 * cover at most VBLK_DWZ_MAX_SECT sectors (1 GiB, advertised). The ring's kernel workers are
 * capped (VBLK_IOWQ_*), so a guest's flood of flushes cannot make the host spawn threads.
 *
 * Used length. The used element's len counts the bytes written into the writable part
 * (§2.7.8.1): the data read (IN) or the ID bytes (GET_ID, at most 20) on success, plus the
 * status byte; a request answered IOERR or UNSUPP reports 1 (the status byte only).
 *
 * I/O. IN and OUT are one READV/WRITEV each on iovecs pointing into guest memory; a short
 * transfer is resubmitted for the remainder and a transfer of 0 bytes (the end of a
 * truncated file) is an IOERR, so success always means every byte moved. FLUSH is an
 * IORING_OP_FSYNC with IORING_FSYNC_DATASYNC, answered only after it completed; with
 * cache=unsafe it is answered OK at once. DISCARD punches a hole (PUNCH_HOLE|KEEP_SIZE); a
 * file system that cannot still answers OK, since discarding is only a hint. WRITE_ZEROES
 * tries FALLOC_FL_ZERO_RANGE, then (unmap flag set) PUNCH_HOLE, then plain writes of zeroes.
 *
 * Locking of the image. A read-write disk takes flock(LOCK_EX|LOCK_NB), a read-only disk
 * flock(LOCK_SH|LOCK_NB): read-only users share the image with each other, while a writer
 * and any other user exclude each other both ways (a read-only VM must not see an image that
 * a running VM is changing). A file system without flock support is used unlocked, with a
 * warning.
 */

/* Feature bits (§5.2.3). */
#define VBLK_F_SIZE_MAX	    1
#define VBLK_F_SEG_MAX	    2
#define VBLK_F_RO	    5
#define VBLK_F_BLK_SIZE	    6
#define VBLK_F_FLUSH	    9
#define VBLK_F_DISCARD	    13
#define VBLK_F_WRITE_ZEROES 14

/* Request types and status values (§5.2.6). */
#define VBLK_T_IN	    0
#define VBLK_T_OUT	    1
#define VBLK_T_FLUSH	    4
#define VBLK_T_GET_ID	    8
#define VBLK_T_DISCARD	    11
#define VBLK_T_WRITE_ZEROES 13
#define VBLK_S_OK	    0
#define VBLK_S_IOERR	    1
#define VBLK_S_UNSUPP	    2

#define VBLK_SECTOR	    512ULL
#define VBLK_HDR_LEN	    16 /* le32 type, le32 reserved, le64 sector */
#define VBLK_DWZ_SEG_LEN    16 /* le64 sector, le32 num_sectors, le32 flags */
#define VBLK_DWZ_FLAG_UNMAP 1U
#define VBLK_DWZ_MAX_SECT   (1U << 21) /* 1 GiB per DISCARD / WRITE_ZEROES */
#define VBLK_DISCARD_ALIGN  8	       /* sectors: 4 KiB, the usual file system block */

/* Config space layout (§5.2.4). */
#define VBLK_CFG_CAPACITY	  0
#define VBLK_CFG_SIZE_MAX	  8
#define VBLK_CFG_SEG_MAX	  12
#define VBLK_CFG_BLK_SIZE	  20
#define VBLK_CFG_NUM_QUEUES	  34
#define VBLK_CFG_MAX_DISCARD_SECT 36
#define VBLK_CFG_MAX_DISCARD_SEG  40
#define VBLK_CFG_DISCARD_ALIGN	  44
#define VBLK_CFG_MAX_WZ_SECT	  48
#define VBLK_CFG_MAX_WZ_SEG	  52
#define VBLK_CFG_WZ_MAY_UNMAP	  56
#define VBLK_CONFIG_SIZE	  60

#define VBLK_RING_ENTRIES (2 * VBLK_QUEUE_SIZE + 8) /* requests, their cancels, two reads */
#define VBLK_ZERO_BUF	  (64 * 1024)
#define VBLK_MAX_RETRIES  64 /* EINTR/EAGAIN resubmissions of one request */
#define VBLK_CQE_BATCH	  32

/* io_uring user_data: a tag in the top byte, a request slot in the low bits. */
#define VBLK_TAG_MASK	(0xffULL << 56)
#define VBLK_TAG_REQ	(1ULL << 56)
#define VBLK_TAG_KICK	(2ULL << 56)
#define VBLK_TAG_CTL	(3ULL << 56)
#define VBLK_TAG_CANCEL (4ULL << 56)
#define VBLK_TAG_TIMER	(5ULL << 56)

enum vblk_op {
	VBLK_OP_READ,
	VBLK_OP_WRITE,
	VBLK_OP_FSYNC,
	VBLK_OP_DISCARD,
	VBLK_OP_ZERO_RANGE, /* WRITE_ZEROES, first try */
	VBLK_OP_ZERO_PUNCH, /* WRITE_ZEROES with unmap, when ZERO_RANGE is unsupported */
	VBLK_OP_ZERO_WRITE, /* WRITE_ZEROES by writing zeroes, the last resort */
};

/* One request in flight on the io_uring. */
struct vblk_req {
	bool busy;
	bool dropped; /* cancelled by a reset: finish silently */
	bool unmap;   /* WRITE_ZEROES with VBLK_DWZ_FLAG_UNMAP */
	enum vblk_op op;
	uint16_t head;
	gpa_t status_gpa;
	uint64_t off;  /* file offset of the next transfer */
	uint64_t left; /* bytes still to transfer (or to zero) */
	uint64_t done; /* bytes read into guest buffers (or written from them) so far */
	unsigned int retries;
	unsigned int iov_first, iov_nr;
	struct iovec iov[VBLK_SEG_MAX];
};

struct vblk {
	struct virtio_mmio t;
	const struct gmem *mem;
	struct logger *log;
	const char *name;
	int fd;
	bool readonly;
	enum vblk_cache cache;
	uint64_t capacity; /* sectors */
	char serial[VBLK_SERIAL_MAX];
	uint8_t config[VBLK_CONFIG_SIZE];
	uint8_t *zeroes; /* VBLK_ZERO_BUF bytes for WRITE_ZEROES by writing */

	struct io_uring ring;
	bool ring_ready, mmio_ready, thread_started;
	pthread_t thread;

	struct devctl ctl;  /* the wanted state, shared by vCPU threads and the I/O thread */
	uint64_t reset_gen; /* the generation of the pending reset (vCPU side, transport lock) */

	/* The I/O thread's own state. */
	bool active, paused, exiting, kick_armed, ctl_armed, pass_pending, starved, pushed,
		ack_pending;
	uint64_t ack_gen;
	uint64_t kick_val, ctl_val; /* targets of the eventfd reads */
	unsigned int inflight, nr_free;
	uint16_t free_slot[VBLK_QUEUE_SIZE];
	struct vblk_req req[VBLK_QUEUE_SIZE];
	struct virtq_chain chain;
	struct vblk_stats stats; /* written by the I/O thread, read with vblk_get_stats() */

	/* The rate limit: the I/O thread's buckets, and a new setting handed over under
	 * ctl.lock (vblk_set_limit). While the buckets say wait, the queue is not served and
	 * a timeout on the ring (rl_ts) brings the thread back. */
	struct ratelimit rl;
	struct ratelimit_box rl_box; /* under ctl.lock */
	bool rl_timer_armed;
	struct __kernel_timespec rl_ts;
};

/* One writer (the I/O thread): a relaxed add, no lock on the request path. */
#define VBLK_COUNT(b, field, v) __atomic_fetch_add(&(b)->stats.field, (v), __ATOMIC_RELAXED)

/* ---- I/O thread: submission helpers ---- */

/* A free submission entry, submitting what is queued if the ring is full; NULL if none. */
static struct io_uring_sqe *vblk_sqe(struct vblk *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
	}
	return sqe;
}

/* Queue an 8-byte read of an eventfd; its completion means the eventfd was signalled. */
static bool vblk_arm_eventfd(struct vblk *b, int fd, uint64_t *val, uint64_t tag)
{
	struct io_uring_sqe *sqe = vblk_sqe(b);
	if (!sqe)
		return false;
	io_uring_prep_read(sqe, fd, val, sizeof(*val), 0);
	io_uring_sqe_set_data64(sqe, tag);
	return true;
}

static unsigned int vblk_req_index(const struct vblk *b, const struct vblk_req *r)
{
	return (unsigned int)(r - b->req);
}

static struct vblk_req *vblk_req_alloc(struct vblk *b)
{
	if (!b->nr_free)
		return NULL;
	struct vblk_req *r = &b->req[b->free_slot[--b->nr_free]];
	memset(r, 0, offsetof(struct vblk_req, iov));
	r->busy = true;
	b->inflight++;
	if (b->inflight > b->stats.inflight_peak)
		__atomic_store_n(&b->stats.inflight_peak, b->inflight, __ATOMIC_RELAXED);
	return r;
}

static void vblk_req_free(struct vblk *b, struct vblk_req *r)
{
	r->busy = false;
	b->free_slot[b->nr_free++] = (uint16_t)vblk_req_index(b, r);
	b->inflight--;
}

/* Point the iovecs at the next run of zeroes to write (at most VBLK_SEG_MAX buffers). */
static void vblk_zero_iov(struct vblk *b, struct vblk_req *r)
{
	uint64_t n = r->left;
	r->iov_first = 0;
	r->iov_nr = 0;
	while (n && r->iov_nr < VBLK_SEG_MAX) {
		size_t piece = n < VBLK_ZERO_BUF ? (size_t)n : VBLK_ZERO_BUF;
		r->iov[r->iov_nr].iov_base = b->zeroes;
		r->iov[r->iov_nr].iov_len = piece;
		r->iov_nr++;
		n -= piece;
	}
}

static const char *vblk_op_name(enum vblk_op op);

/* Hand the request's next operation to the io_uring. 0, or -EBUSY when no entry is free. */
static int vblk_submit(struct vblk *b, struct vblk_req *r)
{
	struct io_uring_sqe *sqe = vblk_sqe(b);
	if (!sqe)
		return -EBUSY;
	struct iovec *iov = &r->iov[r->iov_first];
	unsigned int nr = r->iov_nr - r->iov_first;
	switch (r->op) {
	case VBLK_OP_READ:
		io_uring_prep_readv(sqe, b->fd, iov, nr, r->off);
		break;
	case VBLK_OP_WRITE:
		io_uring_prep_writev(sqe, b->fd, iov, nr, r->off);
		break;
	case VBLK_OP_ZERO_WRITE:
		vblk_zero_iov(b, r);
		io_uring_prep_writev(sqe, b->fd, r->iov, r->iov_nr, r->off);
		break;
	case VBLK_OP_FSYNC:
		io_uring_prep_fsync(sqe, b->fd, IORING_FSYNC_DATASYNC);
		break;
	case VBLK_OP_DISCARD:
	case VBLK_OP_ZERO_PUNCH:
		io_uring_prep_fallocate(sqe, b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)r->off, (off_t)r->left);
		break;
	case VBLK_OP_ZERO_RANGE:
		io_uring_prep_fallocate(sqe, b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					(off_t)r->off, (off_t)r->left);
		break;
	}
	io_uring_sqe_set_data64(sqe, VBLK_TAG_REQ | vblk_req_index(b, r));
	if (trace_on(b->t.trace, TRACE_IO))
		trace_emit(b->t.trace, "io %s submit req %u head %u %s offset %llu len %llu",
			   b->name, vblk_req_index(b, r), r->head, vblk_op_name(r->op),
			   (unsigned long long)r->off, (unsigned long long)r->left);
	return 0;
}

/* ---- I/O thread: answering requests ---- */

/* Write the status byte, then return the chain (§5.2.6); the interrupt follows per batch. */
static void vblk_answer(struct vblk *b, uint16_t head, gpa_t status_gpa, uint8_t status,
			uint64_t data_written)
{
	uint64_t written = status == VBLK_S_OK ? data_written + 1 : 1;
	if (written > UINT32_MAX)
		written = UINT32_MAX;
	if (status != VBLK_S_OK)
		VBLK_COUNT(b, errors, 1);
	if (gmem_write(b->mem, status_gpa, &status, 1) < 0)
		return; /* cannot happen: virtq_pop checked the buffer */
	if (virtq_push(&b->t.vq[0], head, (uint32_t)written) == 0)
		b->pushed = true;
}

static void vblk_req_finish(struct vblk *b, struct vblk_req *r, uint8_t status)
{
	if (status == VBLK_S_OK && r->op == VBLK_OP_READ)
		VBLK_COUNT(b, read_bytes, r->done);
	else if (status == VBLK_S_OK && r->op == VBLK_OP_WRITE)
		VBLK_COUNT(b, write_bytes, r->done);
	vblk_answer(b, r->head, r->status_gpa, status, r->op == VBLK_OP_READ ? r->done : 0);
	vblk_req_free(b, r);
}

/* Submit a request's (next) operation, answering IOERR if the ring takes none. */
static void vblk_req_start(struct vblk *b, struct vblk_req *r)
{
	if (vblk_submit(b, r) < 0) {
		log_warn(b->log, "%s: io_uring submission queue full", b->name);
		vblk_req_finish(b, r, VBLK_S_IOERR);
	}
}

static void vblk_iov_advance(struct vblk_req *r, uint64_t n)
{
	while (n && r->iov_first < r->iov_nr) {
		struct iovec *v = &r->iov[r->iov_first];
		if (n < v->iov_len) {
			v->iov_base = (uint8_t *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		r->iov_first++;
	}
}

static const char *vblk_op_name(enum vblk_op op)
{
	switch (op) {
	case VBLK_OP_READ:
		return "read";
	case VBLK_OP_WRITE:
		return "write";
	case VBLK_OP_FSYNC:
		return "flush";
	case VBLK_OP_DISCARD:
		return "discard";
	default:
		return "write-zeroes";
	}
}

/* One operation of request `r` completed with `res` (bytes or -errno). */
static void vblk_req_done(struct vblk *b, struct vblk_req *r, int res)
{
	if (!r->busy)
		return;
	if (r->dropped) {
		vblk_req_free(b, r);
		return;
	}
	if ((res == -EINTR || res == -EAGAIN) && ++r->retries <= VBLK_MAX_RETRIES) {
		vblk_req_start(b, r);
		return;
	}
	bool unsupported = res == -EOPNOTSUPP || res == -EINVAL;
	switch (r->op) {
	case VBLK_OP_READ:
	case VBLK_OP_WRITE:
	case VBLK_OP_ZERO_WRITE:
		if (res <= 0 || (uint64_t)res > r->left)
			break;
		if (r->op != VBLK_OP_ZERO_WRITE)
			r->done += (uint64_t)res;
		r->off += (uint64_t)res;
		r->left -= (uint64_t)res;
		if (!r->left) {
			vblk_req_finish(b, r, VBLK_S_OK);
			return;
		}
		vblk_iov_advance(r, (uint64_t)res); /* short transfer: go on with the rest */
		vblk_req_start(b, r);
		return;
	case VBLK_OP_FSYNC:
		if (res >= 0) {
			vblk_req_finish(b, r, VBLK_S_OK);
			return;
		}
		break;
	case VBLK_OP_DISCARD:
		/* Discarding is a hint (§5.2.6.2: the device MAY deallocate). */
		if (res >= 0 || unsupported) {
			vblk_req_finish(b, r, VBLK_S_OK);
			return;
		}
		break;
	case VBLK_OP_ZERO_RANGE:
	case VBLK_OP_ZERO_PUNCH:
		if (res >= 0) {
			vblk_req_finish(b, r, VBLK_S_OK);
			return;
		}
		if (!unsupported)
			break;
		r->op = r->op == VBLK_OP_ZERO_RANGE && r->unmap ? VBLK_OP_ZERO_PUNCH
								: VBLK_OP_ZERO_WRITE;
		r->retries = 0;
		vblk_req_start(b, r);
		return;
	}
	if (res == 0)
		log_guest(b->log, LOG_WARN, "%s: %s at byte %llu hit the end of the image", b->name,
			  vblk_op_name(r->op), (unsigned long long)r->off);
	else if (res < 0)
		log_guest(b->log, LOG_WARN, "%s: %s at byte %llu failed: %s", b->name,
			  vblk_op_name(r->op), (unsigned long long)r->off, strerror(-res));
	vblk_req_finish(b, r, VBLK_S_IOERR);
}

/* Is [sector, sector + count) inside the disk? Checked, so a wrap past 2^64 is refused. */
static bool vblk_range_ok(const struct vblk *b, uint64_t sector, uint64_t count)
{
	uint64_t end;
	return !__builtin_add_overflow(sector, count, &end) && end <= b->capacity;
}

/*
 * Point r->iov at [off, off + len) of the chain's readable (or writable) buffers.
 * 0, or -E2BIG when that takes more than VBLK_SEG_MAX segments, -EFAULT if out of RAM.
 */
static int vblk_build_iov(struct vblk *b, const struct virtq_chain *c, bool writable, uint64_t off,
			  uint64_t len, struct vblk_req *r)
{
	r->iov_first = 0;
	r->iov_nr = 0;
	unsigned int i = writable ? c->nr_readable : 0;
	unsigned int end = writable ? c->nr : c->nr_readable;
	for (; i < end && len; i++) {
		const struct virtq_buf *vb = &c->buf[i];
		if (off >= vb->len) {
			off -= vb->len;
			continue;
		}
		uint64_t piece = vb->len - off;
		if (piece > len)
			piece = len;
		void *p = gmem_ptr(b->mem, vb->gpa + off, piece);
		if (!p)
			return -EFAULT;
		if (r->iov_nr == VBLK_SEG_MAX)
			return -E2BIG;
		r->iov[r->iov_nr].iov_base = p;
		r->iov[r->iov_nr].iov_len = (size_t)piece;
		r->iov_nr++;
		len -= piece;
		off = 0;
	}
	return len ? -EFAULT : 0;
}

/* IN and OUT (§5.2.6): data after the header (OUT) or before the status byte (IN). */
static void vblk_rw(struct vblk *b, const struct virtq_chain *c, bool write, uint64_t sector,
		    gpa_t status_gpa)
{
	uint64_t in_len = c->writable_len - 1, out_len = c->readable_len - VBLK_HDR_LEN;
	uint64_t len = write ? out_len : in_len;
	const char *why = NULL;
	if (write ? in_len : out_len)
		why = "data buffers in the wrong direction";
	else if (write && b->readonly)
		why = "write to a read-only disk";
	else if (len % VBLK_SECTOR)
		why = "length not a multiple of 512";
	else if (len > VBLK_REQ_MAX)
		why = "more than SEG_MAX x SIZE_MAX bytes";
	else if (!vblk_range_ok(b, sector, len / VBLK_SECTOR))
		why = "sectors beyond the capacity";
	if (why) {
		log_guest(b->log, LOG_DEBUG, "%s: %s request refused: %s", b->name,
			  write ? "write" : "read", why);
		vblk_answer(b, c->head, status_gpa, VBLK_S_IOERR, 0);
		return;
	}
	if (!len) {
		vblk_answer(b, c->head, status_gpa, VBLK_S_OK, 0);
		return;
	}
	struct vblk_req *r = vblk_req_alloc(b); /* vblk_pass made sure one is free */
	r->op = write ? VBLK_OP_WRITE : VBLK_OP_READ;
	r->head = c->head;
	r->status_gpa = status_gpa;
	r->off = sector * VBLK_SECTOR;
	r->left = len;
	if (vblk_build_iov(b, c, !write, write ? VBLK_HDR_LEN : 0, len, r) < 0) {
		log_guest(b->log, LOG_DEBUG, "%s: request with more than %d data segments", b->name,
			  VBLK_SEG_MAX);
		vblk_req_finish(b, r, VBLK_S_IOERR);
		return;
	}
	vblk_req_start(b, r);
}

/* DISCARD and WRITE_ZEROES (§5.2.6): one {sector, num_sectors, flags} segment. */
static void vblk_dwz(struct vblk *b, const struct virtq_chain *c, uint32_t type, gpa_t status_gpa)
{
	uint64_t seg_bytes = c->readable_len - VBLK_HDR_LEN;
	uint8_t seg[VBLK_DWZ_SEG_LEN];
	uint8_t status = VBLK_S_IOERR;
	if (b->readonly)
		goto answer;
	if (!seg_bytes || seg_bytes % VBLK_DWZ_SEG_LEN)
		goto answer;
	if (seg_bytes > VBLK_DWZ_SEG_LEN) {
		status = VBLK_S_UNSUPP; /* more segments than max_*_seg */
		goto answer;
	}
	if (virtq_chain_read(&b->t.vq[0], c, VBLK_HDR_LEN, seg, sizeof(seg)) < 0)
		goto answer;
	uint64_t sector = le_get64(seg);
	uint32_t count = le_get32(seg + 8), flags = le_get32(seg + 12);
	/* §5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP. */
	uint32_t allowed = type == VBLK_T_WRITE_ZEROES ? VBLK_DWZ_FLAG_UNMAP : 0;
	if (flags & ~allowed) {
		status = VBLK_S_UNSUPP;
		goto answer;
	}
	if (count > VBLK_DWZ_MAX_SECT || !vblk_range_ok(b, sector, count))
		goto answer;
	if (!count) {
		status = VBLK_S_OK;
		goto answer;
	}
	struct vblk_req *r = vblk_req_alloc(b);
	r->op = type == VBLK_T_DISCARD ? VBLK_OP_DISCARD : VBLK_OP_ZERO_RANGE;
	r->unmap = flags & VBLK_DWZ_FLAG_UNMAP;
	r->head = c->head;
	r->status_gpa = status_gpa;
	r->off = sector * VBLK_SECTOR;
	r->left = (uint64_t)count * VBLK_SECTOR;
	vblk_req_start(b, r);
	return;
answer:
	if (status != VBLK_S_OK)
		log_guest(b->log, LOG_DEBUG, "%s: %s request refused", b->name,
			  type == VBLK_T_DISCARD ? "discard" : "write-zeroes");
	vblk_answer(b, c->head, status_gpa, status, 0);
}

/* GET_ID (§5.2.6): the serial, zero-padded to the 20 bytes the driver asked for. */
static void vblk_get_id(struct vblk *b, const struct virtq_chain *c, gpa_t status_gpa)
{
	uint64_t n = c->writable_len - 1;
	if (n > VBLK_SERIAL_MAX)
		n = VBLK_SERIAL_MAX;
	if (!n || virtq_chain_write(&b->t.vq[0], c, 0, b->serial, n) < 0) {
		vblk_answer(b, c->head, status_gpa, VBLK_S_IOERR, 0);
		return;
	}
	vblk_answer(b, c->head, status_gpa, VBLK_S_OK, n);
}

/* FLUSH (§5.2.6): answered once fdatasync succeeded; at once with cache=unsafe. */
static void vblk_flush(struct vblk *b, const struct virtq_chain *c, gpa_t status_gpa)
{
	if (b->cache == VBLK_CACHE_UNSAFE) {
		vblk_answer(b, c->head, status_gpa, VBLK_S_OK, 0);
		return;
	}
	struct vblk_req *r = vblk_req_alloc(b);
	r->op = VBLK_OP_FSYNC;
	r->head = c->head;
	r->status_gpa = status_gpa;
	vblk_req_start(b, r);
}

/* Serve one chain: validate it, then answer at once or start its I/O. */
/* A request type's name for the trace (virtio 1.2 §5.2.6). */
static const char *vblk_type_name(uint32_t type)
{
	switch (type) {
	case VBLK_T_IN:
		return "IN";
	case VBLK_T_OUT:
		return "OUT";
	case VBLK_T_FLUSH:
		return "FLUSH";
	case VBLK_T_GET_ID:
		return "GET_ID";
	case VBLK_T_DISCARD:
		return "DISCARD";
	case VBLK_T_WRITE_ZEROES:
		return "WRITE_ZEROES";
	default:
		return "unknown";
	}
}

static void vblk_handle(struct vblk *b, const struct virtq_chain *c)
{
	struct virtq *q = &b->t.vq[0];
	if (c->writable_len < 1) {
		/* No status byte: the request cannot be answered (see the top of the file). */
		q->broken = true;
		virtio_mmio_needs_reset(&b->t, "request without a status byte");
		return;
	}
	/* Writable buffers come last (virtq_pop checked), so the last buffer holds the status. */
	const struct virtq_buf *last = &c->buf[c->nr - 1];
	gpa_t status_gpa = last->gpa + last->len - 1;
	uint8_t hdr[VBLK_HDR_LEN];
	if (c->readable_len < VBLK_HDR_LEN || virtq_chain_read(q, c, 0, hdr, sizeof(hdr)) < 0) {
		log_guest(b->log, LOG_DEBUG, "%s: request header shorter than 16 bytes", b->name);
		vblk_answer(b, c->head, status_gpa, VBLK_S_IOERR, 0);
		return;
	}
	uint32_t type = le_get32(hdr);
	uint64_t sector = le_get64(hdr + 8);
	if (trace_on(b->t.trace, TRACE_VIRTIO))
		trace_emit(b->t.trace, "virtio %s q0 head %u chain %u type %s sector %llu len %llu",
			   b->name, c->head, c->nr, vblk_type_name(type),
			   (unsigned long long)sector,
			   (unsigned long long)(type == VBLK_T_OUT ? c->readable_len - VBLK_HDR_LEN
								   : c->writable_len - 1));
	switch (type) {
	case VBLK_T_IN:
	case VBLK_T_OUT:
		if (type == VBLK_T_OUT)
			VBLK_COUNT(b, writes, 1);
		else
			VBLK_COUNT(b, reads, 1);
		vblk_rw(b, c, type == VBLK_T_OUT, sector, status_gpa);
		return;
	case VBLK_T_FLUSH:
		VBLK_COUNT(b, flushes, 1);
		vblk_flush(b, c, status_gpa);
		return;
	case VBLK_T_GET_ID:
		VBLK_COUNT(b, get_ids, 1);
		vblk_get_id(b, c, status_gpa);
		return;
	case VBLK_T_DISCARD:
	case VBLK_T_WRITE_ZEROES:
		if (type == VBLK_T_DISCARD)
			VBLK_COUNT(b, discards, 1);
		else
			VBLK_COUNT(b, write_zeroes, 1);
		vblk_dwz(b, c, type, status_gpa);
		return;
	default:
		log_guest(b->log, LOG_DEBUG, "%s: unsupported request type %u", b->name, type);
		vblk_answer(b, c->head, status_gpa, VBLK_S_UNSUPP, 0);
		return;
	}
}

static uint64_t vblk_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The rate limit allows no request now: come back in `wait_ns` (a timeout on the ring, one at
 * a time). The queue's notifications stay off meanwhile; the timer, not a kick, resumes it.
 */
static void vblk_limited(struct vblk *b, uint64_t wait_ns)
{
	VBLK_COUNT(b, throttled, 1);
	if (b->rl_timer_armed)
		return;
	struct io_uring_sqe *sqe = vblk_sqe(b);
	if (!sqe) {
		b->pass_pending = true; /* no room on the ring: try again after the next reap */
		return;
	}
	b->rl_ts.tv_sec = (long long)(wait_ns / 1000000000ULL);
	b->rl_ts.tv_nsec = (long long)(wait_ns % 1000000000ULL);
	io_uring_prep_timeout(sqe, &b->rl_ts, 0, 0);
	io_uring_sqe_set_data64(sqe, VBLK_TAG_TIMER);
	b->rl_timer_armed = true;
}

/* The bytes a popped request moves (data only, header and status left out), for the limit. */
static uint64_t vblk_chain_bytes(const struct virtq_chain *c)
{
	uint64_t n = (uint64_t)c->readable_len + c->writable_len;
	return n > VBLK_HDR_LEN + 1 ? n - VBLK_HDR_LEN - 1 : 0;
}

/*
 * One pass over the request queue after a kick (§2.7.13 device side): pop until the ring is
 * empty, the pass's budget is spent, no request slot is free, the rate limit says wait or the
 * queue broke; then re-enable notifications and pass again (after serving completions) if
 * more came meanwhile.
 */
static void vblk_pass(struct vblk *b)
{
	struct virtq *q = &b->t.vq[0];
	b->pass_pending = false;
	if (!b->active || !q->size || q->broken)
		return;
	virtq_begin_pass(q);
	bool limited = ratelimit_active(&b->rl);
	for (;;) {
		if (!b->nr_free) {
			b->starved = true; /* resumed when a request completes */
			return;
		}
		if (limited && virtq_has_avail(q)) {
			uint64_t wait = ratelimit_wait_ns(&b->rl, vblk_now_ns());
			if (wait) {
				vblk_limited(b, wait);
				return;
			}
		}
		int ret = virtq_pop(q, &b->chain);
		if (ret < 0) {
			virtio_mmio_needs_reset(&b->t, "malformed descriptor chain");
			return;
		}
		if (ret == 0)
			break;
		if (limited)
			ratelimit_charge(&b->rl, vblk_chain_bytes(&b->chain));
		vblk_handle(b, &b->chain);
		if (q->broken)
			return;
	}
	if (virtq_enable_notify(q))
		b->pass_pending = true;
}

/* After a batch of answers: interrupt the driver if it wants one (§2.7.7). */
static void vblk_flush_irq(struct vblk *b)
{
	if (!b->pushed || !b->active)
		return;
	b->pushed = false;
	if (virtq_need_interrupt(&b->t.vq[0]))
		virtio_mmio_notify_vring(&b->t);
}

/* Stop serving the queue: cancel whatever is in flight and drop its results. */
static void vblk_deactivate(struct vblk *b)
{
	b->active = false;
	b->pass_pending = false;
	b->starved = false;
	b->pushed = false;
	for (unsigned int i = 0; i < VBLK_QUEUE_SIZE; i++) {
		struct vblk_req *r = &b->req[i];
		if (!r->busy || r->dropped)
			continue;
		r->dropped = true;
		struct io_uring_sqe *sqe = vblk_sqe(b);
		if (sqe) { /* without one the request simply runs to its end */
			io_uring_prep_cancel64(sqe, VBLK_TAG_REQ | i, 0);
			io_uring_sqe_set_data64(sqe, VBLK_TAG_CANCEL);
		}
	}
}

/* The control eventfd fired: act on the wanted state, to be acknowledged once drained. */
static void vblk_control(struct vblk *b)
{
	struct devctl_state st;
	devctl_snapshot(&b->ctl, &st);
	bool run = st.run, stop = st.stop, paused = st.paused;
	if (!run && b->active)
		vblk_deactivate(b);
	if (run && !b->active) {
		b->active = true;
		b->pass_pending = true; /* kicks may have come before DRIVER_OK */
	}
	if (stop)
		b->exiting = true;
	if (b->paused && !paused)
		b->pass_pending = true; /* kicks that came while paused */
	b->paused = paused;
	pthread_mutex_lock(&b->ctl.lock);
	if (ratelimit_take(&b->rl_box, &b->rl, vblk_now_ns()))
		b->pass_pending = b->active; /* a looser limit serves the queue now */
	pthread_mutex_unlock(&b->ctl.lock);
	b->ack_gen = st.gen;
	b->ack_pending = true;
}

static void vblk_cqe(struct vblk *b, uint64_t data, int res)
{
	switch (data & VBLK_TAG_MASK) {
	case VBLK_TAG_REQ: {
		uint64_t i = data & ~VBLK_TAG_MASK;
		if (trace_on(b->t.trace, TRACE_IO))
			trace_emit(b->t.trace, "io %s complete req %llu res %d", b->name,
				   (unsigned long long)i, res);
		if (i < VBLK_QUEUE_SIZE)
			vblk_req_done(b, &b->req[i], res);
		break;
	}
	case VBLK_TAG_KICK:
		b->kick_armed = false;
		if (b->active)
			b->pass_pending = true;
		break;
	case VBLK_TAG_CTL:
		b->ctl_armed = false;
		vblk_control(b);
		break;
	case VBLK_TAG_TIMER: /* -ETIME: the rate limit's wait is over */
		b->rl_timer_armed = false;
		if (b->active)
			b->pass_pending = true;
		break;
	default: /* cancel results: the cancelled request reports for itself */
		break;
	}
}

static void vblk_reap(struct vblk *b)
{
	for (unsigned int round = 0; round < 8; round++) {
		struct io_uring_cqe *cqes[VBLK_CQE_BATCH];
		uint64_t data[VBLK_CQE_BATCH];
		int res[VBLK_CQE_BATCH];
		unsigned int n = io_uring_peek_batch_cqe(&b->ring, cqes, VBLK_CQE_BATCH);
		if (!n)
			return;
		for (unsigned int i = 0; i < n; i++) {
			data[i] = cqes[i]->user_data;
			res[i] = cqes[i]->res;
		}
		io_uring_cq_advance(&b->ring, n);
		for (unsigned int i = 0; i < n; i++)
			vblk_cqe(b, data[i], res[i]);
	}
}

static void *vblk_thread(void *arg)
{
	struct vblk *b = arg;
	for (;;) {
		if (b->starved && b->nr_free) {
			b->starved = false;
			b->pass_pending = true;
		}
		if (b->pass_pending && !b->paused)
			vblk_pass(b);
		vblk_flush_irq(b);
		if (b->ack_pending && !b->inflight) {
			b->ack_pending = false;
			devctl_ack(&b->ctl, b->ack_gen);
		}
		if (b->exiting && !b->inflight)
			break;
		if (!b->ctl_armed && !b->exiting)
			b->ctl_armed = vblk_arm_eventfd(b, b->ctl.fd, &b->ctl_val, VBLK_TAG_CTL);
		if (!b->kick_armed && b->active && !b->paused)
			b->kick_armed =
				vblk_arm_eventfd(b, b->t.kick_fd[0], &b->kick_val, VBLK_TAG_KICK);
		int ret = b->pass_pending && !b->paused ? io_uring_submit(&b->ring)
							: io_uring_submit_and_wait(&b->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			log_err(b->log, "%s: io_uring wait failed: %s", b->name, strerror(-ret));
			nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
		}
		vblk_reap(b);
	}
	devctl_gone(&b->ctl);
	return NULL;
}

/* ---- vCPU side: the transport's callbacks ---- */

void vblk_pause(struct vblk *b, bool paused)
{
	/* The acknowledgement waits until nothing is in flight (see vblk_thread). */
	devctl_pause(&b->ctl, paused);
}

static int vblk_activate(void *dev)
{
	struct vblk *b = dev;
	return devctl_want(&b->ctl, true, false, 0) ? 0 : -ENODEV;
}

static void vblk_reset(void *dev)
{
	struct vblk *b = dev;
	uint64_t gen = devctl_want(&b->ctl, false, false, 0);
	if (gen)
		devctl_wait(&b->ctl, gen);
}

/* The reset that does not hold the vCPU (virtio_mmio.h): done once the I/O thread acknowledged
 * it, which it does when nothing is in flight any more. */
static bool vblk_reset_start(void *dev)
{
	struct vblk *b = dev;
	b->reset_gen = devctl_want(&b->ctl, false, false, 0);
	return !b->reset_gen || devctl_acked(&b->ctl, b->reset_gen);
}

static bool vblk_reset_done(void *dev)
{
	struct vblk *b = dev;
	return !b->reset_gen || devctl_acked(&b->ctl, b->reset_gen);
}

static void vblk_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct vblk *b = dev;
	if (off > VBLK_CONFIG_SIZE || len > VBLK_CONFIG_SIZE - off) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, b->config + off, len);
}

static void vblk_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	/* The config space is read-only to the driver (§5.2.4, no CONFIG_WCE offered). */
}

static const struct virtio_dev_ops vblk_ops = {
	.activate = vblk_activate,
	.reset = vblk_reset,
	.reset_start = vblk_reset_start,
	.reset_done = vblk_reset_done,
	.config_read = vblk_config_read,
	.config_write = vblk_config_write,
};

/* ---- Set-up and teardown ---- */

/* Open, check and lock the image; find its capacity. */
static int vblk_open(struct vblk *b, const struct vblk_config *cfg, struct vmerr *e)
{
	const char *path = cfg->path;
	int flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	b->fd = open(path, flags);
	if (b->fd < 0) {
		int err = errno;
		if (err == ENOENT) {
			vmerr_set(e, KVMINI_EXIT_INPUT, 0, "disk image %s does not exist", path);
			return -ENOENT;
		}
		if (err == EISDIR) {
			vmerr_set(e, KVMINI_EXIT_INPUT, 0, "disk image %s is a directory", path);
			return -EISDIR;
		}
		if (err == EROFS)
			return vmerr_set(e, KVMINI_EXIT_INPUT, err,
					 "disk image %s cannot be opened read-write (use ,ro)",
					 path);
		return vmerr_set(e, KVMINI_EXIT_INPUT, err, "disk image %s cannot be opened%s",
				 path, cfg->readonly ? "" : " read-write");
	}
	struct stat st;
	if (fstat(b->fd, &st) < 0)
		return vmerr_set(e, KVMINI_EXIT_INPUT, errno, "cannot stat disk image %s", path);
	if (S_ISDIR(st.st_mode)) {
		vmerr_set(e, KVMINI_EXIT_INPUT, 0, "disk image %s is a directory", path);
		return -EISDIR;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		vmerr_set(e, KVMINI_EXIT_INPUT, 0,
			  "disk image %s is not a regular file or a block device", path);
		return -EINVAL;
	}
	/* O_NONBLOCK only kept open() from hanging on odd files; the I/O must block. */
	int fl = fcntl(b->fd, F_GETFL);
	if (fl < 0 || fcntl(b->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "fcntl on disk image %s failed", path);

	int ret;
	do {
		ret = flock(b->fd, (cfg->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB);
	} while (ret < 0 && errno == EINTR);
	if (ret < 0 && errno == EWOULDBLOCK) {
		if (cfg->readonly)
			vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				  "disk image %s is in use read-write by another VM (locked); "
				  "stop it first",
				  path);
		else
			vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				  "disk image %s is in use by another VM (locked); stop it or use "
				  ",ro",
				  path);
		return -EBUSY;
	}
	if (ret < 0)
		log_warn(b->log, "disk image %s cannot be locked (%s); using it unlocked", path,
			 strerror(errno));

	uint64_t bytes = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode) && ioctl(b->fd, BLKGETSIZE64, &bytes) < 0)
		return vmerr_set(e, KVMINI_EXIT_INPUT, errno, "cannot get the size of disk %s",
				 path);
	b->capacity = bytes / VBLK_SECTOR;
	if (bytes % VBLK_SECTOR)
		log_warn(b->log,
			 "disk image %s: the last %llu bytes (not a whole sector) are unused", path,
			 (unsigned long long)(bytes % VBLK_SECTOR));
	return 0;
}

/* The config space, built once (§5.2.4): the device never changes it. */
static void vblk_build_config(struct vblk *b)
{
	uint8_t *c = b->config;
	le_put64(c + VBLK_CFG_CAPACITY, b->capacity);
	le_put32(c + VBLK_CFG_SIZE_MAX, VBLK_SIZE_MAX);
	le_put32(c + VBLK_CFG_SEG_MAX, VBLK_SEG_MAX);
	le_put32(c + VBLK_CFG_BLK_SIZE, (uint32_t)VBLK_SECTOR);
	c[VBLK_CFG_NUM_QUEUES] = 1; /* le16 1 */
	if (b->readonly)
		return;
	le_put32(c + VBLK_CFG_MAX_DISCARD_SECT, VBLK_DWZ_MAX_SECT);
	le_put32(c + VBLK_CFG_MAX_DISCARD_SEG, 1);
	le_put32(c + VBLK_CFG_DISCARD_ALIGN, VBLK_DISCARD_ALIGN);
	le_put32(c + VBLK_CFG_MAX_WZ_SECT, VBLK_DWZ_MAX_SECT);
	le_put32(c + VBLK_CFG_MAX_WZ_SEG, 1);
	c[VBLK_CFG_WZ_MAY_UNMAP] = 1;
}

static uint64_t vblk_features(const struct vblk *b)
{
	uint64_t f = 1ULL << VBLK_F_SIZE_MAX | 1ULL << VBLK_F_SEG_MAX | 1ULL << VBLK_F_BLK_SIZE |
		     1ULL << VBLK_F_FLUSH;
	if (b->readonly)
		f |= 1ULL << VBLK_F_RO;
	else
		f |= 1ULL << VBLK_F_DISCARD | 1ULL << VBLK_F_WRITE_ZEROES;
	return f;
}

int vblk_create(struct vblk **out, const struct vblk_config *cfg, const struct gmem *mem,
		struct logger *log, const char *name, struct vmerr *e)
{
	*out = NULL;
	if (!cfg || !cfg->path || !*cfg->path)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "%s: no disk image path", name);
	size_t serial_len = cfg->serial ? strlen(cfg->serial) : 0;
	if (serial_len > VBLK_SERIAL_MAX)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "disk id '%s' is longer than %d bytes",
				 cfg->serial, VBLK_SERIAL_MAX);
	struct vblk *b = calloc(1, sizeof(*b));
	if (!b)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, ENOMEM, "cannot allocate disk %s", name);
	b->fd = -1;
	b->mem = mem;
	b->log = log;
	b->name = name;
	b->readonly = cfg->readonly;
	b->cache = cfg->cache;
	if (serial_len)
		memcpy(b->serial, cfg->serial, serial_len);
	for (unsigned int i = 0; i < VBLK_QUEUE_SIZE; i++)
		b->free_slot[i] = (uint16_t)(VBLK_QUEUE_SIZE - 1 - i);
	b->nr_free = VBLK_QUEUE_SIZE;
	ratelimit_init(&b->rl, &cfg->limit, vblk_now_ns());
	b->rl_box.cur = cfg->limit;

	int ret = devctl_init(&b->ctl, 0);
	if (ret < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot set up disk %s", name);
		goto fail;
	}
	ret = vblk_open(b, cfg, e);
	if (ret < 0)
		goto fail;
	vblk_build_config(b);

	b->zeroes = calloc(1, VBLK_ZERO_BUF);
	if (!b->zeroes) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, ENOMEM, "cannot set up disk %s", name);
		goto fail;
	}
	/* The ring runs what this file submits and nothing else (include/kvmini/uring.h: seccomp
	 * cannot see inside a ring). The worker caps: the ring keeps them and applies them to each
	 * task that starts using it, the I/O thread included. */
	static const uint8_t ops[] = {
		IORING_OP_READ,		/* the eventfds (kick, stop) */
		IORING_OP_READV,	/* IN */
		IORING_OP_WRITEV,	/* OUT, WRITE_ZEROES without UNMAP on a file */
		IORING_OP_FSYNC,	/* FLUSH */
		IORING_OP_FALLOCATE,	/* DISCARD, WRITE_ZEROES */
		IORING_OP_TIMEOUT,	/* the rate limiter's wait */
		IORING_OP_ASYNC_CANCEL, /* reset */
	};
	struct uring_setup us = {
		.ops = ops,
		.nr_ops = sizeof(ops) / sizeof(ops[0]),
		.iowq_max = {VBLK_IOWQ_BOUNDED, VBLK_IOWQ_UNBOUNDED},
	};
	struct uring_got got;
	ret = uring_init(&b->ring, VBLK_RING_ENTRIES, &us, &got);
	if (ret < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot set up io_uring for disk %s",
				name);
		goto fail;
	}
	b->ring_ready = true;
	b->stats.ring_restricted = got.restricted;
	if (!got.restricted)
		log_warn(b->log,
			 "%s: the kernel cannot restrict io_uring (before 5.10); the disk's I/O "
			 "thread could do more through its ring than its seccomp filter allows",
			 name);
	if (got.iowq_capped) {
		b->stats.iowq_bounded = VBLK_IOWQ_BOUNDED;
		b->stats.iowq_unbounded = VBLK_IOWQ_UNBOUNDED;
	} else {
		log_warn(b->log,
			 "%s: the kernel does not cap io_uring workers; a guest's I/O may "
			 "start many host threads",
			 name);
	}

	struct virtio_dev_info info = {
		.device_id = 2, /* §5.2.1 */
		.features = vblk_features(b),
		.config_size = VBLK_CONFIG_SIZE,
		.nr_queues = 1, /* §5.2.2: one requestq, no MQ */
		.queue_max = VBLK_QUEUE_SIZE,
	};
	ret = virtio_mmio_init(&b->t, mem, log, name, &info, &vblk_ops, b);
	if (ret < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot set up the transport of %s",
				name);
		goto fail;
	}
	b->mmio_ready = true;

	b->ctl.alive = true;
	char tname[16];
	snprintf(tname, sizeof(tname), "blk-%s", name);
	ret = host_thread_start(&b->thread, vblk_thread, b, tname, cfg->confine, CONFINE_BLK);
	if (ret) {
		b->ctl.alive = false;
		ret = vmerr_set(e, KVMINI_EXIT_RESOURCE, -ret, "cannot start the I/O thread of %s",
				name);
		goto fail;
	}
	b->thread_started = true;
	*out = b;
	return 0;
fail:
	vblk_destroy(b);
	return ret;
}

struct virtio_mmio *vblk_transport(struct vblk *b)
{
	return &b->t;
}

uint64_t vblk_capacity(const struct vblk *b)
{
	return b->capacity;
}

void vblk_destroy(struct vblk *b)
{
	if (!b)
		return;
	if (b->thread_started) {
		/* The thread drains what is in flight before it leaves. */
		devctl_want(&b->ctl, false, true, 0);
		pthread_join(b->thread, NULL);
		b->thread_started = false;
	}
	if (b->mmio_ready)
		virtio_mmio_fini(&b->t); /* its reset finds no thread and returns at once */
	if (b->ring_ready)
		io_uring_queue_exit(&b->ring);
	if (b->fd >= 0)
		close(b->fd);
	free(b->zeroes);
	devctl_fini(&b->ctl);
	free(b);
}

int vblk_set_limit(struct vblk *b, const struct ratelimit_spec *s)
{
	return ratelimit_offer(&b->rl_box, &b->ctl, s);
}

void vblk_get_limit(struct vblk *b, struct ratelimit_spec *out)
{
	ratelimit_current(&b->rl_box, &b->ctl, out);
}

void vblk_get_stats(const struct vblk *b, struct vblk_stats *out)
{
	_Static_assert(sizeof(*out) % sizeof(uint64_t) == 0, "vblk_stats holds uint64_t only");
	const uint64_t *src = (const uint64_t *)&b->stats;
	uint64_t *dst = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	out->needs_reset = atomic_load_explicit(&b->t.needs_reset_count, memory_order_relaxed);
}
