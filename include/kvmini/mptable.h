/* mptable: the Intel MP Specification 1.4 tables through which an SMP guest finds its CPUs. */
#ifndef KVMINI_MPTABLE_H
#define KVMINI_MPTABLE_H

#include <stdint.h>

#include "kvmini/gmem.h"

#define MPTABLE_MAX_CPUS 64

/* Bytes the floating pointer plus configuration table take for `cpus` CPUs. */
uint64_t mptable_size(unsigned int cpus);

/*
 * Write the MP floating pointer structure at `at` and the configuration table right after
 * it: one processor entry per CPU (APIC id = index, CPU 0 the bootstrap processor), an ISA
 * bus, one IOAPIC (id = cpus) with ISA IRQs 0-15 routed to its pins 0-15, ExtINT on LINT0
 * and NMI on LINT1. Returns 0, -EINVAL if `cpus` is not 1..MPTABLE_MAX_CPUS, -ENOSPC if the
 * tables would reach LAYOUT_EBDA_END, or -EFAULT if the range is not guest RAM.
 */
int mptable_write(const struct gmem *gm, gpa_t at, unsigned int cpus);

#endif
