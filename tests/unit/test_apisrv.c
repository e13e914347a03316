/* test_apisrv: the control socket over real HTTP on a unix socket, with a fake VM: routes,
 * the socket's mode, oversized bodies, slow and vanishing clients, 100 clients at once. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kvmini/apisrv.h"

static int fake_state_v = KVMINI_STATE_RUNNING;

static int fake_state(void *o)
{
	(void)o;
	return fake_state_v;
}

static int fake_ok(void *o, struct kvmini_error *e)
{
	(void)o;
	(void)e;
	return 0;
}

static int fake_shutdown(void *o, unsigned int t, struct kvmini_error *e)
{
	(void)o;
	(void)t;
	(void)e;
	return 0;
}

static int fake_stats(void *o, struct kvmini_stats *s, struct kvmini_error *e)
{
	(void)o;
	(void)e;
	memset(s, 0, sizeof(*s));
	s->state = fake_state_v;
	s->cpus = 64; /* the largest stats body */
	s->nr_disks = 4;
	s->nr_nets = 4;
	return 0;
}

/* destroy tells the test it ran (the test then stops the server at once). */
static int destroyed_pipe[2] = {-1, -1};

static int fake_destroy(void *o, struct kvmini_error *e)
{
	(void)o;
	(void)e;
	if (destroyed_pipe[1] >= 0 && write(destroyed_pipe[1], "d", 1) != 1)
		return -EIO;
	return 0;
}

static const struct api_vm_ops ops = {
	.state = fake_state,
	.pause = fake_ok,
	.resume = fake_ok,
	.shutdown = fake_shutdown,
	.destroy = fake_destroy,
	.stats = fake_stats,
};

struct fx {
	char dir[64];
	char path[128];
	struct cli conf;
	struct api api;
	struct apisrv srv;
};

static int setup(void **state)
{
	static struct fx f;
	memset(&f, 0, sizeof(f));
	snprintf(f.dir, sizeof(f.dir), "/tmp/kvmini-apisrv-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.path, sizeof(f.path), "%s/api.sock", f.dir);
	cli_defaults(&f.conf);
	f.conf.kernel = "/k";
	f.api = (struct api){.ops = &ops, .config = &f.conf, .pid = 1};
	struct kvmini_error e = {0};
	assert_int_equal(apisrv_start(&f.srv, f.path, &f.api, 1, &e), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	apisrv_stop(&f->srv);
	apisrv_stop(&f->srv); /* idempotent */
	unlink(f->path);
	rmdir(f->dir);
	return 0;
}

static int dial(const struct fx *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	assert_true(strlen(f->path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		assert_true(n > 0);
		buf += n;
		len -= (size_t)n;
	}
}

/* Read one response (until the server closes, or `ms` pass); returns its status, body in
 * `body` (NUL-terminated, may be NULL). */
static int read_response(int fd, char *body, size_t max, int ms)
{
	static char buf[1 << 20];
	size_t len = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, ms) <= 0)
			break;
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		/* Connection: close is asked for, so the end is EOF. */
	}
	buf[len] = '\0';
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return 0;
	if (body) {
		const char *b = strstr(buf, "\r\n\r\n");
		snprintf(body, max, "%s", b ? b + 4 : "");
	}
	return status;
}

/* A whole request on a fresh connection; returns the status. */
static int request(const struct fx *f, const char *method, const char *path, const char *body,
		   char *out, size_t max)
{
	int fd = dial(f);
	char head[512];
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof(head),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 method, path, blen);
	send_all(fd, head, (size_t)n);
	if (blen)
		send_all(fd, body, blen);
	int st = read_response(fd, out, max, 5000);
	close(fd);
	return st;
}

static void test_routes_over_http(void **state)
{
	struct fx *f = *state;
	char body[65536];
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(request(f, "GET", "/version", NULL, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"api_version\":1"));
	assert_int_equal(request(f, "GET", "/vm", NULL, body, sizeof(body)), 200);
	assert_non_null(strstr(body, "\"state\":\"running\""));
	assert_int_equal(request(f, "GET", "/vm/config", NULL, body, sizeof(body)), 200);
	assert_int_equal(request(f, "GET", "/vm/stats", NULL, body, sizeof(body)), 200);
	assert_int_equal(request(f, "PUT", "/vm/pause", NULL, body, sizeof(body)), 204);
	assert_int_equal(request(f, "PUT", "/vm/resume", "{}", body, sizeof(body)), 204);
	assert_int_equal(request(f, "PUT", "/vm/shutdown", "{\"timeout_s\":3}", body, sizeof(body)),
			 202);
	assert_int_equal(request(f, "PUT", "/vm/destroy", NULL, body, sizeof(body)), 202);
	assert_int_equal(request(f, "GET", "/x", NULL, body, sizeof(body)), 404);
	assert_non_null(strstr(body, "\"error\""));
	assert_int_equal(request(f, "DELETE", "/vm", NULL, body, sizeof(body)), 405);
	assert_int_equal(request(f, "PUT", "/vm/pause", "{nope", body, sizeof(body)), 400);
	/* Garbage instead of HTTP: the server answers 400 (or closes) and goes on serving. */
	int fd = dial(f);
	send_all(fd, "\x01\x02 garbage\r\n\r\n", 14);
	int gs = read_response(fd, NULL, 0, 3000);
	assert_true(gs == 400 || gs == 0);
	close(fd);
	assert_int_equal(request(f, "GET", "/version", NULL, NULL, 0), 200);
}

static void test_oversized_bodies(void **state)
{
	struct fx *f = *state;
	char body[4096];
	static char big[API_BODY_MAX + 100];
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* Declared too large: refused with 413 (the body is read and dropped). */
	assert_int_equal(request(f, "PUT", "/vm/pause", big, body, sizeof(body)), 413);
	assert_non_null(strstr(body, "larger than"));
	/* Chunked, no length given: counted as it arrives, 413 too. */
	int fd = dial(f);
	const char *head = "PUT /vm/pause HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n";
	send_all(fd, head, strlen(head));
	for (int i = 0; i < 20; i++) {
		char chunk[16];
		int n = snprintf(chunk, sizeof(chunk), "1000\r\n");
		send_all(fd, chunk, (size_t)n);
		send_all(fd, big, 0x1000);
		send_all(fd, "\r\n", 2);
	}
	send_all(fd, "0\r\n\r\n", 5);
	assert_int_equal(read_response(fd, NULL, 0, 5000), 413);
	close(fd);
	assert_int_equal(request(f, "GET", "/vm", NULL, NULL, 0), 200);
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Half a request, then silence: others are served meanwhile, and the server hangs up on it
 * after its timeout (1 s here). */
static void test_slow_client(void **state)
{
	struct fx *f = *state;
	int slow = dial(f);
	send_all(slow, "GET /vm HTTP/1.1\r\nHo", 20);
	double t0 = now_s();
	for (int i = 0; i < 5; i++)
		assert_int_equal(request(f, "GET", "/version", NULL, NULL, 0), 200);
	assert_true(now_s() - t0 < 1.0); /* not held up by the slow one */
	char c;
	struct pollfd p = {.fd = slow, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1); /* closed by the server */
	assert_true(recv(slow, &c, 1, 0) <= 0);
	close(slow);
}

/* A client that asks for the largest answer and leaves without reading it. */
static void test_vanishing_clients(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 50; i++) {
		int fd = dial(f);
		const char *q = "GET /vm/stats HTTP/1.1\r\nHost: x\r\n\r\n";
		send_all(fd, q, strlen(q));
		if (i % 2)
			shutdown(fd, SHUT_RDWR);
		close(fd);
	}
	assert_int_equal(request(f, "GET", "/vm", NULL, NULL, 0), 200);
}

/* 100 clients connected at once, each with a request in flight: every one is answered. */
static void test_100_concurrent_clients(void **state)
{
	struct fx *f = *state;
	enum { N = 100 };
	int fd[N];
	for (int i = 0; i < N; i++)
		fd[i] = dial(f);
	const char *q = "GET /vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	for (int i = 0; i < N; i++)
		send_all(fd[i], q, strlen(q));
	int ok = 0;
	for (int i = 0; i < N; i++) {
		if (read_response(fd[i], NULL, 0, 5000) == 200)
			ok++;
		close(fd[i]);
	}
	assert_int_equal(ok, N);
}

/* The VMM stops its server as soon as a destroy has stopped the VM: the 202 must still reach
 * the client. */
static void test_answer_survives_stop(void **state)
{
	struct fx *f = *state;
	assert_int_equal(pipe(destroyed_pipe), 0);
	int fd = dial(f);
	const char *q = "PUT /vm/destroy HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
	send_all(fd, q, strlen(q));
	char c;
	assert_int_equal(read(destroyed_pipe[0], &c, 1), 1);
	apisrv_stop(&f->srv);
	assert_int_equal(read_response(fd, NULL, 0, 3000), 202);
	close(fd);
	close(destroyed_pipe[0]);
	close(destroyed_pipe[1]);
	destroyed_pipe[0] = destroyed_pipe[1] = -1;
}

static void test_start_errors(void **state)
{
	(void)state;
	struct apisrv s;
	struct kvmini_error e = {0};
	struct api a = {.ops = &ops};
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(apisrv_start(&s, longp, &a, 0, &e), -ENAMETOOLONG);
	assert_non_null(strstr(e.msg, "longer than"));
	assert_int_equal(e.status, KVMINI_EXIT_RESOURCE);
	memset(&e, 0, sizeof(e));
	assert_true(apisrv_start(&s, "/nonexistent-dir/api.sock", &a, 0, &e) < 0);
	assert_non_null(strstr(e.msg, "cannot listen"));
	apisrv_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routes_over_http, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_bodies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vanishing_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_100_concurrent_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_survives_stop, setup, teardown),
		cmocka_unit_test(test_start_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
