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

# kx BASE ARGS...: `kvmini exec` with the test kernel, stdout to BASE.out, stderr to BASE.err;
# sets $status.
kx() {
	_b=$1
	shift
	PATH="${SB_TOOLS:+$SB_TOOLS:}$PATH" KVMINI_CACHE_DIR=$SB_CACHE timeout -k 5 "$T" \
		"$KVMINI" exec --kernel "$BZIMAGE" --initrd "$SB_INITRD" --mem "$MEM" "$@" \
		>"$_b.out" 2>"$_b.err"
	status=$?
	echo "# $(basename "$_b"): kvmini exec exited $status"
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
	sb_make_root || { not_ok "$name" "busybox not found to build the test root"; return 1; }
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
	mb=${KVMINI_TEST_STDIN_MB:-32}
	dd if=/dev/urandom of="$tmp/sb-in" bs=1M count="$mb" 2>/dev/null
	PATH="${SB_TOOLS:+$SB_TOOLS:}$PATH" KVMINI_CACHE_DIR=$SB_CACHE timeout -k 5 "$T" \
		"$KVMINI" exec --kernel "$BZIMAGE" --initrd "$SB_INITRD" --mem "$MEM" \
		--rootfs "$SB_ROOT" -i -- cat <"$tmp/sb-in" >"$b.out" 2>"$b.err"
	status=$?
	if [ "$status" != 0 ]; then
		not_ok "$name" "status $status" "$b"
	elif [ "$(md5sum <"$b.out")" != "$(md5sum <"$tmp/sb-in")" ]; then
		not_ok "$name" "$(wc -c <"$b.out") bytes came back, not the same $mb MiB" "$b"
	else
		ok "$name"
	fi
	rm -f "$tmp/sb-in" "$b.out"
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

# The image is built once per directory state: a second run reuses it, a change rebuilds it.
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
	else
		ok "$name"
	fi
}

# Bad input: a missing --rootfs, a file as --rootfs, no command: 125 with one line; a full
# cache disk: 125 and nothing half-written.
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
	mkdir -p "$tmp/sb-full"
	full=""
	if mount -t tmpfs -o size=64k tmpfs "$tmp/sb-full" 2>/dev/null; then
		PATH="${SB_TOOLS:+$SB_TOOLS:}$PATH" KVMINI_CACHE_DIR=$tmp/sb-full timeout -k 5 "$T" \
			"$KVMINI" exec --kernel "$BZIMAGE" --initrd "$SB_INITRD" --rootfs "$SB_ROOT" \
			-- true >"$b.4.out" 2>"$b.4.err"
		s4=$?
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

run_sandbox_tests() {
	test_sb_statuses
	test_sb_streams
	test_sb_stdin
	test_sb_env_user
	test_sb_timeout
	test_sb_cache
	test_sb_bad_input
	test_sb_vsock_uds
}
