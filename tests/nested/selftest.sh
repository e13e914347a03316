#!/bin/bash
# tests/nested/selftest.sh - prove the nested machine and the Linux test suite
# work end to end, with QEMU (through tests/linux/qemu-shim.sh) as the L3 VMM.
#
#   tests/nested/selftest.sh [KERNEL_DIR]
#
# KERNEL_DIR holds bzImage, vmlinux and initramfs.cpio.gz (the guest built in
# guests/). Without it, a stand-in guest is made from the L2 Debian kernel
# (its vmlinuz as bzImage, the vmlinux unpacked from it, whose PVH entry QEMU
# uses) and a busybox initramfs whose /init follows the guest contract
# (KVMINI_GUEST_READY, sh -c "$*", KVMINI_CMD_EXIT=<status>, reboot).
#
# It then runs, inside L2: tests/linux/run-tests.sh ./qemu-shim.sh ./kernels
# Exit status: that of run-tests.sh (or 125 when the nested machine failed).
# Environment: as tests/nested/run.sh, plus the KVMINI_TEST_* variables of
# run-tests.sh, which are passed on to L2.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
linux="$(cd "$here/../linux" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/kvmini-selftest.XXXXXX")"
trap 'rm -rf "$work"' EXIT
files="$work/files"
mkdir -p "$files/kernels"

if [ $# -ge 1 ]; then
	for f in bzImage vmlinux initramfs.cpio.gz; do
		cp "$1/$f" "$files/kernels/$f"
	done
else
	kdir="$("$here/prepare.sh" | tail -n 1)"
	echo "selftest: stand-in guest from $(cat "$kdir/version")" >&2
	cp "$kdir/vmlinuz" "$files/kernels/bzImage"
	# Unpack vmlinux from the bzImage payload (offset/length from the boot header).
	python3 - "$kdir/vmlinuz" "$work/payload" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
setup_sects = d[0x1F1] or 4
off, length = struct.unpack("<II", d[0x248:0x250])
start = (setup_sects + 1) * 512 + off
open(sys.argv[2], "wb").write(d[start:start + length])
EOF
	case "$(od -An -tx1 -N4 "$work/payload" | tr -d ' \n')" in
	# (the decompressors may complain about the size word after the stream)
	02214c18) lz4 -dc "$work/payload" >"$files/kernels/vmlinux" 2>/dev/null || true ;;
	fd377a58) xz -dc "$work/payload" >"$files/kernels/vmlinux" 2>/dev/null || true ;;
	28b52ffd) zstd -dcq "$work/payload" >"$files/kernels/vmlinux" 2>/dev/null || true ;;
	1f8b*) gzip -dc "$work/payload" >"$files/kernels/vmlinux" 2>/dev/null || true ;;
	*) echo "selftest: unknown bzImage payload compression" >&2; exit 1 ;;
	esac
	[ "$(od -An -tx1 -N4 "$files/kernels/vmlinux" | tr -d ' \n')" = 7f454c46 ] || {
		echo "selftest: could not unpack vmlinux from the bzImage" >&2
		exit 1
	}
	# Guest initramfs.
	g="$work/guest"
	mkdir -p "$g"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp}
	cp /bin/busybox "$g/bin/busybox"
	for a in $(/bin/busybox --list-full); do [ -e "$g/$a" ] || ln -s /bin/busybox "$g/$a"; done
	cat >"$g/init" <<'EOF'
#!/bin/sh
# stand-in guest /init (the guest contract of tests/linux/run-tests.sh)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo KVMINI_GUEST_READY
sh -c "$*"
echo "KVMINI_CMD_EXIT=$?"
reboot -f
EOF
	chmod 755 "$g/init"
	(cd "$g" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$files/kernels/initramfs.cpio.gz"
fi

cp "$linux/run-tests.sh" "$linux/qemu-shim.sh" "$files/"
env_args=""
for v in $(compgen -e | grep '^KVMINI_TEST_' || true); do
	env_args+=" $v=$(printf %q "${!v}")"
done
status=0
"$here/run.sh" --files "$files" \
	--host-file "$(command -v qemu-system-x86_64)" \
	--host-file /usr/share/qemu/bios-microvm.bin \
	-- sh -c "env$env_args ./run-tests.sh ./qemu-shim.sh ./kernels" || status=$?
exit "$status"
