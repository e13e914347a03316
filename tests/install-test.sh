#!/bin/bash
# tests/install-test.sh - check a `make install` into a scratch DESTDIR as a user would see it.
#
#   tests/install-test.sh STAGE EXAMPLE
#
# STAGE is the DESTDIR (PREFIX /usr/local) and EXAMPLE examples/run-command built against it
# with pkg-config (Makefile: installtest). Checks every installed file, the soname, that the
# shared library exports exactly the functions include/kvmini.h declares, that pkg-config
# reports the version, that both man pages render without warnings, and that the example
# runs (its usage error; the Linux guest run is in tests/linux/api-tests.sh).
set -euo pipefail
stage=$1
example=$2
p=$stage/usr/local
fail=0
bad() { echo "not ok - $*"; fail=1; }
good() { echo "ok - $*"; }

version=$(cat VERSION)
for f in bin/kvmini lib/libkvmini.a "lib/libkvmini.so.$version" lib/libkvmini.so.0 \
	lib/libkvmini.so include/kvmini.h lib/pkgconfig/kvmini.pc share/man/man1/kvmini.1 \
	share/man/man3/libkvmini.3 share/kvmini/bzImage share/kvmini/sandbox.cpio.gz; do
	if [ -e "$p/$f" ]; then good "installed $f"; else bad "installed $f (missing)"; fi
done

soname=$(readelf -d "$p/lib/libkvmini.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libkvmini.so.0 ] && good "soname $soname" || bad "soname '$soname', expected libkvmini.so.0"

# Exports: exactly the functions the header declares.
exported=$(nm -D --defined-only "$p/lib/libkvmini.so" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort -u)
declared=$(grep -oE '\bkvmini_[a-z_]+\(' include/kvmini.h | tr -d '(' | sort -u)
if [ "$exported" = "$declared" ]; then
	good "libkvmini.so exports the $(echo "$declared" | wc -l) functions of kvmini.h and nothing else"
else
	bad "libkvmini.so exports differ from kvmini.h:"
	diff <(echo "$declared") <(echo "$exported") | sed 's/^/#   /' || true
fi

got=$(PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_PATH=$p/lib/pkgconfig pkg-config --modversion kvmini)
[ "$got" = "$version" ] && good "pkg-config --modversion kvmini = $got" || bad "pkg-config version '$got', expected $version"

for page in man1/kvmini.1 man3/libkvmini.3; do
	warn=$(MANWIDTH=80 man --warnings -l "$p/share/man/$page" 2>&1 >/dev/null || echo "man failed")
	lines=$(MANWIDTH=80 man -l "$p/share/man/$page" 2>/dev/null | wc -l)
	if [ -z "$warn" ] && [ "$lines" -gt 20 ]; then
		good "man $page renders ($lines lines, no warnings)"
	else
		bad "man $page: ${warn:-only $lines lines}"
	fi
done

set +e
out=$("$example" 2>&1)
st=$?
set -e
if [ "$st" = 2 ] && [[ "$out" == *usage:* ]]; then
	good "example runs (usage error, exit 2)"
else
	bad "example without arguments: exit $st, '$out'"
fi
if ldd "$example" | grep -q "$p/lib/libkvmini.so.0"; then
	good "example is linked to the installed libkvmini.so.0"
else
	bad "example does not use the installed libkvmini.so.0: $(ldd "$example" | grep kvmini)"
fi
# The installed kvmini finds its sandbox guest in share/kvmini: its complaint is then about
# the missing --rootfs, not about the guest.
set +e
out=$("$p/bin/kvmini" exec --rootfs /nonexistent-kvmini-rootfs -- true 2>&1)
st=$?
set -e
if [ "$st" = 125 ] && [[ "$out" == *"--rootfs /nonexistent-kvmini-rootfs: No such file"* ]]; then
	good "installed kvmini exec finds its guest in share/kvmini"
else
	bad "installed kvmini exec: exit $st, '$out'"
fi
[ "$fail" = 0 ] && echo "install test: all passed"
exit "$fail"
