#!/bin/bash
# bench/boot.sh: boot time, VMM start-up, memory overhead and density, kvmini vs QEMU's
# microvm (fastest settings), same run, same host.
#
#   bench/boot.sh DIR     writes DIR/boot.json (DIR/boot.log: the run's console log), prints a table
#
# Environment:
#   BENCH_KVMINI          kvmini binary (default DIR/../kvmini)
#   BENCH_GUEST_DIR       bzImage and initramfs.cpio.gz from `make guests` (DIR/../guest)
#   BENCH_BOOT_RUNS       runs per boot configuration and VMM, and memory runs per VMM (10)
#   BENCH_DENSITY_VMS     VMs started at once in a density run (20)
#   BENCH_DENSITY_RUNS    density runs per VMM (10)
#   BENCH_BOOT_MODE       auto, direct or nested (auto: tests/nested/hw-virt.sh decides)
#   QEMU                  QEMU binary for the guest VMM (default qemu-system-x86_64)
#   CC                    compiler for the helpers bench/boottime.c and bench/density.c (cc)
#   NESTED_*              settings of tests/nested/run.sh (NESTED_MEM defaults to 4G here)
#
# Both VMMs boot the same bzImage and initramfs with the same command line (kvmini's default,
# "console=ttyS0 reboot=k,f panic=-1 ... quiet -- CMD"; QEMU's also has reboot=t before " -- ":
# microvm has no i8042, and reboot=k then ends in a firmware jump, the guest boots again and
# QEMU never exits). QEMU: -M microvm,x-option-roms=off,rtc=off,acpi=off -nodefaults
# -no-user-config -enable-kvm -cpu host -serial stdio -no-reboot. The VMM order alternates
# from run to run. bench/boot-l2.sh does the measuring:
# - boot, 1 vCPU/128 MiB and 2 vCPUs/512 MiB, CMD `true`: bench/boottime.c (CLOCK_MONOTONIC;
#   L2's busybox has no sub-ms clock) times just before fork+exec to the first console line
#   with KVMINI_GUEST_READY and to the VMM's exit. The guest prints its /proc/uptime on that
#   line; ready minus uptime is the time spent outside the guest kernel (VMM set-up,
#   firmware, kernel loading and decompression, early boot before the guest's clock starts).
#   kvmini's VMM start-up (wall and CPU, its start to the first KVM_RUN) is its boot timer's.
# - memory and start-up from fork, 1 vCPU/128 MiB, CMD `sleep 600`: 1 s after READY,
#   boottime reads the VMM's /proc/PID/smaps: overhead = resident memory minus the resident
#   part of the guest RAM mapping (the only mapping >= 128 MiB). Fork to the first KVM_RUN:
#   kvmini's boot-timer debug line and QEMU's kvm_vcpu_ioctl trace event, both CLOCK_REALTIME.
# - density, 1 vCPU/128 MiB, CMD `true`: bench/density.c starts BENCH_DENSITY_VMS VMs at once
#   and times until the last exits (VMs/s: the VMs that printed READY and exited 0, per
#   second), sampling MemTotal - MemAvailable every 20 ms (peak host memory, above what was
#   used before).
# Medians everywhere. Without hardware virtualization both VMMs run inside the nested
# machine (tests/nested/run.sh: L2 and its KVM are TCG-emulated), so the absolute times are
# large and only the ratios mean something. Failures become "n/a: REASON" rows, never a
# non-zero exit (except usage errors).
#
# Goals (issue 5; reported, never asserted): boot to init <= 0.9 x QEMU, time outside the guest
# kernel <= 0.5 x QEMU, VMM start-up <= 3 ms wall, memory overhead <= 2 MiB, density (VMs/s)
# ahead of QEMU.
set -euo pipefail

dir=${1:?usage: bench/boot.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
kvmini=${BENCH_KVMINI:-$dir/../kvmini}
gdir=${BENCH_GUEST_DIR:-$dir/../guest}
runs=${BENCH_BOOT_RUNS:-10}
dvms=${BENCH_DENSITY_VMS:-20}
druns=${BENCH_DENSITY_RUNS:-10}
mode=${BENCH_BOOT_MODE:-auto}
qemu=${QEMU:-qemu-system-x86_64}
datadir=${QEMU_DATADIR:-/usr/share/qemu}
for v in runs dvms druns; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] ||
		{ echo "bench: BENCH_BOOT_RUNS, BENCH_DENSITY_VMS and BENCH_DENSITY_RUNS must be positive numbers" >&2; exit 2; }
done
[ "$dvms" -le 256 ] || { echo "bench: BENCH_DENSITY_VMS is at most 256" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench: jq is missing (./setup.sh --deps-only installs it)" >&2; exit 2; }
mkdir -p "$dir"

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-bootbench-XXXXXX")
trap 'rm -rf "$work"' EXIT
results=$work/results # BOOTBENCH_* lines
: >"$results"
where="" qemu_version="" reason="" stall=""
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

# prepare: fill $work/l2 with what boot-l2.sh needs; sets $reason and fails if it cannot.
prepare() {
	bench_need_guest && bench_build_tool boottime && bench_build_tool density || return 1
	cp "$gdir/bzImage" "$gdir/initramfs.cpio.gz" "$work/l2/"
}

if prepare; then
	# Under TCG: 6 boots a run, up to a minute each, the memory runs, the density runs and
	# L2's own boot. Twenty VMs at once need more than the nested machine's default 2G.
	NESTED_MEM=${NESTED_MEM:-4G} NESTED_TIMEOUT=${NESTED_TIMEOUT:-$((900 + runs * 300 + druns * 600))} \
		bench_run_l2 boot BOOTBENCH_ boot-l2.sh "$runs" "$dvms" "$druns"
fi

# Rows: the median of each VMM's runs, their ratio (kvmini/QEMU), every run, the failures.
jq -n -R --arg reason "$reason" --arg stall "$stall" --arg where "$where" --arg mode "$mode" --arg qemu "$qemu_version" \
	--argjson runs "$runs" --argjson dvms "$dvms" --argjson druns "$druns" '
	def num: tonumber? // null;
	def mib: num | if . == null then null else . / 1024 end;
	def median: sort | if length == 0 then null
		elif length % 2 == 1 then .[length / 2 | floor]
		else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def rec($f): if .[$f] == "n/a:" then {error: (.[$f:] | join(" "))} else null end;
	[inputs | split(" ") | select(length > 1)] as $lines
	| [$lines[] | select(.[0] == "BOOTBENCH_RESULT")
	   | {vmm: .[1], config: .[2], run: (.[3] | num)} + (rec(4) // ({ready: (.[4] | num),
		exit: (.[5] | num), startup_wall: (.[6] | num), startup_cpu: (.[7] | num),
		uptime: (.[8] | num), init_wall: (.[9] | num), init_cpu: (.[10] | num),
		init_since_run: (.[11] | num)} | .outside = (if .uptime == null then null
		else .ready - .uptime end)))] as $boot
	| [$lines[] | select(.[0] == "BOOTBENCH_MEM")
	   | {vmm: .[1], config: "1x128M", run: (.[2] | num)} + (rec(3) // ({rss: (.[3] | mib),
		guest: (.[4] | mib), pss: (.[5] | mib), guest_maps: (.[6] | num),
		startup_fork: (.[7] | num)} | .overhead = .rss - .guest))] as $mem
	| [$lines[] | select(.[0] == "BOOTBENCH_DENSITY")
	   | {vmm: .[1], config: "1x128M", run: (.[2] | num)} + (rec(3) // {wall: (.[3] | num),
		good: (.[4] | num), vms_per_s: ((.[4] | num) * 1000 / (.[3] | num)),
		peak: (.[5] | mib)})] as $density
	| def row($recs; $want; $config; $metric; $what; $unit; $qna):
		([$recs[] | select(.config == $config)]) as $r
		# A row whose runs a stalled nested machine cut short is n/a, never a number.
		| def cut($v): $stall != "" and ([$r[] | select(.vmm == $v)] | length) < $want;
		  def vals($v): if cut($v) then [] else [$r[] | select(.vmm == $v) | .[$metric] | numbers] end;
		  def errs($v): [$r[] | select(.vmm == $v and .error != null) | .error]
			| if cut($v) then "n/a: \($stall)" elif length > 0 then .[0]
			  elif $reason != "" then "n/a: \($reason)" else "n/a: no run" end;
		{config: $config, metric: $metric, description: $what, unit: $unit,
		 kvmini: (vals("kvmini") | median),
		 qemu: (if $qna == null then (vals("qemu") | median) else null end)}
		| . + {ratio: (if .kvmini != null and (.qemu // 0) > 0 then .kvmini / .qemu else null end),
		  kvmini_error: (if .kvmini == null then errs("kvmini") else null end),
		  qemu_error: (if .qemu != null then null elif $qna != null then $qna else errs("qemu") end),
		  kvmini_runs: vals("kvmini"), qemu_runs: (if $qna == null then vals("qemu") else [] end),
		  failed_runs: [$r[] | select(.error != null) | {vmm, run, error}]}
		| if $metric == "vms_per_s" then . + {short_runs: [$r[] | select((.good // $dvms) < $dvms)
			| {vmm, run, good}]} else . end;
	# The filters cost: kvmini (--seccomp kill, the default) over kvmini --seccomp off.
	def srow($config; $metric; $what):
		([$boot[] | select(.config == $config)]) as $r
		| def v($x): [$r[] | select(.vmm == $x) | .[$metric] | numbers];
		{config: $config, metric: $metric, description: $what, unit: "ms",
		 filtered: (v("kvmini") | median), unfiltered: (v("kvmini-off") | median),
		 filtered_runs: v("kvmini"), unfiltered_runs: v("kvmini-off")}
		| . + {ratio: (if .filtered != null and (.unfiltered // 0) > 0
			then .filtered / .unfiltered else null end)};
	{tool: "bench/boottime.c and bench/density.c (CLOCK_MONOTONIC), /proc/PID/smaps, /proc/meminfo",
	 where: $where, mode: $mode, runs: $runs, density: {vms: $dvms, runs: $druns},
	 statistic: "median",
	 cmdline: "kvmini default (console=ttyS0 reboot=k,f panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet) -- CMD; QEMU: + reboot=t (microvm has no i8042 for reboot=k)",
	 qemu: {version: $qemu, setup: "-M microvm,x-option-roms=off,rtc=off,acpi=off -nodefaults -no-user-config -enable-kvm -cpu host -serial stdio -no-reboot"},
	 goals: {ready_ratio_max: 0.9, outside_ratio_max: 0.5, startup_wall_ms_max: 3,
		overhead_mib_max: 2, density_ratio_min: 1, seccomp_ratio_max: 1.02},
	 seccomp: [("1x128M", "2x512M") as $c
		| srow($c; "ready"; "start -> KVMINI_GUEST_READY"), srow($c; "exit"; "start -> exit")],
	 rows: ([("1x128M", "2x512M") as $c
		| row($boot; $runs; $c; "ready"; "start -> KVMINI_GUEST_READY"; "ms"; null),
		  row($boot; $runs; $c; "outside"; "outside the guest kernel"; "ms"; null),
		  row($boot; $runs; $c; "exit"; "start -> exit"; "ms"; null),
		  row($boot; $runs; $c; "startup_wall"; "VMM start-up wall (boot timer)"; "ms";
			"n/a: QEMU has no boot timer (see startup_fork)"),
		  row($boot; $runs; $c; "startup_cpu"; "VMM start-up CPU (boot timer)"; "ms";
			"n/a: QEMU has no boot timer; its CPU time at the first KVM_RUN is not traced"),
		  row($boot; $runs; $c; "init_wall"; "start -> init, wall (boot timer)"; "ms";
			"n/a: QEMU has no boot timer (see ready)"),
		  row($boot; $runs; $c; "init_cpu"; "start -> init, CPU (boot timer)"; "ms";
			"n/a: QEMU has no boot timer"),
		  row($boot; $runs; $c; "init_since_run"; "first KVM_RUN -> init (boot timer)"; "ms";
			"n/a: QEMU has no boot timer")]
		+ [row($mem; $runs; "1x128M"; "startup_fork"; "fork -> first KVM_RUN (traced)"; "ms"; null),
		  row($mem; $runs; "1x128M"; "rss"; "resident memory at idle"; "MiB"; null),
		  row($mem; $runs; "1x128M"; "guest"; "guest RAM touched"; "MiB"; null),
		  row($mem; $runs; "1x128M"; "overhead"; "memory overhead (RSS - guest)"; "MiB"; null),
		  row($density; $druns; "1x128M"; "vms_per_s"; "density: \($dvms) at once, VMs/s"; "VMs/s"; null),
		  row($density; $druns; "1x128M"; "peak"; "density: peak host memory"; "MiB"; null),
		  row($density; $druns; "1x128M"; "wall"; "density: start -> last exit"; "ms"; null)])}
	' <"$results" >"$dir/boot.json"

echo
printf '%-46s %6s %10s %10s %12s\n' "boot (median)" unit kvmini QEMU kvmini/QEMU
jq -r '.rows[] | [.config + " " + .description, .unit, .kvmini // "n/a", .qemu // "n/a",
	.ratio // "-"] | @tsv' "$dir/boot.json" | while IFS=$'\t' read -r d u k q r; do
	digits=1
	[ "$u" != VMs/s ] || digits=2
	[ "$k" = n/a ] || k=$(printf '%.*f' "$digits" "$k")
	[ "$q" = n/a ] || q=$(printf '%.*f' "$digits" "$q")
	[ "$r" = - ] || r=$(printf '%.2f' "$r")
	printf '%-46s %6s %10s %10s %12s\n' "$d" "$u" "$k" "$q" "$r"
done
jq -r '.rows[] | .config as $c
	| (.kvmini_error // empty | "bench: boot: \($c) kvmini: \(.)"),
	(.qemu_error // empty | select(startswith("n/a: QEMU has no") | not) | "bench: boot: \($c) QEMU: \(.)")' \
	"$dir/boot.json" | awk '!seen[$0]++'
jq -r '.rows[] | select(.metric == "vms_per_s") | .short_runs[]?
	| "bench: boot: density: \(.vmm) run \(.run): \(.good) of '"$dvms"' VMs booted and exited 0; VMs/s counts those"' \
	"$dir/boot.json"
jq -r '[.rows[] | select(.metric == "ready" or .metric == "rss" or .metric == "wall")
	| .failed_runs[] | "bench: boot: failed run: \(.vmm) run \(.run): \(.error)"] | unique | .[]' "$dir/boot.json"
# The goals, each with the figure it rests on.
jq -r 'def f: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
	def goal($what; $x; $ok; $unit): "bench: boot: goal \($what): " + (if $x == null
		then "not measured" elif $ok then "met" else "missed" end) + " (\($x | f)\($unit))";
	.goals as $g | .rows as $r | def get($c; $m): [$r[] | select(.config == $c and .metric == $m)][0];
	(("1x128M", "2x512M") as $c
	 | (get($c; "ready").ratio as $x | goal("\($c) boot to init <= \($g.ready_ratio_max) x QEMU";
		$x; $x <= $g.ready_ratio_max; "")),
	   (get($c; "outside").ratio as $x | goal("\($c) time outside the guest kernel <= \($g.outside_ratio_max) x QEMU";
		$x; $x <= $g.outside_ratio_max; "")),
	   (get($c; "startup_wall").kvmini as $x | goal("\($c) VMM start-up <= \($g.startup_wall_ms_max) ms wall";
		$x; $x <= $g.startup_wall_ms_max; " ms"))),
	(get("1x128M"; "overhead").kvmini as $x | goal("memory overhead <= \($g.overhead_mib_max) MiB";
		$x; $x <= $g.overhead_mib_max; " MiB")),
	(get("1x128M"; "vms_per_s").ratio as $x | goal("density ahead of QEMU"; $x; $x > $g.density_ratio_min;
		" x QEMU VMs/s"))' "$dir/boot.json"
jq -r 'def f: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
	.goals.seccomp_ratio_max as $m | .seccomp[]
	| "bench: boot: seccomp: \(.config) \(.description): \(.filtered | f) ms filtered, \(.unfiltered | f) ms with --seccomp off, ratio \(if .ratio == null then "n/a" else (.ratio * 1000 | round / 1000 | tostring) end) (goal <= \($m): \(if .ratio == null then "not measured" elif .ratio <= $m then "met" else "missed" end))"' \
	"$dir/boot.json"
echo "bench: boot: kvmini/QEMU is a ratio: below 1 means kvmini is faster or smaller, except VMs/s"
echo "bench: boot: both VMMs ran ${where:-nowhere (not measured)}; medians of $runs runs (density: $druns runs of $dvms VMs)"
echo "bench: boot: results in $dir/boot.json"
