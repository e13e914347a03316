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
# test binary passed, else the first failure's (124: a test binary hung and was killed; 125: the
# nested machine hung or crashed).
#
# Environment: KVMINI_KVMTEST_MODE=auto|direct|nested (default auto), KVMINI_KVMTEST_TIMEOUT
# (seconds per test binary in direct mode, default 900); NESTED_* of run.sh.
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

# A test binary that hangs must not wedge the run: after KVMINI_KVMTEST_TIMEOUT seconds (default
# 900) its threads' stacks are printed (gdb, where installed), it is killed, and this fails 124.
run_bounded() {
	local limit=${KVMINI_KVMTEST_TIMEOUT:-900} waited=0 pid rc=0
	"$1" &
	pid=$!
	# bash reaps a finished child on SIGCHLD, so kill -0 fails as soon as it has exited.
	while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$limit" ]; do
		sleep 1
		waited=$((waited + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "kvm tests: $1 still runs after ${limit} s; its threads' stacks, then it is killed:"
		if command -v gdb >/dev/null; then
			gdb -p "$pid" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^(Thread|#)' || true
		else
			echo "kvm tests: (gdb is not installed: no stacks)"
		fi
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		echo "kvm tests: $1 hung (KVMINI_KVMTEST_TIMEOUT=${limit})"
		exit 124
	fi
	wait "$pid" || rc=$?
	return "$rc"
}

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
		run_bounded "$t"
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
