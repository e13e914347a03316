#!/bin/bash
# bench/boot.sh: boot time, kvmini vs QEMU's microvm (fastest settings), same run, same host.
#
#   bench/boot.sh DIR     writes DIR/boot.json (DIR/boot.log: the run's console log), prints a table
#
# Environment:
#   BENCH_KVMINI          kvmini binary (default DIR/../kvmini)
#   BENCH_GUEST_DIR       bzImage and initramfs.cpio.gz from `make guests` (DIR/../guest)
#   BENCH_BOOT_RUNS       runs per configuration and VMM, alternating the VMM order (10)
#   BENCH_BOOT_MODE       auto, direct or nested (auto: tests/nested/hw-virt.sh decides)
#   QEMU                  QEMU binary for the guest VMM (default qemu-system-x86_64)
#   CC                    compiler for the timing helper bench/boottime.c (default cc)
#   NESTED_*              settings of tests/nested/run.sh
#
# Both VMMs boot the same bzImage and initramfs with the same command line (kvmini's default,
# "console=ttyS0 reboot=k panic=-1 ... quiet -- true"; QEMU's also has reboot=t before " -- ":
# microvm has no i8042, and reboot=k then ends in a firmware jump, the guest boots again and
# QEMU never exits), 1 vCPU/128 MiB and 2 vCPUs/512 MiB.
# QEMU: -M microvm,x-option-roms=off,rtc=off,acpi=off -nodefaults -no-user-config -enable-kvm
# -cpu host -serial stdio -no-reboot. The clock is bench/boottime.c (CLOCK_MONOTONIC, a tiny
# C helper built here, since L2's busybox has no sub-ms monotonic clock): from just before
# fork+exec of the VMM to the first console line with KVMINI_GUEST_READY (read line by line
# from the VMM's stdout pipe; the guest init prints it after mounting /proc, /sys, /tmp) and
# to the VMM's exit (the guest runs `true` and reboots). Medians are reported. kvmini's VMM
# start-up (wall and CPU ms until the first KVM_RUN) comes from its boot-timer line; QEMU has
# no such report (n/a). Without hardware virtualization both VMMs run inside the nested
# machine (tests/nested/run.sh: L2 and its KVM are TCG-emulated), so the absolute numbers are
# large and only the ratio means something. Memory overhead and density are not measured yet
# (n/a rows). Failures become "n/a: REASON" rows, never a non-zero exit (except usage errors).
set -euo pipefail

dir=${1:?usage: bench/boot.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
kvmini=${BENCH_KVMINI:-$dir/../kvmini}
gdir=${BENCH_GUEST_DIR:-$dir/../guest}
runs=${BENCH_BOOT_RUNS:-10}
mode=${BENCH_BOOT_MODE:-auto}
qemu=${QEMU:-qemu-system-x86_64}
datadir=${QEMU_DATADIR:-/usr/share/qemu}
[[ $runs =~ ^[0-9]+$ && $runs -gt 0 ]] || { echo "bench: BENCH_BOOT_RUNS=$runs is not a positive number" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench: jq is missing (./setup.sh --deps-only installs it)" >&2; exit 2; }
mkdir -p "$dir"

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-bootbench-XXXXXX")
trap 'rm -rf "$work"' EXIT
results=$work/results # BOOTBENCH_RESULT lines
: >"$results"
where="" qemu_version="" reason=""

# prepare: fill $work/l2 with what boot-l2.sh needs; sets $reason and fails if it cannot.
prepare() {
	[ -x "$kvmini" ] || { reason="$kvmini is missing (make)"; return 1; }
	for f in bzImage initramfs.cpio.gz; do
		[ -f "$gdir/$f" ] || { reason="$gdir/$f is missing (make guests)"; return 1; }
	done
	qemu=$(command -v "$qemu") || { reason="$qemu is missing (apt-get install qemu-system-x86)"; return 1; }
	[ -f "$datadir/bios-microvm.bin" ] || { reason="$datadir/bios-microvm.bin is missing"; return 1; }
	qemu_version=$("$qemu" --version | head -n 1)
	mkdir -p "$work/l2/tools"
	"${CC:-cc}" -O2 -Wall -Wextra -o "$work/l2/tools/boottime" "$here/boottime.c" \
		>"$work/cc.log" 2>&1 || { reason="cannot build bench/boottime.c: $(tail -n 1 "$work/cc.log")"; return 1; }
	cp "$kvmini" "$work/l2/kvmini"
	cp "$gdir/bzImage" "$gdir/initramfs.cpio.gz" "$work/l2/"
	cp "$here/boot-l2.sh" "$work/l2/"
}

# measure: run boot-l2.sh directly or in the nested machine; BOOTBENCH_RESULT lines to $results.
measure() {
	local status=0 log=$work/run.log
	if [ "$mode" = auto ]; then
		if "$top/tests/nested/hw-virt.sh"; then mode=direct; else mode=nested; fi
	fi
	case "$mode" in
	direct)
		where="directly on this host's /dev/kvm"
		echo "bench: boot: running $where"
		QEMU=$qemu QEMU_DATADIR=$datadir sh "$work/l2/boot-l2.sh" "$work/l2" "$runs" \
			>"$log" 2> >(sed 's/^/bench: /' >&2) || status=$?
		;;
	nested)
		where="inside the nested machine (tests/nested/run.sh: L2 and its KVM are TCG-emulated)"
		echo "bench: boot: no hardware virtualization; both VMMs run $where"
		local fw=(--host-file "$datadir/bios-microvm.bin")
		[ ! -f "$datadir/qboot.rom" ] || fw+=(--host-file "$datadir/qboot.rom")
		# 4 boots per run, up to a minute each under TCG, plus L2's own boot.
		NESTED_TIMEOUT=${NESTED_TIMEOUT:-$((600 + runs * 240))} \
			"$top/tests/nested/run.sh" --files "$work/l2" --host-file "$qemu" "${fw[@]}" -- \
			env QEMU="$qemu" QEMU_DATADIR="$datadir" sh ./boot-l2.sh /work "$runs" \
			>"$log" 2>&1 &
		local pid=$!
		tail -n +1 -f --pid="$pid" "$log" | grep -a --line-buffered -E '^(bootbench|nested):' |
			sed -u 's/^/bench: /' || true
		wait "$pid" || status=$?
		;;
	*)
		echo "bench: BENCH_BOOT_MODE must be auto, direct or nested" >&2
		exit 2
		;;
	esac
	cp "$log" "$dir/boot.log"
	grep -a '^BOOTBENCH_RESULT ' "$log" >"$results" || true
	if [ ! -s "$results" ]; then
		reason="no results ($mode run exit status $status; log in $dir/boot.log; last lines: $(
			grep -av '^$' "$log" | tail -n 3 | tr '\n' ' '))"
	fi
}

if prepare; then
	measure
fi

# One row per configuration and metric: medians of each VMM, their ratio, every run.
rows=$(jq -n -R -c --arg reason "$reason" '
	def median: sort | if length == 0 then null
		elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	[inputs | split(" ") | {vmm: .[1], config: .[2], run: (.[3] | tonumber), rest: .[4:]}
	 | . + (if .rest[0] == "n/a:" then {error: (.rest | join(" "))}
		else {ready: (.rest[0] | tonumber), exit: (.rest[1] | tonumber),
		  startup_wall: (.rest[2] | tonumber? // null),
		  startup_cpu: (.rest[3] | tonumber? // null)} end)] as $all
	| [ {config: "1x128M", vcpus: 1, mem: "128M"}, {config: "2x512M", vcpus: 2, mem: "512M"} ][]
	| . as $c
	| ([$all[] | select(.config == $c.config)]) as $runs
	| def vals($v; $k): [$runs[] | select(.vmm == $v) | .[$k] | numbers];
	  def errs($v): [$runs[] | select(.vmm == $v and .error != null) | .error]
		| if length > 0 then .[0] elif $reason != "" then "n/a: \($reason)" else "n/a: no run" end;
	  def row($metric; $what; $k; $q):
		{config: $c.config, vcpus: $c.vcpus, mem: $c.mem, metric: $metric, description: $what,
		 kvmini_ms: (vals("kvmini"; $k) | median),
		 qemu_ms: (if $q == null then (vals("qemu"; $k) | median) else null end)}
		| . + {ratio: (if .kvmini_ms != null and (.qemu_ms // 0) > 0
			then .kvmini_ms / .qemu_ms else null end),
		  kvmini_error: (if .kvmini_ms == null then errs("kvmini") else null end),
		  qemu_error: (if .qemu_ms != null then null elif $q != null then $q
			else errs("qemu") end),
		  kvmini_runs: vals("kvmini"; $k),
		  qemu_runs: (if $q == null then vals("qemu"; $k) else [] end),
		  failed_runs: [$runs[] | select(.error != null) | {vmm, run, error}]};
	row("ready"; "process start -> KVMINI_GUEST_READY"; "ready"; null),
	row("exit"; "process start -> VMM exit"; "exit"; null),
	row("startup_wall"; "VMM start-up, wall (kvmini boot timer)"; "startup_wall";
		"n/a: QEMU reports no VMM start-up time (first KVM_RUN not measured)"),
	row("startup_cpu"; "VMM start-up, CPU (kvmini boot timer)"; "startup_cpu";
		"n/a: QEMU reports no VMM start-up time (first KVM_RUN not measured)")' <"$results")

printf '%s\n' "$rows" | jq -s --arg where "$where" --arg mode "$mode" --arg runs "$runs" \
	--arg qemu "$qemu_version" '
	{tool: "bench/boottime.c (CLOCK_MONOTONIC)", where: $where, mode: $mode,
	 runs: ($runs | tonumber), statistic: "median", unit: "ms",
	 cmdline: "kvmini default (console=ttyS0 reboot=k panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet) -- true; QEMU: + reboot=t (microvm has no i8042 for reboot=k)",
	 qemu: {version: $qemu, setup: "-M microvm,x-option-roms=off,rtc=off,acpi=off -nodefaults -no-user-config -enable-kvm -cpu host -serial stdio -no-reboot"},
	 rows: .,
	 not_measured: [{metric: "memory_overhead", value: "n/a: not measured yet"},
		{metric: "density", value: "n/a: not measured yet"}]}' >"$dir/boot.json"

echo
printf '%-44s %11s %11s %12s\n' "boot (median ms)" kvmini QEMU kvmini/QEMU
jq -r '.rows[] | [.config + " " + .description, .kvmini_ms // "n/a", .qemu_ms // "n/a",
	.ratio // "-"] | @tsv' "$dir/boot.json" | while IFS=$'\t' read -r d k q r; do
	[ "$k" = n/a ] || k=$(printf '%.1f' "$k")
	[ "$q" = n/a ] || q=$(printf '%.1f' "$q")
	[ "$r" = - ] || r=$(printf '%.2f' "$r")
	printf '%-44s %11s %11s %12s\n' "$d" "$k" "$q" "$r"
done
printf '%-44s %s\n' "memory overhead" "n/a: not measured yet" "density (VMs per host)" "n/a: not measured yet"
jq -r '.rows[] | select(.metric == "ready" or .metric == "startup_wall") | .config as $c
	| (.kvmini_error // empty | "bench: boot: \($c) kvmini: \(.)"),
	(.qemu_error // empty | "bench: boot: \($c) QEMU: \(.)")' "$dir/boot.json"
jq -r '[.rows[] | select(.metric == "ready") | .failed_runs[]] | .[]
	| "bench: boot: failed run: \(.vmm) run \(.run): \(.error)"' "$dir/boot.json"
echo "bench: boot: kvmini/QEMU is a ratio of times: below 1 means kvmini is faster"
echo "bench: boot: both VMMs ran ${where:-nowhere (not measured)}; median of $runs runs each"
echo "bench: boot: results in $dir/boot.json"
