#!/bin/bash
# bench/ctl.sh: control-plane latency and the VMM's memory with its control server running,
# kvmini's REST socket against QEMU's QMP, same run, same guest.
#
#   bench/ctl.sh DIR     writes DIR/ctl.json (DIR/ctl.log: the run's log), prints a table
#
# Environment:
#   BENCH_KVMINI       kvmini binary (default DIR/../kvmini)
#   BENCH_GUEST_DIR    bzImage and initramfs.cpio.gz from `make guests` (DIR/../guest)
#   BENCH_CTL_QUERIES  state queries per VMM (1000)
#   BENCH_CTL_PAUSES   pause/resume pairs per VMM (200)
#   BENCH_CTL_MODE     auto, direct or nested (auto: tests/nested/hw-virt.sh decides)
#   QEMU, CC, NESTED_* as for bench/boot.sh
#
# bench/ctl-l2.sh boots the guest (1 vCPU, 128 MiB, `sleep 600`) with `kvmini run --detach`
# and with QEMU's microvm (-qmp unix:...), and bench/ctl_bench.c times, on one connection
# each: GET /vm against QMP query-status, PUT /vm/pause (answered once paused) against QMP
# stop, PUT /vm/resume against QMP cont; median and p99 in microseconds. Then the memory
# overhead (resident minus the guest RAM's resident part) of each VMM with its control server
# up. Without hardware virtualization both run inside the nested machine: absolute times are
# TCG's, only the ratios mean something.
#
# Goals (issue 12; reported, never asserted): each latency <= 0.5 x QEMU, kvmini's overhead
# with the API server running <= 2 MiB.
set -euo pipefail

dir=${1:?usage: bench/ctl.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
kvmini=${BENCH_KVMINI:-$dir/../kvmini}
gdir=${BENCH_GUEST_DIR:-$dir/../guest}
queries=${BENCH_CTL_QUERIES:-1000}
pauses=${BENCH_CTL_PAUSES:-200}
mode=${BENCH_CTL_MODE:-auto}
qemu=${QEMU:-qemu-system-x86_64}
datadir=${QEMU_DATADIR:-/usr/share/qemu}
for v in queries pauses; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] ||
		{ echo "bench: BENCH_CTL_QUERIES and BENCH_CTL_PAUSES must be positive numbers" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "bench: jq is missing (./setup.sh --deps-only installs it)" >&2; exit 2; }
mkdir -p "$dir"
work=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-ctlbench-XXXXXX")
trap 'rm -rf "$work"' EXIT
: >"$work/results"
where="" qemu_version="" reason="" stall=""
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

if bench_need_guest && bench_build_tool ctl_bench; then
	cp "$gdir/bzImage" "$gdir/initramfs.cpio.gz" "$work/l2/"
	bench_run_l2 ctl CTLBENCH ctl-l2.sh "$queries" "$pauses"
fi

jq -n -R --arg reason "$reason" --arg stall "$stall" --arg where "$where" --arg qemu "$qemu_version" \
	--argjson queries "$queries" --argjson pauses "$pauses" '
	[inputs | split(" ") | select(length > 2)] as $l
	| def na($v): [$l[] | select(.[1] == $v and .[2] == "n/a:") | .[3:] | join(" ")][0];
	  def get($v; $op; $i): [$l[] | select(.[1] == $v and .[2] == $op) | .[$i] | tonumber][0];
	  def why($v): na($v) // (if $stall != "" then "n/a: \($stall)" elif $reason != ""
		then "n/a: \($reason)" else "n/a: not measured" end);
	  def row($op; $i; $what; $unit):
		{op: $op, description: $what, unit: $unit, kvmini: get("kvmini"; $op; $i),
		 qemu: get("qemu"; $op; $i)}
		| . + {ratio: (if .kvmini != null and (.qemu // 0) > 0 then .kvmini / .qemu else null end),
		       kvmini_error: (if .kvmini == null then why("kvmini") else null end),
		       qemu_error: (if .qemu == null then why("qemu") else null end)};
	{tool: "bench/ctl_bench.c (CLOCK_MONOTONIC, one connection per VMM), /proc/PID/smaps",
	 where: $where, qemu: $qemu, queries: $queries, pauses: $pauses,
	 goals: {latency_ratio_max: 0.5, overhead_mib_max: 2},
	 rows: [row("state"; 3; "state query median (GET /vm | query-status)"; "us"),
		row("state"; 4; "state query p99"; "us"),
		row("pause"; 3; "pause to paused median (PUT /vm/pause | stop)"; "us"),
		row("pause"; 4; "pause to paused p99"; "us"),
		row("resume"; 3; "resume to running median (PUT /vm/resume | cont)"; "us"),
		row("resume"; 4; "resume to running p99"; "us"),
		(row("overhead_kib"; 3; "memory overhead with the control server"; "MiB")
		 | .kvmini = (if .kvmini == null then null else .kvmini / 1024 end)
		 | .qemu = (if .qemu == null then null else .qemu / 1024 end)
		 | .ratio = (if .kvmini != null and (.qemu // 0) > 0 then .kvmini / .qemu else null end))]}
	' <"$work/results" >"$dir/ctl.json"

echo
printf '%-52s %4s %10s %10s %12s\n' "control plane" unit kvmini QEMU kvmini/QEMU
jq -r '.rows[] | [.description, .unit, .kvmini // "n/a", .qemu // "n/a", .ratio // "-"] | @tsv' \
	"$dir/ctl.json" | while IFS=$'\t' read -r d u k q r; do
	[ "$k" = n/a ] || k=$(printf '%.1f' "$k")
	[ "$q" = n/a ] || q=$(printf '%.1f' "$q")
	[ "$r" = - ] || r=$(printf '%.2f' "$r")
	printf '%-52s %4s %10s %10s %12s\n' "$d" "$u" "$k" "$q" "$r"
done
jq -r '.rows[] | (.kvmini_error // empty | "bench: ctl: kvmini: \(.)"), (.qemu_error // empty | "bench: ctl: QEMU: \(.)")' \
	"$dir/ctl.json" | awk '!seen[$0]++'
jq -r 'def f: if . == null then "n/a" else (. * 100 | round / 100 | tostring) end;
	.goals as $g | .rows[] |
	if .op == "overhead_kib" then
		"bench: ctl: goal memory overhead with the API server <= \($g.overhead_mib_max) MiB: "
		+ (if .kvmini == null then "not measured" elif .kvmini <= $g.overhead_mib_max then "met" else "missed" end)
		+ " (\(.kvmini | f) MiB)"
	else
		"bench: ctl: goal \(.description) <= \($g.latency_ratio_max) x QEMU: "
		+ (if .ratio == null then "not measured" elif .ratio <= $g.latency_ratio_max then "met" else "missed" end)
		+ " (\(.ratio | f))"
	end' "$dir/ctl.json"
echo "bench: ctl: both VMMs ran ${where:-nowhere (not measured)}; $queries state queries, $pauses pause/resume pairs each"
echo "bench: ctl: results in $dir/ctl.json"
