/* vsock-client: a host program reaching a guest vsock listener through kvmini's unix socket, the
 * Firecracker way, for the Linux tests (busybox has no unix-socket client). */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * vsock-client PATH PORT [SECONDS]: connect to PATH, write "CONNECT PORT\n", print the answer
 * line ("OK <hostport>") on stderr, then copy the stream to stdout and stdin to the stream until
 * the guest closes or SECONDS (default 10) pass. Exit 0 after an OK, 1 when refused (closed).
 */
int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: vsock-client PATH PORT [SECONDS]\n");
		return 2;
	}
	int secs = argc > 3 ? atoi(argv[3]) : 10;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("vsock-client: connect");
		return 1;
	}
	dprintf(fd, "CONNECT %s\n", argv[2]);
	char line[64];
	size_t n = 0;
	while (n < sizeof(line) - 1 && read(fd, line + n, 1) == 1 && line[n++] != '\n') {
	}
	line[n] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		fprintf(stderr, "vsock-client: refused (%s)\n", n ? line : "closed");
		return 1;
	}
	fprintf(stderr, "vsock-client: %s", line);
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
	char buf[65536];
	for (;;) {
		if (poll(p, 2, secs * 1000) <= 0)
			break;
		if (p[0].revents) {
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r <= 0 || write(1, buf, (size_t)r) != r)
				break;
		}
		if (p[1].revents) {
			ssize_t r = read(0, buf, sizeof(buf));
			if (r <= 0) {
				shutdown(fd, SHUT_WR);
				p[1].fd = -1;
			} else if (write(fd, buf, (size_t)r) != r) {
				break;
			}
		}
	}
	return 0;
}
