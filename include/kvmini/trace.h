/* trace: one decoded line per VM event (exits, virtqueue requests, interrupts, io_uring). */
#ifndef KVMINI_TRACE_H
#define KVMINI_TRACE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/nbout.h"

/* Categories (`--trace=exits,virtio,irq,io`). */
enum trace_cat {
	TRACE_EXITS = 1u << 0,	/* every VM exit: vCPU, reason, decoded detail */
	TRACE_VIRTIO = 1u << 1, /* every virtqueue request a device takes */
	TRACE_IRQ = 1u << 2,	/* every interrupt injected */
	TRACE_IO = 1u << 3,	/* every io_uring submission and completion */
	TRACE_ALL = 0xf,
};

/*
 * A VM's tracer. `mask` is fixed before any thread runs, so the cost with tracing off is the
 * test in trace_on(): one load and one well-predicted branch.
 */
struct trace {
	unsigned int mask;
	struct nbout out;
	uint64_t start_ns;	    /* CLOCK_MONOTONIC at VM start: timestamps count from here */
	atomic_uint dropped;	    /* lines that did not fit (a stalled reader) */
	pthread_mutex_t probe_lock; /* serialises poll + write when `out` probes (a shared pipe) */
};

static inline bool trace_on(const struct trace *t, unsigned int cat)
{
#ifdef KVMINI_NO_TRACE /* only to measure what the trace points cost when off (README) */
	(void)t;
	(void)cat;
	return false;
#else
	return __builtin_expect((t->mask & cat) != 0, 0);
#endif
}

/* Trace categories `mask` to `fd` (borrowed; -1 or mask 0: off). */
void trace_init(struct trace *t, unsigned int mask, int fd, uint64_t start_ns);

/* Close the private fd, if any. */
void trace_fini(struct trace *t);

/* Write one line "[  12.345678] <text>" (seconds.microseconds since start_ns). Never
 * blocks: a line that does not fit now is dropped and counted. Call it behind trace_on(). */
void trace_emit(struct trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Parse "exits,virtio,irq,io" (any subset, or "all") into a mask. 0, or -EINVAL with the
 * first unknown word copied to `bad` (at most bad_len bytes, NUL-terminated).
 */
int trace_parse(const char *s, unsigned int *mask, char *bad, unsigned int bad_len);

#endif
