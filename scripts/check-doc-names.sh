#!/bin/bash
# scripts/check-doc-names.sh - the docs must not cite code that does not exist.
#
#   scripts/check-doc-names.sh [DOC.md...]   (default: docs/*.md)
#
# Every `identifier` in backticks that looks like a C name (lower case with an underscore,
# optionally followed by "()") must occur as a whole word in the sources (vmm, devices, boot,
# include, tests, scripts, examples, guests, Makefile), and every `path` in backticks (with a slash,
# or ending in .c .h .sh .md) must exist (a bare file name somewhere in the tree). Prints each miss and exits 1; run by `make check`.
set -euo pipefail
cd "$(dirname "$0")/.."
docs=("$@")
[ ${#docs[@]} -gt 0 ] || docs=(docs/*.md)
srcs=(vmm devices boot include tests scripts examples guests Makefile)
fail=0
names=0
paths=0
for d in "${docs[@]}"; do
	while IFS= read -r tok; do
		t=${tok%()}
		if [[ "$t" =~ ^[a-z][a-z0-9]*(_[a-z0-9]+)+$ ]]; then
			names=$((names + 1))
			if ! grep -rqw --include='*.c' --include='*.h' --include='*.sh' --include=Makefile \
				-- "$t" "${srcs[@]}"; then
				echo "$d: \`$tok\` is not in the sources"
				fail=1
			fi
		elif [[ "$t" =~ ^[A-Za-z0-9_./-]+$ ]] && { [[ "$t" == */* ]] || [[ "$t" =~ \.(c|h|sh|md)$ ]]; }; then
			case "$t" in /*) continue ;; esac # host paths (/dev/kvm) are not ours
			paths=$((paths + 1))
			if [[ "$t" != */* ]]; then # a bare file name: some file of that name
				[ -n "$(find "${srcs[@]}" docs -name "$t" -print -quit)" ] && continue
			elif [ -e "$t" ]; then
				continue
			fi
			if true; then
				echo "$d: \`$tok\` does not exist"
				fail=1
			fi
		fi
	done < <(grep -o '`[^`]*`' "$d" | tr -d '`' | sort -u)
done
[ "$fail" = 0 ] && echo "doc names: ${#docs[@]} docs, $names code names and $paths paths, all found"
exit "$fail"
