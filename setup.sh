#!/bin/sh
# setup.sh: install what kvmini needs on Debian 12 (as root), build it, and boot the demo guest.
#
#   ./setup.sh              install packages, build, boot the demo guest (`make demo`)
#   ./setup.sh --deps-only  install packages only (used by .ci/run)
set -eu

PACKAGES="
  make gcc libc6-dev clang clang-format libclang-rt-14-dev
  libcmocka-dev liburing-dev libseccomp-dev libcap-ng-dev e2fsprogs fio jq
  libevent-dev libjansson-dev libcurl4-openssl-dev curl erofs-utils libarchive-dev nettle-dev
  linux-source-6.1 bc flex bison libelf-dev libssl-dev xz-utils cpio kmod
  busybox-static musl-tools qemu-system-x86
  nftables iproute2 iperf3 util-linux pkgconf man-db groff-base binutils gdb
"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup.sh: need root to install:$missing" >&2
		exit 1
	fi
	echo "setup.sh: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi

[ "${1:-}" = "--deps-only" ] && exit 0
exec make demo
