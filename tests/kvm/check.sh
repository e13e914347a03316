#!/bin/bash
# tests/kvm/check.sh - run the KVM tests with tiny guests where a /dev/kvm is.
#
#   tests/kvm/check.sh BUILD_DIR TEST_BIN...
#
# The tiny guests run on any /dev/kvm, PVM's included, so where this host's /dev/kvm opens the
# tests run directly. A host with no working /dev/kvm at all (no KVM module, or a device node
# that answers ENODEV) runs them inside the nested machine instead (tests/nested/run.sh: L2 has
# a hardware-style /dev/kvm), with BUILD_DIR's kvmini and guests/ at the same absolute paths,
# since the tests were built with those paths. Says which on stdout. Exit status: 0 when every
# test binary passed, else the first failure's (125: the nested machine hung or crashed).
#
# Environment: KVMINI_KVMTEST_MODE=auto|direct|nested (default auto); NESTED_* of run.sh.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_DIR TEST_BIN..." >&2
	exit 2
fi
build=$(cd "$1" && pwd)
shift
tests=()
for t in "$@"; do tests+=("$(cd "$(dirname "$t")" && pwd)/$(basename "$t")"); done
here=$(cd "$(dirname "$0")" && pwd)

mode=${KVMINI_KVMTEST_MODE:-auto}
if [ "$mode" = auto ]; then
	if [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; then
		mode=direct
	else
		mode=nested
		# Never open a path that may not be a device: <> would create it.
		why="/dev/kvm does not open (no KVM driver behind it?)"
		[ -c /dev/kvm ] || why="/dev/kvm is not a character device"
		[ -e /dev/kvm ] || why="there is no /dev/kvm"
		echo "kvm tests: no working /dev/kvm on this host: $why"
	fi
fi
case "$mode" in
direct)
	echo "kvm tests: running directly on this host's /dev/kvm"
	for t in "${tests[@]}"; do
		echo "== $t"
		"$t"
	done
	;;
nested)
	echo "kvm tests: running inside the nested machine (tests/nested/run.sh)"
	files=(--host-file "$build/kvmini" --host-file "$build/guests")
	for t in "${tests[@]}"; do files+=(--host-file "$t"); done
	# shellcheck disable=SC2016 # expanded in L2
	exec "$here/../nested/run.sh" "${files[@]}" -- sh -c \
		'for t in "$@"; do echo "== $t"; "$t" || exit $?; done' sh "${tests[@]}"
	;;
*)
	echo "$0: KVMINI_KVMTEST_MODE must be auto, direct or nested" >&2
	exit 2
	;;
esac
