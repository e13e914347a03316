/* sbroot: the sandbox guest's root, mounted by the agent itself (kvmini-agent --sandbox). */
#ifndef KVMINI_AGENT_SBROOT_H
#define KVMINI_AGENT_SBROOT_H

#include <stddef.h>

/*
 * Mount the sandbox root at `newroot` with system calls only (no helper processes: under
 * emulation each fork and exec of a mount tool costs more than the mount):
 *   /rom       the read-only EROFS image on /dev/vda
 *   /rw        tmpfs for the writable layer (upper/ and work/), so writes live in guest memory
 *   newroot    overlayfs of the two, with proc, sysfs, /dev (bound, with devpts on /dev/pts)
 *              and a tmpfs /tmp inside
 * and bring the loopback interface up. The image is read ahead 4 MiB at a time (sbroot.c).
 * 0, or -errno with a one-line reason in `msg`.
 */
int sbroot_mount(const char *newroot, char *msg, size_t msglen);

#endif
