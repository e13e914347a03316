# tests/linux/seccomp-tests.sh - sourced by run-tests.sh: the seccomp filters (POSIX sh).
# shellcheck shell=sh disable=SC2154,SC2016,SC2034 # variables shared with run-tests.sh
#
# Every other Linux test runs kvmini with its default, --seccomp kill, so a system call
# missing from a list fails the test that needs it. These show that the filters are there
# (every thread of a VM doing disk, network, vsock and API work), that a forbidden call ends
# kvmini with 159 and one line naming the thread, and the other modes.

SC_RT=$tmp/seccomp-run

# seccomp_of PID: one line per task, "NAME SECCOMP-FIELD CAPEFF".
seccomp_of() {
	for _t in /proc/"$1"/task/*; do
		printf '%s %s %s\n' "$(cat "$_t/comm" 2>/dev/null)" \
			"$(sed -n 's/^Seccomp:[[:space:]]*//p' "$_t/status" 2>/dev/null)" \
			"$(sed -n 's/^CapEff:[[:space:]]*//p' "$_t/status" 2>/dev/null)"
	done
}

# A VM with a disk, a tap, vsock and a control socket, its guest writing the disk and
# pinging the host: every task shows Seccomp 2 (filter mode) and CapEff 0 (kvmini runs as root
# here and gives up every capability once the VM is built), all the kinds of thread are
# there, the API answers stats, pause and resume under its filter, and it ends by destroy
# while a client still uploads a request body (the API server's teardown shuts that
# connection down from the main thread: 159 when its list lacked shutdown).
test_seccomp_every_thread() {
	name=seccomp-every-thread
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	ns=kvsc$$
	if ! new_ns "$ns" || ! ns_tap "$ns" kvs0 10.78.0.1/24; then
		not_ok "$name" "cannot set up namespace $ns with tap kvs0"
		net_cleanup
		return 0
	fi
	truncate -s 64M "$b.img"
	KVMINI_RUNTIME_DIR=$SC_RT "$IP" netns exec "$ns" "$KVMINI" run --kernel "$BZIMAGE" \
		--initrd "$INITRD" --mem "$MEM" --name sc-vm --disk "$b.img" --net tap=kvs0 \
		--vsock on \
		--cmdline 'kvmini.ip=10.78.0.2/24 -- dd if=/dev/zero of=/dev/vda bs=1M count=8 conv=fsync && dd if=/dev/vda of=/dev/null bs=1M count=8 && ping -c 2 -W 5 10.78.0.1 && echo SECCOMP_IO_DONE && sleep 600' \
		>"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	if ! wait_for "$b" SECCOMP_IO_DONE "$bg_pid"; then
		give_up "$b" "the guest never finished its disk and network I/O (no SECCOMP_IO_DONE)"
		return 0
	fi
	pid=$(sed -n 's/^\([0-9][0-9]*\)$/\1/p' "$SC_RT/sc-vm/pid" 2>/dev/null)
	seccomp_of "${pid:-0}" >"$b.tasks"
	sed 's/^/# task /' "$b.tasks"
	KVMINI_RUNTIME_DIR=$SC_RT timeout 60 "$KVMINI" stats sc-vm >"$b.stats" 2>&1
	st_stats=$?
	KVMINI_RUNTIME_DIR=$SC_RT timeout 60 "$KVMINI" pause sc-vm >>"$b.stats" 2>&1
	st_pause=$?
	KVMINI_RUNTIME_DIR=$SC_RT timeout 60 "$KVMINI" resume sc-vm >>"$b.stats" 2>&1
	st_resume=$?
	curl=$(tool curl)
	mkfifo "$b.fifo"
	timeout 70 "$curl" -s --unix-socket "$SC_RT/sc-vm/api.sock" -T "$b.fifo" \
		http://kvmini/vm/stats >/dev/null 2>&1 &
	slow=$!
	exec 7>"$b.fifo" # the body never ends while this stays open
	printf 'x' >&7
	sleep 2
	KVMINI_RUNTIME_DIR=$SC_RT timeout 60 "$KVMINI" destroy sc-vm >>"$b.stats" 2>&1
	stop_bg "$bg_pid" 30
	bg_pid=""
	exec 7>&-
	kill "$slow" 2>/dev/null
	wait "$slow" 2>/dev/null
	net_cleanup
	missing=""
	for want in kvmini vcpu0 console api blk-vda net-net0 vsock-vsock0; do
		grep -q "^$want " "$b.tasks" || missing="$missing $want"
	done
	if [ -z "$pid" ] || [ ! -s "$b.tasks" ]; then
		not_ok "$name" "no pid file or no task of kvmini to look at" "$b"
	elif [ -n "$missing" ]; then
		not_ok "$name" "no thread named:$missing" "$b"
	elif grep -qv ' 2 [0-9a-f]*$' "$b.tasks"; then
		not_ok "$name" "a thread without a seccomp filter: $(grep -v ' 2 [0-9a-f]*$' "$b.tasks" | tr '\n' ' ')" "$b"
	elif grep -qv ' 0000000000000000$' "$b.tasks"; then
		not_ok "$name" "a thread that kept capabilities (run as root): $(grep -v ' 0000000000000000$' "$b.tasks" | tr '\n' ' ')" "$b"
	elif [ "$st_stats" != 0 ] || [ "$st_pause" != 0 ] || [ "$st_resume" != 0 ]; then
		not_ok "$name" "stats/pause/resume through the API: $st_stats/$st_pause/$st_resume" "$b"
	elif grep -q 'seccomp' "$b.err"; then
		not_ok "$name" "kvmini reported a forbidden call: $(grep seccomp "$b.err")" "$b"
	elif [ "$status" != 137 ]; then
		not_ok "$name" "kvmini exited $status after destroy, expected 137" "$b"
	else
		ok "$name"
	fi
}

# KVMINI_SECCOMP_PROBE=KIND makes that kind's thread call getcwd(2), which no list allows,
# once confined: kvmini ends with 159 and one line naming the thread and the call (79).
seccomp_probe() { # KIND THREAD [RUN ARGS...]
	kind=$1 thread=$2
	shift 2
	KVMINI_SECCOMP_PROBE=$kind KVMINI_RUNTIME_DIR=$SC_RT timeout -k 5 "$T" "$KVMINI" run \
		--kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --cmdline '-- sleep 600' "$@" \
		>"$b.$kind.out" 2>"$b.$kind.err" </dev/null
	st=$?
	line="the $thread thread made system call 79, which its seccomp filter forbids"
	if [ "$st" != 159 ]; then
		echo "$kind: exit $st, expected 159"
	elif ! grep -q "^kvmini: error: $line" "$b.$kind.err"; then
		echo "$kind: no line '$line' on stderr"
	elif [ "$(grep -c seccomp "$b.$kind.err")" != 1 ]; then
		echo "$kind: not one line about it"
	fi
}

test_seccomp_forbidden_call() {
	name=seccomp-forbidden-call
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	truncate -s 16M "$b.img"
	{
		seccomp_probe vcpu vcpu0
		seccomp_probe blk blk-vda --disk "$b.img"
		seccomp_probe vsock vsock-vsock0 --vsock on
		seccomp_probe console console
		seccomp_probe control kvmini
		seccomp_probe server api --name sc-probe
	} >"$b.fail"
	if [ -s "$b.fail" ]; then
		not_ok "$name" "$(tr '\n' ';' <"$b.fail")" "$b"
	else
		ok "$name"
	fi
}

# --seccomp off leaves every thread unfiltered; a bad mode is a usage error (2), in the
# config file too.
test_seccomp_modes() {
	name=seccomp-off-and-bad-mode
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	"$KVMINI" run --seccomp off --kernel "$BZIMAGE" --initrd "$INITRD" \
		--mem "$MEM" --cmdline '-- echo SECCOMP_OFF_UP && sleep 600' >"$b.out" 2>"$b.err" </dev/null &
	bg_pid=$!
	wait_for "$b" SECCOMP_OFF_UP "$bg_pid"
	seccomp_of "$bg_pid" >"$b.tasks"
	stop_bg "$bg_pid" 0
	bg_pid=""
	"$KVMINI" run --seccomp strict --kernel "$BZIMAGE" >"$b.bad.out" 2>"$b.bad.err"
	st_bad=$?
	printf '{"kernel": "%s", "seccomp": "none"}\n' "$BZIMAGE" >"$b.json"
	"$KVMINI" run --config "$b.json" >"$b.conf.out" 2>"$b.conf.err"
	st_conf=$?
	if ! grep -q '^vcpu0 0 ' "$b.tasks" || grep -qv ' 0 [0-9a-f]*$' "$b.tasks"; then
		not_ok "$name" "--seccomp off: tasks $(tr '\n' ' ' <"$b.tasks")" "$b"
	elif [ "$st_bad" != 2 ] || ! grep -q "seccomp 'strict' must be off, log or kill" "$b.bad.err"; then
		not_ok "$name" "--seccomp strict: exit $st_bad, $(cat "$b.bad.err")" "$b"
	elif [ "$st_conf" != 3 ] || ! grep -q '"seccomp"' "$b.conf.err"; then
		not_ok "$name" "a config file's bad seccomp: exit $st_conf, $(cat "$b.conf.err")" "$b"
	else
		ok "$name"
	fi
}

run_seccomp_tests() {
	test_seccomp_every_thread
	test_seccomp_forbidden_call
	test_seccomp_modes
}
