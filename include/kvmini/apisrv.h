/* apisrv: the control socket: HTTP/1.1 on a unix socket (libevent's evhttp), requests to api. */
#ifndef KVMINI_APISRV_H
#define KVMINI_APISRV_H

#include <pthread.h>
#include <stdbool.h>

#include "kvmini.h"
#include "kvmini/api.h"

#define APISRV_TIMEOUT_S 10	   /* a client silent this long mid-request is disconnected */
#define APISRV_HARD_MAX	 (1 << 20) /* bodies past this are refused by libevent itself */
#define APISRV_DRAIN_MS	 100	   /* apisrv_stop: time for queued answers to go out */

struct apisrv {
	struct event_base *base;
	struct evhttp *http;
	struct event *stop_ev;
	const struct api *api;
	int fd;	       /* the listening socket */
	bool fd_given; /* evhttp owns fd (and closes it) */
	int stop_fd;   /* eventfd: the server thread ends */
	pthread_t thread;
	bool started;
};

/*
 * Listen on unix socket `path` (created 0600; a stale file there is replaced) and serve `api`
 * on a thread of its own ("api"), which every request runs on: a slow or vanished client
 * never holds a lock a vCPU or I/O thread needs. A client silent for `timeout_s` seconds
 * (0: APISRV_TIMEOUT_S) is disconnected. Bodies over API_BODY_MAX get 413 with a JSON body;
 * over APISRV_HARD_MAX, libevent's own 413 and the connection is closed. 0 or -errno with `e`.
 */
int apisrv_start(struct apisrv *s, const char *path, const struct api *api, unsigned int timeout_s,
		 struct kvmini_error *e);

/* Stop serving (answers already queued get APISRV_DRAIN_MS to go out; requests still being
 * read are dropped) and close the socket. Idempotent. */
void apisrv_stop(struct apisrv *s);

#endif
