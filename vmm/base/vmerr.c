/* vmerr: record the first error of a failing operation as one line and an exit status. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/vmerr.h"

int vmerr_set(struct vmerr *e, int status, int errnum, const char *fmt, ...)
{
	int ret = errnum ? -errnum : -EINVAL;

	if (!e || e->status)
		return ret;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(e->msg) && errnum)
		snprintf(e->msg + n, sizeof(e->msg) - (size_t)n, ": %s", strerror(errnum));
	/* One line: a newline inside a path or a guest string would break it. */
	for (char *p = e->msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	e->status = status ? status : KVMINI_EXIT_HOST;
	return ret;
}

void vmerr_clear(struct vmerr *e)
{
	e->status = 0;
	e->msg[0] = '\0';
}
