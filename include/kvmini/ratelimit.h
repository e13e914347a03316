/* ratelimit: token buckets for a device's I/O (bytes and operations per second, each with a
 * one-time burst), consulted by its I/O thread before it takes a request from a queue. */
#ifndef KVMINI_RATELIMIT_H
#define KVMINI_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/devctl.h"

/* What the bucket holds when full: this much of a second's rate (it starts full). */
#define RATELIMIT_WINDOW_MS 100

/* One limit; a rate of 0 is no limit. A burst is spent before the bucket and never refilled. */
struct ratelimit_spec {
	uint64_t bytes_per_s, bytes_burst;
	uint64_t ops_per_s, ops_burst;
};

/* One bucket: `budget` tokens, refilled at `rate` per second up to `cap`. It may go below 0:
 * a request bigger than what is left is let through and paid back before the next one. */
struct ratelimit_bucket {
	uint64_t rate, cap, burst;
	int64_t budget;
	uint64_t frac; /* the part of a token (in units of 1/10^9) the last refill left over */
	uint64_t last_ns;
};

/* Two buckets, both of which must allow a request. Owned by one thread (no lock). */
struct ratelimit {
	struct ratelimit_bucket bytes, ops;
	uint64_t throttled; /* times ratelimit_wait_ns() said wait */
};

/* Set `r` to `s` at time `now_ns` (CLOCK_MONOTONIC), the buckets full. */
void ratelimit_init(struct ratelimit *r, const struct ratelimit_spec *s, uint64_t now_ns);

/* A new setting while running: the rates and bursts change, what is in each bucket stays (no
 * more than its new cap). */
void ratelimit_set(struct ratelimit *r, const struct ratelimit_spec *s, uint64_t now_ns);

/* Whether any limit is set. */
bool ratelimit_active(const struct ratelimit *r);

/* 0 when a request may be taken now, else the nanoseconds until one may. */
uint64_t ratelimit_wait_ns(struct ratelimit *r, uint64_t now_ns);

/* Pay for a request that was taken: `bytes` and one operation. */
void ratelimit_charge(struct ratelimit *r, uint64_t bytes);

/*
 * A new setting on its way from another thread to the device's I/O thread, which owns the
 * buckets. Both sides hold the device's devctl lock: the other thread offers (and pokes the
 * I/O thread with devctl_publish), the I/O thread takes it at its next wake.
 */
struct ratelimit_box {
	struct ratelimit_spec next, cur; /* the one on its way; the last one set */
	bool update;			 /* `next` not taken yet */
};

/* `c` locked, or -ENODEV when its I/O thread is gone: offer `s`, publish (not waited for). */
int ratelimit_offer(struct ratelimit_box *x, struct devctl *c, const struct ratelimit_spec *s);

/* The last one set, read under `c`'s lock. */
void ratelimit_current(struct ratelimit_box *x, struct devctl *c, struct ratelimit_spec *out);

/* The I/O thread, `c` locked by it: a new setting for `r` if one came (true). */
bool ratelimit_take(struct ratelimit_box *x, struct ratelimit *r, uint64_t now_ns);

#endif
