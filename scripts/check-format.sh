#!/bin/bash
# check-format.sh - fail, naming each file, when C sources differ from what
# clang-format makes of them with the project's .clang-format (issue 16).
# Fix with: clang-format -i FILE...   Run by `meson test format`.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
	echo "check-format: skipped: clang-format is not installed (scripts/deps.sh --test installs it)"
	exit 77
fi
mapfile -t files < <(find lib vfsd backends guestfs tests fuzz bench \
	-name '*.[ch]' -not -path '*/corpus/*' | sort)
bad=0
# one clang-format for all files (one each took 18 s, nearly all of it
# starting clang-format 165 times; --style=file still finds each file's
# .clang-format); only when that fails, one run a file to name each
if ! "$cf" --style=file --dry-run --Werror "${files[@]}" >/dev/null 2>&1; then
	for f in "${files[@]}"; do
		if ! "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
			echo "check-format: $f is not formatted (clang-format -i $f)"
			bad=1
		fi
	done
fi
[ $bad -eq 0 ] && echo "check-format: ok (${#files[@]} files, $("$cf" --version))"
exit $bad
