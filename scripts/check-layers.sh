#!/bin/bash
# scripts/check-layers.sh - keep the floors of the source tree from eroding.
#
# Every source file and internal header belongs to a layer (its folder; a header
# include/kvmini/X.h to the folder of X.c, or the table below). A file may include only
# headers of the layers its own layer is allowed to see (ALLOW). Prints each violation as
# "FILE: includes HEADER (layer L), which layer M may not see" and exits 1; 0 when clean.
# Run by `make check` (make layercheck). docs/architecture.md explains the floors.
#
#   scripts/check-layers.sh [ROOT]   (ROOT: a source tree, default this one)
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

# Who may see whom. "public" is include/kvmini.h (the API and its status enum).
declare -A ALLOW=(
	[base]="base public"
	[kvm]="kvm base public"
	[legacy]="legacy base public"
	[virtio]="virtio base public"
	[boot]="boot base public"
	[sandbox]="sandbox base public"
	[machine]="machine kvm legacy virtio boot sandbox base public"
	[cli]="cli public"
)
# Folders and their layers.
declare -A DIR_LAYER=(
	[vmm/base]=base [vmm/kvm]=kvm [devices/legacy]=legacy [devices/virtio]=virtio
	[boot]=boot [vmm/sandbox]=sandbox [vmm/machine]=machine [vmm/cli]=cli
)
# Headers without a .c of the same name.
declare -A HEADER_LAYER=([layout.h]=base [le.h]=base [cli.h]=cli)

layer_of_dir() {
	local d=$1
	echo "${DIR_LAYER[$d]:-}"
}

# The layer a header include/kvmini/NAME belongs to.
layer_of_header() {
	local h=$1 c
	if [ -n "${HEADER_LAYER[$h]:-}" ]; then
		echo "${HEADER_LAYER[$h]}"
		return
	fi
	for d in "${!DIR_LAYER[@]}"; do
		c="$d/${h%.h}.c"
		if [ -f "$c" ]; then
			echo "${DIR_LAYER[$d]}"
			return
		fi
	done
	echo unknown
}

fail=0
check_file() { # FILE LAYER
	local f=$1 me=$2 inc hl
	while IFS= read -r inc; do
		if [ "$inc" = kvmini.h ]; then
			hl=public
		else
			hl=$(layer_of_header "${inc#kvmini/}")
		fi
		case " ${ALLOW[$me]} " in
		*" $hl "*) ;;
		*)
			echo "$f: includes \"$inc\" (layer $hl), which layer $me may not see"
			fail=1
			;;
		esac
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
}

nfiles=0
for d in "${!DIR_LAYER[@]}"; do
	for f in "$d"/*.c; do
		[ -e "$f" ] || continue
		check_file "$f" "${DIR_LAYER[$d]}"
		nfiles=$((nfiles + 1))
	done
done
for h in include/kvmini/*.h; do
	l=$(layer_of_header "$(basename "$h")")
	if [ "$l" = unknown ]; then
		echo "$h: belongs to no layer (add its .c or an entry in HEADER_LAYER)"
		fail=1
		continue
	fi
	check_file "$h" "$l"
	nfiles=$((nfiles + 1))
done
# The public header stands alone.
if grep -q '^#include "' include/kvmini.h; then
	echo "include/kvmini.h: includes a project header; the public header must stand alone"
	fail=1
fi
[ "$fail" = 0 ] && echo "layer check: $nfiles files, every include within its floor"
exit "$fail"
