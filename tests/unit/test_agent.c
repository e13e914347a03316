/* test_agent: the host side of the agent protocol, against the real guest agent on a unix
 * socket (guests/agent, built by `make guests`) and against fake hostile agents. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/agent.h"

#ifndef KVMINI_AGENT_BIN
#define KVMINI_AGENT_BIN "build/guest/kvmini-agent"
#endif

/* ---- helpers ---- */

static size_t frame(uint8_t *buf, uint8_t type, uint8_t stream, const void *p, uint32_t len)
{
	uint32_t l = htole32(len);
	memcpy(buf, &l, 4);
	buf[4] = type;
	buf[5] = stream;
	buf[6] = buf[7] = 0;
	if (len)
		memcpy(buf + 8, p, len);
	return 8 + len;
}

static size_t frame2(uint8_t *buf, uint8_t type, uint32_t a, uint32_t b)
{
	uint32_t v[2] = {htole32(a), htole32(b)};
	return frame(buf, type, 0, v, 8);
}

/* A fake agent: a thread sends `len` bytes on one end of a socketpair, then drains it. */
struct fake {
	int fd;
	uint8_t out[4096];
	size_t len;
	bool stay; /* keep the connection open without sending more (a silent agent) */
};

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	if (f->len && write(f->fd, f->out, f->len) != (ssize_t)f->len)
		return NULL;
	if (!f->stay)
		shutdown(f->fd, SHUT_WR);
	char b[4096];
	while (read(f->fd, b, sizeof(b)) > 0) {
	}
	return NULL;
}

/* Run agent_exec against the fake; returns its result code and fills res/e. */
static int with_fake(struct fake *f, const struct agent_io *io, struct agent_result *res,
		     struct vmerr *e)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->fd = sv[1];
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fake_run, f), 0);
	const char *argv[] = {"true", NULL};
	struct agent_exec_req req = {.argv = argv};
	int ret = agent_exec(sv[0], &req, io, res, e);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return ret;
}

static const struct agent_io no_io = {
	.in_fd = -1, .out_fd = -1, .err_fd = -1, .sig_fd = -1, .winsize_fd = -1, .abort_fd = -1};

/* ---- framing and checks ---- */

static void test_reader(void **state)
{
	(void)state;
	static struct agent_reader r;
	uint8_t buf[64];
	size_t n = frame(buf, AGENT_DATA, 1, "hello", 5);
	n += frame(buf + n, AGENT_DATA, 2, "", 0);
	agent_reader_init(&r);
	/* Byte by byte: the messages come out whole, at the right byte. */
	struct agent_msg m;
	int got = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = buf + i;
		size_t len = 1;
		int ret = agent_reader_next(&r, &p, &len, &m);
		assert_true(ret >= 0);
		if (ret == 1) {
			got++;
			if (got == 1) {
				assert_int_equal(i, 12);
				assert_int_equal(m.len, 5);
				assert_int_equal(m.stream, 1);
				assert_memory_equal(m.payload, "hello", 5);
			} else {
				assert_int_equal(m.len, 0);
				assert_int_equal(m.stream, 2);
			}
		}
	}
	assert_int_equal(got, 2);
	/* Broken framing. */
	uint8_t bad[8];
	const uint8_t *p;
	size_t len;
	frame(bad, AGENT_DATA, 1, NULL, 0);
	uint32_t big = htole32(AGENT_MAX_PAYLOAD + 1);
	memcpy(bad, &big, 4);
	p = bad, len = 8;
	agent_reader_init(&r);
	assert_int_equal(agent_reader_next(&r, &p, &len, &m), -EPROTO);
	frame(bad, 0, 0, NULL, 0);
	p = bad, len = 8;
	agent_reader_init(&r);
	assert_int_equal(agent_reader_next(&r, &p, &len, &m), -EPROTO);
	frame(bad, AGENT_DATA, 3, NULL, 0);
	p = bad, len = 8;
	agent_reader_init(&r);
	assert_int_equal(agent_reader_next(&r, &p, &len, &m), -EPROTO);
	frame(bad, AGENT_DATA, 1, NULL, 0);
	bad[7] = 1;
	p = bad, len = 8;
	agent_reader_init(&r);
	assert_int_equal(agent_reader_next(&r, &p, &len, &m), -EPROTO);
}

static void test_checks(void **state)
{
	(void)state;
	uint8_t pl[16];
	struct agent_msg m = {.payload = pl};
	uint32_t v[2];
#define SET(t, s, a, b, l)         \
	do {                       \
		m.type = (t);      \
		m.stream = (s);    \
		v[0] = htole32(a); \
		v[1] = htole32(b); \
		memcpy(pl, v, 8);  \
		m.len = (l);       \
	} while (0)
	SET(AGENT_EXIT, 0, 0, 255, 8);
	assert_int_equal(agent_check_from_guest(&m), 0);
	SET(AGENT_EXIT, 0, 0, 256, 8);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO);
	SET(AGENT_EXIT, 0, 1, 0, 8);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO);
	SET(AGENT_EXIT, 0, 1, 65, 8);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO);
	SET(AGENT_EXIT, 0, 2, 1, 8);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO);
	SET(AGENT_EXIT, 0, 0, 0, 4);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO);
	SET(AGENT_ERROR, 0, 124, 0, 4);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO);
	SET(AGENT_ERROR, 0, 127, 0, 4 + AGENT_MAX_ERROR + 1);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO);
	SET(AGENT_DATA, 0, 0, 0, 0);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO); /* stdin comes from the host */
	SET(AGENT_HELLO, 1, 1, 0, 8);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO); /* stream on a non-DATA */
	SET(AGENT_EXEC, 0, 0, 0, 8);
	assert_int_equal(agent_check_from_guest(&m), -EPROTO); /* a host-to-agent type */
#undef SET
}

static void test_encode_exec(void **state)
{
	(void)state;
	uint8_t buf[256];
	const char *argv[] = {"ls", "-l", NULL}, *env[] = {"A=1", NULL};
	struct agent_exec_req req = {.argv = argv,
				     .env = env,
				     .cwd = "/tmp",
				     .flags = 6,
				     .uid = 7,
				     .gid = 8,
				     .rows = 24,
				     .cols = 80};
	int n = agent_encode_exec(buf, sizeof(buf), &req);
	assert_int_equal(n, 24 + 5 + 3 + 3 + 4);
	uint32_t w;
	memcpy(&w, buf + 16, 4);
	assert_int_equal(le32toh(w), 2); /* argc */
	memcpy(&w, buf + 20, 4);
	assert_int_equal(le32toh(w), 1); /* envc */
	assert_memory_equal(buf + 24, "/tmp\0ls\0-l\0A=1\0", 15);
	assert_int_equal(agent_encode_exec(buf, 30, &req), -E2BIG);
	req.argv = NULL;
	assert_int_equal(agent_encode_exec(buf, sizeof(buf), &req), -EINVAL);
}

/* ---- hostile agents ---- */

static void test_fake_agents(void **state)
{
	(void)state;
	struct agent_result res;
	struct vmerr e;
	struct fake f;
	/* A well-behaved one: HELLO, STARTED, EXIT 3. */
	memset(&f, 0, sizeof(f));
	f.len = frame2(f.out, AGENT_HELLO, 1, 0);
	uint32_t pid = htole32(1);
	f.len += frame(f.out + f.len, AGENT_STARTED, 0, &pid, 4);
	f.len += frame2(f.out + f.len, AGENT_EXIT, 0, 3);
	memset(&e, 0, sizeof(e));
	assert_int_equal(with_fake(&f, &no_io, &res, &e), 0);
	assert_int_equal(res.outcome, AGENT_EXITED);
	assert_int_equal(agent_status(&res), 3);
	/* EXIT before HELLO. */
	memset(&f, 0, sizeof(f));
	f.len = frame2(f.out, AGENT_EXIT, 0, 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(with_fake(&f, &no_io, &res, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "HELLO"));
	/* Another protocol version. */
	memset(&f, 0, sizeof(f));
	f.len = frame2(f.out, AGENT_HELLO, 2, 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(with_fake(&f, &no_io, &res, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "version 2"));
	/* Closes after HELLO without an exit status. */
	memset(&f, 0, sizeof(f));
	f.len = frame2(f.out, AGENT_HELLO, 1, 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(with_fake(&f, &no_io, &res, &e), -EPROTO);
	assert_non_null(strstr(e.msg, "before the command's exit status"));
	/* A lying exit record. */
	memset(&f, 0, sizeof(f));
	f.len = frame2(f.out, AGENT_HELLO, 1, 0);
	f.len += frame2(f.out + f.len, AGENT_EXIT, 1, 99);
	memset(&e, 0, sizeof(e));
	assert_int_equal(with_fake(&f, &no_io, &res, &e), -EPROTO);
	/* An ERROR message with control characters comes out as one printable line. */
	memset(&f, 0, sizeof(f));
	f.len = frame2(f.out, AGENT_HELLO, 1, 0);
	uint8_t err[32];
	uint32_t st = htole32(127);
	memcpy(err, &st, 4);
	memcpy(err + 4, "no\033[2Jx\nyz", 11);
	f.len += frame(f.out + f.len, AGENT_ERROR, 0, err, 15);
	memset(&e, 0, sizeof(e));
	assert_int_equal(with_fake(&f, &no_io, &res, &e), 0);
	assert_int_equal(res.outcome, AGENT_REFUSED);
	assert_int_equal(agent_status(&res), 127);
	assert_string_equal(res.msg, "no [2Jx yz");
	/* A silent agent: bounded by hello_timeout_ms. */
	memset(&f, 0, sizeof(f));
	f.stay = true;
	struct agent_io io = no_io;
	io.hello_timeout_ms = 300;
	memset(&e, 0, sizeof(e));
	assert_int_equal(with_fake(&f, &io, &res, &e), -ETIMEDOUT);
	assert_non_null(strstr(e.msg, "did not answer"));
}

/* ---- the real agent ---- */

struct real {
	pid_t pid;
	char dir[64], path[96];
};

static int real_setup(void **state)
{
	struct real *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	*state = r;
	if (access(KVMINI_AGENT_BIN, X_OK) != 0) {
		print_error("%s missing: run `make guests`\n", KVMINI_AGENT_BIN);
		return -1;
	}
	snprintf(r->dir, sizeof(r->dir), "/tmp/kvmini-agent-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->path, sizeof(r->path), "%s/a.sock", r->dir);
	r->pid = fork();
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test killed midway leaves no agent behind */
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(KVMINI_AGENT_BIN, "kvmini-agent", "--unix", r->path, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct stat st;
		if (stat(r->path, &st) == 0)
			return 0;
		usleep(10000);
	}
	return -1;
}

static int real_teardown(void **state)
{
	struct real *r = *state;
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
	}
	unlink(r->path);
	rmdir(r->dir);
	free(r);
	return 0;
}

static int real_connect(struct real *r)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", r->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Run argv in the real agent with the given io (out_fd/err_fd may be set by the caller). */
static int real_exec(struct real *r, const char *const *argv, struct agent_io *io, uint32_t flags,
		     struct agent_result *res)
{
	int fd = real_connect(r);
	const char *env[] = {"PATH=/usr/bin:/bin", NULL};
	struct agent_exec_req req = {.argv = argv, .env = env, .flags = flags};
	struct vmerr e = {0};
	int ret = agent_exec(fd, &req, io, res, &e);
	close(fd);
	if (ret < 0)
		fail_msg("agent_exec: %s", e.msg);
	return agent_status(res);
}

static void test_real_statuses(void **state)
{
	struct real *r = *state;
	struct agent_result res;
	struct agent_io io = no_io;
	const char *t[] = {"true", NULL}, *x42[] = {"sh", "-c", "exit 42", NULL};
	char notexec[128];
	snprintf(notexec, sizeof(notexec), "%s/notexec", r->dir);
	int fd = open(notexec, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	const char *nf[] = {"no-such-command-here", NULL}, *ne[] = {notexec, NULL};
	const char *kill9[] = {"sh", "-c", "kill -9 $$", NULL};
	assert_int_equal(real_exec(r, t, &io, 0, &res), 0);
	assert_int_equal(real_exec(r, x42, &io, 0, &res), 42);
	assert_int_equal(real_exec(r, nf, &io, 0, &res), 127);
	assert_int_equal(res.outcome, AGENT_REFUSED);
	assert_int_equal(real_exec(r, ne, &io, 0, &res), 126);
	assert_int_equal(real_exec(r, kill9, &io, 0, &res), 137);
	assert_int_equal(res.outcome, AGENT_SIGNALED);
	unlink(notexec);
}

static void test_real_streams_and_stdin(void **state)
{
	struct real *r = *state;
	char outp[] = "/tmp/kvmini-agent-out-XXXXXX", errp[] = "/tmp/kvmini-agent-err-XXXXXX";
	int out = mkstemp(outp), err = mkstemp(errp);
	assert_true(out >= 0 && err >= 0);
	struct agent_io io = no_io;
	io.out_fd = out;
	io.err_fd = err;
	struct agent_result res;
	const char *sh[] = {"sh", "-c", "echo a; echo b >&2; echo c", NULL};
	assert_int_equal(real_exec(r, sh, &io, 0, &res), 0);
	char buf[64] = {0};
	assert_int_equal(pread(out, buf, sizeof(buf), 0), 4);
	assert_string_equal(buf, "a\nc\n");
	memset(buf, 0, sizeof(buf));
	assert_int_equal(pread(err, buf, sizeof(buf), 0), 2);
	assert_string_equal(buf, "b\n");
	/* 4 MiB of stdin through cat, byte-exact. */
	char inp[] = "/tmp/kvmini-agent-in-XXXXXX";
	int in = mkstemp(inp);
	assert_true(in >= 0);
	static uint8_t data[4 << 20];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 131 + i / 4093);
	assert_int_equal(write(in, data, sizeof(data)), (ssize_t)sizeof(data));
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	assert_int_equal(ftruncate(out, 0), 0);
	assert_int_equal(lseek(out, 0, SEEK_SET), 0);
	io.in_fd = in;
	const char *cat[] = {"cat", NULL};
	assert_int_equal(real_exec(r, cat, &io, AGENT_EXEC_STDIN, &res), 0);
	static uint8_t back[4 << 20];
	assert_int_equal(pread(out, back, sizeof(back), 0), (ssize_t)sizeof(back));
	assert_memory_equal(back, data, sizeof(data));
	/* A command that never reads stdin: the host is not blocked by it. */
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	const char *ign[] = {"sh", "-c", "exec 0<&-; echo done", NULL};
	assert_int_equal(real_exec(r, ign, &io, AGENT_EXEC_STDIN, &res), 0);
	close(in);
	close(out);
	close(err);
	unlink(inp);
	unlink(outp);
	unlink(errp);
}

static void test_real_signal_and_timeout(void **state)
{
	struct real *r = *state;
	int sp[2];
	assert_int_equal(pipe(sp), 0);
	struct agent_io io = no_io;
	io.sig_fd = sp[0];
	uint8_t sig = SIGTERM;
	assert_int_equal(write(sp[1], &sig, 1), 1);
	struct agent_result res;
	const char *sl[] = {"sleep", "100", NULL};
	assert_int_equal(real_exec(r, sl, &io, 0, &res), 128 + SIGTERM);
	close(sp[0]);
	close(sp[1]);
	io = no_io;
	io.timeout_ms = 300;
	assert_int_equal(real_exec(r, sl, &io, 0, &res), 124);
	assert_int_equal(res.outcome, AGENT_TIMEOUT);
}

/* A SIGWINCH byte with a winsize_fd resizes the command's pty to that terminal's size (without
 * it, the loop below never ends and the test times out with 124). */
static void test_real_winch(void **state)
{
	struct real *r = *state;
	int m, t;
	struct winsize ws = {.ws_row = 31, .ws_col = 97};
	assert_int_equal(openpty(&m, &t, NULL, NULL, &ws), 0);
	char outp[] = "/tmp/kvmini-agent-out-XXXXXX";
	int out = mkstemp(outp);
	assert_true(out >= 0);
	int sp[2];
	assert_int_equal(pipe(sp), 0);
	uint8_t sig = SIGWINCH;
	assert_int_equal(write(sp[1], &sig, 1), 1);
	struct agent_io io = no_io;
	io.out_fd = out;
	io.sig_fd = sp[0];
	io.winsize_fd = t;
	io.timeout_ms = 20000;
	/* Starts at 24x80 (the request's size); polls until the size changes. */
	const char *sh[] = {"sh", "-c",
			    "stty size; while [ \"$(stty size)\" = '24 80' ]; do sleep 0.05; done; "
			    "stty size",
			    NULL};
	int fd = real_connect(r);
	const char *env[] = {"PATH=/usr/bin:/bin", NULL};
	struct agent_exec_req req = {
		.argv = sh, .env = env, .flags = AGENT_EXEC_PTY, .rows = 24, .cols = 80};
	struct agent_result res;
	struct vmerr e = {0};
	assert_int_equal(agent_exec(fd, &req, &io, &res, &e), 0);
	close(fd);
	assert_int_equal(agent_status(&res), 0);
	char buf[64] = {0};
	assert_true(pread(out, buf, sizeof(buf) - 1, 0) > 0);
	/* The first line may already show the new size: the byte is on sig_fd from the start. */
	if (!strstr(buf, "31 97"))
		fail_msg("output: %s", buf);
	close(sp[0]);
	close(sp[1]);
	close(out);
	unlink(outp);
	close(m);
	close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_encode_exec),
		cmocka_unit_test(test_fake_agents),
		cmocka_unit_test_setup_teardown(test_real_statuses, real_setup, real_teardown),
		cmocka_unit_test_setup_teardown(test_real_streams_and_stdin, real_setup,
						real_teardown),
		cmocka_unit_test_setup_teardown(test_real_winch, real_setup, real_teardown),
		cmocka_unit_test_setup_teardown(test_real_signal_and_timeout, real_setup,
						real_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
