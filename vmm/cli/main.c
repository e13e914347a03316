/* main: the kvmini command: parse options, build the VM, run it, map the outcome to a status. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "kvmini/cli.h"
#include "kvmini/host.h"
#include "kvmini/vm.h"

static int main_fail(const struct vmerr *e)
{
	fprintf(stderr, "kvmini: error: %s\n", e->msg);
	return e->status ? e->status : KVMINI_EXIT_HOST;
}

int main(int argc, char **argv)
{
	uint64_t start_ns = boottimer_now_ns(); /* the boot timer counts from here */
	struct vmerr e = {0};
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
		printf("kvmini %s\n", KVMINI_VERSION);
		return 0;
	case CLI_RUN:
		break;
	}
	if (host_check_memory(c.vm.mem_size, &e) < 0)
		return main_fail(&e);

	/* SIGINT/SIGTERM/SIGHUP/SIGQUIT arrive on a signalfd read by the console loop; blocked
	 * before any thread exists, so every thread inherits the mask. */
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
		vmerr_set(&e, KVMINI_EXIT_HOST, errno, "signalfd");
		return main_fail(&e);
	}
	c.vm.signal_fd = sfd;
	c.vm.start_ns = start_ns;

	const char *slow = host_slow_kvm_reason("/sys", "/proc/cpuinfo");
	if (slow && c.vm.log_level >= LOG_WARN)
		fprintf(stderr,
			"kvmini: warning: %s: a standard Linux guest runs instruction-emulated "
			"here, "
			"about 1000x slower (see README: hosts without hardware virtualization)\n",
			slow);

	struct vm *vm;
	if (vm_create(&vm, &c.vm, &e) < 0) {
		close(sfd);
		return main_fail(&e);
	}
	int status = vm_run(vm);
	if (status != KVMINI_EXIT_OK)
		fprintf(stderr, "kvmini: %s: %s\n",
			status >= KVMINI_EXIT_SIGNAL ? "stopped" : "error", vm->stop_reason);
	else
		log_info(&vm->log, "%s", vm->stop_reason);
	uint64_t dropped = atomic_load(&vm->con.dropped);
	if (dropped)
		log_warn(&vm->log, "%llu bytes of console output were dropped (output too slow)",
			 (unsigned long long)dropped);
	unsigned int lost = atomic_load(&vm->log.dropped);
	if (lost)
		fprintf(stderr, "kvmini: warning: %u log lines were dropped (stderr too slow)\n",
			lost);
	vm_destroy(vm);
	close(sfd);
	return status;
}
