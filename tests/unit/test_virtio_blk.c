/* test_virtio_blk: the virtio-blk device driven through its virtio-mmio registers. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <linux/io_uring.h>

#include "kvmini/virtio_blk.h"
#include "require.h"
#include "vdriver.h"

/* Spec values (virtio 1.2 §5.2), spelled out independently of devices/virtio_blk.c. */
#define T_IN	       0
#define T_OUT	       1
#define T_FLUSH	       4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define S_OK	       0
#define S_IOERR	       1
#define S_UNSUPP       2
#define F_SIZE_MAX     1
#define F_SEG_MAX      2
#define F_RO	       5
#define F_BLK_SIZE     6
#define F_FLUSH	       9
#define F_DISCARD      13
#define F_WRITE_ZEROES 14
#define SECTOR	       512

/* Fake guest memory layout. */
#define MEM_SIZE    (64ULL << 20)
#define QSIZE	    VBLK_QUEUE_SIZE
#define DESC_GPA    0x0000ULL
#define AVAIL_GPA   0x1000ULL
#define USED_GPA    0x2000ULL
#define HDR_GPA	    0x3000ULL /* 16 bytes per slot */
#define STATUS_GPA  0x4000ULL /* 1 byte per slot */
#define SEG_GPA	    0x5000ULL /* 32 bytes per slot: discard/write-zeroes segments */
#define DATA_GPA    0x10000ULL
#define DATA_SLOT   0x10000ULL			 /* 64 KiB of data per slot */
#define BIG_GPA	    (DATA_GPA + 256 * DATA_SLOT) /* 1 MiB buffers for the reset test */
#define IMG_SECTORS 2048			 /* default image: 1 MiB */

#define TIMEOUT_MS 5000

struct fx {
	struct vdrv d; /* fake guest RAM and the driver's view of queue 0 */
	struct logger lg;
	char path[256];
	struct vblk *b;
	struct virtio_mmio *t;
};

/* ---- image files ---- */

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + off / 512 + 1);
}

static void make_image(char *path, size_t size, const char *dir, uint64_t sectors)
{
	const char *tmp = dir ? dir : getenv("TMPDIR");
	snprintf(path, size, "%s/kvmini-vblk-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint8_t buf[SECTOR];
	for (uint64_t s = 0; s < sectors; s++) {
		for (unsigned int i = 0; i < SECTOR; i++)
			buf[i] = pattern(s * SECTOR + i);
		assert_int_equal(pwrite(fd, buf, SECTOR, (off_t)(s * SECTOR)), SECTOR);
	}
	close(fd);
}

static void file_read(const char *path, uint64_t off, void *dst, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, dst, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static bool file_is_pattern(const char *path, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	file_read(path, off, buf, len);
	bool ok = true;
	for (size_t i = 0; i < len && ok; i++)
		ok = buf[i] == pattern(off + i);
	free(buf);
	return ok;
}

static bool file_is_zero(const char *path, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	file_read(path, off, buf, len);
	bool ok = true;
	for (size_t i = 0; i < len && ok; i++)
		ok = buf[i] == 0;
	free(buf);
	return ok;
}

/* ---- the test driver (tests/support/vdriver.c), asserting ---- */

static uint64_t device_features(struct fx *f)
{
	return vdrv_device_features(&f->d);
}

static void *gp(struct fx *f, uint64_t gpa)
{
	void *p = vdrv_ptr(&f->d, gpa, 1);
	assert_non_null(p);
	return p;
}

/* The driver's initialisation (§3.1.1, §4.2.3.2) up to DRIVER_OK, accepting every feature. */
static void driver_init(struct fx *f)
{
	int ret = vdrv_setup(&f->d, 2, ~0ULL, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	if (ret < 0)
		fail_msg("driver init: %s (%d)", f->d.why, ret);
	assert_int_equal(vdrv_rd32(&f->d, VIRTIO_MMIO_QUEUE_NUM_MAX), QSIZE);
	assert_true(f->d.event_idx);
}

/* Wait (bounded) until the used ring holds `n` elements the test has not looked at yet. */
static bool wait_used(struct fx *f, unsigned int n)
{
	/* EVENT_IDX is negotiated: ask for an interrupt after the next element (§2.7.10). */
	vdrv_arm_irq(&f->d);
	return vdrv_wait_used(&f->d, n, TIMEOUT_MS) == 0;
}

/* Wait for exactly one more used element: chain `head`, `len` written, `status`. */
static void expect_done(struct fx *f, uint16_t head, uint64_t status_gpa, uint8_t status,
			uint32_t len)
{
	assert_true(wait_used(f, 1));
	struct vdrv_used u = vdrv_take_used(&f->d);
	assert_int_equal(u.id, head);
	assert_int_equal(u.len, len);
	assert_int_equal(*(uint8_t *)gp(f, status_gpa), status);
	assert_int_equal(vdrv_used_idx(&f->d), f->d.used_seen); /* nothing more was returned */
}

/* Header for slot `s`: type and sector; the status byte preset to 0xff (not an answer). */
static uint64_t put_hdr(struct fx *f, unsigned int s, uint32_t type, uint64_t sector)
{
	uint8_t *h = gp(f, HDR_GPA + 16ULL * s);
	uint32_t t = htole32(type), r = 0;
	uint64_t sec = htole64(sector);
	memcpy(h, &t, 4);
	memcpy(h + 4, &r, 4);
	memcpy(h + 8, &sec, 8);
	*(uint8_t *)gp(f, STATUS_GPA + s) = 0xff;
	return HDR_GPA + 16ULL * s;
}

static uint64_t data_gpa(unsigned int s)
{
	return DATA_GPA + DATA_SLOT * s;
}

/* The usual request: header, one data buffer (none if len 0), status; returns the head. */
static uint16_t post_simple(struct fx *f, unsigned int s, uint32_t type, uint64_t sector,
			    uint32_t len, bool data_writable)
{
	struct vdrv_buf d[3];
	unsigned int n = 0;
	d[n++] = (struct vdrv_buf){put_hdr(f, s, type, sector), 16, false};
	if (len)
		d[n++] = (struct vdrv_buf){data_gpa(s), len, data_writable};
	d[n++] = (struct vdrv_buf){STATUS_GPA + s, 1, true};
	return vdrv_post(&f->d, d, n);
}

/* One request start to end: post, kick, check status and used length. */
static void run_simple(struct fx *f, unsigned int s, uint32_t type, uint64_t sector, uint32_t len,
		       bool data_writable, uint8_t status, uint32_t used_len)
{
	uint16_t head = post_simple(f, s, type, sector, len, data_writable);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA + s, status, used_len);
}

/* A discard / write-zeroes request with one segment. */
static void run_dwz(struct fx *f, uint32_t type, uint64_t sector, uint32_t count, uint32_t flags,
		    uint8_t status)
{
	uint8_t *seg = gp(f, SEG_GPA);
	uint64_t s = htole64(sector);
	uint32_t c = htole32(count), fl = htole32(flags);
	memcpy(seg, &s, 8);
	memcpy(seg + 8, &c, 4);
	memcpy(seg + 12, &fl, 4);
	struct vdrv_buf d[3] = {
		{put_hdr(f, 0, type, 0), 16, false},
		{SEG_GPA, 16, false},
		{STATUS_GPA, 1, true},
	};
	uint16_t head = vdrv_post(&f->d, d, 3);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA, status, 1);
}

/* ---- fixtures ---- */

static int fx_start_mem(struct fx *f, const char *dir, uint64_t sectors,
			const struct vblk_config *c, uint64_t mem)
{
	assert_int_equal(vdrv_init(&f->d, mem, 0), 0);
	log_init(&f->lg, LOG_ERROR - 1, 2); /* silent: the tests provoke guest errors on purpose */
	make_image(f->path, sizeof(f->path), dir, sectors);
	struct vblk_config cfg = c ? *c : (struct vblk_config){.cache = VBLK_CACHE_WRITEBACK};
	cfg.path = f->path;
	struct vmerr e = {0};
	int ret = vblk_create(&f->b, &cfg, &f->d.gm, &f->lg, "vda", &e);
	if (ret < 0) {
		print_error("vblk_create: %s\n", e.msg);
		return -1;
	}
	f->t = vblk_transport(f->b);
	vdrv_attach(&f->d, f->t);
	driver_init(f);
	return 0;
}

static int fx_start(struct fx *f, const char *dir, uint64_t sectors, const struct vblk_config *c)
{
	return fx_start_mem(f, dir, sectors, c, MEM_SIZE);
}

static int fx_setup_cfg(void **state, const char *dir, uint64_t sectors,
			const struct vblk_config *c)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	return fx_start(f, dir, sectors, c);
}

static int setup(void **state)
{
	return fx_setup_cfg(state, NULL, IMG_SECTORS, NULL);
}

static int setup_ro(void **state)
{
	struct vblk_config c = {.readonly = true};
	return fx_setup_cfg(state, NULL, IMG_SECTORS, &c);
}

static int setup_serial(void **state)
{
	struct vblk_config c = {.serial = "kvmini-serial-01"};
	return fx_setup_cfg(state, NULL, IMG_SECTORS, &c);
}

static int setup_unsafe(void **state)
{
	struct vblk_config c = {.cache = VBLK_CACHE_UNSAFE};
	return fx_setup_cfg(state, NULL, IMG_SECTORS, &c);
}

/* An image on tmpfs, which has no FALLOC_FL_ZERO_RANGE: exercises the fallbacks. */
static int setup_tmpfs(void **state)
{
	struct stat st;
	if (stat("/dev/shm", &st) < 0 || !S_ISDIR(st.st_mode))
		return fx_setup_cfg(state, NULL, IMG_SECTORS, NULL);
	return fx_setup_cfg(state, "/dev/shm", IMG_SECTORS, NULL);
}

/* 64 MiB sparse-ish image for the big reads of the reset test. */
static int setup_big(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	int ret = fx_start(f, NULL, 8, NULL);
	if (ret < 0)
		return ret;
	/* Grow the image behind the device's back before it learns the size: recreate it. */
	vblk_destroy(f->b);
	assert_int_equal(truncate(f->path, 64 << 20), 0);
	struct vblk_config cfg = {.path = f->path};
	struct vmerr e = {0};
	assert_int_equal(vblk_create(&f->b, &cfg, &f->d.gm, &f->lg, "vda", &e), 0);
	f->t = vblk_transport(f->b);
	vdrv_attach(&f->d, f->t);
	driver_init(f);
	return 0;
}

/* 160 MiB of guest memory and a 127 MiB image: room for one request of more than
 * VBLK_REQ_MAX bytes that is otherwise valid. */
static int setup_huge(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	*state = f;
	return fx_start_mem(f, NULL, (VBLK_REQ_MAX + (1 << 20)) / SECTOR, NULL, 160ULL << 20);
}

/* Rate limits: 20 requests a second (a bucket of 2), or 1 MiB/s (a bucket of 100 KiB). */
static int setup_iops(void **state)
{
	struct vblk_config c = {.limit = {.ops_per_s = 20}};
	return fx_setup_cfg(state, NULL, IMG_SECTORS, &c);
}

static int setup_bw(void **state)
{
	struct vblk_config c = {.limit = {.bytes_per_s = 1 << 20}};
	return fx_setup_cfg(state, NULL, IMG_SECTORS, &c);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	vblk_destroy(f->b);
	if (f->path[0])
		unlink(f->path);
	if (f->d.host)
		assert_true(vdrv_canaries_ok(&f->d));
	vdrv_fini(&f->d);
	free(f);
	return 0;
}

/* ---- tests ---- */

static void test_features_and_config(void **state)
{
	struct fx *f = *state;
	uint64_t feat = device_features(f);
	uint64_t want = 1ULL << F_SIZE_MAX | 1ULL << F_SEG_MAX | 1ULL << F_BLK_SIZE |
			1ULL << F_FLUSH | 1ULL << F_DISCARD | 1ULL << F_WRITE_ZEROES;
	assert_int_equal(feat & want, want);
	assert_false(feat & (1ULL << F_RO));
	assert_true(feat & (1ULL << VIRTIO_F_VERSION_1));
	assert_int_equal(vblk_capacity(f->b), IMG_SECTORS);

	uint8_t cfg[60];
	for (unsigned int i = 0; i < sizeof(cfg); i++) {
		uint8_t v = 0;
		virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + i, &v, 1, false);
		cfg[i] = v;
	}
	uint64_t cap;
	uint32_t v32;
	memcpy(&cap, cfg, 8);
	assert_int_equal(le64toh(cap), IMG_SECTORS);
	memcpy(&v32, cfg + 8, 4);
	assert_int_equal(le32toh(v32), VBLK_SIZE_MAX);
	memcpy(&v32, cfg + 12, 4);
	assert_int_equal(le32toh(v32), VBLK_SEG_MAX);
	memcpy(&v32, cfg + 20, 4);
	assert_int_equal(le32toh(v32), 512);
	memcpy(&v32, cfg + 36, 4);
	assert_true(le32toh(v32) > 0); /* max_discard_sectors */
	memcpy(&v32, cfg + 40, 4);
	assert_int_equal(le32toh(v32), 1); /* max_discard_seg */
	memcpy(&v32, cfg + 44, 4);
	assert_true(le32toh(v32) > 0); /* discard_sector_alignment */
	memcpy(&v32, cfg + 48, 4);
	assert_true(le32toh(v32) > 0); /* max_write_zeroes_sectors */
	memcpy(&v32, cfg + 52, 4);
	assert_int_equal(le32toh(v32), 1); /* max_write_zeroes_seg */
	assert_int_equal(cfg[56], 1);	   /* write_zeroes_may_unmap */

	/* An 8-byte read of the capacity, and writes are ignored. */
	uint8_t d8[8];
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG, d8, 8, false);
	assert_memory_equal(d8, cfg, 8);
	uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG, junk, 8, true);
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 12, junk, 4, true);
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG, d8, 8, false);
	assert_memory_equal(d8, cfg, 8);
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 12, d8, 4, false);
	assert_memory_equal(d8, cfg + 12, 4);
}

static void test_features_readonly(void **state)
{
	struct fx *f = *state;
	uint64_t feat = device_features(f);
	assert_true(feat & (1ULL << F_RO));
	assert_true(feat & (1ULL << F_FLUSH));
	assert_false(feat & (1ULL << F_DISCARD));
	assert_false(feat & (1ULL << F_WRITE_ZEROES));
	uint8_t d[4];
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 36, d, 4, false);
	assert_memory_equal(d, "\0\0\0\0", 4); /* no discard limits without the feature */
}

static void test_read_write_roundtrip(void **state)
{
	struct fx *f = *state;
	/* Read sectors 3..4 and compare with the image. */
	memset(gp(f, data_gpa(0)), 0xee, 1024);
	run_simple(f, 0, T_IN, 3, 1024, true, S_OK, 1025);
	for (unsigned int i = 0; i < 1024; i++)
		assert_int_equal(((uint8_t *)gp(f, data_gpa(0)))[i], pattern(3 * SECTOR + i));
	assert_true(vdrv_wait_irq(&f->d, TIMEOUT_MS));
	vdrv_wr32(&f->d, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	assert_false(vdrv_rd32(&f->d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);

	/* Write sectors 5..6, check the host file, read them back. */
	for (unsigned int i = 0; i < 1024; i++)
		((uint8_t *)gp(f, data_gpa(1)))[i] = (uint8_t)(i ^ 0x5a);
	run_simple(f, 1, T_OUT, 5, 1024, false, S_OK, 1);
	uint8_t host[1024];
	file_read(f->path, 5 * SECTOR, host, sizeof(host));
	assert_memory_equal(host, gp(f, data_gpa(1)), 1024);
	assert_true(file_is_pattern(f->path, 4 * SECTOR, SECTOR));
	assert_true(file_is_pattern(f->path, 7 * SECTOR, SECTOR));
	memset(gp(f, data_gpa(2)), 0, 1024);
	run_simple(f, 2, T_IN, 5, 1024, true, S_OK, 1025);
	assert_memory_equal(gp(f, data_gpa(2)), host, 1024);

	/* The last sector of the disk; a zero-length read at the very end is fine too. */
	run_simple(f, 3, T_IN, IMG_SECTORS - 1, SECTOR, true, S_OK, SECTOR + 1);
	run_simple(f, 4, T_IN, IMG_SECTORS, 0, true, S_OK, 1);
}

static void test_multi_segment(void **state)
{
	struct fx *f = *state;
	/* Write 3 sectors: the header and the first 100 data bytes share one buffer. */
	uint8_t *src = gp(f, data_gpa(0));
	uint64_t hdr = put_hdr(f, 0, T_OUT, 10);
	uint8_t *hb = gp(f, hdr);
	for (unsigned int i = 0; i < 100; i++)
		hb[16 + i] = (uint8_t)(i + 1); /* over header slots 1..7, unused until later */
	for (unsigned int i = 0; i < 1436; i++)
		src[i] = (uint8_t)(i * 3 + 101);
	struct vdrv_buf w[5] = {
		{hdr, 116, false},
		{data_gpa(0), 400, false},
		{data_gpa(0) + 400, 1036, false},
		{STATUS_GPA, 1, true},
	};
	uint16_t head = vdrv_post(&f->d, w, 4);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA, S_OK, 1);
	uint8_t host[1536];
	file_read(f->path, 10 * SECTOR, host, sizeof(host));
	for (unsigned int i = 0; i < 100; i++)
		assert_int_equal(host[i], (uint8_t)(i + 1));
	assert_memory_equal(host + 100, src, 1436);

	/* Read them back in three writable buffers; the status byte shares the last one. */
	uint8_t *dst = gp(f, data_gpa(1));
	memset(dst, 0xcc, 4096);
	struct vdrv_buf r[4] = {
		{put_hdr(f, 1, T_IN, 10), 16, false},
		{data_gpa(1), 700, true},
		{data_gpa(1) + 1000, 300, true},
		{data_gpa(1) + 2000, 537, true}, /* 536 data bytes + status */
	};
	head = vdrv_post(&f->d, r, 4);
	vdrv_kick(&f->d);
	expect_done(f, head, data_gpa(1) + 2536, S_OK, 1537);
	assert_memory_equal(dst, host, 700);
	assert_memory_equal(dst + 1000, host + 700, 300);
	assert_memory_equal(dst + 2000, host + 1000, 536);
	assert_int_equal(dst[700], 0xcc); /* the gaps are untouched */
	assert_int_equal(dst[1300], 0xcc);
}

static void test_too_many_segments(void **state)
{
	struct fx *f = *state;
	/* VBLK_SEG_MAX + 1 data buffers of one sector: IOERR, nothing written. */
	struct vdrv_buf d[VBLK_SEG_MAX + 3];
	unsigned int n = 0;
	d[n++] = (struct vdrv_buf){put_hdr(f, 0, T_OUT, 0), 16, false};
	for (unsigned int i = 0; i < VBLK_SEG_MAX + 1; i++)
		d[n++] = (struct vdrv_buf){DATA_GPA + 512ULL * i, 512, false};
	d[n++] = (struct vdrv_buf){STATUS_GPA, 1, true};
	uint16_t head = vdrv_post(&f->d, d, n);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA, S_IOERR, 1);
	assert_true(file_is_pattern(f->path, 0, (VBLK_SEG_MAX + 1) * SECTOR));

	/* Exactly VBLK_SEG_MAX is fine. */
	memset(gp(f, DATA_GPA), 0x77, VBLK_SEG_MAX * 512);
	n = 0;
	d[n++] = (struct vdrv_buf){put_hdr(f, 1, T_OUT, 0), 16, false};
	for (unsigned int i = 0; i < VBLK_SEG_MAX; i++)
		d[n++] = (struct vdrv_buf){DATA_GPA + 512ULL * i, 512, false};
	d[n++] = (struct vdrv_buf){STATUS_GPA + 1, 1, true};
	head = vdrv_post(&f->d, d, n);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA + 1, S_OK, 1);
	uint8_t host[512];
	file_read(f->path, (VBLK_SEG_MAX - 1) * SECTOR, host, sizeof(host));
	for (unsigned int i = 0; i < sizeof(host); i++)
		assert_int_equal(host[i], 0x77);
}

/* One read may move at most SEG_MAX x SIZE_MAX bytes (126 MiB), however few its segments: a
 * longer one is IOERR and touches no guest memory; exactly that much is served. */
static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Post `n` requests of `len` bytes (slots 0..n-1), kick once, wait for all: the milliseconds. */
static uint64_t run_batch(struct fx *f, unsigned int n, uint32_t type, uint32_t len)
{
	uint64_t t0 = mono_ms();
	for (unsigned int i = 0; i < n; i++)
		post_simple(f, i, type, (uint64_t)i * (len / SECTOR), len, type == T_IN);
	vdrv_kick(&f->d);
	for (unsigned int i = 0; i < n; i++) {
		assert_true(wait_used(f, 1));
		vdrv_take_used(&f->d);
	}
	uint64_t ms = mono_ms() - t0;
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(*(uint8_t *)gp(f, STATUS_GPA + i), S_OK);
	return ms;
}

static void test_iops_limit_spaces_requests(void **state)
{
	/* 10 reads at 20/s with a bucket of 2: the 8 beyond the bucket take 50 ms each. A
	 * limiter only ever slows down, so the lower bound is safe on a loaded machine. */
	struct fx *f = *state;
	uint64_t ms = run_batch(f, 10, T_IN, SECTOR);
	assert_true(ms >= 8 * 50 * 9 / 10);
	assert_true(ms < 4000);
	struct vblk_stats st;
	vblk_get_stats(f->b, &st);
	assert_int_equal(st.reads, 10);
	assert_true(st.throttled >= 1);
}

static void test_bw_limit_and_runtime_change(void **state)
{
	/* 1 MiB/s, 64 KiB writes: 8 of them (512 KiB) minus the 100 KiB bucket and the last
	 * request's 64 KiB: at least 0.34 s. */
	struct fx *f = *state;
	uint64_t ms = run_batch(f, 8, T_OUT, 64 << 10);
	assert_true(ms >= 340 * 9 / 10);
	/* Lift it at run time: 8 more go through without the limiter's ~0.5 s. */
	assert_int_equal(vblk_set_limit(f->b, &(struct ratelimit_spec){0}), 0);
	usleep(20000); /* the I/O thread takes the change at its next wake */
	struct vblk_stats before, after;
	vblk_get_stats(f->b, &before);
	run_batch(f, 8, T_OUT, 64 << 10);
	vblk_get_stats(f->b, &after);
	assert_int_equal(after.throttled, before.throttled);
	/* And set a tight one again: 1 request a second (bucket 1), the second waits ~1 s. */
	assert_int_equal(vblk_set_limit(f->b, &(struct ratelimit_spec){.ops_per_s = 1}), 0);
	usleep(20000);
	ms = run_batch(f, 2, T_OUT, 64 << 10);
	assert_true(ms >= 900);
}

static void test_request_byte_cap(void **state)
{
	struct fx *f = *state;
	const uint64_t big = VBLK_REQ_MAX + SECTOR;
	uint8_t *mem = gp(f, DATA_GPA);
	memset(mem, 0x5a, SECTOR);
	memset(mem + VBLK_REQ_MAX - SECTOR, 0x5a, 2 * SECTOR);
	struct vdrv_buf d[3] = {
		{put_hdr(f, 0, T_IN, 0), 16, false},
		{DATA_GPA, (uint32_t)big, true},
		{STATUS_GPA, 1, true},
	};
	uint16_t head = vdrv_post(&f->d, d, 3);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA, S_IOERR, 1);
	assert_int_equal(mem[0], 0x5a);
	assert_int_equal(mem[VBLK_REQ_MAX], 0x5a);

	d[0].gpa = put_hdr(f, 1, T_IN, 0);
	d[1].len = (uint32_t)VBLK_REQ_MAX;
	d[2].gpa = STATUS_GPA + 1;
	head = vdrv_post(&f->d, d, 3);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA + 1, S_OK, (uint32_t)VBLK_REQ_MAX + 1);
	assert_int_equal(mem[0], pattern(0));				    /* the image's bytes */
	assert_int_equal(mem[VBLK_REQ_MAX - 1], pattern(VBLK_REQ_MAX - 1)); /* all of them */
	assert_int_equal(mem[VBLK_REQ_MAX], 0x5a);			    /* not one more */
	struct vblk_stats st;
	vblk_get_stats(f->b, &st);
	/* The io_uring worker cap was taken (every kernel this runs on has it). */
	assert_int_equal(st.iowq_bounded, VBLK_IOWQ_BOUNDED);
	assert_int_equal(st.iowq_unbounded, VBLK_IOWQ_UNBOUNDED);
}

/* The device's io_uring, looked at from outside as an attacker holding the I/O thread would:
 * every io_uring fd of this process (the fixture's disk has the only one) refuses a register
 * call (IORING_REGISTER_PROBE), the sign that the kernel holds an allow-list for it. */
static void test_ring_is_restricted(void **state)
{
	struct fx *f = *state;
	struct vblk_stats st;
	vblk_get_stats(f->b, &st);
	assert_int_equal(st.ring_restricted, 1);
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int rings = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char path[300], target[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strcmp(target, "anon_inode:[io_uring]") != 0)
			continue;
		rings++;
		static char probe[sizeof(struct io_uring_probe) +
				  256 * sizeof(struct io_uring_probe_op)];
		memset(probe, 0, sizeof(probe));
		long r = syscall(__NR_io_uring_register, atoi(de->d_name), IORING_REGISTER_PROBE,
				 probe, 256);
		assert_int_equal(r, -1);
		assert_int_equal(errno, EACCES);
	}
	closedir(d);
	assert_int_equal(rings, 1);
}

static void test_get_id_serial(void **state)
{
	struct fx *f = *state;
	memset(gp(f, data_gpa(0)), 0xee, 64);
	run_simple(f, 0, T_GET_ID, 0, 20, true, S_OK, 21);
	char want[20] = "kvmini-serial-01"; /* zero-padded */
	assert_memory_equal(gp(f, data_gpa(0)), want, 20);
	assert_int_equal(((uint8_t *)gp(f, data_gpa(0)))[20], 0xee);
	/* A shorter buffer gets the first bytes; no buffer at all is an IOERR. */
	memset(gp(f, data_gpa(1)), 0xee, 64);
	run_simple(f, 1, T_GET_ID, 0, 6, true, S_OK, 7);
	assert_memory_equal(gp(f, data_gpa(1)), "kvmini", 6);
	assert_int_equal(((uint8_t *)gp(f, data_gpa(1)))[6], 0xee);
	run_simple(f, 2, T_GET_ID, 0, 0, true, S_IOERR, 1);
}

static void test_get_id_no_serial(void **state)
{
	struct fx *f = *state;
	memset(gp(f, data_gpa(0)), 0xee, 64);
	run_simple(f, 0, T_GET_ID, 0, 20, true, S_OK, 21);
	uint8_t zero[20] = {0};
	assert_memory_equal(gp(f, data_gpa(0)), zero, 20);
}

static void test_flush(void **state)
{
	struct fx *f = *state;
	memset(gp(f, data_gpa(0)), 0x42, SECTOR);
	run_simple(f, 0, T_OUT, 0, SECTOR, false, S_OK, 1);
	run_simple(f, 1, T_FLUSH, 0, 0, false, S_OK, 1);
	/* The sector field of a flush is ignored. */
	run_simple(f, 2, T_FLUSH, ~0ULL, 0, false, S_OK, 1);
}

static void test_flush_unsafe(void **state)
{
	struct fx *f = *state;
	assert_true(device_features(f) & (1ULL << F_FLUSH));
	run_simple(f, 0, T_FLUSH, 0, 0, false, S_OK, 1);
}

static void test_discard(void **state)
{
	struct fx *f = *state;
	run_dwz(f, T_DISCARD, 8, 16, 0, S_OK);
	assert_true(file_is_zero(f->path, 8 * SECTOR, 16 * SECTOR));
	assert_true(file_is_pattern(f->path, 0, 8 * SECTOR));
	assert_true(file_is_pattern(f->path, 24 * SECTOR, 8 * SECTOR));
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, IMG_SECTORS * SECTOR); /* KEEP_SIZE */

	/* §5.2.6.2: unmap (or any flag) on a discard is UNSUPP; beyond the end is IOERR. */
	run_dwz(f, T_DISCARD, 40, 8, 1, S_UNSUPP);
	run_dwz(f, T_DISCARD, 40, 8, 0x80, S_UNSUPP);
	run_dwz(f, T_DISCARD, IMG_SECTORS - 4, 8, 0, S_IOERR);
	run_dwz(f, T_DISCARD, ~0ULL - 2, 8, 0, S_IOERR);
	assert_true(file_is_pattern(f->path, 40 * SECTOR, 8 * SECTOR));
	assert_true(file_is_pattern(f->path, (IMG_SECTORS - 4) * SECTOR, 4 * SECTOR));

	/* Two segments (max_discard_seg is 1): UNSUPP. A partial segment: IOERR. */
	uint8_t *seg = gp(f, SEG_GPA);
	memset(seg, 0, 32);
	seg[0] = 50;
	seg[8] = 1;
	seg[16] = 60;
	seg[24] = 1;
	struct vdrv_buf d[3] = {
		{put_hdr(f, 1, T_DISCARD, 0), 16, false},
		{SEG_GPA, 32, false},
		{STATUS_GPA + 1, 1, true},
	};
	uint16_t head = vdrv_post(&f->d, d, 3);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA + 1, S_UNSUPP, 1);
	d[0].gpa = put_hdr(f, 2, T_DISCARD, 0);
	d[1].len = 12;
	d[2].gpa = STATUS_GPA + 2;
	head = vdrv_post(&f->d, d, 3);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA + 2, S_IOERR, 1);
	assert_true(file_is_pattern(f->path, 50 * SECTOR, 11 * SECTOR));
}

static void check_write_zeroes(struct fx *f)
{
	run_dwz(f, T_WRITE_ZEROES, 3, 5, 0, S_OK);
	assert_true(file_is_zero(f->path, 3 * SECTOR, 5 * SECTOR));
	assert_true(file_is_pattern(f->path, 0, 3 * SECTOR));
	assert_true(file_is_pattern(f->path, 8 * SECTOR, 8 * SECTOR));
	run_dwz(f, T_WRITE_ZEROES, 100, 300, 1, S_OK); /* with unmap */
	assert_true(file_is_zero(f->path, 100 * SECTOR, 300 * SECTOR));
	assert_true(file_is_pattern(f->path, 99 * SECTOR, SECTOR));
	assert_true(file_is_pattern(f->path, 400 * SECTOR, SECTOR));
	/* Read back through the device too. */
	memset(gp(f, data_gpa(3)), 0xee, 4 * SECTOR);
	run_simple(f, 3, T_IN, 2, 4 * SECTOR, true, S_OK, 4 * SECTOR + 1);
	uint8_t zero[3 * SECTOR] = {0};
	assert_memory_equal(gp(f, data_gpa(3)) + SECTOR, zero, 3 * SECTOR);
	assert_int_equal(((uint8_t *)gp(f, data_gpa(3)))[0], pattern(2 * SECTOR));
	/* Unknown flag: UNSUPP; beyond the end: IOERR; nothing changes. */
	run_dwz(f, T_WRITE_ZEROES, 500, 4, 2, S_UNSUPP);
	run_dwz(f, T_WRITE_ZEROES, IMG_SECTORS - 1, 2, 0, S_IOERR);
	assert_true(file_is_pattern(f->path, 500 * SECTOR, 4 * SECTOR));
	assert_true(file_is_pattern(f->path, (IMG_SECTORS - 1) * SECTOR, SECTOR));
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, IMG_SECTORS * SECTOR);
}

static void test_write_zeroes(void **state)
{
	check_write_zeroes(*state);
}

/* On tmpfs: ZERO_RANGE is unsupported, so writes of zeroes (or a punched hole) take over. */
static void test_write_zeroes_fallback(void **state)
{
	struct fx *f = *state;
	if (strncmp(f->path, "/dev/shm/", 9) != 0)
		REQUIRE_OR_SKIP("no tmpfs at /dev/shm (the plain test covers ZERO_RANGE)");
	check_write_zeroes(f);
}

static void test_readonly_refuses_writes(void **state)
{
	struct fx *f = *state;
	uint8_t before[4 * SECTOR];
	file_read(f->path, 0, before, sizeof(before));
	memset(gp(f, data_gpa(0)), 0x11, 2 * SECTOR);
	run_simple(f, 0, T_OUT, 1, 2 * SECTOR, false, S_IOERR, 1);
	run_dwz(f, T_WRITE_ZEROES, 0, 4, 0, S_IOERR);
	run_dwz(f, T_DISCARD, 0, 4, 0, S_IOERR);
	uint8_t after[4 * SECTOR];
	file_read(f->path, 0, after, sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	/* Reads and flushes still work. */
	run_simple(f, 1, T_IN, 1, SECTOR, true, S_OK, SECTOR + 1);
	assert_memory_equal(gp(f, data_gpa(1)), before + SECTOR, SECTOR);
	run_simple(f, 2, T_FLUSH, 0, 0, false, S_OK, 1);
}

/* No status byte: the chain cannot be answered; the device asks for a reset. */
static void test_missing_status_byte(void **state)
{
	struct fx *f = *state;
	struct vdrv_buf d[2] = {
		{put_hdr(f, 0, T_IN, 0), 16, false},
		{data_gpa(0), 512, false},
	};
	vdrv_post(&f->d, d, 2);
	vdrv_kick(&f->d);
	assert_true(vdrv_wait_needs_reset(&f->d, TIMEOUT_MS));
	assert_int_equal(vdrv_used_idx(&f->d), 0);
	/* The queue is stopped: a good request is not served until the reset. */
	post_simple(f, 1, T_IN, 0, SECTOR, true);
	vdrv_kick(&f->d);
	usleep(100 * 1000);
	assert_int_equal(vdrv_used_idx(&f->d), 0);
	assert_int_equal(*(uint8_t *)gp(f, STATUS_GPA + 1), 0xff);

	driver_init(f);
	assert_false(vdrv_rd32(&f->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	run_simple(f, 2, T_IN, 0, SECTOR, true, S_OK, SECTOR + 1);
}

/* A header shorter than 16 bytes, with a status byte: IOERR; a split header is fine. */
/* Every request is counted by type, bytes only for what succeeded, refusals as errors, and a
 * device that gave up as needs_reset. */
static void test_stats(void **state)
{
	struct fx *f = *state;
	struct vblk_stats st;
	vblk_get_stats(f->b, &st);
	assert_int_equal(st.reads + st.writes + st.flushes + st.errors + st.needs_reset, 0);
	run_simple(f, 0, T_IN, 0, 1024, true, S_OK, 1025);
	run_simple(f, 1, T_OUT, 2, SECTOR, false, S_OK, 1);
	run_simple(f, 2, T_FLUSH, 0, 0, false, S_OK, 1);
	run_simple(f, 3, T_IN, IMG_SECTORS, SECTOR, true, S_IOERR, 1); /* past the end */
	run_simple(f, 4, 99, 0, 0, false, S_UNSUPP, 1);
	vblk_get_stats(f->b, &st);
	assert_int_equal(st.reads, 2);
	assert_int_equal(st.writes, 1);
	assert_int_equal(st.flushes, 1);
	assert_int_equal(st.read_bytes, 1024); /* the refused read moved nothing */
	assert_int_equal(st.write_bytes, SECTOR);
	assert_int_equal(st.errors, 2);
	assert_true(st.inflight_peak >= 1);
	assert_int_equal(st.needs_reset, 0);

	struct vdrv_buf d[2] = {
		{put_hdr(f, 0, T_IN, 0), 16, false},
		{data_gpa(0), 512, false},
	};
	vdrv_post(&f->d, d, 2); /* no status byte: the device needs a reset */
	vdrv_kick(&f->d);
	assert_true(vdrv_wait_needs_reset(&f->d, TIMEOUT_MS));
	vblk_get_stats(f->b, &st);
	assert_int_equal(st.needs_reset, 1);
}

static void test_short_header(void **state)
{
	struct fx *f = *state;
	struct vdrv_buf d[3] = {
		{put_hdr(f, 0, T_IN, 0), 8, false},
		{STATUS_GPA, 1, true},
	};
	uint16_t head = vdrv_post(&f->d, d, 2);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA, S_IOERR, 1);
	/* No readable part at all. */
	*(uint8_t *)gp(f, STATUS_GPA + 1) = 0xff;
	d[0] = (struct vdrv_buf){STATUS_GPA + 1, 1, true};
	head = vdrv_post(&f->d, d, 1);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA + 1, S_IOERR, 1);
	/* 16 bytes in two buffers of 8 are a whole header (no framing assumed). */
	uint64_t h = put_hdr(f, 2, T_IN, 1);
	d[0] = (struct vdrv_buf){h, 8, false};
	d[1] = (struct vdrv_buf){h + 8, 8, false};
	d[2] = (struct vdrv_buf){STATUS_GPA + 2, 1, true};
	head = vdrv_post(&f->d, d, 3);
	vdrv_kick(&f->d);
	expect_done(f, head, STATUS_GPA + 2, S_OK, 1);
	/* The device still works. */
	run_simple(f, 3, T_IN, 1, SECTOR, true, S_OK, SECTOR + 1);
}

static void test_wrong_direction_in(void **state)
{
	struct fx *f = *state;
	memset(gp(f, data_gpa(0)), 0xee, SECTOR);
	run_simple(f, 0, T_IN, 0, SECTOR, false, S_IOERR, 1); /* IN into a readable buffer */
	assert_int_equal(((uint8_t *)gp(f, data_gpa(0)))[0], 0xee);
}

static void test_wrong_direction_out(void **state)
{
	struct fx *f = *state;
	memset(gp(f, data_gpa(0)), 0x33, SECTOR);
	run_simple(f, 0, T_OUT, 0, SECTOR, true, S_IOERR, 1); /* OUT from a writable buffer */
	assert_true(file_is_pattern(f->path, 0, SECTOR));
	assert_int_equal(((uint8_t *)gp(f, data_gpa(0)))[0], 0x33);
}

static void test_sector_past_capacity(void **state)
{
	struct fx *f = *state;
	run_simple(f, 0, T_IN, IMG_SECTORS - 1, 2 * SECTOR, true, S_IOERR, 1);
	run_simple(f, 1, T_IN, IMG_SECTORS, SECTOR, true, S_IOERR, 1);
	run_simple(f, 2, T_IN, IMG_SECTORS + 1, 0, true, S_IOERR, 1);
	memset(gp(f, data_gpa(3)), 0x44, 2 * SECTOR);
	run_simple(f, 3, T_OUT, IMG_SECTORS - 1, 2 * SECTOR, false, S_IOERR, 1);
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, IMG_SECTORS * SECTOR); /* not extended */
	assert_true(file_is_pattern(f->path, (IMG_SECTORS - 1) * SECTOR, SECTOR));
}

static void test_sector_overflow(void **state)
{
	struct fx *f = *state;
	/* sector + count wraps past 2^64. */
	run_simple(f, 0, T_IN, ~0ULL, SECTOR, true, S_IOERR, 1);
	run_simple(f, 1, T_IN, ~0ULL - 1, 4 * SECTOR, true, S_IOERR, 1);
	/* sector * 512 would wrap to byte 512: must not write sector 1. */
	memset(gp(f, data_gpa(2)), 0x55, SECTOR);
	run_simple(f, 2, T_OUT, (1ULL << 55) + 1, SECTOR, false, S_IOERR, 1);
	assert_true(file_is_pattern(f->path, 0, 4 * SECTOR));
}

static void test_len_not_multiple(void **state)
{
	struct fx *f = *state;
	run_simple(f, 0, T_IN, 0, 511, true, S_IOERR, 1);
	memset(gp(f, data_gpa(1)), 0x66, 1024);
	run_simple(f, 1, T_OUT, 0, 513, false, S_IOERR, 1);
	run_simple(f, 2, T_OUT, 0, 1, false, S_IOERR, 1);
	assert_true(file_is_pattern(f->path, 0, 2 * SECTOR));
}

static void test_unknown_type(void **state)
{
	struct fx *f = *state;
	run_simple(f, 0, 99, 0, SECTOR, true, S_UNSUPP, 1);
	run_simple(f, 1, 2, 0, 0, true, S_UNSUPP, 1); /* legacy SCSI command */
	run_simple(f, 2, 0xffffffffu, 0, 0, true, S_UNSUPP, 1);
	run_simple(f, 3, T_IN, 0, SECTOR, true, S_OK, SECTOR + 1);
}

/* 64 writes posted before one kick, then 64 reads: all complete, each exactly once. */
static void test_many_in_flight(void **state)
{
	struct fx *f = *state;
	enum { N = 64, LEN = 4096 };
	uint16_t heads[N];
	for (unsigned int i = 0; i < N; i++) {
		memset(gp(f, data_gpa(i)), (int)(i + 1), LEN);
		heads[i] = post_simple(f, i, T_OUT, 8ULL * i, LEN, false);
	}
	vdrv_kick(&f->d);
	assert_true(wait_used(f, N));
	bool seen[N] = {false};
	for (unsigned int k = 0; k < N; k++) {
		struct vdrv_used u = vdrv_take_used(&f->d);
		unsigned int i = 0;
		while (i < N && heads[i] != u.id)
			i++;
		assert_true(i < N);
		assert_false(seen[i]);
		seen[i] = true;
		assert_int_equal(u.len, 1);
		assert_int_equal(*(uint8_t *)gp(f, STATUS_GPA + i), S_OK);
	}
	usleep(20 * 1000);
	assert_int_equal(vdrv_used_idx(&f->d), f->d.used_seen);
	for (unsigned int i = 0; i < N; i++) {
		uint8_t host[LEN];
		file_read(f->path, 8ULL * i * SECTOR, host, LEN);
		for (unsigned int j = 0; j < LEN; j++)
			assert_int_equal(host[j], (uint8_t)(i + 1));
	}

	for (unsigned int i = 0; i < N; i++) {
		memset(gp(f, data_gpa(i)), 0, LEN);
		heads[i] = post_simple(f, i, T_IN, 8ULL * (N - 1 - i), LEN, true);
	}
	vdrv_kick(&f->d);
	assert_true(wait_used(f, N));
	memset(seen, 0, sizeof(seen));
	for (unsigned int k = 0; k < N; k++) {
		struct vdrv_used u = vdrv_take_used(&f->d);
		unsigned int i = 0;
		while (i < N && heads[i] != u.id)
			i++;
		assert_true(i < N);
		assert_false(seen[i]);
		seen[i] = true;
		assert_int_equal(u.len, LEN + 1);
		assert_int_equal(*(uint8_t *)gp(f, STATUS_GPA + i), S_OK);
		for (unsigned int j = 0; j < LEN; j++)
			assert_int_equal(((uint8_t *)gp(f, data_gpa(i)))[j], (uint8_t)(N - i));
	}
}

/*
 * 10,000 rounds of a chain the device cannot answer, each ending in DEVICE_NEEDS_RESET and a
 * driver reset and re-initialisation, mixed with bad requests it answers: afterwards a good
 * request still completes.
 */
static void test_10000_bad_chains(void **state)
{
	struct fx *f = *state;
	for (unsigned int round = 0; round < 10000; round++) {
		struct vdrv_buf d[2];
		unsigned int kind = round % 4;
		if (kind == 0) { /* header only: no status byte */
			d[0] = (struct vdrv_buf){put_hdr(f, 0, T_IN, 0), 16, false};
			vdrv_post(&f->d, d, 1);
		} else if (kind == 1) { /* readable data, still no status byte */
			d[0] = (struct vdrv_buf){put_hdr(f, 0, T_OUT, 0), 16, false};
			d[1] = (struct vdrv_buf){data_gpa(0), SECTOR, false};
			vdrv_post(&f->d, d, 2);
		} else if (kind == 2) { /* a buffer outside guest RAM */
			d[0] = (struct vdrv_buf){put_hdr(f, 0, T_IN, 0), 16, false};
			d[1] = (struct vdrv_buf){MEM_SIZE - 8, 64, true};
			vdrv_post(&f->d, d, 2);
		} else { /* a short header and a bad type, answered; then an empty buffer */
			d[0] = (struct vdrv_buf){put_hdr(f, 0, 1000 + round, 0), 4, false};
			d[1] = (struct vdrv_buf){STATUS_GPA, 1, true};
			uint16_t head = vdrv_post(&f->d, d, 2);
			vdrv_kick(&f->d);
			expect_done(f, head, STATUS_GPA, S_IOERR, 1);
			d[0] = (struct vdrv_buf){put_hdr(f, 0, T_IN, 0), 0, false};
			vdrv_post(&f->d, d, 1);
		}
		vdrv_kick(&f->d);
		if (!vdrv_wait_needs_reset(&f->d, TIMEOUT_MS))
			fail_msg("round %u: no DEVICE_NEEDS_RESET", round);
		driver_init(f);
	}
	memset(gp(f, data_gpa(1)), 0x5c, SECTOR);
	run_simple(f, 1, T_OUT, 9, SECTOR, false, S_OK, 1);
	run_simple(f, 2, T_IN, 9, SECTOR, true, S_OK, SECTOR + 1);
	assert_memory_equal(gp(f, data_gpa(2)), gp(f, data_gpa(1)), SECTOR);
}

/* Reset with big reads in flight: nothing reaches guest memory after the reset returned. */
/* Poll Status until it reads 0, as a driver does after writing 0 (bounded). */
static bool wait_status_zero(struct fx *f, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited++) {
		if (vdrv_rd32(&f->d, VIRTIO_MMIO_STATUS) == 0)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_reset_in_flight(void **state)
{
	struct fx *f = *state;
	enum { N = 32, LEN = 1 << 20 };
	uint8_t *snap = malloc((size_t)N * LEN);
	assert_non_null(snap);
	for (unsigned int round = 0; round < 10; round++) {
		memset(gp(f, BIG_GPA), 0xaa, (size_t)N * LEN);
		for (unsigned int i = 0; i < N; i++) {
			struct vdrv_buf d[3] = {
				{put_hdr(f, i, T_IN, (uint64_t)i * (LEN / SECTOR)), 16, false},
				{BIG_GPA + (uint64_t)i * LEN, LEN, true},
				{STATUS_GPA + i, 1, true},
			};
			vdrv_post(&f->d, d, 3);
		}
		vdrv_kick(&f->d);
		if (round % 2)
			usleep(200); /* let some of them start */
		vdrv_wr32(&f->d, VIRTIO_MMIO_STATUS, 0);
		/* The reset is done when Status reads 0 (§2.4.1): reads in flight finish first. */
		assert_true(wait_status_zero(f, TIMEOUT_MS));
		/* From here on guest memory must stay as it is. */
		memcpy(snap, gp(f, BIG_GPA), (size_t)N * LEN);
		uint8_t status[N], used[0x810];
		memcpy(status, gp(f, STATUS_GPA), N);
		memcpy(used, gp(f, USED_GPA), sizeof(used));
		usleep(50 * 1000);
		assert_memory_equal(snap, gp(f, BIG_GPA), (size_t)N * LEN);
		assert_memory_equal(status, gp(f, STATUS_GPA), N);
		assert_memory_equal(used, gp(f, USED_GPA), sizeof(used));
		/* Whatever completed before the reset completed properly. */
		uint16_t done = le16toh(*(uint16_t *)gp(f, USED_GPA + 2));
		assert_true(done <= N);
		for (unsigned int k = 0; k < done; k++) {
			struct vdrv_used u = vdrv_take_used(&f->d);
			assert_true(u.id % 3 == 0 && u.id / 3 < N);
			assert_int_equal(*(uint8_t *)gp(f, STATUS_GPA + u.id / 3), S_OK);
			assert_int_equal(u.len, LEN + 1);
		}
		driver_init(f);
	}
	free(snap);
	/* The image (sparse zeroes past the first sectors) reads fine after all that. */
	memset(gp(f, data_gpa(0)), 0xee, SECTOR);
	run_simple(f, 0, T_IN, 100, SECTOR, true, S_OK, SECTOR + 1);
	uint8_t zero[SECTOR] = {0};
	assert_memory_equal(gp(f, data_gpa(0)), zero, SECTOR);
}

/* A read held in flight: its buffer is userfaultfd memory that nobody fills until `release`. */
struct held_read {
	int uffd;
	uint8_t *buf;
	size_t len;
	int release_after_ms; /* the fallback: fill it anyway then, so a stalled reset ends */
};

static void held_fill(struct held_read *h)
{
	struct uffdio_zeropage z = {.range = {.start = (uintptr_t)h->buf, .len = h->len}};
	ioctl(h->uffd, UFFDIO_ZEROPAGE, &z); /* EEXIST once filled: fine */
}

static void *held_fallback(void *arg)
{
	struct held_read *h = arg;
	usleep((useconds_t)h->release_after_ms * 1000);
	held_fill(h);
	return NULL;
}

/*
 * The driver resets the device while a read is still in the kernel (its buffer faults and
 * stays unfilled): writing 0 to Status returns at once and Status reads non-zero until the
 * read is over, then 0 (§2.4.1), after which nothing in guest memory changes. A
 * reset that waited for the read would hold this (vCPU) thread until the fallback fills the
 * buffer after 3 s.
 */
static void test_reset_does_not_wait_for_io(void **state)
{
	struct fx *f = *state;
	struct held_read h = {.len = DATA_SLOT, .release_after_ms = 3000};
	h.buf = gp(f, data_gpa(5));
	h.uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (h.uffd < 0)
		REQUIRE_OR_SKIP("userfaultfd (to hold a read in flight)");
	struct uffdio_api api = {.api = UFFD_API};
	assert_int_equal(ioctl(h.uffd, UFFDIO_API, &api), 0);
	assert_int_equal(madvise(h.buf, h.len, MADV_DONTNEED), 0);
	struct uffdio_register reg = {.range = {.start = (uintptr_t)h.buf, .len = h.len},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	assert_int_equal(ioctl(h.uffd, UFFDIO_REGISTER, &reg), 0);

	uint16_t used_before = vdrv_used_idx(&f->d);
	post_simple(f, 5, T_IN, 0, DATA_SLOT, true);
	vdrv_kick(&f->d);
	/* The read is in flight once it faulted on its buffer. */
	struct pollfd p = {.fd = h.uffd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, TIMEOUT_MS), 1);
	pthread_t fb;
	assert_int_equal(pthread_create(&fb, NULL, held_fallback, &h), 0);

	uint64_t t0 = mono_ms();
	vdrv_wr32(&f->d, VIRTIO_MMIO_STATUS, 0);
	uint64_t took = mono_ms() - t0;
	uint32_t st = vdrv_rd32(&f->d, VIRTIO_MMIO_STATUS);
	held_fill(&h); /* now let the read finish */
	bool zero = wait_status_zero(f, TIMEOUT_MS);
	pthread_join(fb, NULL);
	close(h.uffd);
	if (took >= 1000)
		fail_msg("writing 0 to Status took %llu ms: the vCPU waited for the read",
			 (unsigned long long)took);
	assert_true(st != 0); /* not done while the read was held */
	assert_true(zero);
	/* Either the read was dropped (no answer) or it completed before the device took the
	 * reset (answered in full); and once Status read 0 nothing changes any more. */
	uint8_t answer = *(uint8_t *)gp(f, STATUS_GPA + 5);
	uint16_t used_after = vdrv_used_idx(&f->d);
	if (answer == 0xff)
		assert_int_equal(used_after, used_before);
	else
		assert_true(answer == S_OK && used_after == (uint16_t)(used_before + 1));
	usleep(50 * 1000);
	assert_int_equal(*(uint8_t *)gp(f, STATUS_GPA + 5), answer);
	assert_int_equal(vdrv_used_idx(&f->d), used_after);
	/* The device works again after a new initialisation. */
	driver_init(f);
	memset(gp(f, data_gpa(0)), 0xee, SECTOR);
	run_simple(f, 0, T_IN, 3, SECTOR, true, S_OK, SECTOR + 1);
	assert_int_equal(((uint8_t *)gp(f, data_gpa(0)))[0], pattern(3 * SECTOR));
}

/* The image shrank after the device was created: reads past its end fail, never succeed. */
static void test_truncated_image(void **state)
{
	struct fx *f = *state;
	assert_int_equal(truncate(f->path, 64 * SECTOR), 0);
	memset(gp(f, data_gpa(0)), 0xee, 8 * SECTOR);
	run_simple(f, 0, T_IN, 120, 8 * SECTOR, true, S_IOERR, 1); /* all past EOF */
	run_simple(f, 1, T_IN, 60, 8 * SECTOR, true, S_IOERR, 1);  /* straddles EOF: short */
	run_simple(f, 2, T_IN, 56, 8 * SECTOR, true, S_OK, 8 * SECTOR + 1); /* ends at EOF */
	assert_int_equal(((uint8_t *)gp(f, data_gpa(2)))[0], pattern(56 * SECTOR));
	/* A write past the end extends the file again (it is within the capacity). */
	memset(gp(f, data_gpa(3)), 0x21, SECTOR);
	run_simple(f, 3, T_OUT, 200, SECTOR, false, S_OK, 1);
	run_simple(f, 4, T_IN, 200, SECTOR, true, S_OK, SECTOR + 1);
	assert_memory_equal(gp(f, data_gpa(4)), gp(f, data_gpa(3)), SECTOR);
}

/* The VM goes away with requests queued and the device running. */
static void test_destroy_while_running(void **state)
{
	struct fx *f = *state;
	for (unsigned int i = 0; i < 16; i++)
		post_simple(f, i, T_IN, i, 4096, true);
	vdrv_kick(&f->d);
	vblk_destroy(f->b);
	f->b = NULL;
}

/* ---- vblk_create errors ---- */

static int create(const char *path, bool ro, const char *serial, struct vblk **b, struct vmerr *e,
		  struct gmem *gm, struct logger *lg)
{
	struct vblk_config cfg = {.path = path, .readonly = ro, .serial = serial};
	vmerr_clear(e);
	return vblk_create(b, &cfg, gm, lg, "vdb", e);
}

static void test_create_errors(void **state)
{
	struct fx *f = *state;
	struct vmerr e = {0};
	struct vblk *b = NULL, *b2 = NULL;

	char missing[300];
	snprintf(missing, sizeof(missing), "%s.does-not-exist", f->path);
	assert_int_equal(create(missing, false, NULL, &b, &e, &f->d.gm, &f->lg), -ENOENT);
	assert_null(b);
	assert_int_equal(e.status, KVMINI_EXIT_INPUT);
	assert_non_null(strstr(e.msg, "does not exist"));
	assert_non_null(strstr(e.msg, missing));
	assert_true(create(missing, true, NULL, &b, &e, &f->d.gm, &f->lg) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_INPUT);

	char dir[300];
	snprintf(dir, sizeof(dir), "%s.dir", f->path);
	assert_int_equal(mkdir(dir, 0700), 0);
	for (int ro = 0; ro < 2; ro++) {
		assert_int_equal(create(dir, ro, NULL, &b, &e, &f->d.gm, &f->lg), -EISDIR);
		assert_null(b);
		assert_int_equal(e.status, KVMINI_EXIT_INPUT);
		assert_non_null(strstr(e.msg, "is a directory"));
	}
	rmdir(dir);

	/* The fixture's device holds the image read-write: every other user is refused. */
	assert_int_equal(create(f->path, false, NULL, &b, &e, &f->d.gm, &f->lg), -EBUSY);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	char want[400];
	snprintf(want, sizeof(want),
		 "disk image %s is in use by another VM (locked); stop it or use ,ro", f->path);
	assert_string_equal(e.msg, want);
	assert_true(create(f->path, true, NULL, &b, &e, &f->d.gm, &f->lg) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	assert_non_null(strstr(e.msg, "in use"));

	/* Read-only users share; a writer is refused while they hold it. */
	vblk_destroy(f->b);
	f->b = NULL;
	assert_int_equal(create(f->path, true, NULL, &b, &e, &f->d.gm, &f->lg), 0);
	assert_int_equal(create(f->path, true, NULL, &b2, &e, &f->d.gm, &f->lg), 0);
	assert_true(create(f->path, false, NULL, &f->b, &e, &f->d.gm, &f->lg) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	assert_non_null(strstr(e.msg, "is in use by another VM (locked)"));
	vblk_destroy(b);
	vblk_destroy(b2);
	b = NULL;
	assert_int_equal(create(f->path, false, NULL, &b, &e, &f->d.gm, &f->lg), 0);
	vblk_destroy(b);
	b = NULL;

	/* A serial longer than 20 bytes. */
	assert_true(create(f->path, true, "123456789012345678901", &b, &e, &f->d.gm, &f->lg) < 0);
	assert_int_equal(e.status, KVMINI_EXIT_USAGE);
	assert_int_equal(create(f->path, true, "12345678901234567890", &b, &e, &f->d.gm, &f->lg),
			 0);
	vblk_destroy(b);
}

/* Drop the capabilities that let root ignore file modes (this thread only). */
static int drop_dac_caps(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -1;
	uint32_t mask = 1U << CAP_DAC_OVERRIDE | 1U << CAP_DAC_READ_SEARCH;
	data[0].effective &= ~mask;
	return syscall(SYS_capset, &hdr, data) < 0 ? -1 : 0;
}

/* A read-only disk whose file the user may not read: a clear error. */
static void test_create_unreadable_ro(void **state)
{
	struct fx *f = *state;
	assert_int_equal(chmod(f->path, 0), 0);
	/* As root the mode does not matter: try in a child without CAP_DAC_*. */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && drop_dac_caps() < 0)
			_exit(77);
		struct vmerr e = {0};
		struct vblk *b = NULL;
		int ret = create(f->path, true, NULL, &b, &e, &f->d.gm, &f->lg);
		if (ret != -EACCES || b)
			_exit(1);
		if (e.status != KVMINI_EXIT_INPUT)
			_exit(2);
		if (!strstr(e.msg, "Permission denied") || !strstr(e.msg, f->path))
			_exit(3);
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	chmod(f->path, 0600);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		REQUIRE_OR_SKIP("cannot drop capabilities here");
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_readonly, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_read_write_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_byte_cap, setup_huge, teardown),
		cmocka_unit_test_setup_teardown(test_iops_limit_spaces_requests, setup_iops,
						teardown),
		cmocka_unit_test_setup_teardown(test_bw_limit_and_runtime_change, setup_bw,
						teardown),
		cmocka_unit_test_setup_teardown(test_ring_is_restricted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_serial, setup_serial, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_no_serial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_unsafe, setup_unsafe, teardown),
		cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_zeroes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_zeroes_fallback, setup_tmpfs, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_refuses_writes, setup_ro, teardown),
		cmocka_unit_test_setup_teardown(test_missing_status_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_direction_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_direction_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sector_past_capacity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sector_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_len_not_multiple, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_10000_bad_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_in_flight, setup_big, teardown),
		cmocka_unit_test_setup_teardown(test_reset_does_not_wait_for_io, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_unreadable_ro, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
