#!/bin/bash
# tests/nested/soak.sh - count nested-machine wedges over many VM starts.
#
#   tests/nested/soak.sh RUNS BOOT_RUNS [OUT_DIR]
#
# Starts the nested machine RUNS times, one after another. In each, the boot benchmark's
# loop (bench/boot-l2.sh, boot phase only) boots the guest BOOT_RUNS x 4 times: kvmini and
# QEMU microvm, 1 vCPU/128 MiB and 2 vCPUs/512 MiB, `true` in the guest. Each nested run is
# one line:
#   soak: run I: ok|stalled|hung|failed, N of M boots, T s[, wedged after boot K]
# and the last line sums them up:
#   soak: RUNS runs, S stalled, H hung, F failed; B boots; median run T s, total T s (SETTINGS)
# where SETTINGS are the NESTED_KEEPER, NESTED_ACCEL and NESTED_MEM in force. "stalled" means
# the stall watchdog of run.sh caught a wedged L2: its console, heartbeat included, silent
# for NESTED_STALL (default 120 s here), or a CPU it reports stuck for NESTED_LOCKUP. Each run's console log is kept in OUT_DIR (default build/soak).
# Exit status: 0 when no run stalled, hung or failed, 1 otherwise, 2 on a usage error.
#
# Needs build/kvmini and build/guest (make && make guests), or BENCH_KVMINI and
# BENCH_GUEST_DIR; QEMU and the nested machine's own settings (NESTED_*) as for make bench.
# Used to choose the nested machine's configuration: see README.md, "The wedge".
set -euo pipefail

if [ $# -lt 2 ] || ! [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]] || [ "$1" = 0 ] || [ "$2" = 0 ]; then
	echo "usage: $0 RUNS BOOT_RUNS [OUT_DIR]   (RUNS and BOOT_RUNS: positive numbers)" >&2
	exit 2
fi
soak_runs=$1
boot_runs=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${3:-$top/build/soak}
mkdir -p "$out"
dir=$out
kvmini=${BENCH_KVMINI:-$top/build/kvmini}
gdir=${BENCH_GUEST_DIR:-$top/build/guest}
qemu=${QEMU:-qemu-system-x86_64}
datadir=${QEMU_DATADIR:-/usr/share/qemu}
mode=nested
export NESTED_STALL=${NESTED_STALL:-120}
settings="NESTED_KEEPER=${NESTED_KEEPER:-1} NESTED_ACCEL=${NESTED_ACCEL:-tcg,thread=multi} NESTED_MEM=${NESTED_MEM:-2G} NESTED_STALL=$NESTED_STALL"

work=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-soak-XXXXXX")
trap 'rm -rf "$work"' EXIT
where="" qemu_version="" reason=""
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
bench_need_guest && bench_build_tool boottime && bench_build_tool density ||
	{ echo "soak: $reason" >&2; exit 2; }
cp "$gdir/bzImage" "$gdir/initramfs.cpio.gz" "$work/l2/"

boots_per_run=$((boot_runs * 4))
stalled=0 hung=0 failed=0 boots=0 times=()
t0=$EPOCHREALTIME
echo "soak: $soak_runs nested runs of $boots_per_run boots each ($settings)"
for ((i = 0; i < soak_runs; i++)); do
	ts=$EPOCHREALTIME
	NESTED_TIMEOUT=${NESTED_TIMEOUT:-$((300 + boots_per_run * 120))} \
		bench_run_l2 boot BOOTBENCH_ boot-l2.sh "$boot_runs" 1 1 boot >/dev/null
	secs=$(awk -v a="$ts" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
	times+=("$secs")
	cp "$dir/boot.log" "$out/run-$i.log"
	good=$(grep -c '^BOOTBENCH_RESULT [a-z]* [0-9x]*M [0-9]* [0-9]' "$out/run-$i.log" || true)
	done_boots=$(grep -c '^BOOTBENCH_RESULT ' "$out/run-$i.log" || true)
	boots=$((boots + done_boots))
	if grep -q '^nested: nested machine stalled' "$out/run-$i.log"; then
		what="stalled" stalled=$((stalled + 1))
	elif grep -q '^nested: nested machine hung' "$out/run-$i.log"; then
		what="hung" hung=$((hung + 1))
	elif [ "$good" != "$boots_per_run" ]; then
		what="failed" failed=$((failed + 1))
	else
		what="ok"
	fi
	line="soak: run $i: $what, $good of $boots_per_run boots, $secs s"
	[ "$what" = ok ] || [ "$what" = failed ] || line="$line, wedged after boot $done_boots"
	echo "$line"
done
total=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END {
	print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
echo "soak: $soak_runs runs, $stalled stalled, $hung hung, $failed failed; $boots boots;" \
	"median run $median s, total $total s ($settings)"
[ $((stalled + hung + failed)) = 0 ]
