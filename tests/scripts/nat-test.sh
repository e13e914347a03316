#!/bin/bash
# tests/scripts/nat-test.sh - scripts/kvmini-nat's checks of what it is given, with stand-ins
# for ip and nft (KVMINI_IP, KVMINI_NFT) in a network namespace of its own (ip_forward is per
# namespace), so nothing on the host changes.
#
#   tests/scripts/nat-test.sh        (as root: unshare -n)
#
# Cases:
#   bad-tap-name-refused   `up --tap 'x;touch F'` (and a name with $(...), one of 16 bytes):
#                          exit 1 naming the tap, no ip or nft call, no state file, F not made
#   up-down-round-trip     up writes KEY=VALUE lines; down removes each tap and the bridge
#   crafted-state-refused  a state file whose taps line runs a command, or holds a bad name,
#                          or has a line kvmini-nat never writes: down stops with an error,
#                          before any ip or nft call, and the command never runs
# Prints "ok - NAME" or "not ok - NAME (why)" and "N passed, N failed". Exit 0 when all pass.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
nat=$here/../../scripts/kvmini-nat
if [ "${NAT_TEST_IN_NS:-}" != 1 ]; then
	exec unshare -n env NAT_TEST_IN_NS=1 "$0" "$@"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvmini-nat-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=tests/scripts/report.sh
. "$(dirname "$0")/report.sh"
mark=$tmp/pwned

# The stand-ins log every call; "ip link show" says no such interface.
for t in ip nft; do
	cat >"$tmp/$t" <<STUB
#!/bin/sh
echo "$t \$*" >>"$tmp/calls"
[ "\$1 \$2" != "link show" ]
STUB
	chmod +x "$tmp/$t"
done
nat() { # ARGS...: run kvmini-nat; output in $tmp/out, status in $st
	: >"$tmp/calls"
	KVMINI_IP=$tmp/ip KVMINI_NFT=$tmp/nft KVMINI_NAT_RUN=$tmp/run sh "$nat" "$@" >"$tmp/out" 2>&1
	st=$?
}

why=""
for bad in "x;touch $mark" "t\$(touch $mark)" "tap0 x|y" "abcdefghijklmnop"; do
	nat up --bridge kvt0 --tap "$bad"
	if [ "$st" != 1 ] || ! grep -q "tap name" "$tmp/out"; then
		why="--tap '$bad': exit $st, expected 1 and the tap named"
	elif [ -s "$tmp/calls" ]; then
		why="--tap '$bad': ip or nft was called: $(head -n 1 "$tmp/calls")"
	elif [ -e "$tmp/run/kvt0" ] || [ -e "$mark" ]; then
		why="--tap '$bad': a state file or $mark was made"
	fi
	[ -z "$why" ] || break
done
result bad-tap-name-refused "$why"

why=""
nat up --bridge kvt0 --addr 10.9.8.1/24 --tap kt1 --tap kt2
if [ "$st" != 0 ]; then
	why="up: exit $st"
elif ! grep -qx 'taps=kt1 kt2' "$tmp/run/kvt0" || ! grep -qx 'net=10.9.8.0/24' "$tmp/run/kvt0"; then
	why="state file: $(paste -sd '|' "$tmp/run/kvt0")"
else
	nat down --bridge kvt0
	if [ "$st" != 0 ]; then
		why="down: exit $st"
	elif ! grep -qx 'ip link del kt1' "$tmp/calls" || ! grep -qx 'ip link del kt2' "$tmp/calls" ||
		! grep -qx 'ip link del kvt0' "$tmp/calls"; then
		why="down did not remove kt1, kt2 and kvt0: $(paste -sd '|' "$tmp/calls")"
	elif [ -e "$tmp/run/kvt0" ]; then
		why="down left the state file"
	fi
fi
result up-down-round-trip "$why"

why=""
mkdir -p "$tmp/run"
for line in "taps=\"\$(touch $mark)\"" "taps=kt1; touch $mark" "taps=\`touch $mark\`" \
	"forward=1; touch $mark" "touch $mark" "taps=../../etc"; do
	printf 'forward=0\n%s\nnet=10.9.8.0/24\n' "$line" >"$tmp/run/kvt0"
	nat down --bridge kvt0
	if [ "$st" != 1 ] || ! grep -q "kvt0" "$tmp/out"; then
		why="state line '$line': exit $st, expected 1 and the state file named"
	elif [ -s "$tmp/calls" ]; then
		why="state line '$line': ip or nft was called: $(head -n 1 "$tmp/calls")"
	elif [ -e "$mark" ]; then
		why="state line '$line' ran a command"
	fi
	[ -z "$why" ] || break
done
result crafted-state-refused "$why"

summary
