/* apisrv: the control socket: HTTP/1.1 on a unix socket (libmicrohttpd), requests to api. */
#ifndef KVMINI_APISRV_H
#define KVMINI_APISRV_H

#include "kvmini.h"
#include "kvmini/api.h"

#define APISRV_TIMEOUT_S 10  /* a client silent this long mid-request is disconnected */
#define APISRV_MAX_CONN	 256 /* concurrent connections; more wait in the listen backlog */

struct apisrv {
	struct MHD_Daemon *mhd;
	const struct api *api;
	int fd; /* the listening socket */
};

/*
 * Listen on unix socket `path` (created 0600; a stale file there is replaced) and serve `api`
 * on one thread of its own (libmicrohttpd's), which every request runs on: a slow or vanished
 * client never holds a lock a vCPU or I/O thread needs. A client silent for `timeout_s`
 * seconds (0: APISRV_TIMEOUT_S) is disconnected. 0 or -errno with `e`.
 */
int apisrv_start(struct apisrv *s, const char *path, const struct api *api, unsigned int timeout_s,
		 struct kvmini_error *e);

/* Stop serving (in-flight responses are dropped) and close the socket. Idempotent. */
void apisrv_stop(struct apisrv *s);

#endif
