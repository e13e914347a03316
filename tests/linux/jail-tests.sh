# tests/linux/jail-tests.sh - sourced by run-tests.sh: kvmini run --jail (POSIX sh).
# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # variables shared with run-tests.sh
#
# A jailed VM (uid:gid 4242:4242, its tap made beforehand for that user in a network namespace
# given with --netns, in a cgroup of its own with cpu.max and memory.max) writes its disk and
# pings the host; meanwhile the jailed kvmini (the child of the one started) is looked at from
# outside: every thread runs as 4242 with no capability under its seccomp filter, in mount
# and PID namespaces of its own and in the cgroup, and its root holds only dev, files and proc
# (the host's root is not there). SIGTERM to the outer kvmini ends both with 143, DIR is
# empty again and the cgroup is gone. Then the refusals: DIR not empty, not root's,
# missing; --uid 0; --jail with --name.

JAIL_UID=4242

# task_field PID FIELD: FIELD of every task of PID, one per line.
task_field() {
	for _t in /proc/"$1"/task/*; do
		sed -n "s/^$2:[[:space:]]*//p" "$_t/status" 2>/dev/null
	done
}

test_jail_runs() {
	name=jail-boots-and-does-io
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_tool ip || return 0
	b=$tmp/$name
	ns=kvjail$$
	if ! new_ns "$ns" ||
		! "$IP" -n "$ns" tuntap add dev kvj0 mode tap vnet_hdr user "$JAIL_UID" ||
		! "$IP" -n "$ns" addr add 10.80.0.1/24 dev kvj0 || ! "$IP" -n "$ns" link set kvj0 up; then
		not_ok "$name" "cannot set up namespace $ns with tap kvj0 for uid $JAIL_UID"
		net_cleanup
		return 0
	fi
	jail=$tmp/jail-dir
	mkdir -p "$jail"
	cg=kvmini-jail-test-$$
	# L2 has no cgroup v2 mounted unless we do it.
	[ -e /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 cgroup2 /sys/fs/cgroup
	truncate -s 64M "$b.img"
	chown "$JAIL_UID:$JAIL_UID" "$b.img"
	"$KVMINI" run --jail "$jail" --uid "$JAIL_UID" --gid "$JAIL_UID" --netns "/run/netns/$ns" \
		--cgroup "$cg" --cpu-max 50000/100000 --memory-max 512M \
		--kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$b.img" --net tap=kvj0 \
		--cmdline 'kvmini.ip=10.80.0.2/24 -- dd if=/dev/urandom of=/dev/vda bs=1M count=4 conv=fsync 2>/dev/null && md5sum /dev/vda | cut -c1-32 | sed s/^/JAIL_MD5=/ && ping -c 2 -W 5 10.80.0.1 && echo JAIL_IO_DONE && sleep 600' \
		>"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	if ! wait_for "$b" JAIL_IO_DONE "$bg_pid"; then
		give_up "$b" "the jailed guest never finished its disk and network I/O"
		return 0
	fi
	inner=$(cat /proc/"$bg_pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m1 .)
	why=""
	if [ -z "$inner" ]; then
		why="no jailed child of kvmini ($bg_pid)"
	else
		uids=$(task_field "$inner" Uid | sort -u)
		gids=$(task_field "$inner" Gid | sort -u)
		caps=$(task_field "$inner" CapEff | sort -u)
		prm=$(task_field "$inner" CapPrm | sort -u)
		bnd=$(task_field "$inner" CapBnd | sort -u)
		filt=$(task_field "$inner" Seccomp | sort -u)
		root_ls=$(ls /proc/"$inner"/root/ 2>&1 | tr '\n' ' ')
		echo "# jailed kvmini $inner: uid [$uids] gid [$gids] CapEff [$caps] root: $root_ls"
		want_ids=$(printf '%s\t%s\t%s\t%s' "$JAIL_UID" "$JAIL_UID" "$JAIL_UID" "$JAIL_UID")
		if [ "$uids" != "$want_ids" ] || [ "$gids" != "$want_ids" ]; then
			why="the jailed kvmini's threads run as uid [$uids] gid [$gids], not $JAIL_UID"
		elif [ "$caps" != 0000000000000000 ] || [ "$prm" != 0000000000000000 ] ||
			[ "$bnd" != 0000000000000000 ]; then
			why="a jailed thread has capabilities: CapEff [$caps] CapPrm [$prm] CapBnd [$bnd]"
		elif [ "$filt" != 2 ]; then
			why="a jailed thread without a seccomp filter: [$filt]"
		elif ! grep -qx "$inner" "/sys/fs/cgroup/$cg/cgroup.procs" 2>/dev/null; then
			why="the jailed kvmini is not in cgroup $cg: $(cat "/sys/fs/cgroup/$cg/cgroup.procs" 2>&1)"
		elif [ "$(cat "/sys/fs/cgroup/$cg/cpu.max")" != "50000 100000" ] ||
			[ "$(cat "/sys/fs/cgroup/$cg/memory.max")" != 536870912 ]; then
			why="cgroup $cg has cpu.max '$(cat "/sys/fs/cgroup/$cg/cpu.max")' memory.max '$(cat "/sys/fs/cgroup/$cg/memory.max")'"
		elif [ "$root_ls" != "dev files proc " ]; then
			why="the jail's root holds: $root_ls"
		elif [ -e /proc/"$inner"/root/etc ] || [ -e /proc/"$inner"/root/work ]; then
			why="the host's root is reachable from the jail"
		elif [ "$(readlink /proc/"$inner"/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ] ||
			[ "$(readlink /proc/"$inner"/ns/pid)" = "$(readlink /proc/self/ns/pid)" ]; then
			why="the jailed kvmini shares our mount or PID namespace"
		elif [ "$(readlink /proc/"$inner"/ns/net)" != "$(readlink /run/netns/"$ns" 2>/dev/null || "$IP" netns exec "$ns" readlink /proc/self/ns/net)" ]; then
			why="the jailed kvmini is not in the network namespace --netns named"
		fi
	fi
	kill -TERM "$bg_pid"
	stop_bg "$bg_pid" 30
	bg_pid=""
	net_cleanup
	tr -d '\r' <"$b.out" >"$b.log"
	guest_md5=$(sed -n 's/^JAIL_MD5=\([0-9a-f]*\).*/\1/p' "$b.log")
	host_md5=$(dd if="$b.img" bs=1M count=64 2>/dev/null | md5sum | cut -c1-32)
	if [ -n "$why" ]; then
		not_ok "$name" "$why" "$b"
	elif [ -z "$guest_md5" ] || [ "$guest_md5" != "$host_md5" ]; then
		not_ok "$name" "the image the guest wrote (md5 $guest_md5) is not the host's ($host_md5)" "$b"
	elif [ "$status" != 143 ]; then
		not_ok "$name" "kvmini exited $status after SIGTERM, expected 143" "$b"
	elif [ -n "$(ls -A "$jail")" ]; then
		not_ok "$name" "the jail directory is not empty afterwards: $(ls -A "$jail")" "$b"
	elif [ -e "/sys/fs/cgroup/$cg" ]; then
		not_ok "$name" "cgroup $cg is still there afterwards" "$b"
	else
		ok "$name"
	fi
}

test_jail_refusals() {
	need "$BZIMAGE" "$INITRD" || return 0
	set -- --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM"
	d=$tmp/jail-full
	mkdir -p "$d" && : >"$d/left-over"
	expect_error jail-dir-not-empty 3 "is not empty" "$@" --jail "$d" --uid 4242 --gid 4242
	d=$tmp/jail-theirs
	mkdir -p "$d" && chown 4242 "$d"
	expect_error jail-dir-not-roots 3 "belongs to uid 4242, not root" "$@" --jail "$d" \
		--uid 4242 --gid 4242
	expect_error jail-dir-missing 3 "make an empty directory" "$@" --jail "$tmp/jail-none" \
		--uid 4242 --gid 4242
	mkdir -p "$tmp/jail-ok"
	expect_error jail-uid-zero 2 "not a numeric id other than 0" "$@" --jail "$tmp/jail-ok" \
		--uid 0 --gid 4242
	expect_error jail-with-name 2 "not with --detach, --name" "$@" --jail "$tmp/jail-ok" \
		--uid 4242 --gid 4242 --name jailed
	expect_error jail-uid-without-jail 2 "go with --jail DIR" "$@" --uid 4242
	expect_error jail-with-vsock-uds 2 "--vsock uds= \\(not yet\\)" "$@" --jail "$tmp/jail-ok" \
		--uid 4242 --gid 4242 --vsock "uds=$tmp/jail-vsock.sock"
}

# The kvmini outside killed with SIGKILL (it cannot forward anything): the jailed one dies
# with it (PR_SET_PDEATHSIG, set again after the change of user, which clears it).
test_jail_dies_with_parent() {
	name=jail-dies-with-outer-kvmini
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	jail=$tmp/jail-dir2
	mkdir -p "$jail"
	"$KVMINI" run --jail "$jail" --uid "$JAIL_UID" --gid "$JAIL_UID" --kernel "$BZIMAGE" \
		--initrd "$INITRD" --mem "$MEM" --cmdline '-- sleep 600' >"$b.out" 2>"$b.err" \
		</dev/null &
	bg_pid=$!
	if ! wait_for "$b" KVMINI_GUEST_READY "$bg_pid"; then
		give_up "$b" "the jailed guest never booted"
		return 0
	fi
	inner=$(cat /proc/"$bg_pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -m1 .)
	kill -KILL "$bg_pid"
	wait "$bg_pid" 2>/dev/null
	bg_pid=""
	gone=""
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		[ -n "$inner" ] && [ -d "/proc/$inner" ] || { gone=1; break; }
		sleep 1
	done
	if [ -z "$inner" ]; then
		not_ok "$name" "no jailed child of kvmini to watch" "$b"
	elif [ -z "$gone" ]; then
		kill -KILL "$inner" 2>/dev/null
		not_ok "$name" "the jailed kvmini ($inner) outlived the one outside by 10 s" "$b"
	else
		ok "$name"
	fi
}

run_jail_tests() {
	test_jail_runs
	test_jail_dies_with_parent
	test_jail_refusals
}
