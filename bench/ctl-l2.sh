#!/bin/sh
# bench/ctl-l2.sh: the measuring half of bench/ctl.sh (POSIX sh: runs inside the nested
# machine, or directly on a host with hardware virtualization).
#
#   sh ctl-l2.sh DIR N P
#
# DIR holds kvmini, bzImage, initramfs.cpio.gz and tools/ctl_bench. Boots the same guest
# (1 vCPU, 128 MiB, `sleep 600`) with kvmini (detached, its control socket) and with QEMU's
# microvm (-qmp on a unix socket), waits for KVMINI_GUEST_READY, then runs ctl_bench: N state
# queries, P pause/resume pairs. Then the VMM's memory overhead while its control server runs
# (resident memory minus the resident part of the guest RAM mapping, /proc/PID/smaps).
# Prints CTLBENCH lines (ctl_bench's, and "CTLBENCH VMM overhead_kib KIB") or
# "CTLBENCH VMM n/a: WHY"; progress lines start with "ctlbench:".
dir=$1
n=$2
p=$3
QEMU=${QEMU:-qemu-system-x86_64}
cmdline="console=ttyS0 reboot=k,f panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-ctlbench.XXXXXX") || exit 1
qpid=""
cleanup() {
	[ -z "$qpid" ] || kill -KILL "$qpid" 2>/dev/null
	KVMINI_RUNTIME_DIR=$tmp/rt "$dir/kvmini" destroy bench >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

# wait_ready FILE: up to 300 s for the guest's READY line in FILE.
wait_ready() {
	i=0
	while [ $i -lt 3000 ]; do
		grep -q KVMINI_GUEST_READY "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# overhead PID: resident KiB minus the resident KiB of the largest mapping (the guest RAM).
overhead() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); cur = 0 }
		/^Size:/ { size = $2 } /^Rss:/ { rss += $2; if (size > big) { big = size; brss = $2 } }
		END { print rss - brss }' "/proc/$1/smaps"
}

# kvmini: detached, its control socket in the runtime folder.
echo "ctlbench: kvmini: booting" >&2
if KVMINI_RUNTIME_DIR=$tmp/rt "$dir/kvmini" run --detach --name bench --kernel "$dir/bzImage" \
	--initrd "$dir/initramfs.cpio.gz" --mem 128M --cmdline "-- sleep 600" >"$tmp/k.out" 2>&1 &&
	wait_ready "$tmp/rt/bench/console.log"; then
	sleep 1
	"$dir/tools/ctl_bench" kvmini "$tmp/rt/bench/api.sock" "$n" "$p" 2>"$tmp/k.err" ||
		echo "CTLBENCH kvmini n/a: ctl_bench failed: $(cat "$tmp/k.err")"
	echo "CTLBENCH kvmini overhead_kib $(overhead "$(cat "$tmp/rt/bench/pid")")"
else
	echo "CTLBENCH kvmini n/a: the guest did not boot: $(tail -n 2 "$tmp/k.out" | tr '\n' ' ')"
fi
KVMINI_RUNTIME_DIR=$tmp/rt "$dir/kvmini" destroy bench >/dev/null 2>&1

# QEMU: microvm with QMP on a unix socket.
echo "ctlbench: qemu: booting" >&2
"$QEMU" -M microvm,x-option-roms=off,rtc=off,acpi=off -nodefaults -no-user-config -enable-kvm \
	-cpu host -m 128M -smp 1 -display none -serial "file:$tmp/q.log" -no-reboot \
	-L "${QEMU_DATADIR:-/usr/share/qemu}" -kernel "$dir/bzImage" -initrd "$dir/initramfs.cpio.gz" \
	-append "$cmdline reboot=t -- sleep 600" -qmp "unix:$tmp/qmp.sock,server=on,wait=off" \
	>"$tmp/q.out" 2>&1 &
qpid=$!
if wait_ready "$tmp/q.log"; then
	sleep 1
	"$dir/tools/ctl_bench" qmp "$tmp/qmp.sock" "$n" "$p" 2>"$tmp/q.err" ||
		echo "CTLBENCH qemu n/a: ctl_bench failed: $(cat "$tmp/q.err")"
	echo "CTLBENCH qemu overhead_kib $(overhead "$qpid")"
else
	echo "CTLBENCH qemu n/a: the guest did not boot: $(tail -n 2 "$tmp/q.out" | tr '\n' ' ')"
fi
kill -KILL "$qpid" 2>/dev/null
wait "$qpid" 2>/dev/null
qpid=""
echo "ctlbench: done" >&2
