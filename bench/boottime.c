// bench/boottime.c: time one VMM run for bench/boot.sh (built by it, run in L2 or directly).
//
//   boottime [-m GUEST_MIB SETTLE_MS] LIMIT_S MARKER OUT ERR -- CMD [ARG]...
//
// Takes CLOCK_MONOTONIC, forks and execs CMD with stdin /dev/null, stdout a pipe and stderr
// the file ERR, then reads the pipe line by line (copying it to the file OUT) and timestamps
// the first line containing MARKER. Prints one line:
//   READY_MS EXIT_MS STATUS FORK_REALTIME_S
// READY_MS: ms from just before fork to that line (-1 if it never came), EXIT_MS: to the
// process's exit (waitpid), STATUS: its exit status (128+N if killed by signal N),
// FORK_REALTIME_S: CLOCK_REALTIME just before fork (seconds, to match against traces that
// only have wall-clock stamps). CMD is killed with SIGKILL after LIMIT_S seconds.
//
// With -m, SETTLE_MS after the marker line it reads /proc/PID/smaps of CMD, kills CMD
// (SIGKILL, so STATUS is 137) and appends to the line:
//   RSS_KB GUEST_RSS_KB PSS_KB GUEST_MAPS
// RSS_KB: the process's resident memory; GUEST_RSS_KB: the resident part of the mappings at
// least GUEST_MIB large (the guest's RAM; nothing else a VMM maps is that large); PSS_KB:
// proportional set size; GUEST_MAPS: how many mappings counted as guest RAM.
// Exit status 0 unless the helper itself fails.
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

static pid_t child;

static void on_alarm(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
}

static double clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct mem_use {
	unsigned long rss, guest_rss, pss, guest_maps;
};

// Sum /proc/PID/smaps: every mapping's Rss and Pss, and the Rss of mappings of at least
// guest_kb (a mapping's header line "START-END PERMS ..." gives its size).
static int read_smaps(pid_t pid, unsigned long guest_kb, struct mem_use *m)
{
	char path[64], line[512];
	unsigned long start, end, kb;
	int in_guest = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	memset(m, 0, sizeof(*m));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in_guest = (end - start) / 1024 >= guest_kb;
			m->guest_maps += (unsigned long)in_guest;
		} else if (sscanf(line, "Rss: %lu kB", &kb) == 1) {
			m->rss += kb;
			if (in_guest)
				m->guest_rss += kb;
		} else if (sscanf(line, "Pss: %lu kB", &kb) == 1) {
			m->pss += kb;
		}
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long guest_mib = 0, settle_ms = 0;
	int a = 1;

	if (argc > 3 && strcmp(argv[1], "-m") == 0) {
		guest_mib = strtoul(argv[2], NULL, 10);
		settle_ms = strtoul(argv[3], NULL, 10);
		a = 4;
	}
	if (argc - a < 6 || strcmp(argv[a + 4], "--") != 0 || (a > 1 && guest_mib == 0)) {
		fprintf(stderr, "usage: boottime [-m GUEST_MIB SETTLE_MS] LIMIT_S MARKER OUT ERR "
				"-- CMD [ARG]...\n");
		return 2;
	}
	unsigned limit = (unsigned)strtoul(argv[a], NULL, 10);
	const char *marker = argv[a + 1];
	FILE *out = fopen(argv[a + 2], "w");
	int err = open(argv[a + 3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	char **cmd = argv + a + 5;
	int p[2];

	if (!out || err < 0 || null < 0 || pipe2(p, O_CLOEXEC) < 0) {
		perror("boottime");
		return 1;
	}
	double real0 = clock_ms(CLOCK_REALTIME);
	double t0 = clock_ms(CLOCK_MONOTONIC);
	child = fork();
	if (child < 0) {
		perror("boottime: fork");
		return 1;
	}
	if (child == 0) {
		if (dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		execvp(cmd[0], cmd);
		_exit(127);
	}
	close(p[1]);
	signal(SIGALRM, on_alarm);
	alarm(limit);

	FILE *in = fdopen(p[0], "r");
	char *line = NULL;
	size_t cap = 0;
	double ready = -1;
	struct mem_use mem = {0};
	int have_mem = 0;

	while (in && getline(&line, &cap, in) >= 0) {
		fputs(line, out);
		if (ready >= 0 || !strstr(line, marker))
			continue;
		ready = clock_ms(CLOCK_MONOTONIC) - t0;
		if (guest_mib) {
			usleep((useconds_t)settle_ms * 1000);
			have_mem = read_smaps(child, guest_mib * 1024, &mem) == 0;
			kill(child, SIGKILL);
		}
	}
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR) {
			perror("boottime: waitpid");
			return 1;
		}
	double done = clock_ms(CLOCK_MONOTONIC) - t0;
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

	fclose(out);
	printf("%.2f %.2f %d %.6f", ready, done, status, real0 / 1e3);
	if (guest_mib) {
		if (have_mem)
			printf(" %lu %lu %lu %lu", mem.rss, mem.guest_rss, mem.pss, mem.guest_maps);
		else
			printf(" - - - -");
	}
	printf("\n");
	free(line);
	return 0;
}
