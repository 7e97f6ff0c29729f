#!/bin/bash
# test.sh - every test of vfsd: the README's second command and CI's.
# Installs what is missing, builds, then runs the unit and integration
# suites in a normal build and again under AddressSanitizer + UBSan, and
# fuzzes the config and URL parsers for a bounded time.
#   test.sh [--quick]   --quick: normal build only, no sanitizers or fuzzing
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
quick=
[ "${1:-}" = "--quick" ] && quick=1

scripts/deps.sh --test

status=0
summary=()

run_suite() { # name builddir [meson setup args...]
	local name=$1 dir=$2
	shift 2
	if [ ! -d "$dir" ]; then
		meson setup "$dir" "$@"
	fi
	meson compile -C "$dir"
	if meson test -C "$dir" --print-errorlogs --num-processes 1 "${MESON_TEST_ARGS[@]}"; then
		summary+=("$name: ok")
	else
		summary+=("$name: FAILED")
		status=1
		python3 scripts/testlog_count.py --failures "$name" \
			"$dir/meson-logs/testlog.json" >> "$top/.test-failures"
	fi
	python3 scripts/testlog_count.py "$dir/meson-logs/testlog.json" >> "$top/.test-counts"
}

rm -f "$top/.test-counts" "$top/.test-failures"
MESON_TEST_ARGS=()
run_suite "normal build" build
if [ -z "$quick" ]; then
	# the booted-guest suite runs once, in the normal build: under the
	# sanitizers it would add about 8 minutes and test vfsd no differently
	# from the integration suites; the model check (spin) builds no
	# code of vfsd's, so once is enough; the lock torture checks the
	# protocol's invariant from the data (5 minutes more under the
	# sanitizers), while the lock and lock-fault suites run the same code
	# under them; the static checks (format, layers) read sources only;
	# the lock faults whose proof is a lease running out (lease-waits,
	# 100 s of waiting) are left out to keep the whole run under 45
	# minutes: the lease code runs under the sanitizers in the other
	# lock-fault, lock and migration tests; the tests whose proof is a
	# rate or a time measured over a window (rates: what the I/O limits
	# let through, their burst, a change applied within a second, the
	# watcher's reads a second, the neighbours of parked requests; about
	# 60 s) prove nothing more under the sanitizers: the limits,
	# their changes, the watcher and parked requests run under them in the
	# other qos and qos-faults tests, the throttle's arithmetic (bursts,
	# iops_size) in unit-lib
	MESON_TEST_ARGS=(--no-suite guests --no-suite model --no-suite torture --no-suite static
		--no-suite lease-waits --no-suite rates)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	LSAN_OPTIONS=suppressions=$top/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_suite "asan+ubsan build" build-asan -Db_sanitize=address,undefined -Db_lundef=false
	if [ -x fuzz/run.sh ]; then
		if fuzz/run.sh; then
			summary+=("fuzzing: ok")
			echo "fuzz 1 0" >> "$top/.test-counts"
		else
			summary+=("fuzzing: FAILED")
			echo "fuzz 0 1" >> "$top/.test-counts"
			status=1
		fi
	fi
fi

# CI shows only the end of this output: what failed, and why, goes last
if [ -s "$top/.test-failures" ]; then
	cat "$top/.test-failures"
fi
rm -f "$top/.test-failures"
printf '%s\n' "${summary[@]}"
awk '{p += $2; f += $3} END {printf "%d passed, %d failed\n", p, f}' "$top/.test-counts"
rm -f "$top/.test-counts"
exit $status
