/* confine: seccomp filters, one per kind of thread. A VM compiles its programs once, on the
 * thread that builds it (confine_build), and each thread installs its own on itself
 * (confine_enter) before it first touches guest-controlled data. No allocation, file or lock
 * is needed to install one, so a thread can do it as its first act. */
#ifndef KVMINI_CONFINE_H
#define KVMINI_CONFINE_H

#include <linux/filter.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kvmini/vmerr.h"

/* ASan and UBSan builds (make asan, the fuzzers): their runtime makes system calls of its own
 * (alternate signal stacks, dumpability checks: added to every list), and the leak checker
 * clones a tracer from the thread that exits the process, so the CONTROL and EXEC kinds are
 * not installed there. Release builds have neither exception. */
#if defined(__SANITIZE_ADDRESS__)
#define CONFINE_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define CONFINE_SANITIZED 1
#endif
#endif

enum confine_mode {
	CONFINE_OFF = 0,  /* no filter */
	CONFINE_LOG = 1,  /* forbidden calls are allowed and logged by the kernel (audit) */
	CONFINE_KILL = 2, /* forbidden calls raise SIGSYS: one line, then exit 159 */
};

/* Kinds of thread; each has its own list (confine.c says why each call is in it). */
enum confine_kind {
	CONFINE_VCPU = 0, /* KVM_RUN and the MMIO/PIO handlers */
	CONFINE_BLK,	  /* a disk's io_uring loop */
	CONFINE_NET,	  /* a network card's tap loop */
	CONFINE_VSOCK,	  /* the vsock device and its host sockets */
	CONFINE_CONSOLE,  /* the serial console's input and output */
	CONFINE_CONTROL,  /* a program's thread that waits for, stops and destroys the VM */
	CONFINE_EXEC,	  /* CONTROL, and runs commands through the guest agent */
	CONFINE_SERVER,	  /* CONTROL, and serves clients on sockets (API, console, signals) */
	CONFINE_KINDS,
};

struct confine_params {
	pid_t pid;	    /* the process's own: tgkill only within it */
	int kick_signal;    /* the vCPU kick */
	bool console_files; /* the console callback rotates files (kvmini --detach) */
	unsigned int probe; /* test hook: 1 + the kind whose thread calls a forbidden syscall */
};

struct confine {
	int mode; /* enum confine_mode */
	unsigned int probe;
	struct sock_fprog prog[CONFINE_KINDS]; /* len 0: none (mode off) */
};

/* Compile every kind's program for mode `mode`. 0, or -errno with `e` set. */
int confine_build(struct confine *c, int mode, const struct confine_params *p, struct vmerr *e);
void confine_free(struct confine *c);

/* Install kind's program on the calling thread (no_new_privs first, for this thread), and
 * remember `name` for the SIGSYS line. Nothing happens when the mode is off. 0 or -errno. */
int confine_enter(const struct confine *c, int kind, const char *name);

/* The test hook: if it names `kind`, call a syscall no list allows (which ends the process in
 * kill mode). Normally does nothing. */
void confine_probe(const struct confine *c, int kind);

const char *confine_kind_name(int kind);
/* How many distinct system calls kind's list allows (the docs' and tests' count). */
unsigned int confine_count(int kind);
int confine_parse_mode(const char *text); /* "off", "log", "kill"; -EINVAL otherwise */

/* SIGSYS from a filter: write "kvmini: error: THREAD thread made system call N, which
 * its seccomp filter forbids; stopping (exit 159)" to fd. Async-signal-safe. */
void confine_report(const siginfo_t *si, int fd);
/* In kill mode, a SIGSYS handler that reports and _exit()s, unless the process has one. */
int confine_sigsys_setup(struct vmerr *e);

#endif
