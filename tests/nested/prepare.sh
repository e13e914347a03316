#!/bin/bash
# tests/nested/prepare.sh - fetch and cache the kernel of the nested machine (L2).
#
# The nested machine (see README.md) runs Debian's cloud kernel with kvm_amd
# as a module. This script:
#   1. makes sure the host tools are present (qemu-system-x86, busybox-static,
#      cpio, kmod), installing them with apt-get when missing (needs root);
#   2. resolves the versioned package behind linux-image-cloud-amd64
#      (linux-image-6.1.0-N-cloud-amd64) with apt-cache depends;
#   3. downloads it with apt-get download, unpacks it with dpkg-deb -x, runs
#      depmod -b on the module tree (the .deb ships no modules.dep);
#   4. keeps vmlinuz + lib/modules/<version> in
#      ${KVMINI_CACHE:-$HOME/.cache/kvmini}/nested/kernel-<version>/ and points
#      the symlink nested/current at it. The directory is built in a temporary
#      directory and renamed into place, so an interrupted run leaves no
#      half-made cache behind.
#
# Reruns (and fresh clones on the same machine) find nested/current and return
# at once without touching apt. Set NESTED_REFRESH=1 to re-resolve the package.
#
# Output: the last line on stdout is the cache directory of the kernel
# (contains vmlinuz, version and lib/modules/<version>). Messages go to stderr.
set -euo pipefail

log() { printf 'nested/prepare: %s\n' "$*" >&2; }
die() { printf 'nested/prepare: error: %s\n' "$*" >&2; exit 1; }

cache_root="${KVMINI_CACHE:-$HOME/.cache/kvmini}/nested"
current="$cache_root/current"

# --- 1. host packages ----------------------------------------------------
apt_updated=0
apt_update_once() {
	if [ "$apt_updated" = 0 ]; then
		log "apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		apt_updated=1
	fi
}

missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
command -v depmod >/dev/null 2>&1 || [ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || missing+=(kmod)
# The initramfs needs a *static* busybox; the plain "busybox" package is dynamic.
if [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]; then
	missing+=(busybox-static)
fi
if [ "${#missing[@]}" -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing host packages: ${missing[*]} (run as root or: apt-get install ${missing[*]})"
	apt_update_once
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- 2. cached kernel? ------------------------------------------------------
if [ "${NESTED_REFRESH:-0}" != 1 ] && [ -f "$current/vmlinuz" ] && [ -f "$current/version" ]; then
	cd "$current" && pwd -P
	exit 0
fi

# --- 3. resolve the versioned kernel package ----------------------------------
resolve_pkg() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*-cloud-amd64\) *$/\1/p' | head -n 1
}
pkg="$(resolve_pkg)"
if [ -z "$pkg" ]; then
	[ "$(id -u)" = 0 ] || die "apt-cache knows no linux-image-cloud-amd64 (run apt-get update as root)"
	apt_update_once
	pkg="$(resolve_pkg)"
fi
[ -n "$pkg" ] || die "cannot resolve the package that linux-image-cloud-amd64 depends on"
version="${pkg#linux-image-}"
log "L2 kernel package: $pkg"

final="$cache_root/kernel-$version"
if [ ! -f "$final/vmlinuz" ]; then
	mkdir -p "$cache_root"
	# Everything is built under $tmp (same file system as the cache, so the
	# final rename is atomic); the .deb goes to a world-readable directory
	# under ${TMPDIR:-/tmp} because apt's sandbox user (_apt) downloads it.
	tmp="$(mktemp -d "$cache_root/.tmp.XXXXXX")"
	dl="$(mktemp -d "${TMPDIR:-/tmp}/kvmini-nested-dl.XXXXXX")"
	trap 'rm -rf "$tmp" "$dl"' EXIT
	chmod 755 "$dl"
	(cd "$dl" && apt-get download -q "$pkg" >&2) || {
		[ "$(id -u)" = 0 ] || die "apt-get download $pkg failed"
		apt_update_once
		(cd "$dl" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
	}
	deb="$(ls "$dl"/*.deb)"
	log "unpacking $(basename "$deb")"
	dpkg-deb -x "$deb" "$tmp/x"

	out="$tmp/kernel-$version"
	mkdir -p "$out/lib/modules"
	cp "$tmp/x/boot/vmlinuz-$version" "$out/vmlinuz"
	[ -f "$tmp/x/boot/config-$version" ] && cp "$tmp/x/boot/config-$version" "$out/config"
	# bookworm ships /lib/modules; later releases /usr/lib/modules.
	for d in "$tmp/x/lib/modules/$version" "$tmp/x/usr/lib/modules/$version"; do
		if [ -d "$d" ]; then mv "$d" "$out/lib/modules/"; break; fi
	done
	[ -d "$out/lib/modules/$version" ] || die "no module tree for $version in $pkg"
	depmod -b "$out" "$version"
	printf '%s\n' "$version" >"$out/version"
	printf '%s\n' "$pkg" >"$out/package"

	# Atomic publish: rename the finished directory into place. If another
	# run won the race, keep theirs.
	mv -T "$out" "$final" 2>/dev/null || [ -f "$final/vmlinuz" ] || die "cannot create $final"
	rm -rf "$tmp" "$dl"
	trap - EXIT
fi

# Point "current" at it, atomically (symlink + rename).
ln -sfn "kernel-$version" "$cache_root/.current.$$"
mv -T "$cache_root/.current.$$" "$current"
log "cached in $final"
cd "$final" && pwd -P
