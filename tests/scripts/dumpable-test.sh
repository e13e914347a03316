#!/bin/bash
# tests/scripts/dumpable-test.sh - a running kvmini is not dumpable (PR_SET_DUMPABLE 0): no core
# of it, and its /proc files are not its user's to read. (That a crash restores the terminal
# needs a VM running: tests/linux/crash-tests.sh.)
#
#   tests/scripts/dumpable-test.sh KVMINI      (as root; no /dev/kvm needed)
#
# Cases:
#   not-dumpable              kvmini run as nobody, blocked reading its --config from a FIFO:
#                             its /proc/PID files belong to root (PR_SET_DUMPABLE 0), not to it
# Prints "ok - NAME" or "not ok - NAME (why)" and "N passed, N failed". Exit 0 when all pass.
set -uo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 KVMINI" >&2
	exit 2
fi
kvmini=$(realpath "$1")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-dumpable-test.XXXXXX")
chmod 755 "$tmp"
pid=""
trap '[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
# shellcheck source=tests/scripts/report.sh
. "$(dirname "$0")/report.sh"

mkfifo -m 666 "$tmp/config"
: >"$tmp/out"
setpriv --reuid=65534 --regid=65534 --clear-groups "$kvmini" run --config "$tmp/config" \
	>"$tmp/out" 2>&1 &
pid=$!
why="kvmini (pid $pid) did not wait on its FIFO within 5 s"
for _ in $(seq 50); do
	# kvmini itself (not setpriv before its exec), blocked opening the FIFO (openat, 257):
	# past its start-up, where it makes itself not dumpable.
	if [ "$(cat /proc/$pid/comm 2>/dev/null)" = kvmini ] &&
		[ "$(cut -d' ' -f1 /proc/$pid/syscall 2>/dev/null)" = 257 ]; then
		owner=$(stat -c %u /proc/$pid/environ)
		why=""
		[ "$owner" = 0 ] || why="/proc/$pid/environ belongs to uid $owner: kvmini is dumpable"
		break
	fi
	sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=""
result not-dumpable "$why"

summary
