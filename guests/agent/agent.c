/* kvmini-agent: the guest side of docs/agent-protocol.md (exec, copy in and out, ping). */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/close_range.h>
#include <linux/vm_sockets.h>

#include "sbroot.h"
#include "tar.h"

/*
 * Design and behaviour choices:
 *
 * Processes. The main process only accepts: each connection gets a forked worker, which
 * serves that one request and exits. SIGCHLD's handler reaps every child (workers, and
 * orphans: the agent makes itself a child subreaper, and as PID 1 it is the reaper anyway), so
 * nothing lingers as a zombie. A worker blocks SIGCHLD and watches its command through a
 * signalfd. All descriptors are close-on-exec; 0, 1 and 2 are made valid at start, so the
 * sockets and pipes never take those numbers.
 *
 * Root. --root is resolved with realpath() at start. EXEC chroots in the command's child
 * just before exec; CP_OUT and CP_IN chroot the worker itself, so no path of the host's can
 * reach outside the root. With the root "/" nothing is chrooted.
 *
 * EXEC. The command's child reports a failure before or at exec through a close-on-exec pipe
 * (stage and errno): exec's ENOENT/ENOTDIR is 127, its ENOMEM, E2BIG, EAGAIN, EMFILE and
 * ENFILE are 125 (resources), any other exec error 126; every earlier failure (setsid, tty,
 * chroot, chdir, setgroups/setgid/setuid) is 125. Supplementary groups are dropped only when
 * a uid or gid is given (the agent may be unprivileged in tests); a uid without a gid keeps
 * gid 0, as the protocol says "as root" for what is not given. A pty is opened in the worker
 * (/dev/ptmx of the agent's root, before any chroot: the guest init must mount devpts on
 * /dev/pts), its slave opened by name before the fork and made the controlling terminal of
 * the command's session. Without a pty, stdin is a pipe when asked for, else /dev/null opened
 * before the chroot (a pipe already at EOF when even that is missing).
 *
 * Relay. One poll() loop over the connection, the output fds, the stdin fd and the signalfd.
 * The connection is read without blocking into a one-frame buffer; a stdin DATA that the
 * pipe does not take at once stays there and the connection is not read again until it is
 * written (so at most one frame is buffered). Writes to the connection block (the host not
 * reading stops the relay, and thus the command, by design). With a pty the master's EIO is
 * the end of stream 1, and stream 2's empty DATA follows it at once; host stdin EOF writes the
 * terminal's EOF character (^D) to the master, as a user at a terminal would.
 * Host stdin: DATA on stream 0 when the command has no host stdin (no pty, no flag 2), or
 * after the host's own EOF, is a protocol violation, except an empty one (a repeated or
 * needless EOF is ignored); after the command closed its stdin (EPIPE) stdin data is dropped.
 *
 * Violations. Anything the protocol does not allow (bad header, wrong type or direction,
 * strings not NUL-terminated inside the payload, trailing bytes after EXEC's strings, argc or
 * envc out of range, a signal number outside 1..64) closes the connection; during EXEC the
 * command's process group is killed first, as when the host goes away. Unknown EXEC flag bits
 * are ignored. Fixed-size payloads may be longer than needed (extra bytes are ignored).
 *
 * Closing. After the last message the worker shuts its sending side down and reads (and
 * drops) what the host still sends, for up to 2 s or until it closes, so a close never
 * throws away the agent's last messages with a reset. After an ERROR to CP_IN the worker
 * first reads on to the host's final empty DATA, so the host is never stuck in a write.
 */

#define AG_VERSION     1
#define AG_HDR	       8
#define AG_MAX_PAYLOAD 65536
/* Output read per DATA frame: header and data fit one vsock packet (the guest driver cuts a
 * send into packets of at most 64 KiB: a full 65536-byte payload would add an 8-byte one). */
#define AG_OUT_CHUNK (AG_MAX_PAYLOAD - AG_HDR)
/* The command's stdout and stderr pipes: 1 MiB (the default pipe-max-size) lets a writer of
 * large blocks go on while the agent sends, rather than switching every 64 KiB. */
#define AG_OUT_PIPE (1 << 20)
#define AG_ERR_MAX     1024 /* ERROR message bytes */
#define AG_PORT	       1024
#define AG_MAX_ARGS    4096
#define AG_LINGER_MS   2000
#define AG_BACKLOG     64

enum {
	M_HELLO = 1,
	M_EXEC = 2,
	M_STARTED = 3,
	M_DATA = 4,
	M_SIGNAL = 5,
	M_WINCH = 6,
	M_EXIT = 7,
	M_ERROR = 8,
	M_CP_OUT = 9,
	M_CP_IN = 10,
	M_PING = 11,
};

/* EXEC flags. */
#define EXEC_PTY   1u
#define EXEC_STDIN 2u
#define EXEC_UID   4u
#define EXEC_GID   8u

#define EXEC_FIXED 24 /* EXEC's fixed fields before the strings */

/* Exit statuses in ERROR. */
#define ST_OTHER    125
#define ST_NOEXEC   126
#define ST_NOTFOUND 127

/* One connection: its socket, the frame being received and a payload buffer for sending. */
struct conn {
	int fd;
	size_t have;	/* bytes of rx[] filled: header, then payload */
	size_t tx_fill; /* CP_OUT: bytes gathered in tx[] */
	uint8_t rx[AG_HDR + AG_MAX_PAYLOAD];
	uint8_t tx[AG_MAX_PAYLOAD];
};

/* A parsed EXEC request; the strings point into the connection's receive buffer. */
struct exec_req {
	uint32_t flags, uid, gid;
	uint16_t rows, cols;
	const char *cwd;
	char **argv, **envp;
};

/* Where the command's child failed, reported through the exec pipe. */
enum { CS_SETSID, CS_TTY, CS_DUP, CS_CHROOT, CS_CHDIR, CS_GROUPS, CS_GID, CS_UID, CS_EXEC };

struct child_fail {
	int32_t stage, err;
};

/* The host's side of the command's stdin. */
enum { IN_NONE, IN_OPEN, IN_CLOSED, IN_BROKEN };

/* A running command and its streams. */
struct relay {
	pid_t pid;
	bool pty;
	int out[3];    /* [1] stdout (or the pty master), [2] stderr; -1 once ended */
	int in_fd;     /* stdin pipe's write end or the pty master; -1 when none or closed */
	int master;    /* the pty master, or -1 */
	int sig_fd;    /* signalfd for SIGCHLD */
	int in_state;  /* IN_* */
	size_t in_off; /* pending stdin bytes: rx[AG_HDR + in_off .. AG_HDR + in_len) */
	size_t in_len; /* 0: nothing pending, the connection is read */
	bool reaped;
	int status;
};

static void logmsg(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "kvmini-agent: %s\n", line);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint16_t get_le16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

/* ---- framing ---- */

/* Sends all of iov[0..cnt) (consumed as it goes), across partial sends. 0 or -errno. */
static int send_iov(int fd, struct iovec *iov, int cnt)
{
	while (cnt) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Sends one frame. 0 or -errno (the connection is then unusable). */
static int send_frame(struct conn *c, uint8_t type, uint8_t stream, const void *payload, size_t len)
{
	uint8_t hdr[AG_HDR] = {0};
	put_le32(hdr, (uint32_t)len);
	hdr[4] = type;
	hdr[5] = stream;
	struct iovec iov[2] = {
		{.iov_base = hdr, .iov_len = AG_HDR},
		{.iov_base = (void *)payload, .iov_len = len},
	};
	return send_iov(c->fd, iov, len ? 2 : 1);
}

/* Sends a frame of two u32s (HELLO, STARTED takes one, EXIT). */
static int send_u32s(struct conn *c, uint8_t type, uint32_t a, uint32_t b, size_t n)
{
	uint8_t p[8];
	put_le32(p, a);
	put_le32(p + 4, b);
	return send_frame(c, type, 0, p, n * 4);
}

/* Sends ERROR with status and a message (cut at 1024 bytes). */
static int send_error(struct conn *c, uint32_t status, const char *fmt, ...)
{
	uint8_t p[4 + AG_ERR_MAX + 1];
	va_list ap;
	put_le32(p, status);
	va_start(ap, fmt);
	int n = vsnprintf((char *)p + 4, AG_ERR_MAX + 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > AG_ERR_MAX)
		n = AG_ERR_MAX;
	return send_frame(c, M_ERROR, 0, p, 4 + (size_t)n);
}

static uint32_t frame_len(const struct conn *c)
{
	return get_le32(c->rx);
}

static uint8_t frame_type(const struct conn *c)
{
	return c->rx[4];
}

static const uint8_t *frame_payload(const struct conn *c)
{
	return c->rx + AG_HDR;
}

/*
 * Checks a received header: length, a type the host may send, the stream (0 except for DATA,
 * and host DATA is stdin only), reserved bytes, and the payload's minimum length.
 */
static int check_header(const struct conn *c)
{
	uint32_t len = frame_len(c);
	uint8_t type = c->rx[4], stream = c->rx[5];
	uint32_t min = 0;
	if (len > AG_MAX_PAYLOAD || c->rx[6] || c->rx[7] || stream > 2)
		return -EPROTO;
	switch (type) {
	case M_HELLO:
		min = 8;
		break;
	case M_EXEC:
		min = EXEC_FIXED;
		break;
	case M_SIGNAL:
	case M_WINCH:
		min = 4;
		break;
	case M_CP_OUT:
	case M_CP_IN:
		min = 1;
		break;
	case M_DATA:
	case M_PING:
		break;
	default:
		return -EPROTO; /* unknown, or a type only the agent sends */
	}
	if (stream != 0 || len < min)
		return -EPROTO;
	return 0;
}

/*
 * Reads toward one whole frame in c->rx, with recv flags `flags` (0 or MSG_DONTWAIT).
 * Returns 1 when a checked frame is complete, 0 when MSG_DONTWAIT found nothing more, -EPIPE
 * when the host closed, -EPROTO for a bad header, or -errno.
 */
static int conn_fill(struct conn *c, int flags)
{
	for (;;) {
		size_t want = c->have < AG_HDR ? AG_HDR : AG_HDR + frame_len(c);
		if (c->have == want)
			return 1;
		ssize_t n = recv(c->fd, c->rx + c->have, want - c->have, flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
		if (n == 0)
			return -EPIPE;
		c->have += (size_t)n;
		if (c->have == AG_HDR) {
			int rc = check_header(c);
			if (rc < 0)
				return rc;
		}
	}
}

/* Receives one whole frame, blocking: 0 or as conn_fill(). Drops the previous one first. */
static int conn_recv(struct conn *c)
{
	c->have = 0;
	int rc = conn_fill(c, 0);
	return rc < 0 ? rc : 0;
}

/*
 * The end of a connection: shuts down the sending side, then drops what the host still sends
 * until it closes or AG_LINGER_MS passed, and closes.
 */
static void conn_finish(struct conn *c)
{
	struct timespec start, now;
	if (shutdown(c->fd, SHUT_WR) == 0 && clock_gettime(CLOCK_MONOTONIC, &start) == 0) {
		for (;;) {
			if (clock_gettime(CLOCK_MONOTONIC, &now) < 0)
				break;
			long ms = (now.tv_sec - start.tv_sec) * 1000 +
				  (now.tv_nsec - start.tv_nsec) / 1000000;
			if (ms >= AG_LINGER_MS)
				break;
			struct pollfd p = {.fd = c->fd, .events = POLLIN};
			int r = poll(&p, 1, (int)(AG_LINGER_MS - ms));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			ssize_t n = recv(c->fd, c->rx, sizeof(c->rx), MSG_DONTWAIT);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				break;
		}
	}
	close(c->fd);
	c->fd = -1;
}

/* Takes the next NUL-terminated string at *p before end; NULL when there is none. */
static char *next_string(uint8_t **p, const uint8_t *end)
{
	uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
	if (!nul)
		return NULL;
	char *s = (char *)*p;
	*p = nul + 1;
	return s;
}

/* ---- the root ---- */

/* chroot()s the calling process into root (unless it is "/") and goes to its "/". */
static int enter_root(const char *root)
{
	if (strcmp(root, "/") != 0 && chroot(root) < 0)
		return -errno;
	if (chdir("/") < 0)
		return -errno;
	return 0;
}

/* ---- EXEC ---- */

/*
 * Parses EXEC's payload (the frame in c->rx) into rq; argv and envp are allocated (bounded by
 * the 4096 limits) and freed by the caller. -EPROTO when malformed, -ENOMEM.
 */
static int parse_exec(struct conn *c, struct exec_req *rq)
{
	uint8_t *p = c->rx + AG_HDR;
	const uint8_t *end = p + frame_len(c);
	rq->flags = get_le32(p);
	rq->uid = get_le32(p + 4);
	rq->gid = get_le32(p + 8);
	rq->rows = get_le16(p + 12);
	rq->cols = get_le16(p + 14);
	uint32_t argc = get_le32(p + 16), envc = get_le32(p + 20);
	if (argc < 1 || argc > AG_MAX_ARGS || envc > AG_MAX_ARGS)
		return -EPROTO;
	rq->argv = calloc(argc + 1, sizeof(char *));
	rq->envp = calloc(envc + 1, sizeof(char *));
	if (!rq->argv || !rq->envp)
		return -ENOMEM;
	p += EXEC_FIXED;
	rq->cwd = next_string(&p, end);
	if (!rq->cwd)
		return -EPROTO;
	for (uint32_t i = 0; i < argc; i++)
		if (!(rq->argv[i] = next_string(&p, end)))
			return -EPROTO;
	for (uint32_t i = 0; i < envc; i++)
		if (!(rq->envp[i] = next_string(&p, end)))
			return -EPROTO;
	return p == end ? 0 : -EPROTO;
}

/* In the command's child: reports the failing stage and errno on the exec pipe, exits. */
static void __attribute__((noreturn)) child_fail(int ep, int stage)
{
	struct child_fail f = {.stage = stage, .err = errno};
	ssize_t n;
	do
		n = write(ep, &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	_exit(ST_OTHER);
}

/*
 * In the command's child: new session, stdio from fd0..fd2 (the pty slave when slave >= 0),
 * root, cwd, credentials, default signals, exactly the given environment, execvp. Only
 * returns through child_fail().
 */
static void __attribute__((noreturn)) child_exec(const struct exec_req *rq, const char *root,
						 int fd0, int fd1, int fd2, int slave, int ep)
{
	extern char **environ;
	if (setsid() < 0)
		child_fail(ep, CS_SETSID);
	if (slave >= 0 && ioctl(slave, TIOCSCTTY, 0) < 0)
		child_fail(ep, CS_TTY);
	if (dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0 || dup2(fd2, 2) < 0)
		child_fail(ep, CS_DUP);
	if (enter_root(root) < 0)
		child_fail(ep, CS_CHROOT);
	if (rq->cwd[0] && chdir(rq->cwd) < 0)
		child_fail(ep, CS_CHDIR);
	if ((rq->flags & (EXEC_UID | EXEC_GID)) && setgroups(0, NULL) < 0)
		child_fail(ep, CS_GROUPS);
	if ((rq->flags & EXEC_GID) && setgid(rq->gid) < 0)
		child_fail(ep, CS_GID);
	if ((rq->flags & EXEC_UID) && setuid(rq->uid) < 0)
		child_fail(ep, CS_UID);
	struct sigaction sa = {.sa_handler = SIG_DFL};
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL); /* fails harmlessly for SIGKILL, SIGSTOP, glibc's own */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	environ = rq->envp;
	execvp(rq->argv[0], rq->argv);
	child_fail(ep, CS_EXEC);
}

/* The ERROR status and message for a failure the command's child reported. */
static uint32_t child_fail_status(const struct exec_req *rq, const struct child_fail *f, char *msg,
				  size_t len)
{
	const char *why = strerror(f->err);
	switch (f->stage) {
	case CS_EXEC:
		snprintf(msg, len, "%s: %s", rq->argv[0], why);
		if (f->err == ENOENT || f->err == ENOTDIR)
			return ST_NOTFOUND;
		if (f->err == ENOMEM || f->err == E2BIG || f->err == EAGAIN || f->err == EMFILE ||
		    f->err == ENFILE)
			return ST_OTHER;
		return ST_NOEXEC;
	case CS_CHDIR:
		snprintf(msg, len, "cannot change directory to %s: %s", rq->cwd, why);
		break;
	case CS_CHROOT:
		snprintf(msg, len, "cannot enter the sandbox root: %s", why);
		break;
	case CS_GROUPS:
		snprintf(msg, len, "cannot drop supplementary groups: %s", why);
		break;
	case CS_GID:
		snprintf(msg, len, "cannot set gid %u: %s", rq->gid, why);
		break;
	case CS_UID:
		snprintf(msg, len, "cannot set uid %u: %s", rq->uid, why);
		break;
	case CS_TTY:
		snprintf(msg, len, "cannot set the controlling terminal: %s", why);
		break;
	default:
		snprintf(msg, len, "cannot start the command: %s", why);
		break;
	}
	return ST_OTHER;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/*
 * Opens a pty with the requested window size: *master, and *slave opened by name (both
 * close-on-exec, neither a controlling terminal of the worker).
 */
static int open_pty(const struct exec_req *rq, int *master, int *slave)
{
	char name[128];
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		goto fail;
	struct winsize ws = {.ws_row = rq->rows, .ws_col = rq->cols};
	if (ioctl(m, TIOCSWINSZ, &ws) < 0)
		goto fail;
	int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		goto fail;
	*master = m;
	*slave = s;
	return 0;
fail:;
	int err = errno ? errno : EIO;
	close(m);
	return -err;
}

/*
 * Starts the command. On success fills rl (pid, the parent's ends of its streams) and returns
 * 0; otherwise returns -errno with the ERROR status in *status and its message in msg.
 */
static int spawn(const struct exec_req *rq, const char *root, struct relay *rl, uint32_t *status,
		 char *msg, size_t msglen)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, ep[2] = {-1, -1};
	int master = -1, slave = -1, rc = 0;
	*status = ST_OTHER;

	if (rq->flags & EXEC_PTY) {
		rc = open_pty(rq, &master, &slave);
		if (rc < 0) {
			snprintf(msg, msglen, "cannot open a pty: %s", strerror(-rc));
			goto out;
		}
	} else {
		if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
			rc = -errno;
			snprintf(msg, msglen, "pipe: %s", strerror(errno));
			goto out;
		}
		/* Best effort: a smaller pipe only costs speed. */
		(void)fcntl(out[0], F_SETPIPE_SZ, AG_OUT_PIPE);
		(void)fcntl(err[0], F_SETPIPE_SZ, AG_OUT_PIPE);
		if (rq->flags & EXEC_STDIN) {
			if (pipe2(in, O_CLOEXEC) < 0) {
				rc = -errno;
				snprintf(msg, msglen, "pipe: %s", strerror(errno));
				goto out;
			}
		} else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
			/* No /dev/null: a pipe without writer reads as EOF just the same. */
			if (pipe2(in, O_CLOEXEC) < 0) {
				rc = -errno;
				snprintf(msg, msglen, "pipe: %s", strerror(errno));
				goto out;
			}
			close_fd(&in[1]);
		}
	}
	if (pipe2(ep, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(msg, msglen, "pipe: %s", strerror(errno));
		goto out;
	}

	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		snprintf(msg, msglen, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		close(ep[0]);
		if (slave >= 0)
			child_exec(rq, root, slave, slave, slave, slave, ep[1]);
		child_exec(rq, root, in[0], out[1], err[1], -1, ep[1]);
	}
	close_fd(&ep[1]);
	close_fd(&slave);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);

	struct child_fail f;
	ssize_t n;
	do
		n = read(ep[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	if (n != 0) {
		if (n == (ssize_t)sizeof(f)) {
			*status = child_fail_status(rq, &f, msg, msglen);
			rc = -f.err;
		} else {
			rc = n < 0 ? -errno : -EIO;
			snprintf(msg, msglen, "cannot start the command: lost its status");
		}
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out;
	}

	rl->pid = pid;
	rl->pty = master >= 0;
	rl->master = master;
	rl->out[0] = -1;
	if (master >= 0) {
		rl->out[1] = master;
		rl->out[2] = -1;
		rl->in_fd = master;
		rl->in_state = IN_OPEN;
	} else {
		rl->out[1] = out[0];
		rl->out[2] = err[0];
		rl->in_fd = in[1];
		rl->in_state = in[1] >= 0 ? IN_OPEN : IN_NONE;
	}
	master = out[0] = err[0] = in[1] = -1;
	for (int i = 1; i <= 2; i++)
		if (rl->out[i] >= 0)
			set_nonblock(rl->out[i]);
	if (rl->in_fd >= 0 && rl->in_fd != rl->out[1])
		set_nonblock(rl->in_fd);
	rc = 0;
out:
	close_fd(&ep[0]);
	close_fd(&ep[1]);
	close_fd(&master);
	close_fd(&slave);
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	return rc;
}

/* Sends the end of stream `s` and closes its fd; with a pty, stream 2 ends along with 1. */
static int end_stream(struct conn *c, struct relay *rl, int s)
{
	if (s == 1 && rl->pty) {
		rl->out[1] = -1; /* the master stays open for stdin and WINCH */
		int rc = send_frame(c, M_DATA, 1, NULL, 0);
		return rc < 0 ? rc : send_frame(c, M_DATA, 2, NULL, 0);
	}
	close_fd(&rl->out[s]);
	return send_frame(c, M_DATA, (uint8_t)s, NULL, 0);
}

/* Relays what output fd `s` has: DATA, or the stream's end. 0 or -errno (connection). */
static int relay_output(struct conn *c, struct relay *rl, int s)
{
	ssize_t n = read(rl->out[s], c->tx, AG_OUT_CHUNK);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n > 0)
		return send_frame(c, M_DATA, (uint8_t)s, c->tx, (size_t)n);
	/* EOF, or EIO from a pty master whose slave side is all closed. */
	return end_stream(c, rl, s);
}

/* Writes pending stdin bytes as far as the fd takes them; the connection is read again when
 * none are left. */
static void relay_stdin(struct conn *c, struct relay *rl)
{
	while (rl->in_off < rl->in_len) {
		ssize_t n = write(rl->in_fd, c->rx + AG_HDR + rl->in_off, rl->in_len - rl->in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			/* EPIPE (the command closed stdin) or EIO (pty gone): stdin is dropped. */
			rl->in_state = IN_BROKEN;
			if (!rl->pty)
				close_fd(&rl->in_fd);
			break;
		}
		rl->in_off += (size_t)n;
	}
	if (rl->in_state == IN_CLOSED && !rl->pty)
		close_fd(&rl->in_fd);
	rl->in_off = rl->in_len = 0;
	c->have = 0;
}

/* Handles one frame from the host during EXEC. 0, or -EPROTO for a violation. */
static int relay_frame(struct conn *c, struct relay *rl)
{
	uint32_t len = frame_len(c);
	const uint8_t *p = frame_payload(c);
	switch (frame_type(c)) {
	case M_DATA:
		if (rl->in_state == IN_BROKEN || (!len && rl->in_state != IN_OPEN))
			break;
		if (rl->in_state != IN_OPEN)
			return -EPROTO;
		if (!len) {
			rl->in_state = IN_CLOSED;
			if (!rl->pty) {
				close_fd(&rl->in_fd);
				break;
			}
			c->rx[AG_HDR] = 0x04; /* ^D, the terminal's EOF */
			len = 1;
		}
		rl->in_off = 0;
		rl->in_len = len;
		relay_stdin(c, rl);
		return 0; /* relay_stdin() released the frame, or keeps it pending */
	case M_SIGNAL: {
		uint32_t sig = get_le32(p);
		if (sig < 1 || sig > 64)
			return -EPROTO;
		kill(-rl->pid, (int)sig); /* ESRCH once the group is gone: fine */
		break;
	}
	case M_WINCH:
		if (rl->master >= 0) {
			struct winsize ws = {.ws_row = get_le16(p), .ws_col = get_le16(p + 2)};
			ioctl(rl->master, TIOCSWINSZ, &ws);
		}
		break;
	default:
		return -EPROTO;
	}
	c->have = 0;
	return 0;
}

/* Reaps the command if it has exited. */
static void relay_reap(struct relay *rl)
{
	struct signalfd_siginfo si[8];
	while (read(rl->sig_fd, si, sizeof(si)) > 0)
		;
	if (rl->reaped)
		return;
	int st;
	pid_t r = waitpid(rl->pid, &st, WNOHANG);
	if (r == rl->pid) {
		rl->reaped = true;
		rl->status = st;
	}
}

/*
 * The relay loop: output to the host, host stdin/SIGNAL/WINCH to the command, until both
 * streams ended and the command was reaped. 0 when EXIT may be sent; else -errno (the host went
 * away or violated the protocol; the command's group is then killed).
 */
static int relay(struct conn *c, struct relay *rl)
{
	int rc = 0;
	while (!rc && !(rl->out[1] < 0 && rl->out[2] < 0 && rl->reaped)) {
		struct pollfd pf[5];
		int idx_conn, idx_out[3] = {-1, -1, -1}, idx_in = -1, n = 0;
		idx_conn = n;
		pf[n++] = (struct pollfd){.fd = c->fd, .events = rl->in_len ? 0 : POLLIN};
		for (int s = 1; s <= 2; s++) {
			if (rl->out[s] >= 0) {
				idx_out[s] = n;
				pf[n++] = (struct pollfd){.fd = rl->out[s], .events = POLLIN};
			}
		}
		if (rl->in_len) {
			idx_in = n;
			pf[n++] = (struct pollfd){.fd = rl->in_fd, .events = POLLOUT};
		}
		int idx_sig = n;
		pf[n++] = (struct pollfd){.fd = rl->sig_fd, .events = POLLIN};

		if (poll(pf, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (pf[idx_sig].revents)
			relay_reap(rl);
		for (int s = 1; s <= 2 && !rc; s++)
			if (idx_out[s] >= 0 && pf[idx_out[s]].revents && rl->out[s] >= 0)
				rc = relay_output(c, rl, s);
		if (!rc && idx_in >= 0 && pf[idx_in].revents)
			relay_stdin(c, rl);
		short cev = pf[idx_conn].revents;
		if (!rc && cev) {
			if (pf[idx_conn].events & POLLIN) {
				rc = conn_fill(c, MSG_DONTWAIT);
				if (rc == 1)
					rc = relay_frame(c, rl);
			} else if (cev & (POLLHUP | POLLERR)) {
				rc = -EPIPE;
			}
		}
	}
	if (rc < 0) {
		kill(-rl->pid, SIGKILL);
		if (!rl->reaped)
			while (waitpid(rl->pid, NULL, 0) < 0 && errno == EINTR)
				;
	}
	return rc;
}

/* Serves EXEC (the frame in c->rx). 0 once EXIT or ERROR was sent; -errno otherwise. */
static int do_exec(struct conn *c, const char *root)
{
	struct exec_req rq = {0};
	struct relay rl = {.out = {-1, -1, -1}, .in_fd = -1, .master = -1, .sig_fd = -1};
	char msg[AG_ERR_MAX + 1];
	uint32_t status;
	int rc = parse_exec(c, &rq);
	if (rc == -ENOMEM) {
		rc = send_error(c, ST_OTHER, "out of memory");
		goto out;
	}
	if (rc < 0)
		goto out;

	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0 ||
	    (rl.sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		rc = send_error(c, ST_OTHER, "signalfd: %s", strerror(errno));
		goto out;
	}
	rc = spawn(&rq, root, &rl, &status, msg, sizeof(msg));
	if (rc < 0) {
		rc = send_error(c, status, "%s", msg);
		goto out;
	}
	c->have = 0; /* the EXEC frame (argv, env) is not needed any more */
	rc = send_u32s(c, M_STARTED, (uint32_t)rl.pid, 0, 1);
	if (rc < 0) {
		kill(-rl.pid, SIGKILL);
		while (waitpid(rl.pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto out;
	}
	rc = relay(c, &rl);
	if (!rc) {
		if (WIFSIGNALED(rl.status))
			rc = send_u32s(c, M_EXIT, 1, (uint32_t)WTERMSIG(rl.status), 2);
		else
			rc = send_u32s(c, M_EXIT, 0, (uint32_t)WEXITSTATUS(rl.status), 2);
	}
out:
	/* With a pty, in_fd and out[1] are the master itself. */
	if (rl.in_fd >= 0 && rl.in_fd != rl.master)
		close(rl.in_fd);
	if (rl.out[1] >= 0 && rl.out[1] != rl.master)
		close(rl.out[1]);
	close_fd(&rl.out[2]);
	close_fd(&rl.master);
	close_fd(&rl.sig_fd);
	free(rq.argv);
	free(rq.envp);
	return rc;
}

/* ---- CP_OUT and CP_IN ---- */

/* tar_write()'s sink: gathers the archive into DATA frames of stream 1. */
static int cp_out_sink(void *ctx, const void *buf, size_t len)
{
	struct conn *c = ctx;
	const uint8_t *p = buf;
	while (len) {
		size_t n = AG_OUT_CHUNK - c->tx_fill;
		n = n < len ? n : len;
		memcpy(c->tx + c->tx_fill, p, n);
		c->tx_fill += n;
		p += n;
		len -= n;
		if (c->tx_fill == AG_OUT_CHUNK) {
			int rc = send_frame(c, M_DATA, 1, c->tx, c->tx_fill);
			c->tx_fill = 0;
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

/*
 * Splits the request path into the directory to open and the member base name, as
 * `tar -C parent base` would name it. A last component "." or ".." (or the path "/") is
 * resolved first, so the name is a real one ("." for the root itself).
 */
static int cp_out_split(const char *path, char *parent, char *base, size_t size)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	if (!len)
		return -ENOENT;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	char *slash = strrchr(buf, '/');
	const char *last = slash ? slash + 1 : buf;
	if (!strcmp(last, ".") || !strcmp(last, "..") || !strcmp(buf, "/")) {
		char real[PATH_MAX];
		if (!realpath(buf, real))
			return -errno;
		if (!strcmp(real, "/")) {
			snprintf(parent, size, "/");
			snprintf(base, size, ".");
			return 0;
		}
		memcpy(buf, real, strlen(real) + 1);
		slash = strrchr(buf, '/');
		last = slash + 1;
	}
	if (!slash)
		snprintf(parent, size, ".");
	else if (slash == buf)
		snprintf(parent, size, "/");
	else
		snprintf(parent, size, "%.*s", (int)(slash - buf), buf);
	snprintf(base, size, "%s", last);
	return 0;
}

/* Serves CP_OUT of `path`: DATA stream 1 with the archive, its end, EXIT (0, 0). */
static int do_cp_out(struct conn *c, const char *root, const char *path)
{
	char parent[PATH_MAX], base[PATH_MAX], err[AG_ERR_MAX];
	struct stat st;
	int rc = enter_root(root);
	if (rc < 0)
		return send_error(c, ST_OTHER, "cannot enter the sandbox root: %s", strerror(-rc));
	int pfd = -1;
	rc = cp_out_split(path, parent, base, sizeof(parent));
	if (!rc && (pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		rc = -errno;
	if (!rc && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	if (rc < 0) {
		if (pfd >= 0)
			close(pfd);
		if (rc == -ENOENT || rc == -ENOTDIR)
			return send_error(c, ST_OTHER, "no such file: %s", path);
		return send_error(c, ST_OTHER, "%s: %s", path, strerror(-rc));
	}
	c->tx_fill = 0;
	err[0] = '\0';
	rc = tar_write(pfd, base, cp_out_sink, c, err, sizeof(err));
	close(pfd);
	if (rc < 0)
		return err[0] ? send_error(c, ST_OTHER, "%s", err) : rc;
	if (c->tx_fill)
		rc = send_frame(c, M_DATA, 1, c->tx, c->tx_fill);
	if (!rc)
		rc = send_frame(c, M_DATA, 1, NULL, 0);
	if (!rc)
		rc = send_u32s(c, M_EXIT, 0, 0, 2);
	return rc;
}

/* After a failed CP_IN: reads on (dropping DATA) to the host's empty DATA. */
static int cp_in_drain(struct conn *c)
{
	for (;;) {
		int rc = conn_recv(c);
		if (rc < 0)
			return rc;
		if (frame_type(c) != M_DATA)
			return -EPROTO;
		if (!frame_len(c))
			return 0;
	}
}

/* Serves CP_IN into `dir`: extracts the DATA stream 0 that follows, then EXIT (0, 0). */
static int do_cp_in(struct conn *c, const char *root, const char *dir)
{
	char err[AG_ERR_MAX];
	int rc = enter_root(root);
	if (rc < 0) {
		send_error(c, ST_OTHER, "cannot enter the sandbox root: %s", strerror(-rc));
		return cp_in_drain(c);
	}
	umask(0);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			rc = send_error(c, ST_OTHER, "no such directory: %s", dir);
		else
			rc = send_error(c, ST_OTHER, "%s: %s", dir, strerror(errno));
		return rc < 0 ? rc : cp_in_drain(c);
	}
	struct tar_reader *r = tar_reader_new(dfd);
	if (!r) {
		close(dfd);
		rc = send_error(c, ST_OTHER, "out of memory");
		return rc < 0 ? rc : cp_in_drain(c);
	}
	err[0] = '\0';
	for (;;) {
		rc = conn_recv(c);
		if (rc < 0)
			break;
		if (frame_type(c) != M_DATA) {
			rc = -EPROTO;
			break;
		}
		uint32_t len = frame_len(c);
		if (!len) {
			rc = tar_reader_end(r, err, sizeof(err));
			if (rc < 0)
				rc = send_error(c, ST_OTHER, "%s", err);
			else
				rc = send_u32s(c, M_EXIT, 0, 0, 2);
			break;
		}
		rc = tar_reader_feed(r, frame_payload(c), len, err, sizeof(err));
		if (rc < 0) {
			rc = send_error(c, ST_OTHER, "%s", err);
			if (!rc)
				rc = cp_in_drain(c);
			break;
		}
	}
	tar_reader_free(r);
	close(dfd);
	return rc;
}

/* ---- a connection's worker ---- */

/*
 * Serves one connection: HELLO both ways, one request. Returns 0 when it was answered, or
 * -errno (the host went away or broke the protocol).
 */
static int serve(int fd, const char *root)
{
	struct conn *c = malloc(sizeof(*c));
	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->have = c->tx_fill = 0;
	int rc = send_u32s(c, M_HELLO, AG_VERSION, 0, 2);
	if (!rc)
		rc = conn_recv(c);
	if (!rc && (frame_type(c) != M_HELLO || get_le32(frame_payload(c)) != AG_VERSION))
		rc = -EPROTO;
	if (!rc)
		rc = conn_recv(c);
	if (!rc) {
		uint32_t len = frame_len(c);
		char *arg = (char *)c->rx + AG_HDR;
		switch (frame_type(c)) {
		case M_EXEC:
			rc = do_exec(c, root);
			break;
		case M_CP_OUT:
		case M_CP_IN: {
			/* The path must end at the payload's end (a NUL-terminated string). */
			if (arg[len - 1] != '\0' || strlen(arg) != len - 1) {
				rc = -EPROTO;
				break;
			}
			char path[AG_MAX_PAYLOAD];
			memcpy(path, arg, len);
			if (frame_type(c) == M_CP_OUT)
				rc = do_cp_out(c, root, path);
			else
				rc = do_cp_in(c, root, path);
			break;
		}
		case M_PING:
			rc = send_u32s(c, M_EXIT, 0, 0, 2);
			break;
		default:
			rc = -EPROTO;
			break;
		}
	}
	if (rc == -EPROTO)
		logmsg("protocol violation by the host: connection closed");
	if (rc < 0)
		close(c->fd);
	else
		conn_finish(c);
	free(c);
	return rc;
}

/* ---- the main process ---- */

/* Reaps every exited child: workers, and orphans adopted as subreaper or PID 1. */
static void on_sigchld(int sig)
{
	int saved = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

/* Makes sure 0, 1 and 2 are open (on /dev/null, or "/" when even that is missing). */
static int fix_stdio(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		/* The lower ones are open: the lowest free number is fd. */
		int n = open("/dev/null", O_RDWR);
		if (n < 0)
			n = open("/", O_RDONLY | O_DIRECTORY);
		if (n < 0)
			return -errno;
		if (n != fd) {
			close(n);
			return -EBADF;
		}
	}
	return 0;
}

/* Marks inherited descriptors above 2 close-on-exec, so none reaches a command. */
static void cloexec_inherited(void)
{
	/* The raw call: musl has no close_range() wrapper. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = 3; fd < max; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0)
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
}

/* Opens the listening socket: a unix stream socket at unix_path, else vsock `port`. */
static int listen_on(const char *unix_path, uint32_t port, char *msg, size_t msglen)
{
	int fd;
	if (unix_path) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		struct stat st;
		if (strlen(unix_path) >= sizeof(sa.sun_path)) {
			snprintf(msg, msglen, "unix socket path too long: %s", unix_path);
			return -ENAMETOOLONG;
		}
		strcpy(sa.sun_path, unix_path);
		if (lstat(unix_path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode)) {
				snprintf(msg, msglen, "%s exists and is not a socket", unix_path);
				return -EEXIST;
			}
			if (unlink(unix_path) < 0) {
				snprintf(msg, msglen, "cannot remove %s: %s", unix_path,
					 strerror(errno));
				return -errno;
			}
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
	} else {
		struct sockaddr_vm sa = {
			.svm_family = AF_VSOCK,
			.svm_cid = VMADDR_CID_ANY,
			.svm_port = port,
		};
		fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
	}
	if (listen(fd, AG_BACKLOG) < 0)
		goto fail;
	return fd;
fail:;
	int err = errno;
	if (unix_path)
		snprintf(msg, msglen, "cannot listen on %s: %s", unix_path, strerror(err));
	else
		snprintf(msg, msglen, "cannot listen on vsock port %u: %s", port, strerror(err));
	if (fd >= 0)
		close(fd);
	return -err;
}

/* Tell the host the agent listens: connect to host port `port` once, which kvmini answers with
 * RST (docs/agent-protocol.md, "Readiness"). Best effort: a host that does not listen for the
 * knock still finds the agent by trying to connect. */
static void knock(uint32_t port)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct timeval tv = {.tv_sec = 1};
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK,
		.svm_cid = VMADDR_CID_HOST,
		.svm_port = port,
	};
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		logmsg("host port %u took the knock as a connection", port);
	close(fd);
}

static void __attribute__((noreturn)) usage(void)
{
	logmsg("usage: kvmini-agent [--sandbox] [--root DIR] [--port N] [--unix PATH]");
	exit(1);
}

int main(int argc, char **argv)
{
	const char *root_arg = "/", *unix_path = NULL;
	uint32_t port = AG_PORT;
	char root[PATH_MAX], msg[512];
	bool sandbox = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--sandbox")) {
			sandbox = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--root")) {
			root_arg = argv[++i];
		} else if (!strcmp(argv[i], "--unix")) {
			unix_path = argv[++i];
		} else if (!strcmp(argv[i], "--port")) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || v < 1 || v >= 0xffffffffUL) {
				logmsg("bad port: %s", argv[i]);
				return 1;
			}
			port = (uint32_t)v;
		} else {
			usage();
		}
	}
	if (fix_stdio() < 0)
		return 1; /* nowhere to say it */
	cloexec_inherited();
	if (sandbox && sbroot_mount(root_arg, msg, sizeof(msg)) < 0) {
		/* On the console, where guests/init's contract puts it. */
		printf("KVMINI_SANDBOX_ERROR %s\n", msg);
		fflush(stdout);
		return 1;
	}
	struct stat st;
	if (!realpath(root_arg, root) || stat(root, &st) < 0) {
		logmsg("bad root %s: %s", root_arg, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		logmsg("bad root %s: not a directory", root_arg);
		return 1;
	}

	struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
	sigemptyset(&sa.sa_mask);
	struct sigaction ign = {.sa_handler = SIG_IGN};
	sigemptyset(&ign.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL) < 0 || sigaction(SIGPIPE, &ign, NULL) < 0) {
		logmsg("sigaction: %s", strerror(errno));
		return 1;
	}
	if (getpid() != 1)
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); /* best effort: orphans come to us */

	int lfd = listen_on(unix_path, port, msg, sizeof(msg));
	if (lfd < 0) {
		logmsg("%s", msg);
		return 1;
	}
	if (unix_path) {
		logmsg("listening on unix socket %s", unix_path);
	} else {
		logmsg("listening on vsock port %u", port);
		knock(port);
	}

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				logmsg("accept: %s", strerror(errno));
				usleep(100000);
				continue;
			}
			logmsg("accept: %s", strerror(errno));
			return 1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			logmsg("fork: %s", strerror(errno));
			close(fd);
			continue;
		}
		if (pid == 0) {
			struct sigaction dfl = {.sa_handler = SIG_DFL};
			sigemptyset(&dfl.sa_mask);
			sigaction(SIGCHLD, &dfl, NULL);
			close(lfd);
			_exit(serve(fd, root) < 0 ? 1 : 0);
		}
		close(fd);
	}
}
