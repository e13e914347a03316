/* runner: `kvmini run`: one VM, anonymous in the foreground, or managed (named, with a control
 * socket, in the foreground or detached in the background). */
#ifndef KVMINI_RUNNER_H
#define KVMINI_RUNNER_H

#include <stdint.h>

#include "kvmini/cli.h"

#define RUNNER_LOG_CAP (1 << 20) /* console.log bytes before it rotates to console.log.1 */
#define RUNNER_KILLED  (KVMINI_EXIT_SIGNAL + 9) /* destroyed: forced off, as by SIGKILL */

/*
 * Run the VM `c` describes and return the process's exit status (enum kvmini_status, or
 * CLI_EXIT_STATE when the name is taken). Managed when `c` has a name (--name, a config
 * file's "name") or --detach: the name is claimed in the runtime folder and the control
 * socket serves while the VM lives. Detached, the VM goes on in a child process; this
 * returns 0 once the guest runs, after printing its name. `t0_ns`: kvmini's start
 * (CLOCK_MONOTONIC), which the boot timer counts from.
 */
int runner_run(struct cli *c, uint64_t t0_ns);

#endif
