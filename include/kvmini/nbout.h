/* nbout: write to a host fd kvmini does not own (stdout, stderr) without ever blocking. */
#ifndef KVMINI_NBOUT_H
#define KVMINI_NBOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * How writes reach `fd`. A pipe or a terminal shared with other processes cannot be made
 * O_NONBLOCK (that flag belongs to the open file, which the shell and its other children
 * share), so nbout either opens its own description of the same pipe or terminal through
 * /proc/self/fd (reopen), sends with MSG_DONTWAIT (a socket), writes as is (a regular file,
 * or an fd already O_NONBLOCK), or else polls for room first and writes at most PIPE_BUF
 * bytes, which a pipe that polled writable always takes whole.
 */
struct nbout {
	int fd;	      /* where writes go, or -1: nothing is written */
	bool own;     /* fd was opened here (nbout_close closes it) */
	bool sock;    /* send(MSG_DONTWAIT) */
	bool probe;   /* poll for room first, then at most PIPE_BUF bytes */
	bool sigpipe; /* a pipe: SIGPIPE is blocked around each write (nbout_write) */
};

/* Set up writes to `fd` (-1: none). With `reopen`, a pipe, terminal or character device gets
 * a private O_NONBLOCK description (then nbout_close must be called); otherwise, or when that
 * fails, probing. Never fails. */
void nbout_open(struct nbout *o, int fd, bool reopen);

/* Write up to `len` bytes: the count written (> 0), -EAGAIN when nothing fits now, or -errno
 * (the output is gone: EPIPE, EIO...). Never blocks. Thread-safe for distinct calls. */
ssize_t nbout_write(const struct nbout *o, const void *buf, size_t len);

/* Wait up to `timeout_ms` for room: 1 when writable, 0 on timeout, -errno on failure. */
int nbout_wait(const struct nbout *o, int timeout_ms);

/* Close the private fd, if any. Safe on a zeroed or closed nbout. */
void nbout_close(struct nbout *o);

#endif
