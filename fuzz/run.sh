#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# fuzz/run.sh - build the libFuzzer targets with clang and run each one for
# a bounded time.  Exits non-zero if any target finds a crash, a leak, UB
# or a broken invariant; the reproducer is left in $OUT (default
# build-fuzz/fuzz-out/<target>/).
#
# usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 30 (env FUZZ_SECONDS also works)
#   TARGET              fuzz_url, fuzz_config, fuzz_sftp_reply, fuzz_nfs_reply
#                       (default: all)
# env: BUILD (default build-fuzz), OUT, FUZZ_CC (default clang; CC is
#      not used, as CI may point it at gcc)
#
# Needs (Debian 12): clang, libclang-rt-14-dev (libFuzzer and sanitizer
# runtimes) plus the normal build dependencies.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
secs=${1:-${FUZZ_SECONDS:-30}}
[ $# -gt 0 ] && shift
targets=${*:-fuzz_url fuzz_config fuzz_sftp_reply fuzz_nfs_reply}
build=${BUILD:-$top/build-fuzz}
out=${OUT:-$build/fuzz-out}

case $secs in
''|*[!0-9]*) echo "run.sh: seconds must be a number, not '$secs'" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
	# werror off: clang warns where gcc (the CI compiler) does not, and
	# such warnings must not stop the fuzzing
	CC=${FUZZ_CC:-clang} meson setup "$build" "$top" -Dfuzz=true \
		-Dtests=disabled -Dwerror=false -Dbuildtype=debugoptimized
else
	meson configure "$build" -Dfuzz=true -Dwerror=false >/dev/null
fi
# shellcheck disable=SC2086
meson compile -C "$build" $targets

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# one target: its output to $out/$t/log, its verdict in $out/$t/status
fuzz_one() {
	t=$1
	name=${t#fuzz_}
	seeds=$here/corpus/$name
	# new inputs go to a scratch corpus, so the checked-in seeds stay small
	work=$out/$t/corpus
	mkdir -p "$work"
	if "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
		-artifact_prefix="$out/$t/" \
		"$work" "$seeds" >"$out/$t/log" 2>&1; then
		echo ok >"$out/$t/status"
	else
		echo failed >"$out/$t/status"
	fi
}

# libFuzzer keeps one core busy: as many targets at once as there are
# cores (JOBS overrides), each for the same time as alone
jobs=${JOBS:-$(nproc 2>/dev/null || echo 1)}
status=0
running=0
for t in $targets; do
	mkdir -p "$out/$t"
	rm -f "$out/$t/status"
	echo "== $t: ${secs}s, seeds $here/corpus/${t#fuzz_}"
	fuzz_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait
for t in $targets; do
	tail -n 15 "$out/$t/log"
	if [ "$(cat "$out/$t/status" 2>/dev/null)" = ok ]; then
		echo "== $t: ok"
	else
		echo "== $t: FAILED (reproducer: $out/$t/crash-* / leak-* / timeout-*; log: $out/$t/log)" >&2
		echo "   re-run one with: $build/fuzz/$t FILE" >&2
		status=1
	fi
done
exit $status
