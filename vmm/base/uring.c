/* uring: an io_uring restricted to the opcodes its owner needs; see include/kvmini/uring.h. */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvmini/uring.h"

/* IORING_OP_LAST is the kernel's bound on opcodes; restrictions index a bitmap by opcode. */
#define URING_MAX_OPS 64

/* io_uring_register(2) itself: Debian's liburing 2.3 declares io_uring_register_restrictions
 * and io_uring_enable_rings but its shared library does not export them. */
static int uring_register(struct io_uring *ring, unsigned int op, const void *arg, unsigned int n)
{
	long r = syscall(__NR_io_uring_register, ring->ring_fd, op, arg, n);
	return r < 0 ? -errno : 0;
}

static int uring_restrict(struct io_uring *ring, const struct uring_setup *s)
{
	struct io_uring_restriction res[URING_MAX_OPS + 1];
	if (s->nr_ops > URING_MAX_OPS)
		return -EINVAL;
	memset(res, 0, sizeof(res));
	unsigned int n = 0;
	for (size_t i = 0; i < s->nr_ops; i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n].sqe_op = s->ops[i];
		n++;
	}
	/* No SQE flag at all: no fixed files, links, drains or buffer selection. No
	 * IORING_RESTRICTION_REGISTER_OP entry: once enabled, the ring takes no register call. */
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n].sqe_flags = 0;
	n++;
	return uring_register(ring, IORING_REGISTER_RESTRICTIONS, res, n);
}

int uring_init(struct io_uring *ring, unsigned int entries, const struct uring_setup *s,
	       struct uring_got *got)
{
	memset(got, 0, sizeof(*got));
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_R_DISABLED;
	int ret = io_uring_queue_init_params(entries, ring, &p);
	bool disabled = ret == 0;
	if (ret == -EINVAL) /* before 5.10: no disabled rings, so no restrictions */
		ret = io_uring_queue_init(entries, ring, 0);
	if (ret < 0)
		return ret;
	/* The caps first: once restricted, the ring refuses register calls. */
	if (s->iowq_max[0] || s->iowq_max[1]) {
		unsigned int lim[2] = {s->iowq_max[0], s->iowq_max[1]};
		got->iowq_capped = io_uring_register_iowq_max_workers(ring, lim) == 0;
	}
	if (!disabled)
		return 0;
	/* A kernel with disabled rings (5.10) has every restriction used here. */
	ret = uring_restrict(ring, s);
	if (ret < 0)
		goto fail;
	got->restricted = true;
	ret = uring_register(ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	io_uring_queue_exit(ring);
	return ret;
}
