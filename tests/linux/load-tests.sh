# tests/linux/load-tests.sh - sourced by run-tests.sh: many VMs at once, and a console flood
# (POSIX sh).
# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # variables shared with run-tests.sh
#
#   KVMINI_TEST_LOAD_VMS    VMs at once in load-20-vms (default 20)
#   KVMINI_TEST_FLOOD_S     seconds of console flood (default 60)

LOAD_VMS=${KVMINI_TEST_LOAD_VMS:-20}
FLOOD_S=${KVMINI_TEST_FLOOD_S:-60}

# LOAD_VMS VMs at once, each with the default seccomp filter, an ext4 disk of its own and a tap
# of its own (10.90.N.0/24): each writes 2 MiB of random data and its md5 and its number to
# its disk, pings its host address, and reboots. Every guest finishes, every image checks
# clean (e2fsck) and holds its own VM's number and data (so no VM wrote another's disk), and
# each ping was answered on its own tap only (no VM saw another's frames: the host's
# addresses are on separate taps, with no bridge between them).
test_load_vms() {
	name=load-20-vms
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool ip mke2fs debugfs e2fsck || return 0
	ns=kvload$$
	b=$tmp/$name
	if ! new_ns "$ns"; then
		not_ok "$name" "cannot make namespace $ns"
		return 0
	fi
	pids=""
	i=1
	while [ "$i" -le "$LOAD_VMS" ]; do
		if ! ns_tap "$ns" "kvld$i" "10.90.$i.1/24" || ! make_ext4 "$b.$i.img"; then
			not_ok "$name" "cannot set up VM $i's tap or disk"
			for p in $pids; do kill -KILL "$p" 2>/dev/null; done
			net_cleanup
			return 0
		fi
		"$IP" netns exec "$ns" timeout -k 10 "$T" "$KVMINI" run --kernel "$BZIMAGE" \
			--initrd "$INITRD" --mem 64M --disk "$b.$i.img" --net "tap=kvld$i" \
			--cmdline "kvmini.ip=10.90.$i.2/24 -- eval \"mount -t ext4 /dev/vda /mnt && dd if=/dev/urandom of=/mnt/data bs=1M count=2 2>/dev/null && md5sum /mnt/data | cut -c1-32 >/mnt/data.md5 && echo vm-$i >/mnt/id && umount /mnt && ping -c 3 -W 10 10.90.$i.1 >/dev/null && echo LOAD_DONE_$i\"" \
			>"$b.$i.out" 2>"$b.$i.err" </dev/null &
		pids="$pids $!"
		i=$((i + 1))
	done
	i=1
	failed_vms=""
	for p in $pids; do
		wait "$p"
		st=$?
		tr -d '\r' <"$b.$i.out" >"$b.$i.log"
		why=""
		if [ "$st" != 0 ]; then
			why="exit $st"
		elif ! grep -q "^LOAD_DONE_$i\$" "$b.$i.log"; then
			why="no LOAD_DONE_$i"
		elif ! "$E2FSCK" -fn "$b.$i.img" >"$b.$i.fsck" 2>&1; then
			why="e2fsck: $(tail -n 2 "$b.$i.fsck" | tr '\n' ' ')"
		elif [ "$("$DEBUGFS" -R 'cat /id' "$b.$i.img" 2>/dev/null)" != "vm-$i" ]; then
			why="its disk holds '$("$DEBUGFS" -R 'cat /id' "$b.$i.img" 2>/dev/null)'"
		elif [ "$("$DEBUGFS" -R 'cat /data' "$b.$i.img" 2>/dev/null | md5sum | cut -c1-32)" != \
			"$("$DEBUGFS" -R 'cat /data.md5' "$b.$i.img" 2>/dev/null)" ]; then
			why="its data does not match the md5 it wrote"
		elif grep -q 'seccomp' "$b.$i.err"; then
			why="a forbidden system call: $(grep seccomp "$b.$i.err")"
		fi
		[ -z "$why" ] || failed_vms="$failed_vms vm$i ($why);"
		i=$((i + 1))
	done
	# Each tap carried its own VM's frames only: the host's counters on tap N show frames in.
	for i in $(seq 1 "$LOAD_VMS"); do
		rx=$("$IP" netns exec "$ns" cat "/sys/class/net/kvld$i/statistics/rx_packets" 2>/dev/null)
		[ "${rx:-0}" -gt 0 ] || failed_vms="$failed_vms tap kvld$i saw no frame;"
	done
	net_cleanup
	if [ -n "$failed_vms" ]; then
		b1=$b.$(echo "$failed_vms" | sed -n 's/^ vm\([0-9]*\).*/\1/p')
		not_ok "$name" "of $LOAD_VMS VMs:$failed_vms" "$b1"
	else
		ok "$name"
	fi
}

# vm_rss_kib PID: the VmRSS of PID in KiB.
vm_rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' /proc/"$1"/status 2>/dev/null; }

# A guest that writes its console as fast as it can for FLOOD_S seconds, into a pipe nobody
# reads: kvmini's resident memory stays within 16 MiB of what it was after 5 s, the VM still
# answers its control socket (stats), the flood is counted (console_dropped_bytes), and a
# second VM boots meanwhile (its time is printed, not judged: timings are the benchmarks').
test_console_flood() {
	name=console-flood
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	rt=$tmp/flood-run
	mkfifo "$b.fifo"
	# Held open for writing and reading by this shell, never read: the pipe fills and stays full.
	exec 8<>"$b.fifo"
	KVMINI_RUNTIME_DIR=$rt "$KVMINI" run --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" \
		--name flood --cmdline '-- while :; do echo flood-flood-flood-flood-flood-flood-flood-flood; done' \
		>"$b.fifo" 2>"$b.err" </dev/null &
	bg_pid=$!
	sleep 5
	rss0=$(vm_rss_kib "$bg_pid")
	max=$rss0
	t0=$(now)
	other_s=""
	while [ $(($(now) - t0)) -lt "$FLOOD_S" ] && alive "$bg_pid"; do
		if [ -z "$other_s" ]; then
			o0=$(now)
			run_vmm "$b.other" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" \
				--cmdline '-- true'
			other_s=$(($(now) - o0))
			other_status=$status
		fi
		r=$(vm_rss_kib "$bg_pid")
		[ -z "$r" ] || [ "$r" -le "$max" ] || max=$r
		sleep 2
	done
	KVMINI_RUNTIME_DIR=$rt timeout 60 "$KVMINI" stats flood --json >"$b.stats" 2>&1
	st_stats=$?
	dropped=$(tr -d ' \n' <"$b.stats" | sed -n 's/.*"console_dropped_bytes":\([0-9]*\).*/\1/p')
	KVMINI_RUNTIME_DIR=$rt timeout 60 "$KVMINI" destroy flood >/dev/null 2>&1
	stop_bg "$bg_pid" 30
	bg_pid=""
	exec 8>&-
	echo "# $name: RSS ${rss0:-?} KiB after 5 s, at most ${max:-?} KiB in ${FLOOD_S} s; ${dropped:-?} bytes dropped; a second VM booted and ran in ${other_s:-?} s (status ${other_status:-?})"
	if [ -z "$rss0" ]; then
		not_ok "$name" "kvmini was gone after 5 s" "$b"
	elif [ $((max - rss0)) -gt 16384 ]; then
		not_ok "$name" "kvmini's RSS grew from $rss0 to $max KiB under the flood" "$b"
	elif [ "$st_stats" != 0 ] || [ -z "$dropped" ]; then
		not_ok "$name" "no stats from the flooding VM ($st_stats): $(head -c 300 "$b.stats")" "$b"
	elif [ "$dropped" -le 0 ]; then
		not_ok "$name" "the flood was not counted (console_dropped_bytes $dropped)" "$b"
	elif [ "${other_status:-1}" != 0 ]; then
		not_ok "$name" "the second VM did not boot and end cleanly (status $other_status)" "$b.other"
	else
		ok "$name"
	fi
}

run_load_tests() {
	test_load_vms
	test_console_flood
}
