/*
 * ctl_bench: control-plane latency of a running VM: kvmini's REST socket or QEMU's QMP, on one
 * connection each (HTTP/1.1 keep-alive; QMP after qmp_capabilities), timed with
 * CLOCK_MONOTONIC from just before the request is written to the end of its answer:
 *   state   N round trips of a state query: GET /vm, or QMP query-status
 *   pause   P pauses: PUT /vm/pause (answered once every vCPU is parked), or QMP stop
 *   resume  P resumes: PUT /vm/resume, or QMP cont (each right after a pause)
 *
 *   ctl_bench kvmini|qmp SOCKET N P
 *
 * Prints "CTLBENCH VMM OP median_us p99_us count" per operation; exit 1 on any failure (a
 * refused request, a closed socket), with one line on stderr. A measuring tool for
 * bench/ctl-l2.sh: it reads exactly the answers these two servers give (status line,
 * headers up to the blank line, Content-Length bytes; QMP: one JSON object a line, events
 * skipped), nothing more general.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];
static size_t have; /* bytes read but not yet consumed */

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "ctl_bench: %s%s%s\n", what, errno ? ": " : "",
		errno ? strerror(errno) : "");
	exit(1);
}

static int dial(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		die("socket path too long");
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect");
	return fd;
}

static void put(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			die("write");
		s += w;
		n -= (size_t)w;
	}
}

static void fill(int fd)
{
	if (have >= sizeof(buf) - 1)
		die("answer too long");
	ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
	if (n <= 0) {
		errno = 0;
		die("the server closed the connection");
	}
	have += (size_t)n;
	buf[have] = '\0';
}

static void consume(size_t n)
{
	memmove(buf, buf + n, have - n);
	have -= n;
	buf[have] = '\0';
}

/* One HTTP answer; returns its status. */
static int http_answer(int fd)
{
	char *end;
	while (!(end = strstr(buf, "\r\n\r\n")))
		fill(fd);
	int status = 0;
	sscanf(buf, "HTTP/1.%*d %d", &status);
	size_t body = 0;
	for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
		if (!strncasecmp(p, "Content-Length:", 15))
			body = strtoul(p + 15, NULL, 10);
		if (!strstr(p, "\r\n"))
			break;
	}
	size_t total = (size_t)(end - buf) + 4 + body;
	while (have < total)
		fill(fd);
	consume(total);
	return status;
}

static int http(int fd, const char *method, const char *path)
{
	char req[256];
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
		 method, path);
	put(fd, req);
	return http_answer(fd);
}

/* The next QMP line that is not an event; true if it is a "return". */
static int qmp_answer(int fd)
{
	for (;;) {
		char *nl;
		while (!(nl = strchr(buf, '\n')))
			fill(fd);
		*nl = '\0';
		int is_event = strstr(buf, "\"event\"") != NULL;
		int ok = strstr(buf, "\"return\"") != NULL;
		consume((size_t)(nl - buf) + 1);
		if (!is_event)
			return ok;
	}
}

static int qmp(int fd, const char *cmd)
{
	char req[128];
	snprintf(req, sizeof(req), "{\"execute\": \"%s\"}\n", cmd);
	put(fd, req);
	return qmp_answer(fd);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *vmm, const char *op, double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp);
	double median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	int i99 = (int)((double)n * 0.99 + 0.999999) - 1;
	if (i99 < 0)
		i99 = 0;
	printf("CTLBENCH %s %s %.1f %.1f %d\n", vmm, op, median, t[i99], n);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: ctl_bench kvmini|qmp SOCKET N P\n");
		return 2;
	}
	int is_qmp = !strcmp(argv[1], "qmp");
	int n = atoi(argv[3]), p = atoi(argv[4]);
	if ((!is_qmp && strcmp(argv[1], "kvmini")) || n < 1 || p < 1)
		die("bad arguments");
	double *ts = calloc((size_t)n, sizeof(*ts)), *tp = calloc((size_t)p, sizeof(*tp)),
	       *tr = calloc((size_t)p, sizeof(*tr));
	if (!ts || !tp || !tr)
		die("out of memory");
	int fd = dial(argv[2]);
	if (is_qmp) {
		qmp_answer(fd); /* the greeting counts as an answer line */
		if (!qmp(fd, "qmp_capabilities"))
			die("qmp_capabilities refused");
	}
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		int ok = is_qmp ? qmp(fd, "query-status") : http(fd, "GET", "/vm") == 200;
		ts[i] = now_us() - t0;
		if (!ok)
			die("state query refused");
	}
	for (int i = 0; i < p; i++) {
		double t0 = now_us();
		int ok = is_qmp ? qmp(fd, "stop") : http(fd, "PUT", "/vm/pause") == 204;
		tp[i] = now_us() - t0;
		t0 = now_us();
		ok = ok && (is_qmp ? qmp(fd, "cont") : http(fd, "PUT", "/vm/resume") == 204);
		tr[i] = now_us() - t0;
		if (!ok)
			die("pause or resume refused");
	}
	const char *vmm = is_qmp ? "qemu" : "kvmini";
	report(vmm, "state", ts, n);
	report(vmm, "pause", tp, p);
	report(vmm, "resume", tr, p);
	close(fd);
	return 0;
}
