/* main: the kvmini command, a client of libkvmini: `run` boots a VM, the other verbs manage
 * running and defined VMs through their control sockets. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "kvmini.h"
#include "kvmini/cache.h"
#include "kvmini/cli.h"
#include "kvmini/cp.h"
#include "kvmini/ctl.h"
#include "kvmini/runner.h"
#include "kvmini/sandbox.h"

static struct cli main_cli; /* large (argument buffers): not on the stack */

int main(int argc, char **argv)
{
	struct timespec t0; /* the boot timer counts from here, as in every kvmini run */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t t0_ns = (uint64_t)t0.tv_sec * 1000000000ULL + (uint64_t)t0.tv_nsec;

	/* A crash must not dump gigabytes of guest memory. */
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);

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
