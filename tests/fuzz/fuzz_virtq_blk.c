/* fuzz_virtq_blk: guest-written rings and requests against virtio-blk, driven by vdriver. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmini/virtio_blk.h"
#include "kvmini/virtq.h"
#include "fuzz_common.h"
#include "vdriver.h"

/*
 * Input: a 16-byte header, then the contents of guest RAM from gpa 0 (the rest is zero).
 *   u8   flags   bit 0: negotiate EVENT_IDX
 *   u8   qlog    queue size 1 << (qlog % 9)
 *   le16 navail  the avail->idx the driver publishes after setting up the queue
 *   le32 desc, avail, used   ring addresses, taken modulo GPA_SPAN
 * Everything else (descriptors, avail ring entries and flags, used_event, request headers,
 * data) comes from RAM as the input wrote it. The used ring and avail->idx are the device's
 * and the driver's: zeroed at setup, so no stale value reaches the device.
 *
 * RAM is two regions, [0, RAM_SPLIT) and [RAM_SPLIT, RAM_SIZE): adjacent guest addresses, but
 * separate host memory with canaries around, so an access crossing the boundary is caught.
 * The device is created once per process on a small temporary image (unlinked at once) and
 * reset through Status between inputs.
 */
#define RAM_SIZE  0x20000ULL
#define RAM_SPLIT 0x10000ULL
#define GPA_SPAN  (RAM_SIZE + 0x1000) /* ring addresses land a little beyond RAM too */
#define HDR_SIZE  16
#define IMG_SIZE  (1 << 20)
#define WAIT_MS	  50

struct head_info {
	bool valid;	     /* a well-formed chain with at least one writable byte */
	uint64_t wlen;	     /* its writable bytes */
	gpa_t status;	     /* its last writable byte */
	unsigned int offers; /* times it appears among the available entries */
	unsigned int used;   /* times the device returned it */
};

struct harness {
	struct vdrv d;
	struct logger lg;
	struct vblk *b;
	uint8_t before[RAM_SIZE];  /* RAM as published to the device */
	uint8_t after[RAM_SIZE];   /* RAM right after the reset */
	uint8_t allowed[RAM_SIZE]; /* the device may write this byte */
	uint8_t wcount[RAM_SIZE];  /* writable buffers of available chains on the byte (max 255) */
	struct head_info head[VIRTQ_MAX_SIZE];
	struct vdrv_buf bufs[VIRTQ_MAX_SIZE];
};

static struct harness *h;

static void make_device(void)
{
	const char *dir = getenv("TMPDIR");
	char path[256];
	snprintf(path, sizeof(path), "%s/kvmini-fuzz-blk-XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("fuzz_virtq_blk: mkstemp");
		abort();
	}
	static uint8_t sector[512];
	for (unsigned int s = 0; s < IMG_SIZE / 512; s++) {
		for (unsigned int i = 0; i < sizeof(sector); i++)
			sector[i] = (uint8_t)(s * 3 + i);
		if (pwrite(fd, sector, sizeof(sector), (off_t)s * 512) != (ssize_t)sizeof(sector)) {
			perror("fuzz_virtq_blk: writing the image");
			abort();
		}
	}
	close(fd);
	struct vblk_config cfg = {.path = path, .cache = VBLK_CACHE_WRITEBACK};
	struct vmerr e = {0};
	int ret = vblk_create(&h->b, &cfg, &h->d.gm, &h->lg, "vda", &e);
	unlink(path); /* the device keeps it open; nothing is left behind */
	if (ret < 0) {
		fprintf(stderr, "fuzz_virtq_blk: vblk_create: %s\n", e.msg);
		abort();
	}
	vdrv_attach(&h->d, vblk_transport(h->b));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	h = calloc(1, sizeof(*h));
	if (!h || vdrv_init(&h->d, RAM_SIZE, RAM_SPLIT) < 0)
		abort();
	log_init(&h->lg, LOG_ERROR - 1, 2); /* silent: every input is a misbehaving guest */
	make_device();
	return 0;
}

/*
 * Work out, before the device sees them, the chains the driver makes available: which heads,
 * whether each is well-formed, and the bytes the device may write (writable buffers). Returns
 * whether every offered chain is one the device must answer.
 */
ORACLE static bool expect_chains(uint16_t qsize, uint16_t navail)
{
	bool all_good = true;
	memset(h->head, 0, sizeof(h->head));
	for (unsigned int k = 0; k < navail && k < qsize; k++) {
		uint16_t head = get16(h->before + h->d.avail + 4 + 2ULL * k);
		if (head >= qsize) {
			all_good = false;
			continue;
		}
		struct head_info *hi = &h->head[head];
		hi->offers++;
		unsigned int nr;
		if (vdrv_expect_chain(&h->d, h->d.desc, qsize, head, h->bufs, &nr) < 0) {
			all_good = false;
			continue;
		}
		hi->wlen = 0;
		for (unsigned int i = 0; i < nr; i++) {
			if (!h->bufs[i].writable)
				continue;
			hi->wlen += h->bufs[i].len;
			hi->status = h->bufs[i].gpa + h->bufs[i].len - 1;
			mark(h->allowed, RAM_SIZE, h->bufs[i].gpa, h->bufs[i].len, false);
			mark(h->wcount, RAM_SIZE, h->bufs[i].gpa, h->bufs[i].len, true);
		}
		hi->valid = hi->wlen > 0;
		all_good = all_good && hi->valid;
	}
	return all_good;
}

/*
 * Guest RAM from the input (zero beyond it), except avail->idx and the used ring: the setup
 * zeroed them and the device may already be looking. h->before gets the result.
 */
ORACLE static void load_ram(const uint8_t *in, size_t n, gpa_t avail, gpa_t used,
			    uint64_t used_bytes)
{
	memset(h->before, 0, RAM_SIZE);
	memcpy(h->before, in, n < RAM_SIZE ? n : RAM_SIZE);
	uint64_t skip[2][2] = {{avail + 2, avail + 4}, {used, used + used_bytes}};
	if (used < avail + 2) {
		skip[0][0] = used;
		skip[0][1] = used + used_bytes;
		skip[1][0] = avail + 2;
		skip[1][1] = avail + 4;
	}
	uint64_t pos = 0;
	for (unsigned int i = 0; i < 2; i++) {
		if (skip[i][0] > pos)
			ram_load(&h->d, h->before, pos, skip[i][0]);
		if (skip[i][1] > pos)
			pos = skip[i][1];
	}
	ram_load(&h->d, h->before, pos, RAM_SIZE);
	ram_save(&h->d, h->before);
}

/* The used ring after the reset: every element one of the offered, answerable chains. */
ORACLE static void check_used(uint16_t qsize, uint16_t navail)
{
	uint16_t nused = get16(h->after + h->d.used + 2);
	if (navail > qsize) {
		if (nused != 0)
			__builtin_trap(); /* more available than the ring holds: none served */
		return;
	}
	if (nused > navail)
		__builtin_trap(); /* more returned than made available */
	for (unsigned int k = 0; k < nused; k++) {
		const uint8_t *e = h->after + h->d.used + 4 + 8ULL * k;
		uint32_t id = get32(e), len = get32(e + 4);
		if (id >= qsize)
			__builtin_trap();
		struct head_info *hi = &h->head[id];
		if (++hi->used > hi->offers || !hi->valid)
			__builtin_trap(); /* returned more often than offered, or malformed */
		if (len < 1 || len > hi->wlen)
			__builtin_trap(); /* the status byte always, never more than was writable */
		/* The status byte, if this chain alone may write it. */
		if (h->wcount[hi->status] == 1) {
			uint8_t st = h->after[hi->status];
			if (st > 2 || (st != 0 && len != 1))
				__builtin_trap();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	if (n < HDR_SIZE)
		return 0;
	bool event_idx = in[0] & 1;
	uint16_t qsize = (uint16_t)(1U << (in[1] % 9));
	uint16_t navail = get16(in + 2);
	gpa_t desc = get32(in + 4) % GPA_SPAN;
	gpa_t avail = get32(in + 8) % GPA_SPAN;
	gpa_t used = get32(in + 12) % GPA_SPAN;
	uint64_t want = event_idx ? ~0ULL : ~(1ULL << VIRTIO_F_RING_EVENT_IDX);
	struct vdrv *d = &h->d;

	int ret = vdrv_setup(d, 2, want, qsize, desc, avail, used);
	if (ret < 0) {
		if (ret != -EINVAL)
			__builtin_trap(); /* only a misplaced queue may be refused */
		if (vdrv_reset(d) < 0 || !vdrv_canaries_ok(d))
			__builtin_trap();
		return 0;
	}
	if (d->event_idx != event_idx)
		__builtin_trap();

	uint64_t desc_bytes = 16ULL * qsize, avail_bytes = 4 + 2ULL * qsize + 2;
	uint64_t used_bytes = 4 + 8ULL * qsize + 2;
	load_ram(in + HDR_SIZE, n - HDR_SIZE, avail, used, used_bytes);
	uint16_t le = htole16(navail);
	memcpy(h->before + avail + 2, &le, 2); /* what vdrv_publish() writes */

	/* What the device may do with it: write the used ring and the writable buffers only. */
	memset(h->allowed, 0, RAM_SIZE);
	memset(h->wcount, 0, RAM_SIZE);
	mark(h->allowed, RAM_SIZE, used, used_bytes, false);
	bool all_good = expect_chains(qsize, navail);
	/*
	 * If the device may write the descriptor table or the avail ring, later chains can differ
	 * from the ones worked out above; if the writable buffers cover the used ring, its
	 * contents are data. Then only the canaries are checked. Publishing avail->idx into the
	 * descriptor table changes it too.
	 */
	bool rings_stable = !any(h->allowed, RAM_SIZE, desc, desc_bytes) &&
			    !any(h->allowed, RAM_SIZE, avail, avail_bytes) &&
			    !(avail + 2 < desc + desc_bytes && desc < avail + 4);
	bool used_stable = !any(h->wcount, RAM_SIZE, used, used_bytes);

	d->avail_idx = navail;
	vdrv_publish(d);
	vdrv_kick(d);
	uint16_t expect = navail <= qsize ? navail : 1;
	ret = vdrv_wait_used(d, expect, WAIT_MS);
	if (ret == -EIO && rings_stable && all_good && navail <= qsize)
		__builtin_trap(); /* DEVICE_NEEDS_RESET although every chain was well-formed */
	if (vdrv_reset(d) < 0)
		__builtin_trap();

	if (!vdrv_canaries_ok(d))
		__builtin_trap();
	ram_save(&h->d, h->after);
	if (rings_stable) {
		check_writes(h->before, h->after, h->allowed, RAM_SIZE);
		if (used_stable)
			check_used(qsize, navail);
	}
	/* After the reset returned nothing may touch guest memory any more. */
	ram_save(&h->d, h->before);
	if (memcmp(h->before, h->after, RAM_SIZE) != 0)
		__builtin_trap();
	return 0;
}
