/* vm: open KVM, check it, build the machine (memory, irqchip, PIT, devices, vCPUs), run, stop. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/layout.h"
#include "kvmini/vm.h"

/* Every capability kvmini relies on, with the reason it is needed (for the error line). */
static const struct {
	int cap;
	const char *name;
} vm_required_caps[] = {
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

char *vm_build_cmdline(const struct vm_config *cfg)
{
	const char *def = cfg->no_default_cmdline ? "" : VM_DEFAULT_CMDLINE;
	const char *user = cfg->cmdline ? cfg->cmdline : "";
	/* "virtio_mmio.device=4K@0xd0000000:5 " is 36 bytes; allow 48 per device. */
	char dev[VM_MAX_VIRTIO * 48] = "";
	size_t n = 0;
	unsigned int nr_virtio = cfg->nr_disks + cfg->nr_nets;
	for (unsigned int i = 0; i < nr_virtio && i < VM_MAX_VIRTIO; i++)
		n += (size_t)snprintf(
			dev + n, sizeof(dev) - n, "%svirtio_mmio.device=4K@0x%llx:%u", n ? " " : "",
			(unsigned long long)(LAYOUT_MMIO_DEVICES + i * LAYOUT_VIRTIO_STRIDE),
			LAYOUT_VIRTIO_IRQ_BASE + i);
	char *s = NULL;
	if (asprintf(&s, "%s%s%s%s%s", def, (*def && *dev) ? " " : "", dev,
		     ((*def || *dev) && *user) ? " " : "", user) < 0)
		return NULL;
	return s;
}

/* Open /dev/kvm, check the API version and every capability, read the supported CPUID. */
static int vm_open_kvm(struct vm *vm, struct vmerr *e)
{
	const char *path = vm->cfg.kvm_path ? vm->cfg.kvm_path : "/dev/kvm";

	vm->kvm_fd = open(path, O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno,
				 "cannot open %s (is KVM enabled and are you allowed to use it?)",
				 path);
	int ver = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				 "%s speaks KVM API version %d, kvmini needs %d", path, ver,
				 KVM_API_VERSION);
	for (size_t i = 0; i < sizeof(vm_required_caps) / sizeof(vm_required_caps[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, vm_required_caps[i].cap) <= 0)
			return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
					 "this KVM lacks %s, which kvmini needs",
					 vm_required_caps[i].name);
	}
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max > 0 && vm->cfg.cpus > (unsigned int)max)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, 0,
				 "this KVM allows at most %d vCPUs; use a smaller --cpus", max);
	vm->vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->vcpu_mmap_size <= 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_GET_VCPU_MMAP_SIZE failed");

	/* KVM_GET_SUPPORTED_CPUID says E2BIG until the array is large enough. */
	for (unsigned int n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			return vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "CPUID table");
		c->nent = n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
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

/* Create the VM fd, its fixed x86 areas, the in-kernel irqchip and PIT, and guest memory. */
static int vm_create_machine(struct vm *vm, struct vmerr *e)
{
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno, "KVM_CREATE_VM failed");
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)LAYOUT_TSS) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_TSS_ADDR failed");
	uint64_t idmap = LAYOUT_IDENTITY_MAP;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_SET_IDENTITY_MAP_ADDR failed");
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_CREATE_IRQCHIP failed");
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_CREATE_PIT2 failed");

	int ret = gmem_init(&vm->mem, vm->cfg.mem_size, e);
	if (ret < 0)
		return ret;
	for (unsigned int i = 0; i < vm->mem.nr; i++) {
		const struct gmem_region *r = &vm->mem.region[i];
		struct kvm_userspace_memory_region kr = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->host,
		};
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &kr) < 0)
			return vmerr_set(e, KVMINI_EXIT_RESOURCE, errno,
					 "KVM_SET_USER_MEMORY_REGION for %llu MiB at 0x%llx failed",
					 (unsigned long long)(r->size >> 20),
					 (unsigned long long)r->gpa);
	}
	return 0;
}

static void vm_uart_irq(void *opaque, int level)
{
	struct vm *vm = opaque;
	vm_irq_line(vm, LAYOUT_COM1_IRQ, level);
}

static void vm_uart_tx(void *opaque, uint8_t byte)
{
	struct vm *vm = opaque;
	console_uart_ops.tx(&vm->con, byte);
}

static void vm_uart_rx_room(void *opaque)
{
	struct vm *vm = opaque;
	console_uart_ops.rx_room(&vm->con);
}

/* The UART's callbacks: the interrupt goes to the irqchip, bytes to the console. */
static const struct uart_ops vm_uart_ops = {
	.set_irq = vm_uart_irq,
	.tx = vm_uart_tx,
	.rx_room = vm_uart_rx_room,
};

static void vm_kbc_reset(void *opaque)
{
	vm_stop(opaque, KVMINI_EXIT_OK, "guest reset the machine through the i8042 (reboot)");
}

/* Create the legacy devices and put them on the port I/O bus. */
static int vm_add_devices(struct vm *vm, struct vmerr *e)
{
	int ret = console_init(&vm->con, vm->cfg.console_in, vm->cfg.console_out);
	if (ret < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot set up the console");
	vm->con_ready = true;
	uart_init(&vm->com1, &vm_uart_ops, vm);
	vm->com1_ready = true;
	i8042_init(&vm->kbc, vm_kbc_reset, vm);
	vm->kbc_ready = true;

	boottimer_init(&vm->timer, &vm->log, vm->cfg.start_ns);
	ret = bus_register(&vm->mmio, LAYOUT_BOOT_TIMER, BOOTTIMER_SIZE, boottimer_io, &vm->timer,
			   "boot-timer");
	if (!ret)
		ret = bus_register(&vm->pio, LAYOUT_COM1_PORT, 8, uart_io, &vm->com1, "com1");
	if (!ret)
		ret = bus_register(&vm->pio, LAYOUT_I8042_DATA, 1, i8042_data_io, &vm->kbc,
				   "i8042-data");
	if (!ret)
		ret = bus_register(&vm->pio, LAYOUT_I8042_CMD, 1, i8042_cmd_io, &vm->kbc,
				   "i8042-cmd");
	if (ret < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot register legacy devices");
	return 0;
}

/*
 * Put a virtio-mmio transport into the next device slot: its register window on the MMIO
 * bus, one ioeventfd per queue on QueueNotify (matching the queue index, so a kick never
 * leaves the kernel) and its interrupt eventfd as an irqfd on the slot's GSI.
 */
static int vm_attach_virtio(struct vm *vm, struct virtio_mmio *t, struct vmerr *e)
{
	unsigned int slot = vm->nr_virtio;
	uint64_t base = LAYOUT_MMIO_DEVICES + slot * LAYOUT_VIRTIO_STRIDE;
	int ret = bus_register(&vm->mmio, base, VIRTIO_MMIO_WINDOW, virtio_mmio_io, t, t->name);
	if (ret < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot register %s", t->name);
	for (unsigned int q = 0; q < t->info.nr_queues; q++) {
		struct kvm_ioeventfd io = {
			.datamatch = q,
			.addr = base + VIRTIO_MMIO_QUEUE_NOTIFY,
			.len = 4,
			.fd = t->kick_fd[q],
			.flags = KVM_IOEVENTFD_FLAG_DATAMATCH,
		};
		if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0)
			return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_IOEVENTFD for %s failed",
					 t->name);
	}
	struct kvm_irqfd irq = {.fd = (uint32_t)t->irq_fd, .gsi = LAYOUT_VIRTIO_IRQ_BASE + slot};
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno, "KVM_IRQFD for %s failed", t->name);
	vm->nr_virtio++;
	return 0;
}

/* Create the virtio devices in slot order: the disks (vda, vdb, ...), then the NICs. */
static int vm_add_virtio_devices(struct vm *vm, struct vmerr *e)
{
	for (unsigned int i = 0; i < vm->cfg.nr_disks; i++) {
		snprintf(vm->virtio_name[vm->nr_virtio], sizeof(vm->virtio_name[0]), "vd%c",
			 'a' + i);
		int ret = vblk_create(&vm->blk[i], &vm->cfg.disk[i], &vm->mem, &vm->log,
				      vm->virtio_name[vm->nr_virtio], e);
		if (ret < 0)
			return ret;
		ret = vm_attach_virtio(vm, vblk_transport(vm->blk[i]), e);
		if (ret < 0)
			return ret;
	}
	for (unsigned int i = 0; i < vm->cfg.nr_nets; i++) {
		struct vnet_config nc = vm->cfg.net[i];
		if (!nc.mac_set) {
			/* Stable per VM name and NIC index, so a guest keeps its MAC across boots.
			 */
			char key[300];
			snprintf(key, sizeof(key), "%s/net%u",
				 vm->cfg.name ? vm->cfg.name : "kvmini", i);
			vnet_mac_from_name(key, nc.mac);
			nc.mac_set = true;
		}
		snprintf(vm->virtio_name[vm->nr_virtio], sizeof(vm->virtio_name[0]), "net%u", i);
		int ret = vnet_create(&vm->net[i], &nc, -1, &vm->mem, &vm->log,
				      vm->virtio_name[vm->nr_virtio], e);
		if (ret < 0)
			return ret;
		ret = vm_attach_virtio(vm, vnet_transport(vm->net[i]), e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int vm_create(struct vm **out, const struct vm_config *cfg, struct vmerr *e)
{
	*out = NULL;
	if (cfg->cpus < 1 || cfg->cpus > VM_MAX_CPUS)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "--cpus must be between 1 and %d",
				 VM_MAX_CPUS);
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "cannot allocate the VM");
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->stop_fd = -1;
	for (unsigned int i = 0; i < VM_MAX_CPUS; i++)
		vm->vcpu[i].fd = -1;
	/* The log goes to a private O_NONBLOCK copy of stderr: a full stderr pipe costs
	 * dropped lines, never a blocked vCPU. */
	nbout_open(&vm->err, STDERR_FILENO, true);
	log_init(&vm->log, cfg->log_level, vm->err.fd);
	pthread_mutex_init(&vm->stop_lock, NULL);
	atomic_init(&vm->stopping, false);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");

	int ret;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_HOST, errno, "eventfd");
		goto fail;
	}
	vm->cmdline = vm_build_cmdline(cfg);
	if (!vm->cmdline) {
		ret = vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "command line");
		goto fail;
	}
	ret = vcpu_signal_setup();
	if (ret < 0) {
		vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot install the vCPU kick signal");
		goto fail;
	}
	ret = vm_open_kvm(vm, e);
	if (ret < 0)
		goto fail;
	ret = vm_create_machine(vm, e);
	if (ret < 0)
		goto fail;
	ret = vm_add_virtio_devices(vm, e);
	if (ret < 0)
		goto fail;

	struct boot_config bc = {
		.kernel_path = cfg->kernel,
		.initrd_path = cfg->initrd,
		.cmdline = vm->cmdline,
		.cpus = cfg->cpus,
	};
	ret = boot_load(&vm->mem, &bc, &vm->boot, e);
	if (ret < 0)
		goto fail;

	for (unsigned int i = 0; i < cfg->cpus; i++) {
		ret = vcpu_init(&vm->vcpu[i], vm, i, e);
		if (ret < 0)
			goto fail;
		vm->nr_vcpus++;
	}
	ret = vcpu_set_boot_state(&vm->vcpu[0], &vm->boot, e);
	if (ret < 0)
		goto fail;
	ret = vm_add_devices(vm, e);
	if (ret < 0)
		goto fail;
	log_info(&vm->log, "%s: %u vCPU(s), %llu MiB, %s kernel entry 0x%llx, cmdline \"%s\"",
		 cfg->name ? cfg->name : "vm", cfg->cpus, (unsigned long long)(cfg->mem_size >> 20),
		 vm->boot.mode == BOOT_PVH32 ? "PVH" : "bzImage 64-bit",
		 (unsigned long long)vm->boot.entry, vm->cmdline);
	*out = vm;
	return 0;
fail:
	vm_destroy(vm);
	return ret;
}

void vm_stop(struct vm *vm, int status, const char *fmt, ...)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!atomic_load(&vm->stopping)) {
		vm->exit_status = status;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
		va_end(ap);
		atomic_store(&vm->stopping, true);
		uint64_t one = 1;
		if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
			/* Cannot fail for a non-full eventfd; the vCPUs are kicked anyway. */
		}
	}
	pthread_mutex_unlock(&vm->stop_lock);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpu[i]);
}

int vm_irq_line(struct vm *vm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = {.irq = gsi, .level = level};
	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	return 0;
}

static int vm_start_vcpus(struct vm *vm)
{
	struct vmerr e = {0};
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_start(&vm->vcpu[i], &e) < 0) {
			vm_stop(vm, e.status, "%s", e.msg);
			return -1;
		}
	}
	return 0;
}

int vm_run(struct vm *vm)
{
	if (vm_start_vcpus(vm) == 0) {
		int r = console_loop(&vm->con, &vm->com1, vm->stop_fd, vm->cfg.signal_fd);
		if (r == CONSOLE_QUIT)
			vm_stop(vm, KVMINI_EXIT_OK, "quit by the user (Ctrl-A x)");
		else if (r > 0)
			vm_stop(vm, KVMINI_EXIT_SIGNAL + r, "stopped by signal %d (%s)", r,
				strsignal(r));
		else if (r < 0)
			vm_stop(vm, KVMINI_EXIT_HOST, "console: %s", strerror(-r));
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_fini(&vm->vcpu[i]);
	console_flush(&vm->con);
	return vm->exit_status;
}

int vm_run_headless(struct vm *vm)
{
	if (vm_start_vcpus(vm) == 0) {
		struct pollfd p = {.fd = vm->stop_fd, .events = POLLIN};
		while (!atomic_load(&vm->stopping))
			poll(&p, 1, -1);
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_fini(&vm->vcpu[i]);
	console_flush(&vm->con);
	return vm->exit_status;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	/* Threads first: nothing may touch devices or memory after this. */
	if (!atomic_load(&vm->stopping) && vm->stop_fd >= 0)
		vm_stop(vm, KVMINI_EXIT_OK, "destroyed");
	for (unsigned int i = 0; i < VM_MAX_CPUS; i++)
		vcpu_fini(&vm->vcpu[i]);
	for (unsigned int i = 0; i < VM_MAX_VIRTIO; i++)
		vblk_destroy(vm->blk[i]);
	for (unsigned int i = 0; i < VM_MAX_NETS; i++)
		vnet_destroy(vm->net[i]);
	if (vm->kbc_ready)
		i8042_fini(&vm->kbc);
	if (vm->com1_ready)
		uart_fini(&vm->com1);
	if (vm->con_ready)
		console_fini(&vm->con);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	gmem_fini(&vm->mem);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	free(vm->cpuid);
	free(vm->cmdline);
	pthread_mutex_destroy(&vm->stop_lock);
	nbout_close(&vm->err);
	free(vm);
}
