#!/bin/bash
# bench/run.sh: kvmini's benchmarks, each measured against a reference tool in the same run.
#
#   bench/run.sh DIR     DIR holds the benchmark programs (build/bench); results.json goes there
#
# Environment:
#   BENCH_SECONDS  run time of one run (5)
#   BENCH_ROUNDS   runs per row and tool, alternating the tools; the best run counts (3)
#   BENCH_SIZE     disk image size, a multiple of 1M (1G)
#   BENCH_DIR      where the image is created (${TMPDIR:-/tmp}); removed afterwards
#   BENCH_STRICT   1: exit 1 when a target is missed (the default only reports it)
#   BENCH_DISK     0: skip the disk benchmark
#   BENCH_NET      0: skip the network benchmark (bench/net.sh; its BENCH_NET_* settings)
#   BENCH_BOOT     0: skip the boot benchmark (bench/boot.sh; its BENCH_BOOT_* and BENCH_DENSITY_* settings)
#   BENCH_CTL      0: skip the control-plane benchmark (bench/ctl.sh; its BENCH_CTL_* settings)
#   BENCH_SANDBOX  0: skip the sandbox benchmark (bench/sandbox.sh; its BENCH_SB_* settings)
#
# Disk (virtio-blk): build/bench/blk_bench drives the device model through its virtio-mmio
# registers with fake guest memory, real io_uring and a real image file; fio's io_uring engine
# then runs the same workload on the same file. Both use buffered I/O (the device model does
# readv/writev without O_DIRECT, so fio runs with --direct=0), both hit the same page cache,
# and fio is told not to drop that cache (--invalidate=0) and to pick offsets uniformly with
# repeats (--norandommap), as blk_bench does. Dirty pages of a write row are synced before the
# next run starts, outside the timed window. Target: kvmini >= 0.9 x fio at queue depth 32.
# blk_bench runs the device's I/O thread under its seccomp filter (-s), as `kvmini run` does,
# and once more without (kvmini --seccomp off) in the same rounds: the filter's cost, goal
# within 2%.
#
# Network (virtio-net): bench/net.sh boots the same guest with kvmini and with QEMU's
# virtio-net (userspace backend) and measures iperf3 TCP throughput each way (inside the
# nested machine on hosts without hardware virtualization); its report becomes the "net"
# section of results.json. Target: kvmini >= 1.0 x QEMU in both directions.
#
# Boot (bench/boot.sh): the same guest booted by kvmini and by QEMU's microvm: process start to
# the guest init's first line and to VMM exit, the time outside the guest kernel, VMM
# start-up, memory overhead at idle and density (20 VMs at once), medians (inside the nested
# machine on hosts without hardware virtualization); its report becomes the "boot" section of
# results.json. Its goals are reported (met or missed), never a strict failure.
#
# Control plane (bench/ctl.sh): the same guest run by `kvmini run --detach` and by QEMU's
# microvm with QMP: state query, pause and resume latency (median, p99) and the VMM's memory
# overhead with its control server up; its report becomes the "ctl" section. Goals reported.
set -euo pipefail

die() {
	echo "bench: $*" >&2
	exit 1
}

dir=${1:?usage: bench/run.sh DIR}
secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
size_arg=${BENCH_SIZE:-1G}
img_dir=${BENCH_DIR:-${TMPDIR:-/tmp}}
target=0.9
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || die "BENCH_SECONDS=$secs is not a whole number of seconds"
[[ $rounds =~ ^[0-9]+$ && $rounds -gt 0 ]] || die "BENCH_ROUNDS=$rounds is not a positive number"

# rw:bs:qd, with fio's rw names. 1 MiB sequential rows use QD 32 too: 32 x 1 MiB in flight.
BLK_WORKLOADS="randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32 read:1m:32 write:1m:32"

for tool in fio jq findmnt; do
	command -v "$tool" >/dev/null || die "$tool is missing (./setup.sh --deps-only installs it)"
done
[ -x "$dir/blk_bench" ] || die "$dir/blk_bench is missing (run make bench)"

size=$(numfmt --from=iec "$size_arg") || die "BENCH_SIZE=$size_arg is not a size"
if [ "$size" -le 0 ] || [ $((size % (1 << 20))) -ne 0 ]; then
	die "BENCH_SIZE=$size_arg is not a positive multiple of 1M"
fi
avail=$(df --output=avail -B1 "$img_dir" | tail -n 1)
[ "$avail" -gt $((size + (256 << 20))) ] ||
	die "$img_dir has $(numfmt --to=iec "$avail") free, too little for a $size_arg image"
mem_avail=$(awk '/^MemAvailable:/ { printf "%.0f", $2 * 1024 }' /proc/meminfo)
if [ "$size" -gt $((mem_avail / 2)) ]; then
	echo "bench: note: a $size_arg image does not stay in the page cache; reads hit the disk" >&2
fi

work=$(mktemp -d "$img_dir/kvmini-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
img=$work/disk.img

fs="$(findmnt -n -o FSTYPE -T "$img_dir") on $(findmnt -n -o SOURCE -T "$img_dir")"
machine=$(jq -n --arg nproc "$(nproc)" \
	--arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
	--arg kernel "$(uname -r)" --arg fs "$fs" \
	--arg fio "$(fio --version)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
	'{nproc: ($nproc | tonumber), cpu: $cpu, kernel: $kernel, image_fs: $fs, fio: $fio,
	  loadavg_at_start: $load}')
echo "bench: $(jq -r '"\(.nproc) CPUs (\(.cpu)), Linux \(.kernel), \(.fio)"' <<<"$machine")"
# phase NAME: a progress line with the time since make bench started.
t_bench=$SECONDS
phase() { echo "bench: == $1 (at $((SECONDS - t_bench)) s)"; }

strict_fail=0
if [ "${BENCH_DISK:-1}" != 0 ]; then
	phase "disk: kvmini vs fio"
	echo "bench: image $size_arg on $fs in $img_dir, best of $rounds runs of $secs s per row" \
		"and tool, load average $(jq -r .loadavg_at_start <<<"$machine")"

	# Pre-fill with random bytes so no block is a hole (reading a hole is cheaper than data).
	dd if=/dev/urandom of="$img" bs=1M count=$((size >> 20)) conv=fsync status=none

	# One fio run of $spec on the image: fio's JSON report in $work/fio.json.
	run_fio() {
		fio --name=kvmini-bench --filename="$img" --size="$size" --ioengine=io_uring \
			--direct=0 --invalidate=0 --norandommap --randrepeat=0 --rw="$rw" --bs="$bs" \
			--iodepth="$qd" --time_based --runtime="$secs" --output-format=json \
			--output="$work/fio.json" >/dev/null || die "fio $spec failed"
		jq -c --arg rw "$rw" '.jobs[0] | (if ($rw | test("read")) then .read else .write end)
			| {iops: .iops, mbps: (.bw_bytes / 1e6), ios: .total_ios,
			   seconds: (.runtime / 1000)}' "$work/fio.json"
	}

	run_kvmini() {
		"$dir/blk_bench" -t "$secs" -s "$img" "$spec" || die "blk_bench -s $spec failed"
	}

	run_kvmini_off() {
		"$dir/blk_bench" -t "$secs" "$img" "$spec" || die "blk_bench $spec failed"
	}

	rows=()
	for spec in $BLK_WORKLOADS; do
		IFS=: read -r rw bs qd <<<"$spec"
		k_runs=() o_runs=() f_runs=()
		for ((round = 0; round < rounds; round++)); do
			# Rotate which tool goes first; sync a write row's dirty pages in between.
			case $((round % 3)) in
			0) order="kvmini kvmini_off fio" ;;
			1) order="kvmini_off fio kvmini" ;;
			*) order="fio kvmini kvmini_off" ;;
			esac
			for tool in $order; do
				sync "$img"
				out=$("run_$tool") || exit 1
				case $tool in
				kvmini) k_runs+=("$out") ;;
				kvmini_off) o_runs+=("$out") ;;
				*) f_runs+=("$out") ;;
				esac
			done
		done
		row=$(jq -n -c --arg spec "$spec" --argjson k "$(printf '%s\n' "${k_runs[@]}" | jq -s .)" \
			--argjson o "$(printf '%s\n' "${o_runs[@]}" | jq -s .)" \
			--argjson f "$(printf '%s\n' "${f_runs[@]}" | jq -s .)" '
			$k[0] as $k0
			| ($k0.rw | sub("^read$"; "seqread") | sub("^write$"; "seqwrite")) as $name
			| (if $k0.bs < 65536 then "iops" else "mbps" end) as $metric
			| ($k | max_by(.[$metric])) as $kb | ($f | max_by(.[$metric])) as $fb
			| ($o | max_by(.[$metric])) as $ob
			| {workload: "\($name) \($spec | split(":")[1]) QD\($k0.qd)", spec: $spec,
			   rw: $k0.rw, bs: $k0.bs, qd: $k0.qd, metric: $metric,
			   kvmini: $kb[$metric], fio: $fb[$metric],
			   ratio: (if $fb[$metric] > 0 then $kb[$metric] / $fb[$metric] else null end),
			   seccomp_off: $ob[$metric],
			   seccomp_ratio: (if $ob[$metric] > 0 then $kb[$metric] / $ob[$metric] else null end),
			   kvmini_runs: $k, seccomp_off_runs: $o, fio_runs: $f}')
		rows+=("$row")
		jq -r '"bench: \(.workload): kvmini \([.kvmini_runs[][.metric] | floor])"
			+ " --seccomp off \([.seccomp_off_runs[][.metric] | floor])"
			+ " fio \([.fio_runs[][.metric] | floor]) \(.metric)"' <<<"$row"
	done

	mkdir -p "$dir"
	printf '%s\n' "${rows[@]}" | jq -s --argjson machine "$machine" --arg secs "$secs" \
		--arg rounds "$rounds" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
		--arg size "$size_arg" --argjson target "$target" '
		{machine: ($machine + {loadavg_at_end: $load_end}), image_size: $size,
		 seconds_per_run: ($secs | tonumber), runs: ($rounds | tonumber), best_run_counts: true,
		 fio_options: "--ioengine=io_uring --direct=0 --invalidate=0 --norandommap --time_based",
		 target: {qd: 32, min_ratio: $target}, blk: .}' >"$dir/results.json"

	echo
	jq -r '.blk[] | [.workload, (if .metric == "iops" then "IOPS" else "MB/s" end), (.kvmini | floor),
		(.fio | floor), (.ratio // "-"), (.seccomp_off | floor), (.seccomp_ratio // "-")] | @tsv' \
		"$dir/results.json" | {
		printf '%-20s %-5s %10s %10s %11s %12s %9s\n' workload unit kvmini fio kvmini/fio \
			"seccomp off" "on/off"
		while IFS=$'\t' read -r name unit k f ratio o sratio; do
			[ "$ratio" = - ] || ratio=$(printf '%.2f' "$ratio")
			[ "$sratio" = - ] || sratio=$(printf '%.3f' "$sratio")
			printf '%-20s %-5s %10s %10s %11s %12s %9s\n' "$name" "$unit" "$k" "$f" "$ratio" \
				"$o" "$sratio"
		done
	}
	sworst=$(jq -r '[.blk[] | .seccomp_ratio // empty] | min
		| if . == null then "n/a" else . * 1000 | round / 1000 end' "$dir/results.json")
	echo "bench: disk: seccomp: the filtered device over --seccomp off, lowest ratio $sworst" \
		"(goal >= 0.98: $(jq -r '[.blk[] | .seccomp_ratio // 0] | if min >= 0.98 then "met" else "missed" end' "$dir/results.json"))"
	echo

	missed=$(jq -r --argjson t "$target" \
		'[.blk[] | select(.qd == 32 and (.ratio // 0) < $t) | .workload] | join(", ")' \
		"$dir/results.json")
	if [ -n "$missed" ]; then
		echo "bench: target missed (kvmini/fio < $target at QD 32): $missed"
		strict_fail=1
	else
		echo "bench: target met: kvmini/fio >= $target on every QD 32 row"
	fi
else
	echo "bench: disk: skipped (BENCH_DISK=0)"
	mkdir -p "$dir"
	jq -n --argjson machine "$machine" '{machine: $machine, blk: [], blk_skipped: "BENCH_DISK=0"}' >"$dir/results.json"
fi

# run_part NAME: run bench/NAME.sh, which prints its own table and writes NAME.json (n/a rows
# when it cannot measure), and merge that into results.json as "NAME". 1 if no NAME.json.
run_part() {
	echo
	if [ "$1" = sandbox ]; then phase "$1: kvmini exec vs plain kvmini boots"
	else phase "$1: kvmini vs QEMU microvm"; fi
	rm -f "$dir/$1.json"
	"$(cd "$(dirname "$0")" && pwd)/$1.sh" "$dir" ||
		echo "bench: $1: bench/$1.sh failed (exit status $?)"
	[ -f "$dir/$1.json" ] || return 1
	jq --arg k "$1" --slurpfile part "$dir/$1.json" '. + {($k): $part[0]}' "$dir/results.json" \
		>"$dir/results.json.tmp" && mv -f "$dir/results.json.tmp" "$dir/results.json"
}

# Network rows, merged as "net"; their target counts for BENCH_STRICT.
if [ "${BENCH_NET:-1}" != 0 ]; then
	if ! run_part net || ! jq -e '.net as $n | [$n.rows[] | select((.ratio // 0) <
		$n.target.min_ratio)] | length == 0' "$dir/results.json" >/dev/null; then
		strict_fail=1
	fi
fi

# Boot rows, merged as "boot". Goals reported only: no strict failure.
if [ "${BENCH_BOOT:-1}" != 0 ]; then
	run_part boot || true
fi

# Control-plane rows, merged as "ctl". Goals reported only.
if [ "${BENCH_CTL:-1}" != 0 ]; then
	run_part ctl || true
fi

# Sandbox rows (kvmini exec against plain boots), merged as "sandbox". Goals reported only.
if [ "${BENCH_SANDBOX:-1}" != 0 ]; then
	run_part sandbox || true
fi
phase "done"
echo "bench: results in $dir/results.json"
if [ "${BENCH_STRICT:-0}" = 1 ] && [ "$strict_fail" = 1 ]; then
	exit 1
fi
