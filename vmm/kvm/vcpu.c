/* vcpu: create and configure a vCPU, and run its exit loop (the one switch on exit_reason). */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvmini/host.h"
#include "kvmini/vcpu.h"

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

int vcpu_signal_setup(int signo)
{
	struct sigaction old;
	if (sigaction(signo, NULL, &old) < 0)
		return -errno;
	if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == vcpu_kick_handler)
		return 0;
	if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
		return -EBUSY; /* the caller's own handler: never replaced */
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: KVM_RUN must return -EINTR. */
	if (sigaction(signo, &sa, NULL) < 0)
		return -errno;
	return 0;
}

int vcpu_ctl_init(struct vcpu_ctl *ctl)
{
	memset(ctl, 0, sizeof(*ctl));
	atomic_init(&ctl->stopping, false);
	atomic_init(&ctl->pausing, false);
	int ret = pthread_mutex_init(&ctl->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_cond_init(&ctl->cond, NULL);
	if (ret) {
		pthread_mutex_destroy(&ctl->lock);
		return -ret;
	}
	return 0;
}

void vcpu_ctl_fini(struct vcpu_ctl *ctl)
{
	pthread_cond_destroy(&ctl->cond);
	pthread_mutex_destroy(&ctl->lock);
}

void vcpu_ctl_stop(struct vcpu_ctl *ctl)
{
	pthread_mutex_lock(&ctl->lock);
	atomic_store(&ctl->stopping, true);
	pthread_cond_broadcast(&ctl->cond);
	pthread_mutex_unlock(&ctl->lock);
}

int vcpu_ctl_pause(struct vcpu_ctl *ctl, struct vcpu *v, unsigned int n)
{
	pthread_mutex_lock(&ctl->lock);
	atomic_store(&ctl->pausing, true);
	pthread_mutex_unlock(&ctl->lock);
	for (unsigned int i = 0; i < n; i++)
		vcpu_kick(&v[i]);
	pthread_mutex_lock(&ctl->lock);
	while (ctl->parked < ctl->running && !atomic_load(&ctl->stopping))
		pthread_cond_wait(&ctl->cond, &ctl->lock);
	bool stopped = atomic_load(&ctl->stopping);
	if (stopped)
		atomic_store(&ctl->pausing, false);
	pthread_mutex_unlock(&ctl->lock);
	return stopped ? -ESHUTDOWN : 0;
}

void vcpu_ctl_resume(struct vcpu_ctl *ctl)
{
	pthread_mutex_lock(&ctl->lock);
	atomic_store(&ctl->pausing, false);
	pthread_cond_broadcast(&ctl->cond);
	pthread_mutex_unlock(&ctl->lock);
}

/*
 * Forget a kick before looking at the run control again. Sequentially consistent: the clear
 * must not move after the loads of `stopping` and `pausing`, or a kick sent in between
 * (flag set, then immediate_exit = 1) would be erased and the next KVM_RUN would not return.
 */
static void vcpu_clear_kick(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
}

/* Out of KVM_RUN with a pause requested: wait, counted as parked, for resume or stop. */
static void vcpu_park(struct vcpu *v)
{
	struct vcpu_ctl *ctl = v->env->ctl;
	pthread_mutex_lock(&ctl->lock);
	ctl->parked++;
	pthread_cond_broadcast(&ctl->cond);
	while (atomic_load(&ctl->pausing) && !atomic_load(&ctl->stopping))
		pthread_cond_wait(&ctl->cond, &ctl->lock);
	ctl->parked--;
	pthread_mutex_unlock(&ctl->lock);
	/* A kick that arrived while parked must not end the next KVM_RUN at once. */
	vcpu_clear_kick(v);
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
	const struct kvm_cpuid2 *src = v->env->kvm->cpuid;
	size_t sz = sizeof(*src) + src->nent * sizeof(src->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "CPUID table");
	memcpy(c, src, sz);
	vcpu_patch_cpuid(c, v->id, v->env->nr_cpus);
	if (v->env->kvm->tsc_deadline)
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

int vcpu_init(struct vcpu *v, const struct vcpu_env *env, unsigned int id, struct vmerr *e)
{
	v->env = env;
	v->id = id;
	v->fd = ioctl(env->kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "KVM_CREATE_VCPU %u failed", id);
	void *run = mmap(NULL, (size_t)env->kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
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

int vcpu_set_entry_state(struct vcpu *v,
			 void (*fill)(const void *arg, struct kvm_regs *r, struct kvm_sregs *s),
			 const void *arg, struct vmerr *e)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_GET_SREGS failed");
	memset(&regs, 0, sizeof(regs));
	fill(arg, &regs, &sregs);
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

/* The value of an access as a number, for the trace (guest byte order is little-endian). */
static unsigned long long vcpu_value(const uint8_t *data, uint32_t len)
{
	unsigned long long v = 0;
	for (uint32_t i = 0; i < len && i < 8; i++)
		v |= (unsigned long long)data[i] << (8 * i);
	return v;
}

static void vcpu_trace_access(struct vcpu *v, const struct bus *b, const char *kind, uint64_t addr,
			      const uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = bus_find(b, addr, len);
	const char *reg = r && r->reg_name ? r->reg_name(addr - r->base) : NULL;
	trace_emit(v->env->trace, "exit vcpu%u %s %s 0x%llx len %u %s 0x%llx dev %s%s%s", v->id,
		   kind, is_write ? "write" : "read", (unsigned long long)addr, len,
		   is_write ? "<-" : "->", vcpu_value(data, len), r ? r->name : "(none)",
		   reg ? " reg " : "", reg ? reg : "");
}

/* Port I/O: `count` > 1 for string instructions (rep ins/outs); data lives in the run page. */
static void vcpu_handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < run->io.count; i++) {
		bus_access(v->env->pio, run->io.port, data, run->io.size, is_write);
		if (trace_on(v->env->trace, TRACE_EXITS))
			vcpu_trace_access(v, v->env->pio, "io", run->io.port, data, run->io.size,
					  is_write);
		data += run->io.size;
	}
}

static void vcpu_handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		log_guest(v->env->log, LOG_WARN,
			  "vcpu%u: MMIO access of %u bytes at 0x%llx ignored", v->id, len,
			  (unsigned long long)run->mmio.phys_addr);
		return;
	}
	bus_access(v->env->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
	if (trace_on(v->env->trace, TRACE_EXITS))
		vcpu_trace_access(v, v->env->mmio, "mmio", run->mmio.phys_addr, run->mmio.data, len,
				  run->mmio.is_write);
}

/* Stop the VM with a reason formatted here (the env's hook takes one finished line). */
static void vcpu_stop(struct vcpu *v, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void vcpu_stop(struct vcpu *v, int status, const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (trace_on(v->env->trace, TRACE_EXITS))
		trace_emit(v->env->trace, "exit vcpu%u stop: %s", v->id, reason);
	v->env->stop(v->env->opaque, status, reason);
}

/* One writer per counter (this vCPU's thread): a relaxed load and store, no locked add. */
static void vcpu_count(struct vcpu *v, unsigned int kind)
{
	uint64_t *c = &v->exit_count[kind];
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

uint64_t vcpu_exit_count(const struct vcpu *v, unsigned int kind)
{
	return kind < KVMINI_EXIT_KINDS ? __atomic_load_n(&v->exit_count[kind], __ATOMIC_RELAXED)
					: 0;
}

/* The kind an exit is counted as. */
static unsigned int vcpu_exit_kind(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_IO:
		return KVMINI_EXIT_KIND_IO;
	case KVM_EXIT_MMIO:
		return KVMINI_EXIT_KIND_MMIO;
	case KVM_EXIT_INTR:
		return KVMINI_EXIT_KIND_INTR;
	case KVM_EXIT_HLT:
		return KVMINI_EXIT_KIND_HLT;
	case KVM_EXIT_SHUTDOWN:
		return KVMINI_EXIT_KIND_SHUTDOWN;
	case KVM_EXIT_SYSTEM_EVENT:
		return KVMINI_EXIT_KIND_SYSTEM_EVENT;
	default:
		return KVMINI_EXIT_KIND_OTHER;
	}
}

/* One exit; returns false when the VM must stop (vcpu_stop() already called). */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;

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
		vcpu_stop(v, KVMINI_EXIT_OK, "vcpu%u halted", v->id);
		return false;
	case KVM_EXIT_SHUTDOWN:
		vcpu_stop(v, KVMINI_EXIT_GUEST,
			  "guest triple-faulted (shutdown exit) on vcpu%u at rip 0x%llx", v->id,
			  (unsigned long long)vcpu_rip(v));
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_CRASH)
			vcpu_stop(v, KVMINI_EXIT_GUEST, "guest reported a crash on vcpu%u", v->id);
		else
			vcpu_stop(v, KVMINI_EXIT_OK, "guest system event %u on vcpu%u",
				  run->system_event.type, v->id);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vcpu_stop(v, KVMINI_EXIT_GUEST,
			  "KVM could not enter vcpu%u (hardware reason 0x%llx) at rip 0x%llx",
			  v->id, (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			  (unsigned long long)vcpu_rip(v));
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_stop(v, KVMINI_EXIT_GUEST,
			  "KVM internal error %u on vcpu%u at rip 0x%llx (e.g. an instruction KVM "
			  "cannot emulate)",
			  run->internal.suberror, v->id, (unsigned long long)vcpu_rip(v));
		return false;
	default:
		vcpu_stop(v, KVMINI_EXIT_GUEST,
			  "unexpected KVM exit reason %u on vcpu%u at rip 0x%llx", run->exit_reason,
			  v->id, (unsigned long long)vcpu_rip(v));
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	const struct vcpu_env *env = v->env;
	struct vcpu_ctl *ctl = env->ctl;
	sigset_t set;

	/* host_thread_start blocked every signal; the kick must get through (it is never
	 * one of the caller's signals: vcpu_signal_setup refuses a signal with a handler). */
	sigemptyset(&set);
	sigaddset(&set, v->kick_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	if (env->first_run)
		env->first_run(env->opaque);
	while (!atomic_load(&ctl->stopping)) {
		if (atomic_load(&ctl->pausing)) {
			vcpu_park(v);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu_clear_kick(v);
				vcpu_count(v, KVMINI_EXIT_KIND_INTR);
				if (trace_on(env->trace, TRACE_EXITS))
					trace_emit(env->trace, "exit vcpu%u kick (signal)", v->id);
				continue;
			}
			vcpu_stop(v, KVMINI_EXIT_HOST, "KVM_RUN on vcpu%u failed: %s", v->id,
				  strerror(errno));
			break;
		}
		vcpu_count(v, vcpu_exit_kind(v->run->exit_reason));
		if (!vcpu_handle_exit(v))
			break;
	}
	pthread_mutex_lock(&ctl->lock);
	ctl->running--;
	pthread_cond_broadcast(&ctl->cond);
	pthread_mutex_unlock(&ctl->lock);
	return NULL;
}

int vcpu_start(struct vcpu *v, int kick_signal, struct vmerr *e)
{
	char name[16];
	snprintf(name, sizeof(name), "vcpu%u", v->id);
	struct vcpu_ctl *ctl = v->env->ctl;
	v->kick_signal = kick_signal;
	pthread_mutex_lock(&ctl->lock);
	ctl->running++;
	pthread_mutex_unlock(&ctl->lock);
	int ret =
		host_thread_start(&v->thread, vcpu_thread, v, name, v->env->confine, CONFINE_VCPU);
	if (ret) {
		pthread_mutex_lock(&ctl->lock);
		ctl->running--;
		pthread_cond_broadcast(&ctl->cond);
		pthread_mutex_unlock(&ctl->lock);
		return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot start vcpu%u's thread", v->id);
	}
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (v->started)
		pthread_kill(v->thread, v->kick_signal);
}

void vcpu_fini(struct vcpu *v)
{
	if (v->started) {
		pthread_join(v->thread, NULL);
		v->started = false;
	}
	if (v->run) {
		munmap(v->run, (size_t)v->env->kvm->vcpu_mmap_size);
		v->run = NULL;
	}
	if (v->fd >= 0) {
		close(v->fd);
		v->fd = -1;
	}
}
