#!/bin/bash
# scripts/check-api-doc.sh - the control socket's description must match its server.
#
# Compares the routes in vmm/cli/api.c (api_route_table: {"METHOD", "/path"}) with the
# operations in docs/api.yaml (a path at two spaces, its methods at four). Prints each route
# found in only one of them and exits 1; 0 when they agree. Run by `make check` (doccheck).
#
#   scripts/check-api-doc.sh [ROOT]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
src=vmm/cli/api.c
doc=docs/api.yaml
[ -f "$src" ] && [ -f "$doc" ] || { echo "check-api-doc: $src or $doc is missing"; exit 1; }

server=$(sed -n '/api_route_table\[\] = {/,/^};/p' "$src" |
	grep -o '{"[A-Z]*", "/[^"]*"}' | sed 's/{"\([A-Z]*\)", "\([^"]*\)"}/\1 \2/' | sort -u)
described=$(awk '
	/^  \/[^ ]*:[ ]*$/ { path = $1; sub(/:$/, "", path); next }
	/^  [^ ]/ { path = "" }
	/^[^ ]/ { path = "" }
	path != "" && /^    (get|put|post|delete|patch):[ ]*$/ {
		m = $1; sub(/:$/, "", m); print toupper(m), path
	}' "$doc" | sort -u)
[ -n "$server" ] || { echo "check-api-doc: no routes found in $src"; exit 1; }

fail=0
while read -r r; do
	[ -n "$r" ] || continue
	echo "$described" | grep -qxF "$r" || { echo "check-api-doc: $r is served ($src) but not in $doc"; fail=1; }
done <<<"$server"
while read -r r; do
	[ -n "$r" ] || continue
	echo "$server" | grep -qxF "$r" || { echo "check-api-doc: $r is in $doc but not served ($src)"; fail=1; }
done <<<"$described"
[ "$fail" = 0 ] && echo "check-api-doc: $(echo "$server" | wc -l) routes, described and served"
exit "$fail"
