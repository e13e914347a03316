#!/bin/bash
# tests/nested/run.sh - run a command inside the nested machine (L2).
#
#   tests/nested/run.sh [--files DIR] [--host-file PATH]... -- CMD [ARG]...
#
# L1 (this host) starts QEMU with TCG and an emulated AMD SVM CPU. L2 runs
# Debian's cloud kernel (fetched by prepare.sh) from a busybox initramfs built
# here, loads kvm_amd, and runs CMD with /work as its working directory.
# Inside L2, /dev/kvm is a hardware-style KVM, so a VMM running there (kvmini,
# or QEMU) can boot a standard Linux guest (L3). See README.md.
#
# Options:
#   --files DIR       copy DIR's contents to /work in L2 (kvmini binary, guest
#                     images, test scripts...). The shared libraries of every
#                     dynamically linked ELF file in DIR are copied too.
#   --host-file PATH  copy a host file or directory to the same path in L2
#                     (repeatable), with the shared libraries of any ELF file
#                     in it; e.g. --host-file /usr/bin/qemu-system-x86_64
#                     --host-file /usr/share/qemu/bios-microvm.bin
#   --                end of options; CMD and its arguments follow.
#
# Console output of L2 is streamed live to stdout (carriage returns removed).
# Exit status: CMD's exit status inside L2; 125 when the nested machine hung
# or crashed before reporting it (timeout, kernel panic, no /dev/kvm...), or when
# its kernel oopsed, whatever CMD returned after that.
#
# Environment:
#   NESTED_TIMEOUT   seconds before L1's QEMU is killed (default 900)
#   NESTED_STALL     seconds of console silence after which L2 counts as wedged and
#                    L1's QEMU is killed (default 180; 0: never). L2's /init prints a
#                    heartbeat every 10 s (removed from the output), so only a wedged L2
#                    stays silent that long. First its monitor's "info cpus" and
#                    "info registers -a" are printed, prefixed "nested: stall: ".
#   NESTED_LOCKUP    the same when L2's kernel reports a CPU stuck (soft lockup) for
#                    at least this many seconds (default 60; 0: never)
#   An oops of L2's kernel ("[ T] BUG: ...", "Oops: ", "general protection fault",
#                    "kernel BUG at") stops L2 too: what it prints for 10 s more (the rest of
#                    the report) is shown prefixed "nested: after the oops: ", then L1's
#                    QEMU is killed and the exit status is 125 whatever CMD returns.
#   NESTED_BOOT_STALL  the silence bound while L2 boots, before CMD starts (default 60)
#   NESTED_BOOT_TRIES  L2 is started again when it wedged while booting, up to this many
#                    times in all (default 3); CMD never runs twice
#   NESTED_KEEPER    1 (default): L2 holds one idle VM open for the whole run
#                    (kvm-keeper.c), so VMs coming and going do not make L2's kernel
#                    live-patch its code, which wedges L2 under TCG (README.md); 0: not
#   NESTED_ACCEL     L1's accelerator (default tcg,thread=multi)
#   NESTED_MEM       L2 memory (default 2G)       NESTED_SMP  L2 vCPUs (default 2)
#   NESTED_MODULES   extra kernel modules to make available in L2 (space separated)
#   NESTED_APPEND    extra L2 kernel command line
#   NESTED_LOGLEVEL  L2 console log level once booted (default 3: crit and worse;
#                    hides the harmless "Unhandled WRMSR" lines)
#   NESTED_LOG       also save the console log to this file
#   NESTED_KEEP=1    keep the temporary directory (initramfs, log) and print it
#   KVMINI_CACHE     cache root used by prepare.sh (default ~/.cache/kvmini)
#   QEMU             L1 QEMU binary (default qemu-system-x86_64)
set -euo pipefail
shopt -s extglob

here="$(cd "$(dirname "$0")" && pwd)"
prog="nested"

usage() {
	sed -n '3,4p' "$0" | sed 's/^# \{0,1\}//' >&2
	echo "see the header of $0 for options and environment" >&2
	exit 2
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 125; }

# Begin/end markers printed by L2's /init. The end marker carries CMD's status.
BEGIN_MARK="KVMINI_NESTED_BEGIN"
END_MARK="KVMINI_NESTED_END"
HEARTBEAT="KVMINI_NESTED_HEARTBEAT"

# Modules L2 loads at boot (in this order) and modules it merely makes
# available to modprobe (for network tests). Missing ones are skipped.
LOAD_MODULES="irqbypass kvm kvm_amd"
EXTRA_MODULES="tun tap macvlan macvtap veth bridge br_netfilter vhost vhost_net
	nf_tables nft_chain_nat nft_nat nft_masq nft_ct nft_reject_inet nft_fib_inet
	nf_nat nf_conntrack 9p 9pnet_virtio virtio_net virtio_blk vsock vhost_vsock loop"

# --- arguments ------------------------------------------------------------------
files=""
host_files=()
while [ $# -gt 0 ]; do
	case "$1" in
	--files) [ $# -ge 2 ] || usage; files="$2"; shift 2 ;;
	--files=*) files="${1#--files=}"; shift ;;
	--host-file) [ $# -ge 2 ] || usage; host_files+=("$2"); shift 2 ;;
	--host-file=*) host_files+=("${1#--host-file=}"); shift ;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) echo "$prog: unknown option: $1" >&2; usage ;;
	esac
done
[ $# -gt 0 ] || usage
if [ -n "$files" ] && [ ! -d "$files" ]; then die "--files $files: not a directory"; fi
for f in "${host_files[@]}"; do
	case "$f" in /*) ;; *) die "--host-file $f: must be an absolute path" ;; esac
	[ -e "$f" ] || die "--host-file $f: no such file"
done

timeout_s="${NESTED_TIMEOUT:-900}"
stall_s="${NESTED_STALL:-180}"
lockup_s="${NESTED_LOCKUP:-60}"
boot_stall_s="${NESTED_BOOT_STALL:-60}"
boot_tries="${NESTED_BOOT_TRIES:-3}"
keeper="${NESTED_KEEPER:-1}"
for v in timeout_s stall_s lockup_s boot_stall_s boot_tries; do
	[[ ${!v} =~ ^[0-9]+$ ]] ||
		die "NESTED_TIMEOUT, NESTED_STALL, NESTED_LOCKUP, NESTED_BOOT_STALL and NESTED_BOOT_TRIES must be whole numbers"
done
case "$keeper" in 0 | 1) ;; *) die "NESTED_KEEPER must be 0 or 1" ;; esac
qemu="${QEMU:-qemu-system-x86_64}"
t_start="$EPOCHREALTIME"

# --- L2 kernel (cached) ------------------------------------------------------------
kdir="$("$here/prepare.sh" | tail -n 1)" || die "prepare.sh failed"
version="$(cat "$kdir/version")"
export PATH="$PATH:/usr/sbin:/sbin"

work="$(mktemp -d "${TMPDIR:-/tmp}/kvmini-nested.XXXXXX")"
if [ "${NESTED_KEEP:-0}" = 1 ]; then
	echo "$prog: keeping $work" >&2
else
	trap 'rm -rf "$work"' EXIT
fi
stage="$work/root"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,root,work,lib/modules}

# --- busybox ------------------------------------------------------------------------
busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
if ldd "$busybox" >/dev/null 2>&1; then die "$busybox is not static (apt-get install busybox-static)"; fi
cp "$busybox" "$stage/bin/busybox"
while read -r applet; do
	[ -e "$stage/$applet" ] || [ -L "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done < <("$busybox" --list-full)

# --- kernel modules (with dependencies, resolved on L1) -----------------------------
mods_src="$kdir/lib/modules/$version"
mods_dst="$stage/lib/modules/$version"
mkdir -p "$mods_dst"
# shellcheck disable=SC2086 # word splitting of the module lists is intended
for m in $LOAD_MODULES $EXTRA_MODULES ${NESTED_MODULES:-}; do
	deps="$(modprobe -d "$kdir" -S "$version" --show-depends "$m" 2>/dev/null)" || {
		case " $LOAD_MODULES " in *" $m "*) die "module $m not found in $version" ;; esac
		continue
	}
	while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		rel="${path#"$mods_src"/}"
		mkdir -p "$mods_dst/$(dirname "$rel")"
		cp "$path" "$mods_dst/$rel"
	done <<<"$deps"
done
cp "$mods_src"/modules.builtin* "$mods_src"/modules.order "$mods_dst"/ 2>/dev/null || true
depmod -b "$stage" "$version"

# --- the heartbeat (heartbeat.c) and the keeper, one idle VM held open in L2 (kvm-keeper.c),
# built static for busybox's L2 ---
build_static() { # NAME SOURCE: L2's /sbin/NAME from SOURCE in this folder
	"${CC:-cc}" -O2 -Wall -Wextra -static -o "$stage/sbin/$1" "$here/$2" ||
		die "cannot build $here/$2 (a C compiler and libc6-dev are needed)"
}
build_static nested-heartbeat heartbeat.c
[ "$keeper" = 0 ] || build_static kvm-keeper kvm-keeper.c

# --- files for /work and host files ----------------------------------------------------
if [ -n "$files" ]; then cp -a "$files/." "$stage/work/"; fi
for f in "${host_files[@]}"; do
	mkdir -p "$stage$(dirname "$f")"
	cp -aL "$f" "$stage$f"
done

# Shared libraries: for every dynamically linked ELF file we ship, copy what
# ldd resolves (including the dynamic loader) to the same path in L2.
is_elf() { [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = 7f454c46 ]; }
declare -A libs=()
while IFS= read -r -d '' f; do
	is_elf "$f" || continue
	while read -r lib; do libs["$lib"]=1; done < <(
		ldd "$f" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }'
	)
done < <(find "$stage/work" "${host_files[@]/#/$stage}" -type f -print0 2>/dev/null)
lib_dirs=""
for lib in "${!libs[@]}"; do
	[ -e "$stage$lib" ] && continue
	mkdir -p "$stage$(dirname "$lib")"
	cp -L "$lib" "$stage$lib"
	case ":$lib_dirs:" in *":$(dirname "$lib"):"*) ;; *) lib_dirs="${lib_dirs:+$lib_dirs:}$(dirname "$lib")" ;; esac
done

# --- the command, quoted for sh ----------------------------------------------------------
{
	echo "# generated by tests/nested/run.sh"
	printf 'set --'
	for a in "$@"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done
	printf '\n"$@"\n'
} >"$stage/nested-cmd.sh"

# --- /init ----------------------------------------------------------------------------
cat >"$stage/init" <<EOF
#!/bin/sh
# L2 init, generated by tests/nested/run.sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
export LD_LIBRARY_PATH="$lib_dirs"
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
# /tmp stays part of the initramfs (itself a tmpfs): a --host-file under /tmp, such as a
# checkout in /tmp, must not be hidden by a mount.
chmod 1777 /tmp
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
# Heartbeat: the console is never silent for long unless L2 is wedged (NESTED_STALL). Each
# beat first kicks the console's transmitter, which a lost UART interrupt would leave waiting
# for ever (README.md, "The silent console").
nested-heartbeat "$HEARTBEAT" &
# SysRq from the stall watchdog (QEMU's sendkey) shows where L2's tasks wait.
echo 1 >/proc/sys/kernel/sysrq
dmesg -n "\${nested_loglevel:-3}"
hostname l2
ip link set lo up
up() { cut -d' ' -f1 /proc/uptime; }
finish() {
	echo "$END_MARK status=\$1 uptime=\$(up)"
	sync
	sleep 1 # let the UART drain before powering off
	poweroff -f
	sleep 5
	reboot -f
}
for m in $LOAD_MODULES; do
	modprobe "\$m" || echo "nested: modprobe \$m failed"
done
if [ ! -c /dev/kvm ]; then
	echo "nested: /dev/kvm missing in L2 (no svm in the emulated CPU?)"
	grep -o -w -m1 svm /proc/cpuinfo || echo "nested: cpuinfo has no svm flag"
	finish 126
fi
# The keeper holds an idle VM so that L2's kernel stops patching its code per VM (README.md).
if [ "$keeper" = 1 ]; then
	mkfifo /run/keeper
	kvm-keeper >/run/keeper &
	read -r keeper_line </run/keeper || true
	case "\$keeper_line" in
	kvm-keeper:*) echo "nested: \$keeper_line" ;;
	*) echo "nested: kvm-keeper could not hold a VM"; finish 126 ;;
	esac
fi
echo "$BEGIN_MARK uptime=\$(up) kernel=\$(uname -r) cpus=\$(nproc) mem_kb=\$(awk '/MemTotal/{print \$2}' /proc/meminfo)"
cd /work
sh /nested-cmd.sh
finish \$?
EOF
chmod 755 "$stage/init" "$stage/nested-cmd.sh"

# --- initramfs --------------------------------------------------------------------------
# A hand-written newc archive holding /dev/console comes first, so the kernel
# can give /init a console without mknod on the host (no root needed).
# Concatenated cpio archives are allowed by the kernel.
newc() { # name mode rdevmajor rdevminor
	local name="$1" mode="$2" maj="$3" min="$4" hdr
	hdr="$(printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 "$mode" 0 0 1 0 0 0 0 "$maj" "$min" $((${#name} + 1)) 0)"
	printf '%s%s\0' "$hdr" "$name"
	# header (110) + name + NUL, padded to a multiple of 4
	local pad=$(((4 - (110 + ${#name} + 1) % 4) % 4))
	head -c "$pad" /dev/zero
}
initrd="$work/l2.cpio"
{
	newc dev $((0040755)) 0 0
	newc dev/console $((0020600)) 5 1
	newc 'TRAILER!!!' 0 0 0
} >"$initrd"
# Pad to 512 bytes like cpio does, then the main archive (uncompressed: under
# TCG, decompressing in L2 costs more than copying the bytes).
size="$(stat -c %s "$initrd")"
head -c $(((512 - size % 512) % 512)) /dev/zero >>"$initrd"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >>"$initrd"
t_built="$EPOCHREALTIME"
printf '%s: initramfs %s MiB, built in %.1f s; starting L2 (timeout %s s)\n' "$prog" \
	"$(($(stat -c %s "$initrd") / 1048576))" "$(secs "$t_start" "$t_built")" "$timeout_s" >&2

# --- run L1 QEMU ------------------------------------------------------------------------
log="$work/console.log"
: >"$log"
# stall_dump: where L2's CPUs are, from L1 QEMU's monitor (for finding out why L2 wedged):
# each CPU's registers and local APIC (timer, ISR, IRR), the IOAPIC's unmasked pins and the
# PICs; then SysRq w and l on L2's keyboard, so that L2's kernel lists its blocked tasks and
# every CPU's backtrace on the console (printk writes to the UART without its interrupt), if
# it still takes interrupts at all.
stall_dump() {
	command -v python3 >/dev/null || { echo "no python3 to read the QEMU monitor"; return 0; }
	python3 - "$work/monitor.sock" <<'PY' 2>&1
import re, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
def ask(cmds, wait=3):
    s.sendall("".join(c + "\n" for c in cmds).encode())
    out, end = b"", time.time() + wait
    while time.time() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        out += d
    return out.decode(errors="replace").replace("\r", "").splitlines()
lines = ask(["info cpus", "info registers -a"])
# One local APIC per CPU that "info cpus" lists ("* CPU #0: thread_id=...").
cpus = [m.group(1) for m in map(re.compile(r"^[* ] CPU #(\d+):").match, lines) if m]
lines += ask(["info lapic " + c for c in cpus] + ["info pic"])
# Keep the CPU list, each CPU's general registers, RIP and control registers, the APIC
# state that tells a lost interrupt or a dead timer, and the interrupt controllers' pins in
# use (no monitor echo, segments, FPU or vector registers, masked pins).
keep = ("* CPU", "  CPU", "CPU#", "RAX", "RSI", "R8 ", "R12", "RIP", "CR0", "EFER",
        "dumping local APIC", "LVTT", "Timer", "SPIV", "ISR", "IRR", "APR", "ioapic0", "  IRR",
        "  Remote IRR", "pic0", "pic1")
for line in lines:
    if line.startswith(keep) or (line.startswith("  pin ") and "masked" not in line):
        print(line)
for key in ("9", "w", "l"):
    ask(["sendkey alt-sysrq-" + key], wait=1)
print("sent SysRq 9, w and l to L2 (its answer, if any, follows on the console)")
PY
}
stop_qemu() { kill -TERM "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null; }
# stalled WHY: L2 is wedged; the first time, note why and where its CPUs are, then stop QEMU.
stalled() {
	if [ ! -f "$work/stalled" ]; then
		echo "$1" >"$work/stalled"
		stall_dump | sed 's/^/nested: stall: /' | tee -a "$log"
		sleep 5 # L2's answer to the SysRq keys waits in QEMU's output pipe meanwhile
	fi
	stop_qemu
}
# oopsed LINE: L2's kernel oopsed (LINE is the report's first line). From here on its results
# cannot be trusted: note it, let L2 print the rest of the report for 10 s, then stop QEMU.
oopsed() {
	[ ! -f "$work/oops" ] || return 0
	printf '%s\n' "$1" >"$work/oops"
	echo "$prog: L2's kernel oopsed; what L2 prints from here on does not count, stopping it in 10 s" |
		tee -a "$log"
	(
		sleep 10
		stop_qemu
	) </dev/null >/dev/null 2>&1 &
	echo $! >"$work/oops.killer"
}
filter() {
	# Stream every line at once (no buffering), minus carriage returns; note
	# the L1 time at which the markers appear. With NESTED_STALL, a console
	# silent for that long means L2 is wedged: note it and stop QEMU. So does
	# an L2 CPU that the L2 kernel reports stuck for NESTED_LOCKUP seconds.
	local line rc stuck bound=$boot_stall_s name=NESTED_BOOT_STALL
	while :; do
		rc=0
		if [ "$bound" -gt 0 ]; then
			IFS= read -r -t "$bound" line || rc=$?
		else
			IFS= read -r line || rc=$?
		fi
		if [ "$rc" -gt 128 ]; then
			stalled "no console output for $name=${bound} s"
			continue # drain what is left until QEMU's output ends
		fi
		[ "$rc" = 0 ] || [ -n "$line" ] || break
		case "$line" in
		"$HEARTBEAT"*([$'\r'])) continue ;;
		*"$HEARTBEAT"*) line="${line//$HEARTBEAT/}" ;;
		esac
		line="${line//$'\r'/}"
		line="${line//$'\e'@(\[*([0-9;?])[a-zA-Z]|c)/}" # terminal escapes (SeaBIOS)
		# After an oops no line counts: not an "ok", not the end marker.
		[ ! -f "$work/oops" ] || line="$prog: after the oops: $line"
		printf '%s\n' "$line"
		printf '%s\n' "$line" >>"$log"
		case "$line" in
		*"$BEGIN_MARK"*)
			echo "$EPOCHREALTIME" >"$work/t_begin"
			bound=$stall_s name=NESTED_STALL
			;;
		"$prog: after the oops: "*) ;;
		*"$END_MARK"*) echo "$EPOCHREALTIME" >"$work/t_end" ;;
		*"soft lockup - CPU#"*" stuck for "*"s!"*)
			# The other CPU still runs (the heartbeat goes on), but this one has not
			# scheduled for that long: as wedged as a silent L2.
			stuck="${line##* stuck for }"
			stuck="${stuck%%s!*}"
			if [ "$lockup_s" -gt 0 ] && [[ $stuck =~ ^[0-9]+$ ]] && [ "$stuck" -ge "$lockup_s" ]; then
				stalled "an L2 CPU stuck for $stuck s (soft lockup, NESTED_LOCKUP=${lockup_s} s)"
			fi
			;;
		esac
		# The kernel's own report (a timestamp first), not a line quoted by a test ("#   [...").
		if [[ $line =~ ^\[\ *[0-9]+\.[0-9]+\]\ (BUG:\ |Oops:\ |general\ protection\ fault|kernel\ BUG\ at\ ) ]]; then
			oopsed "$line"
		fi
	done
}
# EPYC minus the features TCG lacks anyway (spares one warning per feature and vCPU).
cpu="EPYC,+svm,+npt,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,-nrip-save,-xsavec"
attempt=1
while :; do
	rm -f "$work/stalled" "$work/oops" "$work/oops.killer" "$work/t_begin" "$work/t_end" \
		"$work/qemu.pid" "$work/monitor.sock"
	: >"$log"
	t_built="$EPOCHREALTIME"
	set +e
	# QEMU ends with this script: timeout stays in our process group (--foreground) so a
	# signal to the group reaches it, and both get a parent-death signal (PR_SET_PDEATHSIG).
	setpriv --pdeathsig TERM timeout --foreground -k 10 "$timeout_s" setpriv --pdeathsig KILL \
		"$qemu" -M q35 -accel "${NESTED_ACCEL:-tcg,thread=multi}" -cpu "${NESTED_CPU:-$cpu}" \
		-nic none -smp "${NESTED_SMP:-2}" -m "${NESTED_MEM:-2G}" -nographic -no-reboot \
		-pidfile "$work/qemu.pid" -monitor "unix:$work/monitor.sock,server=on,wait=off" \
		-kernel "$kdir/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet nokaslr nested_loglevel=${NESTED_LOGLEVEL:-3} ${NESTED_APPEND:-}" \
		</dev/null 2>&1 | filter
	qemu_status="${PIPESTATUS[0]}"
	set -e
	[ ! -f "$work/oops.killer" ] || kill "$(cat "$work/oops.killer")" 2>/dev/null || true
	# A wedge while L2 boots (its kernel patches its own code then too: module loading,
	# static keys) comes before CMD started, so starting L2 again is safe and invisible.
	if { [ -f "$work/stalled" ] || [ -f "$work/oops" ]; } && [ ! -f "$work/t_begin" ] && [ "$attempt" -lt "$boot_tries" ]; then
		attempt=$((attempt + 1))
		echo "$prog: L2 wedged or oopsed while booting, before CMD started ($(cat "$work/stalled" "$work/oops" 2>/dev/null)); starting it again (attempt $attempt of $boot_tries)"
		continue
	fi
	break
done
t_done="$EPOCHREALTIME"
[ -z "${NESTED_LOG:-}" ] || cp "$log" "$NESTED_LOG"

# --- result ------------------------------------------------------------------------------
if [ -f "$work/oops" ]; then
	echo "$prog: L2's kernel oopsed, its results from then on do not count ($(cat "$work/oops"); total $(secs "$t_start" "$t_done") s)"
	exit 125
fi
end_line="$(grep -a "$END_MARK status=" "$log" | tail -n 1 || true)"
if [ -z "$end_line" ]; then
	why="QEMU exit status $qemu_status"
	[ "$qemu_status" = 124 ] && why="killed after NESTED_TIMEOUT=${timeout_s} s"
	what="hung/crashed"
	if [ -f "$work/stalled" ]; then
		what="stalled"
		why="$(cat "$work/stalled"), killed"
	fi
	echo "$prog: nested machine $what before the end marker ($why; total $(secs "$t_start" "$t_done") s)"
	exit 125
fi
status="$(printf '%s\n' "$end_line" | sed -n 's/.*status=\([0-9][0-9]*\).*/\1/p')"
summary="total $(secs "$t_start" "$t_done") s"
if [ -f "$work/t_begin" ]; then
	t_begin="$(cat "$work/t_begin")"
	l2_up="$(grep -a "$BEGIN_MARK" "$log" | tail -n 1 | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')"
	summary="L2 boot to begin marker $(secs "$t_built" "$t_begin") s (L2 uptime ${l2_up} s), command $(secs "$t_begin" "$(cat "$work/t_end")") s, $summary"
fi
echo "$prog: command exit status $status; $summary"
exit "$status"
