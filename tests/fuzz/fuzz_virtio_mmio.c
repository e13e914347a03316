/* fuzz_virtio_mmio: random register traffic against the virtio-mmio transport (libFuzzer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/log.h"
#include "kvmini/virtio_mmio.h"

#define MEM_SIZE (64 * 1024)
#define CFG_SIZE 24

/* A device with a small config space that counts what the transport asks of it. */
struct fake_dev {
	uint8_t config[CFG_SIZE];
	unsigned int activated, resets;
};

static int fake_activate(void *opaque)
{
	struct fake_dev *d = opaque;
	d->activated++;
	return 0;
}

static void fake_reset(void *opaque)
{
	struct fake_dev *d = opaque;
	d->resets++;
}

static void fake_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
	struct fake_dev *d = opaque;
	if (off > CFG_SIZE || len > CFG_SIZE - off)
		__builtin_trap(); /* the transport must bound config accesses */
	memcpy(data, d->config + off, len);
}

static void fake_config_write(void *opaque, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct fake_dev *d = opaque;
	if (off > CFG_SIZE || len > CFG_SIZE - off)
		__builtin_trap();
	memcpy(d->config + off, data, len);
}

static const struct virtio_dev_ops fake_ops = {
	.activate = fake_activate,
	.reset = fake_reset,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
};

/*
 * Input: a sequence of 8-byte operations {op, width, offset le16, value le32}. op bit 0
 * selects write; width picks 1, 2, 4 or 8 bytes; offsets cover the whole window and a bit
 * beyond. Guest memory is filled from the input too, so ring addresses can land anywhere.
 */
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t n)
{
	static uint8_t ram[MEM_SIZE];
	memset(ram, 0, sizeof(ram));
	memcpy(ram, in, n < MEM_SIZE ? n : MEM_SIZE);

	struct gmem gm;
	memset(&gm, 0, sizeof(gm));
	if (gmem_add_region(&gm, 0, MEM_SIZE, ram) < 0)
		__builtin_trap();
	struct logger lg;
	log_init(&lg, LOG_ERROR - 1, 2); /* silent */
	struct fake_dev dev = {.config = {1, 2, 3, 4}};
	struct virtio_dev_info info = {
		.device_id = 2,
		.features = 1ULL << 6,
		.config_size = CFG_SIZE,
		.nr_queues = 2,
		.queue_max = 16,
	};
	struct virtio_mmio t;
	if (virtio_mmio_init(&t, &gm, &lg, "fuzz", &info, &fake_ops, &dev) < 0)
		return 0;

	for (size_t i = 0; i + 8 <= n; i += 8) {
		const uint8_t *op = in + i;
		static const uint32_t widths[4] = {1, 2, 4, 8};
		uint32_t len = widths[op[1] & 3];
		uint64_t off = (uint64_t)(op[2] | (op[3] << 8)) % (VIRTIO_MMIO_WINDOW + 0x10);
		if (off + len > VIRTIO_MMIO_WINDOW)
			continue; /* the bus never sends an access beyond the window */
		uint8_t data[8] = {op[4], op[5], op[6], op[7], op[4], op[5], op[6], op[7]};
		virtio_mmio_io(&t, off, data, len, op[0] & 1);

		/* Invariants a driver relies on, whatever came before. */
		uint8_t v[4] = {0};
		virtio_mmio_io(&t, VIRTIO_MMIO_MAGIC_VALUE, v, 4, false);
		if (v[0] != 'v' || v[1] != 'i' || v[2] != 'r' || v[3] != 't')
			__builtin_trap();
		unsigned int st = atomic_load(&t.status);
		if ((st & VIRTIO_STATUS_DRIVER_OK) && !(st & VIRTIO_STATUS_FEATURES_OK))
			__builtin_trap();
		if (dev.activated > dev.resets + 1)
			__builtin_trap(); /* activated twice without a reset in between */
	}
	virtio_mmio_fini(&t);
	return 0;
}
