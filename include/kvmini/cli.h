/* cli: the command line of `kvmini`, parsed and checked, then applied to a kvmini_config. */
#ifndef KVMINI_CLI_H
#define KVMINI_CLI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmini.h"

enum cli_action { CLI_RUN, CLI_HELP, CLI_RUN_HELP, CLI_VERSION };

/* Exit statuses of the management verbs, beside enum kvmini_status. */
#define CLI_EXIT_STATE                                                        \
	6 /* no VM by that name, the name is taken, or the VM is in the wrong \
	     state for the verb (pause a paused VM) */

#define CLI_ARG_MAX   4096
#define CLI_OWNED_MAX 64 /* strings a struct cli owns (from a config file) */
/* A guest CID given with --vsock cid= or the config's "vsock.cid" (0 there: the default). */
#define CLI_VSOCK_CID_MIN 3ULL
#define CLI_VSOCK_CID_MAX 4294967294ULL /* 0xffffffff is VMADDR_CID_ANY */

struct cli_disk {
	const char *path;
	bool readonly;
	const char *serial; /* or NULL */
	bool cache_unsafe;
	struct kvmini_rate_limit limit; /* bw=, iops=, bw_burst=, iops_burst= */
};

struct cli_net {
	const char *tap;
	const char *mac;		/* or NULL; checked by kvmini_config_add_net */
	struct kvmini_rate_limit limit; /* bw=, pps=, bw_burst=, pps_burst= (each direction) */
};

struct cli {
	enum cli_action action;
	const char *kernel, *initrd, *cmdline, *name;
	bool no_default_cmdline;
	uint64_t mem_size;
	unsigned int cpus;
	int log_level;			 /* enum kvmini_log_level */
	int seccomp;			 /* enum kvmini_seccomp (default kill) */
	unsigned int trace;		 /* enum kvmini_trace; 0: off */
	const char *trace_file;		 /* or NULL: stderr */
	const char *config_file;	 /* --config FILE, or NULL */
	bool detach;			 /* --detach */
	const char *jail;		 /* --jail DIR, or NULL (jail.h) */
	unsigned int jail_uid, jail_gid; /* --uid, --gid (0: not given) */
	const char *jail_netns;		 /* --netns PATH, or NULL */
	const char *jail_cgroup;	 /* --cgroup PATH (under /sys/fs/cgroup), or NULL */
	uint64_t jail_cpu_quota, jail_cpu_period; /* --cpu-max QUOTA/PERIOD (µs; 0: none) */
	uint64_t jail_memory_max;		  /* --memory-max SIZE (bytes; 0: none) */
	bool name_set;				  /* --name given (or "name" in the config file) */
	bool disks_from_file, nets_from_file;	  /* a --disk/--net replaces the file's list */
	struct cli_disk disk[KVMINI_MAX_VIRTIO];
	unsigned int nr_disks;
	struct cli_net net[KVMINI_MAX_NETS];
	unsigned int nr_nets;
	const char *image;     /* --image REF: unpacked into a root for the same guest */
	const char *rootfs;    /* --rootfs DIR: the sandbox guest with the agent (sandbox.c) */
	bool vsock;	       /* --vsock */
	uint64_t vsock_cid;    /* 0: the library's default */
	const char *vsock_uds; /* or NULL */
	char vsock_arg[CLI_ARG_MAX];
	char disk_arg[KVMINI_MAX_VIRTIO][CLI_ARG_MAX]; /* --disk texts, split in place */
	char net_arg[KVMINI_MAX_NETS][CLI_ARG_MAX];    /* --net texts, split in place */
	char *owned[CLI_OWNED_MAX];		       /* freed by cli_free() */
	unsigned int nr_owned;
};

/* A copy of `s` that `c` owns (freed by cli_free), or NULL when out of memory or room. */
const char *cli_own(struct cli *c, const char *s);

/* Free what `c` owns. */
void cli_free(struct cli *c);

/* Fill the defaults (1 vCPU, 256 MiB, name "kvmini", log level warn, action run). */
void cli_defaults(struct cli *c);

/* Record the first failure in `e` (its status and one line; later ones do not overwrite it;
 * `e` may be NULL) and return -err (-EINVAL when `err` is 0). */
int cli_fail(struct kvmini_error *e, int status, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A listening unix socket at `path`, created 0600 from the start (a stale file there is
 * replaced); `flags` go to socket() with SOCK_CLOEXEC (SOCK_NONBLOCK...). The fd, or -errno
 * with `e` (KVMINI_EXIT_RESOURCE). */
int cli_listen_unix(const char *path, int flags, struct kvmini_error *e);

/* Block SIGINT, SIGTERM, SIGHUP and SIGQUIT and return a signalfd for them (or -errno):
 * each front end turns them into a clean stop. Before any thread starts. */
int cli_stop_signalfd(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t cli_now_ns(void);

/*
 * Start `fn(arg)` on a thread named `name` with every signal blocked but the fatal ones (the
 * others belong to the main thread's signalfd) and a CLI_THREAD_STACK stack: the default
 * 8 MiB stack is eligible for a transparent huge page, 2 MiB resident for a thread that needs
 * a few KiB. With a `vm`, the thread confines itself with VM's seccomp filter for `kind`
 * (kvmini_vm_confine_thread) before `fn` runs, and this returns once it did: 0, or -errno
 * with the reason in `e` (the thread then never ran `fn` and was joined).
 */
#define CLI_THREAD_STACK (256 * 1024)
int cli_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name,
		     struct kvmini_vm *vm, int kind, struct kvmini_error *e);

/* True if `name` is a valid VM name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}. */
bool cli_name_ok(const char *name);

/* Parse "error", "warn"/"warning", "info" or "debug"; -EINVAL otherwise. */
int cli_parse_level(const char *s);

/* The name of log level `l` ("warn" for KVMINI_LOG_WARN). */
const char *cli_level_name(int l);

/*
 * Parse argv (`kvmini [--help|--version]` or `kvmini run OPTIONS`). Fills defaults (1 vCPU,
 * 256 MiB, log level warn) and checks every value it can. 0, or -EINVAL with a
 * KVMINI_EXIT_USAGE message in `e`. argv strings are referenced, not copied.
 */
int cli_parse(struct cli *c, int argc, char **argv, struct kvmini_error *e);

/*
 * Put the parsed options into `cfg` (console on stdin/stdout, log to stderr, trace to
 * `trace_fd`). The library checks what the parser cannot (a MAC address). 0 or -errno.
 */
int cli_apply(const struct cli *c, struct kvmini_config *cfg, int trace_fd, struct kvmini_error *e);

/* Parse a size with an optional K, M, G or T suffix (powers of 1024). 0 or -EINVAL/-ERANGE. */
int cli_parse_size(const char *s, uint64_t *out);

/* "QUOTA[/PERIOD]" in microseconds (PERIOD 1000..1000000, default 100000; QUOTA >= 1000), as
 * cgroup v2's cpu.max takes them. 0 or -EINVAL. */
int cli_parse_cpu_max(const char *s, uint64_t *quota, uint64_t *period);

/*
 * One rate-limit key of --disk (ops "iops") or --net (ops "pps") and the config file's
 * "limit" objects: "bw", "OPS", "bw_burst", "OPS_burst", set in `l` from `value` (digits with
 * an optional K/M/G/T suffix, powers of 1024). 1 when `key` is one of them and `value` good,
 * 0 when `key` is none of them, -EINVAL for a bad value.
 */
int cli_limit_key(struct kvmini_rate_limit *l, const char *ops, const char *key, const char *value);

/* Print `kvmini --help` or `kvmini run --help`. */
void cli_usage(FILE *f);
void cli_run_usage(FILE *f);

#endif
