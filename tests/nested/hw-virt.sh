#!/bin/sh
# tests/nested/hw-virt.sh - can this host run standard Linux guests at speed?
#
# Exit 0 when /dev/kvm is backed by hardware virtualization: the CPU has the
# vmx or svm flag, /dev/kvm exists, and it is not PVM (the kvm_pvm module, a
# software KVM that runs only PVM-enabled guest kernels at speed; see
# docs/testing.md). Exit 1 otherwise, in which case Linux system tests must
# run inside the nested machine (tests/nested/run.sh).
# With -v, print the reason on stdout.
verbose=0
[ "${1:-}" = -v ] && verbose=1
say() { [ "$verbose" = 0 ] || echo "$*"; }

if ! grep -q -w -E 'vmx|svm' /proc/cpuinfo 2>/dev/null; then
	say "no: the CPU has neither vmx nor svm"
	exit 1
fi
if [ -e /sys/module/kvm_pvm ]; then
	say "no: /dev/kvm is PVM (kvm_pvm loaded)"
	exit 1
fi
if [ ! -e /dev/kvm ]; then
	say "no: /dev/kvm does not exist"
	exit 1
fi
say "yes: hardware virtualization with /dev/kvm"
exit 0
