/* log: leveled messages to stderr, one line each, prefixed "kvmini: LEVEL: ". */
#ifndef KVMINI_LOG_H
#define KVMINI_LOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "kvmini/nbout.h"

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Per-VM logger: no global state, so two VMs in one process log independently. */
struct logger {
	int level;		    /* messages above this level are dropped */
	struct nbout out;	    /* usually stderr (the VM's private O_NONBLOCK copy of it) */
	pthread_mutex_t probe_lock; /* serialises poll + write when out probes (a shared pipe) */
	atomic_uint dropped;	    /* lines that did not fit: the reader is too slow */
	/* Rate limit for guest-triggered messages (log_guest): at most a burst per second. */
	atomic_int_fast64_t guest_window;
	atomic_int guest_count;
	/* Instead of `out`: each line (without prefix or newline) to this callback. */
	void (*sink)(void *opaque, int level, const char *line);
	void *sink_opaque;
};

/* Log to `fd` (borrowed: the caller keeps it open as long as the logger is used). */
void log_init(struct logger *lg, int level, int fd);

/* Send lines to `fn` instead of the fd (before any thread logs). */
void log_set_sink(struct logger *lg, void (*fn)(void *, int, const char *), void *opaque);

/* Write one line if `level` is enabled. Never blocks: a line that does not fit into `fd`
 * now (a full pipe, a stalled terminal) is dropped and counted in `dropped`. */
void log_msg(struct logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Like log_msg(), for messages a guest can provoke at will: at most LOG_GUEST_BURST per
 * second are written, the rest counted and summarised, so a guest cannot flood the host log.
 */
#define LOG_GUEST_BURST 10
void log_guest(struct logger *lg, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(lg, ...)   log_msg(lg, LOG_ERROR, __VA_ARGS__)
#define log_warn(lg, ...)  log_msg(lg, LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...)  log_msg(lg, LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...) log_msg(lg, LOG_DEBUG, __VA_ARGS__)

#endif
