#!/bin/sh
# bench/boot-l2.sh: the measuring half of bench/boot.sh (POSIX sh: it runs in the nested
# machine's busybox, or directly on a host with hardware virtualization).
#
#   boot-l2.sh DIR RUNS
#
# DIR holds kvmini, bzImage, initramfs.cpio.gz and tools/boottime (bench/boottime.c). QEMU is
# qemu-system-x86_64 on PATH (or $QEMU) with its microvm firmware in $QEMU_DATADIR.
#
# For each run and configuration (1 vCPU/128 MiB, 2 vCPUs/512 MiB) both VMMs boot the guest
# with the same command line (kvmini's default + "-- true"; QEMU: + reboot=t, see below),
# the VMM order alternating.
# boottime times process start -> first console line with KVMINI_GUEST_READY -> exit.
# One line per run on stdout:
#   BOOTBENCH_RESULT VMM CONFIG RUN READY_MS EXIT_MS STARTUP_WALL_MS STARTUP_CPU_MS
#   BOOTBENCH_RESULT VMM CONFIG RUN n/a: REASON
# (STARTUP_*: kvmini's boot-timer line; "-" for QEMU, which has no such report.)

dir=${1:?usage: boot-l2.sh DIR RUNS}
runs=${2:?}
QEMU=${QEMU:-qemu-system-x86_64}
limit=${BENCH_BOOT_LIMIT:-120}
# kvmini's default command line (include/kvmini/vm.h), given to QEMU too. Plus, for QEMU
# only, reboot=t (the later reboot= wins): microvm has no i8042, so reboot=k falls back to a
# jump into the firmware (a soft reboot QEMU never sees) and the guest boots again forever;
# a triple fault is a reset that -no-reboot turns into QEMU's exit.
cmdline="console=ttyS0 reboot=k panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-bootbench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# run_one VMM CONFIG RUN: one measurement; prints its BOOTBENCH_RESULT line.
run_one() {
	vmm=$1 cfg=$2 run=$3
	cpus=${cfg%%x*} mem=${cfg#*x}
	b=$tmp/$vmm-$cfg-$run
	if [ "$vmm" = kvmini ]; then
		set -- "$dir/kvmini" run --kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio.gz" \
			--mem "$mem" --cpus "$cpus" --log-level info --cmdline "-- true"
	else
		set -- "$QEMU" -M microvm,x-option-roms=off,rtc=off,acpi=off -nodefaults -no-user-config \
			-enable-kvm -cpu host -m "$mem" -smp "$cpus" -display none -serial stdio -no-reboot \
			-L "${QEMU_DATADIR:-/usr/share/qemu}" -kernel "$dir/bzImage" \
			-initrd "$dir/initramfs.cpio.gz" -append "$cmdline reboot=t -- true"
	fi
	if ! r=$("$dir/tools/boottime" "$limit" KVMINI_GUEST_READY "$b.out" "$b.err" -- "$@"); then
		echo "BOOTBENCH_RESULT $vmm $cfg $run n/a: boottime failed"
		return
	fi
	# shellcheck disable=SC2086 # r is "READY_MS EXIT_MS STATUS"
	set -- $r
	ready=$1 exitms=$2 status=$3
	wall=- cpu=-
	if [ "$vmm" = kvmini ]; then
		line=$(grep 'boot timer: guest init reached' "$b.err" | head -n 1)
		wall=$(echo "$line" | sed -n 's/.*VMM start-up \([0-9.]*\) ms wall.*/\1/p')
		cpu=$(echo "$line" | sed -n 's/.*ms wall, \([0-9.]*\) ms CPU.*/\1/p')
		[ -n "$wall" ] || wall=-
		[ -n "$cpu" ] || cpu=-
	fi
	if [ "$ready" = -1.00 ] || [ "$status" != 0 ]; then
		why="VMM exit status $status after $exitms ms"
		[ "$ready" != -1.00 ] || why="$why, no KVMINI_GUEST_READY"
		err=$(grep -v -e '^[[:space:]]*$' -e 'info:' "$b.err" | tail -n 1)
		[ -z "$err" ] || why="$why: $err"
		echo "BOOTBENCH_RESULT $vmm $cfg $run n/a: $(echo "$why" | tr '\n' ' ')"
		echo "bootbench: $vmm $cfg run $run failed: $why; last output:" >&2
		{ tr -d '\r' <"$b.out" | tail -n 10; tail -n 5 "$b.err"; } | sed 's/^/bootbench:   /' >&2
		return
	fi
	echo "BOOTBENCH_RESULT $vmm $cfg $run $ready $exitms $wall $cpu"
	echo "bootbench: $vmm $cfg run $run: ready $ready ms, exit $exitms ms" >&2
}

run=0
while [ "$run" -lt "$runs" ]; do
	for cfg in 1x128M 2x512M; do
		if [ $((run % 2)) = 0 ]; then order="kvmini qemu"; else order="qemu kvmini"; fi
		for vmm in $order; do
			run_one "$vmm" "$cfg" "$run"
		done
	done
	run=$((run + 1))
done
