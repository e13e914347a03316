/* vdriver: a fake guest driver that drives any virtio-mmio device through its registers. */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/virtq.h"
#include "vdriver.h"

/* Split-ring wire layout (§2.7.5, §2.7.6, §2.7.8), spelled out apart from devices/virtq.c. */
#define VDRV_DESC_SIZE	   16 /* le64 addr, le32 len, le16 flags, le16 next */
#define VDRV_AVAIL_HDR	   4  /* le16 flags, le16 idx, then le16 ring[size], le16 used_event */
#define VDRV_USED_HDR	   4  /* le16 flags, le16 idx, then {le32 id, le32 len}[size], ... */
#define VDRV_USED_ELEM	   8
#define VDRV_POLL_SLICE_MS 1

static int64_t vdrv_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Host start of region `i` (0 or 1) inside the one allocation. */
static uint8_t *vdrv_region_host(const struct vdrv *d, unsigned int i)
{
	if (i == 0)
		return d->host + VDRV_CANARY_SIZE;
	return d->host + VDRV_CANARY_SIZE + d->split + VDRV_CANARY_SIZE;
}

int vdrv_init(struct vdrv *d, uint64_t ram_size, uint64_t split)
{
	memset(d, 0, sizeof(*d));
	if (ram_size == 0 || ram_size % 4096 || split % 4096 || split >= ram_size)
		return -EINVAL;
	unsigned int canaries = split ? 3 : 2;
	uint64_t size = ram_size + (uint64_t)canaries * VDRV_CANARY_SIZE;
	/* Anonymous memory: zeroed, page-aligned, and only touched pages cost anything. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	d->host = p;
	d->host_size = size;
	d->ram_size = ram_size;
	d->split = split;

	uint64_t r0 = split ? split : ram_size;
	memset(d->host, VDRV_CANARY_BYTE, VDRV_CANARY_SIZE);
	memset(vdrv_region_host(d, 0) + r0, VDRV_CANARY_BYTE, VDRV_CANARY_SIZE);
	if (split)
		memset(vdrv_region_host(d, 1) + (ram_size - split), VDRV_CANARY_BYTE,
		       VDRV_CANARY_SIZE);
	int ret = gmem_add_region(&d->gm, 0, r0, vdrv_region_host(d, 0));
	if (ret == 0 && split)
		ret = gmem_add_region(&d->gm, split, ram_size - split, vdrv_region_host(d, 1));
	if (ret < 0) {
		vdrv_fini(d);
		return ret;
	}
	return 0;
}

void vdrv_fini(struct vdrv *d)
{
	if (d->host)
		munmap(d->host, d->host_size);
	memset(d, 0, sizeof(*d));
}

/* All VDRV_CANARY_BYTE? (One memcmp against itself shifted: cheap even when instrumented.) */
static bool vdrv_all_canary(const uint8_t *p)
{
	return p[0] == VDRV_CANARY_BYTE && memcmp(p, p + 1, VDRV_CANARY_SIZE - 1) == 0;
}

bool vdrv_canaries_ok(const struct vdrv *d)
{
	uint64_t r0 = d->split ? d->split : d->ram_size;
	if (!vdrv_all_canary(d->host) || !vdrv_all_canary(vdrv_region_host(d, 0) + r0))
		return false;
	return !d->split || vdrv_all_canary(vdrv_region_host(d, 1) + (d->ram_size - d->split));
}

void *vdrv_ptr(const struct vdrv *d, gpa_t gpa, uint64_t len)
{
	return gmem_ptr(&d->gm, gpa, len);
}

void vdrv_attach(struct vdrv *d, struct virtio_mmio *t)
{
	d->t = t;
}

void vdrv_wr32(struct vdrv *d, uint64_t off, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	virtio_mmio_io(d->t, off, b, 4, true);
}

uint32_t vdrv_rd32(struct vdrv *d, uint64_t off)
{
	uint8_t b[4] = {0};
	virtio_mmio_io(d->t, off, b, 4, false);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t vdrv_device_features(struct vdrv *d)
{
	vdrv_wr32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint64_t lo = vdrv_rd32(d, VIRTIO_MMIO_DEVICE_FEATURES);
	vdrv_wr32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = vdrv_rd32(d, VIRTIO_MMIO_DEVICE_FEATURES);
	return hi << 32 | lo;
}

/* Zero [gpa, gpa+len) if it is RAM; rings outside RAM are left for the device to refuse. */
static void vdrv_zero(struct vdrv *d, gpa_t gpa, uint64_t len)
{
	void *p = vdrv_ptr(d, gpa, len);
	if (p)
		memset(p, 0, len);
}

static int vdrv_fail(struct vdrv *d, int err, const char *why)
{
	d->why = why;
	return err;
}

static void vdrv_wr64(struct vdrv *d, uint64_t lo_reg, uint64_t v)
{
	vdrv_wr32(d, lo_reg, (uint32_t)v);
	vdrv_wr32(d, lo_reg + 4, (uint32_t)(v >> 32));
}

#define VDRV_ST_FEATURES_OK \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)

int vdrv_negotiate(struct vdrv *d, uint32_t device_id, uint64_t want, uint64_t *feat_out)
{
	d->why = NULL;
	if (vdrv_reset(d) < 0)
		return vdrv_fail(d, -EPROTO, "reset: Status is not 0 after 10 s");
	if (vdrv_rd32(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
		return vdrv_fail(d, -ENODEV, "bad MagicValue");
	if (vdrv_rd32(d, VIRTIO_MMIO_VERSION) != 2)
		return vdrv_fail(d, -ENODEV, "Version is not 2");
	if (vdrv_rd32(d, VIRTIO_MMIO_DEVICE_ID) != device_id)
		return vdrv_fail(d, -ENODEV, "unexpected DeviceID");
	vdrv_wr32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	vdrv_wr32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);

	uint64_t feat = vdrv_device_features(d) & want;
	vdrv_wr32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	vdrv_wr32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)feat);
	vdrv_wr32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	vdrv_wr32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(feat >> 32));
	vdrv_wr32(d, VIRTIO_MMIO_STATUS, VDRV_ST_FEATURES_OK);
	if (!(vdrv_rd32(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		return vdrv_fail(d, -EPROTO, "FEATURES_OK refused");
	*feat_out = feat;
	return 0;
}

int vdrv_setup_queue(struct vdrv *d, uint32_t index, uint16_t qsize, gpa_t desc, gpa_t avail,
		     gpa_t used, bool event_idx)
{
	/* A fresh driver starts from zeroed rings (event fields included). */
	vdrv_zero(d, desc, (uint64_t)VDRV_DESC_SIZE * qsize);
	vdrv_zero(d, avail, VDRV_AVAIL_HDR + 2ULL * qsize + (event_idx ? 2 : 0));
	vdrv_zero(d, used, VDRV_USED_HDR + (uint64_t)VDRV_USED_ELEM * qsize + (event_idx ? 2 : 0));
	vdrv_wr32(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (qsize > vdrv_rd32(d, VIRTIO_MMIO_QUEUE_NUM_MAX))
		return vdrv_fail(d, -EINVAL, "queue size above QueueNumMax");
	vdrv_wr32(d, VIRTIO_MMIO_QUEUE_NUM, qsize);
	vdrv_wr64(d, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	vdrv_wr64(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, avail);
	vdrv_wr64(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, used);
	vdrv_wr32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (vdrv_rd32(d, VIRTIO_MMIO_QUEUE_READY) != 1)
		return vdrv_fail(d, -EINVAL, "QueueReady refused");
	return 0;
}

int vdrv_driver_ok(struct vdrv *d)
{
	uint32_t st = VDRV_ST_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;
	vdrv_wr32(d, VIRTIO_MMIO_STATUS, st);
	if (vdrv_rd32(d, VIRTIO_MMIO_STATUS) != st)
		return vdrv_fail(d, -EPROTO, "DRIVER_OK refused or device failed");
	return 0;
}

void vdrv_use_rings(struct vdrv *d, uint16_t qsize, gpa_t desc, gpa_t avail, gpa_t used,
		    bool event_idx)
{
	d->qsize = qsize;
	d->desc = desc;
	d->avail = avail;
	d->used = used;
	d->event_idx = event_idx;
	d->next_desc = d->avail_idx = d->used_seen = 0;
}

int vdrv_setup(struct vdrv *d, uint32_t device_id, uint64_t want, uint16_t qsize, gpa_t desc,
	       gpa_t avail, gpa_t used)
{
	uint64_t feat;
	int ret = vdrv_negotiate(d, device_id, want, &feat);
	if (ret < 0)
		return ret;
	bool event_idx = feat & (1ULL << VIRTIO_F_RING_EVENT_IDX);
	ret = vdrv_setup_queue(d, 0, qsize, desc, avail, used, event_idx);
	if (ret < 0)
		return ret;
	vdrv_use_rings(d, qsize, desc, avail, used, event_idx);
	return vdrv_driver_ok(d);
}

/* Read the interrupt eventfd if it fires within `ms`: 1 read, 0 nothing, -errno. */
static int vdrv_drain_irq(struct vdrv *d, int ms)
{
	struct pollfd pfd = {.fd = d->t->irq_fd, .events = POLLIN};
	int r = poll(&pfd, 1, ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	uint64_t v;
	if (read(d->t->irq_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return errno == EAGAIN ? 0 : -EIO;
	return 1;
}

int vdrv_reset(struct vdrv *d)
{
	vdrv_wr32(d, VIRTIO_MMIO_STATUS, 0);
	/* The reset is done when Status reads 0 (§2.4.1); a device may take a while (requests
	 * in flight), so poll, for up to 10 s. */
	unsigned int st = vdrv_rd32(d, VIRTIO_MMIO_STATUS);
	for (int i = 0; st != 0 && i < 10000; i++) {
		usleep(1000);
		st = vdrv_rd32(d, VIRTIO_MMIO_STATUS);
	}
	if (st != 0)
		return -EPROTO;
	vdrv_drain_irq(d, 0);
	return 0;
}

static void vdrv_put16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

uint16_t vdrv_add(struct vdrv *d, const struct vdrv_buf *bufs, unsigned int n)
{
	uint16_t head = d->next_desc;
	for (unsigned int i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((d->next_desc + i) % d->qsize);
		uint8_t *p = vdrv_ptr(d, d->desc + (uint64_t)VDRV_DESC_SIZE * idx, VDRV_DESC_SIZE);
		uint64_t addr = htole64(bufs[i].gpa);
		uint32_t len = htole32(bufs[i].len);
		memcpy(p, &addr, 8);
		memcpy(p + 8, &len, 4);
		vdrv_put16(p + 12, (uint16_t)((bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
					      (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)));
		vdrv_put16(p + 14, (uint16_t)((idx + 1) % d->qsize));
	}
	d->next_desc = (uint16_t)((d->next_desc + n) % d->qsize);
	gpa_t slot = d->avail + VDRV_AVAIL_HDR + 2ULL * (d->avail_idx % d->qsize);
	vdrv_put16(vdrv_ptr(d, slot, 2), head);
	d->avail_idx++;
	return head;
}

void vdrv_publish(struct vdrv *d)
{
	uint16_t *idx = vdrv_ptr(d, d->avail + 2, 2);
	__atomic_store_n(idx, htole16(d->avail_idx), __ATOMIC_RELEASE);
}

uint16_t vdrv_post(struct vdrv *d, const struct vdrv_buf *bufs, unsigned int n)
{
	uint16_t head = vdrv_add(d, bufs, n);
	vdrv_publish(d);
	return head;
}

void vdrv_kick(struct vdrv *d)
{
	vdrv_wr32(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

uint16_t vdrv_used_idx(const struct vdrv *d)
{
	uint16_t *idx = vdrv_ptr(d, d->used + 2, 2);
	return le16toh(__atomic_load_n(idx, __ATOMIC_ACQUIRE));
}

void vdrv_arm_irq(struct vdrv *d)
{
	if (!d->event_idx)
		return;
	uint16_t *ev = vdrv_ptr(d, d->avail + VDRV_AVAIL_HDR + 2ULL * d->qsize, 2);
	__atomic_store_n(ev, htole16(d->used_seen), __ATOMIC_RELEASE);
}

struct vdrv_used vdrv_take_used(struct vdrv *d)
{
	gpa_t gpa = d->used + VDRV_USED_HDR + (uint64_t)VDRV_USED_ELEM * (d->used_seen % d->qsize);
	const uint8_t *p = vdrv_ptr(d, gpa, VDRV_USED_ELEM);
	struct vdrv_used u;
	memcpy(&u.id, p, 4);
	memcpy(&u.len, p + 4, 4);
	u.id = le32toh(u.id);
	u.len = le32toh(u.len);
	d->used_seen++;
	return u;
}

static bool vdrv_needs_reset(struct vdrv *d)
{
	return vdrv_rd32(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
}

int vdrv_wait_used(struct vdrv *d, unsigned int n, int timeout_ms)
{
	int64_t end = vdrv_now_ms() + timeout_ms;
	for (;;) {
		if ((uint16_t)(vdrv_used_idx(d) - d->used_seen) >= n)
			return 0;
		if (vdrv_needs_reset(d))
			return -EIO;
		if (vdrv_now_ms() > end)
			return -ETIMEDOUT;
		int r = vdrv_drain_irq(d, VDRV_POLL_SLICE_MS);
		if (r < 0)
			return r;
	}
}

bool vdrv_wait_irq(struct vdrv *d, int timeout_ms)
{
	int64_t end = vdrv_now_ms() + timeout_ms;
	for (;;) {
		if (vdrv_rd32(d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING)
			return true;
		if (vdrv_now_ms() > end)
			return false;
		usleep(1000 * VDRV_POLL_SLICE_MS);
	}
}

bool vdrv_wait_needs_reset(struct vdrv *d, int timeout_ms)
{
	int64_t end = vdrv_now_ms() + timeout_ms;
	for (;;) {
		if (vdrv_needs_reset(d))
			return true;
		if (vdrv_now_ms() > end)
			return false;
		if (vdrv_drain_irq(d, VDRV_POLL_SLICE_MS) < 0)
			return false;
	}
}

bool vdrv_in_ram(const struct vdrv *d, gpa_t gpa, uint64_t len)
{
	uint64_t r0 = d->split ? d->split : d->ram_size;
	if (len == 0)
		return false;
	if (gpa < r0)
		return len <= r0 - gpa;
	return gpa < d->ram_size && len <= d->ram_size - gpa;
}

int vdrv_expect_chain(const struct vdrv *d, gpa_t desc, uint16_t qsize, uint16_t head,
		      struct vdrv_buf *bufs, unsigned int *nr)
{
	unsigned int n = 0;
	bool seen_writable = false;
	uint16_t idx = head;
	*nr = 0;
	if (head >= qsize)
		return -EINVAL;
	for (;;) {
		gpa_t gpa = desc + (uint64_t)VDRV_DESC_SIZE * idx;
		if (n >= qsize || !vdrv_in_ram(d, gpa, VDRV_DESC_SIZE))
			return -EINVAL;
		const uint8_t *p = vdrv_ptr(d, gpa, VDRV_DESC_SIZE);
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		memcpy(&addr, p, 8);
		memcpy(&len, p + 8, 4);
		memcpy(&flags, p + 12, 2);
		memcpy(&next, p + 14, 2);
		addr = le64toh(addr);
		len = le32toh(len);
		flags = le16toh(flags);
		next = le16toh(next);
		bool writable = flags & VIRTQ_DESC_F_WRITE;
		if ((flags & VIRTQ_DESC_F_INDIRECT) || len == 0 || !vdrv_in_ram(d, addr, len) ||
		    (seen_writable && !writable))
			return -EINVAL;
		seen_writable = writable;
		bufs[n++] = (struct vdrv_buf){.gpa = addr, .len = len, .writable = writable};
		if (!(flags & VIRTQ_DESC_F_NEXT))
			break;
		if (next >= qsize)
			return -EINVAL;
		idx = next;
	}
	*nr = n;
	return 0;
}
