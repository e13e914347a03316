/* apisrv: the control socket: HTTP/1.1 on a unix socket (libmicrohttpd), requests to api. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kvmini/apisrv.h"

/* One request being received: its body so far, or the note that it is too large. */
struct apisrv_req {
	char *body;
	size_t len;
	bool too_big;
};

static enum MHD_Result apisrv_send(struct MHD_Connection *conn, int status, char *body,
				   const char *allow)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		body ? strlen(body) : 0, body ? body : (char *)"",
		body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (body)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result apisrv_access(void *cls, struct MHD_Connection *conn, const char *url,
				     const char *method, const char *version,
				     const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct apisrv *s = cls;
	struct apisrv_req *q = *con_cls;
	(void)version;
	if (!q) {
		/* Headers are in: refuse a declared oversized body before reading it. */
		q = calloc(1, sizeof(*q));
		if (!q)
			return MHD_NO;
		const char *cl =
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > API_BODY_MAX)
			q->too_big = true;
		*con_cls = q;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (q->too_big)
			return MHD_YES; /* read and dropped, so the 413 can be sent */
		if (q->len + n > API_BODY_MAX) {
			q->too_big = true;
			free(q->body);
			q->body = NULL;
			q->len = 0;
			return MHD_YES;
		}
		char *b = realloc(q->body, q->len + n);
		if (!b)
			return MHD_NO;
		memcpy(b + q->len, upload_data, n);
		q->body = b;
		q->len += n;
		return MHD_YES;
	}
	struct api_response r;
	if (q->too_big) {
		char *msg = NULL;
		if (asprintf(&msg, "{\"error\":\"the body is larger than %d bytes\"}",
			     API_BODY_MAX) < 0)
			return MHD_NO;
		return apisrv_send(conn, 413, msg, NULL);
	}
	api_handle(s->api, method, url, q->body ? q->body : "", q->len, &r);
	return apisrv_send(conn, r.status, r.body, r.allow);
}

static void apisrv_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			enum MHD_RequestTerminationCode toe)
{
	struct apisrv_req *q = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (q) {
		free(q->body);
		free(q);
		*con_cls = NULL;
	}
}

static int apisrv_fail(struct kvmini_error *e, int err, const char *what, const char *path)
{
	if (e && !e->status) {
		snprintf(e->msg, sizeof(e->msg), "control socket %s: %s: %s", path, what,
			 strerror(err));
		e->status = KVMINI_EXIT_RESOURCE;
	}
	return -err;
}

int apisrv_start(struct apisrv *s, const char *path, const struct api *api, unsigned int timeout_s,
		 struct kvmini_error *e)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->api = api;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return apisrv_fail(e, ENAMETOOLONG, "path longer than 107 bytes", path);
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return apisrv_fail(e, errno, "socket", path);
	unlink(path);
	/* Created 0600 from the start: no moment where another user could connect. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	umask(old);
	if (r < 0 || listen(fd, 128) < 0) {
		err = r < 0 ? err : errno;
		close(fd);
		return apisrv_fail(e, err, "cannot listen", path);
	}
	s->fd = fd;
	s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
				  apisrv_access, s, MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_TIMEOUT,
				  timeout_s ? timeout_s : (unsigned int)APISRV_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned int)APISRV_MAX_CONN,
				  MHD_OPTION_NOTIFY_COMPLETED, apisrv_done, s, MHD_OPTION_END);
	if (!s->mhd) {
		close(fd);
		unlink(path);
		s->fd = -1;
		return apisrv_fail(e, EIO, "libmicrohttpd would not start", path);
	}
	return 0;
}

void apisrv_stop(struct apisrv *s)
{
	if (s->mhd) {
		MHD_stop_daemon(s->mhd);
		s->mhd = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}
