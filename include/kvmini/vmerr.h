/* vmerr: one human-readable error line plus the process exit status it maps to. */
#ifndef KVMINI_VMERR_H
#define KVMINI_VMERR_H

/*
 * Process exit statuses (documented in README.md and `kvmini --help`).
 * Every failure path picks one of these when it records its message.
 */
enum kvmini_status {
	KVMINI_EXIT_OK = 0,    /* guest reset via i8042 (normal reboot), or Ctrl-A x */
	KVMINI_EXIT_HOST = 1,  /* host-side failure while running (an ioctl or syscall failed) */
	KVMINI_EXIT_USAGE = 2, /* bad command line: unknown option, bad value */
	KVMINI_EXIT_INPUT = 3, /* bad input file: missing, not a kernel, truncated, does not fit */
	KVMINI_EXIT_RESOURCE = 4, /* the host cannot provide it: no /dev/kvm, capability, memory */
	KVMINI_EXIT_GUEST = 5,	  /* guest crashed: triple fault/shutdown, unexpected exit */
	KVMINI_EXIT_SIGNAL = 128, /* 128 + N: stopped by signal N (SIGINT 130, SIGTERM 143) */
};

#define VMERR_MSG_MAX 512

/* The first error recorded wins: the innermost failure names the problem. */
struct vmerr {
	int status;		 /* enum kvmini_status; 0 while no error was recorded */
	char msg[VMERR_MSG_MAX]; /* one line, no trailing newline */
};

/*
 * Record an error (unless one is already recorded) and return -errnum, or -EINVAL when
 * errnum is 0, so callers can write `return vmerr_set(e, ...);`. When errnum is non-zero
 * its strerror() text is appended. `e` may be NULL (the message is dropped).
 */
int vmerr_set(struct vmerr *e, int status, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Forget any recorded error. */
void vmerr_clear(struct vmerr *e);

#endif
