# tests/linux/net-tests.sh - virtio-net system tests, sourced by run-tests.sh (POSIX sh).
# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # variables shared with run-tests.sh; $ is for the guest
#
# Each test works in its own network namespace (so the host's network is never touched):
# a persistent vnet_hdr tap with the host's address, kvmini run inside the namespace.
# Host tools: ip and nft (iproute2, nftables; from KVMINI_TEST_TOOLS first, see
# disk-tests.sh) and busybox (httpd, wget, nc, ping, md5sum) for the host side of transfers.

IP=$(tool ip)
NFT=$(tool nft)
BUSYBOX=$(tool busybox)
NS_LIST=""

# new_ns NAME: create network namespace NAME with lo up; removed by net_cleanup.
new_ns() {
	"$IP" netns add "$1" && NS_LIST="$NS_LIST $1" && "$IP" -n "$1" link set lo up
}

net_cleanup() {
	for ns in $NS_LIST; do
		"$IP" netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
		"$IP" netns del "$ns" 2>/dev/null
	done
	NS_LIST=""
}

# ns_tap NS TAP CIDR: a persistent tap in NS with the host's address.
ns_tap() {
	"$IP" -n "$1" tuntap add dev "$2" mode tap vnet_hdr &&
		"$IP" -n "$1" addr add "$3" dev "$2" &&
		"$IP" -n "$1" link set "$2" up
}

# wait_for BASE PATTERN PID: wait until BASE.out has a line matching PATTERN while PID runs.
wait_for() {
	t0w=$(now)
	while [ $(($(now) - t0w)) -lt "$T" ] && alive "$3"; do
		tr -d '\r' <"$1.out" | grep -q "$2" && return 0
		sleep 1
	done
	tr -d '\r' <"$1.out" | grep -q "$2"
}

# stop_bg PID SECONDS: wait up to SECONDS for PID to exit, then kill it; sets $status.
stop_bg() {
	t0s=$(now)
	while [ $(($(now) - t0s)) -lt "$2" ] && alive "$1"; do
		sleep 1
	done
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait "$1"
	status=$?
}

# give_up BASE REASON: stop the background VM, remove the namespaces, report the failure.
give_up() {
	stop_bg "$bg_pid" 0
	bg_pid=""
	net_cleanup
	not_ok "$name" "$2" "$1"
}

# One guest on a tap: ping both ways and a 100 MB HTTP transfer each way with md5 sums
# compared at both ends.
test_net_guest_host() {
	name=net-ping-and-tcp
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool ip busybox || return 0
	ns=kvmini-net-$$
	b=$tmp/net-guest-host
	if ! new_ns "$ns" || ! ns_tap "$ns" kvt0 10.77.0.1/24; then
		not_ok "$name" "cannot set up namespace $ns with tap kvt0"
		return 0
	fi
	mkdir -p "$tmp/www"
	dd if=/dev/urandom of="$tmp/www/in.bin" bs=1M count=100 2>/dev/null
	in_md5=$(md5sum <"$tmp/www/in.bin" | cut -d' ' -f1)
	# The guest's part, fetched over the network (the kernel passes at most 31 words to init).
	cat >"$tmp/www/guest.sh" <<'GUEST'
ping -c 3 -W 5 10.77.0.1 >/dev/null && echo GUEST_PING_OK
echo GUEST_GOT_MD5=$(wget -q -O - http://10.77.0.1:8080/in.bin | md5sum)
dd if=/dev/urandom of=/tmp/out.bin bs=1M count=100 2>/dev/null
echo GUEST_SENT_MD5=$(md5sum </tmp/out.bin)
httpd -p 8080 -h /tmp
echo GUEST_SERVING
nc -l -p 8081
GUEST
	"$IP" netns exec "$ns" "$BUSYBOX" httpd -f -p 10.77.0.1:8080 -h "$tmp/www" &
	"$IP" netns exec "$ns" "$KVMINI" run --kernel "$BZIMAGE" --initrd "$INITRD" --mem 512M \
		--name net-test --net tap=kvt0 \
		--cmdline 'kvmini.ip=10.77.0.2/24 -- wget -q -O /tmp/t.sh http://10.77.0.1:8080/guest.sh && sh /tmp/t.sh' \
		>"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	if ! wait_for "$b" GUEST_SERVING "$bg_pid"; then
		give_up "$b" "the guest never served its file (no GUEST_SERVING)"
		return 0
	fi
	host_ping=fail
	"$IP" netns exec "$ns" "$BUSYBOX" ping -c 3 -W 5 10.77.0.2 >"$b.ping" 2>&1 && host_ping=ok
	# Bounded: a guest gone mid-test (busybox wget waits 900 s by default, nc for ever) costs
	# two minutes, not the suite (busybox-static's wget -T crashes).
	got_md5=$(timeout 120 "$IP" netns exec "$ns" "$BUSYBOX" wget -q -O - http://10.77.0.2:8080/out.bin | md5sum | cut -d' ' -f1)
	echo finished | timeout 30 "$IP" netns exec "$ns" "$BUSYBOX" nc -w 10 10.77.0.2 8081
	stop_bg "$bg_pid" 60
	bg_pid=""
	net_cleanup
	tr -d '\r' <"$b.out" >"$b.log"
	guest_got=$(sed -n 's/^GUEST_GOT_MD5=\([0-9a-f]*\).*/\1/p' "$b.log")
	guest_sent=$(sed -n 's/^GUEST_SENT_MD5=\([0-9a-f]*\).*/\1/p' "$b.log")
	if grep -q GUEST_PING_OK "$b.log"; then ok net-ping-guest-to-host; else
		not_ok net-ping-guest-to-host "the guest could not ping 10.77.0.1" "$b"; fi
	if [ "$host_ping" = ok ]; then ok net-ping-host-to-guest; else
		not_ok net-ping-host-to-guest "the host could not ping 10.77.0.2: $(tail -n 2 "$b.ping" | tr '\n' ' ')" "$b"; fi
	if [ -n "$guest_got" ] && [ "$guest_got" = "$in_md5" ]; then ok net-tcp-100M-host-to-guest; else
		not_ok net-tcp-100M-host-to-guest "guest md5 '$guest_got', host sent $in_md5" "$b"; fi
	if [ -n "$got_md5" ] && [ "$got_md5" = "$guest_sent" ]; then ok net-tcp-100M-guest-to-host; else
		not_ok net-tcp-100M-guest-to-host "host got md5 '$got_md5', guest sent '$guest_sent'" "$b"; fi
	if [ "$status" = 0 ]; then ok net-guest-exits-cleanly; else
		not_ok net-guest-exits-cleanly "kvmini exit status $status, expected 0" "$b"; fi
	rm -rf "$tmp/www"
}

# Two guests on one bridge reach each other.
test_net_two_guests() {
	name=net-two-guests-bridge
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool ip || return 0
	ns=kvmini-br-$$
	if ! new_ns "$ns" || ! "$IP" -n "$ns" link add kvbr0 type bridge ||
		! "$IP" -n "$ns" link set kvbr0 up; then
		net_cleanup
		not_ok "$name" "cannot set up a bridge in namespace $ns"
		return 0
	fi
	for t in kvt1 kvt2; do
		"$IP" -n "$ns" tuntap add dev $t mode tap vnet_hdr
		"$IP" -n "$ns" link set $t master kvbr0
		"$IP" -n "$ns" link set $t up
	done
	bb=$tmp/net-guest-b
	"$IP" netns exec "$ns" "$KVMINI" run --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" \
		--name guest-b --net tap=kvt2 \
		--cmdline 'kvmini.ip=10.77.1.3/24 -- echo B_READY; nc -l -p 9000' \
		>"$bb.out" 2>"$bb.err" </dev/null &
	bg_pid=$!
	if ! wait_for "$bb" B_READY "$bg_pid"; then
		give_up "$bb" "guest B did not come up"
		return 0
	fi
	b=$tmp/net-guest-a
	WRAP="$IP netns exec $ns"
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --name guest-a \
		--net tap=kvt1 \
		--cmdline 'kvmini.ip=10.77.1.2/24 -- ping -c 3 -W 5 10.77.1.3 >/dev/null && echo A_PING_OK && echo hello-from-guest-a | nc 10.77.1.3 9000'
	WRAP=""
	stop_bg "$bg_pid" 60
	bg_pid=""
	bstatus=$status
	net_cleanup
	tr -d '\r' <"$bb.out" >"$bb.log"
	if ! grep -q A_PING_OK "$b.log"; then
		not_ok "$name" "guest A could not ping guest B" "$b"
	elif ! grep -q hello-from-guest-a "$bb.log"; then
		not_ok "$name" "guest B did not receive guest A's message" "$bb"
	elif [ "$bstatus" != 0 ]; then
		not_ok "$name" "guest B's kvmini exited $bstatus" "$bb"
	else
		ok "$name"
	fi
}

# scripts/kvmini-nat: a guest behind the NAT bridge reaches an address only the NAT makes
# reachable (a second namespace with no route back), and teardown leaves nothing behind.
test_net_nat_helper() {
	name=net-nat-helper
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool ip nft || return 0
	nat=$here/../../scripts/kvmini-nat
	[ -f "$nat" ] || nat=$here/kvmini-nat
	ns=kvmini-nat-$$
	out=kvmini-out-$$
	b=$tmp/$name
	if ! new_ns "$ns" || ! new_ns "$out" ||
		! "$IP" -n "$ns" link add kvv0 type veth peer name kvv1 netns "$out" ||
		! "$IP" -n "$ns" addr add 10.88.0.1/24 dev kvv0 || ! "$IP" -n "$ns" link set kvv0 up ||
		! "$IP" -n "$out" addr add 10.88.0.2/24 dev kvv1 || ! "$IP" -n "$out" link set kvv1 up; then
		net_cleanup
		not_ok "$name" "cannot set up namespaces $ns and $out"
		return 0
	fi
	fwd_before=$("$IP" netns exec "$ns" cat /proc/sys/net/ipv4/ip_forward)
	if ! "$IP" netns exec "$ns" env KVMINI_IP="$IP" KVMINI_NFT="$NFT" sh "$nat" up \
		--bridge kvnat0 --addr 10.77.2.1/24 --tap kvt3 >"$b.nat" 2>&1; then
		net_cleanup
		not_ok "$name" "kvmini-nat up failed: $(tail -n 2 "$b.nat" | tr '\n' ' ')"
		return 0
	fi
	WRAP="$IP netns exec $ns"
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --net tap=kvt3 \
		--cmdline 'kvmini.ip=10.77.2.2/24,10.77.2.1 -- ping -c 3 -W 5 10.88.0.2 >/dev/null && echo NAT_PING_OK'
	WRAP=""
	down=ok
	"$IP" netns exec "$ns" env KVMINI_IP="$IP" KVMINI_NFT="$NFT" sh "$nat" down --bridge kvnat0 \
		>>"$b.nat" 2>&1 || down="kvmini-nat down failed"
	left=$("$IP" -n "$ns" -o link show | grep -E 'kvnat0|kvt3')
	tables=$("$IP" netns exec "$ns" "$NFT" list tables 2>/dev/null | grep kvmini)
	fwd_after=$("$IP" netns exec "$ns" cat /proc/sys/net/ipv4/ip_forward)
	net_cleanup
	if ! grep -q NAT_PING_OK "$b.log"; then
		not_ok "$name" "the guest could not reach 10.88.0.2 through the NAT" "$b"
	elif [ "$down" != ok ]; then
		not_ok "$name" "$down: $(tail -n 2 "$b.nat" | tr '\n' ' ')" "$b"
	elif [ -n "$left" ] || [ -n "$tables" ]; then
		not_ok "$name" "teardown left: $left $tables" "$b"
	elif [ "$fwd_after" != "$fwd_before" ]; then
		not_ok "$name" "ip_forward is $fwd_after after teardown, was $fwd_before" "$b"
	else
		ok "$name"
	fi
}

test_net_errors() {
	if [ ! -f "$BZIMAGE" ] || [ ! -f "$INITRD" ]; then
		for n in net-bad-mac net-tap-name-too-long net-tap-busy; do
			! wanted "$n" || not_ok "$n" "missing $BZIMAGE or $INITRD"
		done
		return 0
	fi
	k="--kernel $BZIMAGE --initrd $INITRD --mem $MEM --cmdline"
	# shellcheck disable=SC2086 # $k is split on purpose (paths have no spaces)
	expect_error net-bad-mac 2 "not a unicast MAC" $k '-- true' --net tap=kvt9,mac=01:02:03:04:05:06
	# shellcheck disable=SC2086
	expect_error net-tap-name-too-long 2 "tap.*kvmini-tap-name-too-long" $k '-- true' \
		--net tap=kvmini-tap-name-too-long
	name=net-tap-busy
	if wanted "$name" && need_tool ip; then
		ns=kvmini-busy-$$
		new_ns "$ns"
		# A tap without multi-queue can be attached once: the first VM holds it.
		"$IP" -n "$ns" tuntap add dev kvt8 mode tap vnet_hdr
		bf=$tmp/net-busy-first
		"$IP" netns exec "$ns" "$KVMINI" run --kernel "$BZIMAGE" --initrd "$INITRD" \
			--mem "$MEM" --net tap=kvt8 --cmdline '-- sleep 1000' >"$bf.out" 2>"$bf.err" </dev/null &
		bg_pid=$!
		if wait_for "$bf" KVMINI_GUEST_READY "$bg_pid"; then
			WRAP="$IP netns exec $ns"
			# shellcheck disable=SC2086
			expect_error net-tap-busy 4 "tap kvt8 .*in use" $k '-- true' --net tap=kvt8
			WRAP=""
		else
			not_ok "$name" "the first VM did not come up" "$bf"
		fi
		kill -KILL "$bg_pid" 2>/dev/null
		wait "$bg_pid" 2>/dev/null
		bg_pid=""
		net_cleanup
	fi
}

run_net_tests() {
	# What the tests need from the kernel (built in or already loaded elsewhere; the nested
	# machine has them as modules). A missing one shows up as a failing test.
	for m in tun veth bridge nf_tables nft_chain_nat nft_masq nft_ct; do
		modprobe "$m" 2>/dev/null
	done
	test_net_errors
	test_net_guest_host
	test_net_two_guests
	test_net_nat_helper
}
