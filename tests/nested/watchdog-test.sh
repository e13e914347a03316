#!/bin/bash
# tests/nested/watchdog-test.sh - the nested machine's stall watchdog, tested on real L2 runs.
#
#   tests/nested/watchdog-test.sh
#
# Each case starts L2 (tests/nested/run.sh) with a command or kernel command line that
# behaves like one kind of wedge, and checks run.sh's verdict:
#   quiet-command-lives  a command silent for longer than NESTED_STALL passes: the heartbeat
#   silent-l2-stalls     L2 silent after the command started: "stalled", exit 125, CPU dump
#   stuck-console-kicked a console transmitter left waiting for a lost interrupt sends again
#                        (the heartbeat kicks it; a run in which no poke landed is tried
#                        again, 3 runs in all)
#   soft-lockup-stalls   L2 reports a CPU stuck for NESTED_LOCKUP s or more: "stalled", 125
#   kernel-oops-stops    L2's kernel reports an oops: what follows does not count (not an
#                        "ok", not the end marker), exit 125; a test quoting one is no oops
#   boot-wedge-retried   L2 silent while booting: started again, NESTED_BOOT_TRIES in all
#   keeper-holds-vm      L2 holds the keeper's VM while the command runs
#   bench-stall-is-na    a boot benchmark whose L2 stalls: the rows it cost say
#                        "n/a: nested machine stalled", never a number (needs KVMINI and
#                        GUEST_DIR: build/kvmini and build/guest by default)
# Prints "ok - NAME" or "not ok - NAME (why)" and "N passed, N failed". Exit 0 when all pass.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/kvmini-watchdog-XXXXXX.log")
trap 'rm -f "$log"' EXIT
passed=0 failed=0

# check NAME WANT_STATUS GREP_ERE [ENV=VALUE | --files DIR]... -- CMD...: run CMD in L2 (with
# DIR as /work), expect the status and a line matching GREP_ERE in run.sh's output.
check() {
	local name=$1 want=$2 ere=$3 status=0
	shift 3
	local envs=() opts=()
	while [ "$1" != -- ]; do
		case "$1" in
		--files) opts+=("$1" "$2"); shift 2 ;;
		*) envs+=("$1"); shift ;;
		esac
	done
	shift
	env "${envs[@]}" "$here/run.sh" "${opts[@]}" -- "$@" >"$log" 2>&1 || status=$?
	if [ "$status" != "$want" ]; then
		echo "not ok - $name (run.sh exit status $status, expected $want)"
	elif ! grep -Eq "$ere" "$log"; then
		echo "not ok - $name (no line matching: $ere)"
	else
		echo "ok - $name"
		passed=$((passed + 1))
		return
	fi
	failed=$((failed + 1))
	tail -n 12 "$log" | sed 's/^/#   /'
}

check quiet-command-lives 0 '^nested: command exit status 0' NESTED_STALL=15 -- sleep 25
# Killing the heartbeat (heartbeat.c) silences L2, as a wedged L2 would.
check silent-l2-stalls 125 'nested machine stalled .*no console output for NESTED_STALL=8 s' \
	NESTED_STALL=8 -- sh -c 'killall nested-heartbeat; exec sleep 60'
grep -q '^nested: stall: RIP=' "$log" || {
	echo "not ok - stall-dump (no CPU registers in the stall dump)"
	failed=$((failed + 1))
}
[ "$(grep -c '^nested: stall: dumping local APIC state for CPU' "$log")" = 2 ] &&
	grep -q '^nested: stall: ioapic0' "$log" && grep -q 'NMI backtrace for cpu' "$log" || {
	echo "not ok - stall-dump-apic-sysrq (no APIC of each CPU, no IOAPIC or no SysRq backtrace)"
	failed=$((failed + 1))
}
# A console whose transmitter waits for a lost interrupt: the heartbeat's kick makes it send
# again (without it, L2 goes silent and stalls, the form seen in CI on 2026-12-02).
poke_dir=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-watchdog-poke-XXXXXX")
if "${CC:-cc}" -O2 -Wall -Wextra -static -o "$poke_dir/uart-ier-poke" "$here/uart-ier-poke.c"; then
	# The pokes race the console: now and then none lands while the driver waits for THRE
	# (CI, 2026-12-03), and the case shows nothing. Such a run is tried again, 3 runs in all;
	# the verdicts below are those of the last run.
	attempt=1
	while :; do
		verdict=$(check stuck-console-kicked 0 '^LINE 2999 x+$' NESTED_STALL=30 --files "$poke_dir" -- sh -c \
			'(i=0; while [ $i -lt 3000 ]; do echo "LINE $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done) & ./uart-ier-poke; wait')
		# The lines take under 2 s unless the console waited for a kick (one every 10 s).
		took=$(sed -n 's/.*, command \([0-9]*\)\.[0-9] s,.*/\1/p' "$log")
		{ [ -n "$took" ] && [ "$took" -ge 5 ]; } || [ "$attempt" -ge 3 ] && break
		echo "# stuck-console-kicked: no poke landed (the command took ${took:-?} s); run $((attempt + 1)) of 3"
		attempt=$((attempt + 1))
	done
	echo "$verdict"
	case "$verdict" in
	"ok - "*) passed=$((passed + 1)) ;;
	*) failed=$((failed + 1)) ;;
	esac
	if [ -z "$took" ] || [ "$took" -lt 5 ]; then
		echo "not ok - stuck-console-was-stuck (the command took ${took:-?} s: the poke did not stop the console)"
		failed=$((failed + 1))
	fi
else
	echo "not ok - stuck-console-kicked (cannot build uart-ier-poke.c)"
	failed=$((failed + 1))
fi
rm -rf "$poke_dir"
check soft-lockup-stalls 125 'stalled .*an L2 CPU stuck for 61 s \(soft lockup' -- sh -c \
	'echo "[ 70.1] watchdog: BUG: soft lockup - CPU#1 stuck for 61s! [qemu-system-x86:193]"; sleep 60'
# The kernel's report of a (stand-in) oops, written at level 2 so the console shows it; the
# command then passes and L2 ends well inside the 10 s that run.sh waits for the report.
check kernel-oops-stops 125 "^nested: L2's kernel oopsed, its results from then on do not count \\(\\[ *[0-9.]+\\] BUG: a stand-in" -- sh -c \
	'echo "#   [ 1.5] BUG: quoted by a test"; echo "ok - before-the-oops"
	 echo "<2>BUG: a stand-in for an oops" >/dev/kmsg; sleep 1; echo "ok - after-the-oops"'
if ! grep -q '^ok - before-the-oops$' "$log" || grep -q '^ok - after-the-oops' "$log" ||
	! grep -q '^nested: after the oops: ok - after-the-oops$' "$log"; then
	echo "not ok - oops-lines (a line before the oops must count, one after it must not)"
	failed=$((failed + 1))
fi
# rdinit= makes L2's first program a silent sleep: L2 never reaches the begin marker.
check boot-wedge-retried 125 'starting it again \(attempt 3 of 3\)' NESTED_BOOT_STALL=5 \
	"NESTED_APPEND=rdinit=/bin/sleep -- 100" -- true
[ "$(grep -c 'starting it again' "$log")" = 2 ] || {
	echo "not ok - boot-wedge-tries (expected 2 restarts, saw $(grep -c 'starting it again' "$log"))"
	failed=$((failed + 1))
}
check keeper-holds-vm 0 '^KEEPER kvm-vm kvm-vcpu:0$' -- sh -c \
	'echo "KEEPER $(ls -l /proc/$(pidof kvm-keeper)/fd | sed -n "s/.*anon_inode:\(kvm-[a-z:0-9]*\).*/\1/p" | tr "\n" " " | sed "s/ $//")"'

# A stall bound of 1 s after the begin marker: the boot benchmark's quiet stretches (a VM
# idling in the memory phase, a density run) make L2 "stall" part-way through.
top=$(cd "$here/../.." && pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-watchdog-bench-XXXXXX")
NESTED_STALL=1 BENCH_BOOT_RUNS=2 BENCH_DENSITY_RUNS=1 BENCH_DENSITY_VMS=2 BENCH_BOOT_MODE=nested \
	BENCH_KVMINI=${KVMINI:-$top/build/kvmini} BENCH_GUEST_DIR=${GUEST_DIR:-$top/build/guest} \
	"$top/bench/boot.sh" "$out" >"$log" 2>&1
status=$?
cut_rows=$(jq '[.rows[] | select(.kvmini_error == "n/a: nested machine stalled")] | length' \
	"$out/boot.json" 2>/dev/null || echo 0)
# A row that a stall cut short has no figure: fewer runs than asked and a number is the bug.
bad=$(jq --argjson runs 2 --argjson druns 1 '[.rows[] | select(.kvmini != null)
	| select(((.kvmini_runs | length) + ([.failed_runs[] | select(.vmm == "kvmini")] | length))
		< (if (.metric | test("^(vms_per_s|peak|wall)$")) then $druns else $runs end))] | length' \
	"$out/boot.json" 2>/dev/null || echo 1)
if [ "$status" = 0 ] && grep -q 'the nested machine stalled' "$log" && [ "$cut_rows" -gt 0 ] &&
	[ "$bad" = 0 ]; then
	echo "ok - bench-stall-is-na ($cut_rows rows say n/a: nested machine stalled)"
	passed=$((passed + 1))
else
	echo "not ok - bench-stall-is-na (exit $status, $cut_rows n/a rows, $bad rows with a number from too few runs)"
	failed=$((failed + 1))
	tail -n 12 "$log" | sed 's/^/#   /'
fi
rm -rf "$out"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
