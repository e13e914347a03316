/* sandbox: `kvmini exec`: boot a throw-away microVM on a --rootfs, run one command through the
 * guest agent, relay its streams and exit with its status. */
#ifndef KVMINI_SANDBOX_H
#define KVMINI_SANDBOX_H

#include <stdint.h>
#include <stdio.h>

/*
 * `kvmini exec ...` (argv[1] is "exec"): returns the process's exit status: the command's, or
 * 124 (timeout), 125 (kvmini could not run it), 126, 127 (see sandbox_usage()). `t0_ns`:
 * kvmini's start (CLOCK_MONOTONIC) for the boot timer.
 */
int sandbox_main(int argc, char **argv, uint64_t t0_ns);

struct cli;
struct kvmini_error;

/*
 * `kvmini run --rootfs DIR`: turn `c` into the sandbox guest: the root image (built or taken
 * from the cache) as the first disk, read-only; kvmini's kernel and sandbox initramfs unless
 * given; "kvmini.agent=1" in front of the command line; a vsock device whose host socket is
 * `uds` (the VM's runtime folder's vsock.sock; NULL: none) unless --vsock named one. 0 or -errno
 * with `e` (status 125 for a bad --rootfs, as `kvmini exec`).
 */
int sandbox_prepare_run(struct cli *c, const char *uds, struct kvmini_error *e);

/*
 * Connect to the guest agent of running VM `name` through its runtime folder's vsock.sock
 * ("CONNECT 1024", then its "OK" line), retrying for up to `timeout_ms` while the guest comes
 * up. The socket, or -errno with `e` (status 125: no such running VM, no agent socket).
 */
int sandbox_connect(const char *name, int timeout_ms, struct kvmini_error *e);

/* Print `kvmini exec --help`. */
void sandbox_usage(FILE *f);

#endif
