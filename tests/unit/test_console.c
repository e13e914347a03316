/* test_console: the output ring never blocks and counts drops; input follows the FIFO; escapes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/console.h"

/* A UART whose callbacks go to the console, as in the VM (no interrupt line). */
static int fake_irq(void *opaque, int level)
{
	(void)opaque;
	(void)level;
	return 0;
}

static void via_console_tx(void *opaque, uint8_t b)
{
	console_uart_ops.tx(opaque, b);
}

static void via_console_room(void *opaque)
{
	console_uart_ops.rx_room(opaque);
}

static const struct uart_ops ops = {fake_irq, via_console_tx, via_console_room};

static uint8_t rd(struct uart *u, unsigned int off)
{
	uint8_t v = 0;
	uart_io(u, off, &v, 1, false);
	return v;
}

static void wr(struct uart *u, unsigned int off, uint8_t v)
{
	uart_io(u, off, &v, 1, true);
}

static void test_output_ring_drops_when_full(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct console c;
	struct uart u;
	assert_int_equal(console_init(&c, -1, p[1]), 0);
	uart_init(&u, &ops, &c);
	/* Nobody drains: the guest writes more than the ring holds and is never blocked. */
	for (size_t i = 0; i < CONSOLE_OUT_BUF + 100; i++)
		wr(&u, 0, (uint8_t)('a' + i % 26));
	assert_int_equal(c.len, CONSOLE_OUT_BUF);
	assert_int_equal(atomic_load(&c.dropped), 100);
	/* The first bytes are the ones kept, in order; the pipe is made large enough to take
	 * the whole ring so the blocking flush returns. */
	uart_fini(&u);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 1024 * 1024) >= CONSOLE_OUT_BUF);
	char buf[32];
	console_flush(&c);
	assert_int_equal(c.len, 0);
	assert_int_equal(read(p[0], buf, 5), 5);
	assert_memory_equal(buf, "abcde", 5);
	console_fini(&c);
	close(p[0]);
	close(p[1]);
}

static void test_output_discarded_without_fd(void **state)
{
	(void)state;
	struct console c;
	struct uart u;
	assert_int_equal(console_init(&c, -1, -1), 0);
	uart_init(&u, &ops, &c);
	wr(&u, 0, 'x');
	assert_int_equal(c.len, 0);
	assert_int_equal(atomic_load(&c.dropped), 0);
	uart_fini(&u);
	console_fini(&c);
}

struct loop {
	struct console c;
	struct uart u;
	int in[2], out[2], stop;
};

static void loop_setup(struct loop *l)
{
	assert_int_equal(pipe(l->in), 0);
	assert_int_equal(pipe(l->out), 0);
	l->stop = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(console_init(&l->c, l->in[0], l->out[1]), 0);
	uart_init(&l->u, &ops, &l->c);
}

static void loop_teardown(struct loop *l)
{
	uart_fini(&l->u);
	console_fini(&l->c);
	close(l->in[0]);
	close(l->in[1]);
	close(l->out[0]);
	close(l->out[1]);
	close(l->stop);
}

struct stopper {
	struct loop *l;
	size_t until_room; /* stop the loop once uart_rx_room() is this */
};

static void *stop_at_room(void *arg)
{
	struct stopper *s = arg;
	for (int i = 0; i < 2000 && uart_rx_room(&s->l->u) != s->until_room; i++)
		usleep(1000);
	usleep(20000); /* give the loop the chance to (wrongly) read more */
	uint64_t one = 1;
	assert_int_equal(write(s->l->stop, &one, 8), 8);
	return NULL;
}

static size_t pipe_left(int fd)
{
	int n = 0;
	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return (size_t)n;
}

static void test_input_only_as_fast_as_fifo_drains(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	char data[40];
	memset(data, 'z', sizeof(data));
	assert_int_equal(write(l.in[1], data, sizeof(data)), (ssize_t)sizeof(data));

	/* No guest reads: the loop takes one FIFO's worth and leaves the rest in the pipe. */
	struct stopper s = {&l, 0};
	pthread_t t;
	pthread_create(&t, NULL, stop_at_room, &s);
	assert_int_equal(console_loop(&l.c, &l.u, l.stop, -1), 0);
	pthread_join(t, NULL);
	assert_int_equal(uart_rx_room(&l.u), 0);
	assert_int_equal(pipe_left(l.in[0]), sizeof(data) - UART_FIFO_SIZE);

	/* The guest drains the FIFO: the loop is woken and takes the next 16 bytes. */
	uint64_t v;
	assert_int_equal(read(l.stop, &v, 8), 8);
	for (int i = 0; i < UART_FIFO_SIZE; i++)
		assert_int_equal(rd(&l.u, 0), 'z');
	pthread_create(&t, NULL, stop_at_room, &s);
	assert_int_equal(console_loop(&l.c, &l.u, l.stop, -1), 0);
	pthread_join(t, NULL);
	assert_int_equal(pipe_left(l.in[0]), sizeof(data) - 2 * UART_FIFO_SIZE);
	loop_teardown(&l);
}

static void test_escape_quit_and_literal(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	/* "a", Ctrl-A Ctrl-A (one literal Ctrl-A), Ctrl-A q (dropped), "b", Ctrl-A x (quit). */
	const char in[] = "a\001\001\001qb\001x";
	assert_int_equal(write(l.in[1], in, sizeof(in) - 1), (ssize_t)sizeof(in) - 1);
	assert_int_equal(console_loop(&l.c, &l.u, l.stop, -1), CONSOLE_QUIT);
	assert_int_equal(rd(&l.u, 0), 'a');
	assert_int_equal(rd(&l.u, 0), 0x01);
	assert_int_equal(rd(&l.u, 0), 'b');
	assert_int_equal(rd(&l.u, 5) & 1, 0); /* nothing else */
	loop_teardown(&l);
}

static void test_eof_stops_reading_not_the_vm(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	close(l.in[1]);
	l.in[1] = open("/dev/null", O_WRONLY);
	/* EOF on input: the loop keeps running until stop fires. */
	uint64_t one = 1;
	assert_int_equal(write(l.stop, &one, 8), 8);
	assert_int_equal(console_loop(&l.c, &l.u, l.stop, -1), 0);
	loop_teardown(&l);
}

static void test_output_written_by_loop(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	wr(&l.u, 0, 'h');
	wr(&l.u, 0, 'i');
	uint64_t one = 1;
	assert_int_equal(write(l.stop, &one, 8), 8);
	assert_int_equal(console_loop(&l.c, &l.u, l.stop, -1), 0);
	char buf[8];
	assert_int_equal(read(l.out[0], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	loop_teardown(&l);
}

/* A console loop on its own thread, so a test can tell "returned" from "blocked". */
struct looper {
	struct loop *l;
	int sig_fd;
	int result;
};

static void *run_loop(void *arg)
{
	struct looper *lp = arg;
	lp->result = console_loop(&lp->l->c, &lp->l->u, lp->l->stop, lp->sig_fd);
	return NULL;
}

/* A paused VM: held input stays in the host pipe; released, it flows into the FIFO again. */
static void test_held_input_stays_out_of_the_uart(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	assert_int_equal(write(l.in[1], "abc", 3), 3);
	console_hold_input(&l.c, true);
	struct looper lp = {.l = &l, .sig_fd = -1};
	pthread_t t;
	pthread_create(&t, NULL, run_loop, &lp);
	usleep(100000); /* time to (wrongly) read */
	assert_int_equal(uart_rx_room(&l.u), UART_FIFO_SIZE);
	assert_int_equal(pipe_left(l.in[0]), 3);

	console_hold_input(&l.c, false); /* wakes the loop */
	for (int i = 0; i < 1000 && uart_rx_room(&l.u) == UART_FIFO_SIZE; i++)
		usleep(1000);
	assert_int_equal(uart_rx_room(&l.u), UART_FIFO_SIZE - 3);
	assert_int_equal(rd(&l.u, 0), 'a');
	uint64_t one = 1;
	assert_int_equal(write(l.stop, &one, 8), 8);
	pthread_join(t, NULL);
	assert_int_equal(lp.result, CONSOLE_STOP);
	loop_teardown(&l);
}

/* Join `t` within `ms`; when it is stuck, drain `unblock_fd` (the output pipe the thread
 * may be blocked on) until it returns, so the test fails instead of hanging. */
static bool joined_within(pthread_t t, int ms, int unblock_fd)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(t, NULL, &ts) == 0)
		return true;
	char buf[65536];
	fcntl(unblock_fd, F_SETFL, O_NONBLOCK);
	for (int i = 0; pthread_tryjoin_np(t, NULL) != 0; i++) {
		if (read(unblock_fd, buf, sizeof(buf)) <= 0)
			usleep(1000);
		if (i == 2000) { /* not blocked on output but spinning: poll() is a cancel point */
			pthread_cancel(t);
			pthread_join(t, NULL);
			break;
		}
	}
	return false;
}

/* Fill the ring with `n` bytes of guest output into an output pipe of one page that
 * nobody reads. */
static void stall_output(struct loop *l, size_t n)
{
	assert_true(fcntl(l->out[1], F_SETPIPE_SZ, 4096) >= 4096);
	for (size_t i = 0; i < n; i++)
		wr(&l->u, 0, (uint8_t)('a' + i % 26));
}

static void test_stalled_reader_does_not_delay_stop(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	stall_output(&l, 64 * 1024);
	struct looper lp = {&l, -1, -99};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, run_loop, &lp), 0);
	usleep(100000); /* the loop has filled the pipe and waits for room */
	uint64_t one = 1;
	assert_int_equal(write(l.stop, &one, 8), 8);
	/* The stop wins at once, though the reader never reads. */
	assert_true(joined_within(t, 2000, l.out[0]));
	assert_int_equal(lp.result, CONSOLE_STOP);
	assert_true(l.c.len > 0); /* the rest waits; the loop never blocked on it */
	/* Guest output keeps going into the ring meanwhile: the vCPU side never blocks. */
	wr(&l.u, 0, 'z');
	loop_teardown(&l);
}

static void test_stalled_reader_does_not_delay_signal(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	stall_output(&l, 64 * 1024);
	int sig[2];
	assert_int_equal(pipe(sig), 0);
	struct looper lp = {&l, sig[0], -99};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, run_loop, &lp), 0);
	usleep(100000);
	/* What a signalfd would deliver for SIGTERM. */
	struct signalfd_siginfo si = {.ssi_signo = SIGTERM};
	assert_int_equal(write(sig[1], &si, sizeof(si)), (ssize_t)sizeof(si));
	assert_true(joined_within(t, 2000, l.out[0]));
	assert_int_equal(lp.result, SIGTERM);
	close(sig[0]);
	close(sig[1]);
	loop_teardown(&l);
}

struct flusher {
	struct console *c;
};

static void *run_flush(void *arg)
{
	console_flush(((struct flusher *)arg)->c);
	return NULL;
}

static void test_flush_gives_up_on_stalled_reader(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	stall_output(&l, 64 * 1024);
	struct flusher f = {&l.c};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, run_flush, &f), 0);
	/* Bounded by CONSOLE_FLUSH_IDLE_MS once the reader takes nothing. */
	assert_true(joined_within(t, CONSOLE_FLUSH_IDLE_MS + 1500, l.out[0]));
	assert_int_equal(l.c.len, 0);
	/* Whatever did not fit in the pipe is counted as dropped. */
	assert_int_equal(atomic_load(&l.c.dropped) + pipe_left(l.out[0]), 64 * 1024);
	assert_true(atomic_load(&l.c.dropped) > 0);
	loop_teardown(&l);
}

static void test_flush_keeps_up_with_slow_reader(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	stall_output(&l, 32 * 1024);
	struct flusher f = {&l.c};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, run_flush, &f), 0);
	/* A reader that takes a page every 50 ms gets every byte. */
	char buf[32 * 1024];
	size_t got = 0;
	while (got < sizeof(buf)) {
		usleep(50000);
		ssize_t n = read(l.out[0], buf + got, 4096);
		assert_true(n > 0);
		got += (size_t)n;
	}
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&l.c.dropped), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'a' + i % 26);
	loop_teardown(&l);
}

static void test_poll_failure_is_an_error(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* poll() fails with EINVAL when asked for more fds than RLIMIT_NOFILE. */
		struct rlimit rl = {1, 1};
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			_exit(3);
		int r = console_loop(&l.c, &l.u, l.stop, -1);
		_exit(r == -EINVAL ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	loop_teardown(&l);
}

static void test_closed_stop_fd_is_an_error(void **state)
{
	(void)state;
	struct loop l;
	loop_setup(&l);
	int stop = l.stop;
	l.stop = open("/dev/null", O_RDONLY);
	close(l.stop); /* an fd number nothing is open on */
	struct looper lp = {&l, -1, -99};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, run_loop, &lp), 0);
	assert_true(joined_within(t, 2000, l.out[0]));
	assert_int_equal(lp.result, -EBADF);
	l.stop = stop;
	loop_teardown(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_ring_drops_when_full),
		cmocka_unit_test(test_output_discarded_without_fd),
		cmocka_unit_test(test_input_only_as_fast_as_fifo_drains),
		cmocka_unit_test(test_escape_quit_and_literal),
		cmocka_unit_test(test_held_input_stays_out_of_the_uart),
		cmocka_unit_test(test_eof_stops_reading_not_the_vm),
		cmocka_unit_test(test_output_written_by_loop),
		cmocka_unit_test(test_stalled_reader_does_not_delay_stop),
		cmocka_unit_test(test_stalled_reader_does_not_delay_signal),
		cmocka_unit_test(test_flush_gives_up_on_stalled_reader),
		cmocka_unit_test(test_flush_keeps_up_with_slow_reader),
		cmocka_unit_test(test_poll_failure_is_an_error),
		cmocka_unit_test(test_closed_stop_fd_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
