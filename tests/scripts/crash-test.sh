#!/bin/bash
# tests/scripts/crash-test.sh - a kvmini that dies of a fatal signal leaves the terminal as it
# found it and dumps no core, and a running kvmini is not dumpable.
#
#   tests/scripts/crash-test.sh KVMINI GUEST_DIR      (as root; needs /dev/kvm)
#
# Cases:
#   not-dumpable              kvmini run as nobody, blocked reading its --config from a FIFO:
#                             its /proc/PID files belong to root (PR_SET_DUMPABLE 0), not to it
#   crash-restores-terminal   kvmini run on a pty (GUEST_DIR's bzImage, `sleep 600`): once the
#                             console made the terminal raw, SIGSEGV; kvmini dies of SIGSEGV
#                             without a core, says so in one line, and ECHO and ICANON are back
#   vcpu-crash-restores-terminal  the same with the SIGSEGV sent to the vCPU thread alone
#                             (tgkill): a thread's crash runs the handler too
# Prints "ok - NAME" or "not ok - NAME (why)" and "N passed, N failed". Exit 0 when all pass.
set -uo pipefail

if [ $# -ne 2 ]; then
	echo "usage: $0 KVMINI GUEST_DIR" >&2
	exit 2
fi
kvmini=$(realpath "$1")
gdir=$(realpath "$2")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-crash-test.XXXXXX")
chmod 755 "$tmp"
pid=""
trap '[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
# shellcheck source=tests/scripts/report.sh
. "$(dirname "$0")/report.sh"

mkfifo -m 666 "$tmp/config"
: >"$tmp/out"
setpriv --reuid=65534 --regid=65534 --clear-groups "$kvmini" run --config "$tmp/config" \
	>"$tmp/out" 2>&1 &
pid=$!
why="kvmini (pid $pid) did not wait on its FIFO within 5 s"
for _ in $(seq 50); do
	# kvmini itself (not setpriv before its exec), blocked opening the FIFO (openat, 257):
	# past its start-up, where it makes itself not dumpable.
	if [ "$(cat /proc/$pid/comm 2>/dev/null)" = kvmini ] &&
		[ "$(cut -d' ' -f1 /proc/$pid/syscall 2>/dev/null)" = 257 ]; then
		owner=$(stat -c %u /proc/$pid/environ)
		why=""
		[ "$owner" = 0 ] || why="/proc/$pid/environ belongs to uid $owner: kvmini is dumpable"
		break
	fi
	sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=""
result not-dumpable "$why"

# crash TARGET: the pty case, SIGSEGV to the process or to its thread named TARGET; prints why
# it failed, nothing when it passed.
crash() {
	: >"$tmp/out"
	python3 - "$kvmini" "$gdir/bzImage" "$gdir/initramfs.cpio.gz" "$tmp/out" "$1" <<'PY'
import ctypes, fcntl, os, pty, signal, sys, termios, time
k, bz, ird, outp, target = sys.argv[1:6]
m, s = pty.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(s, fd)
    os.execv(k, [k, "run", "--kernel", bz, "--initrd", ird, "--mem", "128M",
                 "--cmdline", "-- sleep 600"])
os.set_blocking(m, False)
out = b""
def drain():
    global out
    try:
        while True:
            b = os.read(m, 65536)
            if not b:
                return
            out += b
    except (BlockingIOError, OSError):
        pass
raw = False
deadline = time.time() + 120
while time.time() < deadline:
    drain()
    if not termios.tcgetattr(s)[3] & termios.ECHO:
        raw = True
        break
    if os.waitpid(pid, os.WNOHANG)[0]:
        print("kvmini ended before its console made the terminal raw")
        sys.exit(0)
    time.sleep(0.05)
if not raw:
    os.kill(pid, signal.SIGKILL)
    print("the terminal never went raw in 120 s")
    sys.exit(0)
if target == "process":
    os.kill(pid, signal.SIGSEGV)
else:
    tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)
            if open("/proc/%d/task/%s/comm" % (pid, t)).read().strip() == target]
    if not tids:
        os.kill(pid, signal.SIGKILL)
        print("no thread named %s" % target)
        sys.exit(0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall(234, pid, tids[0], signal.SIGSEGV)  # SYS_tgkill on x86_64
st = None
end = time.time() + 20
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        st = status
        break
    drain()
    time.sleep(0.05)
if st is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("kvmini still ran 20 s after the SIGSEGV")
    sys.exit(0)
time.sleep(0.2)
drain()
open(outp, "wb").write(out)
lflag = termios.tcgetattr(s)[3]
if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGSEGV):
    print("kvmini did not die of SIGSEGV (wait status %#x)" % st)
elif os.WCOREDUMP(st):
    print("kvmini dumped core")
elif not (lflag & termios.ECHO and lflag & termios.ICANON):
    print("the terminal was left raw (lflag %#x)" % lflag)
elif b"kvmini crashed" not in out:
    print("no line saying kvmini crashed")
PY
}
result crash-restores-terminal "$(crash process)"
result vcpu-crash-restores-terminal "$(crash vcpu0)"

summary
