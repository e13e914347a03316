/* boottimer: record when the guest's init starts, relative to kvmini's start and first KVM_RUN. */
#include <string.h>
#include <time.h>

#include "kvmini/boottimer.h"

static uint64_t boottimer_clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t boottimer_now_ns(void)
{
	return boottimer_clock_ns(CLOCK_MONOTONIC);
}

void boottimer_init(struct boottimer *bt, struct logger *log, uint64_t start_wall_ns)
{
	memset(bt, 0, sizeof(*bt));
	bt->log = log;
	bt->start_wall_ns = start_wall_ns ? start_wall_ns : boottimer_now_ns();
	atomic_init(&bt->first_run_ns, 0);
	atomic_init(&bt->first_run_cpu_ns, 0);
	atomic_init(&bt->fired, false);
	atomic_init(&bt->ready, false);
}

void boottimer_first_run(struct boottimer *bt)
{
	uint_fast64_t zero = 0;
	uint64_t cpu = boottimer_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	if (atomic_compare_exchange_strong(&bt->first_run_ns, &zero, boottimer_now_ns()))
		atomic_store(&bt->first_run_cpu_ns, cpu);
}

static double boottimer_ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void boottimer_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct boottimer *bt = opaque;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	uint64_t v = 0;
	memcpy(&v, data, len < sizeof(v) ? len : sizeof(v)); /* little-endian guest and host */
	if (offset != 0 || v != BOOTTIMER_MAGIC)
		return;
	uint64_t now = boottimer_now_ns();
	uint64_t real = boottimer_clock_ns(CLOCK_REALTIME);
	uint64_t cpu = boottimer_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	bool expected = false;
	if (!atomic_compare_exchange_strong(&bt->fired, &expected, true))
		return; /* only the first write counts */
	uint64_t run = atomic_load(&bt->first_run_ns);
	struct boottimer_times *t = &bt->t;
	t->init_wall = now - bt->start_wall_ns;
	t->init_cpu = cpu;
	t->init_since_run = run ? now - run : 0;
	t->vmm_start_wall = run ? run - bt->start_wall_ns : 0;
	t->vmm_start_cpu = atomic_load(&bt->first_run_cpu_ns);
	t->first_run_real = run ? real - (now - run) : 0;
	atomic_store(&bt->ready, true);
	log_info(bt->log,
		 "boot timer: guest init reached %.1f ms after kvmini started (%.1f ms after the "
		 "first KVM_RUN, %.1f ms process CPU); VMM start-up %.2f ms wall, %.2f ms CPU",
		 boottimer_ms(t->init_wall), boottimer_ms(t->init_since_run),
		 boottimer_ms(t->init_cpu), boottimer_ms(t->vmm_start_wall),
		 boottimer_ms(t->vmm_start_cpu));
	if (run)
		log_debug(bt->log, "boot timer: first KVM_RUN at %llu.%06llu s CLOCK_REALTIME",
			  (unsigned long long)(t->first_run_real / 1000000000ULL),
			  (unsigned long long)(t->first_run_real % 1000000000ULL / 1000));
}

bool boottimer_get(const struct boottimer *bt, struct boottimer_times *out)
{
	if (!atomic_load(&bt->ready))
		return false;
	*out = bt->t;
	return true;
}
