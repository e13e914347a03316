/* ctl: the management verbs (list, define, start, console, pause, shutdown, stats...): clients
 * of each VM's control socket and of the runtime and definition folders. */
#ifndef KVMINI_CTL_H
#define KVMINI_CTL_H

#include <stdbool.h>
#include <stdio.h>

/* True if `word` is one of the verbs ctl_main() runs. */
bool ctl_is_verb(const char *word);

/* Run `kvmini VERB ARGS...` (argv[1] is the verb); returns the exit status. `t0_ns` is kvmini's
 * start, for `start` (which boots the VM). */
int ctl_main(int argc, char **argv, unsigned long long t0_ns);

/* Print the verbs' usage. */
void ctl_usage(FILE *f);

#endif
