#!/bin/bash
# run_model.sh LOCK_PML - model-check the cross-host lock protocol
# (guestfs/lock.pml, the model of guestfs/lease.c, record.c, renew.c and
# lock.c) with spin.
#
# For every variant below: spin -a generates the verifier (pan.c) with the
# variant's -D defines, gcc compiles it (-DSAFETY: assertions only;
# -DCOLLAPSE: compressed states, still exhaustive), pan runs it.
#   safe    the NEW protocol: the search must be complete (no "max search
#           depth too small", no memory limit hit) with "errors: 0".
#   unsafe  the OLD protocol and mutants of the NEW one: pan must find an
#           assertion violation (depth-bounded search, shortened with -I);
#           its trail is replayed (spin -t -p) and the events of the
#           interleaving are printed, ticks numbered (t=...).
# Exit 0 only if every variant does as expected; 77 (skipped) if spin or
# gcc is missing.  Work happens in a temporary directory, removed on exit.
# Environment: MODEL_JOBS (parallel variants, default 2), MODEL_MEMLIM
# (MB per verifier, default 2048), MODEL_ONLY (an extended regular
# expression: run only the variants whose names match, e.g. '^future').
set -u

if [ $# -ne 1 ] || [ ! -r "$1" ]; then
	echo "usage: $0 path/to/lock.pml" >&2
	exit 2
fi
for tool in spin gcc; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "model-lock: SKIP: '$tool' is not installed (Debian: apt-get install -y spin gcc, or scripts/deps.sh --test)"
		exit 77
	fi
done
model=$(readlink -f "$1")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/model-lock.XXXXXX") || exit 1
pids=()
# on a timeout (SIGTERM from meson) stop our verifiers too: each variant
# runs in its own process group (set -m)
# shellcheck disable=SC2317  # cleanup: run by the EXIT trap
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -- "-$p" 2>/dev/null
	done
	wait
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
set -m
jobs_max=${MODEL_JOBS:-2}
memlim=${MODEL_MEMLIM:-2048}

# name | expect | spin defines | what it is [| the property an unsafe
# variant must break: a, b or c (default: any) | pan -m depths to try]
# (longest first: they run MODEL_JOBS at a time)
variants=(
	"new-L6W4|safe|-DL=6 -DW=4|NEW protocol, L=6 W=4, hosts A and B + restart of A"
	"future-never|unsafe|-DFUTURE -DFUTURE_NEVER -DNOCRASH -DL=3 -DW=2|mutant: a record dated ahead of the server's clock never expires|c|1000 3000000"
	"new-L3W2|safe|-DL=3 -DW=2|NEW protocol, L=3 W=2, hosts A and B + restart of A"
	"future|safe|-DFUTURE -DNOCRASH -DL=3 -DW=2|NEW + records dated ahead of the server's clock, aged from first sight (future_expired), hosts A and B"
	"future-first-sight|unsafe|-DFUTURE -DFUTURE_FIRST_SIGHT -DNOCRASH -DL=3 -DW=2|mutant: a record dated ahead of the server's clock expires at first sight|a"
	"new-republish|safe|-DREPUBLISH -DL=3 -DW=2|NEW + record rewrites by other lock operations, with deadline (lease_publish_fenced)"
	"old|unsafe|-DOLD -DL=3 -DW=2|OLD protocol: .mutex, truncate-then-write renewal"
	"old-nofence|unsafe|-DOLD_NOFENCE -DL=3 -DW=2|NEW but writes without deadline (OLD write path)"
	"withdraw-rewrite|unsafe|-DWITHDRAW_REWRITE -DL=3 -DW=2|NEW but withdraw rewrites the record and reuses its name"
	"republish-unfenced|unsafe|-DREPUBLISH_UNFENCED -DL=3 -DW=2|NEW + record rewrites by other lock operations without deadline"
	"no-renew-deadline|unsafe|-DNO_RENEW_DEADLINE -DL=3 -DW=2|mutant: renewal without deadline"
	"no-release-wait|unsafe|-DNO_RELEASE_WAIT -DL=3 -DW=2|mutant: release without waiting for writes"
	"w-gt-l|unsafe|-DL=3 -DW=5|mutant: W = L + 2 (W = L + 1 still holds with exact ticks)"
)

# run one variant in its own directory; results stay there
run_variant() {
	local name=$1 expect=$2 defs=$3 depths=${4:-400 1000 4000 3000000}
	local dir=$tmp/$1 t0 m
	local cflags=(-O2 -w -DSAFETY -DCOLLAPSE -DMEMLIM="$memlim")
	mkdir -p "$dir" && cd "$dir" || return
	cp "$model" lock.pml
	t0=$(date +%s.%N)
	# shellcheck disable=SC2086  # $defs: several words
	if ! spin -a $defs lock.pml >spin.log 2>&1; then
		echo "spin -a failed" >failed
		return
	fi
	# unsafe: -DREACH so that pan -I can shorten the counterexample
	[ "$expect" = safe ] || cflags+=(-DREACH)
	if ! gcc "${cflags[@]}" -o pan pan.c >gcc.log 2>&1; then
		echo "gcc failed" >failed
		return
	fi
	if [ "$expect" = safe ]; then
		./pan -E -n -w23 -m3000000 >pan.out 2>&1
	else
		# depth-bounded searches first, each shortening the first
		# counterexample it finds (-I): a short one, fast
		for m in $depths; do
			./pan -E -n -w22 -m"$m" -I >pan.out 2>&1
			[ -e lock.pml.trail ] && break
		done
		if [ -e lock.pml.trail ]; then
			# shellcheck disable=SC2086
			spin -t -p $defs lock.pml >trail.txt 2>&1
		fi
	fi
	echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }' >elapsed
}

# up to $jobs_max variants at a time
running=0
for v in "${variants[@]}"; do
	IFS='|' read -r name expect defs what want depths <<<"$v"
	[[ $name =~ ${MODEL_ONLY:-.} ]] || continue
	(run_variant "$name" "$expect" "$defs" "$depths") &
	pids+=($!)
	running=$((running + 1))
	if [ "$running" -ge "$jobs_max" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
pids=()

status=0
for v in "${variants[@]}"; do
	IFS='|' read -r name expect defs what want depths <<<"$v"
	[[ $name =~ ${MODEL_ONLY:-.} ]] || continue
	dir=$tmp/$name
	if [ -e "$dir/failed" ]; then
		echo "model-lock: FAIL $name ($what): $(cat "$dir/failed")"
		cat "$dir"/spin.log "$dir"/gcc.log 2>/dev/null | head -20 | sed 's/^/    /'
		status=1
		continue
	fi
	out=$dir/pan.out
	states=$(awk '/states, stored/ { print $1; exit }' "$out")
	depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$out" | head -1)
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | head -1)
	if [ "$expect" = unsafe ]; then
		depth="reached $depth (bounded)"
	fi
	secs=$(cat "$dir/elapsed" 2>/dev/null || echo "?")
	stats="${states:-?} states, depth ${depth:-?}, errors: ${errors:-?}, ${secs} s"
	if [ "$expect" = safe ]; then
		if [ "${errors:-x}" = 0 ] &&
			! grep -q "max search depth too small" "$out" &&
			! grep -q "Search not completed" "$out" &&
			! grep -q "MEMLIM" "$out"; then
			echo "model-lock: PASS $name ($what): verified, exhaustive: $stats"
		else
			echo "model-lock: FAIL $name ($what): NOT verified: $stats"
			grep -E "assertion violated|too small|MEMLIM|not completed" "$out" |
				head -5 | sed 's/^/    /'
			if [ -e "$dir/lock.pml.trail" ]; then
				# shellcheck disable=SC2086
				(cd "$dir" && spin -t -p $defs lock.pml >trail.txt 2>&1)
			fi
			status=1
		fi
	else
		if [ "${errors:-0}" -gt 0 ] && [ -e "$dir/lock.pml.trail" ]; then
			if grep -q "assertion violated.*wr_stale" "$out"; then
				got=b prop="(b) a write landed after another instance's grant"
			elif grep -q "assertion violated.*wt\[" "$out"; then
				got=c prop="(c) a record from the future kept blocking a waiter"
			else
				got=a prop="(a) two instances hold the lock"
			fi
			if [ -n "$want" ] && [ "$want" != "$got" ]; then
				echo "model-lock: FAIL $name ($what): expected a counterexample to ($want), found $prop: $stats"
				status=1
			else
				echo "model-lock: PASS $name ($what): counterexample found as expected, $prop: $stats"
			fi
		else
			echo "model-lock: FAIL $name ($what): expected a counterexample, found none: $stats"
			status=1
		fi
	fi
	if [ -e "$dir/trail.txt" ]; then
		steps=$(grep -cE '^ *[0-9]+:[[:space:]]+proc' "$dir/trail.txt")
		echo "    counterexample (spin -t -p, $steps steps; events only; valid_until=t+N: N ticks left):"
		# printf lines of the replay; "@ tick" advances the clock
		grep -E '^ *@ |assertion violated' "$dir/trail.txt" |
			awk 'BEGIN { t = 0 }
			     /@ tick/ { t++; next }
			     /assertion violated/ { sub(/^ */, ""); print "      " substr($0, 1, 100); next }
			     { sub(/^ *@ /, ""); printf "      t=%d %s\n", t, $0 }' >"$dir/events"
		n=$(wc -l <"$dir/events")
		if [ "$n" -le 40 ]; then
			cat "$dir/events"
		else
			head -8 "$dir/events"
			echo "      ... ($((n - 38)) events left out)"
			tail -30 "$dir/events"
		fi
	fi
done
exit $status
