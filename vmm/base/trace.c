/* trace: timestamped one-line event records, written without blocking the calling thread. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kvmini/trace.h"

static const struct {
	const char *name;
	unsigned int mask;
} trace_names[] = {
	{"exits", TRACE_EXITS}, {"virtio", TRACE_VIRTIO}, {"irq", TRACE_IRQ},
	{"io", TRACE_IO},	{"all", TRACE_ALL},
};

void trace_init(struct trace *t, unsigned int mask, int fd, uint64_t start_ns)
{
	t->mask = fd >= 0 ? mask : 0;
	t->start_ns = start_ns;
	atomic_init(&t->dropped, 0);
	pthread_mutex_init(&t->probe_lock, NULL);
	nbout_open(&t->out, t->mask ? fd : -1, true);
}

void trace_fini(struct trace *t)
{
	nbout_close(&t->out);
	pthread_mutex_destroy(&t->probe_lock);
	t->mask = 0;
}

void trace_emit(struct trace *t, const char *fmt, ...)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	uint64_t us = now > t->start_ns ? (now - t->start_ns) / 1000 : 0;
	char line[512];
	int n = snprintf(line, sizeof(line), "[%4llu.%06llu] ", (unsigned long long)(us / 1000000),
			 (unsigned long long)(us % 1000000));
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line (< PIPE_BUF), so lines from several threads never interleave.
	 * Probing is poll-then-write: two threads must not both see the same room. */
	if (t->out.probe)
		pthread_mutex_lock(&t->probe_lock);
	ssize_t w = nbout_write(&t->out, line, len);
	if (t->out.probe)
		pthread_mutex_unlock(&t->probe_lock);
	if (w != (ssize_t)len)
		atomic_fetch_add(&t->dropped, 1);
}

int trace_parse(const char *s, unsigned int *mask, char *bad, unsigned int bad_len)
{
	unsigned int m = 0;
	const char *p = s;
	if (bad_len)
		bad[0] = '\0';
	for (;;) {
		size_t n = strcspn(p, ",");
		bool found = false;
		for (size_t i = 0; i < sizeof(trace_names) / sizeof(trace_names[0]); i++) {
			if (strlen(trace_names[i].name) == n &&
			    strncmp(p, trace_names[i].name, n) == 0) {
				m |= trace_names[i].mask;
				found = true;
			}
		}
		if (!found) {
			if (bad_len)
				snprintf(bad, bad_len, "%.*s", (int)n, p);
			return -EINVAL;
		}
		if (!p[n])
			break;
		p += n + 1;
	}
	*mask = m;
	return 0;
}
