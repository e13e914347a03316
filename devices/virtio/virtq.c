/* virtq: the device side of a split virtqueue (virtio 1.2 §2.7): validate, pop, push, notify. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "kvmini/virtq.h"

/* Wire layout sizes (§2.7.5, §2.7.6, §2.7.8). */
#define VIRTQ_DESC_SIZE	      16 /* le64 addr, le32 len, le16 flags, le16 next */
#define VIRTQ_RING_HDR	      4	 /* le16 flags, le16 idx (avail and used alike) */
#define VIRTQ_AVAIL_ELEM_SIZE 2	 /* le16 descriptor index */
#define VIRTQ_USED_ELEM_SIZE  8	 /* le32 id, le32 len */

/* Byte offsets inside the areas; `size` is the queue size. */
#define VIRTQ_OFF_FLAGS		    0
#define VIRTQ_OFF_IDX		    2
#define VIRTQ_OFF_AVAIL_RING(slot)  (VIRTQ_RING_HDR + VIRTQ_AVAIL_ELEM_SIZE * (uint64_t)(slot))
#define VIRTQ_OFF_USED_EVENT(size)  VIRTQ_OFF_AVAIL_RING(size) /* after avail ring[size] */
#define VIRTQ_OFF_USED_RING(slot)   (VIRTQ_RING_HDR + VIRTQ_USED_ELEM_SIZE * (uint64_t)(slot))
#define VIRTQ_OFF_AVAIL_EVENT(size) VIRTQ_OFF_USED_RING(size) /* after used ring[size] */

/* Bytes each area occupies for a queue of `size` entries (event fields included on request). */
static uint64_t virtq_desc_bytes(uint16_t size)
{
	return VIRTQ_DESC_SIZE * (uint64_t)size;
}

static uint64_t virtq_avail_bytes(uint16_t size, bool event_idx)
{
	return VIRTQ_OFF_AVAIL_RING(size) + (event_idx ? 2 : 0);
}

static uint64_t virtq_used_bytes(uint16_t size, bool event_idx)
{
	return VIRTQ_OFF_USED_RING(size) + (event_idx ? 2 : 0);
}

/*
 * Host pointer to the ring bytes [gpa, gpa+len) whose first field is `align` bytes wide, or
 * NULL if they are not wholly in one RAM region or the host address is misaligned (atomic
 * access needs alignment, and gmem does not promise that host and guest alignment agree).
 */
static void *virtq_field(const struct virtq *q, gpa_t gpa, uint64_t len, uintptr_t align)
{
	void *p = gmem_ptr(q->mem, gpa, len);
	if (!p || ((uintptr_t)p & (align - 1)))
		return NULL;
	return p;
}

/* Mark the queue stopped until reset; every guest-provoked failure ends here. */
static int virtq_break(struct virtq *q)
{
	q->broken = true;
	return -EIO;
}

/*
 * Read the driver's avail->idx with acquire order: the ring entries and descriptors the driver
 * wrote before publishing the index are then visible (pairs with the driver's write barrier,
 * §2.7.13.3.1). Returns 0 or -EIO.
 */
static int virtq_load_avail_idx(const struct virtq *q, uint16_t *idx)
{
	uint16_t *p = virtq_field(q, q->avail_gpa + VIRTQ_OFF_IDX, 2, 2);
	if (!p)
		return -EIO;
	*idx = le16toh(__atomic_load_n(p, __ATOMIC_ACQUIRE));
	return 0;
}

int virtq_validate(const struct gmem *gm, uint16_t size, gpa_t desc, gpa_t avail, gpa_t used,
		   bool event_idx)
{
	/* §2.7: Queue Size is a power of 2; kvmini offers at most VIRTQ_MAX_SIZE (§4.2.2). */
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	/* §2.7 table "Virtqueue Part Alignment". */
	if (desc % VIRTQ_DESC_ALIGN || avail % VIRTQ_AVAIL_ALIGN || used % VIRTQ_USED_ALIGN)
		return -EINVAL;
	/* Each area wholly inside one RAM region (gmem_ptr also refuses a wrap past 2^64). */
	if (!gmem_ptr(gm, desc, virtq_desc_bytes(size)) ||
	    !gmem_ptr(gm, avail, virtq_avail_bytes(size, event_idx)) ||
	    !gmem_ptr(gm, used, virtq_used_bytes(size, event_idx)))
		return -EINVAL;
	return 0;
}

void virtq_start(struct virtq *q, const struct gmem *gm, uint16_t size, gpa_t desc, gpa_t avail,
		 gpa_t used, bool event_idx)
{
	memset(q, 0, sizeof(*q));
	q->mem = gm;
	q->size = size;
	q->desc_gpa = desc;
	q->avail_gpa = avail;
	q->used_gpa = used;
	q->event_idx = event_idx;
	/* The first pass may begin without virtq_begin_pass(). */
	q->budget = size;
}

void virtq_reset(struct virtq *q)
{
	memset(q, 0, sizeof(*q));
}

void virtq_begin_pass(struct virtq *q)
{
	q->budget = q->size;
}

/*
 * Copy descriptor `idx` (< size) into locals with one load per field, so that a driver
 * rewriting the table meanwhile cannot make a checked value differ from a used one.
 */
static int virtq_load_desc(const struct virtq *q, uint16_t idx, uint64_t *addr, uint32_t *len,
			   uint16_t *flags, uint16_t *next)
{
	/* Entries are 16 bytes in a 16-aligned table: aligned addr means aligned fields. */
	uint8_t *d =
		virtq_field(q, q->desc_gpa + VIRTQ_DESC_SIZE * (uint64_t)idx, VIRTQ_DESC_SIZE, 8);
	if (!d)
		return -EIO;
	*addr = le64toh(__atomic_load_n((uint64_t *)d, __ATOMIC_RELAXED));
	*len = le32toh(__atomic_load_n((uint32_t *)(d + 8), __ATOMIC_RELAXED));
	*flags = le16toh(__atomic_load_n((uint16_t *)(d + 12), __ATOMIC_RELAXED));
	*next = le16toh(__atomic_load_n((uint16_t *)(d + 14), __ATOMIC_RELAXED));
	return 0;
}

/* Walk the chain starting at `head` into `c`; 0, or -EIO for any malformed descriptor. */
static int virtq_walk(const struct virtq *q, uint16_t head, struct virtq_chain *c)
{
	uint16_t idx = head;

	c->head = head;
	c->nr = 0;
	c->nr_readable = 0;
	c->readable_len = 0;
	c->writable_len = 0;
	for (;;) {
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;

		/*
		 * §2.7.5.3.1: no chain longer than the queue size, so every loop (§2.7.5.2)
		 * ends; buf[] holds VIRTQ_MAX_SIZE even if a caller skipped virtq_validate().
		 */
		if (c->nr >= q->size || c->nr >= VIRTQ_MAX_SIZE)
			return -EIO;
		if (virtq_load_desc(q, idx, &addr, &len, &flags, &next) < 0)
			return -EIO;
		/* §2.7.5.3: VIRTIO_F_INDIRECT_DESC is never offered, so the flag is malformed. */
		if (flags & VIRTQ_DESC_F_INDIRECT)
			return -EIO;
		/* An empty buffer has no use; a buffer must lie wholly in one RAM region. */
		if (len == 0 || !gmem_ptr(q->mem, addr, len))
			return -EIO;
		bool writable = flags & VIRTQ_DESC_F_WRITE;
		/* §2.7.4.2: device-writable descriptors come after all device-readable ones. */
		if (!writable && c->nr != c->nr_readable)
			return -EIO;
		c->buf[c->nr] =
			(struct virtq_buf){.gpa = addr, .len = len, .dev_writable = writable};
		c->nr++;
		if (writable) {
			c->writable_len += len;
		} else {
			c->nr_readable++;
			c->readable_len += len;
		}
		if (!(flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (next >= q->size)
			return -EIO;
		idx = next;
	}
}

bool virtq_has_avail(const struct virtq *q)
{
	uint16_t avail_idx;
	if (q->broken || q->size == 0 || q->budget == 0)
		return false;
	if (virtq_load_avail_idx(q, &avail_idx) < 0)
		return true; /* virtq_pop will find the queue broken */
	return avail_idx != q->last_avail;
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	uint16_t avail_idx;

	if (q->broken)
		return -EIO;
	if (q->size == 0 || q->budget == 0)
		return 0;
	if (virtq_load_avail_idx(q, &avail_idx) < 0)
		return virtq_break(q);
	uint16_t pending = avail_idx - q->last_avail;
	if (pending == 0)
		return 0;
	/* At most `size` buffers can be outstanding: the ring has `size` slots (§2.7.13). */
	if (pending > q->size)
		return virtq_break(q);

	gpa_t slot_gpa = q->avail_gpa + VIRTQ_OFF_AVAIL_RING(q->last_avail & (q->size - 1));
	uint16_t *slot = virtq_field(q, slot_gpa, 2, 2);
	if (!slot)
		return virtq_break(q);
	uint16_t head = le16toh(__atomic_load_n(slot, __ATOMIC_RELAXED));
	if (head >= q->size)
		return virtq_break(q);
	if (virtq_walk(q, head, c) < 0)
		return virtq_break(q);
	q->last_avail++;
	q->budget--;
	return 1;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (q->broken)
		return -EIO;
	if (q->size == 0)
		return -EIO;
	/* A device bug, not the guest's: an unknown head, or more returned than taken. */
	if (head >= q->size || q->used_idx == q->last_avail)
		return -EINVAL;

	uint16_t slot = q->used_idx & (q->size - 1);
	uint8_t *elem = virtq_field(q, q->used_gpa + VIRTQ_OFF_USED_RING(slot), 8, 4);
	uint16_t *idx = virtq_field(q, q->used_gpa + VIRTQ_OFF_IDX, 2, 2);
	if (!elem || !idx)
		return virtq_break(q);
	__atomic_store_n((uint32_t *)elem, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n((uint32_t *)(elem + 4), htole32(written), __ATOMIC_RELAXED);
	/* §2.7.8.2: the element must be visible before the index that publishes it. */
	q->used_idx++;
	__atomic_store_n(idx, htole16(q->used_idx), __ATOMIC_RELEASE);
	return 0;
}

/* §2.7.7: interrupt only if used_event lies in [old, new), the slots filled since the last one. */
static bool virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool virtq_need_interrupt(struct virtq *q)
{
	if (q->size == 0)
		return false;
	/*
	 * Full fence: the used->idx store must be globally visible before the driver's flags or
	 * used_event are read, or a driver re-enabling interrupts just then could be missed
	 * (pairs with the driver's full barrier between writing used_event and reading used->idx).
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx) {
		uint16_t *flags = virtq_field(q, q->avail_gpa + VIRTQ_OFF_FLAGS, 2, 2);
		/* Unreadable flags: interrupting is always safe. */
		if (!flags)
			return true;
		return !(le16toh(__atomic_load_n(flags, __ATOMIC_RELAXED)) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	}

	uint16_t old = q->signalled_used;
	uint16_t new_idx = q->used_idx;
	bool valid = q->signalled_valid;
	q->signalled_used = new_idx;
	q->signalled_valid = true;
	/* Nothing signalled yet since start: no window to compare against, so interrupt. */
	if (!valid)
		return true;
	uint16_t *ev = virtq_field(q, q->avail_gpa + VIRTQ_OFF_USED_EVENT(q->size), 2, 2);
	if (!ev)
		return true;
	return virtq_need_event(le16toh(__atomic_load_n(ev, __ATOMIC_RELAXED)), new_idx, old);
}

bool virtq_enable_notify(struct virtq *q)
{
	uint16_t avail_idx;

	if (q->broken || q->size == 0)
		return false;
	if (q->event_idx) {
		/* §2.7.10: the driver notifies once it fills avail ring slot avail_event. */
		uint16_t *ev = virtq_field(q, q->used_gpa + VIRTQ_OFF_AVAIL_EVENT(q->size), 2, 2);
		if (!ev) {
			virtq_break(q);
			return false;
		}
		__atomic_store_n(ev, htole16(q->last_avail), __ATOMIC_RELAXED);
	} else {
		/*
		 * §2.7.10: clear VIRTQ_USED_F_NO_NOTIFY. The device is the only writer of
		 * used->flags and that is the only flag, so store 0 rather than read it back.
		 */
		uint16_t *flags = virtq_field(q, q->used_gpa + VIRTQ_OFF_FLAGS, 2, 2);
		if (!flags) {
			virtq_break(q);
			return false;
		}
		__atomic_store_n(flags, 0, __ATOMIC_RELAXED);
	}
	/*
	 * Full fence between publishing the request and re-reading avail->idx: a driver that
	 * added a buffer and then read the old request has not notified, so look again.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (virtq_load_avail_idx(q, &avail_idx) < 0) {
		virtq_break(q);
		return false;
	}
	return avail_idx != q->last_avail;
}

/*
 * Copy `len` bytes between host memory and the chain's buffers [first, first+n), starting `off`
 * bytes into them; `total` is their summed length. Exactly one of `dst` (guest to host) and
 * `src` (host to guest) is set. Nothing is copied unless all of it fits: 0 or -EFAULT.
 */
static int virtq_chain_copy(const struct virtq *q, const struct virtq_chain *c, uint16_t first,
			    uint16_t n, uint64_t total, uint64_t off, uint8_t *dst,
			    const uint8_t *src, uint64_t len)
{
	if (off > total || len > total - off)
		return -EFAULT;
	for (unsigned int i = first; i < (unsigned int)first + n && len > 0; i++) {
		const struct virtq_buf *b = &c->buf[i];
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint64_t chunk = b->len - off;
		if (chunk > len)
			chunk = len;
		int r;
		if (dst) {
			r = gmem_read(q->mem, b->gpa + off, dst, chunk);
			dst += chunk;
		} else {
			r = gmem_write(q->mem, b->gpa + off, src, chunk);
			src += chunk;
		}
		if (r < 0)
			return r;
		len -= chunk;
		off = 0;
	}
	return len ? -EFAULT : 0;
}

int virtq_chain_read(const struct virtq *q, const struct virtq_chain *c, uint64_t off, void *dst,
		     uint64_t len)
{
	return virtq_chain_copy(q, c, 0, c->nr_readable, c->readable_len, off, dst, NULL, len);
}

int virtq_chain_write(const struct virtq *q, const struct virtq_chain *c, uint64_t off,
		      const void *src, uint64_t len)
{
	return virtq_chain_copy(q, c, c->nr_readable, c->nr - c->nr_readable, c->writable_len, off,
				NULL, src, len);
}
