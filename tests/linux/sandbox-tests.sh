# tests/linux/sandbox-tests.sh - sourced by run-tests.sh: `kvmini exec` sandboxes (virtio-vsock,
# the guest agent, --rootfs images and their cache): exit statuses, streams kept apart, stdin,
# -e/-w/-u, --timeout, bad input.
# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # variables shared with run-tests.sh
#
# Host tools: mkfs.erofs (erofs-utils; from KVMINI_TEST_TOOLS first), busybox (static) for the
# test root. Every run uses its own cache folder under $tmp.

SB_INITRD=$KDIR/sandbox.cpio.gz
SB_ROOT=$tmp/sb-root
SB_CACHE=$tmp/sb-cache
SB_TOOLS=${KVMINI_TEST_TOOLS:-}

# sbk VERB ARGS...: `kvmini VERB ARGS...` with the test's tools and cache folder, bounded by $T.
sbk() {
	PATH="${SB_TOOLS:+$SB_TOOLS:}$PATH" KVMINI_CACHE_DIR=$SB_CACHE timeout -k 5 "$T" "$KVMINI" "$@"
}

# sbx ARGS...: `kvmini exec --kernel BZIMAGE ARGS...` through sbk.
sbx() {
	sbk exec --kernel "$BZIMAGE" "$@"
}

# sb_bg_armed BASE ARGS...: `kx BASE ARGS...` in the background ($bg_pid), once its stdout says
# "armed" (or 60 s passed).
sb_bg_armed() {
	_b=$1
	shift
	# Not through sbk: $bg_pid must be kvmini's (busybox timeout execs it), not a subshell's.
	PATH="${SB_TOOLS:+$SB_TOOLS:}$PATH" KVMINI_CACHE_DIR=$SB_CACHE timeout -k 5 "$T" \
		"$KVMINI" exec --kernel "$BZIMAGE" --initrd "$SB_INITRD" --mem "$MEM" "$@" \
		>"$_b.out" 2>"$_b.err" </dev/null &
	bg_pid=$!
	_i=0
	while [ $_i -lt 600 ] && ! grep -q armed "$_b.out" 2>/dev/null; do
		sleep 0.1
		_i=$((_i + 1))
	done
}

# kx BASE ARGS...: `kvmini exec` with the test kernel, stdout to BASE.out, stderr to BASE.err,
# the guest's console to BASE.console; sets $status.
kx() {
	_b=$1
	shift
	sbx --initrd "$SB_INITRD" --mem "$MEM" --console-log "$_b.console" "$@" >"$_b.out" \
		2>"$_b.err"
	status=$?
	echo "# $(basename "$_b"): kvmini exec exited $status"
	return "$status"
}

# sb_child_of PID: the first child process of PID (busybox has no pgrep): field 4 of
# /proc/N/stat is the parent (the command names here have no spaces).
sb_child_of() {
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v p="$1" '$4 == p { print $1; exit }'
}

# sb_kvmini_pid PID: the kvmini process at or below PID (PID itself when busybox timeout
# exec'd it; else a child or grandchild: a subshell, timeout).
sb_kvmini_pid() {
	_p=$1
	for _lvl in 1 2 3; do
		if [ "$(cat "/proc/$_p/comm" 2>/dev/null)" = kvmini ]; then
			echo "$_p"
			return 0
		fi
		_p=$(sb_child_of "$_p")
		[ -n "$_p" ] || return 1
	done
	return 1
}

# sb_wait_diag PID BASE: wait for the background run PID; if it still runs 15 s before the
# timeout $T, first append what kvmini's threads do (twice, 2 s apart) to BASE.err. Sets $status.
sb_wait_diag() {
	_t0=$(now)
	while kill -0 "$1" 2>/dev/null && [ $(($(now) - _t0)) -lt $((T - 15)) ]; do
		sleep 1
	done
	if kill -0 "$1" 2>/dev/null && _k=$(sb_kvmini_pid "$1"); then
		{
			echo "still running after $((T - 15)) s; kvmini's threads:"
			vmm_threads "$_k"
			sleep 2
			echo "2 s later:"
			vmm_threads "$_k"
		} >>"$2.err"
	fi
	wait "$1"
	status=$?
}

# The test root: static busybox and its applets, a file that is not executable, a marker.
sb_make_root() {
	[ -d "$SB_ROOT" ] && return 0
	# busybox sh may answer `command -v busybox` with the applet name, not a path.
	bb=$(command -v busybox)
	case "$bb" in /*) ;; *) bb=/bin/busybox ;; esac
	[ -x "$bb" ] || return 1
	mkdir -p "$SB_ROOT/bin" "$SB_ROOT/data" || return 1
	cp "$bb" "$SB_ROOT/bin/busybox" || return 1
	for a in sh cat echo id sleep md5sum ls touch pwd kill head wc dd true false; do
		ln -s busybox "$SB_ROOT/bin/$a"
	done
	# A static program of the project's (tests/linux/sb-probe.c), run without a shell.
	[ -f "${KVMINI_TEST_SB_PROBE:-}" ] || return 1
	cp "$KVMINI_TEST_SB_PROBE" "$SB_ROOT/bin/probe" && chmod 755 "$SB_ROOT/bin/probe" || return 1
	printf '#!/bin/sh\necho never\n' >"$SB_ROOT/bin/notexec"
	chmod 644 "$SB_ROOT/bin/notexec"
	echo "host data" >"$SB_ROOT/data/marker"
}

# Every entry of the test root and every file's md5: what "never written" compares.
sb_snapshot() {
	(cd "$SB_ROOT" && find . | sort && find . -type f -exec md5sum {} + | sort)
}

sb_need() {
	need "$BZIMAGE" "$SB_INITRD" || return 1
	sb_make_root || {
		not_ok "$name" "cannot build the test root: busybox, or KVMINI_TEST_SB_PROBE (make linuxtest builds it), missing"
		return 1
	}
}

# Exit statuses: the command's own, 127 not found, 126 not executable, 128+9 killed.
test_sb_statuses() {
	name=sandbox-exit-statuses
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	for spec in "0:true" "1:false" "42:sh -c 'exit 42'" "127:nosuchcommand" \
		"126:/bin/notexec" "137:sh -c 'kill -9 \$\$'"; do
		want=${spec%%:*}
		cmd=${spec#*:}
		eval "kx \"\$b\" --rootfs \"\$SB_ROOT\" -- $cmd"
		if [ "$status" != "$want" ]; then
			not_ok "$name" "'$cmd': status $status, expected $want" "$b"
			return 0
		fi
	done
	grep -q "nosuchcommand" "$b.err" 2>/dev/null || true
	ok "$name"
}

# The root's static test program (no shell in between): statuses, a signal, 500 lines on each
# stream written alternately (each stream byte-exact and in order), and -u, -w, -e as it sees
# them.
test_sb_static_program() {
	name=sandbox-static-program
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	kx "$b.x" --rootfs "$SB_ROOT" -- probe exit 42
	sx=$status
	kx "$b.k" --rootfs "$SB_ROOT" -- probe signal 9
	sk=$status
	kx "$b.i" --rootfs "$SB_ROOT" -- probe interleave 500
	si=$status
	i=0
	: >"$b.want-out"
	: >"$b.want-err"
	while [ $i -lt 500 ]; do
		echo "out $i" >>"$b.want-out"
		echo "err $i" >>"$b.want-err"
		i=$((i + 1))
	done
	kx "$b.u" --rootfs "$SB_ROOT" -u 1000:1001 -w /tmp -e X=seen -- probe info
	su=$status
	if [ "$sx" != 42 ]; then
		not_ok "$name" "probe exit 42: status $sx" "$b.x"
	elif [ "$sk" != 137 ]; then
		not_ok "$name" "probe signal 9: status $sk, expected 137" "$b.k"
	elif [ "$si" != 0 ] || ! cmp -s "$b.i.out" "$b.want-out" ||
		! grep -v '^kvmini: warning' "$b.i.err" | cmp -s - "$b.want-err"; then
		not_ok "$name" "probe interleave 500: status $si, the streams differ" "$b.i"
	elif [ "$su" != 0 ] || [ "$(cat "$b.u.out")" != "uid 1000 gid 1001 cwd /tmp X=seen" ]; then
		not_ok "$name" "probe info: status $su, '$(cat "$b.u.out")'" "$b.u"
	else
		ok "$name"
	fi
}

# stdout and stderr arrive apart, byte-exact, in order; the host directory is never written.
test_sb_streams() {
	name=sandbox-streams
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	sb_snapshot >"$b.before"
	kx "$b" --rootfs "$SB_ROOT" -- sh -c 'echo out1; echo err1 >&2; echo out2; echo err2 >&2;
		touch /data/new; echo changed >/data/marker; cat /data/marker'
	want_out=$(printf 'out1\nout2\nchanged\n' | md5sum)
	want_err=$(printf 'err1\nerr2\n' | md5sum)
	if [ "$status" != 0 ]; then
		not_ok "$name" "status $status" "$b"
	elif [ "$(md5sum <"$b.out")" != "$want_out" ]; then
		not_ok "$name" "stdout differs" "$b"
	elif [ "$(grep -v '^kvmini: warning' "$b.err" | md5sum)" != "$want_err" ]; then
		not_ok "$name" "stderr differs" "$b"
	elif ! sb_snapshot | cmp -s - "$b.before"; then
		sb_snapshot | diff "$b.before" - >"$b.err"
		not_ok "$name" "the host's --rootfs directory was written" "$b"
	else
		ok "$name"
	fi
}

# -i: stdin piped through byte-exact (md5 in = md5 out).
test_sb_stdin() {
	name=sandbox-stdin-md5
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	mb=${KVMINI_TEST_STDIN_MB:-100}
	dd if=/dev/urandom of="$tmp/sb-in" bs=1M count="$mb" 2>/dev/null
	sbx --initrd "$SB_INITRD" --mem "$MEM" --rootfs "$SB_ROOT" -i -- cat <"$tmp/sb-in" \
		>"$b.data" 2>"$b.err" &
	sb_wait_diag $! "$b"
	if [ "$status" != 0 ]; then
		not_ok "$name" "status $status" "$b"
	elif [ "$(md5sum <"$b.data")" != "$(md5sum <"$tmp/sb-in")" ]; then
		not_ok "$name" "$(wc -c <"$b.data") bytes came back, not the same $mb MiB" "$b"
	else
		ok "$name"
	fi
	rm -f "$tmp/sb-in" "$b.data"
}

# -e, -w and -u reach the command.
test_sb_env_user() {
	name=sandbox-env-workdir-user
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	kx "$b" --rootfs "$SB_ROOT" -e FOO=bar -e 'SP=a b' -w /data -u 1000:1001 -- \
		sh -c 'echo "$FOO|$SP|$(pwd)|$(id -u):$(id -g)|$HOME"'
	got=$(cat "$b.out")
	if [ "$status" != 0 ] || [ "$got" != "bar|a b|/data|1000:1001|/" ]; then
		not_ok "$name" "status $status, output '$got', expected 'bar|a b|/data|1000:1001|/'" "$b"
	else
		ok "$name"
	fi
}

# --timeout: 124, and kvmini is gone soon after.
test_sb_timeout() {
	name=sandbox-timeout
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	kx "$b" --rootfs "$SB_ROOT" --timeout 3 -- sleep 1000
	if [ "$status" != 124 ]; then
		not_ok "$name" "status $status, expected 124" "$b"
	elif ! grep -q "longer than 3 s" "$b.err"; then
		not_ok "$name" "no timeout message" "$b"
	else
		ok "$name"
	fi
}

# The image is built once per directory state: a second run reuses it, a change rebuilds it;
# `kvmini cache list` shows both images, `prune` removes them, the next run builds again.
test_sb_cache() {
	name=sandbox-rootfs-cache
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	rm -rf "$SB_CACHE"
	kx "$b.1" --log-level info --rootfs "$SB_ROOT" -- true
	kx "$b.2" --log-level info --rootfs "$SB_ROOT" -- true
	n1=$(ls "$SB_CACHE/rootfs" | wc -l)
	echo new >"$SB_ROOT/data/added"
	kx "$b.3" --log-level info --rootfs "$SB_ROOT" -- cat /data/added
	rm -f "$SB_ROOT/data/added"
	# kvmini cache: both states' images listed; prune removes them; the next run rebuilds.
	sbk cache list >"$b.list.out" 2>&1
	sbk cache prune >"$b.prune.out" 2>&1
	n2=$(ls "$SB_CACHE/rootfs" | wc -l)
	kx "$b.4" --log-level info --rootfs "$SB_ROOT" -- true
	if ! grep -q "built the root image" "$b.1.err"; then
		not_ok "$name" "the first run built no image" "$b.1"
	elif grep -q "built the root image" "$b.2.err"; then
		not_ok "$name" "the second run rebuilt the image" "$b.2"
	elif [ "$n1" != 1 ]; then
		not_ok "$name" "$n1 files in the cache after two runs, expected 1" "$b.2"
	elif ! grep -q "built the root image" "$b.3.err" || [ "$(cat "$b.3.out")" != new ]; then
		not_ok "$name" "a changed directory was not rebuilt" "$b.3"
	elif ls "$SB_CACHE/rootfs" | grep -q tmp; then
		not_ok "$name" "a temporary image was left in the cache" "$b.3"
	elif [ "$(grep -c '^rootfs/.*\.erofs ' "$b.list.out")" != 2 ] ||
		! grep -q "^2 entries" "$b.list.out"; then
		not_ok "$name" "kvmini cache list did not show the two images" "$b.list"
	elif ! grep -q "^removed 2 of 2 entries" "$b.prune.out" || [ "$n2" != 0 ]; then
		not_ok "$name" "kvmini cache prune left $n2 files" "$b.prune"
	elif [ "$status" != 0 ] || ! grep -q "built the root image" "$b.4.err"; then
		not_ok "$name" "the run after prune: status $status, no rebuild" "$b.4"
	else
		ok "$name"
	fi
}

# Bad input: a missing --rootfs, a file as --rootfs, no command, a --console-log that cannot
# be created: 125 with one line; a full cache disk: 125 and nothing half-written.
test_sb_bad_input() {
	name=sandbox-bad-input
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	kx "$b.1" --rootfs "$tmp/no-such-dir" -- true
	s1=$status
	kx "$b.2" --rootfs "$SB_ROOT/bin/notexec" -- true
	s2=$status
	kx "$b.3" --rootfs "$SB_ROOT"
	s3=$status
	sbx --console-log "$tmp/no-such-dir/console" --rootfs "$SB_ROOT" -- true >"$b.5.out" 2>"$b.5.err"
	s5=$?
	mkdir -p "$tmp/sb-full"
	full=""
	if mount -t tmpfs -o size=64k tmpfs "$tmp/sb-full" 2>/dev/null; then
		_cache=$SB_CACHE
		SB_CACHE=$tmp/sb-full
		sbx --initrd "$SB_INITRD" --rootfs "$SB_ROOT" -- true >"$b.4.out" 2>"$b.4.err"
		s4=$?
		SB_CACHE=$_cache
		left=$(ls "$tmp/sb-full/rootfs" 2>/dev/null | wc -l)
		umount "$tmp/sb-full"
		full=ok
	fi
	if [ "$s1" != 125 ] || ! grep -q "no-such-dir: No such file" "$b.1.err"; then
		not_ok "$name" "missing --rootfs: status $s1" "$b.1"
	elif [ "$s2" != 125 ] || ! grep -q "not a directory" "$b.2.err"; then
		not_ok "$name" "a file as --rootfs: status $s2" "$b.2"
	elif [ "$s3" != 125 ] || ! grep -q "no command given" "$b.3.err"; then
		not_ok "$name" "no command: status $s3" "$b.3"
	elif [ "$s5" != 125 ] || ! grep -q "cannot create the console log" "$b.5.err"; then
		not_ok "$name" "a console log that cannot be created: status $s5" "$b.5"
	elif [ -n "$full" ] && { [ "$s4" != 125 ] || [ "$left" != 0 ] ||
		! grep -q "cannot build the root image" "$b.4.err"; }; then
		not_ok "$name" "full cache disk: status $s4, $left files left" "$b.4"
	else
		ok "$name"
	fi
}

# A host program reaches the guest agent's vsock listener through --vsock uds=PATH (the
# Firecracker convention): CONNECT, OK, then the agent's HELLO; a port nobody listens on is
# refused.
test_sb_vsock_uds() {
	name=vsock-uds-host-to-guest
	wanted "$name" || return 0
	sb_need || return 0
	vc=${KVMINI_TEST_VSOCK_CLIENT:-}
	if [ -z "$vc" ] || [ ! -x "$vc" ]; then
		not_ok "$name" "KVMINI_TEST_VSOCK_CLIENT (tests/linux/vsock-client) not built"
		return 0
	fi
	b=$tmp/$name
	# The image the other tests built (or build it now through a first exec).
	kx "$b.0" --rootfs "$SB_ROOT" -- true
	img=$(ls "$SB_CACHE"/rootfs/*.erofs 2>/dev/null | head -n 1)
	sock=$tmp/v.sock
	timeout -k 5 "$T" "$KVMINI" run --kernel "$BZIMAGE" --initrd "$SB_INITRD" --mem "$MEM" \
		--disk "$img,ro" --vsock "cid=77,uds=$sock" --cmdline kvmini.agent=1 \
		>"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	i=0
	hello=""
	while [ $i -lt 600 ]; do
		if [ -S "$sock" ]; then
			hello=$("$vc" "$sock" 1024 2 </dev/null 2>"$b.client" | head -c 16 | od -An -tx1 | tr -d ' \n')
			[ -z "$hello" ] || break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	"$vc" "$sock" 4444 1 </dev/null >/dev/null 2>"$b.refused"
	refused=$?
	kill -TERM "$bg_pid" 2>/dev/null
	wait "$bg_pid"
	bg_pid=""
	# HELLO: len 8, type 1, stream 0, version 1, flags 0.
	if [ "$hello" != "0800000001000000010000000000000000" ] &&
		[ "$hello" != "08000000010000000100000000000000" ]; then
		not_ok "$name" "no HELLO from the agent through $sock (got '$hello')" "$b"
	elif ! grep -q '^vsock-client: OK [0-9]' "$b.client"; then
		not_ok "$name" "no OK line" "$b"
	elif [ "$refused" != 1 ]; then
		not_ok "$name" "port 4444 (no listener) was not refused" "$b"
	elif [ -e "$sock" ]; then
		not_ok "$name" "kvmini left $sock behind" "$b"
	else
		ok "$name"
	fi
}

# -t: the command runs on a pseudo-terminal.
test_sb_tty() {
	name=sandbox-tty
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	kx "$b" --rootfs "$SB_ROOT" -t -- sh -c 'tty; echo "TERM=$TERM"'
	if [ "$status" != 0 ] || ! grep -q '^/dev/pts/[0-9]' "$b.out" ||
		! grep -q 'TERM=xterm' "$b.out"; then
		not_ok "$name" "status $status, no pty in the output" "$b"
	else
		ok "$name"
	fi
}

# A guest without the agent (the plain initramfs: init finds no /sbin/kvmini-agent and the guest
# reboots): 125 naming the reason, not a hang. (An agent that accepts and then stays silent is
# test_agent's test_fake_agents: bounded by the same timeout.)
test_sb_no_agent() {
	name=sandbox-no-agent
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	sbx --initrd "$INITRD" --mem "$MEM" --agent-timeout 5 --rootfs "$SB_ROOT" -- true \
		>"$b.out" 2>"$b.err" </dev/null
	status=$?
	if [ "$status" != 125 ] || ! grep -Eq "did not answer within 5 s|stopped before its agent answered" "$b.err"; then
		not_ok "$name" "status $status, expected 125 naming the agent" "$b"
	else
		ok "$name"
	fi
}

# The guest goes away while the command runs (here it reboots itself): 125 with the reason.
test_sb_guest_dies() {
	name=sandbox-guest-dies
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	kx "$b" --rootfs "$SB_ROOT" -- sh -c 'echo before; sleep 1; busybox reboot -f; sleep 100'
	if [ "$status" != 125 ] || ! grep -q "the VM stopped while the command ran" "$b.err" ||
		! grep -q before "$b.out"; then
		not_ok "$name" "status $status, expected 125 and the reason" "$b"
	else
		ok "$name"
	fi
}

# SIGINT at the host goes to the command first (it exits 130 as sh does for SIGINT); a second
# SIGINT destroys the VM.
test_sb_sigint() {
	name=sandbox-sigint
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	sb_bg_armed "$b" --rootfs "$SB_ROOT" -- \
		sh -c 'trap "echo got-int; exit 7" INT; echo armed; while :; do sleep 0.1; done'
	kill -INT "$bg_pid"
	wait "$bg_pid"
	s1=$?
	# The second case: a command that ignores SIGINT; two of them end the VM.
	sb_bg_armed "$b.2" --rootfs "$SB_ROOT" -- sh -c 'trap "" INT; echo armed; sleep 1000'
	kill -INT "$bg_pid"
	sleep 1
	kill -INT "$bg_pid"
	wait "$bg_pid"
	s2=$?
	bg_pid=""
	if [ "$s1" != 7 ] || ! grep -q got-int "$b.out"; then
		not_ok "$name" "status $s1 after one SIGINT, expected the command's 7" "$b"
	elif [ "$s2" != 130 ]; then
		not_ok "$name" "status $s2 after two SIGINTs, expected 130" "$b.2"
	else
		ok "$name"
	fi
}

# A command that floods stdout: every byte arrives, in order, and kvmini's resident memory stays
# within the guest's RAM plus a little (nothing piles up on the host side).
test_sb_flood() {
	name=sandbox-stdout-flood
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	mb=${KVMINI_TEST_FLOOD_MB:-1024}
	mkfifo "$b.fifo"
	md5sum <"$b.fifo" >"$b.md5" &
	sum_pid=$!
	sbx --initrd "$SB_INITRD" --mem 128M --rootfs "$SB_ROOT" -- \
		dd if=/dev/zero bs=1M count="$mb" >"$b.fifo" 2>"$b.err" </dev/null &
	bg_pid=$!
	peak=0
	while kill -0 "$bg_pid" 2>/dev/null; do
		kp=$(sb_kvmini_pid "$bg_pid")
		r=$(awk '/^VmRSS/ { print $2 }' "/proc/$kp/status" 2>/dev/null)
		[ -z "$r" ] || [ "$r" -le "$peak" ] || peak=$r
		sleep 0.5
	done
	wait "$bg_pid"
	status=$?
	bg_pid=""
	wait "$sum_pid"
	want=$(dd if=/dev/zero bs=1M count="$mb" 2>/dev/null | md5sum)
	echo "# $name: $mb MiB through stdout, kvmini peak RSS $((peak / 1024)) MiB (guest RAM 128 MiB)"
	if [ "$status" != 0 ]; then
		not_ok "$name" "status $status" "$b"
	elif [ "$(cat "$b.md5")" != "$want" ]; then
		not_ok "$name" "the $mb MiB did not arrive intact" "$b"
	elif [ "$peak" = 0 ]; then
		not_ok "$name" "could not read kvmini's resident memory" "$b"
	elif [ "$peak" -gt $(((128 + 96) * 1024)) ]; then
		not_ok "$name" "kvmini grew to $((peak / 1024)) MiB resident" "$b"
	else
		ok "$name"
	fi
}

# Ten sandboxes at once: each gets its own output and status.
test_sb_concurrent() {
	name=sandbox-ten-at-once
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	pids=""
	# Ten guests booting at once on the nested machine's two emulated CPUs take their time:
	# a longer wait for the agent than the default 60 s (this test is about isolation).
	for n in 0 1 2 3 4 5 6 7 8 9; do
		kx "$b.$n" --mem 96M --agent-timeout 200 --rootfs "$SB_ROOT" -- \
			sh -c "echo sandbox-$n; exit $((40 + n))" &
		pids="$pids $!"
	done
	bad=""
	first_bad=""
	n=0
	for p in $pids; do
		wait "$p"
		s=$?
		if [ "$s" = 125 ] && l2_reset_at_boot "$b.$n.err" && ! grep -q "the command ran" "$b.$n.err"; then
			echo "# $name: sandbox $n: guest reset at boot (the nested machine's known fault); once more"
			kx "$b.$n" --mem 96M --agent-timeout 200 --rootfs "$SB_ROOT" -- \
				sh -c "echo sandbox-$n; exit $((40 + n))"
			s=$status
		fi
		if [ "$s" != $((40 + n)) ] || [ "$(cat "$b.$n.out")" != "sandbox-$n" ]; then
			bad="$bad $n(status $s, '$(cat "$b.$n.out")')"
			[ -n "$first_bad" ] || first_bad=$b.$n
		fi
		n=$((n + 1))
	done
	if [ -n "$bad" ]; then
		not_ok "$name" "wrong results:$bad" "$first_bad"
	else
		ok "$name"
	fi
}

# kvmini run --rootfs --name N --detach keeps the sandbox guest up; kvmini exec N runs commands
# in it (twice at once, each with its own output), the guest's state lasts between them, exec
# into a VM that does not run is 125; kvmini cp copies a 50 MB file and a tree in and back out
# byte-exact, and a missing guest path is 125; `kvmini stats` counts the vsock connections and
# the agent's one knock.
test_sb_exec_name() {
	name=sandbox-exec-name
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	vm=sbvm
	sbk run --detach --name "$vm" --rootfs "$SB_ROOT" --kernel "$BZIMAGE" \
		--initrd "$SB_INITRD" --mem "$MEM" >"$b.run.out" 2>"$b.run.err" </dev/null
	rs=$?
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -- true >"$b.0.out" 2>"$b.0.err"
	s0=$?
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -- sh -c 'echo A; sleep 1; echo A2; exit 3' \
		>"$b.a.out" 2>"$b.a.err" &
	pa=$!
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -- sh -c 'echo B; sleep 1; echo B2 >&2; exit 4' \
		>"$b.b.out" 2>"$b.b.err" &
	pb=$!
	wait "$pa"
	sa=$?
	wait "$pb"
	sb=$?
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -- sh -c 'echo kept >/tmp/state' >/dev/null 2>&1
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -- cat /tmp/state >"$b.c.out" 2>"$b.c.err"
	sc=$?
	timeout -k 5 "$T" "$KVMINI" exec no-such-vm -- true >"$b.d.out" 2>"$b.d.err"
	sd=$?
	# Options after the name, as docker exec takes them; a working directory the guest lacks
	# is the agent's refusal: 125 with its reason.
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -e X=from-name -- sh -c 'echo "$X"' \
		>"$b.x.out" 2>"$b.x.err"
	sx=$?
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -w /no-such-dir -- true >"$b.w.out" 2>"$b.w.err"
	sw=$?
	# kvmini cp both ways: a 50 MB file and a small tree, byte-exact.
	mkdir -p "$tmp/cp-src/sub" "$tmp/cp-back"
	dd if=/dev/urandom of="$tmp/cp-src/big" bs=1M count=50 2>/dev/null
	echo small >"$tmp/cp-src/sub/small"
	ln -s sub/small "$tmp/cp-src/link"
	timeout -k 5 "$T" "$KVMINI" cp "$tmp/cp-src" "$vm:/tmp" >"$b.e.out" 2>"$b.e.err"
	se=$?
	timeout -k 5 "$T" "$KVMINI" exec "$vm" -- md5sum /tmp/cp-src/big >"$b.f.out" 2>"$b.f.err"
	guest_md5=$(cut -d' ' -f1 "$b.f.out")
	timeout -k 5 "$T" "$KVMINI" cp "$vm:/tmp/cp-src" "$tmp/cp-back" >"$b.g.out" 2>"$b.g.err"
	sg=$?
	timeout -k 5 "$T" "$KVMINI" cp "$vm:/no/such/file" "$tmp/cp-back" >"$b.h.out" 2>"$b.h.err"
	sh_=$?
	# The vsock counters: every exec and cp above was a host connection the agent took.
	timeout -k 5 "$T" "$KVMINI" stats "$vm" --json >"$b.s.out" 2>"$b.s.err"
	hc=$(tr -d ' \n' <"$b.s.out" | sed -n 's/.*"vsock":{[^}]*"host_connects":\([0-9]*\).*/\1/p')
	rk=$(tr -d ' \n' <"$b.s.out" | sed -n 's/.*"vsock":{[^}]*"ready_knocks":\([0-9]*\).*/\1/p')
	timeout -k 5 "$T" "$KVMINI" destroy "$vm" >/dev/null 2>&1
	host_md5=$(md5sum <"$tmp/cp-src/big" | cut -d' ' -f1)
	cp_ok=1
	cmp -s "$tmp/cp-src/big" "$tmp/cp-back/cp-src/big" &&
		[ "$(cat "$tmp/cp-back/cp-src/sub/small" 2>/dev/null)" = small ] &&
		[ "$(readlink "$tmp/cp-back/cp-src/link")" = sub/small ] || cp_ok=0
	rm -rf "$tmp/cp-src" "$tmp/cp-back"
	if [ "$rs" != 0 ]; then
		not_ok "$name" "run --detach --rootfs exited $rs" "$b.run"
	elif [ "$s0" != 0 ]; then
		not_ok "$name" "exec $vm -- true: status $s0" "$b.0"
	elif [ "$sa" != 3 ] || [ "$(cat "$b.a.out")" != "$(printf 'A\nA2')" ]; then
		not_ok "$name" "first concurrent exec: status $sa" "$b.a"
	elif [ "$sb" != 4 ] || [ "$(cat "$b.b.out")" != B ] || ! grep -q '^B2$' "$b.b.err"; then
		not_ok "$name" "second concurrent exec: status $sb" "$b.b"
	elif [ "$sc" != 0 ] || [ "$(cat "$b.c.out")" != kept ]; then
		not_ok "$name" "the guest's state did not last between execs" "$b.c"
	elif [ "$sd" != 125 ] || ! grep -q "no running VM is named 'no-such-vm'" "$b.d.err"; then
		not_ok "$name" "exec into a missing VM: status $sd" "$b.d"
	elif [ "$sx" != 0 ] || [ "$(cat "$b.x.out")" != from-name ]; then
		not_ok "$name" "exec NAME -e ...: status $sx, '$(cat "$b.x.out")'" "$b.x"
	elif [ "$sw" != 125 ] || ! grep -q "no-such-dir" "$b.w.err"; then
		not_ok "$name" "exec NAME -w /no-such-dir: status $sw, no reason" "$b.w"
	elif [ "$se" != 0 ] || [ "$guest_md5" != "$host_md5" ]; then
		not_ok "$name" "cp into the guest: status $se, md5 '$guest_md5' vs '$host_md5'" "$b.e"
	elif [ "$sg" != 0 ] || [ "$cp_ok" != 1 ]; then
		not_ok "$name" "cp out of the guest: status $sg, the copy differs" "$b.g"
	elif [ "$sh_" != 125 ] || ! grep -q "no such file" "$b.h.err"; then
		not_ok "$name" "cp of a missing guest file: status $sh_" "$b.h"
	elif [ "${hc:-0}" -lt 10 ]; then
		not_ok "$name" "stats: vsock host_connects '${hc}', expected at least 10" "$b.s"
	elif [ "${rk:-}" != 1 ]; then
		# The agent knocks once, when it starts listening (docs/agent-protocol.md).
		not_ok "$name" "stats: vsock ready_knocks '${rk}', expected 1" "$b.s"
	else
		ok "$name"
	fi
}

# A sandbox VM from a definition (the config file's "rootfs" and "vsock" keys): define, start,
# exec NAME, dumpconfig shows the definition as given (not the root image kvmini made). Then
# a command writes a file on the definition's ext4 disk and `kvmini shutdown` ends the VM
# with status 0 and the disk checks clean (init unmounted it).
test_sb_define() {
	name=sandbox-define-start
	wanted "$name" || return 0
	sb_need || return 0
	need_tool mke2fs e2fsck || return 0
	b=$tmp/$name
	defs=$tmp/sb-defs
	mkdir -p "$defs"
	if ! "$MKE2FS" -q -t ext4 -F "$b.img" 32M >"$b.mkfs" 2>&1; then
		not_ok "$name" "mke2fs failed" "$b.mkfs"
		return 0
	fi
	printf '{"name": "sbdef", "rootfs": "%s", "kernel": "%s", "initrd": "%s", "memory_mib": %s, "vsock": {"cid": 0, "uds": null}, "disks": [{"path": "%s"}]}\n' \
		"$(realpath "$SB_ROOT")" "$(realpath "$BZIMAGE")" "$(realpath "$SB_INITRD")" "${MEM%M}" \
		"$(realpath "$b.img")" >"$b.json"
	dk() { # in a subshell: the definitions folder is this test's alone
		(
			KVMINI_CONFIG_DIR=$defs
			export KVMINI_CONFIG_DIR
			sbk "$@"
		)
	}
	dk define "$b.json" >"$b.d.out" 2>"$b.d.err"
	sd=$?
	dk start sbdef >"$b.s.out" 2>"$b.s.err"
	ss=$?
	dk exec sbdef -- probe info >"$b.x.out" 2>"$b.x.err"
	sx=$?
	dk dumpconfig sbdef >"$b.c.out" 2>"$b.c.err"
	dk exec sbdef -- sh -c 'mkdir -p /tmp/m && busybox mount -t ext4 /dev/vdb /tmp/m &&
		dd if=/dev/urandom of=/tmp/m/f bs=1k count=512 2>/dev/null && echo written' \
		>"$b.w.out" 2>"$b.w.err"
	dk shutdown sbdef --timeout 60 >"$b.h.out" 2>"$b.h.err"
	sh_st=$?
	dk destroy sbdef >/dev/null 2>&1
	dk undefine sbdef >/dev/null 2>&1
	if [ "$sd" != 0 ] || [ "$ss" != 0 ]; then
		not_ok "$name" "define exited $sd, start $ss" "$b.s"
	elif [ "$sx" != 0 ] || ! grep -q '^uid 0 gid 0 cwd / ' "$b.x.out"; then
		not_ok "$name" "exec sbdef: status $sx, '$(cat "$b.x.out")'" "$b.x"
	elif ! grep -q "\"rootfs\": \"$(realpath "$SB_ROOT")\"" "$b.c.out" || grep -q 'kvmini-rootfs\|kvmini.agent' "$b.c.out"; then
		not_ok "$name" "dumpconfig does not show the definition as given" "$b.c"
	elif [ "$(cat "$b.w.out")" != written ]; then
		not_ok "$name" "the command did not write its file on /dev/vdb" "$b.w"
	elif [ "$sh_st" != 0 ]; then
		not_ok "$name" "shutdown exited $sh_st" "$b.h"
	elif ! "$E2FSCK" -fn "$b.img" >"$b.fsck" 2>&1; then
		not_ok "$name" "e2fsck -fn: the disk is not clean after shutdown" "$b.fsck"
	else
		ok "$name"
	fi
}

# sb_make_oci DIR: an OCI image layout built by hand (no registry, no tools but busybox): layer 1
# the test root plus /etc/passwd and /a/gone, layer 2 (gzip) a whiteout of /a/gone and /b/new;
# a config with Entrypoint, Cmd, Env, WorkingDir and User; tag v1.
sb_make_oci() {
	o=$1
	rm -rf "$o" "$tmp/oci-l1" "$tmp/oci-l2"
	mkdir -p "$o/blobs/sha256" "$tmp/oci-l2/a" "$tmp/oci-l2/b"
	cp -a "$SB_ROOT" "$tmp/oci-l1"
	mkdir -p "$tmp/oci-l1/etc" "$tmp/oci-l1/a" "$tmp/oci-l1/work"
	printf 'root:x:0:0::/root:/bin/sh\napp:x:1234:4321::/work:/bin/sh\n' >"$tmp/oci-l1/etc/passwd"
	echo old >"$tmp/oci-l1/a/gone"
	: >"$tmp/oci-l2/a/.wh.gone"
	echo new >"$tmp/oci-l2/b/new"
	(cd "$tmp/oci-l1" && tar -cf "$tmp/l1.tar" .) || return 1
	(cd "$tmp/oci-l2" && tar -cf - . | gzip -n >"$tmp/l2.tgz") || return 1
	blob() { # FILE: store it as a blob, print its digest
		_h=$(sha256sum <"$1" | cut -d' ' -f1)
		mv "$1" "$o/blobs/sha256/$_h"
		echo "sha256:$_h"
	}
	d1=$(blob "$tmp/l1.tar")
	d2=$(blob "$tmp/l2.tgz")
	printf '%s' '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo from-cmd $FOO $(pwd) $(id -u):$(id -g)"],"Env":["PATH=/bin","FOO=img"],"WorkingDir":"/work","User":"app"}}' >"$tmp/cfg.json"
	dc=$(blob "$tmp/cfg.json")
	printf '{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s"},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s"}]}' \
		"$dc" "$d1" "$d2" >"$tmp/man.json"
	dm=$(blob "$tmp/man.json")
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
		"$dm" >"$o/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$o/oci-layout"
	rm -rf "$tmp/oci-l1" "$tmp/oci-l2"
	echo "$d1" >"$o.layer1"
}

# --image oci:DIR:TAG: the image's Cmd, Env, WorkingDir and User apply; whiteouts hide files; the
# unpacked image is cached; a cache disk that fills up while unpacking and a corrupt blob are 125,
# and the first leaves nothing in the cache.
test_sb_image() {
	name=sandbox-image-oci
	wanted "$name" || return 0
	sb_need || return 0
	b=$tmp/$name
	oci=$tmp/oci
	if ! sb_make_oci "$oci"; then
		not_ok "$name" "could not build the OCI layout"
		return 0
	fi
	kx "$b.1" --log-level info --image "oci:$oci:v1"
	s1=$status
	kx "$b.2" --log-level info --image "oci:$oci:v1" -e FOO=cli -u 0 -- \
		'test ! -e /a/gone && cat /b/new && echo "$FOO"'
	s2=$status
	# A cache on a disk too small for the unpacked image: 125, nothing left in images/.
	mkdir -p "$tmp/img-full"
	full=""
	if mount -t tmpfs -o size=256k tmpfs "$tmp/img-full" 2>/dev/null; then
		_cache=$SB_CACHE
		SB_CACHE=$tmp/img-full
		kx "$b.4" --image "oci:$oci:v1" -- true
		s4=$status
		SB_CACHE=$_cache
		left=$(ls "$tmp/img-full/images" 2>/dev/null | wc -l)
		umount "$tmp/img-full"
		full=ok
	fi
	# Corrupt the first layer's blob: a different byte in the middle.
	h=$(cut -d: -f2 "$oci.layer1")
	printf 'X' | dd of="$oci/blobs/sha256/$h" bs=1 seek=5000 conv=notrunc 2>/dev/null
	rm -rf "$SB_CACHE/images"
	kx "$b.3" --image "oci:$oci:v1" -- true
	s3=$status
	if [ "$s1" != 0 ] || [ "$(cat "$b.1.out")" != "from-cmd img /work 1234:4321" ]; then
		not_ok "$name" "the image's config: status $s1, output '$(cat "$b.1.out")'" "$b.1"
	elif ! grep -q "unpacked the image" "$b.1.err"; then
		not_ok "$name" "the first run did not unpack the image" "$b.1"
	elif [ "$s2" != 0 ] || [ "$(cat "$b.2.out")" != "$(printf 'new\ncli')" ]; then
		not_ok "$name" "layers, -e and -u over the image: status $s2" "$b.2"
	elif grep -q "unpacked the image" "$b.2.err"; then
		not_ok "$name" "the second run unpacked the image again" "$b.2"
	elif [ "$s3" != 125 ] || ! grep -q "corrupt" "$b.3.err"; then
		not_ok "$name" "a corrupt layer: status $s3" "$b.3"
	elif [ -z "$full" ]; then
		not_ok "$name" "could not mount a small tmpfs for the full-disk case"
	elif [ "$s4" != 125 ] || [ "$left" != 0 ] || ! grep -Eq "disk (is )?full" "$b.4.err"; then
		not_ok "$name" "a full cache disk while unpacking: status $s4, $left entries left" "$b.4"
	else
		ok "$name"
	fi
}

# examples/sandbox.c, the library's own sandbox: the command's streams apart and its status.
test_sb_example() {
	name=sandbox-library-example
	wanted "$name" || return 0
	sb_need || return 0
	ex=${KVMINI_TEST_SANDBOX_EXAMPLE:-}
	if [ -z "$ex" ] || [ ! -x "$ex" ]; then
		not_ok "$name" "KVMINI_TEST_SANDBOX_EXAMPLE (examples/sandbox) not built"
		return 0
	fi
	b=$tmp/$name
	kx "$b.0" --rootfs "$SB_ROOT" -- true # the image, in the cache
	img=$(ls "$SB_CACHE"/rootfs/*.erofs 2>/dev/null | head -n 1)
	timeout -k 5 "$T" "$ex" "$BZIMAGE" "$SB_INITRD" "$img" \
		sh -c 'echo to-stdout; echo to-stderr >&2; exit 9' >"$b.out" 2>"$b.err" </dev/null
	status=$?
	if [ "$status" != 9 ] || [ "$(cat "$b.out")" != to-stdout ] ||
		! grep -q '^to-stderr$' "$b.err" || grep -q to-stdout "$b.err"; then
		not_ok "$name" "status $status, streams not as written" "$b"
	else
		ok "$name"
	fi
}

run_sandbox_tests() {
	test_sb_statuses
	test_sb_static_program
	test_sb_streams
	test_sb_stdin
	test_sb_env_user
	test_sb_timeout
	test_sb_cache
	test_sb_bad_input
	test_sb_vsock_uds
	test_sb_tty
	test_sb_no_agent
	test_sb_guest_dies
	test_sb_sigint
	test_sb_flood
	test_sb_concurrent
	test_sb_exec_name
	test_sb_define
	test_sb_image
	test_sb_example
}
