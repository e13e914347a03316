/* main: the kvmini command, a client of libkvmini: `run` boots a VM, the other verbs manage
 * running and defined VMs through their control sockets. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "kvmini.h"
#include "kvmini/cache.h"
#include "kvmini/cli.h"
#include "kvmini/cp.h"
#include "kvmini/ctl.h"
#include "kvmini/runner.h"
#include "kvmini/sandbox.h"

static struct cli main_cli; /* large (argument buffers): not on the stack */

/* The terminal as it was when kvmini started, for main_crashed(): a signal handler can reach
 * nothing else. Written once, before the handler is installed. */
static struct termios main_tty;
static volatile sig_atomic_t main_tty_saved;

/* A fatal signal (a bug in kvmini: SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE): put the terminal
 * back as it was (the console may have made it raw), say so in one line, and die of the same
 * signal (SA_RESETHAND restored the default action). Only async-signal-safe calls. */
static void main_crashed(int sig)
{
	if (main_tty_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &main_tty);
	static const char msg[] = "kvmini: error: kvmini crashed (a fatal signal); the terminal "
				  "was restored, no core was dumped\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	raise(sig);
}

/* SIGSYS from a seccomp filter (--seccomp kill): a thread made a forbidden system call. The
 * terminal back as it was, one line naming the thread and the call, and exit 159 at once:
 * nothing else of the process can be trusted to run. */
static void main_sigsys(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (main_tty_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &main_tty);
	kvmini_seccomp_report(si, STDERR_FILENO);
	_exit(KVMINI_EXIT_SECCOMP);
}

/* No core dump and no ptrace by other processes of the user (PR_SET_DUMPABLE 0: a core_pattern
 * that pipes ignores RLIMIT_CORE), and the terminal restored if kvmini crashes. */
static void main_harden(void)
{
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &main_tty) == 0)
		main_tty_saved = 1;
	struct sigaction sa = {.sa_handler = main_crashed, .sa_flags = SA_RESETHAND | SA_NODEFER};
	sigemptyset(&sa.sa_mask);
	const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	struct sigaction sys = {.sa_sigaction = main_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sys.sa_mask);
	sigaction(SIGSYS, &sys, NULL);
	/* What would otherwise open a file on first use, under a filter that forbids it: the
	 * time zone (libevent's Date header) and jansson's hash seed (/dev/urandom). */
	tzset();
	json_object_seed(0);
}

int main(int argc, char **argv)
{
	struct timespec t0; /* the boot timer counts from here, as in every kvmini run */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t t0_ns = (uint64_t)t0.tv_sec * 1000000000ULL + (uint64_t)t0.tv_nsec;

	/* A crash must not dump gigabytes of guest memory, nor leave the terminal raw. */
	main_harden();

	if (argc >= 2 && !strcmp(argv[1], "exec"))
		return sandbox_main(argc, argv, t0_ns);
	if (argc >= 2 && !strcmp(argv[1], "cache"))
		return cache_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "cp")) {
		signal(SIGPIPE, SIG_IGN);
		return cp_main(argc, argv);
	}
	if (argc >= 2 && ctl_is_verb(argv[1]))
		return ctl_main(argc, argv, t0_ns);

	struct kvmini_error e = {0};
	struct cli *c = &main_cli;
	int status;
	if (cli_parse(c, argc, argv, &e) < 0) {
		fprintf(stderr, "kvmini: error: %s\n", e.msg);
		status = e.status ? e.status : KVMINI_EXIT_USAGE;
	} else if (c->action == CLI_HELP) {
		cli_usage(stdout);
		ctl_usage(stdout);
		status = 0;
	} else if (c->action == CLI_RUN_HELP) {
		cli_run_usage(stdout);
		status = 0;
	} else if (c->action == CLI_VERSION) {
		printf("kvmini %s\n", kvmini_version());
		status = 0;
	} else {
		status = runner_run(c, t0_ns);
	}
	cli_free(c);
	return status;
}
