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

/* Print `kvmini exec --help`. */
void sandbox_usage(FILE *f);

#endif
