#!/bin/sh
# bench/boot-l2.sh: the measuring half of bench/boot.sh (POSIX sh: it runs in the nested
# machine's busybox, or directly on a host with hardware virtualization).
#
#   boot-l2.sh DIR RUNS DENSITY_VMS DENSITY_RUNS [PHASES]
#
# DIR holds kvmini, bzImage, initramfs.cpio.gz, tools/boottime (bench/boottime.c) and
# tools/density (bench/density.c). QEMU is qemu-system-x86_64 on PATH (or $QEMU) with its
# microvm firmware in $QEMU_DATADIR. Every phase alternates the VMM order from run to run.
#
# Boot: RUNS runs of each configuration (1 vCPU/128 MiB, 2 vCPUs/512 MiB), the guest running
# `true`; boottime times process start -> first console line with KVMINI_GUEST_READY -> exit.
#   BOOTBENCH_RESULT VMM CONFIG RUN READY_MS EXIT_MS STARTUP_WALL_MS STARTUP_CPU_MS UPTIME_MS
#                    INIT_WALL_MS INIT_CPU_MS INIT_SINCE_RUN_MS
# STARTUP_* and INIT_*: kvmini's boot-timer line (VMM start-up; guest init reached: since
# kvmini started, process CPU, since the first KVM_RUN); "-" for QEMU, which has no boot
# timer. UPTIME_MS: the guest's /proc/uptime on its READY line.
#
# Memory: RUNS runs of 1 vCPU/128 MiB, the guest idling in `sleep`; 1 s after READY boottime
# reads the VMM's /proc/PID/smaps, then kills it. The same runs give the VMM start-up from
# fork to the first KVM_RUN on CLOCK_REALTIME: kvmini's boot-timer debug line, QEMU's
# kvm_vcpu_ioctl trace event (-msg timestamp=on -trace kvm_vcpu_ioctl; 0xae80 is KVM_RUN).
#   BOOTBENCH_MEM VMM RUN RSS_KB GUEST_RSS_KB PSS_KB GUEST_MAPS STARTUP_FORK_MS
#
# Density: DENSITY_RUNS runs of DENSITY_VMS VMs (1 vCPU/128 MiB, `true`) started at once.
#   BOOTBENCH_DENSITY VMM RUN WALL_MS GOOD PEAK_KB
# GOOD: the VMs that printed READY and exited 0 (a run with none is n/a).
#
# A run that fails prints "n/a: REASON" after the run number instead of figures.
#
# PHASES (default "boot mem density") picks the phases, in that order;
# tests/nested/soak.sh runs the boot phase alone. Each phase starts with a progress line
# "bootbench: phase NAME: ..." on stderr.

dir=${1:?usage: boot-l2.sh DIR RUNS DENSITY_VMS DENSITY_RUNS}
runs=${2:?}
dvms=${3:?}
druns=${4:?}
phases=${5:-boot mem density}
QEMU=${QEMU:-qemu-system-x86_64}
limit=${BENCH_BOOT_LIMIT:-120}
# kvmini's default command line (include/kvmini/vm.h), given to QEMU too. Plus, for QEMU
# only, reboot=t (the later reboot= wins): microvm has no i8042, so reboot=k falls back to a
# jump into the firmware (a soft reboot QEMU never sees) and the guest boots again forever;
# a triple fault is a reset that -no-reboot turns into QEMU's exit.
cmdline="console=ttyS0 reboot=k,f panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-bootbench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# vmm_argv VMM CONFIG GUEST_CMD [VMM_ARG]...: one VMM run's command, one argument a line.
vmm_argv() {
	vmm=$1 cfg=$2 gcmd=$3
	shift 3
	cpus=${cfg%%x*} mem=${cfg#*x}
	if [ "$vmm" = kvmini ]; then
		printf '%s\n' "$dir/kvmini" run --kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio.gz" \
			--mem "$mem" --cpus "$cpus" --cmdline "-- $gcmd" "$@"
	else
		printf '%s\n' "$QEMU" -M microvm,x-option-roms=off,rtc=off,acpi=off -nodefaults \
			-no-user-config -enable-kvm -cpu host -m "$mem" -smp "$cpus" -display none \
			-serial stdio -no-reboot -L "${QEMU_DATADIR:-/usr/share/qemu}" -kernel "$dir/bzImage" \
			-initrd "$dir/initramfs.cpio.gz" -append "$cmdline reboot=t -- $gcmd" "$@"
	fi
}

# with_argv FILE CMD [ARG]...: run CMD ARG... with the lines of FILE (vmm_argv) appended.
with_argv() {
	f=$1
	shift
	set -f
	IFS='
'
	# shellcheck disable=SC2046 # split on newlines only, no globbing
	set -- "$@" $(cat "$f")
	unset IFS
	set +f
	"$@"
}

# failed "TAG VMM [CONFIG] RUN" WHY B: the n/a result line; the run's last output on stderr.
failed() {
	echo "$1 n/a: $(echo "$2" | tr '\n' ' ')"
	echo "bootbench: $1 failed: $2; last output:" >&2
	{ tr -d '\r' <"$3.out" | tail -n 10; tail -n 5 "$3.err"; } 2>/dev/null | sed 's/^/bootbench:   /' >&2
}

# why_failed STATUS EXIT_MS READY_MS B: a one-line reason from the VMM's status and stderr.
why_failed() {
	why="VMM exit status $1 after $2 ms"
	[ "$3" != -1.00 ] || why="$why, no KVMINI_GUEST_READY"
	err=$(grep -v -e '^[[:space:]]*$' -e 'info:' -e 'debug:' "$4.err" | tail -n 1)
	[ -z "$err" ] || why="$why: $err"
	echo "$why"
}

# boot_one VMM CONFIG RUN: one boot to `true` and exit.
boot_one() {
	vmm=$1 cfg=$2 run=$3
	b=$tmp/$vmm-$cfg-$run
	tag="BOOTBENCH_RESULT $vmm $cfg $run"
	if [ "$vmm" = kvmini ]; then
		vmm_argv kvmini "$cfg" true --log-level info
	elif [ "$vmm" = kvmini-off ]; then
		vmm_argv kvmini "$cfg" true --log-level info --seccomp off
	else
		vmm_argv qemu "$cfg" true
	fi >"$b.argv"
	if ! r=$(with_argv "$b.argv" "$dir/tools/boottime" "$limit" KVMINI_GUEST_READY "$b.out" "$b.err" --); then
		echo "$tag n/a: boottime failed"
		return
	fi
	# shellcheck disable=SC2086 # r is "READY_MS EXIT_MS STATUS FORK_REALTIME"
	set -- $r
	ready=$1 exitms=$2 status=$3
	if [ "$ready" = -1.00 ] || [ "$status" != 0 ]; then
		failed "$tag" "$(why_failed "$status" "$exitms" "$ready" "$b")" "$b"
		return
	fi
	wall=- cpu=- iwall=- icpu=- irun=-
	if [ "$vmm" != qemu ]; then
		# "guest init reached A ms after kvmini started (B ms after the first KVM_RUN,
		# C ms process CPU); VMM start-up D ms wall, E ms CPU"
		line=$(grep 'boot timer: guest init reached' "$b.err" | head -n 1)
		wall=$(echo "$line" | sed -n 's/.*VMM start-up \([0-9.]*\) ms wall.*/\1/p')
		cpu=$(echo "$line" | sed -n 's/.*ms wall, \([0-9.]*\) ms CPU.*/\1/p')
		iwall=$(echo "$line" | sed -n 's/.*init reached \([0-9.]*\) ms after kvmini started.*/\1/p')
		irun=$(echo "$line" | sed -n 's/.*(\([0-9.]*\) ms after the first KVM_RUN.*/\1/p')
		icpu=$(echo "$line" | sed -n 's/.*KVM_RUN, \([0-9.]*\) ms process CPU.*/\1/p')
	fi
	up=$(tr -d '\r' <"$b.out" | sed -n 's/.*KVMINI_GUEST_READY uptime=\([0-9.]*\).*/\1/p' | head -n 1)
	[ -z "$up" ] || up=$(awk -v s="$up" 'BEGIN { printf "%.0f", s * 1000 }')
	echo "$tag $ready $exitms ${wall:--} ${cpu:--} ${up:--} ${iwall:--} ${icpu:--} ${irun:--}"
	echo "bootbench: $vmm $cfg run $run: ready $ready ms (guest uptime ${up:-?} ms), exit $exitms ms" >&2
}

# mem_one VMM RUN: memory at idle and VMM start-up from fork, 1 vCPU/128 MiB.
mem_one() {
	vmm=$1 run=$2
	b=$tmp/mem-$vmm-$run
	tag="BOOTBENCH_MEM $vmm $run"
	if [ "$vmm" = kvmini ]; then
		vmm_argv kvmini 1x128M "sleep 600" --log-level debug
	else
		vmm_argv qemu 1x128M "sleep 600" -msg timestamp=on -trace kvm_vcpu_ioctl -D "$b.trace"
	fi >"$b.argv"
	if ! r=$(with_argv "$b.argv" "$dir/tools/boottime" -m 128 1000 "$limit" KVMINI_GUEST_READY \
		"$b.out" "$b.err" --); then
		echo "$tag n/a: boottime failed"
		return
	fi
	# shellcheck disable=SC2086 # READY EXIT STATUS FORK_REALTIME RSS GUEST PSS MAPS
	set -- $r
	if [ "$1" = -1.00 ] || [ "$5" = - ]; then
		failed "$tag" "$(why_failed "$3" "$2" "$1" "$b")" "$b"
		return
	fi
	fork=$4 rss=$5 guest=$6 pss=$7 maps=$8
	if [ "$vmm" = kvmini ]; then
		kvm_run=$(sed -n 's/.*first KVM_RUN at \([0-9.]*\) s CLOCK_REALTIME.*/\1/p' "$b.err" | head -n 1)
	else
		kvm_run=$(sed -n 's/^[0-9]*@\([0-9.]*\):kvm_vcpu_ioctl .*type 0xae80.*/\1/p' "$b.trace" | head -n 1)
	fi
	startup=-
	[ -z "$kvm_run" ] || startup=$(awk -v a="$kvm_run" -v b="$fork" 'BEGIN { printf "%.2f", (a - b) * 1000 }')
	echo "$tag $rss $guest $pss $maps $startup"
	echo "bootbench: $vmm memory run $run: RSS $rss kB, guest RAM resident $guest kB in $maps mapping(s), start-up from fork $startup ms" >&2
}

# density_one VMM RUN: DENSITY_VMS VMs at once.
density_one() {
	vmm=$1 run=$2
	d=$tmp/density-$vmm-$run
	mkdir -p "$d"
	vmm_argv "$vmm" 1x128M true >"$d.argv"
	if ! r=$(with_argv "$d.argv" "$dir/tools/density" "$dvms" $((limit * 4)) KVMINI_GUEST_READY \
		"$d" -- 2>"$d.err"); then
		echo "BOOTBENCH_DENSITY $vmm $run n/a: density failed: $(tail -n 1 "$d.err")"
		return
	fi
	# shellcheck disable=SC2086 # WALL_MS GOOD PEAK_KB
	set -- $r
	if [ "$2" != "$dvms" ]; then
		# Under nested TCG an occasional guest (with either VMM) resets before its console
		# comes up; the run still counts, at its rate of good VMs, and says so.
		echo "bootbench: $vmm density run $run: only $2 of $dvms VMs booted and exited 0:" >&2
		sed 's/^/bootbench:   /' "$d.err" >&2
		vm=$(sed -n 's/^density: \(vm-[0-9]*\):.*/\1/p' "$d.err" | head -n 1)
		if [ -n "$vm" ]; then
			echo "bootbench:   $vm's last output:" >&2
			{ tr -d '\r' <"$d/$vm.out" | tail -n 8; tail -n 5 "$d/$vm.err"; } | sed 's/^/bootbench:   /' >&2
		fi
	fi
	if [ "$2" = 0 ]; then
		echo "BOOTBENCH_DENSITY $vmm $run n/a: none of $dvms VMs booted and exited 0"
		rm -rf "$d"
		return
	fi
	rm -rf "$d"
	echo "BOOTBENCH_DENSITY $vmm $run $1 $2 $3"
	echo "bootbench: $vmm density run $run: $2 of $dvms VMs in $1 ms, peak host memory +$3 kB" >&2
}

# order RUN: the VMM order of a run.
order() {
	if [ $(($1 % 2)) = 0 ]; then echo "kvmini qemu"; else echo "qemu kvmini"; fi
}

# each_run COUNT FN: `FN VMM RUN` for runs 0..COUNT-1, both VMMs a run in alternating order.
each_run() {
	i=0
	while [ "$i" -lt "$1" ]; do
		for v in $(order "$i"); do
			"$2" "$v" "$i"
		done
		i=$((i + 1))
	done
}

# order3 RUN: the boot phase's order, with kvmini under --seccomp off ("kvmini-off") as a
# third VMM: the filters' cost is measured in the same run.
order3() {
	case $(($1 % 3)) in
	0) echo "kvmini kvmini-off qemu" ;;
	1) echo "kvmini-off qemu kvmini" ;;
	*) echo "qemu kvmini kvmini-off" ;;
	esac
}

# boot_phase: boot runs take both configurations in turn within each run.
boot_phase() {
	run=0
	while [ "$run" -lt "$runs" ]; do
		for cfg in 1x128M 2x512M; do
			for vmm in $(order3 "$run"); do
				boot_one "$vmm" "$cfg" "$run"
			done
		done
		run=$((run + 1))
	done
}

for phase in $phases; do
	case "$phase" in
	boot)
		echo "bootbench: phase boot: $runs runs x 2 configurations x 3 VMMs (kvmini, kvmini --seccomp off, QEMU)" >&2
		boot_phase
		;;
	mem)
		echo "bootbench: phase memory: $runs runs x 2 VMMs" >&2
		each_run "$runs" mem_one
		;;
	density)
		echo "bootbench: phase density: $druns runs x 2 VMMs of $dvms VMs at once" >&2
		each_run "$druns" density_one
		;;
	*)
		echo "bootbench: unknown phase $phase (PHASES: boot mem density)" >&2
		exit 2
		;;
	esac
done
