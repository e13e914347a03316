/* virtio_mmio: the virtio-mmio transport, version 2 registers (virtio 1.2 §4.2). */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvmini/virtio_mmio.h"

/*
 * Behaviour choices (the spec leaves these to the device, or a guest may get them wrong):
 *  - Registers are 32-bit: an access of another width, or at an offset that is no register
 *    (including the legacy ones: GuestPageSize, QueueAlign, QueuePFN), is ignored and reads 0.
 *    Config space (§4.2.2, from 0x100) takes 1, 2, 4 or 8 bytes wholly inside config_size;
 *    anything else there reads 0 and writes are dropped.
 *  - Registers that hold driver-written state (the Sel registers, DriverFeatures, QueueNum and
 *    the ring addresses) read back what was accepted; pure triggers (QueueNotify,
 *    InterruptACK) read 0. No shared memory regions: SHMLen and SHMBase read all-ones (-1).
 *    QueueReset reads 0 (VIRTIO_F_RING_RESET is not offered).
 *  - Status (§2.1, §3.1.1): writing 0 resets. Any other write may only add bits; one that
 *    would clear a bit is ignored. DEVICE_NEEDS_RESET belongs to the device: the driver can
 *    neither set nor clear it, so its value in a write does not matter. Unknown bits are
 *    dropped. FEATURES_OK is kept only if the driver accepted VERSION_1 and nothing that was
 *    not offered (§2.2.2). DRIVER_OK is kept only if FEATURES_OK was already set by an earlier
 *    write and FAILED is not set.
 *  - Queue configuration (§4.2.3.2) is accepted only between FEATURES_OK and DRIVER_OK, for a
 *    queue that is not ready, so the event-index layout is known when QueueReady=1 checks the
 *    rings and nothing moves under a running device. A QueueNum above 0xffff is stored as 0.
 *  - DRIVER_OK is set in Status before ops->activate runs, so a device thread that completes
 *    a request at once can already interrupt. ops->reset is called on reset whenever DRIVER_OK
 *    had been set, even if activate failed (the device must cope with that).
 *  - The driver's notifications reach kick_fd only for a ready queue after DRIVER_OK.
 *  - A config change or DEVICE_NEEDS_RESET sets INT_CONFIG at once but interrupts only after
 *    DRIVER_OK; a used-buffer notification before DRIVER_OK is dropped entirely.
 *  - Reset returns ConfigGeneration to 0 like every other register; eventfds stay open and a
 *    count pending on them is left alone (a spurious kick or interrupt is harmless).
 *  - A device with reset_start (virtio-blk) resets without holding the vCPU: writing 0 to
 *    Status returns at once while requests are still in flight, and Status goes on reading
 *    what it was (non-zero) until the last one completed (§2.4.1: the driver considers the
 *    reset done when Status reads 0); each access checks. A driver that writes any register
 *    before that (Linux's virtio-mmio driver does not poll Status) waits there for the reset
 *    to finish, so it never sees a half-reset device. Reads of other registers meanwhile
 *    show the old state.
 */

#define VIRTIO_MMIO_VERSION_2 2

/* The status bits a driver may set (§2.1); DEVICE_NEEDS_RESET is the device's. */
#define VIRTIO_MMIO_DRIVER_STATUS                                                       \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | \
	 VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_FAILED)

/* Every feature the device offers: its own plus the transport's (§6). */
static uint64_t virtio_mmio_offered(const struct virtio_mmio *t)
{
	return t->info.features | (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_EVENT_IDX);
}

/* Add 1 to an eventfd. EAGAIN means the counter is saturated: a signal is pending anyway. */
static void virtio_mmio_signal(int fd)
{
	uint64_t one = 1;
	if (write(fd, &one, sizeof(one)) < 0) {
		/* Nothing useful to do: the reader will still wake up. */
	}
}

static uint32_t virtio_mmio_lo(uint64_t v)
{
	return (uint32_t)v;
}

static uint32_t virtio_mmio_hi(uint64_t v)
{
	return (uint32_t)(v >> 32);
}

static void virtio_mmio_set_lo(uint64_t *v, uint32_t val)
{
	*v = (*v & 0xffffffff00000000ULL) | val;
}

static void virtio_mmio_set_hi(uint64_t *v, uint32_t val)
{
	*v = (*v & 0xffffffffULL) | ((uint64_t)val << 32);
}

/* The queue QueueSel names, or NULL if it is out of range. */
static struct virtio_mmio_queue *virtio_mmio_selected(struct virtio_mmio *t)
{
	if (t->queue_sel >= t->info.nr_queues)
		return NULL;
	return &t->q[t->queue_sel];
}

/* Every register, feature, queue and interrupt bit to its initial value. Lock held. */
static void virtio_mmio_clear_state(struct virtio_mmio *t)
{
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->queue_sel = 0;
	t->driver_features = 0;
	memset(t->q, 0, sizeof(t->q));
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		virtq_reset(&t->vq[i]);
	atomic_store(&t->int_status, 0);
	atomic_store(&t->config_generation, 0);
	atomic_store(&t->status, 0);
}

/*
 * Device reset (§2.4, §4.2.2 Status): stop the device if it was started, so nothing touches
 * guest memory afterwards, then return to the initial state. Waits for the device. Lock held.
 */
static void virtio_mmio_reset_locked(struct virtio_mmio *t)
{
	if ((t->resetting || (atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK)) && t->ops->reset)
		t->ops->reset(t->dev);
	t->resetting = false;
	virtio_mmio_clear_state(t);
}

/* The driver wrote 0 to Status: reset, without waiting when the device can (reset_start).
 * Lock held. */
static void virtio_mmio_reset_by_driver(struct virtio_mmio *t)
{
	if (t->resetting)
		return; /* a second 0 while the first is pending: nothing more to do */
	bool started = atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK;
	if (!started || !t->ops->reset_start || !t->ops->reset_done) {
		virtio_mmio_reset_locked(t);
		return;
	}
	if (t->ops->reset_start(t->dev)) {
		virtio_mmio_clear_state(t);
		return;
	}
	t->resetting = true; /* Status stays as it is until the device is done */
	log_guest(t->log, LOG_DEBUG, "%s: reset waits for requests in flight", t->name);
}

/* Before any access while a reset is pending: finish it if the device is done, or (`wait`:
 * the driver writes something) wait for it. Lock held. */
static void virtio_mmio_reset_settle(struct virtio_mmio *t, bool wait)
{
	if (!t->resetting)
		return;
	if (t->ops->reset_done(t->dev)) {
		t->resetting = false;
		virtio_mmio_clear_state(t);
	} else if (wait) {
		virtio_mmio_reset_locked(t);
	}
}

int virtio_mmio_init(struct virtio_mmio *t, const struct gmem *mem, struct logger *log,
		     const char *name, const struct virtio_dev_info *info,
		     const struct virtio_dev_ops *ops, void *dev)
{
	int err;

	/* From here on virtio_mmio_fini() is a no-op until t->ops is set on success. */
	memset(t, 0, sizeof(*t));
	t->irq_fd = -1;
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		t->kick_fd[i] = -1;

	if (!mem || !log || !info || !ops)
		return -EINVAL;
	if (info->config_size > VIRTIO_MMIO_CONFIG_MAX ||
	    info->nr_queues > VIRTIO_MMIO_MAX_QUEUES || info->queue_max == 0 ||
	    info->queue_max > VIRTQ_MAX_SIZE || (info->queue_max & (info->queue_max - 1)))
		return -EINVAL;

	t->mem = mem;
	t->log = log;
	t->trace = &t->notrace;
	t->name = name ? name : "virtio-mmio";
	t->info = *info;
	t->dev = dev;

	err = pthread_mutex_init(&t->lock, NULL);
	if (err)
		return -err;
	for (unsigned int i = 0; i < info->nr_queues; i++) {
		t->kick_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->kick_fd[i] < 0) {
			err = -errno;
			goto err_fds;
		}
	}
	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd < 0) {
		err = -errno;
		goto err_fds;
	}
	virtio_mmio_clear_state(t);
	t->ops = ops;
	return 0;

err_fds:
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		if (t->kick_fd[i] >= 0)
			close(t->kick_fd[i]);
		t->kick_fd[i] = -1;
	}
	pthread_mutex_destroy(&t->lock);
	return err;
}

void virtio_mmio_fini(struct virtio_mmio *t)
{
	if (!t->ops)
		return; /* zeroed, a failed init, or already finished */
	pthread_mutex_lock(&t->lock);
	virtio_mmio_reset_locked(t);
	pthread_mutex_unlock(&t->lock);
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		if (t->kick_fd[i] >= 0)
			close(t->kick_fd[i]);
		t->kick_fd[i] = -1;
	}
	if (t->irq_fd >= 0)
		close(t->irq_fd);
	t->irq_fd = -1;
	pthread_mutex_destroy(&t->lock);
	t->ops = NULL;
}

bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned int bit)
{
	return bit < 64 && ((t->driver_features >> bit) & 1);
}

void virtio_mmio_set_trace(struct virtio_mmio *t, struct trace *tr)
{
	t->trace = tr;
}

const char *virtio_mmio_reg_name(uint64_t offset)
{
	static const struct {
		uint32_t off;
		const char *name;
	} regs[] = {
		{VIRTIO_MMIO_MAGIC_VALUE, "MagicValue"},
		{VIRTIO_MMIO_VERSION, "Version"},
		{VIRTIO_MMIO_DEVICE_ID, "DeviceID"},
		{VIRTIO_MMIO_VENDOR_ID, "VendorID"},
		{VIRTIO_MMIO_DEVICE_FEATURES, "DeviceFeatures"},
		{VIRTIO_MMIO_DEVICE_FEATURES_SEL, "DeviceFeaturesSel"},
		{VIRTIO_MMIO_DRIVER_FEATURES, "DriverFeatures"},
		{VIRTIO_MMIO_DRIVER_FEATURES_SEL, "DriverFeaturesSel"},
		{VIRTIO_MMIO_QUEUE_SEL, "QueueSel"},
		{VIRTIO_MMIO_QUEUE_NUM_MAX, "QueueNumMax"},
		{VIRTIO_MMIO_QUEUE_NUM, "QueueNum"},
		{VIRTIO_MMIO_QUEUE_READY, "QueueReady"},
		{VIRTIO_MMIO_QUEUE_NOTIFY, "QueueNotify"},
		{VIRTIO_MMIO_INTERRUPT_STATUS, "InterruptStatus"},
		{VIRTIO_MMIO_INTERRUPT_ACK, "InterruptACK"},
		{VIRTIO_MMIO_STATUS, "Status"},
		{VIRTIO_MMIO_QUEUE_DESC_LOW, "QueueDescLow"},
		{VIRTIO_MMIO_QUEUE_DESC_HIGH, "QueueDescHigh"},
		{VIRTIO_MMIO_QUEUE_DRIVER_LOW, "QueueDriverLow"},
		{VIRTIO_MMIO_QUEUE_DRIVER_HIGH, "QueueDriverHigh"},
		{VIRTIO_MMIO_QUEUE_DEVICE_LOW, "QueueDeviceLow"},
		{VIRTIO_MMIO_QUEUE_DEVICE_HIGH, "QueueDeviceHigh"},
		{VIRTIO_MMIO_SHM_SEL, "SHMSel"},
		{VIRTIO_MMIO_SHM_LEN_LOW, "SHMLenLow"},
		{VIRTIO_MMIO_SHM_LEN_HIGH, "SHMLenHigh"},
		{VIRTIO_MMIO_SHM_BASE_LOW, "SHMBaseLow"},
		{VIRTIO_MMIO_SHM_BASE_HIGH, "SHMBaseHigh"},
		{VIRTIO_MMIO_QUEUE_RESET, "QueueReset"},
		{VIRTIO_MMIO_CONFIG_GENERATION, "ConfigGeneration"},
	};
	if (offset >= VIRTIO_MMIO_CONFIG)
		return "Config";
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		if (regs[i].off == offset)
			return regs[i].name;
	return "?";
}

void virtio_mmio_notify_vring(struct virtio_mmio *t)
{
	/* §4.2.3.4: set the reason in InterruptStatus, then raise the interrupt. */
	if (!(atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK))
		return;
	atomic_fetch_or(&t->int_status, VIRTIO_MMIO_INT_VRING);
	if (trace_on(t->trace, TRACE_IRQ))
		trace_emit(t->trace, "irq gsi %u %s used-buffer (irqfd)", t->gsi, t->name);
	virtio_mmio_signal(t->irq_fd);
}

void virtio_mmio_config_changed(struct virtio_mmio *t)
{
	/* §2.5: a driver that read config space across this change sees a new generation. */
	atomic_fetch_add(&t->config_generation, 1);
	atomic_fetch_or(&t->int_status, VIRTIO_MMIO_INT_CONFIG);
	if (atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK) {
		if (trace_on(t->trace, TRACE_IRQ))
			trace_emit(t->trace, "irq gsi %u %s config-change (irqfd)", t->gsi,
				   t->name);
		virtio_mmio_signal(t->irq_fd);
	}
}

void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why)
{
	unsigned int old = atomic_fetch_or(&t->status, VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	if (old & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
		return; /* already reported; the driver has to reset */
	atomic_fetch_add_explicit(&t->needs_reset_count, 1, memory_order_relaxed);
	log_guest(t->log, LOG_WARN, "%s: device needs reset: %s", t->name, why ? why : "error");
	/* §2.1.2: with DRIVER_OK set, the device sends a configuration change notification. */
	atomic_fetch_or(&t->int_status, VIRTIO_MMIO_INT_CONFIG);
	if (old & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_signal(t->irq_fd);
}

/* FEATURES_OK (§2.2.2, §6.1): only offered features, and VERSION_1 (no legacy interface). */
static bool virtio_mmio_features_ok(struct virtio_mmio *t)
{
	uint64_t extra = t->driver_features & ~virtio_mmio_offered(t);
	if (extra) {
		log_guest(t->log, LOG_WARN, "%s: FEATURES_OK refused: features 0x%llx not offered",
			  t->name, (unsigned long long)extra);
		return false;
	}
	if (!virtio_mmio_has_feature(t, VIRTIO_F_VERSION_1)) {
		log_guest(t->log, LOG_WARN, "%s: FEATURES_OK refused: VERSION_1 not accepted",
			  t->name);
		return false;
	}
	return true;
}

/* DRIVER_OK (§3.1.1 step 8): start every ready queue, then the device. Lock held. */
static void virtio_mmio_activate_locked(struct virtio_mmio *t)
{
	bool event_idx = virtio_mmio_has_feature(t, VIRTIO_F_RING_EVENT_IDX);

	for (unsigned int i = 0; i < t->info.nr_queues; i++) {
		const struct virtio_mmio_queue *q = &t->q[i];
		if (q->ready)
			virtq_start(&t->vq[i], t->mem, q->num, q->desc, q->driver, q->device,
				    event_idx);
	}
	atomic_fetch_or(&t->status, VIRTIO_STATUS_DRIVER_OK);
	int err = t->ops->activate ? t->ops->activate(t->dev) : 0;
	if (err < 0) {
		log_err(t->log, "%s: device failed to start: %s", t->name, strerror(-err));
		virtio_mmio_needs_reset(t, "device failed to start");
	}
}

/* A write to Status (§2.1, §4.2.2). Lock held. */
static void virtio_mmio_write_status(struct virtio_mmio *t, uint32_t val)
{
	if (val == 0) {
		virtio_mmio_reset_by_driver(t);
		return;
	}
	unsigned int cur = atomic_load(&t->status) & VIRTIO_MMIO_DRIVER_STATUS;
	unsigned int want = val & VIRTIO_MMIO_DRIVER_STATUS;
	if (cur & ~want) {
		/* §2.1.1: the driver must not clear a status bit (other than by a reset). */
		log_guest(t->log, LOG_WARN,
			  "%s: status write 0x%x would clear bits of 0x%x: ignored", t->name, val,
			  cur);
		return;
	}
	unsigned int add = want & ~cur;
	if ((add & VIRTIO_STATUS_FEATURES_OK) && !virtio_mmio_features_ok(t))
		add &= ~VIRTIO_STATUS_FEATURES_OK;
	if (add & VIRTIO_STATUS_DRIVER_OK) {
		if (!(cur & VIRTIO_STATUS_FEATURES_OK) || ((cur | add) & VIRTIO_STATUS_FAILED)) {
			log_guest(t->log, LOG_WARN, "%s: DRIVER_OK refused: %s", t->name,
				  (cur & VIRTIO_STATUS_FEATURES_OK) ? "driver set FAILED"
								    : "FEATURES_OK not set");
			add &= ~VIRTIO_STATUS_DRIVER_OK;
		}
	}
	atomic_fetch_or(&t->status, add & ~VIRTIO_STATUS_DRIVER_OK);
	if (add & VIRTIO_STATUS_DRIVER_OK)
		virtio_mmio_activate_locked(t);
}

/* DriverFeatures (§3.1.1 step 4): accepted between DRIVER and FEATURES_OK. Lock held. */
static void virtio_mmio_write_driver_features(struct virtio_mmio *t, uint32_t val)
{
	unsigned int st = atomic_load(&t->status);
	if (!(st & VIRTIO_STATUS_DRIVER) || (st & VIRTIO_STATUS_FEATURES_OK)) {
		log_guest(t->log, LOG_DEBUG, "%s: DriverFeatures write in status 0x%x ignored",
			  t->name, st);
		return;
	}
	if (t->driver_features_sel == 0)
		virtio_mmio_set_lo(&t->driver_features, val);
	else if (t->driver_features_sel == 1)
		virtio_mmio_set_hi(&t->driver_features, val);
	else if (val)
		log_guest(t->log, LOG_DEBUG, "%s: DriverFeatures word %u: 0x%x ignored", t->name,
			  t->driver_features_sel, val);
}

/*
 * The selected queue if the driver may configure it now (§4.2.3.2): in range, FEATURES_OK set,
 * DRIVER_OK not yet, and the queue not ready. NULL (logged) otherwise. Lock held.
 */
static struct virtio_mmio_queue *virtio_mmio_config_queue(struct virtio_mmio *t, const char *reg)
{
	struct virtio_mmio_queue *q = virtio_mmio_selected(t);
	unsigned int st = atomic_load(&t->status);
	const char *why = NULL;

	if (!q)
		why = "no such queue";
	else if (!(st & VIRTIO_STATUS_FEATURES_OK) || (st & VIRTIO_STATUS_DRIVER_OK))
		why = "not between FEATURES_OK and DRIVER_OK";
	else if (q->ready)
		why = "queue is ready";
	if (!why)
		return q;
	log_guest(t->log, LOG_DEBUG, "%s: %s write to queue %u ignored: %s", t->name, reg,
		  t->queue_sel, why);
	return NULL;
}

/* QueueReady (§4.2.3.2): 1 checks size and ring placement, 0 takes the queue back. */
static void virtio_mmio_write_queue_ready(struct virtio_mmio *t, uint32_t val)
{
	struct virtio_mmio_queue *q = virtio_mmio_selected(t);
	unsigned int st = atomic_load(&t->status);

	if (!q || !(st & VIRTIO_STATUS_FEATURES_OK) || (st & VIRTIO_STATUS_DRIVER_OK)) {
		log_guest(t->log, LOG_DEBUG,
			  "%s: QueueReady write to queue %u in status 0x%x ignored", t->name,
			  t->queue_sel, st);
		return;
	}
	if (val == 0) {
		q->ready = false;
		return;
	}
	if (val != 1) {
		log_guest(t->log, LOG_DEBUG, "%s: QueueReady value %u ignored", t->name, val);
		return;
	}
	if (q->ready)
		return;
	if (q->num == 0 || (q->num & (q->num - 1)) || q->num > t->info.queue_max) {
		log_guest(t->log, LOG_WARN,
			  "%s: queue %u refused: size %u is not a power of two up to %u", t->name,
			  t->queue_sel, q->num, t->info.queue_max);
		return;
	}
	bool event_idx = virtio_mmio_has_feature(t, VIRTIO_F_RING_EVENT_IDX);
	if (virtq_validate(t->mem, q->num, q->desc, q->driver, q->device, event_idx) < 0) {
		log_guest(
			t->log, LOG_WARN,
			"%s: queue %u refused: rings at 0x%llx/0x%llx/0x%llx (size %u) misaligned "
			"or not in RAM",
			t->name, t->queue_sel, (unsigned long long)q->desc,
			(unsigned long long)q->driver, (unsigned long long)q->device, q->num);
		return;
	}
	q->ready = true;
}

/* QueueNotify (§4.2.3.3) that reached userspace: forward it to the device's kick_fd. */
static void virtio_mmio_queue_notify(struct virtio_mmio *t, uint32_t idx)
{
	if (!(atomic_load(&t->status) & VIRTIO_STATUS_DRIVER_OK) || idx >= t->info.nr_queues ||
	    !t->q[idx].ready) {
		log_guest(t->log, LOG_DEBUG, "%s: notification for queue %u ignored", t->name, idx);
		return;
	}
	virtio_mmio_signal(t->kick_fd[idx]);
}

/* A 32-bit register read (§4.2.2). Lock held. */
static uint32_t virtio_mmio_read_reg(struct virtio_mmio *t, uint64_t reg)
{
	const struct virtio_mmio_queue *q = virtio_mmio_selected(t);

	switch (reg) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return VIRTIO_MMIO_VERSION_2;
	case VIRTIO_MMIO_DEVICE_ID:
		return t->info.device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->device_features_sel == 0)
			return virtio_mmio_lo(virtio_mmio_offered(t));
		if (t->device_features_sel == 1)
			return virtio_mmio_hi(virtio_mmio_offered(t));
		return 0;
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		return t->device_features_sel;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		if (t->driver_features_sel == 0)
			return virtio_mmio_lo(t->driver_features);
		if (t->driver_features_sel == 1)
			return virtio_mmio_hi(t->driver_features);
		return 0;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		return t->driver_features_sel;
	case VIRTIO_MMIO_QUEUE_SEL:
		return t->queue_sel;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return q ? t->info.queue_max : 0;
	case VIRTIO_MMIO_QUEUE_NUM:
		return q ? q->num : 0;
	case VIRTIO_MMIO_QUEUE_READY:
		return q ? q->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return atomic_load(&t->int_status);
	case VIRTIO_MMIO_STATUS:
		return atomic_load(&t->status);
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
		return q ? virtio_mmio_lo(q->desc) : 0;
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		return q ? virtio_mmio_hi(q->desc) : 0;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
		return q ? virtio_mmio_lo(q->driver) : 0;
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		return q ? virtio_mmio_hi(q->driver) : 0;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
		return q ? virtio_mmio_lo(q->device) : 0;
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		return q ? virtio_mmio_hi(q->device) : 0;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
		return 0xffffffff; /* §4.2.2: a region that does not exist has length -1 */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return atomic_load(&t->config_generation);
	default:
		return 0; /* QueueNotify, InterruptACK, SHMSel, QueueReset, no register */
	}
}

/* A 32-bit register write (§4.2.2). Lock held. */
static void virtio_mmio_write_reg(struct virtio_mmio *t, uint64_t reg, uint32_t val)
{
	struct virtio_mmio_queue *q;

	switch (reg) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = val;
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		virtio_mmio_write_driver_features(t, val);
		break;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = val;
		break;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = val;
		break;
	case VIRTIO_MMIO_QUEUE_NUM:
		q = virtio_mmio_config_queue(t, "QueueNum");
		if (q)
			q->num = val > UINT16_MAX ? 0 : (uint16_t)val;
		break;
	case VIRTIO_MMIO_QUEUE_READY:
		virtio_mmio_write_queue_ready(t, val);
		break;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		virtio_mmio_queue_notify(t, val);
		break;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		atomic_fetch_and(&t->int_status, ~val);
		break;
	case VIRTIO_MMIO_STATUS:
		virtio_mmio_write_status(t, val);
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		q = virtio_mmio_config_queue(t, "QueueDesc");
		if (q && reg == VIRTIO_MMIO_QUEUE_DESC_LOW)
			virtio_mmio_set_lo(&q->desc, val);
		else if (q)
			virtio_mmio_set_hi(&q->desc, val);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		q = virtio_mmio_config_queue(t, "QueueDriver");
		if (q && reg == VIRTIO_MMIO_QUEUE_DRIVER_LOW)
			virtio_mmio_set_lo(&q->driver, val);
		else if (q)
			virtio_mmio_set_hi(&q->driver, val);
		break;
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		q = virtio_mmio_config_queue(t, "QueueDevice");
		if (q && reg == VIRTIO_MMIO_QUEUE_DEVICE_LOW)
			virtio_mmio_set_lo(&q->device, val);
		else if (q)
			virtio_mmio_set_hi(&q->device, val);
		break;
	case VIRTIO_MMIO_SHM_SEL:
	case VIRTIO_MMIO_QUEUE_RESET:
		break; /* no shared memory, no per-queue reset: nothing to select or reset */
	default:
		log_guest(t->log, LOG_DEBUG, "%s: write 0x%x to offset 0x%03llx ignored", t->name,
			  val, (unsigned long long)reg);
		break;
	}
}

/* Device-specific config space (§4.2.2 Config, §2.5). `off` counts from 0x100. Lock held. */
static void virtio_mmio_config_io(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
				  bool is_write)
{
	if ((len != 1 && len != 2 && len != 4 && len != 8) || off >= t->info.config_size ||
	    len > t->info.config_size - off) {
		log_guest(t->log, LOG_DEBUG, "%s: %u-byte config %s at 0x%llx ignored", t->name,
			  len, is_write ? "write" : "read", (unsigned long long)off);
		return;
	}
	if (is_write && t->ops->config_write)
		t->ops->config_write(t->dev, (uint32_t)off, data, len);
	else if (!is_write && t->ops->config_read)
		t->ops->config_read(t->dev, (uint32_t)off, data, len);
}

void virtio_mmio_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *t = opaque;

	if (!is_write)
		memset(data, 0, len);
	if (offset >= VIRTIO_MMIO_WINDOW || len > VIRTIO_MMIO_WINDOW - offset)
		return;

	pthread_mutex_lock(&t->lock);
	if (t->resetting) {
		/* A write (but another 0 to Status) finds the reset finished, waiting if need be.
		 */
		bool zero_status = offset == VIRTIO_MMIO_STATUS && len == 4 && !data[0] &&
				   !data[1] && !data[2] && !data[3];
		virtio_mmio_reset_settle(t, is_write && !zero_status);
	}
	if (offset >= VIRTIO_MMIO_CONFIG) {
		virtio_mmio_config_io(t, offset - VIRTIO_MMIO_CONFIG, data, len, is_write);
	} else if (len != 4) {
		log_guest(t->log, LOG_DEBUG, "%s: %u-byte register access at 0x%03llx ignored",
			  t->name, len, (unsigned long long)offset);
	} else if (is_write) {
		/* Registers are little-endian (§4.2.2). */
		uint32_t val = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
			       (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
		virtio_mmio_write_reg(t, offset, val);
	} else {
		uint32_t val = virtio_mmio_read_reg(t, offset);
		for (unsigned int i = 0; i < 4; i++)
			data[i] = (uint8_t)(val >> (8 * i));
	}
	pthread_mutex_unlock(&t->lock);
}
