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
# machine hung or crashed, twice: a first hang or crash, which is the nested
# machine's fault and not a test's, is reported and the suite runs once more).
#
# Environment: KVMINI_LINUX_MODE=auto|direct|nested (default auto); the
# KVMINI_TEST_* variables of run-tests.sh (passed into L2 as well); the
# NESTED_* variables of tests/nested/run.sh (NESTED_TIMEOUT defaults to 3000 s here).
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
cp "$here/run-tests.sh" "$here/disk-tests.sh" "$here/net-tests.sh" "$here/api-tests.sh" "$here/ctl-tests.sh" "$here/sandbox-tests.sh" "$here/../../scripts/kvmini-nat" "$work/"
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
	KVMINI_TEST_SB_PROBE; do
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
run_in_l2() {
	"$nested/run.sh" --files "$work" -- sh -c "env KVMINI_TEST_TOOLS=/work/tools$env_args ./run-tests.sh ./kvmini ./kernels"
}
status=0
run_in_l2 || status=$?
if [ "$status" = 125 ]; then
	# The nested machine, not a test, failed (run-tests.sh never exits 125): QEMU's
	# TCG-emulated AMD SVM now and then wedges L2. Once more, from the start; a test that
	# failed is never retried, and a second hang fails the suite.
	echo "linux tests: the nested machine hung or crashed before the tests finished (exit 125, see above); running all Linux tests once more"
	status=0
	run_in_l2 || status=$?
	[ "$status" != 125 ] || echo "linux tests: the nested machine hung or crashed again; giving up"
fi
exit "$status"
