/* pty-crash: a kvmini that dies of SIGSEGV while its console has the terminal raw leaves the
 * terminal cooked, dumps no core and says so in one line (the Linux tests; busybox has no pty
 * tool). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static char out[1 << 16];
static size_t out_len;

/* Keep what kvmini wrote to the terminal (non-blocking master). */
static void drain(int m)
{
	for (;;) {
		char buf[4096];
		ssize_t n = read(m, buf, sizeof(buf));
		if (n <= 0)
			return;
		size_t room = sizeof(out) - 1 - out_len;
		size_t k = (size_t)n < room ? (size_t)n : room;
		memcpy(out + out_len, buf, k);
		out_len += k;
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap(void)
{
	nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
}

/* The id of pid's thread named `name`, or 0. */
static pid_t thread_named(pid_t pid, const char *name)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	pid_t found = 0;
	for (struct dirent *de; !found && (de = readdir(d));) {
		if (de->d_name[0] == '.')
			continue;
		char path[384], comm[32] = "";
		snprintf(path, sizeof(path), "%s/%s/comm", dir, de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		if (!strcmp(comm, name))
			found = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return found;
}

/* Print why the case failed and exit 1. */
static void fail(pid_t pid, const char *why)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	printf("%s\n", why);
	exit(1);
}

/*
 * pty-crash TARGET OUT KVMINI ARG...: run KVMINI ARG... on a new pty (its controlling
 * terminal); once the terminal is raw (ECHO off), send SIGSEGV to the process (TARGET
 * "process") or to its thread named TARGET (tgkill). Pass (exit 0, nothing printed) when
 * kvmini dies of SIGSEGV without a core, ECHO and ICANON are back and it printed "kvmini
 * crashed"; else one line saying why, exit 1. What kvmini wrote goes to OUT.
 */
int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: pty-crash TARGET OUT KVMINI [ARG]...\n");
		return 2;
	}
	const char *target = argv[1], *outp = argv[2];
	int m, s;
	if (openpty(&m, &s, NULL, NULL, NULL) < 0)
		fail(0, "openpty failed");
	pid_t pid = fork();
	if (pid < 0)
		fail(0, "fork failed");
	if (pid == 0) {
		setsid();
		ioctl(s, TIOCSCTTY, 0);
		for (int fd = 0; fd < 3; fd++)
			dup2(s, fd);
		close(m);
		execv(argv[3], argv + 3);
		_exit(127);
	}
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	struct termios t;
	bool raw = false;
	for (double end = now_s() + 120; now_s() < end;) {
		drain(m);
		if (tcgetattr(s, &t) == 0 && !(t.c_lflag & ECHO)) {
			raw = true;
			break;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			fail(0, "kvmini ended before its console made the terminal raw");
		nap();
	}
	if (!raw)
		fail(pid, "the terminal never went raw in 120 s");
	if (!strcmp(target, "process")) {
		kill(pid, SIGSEGV);
	} else {
		/* The console goes raw just before the vCPU threads start: give them 10 s. */
		pid_t tid = 0;
		for (double end = now_s() + 10; !tid && now_s() < end; nap())
			tid = thread_named(pid, target);
		if (!tid)
			fail(pid, "no thread of kvmini has that name");
		syscall(SYS_tgkill, pid, tid, SIGSEGV);
	}
	int st = 0;
	bool ended = false;
	for (double end = now_s() + 20; !ended && now_s() < end;) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			ended = true;
		else
			nap();
		drain(m);
	}
	if (!ended)
		fail(pid, "kvmini still ran 20 s after the SIGSEGV");
	nap();
	drain(m);
	FILE *f = fopen(outp, "w");
	if (f) {
		fwrite(out, 1, out_len, f);
		fclose(f);
	}
	out[out_len] = '\0';
	if (tcgetattr(s, &t) < 0)
		fail(0, "tcgetattr failed");
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSEGV)
		fail(0, "kvmini did not die of SIGSEGV");
	if (WCOREDUMP(st))
		fail(0, "kvmini dumped core");
	if (!(t.c_lflag & ECHO) || !(t.c_lflag & ICANON))
		fail(0, "the terminal was left raw");
	if (!strstr(out, "kvmini crashed"))
		fail(0, "no line saying kvmini crashed");
	return 0;
}
