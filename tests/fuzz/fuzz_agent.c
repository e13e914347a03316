/* fuzz_agent: whatever a hostile guest agent may send, against the host side of the protocol. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvmini/agent.h"

/*
 * Input: the byte stream the "agent" sends, split into chunks at each 0xA5 0x5A pair (so the
 * reader sees messages cut at every place). A thread writes it to one end of a socketpair and
 * closes it; agent_exec() runs on the other end with /dev/null as the command's streams and a
 * 2 s limit. It must return (never hang or crash), with an outcome or an error, and the parser
 * must agree with itself: agent_reader_next() on the whole stream at once yields the same
 * messages as on the chunks.
 */

struct feeder {
	int fd;
	const uint8_t *data;
	size_t len;
};

static void *feed(void *arg)
{
	struct feeder *f = arg;
	size_t off = 0;
	while (off < f->len) {
		ssize_t w = send(f->fd, f->data + off, f->len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(f->fd, SHUT_WR);
	/* Drain what the host sends (HELLO, EXEC, stdin) until it closes. */
	char buf[4096];
	while (read(f->fd, buf, sizeof(buf)) > 0) {
	}
	return NULL;
}

/* Count the messages the reader takes from `data` fed in pieces split at 0xA5 0x5A. */
static int count_msgs(struct agent_reader *r, const uint8_t *data, size_t len, bool split)
{
	agent_reader_init(r);
	int n = 0;
	size_t start = 0;
	while (start < len) {
		size_t end = len;
		if (split)
			for (size_t i = start; i + 1 < len; i++)
				if (data[i] == 0xa5 && data[i + 1] == 0x5a) {
					end = i + 1;
					break;
				}
		const uint8_t *p = data + start;
		size_t left = end - start;
		while (left) {
			struct agent_msg m;
			int ret = agent_reader_next(r, &p, &left, &m);
			if (ret < 0)
				return -1 - n;
			if (ret == 0)
				break;
			if (m.len > AGENT_MAX_PAYLOAD)
				abort();
			agent_check_from_guest(&m);
			n++;
		}
		start = end;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct agent_reader r1, r2; /* large; the harness runs one input at a time */
	if (count_msgs(&r1, data, len, false) != count_msgs(&r2, data, len, true))
		abort();

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct feeder f = {.fd = sv[1], .data = data, .len = len};
	pthread_t t;
	if (pthread_create(&t, NULL, feed, &f)) {
		close(sv[0]);
		close(sv[1]);
		close(null);
		return 0;
	}
	const char *argv[] = {"/bin/true", NULL};
	struct agent_exec_req req = {.argv = argv, .flags = AGENT_EXEC_STDIN};
	struct agent_io io = {.in_fd = null,
			      .out_fd = null,
			      .err_fd = null,
			      .sig_fd = -1,
			      .winsize_fd = -1,
			      .abort_fd = -1,
			      .timeout_ms = 2000};
	struct agent_result res;
	struct vmerr e = {0};
	int ret = agent_exec(sv[0], &req, &io, &res, &e);
	/* An exit code is 0..255, a signal 1..64 (128 + N): anything else passed the checks. */
	if (ret == 0 && res.outcome == AGENT_EXITED && (res.value < 0 || res.value > 255))
		abort();
	if (ret == 0 && res.outcome == AGENT_SIGNALED && (res.value < 1 || res.value > 64))
		abort();
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	close(null);
	return 0;
}
