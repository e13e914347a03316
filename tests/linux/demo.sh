#!/bin/sh
# tests/linux/demo.sh KVMINI GUEST_DIR - boot the demo guest: 2 vCPUs, the project's kernel and
# initramfs, a command that shows the machine. Directly on hosts with hardware virtualization;
# inside the nested machine elsewhere (a standard guest would be ~1000x slower on PVM).
set -eu
[ $# -eq 2 ] || { echo "usage: $0 KVMINI GUEST_DIR" >&2; exit 2; }
kvmini=$1
guests=$2
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
demo_cmd='-- echo; echo "Hello from a kvmini guest: $(uname -sr), $(nproc) vCPUs,'
demo_cmd="$demo_cmd"' $(grep MemTotal /proc/meminfo | tr -s " ")"; cat /proc/cmdline'

if why=$("$top/tests/nested/hw-virt.sh" -v); then
	echo "demo: booting directly ($why)"
	exec "$kvmini" run --kernel "$guests/bzImage" --initrd "$guests/initramfs.cpio.gz" \
		--cpus 2 --mem 256M --cmdline "$demo_cmd"
fi
echo "demo: this host has no usable hardware virtualization ($why);"
echo "demo: booting the demo guest inside the nested machine (QEMU TCG + emulated AMD SVM)"
stage=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-demo.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$kvmini" "$stage/kvmini"
cp "$guests/bzImage" "$guests/initramfs.cpio.gz" "$stage/"
cat >"$stage/demo.sh" <<EOS
#!/bin/sh
exec ./kvmini run --kernel bzImage --initrd initramfs.cpio.gz --cpus 2 --mem 256M --cmdline '$demo_cmd'
EOS
"$top/tests/nested/run.sh" --files "$stage" -- sh ./demo.sh
