/* test_virtio_mmio: the virtio-mmio transport's registers, status machine, queues and signals. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/gmem.h"
#include "kvmini/log.h"
#include "kvmini/virtio_mmio.h"

#define RAM_SIZE  (64 * 1024)
#define CFG_SIZE  12
#define QUEUE_MAX 16
#define NR_QUEUES 2

/* Device-specific features the fake device offers: one in each 32-bit half. */
#define DEV_F_LOW  5
#define DEV_F_HIGH 41

#define F(bit) (1ULL << (bit))

/* Status values spelled out. */
#define ACK	    VIRTIO_STATUS_ACKNOWLEDGE
#define DRV	    VIRTIO_STATUS_DRIVER
#define FEAT_OK	    VIRTIO_STATUS_FEATURES_OK
#define DRV_OK	    VIRTIO_STATUS_DRIVER_OK
#define NEEDS_RESET VIRTIO_STATUS_DEVICE_NEEDS_RESET
#define FAILED	    VIRTIO_STATUS_FAILED

/* Ring placements inside the fake RAM, valid for any queue size up to QUEUE_MAX. */
#define Q0_DESC	  0x1000
#define Q0_DRIVER 0x2000
#define Q0_DEVICE 0x3000
#define Q1_DESC	  0x4000
#define Q1_DRIVER 0x5000
#define Q1_DEVICE 0x6000

/* A device with a small config space that records what the transport asks of it. */
struct fake_dev {
	struct virtio_mmio *t;
	uint8_t config[CFG_SIZE];
	int activated, resets;
	int activate_ret;
	/* What activate saw: the negotiated features and whether the queues were started. */
	uint64_t features_at_activate;
	uint16_t q0_size_at_activate;
	unsigned int status_at_activate;
	/* An optional device thread, stopped by reset (see test_device_thread_during_reset). */
	pthread_t thread;
	bool thread_running;
	atomic_bool stop;
};

struct fixture {
	uint8_t *ram;
	struct gmem gm;
	struct logger lg;
	int log_fd[2];
	struct virtio_dev_info info;
	struct fake_dev dev;
	struct virtio_mmio t;
	char logbuf[8192];
	size_t loglen;
};

static int fake_activate(void *opaque)
{
	struct fake_dev *d = opaque;
	d->activated++;
	d->features_at_activate = d->t->driver_features;
	d->q0_size_at_activate = d->t->vq[0].size;
	d->status_at_activate = atomic_load(&d->t->status);
	return d->activate_ret;
}

static void fake_reset(void *opaque)
{
	struct fake_dev *d = opaque;
	d->resets++;
	if (d->thread_running) {
		atomic_store(&d->stop, true);
		assert_int_equal(pthread_join(d->thread, NULL), 0);
		d->thread_running = false;
	}
}

static void fake_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct fake_dev *d = opaque;
	assert_true(off <= CFG_SIZE && len <= CFG_SIZE - off);
	memcpy(data, d->config + off, len);
}

static void fake_config_write(void *opaque, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct fake_dev *d = opaque;
	assert_true(off <= CFG_SIZE && len <= CFG_SIZE - off);
	memcpy(d->config + off, data, len);
}

static const struct virtio_dev_ops fake_ops = {
	.activate = fake_activate,
	.reset = fake_reset,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->ram = calloc(1, RAM_SIZE);
	if (!f->ram || gmem_add_region(&f->gm, 0, RAM_SIZE, f->ram) < 0)
		return -1;
	if (pipe2(f->log_fd, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	log_init(&f->lg, LOG_WARN, f->log_fd[1]);
	for (unsigned int i = 0; i < CFG_SIZE; i++)
		f->dev.config[i] = (uint8_t)(0x10 + i);
	f->dev.t = &f->t;
	f->info = (struct virtio_dev_info){
		.device_id = 2,
		.features = F(DEV_F_LOW) | F(DEV_F_HIGH),
		.config_size = CFG_SIZE,
		.nr_queues = NR_QUEUES,
		.queue_max = QUEUE_MAX,
	};
	if (virtio_mmio_init(&f->t, &f->gm, &f->lg, "vtest", &f->info, &fake_ops, &f->dev) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	virtio_mmio_fini(&f->t);
	close(f->log_fd[0]);
	close(f->log_fd[1]);
	free(f->ram);
	free(f);
	return 0;
}

/* Raw access of any width; reads start from a poisoned buffer to show what was written. */
static uint64_t rd(struct fixture *f, uint64_t off, uint32_t len)
{
	uint8_t b[8];
	memset(b, 0xa5, sizeof(b));
	virtio_mmio_io(&f->t, off, b, len, false);
	uint64_t v = 0;
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static void wr(struct fixture *f, uint64_t off, uint32_t len, uint64_t v)
{
	uint8_t b[8];
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	virtio_mmio_io(&f->t, off, b, len, true);
}

static uint32_t rd32(struct fixture *f, uint64_t off)
{
	return (uint32_t)rd(f, off, 4);
}

static void wr32(struct fixture *f, uint64_t off, uint32_t v)
{
	wr(f, off, 4, v);
}

static uint32_t status(struct fixture *f)
{
	return rd32(f, VIRTIO_MMIO_STATUS);
}

/* Pending count on a non-blocking eventfd (consumed), 0 if none. */
static uint64_t efd_take(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* Does the log written so far contain `s`? How often? */
static int log_count(struct fixture *f, const char *s)
{
	ssize_t n;
	while (f->loglen < sizeof(f->logbuf) - 1 &&
	       (n = read(f->log_fd[0], f->logbuf + f->loglen, sizeof(f->logbuf) - 1 - f->loglen)) >
		       0)
		f->loglen += (size_t)n;
	f->logbuf[f->loglen] = '\0';
	int count = 0;
	for (const char *p = strstr(f->logbuf, s); p; p = strstr(p + 1, s))
		count++;
	return count;
}

/* Driver steps of §3.1.1 up to FEATURES_OK with `features`; returns the status read back. */
static uint32_t negotiate(struct fixture *f, uint64_t features)
{
	wr32(f, VIRTIO_MMIO_STATUS, ACK);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK);
	return status(f);
}

/* Configure queue `idx` (§4.2.3.2) and write QueueReady=1; returns QueueReady read back. */
static uint32_t setup_queue(struct fixture *f, uint32_t idx, uint32_t num, uint64_t desc,
			    uint64_t driver, uint64_t device)
{
	wr32(f, VIRTIO_MMIO_QUEUE_SEL, idx);
	wr32(f, VIRTIO_MMIO_QUEUE_NUM, num);
	wr32(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	wr32(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	wr32(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)driver);
	wr32(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(driver >> 32));
	wr32(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)device);
	wr32(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(device >> 32));
	wr32(f, VIRTIO_MMIO_QUEUE_READY, 1);
	return rd32(f, VIRTIO_MMIO_QUEUE_READY);
}

#define STD_FEATURES (F(VIRTIO_F_VERSION_1) | F(VIRTIO_F_RING_EVENT_IDX) | F(DEV_F_LOW))

/* The whole initialisation with both queues; the device ends up activated. */
static void bring_up(struct fixture *f)
{
	assert_int_equal(negotiate(f, STD_FEATURES), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	assert_int_equal(setup_queue(f, 1, 16, Q1_DESC, Q1_DRIVER, Q1_DEVICE), 1);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | DRV_OK);
}

static void test_identification(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(rd32(f, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	assert_int_equal(rd32(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DEVICE_ID), 2);
	assert_int_equal(rd32(f, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	/* Power-on values of the rest. */
	assert_int_equal(status(f), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	for (uint32_t q = 0; q < NR_QUEUES; q++) {
		wr32(f, VIRTIO_MMIO_QUEUE_SEL, q);
		assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM_MAX), QUEUE_MAX);
		assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_READY), 0);
		assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM), 0);
	}
	/* Eventfds exist, are non-blocking and close-on-exec. */
	for (unsigned int q = 0; q < NR_QUEUES; q++) {
		assert_true(f->t.kick_fd[q] >= 0);
		assert_true(fcntl(f->t.kick_fd[q], F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(f->t.kick_fd[q], F_GETFD) & FD_CLOEXEC);
	}
	assert_int_equal(f->t.kick_fd[NR_QUEUES], -1);
	assert_true(f->t.irq_fd >= 0);
	assert_true(fcntl(f->t.irq_fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(f->t.irq_fd, F_GETFD) & FD_CLOEXEC);
}

static void test_device_features(void **state)
{
	struct fixture *f = *state;
	wr32(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DEVICE_FEATURES),
			 F(DEV_F_LOW) | F(VIRTIO_F_RING_EVENT_IDX));
	wr32(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DEVICE_FEATURES),
			 F(VIRTIO_F_VERSION_1 - 32) | F(DEV_F_HIGH - 32));
	assert_int_equal(rd32(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL), 1);
	wr32(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr32(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void test_happy_path(void **state)
{
	struct fixture *f = *state;
	uint64_t want = STD_FEATURES | F(DEV_F_HIGH);

	assert_int_equal(negotiate(f, want), ACK | DRV | FEAT_OK);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DRIVER_FEATURES), (uint32_t)want);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DRIVER_FEATURES), (uint32_t)(want >> 32));
	assert_true(virtio_mmio_has_feature(&f->t, VIRTIO_F_VERSION_1));
	assert_true(virtio_mmio_has_feature(&f->t, VIRTIO_F_RING_EVENT_IDX));
	assert_true(virtio_mmio_has_feature(&f->t, DEV_F_HIGH));
	assert_false(virtio_mmio_has_feature(&f->t, 7));
	assert_false(virtio_mmio_has_feature(&f->t, 64));

	/* A 64-bit ring address in guest RAM needs both halves; the high ones are 0 here. */
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM), 8);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_DESC_LOW), Q0_DESC);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW), Q0_DRIVER);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW), Q0_DEVICE);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_DESC_HIGH), 0);
	assert_int_equal(setup_queue(f, 1, 16, Q1_DESC, Q1_DRIVER, Q1_DEVICE), 1);
	assert_int_equal(f->dev.activated, 0);

	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(f->dev.activated, 1);
	assert_int_equal(f->dev.resets, 0);
	/* At activate the queues were started, the features negotiated and DRIVER_OK visible. */
	assert_int_equal(f->dev.features_at_activate, want);
	assert_int_equal(f->dev.q0_size_at_activate, 8);
	assert_true(f->dev.status_at_activate & DRV_OK);

	const struct virtq *q0 = &f->t.vq[0], *q1 = &f->t.vq[1];
	assert_ptr_equal(q0->mem, &f->gm);
	assert_int_equal(q0->size, 8);
	assert_int_equal(q0->desc_gpa, Q0_DESC);
	assert_int_equal(q0->avail_gpa, Q0_DRIVER);
	assert_int_equal(q0->used_gpa, Q0_DEVICE);
	assert_true(q0->event_idx);
	assert_false(q0->broken);
	assert_int_equal(q1->size, 16);
	assert_int_equal(q1->desc_gpa, Q1_DESC);
	assert_int_equal(q1->avail_gpa, Q1_DRIVER);
	assert_int_equal(q1->used_gpa, Q1_DEVICE);
	assert_true(q1->event_idx);

	/* Writing DRIVER_OK again does not activate twice. */
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(f->dev.activated, 1);
	assert_int_equal(log_count(f, "vtest"), 0);
}

static void test_queue_not_ready_not_started(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 1, 4, Q1_DESC, Q1_DRIVER, Q1_DEVICE), 1);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(f->dev.activated, 1);
	assert_int_equal(f->t.vq[0].size, 0); /* queue 0 was never made ready */
	assert_int_equal(f->t.vq[1].size, 4);
	assert_false(f->t.vq[1].event_idx); /* EVENT_IDX offered but not accepted */
}

static void test_event_idx_decides_ring_room(void **state)
{
	struct fixture *f = *state;
	/* A used ring of 8 entries ending exactly at the end of RAM: 4 + 8 * 8 bytes. */
	uint64_t used_end = RAM_SIZE - (4 + 8 * 8);

	/* Without EVENT_IDX it fits. */
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, used_end), 1);
	wr32(f, VIRTIO_MMIO_STATUS, 0);

	/* With EVENT_IDX it needs 2 more bytes for avail_event (§2.7.8). */
	assert_int_equal(negotiate(f, STD_FEATURES), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, used_end), 0);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, used_end - 4), 1);
}

static void test_features_ok_needs_version_1(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(DEV_F_LOW)), ACK | DRV);
	assert_int_equal(log_count(f, "VERSION_1"), 1);
	/* The driver may retry with a better set (FEATURES_OK was never set). */
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK);
}

static void test_features_ok_refuses_unoffered(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1) | F(7)), ACK | DRV);
	assert_int_equal(log_count(f, "not offered"), 1);
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1) | F(40)), ACK | DRV);
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1) | F(63)), ACK | DRV);
	assert_int_equal(f->dev.activated, 0);
}

static void test_driver_features_write_window(void **state)
{
	struct fixture *f = *state;
	/* Before DRIVER: ignored. */
	wr32(f, VIRTIO_MMIO_STATUS, ACK);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, F(DEV_F_LOW));
	assert_int_equal(rd32(f, VIRTIO_MMIO_DRIVER_FEATURES), 0);
	assert_int_equal(f->t.driver_features, 0);

	/* After FEATURES_OK: ignored. */
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, F(DEV_F_LOW) | F(7));
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_int_equal(f->t.driver_features, F(VIRTIO_F_VERSION_1));
	assert_false(virtio_mmio_has_feature(&f->t, DEV_F_LOW));
	assert_true(virtio_mmio_has_feature(&f->t, VIRTIO_F_VERSION_1));

	/* Words past the second one have no features: reads 0, writes change nothing. */
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DRIVER_FEATURES), 0);
}

static void test_driver_ok_needs_features_ok(void **state)
{
	struct fixture *f = *state;
	wr32(f, VIRTIO_MMIO_STATUS, ACK);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | DRV_OK);
	assert_int_equal(status(f), ACK | DRV);
	assert_int_equal(f->dev.activated, 0);
	assert_int_equal(log_count(f, "DRIVER_OK refused"), 1);

	/* FEATURES_OK and DRIVER_OK in one write: the driver skipped re-reading FEATURES_OK. */
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK);
	assert_int_equal(f->dev.activated, 0);

	/* After FAILED the driver has given up: no DRIVER_OK. */
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | FAILED);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | FAILED);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | FAILED | DRV_OK);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | FAILED);
	assert_int_equal(f->dev.activated, 0);
}

/* Queue 0's registers as read back, for "nothing changed" checks. */
struct qregs {
	uint32_t num, ready, desc_lo, desc_hi, drv_lo, drv_hi, dev_lo, dev_hi;
};

static struct qregs read_queue(struct fixture *f, uint32_t idx)
{
	wr32(f, VIRTIO_MMIO_QUEUE_SEL, idx);
	return (struct qregs){
		.num = rd32(f, VIRTIO_MMIO_QUEUE_NUM),
		.ready = rd32(f, VIRTIO_MMIO_QUEUE_READY),
		.desc_lo = rd32(f, VIRTIO_MMIO_QUEUE_DESC_LOW),
		.desc_hi = rd32(f, VIRTIO_MMIO_QUEUE_DESC_HIGH),
		.drv_lo = rd32(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW),
		.drv_hi = rd32(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH),
		.dev_lo = rd32(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW),
		.dev_hi = rd32(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH),
	};
}

static void assert_queue_equal(struct qregs a, struct qregs b)
{
	assert_memory_equal(&a, &b, sizeof(a));
}

/* Try to overwrite every configuration register of queue `idx`. */
static void scribble_queue(struct fixture *f, uint32_t idx)
{
	wr32(f, VIRTIO_MMIO_QUEUE_SEL, idx);
	wr32(f, VIRTIO_MMIO_QUEUE_NUM, 2);
	wr32(f, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x8000);
	wr32(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, 1);
	wr32(f, VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x9000);
	wr32(f, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 1);
	wr32(f, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0xa000);
	wr32(f, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 1);
}

static void test_queue_regs_before_features_ok(void **state)
{
	struct fixture *f = *state;
	static const struct qregs zero;
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV);
	scribble_queue(f, 0);
	wr32(f, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_queue_equal(read_queue(f, 0), zero);
	assert_false(f->t.q[0].ready);
	assert_int_equal(f->t.q[0].num, 0);
}

static void test_queue_regs_locked_while_ready(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	struct qregs before = read_queue(f, 0);
	scribble_queue(f, 0);
	assert_queue_equal(read_queue(f, 0), before);

	/* QueueReady=0 before DRIVER_OK gives the queue back; then it is writable again. */
	wr32(f, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(setup_queue(f, 0, 4, Q1_DESC, Q1_DRIVER, Q1_DEVICE), 1);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM), 4);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_DESC_LOW), Q1_DESC);
}

static void test_queue_regs_locked_after_driver_ok(void **state)
{
	struct fixture *f = *state;
	static const struct qregs zero;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(f->dev.activated, 1);

	struct qregs before = read_queue(f, 0);
	scribble_queue(f, 0);
	wr32(f, VIRTIO_MMIO_QUEUE_READY, 0); /* a running queue cannot be taken back */
	assert_queue_equal(read_queue(f, 0), before);
	assert_int_equal(f->t.vq[0].size, 8);

	/* Nor can a queue that was not set up be added once the device runs. */
	assert_int_equal(setup_queue(f, 1, 4, Q1_DESC, Q1_DRIVER, Q1_DEVICE), 0);
	assert_queue_equal(read_queue(f, 1), zero);
	assert_int_equal(f->t.vq[1].size, 0);
}

static void test_queue_size_checked_at_ready(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 12, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 0);
	assert_int_equal(log_count(f, "power of two"), 1);
	assert_int_equal(setup_queue(f, 0, QUEUE_MAX * 2, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 0);
	assert_int_equal(setup_queue(f, 0, 0, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 0);
	/* 0x10008 would be 8 if truncated to 16 bits; it is stored as 0 instead. */
	assert_int_equal(setup_queue(f, 0, 0x10008, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM), 0);
	assert_int_equal(setup_queue(f, 0, 1, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	wr32(f, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(setup_queue(f, 0, QUEUE_MAX, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
}

static void test_rings_checked_at_ready(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	/* Outside RAM, straddling its end, above 4 GiB, wrapping past 2^64. */
	assert_int_equal(setup_queue(f, 0, 8, RAM_SIZE, Q0_DRIVER, Q0_DEVICE), 0);
	assert_int_equal(log_count(f, "not in RAM"), 1);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, RAM_SIZE - 8, Q0_DEVICE), 0);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, (1ULL << 32) + Q0_DEVICE), 0);
	assert_int_equal(setup_queue(f, 0, 8, UINT64_MAX - 15, Q0_DRIVER, Q0_DEVICE), 0);
	/* Misaligned: descriptors 16, driver area 2, device area 4 bytes (§2.7). */
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC + 8, Q0_DRIVER, Q0_DEVICE), 0);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER + 1, Q0_DEVICE), 0);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE + 2), 0);
	assert_false(f->t.q[0].ready);
	/* The same queue is accepted once placed properly. */
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
}

static void test_queue_sel_out_of_range(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	struct qregs q0 = read_queue(f, 0), q1 = read_queue(f, 1);
	static const struct qregs zero;

	static const uint32_t bad[] = {NR_QUEUES, VIRTIO_MMIO_MAX_QUEUES, 0x10000, 0xffffffff};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(setup_queue(f, bad[i], 4, Q1_DESC, Q1_DRIVER, Q1_DEVICE), 0);
		assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_SEL), bad[i]);
		assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
		assert_queue_equal(read_queue(f, bad[i]), zero);
	}
	assert_queue_equal(read_queue(f, 0), q0);
	assert_queue_equal(read_queue(f, 1), q1);
	for (unsigned int i = NR_QUEUES; i < VIRTIO_MMIO_MAX_QUEUES; i++)
		assert_false(f->t.q[i].ready);
}

static void test_queue_notify(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);

	/* Before DRIVER_OK the device does not look at queues. */
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(efd_take(f->t.kick_fd[0]), 0);

	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(efd_take(f->t.kick_fd[0]), 1);
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_int_equal(efd_take(f->t.kick_fd[0]), 2);

	/* A queue that is not ready, one that does not exist, a non-32-bit write. */
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, NR_QUEUES);
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffffffff);
	wr(f, VIRTIO_MMIO_QUEUE_NOTIFY, 2, 0);
	assert_int_equal(efd_take(f->t.kick_fd[0]), 0);
	assert_int_equal(efd_take(f->t.kick_fd[1]), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NOTIFY), 0);
	assert_int_equal(efd_take(f->t.irq_fd), 0);
}

static void test_no_interrupts_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	virtio_mmio_notify_vring(&f->t);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(efd_take(f->t.irq_fd), 0);

	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	virtio_mmio_notify_vring(&f->t);
	virtio_mmio_config_changed(&f->t);
	assert_int_equal(efd_take(f->t.irq_fd), 0);
	/* The config change is recorded for later, the used-buffer one is not. */
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);

	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	virtio_mmio_notify_vring(&f->t);
	assert_int_equal(efd_take(f->t.irq_fd), 1);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
}

static void test_interrupt_ack(void **state)
{
	struct fixture *f = *state;
	bring_up(f);
	virtio_mmio_notify_vring(&f->t);
	virtio_mmio_config_changed(&f->t);
	assert_int_equal(efd_take(f->t.irq_fd), 2);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), 3);

	wr(f, VIRTIO_MMIO_INTERRUPT_ACK, 1, 3); /* wrong width: ignored */
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), 3);
	wr32(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	wr32(f, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING); /* already clear */
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	wr32(f, VIRTIO_MMIO_INTERRUPT_ACK, 0xffffffff);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_ACK), 0);
	/* InterruptStatus is read-only. */
	wr32(f, VIRTIO_MMIO_INTERRUPT_STATUS, 3);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static void test_config_generation(void **state)
{
	struct fixture *f = *state;
	bring_up(f);
	assert_int_equal(rd32(f, VIRTIO_MMIO_CONFIG_GENERATION), 0);
	virtio_mmio_config_changed(&f->t);
	uint32_t g1 = rd32(f, VIRTIO_MMIO_CONFIG_GENERATION);
	assert_int_not_equal(g1, 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(efd_take(f->t.irq_fd), 1);
	virtio_mmio_config_changed(&f->t);
	assert_int_not_equal(rd32(f, VIRTIO_MMIO_CONFIG_GENERATION), g1);
	/* The driver cannot change it. */
	uint32_t g2 = rd32(f, VIRTIO_MMIO_CONFIG_GENERATION);
	wr32(f, VIRTIO_MMIO_CONFIG_GENERATION, 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_CONFIG_GENERATION), g2);
}

static void test_needs_reset(void **state)
{
	struct fixture *f = *state;
	bring_up(f);
	virtio_mmio_needs_reset(&f->t, "bad chain");
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | DRV_OK | NEEDS_RESET);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(efd_take(f->t.irq_fd), 1);
	assert_int_equal(log_count(f, "bad chain"), 1);

	/* Again: nothing new to tell the driver, nothing new in the log. */
	virtio_mmio_needs_reset(&f->t, "bad chain");
	assert_int_equal(efd_take(f->t.irq_fd), 0);
	assert_int_equal(log_count(f, "bad chain"), 1);

	/* The driver writing Status back without the bit neither clears it nor is refused. */
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | DRV_OK | NEEDS_RESET);
	assert_int_equal(log_count(f, "would clear"), 0);

	/* Nor can the driver set it itself after a reset. */
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(status(f), 0);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | NEEDS_RESET);
	assert_int_equal(status(f), ACK);
}

static void test_needs_reset_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	virtio_mmio_needs_reset(&f->t, "early");
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | NEEDS_RESET);
	assert_int_equal(efd_take(f->t.irq_fd), 0);
}

static void test_activate_failure(void **state)
{
	struct fixture *f = *state;
	f->dev.activate_ret = -ENOMEM;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(f->dev.activated, 1);
	/* §2.1.2: DEVICE_NEEDS_RESET, announced by a configuration change notification. */
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | DRV_OK | NEEDS_RESET);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	assert_int_equal(efd_take(f->t.irq_fd), 1);
	assert_int_equal(log_count(f, "failed to start"), 2); /* the error and the reset request */

	/* The driver resets; ops->reset runs (activate was attempted) and a retry works. */
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->dev.resets, 1);
	assert_int_equal(status(f), 0);
	f->dev.activate_ret = 0;
	bring_up(f);
	assert_int_equal(f->dev.activated, 2);
}

static void test_config_space(void **state)
{
	struct fixture *f = *state;
	const uint64_t c = VIRTIO_MMIO_CONFIG;

	/* Inside: 1, 2, 4 and 8 bytes, little-endian as stored by the device. */
	assert_int_equal(rd(f, c, 1), 0x10);
	assert_int_equal(rd(f, c + 3, 1), 0x13);
	assert_int_equal(rd(f, c + 2, 2), 0x1312);
	assert_int_equal(rd(f, c + 4, 4), 0x17161514);
	assert_int_equal(rd(f, c + 4, 8), 0x1b1a191817161514ULL);
	assert_int_equal(rd(f, c + CFG_SIZE - 1, 1), 0x10 + CFG_SIZE - 1);
	wr(f, c + 1, 1, 0xaa);
	wr(f, c + 2, 2, 0xbbcc);
	wr(f, c + 4, 8, 0x0102030405060708ULL);
	static const uint8_t want[CFG_SIZE] = {0x10, 0xaa, 0xcc, 0xbb, 8, 7, 6, 5, 4, 3, 2, 1};
	assert_memory_equal(f->dev.config, want, CFG_SIZE);

	/* Straddling the end: the whole access is ignored. */
	assert_int_equal(rd(f, c + CFG_SIZE - 2, 4), 0);
	assert_int_equal(rd(f, c + CFG_SIZE - 4, 8), 0);
	wr(f, c + CFG_SIZE - 2, 4, 0xffffffff);
	wr(f, c + CFG_SIZE - 1, 2, 0xffff);
	assert_memory_equal(f->dev.config, want, CFG_SIZE);

	/* Beyond it, up to the end of the window. */
	assert_int_equal(rd(f, c + CFG_SIZE, 1), 0);
	assert_int_equal(rd(f, c + CFG_SIZE, 4), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_WINDOW - 8, 8), 0);
	wr(f, c + CFG_SIZE, 4, 0xffffffff);
	wr(f, VIRTIO_MMIO_WINDOW - 4, 4, 0xffffffff);
	assert_memory_equal(f->dev.config, want, CFG_SIZE);

	/* Odd widths are not config accesses. */
	assert_int_equal(rd(f, c, 3), 0);
	wr(f, c, 3, 0xffffff);
	assert_memory_equal(f->dev.config, want, CFG_SIZE);

	/* Past the window (the bus never sends it, but it must not reach the device). */
	uint8_t b[4] = {0xa5, 0xa5, 0xa5, 0xa5};
	virtio_mmio_io(&f->t, VIRTIO_MMIO_WINDOW, b, 4, false);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	virtio_mmio_io(&f->t, UINT64_MAX - 1, b, 4, false);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
}

static void test_no_config_space(void **state)
{
	(void)state;
	uint8_t ram[4096] = {0};
	struct gmem gm = {0};
	struct logger lg;
	log_init(&lg, LOG_ERROR - 1, 2);
	assert_int_equal(gmem_add_region(&gm, 0, sizeof(ram), ram), 0);
	struct virtio_dev_info info = {.device_id = 4, .nr_queues = 1, .queue_max = 1};
	static const struct virtio_dev_ops no_ops; /* every callback missing */
	struct virtio_mmio t;
	assert_int_equal(virtio_mmio_init(&t, &gm, &lg, NULL, &info, &no_ops, NULL), 0);
	uint8_t b[4] = {0xa5, 0xa5, 0xa5, 0xa5};
	virtio_mmio_io(&t, VIRTIO_MMIO_CONFIG, b, 4, false);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	/* And the device comes up without activate/reset callbacks. */
	static const uint8_t steps[] = {ACK, ACK | DRV};
	for (size_t i = 0; i < sizeof(steps); i++) {
		uint8_t v[4] = {steps[i]};
		virtio_mmio_io(&t, VIRTIO_MMIO_STATUS, v, 4, true);
	}
	uint8_t v[4] = {0};
	/* DriverFeatures word 1, bit 0: VERSION_1 */
	virtio_mmio_io(&t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, (uint8_t[4]){1}, 4, true);
	virtio_mmio_io(&t, VIRTIO_MMIO_DRIVER_FEATURES, (uint8_t[4]){1}, 4, true);
	v[0] = ACK | DRV | FEAT_OK;
	virtio_mmio_io(&t, VIRTIO_MMIO_STATUS, v, 4, true);
	v[0] = ACK | DRV | FEAT_OK | DRV_OK;
	virtio_mmio_io(&t, VIRTIO_MMIO_STATUS, v, 4, true);
	memset(v, 0, sizeof(v));
	virtio_mmio_io(&t, VIRTIO_MMIO_STATUS, v, 4, false);
	assert_int_equal(v[0], ACK | DRV | FEAT_OK | DRV_OK);
	virtio_mmio_fini(&t); /* resets without a reset callback */
}

static void test_reset(void **state)
{
	struct fixture *f = *state;

	/* Snapshot of every readable register at power-on, for each QueueSel. */
	uint32_t initial[3][0x40];
	for (uint32_t s = 0; s < 3; s++) {
		for (uint32_t r = 0; r < 0x40; r++) {
			wr32(f, VIRTIO_MMIO_QUEUE_SEL, s);
			initial[s][r] = rd32(f, r * 4);
		}
	}
	wr32(f, VIRTIO_MMIO_QUEUE_SEL, 0);

	bring_up(f);
	wr32(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	wr32(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_mmio_notify_vring(&f->t);
	virtio_mmio_config_changed(&f->t);
	virtio_mmio_needs_reset(&f->t, "testing");
	assert_int_equal(f->dev.resets, 0);

	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->dev.resets, 1);
	assert_int_equal(f->t.driver_features, 0);
	for (unsigned int i = 0; i < VIRTIO_MMIO_MAX_QUEUES; i++) {
		assert_int_equal(f->t.vq[i].size, 0);
		assert_false(f->t.q[i].ready);
	}
	/* QueueSel itself is back to 0 too, so check that before selecting anything. */
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_SEL), 0);
	for (uint32_t s = 0; s < 3; s++) {
		for (uint32_t r = 0; r < 0x40; r++) {
			wr32(f, VIRTIO_MMIO_QUEUE_SEL, s);
			if (r * 4 == VIRTIO_MMIO_QUEUE_SEL)
				continue;
			assert_int_equal(rd32(f, r * 4), initial[s][r]);
		}
	}
	wr32(f, VIRTIO_MMIO_QUEUE_SEL, 0);

	/* Eventfds stay usable; the device comes up again and is activated once more. */
	efd_take(f->t.irq_fd);
	bring_up(f);
	assert_int_equal(f->dev.activated, 2);
	wr32(f, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_int_equal(efd_take(f->t.kick_fd[1]), 1);
	virtio_mmio_notify_vring(&f->t);
	assert_int_equal(efd_take(f->t.irq_fd), 1);
}

static void test_reset_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(negotiate(f, F(VIRTIO_F_VERSION_1)), ACK | DRV | FEAT_OK);
	assert_int_equal(setup_queue(f, 0, 8, Q0_DESC, Q0_DRIVER, Q0_DEVICE), 1);
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->dev.resets, 0); /* never activated: nothing to stop */
	assert_int_equal(status(f), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM), 0);
	/* Reset of a reset device is harmless. */
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->dev.resets, 0);
}

static void test_status_bits_only_added(void **state)
{
	struct fixture *f = *state;
	wr32(f, VIRTIO_MMIO_STATUS, ACK);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV);
	wr32(f, VIRTIO_MMIO_STATUS, ACK);
	assert_int_equal(status(f), ACK | DRV);
	assert_int_equal(log_count(f, "would clear"), 1);
	wr32(f, VIRTIO_MMIO_STATUS, DRV);
	assert_int_equal(status(f), ACK | DRV);
	/* Unknown bits are dropped; adding FAILED works. */
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | 0x100 | 0x10);
	assert_int_equal(status(f), ACK | DRV);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FAILED);
	assert_int_equal(status(f), ACK | DRV | FAILED);

	/* Once running, only 0 takes DRIVER_OK away. */
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	bring_up(f);
	wr32(f, VIRTIO_MMIO_STATUS, ACK | DRV | FEAT_OK);
	assert_int_equal(status(f), ACK | DRV | FEAT_OK | DRV_OK);
	assert_int_equal(f->dev.resets, 0);
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(status(f), 0);
	assert_int_equal(f->dev.resets, 1);
}

static void test_register_width(void **state)
{
	struct fixture *f = *state;
	static const uint32_t widths[] = {1, 2, 8};
	for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
		uint32_t w = widths[i];
		assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE, w), 0);
		assert_int_equal(rd(f, VIRTIO_MMIO_VERSION, w), 0);
		assert_int_equal(rd(f, VIRTIO_MMIO_DEVICE_ID, w), 0);
		wr(f, VIRTIO_MMIO_STATUS, w, ACK);
		assert_int_equal(status(f), 0);
		wr(f, VIRTIO_MMIO_QUEUE_SEL, w, 1);
		assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_SEL), 0);
	}
	/* An 8-byte access at the last register does not spill into config space. */
	assert_int_equal(rd(f, VIRTIO_MMIO_CONFIG_GENERATION, 8), 0);
	wr(f, VIRTIO_MMIO_CONFIG_GENERATION, 8, UINT64_MAX);
	assert_int_equal(f->dev.config[0], 0x10);

	/* Misaligned 32-bit accesses hit no register. */
	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE + 1, 4), 0);
	assert_int_equal(rd(f, VIRTIO_MMIO_MAGIC_VALUE + 2, 4), 0);
	wr(f, VIRTIO_MMIO_STATUS + 2, 4, ACK);
	assert_int_equal(status(f), 0);
}

static void test_unknown_offsets(void **state)
{
	struct fixture *f = *state;
	f->lg.level = LOG_DEBUG; /* exercise the debug messages too */
	bring_up(f);
	uint32_t st = status(f);

	/* Legacy registers (version 1 only), holes and write-only triggers read 0. */
	static const uint32_t zero_regs[] = {0x018,
					     0x01c,
					     0x028,
					     0x03c,
					     0x040,
					     0x048,
					     0x04c,
					     0x054,
					     0x068,
					     0x074,
					     0x0a8,
					     0x0c4,
					     0x0f8,
					     VIRTIO_MMIO_QUEUE_NOTIFY,
					     VIRTIO_MMIO_INTERRUPT_ACK,
					     VIRTIO_MMIO_SHM_SEL,
					     VIRTIO_MMIO_QUEUE_RESET};
	for (size_t i = 0; i < sizeof(zero_regs) / sizeof(zero_regs[0]); i++) {
		assert_int_equal(rd32(f, zero_regs[i]), 0);
		wr32(f, zero_regs[i], 0xffffffff);
	}
	/* Writes to read-only registers change nothing. */
	wr32(f, VIRTIO_MMIO_MAGIC_VALUE, 0);
	wr32(f, VIRTIO_MMIO_VERSION, 1);
	wr32(f, VIRTIO_MMIO_DEVICE_ID, 0);
	wr32(f, VIRTIO_MMIO_QUEUE_NUM_MAX, 2);
	wr32(f, VIRTIO_MMIO_DEVICE_FEATURES, 0xffffffff);
	assert_int_equal(rd32(f, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	assert_int_equal(rd32(f, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(rd32(f, VIRTIO_MMIO_DEVICE_ID), 2);
	wr32(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_QUEUE_NUM_MAX), QUEUE_MAX);
	assert_int_equal(status(f), st);
	assert_int_equal(f->dev.resets, 0);
	assert_int_equal(efd_take(f->t.kick_fd[0]), 0); /* the 0xffffffff notify was ignored */

	/* No shared memory regions: length (and base) -1 whatever SHMSel says (§4.2.2). */
	for (uint32_t sel = 0; sel < 3; sel++) {
		wr32(f, VIRTIO_MMIO_SHM_SEL, sel);
		assert_int_equal(rd32(f, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff);
		assert_int_equal(rd32(f, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffff);
		assert_int_equal(rd32(f, VIRTIO_MMIO_SHM_BASE_LOW), 0xffffffff);
		assert_int_equal(rd32(f, VIRTIO_MMIO_SHM_BASE_HIGH), 0xffffffff);
	}
}

static void test_init_validation(void **state)
{
	(void)state;
	uint8_t ram[4096] = {0};
	struct gmem gm = {0};
	struct logger lg;
	log_init(&lg, LOG_ERROR - 1, 2);
	assert_int_equal(gmem_add_region(&gm, 0, sizeof(ram), ram), 0);
	const struct virtio_dev_info good = {
		.device_id = 1, .config_size = 8, .nr_queues = 2, .queue_max = 256};
	struct virtio_mmio t;

	struct virtio_dev_info bad[] = {good, good, good, good, good, good};
	bad[0].config_size = VIRTIO_MMIO_CONFIG_MAX + 1;
	bad[1].nr_queues = VIRTIO_MMIO_MAX_QUEUES + 1;
	bad[2].queue_max = 0;
	bad[3].queue_max = 24;
	bad[4].queue_max = VIRTQ_MAX_SIZE * 2;
	bad[5].queue_max = 0x8000;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&t, 0x5a, sizeof(t));
		assert_int_equal(virtio_mmio_init(&t, &gm, &lg, "bad", &bad[i], &fake_ops, NULL),
				 -EINVAL);
		virtio_mmio_fini(&t); /* after a failed init: a no-op */
	}
	memset(&t, 0x5a, sizeof(t));
	assert_int_equal(virtio_mmio_init(&t, &gm, &lg, "bad", &good, NULL, NULL), -EINVAL);
	virtio_mmio_fini(&t);

	/* Limits themselves are fine. */
	struct virtio_dev_info edge = good;
	edge.config_size = VIRTIO_MMIO_CONFIG_MAX;
	edge.nr_queues = VIRTIO_MMIO_MAX_QUEUES;
	edge.queue_max = VIRTQ_MAX_SIZE;
	assert_int_equal(virtio_mmio_init(&t, &gm, &lg, "edge", &edge, &fake_ops, NULL), 0);
	virtio_mmio_fini(&t);
	virtio_mmio_fini(&t); /* twice is fine */

	/* A zeroed transport can be finished, and fd 0 is not closed by mistake. */
	int fd0 = fcntl(0, F_GETFD);
	memset(&t, 0, sizeof(t));
	virtio_mmio_fini(&t);
	assert_int_equal(fcntl(0, F_GETFD), fd0);
}

static void test_fini_resets_running_device(void **state)
{
	struct fixture *f = *state;
	bring_up(f);
	virtio_mmio_fini(&f->t);
	assert_int_equal(f->dev.resets, 1);
	assert_int_equal(f->t.irq_fd, -1);
	assert_int_equal(f->t.kick_fd[0], -1);
	/* teardown's fini is then a no-op */
}

static void test_two_transports(void **state)
{
	struct fixture *f = *state;
	struct fake_dev d2 = {0};
	struct virtio_mmio t2;
	d2.t = &t2;
	assert_int_equal(virtio_mmio_init(&t2, &f->gm, &f->lg, "other", &f->info, &fake_ops, &d2),
			 0);
	bring_up(f);
	uint8_t v[4];
	virtio_mmio_io(&t2, VIRTIO_MMIO_STATUS, v, 4, false);
	assert_int_equal(v[0], 0);
	virtio_mmio_notify_vring(&t2); /* not running: nothing */
	assert_int_equal(efd_take(t2.irq_fd), 0);
	assert_int_not_equal(t2.irq_fd, f->t.irq_fd);
	virtio_mmio_fini(&t2);
	assert_int_equal(d2.resets, 0);
	assert_int_equal(f->dev.activated, 1);
}

/* A device thread signalling without pause until reset stops it. */
static void *signaller(void *opaque)
{
	struct fake_dev *d = opaque;
	unsigned long n = 0;
	while (!atomic_load(&d->stop)) {
		virtio_mmio_notify_vring(d->t);
		if (++n % 64 == 0)
			virtio_mmio_config_changed(d->t);
		if (n % 1024 == 0)
			virtio_mmio_needs_reset(d->t, "stress");
	}
	return NULL;
}

static void test_device_thread_during_reset(void **state)
{
	struct fixture *f = *state;
	bring_up(f);
	atomic_store(&f->dev.stop, false);
	assert_int_equal(pthread_create(&f->dev.thread, NULL, signaller, &f->dev), 0);
	f->dev.thread_running = true;
	/* The vCPU keeps reading and acknowledging while the device thread signals. */
	for (int i = 0; i < 2000; i++) {
		uint32_t isr = rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS);
		wr32(f, VIRTIO_MMIO_INTERRUPT_ACK, isr);
		efd_take(f->t.irq_fd);
	}
	/*
	 * Reset holds the transport lock while ops->reset joins the thread; that only returns
	 * because the signalling functions take no lock.
	 */
	wr32(f, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->dev.resets, 1);
	assert_false(f->dev.thread_running);
	assert_int_equal(status(f), 0);
	assert_int_equal(rd32(f, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_identification),
		T(test_device_features),
		T(test_happy_path),
		T(test_queue_not_ready_not_started),
		T(test_event_idx_decides_ring_room),
		T(test_features_ok_needs_version_1),
		T(test_features_ok_refuses_unoffered),
		T(test_driver_features_write_window),
		T(test_driver_ok_needs_features_ok),
		T(test_queue_regs_before_features_ok),
		T(test_queue_regs_locked_while_ready),
		T(test_queue_regs_locked_after_driver_ok),
		T(test_queue_size_checked_at_ready),
		T(test_rings_checked_at_ready),
		T(test_queue_sel_out_of_range),
		T(test_queue_notify),
		T(test_no_interrupts_before_driver_ok),
		T(test_interrupt_ack),
		T(test_config_generation),
		T(test_needs_reset),
		T(test_needs_reset_before_driver_ok),
		T(test_activate_failure),
		T(test_config_space),
		cmocka_unit_test(test_no_config_space),
		T(test_reset),
		T(test_reset_before_driver_ok),
		T(test_status_bits_only_added),
		T(test_register_width),
		T(test_unknown_offsets),
		cmocka_unit_test(test_init_validation),
		T(test_fini_resets_running_device),
		T(test_two_transports),
		T(test_device_thread_during_reset),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
