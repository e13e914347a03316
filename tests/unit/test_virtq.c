/* test_virtq: the split virtqueue against a fake guest memory, well-formed and hostile rings. */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "kvmini/gmem.h"
#include "kvmini/virtq.h"

#include "require.h"

/*
 * Fake guest memory: 64 KiB of "low" RAM at 0 holding the rings and data buffers, then a hole,
 * then 4 KiB of "high" RAM. The rings have room for the largest queue (256 entries).
 */
#define LOW_SIZE  0x10000ULL
#define HIGH_GPA  0x100000ULL
#define HIGH_SIZE 0x1000ULL
#define HOLE_GPA  0x20000ULL /* between the two regions */
#define DESC	  0x1000ULL  /* 16 * 256 bytes */
#define AVAIL	  0x2000ULL  /* 4 + 2 * 256 + 2 bytes */
#define USED	  0x3000ULL  /* 4 + 8 * 256 + 2 bytes */
#define DATA	  0x8000ULL  /* data buffers from here to the end of low RAM */
#define USED_MAX  (4 + 8 * VIRTQ_MAX_SIZE + 2)

struct fx {
	struct gmem gm;
	uint8_t *low, *high;
	struct virtq q;
	struct virtq_chain c;
	uint16_t avail_idx; /* the fake driver's next avail->idx */
	uint8_t used_snap[USED_MAX];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->low = calloc(1, LOW_SIZE);
	f->high = calloc(1, HIGH_SIZE);
	assert_non_null(f->low);
	assert_non_null(f->high);
	assert_int_equal(gmem_add_region(&f->gm, 0, LOW_SIZE, f->low), 0);
	assert_int_equal(gmem_add_region(&f->gm, HIGH_GPA, HIGH_SIZE, f->high), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	free(f->low);
	free(f->high);
	free(f);
	return 0;
}

/* The fake driver's side: little-endian stores and loads through the checked accessors. */
static void put16(struct fx *f, gpa_t gpa, uint16_t v)
{
	uint16_t le = htole16(v);
	assert_int_equal(gmem_write(&f->gm, gpa, &le, sizeof(le)), 0);
}

static uint16_t get16(struct fx *f, gpa_t gpa)
{
	uint16_t le;
	assert_int_equal(gmem_read(&f->gm, gpa, &le, sizeof(le)), 0);
	return le16toh(le);
}

static uint32_t get32(struct fx *f, gpa_t gpa)
{
	uint32_t le;
	assert_int_equal(gmem_read(&f->gm, gpa, &le, sizeof(le)), 0);
	return le32toh(le);
}

static void set_desc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t d[16];
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t fl = htole16(flags), n = htole16(next);
	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &fl, 2);
	memcpy(d + 14, &n, 2);
	assert_int_equal(gmem_write(&f->gm, DESC + 16ULL * i, d, sizeof(d)), 0);
}

/* Driver zeroes the rings, then the device validates and starts the queue. */
static void start(struct fx *f, uint16_t size, bool event_idx)
{
	memset(f->low + DESC, 0, USED + USED_MAX - DESC);
	assert_int_equal(virtq_validate(&f->gm, size, DESC, AVAIL, USED, event_idx), 0);
	virtq_start(&f->q, &f->gm, size, DESC, AVAIL, USED, event_idx);
	f->avail_idx = 0;
}

/* Make chain `head` available and publish the new avail->idx. */
static void offer(struct fx *f, uint16_t head)
{
	put16(f, AVAIL + 4 + 2ULL * (f->avail_idx & (f->q.size - 1)), head);
	f->avail_idx++;
	put16(f, AVAIL + 2, f->avail_idx);
}

static void set_avail_idx(struct fx *f, uint16_t idx)
{
	f->avail_idx = idx;
	put16(f, AVAIL + 2, idx);
}

static uint16_t used_idx(struct fx *f)
{
	return get16(f, USED + 2);
}

static void assert_used_elem(struct fx *f, uint16_t slot, uint32_t id, uint32_t len)
{
	assert_int_equal(get32(f, USED + 4 + 8ULL * slot), id);
	assert_int_equal(get32(f, USED + 4 + 8ULL * slot + 4), len);
}

static void snap_used(struct fx *f)
{
	memcpy(f->used_snap, f->low + USED, USED_MAX);
}

static void assert_used_unchanged(struct fx *f)
{
	assert_memory_equal(f->used_snap, f->low + USED, USED_MAX);
}

/*
 * After a notification (a new pass), the next pop must find a malformed chain: -EIO, broken,
 * nothing consumed, the used ring untouched; and the queue stays stopped.
 */
static void expect_refused(struct fx *f)
{
	uint16_t last = f->q.last_avail, used = f->q.used_idx;
	snap_used(f);
	virtq_begin_pass(&f->q);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_true(f->q.broken);
	assert_int_equal(f->q.last_avail, last);
	assert_int_equal(f->q.used_idx, used);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_int_equal(f->q.last_avail, last);
	assert_used_unchanged(f);
}

/* After a notification, the next pop must succeed without touching the used ring. */
static void expect_pop(struct fx *f)
{
	uint16_t last = f->q.last_avail;
	snap_used(f);
	virtq_begin_pass(&f->q);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_false(f->q.broken);
	assert_int_equal(f->q.last_avail, (uint16_t)(last + 1));
	assert_used_unchanged(f);
}

/* Return the chain just popped and check that it shows up in the used ring. */
static void complete(struct fx *f, uint32_t written)
{
	uint16_t before = used_idx(f);
	assert_int_equal(virtq_push(&f->q, f->c.head, written), 0);
	assert_int_equal(used_idx(f), (uint16_t)(before + 1));
	assert_used_elem(f, before & (f->q.size - 1), f->c.head, written);
}

static void test_good_single_chain(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	assert_int_equal(virtq_pop(&f->q, &f->c), 0); /* nothing offered yet */
	set_desc(f, 3, DATA, 100, 0, 0);
	offer(f, 3);
	expect_pop(f);
	assert_int_equal(f->c.head, 3);
	assert_int_equal(f->c.nr, 1);
	assert_int_equal(f->c.nr_readable, 1);
	assert_int_equal(f->c.readable_len, 100);
	assert_int_equal(f->c.writable_len, 0);
	assert_int_equal(f->c.buf[0].gpa, DATA);
	assert_int_equal(f->c.buf[0].len, 100);
	assert_false(f->c.buf[0].dev_writable);
	assert_int_equal(virtq_pop(&f->q, &f->c), 0); /* consumed once only */
	assert_int_equal(used_idx(f), 0);
	complete(f, 0);
	assert_int_equal(f->q.used_idx, 1);
	assert_false(f->q.broken);
}

static void test_readable_writable_chain(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 5, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc(f, 2, DATA + 0x100, 512, VIRTQ_DESC_F_NEXT, 7);
	set_desc(f, 7, DATA + 0x1000, 1000, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
	set_desc(f, 0, HIGH_GPA, 1, VIRTQ_DESC_F_WRITE, 6); /* next ignored without NEXT */
	offer(f, 5);
	expect_pop(f);
	assert_int_equal(f->c.head, 5);
	assert_int_equal(f->c.nr, 4);
	assert_int_equal(f->c.nr_readable, 2);
	assert_int_equal(f->c.readable_len, 16 + 512);
	assert_int_equal(f->c.writable_len, 1000 + 1);
	assert_int_equal(f->c.buf[1].gpa, DATA + 0x100);
	assert_false(f->c.buf[1].dev_writable);
	assert_int_equal(f->c.buf[2].len, 1000);
	assert_true(f->c.buf[2].dev_writable);
	assert_int_equal(f->c.buf[3].gpa, HIGH_GPA);
	assert_true(f->c.buf[3].dev_writable);
	complete(f, 1001);

	/* Writable-only chains are fine too. */
	set_desc(f, 1, DATA, 8, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 1);
	expect_pop(f);
	assert_int_equal(f->c.nr_readable, 0);
	assert_int_equal(f->c.writable_len, 8);
	complete(f, 8);
}

static void test_self_loop(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 4, DATA, 16, VIRTQ_DESC_F_NEXT, 4);
	offer(f, 4);
	expect_refused(f);
}

static void test_two_loop(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 6);
	set_desc(f, 6, DATA + 16, 16, VIRTQ_DESC_F_NEXT, 1);
	offer(f, 1);
	expect_refused(f);
}

static void test_chain_of_queue_size(void **state)
{
	struct fx *f = *state;

	start(f, VIRTQ_MAX_SIZE, false);
	/* 256 descriptors in reverse order, readable then writable. */
	for (unsigned int i = 0; i < VIRTQ_MAX_SIZE; i++) {
		uint16_t idx = VIRTQ_MAX_SIZE - 1 - i;
		uint16_t flags = i >= 200 ? VIRTQ_DESC_F_WRITE : 0;
		if (i + 1 < VIRTQ_MAX_SIZE)
			flags |= VIRTQ_DESC_F_NEXT;
		set_desc(f, idx, DATA + 16 * i, 16, flags, idx - 1);
	}
	offer(f, VIRTQ_MAX_SIZE - 1);
	expect_pop(f);
	assert_int_equal(f->c.nr, VIRTQ_MAX_SIZE);
	assert_int_equal(f->c.nr_readable, 200);
	assert_int_equal(f->c.readable_len, 200 * 16);
	assert_int_equal(f->c.writable_len, 56 * 16);
	assert_int_equal(f->c.buf[255].gpa, DATA + 16 * 255);
	complete(f, 0);
}

static void test_chain_one_longer_than_queue(void **state)
{
	struct fx *f = *state;

	/* 8 descriptors 0..7, and the last points back to 0: a 9th would be needed. */
	start(f, 8, false);
	for (uint16_t i = 0; i < 8; i++)
		set_desc(f, i, DATA + 16 * i, 16, VIRTQ_DESC_F_NEXT, (i + 1) % 8);
	offer(f, 0);
	expect_refused(f);

	/* The same with size 256: exactly 256 walked, the 257th refused. */
	start(f, VIRTQ_MAX_SIZE, false);
	for (unsigned int i = 0; i < VIRTQ_MAX_SIZE; i++)
		set_desc(f, i, DATA + 16 * i, 16, VIRTQ_DESC_F_NEXT, (i + 1) % VIRTQ_MAX_SIZE);
	offer(f, 0);
	expect_refused(f);
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 7, DATA, 16, 0, 0);
	offer(f, 7); /* head == size - 1 is fine */
	expect_pop(f);
	complete(f, 0);
	/* head == size, with a good descriptor just past the table: only the index is wrong. */
	set_desc(f, 8, DATA, 16, 0, 0);
	offer(f, 8);
	expect_refused(f);

	start(f, 8, false);
	offer(f, 0xffff);
	expect_refused(f);
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;

	/* next == size, with a good descriptor just past the table: only the index is wrong. */
	start(f, 8, false);
	set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 8);
	set_desc(f, 8, DATA, 16, 0, 0);
	offer(f, 0);
	expect_refused(f);

	start(f, 8, false);
	set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA, 16, VIRTQ_DESC_F_NEXT, 0xffff);
	offer(f, 0);
	expect_refused(f);
}

static void test_buffer_at_end_of_ram(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 0, LOW_SIZE - 16, 16, 0, 0); /* last byte of low RAM */
	offer(f, 0);
	expect_pop(f);
	complete(f, 0);
	set_desc(f, 0, HIGH_GPA + HIGH_SIZE - 1, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_pop(f);
	complete(f, 1);

	set_desc(f, 0, LOW_SIZE - 16, 17, 0, 0); /* one byte past */
	offer(f, 0);
	expect_refused(f);

	start(f, 8, false);
	set_desc(f, 0, HIGH_GPA + HIGH_SIZE - 1, 2, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_refused(f);

	/* Wholly in the hole, and starting in the hole but ending in high RAM. */
	start(f, 8, false);
	set_desc(f, 0, HOLE_GPA, 16, 0, 0);
	offer(f, 0);
	expect_refused(f);
	start(f, 8, false);
	set_desc(f, 0, HIGH_GPA - 8, 16, 0, 0);
	offer(f, 0);
	expect_refused(f);

	/* A bad buffer later in the chain refuses the whole chain. */
	start(f, 8, false);
	set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, LOW_SIZE - 8, 16, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_refused(f);
}

static void test_buffer_wraps_2_64(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 0, UINT64_MAX - 7, 16, 0, 0);
	offer(f, 0);
	expect_refused(f);

	/* Wraps to exactly gpa 0 + 16: would be "in RAM" if the end were computed mod 2^64. */
	start(f, 8, false);
	set_desc(f, 0, UINT64_MAX - 15, 32, 0, 0);
	offer(f, 0);
	expect_refused(f);

	start(f, 8, false);
	set_desc(f, 0, DATA, UINT32_MAX, 0, 0);
	offer(f, 0);
	expect_refused(f);
}

/* Four 4 GiB - 1 descriptors: their sum needs 34 bits; it must be summed in 64. */
static void test_four_max_length_buffers(void **state)
{
	struct fx *f = *state;

	/* Not in the small fake RAM: refused. */
	start(f, 8, false);
	for (uint16_t i = 0; i < 4; i++)
		set_desc(f, i, DATA, UINT32_MAX, i < 3 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(f, 0);
	expect_refused(f);

	/* With 16 GiB of untouched, unreserved RAM behind them: accepted with exact sums. */
	const uint64_t big_gpa = 1ULL << 32, big_size = 16ULL << 30;
	void *big = mmap(NULL, big_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (big == MAP_FAILED)
		REQUIRE_OR_SKIP("cannot map 16 GiB of address space (MAP_NORESERVE)");
	assert_int_equal(gmem_add_region(&f->gm, big_gpa, big_size, big), 0);
	start(f, 8, false);
	for (uint16_t i = 0; i < 4; i++)
		set_desc(f, i, big_gpa + (uint64_t)UINT32_MAX * i, UINT32_MAX,
			 i < 3 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
	offer(f, 0);
	expect_pop(f);
	assert_int_equal(f->c.nr, 4);
	assert_int_equal(f->c.readable_len, 4ULL * UINT32_MAX);
	assert_int_equal(f->c.writable_len, 0);
	complete(f, 0);

	for (uint16_t i = 0; i < 4; i++)
		set_desc(f, i, big_gpa + (uint64_t)UINT32_MAX * i, UINT32_MAX,
			 (i < 3 ? VIRTQ_DESC_F_NEXT : 0) | (i >= 2 ? VIRTQ_DESC_F_WRITE : 0),
			 i + 1);
	offer(f, 0);
	expect_pop(f);
	assert_int_equal(f->c.nr_readable, 2);
	assert_int_equal(f->c.readable_len, 2ULL * UINT32_MAX);
	assert_int_equal(f->c.writable_len, 2ULL * UINT32_MAX);
	complete(f, UINT32_MAX);
	munmap(big, big_size);
}

static void test_avail_idx_jump(void **state)
{
	struct fx *f = *state;

	/* Exactly `size` ahead: all of them are taken. */
	start(f, 8, false);
	for (uint16_t i = 0; i < 8; i++) {
		set_desc(f, i, DATA + 16 * i, 16, 0, 0);
		offer(f, 7 - i);
	}
	assert_int_equal(f->avail_idx, 8);
	for (uint16_t i = 0; i < 8; i++) {
		expect_pop(f);
		assert_int_equal(f->c.head, 7 - i);
	}
	assert_int_equal(virtq_pop(&f->q, &f->c), 0);

	/* size + 1 ahead: refused, whatever the ring holds. */
	start(f, 8, false);
	for (uint16_t i = 0; i < 8; i++)
		offer(f, i);
	set_avail_idx(f, 9);
	expect_refused(f);

	/* "Behind" is the same as far ahead in 16-bit arithmetic. */
	start(f, 8, false);
	set_avail_idx(f, 0xffff);
	expect_refused(f);

	/* Across the 16-bit wrap: last_avail 0xfffc, avail idx 0x0004 is exactly 8 ahead. */
	start(f, 8, false);
	f->q.last_avail = f->q.used_idx = f->q.signalled_used = 0xfffc;
	set_desc(f, 0, DATA, 16, 0, 0);
	f->avail_idx = 0xfffc;
	for (unsigned int i = 0; i < 8; i++)
		offer(f, 0);
	assert_int_equal(get16(f, AVAIL + 2), 4);
	for (unsigned int i = 0; i < 8; i++)
		expect_pop(f);
	assert_int_equal(f->q.last_avail, 4);
	set_avail_idx(f, 4 + 9);
	expect_refused(f);
}

static void test_writable_before_readable(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA + 16, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	set_desc(f, 2, DATA + 32, 16, 0, 0);
	offer(f, 0);
	expect_refused(f);
}

static void test_indirect(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 0, DATA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_refused(f);

	/* At the end of an otherwise good chain. */
	start(f, 8, false);
	set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA + 16, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_refused(f);
}

static void test_zero_length(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 0, DATA, 0, 0, 0);
	offer(f, 0);
	expect_refused(f);

	start(f, 8, false);
	set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA, 0, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_refused(f);
}

static void test_validate(void **state)
{
	struct fx *f = *state;
	const struct gmem *gm = &f->gm;

	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, USED, false), 0);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, USED, true), 0);
	assert_int_equal(virtq_validate(gm, 1, DESC, AVAIL, USED, true), 0);
	assert_int_equal(virtq_validate(gm, VIRTQ_MAX_SIZE, DESC, AVAIL, USED, true), 0);

	/* Size: a power of two in 1..VIRTQ_MAX_SIZE. */
	assert_int_equal(virtq_validate(gm, 0, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 3, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 6, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 255, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 2 * VIRTQ_MAX_SIZE, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 0x8000, DESC, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 0xffff, DESC, AVAIL, USED, false), -EINVAL);

	/* Alignment: 16, 2, 4. */
	assert_int_equal(virtq_validate(gm, 8, DESC + 8, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC + 1, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC + 16, AVAIL, USED, false), 0);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL + 1, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL + 2, USED, false), 0);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, USED + 2, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, USED + 1, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, USED + 4, false), 0);

	/* Not in RAM at all. */
	assert_int_equal(virtq_validate(gm, 8, HOLE_GPA, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, HOLE_GPA, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, HOLE_GPA, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, UINT64_MAX - 15, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, UINT64_MAX - 1, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, UINT64_MAX - 3, false), -EINVAL);
	/* All three in high RAM is fine. */
	assert_int_equal(virtq_validate(gm, 8, HIGH_GPA, HIGH_GPA + 0x200, HIGH_GPA + 0x400, true),
			 0);

	/* Straddling the end of RAM: desc table 128 bytes for size 8. */
	assert_int_equal(virtq_validate(gm, 8, LOW_SIZE - 128, AVAIL, USED, false), 0);
	assert_int_equal(virtq_validate(gm, 8, LOW_SIZE - 112, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, HIGH_GPA - 64, AVAIL, USED, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 256, LOW_SIZE - 4096, AVAIL, USED, false), 0);
	assert_int_equal(virtq_validate(gm, 256, LOW_SIZE - 4080, AVAIL, USED, false), -EINVAL);

	/* Avail ring: 4 + 2 * 8 = 20 bytes, plus used_event (2) with EVENT_IDX. */
	assert_int_equal(virtq_validate(gm, 8, DESC, LOW_SIZE - 20, USED, false), 0);
	assert_int_equal(virtq_validate(gm, 8, DESC, LOW_SIZE - 20, USED, true), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, LOW_SIZE - 22, USED, true), 0);
	assert_int_equal(virtq_validate(gm, 8, DESC, LOW_SIZE - 18, USED, false), -EINVAL);

	/* Used ring: 4 + 8 * 8 = 68 bytes, plus avail_event (2) with EVENT_IDX. */
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, LOW_SIZE - 68, false), 0);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, LOW_SIZE - 68, true), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, LOW_SIZE - 72, true), 0);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, LOW_SIZE - 64, false), -EINVAL);
	assert_int_equal(virtq_validate(gm, 8, DESC, AVAIL, HIGH_GPA + HIGH_SIZE - 68, true),
			 -EINVAL);
}

/* Rings placed where virtq_validate() would refuse them are still never dereferenced. */
static void test_rings_not_in_ram(void **state)
{
	struct fx *f = *state;

	virtq_start(&f->q, &f->gm, 8, DESC, HOLE_GPA, USED, false);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_true(f->q.broken);

	/* The used ring missing: the chain pops, the push fails and breaks the queue. */
	memset(f->low + DESC, 0, USED + USED_MAX - DESC);
	virtq_start(&f->q, &f->gm, 8, DESC, AVAIL, HOLE_GPA, false);
	f->avail_idx = 0;
	set_desc(f, 0, DATA, 16, 0, 0);
	offer(f, 0);
	assert_int_equal(virtq_pop(&f->q, &f->c), 1);
	assert_int_equal(virtq_push(&f->q, 0, 0), -EIO);
	assert_true(f->q.broken);
	assert_false(virtq_enable_notify(&f->q));

	/* A descriptor table running off the end of RAM: the entry out of RAM is refused. */
	virtq_start(&f->q, &f->gm, 8, LOW_SIZE - 64, AVAIL, USED, false);
	f->avail_idx = 0;
	offer(f, 5);
	expect_refused(f);

	/* Guest-aligned rings whose host memory is not aligned: refused, never loaded. */
	uint8_t *odd = calloc(1, 0x1001);
	assert_non_null(odd);
	assert_int_equal(gmem_add_region(&f->gm, 0x200000, 0x1000, odd + 1), 0);
	assert_int_equal(virtq_validate(&f->gm, 8, 0x200000, 0x200200, 0x200400, false), 0);
	virtq_start(&f->q, &f->gm, 8, 0x200000, 0x200200, 0x200400, false);
	assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
	assert_true(f->q.broken);
	free(odd);
}

/* A queue started without virtq_validate() at 512 entries still never overruns buf[]. */
static void test_oversized_queue_bounded(void **state)
{
	struct fx *f = *state;
	const gpa_t desc = DATA, bufs = DATA + 16 * 512;
	struct virtq_chain *c = malloc(sizeof(*c)); /* alone, so ASan sees any overrun */

	assert_non_null(c);
	assert_int_equal(virtq_validate(&f->gm, 512, desc, AVAIL, USED, false), -EINVAL);
	virtq_start(&f->q, &f->gm, 512, desc, AVAIL, USED, false);
	for (unsigned int i = 0; i < 512; i++) {
		uint8_t d[16] = {0};
		uint64_t addr = htole64(bufs + i);
		uint32_t len = htole32(1);
		uint16_t flags = htole16(VIRTQ_DESC_F_NEXT), next = htole16(i + 1);
		memcpy(d, &addr, 8);
		memcpy(d + 8, &len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
		assert_int_equal(gmem_write(&f->gm, desc + 16 * i, d, sizeof(d)), 0);
	}
	put16(f, AVAIL + 4, 0);
	put16(f, AVAIL + 2, 1);
	assert_int_equal(virtq_pop(&f->q, c), -EIO);
	assert_true(f->q.broken);
	assert_int_equal(f->q.last_avail, 0);
	free(c);
}

static void test_budget(void **state)
{
	struct fx *f = *state;

	start(f, 4, false);
	for (uint16_t i = 0; i < 4; i++) {
		set_desc(f, i, DATA + 16 * i, 16, 0, 0);
		offer(f, i);
	}
	assert_int_equal(f->q.budget, 4); /* virtq_start() allows a first pass */
	for (unsigned int pass = 1; pass <= 3; pass++) {
		virtq_begin_pass(&f->q);
		assert_int_equal(f->q.budget, 4);
		for (uint16_t i = 0; i < 4; i++) {
			assert_int_equal(virtq_pop(&f->q, &f->c), 1);
			complete(f, 0);
			offer(f, f->c.head); /* the driver refills at once */
		}
		/* Four more are available, but this pass is spent. */
		assert_int_equal(f->q.budget, 0);
		assert_int_equal(virtq_pop(&f->q, &f->c), 0);
		assert_int_equal(f->q.last_avail, 4 * pass);
		assert_int_equal(used_idx(f), 4 * pass);
		assert_true(virtq_enable_notify(&f->q)); /* so the caller passes again */
	}
	assert_false(f->q.broken);
}

static void test_push(void **state)
{
	struct fx *f = *state;

	start(f, 4, false);
	/* Nothing popped: a push would hand the driver a chain it never offered. */
	snap_used(f);
	assert_int_equal(virtq_push(&f->q, 0, 0), -EINVAL);
	assert_used_unchanged(f);
	for (uint16_t i = 0; i < 4; i++) {
		set_desc(f, i, DATA + 16 * i, 16, VIRTQ_DESC_F_WRITE, 0);
		offer(f, i);
	}
	for (uint16_t i = 0; i < 4; i++)
		expect_pop(f);
	assert_int_equal(virtq_push(&f->q, 4, 0), -EINVAL); /* head == size */
	assert_used_unchanged(f);
	assert_false(f->q.broken);

	/* Out of order, each element in the next slot, idx published after it. */
	const uint16_t order[4] = {2, 0, 3, 1};
	for (uint16_t i = 0; i < 4; i++) {
		assert_int_equal(virtq_push(&f->q, order[i], 100 + i), 0);
		assert_int_equal(used_idx(f), i + 1);
		assert_int_equal(f->q.used_idx, i + 1);
		assert_used_elem(f, i, order[i], 100 + i);
	}
	assert_int_equal(virtq_push(&f->q, 0, 0), -EINVAL); /* more than popped */
	assert_int_equal(used_idx(f), 4);

	/* The slot wraps modulo size, the index modulo 2^16. */
	f->q.last_avail = f->q.used_idx = 0xffff;
	set_avail_idx(f, 0xffff);
	offer(f, 3);
	expect_pop(f);
	assert_int_equal(virtq_push(&f->q, 3, 7), 0);
	assert_int_equal(used_idx(f), 0);
	assert_used_elem(f, 3, 3, 7);

	/* Broken: nothing written. */
	offer(f, 9);
	expect_refused(f);
	assert_int_equal(virtq_push(&f->q, 0, 0), -EIO);
	assert_used_unchanged(f);
}

static void test_need_interrupt_flags(void **state)
{
	struct fx *f = *state;

	start(f, 8, false);
	set_desc(f, 0, DATA, 16, 0, 0);
	offer(f, 0);
	expect_pop(f);
	complete(f, 0);
	assert_true(virtq_need_interrupt(&f->q));
	put16(f, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_false(virtq_need_interrupt(&f->q));
	put16(f, AVAIL, 0);
	assert_true(virtq_need_interrupt(&f->q));

	virtq_reset(&f->q);
	assert_false(virtq_need_interrupt(&f->q));
}

/* Pretend the queue has run a while: indices at `base`, the driver last interrupted there. */
static void run_from(struct fx *f, uint16_t base)
{
	start(f, 8, true);
	f->q.last_avail = f->q.used_idx = base;
	f->q.signalled_used = base;
	f->q.signalled_valid = true;
	put16(f, USED + 2, base);
	set_avail_idx(f, base);
	set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_WRITE, 0);
}

/* From `base`, use `n` chains with the driver's used_event at `event`: interrupt? */
static bool used_n(struct fx *f, uint16_t base, uint16_t n, uint16_t event)
{
	run_from(f, base);
	put16(f, AVAIL + 4 + 2 * 8, event);
	for (uint16_t i = 0; i < n; i++) {
		offer(f, 0);
		expect_pop(f);
		complete(f, 16);
	}
	return virtq_need_interrupt(&f->q);
}

static void test_need_interrupt_event_idx(void **state)
{
	struct fx *f = *state;

	/* First batch after start: nothing to compare with, so interrupt. */
	start(f, 8, true);
	put16(f, AVAIL + 4 + 2 * 8, 5);
	set_desc(f, 0, DATA, 16, 0, 0);
	offer(f, 0);
	expect_pop(f);
	complete(f, 0);
	assert_true(virtq_need_interrupt(&f->q));
	assert_int_equal(f->q.signalled_used, 1);
	assert_true(f->q.signalled_valid);
	/* No new used entries since: no interrupt whatever used_event says. */
	put16(f, AVAIL + 4 + 2 * 8, 1);
	assert_false(virtq_need_interrupt(&f->q));
	/* The flags' NO_INTERRUPT bit is ignored with EVENT_IDX (§2.7.7.2). */
	put16(f, AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	offer(f, 0);
	expect_pop(f);
	complete(f, 0);
	assert_true(virtq_need_interrupt(&f->q)); /* entry 1 == used_event */

	/* Entries base..base+2 used: interrupt iff used_event is one of them. */
	assert_false(used_n(f, 10, 3, 9));
	assert_true(used_n(f, 10, 3, 10));
	assert_true(used_n(f, 10, 3, 11));
	assert_true(used_n(f, 10, 3, 12));
	assert_false(used_n(f, 10, 3, 13));
	assert_false(used_n(f, 10, 3, 0x800a)); /* far away on the 16-bit circle */

	/* Across the 16-bit wrap: entries 0xfffe, 0xffff, 0, 1 used. */
	assert_false(used_n(f, 0xfffe, 4, 0xfffd));
	assert_true(used_n(f, 0xfffe, 4, 0xfffe));
	assert_true(used_n(f, 0xfffe, 4, 0xffff));
	assert_true(used_n(f, 0xfffe, 4, 0));
	assert_true(used_n(f, 0xfffe, 4, 1));
	assert_false(used_n(f, 0xfffe, 4, 2));

	/* A driver that leaves used_event at 0 hears about entry 0, and again 2^16 later. */
	assert_true(used_n(f, 0, 1, 0));
	assert_false(used_n(f, 1, 1, 0));
	assert_false(used_n(f, 1, 0xfffe, 0));
	assert_true(used_n(f, 0xffff, 2, 0));

	/* The bookkeeping moves on: a second batch compares against the first. */
	run_from(f, 20);
	put16(f, AVAIL + 4 + 2 * 8, 21);
	for (unsigned int i = 0; i < 2; i++) {
		offer(f, 0);
		expect_pop(f);
		complete(f, 0);
	}
	assert_true(virtq_need_interrupt(&f->q)); /* 20, 21 used */
	offer(f, 0);
	expect_pop(f);
	complete(f, 0);
	assert_false(virtq_need_interrupt(&f->q)); /* only 22: used_event 21 was already passed */
	put16(f, AVAIL + 4 + 2 * 8, 23);
	offer(f, 0);
	expect_pop(f);
	complete(f, 0);
	assert_true(virtq_need_interrupt(&f->q)); /* 23 */
}

static void test_enable_notify(void **state)
{
	struct fx *f = *state;

	/* Without EVENT_IDX: clears USED_F_NO_NOTIFY, reports pending buffers. */
	start(f, 8, false);
	put16(f, USED, VIRTQ_USED_F_NO_NOTIFY);
	assert_false(virtq_enable_notify(&f->q));
	assert_int_equal(get16(f, USED), 0);
	set_desc(f, 0, DATA, 16, 0, 0);
	offer(f, 0);
	assert_true(virtq_enable_notify(&f->q));
	expect_pop(f);
	assert_false(virtq_enable_notify(&f->q));
	assert_int_equal(used_idx(f), 0); /* the used ring idx is left alone */

	/* With EVENT_IDX: avail_event = last_avail. */
	start(f, 8, true);
	set_desc(f, 0, DATA, 16, 0, 0);
	put16(f, USED + 4 + 8 * 8, 0x1234);
	assert_false(virtq_enable_notify(&f->q));
	assert_int_equal(get16(f, USED + 4 + 8 * 8), 0);
	for (unsigned int i = 0; i < 3; i++) {
		offer(f, 0);
		expect_pop(f);
	}
	assert_false(virtq_enable_notify(&f->q));
	assert_int_equal(get16(f, USED + 4 + 8 * 8), 3);
	offer(f, 0);
	assert_true(virtq_enable_notify(&f->q));
	assert_int_equal(get16(f, USED + 4 + 8 * 8), 3);
	expect_pop(f);
	assert_false(virtq_enable_notify(&f->q));
	assert_int_equal(get16(f, USED + 4 + 8 * 8), 4);

	/* A bogus avail idx counts as pending, so the next pop finds and refuses it. */
	set_avail_idx(f, 4 + 9);
	assert_true(virtq_enable_notify(&f->q));
	expect_refused(f);
	assert_false(virtq_enable_notify(&f->q)); /* broken: sleep until reset */

	virtq_reset(&f->q);
	assert_false(virtq_enable_notify(&f->q));
}

/* One malformed chain of kind `k`, with `v` varying the details. */
static void make_malformed(struct fx *f, unsigned int k, unsigned int v)
{
	uint16_t size = f->q.size, d = v % size, e = (v + 1) % size;
	uint64_t addr = DATA + (v % 0x1000);

	switch (k) {
	case 0: /* self-loop */
		set_desc(f, d, addr, 1 + v % 64, VIRTQ_DESC_F_NEXT, d);
		offer(f, d);
		break;
	case 1: /* A -> B -> A */
		set_desc(f, d, addr, 16, VIRTQ_DESC_F_NEXT, e);
		set_desc(f, e, addr, 16, VIRTQ_DESC_F_NEXT | (v & 1 ? VIRTQ_DESC_F_WRITE : 0), d);
		offer(f, d);
		break;
	case 2: /* head out of range */
		offer(f, size + v % (0x10000 - size));
		break;
	case 3: /* next out of range */
		set_desc(f, d, addr, 16, VIRTQ_DESC_F_NEXT, size + v % (0x10000 - size));
		offer(f, d);
		break;
	case 4: /* INDIRECT */
		set_desc(f, d, addr, 16, VIRTQ_DESC_F_INDIRECT | (v & 3), e);
		offer(f, d);
		break;
	case 5: /* zero length */
		set_desc(f, d, addr, 0, v & VIRTQ_DESC_F_WRITE, 0);
		offer(f, d);
		break;
	case 6: /* past the end of RAM, into the hole, or wrapping */
		set_desc(f, d, LOW_SIZE - (v % 16), 16 + v % 1000, 0, 0);
		if (v & 1)
			set_desc(f, d, UINT64_MAX - (v % 4096), 4097, 0, 0);
		offer(f, d);
		break;
	case 7: /* readable after writable */
		set_desc(f, d, addr, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, e);
		set_desc(f, e, addr, 16, 0, 0);
		offer(f, d);
		break;
	default: /* avail idx too far ahead */
		set_avail_idx(f, f->q.last_avail + size + 1 + v % (0x10000 - size - 1));
		break;
	}
}

static void test_many_malformed_chains(void **state)
{
	struct fx *f = *state;

	for (unsigned int i = 0; i < 10000; i++) {
		uint16_t size = 1 << (i % 9); /* 1..256 */
		unsigned int kind = (i / 9) % 9;
		/* A one-entry queue cannot put a readable buffer after a writable one. */
		if (size == 1 && kind == 7)
			kind = 8;
		start(f, size, i & 1);
		/* Some good traffic first, so the indices are not all zero. */
		set_desc(f, 0, DATA, 16, 0, 0);
		for (unsigned int j = 0; j < i % 3; j++) {
			offer(f, 0);
			expect_pop(f);
			complete(f, 0);
		}
		make_malformed(f, kind, i * 2654435761u);
		expect_refused(f);
		/* Pop keeps refusing, even after the driver repairs the ring. */
		set_desc(f, 0, DATA, 16, 0, 0);
		set_avail_idx(f, f->q.last_avail + 1);
		put16(f, AVAIL + 4 + 2ULL * (f->q.last_avail & (size - 1)), 0);
		virtq_begin_pass(&f->q);
		for (unsigned int j = 0; j < 3; j++)
			assert_int_equal(virtq_pop(&f->q, &f->c), -EIO);
		assert_false(virtq_enable_notify(&f->q));
		/* Reset and restart: a good chain completes. */
		virtq_reset(&f->q);
		assert_int_equal(f->q.size, 0);
		assert_false(f->q.broken);
		assert_int_equal(virtq_pop(&f->q, &f->c), 0);
		start(f, size, i & 1);
		set_desc(f, 0, DATA, 16, VIRTQ_DESC_F_WRITE, 0);
		offer(f, 0);
		expect_pop(f);
		complete(f, 16);
		assert_int_equal(used_idx(f), 1);
		assert_true(virtq_need_interrupt(&f->q));
	}
}

/* A tiny deterministic generator for the random-ring test. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* An independent statement of the chain rules, to compare virtq_pop() against. */
static bool chain_ok(struct fx *f, uint16_t head, uint16_t *nr, uint64_t *rlen, uint64_t *wlen)
{
	uint16_t size = f->q.size, idx = head;
	bool seen_writable = false;

	*nr = 0;
	*rlen = *wlen = 0;
	if (head >= size)
		return false;
	while (true) {
		const uint8_t *d = f->low + DESC + 16 * idx;
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		memcpy(&addr, d, 8);
		memcpy(&len, d + 8, 4);
		memcpy(&flags, d + 12, 2);
		memcpy(&next, d + 14, 2);
		addr = le64toh(addr);
		len = le32toh(len);
		flags = le16toh(flags);
		next = le16toh(next);
		if (++*nr > size || (flags & VIRTQ_DESC_F_INDIRECT) || len == 0)
			return false;
		bool in_low = addr < LOW_SIZE && LOW_SIZE - addr >= len;
		bool in_high = addr >= HIGH_GPA && addr - HIGH_GPA < HIGH_SIZE &&
			       HIGH_SIZE - (addr - HIGH_GPA) >= len;
		if (!in_low && !in_high)
			return false;
		if (flags & VIRTQ_DESC_F_WRITE) {
			seen_writable = true;
			*wlen += len;
		} else {
			if (seen_writable)
				return false;
			*rlen += len;
		}
		if (!(flags & VIRTQ_DESC_F_NEXT))
			return true;
		if (next >= size)
			return false;
		idx = next;
	}
}

static uint64_t random_addr(uint64_t *s)
{
	switch (rnd(s) % 8) {
	case 0:
		return LOW_SIZE - rnd(s) % 64;
	case 1:
		return HIGH_GPA + rnd(s) % (HIGH_SIZE + 32);
	case 2:
		return UINT64_MAX - rnd(s) % 64;
	case 3:
		return HOLE_GPA + rnd(s) % 64;
	default:
		return DATA + rnd(s) % (LOW_SIZE - DATA);
	}
}

static uint32_t random_len(uint64_t *s)
{
	switch (rnd(s) % 8) {
	case 0:
		return 0;
	case 1:
		return UINT32_MAX - rnd(s) % 4;
	default:
		return 1 + rnd(s) % 512;
	}
}

/* Random rings: pop agrees with chain_ok(), never consumes a refused chain, never writes. */
static void test_random_rings(void **state)
{
	struct fx *f = *state;
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	unsigned int popped = 0, refused = 0;

	for (unsigned int iter = 0; iter < 10000; iter++) {
		uint16_t size = 1 << (rnd(&s) % 5); /* 1..16 */
		start(f, size, rnd(&s) & 1);
		for (uint16_t i = 0; i < size; i++) {
			uint16_t flags = 0;
			if (rnd(&s) % 2)
				flags |= VIRTQ_DESC_F_NEXT;
			if (rnd(&s) % 2)
				flags |= VIRTQ_DESC_F_WRITE;
			if (rnd(&s) % 24 == 0)
				flags |= VIRTQ_DESC_F_INDIRECT;
			uint16_t next = rnd(&s) % 16 ? rnd(&s) % size : rnd(&s);
			set_desc(f, i, random_addr(&s), random_len(&s), flags, next);
		}
		for (uint16_t i = 0; i < size; i++)
			put16(f, AVAIL + 4 + 2 * i, rnd(&s) % 8 ? rnd(&s) % size : rnd(&s));
		uint16_t avail = rnd(&s) % 8 ? rnd(&s) % (size + 1) : rnd(&s);
		set_avail_idx(f, avail);
		snap_used(f);
		virtq_begin_pass(&f->q);
		for (unsigned int n = 0; n <= size; n++) {
			uint16_t last = f->q.last_avail;
			uint16_t pending = f->avail_idx - last;
			int r = virtq_pop(&f->q, &f->c);
			if (pending == 0) {
				assert_int_equal(r, 0);
				break;
			}
			uint16_t head = get16(f, AVAIL + 4 + 2 * (last & (size - 1)));
			uint16_t nr;
			uint64_t rlen, wlen;
			bool ok = pending <= size && chain_ok(f, head, &nr, &rlen, &wlen);
			if (!ok) {
				assert_int_equal(r, -EIO);
				assert_true(f->q.broken);
				assert_int_equal(f->q.last_avail, last);
				refused++;
				break;
			}
			assert_int_equal(r, 1);
			popped++;
			assert_int_equal(f->q.last_avail, (uint16_t)(last + 1));
			assert_int_equal(f->c.head, head);
			assert_int_equal(f->c.nr, nr);
			assert_int_equal(f->c.readable_len, rlen);
			assert_int_equal(f->c.writable_len, wlen);
			uint64_t rsum = 0, wsum = 0;
			for (uint16_t i = 0; i < f->c.nr; i++) {
				const struct virtq_buf *b = &f->c.buf[i];
				assert_non_null(gmem_ptr(&f->gm, b->gpa, b->len));
				assert_int_equal(b->dev_writable, i >= f->c.nr_readable);
				*(b->dev_writable ? &wsum : &rsum) += b->len;
			}
			assert_int_equal(rsum, rlen);
			assert_int_equal(wsum, wlen);
		}
		assert_used_unchanged(f);
	}
	/* Both outcomes were exercised in quantity. */
	assert_true(popped > 1000);
	assert_true(refused > 1000);
}

static void test_chain_read_write(void **state)
{
	struct fx *f = *state;
	char buf[32];

	start(f, 8, false);
	memcpy(f->low + DATA, "abcde", 5);
	memcpy(f->low + DATA + 0x100, "fghijkl", 7);
	memcpy(f->high, "mnop", 4);
	set_desc(f, 0, DATA, 5, VIRTQ_DESC_F_NEXT, 1);
	set_desc(f, 1, DATA + 0x100, 7, VIRTQ_DESC_F_NEXT, 2);
	set_desc(f, 2, HIGH_GPA, 4, VIRTQ_DESC_F_NEXT, 3);
	set_desc(f, 3, DATA + 0x200, 3, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 4);
	set_desc(f, 4, HIGH_GPA + 0x100, 6, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_pop(f);
	assert_int_equal(f->c.readable_len, 16);
	assert_int_equal(f->c.writable_len, 9);

	memset(buf, 0, sizeof(buf));
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 0, buf, 16), 0);
	assert_memory_equal(buf, "abcdefghijklmnop", 16);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 3, buf, 6), 0); /* spans 0 and 1 */
	assert_memory_equal(buf, "defghi", 6);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 12, buf, 4), 0); /* last buffer only */
	assert_memory_equal(buf, "mnop", 4);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 16, buf, 0), 0);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 0, buf, 0), 0);

	/* Short: nothing copied. */
	memset(buf, '.', sizeof(buf));
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 0, buf, 17), -EFAULT);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 15, buf, 2), -EFAULT);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 17, buf, 0), -EFAULT);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, UINT64_MAX, buf, 2), -EFAULT);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 1, buf, UINT64_MAX), -EFAULT);
	assert_int_equal(buf[0], '.');

	/* Writes count from the first writable buffer and never touch readable ones. */
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 2, "012345", 6), 0);
	assert_int_equal(f->low[DATA + 0x200 + 2], '0');
	assert_memory_equal(f->high + 0x100, "12345", 5);
	assert_int_equal(f->high[0x105], 0);
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 0, "XYZ", 3), 0);
	assert_memory_equal(f->low + DATA + 0x200, "XYZ", 3);
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 8, "!", 1), 0);
	assert_int_equal(f->high[0x105], '!');
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 8, "??", 2), -EFAULT);
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 0, "0123456789", 10), -EFAULT);
	assert_int_equal(virtq_chain_write(&f->q, &f->c, UINT64_MAX, "?", 1), -EFAULT);
	assert_memory_equal(f->low + DATA + 0x200, "XYZ", 3); /* nothing written on failure */
	assert_memory_equal(f->high + 0x100, "12345!", 6);
	assert_memory_equal(f->low + DATA, "abcde", 5);
	assert_memory_equal(f->high, "mnop", 4);

	/* A readable-only chain has no room to write, a writable-only one nothing to read. */
	complete(f, 9);
	set_desc(f, 0, DATA, 5, 0, 0);
	offer(f, 0);
	expect_pop(f);
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 0, "x", 1), -EFAULT);
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 0, "x", 0), 0);
	complete(f, 0);
	set_desc(f, 0, DATA, 5, VIRTQ_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_pop(f);
	assert_int_equal(virtq_chain_read(&f->q, &f->c, 0, buf, 1), -EFAULT);
	assert_int_equal(virtq_chain_write(&f->q, &f->c, 0, "hello", 5), 0);
	assert_memory_equal(f->low + DATA, "hello", 5);
}

static void test_reset(void **state)
{
	struct fx *f = *state;

	start(f, 8, true);
	set_desc(f, 0, DATA, 16, 0, 0);
	offer(f, 0);
	expect_pop(f);
	virtq_reset(&f->q);
	assert_null(f->q.mem);
	assert_int_equal(f->q.size, 0);
	assert_int_equal(f->q.last_avail, 0);
	assert_false(f->q.event_idx);
	/* A reset queue is inert. */
	snap_used(f);
	assert_int_equal(virtq_pop(&f->q, &f->c), 0);
	assert_int_equal(virtq_push(&f->q, 0, 0), -EIO);
	assert_false(virtq_need_interrupt(&f->q));
	assert_false(virtq_enable_notify(&f->q));
	assert_false(f->q.broken);
	assert_used_unchanged(f);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_good_single_chain),
		T(test_readable_writable_chain),
		T(test_self_loop),
		T(test_two_loop),
		T(test_chain_of_queue_size),
		T(test_chain_one_longer_than_queue),
		T(test_head_out_of_range),
		T(test_next_out_of_range),
		T(test_buffer_at_end_of_ram),
		T(test_buffer_wraps_2_64),
		T(test_four_max_length_buffers),
		T(test_avail_idx_jump),
		T(test_writable_before_readable),
		T(test_indirect),
		T(test_zero_length),
		T(test_validate),
		T(test_rings_not_in_ram),
		T(test_oversized_queue_bounded),
		T(test_budget),
		T(test_push),
		T(test_need_interrupt_flags),
		T(test_need_interrupt_event_idx),
		T(test_enable_notify),
		T(test_many_malformed_chains),
		T(test_random_rings),
		T(test_chain_read_write),
		T(test_reset),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
