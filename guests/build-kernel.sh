#!/bin/sh
# Build the kvmini guest kernel (bzImage + vmlinux from one build) from Debian's
# linux-source-6.1 with the committed config, through a cache.
#
#   guests/build-kernel.sh <kernel.config> <outdir>
#
# Cache: $KVMINI_CACHE (default $HOME/.cache/kvmini)/kernel-<key>/{bzImage,vmlinux,config}
# where <key> = sha256(config file + linux-source-6.1 package version + recipe version).
# A hit is just a copy. A miss builds out of tree in $KVMINI_CACHE/kbuild-<key>
# (source unpacked there, objects in obj/), then publishes the cache entry with an
# atomic directory rename; the scratch dir is deleted after success
# (KVMINI_KEEP_KBUILD=1 keeps it) and kept after a failure so a rerun resumes.
set -eu

# Bump when this recipe changes in a way that changes the produced images.
RECIPE=1
PKG=linux-source-6.1
TARBALL=/usr/src/linux-source-6.1.tar.xz

die() { echo "build-kernel: error: $*" >&2; exit 1; }
log() { echo "build-kernel: $*"; }

[ $# -eq 2 ] || die "usage: $0 <kernel.config> <outdir>"
config=$1
out=$2
[ -f "$config" ] || die "config $config not found"
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")

cache=${KVMINI_CACHE:-${HOME:-/tmp}/.cache/kvmini}
ver=$(dpkg-query -W -f='${Version}' "$PKG" 2>/dev/null) || ver=
if [ -z "$ver" ] || [ ! -f "$TARBALL" ]; then
    die "$PKG is not installed (apt-get install $PKG bc flex bison libelf-dev libssl-dev cpio xz-utils)"
fi

key=$( { cat "$config"; echo "pkg=$PKG version=$ver recipe=$RECIPE"; } | sha256sum | cut -c1-16)
entry=$cache/kernel-$key

# Copy one cached file to the output dir atomically (tmp + rename). Plain cp, not
# cp -p: the output must be newer than its make prerequisites.
publish() {
    mkdir -p "$out"
    for f in bzImage vmlinux; do
        cp "$entry/$f" "$out/.$f.tmp.$$"
        mv -f "$out/.$f.tmp.$$" "$out/$f"
    done
    log "$out/bzImage $out/vmlinux <- $entry"
}

if [ -f "$entry/bzImage" ] && [ -f "$entry/vmlinux" ]; then
    log "cache hit (key $key, $PKG $ver)"
    publish
    exit 0
fi

mkdir -p "$cache"
# One builder per key at a time; a second make waits and then gets the cache hit.
exec 9>"$cache/kernel-$key.lock"
if ! flock -n 9; then
    log "another build of key $key is running, waiting for it"
    flock 9
fi
if [ -f "$entry/bzImage" ] && [ -f "$entry/vmlinux" ]; then
    log "cache hit after wait (key $key)"
    publish
    exit 0
fi

log "cache miss (key $key, $PKG $ver): building, this takes minutes"
start=$(date +%s)
kb=$cache/kbuild-$key
mkdir -p "$kb"

# Unpack the source once; the .done marker makes an interrupted unpack restart cleanly.
if [ ! -f "$kb/src.done" ]; then
    rm -rf "$kb/src" "$kb/src.tmp"
    mkdir -p "$kb/src.tmp"
    log "unpacking $TARBALL"
    tar -C "$kb/src.tmp" -xf "$TARBALL"
    mv "$kb/src.tmp/linux-source-6.1" "$kb/src"
    rmdir "$kb/src.tmp"
    touch "$kb/src.done"
fi

obj=$kb/obj
mkdir -p "$obj"
cp "$config" "$obj/.config"
kmake() {
    make -C "$kb/src" O="$obj" ARCH=x86_64 \
        KBUILD_BUILD_USER=kvmini KBUILD_BUILD_HOST=kvmini "$@"
}
kmake -s olddefconfig

# olddefconfig must not change the committed config. Only the header comment and the
# toolchain version strings (which follow the installed gcc/binutils) may differ.
filter() {
    grep -v -E '^# (Linux/|Automatically generated|Compiler:)|^# *$|^CONFIG_(CC_VERSION_TEXT|GCC_VERSION|CLANG_VERSION|AS_VERSION|LD_VERSION|LLD_VERSION|PAHOLE_VERSION)=' "$1" || true
}
filter "$config" >"$kb/config.want"
filter "$obj/.config" >"$kb/config.got"
if ! cmp -s "$kb/config.want" "$kb/config.got"; then
    echo "build-kernel: ERROR: 'make olddefconfig' changed the committed $config:" >&2
    diff -u "$kb/config.want" "$kb/config.got" >&2 || true
    echo "build-kernel: regenerate it with guests/gen-kernel-config.sh and commit the result." >&2
    exit 1
fi
if ! cmp -s "$config" "$obj/.config"; then
    log "note: only toolchain version lines differ from the committed config"
fi

jobs=$(nproc 2>/dev/null || echo 2)
log "make -j$jobs bzImage vmlinux (log: $kb/build.log)"
if ! kmake -j"$jobs" bzImage vmlinux >"$kb/build.log" 2>&1; then
    tail -n 40 "$kb/build.log" >&2
    die "kernel build failed; full log in $kb/build.log (scratch dir kept, rerun resumes)"
fi

# Publish the cache entry atomically: fill a temp dir, then rename it into place.
tmp=$cache/.kernel-$key.tmp.$$
rm -rf "$tmp"
mkdir -p "$tmp"
cp "$obj/arch/x86/boot/bzImage" "$tmp/bzImage"
cp "$obj/vmlinux" "$tmp/vmlinux"
cp "$obj/.config" "$tmp/config"
echo "$PKG $ver recipe=$RECIPE built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s" >"$tmp/info"
sync "$tmp/bzImage" "$tmp/vmlinux" 2>/dev/null || true
if ! mv -T "$tmp" "$entry" 2>/dev/null; then
    rm -rf "$tmp"   # somebody else published the same key first
fi
log "built in $(( $(date +%s) - start ))s, cached as $entry"

if [ "${KVMINI_KEEP_KBUILD:-0}" != 1 ]; then
    rm -rf "$kb"
fi
rm -f "$cache/kernel-$key.lock"
publish
