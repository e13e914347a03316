/* vm: the machine builder: composes KVM, memory, buses, devices and vCPUs into one VM. */
#ifndef KVMINI_VM_H
#define KVMINI_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini.h"
#include "kvmini/boot.h"
#include "kvmini/boottimer.h"
#include "kvmini/bus.h"
#include "kvmini/confine.h"
#include "kvmini/console.h"
#include "kvmini/gmem.h"
#include "kvmini/i8042.h"
#include "kvmini/kvm_vm.h"
#include "kvmini/log.h"
#include "kvmini/trace.h"
#include "kvmini/uart.h"
#include "kvmini/vcpu.h"
#include "kvmini/virtio_blk.h"
#include "kvmini/virtio_net.h"
#include "kvmini/virtio_vsock.h"
#include "kvmini/vmerr.h"

#define VM_MAX_CPUS   KVMINI_MAX_CPUS
#define VM_MAX_VIRTIO KVMINI_MAX_VIRTIO /* virtio-mmio devices: disks, then network cards */
#define VM_MAX_NETS   KVMINI_MAX_NETS

/* The kernel command line kvmini starts from; the user's part is appended. */
#define VM_DEFAULT_CMDLINE KVMINI_DEFAULT_CMDLINE

struct vm_config {
	uint64_t mem_size; /* bytes */
	unsigned int cpus; /* 1..VM_MAX_CPUS */
	const char *kernel;
	const char *initrd;	 /* or NULL */
	const char *cmdline;	 /* user part, or NULL */
	bool no_default_cmdline; /* use `cmdline` alone */
	const char *name;
	int log_level;				   /* enum log_level */
	int log_fd;				   /* where log lines go (-1: nowhere) */
	void (*log_fn)(void *, int, const char *); /* or to this callback */
	void *log_opaque;
	int console_in;					     /* host fd for guest input, or -1 */
	int console_out;				     /* host fd for guest output, or -1 */
	void (*console_fn)(void *, const uint8_t *, size_t); /* or output to this */
	void *console_opaque;
	unsigned int trace_mask; /* enum trace_cat */
	int trace_fd;
	int kick_signal;      /* 0: SIGRTMIN+2 */
	const char *kvm_path; /* normally "/dev/kvm" */
	uint64_t start_ns;    /* kvmini's start (boottimer_now_ns), 0: at vm_create */
	struct vblk_config disk[VM_MAX_VIRTIO];
	unsigned int nr_disks;
	struct vnet_config net[VM_MAX_NETS]; /* without mac_set, the MAC comes from `name` */
	unsigned int nr_nets;
	bool vsock;		       /* a virtio-vsock device, after the disks and NICs */
	struct vsock_config vsock_cfg; /* cid 0: vm_default_cid() */
	int seccomp;		       /* enum confine_mode for every thread of the VM */
	bool seccomp_console_files;    /* the console callback may open and rename files */
	unsigned int seccomp_probe;    /* test hook: 1 + the confine_kind to make misbehave */
};

/* One virtio-mmio slot as registered: the kernel command line is derived from these. */
struct vm_slot {
	uint64_t base;
	unsigned int gsi;
	char name[8];
};

struct vm {
	struct vm_config cfg;
	struct logger log;
	struct nbout err; /* the log fd, written without blocking */
	struct trace trace;
	struct kvm_vm kvm;
	struct gmem mem;
	struct bus pio;
	struct bus mmio;
	struct uart com1;
	struct i8042 kbc;
	struct boottimer timer;
	struct console con;
	bool con_ready, com1_ready, kbc_ready, ctl_ready;
	struct vblk *blk[VM_MAX_VIRTIO];
	struct vnet *net[VM_MAX_NETS];
	struct vsock *vsock;
	struct vm_slot slot[VM_MAX_VIRTIO];
	unsigned int nr_virtio; /* virtio-mmio slots in use, in order */
	struct boot_info boot;
	char *cmdline; /* the assembled kernel command line */
	struct vcpu_ctl ctl;
	struct vcpu_env env;	/* what every vCPU sees of this VM */
	struct confine confine; /* each kind of thread's seccomp program */
	struct vcpu vcpu[VM_MAX_CPUS];
	unsigned int nr_vcpus; /* created so far */
	pthread_t con_thread;
	bool con_started;
	/* vm_reap tells the console thread that every vCPU is joined (it flushes then). */
	pthread_mutex_t reap_lock;
	pthread_cond_t reap_cond;
	bool vcpus_joined;
	/* Lifecycle: `life_lock` serialises start, pause, resume, wait and destroy. */
	pthread_mutex_t life_lock;
	atomic_int state; /* enum kvmini_state */
	/* Stop state: the first vm_stop() wins and sets the exit status. */
	pthread_mutex_t stop_lock;
	int exit_status;
	char stop_reason[256];
	int stop_fd; /* eventfd, readable once the VM is stopping */
	/* CLOCK_MONOTONIC of vm_start and of the winning vm_stop (0: not yet), for the uptime. */
	atomic_uint_fast64_t started_ns, stopped_ns;
};

/*
 * The CID a VM gets when its config names none: 3 + pid * 1024 + (vm_fd mod 1024), folded into
 * VSOCK_MIN_CID..VSOCK_MAX_CID. Unique among running VMs of one host while pids stay below
 * 2^22 (pid_max's limit) and a process holds fewer than 1024 VMs.
 */
uint64_t vm_default_cid(int pid, int vm_fd);

/*
 * Build a complete VM from `cfg`: open KVM and check its API and every capability used,
 * create the VM, guest memory, irqchip and PIT, devices, vCPUs, and load the kernel.
 * On failure returns -errno with the reason in `e` and *out NULL (everything undone).
 */
int vm_create(struct vm **out, const struct vm_config *cfg, struct vmerr *e);

/* Start every vCPU thread and the console thread. -EALREADY unless CREATED. */
int vm_start(struct vm *vm, struct vmerr *e);

/* Wait up to `timeout_ms` (-1 forever) for the stop, then join every thread and flush the
 * console. 0, -ETIMEDOUT, or -EINVAL when never started. */
int vm_wait(struct vm *vm, int timeout_ms);

/* Start, then wait until stopped. Returns the exit status (enum kvmini_status). */
int vm_run(struct vm *vm);

/*
 * Ask the VM to stop with `status` (first caller wins) and kick every vCPU out of KVM_RUN.
 * Callable from any thread, including vCPU threads and device callbacks.
 */
void vm_stop(struct vm *vm, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* True once a stop was requested. Any thread. */
bool vm_stopping(const struct vm *vm);

/* The state as callers see it (enum kvmini_state): STOPPED as soon as a stop was requested,
 * even before vm_wait has reaped the threads. Any thread. */
int vm_state(const struct vm *vm);

/* Type Ctrl-Alt-Del on the i8042 keyboard. -EINVAL unless RUNNING, -EBUSY while the
 * guest has not read the previous keys. */
int vm_ctrl_alt_del(struct vm *vm, struct vmerr *e);

/* Pause (vCPUs parked, virtio I/O idle) and resume. -EINVAL in the wrong state. */
int vm_pause(struct vm *vm, struct vmerr *e);
int vm_resume(struct vm *vm, struct vmerr *e);

/* Join all threads and free everything. Safe on a half-built VM. */
void vm_destroy(struct vm *vm);

/*
 * Assemble the kernel command line (malloc'd) from the slots the VM registered: the default
 * part, one virtio_mmio.device= per slot (so the user's part, and anything after its " -- ",
 * comes last), then the user's part.
 */
char *vm_build_cmdline(const struct vm_config *cfg, const struct vm_slot *slot,
		       unsigned int nr_slots);

#endif
