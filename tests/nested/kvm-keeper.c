// tests/nested/kvm-keeper.c: hold one idle VM open in L2 so that later VMs starting and
// stopping do not make L2's kernel patch its own code (see README.md, "The wedge").
//
//   kvm-keeper [/dev/kvm]
//
// Creates a VM with the in-kernel irqchip and one vCPU, never runs it, prints one line
// "kvm-keeper: holding VM fd N, vCPU fd M" and sleeps until a signal ends it. While it
// lives, L2's KVM keeps these above zero, so their 0 <-> 1 transitions (each a live patch of
// kernel text through text_poke_bp, with IPIs to every CPU) stop happening per VM:
//   kvm_usage_count (virt/kvm/kvm_main.c: hardware_enable_all/disable_all, EFER.SVME on
//   every CPU by IPI), preempt_notifier_key (kvm_create_vm/kvm_destroy_vm) and
//   apic_sw_disabled (arch/x86/kvm/lapic.c: a vCPU's LAPIC is software-disabled until its
//   guest enables it; this vCPU never runs, so it stays counted) and apic_hw_disabled (the
//   keeper clears its vCPU's APIC base enable bit, so that one stays counted too).
// With PR_SET_PDEATHSIG it ends with its parent. Exit status 1 when the VM cannot be made.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "kvm-keeper: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/kvm";
	struct {
		struct kvm_msrs head;
		struct kvm_msr_entry entry;
	} apic_off = {.head.nmsrs = 1, .entry.index = 0x1b /* IA32_APIC_BASE */, .entry.data = 0};
	int kvm, vm, vcpu;

	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		return fail("PR_SET_PDEATHSIG");
	kvm = open(dev, O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail(dev);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail("KVM_CREATE_IRQCHIP");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		return fail("KVM_CREATE_VCPU");
	int set = ioctl(vcpu, KVM_SET_MSRS, &apic_off);
	if (set != 1) {
		errno = set < 0 ? errno : EINVAL; /* 0: KVM refused that MSR value */
		return fail("KVM_SET_MSRS IA32_APIC_BASE");
	}
	printf("kvm-keeper: holding VM fd %d, vCPU fd %d\n", vm, vcpu);
	fflush(stdout);
	for (;;)
		pause();
}
