/* vm: open KVM, check it, build the machine (memory, irqchip, PIT, devices, vCPUs), run, stop. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvmini/host.h"
#include "kvmini/layout.h"
#include "kvmini/vm.h"

char *vm_build_cmdline(const struct vm_config *cfg, const struct vm_slot *slot,
		       unsigned int nr_slots)
{
	const char *def = cfg->no_default_cmdline ? "" : VM_DEFAULT_CMDLINE;
	const char *user = cfg->cmdline ? cfg->cmdline : "";
	/* "virtio_mmio.device=4K@0xd0000000:5 " is 36 bytes; allow 48 per device. */
	char dev[VM_MAX_VIRTIO * 48] = "";
	size_t n = 0;
	for (unsigned int i = 0; i < nr_slots && i < VM_MAX_VIRTIO; i++)
		n += (size_t)snprintf(dev + n, sizeof(dev) - n, "%svirtio_mmio.device=4K@0x%llx:%u",
				      n ? " " : "", (unsigned long long)slot[i].base, slot[i].gsi);
	char *s = NULL;
	if (asprintf(&s, "%s%s%s%s%s", def, (*def && *dev) ? " " : "", dev,
		     ((*def || *dev) && *user) ? " " : "", user) < 0)
		return NULL;
	return s;
}

/* Set a legacy device's interrupt line; a KVM_IRQ_LINE that fails is a host failure that stops
 * the VM (exit status 1): the guest would wait for an interrupt that never comes. */
static int vm_irq_line(struct vm *vm, unsigned int gsi, int level, const char *what)
{
	if (trace_on(&vm->trace, TRACE_IRQ))
		trace_emit(&vm->trace, "irq gsi %u level %d (%s)", gsi, level, what);
	int ret = kvm_vm_irq_line(&vm->kvm, gsi, level);
	if (ret < 0)
		vm_stop(vm, KVMINI_EXIT_HOST, "KVM_IRQ_LINE for the %s (gsi %u) failed: %s", what,
			gsi, strerror(-ret));
	return ret;
}

static int vm_uart_irq(void *opaque, int level)
{
	return vm_irq_line(opaque, LAYOUT_COM1_IRQ, level, "com1");
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

static void vm_kbc_irq(void *opaque, int level)
{
	vm_irq_line(opaque, LAYOUT_I8042_IRQ, level, "i8042 keyboard");
}

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
	if (vm->cfg.console_fn)
		console_set_sink(&vm->con, vm->cfg.console_fn, vm->cfg.console_opaque);
	uart_init(&vm->com1, &vm_uart_ops, vm);
	vm->com1_ready = true;
	i8042_init(&vm->kbc, vm_kbc_reset, vm_kbc_irq, vm);
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
 * leaves the kernel) and its interrupt eventfd as an irqfd on the slot's GSI. The slot is
 * recorded: the kernel command line is built from what was registered here.
 */
static int vm_attach_virtio(struct vm *vm, struct virtio_mmio *t, struct vmerr *e)
{
	unsigned int i = vm->nr_virtio;
	struct vm_slot *slot = &vm->slot[i];
	slot->base = LAYOUT_MMIO_DEVICES + i * LAYOUT_VIRTIO_STRIDE;
	slot->gsi = LAYOUT_VIRTIO_IRQ_BASE + i;
	int ret =
		bus_register(&vm->mmio, slot->base, VIRTIO_MMIO_WINDOW, virtio_mmio_io, t, t->name);
	if (!ret)
		ret = bus_set_reg_names(&vm->mmio, slot->base, virtio_mmio_reg_name);
	if (ret < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot register %s", t->name);
	for (unsigned int q = 0; q < t->info.nr_queues; q++) {
		ret = kvm_vm_ioeventfd(&vm->kvm, slot->base + VIRTIO_MMIO_QUEUE_NOTIFY, q,
				       t->kick_fd[q]);
		if (ret < 0)
			return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "KVM_IOEVENTFD for %s failed",
					 t->name);
	}
	ret = kvm_vm_irqfd(&vm->kvm, t->irq_fd, slot->gsi);
	if (ret < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, -ret, "KVM_IRQFD for %s failed", t->name);
	t->gsi = slot->gsi;
	vm->nr_virtio++;
	return 0;
}

/* Create the virtio devices in slot order: the disks (vda, vdb, ...), then the NICs. */
static int vm_add_virtio_devices(struct vm *vm, struct vmerr *e)
{
	for (unsigned int i = 0; i < vm->cfg.nr_disks; i++) {
		char *name = vm->slot[vm->nr_virtio].name;
		snprintf(name, sizeof(vm->slot[0].name), "vd%c", 'a' + i);
		vm->cfg.disk[i].confine = &vm->confine;
		int ret = vblk_create(&vm->blk[i], &vm->cfg.disk[i], &vm->mem, &vm->log, name, e);
		if (ret < 0)
			return ret;
		virtio_mmio_set_trace(vblk_transport(vm->blk[i]), &vm->trace);
		ret = vm_attach_virtio(vm, vblk_transport(vm->blk[i]), e);
		if (ret < 0)
			return ret;
	}
	for (unsigned int i = 0; i < vm->cfg.nr_nets; i++) {
		struct vnet_config nc = vm->cfg.net[i];
		nc.confine = &vm->confine;
		if (!nc.mac_set) {
			/* Stable per VM name and NIC index, so a guest keeps its MAC across boots.
			 */
			char key[300];
			snprintf(key, sizeof(key), "%s/net%u",
				 vm->cfg.name ? vm->cfg.name : "kvmini", i);
			vnet_mac_from_name(key, nc.mac);
			nc.mac_set = true;
		}
		char *name = vm->slot[vm->nr_virtio].name;
		snprintf(name, sizeof(vm->slot[0].name), "net%u", i);
		int ret = vnet_create(&vm->net[i], &nc, -1, &vm->mem, &vm->log, name, e);
		if (ret < 0)
			return ret;
		virtio_mmio_set_trace(vnet_transport(vm->net[i]), &vm->trace);
		ret = vm_attach_virtio(vm, vnet_transport(vm->net[i]), e);
		if (ret < 0)
			return ret;
	}
	if (vm->cfg.vsock) {
		struct vsock_config vc = vm->cfg.vsock_cfg;
		vc.confine = &vm->confine;
		if (!vc.cid)
			vc.cid = vm_default_cid(getpid(), vm->kvm.vm_fd);
		char *name = vm->slot[vm->nr_virtio].name;
		snprintf(name, sizeof(vm->slot[0].name), "vsock0");
		int ret = vsock_create(&vm->vsock, &vc, &vm->mem, &vm->log, name, e);
		if (ret < 0)
			return ret;
		virtio_mmio_set_trace(vsock_transport(vm->vsock), &vm->trace);
		ret = vm_attach_virtio(vm, vsock_transport(vm->vsock), e);
		if (ret < 0)
			return ret;
	}
	return 0;
}

uint64_t vm_default_cid(int pid, int vm_fd)
{
	uint64_t span = (uint64_t)VSOCK_MAX_CID - VSOCK_MIN_CID + 1;
	uint64_t n = (uint64_t)(uint32_t)pid * 1024 + (uint64_t)((unsigned int)vm_fd % 1024);
	return VSOCK_MIN_CID + n % span;
}

/* The vCPUs' hooks into the machine. */
static void vm_env_stop(void *opaque, int status, const char *reason)
{
	vm_stop(opaque, status, "%s", reason);
}

static void vm_env_first_run(void *opaque)
{
	struct vm *vm = opaque;
	boottimer_first_run(&vm->timer);
}

static void vm_fill_entry(const void *arg, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	boot_cpu_state(arg, regs, sregs);
}

int vm_create(struct vm **out, const struct vm_config *cfg, struct vmerr *e)
{
	*out = NULL;
	if (cfg->cpus < 1 || cfg->cpus > VM_MAX_CPUS)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "--cpus must be between 1 and %d",
				 VM_MAX_CPUS);
	if (cfg->nr_disks + cfg->nr_nets + (cfg->vsock ? 1 : 0) > VM_MAX_VIRTIO ||
	    cfg->nr_nets > VM_MAX_NETS)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "too many virtio devices (at most %d)",
				 VM_MAX_VIRTIO);
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "cannot allocate the VM");
	vm->cfg = *cfg;
	vm->kvm.kvm_fd = vm->kvm.vm_fd = vm->stop_fd = -1;
	for (unsigned int i = 0; i < VM_MAX_CPUS; i++)
		vm->vcpu[i].fd = -1;
	/* The log goes to a private O_NONBLOCK copy of its fd: a full pipe costs dropped
	 * lines, never a blocked vCPU. */
	nbout_open(&vm->err, cfg->log_fd, true);
	log_init(&vm->log, cfg->log_level, vm->err.fd);
	if (cfg->log_fn)
		log_set_sink(&vm->log, cfg->log_fn, cfg->log_opaque);
	uint64_t start = cfg->start_ns ? cfg->start_ns : boottimer_now_ns();
	trace_init(&vm->trace, cfg->trace_mask, cfg->trace_fd, start);
	pthread_mutex_init(&vm->stop_lock, NULL);
	pthread_mutex_init(&vm->life_lock, NULL);
	pthread_mutex_init(&vm->reap_lock, NULL);
	pthread_cond_init(&vm->reap_cond, NULL);
	atomic_init(&vm->state, KVMINI_STATE_CREATED);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");

	const char *slow = host_slow_kvm_reason("/sys", "/proc/cpuinfo");
	if (slow)
		log_warn(&vm->log,
			 "%s: a standard Linux guest runs instruction-emulated here, about 1000x "
			 "slower (see README: hosts without hardware virtualization)",
			 slow);

	int ret = vcpu_ctl_init(&vm->ctl);
	if (ret < 0) {
		vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot set up the vCPU run control");
		goto fail;
	}
	vm->ctl_ready = true;
	vm->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_fd < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_HOST, errno, "eventfd");
		goto fail;
	}
	if (!vm->cfg.kick_signal)
		vm->cfg.kick_signal = SIGRTMIN + 2;
	ret = vcpu_signal_setup(vm->cfg.kick_signal);
	if (ret == -EBUSY) {
		vmerr_set(e, KVMINI_EXIT_USAGE, 0,
			  "signal %d already has a handler; choose another kick signal",
			  vm->cfg.kick_signal);
		goto fail; /* ret stays -EBUSY */
	} else if (ret < 0) {
		vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot install the vCPU kick signal");
		goto fail;
	}
	/* The filters exist before the first thread, which installs its own as it starts. */
	struct confine_params cp = {.pid = getpid(),
				    .kick_signal = vm->cfg.kick_signal,
				    .console_files = cfg->seccomp_console_files,
				    .probe = cfg->seccomp_probe};
	ret = confine_build(&vm->confine, cfg->seccomp, &cp, e);
	if (ret == 0 && cfg->seccomp == CONFINE_KILL)
		ret = confine_sigsys_setup(e);
	if (ret < 0)
		goto fail;
	ret = kvm_vm_open(&vm->kvm, cfg->kvm_path, cfg->cpus, e);
	if (ret < 0)
		goto fail;
	ret = gmem_init(&vm->mem, cfg->mem_size, e);
	if (ret < 0)
		goto fail;
	ret = kvm_vm_map_memory(&vm->kvm, &vm->mem, e);
	if (ret < 0)
		goto fail;
	ret = vm_add_virtio_devices(vm, e);
	if (ret < 0)
		goto fail;
	vm->cmdline = vm_build_cmdline(cfg, vm->slot, vm->nr_virtio);
	if (!vm->cmdline) {
		ret = vmerr_set(e, KVMINI_EXIT_HOST, ENOMEM, "command line");
		goto fail;
	}

	struct boot_config bc = {
		.kernel_path = cfg->kernel,
		.initrd_path = cfg->initrd,
		.cmdline = vm->cmdline,
		.cpus = cfg->cpus,
	};
	ret = boot_load(&vm->mem, &bc, &vm->boot, e);
	if (ret < 0)
		goto fail;

	vm->env = (struct vcpu_env){
		.kvm = &vm->kvm,
		.nr_cpus = cfg->cpus,
		.pio = &vm->pio,
		.mmio = &vm->mmio,
		.log = &vm->log,
		.trace = &vm->trace,
		.ctl = &vm->ctl,
		.stop = vm_env_stop,
		.first_run = vm_env_first_run,
		.opaque = vm,
		.confine = &vm->confine,
	};
	for (unsigned int i = 0; i < cfg->cpus; i++) {
		ret = vcpu_init(&vm->vcpu[i], &vm->env, i, e);
		if (ret < 0)
			goto fail;
		vm->nr_vcpus++;
	}
	ret = vcpu_set_entry_state(&vm->vcpu[0], vm_fill_entry, &vm->boot, e);
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

bool vm_stopping(const struct vm *vm)
{
	return atomic_load(&vm->ctl.stopping);
}

int vm_state(const struct vm *vm)
{
	return vm_stopping(vm) ? KVMINI_STATE_STOPPED : atomic_load(&vm->state);
}

void vm_stop(struct vm *vm, int status, const char *fmt, ...)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm_stopping(vm)) {
		vm->exit_status = status;
		atomic_store(&vm->stopped_ns, boottimer_now_ns());
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
		va_end(ap);
		vcpu_ctl_stop(&vm->ctl);
		/* Only the winner kicks, and under stop_lock: vm_reap takes the lock before it
		 * unmaps any vCPU, so no kick can touch a reaped vCPU. */
		for (unsigned int i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(&vm->vcpu[i]);
		uint64_t one = 1;
		if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
			/* Cannot fail for a non-full eventfd; the vCPUs are kicked anyway. */
		}
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

/*
 * The console thread: the UART's terminal backend, until the VM stops or Ctrl-A x; then, once
 * vm_reap has joined every vCPU (no more output can come), it writes out what is queued, so
 * a console callback only ever runs on this thread.
 */
static void *vm_console_thread(void *arg)
{
	struct vm *vm = arg;
	int r = console_loop(&vm->con, &vm->com1, vm->stop_fd, -1);
	if (r == CONSOLE_QUIT)
		vm_stop(vm, KVMINI_EXIT_OK, "quit by the user (Ctrl-A x)");
	else if (r < 0)
		vm_stop(vm, KVMINI_EXIT_HOST, "console: %s", strerror(-r));
	pthread_mutex_lock(&vm->reap_lock);
	while (!vm->vcpus_joined)
		pthread_cond_wait(&vm->reap_cond, &vm->reap_lock);
	pthread_mutex_unlock(&vm->reap_lock);
	console_flush(&vm->con);
	return NULL;
}

int vm_start(struct vm *vm, struct vmerr *e)
{
	pthread_mutex_lock(&vm->life_lock);
	if (atomic_load(&vm->state) != KVMINI_STATE_CREATED) {
		pthread_mutex_unlock(&vm->life_lock);
		return vmerr_set(e, KVMINI_EXIT_USAGE, EALREADY, "the VM was already started");
	}
	atomic_store(&vm->started_ns, boottimer_now_ns());
	atomic_store(&vm->state, KVMINI_STATE_RUNNING);
	console_raw(&vm->con); /* a terminal is raw while the VM runs */
	int ret = host_thread_start(&vm->con_thread, vm_console_thread, vm, "console", &vm->confine,
				    CONFINE_CONSOLE);
	if (ret < 0) {
		vm_stop(vm, KVMINI_EXIT_HOST, "cannot start the console thread");
		vmerr_set(e, KVMINI_EXIT_HOST, -ret, "cannot start the console thread");
	} else {
		vm->con_started = true;
		for (unsigned int i = 0; i < vm->nr_vcpus && ret == 0; i++) {
			ret = vcpu_start(&vm->vcpu[i], vm->cfg.kick_signal, e);
			if (ret < 0) {
				vm_stop(vm, KVMINI_EXIT_HOST, "%s", e ? e->msg : "vCPU start");
				break;
			}
			/* The thread may already be in KVM_RUN, and a vm_stop from a running
			 * vCPU may have come before `started` was set, so its kick sent no signal
			 * (and immediate_exit is read only as KVM_RUN begins): an application
			 * processor waiting for INIT would then wait for ever. Kick it here;
			 * under stop_lock, a stop either came before (seen here) or comes after
			 * (and kicks it). */
			pthread_mutex_lock(&vm->stop_lock);
			if (vm_stopping(vm))
				vcpu_kick(&vm->vcpu[i]);
			pthread_mutex_unlock(&vm->stop_lock);
		}
	}
	pthread_mutex_unlock(&vm->life_lock);
	return ret;
}

/* Join every thread (the console thread writes out the console last). life_lock held; the
 * VM is stopping. */
static void vm_reap(struct vm *vm)
{
	/* The stop's kicks are done once its lock is free (vm_stop kicks under it). */
	pthread_mutex_lock(&vm->stop_lock);
	pthread_mutex_unlock(&vm->stop_lock);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_fini(&vm->vcpu[i]);
	pthread_mutex_lock(&vm->reap_lock);
	vm->vcpus_joined = true;
	pthread_cond_broadcast(&vm->reap_cond);
	pthread_mutex_unlock(&vm->reap_lock);
	if (vm->con_started) {
		pthread_join(vm->con_thread, NULL);
		vm->con_started = false;
	}
	atomic_store(&vm->state, KVMINI_STATE_STOPPED);
}

int vm_wait(struct vm *vm, int timeout_ms)
{
	int st = atomic_load(&vm->state);
	if (st == KVMINI_STATE_CREATED)
		return -EINVAL;
	if (st == KVMINI_STATE_STOPPED)
		return 0;
	struct pollfd p = {.fd = vm->stop_fd, .events = POLLIN};
	int64_t end = timeout_ms < 0 ? -1 : (int64_t)(boottimer_now_ns() / 1000000) + timeout_ms;
	while (!vm_stopping(vm)) {
		int wait = -1;
		if (end >= 0) {
			int64_t left = end - (int64_t)(boottimer_now_ns() / 1000000);
			if (left <= 0)
				return -ETIMEDOUT;
			wait = (int)left;
		}
		if (poll(&p, 1, wait) < 0 && errno != EINTR)
			return -errno;
	}
	pthread_mutex_lock(&vm->life_lock);
	if (atomic_load(&vm->state) != KVMINI_STATE_STOPPED) {
		vm_reap(vm);
		console_restore(&vm->con);
	}
	pthread_mutex_unlock(&vm->life_lock);
	return 0;
}

int vm_run(struct vm *vm)
{
	if (vm_start(vm, NULL) == 0 || vm_stopping(vm))
		vm_wait(vm, -1);
	return vm->exit_status;
}

/* Pause or resume the console's input and every virtio device's I/O thread. */
static void vm_pause_devices(struct vm *vm, bool paused)
{
	console_hold_input(&vm->con, paused);
	for (unsigned int i = 0; i < VM_MAX_VIRTIO; i++)
		if (vm->blk[i])
			vblk_pause(vm->blk[i], paused);
	for (unsigned int i = 0; i < VM_MAX_NETS; i++)
		if (vm->net[i])
			vnet_pause(vm->net[i], paused);
	if (vm->vsock)
		vsock_pause(vm->vsock, paused);
}

int vm_ctrl_alt_del(struct vm *vm, struct vmerr *e)
{
	int st = vm_state(vm);
	if (st != KVMINI_STATE_RUNNING)
		return vmerr_set(e, KVMINI_EXIT_USAGE, 0, "the VM is %s, not running",
				 kvmini_state_name(st));
	if (i8042_send_ctrl_alt_del(&vm->kbc) < 0)
		return vmerr_set(e, KVMINI_EXIT_USAGE, EBUSY,
				 "the guest has not read the last Ctrl-Alt-Del yet (its keyboard "
				 "driver is missing or busy)");
	log_info(&vm->log, "sent Ctrl-Alt-Del to the guest");
	return 0;
}

int vm_pause(struct vm *vm, struct vmerr *e)
{
	pthread_mutex_lock(&vm->life_lock);
	int ret = 0;
	int st = vm_state(vm);
	if (st != KVMINI_STATE_RUNNING) {
		ret = vmerr_set(e, KVMINI_EXIT_USAGE, 0, "the VM is %s, not running",
				kvmini_state_name(st));
	} else if (vcpu_ctl_pause(&vm->ctl, vm->vcpu, vm->nr_vcpus) < 0) {
		ret = vmerr_set(e, KVMINI_EXIT_USAGE, 0, "the VM stopped while pausing");
	} else {
		/* vCPUs first: no new kick can reach a device once they are parked. */
		vm_pause_devices(vm, true);
		atomic_store(&vm->state, KVMINI_STATE_PAUSED);
		log_info(&vm->log, "paused");
	}
	pthread_mutex_unlock(&vm->life_lock);
	return ret;
}

int vm_resume(struct vm *vm, struct vmerr *e)
{
	pthread_mutex_lock(&vm->life_lock);
	int ret = 0;
	int st = vm_state(vm);
	if (st != KVMINI_STATE_PAUSED) {
		ret = vmerr_set(e, KVMINI_EXIT_USAGE, 0, "the VM is %s, not paused",
				kvmini_state_name(st));
	} else {
		vm_pause_devices(vm, false);
		atomic_store(&vm->state, KVMINI_STATE_RUNNING);
		vcpu_ctl_resume(&vm->ctl);
		log_info(&vm->log, "resumed");
	}
	pthread_mutex_unlock(&vm->life_lock);
	return ret;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	/* Threads first: nothing may touch devices or memory after this. */
	if (vm->ctl_ready && vm->stop_fd >= 0 && !vm_stopping(vm))
		vm_stop(vm, KVMINI_EXIT_OK, "destroyed");
	pthread_mutex_lock(&vm->life_lock);
	if (atomic_load(&vm->state) != KVMINI_STATE_CREATED &&
	    atomic_load(&vm->state) != KVMINI_STATE_STOPPED)
		vm_reap(vm);
	pthread_mutex_unlock(&vm->life_lock);
	for (unsigned int i = 0; i < VM_MAX_CPUS; i++)
		vcpu_fini(&vm->vcpu[i]);
	for (unsigned int i = 0; i < VM_MAX_VIRTIO; i++)
		vblk_destroy(vm->blk[i]);
	for (unsigned int i = 0; i < VM_MAX_NETS; i++)
		vnet_destroy(vm->net[i]);
	vsock_destroy(vm->vsock);
	if (vm->kbc_ready)
		i8042_fini(&vm->kbc);
	if (vm->com1_ready)
		uart_fini(&vm->com1);
	if (vm->con_ready)
		console_fini(&vm->con);
	kvm_vm_close(&vm->kvm);
	gmem_fini(&vm->mem);
	if (vm->stop_fd >= 0)
		close(vm->stop_fd);
	if (vm->ctl_ready)
		vcpu_ctl_fini(&vm->ctl);
	free(vm->cmdline);
	confine_free(&vm->confine);
	pthread_mutex_destroy(&vm->stop_lock);
	pthread_mutex_destroy(&vm->life_lock);
	pthread_mutex_destroy(&vm->reap_lock);
	pthread_cond_destroy(&vm->reap_cond);
	trace_fini(&vm->trace);
	nbout_close(&vm->err);
	free(vm);
}
