#!/bin/bash
# tests/scripts/kvmtest-bound-test.sh - tests/kvm/check.sh never wedges on a test binary that
# hangs: it prints the binary's stacks, kills it and fails 124; other results pass through.
#
#   tests/scripts/kvmtest-bound-test.sh
#
# Cases (stand-in test binaries, KVMINI_KVMTEST_MODE=direct, no /dev/kvm needed):
#   hung-binary-killed     a binary that sleeps: check.sh exits 124 within the limit (2 s) plus
#                          10 s, names the binary as hung, and the binary is no longer running
#   results-pass-through   a binary that passes then one that fails 3: exit 3, both ran
# Prints "ok - NAME" or "not ok - NAME (why)" and "N passed, N failed". Exit 0 when all pass.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
check=$here/../kvm/check.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-bound-test.XXXXXX")
trap 'pkill -KILL -x -f "sleep 300" 2>/dev/null; rm -rf "$tmp"' EXIT
# shellcheck source=tests/scripts/report.sh
. "$here/report.sh"

printf '#!/bin/sh\nexec sleep 300\n' >"$tmp/hangs"
printf '#!/bin/sh\necho passed-ran\n' >"$tmp/passes"
printf '#!/bin/sh\necho failed-ran\nexit 3\n' >"$tmp/fails"
chmod +x "$tmp/hangs" "$tmp/passes" "$tmp/fails"

start=$(date +%s)
KVMINI_KVMTEST_MODE=direct KVMINI_KVMTEST_TIMEOUT=2 "$check" "$tmp" "$tmp/hangs" >"$tmp/out" 2>&1
rc=$?
took=$(($(date +%s) - start))
why=""
if [ "$rc" != 124 ]; then
	why="exit $rc, not 124"
elif [ "$took" -gt 12 ]; then
	why="took $took s for a 2 s limit"
elif ! grep -q "$tmp/hangs hung" "$tmp/out"; then
	why="no line naming the hung binary"
elif pgrep -x -f 'sleep 300' >/dev/null; then
	why="the hung binary still runs"
fi
result hung-binary-killed "$why"

KVMINI_KVMTEST_MODE=direct "$check" "$tmp" "$tmp/passes" "$tmp/fails" >"$tmp/out" 2>&1
rc=$?
why=""
if [ "$rc" != 3 ]; then
	why="exit $rc, not 3"
elif ! grep -q passed-ran "$tmp/out" || ! grep -q failed-ran "$tmp/out"; then
	why="not both binaries ran"
fi
result results-pass-through "$why"
summary
