/* vm: one virtual machine: KVM fds, guest memory, buses, devices, vCPUs and its stop state. */
#ifndef KVMINI_VM_H
#define KVMINI_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/boot.h"
#include "kvmini/boottimer.h"
#include "kvmini/bus.h"
#include "kvmini/console.h"
#include "kvmini/gmem.h"
#include "kvmini/i8042.h"
#include "kvmini/log.h"
#include "kvmini/uart.h"
#include "kvmini/vcpu.h"
#include "kvmini/virtio_blk.h"
#include "kvmini/virtio_net.h"
#include "kvmini/vmerr.h"

#define VM_MAX_CPUS   64
#define VM_MAX_VIRTIO 8 /* virtio-mmio devices: disks, then network cards */
#define VM_MAX_NETS   4

/* The kernel command line kvmini starts from; --cmdline appends to it. */
#define VM_DEFAULT_CMDLINE \
	"console=ttyS0 reboot=k,f panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet"

struct vm_config {
	uint64_t mem_size; /* bytes */
	unsigned int cpus; /* 1..VM_MAX_CPUS */
	const char *kernel;
	const char *initrd;	 /* or NULL */
	const char *cmdline;	 /* user part, or NULL */
	bool no_default_cmdline; /* use `cmdline` alone */
	const char *name;
	int log_level;	      /* enum log_level */
	int console_in;	      /* host fd for guest input, or -1 */
	int console_out;      /* host fd for guest output, or -1 */
	int signal_fd;	      /* signalfd whose signals stop the VM, or -1 */
	const char *kvm_path; /* normally "/dev/kvm" */
	uint64_t start_ns;    /* kvmini's start (boottimer_now_ns), 0: at vm_create */
	struct vblk_config disk[VM_MAX_VIRTIO];
	unsigned int nr_disks;
	struct vnet_config net[VM_MAX_NETS]; /* without mac_set, the MAC comes from `name` */
	unsigned int nr_nets;
};

struct vm {
	struct vm_config cfg;
	struct logger log;
	struct nbout err; /* stderr for the log, written without blocking */
	int kvm_fd;
	int vm_fd;
	int vcpu_mmap_size;
	struct kvm_cpuid2 *cpuid; /* what KVM supports; each vCPU gets a patched copy */
	struct gmem mem;
	struct bus pio;
	struct bus mmio;
	struct uart com1;
	struct i8042 kbc;
	struct boottimer timer;
	struct console con;
	bool con_ready, com1_ready, kbc_ready;
	struct vblk *blk[VM_MAX_VIRTIO];
	struct vnet *net[VM_MAX_NETS];
	unsigned int nr_virtio; /* virtio-mmio windows in use, in slot order */
	char virtio_name[VM_MAX_VIRTIO][8];
	struct boot_info boot;
	char *cmdline; /* the assembled kernel command line */
	struct vcpu vcpu[VM_MAX_CPUS];
	unsigned int nr_vcpus; /* created so far */
	/* Stop state: the first vm_stop() wins and sets the exit status. */
	pthread_mutex_t stop_lock;
	atomic_bool stopping;
	int exit_status;
	char stop_reason[256];
	int stop_fd; /* eventfd, readable once the VM is stopping */
};

/*
 * Build a complete VM from `cfg`: open KVM and check its API and every capability used,
 * create the VM, guest memory, irqchip and PIT, devices, vCPUs, and load the kernel.
 * On failure returns -errno with the reason in `e` and *out NULL (everything undone).
 */
int vm_create(struct vm **out, const struct vm_config *cfg, struct vmerr *e);

/*
 * Start every vCPU thread and run the console until the VM stops. Returns the exit status
 * (enum kvmini_status); vm->stop_reason says why.
 */
int vm_run(struct vm *vm);

/* Run until stopped, without a console loop (for embedders and tests): blocks on stop_fd. */
int vm_run_headless(struct vm *vm);

/*
 * Ask the VM to stop with `status` (first caller wins) and kick every vCPU out of KVM_RUN.
 * Callable from any thread, including vCPU threads and device callbacks.
 */
void vm_stop(struct vm *vm, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Set the level of a legacy interrupt line (GSI) on the in-kernel irqchip. */
int vm_irq_line(struct vm *vm, unsigned int gsi, int level);

/* Join all vCPU threads and free everything. Safe on a half-built VM. */
void vm_destroy(struct vm *vm);

/*
 * Assemble the kernel command line (malloc'd): the default part, one virtio_mmio.device=
 * per virtio device (so the user's part, and anything after its " -- ", comes last), then
 * the user's part.
 */
char *vm_build_cmdline(const struct vm_config *cfg);

#endif
