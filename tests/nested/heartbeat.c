// tests/nested/heartbeat.c: L2's heartbeat on its console, and a kick for a console whose
// transmitter waits for an interrupt that never comes (see README.md, "The silent console").
//
//   nested-heartbeat LINE
//
// Every 10 s, first stops and restarts output on /dev/console
// (tcflow TCOOFF, TCOON), then writes LINE and a newline to it without blocking. The stop
// and start make the 8250 driver clear and set the THRE interrupt enable bit in the UART's
// IER, which raises a fresh THRE interrupt: a transmitter left waiting for a lost one (QEMU's
// emulated UART and IOAPIC under multi-threaded TCG; a guest's IER write behind the driver's
// back) sends again. When the console's buffer is full the line is left out for that round;
// a console that stays stuck therefore goes silent, which run.sh's stall watchdog reports.
// With PR_SET_PDEATHSIG it ends with its parent. Exit status 1 on a bad argument or when
// /dev/console cannot be opened.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#define BEAT_SECONDS 10

int main(int argc, char **argv)
{
	char line[256];
	int fd, n;

	if (argc != 2) {
		fprintf(stderr, "usage: nested-heartbeat LINE\n");
		return 1;
	}
	n = snprintf(line, sizeof(line), "%s\n", argv[1]);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		fprintf(stderr, "nested-heartbeat: LINE is too long\n");
		return 1;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) {
		fprintf(stderr, "nested-heartbeat: PR_SET_PDEATHSIG: %s\n", strerror(errno));
		return 1;
	}
	fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "nested-heartbeat: /dev/console: %s\n", strerror(errno));
		return 1;
	}
	for (;;) {
		sleep(BEAT_SECONDS);
		// Errors are left alone: the next round tries again, and silence is the signal.
		(void)tcflow(fd, TCOOFF);
		(void)tcflow(fd, TCOON);
		if (write(fd, line, (size_t)n) < 0 && errno != EAGAIN)
			fprintf(stderr, "nested-heartbeat: write: %s\n", strerror(errno));
	}
}
