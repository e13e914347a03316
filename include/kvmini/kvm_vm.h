/* kvm_vm: the KVM system fd and one VM fd: capability checks, memory slots, irqchip, eventfds. */
#ifndef KVMINI_KVM_VM_H
#define KVMINI_KVM_VM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/gmem.h"
#include "kvmini/vmerr.h"

struct kvm_vm {
	int kvm_fd;		  /* /dev/kvm, -1 until opened */
	int vm_fd;		  /* the VM, -1 until created */
	int vcpu_mmap_size;	  /* size of each vCPU's kvm_run mapping */
	struct kvm_cpuid2 *cpuid; /* what KVM supports; each vCPU gets a patched copy */
	bool tsc_deadline;	  /* KVM_CAP_TSC_DEADLINE_TIMER */
};

/*
 * Open `path` (NULL: /dev/kvm), check API version 12 and every capability kvmini uses, that
 * `cpus` vCPUs are allowed, and read the supported CPUID. Then create the VM with its TSS,
 * identity map, in-kernel irqchip and PIT. 0, or -errno with one line in `e`; on failure
 * kvm_vm_close() undoes what was done.
 */
int kvm_vm_open(struct kvm_vm *k, const char *path, unsigned int cpus, struct vmerr *e);

/* Register every region of `mem` as a memory slot (slot i = region i). 0 or -errno. */
int kvm_vm_map_memory(struct kvm_vm *k, const struct gmem *mem, struct vmerr *e);

/* Set the level of a legacy interrupt line (GSI) on the in-kernel irqchip. 0 or -errno. */
int kvm_vm_irq_line(struct kvm_vm *k, unsigned int gsi, int level);

/* A 4-byte guest write of `match` to MMIO `addr` signals eventfd `fd` in the kernel. */
int kvm_vm_ioeventfd(struct kvm_vm *k, uint64_t addr, uint32_t match, int fd);

/* Signalling eventfd `fd` raises GSI `gsi` (edge) in the kernel. 0 or -errno. */
int kvm_vm_irqfd(struct kvm_vm *k, int fd, unsigned int gsi);

/* Close both fds and free the CPUID table. Safe on a zeroed-with-fds(-1) or half-open k. */
void kvm_vm_close(struct kvm_vm *k);

#endif
