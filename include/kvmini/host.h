/* host: what the host machine can do for a VM (hardware virtualization, memory). */
#ifndef KVMINI_HOST_H
#define KVMINI_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/vmerr.h"

/*
 * Why standard guests would run slowly here, or NULL if the host has hardware virtualization:
 * PVM (a software KVM, /sys/module/kvm_pvm) or a CPU without vmx/svm. `sysfs` and `cpuinfo`
 * are normally "/sys" and "/proc/cpuinfo" (tests point them elsewhere).
 */
const char *host_slow_kvm_reason(const char *sysfs, const char *cpuinfo);

/* Refuse guest memory larger than this host's RAM: KVMINI_EXIT_RESOURCE with a message. */
int host_check_memory(uint64_t mem_size, struct vmerr *e);

#endif
