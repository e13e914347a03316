/* apisrv: the control socket: HTTP/1.1 on a unix socket (libevent's evhttp), requests to api. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "kvmini/apisrv.h"

static const char *apisrv_method(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return "?";
}

static const char *apisrv_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 413:
		return "Payload Too Large";
	default:
		return "Internal Server Error";
	}
}

/* One whole request (libevent has read the headers and the body). */
static void apisrv_request(struct evhttp_request *req, void *arg)
{
	struct apisrv *s = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	struct api_response r;
	api_handle(s->api, apisrv_method(evhttp_request_get_command(req)),
		   evhttp_request_get_uri(req), body ? body : "", body ? len : 0, &r);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();
	if (r.body) {
		evhttp_add_header(h, "Content-Type", "application/json");
		if (out)
			evbuffer_add(out, r.body, strlen(r.body));
	}
	if (r.allow)
		evhttp_add_header(h, "Allow", r.allow);
	evhttp_send_reply(req, r.status, apisrv_reason(r.status), out);
	if (out)
		evbuffer_free(out);
	free(r.body);
}

/* Stop, but first let the loop write out what is queued: the answer to PUT /vm/destroy is
 * usually still in its output buffer when the VM has already stopped. */
static void apisrv_on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct apisrv *s = arg;
	(void)fd;
	(void)what;
	struct timeval drain = {.tv_sec = 0, .tv_usec = APISRV_DRAIN_MS * 1000};
	event_base_loopexit(s->base, &drain);
}

static void *apisrv_thread(void *arg)
{
	struct apisrv *s = arg;
	event_base_dispatch(s->base);
	return NULL;
}

static int apisrv_fail(struct apisrv *s, struct kvmini_error *e, int err, const char *what,
		       const char *path)
{
	if (e && !e->status) {
		snprintf(e->msg, sizeof(e->msg), "control socket %s: %s: %s", path, what,
			 strerror(err));
		e->status = KVMINI_EXIT_RESOURCE;
	}
	apisrv_stop(s);
	return -err;
}

int apisrv_start(struct apisrv *s, const char *path, const struct api *api, unsigned int timeout_s,
		 struct kvmini_error *e)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->stop_fd = -1;
	s->api = api;
	s->fd = cli_listen_unix(path, SOCK_NONBLOCK, e);
	if (s->fd < 0)
		return s->fd;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->base = event_base_new();
	s->http = s->base ? evhttp_new(s->base) : NULL;
	if (s->stop_fd < 0 || !s->http)
		return apisrv_fail(s, e, s->stop_fd < 0 ? errno : ENOMEM, "cannot set up libevent",
				   path);
	/* Every method reaches the handler, which answers 405 with a JSON body. */
	evhttp_set_allowed_methods(s->http, 0x1ff);
	evhttp_set_timeout(s->http, (int)(timeout_s ? timeout_s : APISRV_TIMEOUT_S));
	evhttp_set_max_body_size(s->http, APISRV_HARD_MAX);
	evhttp_set_max_headers_size(s->http, 16384);
	evhttp_set_gencb(s->http, apisrv_request, s);
	if (!evhttp_accept_socket_with_handle(s->http, s->fd))
		return apisrv_fail(s, e, EIO, "libevent would not accept on it", path);
	s->fd_given = true;
	s->stop_ev = event_new(s->base, s->stop_fd, EV_READ, apisrv_on_stop, s);
	if (!s->stop_ev || event_add(s->stop_ev, NULL) < 0)
		return apisrv_fail(s, e, ENOMEM, "cannot set up libevent", path);
	struct kvmini_error te = {0};
	int r = cli_thread_start(&s->thread, apisrv_thread, s, "api", api->vm, KVMINI_THREAD_SERVER,
				 &te);
	if (r < 0) {
		if (e && !e->status)
			*e = te;
		return apisrv_fail(s, e, -r, "cannot start its thread", path);
	}
	s->started = true;
	return 0;
}

void apisrv_stop(struct apisrv *s)
{
	if (s->started) {
		uint64_t one = 1;
		if (write(s->stop_fd, &one, sizeof(one)) < 0) {
			/* cannot fail for a fresh eventfd */
		}
		pthread_join(s->thread, NULL);
		s->started = false;
	}
	if (s->stop_ev)
		event_free(s->stop_ev);
	s->stop_ev = NULL;
	if (s->http)
		evhttp_free(s->http); /* closes the listening socket it accepted on */
	if (s->fd >= 0 && !s->fd_given)
		close(s->fd);
	s->fd_given = false;
	s->http = NULL;
	s->fd = -1;
	if (s->base)
		event_base_free(s->base);
	s->base = NULL;
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	s->stop_fd = -1;
}
