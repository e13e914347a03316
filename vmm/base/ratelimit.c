/* ratelimit: token buckets for a device's I/O; see include/kvmini/ratelimit.h. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "kvmini/ratelimit.h"

#define NS_PER_S   1000000000ULL
#define RATE_LIMIT (1ULL << 48) /* 256 TiB/s: more than any device; keeps the sums in range */

static void bucket_init(struct ratelimit_bucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
	memset(b, 0, sizeof(*b));
	b->rate = rate;
	b->burst = burst;
	b->cap = rate * RATELIMIT_WINDOW_MS / 1000;
	if (rate && !b->cap)
		b->cap = 1;
	b->budget = (int64_t)b->cap;
	b->last_ns = now;
}

static void bucket_refill(struct ratelimit_bucket *b, uint64_t now)
{
	if (!b->rate || now <= b->last_ns) {
		b->last_ns = now > b->last_ns ? now : b->last_ns;
		return;
	}
	uint64_t dt = now - b->last_ns;
	b->last_ns = now;
	/* rate and dt both < 2^64: the product fits 128 bits. */
	unsigned __int128 units = (unsigned __int128)b->rate * dt + b->frac;
	unsigned __int128 add = units / NS_PER_S;
	b->frac = (uint64_t)(units % NS_PER_S);
	unsigned __int128 room = (unsigned __int128)((__int128)b->cap - b->budget);
	if (add >= room) {
		b->budget = (int64_t)b->cap;
		b->frac = 0;
	} else {
		b->budget += (int64_t)add;
	}
}

/* Nanoseconds until the bucket holds at least one token (0: now). */
static uint64_t bucket_wait(const struct ratelimit_bucket *b)
{
	if (!b->rate || b->burst || b->budget > 0)
		return 0;
	/* Tokens still missing, in units of 1/10^9 token, over the rate. */
	unsigned __int128 need = (unsigned __int128)(1 - (__int128)b->budget) * NS_PER_S - b->frac;
	unsigned __int128 ns = (need + b->rate - 1) / b->rate;
	return ns > NS_PER_S * 3600 ? NS_PER_S * 3600 : (uint64_t)ns;
}

static void bucket_charge(struct ratelimit_bucket *b, uint64_t cost)
{
	if (!b->rate)
		return;
	uint64_t from_burst = cost < b->burst ? cost : b->burst;
	b->burst -= from_burst;
	cost -= from_burst;
	/* A debt of more than an hour's worth is not kept: the wait is capped there anyway. */
	int64_t floor = -(int64_t)(b->rate * 3600 < (1ULL << 62) ? b->rate * 3600 : (1ULL << 62));
	if (cost > (uint64_t)INT64_MAX || b->budget - floor < (int64_t)cost)
		b->budget = floor;
	else
		b->budget -= (int64_t)cost;
}

static uint64_t clamp_rate(uint64_t v)
{
	return v > RATE_LIMIT ? RATE_LIMIT : v;
}

void ratelimit_init(struct ratelimit *r, const struct ratelimit_spec *s, uint64_t now_ns)
{
	memset(r, 0, sizeof(*r));
	bucket_init(&r->bytes, clamp_rate(s->bytes_per_s), clamp_rate(s->bytes_burst), now_ns);
	bucket_init(&r->ops, clamp_rate(s->ops_per_s), clamp_rate(s->ops_burst), now_ns);
}

static void bucket_set(struct ratelimit_bucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
	bucket_refill(b, now);
	int64_t budget = b->budget;
	bool was_limited = b->rate != 0;
	bucket_init(b, rate, burst, now);
	if (was_limited && budget < b->budget)
		b->budget = budget; /* a debt, or a partly spent bucket, carries over */
}

void ratelimit_set(struct ratelimit *r, const struct ratelimit_spec *s, uint64_t now_ns)
{
	bucket_set(&r->bytes, clamp_rate(s->bytes_per_s), clamp_rate(s->bytes_burst), now_ns);
	bucket_set(&r->ops, clamp_rate(s->ops_per_s), clamp_rate(s->ops_burst), now_ns);
}

bool ratelimit_active(const struct ratelimit *r)
{
	return r->bytes.rate || r->ops.rate;
}

uint64_t ratelimit_wait_ns(struct ratelimit *r, uint64_t now_ns)
{
	if (!ratelimit_active(r))
		return 0;
	bucket_refill(&r->bytes, now_ns);
	bucket_refill(&r->ops, now_ns);
	uint64_t a = bucket_wait(&r->bytes), b = bucket_wait(&r->ops);
	uint64_t w = a > b ? a : b;
	if (w)
		r->throttled++;
	return w;
}

void ratelimit_charge(struct ratelimit *r, uint64_t bytes)
{
	bucket_charge(&r->bytes, bytes);
	bucket_charge(&r->ops, 1);
}

int ratelimit_offer(struct ratelimit_box *x, struct devctl *c, const struct ratelimit_spec *s)
{
	if (!devctl_lock(c))
		return -ENODEV;
	x->next = *s;
	x->cur = *s;
	x->update = true;
	devctl_publish(c); /* not waited for: the I/O thread takes it at its next wake */
	return 0;
}

void ratelimit_current(struct ratelimit_box *x, struct devctl *c, struct ratelimit_spec *out)
{
	pthread_mutex_lock(&c->lock);
	*out = x->cur;
	pthread_mutex_unlock(&c->lock);
}

bool ratelimit_take(struct ratelimit_box *x, struct ratelimit *r, uint64_t now_ns)
{
	if (!x->update)
		return false;
	x->update = false;
	ratelimit_set(r, &x->next, now_ns);
	return true;
}
