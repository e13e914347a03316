// bench/density.c: start N VMMs at once and time them, for bench/boot.sh's density row.
//
//   density N LIMIT_S MARKER OUTDIR -- CMD [ARG]...
//
// Reads the host's used memory (MemTotal - MemAvailable of /proc/meminfo), takes
// CLOCK_MONOTONIC, then forks and execs CMD N times at once (stdin /dev/null, stdout and
// stderr to OUTDIR/vm-I.out and OUTDIR/vm-I.err). While any runs it samples the used memory
// every 20 ms. A run counts as good when it exited 0 and its stdout has MARKER; each other
// run gets a line "density: vm-I: exit status S, MARKER seen|missing" on stderr. Prints:
//   WALL_MS GOOD PEAK_KB
// WALL_MS: from before the first fork to the last exit; GOOD: good runs; PEAK_KB: the highest
// used memory seen minus the used memory before the first fork. All are killed (SIGKILL)
// after LIMIT_S seconds. Exit status 0 unless the helper itself fails.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_VMS 256

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

// MemTotal - MemAvailable in kB, or -1.
static long used_kb(void)
{
	char line[256];
	long total = -1, avail = -1, v;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemTotal: %ld kB", &v) == 1)
			total = v;
		else if (sscanf(line, "MemAvailable: %ld kB", &v) == 1)
			avail = v;
	}
	fclose(f);
	return total < 0 || avail < 0 ? -1 : total - avail;
}

static int has_marker(const char *path, const char *marker)
{
	char line[4096];
	int found = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, marker) != NULL;
	fclose(f);
	return found;
}

static pid_t spawn(char **cmd, const char *dir, int i)
{
	char out[4096], err[4096];

	snprintf(out, sizeof(out), "%s/vm-%d.out", dir, i);
	snprintf(err, sizeof(err), "%s/vm-%d.err", dir, i);
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int in = open("/dev/null", O_RDONLY);
	int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || o < 0 || e < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
		_exit(127);
	execvp(cmd[0], cmd);
	_exit(127);
}

int main(int argc, char **argv)
{
	if (argc < 7 || strcmp(argv[5], "--") != 0) {
		fprintf(stderr, "usage: density N LIMIT_S MARKER OUTDIR -- CMD [ARG]...\n");
		return 2;
	}
	int n = atoi(argv[1]);
	double limit_ms = atof(argv[2]) * 1e3;
	const char *marker = argv[3], *dir = argv[4];
	pid_t pids[MAX_VMS];
	int status[MAX_VMS];

	if (n < 1 || n > MAX_VMS) {
		fprintf(stderr, "density: N must be 1..%d\n", MAX_VMS);
		return 2;
	}
	long base = used_kb(), peak = base;
	if (base < 0) {
		perror("density: /proc/meminfo");
		return 1;
	}
	double t0 = now_ms(), last = t0;
	for (int i = 0; i < n; i++) {
		pids[i] = spawn(argv + 6, dir, i);
		if (pids[i] < 0) {
			perror("density: fork");
			while (i-- > 0)
				kill(pids[i], SIGKILL);
			return 1;
		}
	}
	int left = n, killed = 0;
	while (left > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid < 0 && errno != EINTR) {
			perror("density: waitpid");
			return 1;
		}
		if (pid > 0) {
			for (int i = 0; i < n; i++)
				if (pids[i] == pid) {
					status[i] = WIFEXITED(st) ? WEXITSTATUS(st)
								  : 128 + WTERMSIG(st);
					pids[i] = 0; /* reaped: never signal its number again */
				}
			last = now_ms();
			left--;
			continue;
		}
		long u = used_kb();
		if (u > peak)
			peak = u;
		if (!killed && now_ms() - t0 > limit_ms) {
			for (int i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGKILL);
			killed = 1;
		}
		usleep(20000);
	}
	int good = 0;
	for (int i = 0; i < n; i++) {
		char out[4096];
		snprintf(out, sizeof(out), "%s/vm-%d.out", dir, i);
		int seen = has_marker(out, marker);
		if (status[i] == 0 && seen)
			good++;
		else
			fprintf(stderr, "density: vm-%d: exit status %d, %s %s\n", i, status[i],
				marker, seen ? "seen" : "missing");
	}
	printf("%.2f %d %ld\n", last - t0, good, peak - base);
	return 0;
}
