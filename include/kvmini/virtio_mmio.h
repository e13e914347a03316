/* virtio_mmio: the virtio-mmio transport, version 2 registers (virtio 1.2 §4.2). */
#ifndef KVMINI_VIRTIO_MMIO_H
#define KVMINI_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/gmem.h"
#include "kvmini/log.h"
#include "kvmini/trace.h"
#include "kvmini/virtq.h"

/* Size of one device's register window (registers 0x000..0x0ff, config space from 0x100). */
#define VIRTIO_MMIO_WINDOW	 0x1000
#define VIRTIO_MMIO_CONFIG	 0x100
#define VIRTIO_MMIO_CONFIG_MAX	 (VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_CONFIG)
#define VIRTIO_MMIO_MAX_QUEUES	 4
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050 /* offset the ioeventfds match */

/* Register offsets (§4.2.2). */
#define VIRTIO_MMIO_MAGIC_VALUE		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4
#define VIRTIO_MMIO_SHM_SEL		0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW		0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH	0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW	0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH	0x0bc
#define VIRTIO_MMIO_QUEUE_RESET		0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc

#define VIRTIO_MMIO_MAGIC  0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x494e4d4b /* "KMNI" */

/* Device status bits (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	 1
#define VIRTIO_STATUS_DRIVER		 2
#define VIRTIO_STATUS_DRIVER_OK		 4
#define VIRTIO_STATUS_FEATURES_OK	 8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED		 128

/* InterruptStatus bits (§4.2.2). */
#define VIRTIO_MMIO_INT_VRING  1
#define VIRTIO_MMIO_INT_CONFIG 2

/* Transport-level feature bits (§6). The transport always offers VERSION_1 and EVENT_IDX. */
#define VIRTIO_F_RING_EVENT_IDX 29
#define VIRTIO_F_VERSION_1	32

/*
 * What a device model plugs into the transport. All callbacks run with the transport's lock
 * held (lock order: transport, then the device's own lock), from a vCPU thread.
 */
struct virtio_dev_ops {
	/*
	 * The driver set DRIVER_OK: every ready queue has been started (virtq_start) and
	 * `t->driver_features` holds the negotiated features. Begin serving the queues.
	 * 0, or -errno: the transport then sets DEVICE_NEEDS_RESET.
	 */
	int (*activate)(void *dev);
	/*
	 * The driver wrote 0 to Status (or the VM is going away): stop serving the queues and
	 * finish or cancel every in-flight request so that nothing touches guest memory or the
	 * rings after this returns. Results of cancelled requests are dropped. May block briefly.
	 * Called whenever DRIVER_OK had been set, so also after activate failed.
	 */
	void (*reset)(void *dev);
	/*
	 * Optional: a reset that does not wait. Begin what reset does and return at once: true
	 * when it is already complete, false when requests are still in flight; then
	 * reset_done() says (without waiting) whether they have all completed, and reset()
	 * waits for that. The transport keeps Status non-zero until then (§2.4: the driver waits
	 * for it to read 0), so the vCPU that wrote 0 is not held up by I/O.
	 */
	bool (*reset_start)(void *dev);
	bool (*reset_done)(void *dev);
	/* Config space access; [off, off+len) already lies within the device's config_size. */
	void (*config_read)(void *dev, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t off, const uint8_t *data, uint32_t len);
};

/* The fixed description of a device model. */
struct virtio_dev_info {
	uint32_t device_id;   /* 2 block, 1 network (§5) */
	uint64_t features;    /* device-specific feature bits; the transport adds its own */
	uint32_t config_size; /* bytes of config space, <= VIRTIO_MMIO_CONFIG_MAX */
	unsigned int nr_queues;
	uint16_t queue_max; /* QueueNumMax, a power of two <= VIRTQ_MAX_SIZE */
};

struct virtio_mmio_queue {
	uint16_t num;		       /* QueueNum as written (validated at QueueReady) */
	bool ready;		       /* QueueReady */
	uint64_t desc, driver, device; /* ring addresses as written */
};

struct virtio_mmio {
	pthread_mutex_t lock; /* guards the register state below against concurrent vCPUs */
	const struct gmem *mem;
	struct logger *log;
	const char *name; /* "vda", "net0", ... for messages */
	struct virtio_dev_info info;
	const struct virtio_dev_ops *ops;
	void *dev;

	uint32_t device_features_sel, driver_features_sel, queue_sel;
	uint64_t driver_features;
	atomic_uint status;	/* read by device threads (DRIVER_OK, NEEDS_RESET) */
	atomic_uint int_status; /* InterruptStatus; set by device threads, ACKed by vCPUs */
	atomic_uint config_generation;
	atomic_uint needs_reset_count; /* times DEVICE_NEEDS_RESET was newly set */
	bool resetting; /* 0 was written to Status; the device's reset_start has not finished */
	struct virtio_mmio_queue q[VIRTIO_MMIO_MAX_QUEUES];
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES]; /* started at DRIVER_OK; the device uses these */

	int kick_fd[VIRTIO_MMIO_MAX_QUEUES]; /* eventfd per queue: the driver's notifications */
	int irq_fd;			     /* eventfd: each write is one interrupt (an irqfd) */
	unsigned int gsi;		     /* the GSI irq_fd is bound to (for the trace) */

	struct trace *trace;  /* the VM's tracer, or `notrace` */
	struct trace notrace; /* tracing off: used until virtio_mmio_set_trace() */
};

/*
 * Set up a transport for a device: register state at reset values and one eventfd per
 * queue plus the interrupt eventfd (the VM binds them with KVM_IOEVENTFD and KVM_IRQFD).
 * `name` and `log` must outlive the transport. 0 or -errno.
 */
int virtio_mmio_init(struct virtio_mmio *t, const struct gmem *mem, struct logger *log,
		     const char *name, const struct virtio_dev_info *info,
		     const struct virtio_dev_ops *ops, void *dev);

/* Trace this device's requests and interrupts to `tr` (before any vCPU runs). */
void virtio_mmio_set_trace(struct virtio_mmio *t, struct trace *tr);

/* The name of the register at `offset` ("QueueNotify", "Status", "Config+0x8"...), for the
 * trace; "?" for a hole. */
const char *virtio_mmio_reg_name(uint64_t offset);

/*
 * Reset the device (ops->reset if it was running) and close the eventfds. Safe on a zeroed t,
 * after a failed virtio_mmio_init() and when called twice.
 */
void virtio_mmio_fini(struct virtio_mmio *t);

/*
 * The bus handler for the device's VIRTIO_MMIO_WINDOW. Registers are 32-bit: other widths
 * are ignored (reads return 0) except in config space, which takes 1, 2, 4 and 8 bytes.
 * A QueueNotify write that reaches userspace (no ioeventfd bound) signals kick_fd itself.
 */
void virtio_mmio_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/*
 * Raise the used-buffer interrupt (device threads, after virtq_need_interrupt() said so).
 * Does nothing unless DRIVER_OK is set. Never blocks; takes no lock.
 */
void virtio_mmio_notify_vring(struct virtio_mmio *t);

/* The device's config space changed: bump ConfigGeneration and raise the config interrupt. */
void virtio_mmio_config_changed(struct virtio_mmio *t);

/*
 * A queue met a malformed chain (or the device failed): set DEVICE_NEEDS_RESET, raise the
 * config interrupt and log once (rate-limited). The driver must reset the device to recover.
 * Device threads; takes no lock.
 */
void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why);

/* Is feature `bit` negotiated? Valid once FEATURES_OK is set. */
bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned int bit);

#endif
