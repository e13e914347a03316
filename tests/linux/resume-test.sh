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
# 125) and with a bad value (2). Prints "ok - NAME" or "not ok - NAME (why)" and
# "N passed, N failed"; exit 0 when all pass.
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
	echo "ok - boot-bzimage-1cpu"
	echo "not ok - boot-bzimage-2cpus (made up)"
	exit 125
	;;
2)
	grep -Fxq "ok - boot-bzimage-1cpu" "$files/earlier.txt" &&
		grep -q "^not ok - boot-bzimage-2cpus (made up)" "$files/earlier.txt" ||
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
want="ok - boot-bzimage-1cpu (passed in an earlier nested machine)
not ok - boot-bzimage-2cpus (failed in an earlier nested machine, see above)
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

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
