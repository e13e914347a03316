/* vcpu: one virtual CPU, its KVM set-up (CPUID, MSRs, LAPIC, FPU) and its exit-loop thread. */
#ifndef KVMINI_VCPU_H
#define KVMINI_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

#include "kvmini/boot.h"
#include "kvmini/vmerr.h"

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int id;     /* also its APIC ID */
	int fd;		     /* -1 until created */
	struct kvm_run *run; /* the shared KVM_RUN page(s) */
	pthread_t thread;
	bool started;
	uint64_t exits; /* exits handled by this vCPU's thread */
};

/* Create vCPU `id` and give it CPUID (topology for `vm`'s CPU count), MSRs, LAPIC LINT0/1, FPU. */
int vcpu_init(struct vcpu *v, struct vm *vm, unsigned int id, struct vmerr *e);

/* Put the bootstrap processor into the entry state the boot loader asks for. */
int vcpu_set_boot_state(struct vcpu *v, const struct boot_info *bi, struct vmerr *e);

/* Start the thread (named "vcpuN") running the exit loop. */
int vcpu_start(struct vcpu *v, struct vmerr *e);

/* Make KVM_RUN return soon (the thread re-checks vm->stopping). Any thread. */
void vcpu_kick(struct vcpu *v);

/* Join the thread (if started) and close the fd. */
void vcpu_fini(struct vcpu *v);

/*
 * Fill CPUID leaf entries for vCPU `id` of `nr_cpus` in place: APIC IDs, logical counts,
 * the x2APIC topology leaves 0xB/0x1F, cache-sharing leaf 4, AMD 0x80000008/0x8000001E,
 * and the hypervisor bit. Pure function (unit-tested).
 */
void vcpu_patch_cpuid(struct kvm_cpuid2 *c, unsigned int id, unsigned int nr_cpus);

/*
 * Advertise the local APIC timer's TSC-deadline mode (CPUID.1:ECX[24]). KVM emulates it
 * whenever KVM_CAP_TSC_DEADLINE_TIMER is present, but KVM_GET_SUPPORTED_CPUID does not
 * report it: the VMM sets it, as QEMU and Firecracker do. Without it, Linux must keep the
 * PIT as its boot clock event and calibrate the APIC timer against it.
 */
void vcpu_cpuid_set_tsc_deadline(struct kvm_cpuid2 *c);

/* Install the signal handler used to kick vCPUs (once per process; idempotent). */
int vcpu_signal_setup(void);

#endif
