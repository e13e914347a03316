/* nbout: write to a host fd kvmini does not own (stdout, stderr) without ever blocking. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/nbout.h"

void nbout_open(struct nbout *o, int fd, bool reopen)
{
	struct stat st;
	int flags;

	*o = (struct nbout){.fd = fd};
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0) {
		o->probe = o->sigpipe = true;
		return;
	}
	/* Only a pipe (and a socket written with write(), below) can raise SIGPIPE. */
	o->sigpipe = !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode);
	if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
		return; /* a file takes every write at once */
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && (flags & O_NONBLOCK))
		return;
	if (S_ISSOCK(st.st_mode)) {
		o->sock = true;
		o->sigpipe = false; /* send(MSG_NOSIGNAL) */
		return;
	}
	if (reopen) {
		char path[64];
		int own;

		/* A new open file description of the same pipe or terminal: O_NONBLOCK on it
		 * changes nothing for the other processes that share `fd`. */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		own = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (own >= 0) {
			o->fd = own;
			o->own = true;
			return;
		}
	}
	o->probe = true;
}

/* One write (send for a socket), retried on EINTR: the count or -errno. */
static ssize_t nbout_raw(const struct nbout *o, const void *buf, size_t len)
{
	ssize_t n;
	do
		n = o->sock ? send(o->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
			    : write(o->fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t nbout_write(const struct nbout *o, const void *buf, size_t len)
{
	ssize_t n;

	if (o->fd < 0)
		return -EBADF;
	if (o->probe) {
		int r = nbout_wait(o, 0);

		if (r <= 0)
			return r == 0 ? -EAGAIN : r;
		if (len > PIPE_BUF)
			len = PIPE_BUF;
	}
	if (!o->sigpipe) {
		n = nbout_raw(o, buf, len);
	} else {
		/* A pipe whose reader is gone raises SIGPIPE in the writing thread, which would
		 * kill a program embedding kvmini that never ignored it. Block it around the
		 * write and take back the one this write raised (one already pending stays the
		 * caller's). */
		sigset_t pipe_set, old, pending;
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
		sigpending(&pending);
		bool was_pending = sigismember(&pending, SIGPIPE);
		n = nbout_raw(o, buf, len);
		if (n == -EPIPE && !was_pending) {
			struct timespec now = {0, 0};
			while (sigtimedwait(&pipe_set, NULL, &now) < 0 && errno == EINTR) {
			}
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	if (n == -EWOULDBLOCK || n == 0)
		return -EAGAIN;
	return n;
}

int nbout_wait(const struct nbout *o, int timeout_ms)
{
	struct pollfd p = {.fd = o->fd, .events = POLLOUT};
	int r;

	if (o->fd < 0)
		return -EBADF;
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	if (p.revents & POLLNVAL)
		return -EBADF;
	/* POLLERR/POLLHUP: the reader is gone; the write itself reports it. */
	return 1;
}

void nbout_close(struct nbout *o)
{
	if (o->own && o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	o->own = false;
}
