# tests/linux/crash-tests.sh - sourced by run-tests.sh: kvmini dying of a fatal signal while
# its console has the terminal raw (POSIX sh).
# shellcheck shell=sh disable=SC2154 # variables shared with run-tests.sh
#
#   KVMINI_TEST_PTY_CRASH  tests/linux/pty-crash (make linuxtest builds it)
#
# kvmini on a pty of its own, booting the guest to `sleep 600`: once the console made the
# terminal raw, SIGSEGV to the process, or to its vCPU thread alone (tgkill: the fatal signals
# stay unblocked in every thread, so the handler runs in the one that crashed). kvmini dies of
# SIGSEGV without a core, says so in one line, and ECHO and ICANON are back.

# crash_case NAME TARGET
crash_case() {
	name=$1
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	need_prog "${KVMINI_TEST_PTY_CRASH:-}" KVMINI_TEST_PTY_CRASH || return 0
	b=$tmp/$name
	why=$(timeout -k 10 "$T" "$KVMINI_TEST_PTY_CRASH" "$2" "$b.out" "$KVMINI" run \
		--kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --cmdline '-- sleep 600' \
		2>"$b.err")
	st=$?
	if [ "$st" = 0 ]; then
		ok "$name"
	else
		not_ok "$name" "${why:-pty-crash exited $st}" "$b"
	fi
}

run_crash_tests() {
	crash_case crash-restores-terminal process
	crash_case vcpu-crash-restores-terminal vcpu0
}
