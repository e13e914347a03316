/*
 * kvmini.h: libkvmini, a minimal KVM virtual machine monitor as a C library.
 *
 * The whole public API. A program builds a configuration (kvmini_config_*), creates a VM from
 * it, starts it, waits for it (or polls kvmini_vm_stop_fd()), reads why it stopped and
 * destroys it; it can pause and resume it in between. `man 3 libkvmini` has a worked example;
 * examples/run-command.c is a complete program.
 *
 * Conventions
 * - Handles are opaque. Every call that can fail returns 0 or -errno and, when `err` is not
 *   NULL, fills it with one readable line and the status a command-line tool would exit with
 *   (enum kvmini_status). `err` may always be NULL.
 * - No global state: any number of VMs may live in one process, each with its own threads.
 * - Nothing is printed unless the caller asks: log lines go to a callback or an fd chosen
 *   with kvmini_config_set_log(), the guest console to fds or a callback.
 * - The library never calls exit() and never touches the caller's signal dispositions except
 *   one: the kick signal (see kvmini_config_set_kick_signal()), whose handler does nothing;
 *   and, only when asked for seccomp in kill mode, SIGSYS (kvmini_config_set_seccomp()).
 *
 * Threads. Each VM runs one thread per vCPU ("vcpuN"), one per virtio device ("blk-vda",
 * "net-net0") and a console thread ("console"); all block every signal but the kick signal.
 * Config calls are not thread-safe (build a config on one thread). For a VM:
 * kvmini_vm_stop(), kvmini_vm_state(), kvmini_vm_stop_fd() are safe from any thread,
 * including callbacks; kvmini_vm_start(), _wait(), _pause(), _resume() serialise on a
 * per-VM lock and may be called from any one thread at a time or concurrently; callbacks
 * must not call them (they would wait on themselves); kvmini_vm_destroy() must be the last
 * call on a VM, with no other call in flight.
 */
#ifndef KVMINI_H
#define KVMINI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVMINI_API_VERSION 1 /* bumped on incompatible changes (and the soname with it) */

/* How a VM ended, or why a call failed; also the exit statuses of the `kvmini` command. */
enum kvmini_status {
	KVMINI_EXIT_OK = 0,	  /* the guest rebooted (i8042 reset) or was quit/stopped cleanly */
	KVMINI_EXIT_HOST = 1,	  /* host-side failure (an ioctl or syscall failed) */
	KVMINI_EXIT_USAGE = 2,	  /* a bad argument or option value */
	KVMINI_EXIT_INPUT = 3,	  /* a bad input file: missing, not a kernel, truncated */
	KVMINI_EXIT_RESOURCE = 4, /* the host cannot provide it: /dev/kvm, memory, a locked disk */
	KVMINI_EXIT_GUEST = 5,	  /* the guest crashed: triple fault, unexpected exit */
	KVMINI_EXIT_SIGNAL = 128, /* 128 + N: the caller stopped it for signal N */
	/* A kvmini thread made a system call its seccomp filter forbids (128 + SIGSYS, what a
	 * shell shows for a death by SIGSYS): the process ends at once. */
	KVMINI_EXIT_SECCOMP = 159,
};

#define KVMINI_ERROR_MAX 512

/* One failure: the status to exit with and one line naming the problem and what to do. */
struct kvmini_error {
	int status;		    /* enum kvmini_status; 0 when no error */
	char msg[KVMINI_ERROR_MAX]; /* NUL-terminated, no newline */
};

/* Limits of a configuration. */
#define KVMINI_MAX_CPUS	       64
#define KVMINI_MAX_VIRTIO      8 /* disks + network cards */
#define KVMINI_MAX_NETS	       4
#define KVMINI_MIN_MEM	       (16ULL << 20)
#define KVMINI_MAX_MEM	       (1ULL << 40)
#define KVMINI_DISK_SERIAL_MAX 20
#define KVMINI_DEFAULT_MEM     (256ULL << 20)
#define KVMINI_DEFAULT_CMDLINE \
	"console=ttyS0 reboot=k,f panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet"

enum kvmini_log_level {
	KVMINI_LOG_ERROR = 0,
	KVMINI_LOG_WARN = 1,
	KVMINI_LOG_INFO = 2,
	KVMINI_LOG_DEBUG = 3,
};

/* Trace categories (kvmini_config_set_trace). */
enum kvmini_trace {
	KVMINI_TRACE_EXITS = 1u << 0,  /* every VM exit, decoded */
	KVMINI_TRACE_VIRTIO = 1u << 1, /* every virtqueue request */
	KVMINI_TRACE_IRQ = 1u << 2,    /* every interrupt injected */
	KVMINI_TRACE_IO = 1u << 3,     /* every io_uring submission and completion */
	KVMINI_TRACE_ALL = 0xf,
};

/*
 * A rate limit for a disk or a network card: token buckets of bytes and of operations per
 * second (0: no limit), each with a one-time burst spent before its bucket (0: none). An
 * operation is a request for a disk, a frame for a network card, whose two directions have
 * buckets of their own with these rates. A full bucket holds a tenth of a second's worth, and
 * a request bigger than what is left still goes, paid back before the next one.
 */
struct kvmini_rate_limit {
	uint64_t bytes_per_s, bytes_burst;
	uint64_t ops_per_s, ops_burst;
};

/* Disk flags (kvmini_config_add_disk). */
#define KVMINI_DISK_READONLY	 (1u << 0) /* opened read-only, shared lock */
#define KVMINI_DISK_CACHE_UNSAFE (1u << 1) /* flushes are answered without syncing */

enum kvmini_state {
	KVMINI_STATE_CREATED = 0, /* built, no vCPU has run */
	KVMINI_STATE_RUNNING = 1,
	KVMINI_STATE_PAUSED = 2,  /* every vCPU out of KVM_RUN and parked, devices quiescent */
	KVMINI_STATE_STOPPED = 3, /* stopped (or stopping): see kvmini_vm_exit_status() */
};

/* VM exits as counted per vCPU (struct kvmini_stats). */
enum kvmini_exit_kind {
	KVMINI_EXIT_KIND_IO = 0,	   /* port I/O the VMM answered */
	KVMINI_EXIT_KIND_MMIO = 1,	   /* MMIO the VMM answered */
	KVMINI_EXIT_KIND_INTR = 2,	   /* KVM_RUN interrupted: a kick (pause, stop) or signal */
	KVMINI_EXIT_KIND_HLT = 3,	   /* HLT without an in-kernel LAPIC (ends the VM) */
	KVMINI_EXIT_KIND_SHUTDOWN = 4,	   /* triple fault */
	KVMINI_EXIT_KIND_SYSTEM_EVENT = 5, /* reset, shutdown or crash reported by KVM */
	KVMINI_EXIT_KIND_OTHER = 6,	   /* entry failures, internal errors, unknown reasons */
	KVMINI_EXIT_KINDS = 7,
};

/* One disk's counters: requests by type as taken from its queue, bytes of the successful
 * reads and writes. */
struct kvmini_disk_stats {
	char name[8]; /* "vda", "vdb", ... */
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
	uint64_t read_bytes, write_bytes;
	uint64_t errors;	/* requests answered with an error (IOERR or UNSUPP) */
	uint64_t inflight_peak; /* most requests on the host at once */
	uint64_t needs_reset;	/* times the device gave up on the driver (DEVICE_NEEDS_RESET) */
	uint64_t throttled;	/* times its rate limit held the queue back */
	struct kvmini_rate_limit limit; /* the limit in force */
};

/* One network card's counters; every dropped frame is counted in exactly one drop field. */
struct kvmini_net_stats {
	char name[8];		      /* "eth0", ... (the guest's order) */
	uint64_t rx_frames, rx_bytes; /* delivered to the guest */
	uint64_t tx_frames, tx_bytes; /* sent to the tap */
	uint64_t rx_drop_oversize, rx_drop_short, rx_drop_offload, rx_drop_no_room, rx_drop_reset;
	uint64_t rx_errors; /* tap read errors */
	uint64_t tx_drop_short, tx_drop_bad_chain, tx_drop_oversize, tx_errors;
	uint64_t tx_drop_offload; /* tx headers asking for an offload the driver did not accept */
	uint64_t tx_blocked;	  /* times the tap was full and a frame waited (not dropped) */
	uint64_t needs_reset;
	uint64_t rx_throttled, tx_throttled; /* times its rate limit held a direction back */
	struct kvmini_rate_limit limit;	     /* the limit in force (each direction) */
};

/* The vsock device's counters (kvmini_config_set_vsock). */
struct kvmini_vsock_stats {
	uint64_t cid;
	uint64_t host_connects;	       /* host clients whose CONNECT reached a guest listener */
	uint64_t guest_connects;       /* guest connections a host listener PATH_PORT took */
	uint64_t refused;	       /* connection attempts answered with RST (either side) */
	uint64_t closed;	       /* connections ended */
	uint64_t rx_packets, rx_bytes; /* packets and payload bytes to the guest */
	uint64_t tx_packets, tx_bytes; /* packets and payload bytes from the guest */
	uint64_t bad_packets;	       /* bad op, type, len or credit: answered with RST */
	uint64_t bad_cid;	       /* wrong source or destination CID: dropped */
	uint64_t bad_handshake;	       /* host clients that sent no valid CONNECT line */
	uint64_t conn_limit;	       /* refused because the connection table was full */
	uint64_t timeouts;	       /* handshakes, connects or closes never finished */
	uint64_t needs_reset;
	uint64_t ready_knocks; /* the guest's knocks on host port KVMINI_AGENT_PORT (its agent
				* listens: docs/agent-protocol.md) */
};

/* A snapshot of a VM's counters (kvmini_vm_stats). Each counter is read atomically; the set
 * is not one consistent instant. Times in nanoseconds, sizes in bytes. */
struct kvmini_stats {
	int state;		   /* enum kvmini_state */
	unsigned int cpus;	   /* vCPUs */
	uint64_t memory;	   /* guest RAM configured */
	uint64_t uptime_ns;	   /* since kvmini_vm_start() (0 before; frozen once stopped) */
	uint64_t guest_resident;   /* guest RAM resident on the host */
	uint64_t process_resident; /* the whole process's resident memory (every VM in it) */
	uint64_t exits[KVMINI_MAX_CPUS][KVMINI_EXIT_KINDS]; /* per vCPU, by kind */
	unsigned int nr_disks, nr_nets;
	struct kvmini_disk_stats disk[KVMINI_MAX_VIRTIO];
	struct kvmini_net_stats net[KVMINI_MAX_NETS];
	uint64_t console_dropped, log_dropped;
	/* The boot timer (0 until reached): first KVM_RUN and guest init, both counted from the
	 * start time (kvmini_config_set_start_time), and init counted from the first KVM_RUN. */
	uint64_t boot_first_run_ns, boot_init_ns, boot_init_since_run_ns;
	int has_vsock; /* nonzero: the VM has a vsock device, counted in `vsock` */
	struct kvmini_vsock_stats vsock;
};

/* A log line (no newline) at `level`; called on any of the VM's threads, must not block. */
typedef void (*kvmini_log_fn)(void *opaque, int level, const char *line);

/* Guest console output; called on the VM's console thread, may take its time (output then
 * queues, and what does not fit is dropped and counted). */
typedef void (*kvmini_console_fn)(void *opaque, const uint8_t *buf, size_t len);

struct kvmini_config;
struct kvmini_vm;

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *kvmini_version(void);

/* ---- Configuration (not thread-safe; every setter checks its value at once) ---- */

/* A configuration with the defaults: 1 vCPU, 256 MiB, the default command line, log level
 * warn to nowhere, console nowhere, no disks, no network. 0 or -ENOMEM. */
int kvmini_config_new(struct kvmini_config **out);
/* Free it and set *c to NULL. NULL and *c NULL are fine. */
void kvmini_config_free(struct kvmini_config **c);

/* The kernel (bzImage, or ELF vmlinux with a PVH note) and an optional initrd. The files are
 * read by kvmini_vm_create(). Strings are copied. */
int kvmini_config_set_kernel(struct kvmini_config *c, const char *path, struct kvmini_error *err);
int kvmini_config_set_initrd(struct kvmini_config *c, const char *path, struct kvmini_error *err);

/* Kernel command line: appended to KVMINI_DEFAULT_CMDLINE (and the virtio devices'
 * parameters), or used alone with `replace_default`. Text after " -- " goes to the guest's
 * init. NULL: none. */
int kvmini_config_set_cmdline(struct kvmini_config *c, const char *cmdline, int replace_default,
			      struct kvmini_error *err);

/* Guest RAM in bytes (KVMINI_MIN_MEM..KVMINI_MAX_MEM, rounded up to 4 KiB) and vCPUs
 * (1..KVMINI_MAX_CPUS). Whether the host has that much is checked at kvmini_vm_create(). */
int kvmini_config_set_memory(struct kvmini_config *c, uint64_t bytes, struct kvmini_error *err);
int kvmini_config_set_cpus(struct kvmini_config *c, unsigned int cpus, struct kvmini_error *err);

/* VM name, used in log lines and to derive stable MAC addresses (default "kvmini"). */
int kvmini_config_set_name(struct kvmini_config *c, const char *name, struct kvmini_error *err);

/* Add a raw disk image as the next virtio-blk device (vda, vdb, ...). `serial` (<= 20 bytes)
 * or NULL; `flags` KVMINI_DISK_*. The image is opened and locked at kvmini_vm_create(). */
int kvmini_config_add_disk(struct kvmini_config *c, const char *path, unsigned int flags,
			   const char *serial, struct kvmini_error *err);

/* Limit disk `index` (0: the first added; see struct kvmini_rate_limit). NULL: none. */
int kvmini_config_set_disk_limit(struct kvmini_config *c, unsigned int index,
				 const struct kvmini_rate_limit *limit, struct kvmini_error *err);

/* Add a virtio-net card on host tap `tap` (created when allowed). `mac` "52:54:00:12:34:56"
 * or NULL (derived from the VM name and the card's index). */
int kvmini_config_add_net(struct kvmini_config *c, const char *tap, const char *mac,
			  struct kvmini_error *err);

/* Limit network card `index` (0: the first added), each direction on its own. NULL: none. */
int kvmini_config_set_net_limit(struct kvmini_config *c, unsigned int index,
				const struct kvmini_rate_limit *limit, struct kvmini_error *err);

/*
 * Console: guest output (ttyS0) to `out_fd` and input from `in_fd` (-1: none). The fds are
 * borrowed; output is written without ever blocking (a stalled reader loses bytes, counted in
 * kvmini_vm_console_dropped()). A terminal in_fd is put into raw mode while the VM runs, and
 * Ctrl-A x typed on it stops the VM.
 */
/*
 * Give the VM a virtio-vsock device (one per VM) with guest CID `cid`, or with 0 a CID unique
 * among the host's running VMs (3 + pid * 1024 + the VM's fd number mod 1024). With `uds_path`
 * (or NULL) host programs reach guest listeners through that unix socket the way Firecracker
 * does: connect, write "CONNECT <port>\n", read "OK <hostport>\n", then the byte stream; a
 * guest connecting to host port P reaches a program listening on "<uds_path>_P". The socket is
 * created by kvmini_vm_create() (a stale one replaced, one in use refused) and removed by
 * kvmini_vm_destroy(). Setting it again replaces the earlier values.
 */
int kvmini_config_set_vsock(struct kvmini_config *c, uint64_t cid, const char *uds_path,
			    struct kvmini_error *err);

int kvmini_config_set_console_fds(struct kvmini_config *c, int in_fd, int out_fd,
				  struct kvmini_error *err);
/* Or guest output to a callback (replaces out_fd). */
int kvmini_config_set_console_callback(struct kvmini_config *c, kvmini_console_fn fn, void *opaque,
				       struct kvmini_error *err);

/* Log lines up to `level` to `fn` (or, with fn NULL, to fd `fd`, -1: nowhere). */
int kvmini_config_set_log(struct kvmini_config *c, int level, kvmini_log_fn fn, void *opaque,
			  int fd, struct kvmini_error *err);

/* Trace `categories` (KVMINI_TRACE_*, 0: off) to fd `fd`; kvmini_trace_parse() reads the
 * "exits,virtio,irq,io" form. Lines start with seconds.microseconds since the VM was created (or
 * the start time). */
int kvmini_config_set_trace(struct kvmini_config *c, unsigned int categories, int fd,
			    struct kvmini_error *err);
int kvmini_trace_parse(const char *text, unsigned int *categories, struct kvmini_error *err);

/*
 * The signal used to kick vCPU threads out of KVM_RUN: a real-time signal, SIGRTMIN to SIGRTMAX
 * (-EINVAL otherwise; default SIGRTMIN+2). When the VM is
 * created the library installs a handler that does nothing for it, unless the signal already
 * has a handler: then creation fails with -EBUSY (pick another signal). It never changes any
 * other signal.
 */
int kvmini_config_set_kick_signal(struct kvmini_config *c, int signo, struct kvmini_error *err);

/* Count the boot timer and the trace from `monotonic_ns` (CLOCK_MONOTONIC, e.g. when the
 * program started) instead of from kvmini_vm_create(). 0: the default. */
int kvmini_config_set_start_time(struct kvmini_config *c, uint64_t monotonic_ns,
				 struct kvmini_error *err);

/* The KVM device to open (default "/dev/kvm"). */
int kvmini_config_set_kvm_path(struct kvmini_config *c, const char *path, struct kvmini_error *err);

/* seccomp (kvmini_config_set_seccomp). */
enum kvmini_seccomp {
	KVMINI_SECCOMP_OFF = 0,	 /* the library's default: no filter */
	KVMINI_SECCOMP_LOG = 1,	 /* forbidden calls run, and the kernel logs them (audit) */
	KVMINI_SECCOMP_KILL = 2, /* forbidden calls end the process: KVMINI_EXIT_SECCOMP */
	/* Or'ed into the mode: the console callback may open and rename files (the kvmini
	 * command rotates a detached VM's console.log there). Without it, it may not. */
	KVMINI_SECCOMP_CONSOLE_FILES = 0x100,
};

/*
 * Confine every thread of the VM (vCPUs, devices, console) with its own seccomp allow-list,
 * installed by the thread before it touches guest data (docs/security.md lists each). The
 * threads set no_new_privs for themselves. With KVMINI_SECCOMP_KILL a forbidden call raises
 * SIGSYS: unless the program has a SIGSYS handler, the library installs one that writes one
 * line to stderr (kvmini_seccomp_report) and _exit()s with KVMINI_EXIT_SECCOMP. Callbacks
 * (log, console) run under the filters of the threads that call them. The environment
 * variable KVMINI_SECCOMP_PROBE=KIND (vcpu, blk, net, vsock, console, control, exec,
 * server) is a test hook: that kind's threads make a forbidden call once confined.
 */
int kvmini_config_set_seccomp(struct kvmini_config *c, int mode, struct kvmini_error *err);
/* "off", "log" or "kill" into *mode (enum kvmini_seccomp). */
int kvmini_seccomp_parse(const char *text, int *mode, struct kvmini_error *err);

/* ---- VMs ---- */

/*
 * Build a VM from `c` (which may be freed or reused afterwards): check the host, open KVM,
 * create guest memory, devices and vCPUs, load the kernel. Nothing runs yet
 * (KVMINI_STATE_CREATED). 0, or -errno with the reason in `err` and *out NULL.
 */
int kvmini_vm_create(const struct kvmini_config *c, struct kvmini_vm **out,
		     struct kvmini_error *err);

/*
 * Confine the calling thread, one of the program's own, with the VM's seccomp mode and the
 * list for `kind`: a thread that waits for, pauses, stops and destroys VMs and reads their
 * stats (CONTROL), the same and runs commands through kvmini_vm_exec() (EXEC), or the same
 * and serves clients on sockets (SERVER). Do it after kvmini_vm_start() (which creates the
 * VM's threads), once every thread of the program exists: threads cannot be created under
 * the filter. Nothing happens when the mode is off. 0 or
 * -errno.
 */
/*
 * The calling thread gives up every capability (effective, permitted, inheritable, ambient,
 * and the bounding set where it may) and sets PR_SET_NO_NEW_PRIVS; threads it creates later
 * have none either. The VM's own threads (vCPUs, devices, console) drop theirs as they start,
 * since they never need any. Call it once the VM is created (the disks and taps are open)
 * on each thread of the program that has some. 0 (also when there was nothing to drop), or
 * -errno with the reason in `err`.
 */
int kvmini_drop_capabilities(struct kvmini_error *err);

enum kvmini_thread_kind {
	KVMINI_THREAD_CONTROL = 0,
	KVMINI_THREAD_EXEC = 1,
	KVMINI_THREAD_SERVER = 2,
};
int kvmini_vm_confine_thread(struct kvmini_vm *vm, int kind, const char *name,
			     struct kvmini_error *err);

/* For a program's own SIGSYS handler (siginfo_t *): one line naming the thread and the system
 * call, written to fd. Async-signal-safe. */
void kvmini_seccomp_report(const void *siginfo, int fd);

/* Start the vCPUs and the console. Only from CREATED: -EALREADY otherwise. */
int kvmini_vm_start(struct kvmini_vm *vm, struct kvmini_error *err);

/*
 * Wait up to `timeout_ms` (-1: forever, 0: just look) for the VM to stop, then reap its
 * threads. 0 when it has stopped, -ETIMEDOUT when it has not (not a failure: `err` is left
 * untouched), -EINVAL when it never started.
 */
int kvmini_vm_wait(struct kvmini_vm *vm, int timeout_ms, struct kvmini_error *err);

/* An fd that becomes readable (POLLIN) once the VM is stopping; then kvmini_vm_wait()
 * returns soon. Owned by the VM. */
int kvmini_vm_stop_fd(const struct kvmini_vm *vm);

/*
 * Ask the VM to stop with `status` (enum kvmini_status) and `reason` (one line, or NULL);
 * the first stop wins. Returns at once (kvmini_vm_wait() reaps). Any thread. -EINVAL when
 * the VM was never started or has already stopped.
 */
int kvmini_vm_stop(struct kvmini_vm *vm, int status, const char *reason);

/*
 * Pause: every vCPU out of KVM_RUN and parked, the virtio I/O threads idle with nothing in
 * flight. Resume lets them go on. -EINVAL unless RUNNING (pause) or PAUSED (resume); a VM
 * that stops while paused is STOPPED.
 */
int kvmini_vm_pause(struct kvmini_vm *vm, struct kvmini_error *err);
/* A new rate limit for disk `index` while the VM exists (NULL: none). The disk's I/O thread
 * takes it at once; what each bucket holds carries over. -ENOENT: no such disk. */
int kvmini_vm_set_disk_limit(struct kvmini_vm *vm, unsigned int index,
			     const struct kvmini_rate_limit *limit, struct kvmini_error *err);
/* The same for network card `index`. */
int kvmini_vm_set_net_limit(struct kvmini_vm *vm, unsigned int index,
			    const struct kvmini_rate_limit *limit, struct kvmini_error *err);
int kvmini_vm_resume(struct kvmini_vm *vm, struct kvmini_error *err);

/* The state (enum kvmini_state); -EINVAL for NULL. Any thread. */
int kvmini_vm_state(const struct kvmini_vm *vm);

/* After the VM stopped: its status (enum kvmini_status) and why (one line), else -EINVAL
 * and NULL. */
int kvmini_vm_exit_status(const struct kvmini_vm *vm);
const char *kvmini_vm_stop_reason(const struct kvmini_vm *vm);

/*
 * Ask the guest to shut down: the keyboard controller (i8042) types Ctrl-Alt-Del, as on a PC
 * without ACPI. A Linux guest needs CONFIG_SERIO_I8042, CONFIG_KEYBOARD_ATKBD and CONFIG_VT,
 * and an init that handles it (sysctl kernel.ctrl-alt-del = 0 sends it SIGINT); kvmini's
 * guest init syncs, unmounts and reboots, and the VM then stops with KVMINI_EXIT_OK. Returns
 * at once; nothing forces the guest. -EINVAL unless RUNNING, -EBUSY when the guest has not
 * read the previous request's keys yet.
 */
int kvmini_vm_send_ctrl_alt_del(struct kvmini_vm *vm, struct kvmini_error *err);

/* Fill `out` with the VM's counters (see struct kvmini_stats). Any thread, cheap (no lock a
 * vCPU or I/O thread takes; guest_resident walks the page tables with mincore()). 0 or
 * -EINVAL. */
int kvmini_vm_stats(const struct kvmini_vm *vm, struct kvmini_stats *out, struct kvmini_error *err);

/* A readable name for an exit kind: "io", "mmio", "intr", "hlt", "shutdown", "system_event",
 * "other" (NULL when unknown). */
const char *kvmini_exit_kind_name(int kind);

/* The guest's vsock CID, 0 without a vsock device. */
uint64_t kvmini_vm_vsock_cid(const struct kvmini_vm *vm);

/*
 * The host side of the vsock device's unix socket convention (Firecracker's) on `fd`, a stream
 * socket connected to the device (kvmini_config_set_vsock's `uds_path`, or a VM's vsock.sock):
 * write "CONNECT <port>\n" and read the device's "OK <hostport>\n" within `timeout_ms`, byte by
 * byte, so nothing of the stream after it is consumed. 0: `fd` is now a byte stream to the
 * guest's listener on `port`; -ECONNREFUSED (the device closed it: nothing listens there, or
 * the guest's driver is not up yet), -ETIMEDOUT, -EPROTO (another answer), or -errno.
 */
int kvmini_vsock_handshake(int fd, uint32_t port, int timeout_ms);

/*
 * Connect to the guest's vsock listener on `port`, waiting up to `timeout_ms` for it to
 * accept. Returns a connected stream socket (blocking, close-on-exec; the caller closes it), or
 * -ENODEV (no vsock device), -ECONNREFUSED (nothing listens on that port, or the guest's
 * driver is not up yet: try again later), -ETIMEDOUT, -EAGAIN. Any thread.
 */
int kvmini_vm_vsock_connect(struct kvmini_vm *vm, uint32_t port, int timeout_ms,
			    struct kvmini_error *err);

/* The guest agent's vsock port (guests/agent, docs/agent-protocol.md). */
#define KVMINI_AGENT_PORT 1024

/* Statuses of kvmini_vm_exec() beside the command's own (Docker's and libkrun's convention). */
#define KVMINI_EXEC_TIMEOUT	124 /* the time limit passed; the command was not waited for */
#define KVMINI_EXEC_FAILED	125 /* kvmini could not run it: no agent, the VM stopped, ... */
#define KVMINI_EXEC_CANNOT_EXEC 126 /* the command exists but cannot be executed */
#define KVMINI_EXEC_NOT_FOUND	127 /* the command was not found */

/* A command for the guest agent to run (kvmini_vm_exec). Zero-fill, then set what you need. */
struct kvmini_exec {
	const char *const *argv; /* NULL-terminated; argv[0] is looked up in the env's PATH */
	const char *const *env;	 /* NULL-terminated "K=V", the command's whole environment */
	const char *cwd;	 /* working directory in the guest, or NULL: / */
	int set_uid, set_gid;	 /* nonzero: run as uid / gid (else root) */
	unsigned int uid, gid;
	int tty; /* nonzero: on a pty of rows x cols; output is all on stdout_fd */
	unsigned int rows, cols;
	int stdin_fd; /* read until EOF and piped to the command, or -1: /dev/null */
	int stdout_fd,
		stderr_fd; /* the command's streams, written as they come, or -1: discarded */
	int signal_fd;	   /* or -1: each byte read from it is a signal number sent to the command;
			    * with tty, SIGWINCH (28) sends the size of stdout_fd's terminal (or
			    * stdin_fd's) to the pty instead */
	int timeout_ms;	   /* 0: no limit; else KVMINI_EXEC_TIMEOUT once it passed */
	int agent_timeout_ms; /* how long to wait for the agent to answer; 0: 60000 */
};

/*
 * Run a command in the running VM through its guest agent (the VM needs a vsock device and the
 * agent; several calls may run at once from different threads) and wait for it. Returns its
 * status: the exit code, 128+N if signal N killed it, KVMINI_EXEC_NOT_FOUND or
 * KVMINI_EXEC_CANNOT_EXEC (the agent's reason in err->msg), KVMINI_EXEC_TIMEOUT (the command may
 * still run: stop the VM); or -errno when kvmini could not run it, with err->status
 * KVMINI_EXEC_FAILED and the reason (no answer from the agent within agent_timeout_ms, the VM
 * stopped meanwhile, a broken protocol).
 */
int kvmini_vm_exec(struct kvmini_vm *vm, const struct kvmini_exec *x, struct kvmini_error *err);

/*
 * The same over `fd`, a stream socket already connected to a guest agent (for example through
 * a VM's --vsock uds socket after "CONNECT 1024" and its "OK" line, from another process). The
 * caller keeps and closes `fd`. Statuses as kvmini_vm_exec(); a VM that goes away shows as the
 * connection closing (-EPROTO, KVMINI_EXEC_FAILED).
 */
int kvmini_exec_fd(int fd, const struct kvmini_exec *x, struct kvmini_error *err);

/*
 * Copy files through the guest agent connected on `fd` as a POSIX tar stream (ustar with pax
 * records): kvmini_copy_in_fd() sends what it reads from `tar_fd` until EOF, and the agent
 * extracts it into guest directory `guest_dir` (regular files, directories and symbolic links
 * only; a member whose name is absolute or has "..", or that would be written through a
 * symbolic link, is refused); kvmini_copy_out_fd() has the agent archive `guest_path` (members
 * named from its last component) and writes the stream to `tar_fd`. 0, or -errno with
 * err->status KVMINI_EXEC_FAILED and the agent's reason. The stream from the guest is the
 * guest's: extract it with the same care (kvmini cp does).
 */
int kvmini_copy_in_fd(int fd, const char *guest_dir, int tar_fd, struct kvmini_error *err);
int kvmini_copy_out_fd(int fd, const char *guest_path, int tar_fd, struct kvmini_error *err);

/* Console bytes and log lines dropped so far because their reader was too slow. */
uint64_t kvmini_vm_console_dropped(const struct kvmini_vm *vm);
uint64_t kvmini_vm_log_dropped(const struct kvmini_vm *vm);

/* Stop the VM if it runs, wait for its threads, free everything, and set *vm to NULL (so a
 * later call with it gets -EINVAL, not a use after free). NULL and *vm NULL are fine. */
void kvmini_vm_destroy(struct kvmini_vm **vm);

/* A readable name: "created", "running", "paused", "stopped" (NULL for an unknown state). */
const char *kvmini_state_name(int state);

#ifdef __cplusplus
}
#endif

#endif
