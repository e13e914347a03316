/* agent: the host side of the guest agent protocol (docs/agent-protocol.md), version 1. */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/agent.h"
#include "kvmini/le.h"

/*
 * Everything the agent sends is hostile input: the reader checks the framing, then
 * agent_check_from_guest() each message's type, stream, length and values, before anything is
 * acted on. Buffers are fixed: one message in the reader, one outgoing stdin frame, and a small
 * ring of control frames (HELLO, EXEC, SIGNAL, WINCH), so neither side can make this grow.
 */

#define AGENT_CTL_MAX (16 + AGENT_HDR_LEN + AGENT_MAX_PAYLOAD) /* HELLO + EXEC, or signals */

static void agent_hdr(uint8_t *h, uint8_t type, uint8_t stream, uint32_t len)
{
	le_put32(h, len);
	h[4] = type;
	h[5] = stream;
	h[6] = h[7] = 0;
}

/* ---- parsing ---- */

void agent_reader_init(struct agent_reader *r)
{
	r->hdr_have = r->body_have = r->body_len = 0;
}

int agent_reader_next(struct agent_reader *r, const uint8_t **p, size_t *len, struct agent_msg *m)
{
	while (*len) {
		if (r->hdr_have < AGENT_HDR_LEN) {
			size_t take = AGENT_HDR_LEN - r->hdr_have;
			if (take > *len)
				take = *len;
			memcpy(r->hdr + r->hdr_have, *p, take);
			r->hdr_have += (uint32_t)take;
			*p += take;
			*len -= take;
			if (r->hdr_have < AGENT_HDR_LEN)
				return 0;
			r->body_len = le_get32(r->hdr);
			if (r->body_len > AGENT_MAX_PAYLOAD || r->hdr[4] < AGENT_HELLO ||
			    r->hdr[4] > AGENT_PING || r->hdr[5] > 2 || r->hdr[6] || r->hdr[7])
				return -EPROTO;
			r->body_have = 0;
		}
		size_t take = r->body_len - r->body_have;
		if (take > *len)
			take = *len;
		memcpy(r->body + r->body_have, *p, take);
		r->body_have += (uint32_t)take;
		*p += take;
		*len -= take;
		if (r->body_have == r->body_len)
			break;
	}
	if (r->hdr_have < AGENT_HDR_LEN || r->body_have < r->body_len)
		return 0;
	m->type = r->hdr[4];
	m->stream = r->hdr[5];
	m->len = r->body_len;
	m->payload = r->body;
	r->hdr_have = r->body_have = r->body_len = 0;
	return 1;
}

int agent_check_from_guest(const struct agent_msg *m)
{
	if (m->type != AGENT_DATA && m->stream)
		return -EPROTO;
	switch (m->type) {
	case AGENT_HELLO:
		return m->len == 8 ? 0 : -EPROTO;
	case AGENT_STARTED:
		return m->len == 4 ? 0 : -EPROTO;
	case AGENT_DATA:
		return m->stream == 1 || m->stream == 2 ? 0 : -EPROTO;
	case AGENT_EXIT: {
		if (m->len != 8)
			return -EPROTO;
		uint32_t kind = le_get32(m->payload), value = le_get32(m->payload + 4);
		if (kind == 0 && value <= 255)
			return 0;
		if (kind == 1 && value >= 1 && value <= 64)
			return 0;
		return -EPROTO;
	}
	case AGENT_ERROR: {
		if (m->len < 4 || m->len > 4 + AGENT_MAX_ERROR)
			return -EPROTO;
		uint32_t status = le_get32(m->payload);
		return status >= 125 && status <= 127 ? 0 : -EPROTO;
	}
	default: /* host-to-agent types */
		return -EPROTO;
	}
}

/* ---- encoding ---- */

/* Append NUL-terminated `s` at buf[*off..cap). */
static int agent_put_str(uint8_t *buf, size_t cap, size_t *off, const char *s)
{
	size_t n = strlen(s) + 1;
	if (n > cap - *off)
		return -E2BIG;
	memcpy(buf + *off, s, n);
	*off += n;
	return 0;
}

int agent_encode_exec(uint8_t *buf, size_t cap, const struct agent_exec_req *req)
{
	if (!req->argv || !req->argv[0])
		return -EINVAL;
	if (cap < 24)
		return -E2BIG;
	size_t argc = 0, envc = 0;
	while (req->argv[argc])
		argc++;
	while (req->env && req->env[envc])
		envc++;
	if (argc > AGENT_MAX_ARGS || envc > AGENT_MAX_ARGS)
		return -E2BIG;
	le_put32(buf, req->flags);
	le_put32(buf + 4, req->uid);
	le_put32(buf + 8, req->gid);
	le_put16(buf + 12, req->rows);
	le_put16(buf + 14, req->cols);
	le_put32(buf + 16, (uint32_t)argc);
	le_put32(buf + 20, (uint32_t)envc);
	size_t off = 24;
	int ret = agent_put_str(buf, cap, &off, req->cwd ? req->cwd : "");
	for (size_t i = 0; !ret && i < argc; i++)
		ret = agent_put_str(buf, cap, &off, req->argv[i]);
	for (size_t i = 0; !ret && i < envc; i++)
		ret = agent_put_str(buf, cap, &off, req->env[i]);
	return ret < 0 ? ret : (int)off;
}

/* ---- the exec session ---- */

struct agent_session {
	int sock;
	const struct agent_io *io;
	struct agent_reader rd;
	uint8_t in[AGENT_HDR_LEN + AGENT_MAX_PAYLOAD]; /* one stdin frame being sent */
	size_t in_len, in_off;
	uint8_t ctl[AGENT_CTL_MAX]; /* control frames, sent between stdin frames */
	size_t ctl_len, ctl_off;
	bool hello, started, stdin_open, out_broken[3];
	uint8_t rx[AGENT_MAX_PAYLOAD];
};

static int agent_queue_ctl(struct agent_session *s, uint8_t type, const void *p, uint32_t len)
{
	if (AGENT_HDR_LEN + len > sizeof(s->ctl) - s->ctl_len)
		return -ENOSPC;
	agent_hdr(s->ctl + s->ctl_len, type, 0, len);
	if (len)
		memcpy(s->ctl + s->ctl_len + AGENT_HDR_LEN, p, len);
	s->ctl_len += AGENT_HDR_LEN + len;
	return 0;
}

/* Send what is queued without blocking: the stdin frame in flight first, then control frames,
 * then the next stdin frame. 0, or -EIO. */
static int agent_flush(struct agent_session *s)
{
	for (;;) {
		uint8_t *buf;
		size_t *off, len;
		if (s->in_len && s->in_off) {
			buf = s->in, off = &s->in_off, len = s->in_len;
		} else if (s->ctl_len) {
			buf = s->ctl, off = &s->ctl_off, len = s->ctl_len;
		} else if (s->in_len) {
			buf = s->in, off = &s->in_off, len = s->in_len;
		} else {
			return 0;
		}
		ssize_t w = send(s->sock, buf + *off, len - *off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -EIO;
		}
		*off += (size_t)w;
		if (*off < len)
			continue;
		if (buf == s->in)
			s->in_len = s->in_off = 0;
		else
			s->ctl_len = s->ctl_off = 0;
	}
}

/* Write all of p[0..len) to fd (blocking, or waiting for POLLOUT on a non-blocking fd). A
 * failing fd is given up (its later output discarded), as a shell pipe's reader going away. */
static void agent_write_out(struct agent_session *s, int stream, const uint8_t *p, size_t len)
{
	int fd = stream == 1 ? s->io->out_fd : s->io->err_fd;
	if (fd < 0 || s->out_broken[stream])
		return;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			poll(&pf, 1, -1);
			continue;
		}
		if (w <= 0) {
			s->out_broken[stream] = true;
			return;
		}
		p += w;
		len -= (size_t)w;
	}
}

/* Act on one checked message. 1 when the session is over (res filled), 0 to go on, -EPROTO. */
static int agent_on_msg(struct agent_session *s, const struct agent_msg *m,
			struct agent_result *res, struct vmerr *e)
{
	if (agent_check_from_guest(m) < 0)
		return vmerr_set(e, KVMINI_EXIT_GUEST, EPROTO,
				 "the guest agent sent a malformed message (type %u, %u bytes)",
				 m->type, m->len);
	if (!s->hello && m->type != AGENT_HELLO)
		return vmerr_set(e, KVMINI_EXIT_GUEST, EPROTO,
				 "the guest agent did not start with HELLO");
	switch (m->type) {
	case AGENT_HELLO: {
		uint32_t version = le_get32(m->payload);
		if (s->hello)
			return vmerr_set(e, KVMINI_EXIT_GUEST, EPROTO,
					 "the guest agent said HELLO twice");
		if (version != AGENT_VERSION)
			return vmerr_set(e, KVMINI_EXIT_GUEST, EPROTO,
					 "the guest agent speaks protocol version %u, kvmini %u: "
					 "use the agent built with this kvmini",
					 version, AGENT_VERSION);
		s->hello = true;
		return 0;
	}
	case AGENT_STARTED:
		s->started = true;
		return 0;
	case AGENT_DATA:
		agent_write_out(s, m->stream, m->payload, m->len);
		return 0;
	case AGENT_EXIT: {
		uint32_t kind = le_get32(m->payload);
		res->outcome = kind ? AGENT_SIGNALED : AGENT_EXITED;
		res->value = (int)le_get32(m->payload + 4);
		return 1;
	}
	case AGENT_ERROR: {
		res->outcome = AGENT_REFUSED;
		res->value = (int)le_get32(m->payload);
		size_t n = m->len - 4;
		memcpy(res->msg, m->payload + 4, n);
		res->msg[n] = '\0';
		for (size_t i = 0; i < n; i++) /* one printable line */
			if ((unsigned char)res->msg[i] < ' ' || res->msg[i] == 0x7f)
				res->msg[i] = res->msg[i] ? ' ' : '\0';
		return 1;
	}
	}
	return -EPROTO; /* not reached: agent_check_from_guest() let no other type through */
}

static int64_t agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the socket and act on every complete message. 1 over, 0 go on, <0 error. */
static int agent_on_sock(struct agent_session *s, struct agent_result *res, struct vmerr *e)
{
	ssize_t r = recv(s->sock, s->rx, sizeof(s->rx), MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (r < 0)
		return vmerr_set(e, KVMINI_EXIT_HOST, errno,
				 "the connection to the guest agent failed");
	if (r == 0)
		return vmerr_set(e, KVMINI_EXIT_GUEST, EPROTO,
				 s->hello ? "the guest agent closed the connection before the "
					    "command's exit status"
					  : "the guest agent closed the connection at once");
	const uint8_t *p = s->rx;
	size_t len = (size_t)r;
	while (len) {
		struct agent_msg m;
		int ret = agent_reader_next(&s->rd, &p, &len, &m);
		if (ret < 0)
			return vmerr_set(e, KVMINI_EXIT_GUEST, EPROTO,
					 "the guest agent broke the message framing");
		if (ret == 0)
			break;
		ret = agent_on_msg(s, &m, res, e);
		if (ret)
			return ret;
	}
	return 0;
}

/* Read the caller's stdin into the next DATA frame (an empty one at EOF). */
static void agent_on_stdin(struct agent_session *s)
{
	ssize_t r = read(s->io->in_fd, s->in + AGENT_HDR_LEN, AGENT_MAX_PAYLOAD);
	if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r <= 0) {
		r = 0;
		s->stdin_open = false;
	}
	agent_hdr(s->in, AGENT_DATA, 0, (uint32_t)r);
	s->in_len = AGENT_HDR_LEN + (size_t)r;
	s->in_off = 0;
}

/* Forward each signal number read from sig_fd; SIGWINCH with a winsize_fd becomes WINCH with
 * that terminal's size. A full control ring drops the signal. */
static void agent_on_signal(struct agent_session *s)
{
	uint8_t sig[16];
	ssize_t r = read(s->io->sig_fd, sig, sizeof(sig));
	for (ssize_t i = 0; i < r; i++) {
		uint8_t p[4];
		struct winsize ws;
		if (sig[i] < 1 || sig[i] > 64)
			continue;
		if (sig[i] == SIGWINCH && s->io->winsize_fd >= 0) {
			if (ioctl(s->io->winsize_fd, TIOCGWINSZ, &ws) == 0) {
				le_put16(p, ws.ws_row);
				le_put16(p + 2, ws.ws_col);
				agent_queue_ctl(s, AGENT_WINCH, p, 4);
			}
			continue;
		}
		le_put32(p, sig[i]);
		agent_queue_ctl(s, AGENT_SIGNAL, p, 4);
	}
}

/* A new session on `sock` with HELLO queued. NULL when out of memory. */
static struct agent_session *agent_session_new(int sock, const struct agent_io *io)
{
	struct agent_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->sock = sock;
	s->io = io;
	agent_reader_init(&s->rd);
	s->stdin_open = io->in_fd >= 0;
	uint8_t hello[8];
	le_put32(hello, AGENT_VERSION);
	le_put32(hello + 4, 0);
	agent_queue_ctl(s, AGENT_HELLO, hello, 8);
	return s;
}

static int agent_session_run(struct agent_session *s, struct agent_result *res, struct vmerr *e);

int agent_exec(int sock, const struct agent_exec_req *req, const struct agent_io *io,
	       struct agent_result *res, struct vmerr *e)
{
	memset(res, 0, sizeof(*res));
	struct agent_session *s = agent_session_new(sock, io);
	if (!s)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, ENOMEM, "out of memory");
	int ret = agent_encode_exec(s->ctl + s->ctl_len + AGENT_HDR_LEN,
				    sizeof(s->ctl) - s->ctl_len - AGENT_HDR_LEN, req);
	if (ret < 0) {
		free(s);
		return vmerr_set(e, KVMINI_EXIT_USAGE, -ret,
				 ret == -EINVAL
					 ? "no command given"
					 : "the command, its environment and working directory "
					   "take more than 64 KiB");
	}
	agent_hdr(s->ctl + s->ctl_len, AGENT_EXEC, 0, (uint32_t)ret);
	s->ctl_len += AGENT_HDR_LEN + (size_t)ret;
	return agent_session_run(s, res, e);
}

int agent_copy(int sock, bool in, const char *path, const struct agent_io *io,
	       struct agent_result *res, struct vmerr *e)
{
	memset(res, 0, sizeof(*res));
	size_t n = strlen(path) + 1;
	if (!*path || n > 4096)
		return vmerr_set(e, KVMINI_EXIT_USAGE, EINVAL,
				 "the guest path must be 1 to 4095 bytes long");
	struct agent_session *s = agent_session_new(sock, io);
	if (!s)
		return vmerr_set(e, KVMINI_EXIT_RESOURCE, ENOMEM, "out of memory");
	agent_queue_ctl(s, in ? AGENT_CP_IN : AGENT_CP_OUT, path, (uint32_t)n);
	s->started = true; /* no STARTED for copies: the tar stream goes at once */
	return agent_session_run(s, res, e);
}

/* Relay until the agent's EXIT or ERROR; frees `s`. */
static int agent_session_run(struct agent_session *s, struct agent_result *res, struct vmerr *e)
{
	const struct agent_io *io = s->io;
	int sock = s->sock, ret;

	int64_t deadline = io->timeout_ms > 0 ? agent_now_ms() + io->timeout_ms : 0;
	int64_t hello_by = io->hello_timeout_ms > 0 ? agent_now_ms() + io->hello_timeout_ms : 0;
	ret = 0;
	while (!ret) {
		if (agent_flush(s) < 0) {
			ret = vmerr_set(e, KVMINI_EXIT_HOST, EIO,
					"the connection to the guest agent failed");
			break;
		}
		struct pollfd pf[4];
		int n = 0, i_sock = -1, i_in = -1, i_sig = -1, i_abort = -1;
		i_sock = n;
		pf[n++] = (struct pollfd){
			.fd = sock,
			.events = (short)(POLLIN | (s->in_len || s->ctl_len ? POLLOUT : 0))};
		if (s->stdin_open && s->started && !s->in_len) {
			i_in = n;
			pf[n++] = (struct pollfd){.fd = io->in_fd, .events = POLLIN};
		}
		if (io->sig_fd >= 0 && s->started) {
			i_sig = n;
			pf[n++] = (struct pollfd){.fd = io->sig_fd, .events = POLLIN};
		}
		if (io->abort_fd >= 0) {
			i_abort = n;
			pf[n++] = (struct pollfd){.fd = io->abort_fd, .events = POLLIN};
		}
		int timeout = -1;
		if (deadline) {
			int64_t left = deadline - agent_now_ms();
			if (left <= 0) {
				res->outcome = AGENT_TIMEOUT;
				ret = 1;
				break;
			}
			timeout = left > 1000000 ? 1000000 : (int)left;
		}
		if (hello_by && !s->hello) {
			int64_t left = hello_by - agent_now_ms();
			if (left <= 0) {
				ret = vmerr_set(
					e, KVMINI_EXIT_GUEST, ETIMEDOUT,
					"the guest agent accepted the connection but did not "
					"answer within %d s",
					io->hello_timeout_ms / 1000);
				break;
			}
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
		}
		int r = poll(pf, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR) {
			ret = vmerr_set(e, KVMINI_EXIT_HOST, errno, "poll failed");
			break;
		}
		if (r <= 0)
			continue;
		if (i_abort >= 0 && pf[i_abort].revents) {
			res->outcome = AGENT_ABORTED;
			ret = 1;
			break;
		}
		if (pf[i_sock].revents & (POLLIN | POLLHUP | POLLERR))
			ret = agent_on_sock(s, res, e);
		if (!ret && i_in >= 0 && pf[i_in].revents)
			agent_on_stdin(s);
		if (!ret && i_sig >= 0 && pf[i_sig].revents)
			agent_on_signal(s);
	}
	free(s);
	return ret < 0 ? ret : 0;
}

int agent_status(const struct agent_result *res)
{
	switch (res->outcome) {
	case AGENT_EXITED:
		return res->value;
	case AGENT_SIGNALED:
		return 128 + res->value;
	case AGENT_REFUSED:
		return res->value;
	case AGENT_TIMEOUT:
		return 124;
	case AGENT_ABORTED:
	default:
		return 125;
	}
}
