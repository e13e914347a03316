/* test_nbout: writes to shared pipes, sockets and files never block and never change the fd. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/nbout.h"

/* Write until nothing fits; returns the bytes taken. */
static size_t fill(struct nbout *o)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;
	memset(buf, 'x', sizeof(buf));
	while ((n = nbout_write(o, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	assert_int_equal(n, -EAGAIN);
	return total;
}

static void test_pipe_reopened_privately(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	struct nbout o;
	nbout_open(&o, p[1], true);
	assert_true(o.own);
	assert_int_not_equal(o.fd, p[1]);
	/* The shared fd stays blocking: other processes using it see no change. */
	assert_int_equal(fcntl(p[1], F_GETFL) & O_NONBLOCK, 0);
	assert_true(fcntl(o.fd, F_GETFL) & O_NONBLOCK);
	/* A full pipe: -EAGAIN, no blocking; nbout_wait times out. */
	assert_true(fill(&o) >= 4096);
	assert_int_equal(nbout_wait(&o, 10), 0);
	char buf[4096];
	assert_true(read(p[0], buf, sizeof(buf)) > 0);
	assert_int_equal(nbout_wait(&o, 10), 1);
	nbout_close(&o);
	assert_int_equal(o.fd, -1);
	close(p[0]);
	close(p[1]);
}

static void test_pipe_probed_without_reopen(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	struct nbout o;
	nbout_open(&o, p[1], false);
	assert_true(o.probe);
	assert_int_equal(o.fd, p[1]);
	char big[8192];
	memset(big, 'y', sizeof(big));
	/* At most PIPE_BUF per write, so a pipe with room takes it whole, then -EAGAIN. */
	assert_int_equal(nbout_write(&o, big, sizeof(big)), 4096);
	assert_int_equal(nbout_write(&o, big, sizeof(big)), -EAGAIN);
	nbout_close(&o); /* borrowed: stays open */
	assert_true(fcntl(p[1], F_GETFD) >= 0);
	close(p[0]);
	close(p[1]);
}

static void test_socket_uses_dontwait(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct nbout o;
	nbout_open(&o, sv[0], true);
	assert_true(o.sock);
	assert_false(o.own);
	assert_true(fill(&o) > 0);
	assert_int_equal(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0);
	/* The reader is gone: an error, not SIGPIPE (MSG_NOSIGNAL). */
	close(sv[1]);
	char c = 'z';
	ssize_t r = nbout_write(&o, &c, 1);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	close(sv[0]);
}

static void test_regular_file_written_as_is(void **state)
{
	(void)state;
	char path[] = "/tmp/kvmini-test-nbout-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	struct nbout o;
	nbout_open(&o, fd, true);
	assert_false(o.own || o.sock || o.probe || o.sigpipe); /* a file: no SIGPIPE guard */
	assert_int_equal(nbout_write(&o, "abc", 3), 3);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 3);
	close(fd);
}

static void test_closed_pipe_reports_epipe(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct nbout o;
	nbout_open(&o, p[1], true);
	assert_true(o.sigpipe);
	close(p[0]);
	/* SIGPIPE left at its default (a program embedding kvmini may never touch it): the
	 * write must not kill the process, nor leave a SIGPIPE pending. */
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(nbout_write(&o, "x", 1), -EPIPE);
	assert_int_equal(nbout_write(&o, "y", 1), -EPIPE);
	sigset_t pending;
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));
	nbout_close(&o);
	close(p[1]);
}

static void test_no_fd(void **state)
{
	(void)state;
	struct nbout o;
	nbout_open(&o, -1, true);
	assert_int_equal(o.fd, -1);
	assert_int_equal(nbout_write(&o, "x", 1), -EBADF);
	assert_int_equal(nbout_wait(&o, 0), -EBADF);
	nbout_close(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipe_reopened_privately),
		cmocka_unit_test(test_pipe_probed_without_reopen),
		cmocka_unit_test(test_socket_uses_dontwait),
		cmocka_unit_test(test_regular_file_written_as_is),
		cmocka_unit_test(test_closed_pipe_reports_epipe),
		cmocka_unit_test(test_no_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
