/* uring: an io_uring that may do only what its owner needs.
 *
 * seccomp cannot see what an io_uring does: a thread allowed io_uring_enter could open files,
 * connect sockets or read any fd of the process through the ring (IORING_OP_OPENAT, _CONNECT,
 * _SOCKET, ...), whatever its filter says. So each ring kvmini sets up is created disabled,
 * given an allow-list of opcodes (IORING_REGISTER_RESTRICTIONS: no others, no SQE flags, no
 * further io_uring_register calls) and only then enabled; an opcode outside the list completes
 * with -EACCES. */
#ifndef KVMINI_URING_H
#define KVMINI_URING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uring_setup {
	const uint8_t *ops; /* the opcodes (IORING_OP_*) the ring may run */
	size_t nr_ops;
	/* io_uring's worker caps (bounded, unbounded); {0, 0} leaves the kernel's default. */
	unsigned int iowq_max[2];
};

/* What uring_init() got from the kernel. */
struct uring_got {
	bool restricted;  /* the allow-list holds (kernel 5.10 and later) */
	bool iowq_capped; /* the worker caps hold (kernel 5.15 and later) */
};

/* Set up `ring` with `entries` entries as `s` says. A kernel too old for restrictions or worker
 * caps still gets a ring, and `got` says what it lacks. Returns 0 or -errno (the ring is then not
 * set up). */
int uring_init(struct io_uring *ring, unsigned int entries, const struct uring_setup *s,
	       struct uring_got *got);

#endif
