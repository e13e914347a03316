// scripts/reap.c: run a command so that nothing it starts outlives it.
//
//   reap [-g GRACE_S] [-q] -- CMD [ARG]...
//
// The test and benchmark targets run under it (Makefile): the nested machine's QEMU, VMs,
// iperf3 and fio all end when the command ends or is stopped. reap makes itself a child
// subreaper (PR_SET_CHILD_SUBREAPER: whatever CMD starts, even under `timeout` in a process
// group of its own or detached with `&`, stays its descendant) and asks for SIGTERM when its
// own parent dies (PR_SET_PDEATHSIG). Then:
//   - CMD exits: every descendant still running gets SIGTERM; exit with CMD's status.
//   - reap gets SIGTERM, SIGINT or SIGHUP (its parent died, `make` was stopped, Ctrl-C): CMD
//     gets the signal and every other descendant SIGTERM; exit 128 + the signal's number.
// Either way, descendants still there GRACE_S seconds later (default 5) get SIGKILL, and reap
// exits only when none is left. Each one it had to end is named on stderr ("reap: ended ...")
// unless -q. Exit status 127: CMD could not be started; 2: usage.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REAP_MAX_PROCS 65536

struct reap_proc {
	int pid;
	int ppid;
	char state;
	char comm[32];
};

// reap_scan: fill procs with this host's processes (pid, ppid, state, name); returns the count.
static int reap_scan(struct reap_proc *procs, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while (n < max && (e = readdir(d))) {
		char path[64], buf[512], *open, *close;
		FILE *f;
		int pid = atoi(e->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
		open = strchr(buf, '(');
		close = strrchr(buf, ')');
		if (!open || !close || close < open ||
		    sscanf(close + 1, " %c %d", &procs[n].state, &procs[n].ppid) != 2)
			continue;
		procs[n].pid = pid;
		snprintf(procs[n].comm, sizeof(procs[n].comm), "%.*s", (int)(close - open - 1),
			 open + 1);
		n++;
	}
	closedir(d);
	return n;
}

// reap_kill_descendants: send sig to every live descendant of this process except skip;
// returns how many there were (zombies do not count: their parent, or reap, collects them).
static int reap_kill_descendants(struct reap_proc *procs, int sig, int skip, int quiet)
{
	int n = reap_scan(procs, REAP_MAX_PROCS), found = 0, mine[REAP_MAX_PROCS / 8];
	int nmine = 1, grew = 1;

	mine[0] = getpid();
	// Breadth-first over the parent links until no new descendant turns up.
	while (grew) {
		grew = 0;
		for (int i = 0; i < n; i++) {
			int known = 0, parent_mine = 0;

			for (int j = 0; j < nmine; j++) {
				known |= mine[j] == procs[i].pid;
				parent_mine |= mine[j] == procs[i].ppid;
			}
			if (known || !parent_mine || nmine == (int)(sizeof(mine) / sizeof(mine[0])))
				continue;
			mine[nmine++] = procs[i].pid;
			grew = 1;
			if (procs[i].state == 'Z')
				continue;
			found++;
			if (procs[i].pid == skip)
				continue;
			if (kill(procs[i].pid, sig) == 0 && !quiet && sig)
				fprintf(stderr, "reap: ended %s (pid %d) with signal %d\n",
					procs[i].comm, procs[i].pid, sig);
		}
	}
	return found;
}

static void reap_collect(int child, int *status)
{
	int st, pid;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		if (pid == child)
			*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static double reap_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static struct reap_proc procs[REAP_MAX_PROCS];
	double grace = 5, deadline;
	int opt, quiet = 0, child, status = -1, sig = 0;
	sigset_t set;

	while ((opt = getopt(argc, argv, "+g:q")) != -1) {
		if (opt == 'g')
			grace = atof(optarg);
		else if (opt == 'q')
			quiet = 1;
		else
			break;
	}
	if (optind >= argc || grace < 0) {
		fprintf(stderr, "usage: reap [-g GRACE_S] [-q] -- CMD [ARG]...\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) {
		perror("reap: prctl");
		return 127;
	}
	child = fork();
	if (child < 0) {
		perror("reap: fork");
		return 127;
	}
	if (child == 0) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "reap: %s: %s\n", argv[optind], strerror(errno));
		_exit(127);
	}
	// Wait for CMD's exit or a stop signal (the parent may already be gone: then stop now).
	if (getppid() == 1)
		sig = SIGTERM;
	while (!sig && status < 0) {
		siginfo_t si;

		if (sigwaitinfo(&set, &si) < 0)
			continue;
		if (si.si_signo == SIGCHLD)
			reap_collect(child, &status);
		else
			sig = si.si_signo;
	}
	if (sig && status < 0)
		kill(child, sig);
	reap_kill_descendants(procs, SIGTERM, child, quiet);
	deadline = reap_now() + grace;
	for (;;) {
		struct timespec tick = {0, 50 * 1000 * 1000};
		int left;

		reap_collect(child, &status);
		left = reap_kill_descendants(procs, 0, -1, 1);
		if (!left)
			break;
		if (reap_now() >= deadline) {
			reap_kill_descendants(procs, SIGKILL, -1, quiet);
			deadline = reap_now() + 3600;
		}
		sigtimedwait(&set, NULL, &tick);
	}
	return sig ? 128 + sig : status;
}
