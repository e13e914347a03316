/* vmerr: one human-readable error line plus the process exit status it maps to. */
#ifndef KVMINI_VMERR_H
#define KVMINI_VMERR_H

#include "kvmini.h" /* enum kvmini_status: the exit statuses */

#define VMERR_MSG_MAX KVMINI_ERROR_MAX

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
