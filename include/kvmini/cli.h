/* cli: the command line of `kvmini`, parsed and checked, then applied to a kvmini_config. */
#ifndef KVMINI_CLI_H
#define KVMINI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kvmini.h"

enum cli_action { CLI_RUN, CLI_HELP, CLI_RUN_HELP, CLI_VERSION };

#define CLI_ARG_MAX 4096

struct cli_disk {
	const char *path;
	bool readonly;
	const char *serial; /* or NULL */
	bool cache_unsafe;
};

struct cli_net {
	const char *tap;
	const char *mac; /* or NULL; checked by kvmini_config_add_net */
};

struct cli {
	enum cli_action action;
	const char *kernel, *initrd, *cmdline, *name;
	bool no_default_cmdline;
	uint64_t mem_size;
	unsigned int cpus;
	int log_level;		/* enum kvmini_log_level */
	unsigned int trace;	/* enum kvmini_trace; 0: off */
	const char *trace_file; /* or NULL: stderr */
	struct cli_disk disk[KVMINI_MAX_VIRTIO];
	unsigned int nr_disks;
	struct cli_net net[KVMINI_MAX_NETS];
	unsigned int nr_nets;
	char disk_arg[KVMINI_MAX_VIRTIO][CLI_ARG_MAX]; /* --disk texts, split in place */
	char net_arg[KVMINI_MAX_NETS][CLI_ARG_MAX];    /* --net texts, split in place */
};

/*
 * Parse argv (`kvmini [--help|--version]` or `kvmini run OPTIONS`). Fills defaults (1 vCPU,
 * 256 MiB, log level warn) and checks every value it can. 0, or -EINVAL with a
 * KVMINI_EXIT_USAGE message in `e`. argv strings are referenced, not copied.
 */
int cli_parse(struct cli *c, int argc, char **argv, struct kvmini_error *e);

/*
 * Put the parsed options into `cfg` (console on stdin/stdout, log to stderr, trace to
 * `trace_fd`). The library checks what the parser cannot (a MAC address). 0 or -errno.
 */
int cli_apply(const struct cli *c, struct kvmini_config *cfg, int trace_fd, struct kvmini_error *e);

/* Parse a size with an optional K, M, G or T suffix (powers of 1024). 0 or -EINVAL/-ERANGE. */
int cli_parse_size(const char *s, uint64_t *out);

/* Print `kvmini --help` or `kvmini run --help`. */
void cli_usage(FILE *f);
void cli_run_usage(FILE *f);

#endif
