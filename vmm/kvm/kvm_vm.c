/* kvm_vm: open /dev/kvm, check it, create the VM fd and its fixed x86 parts, bind eventfds. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/kvm_vm.h"
#include "kvmini/layout.h"

/* Every capability kvmini relies on (named in the error line when missing). */
static const struct {
	int cap;
	const char *name;
} kvm_vm_required_caps[] = {
	{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
	{KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
	{KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR"},
	{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
	{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
	{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
	{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
	{KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE"},
	{KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
	{KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
};

/* KVM_GET_SUPPORTED_CPUID says E2BIG until the array is large enough. */
static int kvm_vm_read_cpuid(struct kvm_vm *k, struct vmerr *e)
{
	for (unsigned int n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			return vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "CPUID table");
		c->nent = n;
		if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			k->cpuid = c;
			return 0;
		}
		int err = errno;
		free(c);
		if (err != E2BIG)
			return vmerr_set(e, KVMINI_EXIT_HOST, err,
					 "KVM_GET_SUPPORTED_CPUID failed");
	}
	return vmerr_set(e, KVMINI_EXIT_HOST, E2BIG, "KVM_GET_SUPPORTED_CPUID failed");
}

static int kvm_vm_check(struct kvm_vm *k, const char *path, unsigned int cpus, struct vmerr *e)
{
	int ver = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				 "%s speaks KVM API version %d, kvmini needs %d", path, ver,
				 KVM_API_VERSION);
	for (size_t i = 0; i < sizeof(kvm_vm_required_caps) / sizeof(kvm_vm_required_caps[0]);
	     i++) {
		if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, kvm_vm_required_caps[i].cap) <= 0)
			return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
					 "this KVM lacks %s, which kvmini needs",
					 kvm_vm_required_caps[i].name);
	}
	int max = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && cpus > (unsigned int)max)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				 "this KVM allows at most %d vCPUs; use a smaller --cpus", max);
	k->vcpu_mmap_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->vcpu_mmap_size <= 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_GET_VCPU_MMAP_SIZE failed");
	k->tsc_deadline = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	return kvm_vm_read_cpuid(k, e);
}

int kvm_vm_open(struct kvm_vm *k, const char *path, unsigned int cpus, struct vmerr *e)
{
	if (!path)
		path = "/dev/kvm";
	k->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno,
				 "cannot open %s (is KVM enabled and are you allowed to use it?)",
				 path);
	int ret = kvm_vm_check(k, path, cpus, e);
	if (ret < 0)
		return ret;

	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "KVM_CREATE_VM failed");
	/* Intel VMX needs three pages for a real-mode TSS and one for the identity map
	 * below 4 GiB, outside RAM (include/kvmini/layout.h). */
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_TSS_ADDR failed");
	uint64_t idmap = LAYOUT_IDENTITY_MAP;
	if (ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_IDENTITY_MAP_ADDR failed");
	/* The PIC, IOAPIC and one local APIC per vCPU, emulated in the kernel. */
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_CREATE_IRQCHIP failed");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_CREATE_PIT2 failed");
	return 0;
}

int kvm_vm_map_memory(struct kvm_vm *k, const struct gmem *mem, struct vmerr *e)
{
	for (unsigned int i = 0; i < mem->nr; i++) {
		const struct gmem_region *r = &mem->region[i];
		struct kvm_userspace_memory_region kr = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};
		if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
			return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno,
					 "KVM_SET_USER_MEMORY_REGION for %llu MiB at 0x%llx failed",
					 (unsigned long long)(r->size >> 20),
					 (unsigned long long)r->gpa);
	}
	return 0;
}

int kvm_vm_irq_line(struct kvm_vm *k, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level};
	if (ioctl(k->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	return 0;
}

int kvm_vm_ioeventfd(struct kvm_vm *k, uint64_t addr, uint32_t match, int fd)
{
	struct kvm_ioeventfd io = {
		.datamatch = match,
		.addr = addr,
		.len = 4,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
	};
	if (ioctl(k->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return -errno;
	return 0;
}

int kvm_vm_irqfd(struct kvm_vm *k, int fd, unsigned int gsi)
{
	struct kvm_irqfd irq = {.fd = (uint32_t)fd, .gsi = gsi};
	if (ioctl(k->vm_fd, KVM_IRQFD, &irq) < 0)
		return -errno;
	return 0;
}

void kvm_vm_close(struct kvm_vm *k)
{
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	k->vm_fd = k->kvm_fd = -1;
	free(k->cpuid);
	k->cpuid = NULL;
}
