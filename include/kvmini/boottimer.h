/* boottimer: a pseudo-device the guest's init writes once, to time the boot from outside. */
#ifndef KVMINI_BOOTTIMER_H
#define KVMINI_BOOTTIMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/log.h"

/*
 * The guest writes BOOTTIMER_MAGIC (any width, offset 0) to the MMIO address
 * LAYOUT_BOOT_TIMER as the first thing its init does; the project's init runs
 * `devmem 0xd1000000 8 123`. Only the first such write counts.
 */
#define BOOTTIMER_MAGIC 123
#define BOOTTIMER_SIZE	0x1000

/* Times in nanoseconds; wall times on CLOCK_MONOTONIC, CPU times of the whole process. */
struct boottimer_times {
	uint64_t vmm_start_wall; /* first KVM_RUN - kvmini start: VMM start-up */
	uint64_t vmm_start_cpu;	 /* process CPU time at the first KVM_RUN */
	uint64_t init_wall;	 /* guest init reached - kvmini start */
	uint64_t init_cpu;	 /* process CPU time when init was reached */
	uint64_t init_since_run; /* guest init reached - first KVM_RUN */
	uint64_t first_run_real; /* the first KVM_RUN on CLOCK_REALTIME (0: none), to match
				    it with other programs' traces, e.g. bench/boot-l2.sh */
};

struct boottimer {
	struct logger *log;
	uint64_t start_wall_ns;		   /* CLOCK_MONOTONIC when kvmini started */
	atomic_uint_fast64_t first_run_ns; /* 0 until the first KVM_RUN */
	atomic_uint_fast64_t first_run_cpu_ns;
	atomic_bool fired;	  /* the first magic write claimed the recording */
	atomic_bool ready;	  /* ... and `t` is complete */
	struct boottimer_times t; /* valid once `ready` */
};

/* Start the clock: `start_wall_ns` is kvmini's start on CLOCK_MONOTONIC (0: now). */
void boottimer_init(struct boottimer *bt, struct logger *log, uint64_t start_wall_ns);

/* Called by every vCPU thread right before its first KVM_RUN; the earliest call counts. */
void boottimer_first_run(struct boottimer *bt);

/* Bus handler (a bus_io_fn) for the BOOTTIMER_SIZE window: the magic write records the
 * times and logs them at info level (and the first KVM_RUN's CLOCK_REALTIME at debug
 * level); everything else is ignored, reads return 0. */
void boottimer_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* The recorded times; false until the guest wrote the magic value. */
bool boottimer_get(const struct boottimer *bt, struct boottimer_times *out);

/* Now on CLOCK_MONOTONIC, in nanoseconds. */
uint64_t boottimer_now_ns(void);

#endif
