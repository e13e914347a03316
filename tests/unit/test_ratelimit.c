/* test_ratelimit: token buckets on a clock the test turns by hand. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kvmini/ratelimit.h"

#define MS 1000000ULL
#define S  1000000000ULL

/* Take requests of `size` bytes as fast as `r` lets them through, from t = 0 to `until_ns`,
 * the clock jumping to each next allowed moment. Returns the bytes taken; *n the requests. */
static uint64_t drive(struct ratelimit *r, uint64_t size, uint64_t until_ns, uint64_t *n)
{
	uint64_t now = 0, bytes = 0, count = 0;
	while (now < until_ns) {
		uint64_t w = ratelimit_wait_ns(r, now);
		if (w) {
			now += w;
			continue;
		}
		ratelimit_charge(r, size);
		bytes += size;
		count++;
	}
	if (n)
		*n = count;
	return bytes;
}

static void test_unlimited_never_waits(void **state)
{
	(void)state;
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){0}, 0);
	assert_false(ratelimit_active(&r));
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(ratelimit_wait_ns(&r, 0), 0);
		ratelimit_charge(&r, 1 << 20);
	}
	assert_int_equal(r.throttled, 0);
}

static void test_bandwidth_holds_over_ten_seconds(void **state)
{
	(void)state;
	/* 1 MiB/s in 4 KiB requests for 10 s: 10 MiB, plus the full bucket it starts with
	 * (100 ms worth), within one request. */
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){.bytes_per_s = 1 << 20}, 0);
	assert_true(ratelimit_active(&r));
	uint64_t got = drive(&r, 4096, 10 * S, NULL);
	uint64_t want = 10ULL << 20;
	want += (1 << 20) / 10;
	assert_true(got + 4096 >= want && got <= want + 4096);
	assert_true(r.throttled > 0);
}

static void test_ops_hold_and_the_tighter_bucket_wins(void **state)
{
	(void)state;
	/* 100 ops/s and a generous byte rate: the ops decide (1000 in 10 s, plus 10 to start). */
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){.ops_per_s = 100, .bytes_per_s = 1ULL << 30},
		       0);
	uint64_t n;
	drive(&r, 512, 10 * S, &n);
	assert_in_range(n, 1009, 1011);
	/* Now the bytes decide: 64 KiB/s in 4 KiB requests at up to 1000 ops/s: 16 a second. */
	ratelimit_init(&r, &(struct ratelimit_spec){.ops_per_s = 1000, .bytes_per_s = 64 << 10}, 0);
	drive(&r, 4096, 10 * S, &n);
	assert_in_range(n, 160, 163);
}

static void test_burst_spent_once(void **state)
{
	(void)state;
	/* 1000 B/s with a 50000-byte burst: the burst goes at once, then the rate. */
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){.bytes_per_s = 1000, .bytes_burst = 50000}, 0);
	uint64_t taken = 0;
	while (ratelimit_wait_ns(&r, 0) == 0 && taken < 1000000) {
		ratelimit_charge(&r, 100);
		taken += 100;
	}
	/* 50000 of burst, 100 of bucket (100 ms of 1000 B/s), one request past it. */
	assert_int_equal(taken, 50100);
	/* After the burst is gone it never comes back. */
	assert_int_equal(r.bytes.burst, 0);
	uint64_t w = ratelimit_wait_ns(&r, 0);
	assert_int_equal(w, 1 * MS); /* the budget is 0: one byte at 1000 B/s */
}

static void test_big_request_is_paid_back(void **state)
{
	(void)state;
	/* A 10000-byte request at 1000 B/s with a 100-byte bucket goes through, then the bucket
	 * owes 9900 bytes: 9.9 s before the next, plus the one token it waits for. */
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){.bytes_per_s = 1000}, 0);
	assert_int_equal(ratelimit_wait_ns(&r, 0), 0);
	ratelimit_charge(&r, 10000);
	assert_int_equal(ratelimit_wait_ns(&r, 0), 9901 * MS);
	assert_int_equal(ratelimit_wait_ns(&r, 9900 * MS), 1 * MS);
	assert_int_equal(ratelimit_wait_ns(&r, 9901 * MS), 0);
}

static void test_refill_stops_at_cap_and_keeps_fractions(void **state)
{
	(void)state;
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){.bytes_per_s = 1000}, 0);
	assert_int_equal(r.bytes.cap, 100);
	/* An hour idle fills the bucket to its cap, no more. */
	ratelimit_charge(&r, 100);
	ratelimit_wait_ns(&r, 3600 * S);
	assert_int_equal(r.bytes.budget, 100);
	/* 3 tokens per second, refilled every 100 ms: 0.3 a time, a whole token every ~333 ms. */
	ratelimit_init(&r, &(struct ratelimit_spec){.ops_per_s = 3}, 0);
	ratelimit_charge(&r, 0); /* cap is 1 (a fraction of 3 rounds up to 1) */
	assert_int_equal(r.ops.budget, 0);
	uint64_t t = 0;
	for (int i = 0; i < 3; i++)
		ratelimit_wait_ns(&r, t += 100 * MS);
	assert_int_equal(r.ops.budget, 0); /* 0.9 */
	ratelimit_wait_ns(&r, t += 100 * MS);
	assert_int_equal(r.ops.budget, 1); /* 1.2, capped at 1 */
}

static void test_set_while_running(void **state)
{
	(void)state;
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){.bytes_per_s = 1000}, 0);
	ratelimit_charge(&r, 5000); /* a debt of 4900 */
	/* Raising the rate keeps the debt, now paid back ten times faster. */
	ratelimit_set(&r, &(struct ratelimit_spec){.bytes_per_s = 10000}, 0);
	assert_int_equal(r.bytes.budget, -4900);
	assert_int_equal(ratelimit_wait_ns(&r, 0), 490100000);
	/* Lifting the limit lets everything through at once. */
	ratelimit_set(&r, &(struct ratelimit_spec){0}, 0);
	assert_false(ratelimit_active(&r));
	assert_int_equal(ratelimit_wait_ns(&r, 0), 0);
	/* Setting one where there was none starts with a full bucket. */
	ratelimit_set(&r, &(struct ratelimit_spec){.ops_per_s = 10}, 0);
	assert_int_equal(r.ops.budget, 1);
	assert_int_equal(ratelimit_wait_ns(&r, 0), 0);
}

static void test_huge_values_do_not_overflow(void **state)
{
	(void)state;
	struct ratelimit r;
	ratelimit_init(&r, &(struct ratelimit_spec){.bytes_per_s = UINT64_MAX, .ops_per_s = 1}, 0);
	/* Rates past 2^48 are taken as 2^48; a charge of 2^64 - 1 bytes does not wrap. */
	assert_int_equal(r.bytes.rate, 1ULL << 48);
	ratelimit_charge(&r, 1ULL << 49);
	/* 2 s of bytes less the 0.1 s bucket: 1.9 s (the op's 1 s is shorter). */
	assert_in_range(ratelimit_wait_ns(&r, 0), 1900 * MS - 1, 1900 * MS + 1);
	ratelimit_charge(&r, UINT64_MAX); /* a debt of an hour at most, one second paid back */
	assert_in_range(ratelimit_wait_ns(&r, 1 * S), 3599 * S - 1, 3599 * S + 1);
	ratelimit_init(&r, &(struct ratelimit_spec){.bytes_per_s = 1}, 0);
	ratelimit_charge(&r, UINT64_MAX);
	/* A debt beyond an hour is cut at an hour. */
	assert_int_equal(ratelimit_wait_ns(&r, 0), 3600 * S);
	assert_int_equal(ratelimit_wait_ns(&r, UINT64_MAX), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unlimited_never_waits),
		cmocka_unit_test(test_bandwidth_holds_over_ten_seconds),
		cmocka_unit_test(test_ops_hold_and_the_tighter_bucket_wins),
		cmocka_unit_test(test_burst_spent_once),
		cmocka_unit_test(test_big_request_is_paid_back),
		cmocka_unit_test(test_refill_stops_at_cap_and_keeps_fractions),
		cmocka_unit_test(test_set_while_running),
		cmocka_unit_test(test_huge_values_do_not_overflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
