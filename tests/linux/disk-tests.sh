# tests/linux/disk-tests.sh - virtio-blk system tests, sourced by run-tests.sh (POSIX sh).
# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # variables shared with run-tests.sh; $ is for the guest
#
# Uses run-tests.sh's helpers (run_vmm, ok, not_ok, need, wanted, expect_error, alive)
# and host tools: mke2fs, debugfs, e2fsck (e2fsprogs) and setpriv (util-linux).
#
# Environment: KVMINI_TEST_CRASH_ROUNDS (default 20) SIGKILL rounds of the crash test;
# KVMINI_TEST_TOOLS, a directory searched first for those tools (check.sh ships them into
# the nested machine there: its busybox shell would otherwise pick its own applets).

CRASH_ROUNDS=${KVMINI_TEST_CRASH_ROUNDS:-20}

# tool NAME: the path of host tool NAME, or nothing.
tool() {
	if [ -n "${KVMINI_TEST_TOOLS:-}" ] && [ -x "$KVMINI_TEST_TOOLS/$1" ]; then
		echo "$KVMINI_TEST_TOOLS/$1"
	else
		command -v "$1" 2>/dev/null
	fi
}
MKE2FS=$(tool mke2fs)
DEBUGFS=$(tool debugfs)
E2FSCK=$(tool e2fsck)
SETPRIV=$(tool setpriv)

# need_tool NAME...: fail the current test when a host tool is missing.
need_tool() {
	for t in "$@"; do
		if [ -z "$(tool "$t")" ]; then
			not_ok "$name" "host tool $t is missing (apt-get install e2fsprogs util-linux)"
			return 1
		fi
	done
}

# guest_ok BASE: the run reached the marker, its command exited 0 and kvmini exited 0.
# Reports the failure and returns 1 otherwise.
guest_ok() {
	if [ "$timed_out" = 1 ]; then
		not_ok "$name" "timed out after $T s" "$1"
	elif ! grep -q 'KVMINI_GUEST_READY' "$1.log"; then
		not_ok "$name" "no KVMINI_GUEST_READY, kvmini exit status $status" "$1"
	elif ! grep -Eq 'KVMINI_CMD_EXIT=0([^0-9]|$)' "$1.log"; then
		not_ok "$name" "guest command failed (no KVMINI_CMD_EXIT=0)" "$1"
	elif [ "$status" != 0 ]; then
		not_ok "$name" "$(status_reason 0)" "$1"
	else
		return 0
	fi
	return 1
}

# make_ext4 IMAGE: a 32 MiB ext4 image holding /hello.txt ("hello-from-the-host").
make_ext4() {
	rm -rf "$tmp/fsroot" "$1"
	mkdir -p "$tmp/fsroot"
	echo hello-from-the-host >"$tmp/fsroot/hello.txt"
	"$MKE2FS" -q -F -t ext4 -d "$tmp/fsroot" "$1" 32M >"$tmp/mke2fs.log" 2>&1
}

# The guest mounts an ext4 disk, reads the host's file, writes its own, syncs and
# reboots; the host finds the guest's bytes in the image and the filesystem clean.
test_disk_ext4() {
	name=disk-ext4-write
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool mke2fs debugfs e2fsck || return 0
	img=$tmp/ext4.img
	b=$tmp/$name
	if ! make_ext4 "$img"; then
		not_ok "$name" "mke2fs failed: $(cat "$tmp/mke2fs.log")"
		return 0
	fi
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$img" \
		--cmdline '-- mount -t ext4 /dev/vda /mnt && cat /mnt/hello.txt && seq 1 50000 >/mnt/seq.txt && echo guest-was-here >/mnt/guest.txt && sync && umount /mnt'
	guest_ok "$b" || return 0
	want=$(seq 1 50000 | md5sum | cut -d' ' -f1)
	got=$("$DEBUGFS" -R 'cat /seq.txt' "$img" 2>/dev/null | md5sum | cut -d' ' -f1)
	if ! grep -q hello-from-the-host "$b.log"; then
		not_ok "$name" "the guest did not read the host's file" "$b"
	elif [ "$got" != "$want" ]; then
		not_ok "$name" "/seq.txt in the image has md5 $got, expected $want" "$b"
	elif [ "$("$DEBUGFS" -R 'cat /guest.txt' "$img" 2>/dev/null)" != guest-was-here ]; then
		not_ok "$name" "/guest.txt missing or wrong in the image" "$b"
	elif ! "$E2FSCK" -fn "$img" >"$b.fsck" 2>&1; then
		not_ok "$name" "e2fsck finds the image unclean: $(tail -n 3 "$b.fsck" | tr '\n' ' ')" "$b"
	else
		ok "$name"
	fi
}

# A read-only disk: the guest sees it read-only, its writes fail, the file is unchanged.
test_disk_readonly() {
	name=disk-readonly
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool mke2fs || return 0
	img=$tmp/ro.img
	b=$tmp/$name
	if ! make_ext4 "$img"; then
		not_ok "$name" "mke2fs failed"
		return 0
	fi
	before=$(md5sum <"$img")
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$img,ro" \
		--cmdline '-- echo ro=$(cat /sys/block/vda/ro); mount -o ro /dev/vda /mnt && cat /mnt/hello.txt; if dd if=/dev/zero of=/dev/vda bs=512 count=8 conv=fsync 2>/dev/null; then echo WRITE-ACCEPTED; else echo WRITE-REFUSED; fi'
	guest_ok "$b" || return 0
	if ! grep -q '^ro=1' "$b.log"; then
		not_ok "$name" "the guest does not see /dev/vda read-only" "$b"
	elif ! grep -q hello-from-the-host "$b.log"; then
		not_ok "$name" "the guest could not read the read-only disk" "$b"
	elif ! grep -q WRITE-REFUSED "$b.log" || grep -q WRITE-ACCEPTED "$b.log"; then
		not_ok "$name" "a write to the read-only disk was not refused" "$b"
	elif [ "$(md5sum <"$img")" != "$before" ]; then
		not_ok "$name" "the read-only image file changed" "$b"
	else
		ok "$name"
	fi
}

# Two disks at once, in command-line order, the second with a serial.
test_two_disks() {
	name=disk-two-disks
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool mke2fs || return 0
	img=$tmp/two-a.img
	raw=$tmp/two-b.img
	b=$tmp/$name
	if ! make_ext4 "$img"; then
		not_ok "$name" "mke2fs failed"
		return 0
	fi
	rm -f "$raw"
	truncate -s 8M "$raw"
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$img" \
		--disk "$raw,id=kvmini-second" \
		--cmdline '-- echo serial=$(cat /sys/block/vdb/serial) size=$(cat /sys/block/vdb/size); mount /dev/vda /mnt && cat /mnt/hello.txt && printf second-disk-ok | dd of=/dev/vdb bs=512 seek=3 conv=notrunc,sync,fsync 2>/dev/null'
	guest_ok "$b" || return 0
	got=$(dd if="$raw" bs=512 skip=3 count=1 2>/dev/null | tr -d '\000')
	if ! grep -q 'serial=kvmini-second size=16384' "$b.log"; then
		not_ok "$name" "vdb's serial or size is wrong" "$b"
	elif ! grep -q hello-from-the-host "$b.log"; then
		not_ok "$name" "vda was not readable" "$b"
	elif [ "$got" != second-disk-ok ]; then
		not_ok "$name" "sector 3 of the second image holds '$got'" "$b"
	else
		ok "$name"
	fi
}

# One crash round: the guest writes numbered 512-byte records to /dev/vda, each with
# fsync, and prints "ACK n" after each; kvmini gets SIGKILL at a random moment. Every
# acknowledged record must be in the image. Prints the number of records checked.
crash_round() { # ROUND
	img=$tmp/crash.img
	b=$tmp/crash-$1
	rm -f "$img"
	truncate -s 4M "$img"
	t0=$(now)
	"$KVMINI" run --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$img" \
		--cmdline '-- i=1; while [ $i -le 4000 ]; do printf REC%08d $i | dd of=/dev/vda bs=512 seek=$i conv=notrunc,sync,fsync 2>/dev/null || break; echo ACK $i; i=$((i+1)); done' \
		>"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	acked=0
	while [ $(($(now) - t0)) -lt "$T" ] && alive "$bg_pid"; do
		if tr -d '\r' <"$b.out" | grep -q '^ACK '; then
			acked=1
			break
		fi
		sleep 1
	done
	early=0
	[ "$acked" = 1 ] || alive "$bg_pid" || early=1
	if [ "$acked" = 0 ] && [ "$early" = 0 ]; then
		# Nothing acknowledged and kvmini still runs: what its threads do, 2 s apart.
		{
			echo "no record after $T s; kvmini's threads:"
			vmm_threads "$bg_pid"
			sleep 2
			echo "2 s later:"
			vmm_threads "$bg_pid"
		} >>"$b.err"
	fi
	# A random delay of 0..1.99 s after the first acknowledgement.
	r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	sleep "$((r % 2)).$((r % 100 / 10))$((r % 10))"
	kill -KILL "$bg_pid" 2>/dev/null
	# Bounded: a kvmini that SIGKILL cannot end (stuck in the kernel) fails the test
	# instead of hanging the suite.
	t1=$(now)
	while alive "$bg_pid" && [ $(($(now) - t1)) -lt 60 ]; do
		sleep 1
	done
	if alive "$bg_pid"; then
		bg_pid=""
		echo "unkillable"
		return 0
	fi
	wait "$bg_pid" 2>/dev/null
	st=$?
	bg_pid=""
	if [ "$acked" = 0 ]; then
		if [ "$early" = 1 ]; then
			echo "early (kvmini ended by itself with status $st after $(($(now) - t0)) s, before its SIGKILL)"
		else
			echo "no-ack (none within $T s)"
		fi
		return 0
	fi
	last=$(tr -d '\r' <"$b.out" | sed -n 's/^ACK \([0-9][0-9]*\)$/\1/p' | tail -n 1)
	[ -n "$last" ] || last=0
	# Records 1..last in order: each block holds "REC%08d" and zero padding.
	if dd if="$img" bs=512 skip=1 count="$last" 2>/dev/null | tr '\000' '\n' | grep -v '^$' |
		awk -v n="$last" '$0 != sprintf("REC%08d", NR) { bad = 1; exit } END { exit bad || NR < n }'; then
		echo "$last"
	else
		echo "lost-after-$last"
	fi
}

test_disk_crash() {
	name=disk-crash-consistency
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	round=1
	total=0
	while [ "$round" -le "$CRASH_ROUNDS" ]; do
		res=$(crash_round "$round")
		case "$res" in
		no-ack*)
			not_ok "$name" "round $round: the guest acknowledged no record: ${res#no-ack }" "$tmp/crash-$round"
			return 0
			;;
		early*)
			not_ok "$name" "round $round: ${res#early }" "$tmp/crash-$round"
			return 0
			;;
		unkillable)
			not_ok "$name" "round $round: kvmini still ran 60 s after SIGKILL" "$tmp/crash-$round"
			return 0
			;;
		lost-*)
			not_ok "$name" "round $round: an acknowledged record is missing ($res)" "$tmp/crash-$round"
			return 0
			;;
		esac
		total=$((total + res))
		round=$((round + 1))
	done
	echo "# $name: $CRASH_ROUNDS SIGKILL rounds, $total acknowledged records all intact"
	ok "$name"
}

# A guest's flush reaches the host's storage, not only its page cache (which is all the crash
# rounds above can see): the disk is a loop device, whose flush counter (field 16 of
# /sys/block/loopN/stat) must advance by at least one per guest fsync. The same run with
# cache=unsafe (flushes answered at once, by design) must leave it short of that: proof that
# the counter sees what kvmini does rather than the kernel's own writeback.
test_disk_flush() {
	name=disk-flush-reaches-storage
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	modprobe loop 2>/dev/null
	img=$tmp/flush.img
	rm -f "$img"
	truncate -s 8M "$img"
	if ! dev=$(losetup -f 2>"$tmp/$name.err") || ! losetup "$dev" "$img" 2>>"$tmp/$name.err"; then
		not_ok "$name" "cannot set up a loop device: $(tail -n 1 "$tmp/$name.err")"
		return 0
	fi
	flushes() { awk '{ print $16 }' "/sys/block/${dev#/dev/}/stat"; }
	n=5
	cmd="-- i=1; while [ \$i -le $n ]; do printf REC%08d \$i | dd of=/dev/vda bs=512 seek=\$i conv=notrunc,sync,fsync 2>/dev/null || exit 1; i=\$((i+1)); done"
	f0=$(flushes)
	run_vmm "$tmp/$name" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$dev" \
		--cmdline "$cmd"
	f1=$(flushes)
	if guest_ok "$tmp/$name"; then
		run_vmm "$tmp/$name-unsafe" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" \
			--disk "$dev,cache=unsafe" --cmdline "$cmd"
		f2=$(flushes)
		if ! guest_ok "$tmp/$name-unsafe"; then
			:
		elif [ -z "$f0" ] || [ $((f1 - f0)) -lt "$n" ]; then
			not_ok "$name" "$n guest fsyncs moved the loop device's flush counter from '$f0' to '$f1'" "$tmp/$name"
		elif [ $((f2 - f1)) -ge "$n" ]; then
			not_ok "$name" "with cache=unsafe the flush counter still moved by $((f2 - f1)): it does not show kvmini's flushes" "$tmp/$name-unsafe"
		else
			echo "# $name: $n guest fsyncs, loop flushes +$((f1 - f0)) (cache=unsafe: +$((f2 - f1)))"
			ok "$name"
		fi
	fi
	losetup -d "$dev" 2>/dev/null
}

# A writable image is locked while a VM uses it: a second VM is refused.
test_disk_locked() {
	name=disk-locked
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	img=$tmp/locked.img
	b=$tmp/$name-first
	rm -f "$img"
	truncate -s 4M "$img"
	t0=$(now)
	"$KVMINI" run --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$img" \
		--cmdline '-- sleep 1000' >"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	while [ $(($(now) - t0)) -lt "$T" ] && alive "$bg_pid"; do
		tr -d '\r' <"$b.out" | grep -q KVMINI_GUEST_READY && break
		sleep 1
	done
	if ! alive "$bg_pid"; then
		not_ok "$name" "the first VM did not stay up" "$b"
		bg_pid=""
		return 0
	fi
	expect_error disk-locked 4 'in use' \
		--kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$img" --cmdline '-- true'
	kill -KILL "$bg_pid" 2>/dev/null
	wait "$bg_pid" 2>/dev/null
	bg_pid=""
}

test_disk_errors() {
	if [ ! -f "$BZIMAGE" ] || [ ! -f "$INITRD" ]; then
		for n in disk-missing disk-directory disk-unreadable-ro disk-nine-devices; do
			! wanted "$n" || not_ok "$n" "missing $BZIMAGE or $INITRD"
		done
		return 0
	fi
	k="--kernel $BZIMAGE --initrd $INITRD --mem $MEM --cmdline"
	# shellcheck disable=SC2086 # $k is split on purpose (paths have no spaces)
	expect_error disk-missing 3 "disk image .*no-such-disk.* does not exist" \
		$k '-- true' --disk "$tmp/no-such-disk.img"
	mkdir -p "$tmp/a-directory"
	# shellcheck disable=SC2086
	expect_error disk-directory 3 "disk image .*a-directory.* is a directory" \
		$k '-- true' --disk "$tmp/a-directory"
	noread=$tmp/noread.img
	truncate -s 1M "$noread"
	chmod 000 "$noread"
	name=disk-unreadable-ro
	if wanted "$name" && need_tool setpriv; then
		# As root the mode bits would not matter: drop the capabilities that bypass them.
		WRAP="$SETPRIV --bounding-set -dac_override,-dac_read_search"
		# shellcheck disable=SC2086
		expect_error disk-unreadable-ro 3 "disk image .*noread.*Permission denied" \
			$k '-- true' --disk "$noread,ro"
		WRAP=""
	fi
	d=$tmp/d.img
	truncate -s 1M "$d"
	# shellcheck disable=SC2086
	expect_error disk-nine-devices 2 'at most 8 virtio devices' $k '-- true' \
		--disk "$d,ro" --disk "$d,ro" --disk "$d,ro" --disk "$d,ro" --disk "$d,ro" \
		--disk "$d,ro" --disk "$d,ro" --disk "$d,ro" --disk "$d,ro"
}

run_disk_tests() {
	test_disk_ext4
	test_disk_readonly
	test_two_disks
	test_disk_locked
	test_disk_errors
	test_disk_flush
	test_disk_crash
}
