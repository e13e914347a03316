# shellcheck shell=bash disable=SC2154,SC2034 # the caller sets and reads these variables
# bench/lib.sh: what bench/boot.sh and bench/net.sh share (sourced by bash scripts).
#
# Both boot one guest with kvmini and with QEMU's microvm, measuring in a POSIX sh script
# (the "L2 half") that runs directly on a host with hardware virtualization, or else inside
# the nested machine (tests/nested/run.sh), with QEMU inside it too.
#
# The caller sets, before calling these:
#   dir      where the part's log goes (DIR/PART.log)
#   top      the checkout;  work: a scratch directory (the L2 half's files go to $work/l2)
#   kvmini   kvmini binary; gdir: bzImage and initramfs.cpio.gz from `make guests`
#   qemu     QEMU binary (name or path); datadir: QEMU's data (microvm's firmware)
#   mode     auto, direct or nested
# and reads back: reason (why nothing was measured, else ""), stall ("nested machine stalled"
# when the nested machine's stall watchdog stopped a wedged L2, else ""), where (how it ran),
# qemu (made a full path), qemu_version.

# bench_need_guest: kvmini, the guest and QEMU with microvm's firmware are all there; makes
# $work/l2/tools. Sets $reason and fails if something is missing.
bench_need_guest() {
	local f
	[ -x "$kvmini" ] || { reason="$kvmini is missing (make)"; return 1; }
	for f in bzImage initramfs.cpio.gz; do
		[ -f "$gdir/$f" ] || { reason="$gdir/$f is missing (make guests)"; return 1; }
	done
	qemu=$(command -v "$qemu") || { reason="$qemu is missing (apt-get install qemu-system-x86)"; return 1; }
	[ -f "$datadir/bios-microvm.bin" ] || { reason="$datadir/bios-microvm.bin is missing"; return 1; }
	qemu_version=$("$qemu" --version | head -n 1)
	mkdir -p "$work/l2/tools"
	cp "$kvmini" "$work/l2/kvmini"
}

# bench_build_tool NAME: compile bench/NAME.c into $work/l2/tools/NAME (a helper for the L2
# half). Sets $reason and fails if it does not compile.
bench_build_tool() {
	"${CC:-cc}" -O2 -Wall -Wextra -o "$work/l2/tools/$1" "$top/bench/$1.c" >"$work/cc.log" 2>&1 ||
		{ reason="cannot build bench/$1.c: $(tail -n 1 "$work/cc.log")"; return 1; }
}

# bench_run_l2 PART PREFIX SCRIPT [ARG]...: copy bench/SCRIPT to $work/l2 and run
# `sh SCRIPT L2DIR ARG...` with QEMU and QEMU_DATADIR set, where L2DIR is $work/l2 (direct)
# or /work (nested: tests/nested/run.sh ships $work/l2 there, with QEMU and its firmware).
# Its output goes to DIR/PART.log; progress lines ("PARTbench: ..." and the nested machine's
# "nested: ...") are shown as they come. The lines starting with PREFIX go to
# $work/results; with none, $reason says why. A wedged L2 (the stall watchdog of
# tests/nested/run.sh stopped it) sets $stall: the rows it cost say "n/a: $stall", never a
# number. Sets $mode (auto resolved) and $where.
bench_run_l2() {
	local part=$1 prefix=$2 script=$3 status=0 log=$work/run.log pid
	shift 3
	cp "$top/bench/$script" "$work/l2/"
	if [ "$mode" = auto ]; then
		if "$top/tests/nested/hw-virt.sh"; then mode=direct; else mode=nested; fi
	fi
	case "$mode" in
	direct)
		where="directly on this host's /dev/kvm"
		echo "bench: $part: running $where"
		QEMU=$qemu QEMU_DATADIR=$datadir sh "$work/l2/$script" "$work/l2" "$@" \
			>"$log" 2> >(sed 's/^/bench: /' >&2) || status=$?
		;;
	nested)
		where="inside the nested machine (tests/nested/run.sh: L2 and its KVM are TCG-emulated)"
		echo "bench: $part: no hardware virtualization; both VMMs run $where"
		# microvm's firmware: bios-microvm.bin, on Debian a link to qboot.rom (loaded by name).
		local fw=(--host-file "$datadir/bios-microvm.bin")
		[ ! -f "$datadir/qboot.rom" ] || fw+=(--host-file "$datadir/qboot.rom")
		: >"$log" # empty before tail opens it, whoever starts first
		"$top/tests/nested/run.sh" --files "$work/l2" --host-file "$qemu" "${fw[@]}" -- \
			env QEMU="$qemu" QEMU_DATADIR="$datadir" sh "./$script" /work "$@" >"$log" 2>&1 &
		pid=$!
		tail -n +1 -f --pid="$pid" "$log" | grep -a --line-buffered -E "^(${part}bench|nested):" |
			sed -u 's/^/bench: /' || true
		wait "$pid" || status=$?
		;;
	*)
		echo "bench: BENCH_${part^^}_MODE must be auto, direct or nested" >&2
		exit 2
		;;
	esac
	cp "$log" "$dir/$part.log"
	stall=""
	if grep -aq '^nested: nested machine stalled' "$log"; then
		stall="nested machine stalled"
		echo "bench: $part: the nested machine stalled (L2 wedged, see $dir/$part.log); the rows it cost say n/a"
	fi
	grep -a "^$prefix" "$log" >"$work/results" || true
	if [ ! -s "$work/results" ]; then
		reason="no results ($mode run exit status $status; log in $dir/$part.log; last lines: $(
			grep -av '^$' "$log" | tail -n 3 | tr '\n' ' '))"
	fi
}
