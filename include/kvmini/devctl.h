/* devctl: what other threads want of a device's I/O thread (active, paused, exit), handed over
 * under a lock with a generation number the I/O thread acknowledges. */
#ifndef KVMINI_DEVCTL_H
#define KVMINI_DEVCTL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Other threads (vCPUs running the transport's callbacks, the VM's pause) change the wanted
 * state and wait; the I/O thread, woken by `fd`, takes a snapshot, acts on it and acknowledges
 * its generation. Lock order: the transport's lock, then `lock`; the I/O thread takes `lock`
 * only. A device may keep more of its own shared state under `lock` (devctl_lock()).
 */
struct devctl {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int fd;	    /* eventfd: written once after each change of the wanted state */
	bool alive; /* the I/O thread runs: set before starting it, cleared by devctl_gone() */
	bool want_active, want_exit, want_paused;
	uint64_t want_features; /* the driver's features at activate */
	uint64_t gen;		/* bumped by each change */
	uint64_t done_gen;	/* the last generation the I/O thread acted on */
	bool ready;		/* devctl_init() succeeded */
};

/* What the I/O thread should do now (devctl_snapshot()). */
struct devctl_state {
	bool run;    /* active and not exiting */
	bool stop;   /* the thread must end */
	bool paused; /* move nothing until resumed */
	uint64_t features, gen;
};

/* Lock, condition variable and the eventfd (EFD_CLOEXEC | `efd_flags`). 0 or -errno. */
int devctl_init(struct devctl *c, int efd_flags);

/* Undo devctl_init(); safe on a zeroed struct and after a failed init. */
void devctl_fini(struct devctl *c);

/* ---- other threads ---- */

/* Take `lock` if the I/O thread is alive (true); else false and nothing is held. */
bool devctl_lock(struct devctl *c);

/* With `lock` held and the wanted state changed: bump the generation, unlock, wake the I/O
 * thread. Returns the generation to wait for. */
uint64_t devctl_publish(struct devctl *c);

/* Wait until the I/O thread acted on generation `gen` (or is gone). */
void devctl_wait(struct devctl *c, uint64_t gen);

/* Whether it has (or is gone), without waiting. */
bool devctl_acked(struct devctl *c, uint64_t gen);

/* Set active / exit (sticky) / features and wake the thread: the generation, 0 if it is gone. */
uint64_t devctl_want(struct devctl *c, bool active, bool exit_thread, uint64_t features);

/* Pause (true) or resume the I/O thread and wait until it did. */
void devctl_pause(struct devctl *c, bool paused);

/* ---- the I/O thread ---- */

/* Drain the eventfd (non-blocking or after poll said readable). */
void devctl_drain(struct devctl *c);

/* The wanted state, read under the lock. */
void devctl_snapshot(struct devctl *c, struct devctl_state *s);

/* The I/O thread acted on generation `gen`: wake the waiters. */
void devctl_ack(struct devctl *c, uint64_t gen);

/* The I/O thread ends: nobody waits on it any more. */
void devctl_gone(struct devctl *c);

#endif
