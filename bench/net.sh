#!/bin/bash
# bench/net.sh: guest<->host TCP throughput (iperf3), kvmini's virtio-net vs QEMU's
# (microvm, virtio-net-device on a tap, userspace backend: vhost=off), same run, same host.
#
#   bench/net.sh DIR     writes DIR/net.json (DIR/net.log: the run's console log), prints a table
#
# Environment:
#   BENCH_KVMINI          kvmini binary (default DIR/../kvmini)
#   BENCH_GUEST_DIR       bzImage and initramfs.cpio.gz from `make guests` (DIR/../guest)
#   BENCH_NET_SECONDS     iperf3 -t of one run (10)
#   BENCH_NET_ROUNDS      runs per direction and VMM, alternating the VMM order; best counts (3)
#   BENCH_NET_MODE        auto, direct or nested (auto: tests/nested/hw-virt.sh decides)
#   QEMU                  QEMU binary for the guest VMM (default qemu-system-x86_64)
#   NESTED_*              settings of tests/nested/run.sh
#
# Both VMMs boot the same bzImage with the same initramfs (guests/init plus /usr/bin/iperf3
# and its libraries, bench/net-initramfs.sh), 1 vCPU and 256 MiB. The guest is the iperf3
# client against `iperf3 -s` on the host end of its tap (10.0.0.1/24, in a network
# namespace): tx = guest->host, rx = host->guest (-R). The figure is the client report's
# end.sum_received.bits_per_second. Without hardware virtualization both VMMs run inside
# the nested machine (tests/nested/run.sh: L2 is TCG-emulated), so the absolute numbers are
# tiny and only the ratio means something. Failures become "n/a: REASON" rows, never a
# non-zero exit (except for usage errors). Target: kvmini/QEMU >= 1.0.
set -euo pipefail

dir=${1:?usage: bench/net.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
kvmini=${BENCH_KVMINI:-$dir/../kvmini}
gdir=${BENCH_GUEST_DIR:-$dir/../guest}
secs=${BENCH_NET_SECONDS:-10}
rounds=${BENCH_NET_ROUNDS:-3}
mode=${BENCH_NET_MODE:-auto}
qemu=${QEMU:-qemu-system-x86_64}
datadir=${QEMU_DATADIR:-/usr/share/qemu}
target=1.0
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "bench: BENCH_NET_SECONDS=$secs is not a whole number" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ && $rounds -gt 0 ]] || { echo "bench: BENCH_NET_ROUNDS=$rounds is not a positive number" >&2; exit 2; }
command -v jq >/dev/null || { echo "bench: jq is missing (./setup.sh --deps-only installs it)" >&2; exit 2; }
mkdir -p "$dir"

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-netbench-XXXXXX")
trap 'rm -rf "$work"' EXIT
results=$work/results # NETBENCH_RESULT lines
: >"$results"
where="" qemu_version="" reason="" stall=""
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

# prepare: fill $work/l2 with what net-l2.sh needs; sets $reason and fails if it cannot.
prepare() {
	local t p
	bench_need_guest || return 1
	for t in iperf3 ip jq; do
		p=$(command -v "$t") || { reason="$t is missing (./setup.sh --deps-only installs it)"; return 1; }
		cp "$p" "$work/l2/tools/"
	done
	cp "$gdir/bzImage" "$work/l2/bzImage"
	"$here/net-initramfs.sh" "$gdir/initramfs.cpio.gz" "$work/l2/initramfs-net.cpio.gz" \
		"$(command -v iperf3)" >"$work/initramfs.log" 2>&1 ||
		{ reason="bench/net-initramfs.sh failed: $(tail -n 1 "$work/initramfs.log")"; return 1; }
}

if prepare; then
	# Under TCG: 6 runs a round (2 directions x kvmini, kvmini --seccomp off, QEMU), each a
	# boot and iperf3 -t $secs.
	NESTED_TIMEOUT=${NESTED_TIMEOUT:-$((600 + rounds * 6 * (secs + 90)))} \
		bench_run_l2 net NETBENCH_RESULT net-l2.sh "$secs" "$rounds"
fi

# One row per direction: best run of each VMM, their ratio, every run, the failures.
rows=$(jq -n -R -c --arg reason "$reason" --arg stall "$stall" --argjson rounds "$rounds" '
	[inputs | split(" ") | {vmm: .[1], dir: .[2], round: (.[3] | tonumber),
	  value: (.[4:] | join(" "))}] as $all
	| [ {dir: "tx", what: "guest->host"}, {dir: "rx", what: "host->guest"} ][]
	| .dir as $d
	| ([$all[] | select(.dir == $d)]) as $runs
	# A row whose runs a stalled nested machine cut short is n/a, never a number.
	| def cut($v): $stall != "" and ([$runs[] | select(.vmm == $v)] | length) < $rounds;
	  def best($v): if cut($v) then null
		else [$runs[] | select(.vmm == $v) | .value | tonumber? | . / 1e9] | max end;
	  def errs($v): [$runs[] | select(.vmm == $v and (.value | startswith("n/a"))) | .value]
		| if cut($v) then "n/a: \($stall)" elif length > 0 then .[0]
		  elif $reason != "" then "n/a: \($reason)" else "n/a: no run" end;
	  def all($v): [$runs[] | select(.vmm == $v) | (.value | tonumber? / 1e9) // .value];
	{direction: $d, description: .what, kvmini_gbps: best("kvmini"), qemu_gbps: best("qemu")}
	| . + {ratio: (if .kvmini_gbps != null and (.qemu_gbps // 0) > 0
		then .kvmini_gbps / .qemu_gbps else null end),
	  kvmini_error: (if .kvmini_gbps == null then errs("kvmini") else null end),
	  qemu_error: (if .qemu_gbps == null then errs("qemu") else null end),
	  kvmini_runs: all("kvmini"), qemu_runs: all("qemu"),
	  # The filters cost: kvmini (--seccomp kill) over kvmini --seccomp off, same run.
	  seccomp_off_gbps: best("kvmini-off"), seccomp_off_runs: all("kvmini-off")}
	| . + {seccomp_ratio: (if .kvmini_gbps != null and (.seccomp_off_gbps // 0) > 0
		then .kvmini_gbps / .seccomp_off_gbps else null end)}' <"$results")

printf '%s\n' "$rows" | jq -s --arg where "$where" --arg mode "$mode" --arg secs "$secs" \
	--arg rounds "$rounds" --arg qemu "$qemu_version" --argjson target "$target" '
	{tool: "iperf3", where: $where, mode: $mode, seconds_per_run: ($secs | tonumber),
	 runs: ($rounds | tonumber), best_run_counts: true, guest: {vcpus: 1, mem: "256M"},
	 metric: "end.sum_received.bits_per_second (Gbit/s)",
	 qemu: {version: $qemu, setup: "microvm, virtio-net-device, -netdev tap,vhost=off"},
	 target: {min_ratio: $target}, rows: .}' >"$dir/net.json"

echo
printf '%-22s %12s %12s %12s\n' direction "kvmini Gb/s" "QEMU Gb/s" kvmini/QEMU
jq -r '.rows[] | [.direction + " (" + .description + ")", .kvmini_gbps // "n/a",
	.qemu_gbps // "n/a", .ratio // "-"] | @tsv' "$dir/net.json" | while IFS=$'\t' read -r d k q r; do
	[ "$k" = n/a ] || k=$(printf '%.3f' "$k")
	[ "$q" = n/a ] || q=$(printf '%.3f' "$q")
	[ "$r" = - ] || r=$(printf '%.2f' "$r")
	printf '%-22s %12s %12s %12s\n' "$d" "$k" "$q" "$r"
done
jq -r '.rows[] | .direction as $d | (.kvmini_error // empty | "bench: net: \($d) kvmini: \(.)"),
	(.qemu_error // empty | "bench: net: \($d) QEMU: \(.)")' "$dir/net.json"
jq -r 'def f: if . == null then "n/a" else (. * 1000 | round / 1000 | tostring) end;
	.rows[] | "bench: net: seccomp: \(.direction) \(.kvmini_gbps | f) Gb/s filtered, \(.seccomp_off_gbps | f) Gb/s with --seccomp off, ratio \(.seccomp_ratio | f) (goal >= 0.98: \(if .seccomp_ratio == null then "not measured" elif .seccomp_ratio >= 0.98 then "met" else "missed" end))"' \
	"$dir/net.json"
echo "bench: net: both VMMs ran ${where:-nowhere (not measured)}; iperf3 -t $secs, best of $rounds"
missed=$(jq -r --argjson t "$target" '[.rows[] | select((.ratio // 0) < $t) | .direction]
	| join(", ")' "$dir/net.json")
if [ -n "$missed" ]; then
	echo "bench: net: target missed or not measured (kvmini/QEMU < $target): $missed"
else
	echo "bench: net: target met: kvmini/QEMU >= $target in both directions"
fi
echo "bench: net: results in $dir/net.json"
