/* jail: `kvmini run --jail DIR --uid UID --gid GID`: the VMM in namespaces of its own, its root a
 * tmpfs over DIR that holds only what the VM needs, as an unprivileged user. */
#ifndef KVMINI_JAIL_H
#define KVMINI_JAIL_H

#include <stdbool.h>

#include "kvmini.h"
#include "kvmini/cli.h"

/* What the jail holds besides the VM's files: where they go, and the device nodes. */
#define JAIL_FILES "/files"

/*
 * Check --jail's preconditions before anything is made: root (the namespaces, the device
 * nodes, the drop to --uid/--gid), --uid and --gid given and not 0, DIR an existing directory
 * (not a link) owned by root and empty, every input file there, and no option the jail does
 * not take (--detach, --name, --rootfs, --image). One line in `e` (status 2 or 3) else.
 */
int jail_check(const struct cli *c, struct kvmini_error *e);

/*
 * Enter the jail. The calling process (single-threaded, the stop signals blocked and read on
 * `sfd`) joins --netns if given and makes new mount, PID, IPC and UTS namespaces, then forks:
 * the child, PID 1 there, mounts a tmpfs over DIR with /dev/{kvm,net/tun,null,zero,urandom},
 * the kernel, initrd and disks bind-mounted under /files (read-only ones read-only) and /proc,
 * pivots into it, sets the rlimits (NOFILE, NPROC, FSIZE: the largest writable disk), drops
 * to --gid/--uid with no supplementary groups and no capability, and returns 0 with `c`'s
 * paths now inside the jail. The parent forwards the stop signals to it, waits, and returns
 * 1 with `*status` the child's exit status (128 + N for a signal). -1 with `e` on failure
 * (in the parent: nothing is left behind; the tmpfs goes with the child's namespace).
 */
int jail_enter(struct cli *c, int sfd, int *status, struct kvmini_error *e);

#endif
