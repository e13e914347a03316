#!/bin/bash
# tests/nested/orphan-test.sh - stopping a test run or a benchmark leaves nothing running.
#
#   tests/nested/orphan-test.sh TARGET [VAR=VALUE]...
#
# Starts `make TARGET VAR=VALUE...` in the background, tagged with a unique environment
# variable that every process it starts inherits. Once a VMM of the run is up (the nested
# machine's QEMU, or kvmini/QEMU where tests run directly; at most ORPHAN_START_S, default
# 180 s) and at least ORPHAN_AFTER_S (default 60 s) have passed since the start, it sends
# SIGTERM to make alone, waits ORPHAN_LEFT_S (default 10 s), and looks for any process that
# still carries the tag. Prints "ok - orphans: TARGET" or "not ok - orphans: TARGET (...)"
# naming what was left (which it then kills), and "N passed, N failed".
# Exit status: 0 when nothing was left, 1 otherwise, 2 on a usage error.
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 TARGET [VAR=VALUE]..." >&2
	exit 2
fi
target=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
after=${ORPHAN_AFTER_S:-60}
start_limit=${ORPHAN_START_S:-180}
left_wait=${ORPHAN_LEFT_S:-10}
tag="kvmini-orphan-$$-$RANDOM"
log=$(mktemp "${TMPDIR:-/tmp}/kvmini-orphan-XXXXXX.log")
name="orphans: make $*"

# tagged [COMM_ERE]: "PID COMM" of every process whose environment holds the tag.
tagged() {
	local p comm
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" != $$ ] || continue
		grep -qz "^KVMINI_ORPHAN_TAG=$tag\$" "$p/environ" 2>/dev/null || continue
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		[ -z "${1:-}" ] || [[ $comm =~ $1 ]] || continue
		echo "${p#/proc/} $comm"
	done
}

not_ok() {
	echo "not ok - $name ($1)"
	echo "# last lines of make's output:"
	tail -n 15 "$log" | sed 's/^/#   /'
	echo "0 passed, 1 failed"
	rm -f "$log"
	exit 1
}

t0=$SECONDS
KVMINI_ORPHAN_TAG=$tag make -C "$top" --no-print-directory "$@" >"$log" 2>&1 &
make_pid=$!
vmm=""
while [ -z "$vmm" ]; do
	vmm=$(tagged '^(qemu-system-x86|kvmini)' | head -n 1)
	[ -n "$vmm" ] && break
	kill -0 "$make_pid" 2>/dev/null || not_ok "make ended before any VMM started"
	[ $((SECONDS - t0)) -lt "$start_limit" ] || {
		kill -TERM "$make_pid"
		not_ok "no VMM started within $start_limit s, nothing to test"
	}
	sleep 1
done
echo "# $name: ${vmm#* } (pid ${vmm%% *}) is up after $((SECONDS - t0)) s"
while [ $((SECONDS - t0)) -lt "$after" ]; do sleep 1; done
kill -0 "$make_pid" 2>/dev/null || not_ok "make ended before the SIGTERM, after $((SECONDS - t0)) s"
echo "# $name: SIGTERM to make (pid $make_pid) after $((SECONDS - t0)) s"
kill -TERM "$make_pid"
sleep "$left_wait"
left=$(tagged)
if [ -n "$left" ]; then
	what=$(echo "$left" | awk '{ printf "%s%s (pid %s)", n++ ? ", " : "", $2, $1 }')
	echo "$left" | awk '{ print $1 }' | xargs -r kill -KILL 2>/dev/null || true
	not_ok "still running $left_wait s after the SIGTERM: $what"
fi
wait "$make_pid" 2>/dev/null || true
echo "ok - $name"
echo "1 passed, 0 failed"
rm -f "$log"
