/* vdriver: a fake guest driver that drives any virtio-mmio device through its registers. */
#ifndef KVMINI_TESTS_VDRIVER_H
#define KVMINI_TESTS_VDRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/gmem.h"
#include "kvmini/virtio_mmio.h"

/*
 * Used by unit tests, benchmarks and fuzz targets alike, so it reports with return values and
 * never asserts. One driver drives queue 0 of one device (vdrv_setup_queue() configures more);
 * no global state.
 */

/* Bytes of canary around each fake RAM region, and their value. */
#define VDRV_CANARY_SIZE 4096
#define VDRV_CANARY_BYTE 0xa5

/* One buffer of a descriptor chain as the driver describes it. */
struct vdrv_buf {
	gpa_t gpa;
	uint32_t len;
	bool writable; /* VIRTQ_DESC_F_WRITE: the device writes into it */
};

/* One used-ring element (§2.7.8). */
struct vdrv_used {
	uint32_t id, len;
};

struct vdrv {
	/* Fake guest RAM: [canary | region 0 | canary | region 1 | canary], region 1 optional. */
	uint8_t *host;
	uint64_t host_size;
	uint64_t ram_size; /* guest RAM at gpa [0, ram_size) */
	uint64_t split;	   /* start of region 1, or 0 for one region */
	struct gmem gm;

	struct virtio_mmio *t; /* the device's transport (vdrv_attach) */

	/* Queue 0 as vdrv_setup() configured it. */
	uint16_t qsize;
	gpa_t desc, avail, used;
	bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */

	/* The driver's ring bookkeeping. */
	uint16_t next_desc; /* first descriptor vdrv_add() fills */
	uint16_t avail_idx; /* avail->idx that vdrv_publish() stores */
	uint16_t used_seen; /* used elements taken with vdrv_take_used() */

	const char *why; /* the step at which vdrv_setup() failed, for messages */
};

/*
 * Allocate `ram_size` bytes of zeroed fake guest RAM at gpa 0 and describe it in d->gm. With
 * `split` in (0, ram_size) the RAM is two regions, [0, split) and [split, ram_size): adjacent
 * guest addresses but separate host memory, canaries between, so an access crossing the
 * region boundary is caught. Both sizes multiples of 4 KiB. 0, -EINVAL or -ENOMEM.
 */
int vdrv_init(struct vdrv *d, uint64_t ram_size, uint64_t split);

/* Free the fake RAM. Safe on a zeroed vdrv and after a failed vdrv_init(). */
void vdrv_fini(struct vdrv *d);

/* Are the canaries around the RAM regions untouched? */
bool vdrv_canaries_ok(const struct vdrv *d);

/* Host pointer to guest RAM [gpa, gpa+len) if it lies in one region, else NULL. */
void *vdrv_ptr(const struct vdrv *d, gpa_t gpa, uint64_t len);

/* Does [gpa, gpa+len) (len > 0) lie in one RAM region? From the layout alone, not via gmem. */
bool vdrv_in_ram(const struct vdrv *d, gpa_t gpa, uint64_t len);

/* Drive this device from now on. */
void vdrv_attach(struct vdrv *d, struct virtio_mmio *t);

/* 32-bit register access through the transport, as a vCPU's MMIO exit would do it. */
void vdrv_wr32(struct vdrv *d, uint64_t off, uint32_t v);
uint32_t vdrv_rd32(struct vdrv *d, uint64_t off);

/* The 64 feature bits the device offers (DeviceFeaturesSel 0 and 1). */
uint64_t vdrv_device_features(struct vdrv *d);

/*
 * The driver's initialisation (§3.1.1, §4.2.3.2) up to DRIVER_OK: reset, check the magic,
 * version 2 and `device_id`, ACKNOWLEDGE and DRIVER, accept the offered features that `want`
 * names, FEATURES_OK, zero the rings, queue 0 of `qsize` entries at desc/avail/used, QueueReady
 * and DRIVER_OK; each step checked by reading the register back. The ring bookkeeping starts
 * from 0. Returns 0; -ENODEV (not that device), -EPROTO (the device refused a status step) or
 * -EINVAL (queue refused: too big, or rings misplaced), with the step in d->why.
 */
int vdrv_setup(struct vdrv *d, uint32_t device_id, uint64_t want, uint16_t qsize, gpa_t desc,
	       gpa_t avail, gpa_t used);

/*
 * The steps of vdrv_setup(), for a driver that configures more queues than queue 0 (the ring
 * functions below follow one queue per vdrv: see vdrv_use_rings()).
 * Same checks and return values as vdrv_setup(), with the step in d->why.
 *
 * vdrv_negotiate(): reset, check the device, accept the offered features that `want` names
 * (stored in *feat) and set FEATURES_OK.
 */
int vdrv_negotiate(struct vdrv *d, uint32_t device_id, uint64_t want, uint64_t *feat);

/*
 * Zero the rings of queue `index` (their event fields too if `event_idx`), then configure it
 * with `qsize` entries at desc/avail/used and set QueueReady. d's queue 0 fields are untouched.
 */
int vdrv_setup_queue(struct vdrv *d, uint32_t index, uint16_t qsize, gpa_t desc, gpa_t avail,
		     gpa_t used, bool event_idx);

/*
 * Point the ring functions below at a queue of `qsize` entries at desc/avail/used (as
 * vdrv_setup_queue() configured it; `event_idx` as negotiated) and start the ring bookkeeping
 * from 0. vdrv_setup() does this for queue 0; a copy of `d` can drive another queue.
 */
void vdrv_use_rings(struct vdrv *d, uint16_t qsize, gpa_t desc, gpa_t avail, gpa_t used,
		    bool event_idx);

/* Set DRIVER_OK (after vdrv_negotiate() and the queues) and check it reads back. */
int vdrv_driver_ok(struct vdrv *d);

/*
 * Write Status 0 (device reset) and drain a pending interrupt. The ring bookkeeping is kept,
 * so the used ring can still be inspected; vdrv_setup() starts afresh. The reset is done when
 * Status reads 0 (§2.4.1), which may take a device with requests in flight a while: polled
 * for up to 10 s. 0, or -EPROTO if it never does.
 */
int vdrv_reset(struct vdrv *d);

/*
 * The ring functions below work on the rings the last successful vdrv_setup() (queue 0) or
 * vdrv_use_rings() named (they lie in RAM: the device checked that at QueueReady); vdrv_kick()
 * notifies queue 0 whichever they are.
 *
 * Put a chain of `n` (1..qsize) buffers in the descriptor table from d->next_desc on (wrapping)
 * and its head in the next avail-ring slot, without publishing it. Returns the head.
 */
uint16_t vdrv_add(struct vdrv *d, const struct vdrv_buf *bufs, unsigned int n);

/* Store d->avail_idx into avail->idx (release: the chains added before become visible). */
void vdrv_publish(struct vdrv *d);

/* vdrv_add() then vdrv_publish(). Returns the head. */
uint16_t vdrv_post(struct vdrv *d, const struct vdrv_buf *bufs, unsigned int n);

/* Notify queue 0 (QueueNotify). */
void vdrv_kick(struct vdrv *d);

/* The device's used->idx (acquire: the elements before it are visible). */
uint16_t vdrv_used_idx(const struct vdrv *d);

/* With EVENT_IDX, ask for an interrupt at the next used element (used_event, §2.7.10). */
void vdrv_arm_irq(struct vdrv *d);

/* Read the next used element (slot d->used_seen) and count it as seen. Does not wait. */
struct vdrv_used vdrv_take_used(struct vdrv *d);

/*
 * Wait up to `timeout_ms` until `n` used elements are there that have not been taken, draining
 * the interrupt eventfd meanwhile. 0; -EIO once the device set DEVICE_NEEDS_RESET (it will not
 * answer any more); -ETIMEDOUT; or -errno if the eventfd cannot be read.
 */
int vdrv_wait_used(struct vdrv *d, unsigned int n, int timeout_ms);

/* Wait up to `timeout_ms` for InterruptStatus to show a used-buffer interrupt. */
bool vdrv_wait_irq(struct vdrv *d, int timeout_ms);

/* Wait up to `timeout_ms` for DEVICE_NEEDS_RESET, draining the interrupt eventfd meanwhile. */
bool vdrv_wait_needs_reset(struct vdrv *d, int timeout_ms);

/*
 * The chain at `head` of a `qsize`-entry descriptor table at `desc`, as a device following
 * §2.7.5 must see it, worked out independently of devices/virtq.c (a test oracle): each buffer
 * non-empty and in one RAM region, readable before writable, no INDIRECT, `next` in range, at
 * most qsize buffers. Fills bufs[] (room for qsize) and *nr. 0, or -EINVAL if malformed.
 */
int vdrv_expect_chain(const struct vdrv *d, gpa_t desc, uint16_t qsize, uint16_t head,
		      struct vdrv_buf *bufs, unsigned int *nr);

#endif
