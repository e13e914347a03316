#!/bin/sh
# bench/net-l2.sh: the measuring half of bench/net.sh (POSIX sh: it runs in the nested
# machine's busybox, or directly on a host with hardware virtualization).
#
#   net-l2.sh DIR SECONDS ROUNDS
#
# DIR holds kvmini, bzImage, initramfs-net.cpio.gz (guest with /usr/bin/iperf3) and
# tools/{ip,iperf3,jq}. QEMU is qemu-system-x86_64 on PATH (or $QEMU) with its microvm
# firmware in $QEMU_DATADIR (/usr/share/qemu).
#
# For each round, direction and VMM (the VMM order alternates): a fresh network namespace
# with a vnet_hdr tap at 10.0.0.1/24 and `iperf3 -s` on it; the guest (1 vCPU, 256 MiB)
# runs `iperf3 -c 10.0.0.1 -t SECONDS -J` (tx: guest->host) or with -R (rx: host->guest)
# and prints the JSON report on its console. One line per run on stdout:
#   NETBENCH_RESULT VMM DIR ROUND BITS_PER_SECOND     (end.sum_received)
#   NETBENCH_RESULT VMM DIR ROUND n/a: REASON
# Busybox sh runs its own applets before PATH, so real tools are called by path.

dir=${1:?usage: net-l2.sh DIR SECONDS ROUNDS}
secs=${2:?}
rounds=${3:?}
IP=$dir/tools/ip
IPERF=$dir/tools/iperf3
JQ=$dir/tools/jq
QEMU=${QEMU:-qemu-system-x86_64}
# Boot + run + report: the guest boots in 3-15 s under TCG. A stalled run is killed then.
limit=$((secs + 120))
base_cmdline="console=ttyS0 panic=-1 nomodule i8042.noaux i8042.nomux i8042.dumbkbd quiet"
# QEMU microvm announces its virtio-mmio devices by appending virtio_mmio.device=... to the
# command line, i.e. after " -- ", where the kernel hands it to init instead of using it.
# So the announcement is switched off (auto-kernel-cmdline=off) and made here, before " -- ":
# what microvm itself appends for one device (QEMU 7.2: the last of its 8 transports).
qemu_mmio=${BENCH_NET_QEMU_MMIO:-virtio_mmio.device=512@0xfeb00e00:12}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-netbench.XXXXXX") || exit 1
# netbench is a named (managed) VM: its runtime folder goes under $tmp.
export KVMINI_RUNTIME_DIR="$tmp/run"
ns=kvmini-netbench-$$

cleanup() {
	"$IP" netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
	"$IP" netns del "$ns" 2>/dev/null
}
trap 'cleanup; rm -rf "$tmp"' EXIT

modprobe tun 2>/dev/null
[ -c /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; } 2>/dev/null

# run_one VMM DIR ROUND: one measurement; prints its NETBENCH_RESULT line.
run_one() {
	vmm=$1 d=$2 round=$3
	b=$tmp/$vmm-$d-$round
	flag=
	[ "$d" = rx ] && flag=-R
	guest="iperf3 -c 10.0.0.1 -t $secs -J -i 0 $flag >/tmp/r.json; echo IPERF_STATUS=\$?;"
	guest="$guest echo IPERF_JSON_BEGIN; cat /tmp/r.json; echo IPERF_JSON_END"
	cmdline="kvmini.ip=10.0.0.2/24 -- $guest"
	cleanup
	if ! "$IP" netns add "$ns" || ! "$IP" -n "$ns" link set lo up ||
		! "$IP" -n "$ns" tuntap add dev nbt0 mode tap vnet_hdr ||
		! "$IP" -n "$ns" addr add 10.0.0.1/24 dev nbt0 || ! "$IP" -n "$ns" link set nbt0 up; then
		echo "NETBENCH_RESULT $vmm $d $round n/a: cannot set up namespace $ns with tap nbt0"
		return
	fi
	"$IP" netns exec "$ns" "$IPERF" -s -B 10.0.0.1 >"$b.server" 2>&1 &
	sleep 1
	t0=$(date +%s)
	if [ "$vmm" != qemu ]; then
		# kvmini-off: the same under --seccomp off, for the filters' cost in the same run.
		seccomp=kill
		[ "$vmm" = kvmini ] || seccomp=off
		"$IP" netns exec "$ns" timeout -s KILL "$limit" "$dir/kvmini" run \
			--kernel "$dir/bzImage" --initrd "$dir/initramfs-net.cpio.gz" --mem 256M --cpus 1 \
			--name netbench --net tap=nbt0 --seccomp "$seccomp" --cmdline "$cmdline" \
			>"$b.out" 2>"$b.err" </dev/null
	else
		"$IP" netns exec "$ns" timeout -s KILL "$limit" "$QEMU" \
			-M microvm,x-option-roms=off,rtc=off,acpi=off,auto-kernel-cmdline=off -nodefaults -no-user-config \
			-display none -cpu host -enable-kvm -m 256M -smp 1 -no-reboot \
			-L "${QEMU_DATADIR:-/usr/share/qemu}" -kernel "$dir/bzImage" \
			-initrd "$dir/initramfs-net.cpio.gz" -append "$base_cmdline reboot=t $qemu_mmio $cmdline" \
			-serial stdio -netdev tap,id=n0,ifname=nbt0,script=no,downscript=no,vhost=off \
			-device virtio-net-device,netdev=n0 >"$b.out" 2>"$b.err" </dev/null
	fi
	status=$?
	t1=$(date +%s)
	cleanup
	tr -d '\r' <"$b.out" | sed -n '/^IPERF_JSON_BEGIN$/,/^IPERF_JSON_END$/p' | sed '1d;$d' >"$b.json"
	bps=$("$JQ" -r '.end.sum_received.bits_per_second // empty' "$b.json" 2>/dev/null)
	if [ -n "$bps" ]; then
		echo "NETBENCH_RESULT $vmm $d $round $bps"
		echo "netbench: $vmm $d round $round: $bps bit/s (VMM exit $status, $((t1 - t0)) s wall)" >&2
		return
	fi
	why=$("$JQ" -r '.error // empty' "$b.json" 2>/dev/null)
	[ -n "$why" ] || why="no iperf3 report from the guest (VMM exit $status after $((t1 - t0)) s)"
	err=$(grep -v '^[[:space:]]*$' "$b.err" | tail -n 1)
	[ -z "$err" ] || why="$why: $err"
	echo "NETBENCH_RESULT $vmm $d $round n/a: $(echo "$why" | tr '\n' ' ')"
	echo "netbench: $vmm $d round $round failed: $why; last output:" >&2
	{ tr -d '\r' <"$b.out" | tail -n 15; tail -n 5 "$b.err"; } | sed 's/^/netbench:   /' >&2
}

round=0
while [ "$round" -lt "$rounds" ]; do
	for d in tx rx; do
		case $((round % 3)) in
		0) order="kvmini kvmini-off qemu" ;;
		1) order="kvmini-off qemu kvmini" ;;
		*) order="qemu kvmini kvmini-off" ;;
		esac
		for vmm in $order; do
			run_one "$vmm" "$d" "$round"
		done
	done
	round=$((round + 1))
done
