/* virtq: the split virtqueue (virtio 1.2 §2.7), one implementation shared by every device. */
#ifndef KVMINI_VIRTQ_H
#define KVMINI_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/gmem.h"

/* Largest queue kvmini offers (QueueNumMax); queue sizes are powers of two up to this. */
#define VIRTQ_MAX_SIZE 256

/* Descriptor flags (§2.7.5). INDIRECT is not offered, so a descriptor carrying it is malformed. */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

/* Ring flags (§2.7.6, §2.7.8). */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

/* Ring alignment (§2.7): descriptor table 16, available ring 2, used ring 4 bytes. */
#define VIRTQ_DESC_ALIGN  16
#define VIRTQ_AVAIL_ALIGN 2
#define VIRTQ_USED_ALIGN  4

/* One guest buffer of a chain, copied out of the descriptor table and already range-checked. */
struct virtq_buf {
	gpa_t gpa;	   /* [gpa, gpa+len) lies wholly inside one RAM region */
	uint32_t len;	   /* never 0 */
	bool dev_writable; /* VIRTQ_DESC_F_WRITE */
};

/*
 * A descriptor chain as the device sees it: a local copy (no double fetch). The first
 * nr_readable buffers are device-readable, the rest device-writable (§2.7.4.2 requires
 * that order; a chain that breaks it is malformed).
 */
struct virtq_chain {
	uint16_t head; /* descriptor index to return in the used ring */
	uint16_t nr;   /* buffers in buf[] */
	uint16_t nr_readable;
	uint64_t readable_len; /* sum of the readable buffers' lengths (cannot overflow) */
	uint64_t writable_len;
	struct virtq_buf buf[VIRTQ_MAX_SIZE];
};

/*
 * One queue's device-side state. The transport fills the ring addresses while the driver
 * configures it; the device thread owns the indices while the queue runs. Not locked:
 * exactly one thread pops and pushes at a time (the device's I/O thread).
 */
struct virtq {
	const struct gmem *mem;
	uint16_t size;		 /* QueueNum: a power of two, 1..VIRTQ_MAX_SIZE */
	gpa_t desc_gpa;		 /* descriptor table */
	gpa_t avail_gpa;	 /* driver area */
	gpa_t used_gpa;		 /* device area */
	bool event_idx;		 /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool broken;		 /* a malformed chain was seen: the queue is stopped until reset */
	uint16_t last_avail;	 /* next available-ring slot to consume */
	uint16_t used_idx;	 /* next used-ring slot to fill (== published used->idx) */
	uint16_t signalled_used; /* used_idx when the driver was last interrupted (EVENT_IDX) */
	bool signalled_valid;
	uint16_t budget; /* pops left in the current pass (see virtq_begin_pass) */
};

/*
 * Check where the driver put the rings for a queue of `size` entries (§2.7, §4.2.2): size a
 * power of two in 1..VIRTQ_MAX_SIZE, each area aligned as required and lying wholly inside
 * one RAM region of `gm` (with room for used_event/avail_event when `event_idx`). 0 or -EINVAL.
 */
int virtq_validate(const struct gmem *gm, uint16_t size, gpa_t desc, gpa_t avail, gpa_t used,
		   bool event_idx);

/*
 * Start a queue whose placement virtq_validate() accepted: indices to 0, not broken, a full
 * budget for the first pass.
 * The driver has zeroed the rings; the device never reads its own used ring back.
 */
void virtq_start(struct virtq *q, const struct gmem *gm, uint16_t size, gpa_t desc, gpa_t avail,
		 gpa_t used, bool event_idx);

/* Forget everything (device reset): size 0, not broken. */
void virtq_reset(struct virtq *q);

/*
 * Begin one pass over the queue after a notification: at most `size` chains may be popped
 * before the next call, so a driver that keeps refilling the ring cannot keep the device
 * thread busy forever.
 */
void virtq_begin_pass(struct virtq *q);

/*
 * Take the next available chain into `c`, validating every guest-controlled value: the avail
 * index no more than `size` ahead of what was consumed, head and next below `size`, a chain no
 * longer than `size` (loops end), no INDIRECT, each buffer non-empty and wholly inside one RAM
 * region, readable buffers before writable ones.
 * Returns 1 with `c` filled; 0 when nothing is available or this pass's budget is spent;
 * -EIO when the queue is (or just became) broken: `broken` is set, nothing is consumed, and the
 * caller should ask the transport for DEVICE_NEEDS_RESET. The used ring is never touched here.
 */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Whether virtq_pop() would find a chain (or a broken queue) now: the driver's avail index is
 * ahead of what was consumed and this pass's budget is not spent. Reads the index only. */
bool virtq_has_avail(const struct virtq *q);

/*
 * Return chain `head` with `written` bytes written by the device: fill the next used-ring
 * element, then publish used->idx (release order, so the driver never sees the index before
 * the element). 0, or -EIO if the queue is broken or the used ring is not in RAM, or -EINVAL
 * (a device bug; nothing written) if head >= size or no popped chain is waiting to be pushed.
 */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/*
 * After one or more pushes: must the driver be interrupted? Honours
 * VIRTQ_AVAIL_F_NO_INTERRUPT, or with EVENT_IDX the driver's used_event (§2.7.7).
 * Updates the EVENT_IDX bookkeeping, so call it once per batch, then interrupt if true.
 */
bool virtq_need_interrupt(struct virtq *q);

/*
 * Before the device thread sleeps: ask the driver to notify on new buffers (with EVENT_IDX
 * write avail_event = last_avail; otherwise clear VIRTQ_USED_F_NO_NOTIFY). Returns true if
 * buffers are already available, so the caller must pass over the queue again instead of
 * sleeping (closes the race with a driver that added buffers meanwhile).
 */
bool virtq_enable_notify(struct virtq *q);

/*
 * Copy `len` bytes starting `off` bytes into the chain's readable buffers to `dst` (or from
 * `src` into its writable buffers, counting `off` from the first writable buffer). Return 0, or
 * -EFAULT if the chain's buffers of that direction are shorter than off+len.
 */
int virtq_chain_read(const struct virtq *q, const struct virtq_chain *c, uint64_t off, void *dst,
		     uint64_t len);
int virtq_chain_write(const struct virtq *q, const struct virtq_chain *c, uint64_t off,
		      const void *src, uint64_t len);

#endif
