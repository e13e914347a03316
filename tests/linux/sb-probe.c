/* sb-probe: a static test program for the sandbox root (tests/linux/sandbox-tests.sh), beside
 * busybox: what a user's own binary does in `kvmini exec --rootfs`, without a shell between.
 *
 *   sb-probe interleave N   N lines "out I" on stdout and "err I" on stderr, alternating, each
 *                           one write(2), so the order between the streams is fixed
 *   sb-probe info           "uid U gid G cwd DIR X=$X" on stdout
 *   sb-probe exit CODE      exit with CODE
 *   sb-probe signal SIG     kill itself with SIG
 * Unknown arguments: a line on stderr, exit 2.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int probe_line(int fd, const char *fmt, long i)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), fmt, i);
	return write(fd, buf, (size_t)n) == n ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "interleave")) {
		long n = atol(argv[2]);
		for (long i = 0; i < n; i++)
			if (probe_line(1, "out %ld\n", i) < 0 || probe_line(2, "err %ld\n", i) < 0)
				return 3;
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "info")) {
		char cwd[4096];
		const char *x = getenv("X");
		printf("uid %u gid %u cwd %s X=%s\n", (unsigned)getuid(), (unsigned)getgid(),
		       getcwd(cwd, sizeof(cwd)) ? cwd : "?", x ? x : "");
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "exit"))
		return atoi(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "signal")) {
		signal(atoi(argv[2]), SIG_DFL);
		raise(atoi(argv[2]));
		return 4;
	}
	fprintf(stderr, "usage: sb-probe interleave N | info | exit CODE | signal SIG\n");
	return 2;
}
