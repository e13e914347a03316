/* main: the kvmini command, a client of libkvmini: parse options, run the VM, map the outcome. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "kvmini.h"
#include "kvmini/cli.h"

static int main_fail(const struct kvmini_error *e)
{
	fprintf(stderr, "kvmini: error: %s\n", e->msg);
	return e->status ? e->status : KVMINI_EXIT_HOST;
}

/* Until the VM stops: a signal from `sfd` stops it with 128 + N. */
static void main_wait(struct kvmini_vm *vm, int sfd)
{
	struct pollfd p[2] = {
		{.fd = sfd, .events = POLLIN},
		{.fd = kvmini_vm_stop_fd(vm), .events = POLLIN},
	};
	while (kvmini_vm_wait(vm, 0, NULL) == -ETIMEDOUT) {
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			kvmini_vm_stop(vm, KVMINI_EXIT_HOST, "poll failed in the kvmini command");
			break;
		}
		struct signalfd_siginfo si;
		if ((p[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			char why[128];
			int sig = (int)si.ssi_signo;
			snprintf(why, sizeof(why), "stopped by signal %d (%s)", sig,
				 strsignal(sig));
			kvmini_vm_stop(vm, KVMINI_EXIT_SIGNAL + sig, why);
		}
	}
	kvmini_vm_wait(vm, -1, NULL);
}

int main(int argc, char **argv)
{
	struct timespec t0; /* the boot timer counts from here, as in every kvmini run */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct kvmini_error e = {0};
	struct cli c;

	/* A crash must not dump gigabytes of guest memory. */
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);

	if (cli_parse(&c, argc, argv, &e) < 0)
		return main_fail(&e);
	switch (c.action) {
	case CLI_HELP:
		cli_usage(stdout);
		return 0;
	case CLI_RUN_HELP:
		cli_run_usage(stdout);
		return 0;
	case CLI_VERSION:
		printf("kvmini %s\n", kvmini_version());
		return 0;
	case CLI_RUN:
		break;
	}

	/* SIGINT/SIGTERM/SIGHUP/SIGQUIT arrive on a signalfd; blocked before any thread exists
	 * (the library's threads block every signal anyway). */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		snprintf(e.msg, sizeof(e.msg), "signalfd: %s", strerror(errno));
		e.status = KVMINI_EXIT_HOST;
		return main_fail(&e);
	}

	int trace_fd = STDERR_FILENO;
	if (c.trace_file) {
		trace_fd = open(c.trace_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (trace_fd < 0) {
			snprintf(
				e.msg, sizeof(e.msg),
				"cannot open --trace-file %s: %s; check the path and its directory",
				c.trace_file, strerror(errno));
			e.status = KVMINI_EXIT_INPUT;
			close(sfd);
			return main_fail(&e);
		}
	}

	struct kvmini_config *cfg = NULL;
	struct kvmini_vm *vm = NULL;
	int status;
	if (kvmini_config_new(&cfg) < 0) {
		snprintf(e.msg, sizeof(e.msg), "out of memory");
		e.status = KVMINI_EXIT_HOST;
	}
	if (!e.status)
		kvmini_config_set_start_time(
			cfg, (uint64_t)t0.tv_sec * 1000000000ULL + (uint64_t)t0.tv_nsec, NULL);
	if (e.status || cli_apply(&c, cfg, trace_fd, &e) < 0 ||
	    kvmini_vm_create(cfg, &vm, &e) < 0 || kvmini_vm_start(vm, &e) < 0) {
		status = main_fail(&e);
		if (!vm && c.trace_file)
			unlink(c.trace_file); /* no trace of a VM that never was */
	} else {
		main_wait(vm, sfd);
		status = kvmini_vm_exit_status(vm);
		if (status != KVMINI_EXIT_OK)
			fprintf(stderr, "kvmini: %s: %s\n",
				status >= KVMINI_EXIT_SIGNAL ? "stopped" : "error",
				kvmini_vm_stop_reason(vm));
		else if (c.log_level >= KVMINI_LOG_INFO)
			fprintf(stderr, "kvmini: info: %s\n", kvmini_vm_stop_reason(vm));
		uint64_t dropped = kvmini_vm_console_dropped(vm);
		if (dropped && c.log_level >= KVMINI_LOG_WARN)
			fprintf(stderr,
				"kvmini: warning: %llu bytes of console output were dropped "
				"(output too slow)\n",
				(unsigned long long)dropped);
		uint64_t lost = kvmini_vm_log_dropped(vm);
		if (lost)
			fprintf(stderr,
				"kvmini: warning: %llu log or trace lines were dropped (stderr too "
				"slow)\n",
				(unsigned long long)lost);
	}
	kvmini_vm_destroy(&vm);
	kvmini_config_free(&cfg);
	if (trace_fd != STDERR_FILENO)
		close(trace_fd);
	close(sfd);
	return status;
}
