#!/bin/sh
# tests/linux/qemu-shim.sh - a stand-in for kvmini built on QEMU's microvm.
#
#   tests/linux/qemu-shim.sh run --kernel PATH [--initrd PATH] [--cmdline STR]
#       [--no-default-cmdline] [--mem SIZE] [--cpus N] [--name NAME] [--log-level L]
#
# It speaks kvmini's command-line contract (options, exit codes, one-line
# "kvmini: error:" messages) closely enough to run tests/linux/run-tests.sh
# against QEMU. Uses: validating the test suite and the nested machine before
# kvmini can boot Linux, and a QEMU baseline for comparisons. It is not kvmini:
# its input checks are approximations.
#
# Needs qemu-system-x86_64 on PATH (or $QEMU) and its microvm firmware
# (bios-microvm.bin) in $QEMU_DATADIR, default /usr/share/qemu.
#
# Exit codes as kvmini: 0 guest rebooted, 1 host failure, 2 usage, 3 bad input,
# 4 host cannot provide it, 128+N stopped by signal N. QEMU cannot tell a
# reboot from a triple fault here (reboot=t, -no-reboot): both give 0.

err() { # CODE MESSAGE
	echo "kvmini: error: $2" >&2
	exit "$1"
}

# size_mib SIZE: print SIZE (bytes, or with a K/M/G suffix) in MiB; fail if invalid.
size_mib() {
	case "$1" in
	'' | *[!0-9KMGkmg]* | [KMGkmg]*) return 1 ;;
	*[Gg]) echo $((${1%?} * 1024)) ;;
	*[Mm]) echo "${1%?}" ;;
	*[Kk]) echo $((${1%?} / 1024)) ;;
	*) echo $(($1 / 1048576)) ;;
	esac
}

# byte_at FILE OFFSET COUNT: little-endian unsigned integer at OFFSET.
le_at() {
	od -An -tu1 -j "$2" -N "$3" "$1" 2>/dev/null |
		awk '{ for (i = 1; i <= NF; i++) v[n++] = $i } END { s = 0; for (i = n - 1; i >= 0; i--) s = s * 256 + v[i]; print s }'
}

[ "${1:-}" = run ] || err 2 "usage: $0 run --kernel PATH [options]"
shift
kernel="" initrd="" cmdline="" default_cmdline=1 mem=256 cpus=1
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel | --initrd | --cmdline | --mem | --cpus | --name | --log-level)
		[ $# -ge 2 ] || err 2 "option $1 needs a value"
		case "$1" in
		--kernel) kernel=$2 ;;
		--initrd) initrd=$2 ;;
		--cmdline) cmdline=$2 ;;
		--mem)
			mem=$(size_mib "$2") || err 2 "--mem $2: invalid memory size"
			[ "$mem" -gt 0 ] || err 2 "--mem $2: memory size must be at least 1M"
			;;
		--cpus)
			case "$2" in '' | *[!0-9]*) err 2 "--cpus $2: not a number of vCPUs" ;; esac
			if [ "$2" -lt 1 ] || [ "$2" -gt 64 ]; then err 2 "--cpus $2: must be between 1 and 64"; fi
			cpus=$2
			;;
		esac
		shift 2
		;;
	--no-default-cmdline) default_cmdline=0; shift ;;
	*) err 2 "unknown option: $1" ;;
	esac
done
[ -n "$kernel" ] || err 2 "--kernel is required"

# Input files.
[ -f "$kernel" ] || err 3 "cannot open kernel $kernel: No such file"
magic=$(od -An -c -N4 "$kernel" | tr -d ' ')
if [ "$magic" = '177ELF' ]; then
	: # vmlinux: QEMU boots it through its PVH entry point
elif [ "$(od -An -c -j 514 -N4 "$kernel" | tr -d ' ')" = HdrS ]; then
	setup_sects=$(le_at "$kernel" 497 1)
	[ "$setup_sects" -gt 0 ] || setup_sects=4
	syssize=$(le_at "$kernel" 500 4)
	want=$(((setup_sects + 1) * 512 + syssize * 16))
	have=$(wc -c <"$kernel")
	[ "$have" -ge "$want" ] || err 3 "kernel $kernel: truncated bzImage ($have of $want bytes)"
else
	err 3 "kernel $kernel: not a bzImage or ELF vmlinux"
fi
if [ -n "$initrd" ]; then
	[ -f "$initrd" ] || err 3 "cannot open initrd $initrd: No such file"
	isize=$(($(stat -c %s "$initrd") / 1048576))
	[ $((isize + 64)) -le "$mem" ] || err 3 "initrd $initrd (${isize} MiB) does not fit in ${mem} MiB of guest memory"
fi

# Host.
[ -c /dev/kvm ] || err 4 "/dev/kvm: no such device"
host_mib=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
[ "$mem" -le "$host_mib" ] || err 4 "--mem ${mem}M: more memory than the host has (${host_mib} MiB)"

[ "$default_cmdline" = 0 ] || cmdline="console=ttyS0 reboot=t panic=-1 $cmdline"

# Run QEMU in the background so that SIGTERM/SIGINT can stop it cleanly.
qpid=""
# shellcheck disable=SC2317 # called from the traps below
stop() { # SIGNO
	[ -z "$qpid" ] || kill -TERM "$qpid" 2>/dev/null
	[ -z "$qpid" ] || wait "$qpid"
	exit $((128 + $1))
}
trap 'stop 15' TERM
trap 'stop 2' INT
set -- -M microvm -enable-kvm -cpu host -m "$mem" -smp "$cpus" \
	-nodefaults -no-user-config -display none -serial stdio -no-reboot \
	-L "${QEMU_DATADIR:-/usr/share/qemu}" -kernel "$kernel" -append "$cmdline"
[ -z "$initrd" ] || set -- "$@" -initrd "$initrd"
"${QEMU:-qemu-system-x86_64}" "$@" &
qpid=$!
wait "$qpid"
status=$?
qpid=""
[ "$status" = 0 ] || err 1 "qemu exited with status $status"
exit 0
