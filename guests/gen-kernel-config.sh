#!/bin/sh
# Regenerate guests/kernel.config from guests/kernel.fragment (maintainer tool;
# the build itself only uses the committed guests/kernel.config).
#   guests/gen-kernel-config.sh [linux-source-dir]
# Without an argument the Debian linux-source-6.1 tarball is unpacked to a temp dir.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
frag="$here/kernel.fragment"
out="$here/kernel.config"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ $# -ge 1 ]; then
    src=$(cd "$1" && pwd)
else
    tar=/usr/src/linux-source-6.1.tar.xz
    [ -f "$tar" ] || { echo "gen-kernel-config: $tar missing (apt-get install linux-source-6.1)" >&2; exit 1; }
    echo "gen-kernel-config: unpacking $tar"
    tar -C "$tmp" -xf "$tar"
    src="$tmp/linux-source-6.1"
fi

mkdir -p "$tmp/obj"
# allnoconfig with the fragment as the forced values (what merge_config.sh -n does).
make -s -C "$src" O="$tmp/obj" ARCH=x86_64 KCONFIG_ALLCONFIG="$frag" allnoconfig
make -s -C "$src" O="$tmp/obj" ARCH=x86_64 olddefconfig

# Every line of the fragment must have survived (catches unmet dependencies).
bad=0
grep -E '^(CONFIG_[A-Za-z0-9_]+=|# CONFIG_[A-Za-z0-9_]+ is not set)' "$frag" | while IFS= read -r line; do
    grep -qxF "$line" "$tmp/obj/.config" || { echo "gen-kernel-config: not honoured: $line" >&2; echo x; }
done | grep -q x && bad=1
[ "$bad" = 0 ] || { echo "gen-kernel-config: fragment not fully applied" >&2; exit 1; }

cp "$tmp/obj/.config" "$out"
echo "gen-kernel-config: wrote $out"
