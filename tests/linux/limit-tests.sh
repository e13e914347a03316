# tests/linux/limit-tests.sh - sourced by run-tests.sh: disk and network rate limits measured
# from inside the guest (POSIX sh).
# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # variables shared with run-tests.sh
#
# Each limited transfer is timed by the guest (/proc/uptime, 10 ms), and the same transfer on
# an unlimited device in the same run shows that the machine could go well past the limit
# (else the limit would prove nothing here: that fails too). A limit holds when the measured
# rate is within +/-10% of it. The rates are small enough for the nested machine:
#   KVMINI_TEST_LIMIT_BW    disk bandwidth, MiB/s (default 48, a multiple of 4)
#   KVMINI_TEST_LIMIT_IOPS  disk requests per second (default 200)
#   KVMINI_TEST_LIMIT_NET   network bandwidth, MiB/s (default 4)
LIMIT_BW=${KVMINI_TEST_LIMIT_BW:-48}
LIMIT_IOPS=${KVMINI_TEST_LIMIT_IOPS:-200}
LIMIT_NET=${KVMINI_TEST_LIMIT_NET:-4}

# limit_check NAME WHAT AMOUNT SECONDS LIMIT FREE_SECONDS: AMOUNT units in SECONDS against LIMIT
# units/s, the same unlimited in FREE_SECONDS (0: shown by an earlier check); "ok" or "not ok"
# with the numbers.
limit_check() {
	res=$(awk -v n="$3" -v t="$4" -v lim="$5" -v f="$6" 'BEGIN {
		if (t <= 0 || f < 0) { print "bad times " t " " f; exit }
		r = n / t; fr = (f > 0 ? n / f : 1e12)
		printf "%.1f %.1f %.3f", r, fr, r / lim }')
	set -- "$1" "$2" "$3" "$4" "$5" "$6" $res
	if [ "$6" = 0 ]; then
		echo "# $1: $2 $7/s with a limit of $5/s (ratio $9)"
	else
		echo "# $1: $2 $7/s with a limit of $5/s (ratio $9), $8/s unlimited"
	fi
	if [ $# -lt 9 ]; then
		not_ok "$1" "could not time the transfers ($res)" "$b"
	elif awk -v fr="$8" -v lim="$5" 'BEGIN { exit !(fr < 1.5 * lim) }'; then
		not_ok "$1" "unlimited, the $2 moved only $8/s: too slow here to show a limit of $5/s" "$b"
	elif awk -v q="$9" 'BEGIN { exit !(q < 0.9 || q > 1.1) }'; then
		not_ok "$1" "the $2 moved $7/s under a limit of $5/s (ratio $9, not within 10%)" "$b"
	else
		ok "$1"
	fi
}

# Disks: vda limited to LIMIT_BW MiB/s, vdc to LIMIT_IOPS requests/s, vdb free. Reads with
# O_DIRECT (no page cache): 1 MiB each for the bandwidth, 4 KiB for the requests, 3 s' worth.
# The guest's script is eval and one quoted word (the kernel passes init at most 31 words;
# the guest's init takes the text from /proc/cmdline, so \$ keeps it for eval).
test_limit_disk() {
	wanted limit-disk-bandwidth || wanted limit-disk-iops || return 0
	name=limit-disk
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/limit-disk
	mib=$((LIMIT_BW * 3))
	reqs=$((LIMIT_IOPS * 3))
	for d in a b c; do
		rm -f "$b.$d.img"
		truncate -s "$((mib + 8))M" "$b.$d.img"
	done
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" \
		--disk "$b.a.img,bw=${LIMIT_BW}M" --disk "$b.b.img" --disk "$b.c.img,iops=$LIMIT_IOPS" \
		--cmdline "-- eval \"T() { cut -d' ' -f1 /proc/uptime; }; t0=\\\$(T); dd if=/dev/vda of=/dev/null bs=1M count=$mib iflag=direct 2>/dev/null; t1=\\\$(T); dd if=/dev/vdb of=/dev/null bs=1M count=$mib iflag=direct 2>/dev/null; t2=\\\$(T); dd if=/dev/vdc of=/dev/null bs=4k count=$reqs iflag=direct 2>/dev/null; t3=\\\$(T); dd if=/dev/vdb of=/dev/null bs=4k count=$reqs iflag=direct 2>/dev/null; t4=\\\$(T); for i in 0 1 2 3; do dd if=/dev/vda of=/dev/null bs=1M count=$((mib / 4)) skip=\\\$((i * $((mib / 4)))) iflag=direct 2>/dev/null & done; wait; t5=\\\$(T); echo LIMIT_TIMES \\\$t0 \\\$t1 \\\$t2 \\\$t3 \\\$t4 \\\$t5\""
	times=$(sed -n 's/^LIMIT_TIMES //p' "$b.log" | head -n 1)
	if [ "$status" != 0 ] || [ -z "$times" ]; then
		for n in limit-disk-bandwidth limit-disk-iops; do
			! wanted "$n" || not_ok "$n" "the guest did not time its reads ($(status_reason 0))" "$b"
		done
		return 0
	fi
	# shellcheck disable=SC2086 # six numbers
	set -- $times
	if wanted limit-disk-bandwidth; then
		limit_check limit-disk-bandwidth "disk (MiB)" "$mib" \
			"$(awk -v a="$1" -v b="$2" 'BEGIN { print b - a }')" "$LIMIT_BW" \
			"$(awk -v a="$2" -v b="$3" 'BEGIN { print b - a }')"
	fi
	if wanted limit-disk-bandwidth; then
		# The same limit with four readers at once: together no faster (the flood).
		limit_check limit-disk-bandwidth-4-readers "disk (MiB)" "$mib" \
			"$(awk -v a="$5" -v b="$6" 'BEGIN { print b - a }')" "$LIMIT_BW" 0
	fi
	if wanted limit-disk-iops; then
		limit_check limit-disk-iops "disk (requests)" "$reqs" \
			"$(awk -v a="$3" -v b="$4" 'BEGIN { print b - a }')" "$LIMIT_IOPS" \
			"$(awk -v a="$4" -v b="$5" 'BEGIN { print b - a }')"
	fi
}

run_limit_tests() {
	test_limit_disk
}
