/* vcpu: one virtual CPU, its KVM set-up (CPUID, MSRs, LAPIC, FPU) and its exit-loop thread. */
#ifndef KVMINI_VCPU_H
#define KVMINI_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "kvmini/bus.h"
#include "kvmini/kvm_vm.h"
#include "kvmini/log.h"
#include "kvmini/trace.h"
#include "kvmini/vmerr.h"

/*
 * Run control shared by all vCPUs of a VM: stop (final) and pause (all vCPUs out of KVM_RUN
 * and parked until resume). Lock order: `lock` is a leaf (nothing is taken while holding it).
 */
struct vcpu_ctl {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* parked count changed, or pause/stop changed */
	atomic_bool stopping;
	atomic_bool pausing;
	unsigned int parked;  /* vCPU threads waiting in vcpu_park */
	unsigned int running; /* vCPU threads started and not yet returned */
};

/*
 * What a vCPU may see of its VM: the KVM VM, its buses, its logger and tracer, the run
 * control, and two hooks into the machine (never the machine itself).
 */
struct vcpu_env {
	const struct kvm_vm *kvm;
	unsigned int nr_cpus; /* for the CPUID topology */
	struct bus *pio, *mmio;
	struct logger *log;
	struct trace *trace;
	struct vcpu_ctl *ctl;
	/* Ask the VM to stop (first caller wins); `reason` is one line. Any thread. */
	void (*stop)(void *opaque, int status, const char *reason);
	/* Called by each vCPU thread just before its first KVM_RUN (may be NULL). */
	void (*first_run)(void *opaque);
	void *opaque;
	const struct confine *confine; /* the vCPU threads' seccomp filter, or NULL */
};

struct vcpu {
	const struct vcpu_env *env;
	unsigned int id;     /* also its APIC ID */
	int fd;		     /* -1 until created */
	struct kvm_run *run; /* the shared KVM_RUN page(s) */
	pthread_t thread;
	bool started;
	int kick_signal; /* set by vcpu_start */
	/* Exits by kind (enum kvmini_exit_kind); written by this vCPU's thread only, read with
	 * vcpu_exit_count() from any thread. */
	uint64_t exit_count[KVMINI_EXIT_KINDS];
};

/* Exits of `kind` (enum kvmini_exit_kind) so far; any thread. */
uint64_t vcpu_exit_count(const struct vcpu *v, unsigned int kind);

int vcpu_ctl_init(struct vcpu_ctl *ctl);
void vcpu_ctl_fini(struct vcpu_ctl *ctl);

/*
 * Mark the VM stopping and wake parked vCPUs (they return). The caller kicks the running
 * ones out of KVM_RUN with vcpu_kick(). Idempotent, any thread.
 */
void vcpu_ctl_stop(struct vcpu_ctl *ctl);

/*
 * Pause: kick each of the `n` vCPUs out of KVM_RUN and wait until every running vCPU thread
 * is parked (or has returned). 0, or -ESHUTDOWN when the VM stopped meanwhile. Not from a
 * vCPU thread. vcpu_ctl_resume() lets them go on.
 */
int vcpu_ctl_pause(struct vcpu_ctl *ctl, struct vcpu *v, unsigned int n);
void vcpu_ctl_resume(struct vcpu_ctl *ctl);

/* Create vCPU `id` and give it CPUID (topology for env->nr_cpus), MSRs, LAPIC LINT0/1, FPU. */
int vcpu_init(struct vcpu *v, const struct vcpu_env *env, unsigned int id, struct vmerr *e);

/* Load the register state a boot loader computed (kvm_regs and kvm_sregs, filled by `fill`
 * on top of the vCPU's reset sregs). */
int vcpu_set_entry_state(struct vcpu *v,
			 void (*fill)(const void *arg, struct kvm_regs *r, struct kvm_sregs *s),
			 const void *arg, struct vmerr *e);

/* Start the thread (named "vcpuN") running the exit loop. Every signal but the kick signal
 * is blocked in it. */
int vcpu_start(struct vcpu *v, int kick_signal, struct vmerr *e);

/* Make KVM_RUN return soon (the thread re-checks the run control). Any thread, but never
 * after vcpu_fini() (the machine kicks only under its stop lock or life lock). */
void vcpu_kick(struct vcpu *v);

/* Join the thread (if started; the VM must be stopping) and close the fd. */
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

/*
 * The kick signal's handler (it does nothing; its arrival makes KVM_RUN return EINTR).
 * Installs it for `signo` unless that signal already has a handler other than this one:
 * then -EBUSY. Process-wide, so the library does it only where kvmini.h documents it.
 */
int vcpu_signal_setup(int signo);

#endif
