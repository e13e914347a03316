#!/bin/sh
# bench/sandbox-l2.sh: the measuring half of bench/sandbox.sh (POSIX sh: runs inside the nested
# machine, or directly on a host with hardware virtualization).
#
#   sh sandbox-l2.sh DIR RUNS MIB PAR SRUNS
#
# DIR holds kvmini, bzImage, initramfs.cpio.gz, initramfs-net.cpio.gz (with iperf3),
# sandbox.cpio.gz and tools/ (mkfs.erofs, ip, iperf3). Builds
# a root (static busybox), then measures, all with 1 vCPU and 128 MiB:
#   plain    RUNS x `kvmini run --cmdline "-- true"` to exit
#   exec     RUNS x `kvmini exec --rootfs ROOT -- true` to exit (the image cached beforehand),
#            alternated with the plain runs
#   stream   MIB MiB from the command's stdout (`dd if=/dev/zero`) into a file, wall time to
#            the VMM's exit (the file's size is checked after)
#   tcp      the same MIB MiB from a plain guest over virtio-net TCP (iperf3 -n) to the host
#            (SRUNS rounds of both, alternated; medians)
#   par      PAR plain runs at once, then PAR sandboxes at once: wall time for all of them and
#            the host's peak memory use during it (MemTotal - MemAvailable, sampled, minus its
#            value before)
#   calib    bench/calib.c's fixed kernel-heavy work (tools/calib), for the hardware estimate
# Times come from /proc/uptime (10 ms steps). Prints SBBENCH lines:
#   SBBENCH calib MS
#   SBBENCH plain|exec runs MEDIAN_MS MIN_MS MAX_MS
#   SBBENCH stream|tcp MIB MEDIAN_MS RUNS
#   SBBENCH par_plain|par_exec GOOD MS PEAK_KIB FAILED   (GOOD of PAR runs succeeded, MS to
#            the last good one's end)
# or "SBBENCH WHAT n/a: WHY"; progress lines start with "sandboxbench:".
dir=$1
runs=$2
mib=$3
par=$4
sruns=$5
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-sbbench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
export PATH="$dir/tools:$PATH" KVMINI_CACHE_DIR="$tmp/cache"
k=$dir/kvmini

now_ms() {
	read -r up _ </proc/uptime
	echo $(($(echo "$up" | tr -d .) * 10))
}

median() { # the median of the numbers on stdin
	sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

used_kib() {
	awk '/^MemTotal:/ { t = $2 } /^MemAvailable:/ { a = $2 } END { print t - a }' /proc/meminfo
}

root=$tmp/root
mkdir -p "$root/bin"
bb=$(command -v busybox)
case "$bb" in /*) ;; *) bb=/bin/busybox ;; esac
cp "$bb" "$root/bin/busybox"
for a in sh true dd cat; do ln -s busybox "$root/bin/$a"; done

plain() {
	"$k" run --kernel "$dir/bzImage" --initrd "$dir/initramfs.cpio.gz" --mem 128M \
		--cmdline "-- true" </dev/null >/dev/null 2>"${SB_ERR:-$tmp/plain.err}"
}
sandbox() {
	"$k" exec --kernel "$dir/bzImage" --initrd "$dir/sandbox.cpio.gz" --mem 128M \
		--console-log "${SB_CONSOLE:-$tmp/exec.console}" --rootfs "$root" -- "$@" </dev/null 2>"${SB_ERR:-$tmp/exec.err}"
}

# timed NAME FN I: run I of FN, its milliseconds appended to $tmp/NAME.ms; on failure, says why
# (and the end of the console goes to stderr).
timed() {
	t0=$(now_ms)
	if ! $2 >/dev/null; then
		echo "run $3 failed: $(tail -n 1 "$tmp/$1.err" 2>/dev/null)"
		[ ! -s "$tmp/$1.console" ] ||
			tr -d '\r' <"$tmp/$1.console" | tail -n 15 | sed 's/^/sandboxbench: console: /' >&2
		return
	fi
	echo $(($(now_ms) - t0)) >>"$tmp/$1.ms"
}

# row NAME WHY: "SBBENCH NAME RUNS MEDIAN MIN MAX", or n/a with WHY.
row() {
	if [ -n "$2" ]; then
		echo "SBBENCH $1 n/a: $2"
	else
		echo "SBBENCH $1 $runs $(median <"$tmp/$1.ms") $(sort -n "$tmp/$1.ms" | head -n 1) $(sort -n "$tmp/$1.ms" | tail -n 1)"
	fi
}

exec_true() { sandbox true; }

if [ -x "$dir/tools/calib" ]; then
	echo "SBBENCH calib $("$dir/tools/calib" | awk '$1 == "CALIB" { print $2 }')"
fi
echo "sandboxbench: building the root image" >&2
sandbox true >/dev/null || echo "sandboxbench: the first sandbox failed: $(tail -n 2 "$tmp/exec.err")" >&2
# Alternated, so that the nested machine's drift (its boots take 1.0 to 1.7 s from one machine
# to the next, and move within one) touches both series alike. A series stops at its first
# failure, which its row reports.
echo "sandboxbench: $runs plain boots and $runs sandboxes, alternated" >&2
: >"$tmp/plain.ms"
: >"$tmp/exec.ms"
plain_why="" exec_why="" i=0
while [ $i -lt "$runs" ]; do
	[ -n "$plain_why" ] || plain_why=$(timed plain plain $i)
	[ -n "$exec_why" ] || exec_why=$(timed exec exec_true $i)
	i=$((i + 1))
done
row plain "$plain_why"
row exec "$exec_why"

# stream_once: one MIB MiB stream from a sandbox's stdout into a file (not a pipe: busybox
# `wc -c` reading the pipe was the bottleneck, 10-11 s for 256 MiB where the same stream into
# a file took 3.6-5 s; iperf3's server, which only receives, is not one for the TCP row).
# Appends its milliseconds to $tmp/stream.ms, or says why it failed on stdout.
stream_once() {
	t0=$(now_ms)
	sandbox dd if=/dev/zero bs=1M count="$mib" >"$tmp/stream.out"
	t1=$(now_ms)
	got=$(wc -c <"$tmp/stream.out")
	rm -f "$tmp/stream.out"
	if [ "$got" = $((mib * 1048576)) ]; then
		echo $((t1 - t0)) >>"$tmp/stream.ms"
	else
		echo "$got bytes arrived of $((mib * 1048576)): $(tail -n 1 "$tmp/exec.err")"
	fi
}

# tcp_once: the same bytes over virtio-net TCP: a plain guest (initramfs-net.cpio.gz, with
# iperf3) on tap $tap (vnet_hdr, 10.0.0.1/24 on the host end) sends exactly MIB MiB with
# `iperf3 -c -n` to a one-off `iperf3 -s -1` on the host; wall time from the VMM's start to
# its exit, boot included as for the stream (busybox nc moved 2.7 MiB/s here, iperf3 26).
# Appends to $tmp/tcp.ms, or says why it failed.
tcp_once() {
	"$dir/tools/iperf3" -s -1 -B 10.0.0.1 >"$tmp/iperf.server" 2>&1 &
	spid=$!
	sleep 1
	t0=$(now_ms)
	"$k" run --kernel "$dir/bzImage" --initrd "$dir/initramfs-net.cpio.gz" --mem 128M \
		--net tap=$tap --cmdline "kvmini.ip=10.0.0.2/24 -- iperf3 -c 10.0.0.1 -n ${mib}M -l 1M \
		>/dev/null; echo IPERF_STATUS=\$?" </dev/null >"$tmp/tcp.out" 2>"$tmp/tcp.err"
	st=$?
	t1=$(now_ms)
	kill "$spid" 2>/dev/null # a guest that never connected leaves it waiting
	wait "$spid"
	sst=$?
	if [ "$st" = 0 ] && [ "$sst" = 0 ] && tr -d '\r' <"$tmp/tcp.out" | grep -q '^IPERF_STATUS=0$'; then
		echo $((t1 - t0)) >>"$tmp/tcp.ms"
	else
		echo "VMM exit $st, iperf3 server $sst, guest $(tr -d '\r' <"$tmp/tcp.out" | grep IPERF_STATUS)"
	fi
}

# STREAM_RUNS rounds, the stream and the TCP transfer alternated so that the nested machine's
# drift touches both alike; medians. A failed run is reported and the rest go on.
echo "sandboxbench: $mib MiB through a sandbox's stdout, then over virtio-net TCP (iperf3), $sruns rounds" >&2
modprobe tun 2>/dev/null
[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; } 2>/dev/null
tap=kvsbench0
ip=$dir/tools/ip # iproute2's, by path: busybox sh would run its own ip applet (no tuntap)
tcp_why=""
if [ ! -f "$dir/initramfs-net.cpio.gz" ] || [ ! -x "$dir/tools/iperf3" ]; then
	tcp_why="no initramfs-net.cpio.gz or iperf3 (bench/sandbox.sh makes them)"
elif ! "$ip" tuntap add dev $tap mode tap vnet_hdr 2>"$tmp/tcp.err" ||
	! "$ip" addr add 10.0.0.1/24 dev $tap 2>>"$tmp/tcp.err" ||
	! "$ip" link set $tap up 2>>"$tmp/tcp.err"; then
	tcp_why="cannot set up tap $tap: $(tail -n 1 "$tmp/tcp.err")"
fi
: >"$tmp/stream.ms"
: >"$tmp/tcp.ms"
stream_why="" tcp_fail="" i=0
while [ $i -lt "$sruns" ]; do
	w=$(stream_once)
	[ -z "$w" ] || { stream_why=$w; echo "sandboxbench: stream round $i failed: $w" >&2; }
	if [ -z "$tcp_why" ]; then
		w=$(tcp_once)
		[ -z "$w" ] || { tcp_fail=$w; echo "sandboxbench: TCP round $i failed: $w" >&2; }
	fi
	i=$((i + 1))
done
[ -z "$tcp_why" ] && "$ip" link del $tap 2>/dev/null
# report NAME FILE WHY: "SBBENCH NAME MIB MEDIAN_MS RUNS" or why nothing was measured.
report() {
	if [ -s "$2" ]; then
		echo "SBBENCH $1 $mib $(median <"$2") $(wc -l <"$2")"
	else
		echo "SBBENCH $1 n/a: ${3:-not measured}"
	fi
}
report stream "$tmp/stream.ms" "$stream_why"
report tcp "$tmp/tcp.ms" "${tcp_why:-$tcp_fail}"

# stuck PID I: run I of parallel() (PID: its subshell) did not end within PAR_LIMIT_S: print
# kvmini's threads (name, state, user and system ticks, wait channel) twice, 2 s apart, so that
# a spinning vCPU shows apart from one that waits, and the end of its console; kill it.
stuck() {
	k_pid=$1
	[ "$(cat /proc/"$1"/comm 2>/dev/null)" = kvmini ] ||
		k_pid=$(cat /proc/"$1"/task/"$1"/children 2>/dev/null | awk '{ print $1 }')
	echo "sandboxbench: run pid $1 (kvmini $k_pid) still going after $PAR_LIMIT_S s" >&2
	for _ in 1 2; do
		for t in /proc/"$k_pid"/task/*; do
			[ -r "$t/stat" ] || continue
			echo "sandboxbench:   $(awk '{ print $2 " " $3 " utime " $14 " stime " $15 }' "$t/stat") wchan $(cat "$t/wchan" 2>/dev/null)" >&2
		done
		sleep 2
	done
	cat "$tmp/par.$2.out" "$tmp/par.$2.console" 2>/dev/null | tr -d '\r' | tail -n 8 |
		sed 's/^/sandboxbench:   console: /' >&2
	kill -9 "$k_pid" "$1" 2>/dev/null
}

# parallel NAME FN: PAR runs of FN at once; wall time and peak memory. A run still going
# after PAR_LIMIT_S seconds is reported (stuck) and killed, and counts as failed.
PAR_LIMIT_S=300
parallel() {
	base=$(used_kib)
	peak=0
	t0=$(now_ms)
	pids=""
	i=0
	while [ $i -lt "$par" ]; do
		(
			SB_CONSOLE=$tmp/par.$i.console SB_ERR=$tmp/par.$i.err
			$2 >"$tmp/par.$i.out" && now_ms >"$tmp/par.$i.end" && exit 0
			s=$?
			echo "sandboxbench: $1 run $i failed (exit $s): $(tail -n 1 "$SB_ERR" 2>/dev/null)" >&2
			exit "$s"
		) &
		pids="$pids $!:$i"
		i=$((i + 1))
	done
	(
		sleep "$PAR_LIMIT_S"
		for p in $pids; do ! kill -0 "${p%:*}" 2>/dev/null || stuck "${p%:*}" "${p#*:}"; done
	) &
	watchdog=$!
	(
		p=0
		while :; do
			u=$(used_kib)
			[ "$u" -le "$p" ] || p=$u
			echo "$p" >"$tmp/peak"
			sleep 0.2
		done
	) &
	sampler=$!
	fails=0
	for p in $pids; do wait "${p%:*}" || fails=$((fails + 1)); done
	# The wall time is to the last good run's end: a run that hung until PAR_LIMIT_S (a guest
	# the nested machine wedged) is counted out, and so is the time it took.
	t1=$(cat "$tmp"/par.*.end 2>/dev/null | sort -n | tail -n 1)
	[ -n "$t1" ] || t1=$(now_ms)
	kill "$sampler" "$watchdog" 2>/dev/null
	wait "$sampler" 2>/dev/null
	wait "$watchdog" 2>/dev/null
	rm -f "$tmp"/par.*.out "$tmp"/par.*.console "$tmp"/par.*.err "$tmp"/par.*.end
	peak=$(cat "$tmp/peak" 2>/dev/null || echo 0)
	# A guest the nested machine resets at boot under this load (tests/nested/README.md) is
	# counted apart, as the density rows of bench/boot.sh do: the rate is of the good runs.
	if [ "$fails" = "$par" ]; then
		echo "SBBENCH $1 n/a: all $par runs failed"
	else
		echo "SBBENCH $1 $((par - fails)) $((t1 - t0)) $((peak - base)) $fails"
	fi
}
echo "sandboxbench: $par plain boots at once, then $par sandboxes at once" >&2
parallel par_plain plain
parallel par_exec exec_true
