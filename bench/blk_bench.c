/* blk_bench: virtio-blk device model throughput on a host file, driven like a guest driver. */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/confine.h"
#include "kvmini/virtio_blk.h"
#include "vdriver.h"

/*
 * The fake guest is tests/support/vdriver plus what a real driver adds on top; it does what
 * Linux's virtio_blk and virtio_ring do:
 *
 *  - Each request slot s owns descriptors 3s..3s+2 (header, data, status) and its own data
 *    buffer, so requests completing out of order never reuse a descriptor still in flight.
 *  - Refills after a round of completions are published with one avail->idx store, and the
 *    queue is kicked only if the device asked for it through avail_event (EVENT_IDX, §2.7.10).
 *  - Completions come by interrupt, as in a guest: the driver sets used_event to the next
 *    used slot (§2.7.10), re-checks the used ring, then sleeps on the irq eventfd. Woken, it
 *    reads InterruptStatus and writes InterruptAck like Linux's vm_interrupt(), then reaps
 *    every used element. No busy polling.
 *  - Exactly QD requests are in flight until the run time is over; completions reaped after
 *    that are drained but not counted.
 */

#define QSIZE	   VBLK_QUEUE_SIZE
#define QD_MAX	   64 /* three descriptors per request: at most 85 fit a queue of 256 */
#define SECTOR	   512
#define DESC_GPA   0x0000ULL
#define AVAIL_GPA  0x1000ULL
#define USED_GPA   0x2000ULL
#define HDR_GPA	   0x3000ULL /* 16 bytes per slot */
#define STATUS_GPA 0x3800ULL /* 1 byte per slot */
#define DATA_GPA   0x100000ULL
#define T_IN	   0
#define T_OUT	   1
#define STALL_MS   10000 /* no completion for this long: the device is stuck */

struct workload {
	char rw[16]; /* fio's names: read, write, randread, randwrite */
	uint32_t bs;
	unsigned int qd;
	bool write, random;
};

struct bench {
	struct vdrv d;
	struct logger lg;
	struct vblk *b;
	uint64_t disk_bytes;
	uint16_t kicked_idx; /* avail->idx when the driver last decided whether to kick */
	uint64_t rng, seq_off;
	uint64_t kicks, irqs;
	struct confine confine; /* -s: the I/O thread's seccomp filter, as `kvmini run` has it */
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *gp(struct bench *k, gpa_t gpa, uint64_t len)
{
	return vdrv_ptr(&k->d, gpa, len);
}

/* xorshift64*: cheap, and good enough to spread offsets over the disk. */
static uint64_t rnd(struct bench *k)
{
	k->rng ^= k->rng >> 12;
	k->rng ^= k->rng << 25;
	k->rng ^= k->rng >> 27;
	return k->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t next_offset(struct bench *k, const struct workload *w)
{
	uint64_t blocks = k->disk_bytes / w->bs;
	if (w->random)
		return (rnd(k) % blocks) * w->bs;
	uint64_t off = k->seq_off;
	k->seq_off = off + w->bs >= blocks * w->bs ? 0 : off + w->bs;
	return off;
}

/* Put request slot s (descriptors 3s..3s+2) in the avail ring; visible after publish(). */
static void post(struct bench *k, const struct workload *w, unsigned int s)
{
	uint8_t *hdr = gp(k, HDR_GPA + 16ULL * s, 16);
	uint32_t type = htole32(w->write ? T_OUT : T_IN), reserved = 0;
	uint64_t sector = htole64(next_offset(k, w) / SECTOR);
	memcpy(hdr, &type, 4);
	memcpy(hdr + 4, &reserved, 4);
	memcpy(hdr + 8, &sector, 8);
	*(uint8_t *)gp(k, STATUS_GPA + s, 1) = 0xff;
	struct vdrv_buf bufs[3] = {
		{HDR_GPA + 16ULL * s, 16, false},
		{DATA_GPA + (uint64_t)s * w->bs, w->bs, !w->write},
		{STATUS_GPA + s, 1, true},
	};
	k->d.next_desc = (uint16_t)(3 * s);
	vdrv_add(&k->d, bufs, 3);
}

/* Publish avail->idx, then notify only if the device asked for it (§2.7.10 avail_event). */
static void publish(struct bench *k)
{
	uint16_t new_idx = k->d.avail_idx, old = k->kicked_idx;
	if (new_idx == old)
		return;
	vdrv_publish(&k->d);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* avail->idx before reading avail_event */
	uint16_t *ev = gp(k, USED_GPA + 4 + 8ULL * QSIZE, 2);
	uint16_t event = le16toh(__atomic_load_n(ev, __ATOMIC_RELAXED));
	k->kicked_idx = new_idx;
	if ((uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old)) {
		vdrv_kick(&k->d);
		k->kicks++;
	}
}

/*
 * Sleep until the used ring moves: ask for an interrupt at the next used element, re-check
 * (the device may have pushed before it saw used_event), then wait on the irq eventfd and
 * acknowledge as a guest's interrupt handler does. 0; -EIO once the device needs a reset;
 * -ETIMEDOUT when it is stuck.
 */
static int wait_used(struct bench *k)
{
	vdrv_arm_irq(&k->d);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* used_event before re-reading used->idx */
	if (vdrv_used_idx(&k->d) != k->d.used_seen)
		return 0;
	struct pollfd pfd = {.fd = k->d.t->irq_fd, .events = POLLIN};
	int ret = poll(&pfd, 1, STALL_MS);
	if (ret == 0)
		return -ETIMEDOUT;
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	uint64_t v;
	if (read(k->d.t->irq_fd, &v, sizeof(v)) == sizeof(v))
		k->irqs++;
	uint32_t isr = vdrv_rd32(&k->d, VIRTIO_MMIO_INTERRUPT_STATUS);
	vdrv_wr32(&k->d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	if ((isr & VIRTIO_MMIO_INT_CONFIG) &&
	    (vdrv_rd32(&k->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
		return -EIO;
	return 0;
}

struct result {
	uint64_t ios, errors, kicks, irqs;
	double secs, cpu;
};

/* CPU time of the whole process: driver, the device's I/O thread and io_uring workers. */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Keep exactly w->qd requests in flight for `secs` seconds. 0 or -errno. */
static int run(struct bench *k, const struct workload *w, double secs, struct result *r)
{
	memset(r, 0, sizeof(*r));
	k->seq_off = 0;
	uint64_t kicks = k->kicks, irqs = k->irqs;
	unsigned int inflight = w->qd;
	double cpu0 = cpu_s(), t0 = now_s(), end = t0 + secs;
	for (unsigned int s = 0; s < w->qd; s++)
		post(k, w, s);
	publish(k);
	bool counting = true;
	while (inflight) {
		uint16_t upto = vdrv_used_idx(&k->d);
		if (upto == k->d.used_seen) {
			int ret = wait_used(k);
			if (ret < 0)
				return ret;
			continue;
		}
		if (counting && now_s() >= end) {
			counting = false;
			r->secs = now_s() - t0;
			r->cpu = cpu_s() - cpu0;
			r->kicks = k->kicks - kicks;
			r->irqs = k->irqs - irqs;
		}
		uint32_t want_len = w->write ? 1 : w->bs + 1;
		while (k->d.used_seen != upto) {
			struct vdrv_used u = vdrv_take_used(&k->d);
			unsigned int s = u.id / 3;
			if (u.id % 3 || s >= w->qd)
				return -EPROTO;
			if (*(uint8_t *)gp(k, STATUS_GPA + s, 1) != 0 || u.len != want_len)
				r->errors++;
			if (!counting) {
				inflight--;
				continue;
			}
			r->ios++;
			post(k, w, s);
		}
		publish(k);
	}
	return 0;
}

/* "randread:4k:32" (fio's rw name, block size with k/m, queue depth). 0 or -EINVAL. */
static int parse_workload(const char *spec, struct workload *w)
{
	char unit = 0;
	unsigned long bs;
	unsigned int qd;
	memset(w, 0, sizeof(*w));
	if (sscanf(spec, "%15[a-z]:%lu%c:%u", w->rw, &bs, &unit, &qd) != 4)
		return -EINVAL;
	if (unit == 'k')
		bs <<= 10;
	else if (unit == 'm')
		bs <<= 20;
	else
		return -EINVAL;
	if (!strcmp(w->rw, "read") || !strcmp(w->rw, "randread"))
		w->write = false;
	else if (!strcmp(w->rw, "write") || !strcmp(w->rw, "randwrite"))
		w->write = true;
	else
		return -EINVAL;
	w->random = !strncmp(w->rw, "rand", 4);
	if (!bs || bs % SECTOR || bs > VBLK_SIZE_MAX || !qd || qd > QD_MAX)
		return -EINVAL;
	w->bs = (uint32_t)bs;
	w->qd = qd;
	return 0;
}

static const char *const default_workloads[] = {
	"randread:4k:1",   "randread:4k:32", "randwrite:4k:1",
	"randwrite:4k:32", "read:1m:32",     "write:1m:32",
};

static int bench_init(struct bench *k, const char *path, bool seccomp)
{
	uint64_t ram_size = DATA_GPA + (uint64_t)QD_MAX * VBLK_SIZE_MAX;
	int ret = vdrv_init(&k->d, ram_size, 0);
	if (ret < 0) {
		fprintf(stderr, "blk_bench: no fake guest memory: %s\n", strerror(-ret));
		return ret;
	}
	/* Fault the data buffers in now, with bytes worth writing, so no run pays for that. */
	uint8_t *data = gp(k, DATA_GPA, ram_size - DATA_GPA);
	for (uint64_t i = 0; i < ram_size - DATA_GPA; i++)
		data[i] = (uint8_t)(i * 131 + (i >> 12));
	log_init(&k->lg, LOG_WARN, STDERR_FILENO);
	struct vblk_config cfg = {.path = path, .cache = VBLK_CACHE_WRITEBACK};
	struct vmerr e = {0};
	if (seccomp) {
		struct confine_params cp = {.pid = getpid(), .kick_signal = SIGRTMIN + 2};
		if (confine_build(&k->confine, CONFINE_KILL, &cp, &e) < 0 ||
		    confine_sigsys_setup(&e) < 0) {
			fprintf(stderr, "blk_bench: %s\n", e.msg);
			return -EINVAL;
		}
		cfg.confine = &k->confine;
	}
	ret = vblk_create(&k->b, &cfg, &k->d.gm, &k->lg, "vda", &e);
	if (ret < 0) {
		fprintf(stderr, "blk_bench: %s\n", e.msg);
		return ret;
	}
	k->disk_bytes = vblk_capacity(k->b) * SECTOR;
	k->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
	vdrv_attach(&k->d, vblk_transport(k->b));
	ret = vdrv_setup(&k->d, 2, ~0ULL, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	if (ret < 0) {
		fprintf(stderr, "blk_bench: driver set-up failed at %s\n", k->d.why);
		return ret;
	}
	if (!k->d.event_idx) {
		fprintf(stderr, "blk_bench: the device does not offer EVENT_IDX\n");
		return -ENOTSUP;
	}
	k->kicked_idx = 0;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: blk_bench [-t SECONDS] [-s] IMAGE [RW:BS:QD...]\n"
			"  -s: the device's I/O thread under its seccomp filter (kill mode), as in "
			"`kvmini run`.\n"
			"  RW is read, write, randread or randwrite; BS ends in k or m; e.g. "
			"randread:4k:32.\n"
			"  Without workloads: randread and randwrite 4k at QD 1 and 32, read and "
			"write 1m at QD 32.\n"
			"  Prints one JSON line per workload: IOPS, MB/s (10^6 bytes), CPU of the "
			"whole process\n"
			"  in percent of one CPU (io_uring workers included), kicks and interrupts "
			"per request.\n");
}

int main(int argc, char **argv)
{
	double secs = 5;
	bool seccomp = false;
	int opt;
	while ((opt = getopt(argc, argv, "t:sh")) != -1) {
		if (opt == 's') {
			seccomp = true;
		} else if (opt == 't') {
			secs = strtod(optarg, NULL);
			if (!(secs > 0)) {
				usage();
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}
	if (optind >= argc) {
		usage();
		return 2;
	}
	const char *path = argv[optind++];
	const char *const *specs = default_workloads;
	size_t nr = sizeof(default_workloads) / sizeof(default_workloads[0]);
	if (optind < argc) {
		specs = (const char *const *)&argv[optind];
		nr = (size_t)(argc - optind);
	}
	struct workload w[16];
	if (nr > 16) {
		usage();
		return 2;
	}
	for (size_t i = 0; i < nr; i++) {
		if (parse_workload(specs[i], &w[i]) < 0) {
			fprintf(stderr, "blk_bench: bad workload '%s'\n", specs[i]);
			usage();
			return 2;
		}
	}
	struct bench k = {0};
	if (bench_init(&k, path, seccomp) < 0) {
		vblk_destroy(k.b);
		vdrv_fini(&k.d);
		return 1;
	}
	int status = 0;
	for (size_t i = 0; i < nr && !status; i++) {
		if ((uint64_t)w[i].bs > k.disk_bytes) {
			fprintf(stderr, "blk_bench: %s is smaller than one block\n", path);
			status = 1;
			break;
		}
		struct result r;
		int ret = run(&k, &w[i], secs, &r);
		if (ret < 0) {
			fprintf(stderr, "blk_bench: %s: %s\n", specs[i], strerror(-ret));
			status = 1;
			break;
		}
		if (r.errors) {
			fprintf(stderr, "blk_bench: %s: %llu requests failed\n", specs[i],
				(unsigned long long)r.errors);
			status = 1;
		}
		double iops = (double)r.ios / r.secs;
		printf("{\"workload\":\"%s\",\"rw\":\"%s\",\"bs\":%u,\"qd\":%u,\"seconds\":%.3f,"
		       "\"ios\":%llu,\"iops\":%.0f,\"mbps\":%.1f,\"process_cpu_pct\":%.1f,"
		       "\"kicks_per_io\":%.3f,\"irqs_per_io\":%.3f,\"seccomp\":%s}\n",
		       specs[i], w[i].rw, w[i].bs, w[i].qd, r.secs, (unsigned long long)r.ios, iops,
		       iops * w[i].bs / 1e6, 100 * r.cpu / r.secs,
		       r.ios ? (double)r.kicks / (double)r.ios : 0,
		       r.ios ? (double)r.irqs / (double)r.ios : 0, seccomp ? "true" : "false");
		fflush(stdout);
	}
	vblk_destroy(k.b);
	confine_free(&k.confine);
	if (!vdrv_canaries_ok(&k.d)) {
		fprintf(stderr, "blk_bench: the device wrote outside the fake guest memory\n");
		status = 1;
	}
	vdrv_fini(&k.d);
	return status;
}
