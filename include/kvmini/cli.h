/* cli: the command line of `kvmini`, parsed into a vm_config. */
#ifndef KVMINI_CLI_H
#define KVMINI_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "kvmini/vm.h"
#include "kvmini/vmerr.h"

enum cli_action { CLI_RUN, CLI_HELP, CLI_RUN_HELP, CLI_VERSION };

#define CLI_ARG_MAX 4096

struct cli {
	enum cli_action action;
	struct vm_config vm;
	char disk_arg[VM_MAX_VIRTIO][CLI_ARG_MAX]; /* --disk texts, split in place */
	char net_arg[VM_MAX_NETS][CLI_ARG_MAX];	   /* --net texts, split in place */
};

/*
 * Parse argv (`kvmini [--help|--version]` or `kvmini run OPTIONS`). Fills defaults (1 vCPU,
 * 256 MiB, log level warn) and checks every value. 0, or -EINVAL with a KVMINI_EXIT_USAGE
 * message in `e`. argv strings are referenced, not copied.
 */
int cli_parse(struct cli *c, int argc, char **argv, struct vmerr *e);

/* Parse a size with an optional K, M, G or T suffix (powers of 1024). 0 or -EINVAL/-ERANGE. */
int cli_parse_size(const char *s, uint64_t *out);

/* Print `kvmini --help` or `kvmini run --help`. */
void cli_usage(FILE *f);
void cli_run_usage(FILE *f);

#endif
