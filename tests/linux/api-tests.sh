# tests/linux/api-tests.sh - sourced by run-tests.sh: libkvmini on a real Linux guest, and
# --trace of a known guest action.
#
#   KVMINI_TEST_EXAMPLE  examples/run-command built against the installed library
#   KVMINI_TEST_PAUSE    tests/linux/pause-test (pause and resume through the API)
# A test whose program is not given fails (never skipped): make linuxtest gives both.

# need_prog PATH VAR: fail the current test unless PATH (the value of VAR) is executable.
need_prog() {
	if [ -z "$1" ] || [ ! -x "$1" ]; then
		not_ok "$name" "$2 is not set to the built program"
		return 1
	fi
}

# The example program embeds the installed library, captures the console through the API
# and reports the command's exit status.
test_example_installed() {
	name=example-installed-library
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	need_prog "${KVMINI_TEST_EXAMPLE:-}" KVMINI_TEST_EXAMPLE || return 0
	timeout -k 10 "$T" "$KVMINI_TEST_EXAMPLE" "$BZIMAGE" "$INITRD" 'echo from-the-api; exit 7' \
		>"$b.out" 2>"$b.err" </dev/null
	status=$?
	tr -d '\r' <"$b.out" >"$b.log"
	if [ "$status" != 7 ]; then
		not_ok "$name" "run-command exited $status, expected 7 (the command's status)" "$b"
	elif ! grep -qx 'from-the-api' "$b.log"; then
		not_ok "$name" "the command's output did not come through the console callback" "$b"
	elif ! grep -q 'command exit status 7' "$b.log"; then
		not_ok "$name" "no 'command exit status 7' line" "$b"
	else
		ok "$name"
	fi
}

# A guest printing a counter every 100 ms prints nothing while paused and goes on after.
test_pause_resume() {
	name=pause-resume-counter
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	need_prog "${KVMINI_TEST_PAUSE:-}" KVMINI_TEST_PAUSE || return 0
	timeout -k 10 "$T" "$KVMINI_TEST_PAUSE" "$BZIMAGE" "$INITRD" >"$b.out" 2>"$b.err" </dev/null
	status=$?
	grep '^pause-test:' "$b.out" | sed 's/^/# /'
	if [ "$status" != 0 ]; then
		not_ok "$name" "pause-test exited $status" "$b"
	elif [ "$(grep -c 'pause-test: round [12]: resumed, tick [0-9]' "$b.out")" != 2 ]; then
		not_ok "$name" "not two pause/resume rounds" "$b"
	else
		ok "$name"
	fi
}

# --trace shows a known guest action as the expected sequence: init's boot-timer write (an
# MMIO exit to the boot-timer device), and a direct read of sector 100 of a disk (the
# virtqueue request, its io_uring submission and completion, the used-buffer interrupt).
test_trace() {
	name=trace-boot-timer-and-disk-read
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	dd if=/dev/zero of="$b.img" bs=1024 count=1024 2>/dev/null
	printf 'KVMINI-TRACE-SECTOR-100' | dd of="$b.img" bs=512 seek=100 conv=notrunc 2>/dev/null
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --disk "$b.img" \
		--trace=exits,virtio,irq,io --trace-file "$b.trace" \
		--cmdline '-- dd if=/dev/vda bs=512 skip=100 count=1 iflag=direct 2>/dev/null | head -c 23; echo'
	t=$b.trace
	if [ "$status" != 0 ]; then
		not_ok "$name" "$(status_reason 0)" "$b"
	elif ! grep -q 'KVMINI-TRACE-SECTOR-100' "$b.log"; then
		not_ok "$name" "the guest did not read the marker from sector 100" "$b"
	elif ! grep -Eq '^\[ *[0-9]+\.[0-9]{6}\] exit vcpu0 mmio write 0xd1000000 len 1 <- 0x7b dev boot-timer$' "$t"; then
		not_ok "$name" "no boot-timer write (mmio 0xd1000000 <- 0x7b) in the trace" "$b"
	elif ! grep -Eq 'exit vcpu[0-9]+ io write 0x3f8 len 1 <- 0x[0-9a-f]+ dev com1' "$t"; then
		not_ok "$name" "no UART output exit (io write 0x3f8, dev com1) in the trace" "$b"
	elif ! grep -q 'exit vcpu0 mmio read 0xd0000000 len 4 -> 0x74726976 dev vda reg MagicValue' "$t"; then
		not_ok "$name" "no virtio-mmio probe of vda (MagicValue) in the trace" "$b"
	elif ! awk '
		# The request covering sector 100, then its submission, completion and interrupt.
		/ virtio vda q0 .* type IN sector / {
			for (i = 1; i <= NF; i++) { if ($i == "head") h = $(i + 1); if ($i == "sector") s = $(i + 1); if ($i == "len") l = $(i + 1) }
			if (s <= 100 && 100 < s + l / 512) { want = h; step = 1; next }
		}
		step == 1 && / io vda submit req / && $0 ~ (" head " want " read offset ") { split($0, a, " req "); split(a[2], r, " "); req = r[1]; step = 2; next }
		step == 2 && $0 ~ (" io vda complete req " req " res ") { step = 3; next }
		step == 3 && / irq gsi 5 vda used-buffer/ { step = 4 }
		END { exit step != 4 }' "$t"; then
		not_ok "$name" "no request/submit/complete/irq sequence for sector 100 in the trace" "$b"
		echo "# --- trace lines of vda ---"
		grep -E 'vda' "$t" | grep -Ev 'reg |exit' | tail -n 20 | sed 's/^/#   /'
	elif grep -q '^\[' "$b.out"; then
		not_ok "$name" "trace lines reached the console" "$b"
	else
		echo "# $name: $(wc -l <"$t") trace lines"
		ok "$name"
	fi
}

# Without --trace, nothing is traced; an unknown category is a usage error.
test_trace_off_and_bad_category() {
	name=trace-off-and-bad-category
	wanted "$name" || return 0
	need "$BZIMAGE" "$INITRD" || return 0
	b=$tmp/$name
	run_vmm "$b" --kernel "$BZIMAGE" --initrd "$INITRD" --mem "$MEM" --cmdline '-- true'
	if [ "$status" != 0 ]; then
		not_ok "$name" "$(status_reason 0)" "$b"
		return 0
	elif grep -Eq '^\[ *[0-9]+\.[0-9]{6}\] (exit|irq|virtio|io) ' "$b.err"; then
		not_ok "$name" "trace lines without --trace" "$b"
		return 0
	fi
	run_vmm "$b-bad" --kernel "$BZIMAGE" --trace=exits,frob
	if [ "$status" != 2 ]; then
		not_ok "$name" "--trace=exits,frob: exit $status, expected 2" "$b-bad"
	elif [ "$(wc -l <"$b-bad.err")" != 1 ] || ! grep -q "unknown trace category 'frob'" "$b-bad.err"; then
		not_ok "$name" "--trace=exits,frob: not one line naming the category" "$b-bad"
	else
		ok "$name"
	fi
}

run_api_tests() {
	test_example_installed
	test_pause_resume
	test_trace
	test_trace_off_and_bad_category
}
