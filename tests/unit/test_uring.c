/* test_uring: a restricted io_uring runs its opcodes and refuses every other one. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/uring.h"

static const uint8_t rw_ops[] = {IORING_OP_READ, IORING_OP_WRITE};

/* Submit the one SQE the caller prepared and return its completion's result. */
static int run_one(struct io_uring *ring)
{
	assert_int_equal(io_uring_submit(ring), 1);
	struct io_uring_cqe *cqe;
	assert_int_equal(io_uring_wait_cqe(ring, &cqe), 0);
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return res;
}

static void test_allowed_opcodes_run(void **state)
{
	struct io_uring ring;
	struct uring_got got;
	struct uring_setup s = {.ops = rw_ops, .nr_ops = 2, .iowq_max = {2, 2}};
	assert_int_equal(uring_init(&ring, 8, &s, &got), 0);
	assert_true(got.restricted); /* every kernel this runs on has 5.10's restrictions */
	assert_true(got.iowq_capped);
	int p[2];
	assert_int_equal(pipe(p), 0);
	char out[] = "through the ring", in[sizeof(out)] = {0};
	io_uring_prep_write(io_uring_get_sqe(&ring), p[1], out, sizeof(out), 0);
	assert_int_equal(run_one(&ring), (int)sizeof(out));
	io_uring_prep_read(io_uring_get_sqe(&ring), p[0], in, sizeof(in), 0);
	assert_int_equal(run_one(&ring), (int)sizeof(in));
	assert_string_equal(in, out);
	close(p[0]);
	close(p[1]);
	io_uring_queue_exit(&ring);
}

static void test_other_opcodes_flags_and_register_refused(void **state)
{
	struct io_uring ring;
	struct uring_got got;
	struct uring_setup s = {.ops = rw_ops, .nr_ops = 2};
	assert_int_equal(uring_init(&ring, 8, &s, &got), 0);
	assert_true(got.restricted);
	assert_false(got.iowq_capped); /* none asked */
	/* What a thread that took over its device would try: open a file, make a socket. */
	io_uring_prep_openat(io_uring_get_sqe(&ring), AT_FDCWD, "/etc/passwd", O_RDONLY, 0);
	assert_int_equal(run_one(&ring), -EACCES);
	io_uring_prep_socket(io_uring_get_sqe(&ring), AF_INET, SOCK_STREAM, 0, 0);
	assert_int_equal(run_one(&ring), -EACCES);
	io_uring_prep_nop(io_uring_get_sqe(&ring));
	assert_int_equal(run_one(&ring), -EACCES);
	/* An allowed opcode with an SQE flag (here: run it in a worker) is refused too. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	char c = 'x';
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_write(sqe, p[1], &c, 1, 0);
	io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	assert_int_equal(run_one(&ring), -EACCES);
	/* And no register call once enabled: no new files, buffers, caps or probes. */
	unsigned int lim[2] = {64, 64};
	assert_int_equal(io_uring_register_iowq_max_workers(&ring, lim), -EACCES);
	assert_int_equal(io_uring_register_files(&ring, p, 2), -EACCES);
	close(p[0]);
	close(p[1]);
	io_uring_queue_exit(&ring);
}

static void test_too_many_opcodes(void **state)
{
	uint8_t ops[65];
	memset(ops, IORING_OP_READ, sizeof(ops));
	struct io_uring ring;
	struct uring_got got;
	struct uring_setup s = {.ops = ops, .nr_ops = sizeof(ops)};
	int before = open("/dev/null", O_RDONLY);
	assert_true(before >= 0);
	close(before);
	assert_int_equal(uring_init(&ring, 8, &s, &got), -EINVAL);
	/* The ring it had set up is gone again: the next fd is the one before. */
	int after = open("/dev/null", O_RDONLY);
	assert_int_equal(after, before);
	close(after);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed_opcodes_run),
		cmocka_unit_test(test_other_opcodes_flags_and_register_refused),
		cmocka_unit_test(test_too_many_opcodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
