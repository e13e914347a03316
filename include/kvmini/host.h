/* host: what the host machine can do for a VM (hardware virtualization, memory). */
#ifndef KVMINI_HOST_H
#define KVMINI_HOST_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvmini/confine.h"
#include "kvmini/vmerr.h"

/*
 * Why standard guests would run slowly here, or NULL if the host has hardware virtualization:
 * PVM (a software KVM, /sys/module/kvm_pvm) or a CPU without vmx/svm. `sysfs` and `cpuinfo`
 * are normally "/sys" and "/proc/cpuinfo" (tests point them elsewhere).
 */
const char *host_slow_kvm_reason(const char *sysfs, const char *cpuinfo);

/* This process's resident memory in bytes (from /proc/self/statm). 0 or -errno. */
int host_rss(uint64_t *bytes);

/*
 * The calling thread gives up every capability it has (effective, permitted, inheritable,
 * ambient and, where it may, the bounding set) and sets PR_SET_NO_NEW_PRIVS, so neither it nor
 * what it starts or executes gets any back. Threads it creates later start with none.
 * Nothing to do (0) for a thread without capabilities. 0, or -EPERM when they stayed.
 */
int host_drop_caps(void);

/* Refuse guest memory larger than this host's RAM: KVMINI_EXIT_RESOURCE with a message. */
int host_check_memory(uint64_t mem_size, struct vmerr *e);

/*
 * Stack size of kvmini's own threads (vCPUs, device I/O). Their deepest paths (an exit
 * handler logging a line) need a few KiB; glibc's default, 8 MiB, only costs address space,
 * and where the host's transparent huge pages are "always" a 2 MiB page of it can become
 * resident. Below 2 MiB, no huge page fits.
 */
#define HOST_THREAD_STACK (256 * 1024)

/* Start `fn(arg)` on a thread with a HOST_THREAD_STACK stack, named `name` (cut to the 15
 * characters Linux keeps) and confined by `confine`'s filter for `kind` (none: NULL) before
 * `fn` runs, with every signal blocked but the fatal ones (host_thread_sigmask). Returns once
 * the filter is in place: 0, or -errno (the thread did not run `fn` and was joined). */
int host_thread_start(pthread_t *t, void *(*fn)(void *), void *arg, const char *name,
		      const struct confine *confine, int kind);

/* The signal mask of kvmini's own threads: every signal but SIGSEGV, SIGBUS, SIGILL, SIGFPE,
 * SIGABRT and SIGSYS, whose handler must run in the thread that caused them. */
void host_thread_sigmask(sigset_t *set);

/* Read an eventfd's count to zero (retrying an interrupted read; a non-blocking fd that is at
 * zero already is left so): what an I/O thread does with a kick or control eventfd. */
void host_eventfd_drain(int fd);

#endif
