# tests/linux/ctl-tests.sh - sourced by run-tests.sh: VMs managed by name (run --detach, list,
# pause, resume, console, shutdown, destroy, define, start, stats) and the control socket
# (curl --unix-socket against every route).
#
# Every test uses its own runtime and definition folders under $tmp and destroys what it
# started, also when it fails.

CTL_RT=$tmp/ctl-run
CTL_DEFS=$tmp/ctl-vms

# kv ARGS...: the kvmini command with the test's folders, bounded by a timeout.
kv() {
	KVMINI_RUNTIME_DIR=$CTL_RT KVMINI_CONFIG_DIR=$CTL_DEFS timeout -k 5 "$T" "$KVMINI" "$@"
}

# ctl_start BASE NAME [RUN ARGS...]: run --detach; sets $status; output in BASE.out/.err.
ctl_start() {
	base=$1
	vm=$2
	shift 2
	kv run --detach --name "$vm" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" "$@" \
		>"$base.out" 2>"$base.err" </dev/null
	status=$?
}

# ctl_state NAME: its STATE column in `list --all` ("shut off" prints as "shut"), or "none".
ctl_state() {
	kv list --all 2>/dev/null | awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print "none" }'
}

# ctl_field NAME COLUMN: one column of its `list --all` line (3 CPUS, 5 PID, 7 EXIT).
ctl_field() {
	kv list --all 2>/dev/null | awk -v n="$1" -v c="$2" '$1 == n { if ($2 == "shut") c++; print $c }'
}

# wait_log NAME TEXT SECS: wait until the detached VM's console log has TEXT; give up at once
# when the VM has stopped (its exit record is written) without it. Its own loop variable:
# callers loop with i.
wait_log() {
	_w=0
	while [ "$_w" -lt "$(($3 * 10))" ]; do
		grep -q "$2" "$CTL_RT/$1/console.log" 2>/dev/null && return 0
		[ ! -e "$CTL_RT/$1/exit" ] || { grep -q "$2" "$CTL_RT/$1/console.log" 2>/dev/null; return; }
		sleep 0.1
		_w=$((_w + 1))
	done
	return 1
}

# wait_state NAME STATE SECS
wait_state() {
	_w=0
	while [ "$_w" -lt "$(($3 * 10))" ]; do
		[ "$(ctl_state "$1")" = "$2" ] && return 0
		sleep 0.1
		_w=$((_w + 1))
	done
	return 1
}

# ctl_cleanup NAME...: destroy whatever is still running.
ctl_cleanup() {
	for v in "$@"; do
		[ "$(ctl_state "$v")" = shut ] || [ "$(ctl_state "$v")" = none ] ||
			kv destroy "$v" >/dev/null 2>&1
	done
}

# The guest's 100 ms counter, as pause-test uses.
TICKS='i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done'

# The highest tick in NAME's console log (-1: none).
last_tick() {
	n=$(tr -d '\r' <"$CTL_RT/$1/console.log" 2>/dev/null | sed -n 's/^tick \([0-9][0-9]*\)$/\1/p' | tail -n 1)
	echo "${n:--1}"
}

# run --detach prints the name and exits 0 once the guest runs; list shows it running with
# its vCPUs, memory and pid; a second VM with the name is refused (6); destroy ends it and
# list --all records it as shut off with status 137.
test_ctl_detach_list_destroy() {
	name=ctl-detach-list-destroy
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	ctl_start "$b" t-list --cpus 2 --cmdline '-- sleep 600'
	if [ "$status" != 0 ] || [ "$(cat "$b.out")" != t-list ]; then
		not_ok "$name" "run --detach: exit $status, stdout '$(cat "$b.out")'" "$b"
		ctl_cleanup t-list
		return 0
	fi
	kv list >"$b.list" 2>&1
	line=$(grep '^t-list ' "$b.list")
	pid=$(ctl_field t-list 5)
	ctl_start "$b-dup" t-list --cmdline '-- sleep 600'
	dup=$status
	if ! echo "$line" | grep -Eq '^t-list +running +2 +256M +[0-9]+ '; then
		not_ok "$name" "list: '$line', expected running, 2 CPUs, 256M, a pid" "$b"
	elif ! kill -0 "$pid" 2>/dev/null; then
		not_ok "$name" "list's pid $pid is not a process" "$b"
	elif [ "$dup" != 6 ] || ! grep -q "already running" "$b-dup.err"; then
		not_ok "$name" "a second t-list: exit $dup, expected 6 and 'already running'" "$b-dup"
	elif ! kv destroy t-list >"$b.d" 2>&1; then
		not_ok "$name" "destroy failed: $(cat "$b.d")" "$b"
	elif kv list | grep -q '^t-list '; then
		not_ok "$name" "list (without --all) still shows t-list after destroy" "$b"
	elif [ "$(ctl_state t-list)" != shut ] || [ "$(ctl_field t-list 7)" != 137 ]; then
		not_ok "$name" "list --all: $(kv list --all | grep t-list), expected shut off, exit 137" "$b"
	elif kill -0 "$pid" 2>/dev/null; then
		not_ok "$name" "the VMM process $pid still runs after destroy" "$b"
	else
		ok "$name"
	fi
	ctl_cleanup t-list
}

# pause stops the guest's 100 ms counter and list says paused; resume and it goes on.
test_ctl_pause_resume() {
	name=ctl-pause-resume-counter
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	ctl_start "$b" t-pause --cmdline "-- $TICKS"
	if [ "$status" != 0 ] || ! wait_log t-pause 'tick 5' "$T"; then
		not_ok "$name" "the counter did not start (exit $status)" "$b"
		ctl_cleanup t-pause
		return 0
	fi
	kv pause t-pause >"$b.p" 2>&1
	pst=$?
	state=$(ctl_state t-pause)
	sleep 0.5
	t1=$(last_tick t-pause)
	sleep 2
	t2=$(last_tick t-pause)
	kv pause t-pause >"$b.pp" 2>&1
	again=$?
	kv resume t-pause >"$b.r" 2>&1
	rst=$?
	sleep 2
	t3=$(last_tick t-pause)
	if [ "$pst" != 0 ] || [ "$state" != paused ]; then
		not_ok "$name" "pause: exit $pst, list state '$state'" "$b"
	elif [ "$t1" != "$t2" ]; then
		not_ok "$name" "the counter went on while paused ($t1 -> $t2)" "$b"
	elif [ "$again" != 6 ]; then
		not_ok "$name" "pausing a paused VM: exit $again, expected 6" "$b"
	elif [ "$rst" != 0 ] || [ "$t3" -le "$t2" ]; then
		not_ok "$name" "resume: exit $rst, counter $t2 -> $t3" "$b"
	elif [ "$(ctl_state t-pause)" != running ]; then
		not_ok "$name" "list after resume: $(ctl_state t-pause)" "$b"
	else
		echo "# paused at tick $t2, resumed to $t3"
		ok "$name"
	fi
	ctl_cleanup t-pause
}

# console attaches, sends a command and reads its output, a second console is refused,
# Ctrl-A x detaches and the VM keeps running.
test_ctl_console() {
	name=ctl-console-attach-detach
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	ctl_start "$b" t-con
	if [ "$status" != 0 ] || ! wait_log t-con KVMINI_GUEST_READY "$T"; then
		not_ok "$name" "the VM did not boot (exit $status)" "$b"
		ctl_cleanup t-con
		return 0
	fi
	sleep 1
	# The command prints 42 computed in the guest, so an echo of the input cannot pass.
	{
		printf 'echo console-$((6*7))-ok\n'
		sleep 3
		printf '\001x'
	} | kv console t-con >"$b.con" 2>"$b.con.err" &
	cpid=$!
	sleep 1
	kv console t-con >"$b.two" 2>&1 </dev/null
	second=$?
	wait "$cpid"
	first=$?
	if [ "$first" != 0 ] || ! tr -d '\r' <"$b.con" | grep -q '^console-42-ok'; then
		not_ok "$name" "console: exit $first, no 'console-42-ok' in its output" "$b.con"
	elif [ "$second" != 6 ] || ! grep -q 'already has a console attached' "$b.two"; then
		not_ok "$name" "a second console: exit $second, expected 6 and a clear line" "$b.two"
	elif ! grep -q 'detached from t-con' "$b.con.err"; then
		not_ok "$name" "no 'detached' line after Ctrl-A x" "$b.con"
	elif [ "$(ctl_state t-con)" != running ]; then
		not_ok "$name" "after detaching the VM is $(ctl_state t-con)" "$b"
	else
		ok "$name"
	fi
	ctl_cleanup t-con
}

# shutdown: Ctrl-Alt-Del through the i8042, the guest's init syncs and unmounts, the VM ends
# with status 0 (shut off, exit 0 in list --all) and its ext4 disk is clean.
test_ctl_shutdown_clean_disk() {
	name=ctl-shutdown-clean-disk
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	need_tool mke2fs e2fsck || return 0
	img=$b.img
	if ! "$MKE2FS" -q -t ext4 -F "$img" 32M >"$b.mkfs" 2>&1; then
		not_ok "$name" "mke2fs failed"
		return 0
	fi
	ctl_start "$b" t-shut --disk "$img" \
		--cmdline '-- mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/f bs=1k count=512 2>/dev/null && echo written && sleep 600'
	if [ "$status" != 0 ] || ! wait_log t-shut '^written' "$T"; then
		not_ok "$name" "the guest did not write its file (exit $status)" "$b"
		ctl_cleanup t-shut
		return 0
	fi
	kv shutdown t-shut --timeout 60 >"$b.s" 2>&1
	sst=$?
	if [ "$sst" != 0 ]; then
		not_ok "$name" "shutdown exit $sst: $(cat "$b.s")" "$b"
	elif [ "$(ctl_state t-shut)" != shut ] || [ "$(ctl_field t-shut 7)" != 0 ]; then
		not_ok "$name" "list --all: $(kv list --all | grep t-shut), expected shut off, exit 0" "$b"
	elif ! grep -q KVMINI_SHUTDOWN "$CTL_RT/t-shut/console.log"; then
		not_ok "$name" "the guest's init did not announce the shutdown" "$b"
	elif ! "$E2FSCK" -fn "$img" >"$b.fsck" 2>&1; then
		not_ok "$name" "e2fsck -fn: the disk is not clean" "$b.fsck"
	else
		ok "$name"
	fi
	ctl_cleanup t-shut
}

# define + start + list --all + dumpconfig + undefine.
test_ctl_define_start() {
	name=ctl-define-start-undefine
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	# Relative paths in a file are relative to the file: give absolute ones.
	k=$(cd "$(dirname "$BZIMAGE")" && pwd)/$(basename "$BZIMAGE")
	i=$(cd "$(dirname "$INITRD")" && pwd)/$(basename "$INITRD")
	cat >"$b.json" <<EOF
{"name": "t-def", "kernel": "$k", "initrd": "$i", "cpus": 2, "memory_mib": 192,
 "cmdline": "-- sleep 600", "log_level": "warn"}
EOF
	kv define "$b.json" >"$b.out" 2>"$b.err"
	dst=$?
	before=$(ctl_state t-def)
	kv start t-def >"$b.start" 2>&1
	sst=$?
	line=$(kv list | grep '^t-def ')
	kv dumpconfig t-def >"$b.dump" 2>&1
	kv undefine t-def >"$b.u1" 2>&1
	busy=$?
	kv destroy t-def >/dev/null 2>&1
	kv undefine t-def >"$b.u2" 2>&1
	ust=$?
	after=$(ctl_state t-def)
	if [ "$dst" != 0 ] || [ "$before" != shut ]; then
		not_ok "$name" "define: exit $dst, list --all state '$before'" "$b"
	elif [ "$sst" != 0 ] || ! echo "$line" | grep -Eq '^t-def +running +2 +192M'; then
		not_ok "$name" "start: exit $sst, list '$line'" "$b"
	elif ! grep -q '"memory_mib": 192' "$b.dump" || ! grep -q '"cpus": 2' "$b.dump"; then
		not_ok "$name" "dumpconfig does not show the definition" "$b.dump"
	elif [ "$busy" != 6 ]; then
		not_ok "$name" "undefine of a running VM: exit $busy, expected 6" "$b"
	elif [ "$ust" != 0 ] || [ "$after" != none ]; then
		not_ok "$name" "undefine: exit $ust, then list --all shows '$after'" "$b"
	else
		ok "$name"
	fi
	ctl_cleanup t-def
}

# A VMM killed with SIGKILL leaves its socket and pid file: list must not call it running,
# and the next run with that name cleans up and runs.
test_ctl_sigkill_stale() {
	name=ctl-sigkill-stale-state
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	ctl_start "$b" t-kill --cmdline '-- sleep 600'
	pid=$(cat "$CTL_RT/t-kill/pid" 2>/dev/null)
	if [ "$status" != 0 ] || [ -z "$pid" ]; then
		not_ok "$name" "run --detach: exit $status, pid '$pid'" "$b"
		ctl_cleanup t-kill
		return 0
	fi
	kill -KILL "$pid"
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	left=$(ls "$CTL_RT/t-kill")
	state=$(ctl_state t-kill)
	kv list >"$b.list" 2>&1
	ctl_start "$b-again" t-kill --cmdline '-- sleep 600'
	again=$status
	state2=$(ctl_state t-kill)
	if ! echo "$left" | grep -q api.sock; then
		not_ok "$name" "no stale socket was left to test with (files: $left)" "$b"
	elif [ "$state" != shut ] || grep -q '^t-kill ' "$b.list"; then
		not_ok "$name" "a killed VM is listed as '$state'" "$b.list"
	elif [ "$again" != 0 ] || [ "$state2" != running ]; then
		not_ok "$name" "the next run: exit $again, state $state2" "$b-again"
	else
		ok "$name"
	fi
	ctl_cleanup t-kill
}

# 5 VMs detached at once: all listed running, all shut down gracefully.
test_ctl_five_vms() {
	name=ctl-five-vms
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	bad=""
	five() {
		KVMINI_RUNTIME_DIR=$CTL_RT KVMINI_CONFIG_DIR=$CTL_DEFS timeout -k 5 "$T" "$KVMINI" run \
			--detach --name "t-five$1" --kernel "$BZIMAGE" --initrd "$INITRD" --mem 128M \
			--cmdline '-- sleep 600' >"$b.$1.out" 2>"$b.$1.err" </dev/null
	}
	for i in 1 2 3 4 5; do
		five "$i" &
	done
	wait
	for i in 1 2 3 4 5; do
		wait_log "t-five$i" KVMINI_GUEST_READY "$T" && continue
		# The nested machine's known reset at boot under load: that VM once more, said here.
		if l2_reset_at_boot "$CTL_RT/t-five$i/vmm.log"; then
			echo "# $name: t-five$i: guest reset at boot (the nested machine's known fault); once more"
			five "$i"
			wait_log "t-five$i" KVMINI_GUEST_READY "$T" && continue
		fi
		bad="$bad t-five$i:no-boot"
	done
	for i in 1 2 3 4 5; do
		[ "$(ctl_state "t-five$i")" = running ] || bad="$bad t-five$i:$(ctl_state "t-five$i")"
	done
	n=$(kv list | grep -c '^t-five[1-5] .*running')
	for i in 1 2 3 4 5; do
		kv shutdown "t-five$i" --timeout 60 >"$b.$i.s" 2>&1 &
	done
	wait
	: >"$b.diag.out"
	for i in 1 2 3 4 5; do
		[ "$(ctl_state "t-five$i")" = shut ] && [ "$(ctl_field "t-five$i" 7)" = 0 ] && continue
		bad="$bad t-five$i-after:$(ctl_state "t-five$i")/$(ctl_field "t-five$i" 7)"
		{
			echo "== t-five$i: shutdown said: $(cat "$b.$i.s")"
			tr -d '\r' <"$CTL_RT/t-five$i/console.log" | tail -n 5
			tail -n 5 "$CTL_RT/t-five$i/vmm.log"
		} >>"$b.diag.out"
	done
	if [ -n "$bad" ] || [ "$n" != 5 ]; then
		not_ok "$name" "$n of 5 listed running; wrong:$bad" "$b.diag"
	else
		ok "$name"
	fi
	ctl_cleanup t-five1 t-five2 t-five3 t-five4 t-five5
}

# curl --unix-socket against every route, and each error status.
test_ctl_curl_routes() {
	name=ctl-curl-every-route
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	need_tool curl || return 0
	curl=$(tool curl)
	ctl_start "$b" t-curl --disk "$INITRD,ro" --cmdline '-- sleep 600'
	sock=$CTL_RT/t-curl/api.sock
	if [ "$status" != 0 ] || [ ! -S "$sock" ] || ! wait_log t-curl KVMINI_GUEST_READY "$T"; then
		not_ok "$name" "run --detach: exit $status, socket $sock" "$b"
		ctl_cleanup t-curl
		return 0
	fi
	bad=""
	# check METHOD PATH EXPECTED [BODY] [GREP]
	check() {
		if [ -n "${4:-}" ]; then
			code=$("$curl" -s -o "$b.body" -w '%{http_code}' --unix-socket "$sock" -X "$1" \
				-H 'Content-Type: application/json' --data-binary "$4" "http://localhost$2")
		else
			code=$("$curl" -s -o "$b.body" -w '%{http_code}' --unix-socket "$sock" -X "$1" \
				"http://localhost$2")
		fi
		if [ "$code" != "$3" ]; then
			bad="$bad [$1 $2: $code, expected $3: $(head -c 200 "$b.body")]"
		elif [ -n "${5:-}" ] && ! grep -q -- "$5" "$b.body"; then
			bad="$bad [$1 $2: body lacks $5: $(head -c 200 "$b.body")]"
		fi
	}
	check GET /version 200 '' '"api_version":1'
	check GET /vm 200 '' '"state":"running"'
	check GET /vm/config 200 '' '"name":"t-curl"'
	check GET /vm/stats 200 '' '"vda"'
	grep -Eq '"reads":[1-9]' "$b.body" || bad="$bad [stats: vda has no reads]"
	check PUT /vm/pause 204
	check PUT /vm/pause 409 '' '"error"'
	check GET /vm 200 '' '"state":"paused"'
	check PUT /vm/resume 204 '{}'
	check GET /nope 404 '' '"error"'
	check DELETE /vm 405 '' '"error"'
	check PUT /vm/pause 400 '{"oops":' '"error"'
	check PUT /vm/pause 400 '[1]' '"error"'
	check PUT /vm/shutdown 400 '{"timeout_s":"soon"}' 'timeout_s'
	head -c 70000 /dev/zero | tr '\0' ' ' >"$b.big"
	check PUT /vm/shutdown 413 "@$b.big" '"error"'
	check GET /vm 200 '' '"state":"running"'
	check PUT /vm/shutdown 202 '{"timeout_s":60}' 'shutting down'
	if ! wait_state t-curl shut 60; then
		bad="$bad [PUT /vm/shutdown did not end the VM]"
	fi
	ctl_start "$b-2" t-curl --cmdline '-- sleep 600'
	[ "$status" = 0 ] || bad="$bad [a second t-curl: exit $status: $(cat "$b-2.err")]"
	check PUT /vm/destroy 202 '' 'destroying'
	wait_state t-curl shut 20 || bad="$bad [PUT /vm/destroy did not end the VM]"
	if [ -n "$bad" ]; then
		not_ok "$name" "$bad" "$b"
	else
		ok "$name"
	fi
	ctl_cleanup t-curl
}

# stats: exits by kind and per vCPU, the disk's counters, memory and boot figures.
test_ctl_stats() {
	name=ctl-stats
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	ctl_start "$b" t-stats --cpus 2 --disk "$INITRD,ro" --cmdline '-- dd if=/dev/vda of=/dev/null bs=64k 2>/dev/null; echo read-done; sleep 600'
	if [ "$status" != 0 ] || ! wait_log t-stats read-done "$T"; then
		not_ok "$name" "the guest did not read its disk (exit $status)" "$b"
		ctl_cleanup t-stats
		return 0
	fi
	kv stats t-stats --json >"$b.json" 2>&1
	jst=$?
	kv stats t-stats >"$b.txt" 2>&1
	size=$(wc -c <"$INITRD")
	rbytes=$(tr -d ' \n' <"$b.json" | sed -n 's/.*"read_bytes":\([0-9]*\).*/\1/p')
	if [ "$jst" != 0 ]; then
		not_ok "$name" "stats --json exit $jst" "$b"
	elif [ "$(tr -d ' \n' <"$b.json" | grep -o '"io":[0-9]*' | wc -l)" -lt 3 ]; then
		not_ok "$name" "no io exits in total and for each of the 2 vCPUs" "$b.json"
	elif [ -z "$rbytes" ] || [ "$rbytes" -lt "$((size / 2))" ]; then
		not_ok "$name" "vda read_bytes '$rbytes', the guest read about $size" "$b.json"
	elif ! grep -q '"vmm_overhead_bytes"' "$b.json" || ! grep -q '"init_ms"' "$b.json"; then
		not_ok "$name" "no memory or boot figures" "$b.json"
	elif ! grep -q '^disk vda:' "$b.txt"; then
		not_ok "$name" "the text form has no disk line" "$b.txt"
	else
		ok "$name"
	fi
	ctl_cleanup t-stats
}

# A start that fails removes only a --trace-file it created: never an existing file, never
# /dev/null (as root, a taken name used to delete it).
test_ctl_trace_file_kept() {
	name=ctl-failed-start-keeps-trace-file
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	echo old >"$b.trace"
	kv run --kernel "$BZIMAGE" --mem 1T --trace-file "$b.trace" >"$b.out" 2>"$b.err" </dev/null
	st1=$?
	ctl_start "$b" t-trace --cmdline '-- sleep 600'
	kv run --name t-trace --kernel "$BZIMAGE" --trace-file /dev/null >"$b.2.out" 2>"$b.2.err" </dev/null
	st2=$?
	kv run --kernel "$BZIMAGE" --mem 1T --trace-file "$b.new" >/dev/null 2>&1 </dev/null
	if [ "$st1" != 4 ] || [ ! -f "$b.trace" ]; then
		not_ok "$name" "--mem 1T: exit $st1, the existing trace file is $( [ -f "$b.trace" ] && echo kept || echo gone)" "$b"
	elif [ "$st2" != 6 ] || [ ! -c /dev/null ]; then
		not_ok "$name" "a taken name: exit $st2, /dev/null is $( [ -c /dev/null ] && echo kept || echo gone)" "$b.2"
	elif [ -e "$b.new" ]; then
		not_ok "$name" "a trace file this run created is left behind" "$b"
	else
		ok "$name"
	fi
	ctl_cleanup t-trace
}

run_ctl_tests() {
	mkdir -p "$CTL_RT" "$CTL_DEFS"
	test_ctl_detach_list_destroy
	test_ctl_pause_resume
	test_ctl_console
	test_ctl_shutdown_clean_disk
	test_ctl_define_start
	test_ctl_sigkill_stale
	test_ctl_five_vms
	test_ctl_curl_routes
	test_ctl_stats
	test_ctl_trace_file_kept
}
