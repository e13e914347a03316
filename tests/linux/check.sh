#!/bin/bash
# tests/linux/check.sh - run the Linux system tests where they can run.
#
#   tests/linux/check.sh KVMINI KERNEL_DIR
#
# On a host with hardware virtualization (tests/nested/hw-virt.sh), runs
# tests/linux/run-tests.sh directly. Otherwise (e.g. our PVM machines) runs it
# inside the nested machine: copies KVMINI, run-tests.sh and KERNEL_DIR's
# bzImage, vmlinux and initramfs.cpio.gz into L2 with tests/nested/run.sh.
# Says which on stdout. Exit status: that of run-tests.sh (125: the nested
# machine hung or crashed KVMINI_TEST_NESTED_TRIES times; a hang or crash, which is the
# nested machine's fault and not a test's, is reported and the suite goes on in a fresh
# one from the test it died in: below). In the nested machine a test that failed because
# its guest triple-faulted runs once more, in a fresh machine (below).
#
# Environment: KVMINI_LINUX_MODE=auto|direct|nested (default auto);
# KVMINI_TEST_NESTED_TRIES (nested machines in all, default 3; the triple-fault rerun comes on
# top); the KVMINI_TEST_* variables of run-tests.sh (passed into L2 as well); the NESTED_*
# variables of tests/nested/run.sh (NESTED_TIMEOUT defaults to 3000 s here).
set -euo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 KVMINI KERNEL_DIR" >&2
	exit 2
fi
kvmini="$1"
kdir="$2"
here="$(cd "$(dirname "$0")" && pwd)"
nested="$(cd "$here/../nested" && pwd)"

mode="${KVMINI_LINUX_MODE:-auto}"
if [ "$mode" = auto ]; then
	if reason="$("$nested/hw-virt.sh" -v)"; then mode=direct; else mode=nested; fi
	echo "linux tests: hardware virtualization? $reason"
fi

case "$mode" in
direct)
	echo "linux tests: running directly on this host's /dev/kvm"
	exec "$here/run-tests.sh" "$kvmini" "$kdir"
	;;
nested)
	echo "linux tests: running inside the nested machine (tests/nested/run.sh)"
	;;
*)
	echo "$0: KVMINI_LINUX_MODE must be auto, direct or nested" >&2
	exit 2
	;;
esac

work="$(mktemp -d "${TMPDIR:-/tmp}/kvmini-linux-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kernels"
cp "$kvmini" "$work/kvmini"
cp "$here/run-tests.sh" "$here/disk-tests.sh" "$here/net-tests.sh" "$here/api-tests.sh" "$here/ctl-tests.sh" "$here/sandbox-tests.sh" "$here/seccomp-tests.sh" "$here/crash-tests.sh" "$here/limit-tests.sh" "$here/jail-tests.sh" "$here/load-tests.sh" "$here/../../scripts/kvmini-nat" "$work/"
# Host tools the disk tests use; L2 is busybox only. Their libraries follow (run.sh).
mkdir -p "$work/tools"
for t in mke2fs debugfs e2fsck setpriv ip nft curl mkfs.erofs; do
	p="$(command -v "$t")" || { echo "$0: $t is missing (./setup.sh --deps-only installs it)" >&2; exit 2; }
	cp "$p" "$work/tools/"
done
for f in bzImage vmlinux initramfs.cpio.gz sandbox.cpio.gz; do
	# A missing file is reported by run-tests.sh as failing tests.
	[ ! -f "$kdir/$f" ] || cp "$kdir/$f" "$work/kernels/"
done
# The API test programs (make linuxtest builds them) go to /work, under their L2 paths.
for v in KVMINI_TEST_EXAMPLE KVMINI_TEST_PAUSE KVMINI_TEST_VSOCK_CLIENT KVMINI_TEST_SANDBOX_EXAMPLE \
	KVMINI_TEST_SB_PROBE KVMINI_TEST_PTY_CRASH; do
	[ -n "${!v:-}" ] && [ -f "${!v}" ] || continue
	cp "${!v}" "$work/"
	export "$v=./$(basename "${!v}")"
done
# Pass the suite's settings on to L2, and tell it that it runs there.
export KVMINI_TEST_NESTED=1
env_args=""
for v in $(compgen -e | grep '^KVMINI_TEST_' || true); do
	env_args+=" $v=$(printf %q "${!v}")"
done
# The whole suite runs in one L2 boot and takes about 20 minutes under TCG (the sandbox tests
# stream 1 GiB and boot some 60 guests): more than run.sh's default 900 s. The stall watchdog,
# not this limit, is what catches a wedged L2.
export NESTED_TIMEOUT="${NESTED_TIMEOUT:-3000}"
# The earlier results go into /work in L2 with the rest (run.sh copies $work as it starts).
run_in_l2() {
	"$nested/run.sh" --files "$work" -- sh -c "env KVMINI_TEST_TOOLS=/work/tools$env_args$earlier_arg ./run-tests.sh ./kvmini ./kernels"
}
# A nested machine that hangs, crashes or oopses (exit 125; run-tests.sh never exits 125) is
# QEMU's TCG-emulated AMD SVM failing, not a test: the suite goes on in a fresh one, up to
# KVMINI_TEST_NESTED_TRIES machines in all (default 3). What the earlier ones finished is kept:
# their "ok"/"not ok" lines go to run-tests.sh as KVMINI_TEST_EARLIER, so a test that passed
# or failed is reported from there and never run again; only the test the machine died in, and
# those after it, run in the next one.
#
# A guest that triple-faults is also, in the nested machine, the emulator failing now and then
# (tests/nested/README.md, "Guests that triple-fault"): a test that failed and whose output shows
# kvmini's "guest triple-faulted (shutdown exit)" runs once more in a fresh machine after the
# suite, and its result there is the one that counts; the rerun is said, and a second triple
# fault fails it. So does a test that failed just before its machine died (below). On hardware
# (direct mode above) nothing is run again.
tries="${KVMINI_TEST_NESTED_TRIES:-3}"
[[ $tries =~ ^[1-9][0-9]*$ ]] || { echo "$0: KVMINI_TEST_NESTED_TRIES must be a positive whole number" >&2; exit 2; }
earlier_arg=""
: >"$work/earlier.txt"
: >"$work/tripled.txt"
: >"$work/dying.txt"
try=1
rerun=0
keep_results() { # this machine's results go to earlier.txt, for the next machine
	grep -aE '^(ok|not ok) - ' "$work/try.log" | sed 's/ (passed in an earlier nested machine)$//' >>"$work/earlier.txt" || true
}
forget_failures() { # NAMES_FILE: those tests' "not ok" lines leave earlier.txt, so they run again
	awk 'NR == FNR { drop["not ok - " $0 " ("] = 1; next }
		{ for (p in drop) if (index($0, p) == 1) next; print }' \
		"$1" "$work/earlier.txt" >"$work/earlier.new"
	mv "$work/earlier.new" "$work/earlier.txt"
}
while :; do
	set +e
	run_in_l2 2>&1 | tee "$work/try.log"
	status="${PIPESTATUS[0]}"
	set -e
	# The tests that failed with a triple fault in their output (a failure's block of output
	# ends with "# --- end ---").
	awk '/^(ok|not ok) - / { name = "" } /^not ok - / { name = $4 }
		name != "" && /guest triple-faulted \(shutdown exit\)/ { print name; name = "" }
		/^# --- end ---$/ { name = "" }' "$work/try.log" >>"$work/tripled.txt"
	if [ "$status" = 1 ] && [ "$rerun" = 0 ] && [ -s "$work/tripled.txt" ]; then
		rerun=1
		keep_results
		forget_failures "$work/tripled.txt"
		echo "linux tests: a guest triple-faulted in $(sort -u "$work/tripled.txt" | paste -sd ' ')" \
			"(the nested machine's known failure, tests/nested/README.md); those run once more" \
			"in a fresh machine, the other results are kept"
		earlier_arg=" KVMINI_TEST_EARLIER=./earlier.txt"
		continue
	fi
	[ "$status" = 125 ] || break
	keep_results
	# A test that failed as the last thing this machine reported was, as like as not, failed by
	# the machine's dying (a soft lockup in L2 starves the test before the stall watchdog stops
	# the machine): it runs once more in the next one, whose result counts; once only.
	last=$(grep -aE '^(ok|not ok) - ' "$work/try.log" | tail -n 1 | sed -n 's/^not ok - \([^ ]*\).*/\1/p')
	if [ -n "$last" ] && ! grep -Fxq -- "$last" "$work/dying.txt"; then
		echo "$last" >>"$work/dying.txt"
		forget_failures <(printf '%s\n' "$last")
		echo "linux tests: $last failed just before the nested machine died; it runs once more in the next one"
	fi
	if [ "$try" -ge "$tries" ]; then
		echo "linux tests: the nested machine hung or crashed $try times; giving up"
		break
	fi
	try=$((try + 1))
	echo "linux tests: the nested machine hung or crashed before the tests finished (exit 125, see above);" \
		"$(grep -c '' "$work/earlier.txt") tests done so far are kept, the rest run in a fresh one (machine $try of $tries)"
	earlier_arg=" KVMINI_TEST_EARLIER=./earlier.txt"
done
exit "$status"
