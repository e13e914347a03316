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
#   KVMINI_TEST_LIMIT_NET   network bandwidth, MiB/s, each way (default 4)
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
	name=limit-disk
	wanted "$name" || return 0
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
		not_ok limit-disk-bandwidth "the guest did not time its reads ($(status_reason 0))" "$b"
		not_ok limit-disk-iops "the guest did not time its reads" "$b"
		return 0
	fi
	# shellcheck disable=SC2086 # six numbers
	set -- $times
	limit_check limit-disk-bandwidth "disk (MiB)" "$mib" \
		"$(awk -v a="$1" -v b="$2" 'BEGIN { print b - a }')" "$LIMIT_BW" \
		"$(awk -v a="$2" -v b="$3" 'BEGIN { print b - a }')"
	# The same limit with four readers at once: together no faster (the flood).
	limit_check limit-disk-bandwidth-4-readers "disk (MiB)" "$mib" \
		"$(awk -v a="$5" -v b="$6" 'BEGIN { print b - a }')" "$LIMIT_BW" 0
	limit_check limit-disk-iops "disk (requests)" "$reqs" \
		"$(awk -v a="$3" -v b="$4" 'BEGIN { print b - a }')" "$LIMIT_IOPS" \
		"$(awk -v a="$4" -v b="$5" 'BEGIN { print b - a }')"
}

# uptime_s: the host's clock for timing, as the guest's (10 ms).
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# A card limited to LIMIT_NET MiB/s each way: the guest fetches 3 s' worth from the host
# (receive) and the host from the guest (transmit), both over HTTP, each timed where it
# arrives; then PUT /vm/limit lifts the limit while the VM runs and the same two transfers go
# again, unlimited (which also shows the machine could go faster).
test_limit_net() {
	name=limit-net
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool ip busybox curl || return 0
	ns=kvlim$$
	b=$tmp/limit-net
	rt=$tmp/limit-run
	if ! new_ns "$ns" || ! ns_tap "$ns" kvl0 10.79.0.1/24; then
		not_ok "$name" "cannot set up namespace $ns with tap kvl0"
		net_cleanup
		return 0
	fi
	mib=$((LIMIT_NET * 3))
	mkdir -p "$b.www"
	dd if=/dev/zero of="$b.www/f" bs=1M count="$mib" 2>/dev/null
	cat >"$b.www/g.sh" <<GUEST
T() { cut -d' ' -f1 /proc/uptime; }
dd if=/dev/zero of=/tmp/f bs=1M count=$mib 2>/dev/null
httpd -p 8080 -h /tmp
a=\$(T); wget -q -O /dev/null http://10.79.0.1:8080/f; z=\$(T); echo NET_RX_LIMITED \$a \$z
echo NET_SERVING
until wget -q -O /dev/null http://10.79.0.1:8080/go 2>/dev/null; do sleep 1; done
a=\$(T); wget -q -O /dev/null http://10.79.0.1:8080/f; z=\$(T); echo NET_RX_FREE \$a \$z
echo NET_DONE
sleep 600
GUEST
	"$IP" netns exec "$ns" "$BUSYBOX" httpd -f -p 10.79.0.1:8080 -h "$b.www" &
	KVMINI_RUNTIME_DIR=$rt "$IP" netns exec "$ns" "$KVMINI" run --kernel "$BZIMAGE" \
		--initrd "$INITRD" --mem 512M --name lim-vm --net "tap=kvl0,bw=${LIMIT_NET}M" \
		--cmdline 'kvmini.ip=10.79.0.2/24 -- wget -q -O /tmp/g.sh http://10.79.0.1:8080/g.sh && sh /tmp/g.sh' \
		>"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	if ! wait_for "$b" NET_SERVING "$bg_pid"; then
		give_up "$b" "the guest never timed its limited fetch (no NET_SERVING)"
		return 0
	fi
	t0=$(uptime_s)
	timeout 120 "$IP" netns exec "$ns" "$BUSYBOX" wget -q -O /dev/null http://10.79.0.2:8080/f
	t1=$(uptime_s)
	curl=$(tool curl)
	api_code=$(timeout 30 "$curl" -s -o "$b.api" -w '%{http_code}' --unix-socket \
		"$rt/lim-vm/api.sock" -X PUT -d '{"net": 0}' http://kvmini/vm/limit)
	timeout 30 "$curl" -s --unix-socket "$rt/lim-vm/api.sock" http://kvmini/vm/stats >"$b.stats"
	: >"$b.www/go"
	t2=$(uptime_s)
	timeout 120 "$IP" netns exec "$ns" "$BUSYBOX" wget -q -O /dev/null http://10.79.0.2:8080/f
	t3=$(uptime_s)
	wait_for "$b" NET_DONE "$bg_pid"
	stop_bg "$bg_pid" 0
	bg_pid=""
	net_cleanup
	tr -d '\r' <"$b.out" >"$b.log"
	rx_lim=$(sed -n 's/^NET_RX_LIMITED \([0-9.]*\) \([0-9.]*\).*/\1 \2/p' "$b.log")
	rx_free=$(sed -n 's/^NET_RX_FREE \([0-9.]*\) \([0-9.]*\).*/\1 \2/p' "$b.log")
	span() { awk -v a="${1%% *}" -v b="${1##* }" 'BEGIN { print b - a }'; }
	if [ -z "$rx_lim" ] || [ -z "$rx_free" ]; then
		not_ok limit-net-rx "the guest did not time both fetches" "$b"
	else
		limit_check limit-net-rx "network receive (MiB)" "$mib" "$(span "$rx_lim")" \
			"$LIMIT_NET" "$(span "$rx_free")"
	fi
	limit_check limit-net-tx "network transmit (MiB)" "$mib" "$(span "$t0 $t1")" "$LIMIT_NET" \
		"$(span "$t2 $t3")"
	# The change: 200, the stats show no limit on eth0 any more, and the transfers after it
	# ran well past the old limit.
	free_ok=$(awk -v n="$mib" -v a="$t2" -v z="$t3" -v lim="$LIMIT_NET" \
		'BEGIN { print (z > a && n / (z - a) > 1.5 * lim) ? 1 : 0 }')
	if [ "$api_code" != 200 ]; then
		not_ok limit-runtime-change "PUT /vm/limit answered $api_code: $(cat "$b.api" 2>/dev/null)" "$b"
	elif ! tr -d ' \n' <"$b.stats" | grep -q '"name":"eth0"[^]]*"limit":null'; then
		not_ok limit-runtime-change "GET /vm/stats still shows a limit on eth0: $(head -c 600 "$b.stats")" "$b"
	elif [ "$free_ok" != 1 ]; then
		not_ok limit-runtime-change "after the limit was lifted the guest still sent at most 1.5x it" "$b"
	else
		ok limit-runtime-change
	fi
}

run_limit_tests() {
	test_limit_disk
	test_limit_net
}
