/* vmdir: where managed VMs live: runtime folders (sockets, pid, console log), definitions. */
#ifndef KVMINI_VMDIR_H
#define KVMINI_VMDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kvmini.h"

#define VMDIR_PATH_MAX 512

/*
 * A running VM's folder, $RUNTIME/NAME/ (0700):
 *   lock         held (an OFD write lock) by the VMM process for its whole life
 *   pid          its pid, written once it runs
 *   api.sock     the REST control socket (0600)
 *   console.sock its serial console, detached VMs only (0600)
 *   console.log  a detached VM's console output, capped (console.log.1: the previous part)
 *   vmm.log      a detached VMM's own messages
 *   vsock.sock   the vsock device's host socket of a --rootfs VM (kvmini exec NAME uses it)
 *   config.json  the effective configuration
 *   exit         once it stopped: {"status": N, "reason": "...", "time": UNIX seconds}
 */
#define VMDIR_LOCK	   "lock"
#define VMDIR_PID	   "pid"
#define VMDIR_API_SOCK	   "api.sock"
#define VMDIR_CONSOLE_SOCK "console.sock"
#define VMDIR_CONSOLE_LOG  "console.log"
#define VMDIR_VMM_LOG	   "vmm.log"
#define VMDIR_VSOCK_SOCK   "vsock.sock"
#define VMDIR_CONFIG	   "config.json"
#define VMDIR_EXIT	   "exit"

/* $KVMINI_RUNTIME_DIR, else $XDG_RUNTIME_DIR/kvmini, else /run/kvmini (root) or
 * /tmp/kvmini-UID. Created 0700 when `create`. 0 or -errno with `e`. */
int vmdir_runtime(char *out, size_t n, bool create, struct kvmini_error *e);

/* $KVMINI_CONFIG_DIR, else $XDG_CONFIG_HOME/kvmini/vms, else ~/.config/kvmini/vms, else
 * (no HOME) /etc/kvmini/vms. Created 0700 when `create`. */
int vmdir_config(char *out, size_t n, bool create, struct kvmini_error *e);

/* `dir`/`name`/`file` into `out`; -ENAMETOOLONG if it does not fit. */
int vmdir_path(char *out, size_t n, const char *dir, const char *name, const char *file);

/* A claim on a name: the lock held while the VM lives. */
struct vmdir_claim {
	char dir[VMDIR_PATH_MAX]; /* $RUNTIME/NAME */
	int lock_fd;		  /* -1: none */
};

/*
 * Claim `name` under `runtime`: create its folder, take its lock, and clear what a VM that
 * died without cleaning up (SIGKILL) left (sockets, pid, exit record). A name held by a
 * running VM is refused with status 6 (CLI_EXIT_STATE) and -EBUSY.
 */
int vmdir_claim(struct vmdir_claim *cl, const char *runtime, const char *name,
		struct kvmini_error *e);

/* Write `text` to the claim's `file` atomically (temporary file, then rename), mode 0600. */
int vmdir_write(const struct vmdir_claim *cl, const char *file, const char *text);

/* The VM is gone: remove its sockets and pid file, keep the logs, config and exit record,
 * drop the lock. */
void vmdir_release(struct vmdir_claim *cl);

enum vmdir_state {
	VMDIR_NONE = 0,	   /* no runtime folder */
	VMDIR_RUNNING = 1, /* the lock is held: a VMM process owns it */
	VMDIR_EXITED = 2,  /* stopped and recorded its exit */
	VMDIR_DIED = 3,	   /* stopped without recording it (killed): stale files */
};

struct vmdir_info {
	enum vmdir_state state;
	pid_t pid;	  /* the VMM's pid when running (0 if not written yet) */
	int exit_status;  /* VMDIR_EXITED: its status */
	char reason[256]; /* VMDIR_EXITED: why it stopped */
};

/* What became of VM `name` under `runtime`, without taking or disturbing its lock. */
void vmdir_probe(const char *runtime, const char *name, struct vmdir_info *out);

/* Forget the record of VM `name`'s last run (its exit record, config, logs), holding its
 * lock meanwhile. 0, -EBUSY while it runs, -ENOENT when there was nothing to forget. */
int vmdir_forget(const char *runtime, const char *name);

/* The names in folder `dir` (sub-folders for the runtime, NAME.json files for definitions
 * when `json`), sorted; *names is malloc'd, each entry too. Returns the count or -errno. */
int vmdir_names(const char *dir, bool json, char ***names);
void vmdir_free_names(char **names, int n);

#endif
