/* vcpu: create and configure a vCPU, and run its exit loop (the one switch on exit_reason). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmini/host.h"
#include "kvmini/vcpu.h"
#include "kvmini/vm.h"

/* The signal that kicks a vCPU thread out of KVM_RUN (its handler does nothing). */
#define VCPU_KICK_SIGNAL (SIGRTMIN + 2)

/* MSR numbers (Intel SDM vol. 4) set at reset, as Firecracker and kvmtool do. */
#define MSR_IA32_TSC		0x10
#define MSR_IA32_SYSENTER_CS	0x174
#define MSR_IA32_SYSENTER_ESP	0x175
#define MSR_IA32_SYSENTER_EIP	0x176
#define MSR_IA32_MISC_ENABLE	0x1a0
#define MSR_MTRR_DEF_TYPE	0x2ff
#define MSR_STAR		0xc0000081
#define MSR_LSTAR		0xc0000082
#define MSR_CSTAR		0xc0000083
#define MSR_SYSCALL_MASK	0xc0000084
#define MSR_KERNEL_GS_BASE	0xc0000102
#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE_WB		((1ULL << 11) | 6) /* MTRRs on, default type write-back */

/* Local APIC register offsets and delivery modes (Intel SDM vol. 3, 10.5.1). */
#define APIC_LVT0	 0x350
#define APIC_LVT1	 0x360
#define APIC_MODE_NMI	 0x4
#define APIC_MODE_EXTINT 0x7

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signal_setup(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return -EINTR. */
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* Number of bits needed to hold an ID in [0, n). */
static uint32_t vcpu_id_bits(unsigned int n)
{
	uint32_t bits = 0;
	while ((1u << bits) < n)
		bits++;
	return bits;
}

/*
 * Topology: one package of nr_cpus cores, one thread per core, APIC ID = vCPU index.
 * The guest reads it from leaves 1, 4, 0xB/0x1F (Intel) and 0x80000008/0x8000001E (AMD).
 */
void vcpu_patch_cpuid(struct kvm_cpuid2 *c, unsigned int id, unsigned int nr_cpus)
{
	uint32_t core_bits = vcpu_id_bits(nr_cpus);

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *ent = &c->entries[i];
		switch (ent->function) {
		case 1:
			/* EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package. */
			ent->ebx = (ent->ebx & 0xffff) | (id << 24) | ((nr_cpus & 0xff) << 16);
			ent->ecx |= 1u << 31; /* running under a hypervisor */
			if (nr_cpus > 1)
				ent->edx |= 1u << 28; /* HTT: the field above is valid */
			else
				ent->edx &= ~(1u << 28);
			break;
		case 4:
			/* EAX[31:26] cores per package - 1; EAX[25:14] threads sharing this cache
			 * - 1: one thread per core, so only a level-3 cache is shared. */
			ent->eax &= 0x3fff;
			ent->eax |= (nr_cpus - 1) << 26;
			if (((ent->eax >> 5) & 7) == 3)
				ent->eax |= (nr_cpus - 1) << 14;
			break;
		case 0xb:
		case 0x1f:
			/* Subleaf 0: SMT level, 1 thread; subleaf 1: core level, nr_cpus. */
			ent->edx = id;
			if (ent->index == 0) {
				ent->eax = 0;
				ent->ebx = 1;
				ent->ecx = (1u << 8) | 0;
			} else if (ent->index == 1) {
				ent->eax = core_bits;
				ent->ebx = nr_cpus;
				ent->ecx = (2u << 8) | 1;
			} else {
				ent->eax = 0;
				ent->ebx = 0;
				ent->ecx = ent->index & 0xff;
			}
			break;
		case 0x80000008:
			/* ECX[15:12] APIC ID size, ECX[7:0] number of cores - 1. */
			ent->ecx = (ent->ecx & ~0xf0ffu) | (core_bits << 12) | (nr_cpus - 1);
			break;
		case 0x8000001e:
			ent->eax = id;	      /* extended APIC ID */
			ent->ebx = id & 0xff; /* compute unit ID, 1 thread per unit */
			ent->ecx = 0;	      /* one node */
			break;
		default:
			break;
		}
	}
}

void vcpu_cpuid_set_tsc_deadline(struct kvm_cpuid2 *c)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= 1u << 24; /* TSC-deadline mode of the APIC timer */
}

static int vcpu_setup_cpuid(struct vcpu *v, struct vmerr *e)
{
	struct kvm_cpuid2 *src = v->vm->cpuid;
	size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "CPUID table");
	memcpy(c, src, sz);
	vcpu_patch_cpuid(c, v->id, v->vm->cfg.cpus);
	if (ioctl(v->vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		vcpu_cpuid_set_tsc_deadline(c);
	int ret = ioctl(v->fd, KVM_SET_CPUID2, c);
	int err = errno;
	free(c);
	if (ret < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, err, "KVM_SET_CPUID2 for vcpu%u failed",
				 v->id);
	return 0;
}

static int vcpu_setup_msrs(struct vcpu *v, struct vmerr *e)
{
	static const struct {
		uint32_t index;
		uint64_t data;
	} init[] = {
		{MSR_IA32_SYSENTER_CS, 0},
		{MSR_IA32_SYSENTER_ESP, 0},
		{MSR_IA32_SYSENTER_EIP, 0},
		{MSR_STAR, 0},
		{MSR_LSTAR, 0},
		{MSR_CSTAR, 0},
		{MSR_KERNEL_GS_BASE, 0},
		{MSR_SYSCALL_MASK, 0},
		{MSR_IA32_TSC, 0},
		{MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING},
		{MSR_MTRR_DEF_TYPE, MTRR_ENABLE_WB},
	};
	const unsigned int n = sizeof(init) / sizeof(init[0]);
	struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
	if (!m)
		return vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "MSR table");
	m->nmsrs = n;
	for (unsigned int i = 0; i < n; i++) {
		m->entries[i].index = init[i].index;
		m->entries[i].data = init[i].data;
	}
	int ret = ioctl(v->fd, KVM_SET_MSRS, m);
	int err = errno;
	uint32_t refused = ret >= 0 && (unsigned int)ret < n ? m->entries[ret].index : 0;
	free(m);
	if (ret < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, err, "KVM_SET_MSRS for vcpu%u failed", v->id);
	/* KVM_SET_MSRS returns how many it set: the first one refused names itself. */
	if ((unsigned int)ret != n)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				 "this KVM refused to set MSR 0x%x on vcpu%u", refused, v->id);
	return 0;
}

/* LINT0 receives the 8259 PIC's ExtINT, LINT1 the NMI, as on a PC (MP spec 5.1). */
static int vcpu_setup_lapic(struct vcpu *v, struct vmerr *e)
{
	struct kvm_lapic_state la;
	if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_GET_LAPIC failed");
	uint32_t lvt0, lvt1;
	memcpy(&lvt0, &la.regs[APIC_LVT0], 4);
	memcpy(&lvt1, &la.regs[APIC_LVT1], 4);
	lvt0 = (lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	lvt1 = (lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
	memcpy(&la.regs[APIC_LVT0], &lvt0, 4);
	memcpy(&la.regs[APIC_LVT1], &lvt1, 4);
	if (ioctl(v->fd, KVM_SET_LAPIC, &la) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_LAPIC failed");
	return 0;
}

static int vcpu_setup_fpu(struct vcpu *v, struct vmerr *e)
{
	struct kvm_fpu fpu;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;    /* x87 default control word */
	fpu.mxcsr = 0x1f80; /* SSE: all exceptions masked */
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_FPU failed");
	return 0;
}

int vcpu_init(struct vcpu *v, struct vm *vm, unsigned int id, struct vmerr *e)
{
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "KVM_CREATE_VCPU %u failed", id);
	void *run = mmap(NULL, (size_t)vm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 v->fd, 0);
	if (run == MAP_FAILED)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "mmap of vcpu%u's kvm_run failed", id);
	v->run = run;
	int ret = vcpu_setup_cpuid(v, e);
	if (!ret)
		ret = vcpu_setup_msrs(v, e);
	if (!ret)
		ret = vcpu_setup_lapic(v, e);
	if (!ret)
		ret = vcpu_setup_fpu(v, e);
	return ret;
}

int vcpu_set_boot_state(struct vcpu *v, const struct boot_info *bi, struct vmerr *e)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_GET_SREGS failed");
	memset(&regs, 0, sizeof(regs));
	boot_cpu_state(bi, &regs, &sregs);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_SREGS failed");
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_REGS failed");
	return 0;
}

static uint64_t vcpu_rip(struct vcpu *v)
{
	struct kvm_regs regs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return ~0ULL;
	return regs.rip;
}

/* Port I/O: `count` > 1 for string instructions (rep ins/outs); data lives in the run page. */
static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < run->io.count; i++) {
		bus_access(&v->vm->pio, run->io.port, data, run->io.size, is_write);
		data += run->io.size;
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		log_guest(&v->vm->log, LOG_WARN,
			  "vcpu%u: MMIO access of %u bytes at 0x%llx ignored", v->id, len,
			  (unsigned long long)run->mmio.phys_addr);
		return;
	}
	bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

/* One exit; returns false when the VM must stop (vm_stop() already called). */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct vm *vm = v->vm;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; nothing could wake this vCPU again. */
		vm_stop(vm, KVMINI_EXIT_OK, "vcpu%u halted", v->id);
		return false;
	case KVM_EXIT_SHUTDOWN:
		vm_stop(vm, KVMINI_EXIT_GUEST,
			"guest triple-faulted (shutdown exit) on vcpu%u at rip 0x%llx", v->id,
			(unsigned long long)vcpu_rip(v));
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
			vm_stop(vm, KVMINI_EXIT_GUEST, "guest reported a crash on vcpu%u", v->id);
		else
			vm_stop(vm, KVMINI_EXIT_OK, "guest system event %u on vcpu%u",
				run->system_event.type, v->id);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vm_stop(vm, KVMINI_EXIT_GUEST,
			"KVM could not enter vcpu%u (hardware reason 0x%llx) at rip 0x%llx", v->id,
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			(unsigned long long)vcpu_rip(v));
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vm_stop(vm, KVMINI_EXIT_GUEST,
			"KVM internal error %u on vcpu%u at rip 0x%llx (e.g. an instruction KVM "
			"cannot emulate)",
			run->internal.suberror, v->id, (unsigned long long)vcpu_rip(v));
		return false;
	default:
		vm_stop(vm, KVMINI_EXIT_GUEST,
			"unexpected KVM exit reason %u on vcpu%u at rip 0x%llx", run->exit_reason,
			v->id, (unsigned long long)vcpu_rip(v));
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	boottimer_first_run(&vm->timer);
	while (!atomic_load(&vm->stopping)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				continue;
			}
			vm_stop(vm, KVMINI_EXIT_HOST, "KVM_RUN on vcpu%u failed: %s", v->id,
				strerror(errno));
			break;
		}
		v->exits++;
		if (!vcpu_handle_exit(v))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v, struct vmerr *e)
{
	sigset_t set, old;
	/* The thread starts with every signal blocked but the kick; SIGINT/SIGTERM belong to
	 * the main thread's signalfd. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	int ret = host_thread_start(&v->thread, vcpu_thread, v, name);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot start vcpu%u's thread", v->id);
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->run)
		v->run->immediate_exit = 1;
	if (v->started)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_fini(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = false;
	}
	if (v->run) {
		munmap(v->run, (size_t)v->vm->vcpu_mmap_size);
		v->run = NULL;
	}
	if (v->fd >= 0) {
		close(v->fd);
		v->fd = -1;
	}
}
