/* log: leveled, rate-limitable one-line messages to stderr. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/log.h"

static const char *const log_names[] = {"error", "warning", "info", "debug"};

void log_init(struct logger *lg, int level, int fd)
{
	lg->level = level;
	nbout_open(&lg->out, fd, false);
	lg->probe_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	atomic_init(&lg->dropped, 0);
	atomic_init(&lg->guest_window, 0);
	atomic_init(&lg->guest_count, 0);
	lg->sink = NULL;
	lg->sink_opaque = NULL;
}

void log_set_sink(struct logger *lg, void (*fn)(void *, int, const char *), void *opaque)
{
	lg->sink = fn;
	lg->sink_opaque = opaque;
}

static void log_vwrite(struct logger *lg, int level, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "kvmini: %s: ", log_names[level]);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	if (lg->sink) {
		line[len] = '\0';
		lg->sink(lg->sink_opaque, level, line + n);
		return;
	}
	line[len++] = '\n';
	/* One write per line (at most 1 KiB, so a pipe takes it whole) so lines from several
	 * threads never interleave. Probing is poll-then-write: two threads must not both see
	 * the same room. */
	if (lg->out.probe)
		pthread_mutex_lock(&lg->probe_lock);
	ssize_t w = nbout_write(&lg->out, line, len);
	if (lg->out.probe)
		pthread_mutex_unlock(&lg->probe_lock);
	if (w == -EAGAIN)
		atomic_fetch_add(&lg->dropped, 1);
}

void log_msg(struct logger *lg, int level, const char *fmt, ...)
{
	if (level > lg->level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lg, level, fmt, ap);
	va_end(ap);
}

void log_guest(struct logger *lg, int level, const char *fmt, ...)
{
	if (level > lg->level)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int_fast64_t now = ts.tv_sec;
	int_fast64_t win = atomic_load(&lg->guest_window);
	if (win != now && atomic_compare_exchange_strong(&lg->guest_window, &win, now)) {
		int missed = atomic_exchange(&lg->guest_count, 0) - LOG_GUEST_BURST;
		if (missed > 0)
			log_msg(lg, LOG_WARN, "%d more guest-caused messages suppressed", missed);
	}
	if (atomic_fetch_add(&lg->guest_count, 1) >= LOG_GUEST_BURST)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lg, level, fmt, ap);
	va_end(ap);
}
