#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# bench_local.sh - vfsd /local against the raw directory beneath it and
# against libfuse's passthrough_ll example, side by side, in one run; and
# vfsd /shared, the same file:// mount with ?shared=yes (the image store's
# shared mode), to show what that mode costs.
#
# Usage: bench/bench_local.sh [--quick] [--repeat N] [--dir BASE]
#                             [--vfsd PATH] [--base-vfsd PATH] [--keep]
#                             [--help]
#
#   --quick      smoke run: 128 MiB files, 1,000 files, 3 s random I/O,
#                64 MiB image (about a minute)
#   --repeat N   run every figure N times and report the median (default 3,
#                1 with --quick); the full run takes about 8-9 minutes
#   --dir BASE   where the scratch directories go (default /var/tmp); raw,
#                vfsd's backing dir and passthrough_ll's source all live
#                under one mktemp directory there, so on one filesystem
#   --vfsd PATH  daemon to test (default build/vfsd/vfsd of this checkout;
#                it is copied first, so a rebuild during the run is harmless)
#   --base-vfsd PATH
#                a second daemon to compare with (e.g. a build of an older
#                commit): "base vfsd" and "base vfsd shared" are the same
#                two mounts served by it, measured in the same rounds, each
#                right before or after its twin (the order alternates from
#                round to round); the table adds the ratios vfsd/base
#   --keep       keep the scratch directory (logs, compiled helpers)
#
# Needs only Debian packages: fio, qemu-utils, libfuse3-dev, gcc (and
# fuse3 for fusermount3).  Run it as root: caches are dropped with
# /proc/sys/vm/drop_caches before every read figure; without root the
# buffered-read figures measure the page cache and are flagged as such.
#
# Targets: raw (the directory), vfsd (vfsd -m /local=file://DIR), vfsd
# shared (-m /shared=file://DIR2?shared=yes, served by the same daemon: no
# zero-copy or passthrough there) and passthrough_ll; with --base-vfsd
# also base vfsd and base vfsd shared.
#
# Every figure is "higher is better" (MiB/s, IOPS, operations/s), so a
# ratio above 1 means vfsd (the first of the pair) was faster.  The table goes to stdout and a
# tab-separated copy to bench/results/local-<UTC time>.txt.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
me=bench_local.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

quick=0 repeat= base=/var/tmp keep=0 vfsd_src=$top/build/vfsd/vfsd
while [ $# -gt 0 ]; do
	common_opt "$@"
	[ "$nargs" != 0 ] || unknown_opt "$1"
	shift "$nargs"
done
parse_done

if [ "$quick" = 1 ]; then
	size_mb=128 nfiles=1000 runtime=3 img_mb=64
else
	size_mb=1024 nfiles=5000 runtime=10 img_mb=512
fi

for tool in fio qemu-img fusermount3 pkg-config cc findmnt mountpoint; do
	command -v "$tool" >/dev/null ||
		{ echo "bench_local.sh: '$tool' missing (apt-get install fio qemu-utils fuse3 libfuse3-dev gcc pkg-config)" >&2; exit 2; }
done
pt_src=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
[ -r "$pt_src" ] || { echo "bench_local.sh: $pt_src missing (apt-get install libfuse3-dev)" >&2; exit 2; }
[ -x "$vfsd_src" ] || { echo "bench_local.sh: no daemon at $vfsd_src (meson setup build && meson compile -C build)" >&2; exit 2; }
root=0; [ "$(id -u)" = 0 ] && root=1

# ---- scratch area, mounts and cleanup ------------------------------------

T=$(mktemp -d "$base/vfsd-bench.XXXXXX")
mkdir -p "$T/bin" "$T/logs" "$T/src" "$T/raw" "$T/vfsd-back" "$T/vfsd-shared" \
	 "$T/vfsd-mnt" "$T/pt-back" "$T/pt-mnt"
[ -z "$base_vfsd_src" ] || mkdir -p "$T/base-back" "$T/base-shared" "$T/base-mnt"
vfsd_pid= pt_pid= bvfsd_pid=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_fuse "$T/vfsd-mnt" "$vfsd_pid"
	stop_fuse "$T/pt-mnt" "$pt_pid"
	stop_fuse "$T/base-mnt" "$bvfsd_pid"
	stop_fuse "$T/base-probe" ""	# base_probe's, if interrupted
	if mountpoint -q "$T/vfsd-mnt" 2>/dev/null || mountpoint -q "$T/pt-mnt" 2>/dev/null ||
	   mountpoint -q "$T/base-mnt" 2>/dev/null; then
		echo "bench_local.sh: a mount under $T is still busy; not removing $T" >&2
	elif [ "$keep" = 1 ]; then
		echo "bench_local.sh: scratch kept in $T" >&2
	else
		rm -rf "$T"
	fi
	exit $rc
}
# Measured commands run in the background and are waited for (run_bg):
# bash defers a trap while a foreground child runs, and ignores a Ctrl-C
# the child handled itself (fio does), so the run would just go on.
child=
trap cleanup EXIT
trap interrupted INT TERM

start_vfsd() {
	"$T/bin/vfsd" -f -m "/local=file://$T/vfsd-back" \
		-m "/shared=file://$T/vfsd-shared?shared=yes" "$T/vfsd-mnt" \
		>>"$T/logs/vfsd.log" 2>&1 &
	vfsd_pid=$!
	wait_mounted "$T/vfsd-mnt" "$vfsd_pid" vfsd
	[ -d "$T/vfsd-mnt/local" ] || { echo "bench_local.sh: $T/vfsd-mnt/local missing" >&2; return 1; }
	[ -d "$T/vfsd-mnt/shared" ] || { echo "bench_local.sh: $T/vfsd-mnt/shared missing" >&2; return 1; }
}

# The base daemon's twin of start_vfsd (same options, less what it refused).
start_base() {
	[ -n "$base_vfsd_src" ] || return 0
	"$T/bin/base-vfsd" -f -m "/local=$(base_url "file://$T/base-back")" \
		-m "/shared=$(base_url "file://$T/base-shared?shared=yes")" "$T/base-mnt" \
		>>"$T/logs/base-vfsd.log" 2>&1 &
	bvfsd_pid=$!
	wait_mounted "$T/base-mnt" "$bvfsd_pid" base-vfsd
	[ -d "$T/base-mnt/shared" ] || { echo "bench_local.sh: $T/base-mnt/shared missing" >&2; return 1; }
}

start_pt() {
	"$T/bin/passthrough_ll" -f -o "source=$T/pt-back" "$T/pt-mnt" \
		>>"$T/logs/passthrough_ll.log" 2>&1 &
	pt_pid=$!
	wait_mounted "$T/pt-mnt" "$pt_pid" passthrough_ll
}

drop_caches() {
	sync
	if [ "$root" = 1 ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

# Forget everything cached: the page cache (both the backing files' and the
# FUSE inodes') and the FUSE daemons' state, by remounting them.
fresh() {
	stop_fuse "$T/vfsd-mnt" "$vfsd_pid"; vfsd_pid=
	stop_fuse "$T/pt-mnt" "$pt_pid"; pt_pid=
	[ -z "$bvfsd_pid" ] || { stop_fuse "$T/base-mnt" "$bvfsd_pid"; bvfsd_pid=; }
	drop_caches
	start_vfsd
	start_base
	start_pt
}

targets=(raw vfsd shared pt)
declare -A tdir=([raw]=$T/raw [vfsd]=$T/vfsd-mnt/local [shared]=$T/vfsd-mnt/shared [pt]=$T/pt-mnt)
declare -A tname=([raw]=raw [vfsd]=vfsd [shared]="vfsd shared" [pt]=passthrough_ll)
if [ -n "$base_vfsd_src" ]; then
	targets=(raw vfsd bvfsd shared bshared pt)
	twin=([vfsd]=bvfsd [shared]=bshared)
	tdir+=([bvfsd]=$T/base-mnt/local [bshared]=$T/base-mnt/shared)
	tname+=([bvfsd]="base vfsd" [bshared]="base vfsd shared")
fi

# ---- helpers ------------------------------------------------------------

# Result of the last measurement: a number, or "fails (EXXX)".
val=

# run_fio FILE RW BS DIRECT ENGINE IODEPTH TIMED METRIC [extra fio args]
#   METRIC: bw (MiB/s) or iops, of the read or write side as RW says
run_fio() {
	local file=$1 rw=$2 bs=$3 direct=$4 engine=$5 depth=$6 timed=$7 metric=$8
	shift 8
	local out err rc=0 f
	local args=(--name=bench "--filename=$file" "--size=${size_mb}M"
		"--rw=$rw" "--bs=$bs" "--direct=$direct" "--ioengine=$engine"
		"--iodepth=$depth" --output-format=terse --terse-version=3
		--thread=0 "$@")
	[ "$timed" = 1 ] && args+=(--time_based "--runtime=$runtime" --ramp_time=1 --randrepeat=0)
	err=$T/logs/fio.err
	run_bg fio "${args[@]}" >"$T/logs/fio.out" 2>"$err" || rc=$?
	out=$(cat "$T/logs/fio.out")
	echo "fio ${args[*]} -> rc=$rc: $out" >>"$T/logs/fio.log"
	cat "$err" >>"$T/logs/fio.log"
	f=$(printf '%s\n' "$out" | grep -m1 '^3;' | cut -d';' -f5 || true)
	if [ "$rc" != 0 ] || [ -z "$f" ] || [ "$f" != 0 ]; then
		if [ -n "$f" ] && [ "$f" != 0 ]; then
			val="fails ($(errname "$f"))"
		else
			val="fails ($(errname "$(grep -m1 -o 'error=[^:]*\|: [A-Z][a-z ]*$' "$err" || echo "rc $rc")"))"
		fi
		return 0
	fi
	case $rw:$metric in
	*read:bw) f=7 ;; *read:iops) f=8 ;;
	*write:bw) f=48 ;; *write:iops) f=49 ;;
	esac
	val=$(printf '%s\n' "$out" | grep -m1 '^3;' | cut -d';' -f$f)
	[ "$metric" = bw ] && val=$(awk -v k="$val" 'BEGIN { printf "%.1f", k / 1024 }')
	return 0
}

# A timed command; val = MB / seconds, or the failure.
run_timed_mb() {
	local mb=$1 t0 t1 rc=0 err=$T/logs/cmd.err
	shift
	t0=$(now)
	run_bg "$@" >/dev/null 2>"$err" || rc=$?
	t1=$(now)
	{ echo "$* -> rc=$rc"; cat "$err"; } >>"$T/logs/cmd.log"
	if [ "$rc" != 0 ]; then
		val="fails ($(errname "$(head -c 300 "$err")"))"
	else
		val=$(awk -v m="$mb" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", m / (b - a) }')
	fi
}

# ---- the figures ----------------------------------------------------------
# Each fig_* function measures one figure on target $1 and sets val.

fig_seqwrite_buf() {
	rm -f "${tdir[$1]}/seq.dat"
	run_fio "${tdir[$1]}/seq.dat" write 1M 0 psync 1 0 bw --end_fsync=1
}
fig_seqread_buf() {
	run_fio "${tdir[$1]}/seq.dat" read 1M 0 psync 1 0 bw
}
fig_seqwrite_direct() {
	rm -f "${tdir[$1]}/seqd.dat"
	run_fio "${tdir[$1]}/seqd.dat" write 1M 1 psync 1 0 bw --end_fsync=1
	rm -f "${tdir[$1]}/seqd.dat"
}
fig_seqread_direct() {
	run_fio "${tdir[$1]}/seq.dat" read 1M 1 psync 1 0 bw
}
fig_randread() {
	run_fio "${tdir[$1]}/seq.dat" randread 4k 1 libaio 16 1 iops
}
fig_randwrite() {
	run_fio "${tdir[$1]}/seq.dat" randwrite 4k 1 libaio 16 1 iops
}

# The metadata phases share one directory per target: create, stat after
# dropping every cache (each stat is then a LOOKUP round trip), stat again
# right away (served from the kernel's attribute cache while the entries
# are younger than the attribute timeout, 1 s for both daemons), unlink.
meta() {	# TARGET PHASE
	local d=${tdir[$1]}/meta out rc=0
	run_bg "$T/bin/metabench" "$d" "$nfiles" "$2" >"$T/logs/meta.out" 2>>"$T/logs/meta.log" || rc=$?
	out=$(cat "$T/logs/meta.out")
	if [ "$rc" != 0 ]; then
		val="fails ($(errname "$(tail -n1 "$T/logs/meta.log")"))"
	else
		val=$(echo "$out" | awk '{ printf "%.0f", $4 }')
	fi
}
fig_create() { rm -rf "${tdir[$1]}/meta"; mkdir "${tdir[$1]}/meta"; meta "$1" create; }
# The warm pass must follow the cold one on the same target at once (not
# after the other targets' cold passes), or the 1 s attribute timeout
# lapses for some targets and not for others.
declare -A warm
fig_stat_cold() {
	meta "$1" stat
	local cold=$val
	meta "$1" stat
	warm[$1]=$val
	val=$cold
}
fig_stat_warm() { val=${warm[$1]}; }
fig_unlink() { meta "$1" unlink; rm -rf "${tdir[$1]}/meta"; }

warm_src() { cat "$T/src/src.raw" "$T/src/src.qcow2" >/dev/null; }
fig_qemu_to_qcow2() {
	rm -f "${tdir[$1]}/out.qcow2"
	warm_src
	run_timed_mb "$img_mb" qemu-img convert -f raw -O qcow2 -t none \
		"$T/src/src.raw" "${tdir[$1]}/out.qcow2"
	rm -f "${tdir[$1]}/out.qcow2"
}
fig_qemu_to_raw() {
	rm -f "${tdir[$1]}/out.raw"
	warm_src
	run_timed_mb "$img_mb" sh -c 'qemu-img convert -f qcow2 -O raw -t writeback "$1" "$2" && sync "$2"' \
		sh "$T/src/src.qcow2" "${tdir[$1]}/out.raw"
	rm -f "${tdir[$1]}/out.raw"
}

# id | label | unit | floor vs raw (0 = none) | prepare: fresh (remount +
# drop caches), drop (drop caches only) or none
figures=(
	"seqwrite_buf|seq write 1M buffered+fsync|MiB/s|0.7|fresh"
	"seqread_buf|seq read 1M buffered (cold)|MiB/s|0.7|fresh"
	"seqwrite_direct|seq write 1M O_DIRECT+fsync|MiB/s|0.7|fresh"
	"seqread_direct|seq read 1M O_DIRECT|MiB/s|0.7|fresh"
	"randread|randread 4k direct qd16|IOPS|0|fresh"
	"randwrite|randwrite 4k direct qd16|IOPS|0|fresh"
	"create|create ${nfiles} files|ops/s|0|fresh"
	"stat_cold|stat ${nfiles} files (cold)|ops/s|0|drop"
	"stat_warm|stat ${nfiles} files (warm)|ops/s|0|none"
	"unlink|unlink ${nfiles} files|ops/s|0|none"
	"qemu_to_qcow2|qemu-img raw->qcow2 -t none|MiB/s|0|fresh"
	"qemu_to_raw|qemu-img qcow2->raw -t writeback|MiB/s|0|fresh"
)

# ---- run ------------------------------------------------------------------

bench_start "other work competes with the FUSE daemons' threads; FUSE figures will suffer more than raw ones"
log "scratch: $T (on $(findmnt -n -o SOURCE,FSTYPE -T "$T" | tr -s ' '))"
cp "$vfsd_src" "$T/bin/vfsd"
if [ -n "$base_vfsd_src" ]; then
	base_install
	base_probe "file://$T/base-back" "file://$T/base-shared?shared=yes"
fi
cc -O2 -Wall -o "$T/bin/passthrough_ll" "$pt_src" $(pkg-config --cflags --libs fuse3) \
	2>"$T/logs/cc-passthrough_ll.log" ||
	{ cat "$T/logs/cc-passthrough_ll.log" >&2; exit 1; }
cc -O2 -Wall -o "$T/bin/metabench" "$here/metabench.c"
log "source image: ${img_mb} MiB of random data, raw and qcow2"
head -c "${img_mb}M" /dev/urandom >"$T/src/src.raw"
qemu-img convert -f raw -O qcow2 "$T/src/src.raw" "$T/src/src.qcow2"
[ "$root" = 1 ] || log "WARNING: not root: caches cannot be dropped; buffered reads are flattered"
start_vfsd
start_base
start_pt

# The whole sequence is repeated (the metadata figures depend on each
# other), each figure target after target, so slow drifts of the machine
# touch all targets alike; the median of the repeats is reported.  A vfsd
# target and its base twin swap places every other round (round_order).
declare -A runs res
for r in $(seq "$repeat"); do
	[ "$repeat" = 1 ] || log "round $r of $repeat"
	mapfile -t order < <(round_order "$r" "${targets[@]}")
	for spec in "${figures[@]}"; do
		IFS='|' read -r id label unit floor prep <<<"$spec"
		for t in "${order[@]}"; do
			case $prep in
			fresh) fresh ;;
			drop) drop_caches ;;
			esac
			"fig_$id" "$t"
			runs[$id,$t]="${runs[$id,$t]:-} $val"
			log "$label: ${tname[$t]} = $val $unit"
		done
	done
done
for spec in "${figures[@]}"; do
	IFS='|' read -r id _ <<<"$spec"
	for t in "${targets[@]}"; do
		# shellcheck disable=SC2086
		res[$id,$t]=$(median ${runs[$id,$t]// fails (/ fails_(})
		res[$id,$t]=${res[$id,$t]//fails_(/fails (}
	done
done
elapsed=$(( $(date +%s) - start_ts ))

# ---- report ---------------------------------------------------------------

ratio() {	# a b -> a/b, or why not
	case $1 in fails*) echo "fails"; return ;; esac
	case $2 in fails*) echo "n/a (it fails)"; return ;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

# columns of the table, and the ratios: "A:B:heading" = A / B
cols=(raw vfsd shared pt)
pairs=("vfsd:raw:vfsd/raw" "vfsd:pt:vfsd/passthrough_ll" "shared:vfsd:shared/vfsd")
if [ -n "$base_vfsd_src" ]; then
	cols=(raw vfsd bvfsd shared bshared pt)
	pairs+=("vfsd:bvfsd:vfsd/base" "shared:bshared:shared/base shared")
fi

outdir=$here/results
mkdir -p "$outdir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
summary=$outdir/local-$stamp.txt
machine="$(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r), $(findmnt -n -o FSTYPE -T "$T") on $(findmnt -n -o SOURCE -T "$T")"
vfsd_ver=$("$T/bin/vfsd" --version 2>/dev/null | head -n1 || echo '?')
git_rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo '?')

{
	echo "# vfsd local benchmark, $stamp"
	echo "# machine: $machine"
	echo "# vfsd: $vfsd_ver ($git_rev); libfuse $(pkg-config --modversion fuse3); fio $(fio --version); $(qemu-img --version | head -n1)"
	[ -z "$base_vfsd_src" ] || echo "# base vfsd: $base_ver"
	for n in "${base_notes[@]}"; do echo "# note: $n"; done
	echo "# load average at start: $load0, at end: $(cut -d' ' -f1-3 /proc/loadavg); elapsed ${elapsed}s"
	qopt=; [ "$quick" = 0 ] || qopt=" --quick"
	bopt=; [ -z "$base_vfsd_src" ] || bopt=" --base-vfsd $base_vfsd_src"
	echo "# command: $0$qopt --repeat $repeat$bopt"
	echo "# sizes: file ${size_mb} MiB, ${nfiles} files, random I/O ${runtime} s, image ${img_mb} MiB; root=$root"
	hdr="# figure	unit"
	for t in "${cols[@]}"; do hdr+="	${tname[$t]}"; done
	for p in "${pairs[@]}"; do hdr+="	${p#*:*:}"; done
	echo "$hdr	floors"
	for spec in "${figures[@]}"; do
		IFS='|' read -r id label unit floor prep <<<"$spec"
		v=${res[$id,vfsd]} r=${res[$id,raw]} p=${res[$id,pt]}
		rr=$(ratio "$v" "$r") rp=$(ratio "$v" "$p")
		ok=
		case $v in fails*) ok="vfsd fails" ;; esac
		case $rp in [0-9]*) if awk -v x="$rp" 'BEGIN { exit !(x < 1) }'; then ok+=" <passthrough_ll"; fi ;; esac
		if [ "$floor" != 0 ]; then
			case $rr in [0-9]*) if awk -v x="$rr" -v f="$floor" 'BEGIN { exit !(x < f) }'; then ok+=" <${floor}x raw"; fi ;; esac
		fi
		ok=${ok# }
		ok=${ok:-ok}
		[ "$ok" = ok ] || ok="MISS: $ok"
		line="$id	$unit"
		for t in "${cols[@]}"; do line+="	${res[$id,$t]}"; done
		for p in "${pairs[@]}"; do
			IFS=: read -r a b _ <<<"$p"
			line+="	$(ratio "${res[$id,$a]}" "${res[$id,$b]}")"
		done
		echo "$line	$ok"
	done
} >"$summary"

echo
if [ -n "$base_vfsd_src" ]; then
	echo "vfsd /local and /shared vs the base daemon's, raw directory, passthrough_ll  ($machine)"
else
	echo "vfsd /local and /shared vs raw directory vs passthrough_ll  ($machine)"
fi
echo "sizes: file ${size_mb} MiB, ${nfiles} files, random I/O ${runtime} s, image ${img_mb} MiB; median of $repeat; ${elapsed}s; load average $load0 at start"
[ -z "$base_vfsd_src" ] || echo "base vfsd: $base_ver"
echo
fmt='%-34s %-6s'
args=(figure unit)
for t in "${cols[@]}"; do fmt+=' %16s'; args+=("${tname[$t]}"); done
for p in "${pairs[@]}"; do fmt+=' %18s'; args+=("${p#*:*:}"); done
fmt+='  %s\n'
args+=(floors)
# shellcheck disable=SC2059
printf "$fmt" "${args[@]}"
i=0
grep -v '^#' "$summary" | while IFS=$'\t' read -r -a f; do
	IFS='|' read -r _ label _ <<<"${figures[$i]}"
	i=$((i + 1))
	# shellcheck disable=SC2059
	printf "$fmt" "$label" "${f[@]:1}"
done
echo
echo "floors: vfsd >= passthrough_ll everywhere; sequential figures >= 0.7 x raw"
echo "shared: -m /shared=file://DIR?shared=yes, the image store's shared mode (no zero-copy or passthrough)"
if [ -n "$base_vfsd_src" ]; then
	echo "base: the same mounts served by $base_vfsd_src, measured in the same rounds;"
	echo "      vfsd/base above 1 = this checkout's vfsd faster"
	for n in "${base_notes[@]}"; do echo "note: $n"; done
fi
echo "summary: $summary"
