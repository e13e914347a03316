/* api: the control socket's REST requests, handled without any HTTP (apisrv carries them). */
#ifndef KVMINI_API_H
#define KVMINI_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmini.h"
#include "kvmini/cli.h"

#define API_BODY_MAX (64 * 1024) /* larger request bodies get 413 */
#define API_VERSION  1		 /* the "api_version" in GET /version */

/* What the handler does to the VM: the running VMM's own functions, or a test's fakes. Each
 * returns 0 or -errno with the reason in `e`; -EINVAL with KVMINI_EXIT_USAGE means the VM is
 * in the wrong state (409). */
struct api_vm_ops {
	int (*state)(void *opaque); /* enum kvmini_state */
	int (*pause)(void *opaque, struct kvmini_error *e);
	int (*resume)(void *opaque, struct kvmini_error *e);
	/* Send Ctrl-Alt-Del; destroy after `timeout_s` seconds unless it stopped (0: never). */
	int (*shutdown)(void *opaque, unsigned int timeout_s, struct kvmini_error *e);
	int (*destroy)(void *opaque, struct kvmini_error *e);
	int (*stats)(void *opaque, struct kvmini_stats *out, struct kvmini_error *e);
	/* A new rate limit for disk (net false) or network card `index`; -ENOENT: none. */
	int (*set_limit)(void *opaque, bool net, unsigned int index,
			 const struct kvmini_rate_limit *l, struct kvmini_error *e);
};

/* The VM an API serves. */
struct api {
	const struct api_vm_ops *ops;
	void *opaque;
	const struct cli *config; /* the effective configuration (GET /vm, /vm/config) */
	int pid;		  /* the VMM's process */
	uint64_t start_ns;	  /* CLOCK_MONOTONIC when the VM started (GET /vm uptime) */
	struct kvmini_vm *vm;	  /* the server thread takes its seccomp filter, or NULL */
};

/* One answer: an HTTP status and a JSON body (malloc'd, or NULL for none: 204). */
struct api_response {
	int status;
	char *body;
	const char *allow; /* the Allow header for 405, else NULL */
};

/* One route, for the description check (docs/api.yaml lists exactly these). */
struct api_route {
	const char *method; /* "GET" or "PUT" */
	const char *path;
};

/* The routes the handler serves, `*n` of them. */
const struct api_route *api_routes(size_t *n);

/* How many frames network card `n` dropped; `buf` (`len` bytes, cut short if need be) gets the
 * nonzero counters as "tx_offload 3, rx_oversize 1", the names of stats' "dropped". */
uint64_t api_net_drops_text(const struct kvmini_net_stats *n, char *buf, size_t len);

/*
 * Handle one request: `method` and `url` (path, an optional "?query" is ignored) as the
 * client sent them, and the body (`len` bytes, not NUL-terminated; PUT bodies may be empty or
 * a JSON object). Always fills `r` (the caller frees r->body): 200/202/204 on success; 400
 * malformed JSON, a body that is not an object, unknown keys or wrong types; 404 unknown
 * path; 405 wrong method (with Allow); 409 wrong state; 413 body over API_BODY_MAX; 500 a
 * host failure; every error with {"error": "one line"}.
 */
void api_handle(const struct api *a, const char *method, const char *url, const char *body,
		size_t len, struct api_response *r);

#endif
