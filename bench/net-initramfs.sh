#!/bin/bash
# bench/net-initramfs.sh: the network benchmark's guest initramfs: the standard guest
# initramfs (guests/build-initramfs.sh, as built by `make guests`) plus host binaries and
# the shared libraries they need.
#
#   bench/net-initramfs.sh BASE.cpio.gz OUT.cpio.gz BINARY...
#
# Each BINARY (absolute path, e.g. /usr/bin/iperf3) goes to the same path in the guest,
# with the libraries and dynamic loader that ldd resolves for it. The extra files are a
# second gzip'd cpio archive appended to BASE: the kernel unpacks concatenated archives in
# order, so BASE (its /init, busybox, /dev/console) stays byte-for-byte as it is.
# Output is deterministic (uid/gid 0, mtime 0, sorted, gzip -n) and written atomically.
set -euo pipefail

die() {
	echo "net-initramfs: error: $*" >&2
	exit 1
}
[ $# -ge 3 ] || die "usage: $0 BASE.cpio.gz OUT.cpio.gz BINARY..."
base=$1
out=$2
shift 2
[ -f "$base" ] || die "$base not found (make guests builds it)"
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"
base=$(realpath "$base")
mkdir -p "$(dirname "$out")"
out=$(realpath "$out")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"

# add PATH: copy PATH (symlinks resolved) to the same path under $root.
add() {
	mkdir -p "$root$(dirname "$1")"
	cp -L "$1" "$root$1"
}
for bin in "$@"; do
	case "$bin" in /*) ;; *) die "$bin: not an absolute path" ;; esac
	[ -x "$bin" ] || die "$bin not found or not executable"
	add "$bin"
	# "name => /path (addr)" and "/path (addr)" lines; linux-vdso has no path.
	libs=$(ldd "$bin" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (.*/\1/p') || true
	for lib in $libs; do
		[ -e "$root$lib" ] || add "$lib"
	done
done
cd "$root"
find . -exec touch -h -d @0 {} +
find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible |
	gzip -n -9 >"$tmp/extra.cpio.gz"

cat "$base" "$tmp/extra.cpio.gz" >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "net-initramfs: $out ($(wc -c <"$out") bytes; added $*)"
