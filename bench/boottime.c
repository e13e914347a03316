// bench/boottime.c: time one VMM run for bench/boot.sh (built by it, run in L2 or directly).
//
//   boottime LIMIT_S MARKER OUT ERR -- CMD [ARG]...
//
// Takes CLOCK_MONOTONIC, forks and execs CMD with stdin /dev/null, stdout a pipe and stderr
// the file ERR, then reads the pipe line by line (copying it to the file OUT) and timestamps
// the first line containing MARKER. Prints one line:
//   READY_MS EXIT_MS STATUS
// READY_MS: ms from just before fork to that line (-1 if it never came), EXIT_MS: to the
// process's exit (waitpid), STATUS: its exit status (128+N if killed by signal N). CMD is
// killed with SIGKILL after LIMIT_S seconds. Exit status 0 unless the helper itself fails.
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

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 7 || strcmp(argv[5], "--") != 0) {
		fprintf(stderr, "usage: boottime LIMIT_S MARKER OUT ERR -- CMD [ARG]...\n");
		return 2;
	}
	unsigned limit = (unsigned)strtoul(argv[1], NULL, 10);
	const char *marker = argv[2];
	FILE *out = fopen(argv[3], "w");
	int err = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int p[2];

	if (!out || err < 0 || null < 0 || pipe2(p, O_CLOEXEC) < 0) {
		perror("boottime");
		return 1;
	}
	double t0 = now_ms();
	child = fork();
	if (child < 0) {
		perror("boottime: fork");
		return 1;
	}
	if (child == 0) {
		if (dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		execvp(argv[6], argv + 6);
		_exit(127);
	}
	close(p[1]);
	signal(SIGALRM, on_alarm);
	alarm(limit);

	FILE *in = fdopen(p[0], "r");
	char *line = NULL;
	size_t cap = 0;
	double ready = -1;

	while (in && getline(&line, &cap, in) >= 0) {
		if (ready < 0 && strstr(line, marker))
			ready = now_ms() - t0;
		fputs(line, out);
	}
	int st;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR) {
			perror("boottime: waitpid");
			return 1;
		}
	double done = now_ms() - t0;
	int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

	fclose(out);
	printf("%.2f %.2f %d\n", ready, done, status);
	free(line);
	return 0;
}
