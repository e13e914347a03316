#!/bin/sh
# Build the kvmini guest initramfs: static busybox + guests/init.
#
#   guests/build-initramfs.sh <init script> <output .cpio.gz> [busybox binary]
#   KVMINI_AGENT=<kvmini-agent binary> guests/build-initramfs.sh ...   (the sandbox initramfs:
#                                      the guest agent as /sbin/kvmini-agent)
#
# Layout: /init, /bin/busybox and its applet symlinks (from `busybox --list-full`),
# empty /dev /proc /sys /tmp /root /etc /mnt, and a /dev/console node. The node is
# written as a hand-made cpio "newc" entry so no root/mknod is needed; the kernel
# needs it to give /init its stdin/stdout before devtmpfs is mounted.
# Output is deterministic (uid/gid 0, mtime 0, sorted, gzip -n) and written atomically.
set -eu

die() { echo "build-initramfs: error: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 <init> <out.cpio.gz> [busybox]"
init=$1
out=$2
busybox=${3:-/bin/busybox}
[ -f "$init" ] || die "$init not found"
[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
if command -v file >/dev/null 2>&1; then
    file -L "$busybox" | grep -q 'statically linked' ||
        die "$busybox is not statically linked (apt-get install busybox-static)"
fi
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
init=$(abspath "$init")
[ -z "${KVMINI_AGENT:-}" ] || KVMINI_AGENT=$(abspath "$KVMINI_AGENT")
busybox=$(abspath "$busybox")
mkdir -p "$(dirname "$out")"
out=$(abspath "$out")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"
cd "$root"
mkdir -p bin sbin usr/bin usr/sbin dev proc sys tmp root etc mnt
cp "$busybox" bin/busybox
chmod 0755 bin/busybox
cp "$init" init
chmod 0755 init
if [ -n "${KVMINI_AGENT:-}" ]; then
    cp "$KVMINI_AGENT" sbin/kvmini-agent
    chmod 0755 sbin/kvmini-agent
    mkdir -p rom rw newroot
fi
"$busybox" --list-full | while IFS= read -r path; do
    [ "$path" = bin/busybox ] && continue
    mkdir -p "$(dirname "$path")"
    # relative link to /bin/busybox
    up=$(echo "$path" | sed 's|[^/]*/|../|g; s|[^/]*$||')
    ln -sf "${up}bin/busybox" "$path"
done
chmod 1777 tmp
find . -exec touch -h -d @0 {} +

find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 --reproducible >"$tmp/main.cpio"

# newc entry: 6-byte magic + 13 8-hex-digit fields, name + NUL padded to 4 bytes.
newc() { # name mode rdevmajor rdevminor
    n=$(( ${#1} + 1 ))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
        0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$n" 0 "$1"
    pad=$(( (4 - (110 + n) % 4) % 4 ))
    [ "$pad" -eq 0 ] || head -c "$pad" /dev/zero
}
{
    newc dev/console $((0020600)) 5 1   # S_IFCHR | 0600, char 5:1
    newc TRAILER!!! 0 0 0
} >"$tmp/console.cpio"

cat "$tmp/main.cpio" "$tmp/console.cpio" | gzip -n -9 >"$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
echo "build-initramfs: $out ($(wc -c <"$out") bytes)"
