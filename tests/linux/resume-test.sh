#!/bin/bash
# tests/linux/resume-test.sh - check.sh going on in a fresh nested machine after one dies.
#
#   tests/linux/resume-test.sh KVMINI KERNEL_DIR
#
# Runs check.sh (KVMINI_LINUX_MODE=nested) from a copy of tests/ whose nested/run.sh is a
# stand-in: machine 1 reports one test passed and one failed, then dies (exit 125); machine 2
# checks that it got both results in KVMINI_TEST_EARLIER, passes a third test and dies;
# machine 3 runs the real run-tests.sh, which must report all three from the earlier machines
# without booting anything. Then the same with KVMINI_TEST_NESTED_TRIES=2 (check.sh gives up,
# 125) and with a bad value (2). Then the rerun of a test whose guest triple-faulted, with a
# stand-in that prints a canned suite output per machine (N: out.N, exit status status.N) and
# keeps what check.sh gave it (the command, earlier.txt):
#   triple-rerun-passes   run once more; passing there, the suite passes; the other results
#                         are kept, not run again
#   triple-rerun-once     a second triple fault fails the test: no third machine
#   other-failure-stays   a failure without a triple fault is not run again
#   passing-quote-ignored a test that passed and quotes a triple fault is not run again
#   resume-then-rerun     a machine that hung (125) and a triple fault after it: three machines
#   rerun-keeps-failure   the rerun passes but another test failed: the suite fails
#   death-rerun-passes    a test that failed as the last result before its machine died (125)
#                         runs once more in the next machine; passing there, the suite passes
#   death-rerun-once      failing so again, it is not run a third time
#   death-only-last-reruns a failure with a result after it before the death is kept
# Prints "ok - NAME" or "not ok - NAME (why)" and "N passed, N failed"; exit 0 when all pass.
set -uo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 KVMINI KERNEL_DIR" >&2
	exit 2
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-resume-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp -r "$top/tests" "$top/scripts" "$tmp/"
cat >"$tmp/tests/nested/run.sh" <<'STUB'
#!/bin/bash
# Stand-in for run.sh: --files DIR -- CMD...; which machine this is counts in $tmp/machines.
files=$2
shift 3
count="$(dirname "$0")/../../machines"
n=$(($(cat "$count" 2>/dev/null || echo 0) + 1))
echo "$n" >"$count"
case $n in
1)
	echo "not ok - boot-bzimage-1cpu (made up)"
	echo "ok - boot-bzimage-2cpus"
	exit 125
	;;
2)
	grep -Fxq "ok - boot-bzimage-2cpus" "$files/earlier.txt" &&
		grep -q "^not ok - boot-bzimage-1cpu (made up)" "$files/earlier.txt" ||
		echo "STUB: machine 2 did not get machine 1's results"
	echo "ok - boot-vmlinux-pvh-1cpu"
	exit 125
	;;
esac
cd "$files" && exec "$@"
STUB
chmod +x "$tmp/tests/nested/run.sh"
passed=0 failed=0
result() { # NAME OK(0/1) WHY
	if [ "$2" = 0 ]; then
		echo "ok - $1"
		passed=$((passed + 1))
	else
		echo "not ok - $1 ($3)"
		failed=$((failed + 1))
		sed 's/^/#   /' "$tmp/out"
	fi
}
filter='^boot-(bzimage|vmlinux-pvh-1cpu)'

KVMINI_LINUX_MODE=nested KVMINI_TEST_FILTER=$filter "$tmp/tests/linux/check.sh" "$1" "$2" >"$tmp/out" 2>&1
status=$?
want="not ok - boot-bzimage-1cpu (failed in an earlier nested machine, see above)
ok - boot-bzimage-2cpus (passed in an earlier nested machine)
ok - boot-vmlinux-pvh-1cpu (passed in an earlier nested machine)
2 passed, 1 failed"
got=$(grep -E '^(ok|not ok) - .*earlier nested machine|^[0-9]+ passed' "$tmp/out")
ok=1
[ "$status" = 1 ] && [ "$got" = "$want" ] && [ "$(cat "$tmp/machines")" = 3 ] &&
	grep -q 'machine 3 of 3' "$tmp/out" && ! grep -q '^STUB:' "$tmp/out" && ok=0
result resume-after-two-deaths $ok "exit $status, $(cat "$tmp/machines") machines, expected 1 and 3 and the earlier results"

rm -f "$tmp/machines"
KVMINI_LINUX_MODE=nested KVMINI_TEST_NESTED_TRIES=2 KVMINI_TEST_FILTER=$filter \
	"$tmp/tests/linux/check.sh" "$1" "$2" >"$tmp/out" 2>&1
status=$?
ok=1
[ "$status" = 125 ] && grep -q 'hung or crashed 2 times; giving up' "$tmp/out" && ok=0
result gives-up-after-tries $ok "exit $status, expected 125 and 'giving up'"

rm -f "$tmp/machines"
KVMINI_LINUX_MODE=nested KVMINI_TEST_NESTED_TRIES=x "$tmp/tests/linux/check.sh" "$1" "$2" >"$tmp/out" 2>&1
status=$?
ok=1
[ "$status" = 2 ] && grep -q 'KVMINI_TEST_NESTED_TRIES must be a positive whole number' "$tmp/out" &&
	[ ! -e "$tmp/machines" ] && ok=0
result bad-tries-value $ok "exit $status, expected 2 and the message, no machine started"

# --- the triple-fault rerun, with canned machines ---
cat >"$tmp/tests/nested/run.sh" <<'STUB'
#!/bin/bash
# Stand-in for run.sh: --files DIR -- CMD...; machine N prints $FAKE/out.N, exits status.N.
files=$2
shift 3
n=$(($(cat "$FAKE/count" 2>/dev/null || echo 0) + 1))
echo "$n" >"$FAKE/count"
printf '%s\n' "$*" >"$FAKE/cmd.$n"
cp "$files/earlier.txt" "$FAKE/earlier.$n" 2>/dev/null || : >"$FAKE/earlier.$n"
cat "$FAKE/out.$n" 2>/dev/null
exit "$(cat "$FAKE/status.$n" 2>/dev/null || echo 99)"
STUB
TF='#   kvmini: error: guest triple-faulted (shutdown exit) on vcpu0 at rip 0xfff0'

canned() { # NAME: a fresh stand-in state for case NAME
	name=$1
	export FAKE=$tmp/canned-$1
	mkdir -p "$FAKE"
}
machine() { # N STATUS: stdin is machine N's output
	cat >"$FAKE/out.$1"
	echo "$2" >"$FAKE/status.$1"
}
# expect STATUS MACHINES [ERE]: run check.sh; "" when its status, the machines it started and
# (with ERE) a line of its output are as expected, else why not.
expect() {
	local status=0 n
	KVMINI_LINUX_MODE=nested "$tmp/tests/linux/check.sh" "$kvmini" "$kdir" >"$tmp/out" 2>&1 || status=$?
	n=$(cat "$FAKE/count" 2>/dev/null || echo 0)
	if [ "$status" != "$1" ]; then
		echo "exit $status, expected $1"
	elif [ "$n" != "$2" ]; then
		echo "$n nested machines, expected $2"
	elif [ $# -ge 3 ] && ! grep -Eq -- "$3" "$tmp/out"; then
		echo "no line matching: $3"
	fi
}
# given N LINE: machine N's earlier.txt has LINE; given_not N PREFIX: no line starts so.
given() { grep -Fxq -- "$2" "$FAKE/earlier.$1"; }
given_not() { awk -v p="$2" 'index($0, p) == 1 { f = 1 } END { exit f }' "$FAKE/earlier.$1"; }
kvmini=$1 kdir=$2
# rerun_b_kept_a N: unless $why says something already, machine N was given a's pass and not b's
# failure (so b runs again there), else $why says what it was given.
rerun_b_kept_a() {
	[ -z "$why" ] || return 0
	given "$1" "ok - a" && given_not "$1" "not ok - b (" ||
		why="machine $1's earlier results: $(paste -sd '|' "$FAKE/earlier.$1")"
}
finish() { # WHY ("" passed)
	if [ -z "$1" ]; then result "$name" 0 ""; else result "$name" 1 "$1"; fi
}

canned triple-rerun-passes
machine 1 1 <<EOF
ok - a
not ok - b (status 5, expected 0)
# --- last 30 lines of b.err ---
$TF
# --- end ---
# c: kvmini exited 0 after 1 s
ok - c
2 passed, 1 failed
EOF
machine 2 0 <<EOF
ok - a (passed in an earlier nested machine)
ok - b
ok - c (passed in an earlier nested machine)
3 passed, 0 failed
EOF
why=$(expect 0 2 '^linux tests: a guest triple-faulted in b \(the nested machine')
if [ -z "$why" ] && ! grep -q 'KVMINI_TEST_EARLIER=./earlier.txt' "$FAKE/cmd.2"; then
	why="machine 2 was not given the earlier results"
elif [ -z "$why" ] && ! { given 2 "ok - a" && given 2 "ok - c" && given_not 2 "not ok - b ("; }; then
	why="machine 2's earlier results: $(paste -sd '|' "$FAKE/earlier.2")"
fi
finish "$why"

canned triple-rerun-once
machine 1 1 <<EOF
not ok - b (status 5, expected 0)
$TF
# --- end ---
0 passed, 1 failed
EOF
cp "$FAKE/out.1" "$FAKE/out.2"
echo 1 >"$FAKE/status.2"
echo "ok - b" | machine 3 0
finish "$(expect 1 2)"

canned other-failure-stays
machine 1 1 <<EOF
not ok - b (status 1, expected 0)
#   kvmini: error: cannot open the tap
# --- end ---
ok - c
1 passed, 1 failed
EOF
machine 2 0 </dev/null
finish "$(expect 1 1)"

canned passing-quote-ignored
machine 1 1 <<EOF
not ok - b (status 1, expected 0)
# --- end ---
# hostile-triple: kvmini exited 5
#   kvmini: error: guest triple-faulted (shutdown exit) on vcpu0 at rip 0x1000
ok - hostile-triple
1 passed, 1 failed
EOF
machine 2 0 </dev/null
finish "$(expect 1 1)"

canned resume-then-rerun
machine 1 125 <<EOF
ok - a
nested: nested machine stalled
EOF
machine 2 1 <<EOF
ok - a (passed in an earlier nested machine)
not ok - b (status 5, expected 0)
$TF
# --- end ---
1 passed, 1 failed
EOF
machine 3 0 <<EOF
ok - a (passed in an earlier nested machine)
ok - b
2 passed, 0 failed
EOF
why=$(expect 0 3 'machine 2 of 3')
rerun_b_kept_a 3
finish "$why"

canned rerun-keeps-failure
machine 1 1 <<EOF
not ok - b (status 5, expected 0)
$TF
# --- end ---
not ok - c (status 1, expected 0)
# --- end ---
0 passed, 2 failed
EOF
machine 2 1 <<EOF
ok - b
not ok - c (failed in an earlier nested machine, see above)
1 passed, 1 failed
EOF
why=$(expect 1 2)
if [ -z "$why" ] && ! given 2 "not ok - c (status 1, expected 0)"; then
	why="machine 2 was not told that c failed"
fi
finish "$why"

canned death-rerun-passes
machine 1 125 <<EOF
ok - a
not ok - b (round 20: kvmini still ran 60 s after SIGKILL)
nested: nested machine stalled
EOF
machine 2 0 <<EOF
ok - a (passed in an earlier nested machine)
ok - b
ok - c
3 passed, 0 failed
EOF
why=$(expect 0 2 '^linux tests: b failed just before the nested machine died; it runs once more')
rerun_b_kept_a 2
finish "$why"

canned death-rerun-once
echo "not ok - b (made up)" | machine 1 125
echo "not ok - b (made up)" | machine 2 125
echo "0 passed, 1 failed" | machine 3 1
why=$(expect 1 3)
if [ -z "$why" ] && ! given_not 2 "not ok - b ("; then
	why="machine 2 did not run b again: $(paste -sd '|' "$FAKE/earlier.2")"
elif [ -z "$why" ] && ! given 3 "not ok - b (made up)"; then
	why="machine 3 ran b a third time: $(paste -sd '|' "$FAKE/earlier.3")"
fi
finish "$why"

canned death-only-last-reruns
machine 1 125 <<EOF
not ok - b (made up)
ok - c
EOF
echo "0 passed, 1 failed" | machine 2 1
why=$(expect 1 2)
if [ -z "$why" ] && ! given 2 "not ok - b (made up)"; then
	why="b ran again though c passed after it: $(paste -sd '|' "$FAKE/earlier.2")"
fi
finish "$why"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
