# tests/scripts/report.sh - the results of tests/scripts/*-test.sh, sourced (bash).
# shellcheck shell=bash disable=SC2154 # $tmp is the sourcing test's
#
# result NAME WHY: "ok - NAME" when WHY is empty, else "not ok - NAME (WHY)" followed by the
# test's output, $tmp/out, if any; summary: "N passed, N failed" and the exit status.
passed=0 failed=0
result() {
	if [ -z "$2" ]; then
		echo "ok - $1"
		passed=$((passed + 1))
	else
		echo "not ok - $1 ($2)"
		failed=$((failed + 1))
		[ ! -s "$tmp/out" ] || sed 's/^/#   /' "$tmp/out"
	fi
}
summary() {
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
}
